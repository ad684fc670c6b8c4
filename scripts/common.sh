# Shared settings and logging for the step*.sh scripts; sourced, not run.
#
# Every setting can be overridden from the environment, e.g.
#   DEVICE=cpu KEEP_STEP=1000 DECAY_STEP=1000 ./step1-train-gmm.sh
# EXTRA_ARGS is appended (word-split) to every train.py/test.py call, e.g. EXTRA_ARGS="--resume".
# DATASET=vitonhd (VITON-HD) or DATASET=dresscode CATEGORY=upper_body|lower_body|dresses (Dress Code)
# run on those datasets, read in place (default: viton); FINE_HEIGHT/FINE_WIDTH (multiples of 64,
# default 256/192) set the size they are resized to. Each dataset keeps its checkpoints
# (*_train_<run>) and results apart.
# Training: NPROC=4 runs train.py in 4 processes (one per GPU, DistributedDataParallel; BATCH_SIZE is
# per process), PRECISION=bf16|fp16|auto trains with mixed precision (AMP, its older name, also works).
# Outputs (checkpoints/, result/, tensorboard/, logs/) go to the current directory; the scripts
# find the Python files next to themselves, so they can be run from anywhere.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

: "${PYTHON:=python}"
: "${DATASET:=viton}"
: "${CATEGORY:=upper_body}"
: "${VARIANT:=cpvton}"
: "${FINE_HEIGHT:=256}"
: "${FINE_WIDTH:=192}"
# Per dataset (layouts.py): the root it unpacks to, its unpaired test list, and the run name that keeps
# its checkpoints (*_train_<run>) and results (result_<run>/) apart; a size other than 256x192 is
# part of the run name (vitonhd_512x384).
[ "$FINE_HEIGHT/$FINE_WIDTH" = 256/192 ] && AT_SIZE="" || AT_SIZE="_${FINE_HEIGHT}x${FINE_WIDTH}"
case "$DATASET" in
  viton) DEFAULT_ROOT=data; DEFAULT_TEST_LIST=test_pairs.txt ;;
  vitonhd) DEFAULT_ROOT=data/zalando-hd-resized; DEFAULT_TEST_LIST=test_pairs.txt; RUN="vitonhd$AT_SIZE" ;;
  dresscode)
    case "$CATEGORY" in
      upper_body|lower_body|dresses) ;;
      *) echo "error: DATASET=dresscode CATEGORY=$CATEGORY: expected upper_body, lower_body or dresses" >&2; exit 2 ;;
    esac
    DEFAULT_ROOT=data/DressCode; DEFAULT_TEST_LIST=test_pairs_unpaired.txt; RUN="dresscode_$CATEGORY$AT_SIZE" ;;
  *) echo "error: DATASET=$DATASET: expected viton, vitonhd or dresscode" >&2; exit 2 ;;
esac
# CP-VTON+ (VARIANT=cpvton+, VITON only) keeps its checkpoints and results apart: *_train_plus, result_plus/.
case "$DATASET/$VARIANT" in
  viton/cpvton) RUN=new; : "${RESULT_DIR:=result}" ;;
  viton/cpvton+) RUN=plus; : "${RESULT_DIR:=result_plus}" ;;
  */cpvton) : "${RESULT_DIR:=result_$RUN}" ;;
  */cpvton+) echo "error: VARIANT=cpvton+ reads CP-VTON+'s parses and body masks, which exist for" \
                  "DATASET=viton only" >&2; exit 2 ;;
  *) echo "error: VARIANT=$VARIANT: expected cpvton or cpvton+" >&2; exit 2 ;;
esac
: "${DATAROOT:=$DEFAULT_ROOT}"
: "${DEVICE:=auto}"
: "${WORKERS:=4}"
: "${BATCH_SIZE:=4}"
: "${KEEP_STEP:=100000}"
: "${DECAY_STEP:=100000}"
: "${SAVE_COUNT:=5000}"
: "${DISPLAY_COUNT:=20}"
: "${PERCEPTUAL:=vgg19}"
: "${NPROC:=1}"
: "${PRECISION:=${AMP:-fp32}}"
[ "$PRECISION" = none ] && PRECISION=fp32  # AMP's spelling of fp32
: "${SEED:=0}"
: "${DATA_LIST_TEST:=$DEFAULT_TEST_LIST}"
: "${EXTRA_ARGS:=}"
GMM_FINAL="checkpoints/gmm_train_$RUN/gmm_final.pth"
TOM_FINAL="checkpoints/tom_train_$RUN/tom_final.pth"
GMM_RESULT="$RESULT_DIR/gmm_final.pth"  # test.py writes <result_dir>/<checkpoint file name>/<split>/
export PYTHONUNBUFFERED=1  # log lines reach the log file as they are printed

COMMON_ARGS=(--dataroot "$DATAROOT" --device "$DEVICE" --workers "$WORKERS" --batch_size "$BATCH_SIZE"
             --display_count "$DISPLAY_COUNT" --seed "$SEED" --variant "$VARIANT")
# Only what differs from train.py's defaults, so that a VITON run's commands stay as they were.
[ "$DATASET" = viton ] || COMMON_ARGS+=(--dataset "$DATASET")
[ "$DATASET" = dresscode ] && COMMON_ARGS+=(--category "$CATEGORY")
[ "$FINE_HEIGHT/$FINE_WIDTH" = 256/192 ] || COMMON_ARGS+=(--fine_height "$FINE_HEIGHT" --fine_width "$FINE_WIDTH")

split_dir() {  # split_dir train|test: the folder of a split's files, where the TOM reads the GMM's warps
  if [ "$DATASET" = dresscode ]; then  # both splits share the category folder (the pairs file picks the split)
    echo "$DATAROOT/$CATEGORY"
  else
    echo "$DATAROOT/$1"
  fi
}

# The log of this run: logs/<script name>-YYYYmmdd-HHMMSS.log
mkdir -p logs
LOG="logs/$(basename "$0" .sh)-$(date +%Y%m%d-%H%M%S).log"
echo "log: $LOG"

say() {  # print a message and append it to the log
  echo "$*" | tee -a "$LOG"
}

fail() {  # print an error (also to the log) and stop
  echo "error: $*" | tee -a "$LOG" >&2
  exit 1
}

need() {  # need PATH HINT: stop with HINT unless PATH exists
  [ -e "$1" ] || fail "$1 not found: $2"
}

logged() {  # run a command with its output also appended to the log (Ctrl-C reaches the command, not tee)
  say "+ $*"
  "$@" 2>&1 | (trap '' INT; exec tee -a "$LOG")
}

train_py() {  # train_py ARGS...: train.py with the shared settings, in NPROC processes
  local launch=("$PYTHON")
  if [ "$NPROC" != 1 ]; then  # PyTorch's launcher (torchrun) of the venv's python
    launch=("$PYTHON" -m torch.distributed.run --standalone --nproc_per_node "$NPROC")
  fi
  # shellcheck disable=SC2086  # EXTRA_ARGS is word-split on purpose
  logged "${launch[@]}" "$REPO/train.py" "${COMMON_ARGS[@]}" --keep_step "$KEEP_STEP" --decay_step "$DECAY_STEP" \
    --save_count "$SAVE_COUNT" --precision "$PRECISION" "$@" $EXTRA_ARGS
}

test_py() {  # test_py ARGS...: test.py with the shared settings
  # shellcheck disable=SC2086
  logged "$PYTHON" "$REPO/test.py" "${COMMON_ARGS[@]}" --result_dir "$RESULT_DIR" "$@" $EXTRA_ARGS
}
