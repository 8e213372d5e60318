"""The settings with DEBUG on unless the environment says otherwise, for a developer's machine:
the test suite (pyproject's DJANGO_SETTINGS_MODULE) and mypy's django-stubs plugin load these.
`leadflow.settings` defaults DEBUG to off and then requires a strong SECRET_KEY; processes the
suite starts (a Celery worker, a server) inherit DEBUG=1 through the environment."""

import os

os.environ.setdefault("DEBUG", "1")

from leadflow.settings import *  # noqa: F403
