#!/usr/bin/env bash
# Step 2: run the trained GMM on the test pairs -> result/gmm_final.pth/test/{warp-cloth,warp-mask}
# (result_vitonhd/, result_dresscode_<category>/ for the other datasets).
# Settings: see scripts/common.sh (DATA_LIST_TEST=test_pairs_same.txt tests on each person's own garment;
# Dress Code: DATA_LIST_TEST=test_pairs_paired.txt).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/common.sh"

need "$GMM_FINAL" "run step1 first"
test_py --name "gmm_traintest_$RUN" --stage GMM --datamode test --data_list "$DATA_LIST_TEST" \
  --checkpoint "$GMM_FINAL"
