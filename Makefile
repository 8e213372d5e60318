# LeadFlow — `make run` to try it, `make test` to check it. See README.md.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PORT   ?= 8000

.PHONY: run test venv migrate seed worker web e2e browser check clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed

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

check: venv
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py check

clean:
	rm -rf var/ .pytest_cache
