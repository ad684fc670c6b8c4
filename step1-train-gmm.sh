#!/usr/bin/env bash
# Step 1: train the Geometric Matching Module -> checkpoints/gmm_train_new/gmm_final.pth
# (gmm_train_vitonhd/ with DATASET=vitonhd, gmm_train_dresscode_<category>/ with DATASET=dresscode).
# Settings: see scripts/common.sh (e.g. KEEP_STEP, DECAY_STEP, SAVE_COUNT, DEVICE, EXTRA_ARGS=--resume).
# NPROC=4 trains on 4 GPUs (DistributedDataParallel; add EXTRA_ARGS=--sync_bn for one BatchNorm over all
# of them); PRECISION=bf16, fp16 or auto trains with mixed precision.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/common.sh"

train_py --name "gmm_train_$RUN" --stage GMM --shuffle
