# Two commands do everything: `make run` and `make test`. Each sets the project up on first use.
SHELL := /bin/bash
PYTHON := .venv/bin/python
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL ?= 2
ARGS ?=
PYTEST_ARGS ?=
# pytest-xdist workers; tests sharing a pipeline run stay on one worker, groups start in tests/conftest.py's order
# (longest first; xdist would otherwise start the groups with the most tests first). 0: one process.
TEST_WORKERS ?= 2
XDIST = -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

.PHONY: run notebook test lint unit e2e lock schemas benchmark benchmark-optfusion benchmark-embedding benchmark-serving benchmark-memory benchmark-training benchmark-search-memory clean

# The stamp is rewritten by setup.sh whenever requirements.lock or setup.py change.
.venv/.installed-lock: requirements.lock setup.py setup.sh
	./setup.sh

.venv: .venv/.installed-lock

run: .venv  ## the whole pipeline on the embedded default (synthetic Criteo-layout data); ARGS="..." passes flags
	$(PYTHON) local_runner.py $(ARGS)

# TensorFlow's native start-up lines (CUDA plug-ins on a CPU machine) stay out of a run's console (ARGS=--verbose:
# everything).
run: TF_CPP_MIN_LOG_LEVEL = $(if $(findstring --verbose,$(ARGS)),0,3)

notebook: .venv  ## the results notebook (notebooks/results.ipynb) on tfx_output/, or OUTPUT_DIR=<a run's --output-dir>
	FUSIONCTR_OUTPUT_DIR=$(abspath $(or $(OUTPUT_DIR),tfx_output)) .venv/bin/jupyter lab notebooks/results.ipynb

test: .venv  ## the full test suite; fails when no test ran
	$(PYTHON) -m pytest $(XDIST) $(PYTEST_ARGS)

lint: .venv  ## ruff (lint, import order), mypy (pyproject.toml) and hadolint (the pipeline image); .ci/run runs it first
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/hadolint kubeflow/Dockerfile

unit: .venv  ## only the fast tests (no pipeline runs)
	$(PYTHON) -m pytest -m "not e2e" $(XDIST) $(PYTEST_ARGS)

e2e: .venv
	$(PYTHON) -m pytest -m e2e $(XDIST) $(PYTEST_ARGS)

lock:  ## re-resolve requirements.in into requirements.lock (Python 3.10), and the image's CUDA libraries against it
	uv pip compile requirements.in --python-version 3.10 -o requirements.lock
	uv pip compile kubeflow/requirements-gpu.in -c requirements.lock --python-version 3.10 \
		--python-platform x86_64-manylinux_2_28 -o kubeflow/requirements-gpu.lock

schemas: .venv  ## regenerate the curated schemas in schemas/ from transform/features.py
	$(PYTHON) -m transform.curated_schema schemas

benchmark: .venv  ## ingestion scaling (ExampleGen + Transform at 10k, 100k, 1M rows) -> docs/benchmarks.md
	$(PYTHON) -m benchmarks.pipeline_scaling --rows 10000 100000 1000000

benchmark-optfusion: .venv  ## OptFusion search vs bare step, Hard retrain, serving at Criteo dimensions -> docs/benchmarks.md
	$(PYTHON) -m benchmarks.optfusion_throughput --l2-table 1000000

benchmark-embedding: .venv  ## dense vs lazy embedding update at 1M and 6.8M ids (search step, CPU) -> docs/benchmarks.md
	$(PYTHON) -m benchmarks.embedding_update

benchmark-serving: .venv  ## model server load test (DeepFM, OptFusion-Hard on the Criteo sample) -> docs/benchmarks.md
	$(PYTHON) -m benchmarks.serving_load

benchmark-search-memory: .venv  ## OptFusion search's peak RSS in a fresh process against the model state -> docs/benchmarks.md
	$(PYTHON) -m benchmarks.search_memory

benchmark-memory: .venv  ## RawLogExampleGen's peak RSS at 100k, 500k and 4.5M rows (1 GB of input) -> docs/benchmarks.md
	$(PYTHON) -m benchmarks.examplegen_memory

benchmark-training: .venv  ## training cost curves (DeepFM, OptFusion search + Hard retrain, GBDT, residual) at 10k, 100k, 1M rows -> docs/benchmarks.md
	$(PYTHON) -m benchmarks.training_cost --rows 10000 100000 1000000

clean:
	rm -rf tfx_output
