# Two commands: `make demo` (the whole pipeline on the sample data) and `make test`.
# Both create a virtual environment in .venv unless one is already active.

ifdef VIRTUAL_ENV
VENV := $(VIRTUAL_ENV)
else
VENV := .venv
endif
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.cpvton-installed

# The demo's schedule, sized for a 2-core CPU (override: make demo GMM_STEPS=600 ...).
# Measured on the default sample set at batch 4: lr 3e-4 beat 1e-4 and 1e-3 for both stages;
# the GMM's warped-mask IoU reaches ~0.79 after 300 steps (identity warp: 0.52), see README.
GMM_STEPS ?= 300
TOM_STEPS ?= 200
DEMO_LR ?= 3e-4
DEMO_BATCH ?= 4
DEMO_WORKERS ?= 1
DEMO_ENV = PYTHON=$(PYTHON) BATCH_SIZE=$(DEMO_BATCH) WORKERS=$(DEMO_WORKERS) DECAY_STEP=0 PERCEPTUAL=none
# make demo PRETRAINED=1: test with checkpoints/{gmm,tom}_train_new/*_final.pth where present
# (e.g. from `python data_download.py --checkpoints`) instead of training that stage.
PRETRAINED ?= 0
pretrained = $(and $(filter 1,$(PRETRAINED)),$(wildcard checkpoints/$(1)_train_new/$(1)_final.pth))

.PHONY: help install test demo

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
	$(if $(call pretrained,gmm),@echo "PRETRAINED=1: using $(call pretrained,gmm)",$(DEMO_ENV) KEEP_STEP=$(GMM_STEPS) SAVE_COUNT=$(GMM_STEPS) EXTRA_ARGS="--lr $(DEMO_LR)" bash step1-train-gmm.sh)
	$(DEMO_ENV) bash step2-test-gmm.sh
	$(DEMO_ENV) bash step3-generate-tom-data.sh
	$(if $(call pretrained,tom),@echo "PRETRAINED=1: using $(call pretrained,tom)",$(DEMO_ENV) KEEP_STEP=$(TOM_STEPS) SAVE_COUNT=$(TOM_STEPS) EXTRA_ARGS="--lr $(DEMO_LR)" bash step4-train-tom.sh)
	$(DEMO_ENV) bash step5-test-tom.sh
	$(PYTHON) smart_show_test_result.py
	# Evaluation on the same-clothes pairs (each test person with her own garment), in result/same/:
	# the TOM reads that list's warps from data/test/, so the unpaired ones are put back afterwards.
	$(DEMO_ENV) DATA_LIST_TEST=test_pairs_same.txt EXTRA_ARGS="--result_dir result/same" bash step2-test-gmm.sh
	cp -R result/same/gmm_final.pth/test/warp-cloth result/same/gmm_final.pth/test/warp-mask data/test/
	$(DEMO_ENV) DATA_LIST_TEST=test_pairs_same.txt EXTRA_ARGS="--result_dir result/same" bash step5-test-tom.sh
	cp -R result/gmm_final.pth/test/warp-cloth result/gmm_final.pth/test/warp-mask data/test/
	$(PYTHON) evaluate.py --result_dir result/same --data_list test_pairs_same.txt
	@echo
	@echo "Strips:      result_simple/index.html"
	@echo "Metrics:     result/same/*/test/metrics.json"
	@echo "TensorBoard: $(PYTHON) -m tensorboard.main --logdir tensorboard"
