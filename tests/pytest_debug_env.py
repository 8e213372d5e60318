"""Loaded with `-p` (pyproject addopts) before pytest-django reads the settings: the suite runs
with DEBUG=1 unless the environment says otherwise, as `make run` does, because DEBUG now
defaults to off (issue 22) and the production defaults (HTTPS redirect, hashed static files,
a required SECRET_KEY) are not what the tests exercise."""

from __future__ import annotations

import os

os.environ.setdefault("DEBUG", "1")
