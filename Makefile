# The README's two commands: `make demo` and `make test`. Each creates .venv when missing.
SHELL := /bin/bash
PYTHON ?= $(shell scripts/find-python)
VENV := .venv
BIN := $(VENV)/bin
DEMO_EXTRAS := load,lab
TEST_EXTRAS := dev,load,lab,kubernetes,sagemaker,s3,postgres
PYTEST_ARGS ?=

.PHONY: demo test test-fast lint docs screenshots clean down seldon-env kfp-env

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "error: no Python 3.12 found (see scripts/find-python)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[$(DEMO_EXTRAS)]"
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[$(TEST_EXTRAS)]"
	@touch $@ $(VENV)/.installed-demo

## demo: run the whole pipeline on the embedded default (mlops.yaml; state in .mlops/, reports in build/)
# Staging is load-tested before the review (the verdict joins the request's evidence); alice
# requests the promotion, bob approves it headlessly, signed with his demo key (two labelled
# demo keys in .mlops/keys, listed in the GitOps repo's allowed_signers); production is
# load-tested after the rollout.
demo: $(VENV)/.installed-demo
	$(BIN)/mlops-kit signers demo alice bob --as demo
	MLOPS_KIT_ACTOR=alice $(BIN)/mlops-kit run 01 02 04 03 \
		-p approve=true -p approver=bob -p comment="approved by make demo" \
		-p signing_key=$(CURDIR)/.mlops/keys/bob.demo-key
	$(BIN)/mlops-kit run 04 -p environment=production \
		-o build/notebooks/production

## seldon-env: the seldon-core environment of the custom flavour (tests make it when missing)
seldon-env: $(VENV)/.installed-test
	$(BIN)/python -c 'from mlops_kit.serving.seldon import ensure_seldon_env as e; print(e(".venv-seldon"))'

## kfp-env: an environment with kfp, to compile schedules for Kubeflow Pipelines (kfp pins
#   kubernetes<31, so it never shares .venv; point schedule.kfp_python at .venv-kfp/bin/python)
kfp-env: .venv-kfp/bin/python

.venv-kfp/bin/python:
	$(PYTHON) -m venv .venv-kfp
	.venv-kfp/bin/python -m pip install --quiet 'kfp>=2.9,<3'

## test: run every test (the log ends with the 25 slowest)
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest --durations=25 $(PYTEST_ARGS)

## test-fast: the unit tests only (no servers, kernels or browser), for the edit loop
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

## lint: ruff + mypy on the library
lint: $(VENV)/.installed-test
	$(BIN)/ruff check mlops_kit tests benchmarks
	$(BIN)/ruff format --check mlops_kit tests benchmarks
	$(BIN)/mypy

## docs: regenerate docs/configuration.md from the settings (mlops_kit/settings.py)
#   and images/pipeline.svg from the stage list (mlops_kit/stages.py)
docs: $(VENV)/.installed-demo
	$(BIN)/python -m mlops_kit.settings_docs docs/configuration.md
	$(BIN)/python -m mlops_kit.diagram images/pipeline.svg

## screenshots: retake the README's screenshots in images/ (the browser test, headless Chromium)
screenshots: $(VENV)/.installed-test
	MLOPS_KIT_SCREENSHOTS=images $(BIN)/python -m pytest -q tests/notebook/test_browser.py

## down: stop every server the demo started
down: $(VENV)/.installed-demo
	$(BIN)/mlops-kit down

## clean: stop servers, remove state, reports and the virtual environment
clean:
	-test -x $(BIN)/mlops-kit && $(BIN)/mlops-kit down
	rm -rf .mlops build $(VENV) .venv-seldon .venv-kfp .pytest_cache .mypy_cache .ruff_cache
