#!/usr/bin/env bash
# Step 3: make the TOM inputs. Runs the GMM on the training pairs, then copies the warped cloths
# and masks of both splits, result/gmm_final.pth/{train,test}/warp-*, where the TOM reads them:
# $DATAROOT/{train,test}/ (VITON, VITON-HD); for Dress Code both splits' warps go together into
# $DATAROOT/<category>/, the folder the two splits share (their ids differ).
# Copies (not moves), so smart_show_test_result.py still finds the test warps; safe to re-run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/common.sh"

entries() {  # entries DIR: how many files (and folders) DIR holds
  find "$1" -mindepth 1 -maxdepth 1 | wc -l
}

replace_dir() {  # replace_dir DST SRC...: DST becomes a copy of the SRC folders' files together; DST
                 # changes only once the copy is complete
  local dst="$1" tmp copied=0 src
  shift
  tmp="$(mktemp -d "$(dirname "$dst")/.$(basename "$dst").XXXXXX")"
  for src in "$@"; do
    cp -R "$src/." "$tmp/"
    copied=$((copied + $(entries "$src")))
  done
  if [ $(($(entries "$tmp"))) -ne "$copied" ]; then
    rm -rf "$tmp"
    fail "$*: the same file name in more than one of these folders; $dst left as it was"
  fi
  chmod 755 "$tmp"
  if [ -e "$dst" ]; then mv "$dst" "$tmp.old"; fi
  mv "$tmp" "$dst"
  rm -rf "$tmp.old"
  say "copied $* -> $dst"
}

need "$GMM_FINAL" "run step1 first"
for kind in warp-cloth warp-mask; do
  need "$GMM_RESULT/test/$kind" "run step2 first (GMM test on the test split)"
done
test_py --name "gmm_traintest_$RUN" --stage GMM --datamode train --data_list train_pairs.txt \
  --checkpoint "$GMM_FINAL"

for kind in warp-cloth warp-mask; do
  if [ "$(split_dir train)" = "$(split_dir test)" ]; then  # Dress Code: one folder for both splits
    replace_dir "$(split_dir test)/$kind" "$GMM_RESULT/train/$kind" "$GMM_RESULT/test/$kind"
  else
    for split in train test; do
      replace_dir "$(split_dir "$split")/$kind" "$GMM_RESULT/$split/$kind"
    done
  fi
done
