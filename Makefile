# QALITEL Host — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export QALITEL_INSTANCE_DIR ?= $(CURDIR)/instance

.PHONY: run test lint bench install clean-instance compile messages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# Translations: the .po is committed, the .mo is built here (messages: re-extract, update fr).
PO_FR := qalitel/translations/fr/LC_MESSAGES/messages.po
$(PO_FR:.po=.mo): $(PO_FR) $(STAMP)
	$(BIN)/pybabel compile -d qalitel/translations

compile: $(PO_FR:.po=.mo)

messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -o qalitel/translations/messages.pot --no-wrap .
	$(BIN)/pybabel update -i qalitel/translations/messages.pot -d qalitel/translations -l fr --no-wrap

# Served as in production: gunicorn with gunicorn.conf.py (one threaded worker on the
# in-memory throttle; set QALITEL_RATELIMIT_STORAGE_URI=redis://... for several).
run: $(STAMP) compile
	$(BIN)/qalitel demo
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

# The tests run on a throwaway PostgreSQL tuned for tests (tests/pgcluster.py; set
# QALITEL_TEST_PG_URL to use another server), in parallel processes (pytest-xdist).
PYTEST_WORKERS ?= auto
test: $(STAMP) compile
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m tests.pgcluster $(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

clean-instance:
	rm -rf instance
