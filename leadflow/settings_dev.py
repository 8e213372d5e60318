"""The settings with DEBUG on unless the environment says otherwise: what tools that load
Django without a deployment behind them (mypy's django-stubs plugin) need, since
`leadflow.settings` defaults DEBUG to off and then requires a strong SECRET_KEY."""

import os

os.environ.setdefault("DEBUG", "1")

from leadflow.settings import *  # noqa: F403
