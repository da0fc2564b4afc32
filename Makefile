# `make repro`: set up and run the whole pipeline on the embedded default (digits demo).
# `make test`:  set up and run the test suite.
# `make server`: team mode's MLflow tracking server (README: Team mode).
# Each creates .venv from the pinned lock on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN := PATH="$(abspath $(BIN)):$$PATH"

.PHONY: setup repro test examples ui server lock clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

repro: $(STAMP)
	$(RUN) dvc repro
	$(RUN) dvc metrics show

test: $(STAMP)
	$(RUN) python -m pytest -n auto --dist loadfile

# The "Bring your own model" examples' data and models (README), in examples/.
examples: $(STAMP)
	$(RUN) python examples/make_examples.py

# The MLflow UI on the project's store, on this machine only; it prints the experiment's link.
ui: $(STAMP)
	$(RUN) retrainlab ui

# Team mode: an MLflow tracking server on PostgreSQL ($MLFLOW_BACKEND_STORE_URI, else a
# throwaway one in .retrainlab/postgres/) that serves the artifacts, on this machine only.
server: $(STAMP)
	$(RUN) retrainlab server

# Re-pin every installed package after changing pyproject.toml's dependencies.
lock: $(STAMP)
	$(BIN)/pip freeze --exclude-editable | grep -v '^retrainlab' > requirements.lock

clean:
	rm -rf $(VENV)
