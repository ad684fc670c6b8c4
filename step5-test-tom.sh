#!/usr/bin/env bash
# Step 5: run the trained TOM on the test pairs -> result/tom_final.pth/test/try-on
# Then: python smart_show_test_result.py  (side-by-side strips in result_simple/; for another dataset
# add --dataset, --category and --result_dir as given to this script)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/common.sh"

need "$TOM_FINAL" "run step4 first"
need "$(split_dir test)/warp-cloth" "run step3 first"
test_py --name "tom_test_$RUN" --stage TOM --datamode test --data_list "$DATA_LIST_TEST" \
  --checkpoint "$TOM_FINAL"
