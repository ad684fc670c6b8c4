#!/usr/bin/env bash
# Step 3: make the TOM inputs. Runs the GMM on the training pairs, then copies the warped cloths
# and masks of both splits, result/gmm_final.pth/{train,test}/warp-*, into $DATAROOT/{train,test}/.
# Copies (not moves), so smart_show_test_result.py still finds the test warps; safe to re-run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/common.sh"

replace_dir() {  # replace_dir SRC DST: copy SRC to DST; DST changes only once the copy is complete
  local tmp
  tmp="$(mktemp -d "$(dirname "$2")/.$(basename "$2").XXXXXX")"
  cp -R "$1/." "$tmp/"
  chmod 755 "$tmp"
  if [ -e "$2" ]; then mv "$2" "$tmp.old"; fi
  mv "$tmp" "$2"
  rm -rf "$tmp.old"
}

need "$GMM_FINAL" "run step1 first"
for kind in warp-cloth warp-mask; do
  need "$GMM_RESULT/test/$kind" "run step2 first (GMM test on the test split)"
done
test_py --name "gmm_traintest_$RUN" --stage GMM --datamode train --data_list train_pairs.txt \
  --checkpoint "$GMM_FINAL"

for split in train test; do
  for kind in warp-cloth warp-mask; do
    replace_dir "$GMM_RESULT/$split/$kind" "$DATAROOT/$split/$kind"
    say "copied $GMM_RESULT/$split/$kind -> $DATAROOT/$split/$kind"
  done
done
