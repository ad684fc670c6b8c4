#!/usr/bin/env bash
# Step 4: train the Try-On Module -> checkpoints/tom_train_new/tom_final.pth (needs step 3's data).
# Settings: see scripts/common.sh (PERCEPTUAL=none trains without the VGG19 loss; NPROC=4 trains on 4 GPUs,
# PRECISION=bf16, fp16 or auto with mixed precision).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/common.sh"

need "$(split_dir train)/warp-cloth" "run step3 first"
train_py --name "tom_train_$RUN" --stage TOM --shuffle --perceptual "$PERCEPTUAL"
