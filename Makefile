# `make repro`: set up and run the whole pipeline on the embedded default (digits demo).
# `make test`:  set up and run the test suite.
# `make test-fast`: the suite without its end-to-end tests (-m "not integration"), for the inner loop.
# `make server`: team mode's MLflow tracking server (README: Team mode).
# `make setup-ray`: the Ray engine's packages as well (README: Several machines); `make test` needs them.
# `make mutation`: mutation testing of the pure core (docs/TESTING.md); not part of `make test`.
# `make derived`: rewrite what the strategies' declarations decide in MLproject, dvc.yaml and the docs.
# Each creates .venv from the pinned lock on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN := PATH="$(abspath $(BIN)):$$PATH"

.PHONY: setup setup-ray repro test test-fast mutation derived examples ui server lock clean

# `dvc plots show` draws offline from this page (vega inline; .dvc/config.local points DVC at it).
PLOTS_PAGE := .retrainlab/plots-page.html

setup: $(STAMP) $(PLOTS_PAGE)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# Ray, an optional dependency, pinned apart (requirements-ray.lock) on top of requirements.lock.
RAY_STAMP := $(VENV)/.ray-installed

setup-ray: $(RAY_STAMP)

$(RAY_STAMP): $(STAMP) requirements-ray.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -r requirements-ray.lock
	touch $@

$(PLOTS_PAGE): $(STAMP)
	$(RUN) retrainlab offline-plots

repro: $(STAMP)
	$(RUN) dvc repro
	$(RUN) dvc metrics show

# A worker per core; each test file in one worker, handed out in the suite's own order (the
# end-to-end files first: tests/conftest.py); the slowest tests' times at the end.
PYTEST := $(RUN) python -m pytest -n auto --dist loadfile --no-loadscope-reorder

test: $(RAY_STAMP)
	$(PYTEST) --durations=25

test-fast: $(RAY_STAMP)
	$(PYTEST) -m "not integration" --durations=10

# mutmut (pinned in requirements-mutation.lock) on the modules pyproject.toml's [tool.mutmut]
# lists, against their fast unit tests; then the score per module. A fresh run each time.
# MODULES="decision.comparison training.cost" (dotted below retrainlab, as pyproject.toml lists them)
# runs those modules' mutants only; MUTATION_JOBS sets how many run at once (default: CPUs).
MODULES ?=
MUTATION_JOBS ?=
MUTATION_STAMP := $(VENV)/.mutation-installed

$(MUTATION_STAMP): $(STAMP) requirements-mutation.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -r requirements-mutation.lock
	touch $@

mutation: $(MUTATION_STAMP)
	rm -rf mutants
	$(RUN) python -m mutmut run $(if $(MUTATION_JOBS),--max-children $(MUTATION_JOBS)) \
		$(foreach module,$(MODULES),"retrainlab.$(module).*")
	$(RUN) python scripts/mutation_score.py

# After adding or changing a strategy (src/retrainlab/strategies/): MLproject's entry points,
# dvc.yaml's artifacts and the strategy tables of README.md and docs/STRATEGIES.md.
derived: $(STAMP)
	$(RUN) python scripts/derive.py

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

# Re-pin every installed package after changing pyproject.toml's dependencies (the Ray
# engine's stay in requirements-ray.lock).
lock: $(STAMP)
	$(BIN)/pip freeze --exclude-editable | grep -v '^retrainlab' | grep -v -x -F -f requirements-ray.lock > requirements.lock

clean:
	rm -rf $(VENV)
