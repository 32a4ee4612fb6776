# The two front-door commands: `make run` (the main job) and `make test` (the test suite, as CI runs it).
PYTHON ?= python3
# The CPU build of torch, installed before the package so pip does not pull a multi-GB CUDA build.
# On a GPU machine: make run TORCH_SPEC="torch"
TORCH_SPEC ?= torch==2.13.0

# The core suite (model, processor, pipeline, trainer, data): what CI runs on the lowest versions setup.cfg claims,
# in an environment installed beforehand (test-core installs nothing).
CORE_TESTS = tests/test_modeling.py tests/test_processing.py tests/test_pipeline.py tests/test_trainer.py \
	tests/test_save_load.py tests/test_metrics.py tests/test_loading_keywords.py tests/test_data_kemdy.py \
	tests/test_data_folds.py tests/test_data_collator.py tests/test_data_sample.py tests/test_evaluate_metric.py

.PHONY: install install-test run test test-core bench

install:
	$(PYTHON) -m pip install --quiet "$(TORCH_SPEC)"
	$(PYTHON) -m pip install --quiet -e ".[prosody]"

install-test:
	$(PYTHON) -m pip install --quiet "$(TORCH_SPEC)"
	$(PYTHON) -m pip install --quiet -e ".[test,demo,onnx]"

run: install
	accelerate launch examples/run_emotion.py $(ARGS)

test: install-test
	HF_HUB_OFFLINE=1 $(PYTHON) -m pytest -q -n auto --dist loadfile

test-core:
	HF_HUB_OFFLINE=1 $(PYTHON) -m pytest -q -n auto --dist loadfile $(CORE_TESTS)
