# Two commands on a fresh machine (Python 3.11, registry access):
#   make run   -> set up .venv and run the main job (the pipeline, locally, on real ml-100k)
#   make test  -> set up .venv and run lint + the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_EPOCHS ?= 5
RUN_SEEDS ?= 2
RUN_MODELS ?= mf,ncf,sasrec,din,lr-recsys-noexp
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF

.PHONY: setup run refresh serve compare tune study test lint services bench serve-bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU torch first, from local disk: an unpinned torch would pull multi-GB CUDA wheels
	$(BIN)/pip install --quiet torch==2.13.0
	# llama.cpp is compiled here (~6 min on 2 cores, cached by pip afterwards). Portable x86-64
	# flags: a -march=native build enables AMX/AVX-512 kernels that crash in VMs without AMX state.
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# the main job: the KFP pipeline, run locally on the full ml-100k with the embedded defaults
# (ingest+validate -> LLM explanations for the budgeted pairs -> AutoEncoder -> distilled
# explainer for every other pair -> Feast -> train + evaluate with the tuned settings -> register
# + promote)
RUN_LLM_PAIRS ?= 1000
RUN_PIPELINE_SEEDS ?= 0
RUN_SERVING_USERS ?= 25
run: setup
	$(BIN)/lr-recsys pipeline run --local --pipeline-root runs/pipeline \
		--param llm_pairs=$(RUN_LLM_PAIRS) --param seeds=$(RUN_PIPELINE_SEEDS) \
		--param tuned_config=configs/tuned/ml-100k.toml --param serving_users=$(RUN_SERVING_USERS)

# incremental refresh: interactions newer than the store's watermark (none for the static
# ml-100k: see benchmarks/refresh_time.py for a replay), the explain queue, fine-tune, promote
refresh: setup
	$(BIN)/lr-recsys pipeline run --local --pipeline refresh --pipeline-root runs/pipeline \
		--param tuned_config=configs/tuned/ml-100k.toml --param serving_users=$(RUN_SERVING_USERS)

# the ranking API (Ray Serve, loopback) over the main job's champion and online features
serve: setup
	$(BIN)/lr-recsys serve

# the model comparison on the full ml-100k (baselines and the no-explanation twin)
compare: setup
	$(BIN)/lr-recsys compare --dataset ml-100k --models $(RUN_MODELS) \
		--tasks regression,classification --seeds $(RUN_SEEDS) --epochs $(RUN_EPOCHS) \
		--out runs/compare/results.json

# hyperparameter search per model and task on Ray Tune (resumable: rerun to continue)
tune: setup
	$(BIN)/lr-recsys tune --dataset ml-100k --models $(RUN_MODELS) \
		--tasks regression,classification --trials 16 --max-epochs 30 --time-budget-min 8 \
		--out configs/tuned/ml-100k.toml --storage runs/tune

# the analysis report on full ml-100k (tuned, 5 seeds): the comparison, ablations, learning
# curve, prompt variants, attention, per-item insights, uncertainty vs gain -> HTML + md + JSON in
# benchmarks/results/report_ml100k (resumable: rerun to continue a stopped study)
study: setup
	$(BIN)/lr-recsys study --config benchmarks/study_ml100k_report.toml

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# the Redis online-store tests start a real redis-server on loopback (Debian package)
services:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get install -y -q redis-server >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q redis-server >/dev/null; }; }

test: setup lint services
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/train_throughput.py

# serving benchmarks (after `make run`): latency vs a no-op twin, served-text coverage, and the
# overload sweep with wrk (a Debian package, installed here like redis-server)
serve-bench: setup
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get install -y -q wrk >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q wrk >/dev/null; }; }
	$(BIN)/python benchmarks/serve_latency.py
	$(BIN)/python benchmarks/served_coverage.py --serving-users $(RUN_SERVING_USERS)
	$(BIN)/python benchmarks/serve_load.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
