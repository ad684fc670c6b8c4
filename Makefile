# Two commands: `make demo` (the whole pipeline on the sample data) and `make test`.
# Both create a virtual environment in .venv unless one is already active.
# `make demo DATASET=vitonhd` and `make demo DATASET=dresscode CATEGORY=lower_body` run the demo on a
# sample set in the layout of VITON-HD or of Dress Code (one category), in that dataset's folders.

ifdef VIRTUAL_ENV
VENV := $(VIRTUAL_ENV)
else
VENV := .venv
endif
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.cpvton-installed

# The demo's schedule, sized for a 2-core CPU (override: make demo GMM_KEEP=600 ...): each stage
# trains KEEP steps at its LR, then DECAY steps with the rate falling linearly to 0 (the original's
# schedule, shortened). DEMO_PRECISION=auto trains in bf16 autocast where the CPU (or GPU) runs bf16
# natively (about 2x faster on a CPU with AMX), else in float32. On the default sample set (256
# train and 64 test persons) the GMM's warped-mask IoU reaches 0.884-0.889 (identity warp: 0.53): see
# docs/experiments.md. The TOM learns more per second at batch 2 than at 4; the GMM (BatchNorm)
# needs batch 4. The TOM trains in the channels_last layout (about 25% faster on such a CPU; the
# GMM is not faster in it).
GMM_KEEP ?= 300
GMM_DECAY ?= 300
GMM_BATCH ?= 4
TOM_KEEP ?= 300
TOM_DECAY ?= 300
TOM_BATCH ?= 2
GMM_LR ?= 3e-4
# VARIANT=cpvton+ runs CP-VTON+ instead (its data, networks and losses, including its own grid
# interval consistency loss) on the same sample set and schedule; its checkpoints go to
# checkpoints/*_train_plus/, its results to result_plus/ and its strips to result_simple_plus/.
VARIANT ?= cpvton
# DATASET=vitonhd or DATASET=dresscode (CATEGORY=upper_body, lower_body or dresses): the sample set in
# that dataset's layout (data/zalando-hd-resized/, data/DressCode/<category>/), its checkpoints in
# checkpoints/*_train_vitonhd/ or *_train_dresscode_<category>/, its results in result_vitonhd/ or
# result_dresscode_<category>/, its strips in result_simple_vitonhd/ or result_simple_dresscode_<category>/.
DATASET ?= viton
CATEGORY ?= upper_body
# FINE_HEIGHT/FINE_WIDTH (VITON-HD, Dress Code; multiples of 64): the size the demo runs at, part of
# the run's name when not 256x192 (vitonhd_512x384), as in scripts/common.sh.
FINE_HEIGHT ?= 256
FINE_WIDTH ?= 192
AT_SIZE := $(if $(filter 256x192,$(FINE_HEIGHT)x$(FINE_WIDTH)),,_$(FINE_HEIGHT)x$(FINE_WIDTH))
# The grid spacing regulariser on the GMM's warp (--grid_reg; in neither paper, train.py's default is
# 0): without it CP-VTON's warp folds inside the garment and prints swirl. 100 fits the inside of the
# garments better than 40 in every run compared (3 seeds in bf16, and float32: docs/experiments.md).
# CP-VTON+ brings its own grid term, so its demo runs without this one.
GMM_GRID_REG ?= $(if $(filter cpvton+,$(VARIANT)),0,100)
TOM_LR ?= 3e-4
DEMO_WORKERS ?= 0
DEMO_PRECISION ?= $(or $(DEMO_AMP),auto)
# Per dataset (as scripts/common.sh): the run's name and folders, where the TOM reads the test warps,
# the same-clothes list; for VITON the commands name no dataset, as before.
ifeq ($(DATASET),vitonhd)
RUN := vitonhd$(AT_SIZE)
TEST_DIR := data/zalando-hd-resized/test
SAME_LIST := test_pairs_same.txt
else ifeq ($(DATASET),dresscode)
RUN := dresscode_$(CATEGORY)$(AT_SIZE)
TEST_DIR := data/DressCode/$(CATEGORY)
SAME_LIST := test_pairs_paired.txt
else
RUN := $(if $(filter cpvton+,$(VARIANT)),plus,new)
TEST_DIR := data/test
SAME_LIST := test_pairs_same.txt
endif
SUFFIX := $(if $(filter new,$(RUN)),,_$(RUN))
RESULTS := result$(SUFFIX)
STRIPS := result_simple$(SUFFIX)
SIZE_ENV := $(if $(AT_SIZE), FINE_HEIGHT=$(FINE_HEIGHT) FINE_WIDTH=$(FINE_WIDTH))
SIZE_OPTS := $(if $(AT_SIZE), --fine_height $(FINE_HEIGHT) --fine_width $(FINE_WIDTH))
DATA_ENV := $(if $(filter viton,$(DATASET)),,DATASET=$(DATASET) CATEGORY=$(CATEGORY)$(SIZE_ENV))
DATA_OPTS := $(if $(filter viton,$(DATASET)),,--dataset $(DATASET)$(if $(filter dresscode,$(DATASET)), --category $(CATEGORY)))
DEMO_ENV = PYTHON=$(PYTHON) WORKERS=$(DEMO_WORKERS) PERCEPTUAL=none VARIANT=$(VARIANT)$(if $(DATA_ENV), $(DATA_ENV))
# make demo PRETRAINED=1: test with checkpoints/{gmm,tom}_train_<run>/*_final.pth (new: CP-VTON on VITON)
# (e.g. from `python data_download.py --checkpoints`) instead of training that stage.
PRETRAINED ?= 0
pretrained = $(and $(filter 1,$(PRETRAINED)),$(wildcard checkpoints/$(1)_train_$(RUN)/$(1)_final.pth))

.PHONY: help install test demo

help:
	@echo "make demo   set up .venv, write the sample dataset, run steps 1-5, strips, evaluation"
	@echo "            (DATASET=vitonhd, or DATASET=dresscode CATEGORY=upper_body|lower_body|dresses:"
	@echo "            the same on a sample set in that dataset's layout)"
	@echo "make test   set up .venv and run the test suite"

$(INSTALLED): requirements.txt requirements-dev.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -r requirements-dev.txt
	touch $@

install: $(INSTALLED)

test: $(INSTALLED)
	$(PYTHON) -m pytest

demo: $(INSTALLED)
	$(if $(filter viton vitonhd dresscode,$(DATASET)),,$(error DATASET=$(DATASET): expected viton, vitonhd or dresscode))
	$(if $(filter dresscode,$(DATASET)),$(if $(filter upper_body lower_body dresses,$(CATEGORY)),,$(error CATEGORY=$(CATEGORY): expected upper_body, lower_body or dresses)))
	$(PYTHON) data_download.py --sample$(if $(DATA_ENV), --dataset $(DATASET))
	$(if $(call pretrained,gmm),@echo "PRETRAINED=1: using $(call pretrained,gmm)",$(DEMO_ENV) BATCH_SIZE=$(GMM_BATCH) PRECISION=$(DEMO_PRECISION) KEEP_STEP=$(GMM_KEEP) DECAY_STEP=$(GMM_DECAY) SAVE_COUNT=$(GMM_KEEP) EXTRA_ARGS="--lr $(GMM_LR) --grid_reg $(GMM_GRID_REG)" bash step1-train-gmm.sh)
	$(DEMO_ENV) bash step2-test-gmm.sh
	$(DEMO_ENV) bash step3-generate-tom-data.sh
	$(if $(call pretrained,tom),@echo "PRETRAINED=1: using $(call pretrained,tom)",$(DEMO_ENV) BATCH_SIZE=$(TOM_BATCH) PRECISION=$(DEMO_PRECISION) KEEP_STEP=$(TOM_KEEP) DECAY_STEP=$(TOM_DECAY) SAVE_COUNT=$(TOM_KEEP) EXTRA_ARGS="--lr $(TOM_LR) --channels_last 1" bash step4-train-tom.sh)
	$(DEMO_ENV) bash step5-test-tom.sh
	$(PYTHON) smart_show_test_result.py --variant $(VARIANT) --result_dir $(RESULTS) --out $(STRIPS)$(if $(DATA_OPTS), $(DATA_OPTS))
	# Evaluation on the same-clothes pairs (each test person with her own garment), in $(RESULTS)/same/:
	# the TOM reads that list's warps from $(TEST_DIR)/, so the unpaired ones are put back afterwards.
	$(DEMO_ENV) DATA_LIST_TEST=$(SAME_LIST) EXTRA_ARGS="--result_dir $(RESULTS)/same" bash step2-test-gmm.sh
	cp -R $(RESULTS)/same/gmm_final.pth/test/warp-cloth $(RESULTS)/same/gmm_final.pth/test/warp-mask $(TEST_DIR)/
	$(DEMO_ENV) DATA_LIST_TEST=$(SAME_LIST) EXTRA_ARGS="--result_dir $(RESULTS)/same" bash step5-test-tom.sh
	cp -R $(RESULTS)/gmm_final.pth/test/warp-cloth $(RESULTS)/gmm_final.pth/test/warp-mask $(TEST_DIR)/
	$(PYTHON) evaluate.py --variant $(VARIANT) --result_dir $(RESULTS)/same --data_list $(SAME_LIST)$(if $(DATA_OPTS), $(DATA_OPTS))$(if $(DATA_OPTS),$(SIZE_OPTS))
	@echo
	@echo "Strips:      $(STRIPS)/index.html"
	@echo "Metrics:     $(RESULTS)/same/*/test/metrics.json"
	@echo "TensorBoard: $(PYTHON) -m tensorboard.main --logdir tensorboard"
