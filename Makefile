# One target per habit. `make demo` runs the platform locally; `make test` runs the tests.
# Everything installs itself on first use (a fresh clone needs only python3.11, make and Java 17 for Spark).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
SAM_VERSION := 1.170.0
CHECKOV_VERSION := 3.3.30
PYTEST_ARGS ?=

# Keep SAM CLI and botocore local: no telemetry, no metadata-service probes.
export SAM_CLI_TELEMETRY := 0
export AWS_EC2_METADATA_DISABLED := true
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: help install tools wheels demo bench-models lint format typecheck test test-unit test-integration test-infra test-reliability \
        test-e2e bench build validate sample-models diagram dq-artifacts clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(BIN)/dqp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	# torch is pinned in pyproject (2.13.0, CPU): never let a resolver pick a CUDA build.
	$(BIN)/pip install --quiet -e ".[serve,spark,train,dev]"
	touch $@

$(SAM_VENV)/bin/sam:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet "aws-sam-cli==$(SAM_VERSION)"

$(CHECKOV_VENV)/bin/checkov:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet "checkov==$(CHECKOV_VERSION)"

install: $(BIN)/dqp tools ## create .venv with the package, CLI `dqp` and dev tools
tools: $(SAM_VENV)/bin/sam $(CHECKOV_VENV)/bin/checkov ## SAM CLI and checkov in their own venvs (their pins clash with ours)

# Every wheelhouse a Lambda build installs from: the domain layer's and each image function's. fetch-wheels.sh
# downloads Lambda wheels (CPython 3.13, manylinux up to Amazon Linux 2023's glibc 2.34: tools/lambda_platform.py)
# into a fresh folder and leaves a stamp of requirements + flags.
IMAGE_FUNCTIONS := $(patsubst %/Dockerfile,%,$(wildcard functions/*/Dockerfile))
WHEELHOUSES := build/wheels/layer/.fetched-from $(addsuffix /wheels/.fetched-from,$(IMAGE_FUNCTIONS))
WHEEL_INPUTS := tools/lambda_platform.py tools/sam-local/fetch-wheels.sh

build/wheels/layer/.fetched-from: layers/domain/requirements.txt $(WHEEL_INPUTS) | $(SAM_VENV)/bin/sam
	tools/sam-local/fetch-wheels.sh layers/domain build/wheels/layer

functions/%/wheels/.fetched-from: functions/%/requirements.txt $(WHEEL_INPUTS) | $(SAM_VENV)/bin/sam
	tools/sam-local/fetch-wheels.sh functions/$*

wheels: $(WHEELHOUSES) ## pre-download the Lambda wheels (layer + image functions) so `sam build` needs no network

ENGINE ?= duckdb
demo: install ## the whole platform locally: data, DQ pipeline, training, explanations, API (Ctrl-C stops)
	$(BIN)/dqp demo --engine $(ENGINE)

build/models/transformer/manifest.json:
	$(MAKE) install
	$(BIN)/dqp train --sample --out build/models

# The same training writes the baseline; named here so `make build`'s inputs are each made by a target.
build/models/baseline/manifest.json: build/models/transformer/manifest.json
	@test -f $@ || { echo "$@ is missing next to the transformer: rm -rf build/models and rerun" >&2; exit 1; }

sample-models: build/models/transformer/manifest.json build/models/baseline/manifest.json ## real baseline + MiniLM trained on generated sample clauses (build/models)

# The models benchmark compares the served graphs with fp32 and a torch pipeline, so its copy of the sample
# models keeps the fp32 graph and the torch checkpoint that the image's build/models leaves out.
build/bench-models/transformer/manifest.json:
	$(MAKE) install
	$(BIN)/dqp train --sample --keep-checkpoint --keep-fp32 --out build/bench-models

bench-models: build/bench-models/transformer/manifest.json ## sample models with fp32 graph + torch checkpoint (build/bench-models)

BENCH_ROWS ?= 1000000
BENCH_SCALE ?= 100000,5000000
BENCH_REPEAT ?= 3
bench: install sample-models bench-models ## benchmarks (print numbers): DQ engines vs GE, model latency/cold start, API cost
	$(BIN)/pip install --quiet "great-expectations==1.24.1"
	$(BIN)/python benchmarks/dq_bench.py --rows $(BENCH_ROWS) --scale $(BENCH_SCALE) --repeat $(BENCH_REPEAT)
	$(BIN)/python benchmarks/models_bench.py --models build/bench-models
	$(BIN)/python benchmarks/inference_bench.py

lint: install ## ruff check (McCabe complexity <= 15 included), ruff format --check, mypy (package, functions, benchmarks, tools)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: install wheels ## every tier that runs without Docker: unit, integration, infra
	$(BIN)/pytest -m "not e2e" $(PYTEST_ARGS)

test-unit: install ## fast in-process tests of domain logic
	$(BIN)/pytest -m unit $(PYTEST_ARGS)

test-integration: install ## real local parts: moto server, DuckDB, local Spark, ONNX Runtime, trained models
	$(BIN)/pytest -m integration $(PYTEST_ARGS)

test-reliability: install ## fuzzing, bad input, privacy canary, faults, load (sizes: DQP_FUZZ_EXAMPLES, DQP_LOAD_REQUESTS)
	$(BIN)/pytest -m reliability $(PYTEST_ARGS)

test-infra: install wheels ## cfn-lint, sam validate --lint, checkov and template property tests
	$(BIN)/pytest -m infra $(PYTEST_ARGS)

test-e2e: install wheels sample-models ## sam build + sam local invoke/start-api on a real Docker engine (installs docker.io if missing)
	$(BIN)/pytest -m e2e tests/e2e $(PYTEST_ARGS)

validate: tools ## lint every template (sam validate does not descend into nested ones)
	for t in template.yaml stacks/*.yaml; do $(SAM_VENV)/bin/sam validate --lint -t $$t || exit 1; done

# The models `make build` bakes into the inference image (build/models): `make build MODELS=<dir>` copies a
# `dqp train` output there first; without MODELS, the sample models (trained once, kept).
MODELS ?=
.PHONY: models
ifeq ($(strip $(MODELS)),)
models: sample-models
else
models:
	@test -f "$(MODELS)/baseline/manifest.json" -a -f "$(MODELS)/transformer/manifest.json" \
	  || { echo "MODELS=$(MODELS) holds no baseline/ and transformer/ (a dqp train output)" >&2; exit 2; }
	@if [ "$$(realpath "$(MODELS)")" != "$$(realpath -m build/models)" ]; then \
	  rm -rf build/models/baseline build/models/transformer && mkdir -p build/models \
	  && cp -R "$(MODELS)/baseline" "$(MODELS)/transformer" build/models/ \
	  && echo "build/models: baseline and transformer from $(MODELS)"; fi
endif

# Deploy build: the wheels and models the Dockerfiles COPY, then `sam build` of template.yaml into .aws-sam/build.
# check-deploy-images.sh fails before the build when a stand-in carries a public registry name on this
# machine, and after it when a built image descends from the local stand-in (docs/sam-local.md).
build: tools wheels models ## everything the images need, then sam build (needs Docker for the image functions)
	tools/check-deploy-images.sh
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" sam build
	tools/check-deploy-images.sh .aws-sam/build

diagram: install ## render docs/architecture/architecture.png from its source (needs graphviz: apt-get install graphviz)
	$(BIN)/pip install --quiet "diagrams==0.25.1"
	cd docs/architecture && $(CURDIR)/$(BIN)/python architecture.py

dq-artifacts: install ## upload the Glue job, dq_platform zip and rulesets: make dq-artifacts ARTIFACTS=s3://<analytics>/artifacts/dq/
	@test -n "$(ARTIFACTS)" || { echo "set ARTIFACTS to the DataQualityArtifactsLocation stack output" >&2; exit 2; }
	$(BIN)/python tools/upload_dq_artifacts.py "$(ARTIFACTS)"

clean: ## remove build outputs (keeps the virtualenvs)
	rm -rf build .aws-sam .pytest_cache .mypy_cache .ruff_cache

# `make deploy`: the first deploy and every update (docs/deploy.md). `make build` puts the models in
# build/models (MODELS=<dqp train output>, or the sample models) and the deploy publishes those same models;
# the billing environment deploys only stacks/billing.yaml (no images). YES=1 deploys without asking.
CONFIG_ENV ?= default
.PHONY: deploy
deploy: $(if $(filter billing,$(CONFIG_ENV)),install tools,build) ## deploy to AWS: sam deploy, Glue artifacts, models (LATEST), smoke test (CONFIG_ENV=prod|billing)
	$(BIN)/python tools/deploy.py --config-env $(CONFIG_ENV) --models build/models $(if $(YES),--yes,)
