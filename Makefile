# The two front-door commands: `make run` (the main job) and `make test` (the test suite, as CI runs it).
PYTHON ?= python3
# The CPU build of torch, installed before the package so pip does not pull a multi-GB CUDA build.
# On a GPU machine: make run TORCH_SPEC="torch"
TORCH_SPEC ?= torch==2.13.0

.PHONY: install install-test run test bench

install:
	$(PYTHON) -m pip install --quiet "$(TORCH_SPEC)"
	$(PYTHON) -m pip install --quiet -e .

install-test:
	$(PYTHON) -m pip install --quiet "$(TORCH_SPEC)"
	$(PYTHON) -m pip install --quiet -e ".[test,demo,onnx]"

run: install
	accelerate launch examples/run_emotion.py $(ARGS)

test: install-test
	HF_HUB_OFFLINE=1 $(PYTHON) -m pytest -q -n auto --dist loadfile
