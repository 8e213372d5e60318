"""LeadFlow settings: one module, read from the environment.

No variables set but ``DEBUG=1`` (``make run``, bin/run and the test suite set it) gives the
embedded default: SQLite under ``var/``, Celery on kombu's filesystem transport (no server to
install). DEBUG is off when nothing sets it, and then a strong SECRET_KEY is required.
``DATABASE_URL=postgres://...`` and ``CELERY_BROKER_URL=redis://...`` give production. See
``.env.example`` for every variable.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("LEADFLOW_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
VAR_DIR.mkdir(parents=True, exist_ok=True)
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# --- Hardening (issue 22): DEBUG off unless asked for; no weak SECRET_KEY in production ----
# DEBUG is on only when the environment says so (`make run`, bin/run and the test suite do), so
# a container started without a .env serves no debug pages.
DEBUG = env.bool("DEBUG", default=False)
# A fixed key is only acceptable for the embedded default on a developer's machine; with DEBUG
# off the key must come from the environment, be long and not one published anywhere.
DEV_SECRET_KEY = "dev-only-insecure-key-change-me"
KNOWN_SECRET_KEYS = frozenset(
    {DEV_SECRET_KEY, "change-me-to-a-long-random-string", "changeme", "secret", "x", "django-insecure"}
)
SECRET_KEY = env.str("SECRET_KEY", default="" if not DEBUG else DEV_SECRET_KEY)
if not DEBUG and (
    len(SECRET_KEY) < 50
    or len(set(SECRET_KEY)) < 5
    or SECRET_KEY in KNOWN_SECRET_KEYS
    or SECRET_KEY.startswith("django-insecure-")
):
    raise ImproperlyConfigured(
        "With DEBUG off, SECRET_KEY must be set to 50 or more random characters, not a known "
        'example: python -c "import secrets; print(secrets.token_urlsafe(60))"'
    )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "django_celery_beat",
    "django_htmx",
    "leads",
    "scoring",
    "sla",
    "reports",
    # --- Hardening (issue 22) ---
    "axes",
    "csp",
    "drf_spectacular_sidecar",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions, before CommonMiddleware (Django's order): the language from the picker's
    # cookie or Accept-Language; UserLanguageMiddleware then applies a signed-in user's own.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "leads.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # --- Hardening (issue 22) ---
    "csp.middleware.CSPMiddleware",
    "leads.middleware.ApiJsonErrorsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the lock-out page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "leadflow.urls"
WSGI_APPLICATION = "leadflow.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'leadflow.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web and worker share the file: WAL lets readers run beside the writer, IMMEDIATE takes
    # the write lock at BEGIN so two writers queue on the busy timeout instead of failing
    # with "database is locked" half-way through a transaction.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"]["TEST"] = {"NAME": env.str("SQLITE_TEST_NAME", default="") or None}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    # A PostgreSQL restart must not surface as 500s on reused connections.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# A read replica for the reports (leadflow/db_router.py): report selectors read there. In
# tests the alias mirrors the test database (TEST MIRROR), so it reads what the test wrote.
if env.str("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = env.db("DATABASE_REPLICA_URL")
    DATABASES["replica"]["OPTIONS"] = {
        **DATABASES["default"].get("OPTIONS", {}),
        **DATABASES["replica"].get("OPTIONS", {}),
    }
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASE_ROUTERS = ["leadflow.db_router.ReportReplicaRouter"]
IS_POSTGRES = DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
# The languages of the product (issue 24). Adding one: README "Adding a language".
LANGUAGES = [
    ("en", "English"),
    ("es", "Español"),
    ("ro", "Română"),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Security -----------------------------------------------------------------------------
# With DEBUG off, TLS protections are on by default; each can be turned off by a variable of
# the same name (e.g. SECURE_SSL_REDIRECT=0 behind a proxy that terminates TLS).
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Hardening (issue 22): login lock-out ----------------------------------------------
# django-axes counts failed logins per username and IP address (browser login and admin); at
# AXES_FAILURE_LIMIT the pair is locked for AXES_COOLOFF_MINUTES. Managers unlock from the admin
# ("Access attempts") or with `manage.py axes_reset_username USERNAME`.
AUTHENTICATION_BACKENDS = [
    "leads.auth_backends.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
# Behind a proxy that sets X-Forwarded-For, name it here so the client address is the real one.
AXES_IPWARE_META_PRECEDENCE_ORDER = env.list("AXES_IP_HEADERS", default=["REMOTE_ADDR"])

# --- Hardening (issue 22): Content-Security-Policy (django-csp) -------------------------------
# Scripts only from our own static files (no inline <script>, no eval, no CDN); styles may be
# inline (swagger-ui and the admin set style attributes), images also as data: URIs (swagger-ui's
# icons). CSP_REPORT_ONLY=1 sends the same policy as report-only, to try a change safely.
_csp_policy = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
if env.bool("CSP_REPORT_ONLY", default=False):
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _csp_policy
else:
    CONTENT_SECURITY_POLICY = _csp_policy

# --- Email --------------------------------------------------------------------------------
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
# For the file-based backend (end-to-end tests read the messages a real worker sent).
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default="")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="LeadFlow <leadflow@localhost>")

# --- Historical import (SPEC section 9) -----------------------------------------------------
# An upload above IMPORT_MAX_BYTES is refused with 413. One up to IMPORT_SYNC_MAX_BYTES is
# imported during the request (200 with the summary); a larger one becomes an ImportJob run by
# a Celery task (202; poll GET /api/v1/import/jobs/{id}/). Uploads wait under IMPORT_DIR.
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", default=50 * 1024 * 1024)
IMPORT_SYNC_MAX_BYTES = env.int("IMPORT_SYNC_MAX_BYTES", default=1024 * 1024)
IMPORT_DIR = Path(env.str("IMPORT_DIR", default=str(VAR_DIR / "imports")))

# --- Celery -------------------------------------------------------------------------------
# The embedded default uses kombu's filesystem transport, which needs no server: web and
# worker exchange messages through files under var/celery/.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
# Timeouts (README "Production": outbox, visibility timeout). Every task is stopped after
# CELERY_TASK_TIME_LIMIT seconds; the whole-table rescores (activation, the nightly decay
# refresh: 50 s for a million leads in bench/rescore.py) after LONG_TASK_TIME_LIMIT. With late
# acks, Redis hands an unacknowledged task to another worker once the visibility timeout has
# passed, so it must exceed the longest hard limit or a task still running would run twice; it
# is not what redoes a killed rescore: the rescore outbox does, within two leases of
# RESCORE_CLAIM_SECONDS (the lease a worker renews per batch; beat looks every lease).
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_TIME_LIMIT = 300
LONG_TASK_TIME_LIMIT = 1200
REDIS_VISIBILITY_TIMEOUT = LONG_TASK_TIME_LIMIT + 300
RESCORE_CLAIM_SECONDS = env.int("RESCORE_CLAIM_SECONDS", default=30)
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery" / "queue"
    _processed_dir = VAR_DIR / "celery" / "processed"
    _control_dir = VAR_DIR / "celery" / "control"
    for _d in (_queue_dir, _processed_dir, _control_dir):
        _d.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        "store_processed": False,
        "control_folder": str(_control_dir),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": REDIS_VISIBILITY_TIMEOUT,
        # Sending a task with Redis down fails after one quick retry (~0.2 s) instead of kombu's
        # default ~6 s, so a request that queues work after commit does not stall for seconds
        # during a broker outage; its outbox row (webhooks, rescores) is sent later.
        "max_retries": 1,
        "interval_start": 0.2,
        "interval_step": 0.2,
        "interval_max": 0.2,
    }
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Without this, Celery's Django fix-up closes the DB connection around every task.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=100)
# Two queues, so no bulk job can hold up the SLA sweep and the notifications: `default` (the
# sweep, reminders, digests, summaries) and `bulk` (rescoring, webhook deliveries, the report
# read model's catch-up). Each gets its own worker (bin/run, docker-compose.yml; README,
# "Workers and queues").
CELERY_TASK_DEFAULT_QUEUE = "default"
BULK_QUEUE = "bulk"
CELERY_TASK_ROUTES = {
    name: {"queue": BULK_QUEUE}
    for name in (
        "scoring.tasks.rescore_all",
        "scoring.tasks.rescore_leads",
        "scoring.tasks.run_rescore_request",
        "scoring.tasks.refresh_decayed_scores",
        "leads.tasks.deliver_webhook",
        "leads.tasks.redeliver_outbox",
        "reports.tasks.catch_up_reports",
    )
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Installed into django-celery-beat's tables at beat start-up, so they show in the admin.
CELERY_BEAT_SCHEDULE = {
    "sla-sweep": {"task": "sla.tasks.sla_sweep", "schedule": 60.0},
    "scoring-decay-refresh": {
        "task": "scoring.tasks.refresh_decayed_scores",
        "schedule": crontab(hour=3, minute=15),
    },
    "scoring-review-reminders": {
        "task": "scoring.tasks.send_review_reminders",
        "schedule": crontab(hour=6, minute=30),
    },
    "scoring-feedback-digest": {
        "task": "scoring.tasks.send_feedback_digests",
        "schedule": crontab(day_of_week="mon", hour=7, minute=15),
    },
    "webhooks-redeliver-outbox": {"task": "leads.tasks.redeliver_outbox", "schedule": 60.0},
    "scoring-redo-rescore-outbox": {
        "task": "scoring.tasks.redo_rescore_outbox",
        "schedule": float(RESCORE_CLAIM_SECONDS),
    },
    # The lifecycle enqueues it when history is written; this is the safety net (a lost message,
    # leads created without a stage change).
    "reports-catch-up": {"task": "reports.tasks.catch_up_reports", "schedule": 60.0},
    "reports-weekly-summary": {
        "task": "reports.tasks.send_weekly_summary",
        "schedule": crontab(day_of_week="mon", hour=7, minute=0),
    },
}

# The count reports read the read model (reports/readmodel.py keeps it from the stage history);
# off, every report runs live on the history.
REPORTS_READ_MODEL = env.bool("REPORTS_READ_MODEL", default=True)
# Rows per catch-up transaction (each batch is one short write transaction).
REPORTS_CATCH_UP_BATCH = env.int("REPORTS_CATCH_UP_BATCH", default=1000)
# An id gap in the history older than this is a rolled-back insert, not a late commit.
REPORTS_GAP_SECONDS = env.int("REPORTS_GAP_SECONDS", default=600)
# The dashboard warns when the read model is further behind than this.
REPORTS_MAX_LAG_SECONDS = env.int("REPORTS_MAX_LAG_SECONDS", default=60)

# --- REST framework -----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "leads.tokens.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Deny by default (SPEC section 1): a view allows only the actions its `role_actions` lists.
    "DEFAULT_PERMISSION_CLASSES": ["leads.permissions.RoleActionPermission"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "leads.exceptions.api_exception_handler",
    # Hardening (issue 22): per token and per user; bulk endpoints count each record.
    "DEFAULT_THROTTLE_CLASSES": ["leads.tokens.TokenThrottle", "leads.tokens.UserThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "token": env.str("API_THROTTLE_TOKEN_RATE", default="3000/min"),
        "user": env.str("API_THROTTLE_USER_RATE", default="6000/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "LeadFlow API",
    "DESCRIPTION": "Lead lifecycle for CRM and marketing-automation integrations.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # from_stage/to_stage/stage share one choice set: name it once.
    "ENUM_NAME_OVERRIDES": {"StageEnum": "leads.models.Stage"},
    # Hardening (issue 22): swagger-ui served from static files (drf-spectacular-sidecar), not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Hardening (issue 22): API tokens ---------------------------------------------------------
# Tokens (`manage.py create_token`, `/api/v1/tokens/`) are stored hashed and expire.
API_TOKEN_DEFAULT_DAYS = env.int("API_TOKEN_DEFAULT_DAYS", default=90)

# --- Caches (throttling, idempotency hints) -----------------------------------------------
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
# Hardening (issue 22): a Redis outage degrades the cache to misses (logged), not to 500s.
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    CACHES["default"]["BACKEND"] = "leadflow.cache.ResilientRedisCache"
    CACHES["default"].setdefault("OPTIONS", {}).update({"socket_connect_timeout": 0.5, "socket_timeout": 0.5})

# --- LeadFlow -----------------------------------------------------------------------------
# Under production settings webhook URLs that resolve to loopback or private networks are
# refused (SSRF); the embedded default allows them so a local receiver can be tested.
WEBHOOKS_ALLOW_PRIVATE = env.bool("WEBHOOKS_ALLOW_PRIVATE", default=DEBUG)
LEADFLOW_BASE_URL = env.str("LEADFLOW_BASE_URL", default="http://127.0.0.1:8000")
# Where `POST /api/v1/events/` scores the leads its events touched. False: in the request's own
# transaction (the response already shows the new scores and stages). True: a Celery task right
# after the commit (SPEC: "within seconds"), so the request holds no lead locks and answers as
# soon as the events are stored; for high-volume event feeds.
SCORING_EVENTS_ASYNC = env.bool("SCORING_EVENTS_ASYNC", default=False)
# Hardening (issue 22): an event dated further ahead is refused (it would never decay).
EVENTS_MAX_FUTURE_MINUTES = env.int("EVENTS_MAX_FUTURE_MINUTES", default=5)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
