# LeadFlow — `make run` to try it, `make test` to check it. See README.md.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PORT   ?= 8000

.PHONY: run test venv migrate seed worker web e2e browser check lint clean screenshots messages compilemessages i18n-check

# DEBUG defaults to off (production); the embedded set-up these targets start is a developer's
# machine, so they turn it on unless the environment already says.
run seed migrate check messages compilemessages i18n-check: export DEBUG ?= 1

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

## The translations (issue 24): .mo files compiled from the committed .po files, in pure Python
## (polib), so a fresh clone needs neither GNU gettext nor an extra step. Not committed.
compilemessages: $(VENV)/.installed
	@DEBUG=1 $(PY) manage.py compile_catalogues --stale

venv: $(VENV)/.installed compilemessages

## Re-extract the strings into locale/{es,ro}/LC_MESSAGES/django.po (needs GNU gettext's xgettext).
messages: venv
	$(PY) manage.py makemessages $$($(PY) -c 'from leadflow.catalogues import MAKEMESSAGES_OPTIONS as o; print(" ".join(o))')

## Fails on untranslated or fuzzy entries and on catalogues that are not up to date (.ci/run).
i18n-check: venv
	$(PY) manage.py check_catalogues

migrate: venv
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

## Start web + worker (with embedded beat) on the embedded default; Ctrl-C stops both.
run: seed
	PORT=$(PORT) PY=$(PY) bin/run

## The whole suite, on whatever DATABASE_URL / CELERY_BROKER_URL say (default: SQLite, eager Celery).
test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

## Inbox, lead page, all leads, dashboard and "my SQLs" at 1280 and 390 px on the demo data,
## saved to var/screenshots/ (headless Debian Chromium; not committed).
screenshots: venv
	LEADFLOW_SCREENSHOTS=1 $(PY) -m pytest tests/browser/test_screenshots.py -q -p no:cacheprovider

check: venv
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py check

## ruff (lint + format check), mypy (strict where pyproject.toml says), import-linter's layers.
## All four run even if one fails, so one pass shows everything; the target fails if any did.
lint: venv
	@status=0; \
	echo "+ ruff check"; $(VENV)/bin/ruff check --output-format concise . || status=1; \
	echo "+ ruff format --check"; $(VENV)/bin/ruff format --check --output-format concise . || status=1; \
	echo "+ mypy"; $(PY) -m mypy || status=1; \
	echo "+ lint-imports"; $(VENV)/bin/lint-imports || status=1; \
	exit $$status

clean:
	rm -rf var/ .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
