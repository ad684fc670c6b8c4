# Two commands: `make demo` (the whole pipeline on the sample data) and `make test`.
# Both create a virtual environment in .venv unless one is already active.

ifdef VIRTUAL_ENV
VENV := $(VIRTUAL_ENV)
else
VENV := .venv
endif
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.cpvton-installed

# The demo's schedule, sized for a 2-core CPU (override on the command line: make demo GMM_STEPS=...).
GMM_STEPS ?= 300
TOM_STEPS ?= 300
DEMO_BATCH ?= 4
DEMO_WORKERS ?= 2

.PHONY: help install test demo clean-demo

help:
	@echo "make demo   set up .venv, write the sample dataset, run steps 1-5, strips, evaluation"
	@echo "make test   set up .venv and run the test suite"

$(INSTALLED): requirements.txt requirements-dev.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -r requirements-dev.txt
	touch $@

install: $(INSTALLED)

test: $(INSTALLED)
	$(PYTHON) -m pytest

demo: $(INSTALLED)
	$(PYTHON) data_download.py --sample
	PYTHON=$(PYTHON) KEEP_STEP=$(GMM_STEPS) DECAY_STEP=0 SAVE_COUNT=$(GMM_STEPS) BATCH_SIZE=$(DEMO_BATCH) WORKERS=$(DEMO_WORKERS) bash step1-train-gmm.sh
	PYTHON=$(PYTHON) WORKERS=$(DEMO_WORKERS) bash step2-test-gmm.sh
	PYTHON=$(PYTHON) WORKERS=$(DEMO_WORKERS) bash step3-generate-tom-data.sh
	PYTHON=$(PYTHON) KEEP_STEP=$(TOM_STEPS) DECAY_STEP=0 SAVE_COUNT=$(TOM_STEPS) BATCH_SIZE=$(DEMO_BATCH) WORKERS=$(DEMO_WORKERS) PERCEPTUAL=none bash step4-train-tom.sh
	PYTHON=$(PYTHON) WORKERS=$(DEMO_WORKERS) bash step5-test-tom.sh
	$(PYTHON) smart_show_test_result.py
	@echo
	@echo "Strips:      result_simple/index.html"
	@echo "TensorBoard: $(PYTHON) -m tensorboard.main --logdir tensorboard"
