# Shared settings and logging for the step*.sh scripts; sourced, not run.
#
# Every setting can be overridden from the environment, e.g.
#   DEVICE=cpu KEEP_STEP=1000 DECAY_STEP=1000 ./step1-train-gmm.sh
# EXTRA_ARGS is appended (word-split) to every train.py/test.py call, e.g. EXTRA_ARGS="--resume".
# Training: NPROC=4 runs train.py in 4 processes (one per GPU, DistributedDataParallel; BATCH_SIZE is
# per process), PRECISION=bf16|fp16|auto trains with mixed precision (AMP, its older name, also works).
# Outputs (checkpoints/, result/, tensorboard/, logs/) go to the current directory; the scripts
# find the Python files next to themselves, so they can be run from anywhere.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

: "${PYTHON:=python}"
: "${DATAROOT:=data}"
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
: "${DATA_LIST_TEST:=test_pairs.txt}"
: "${EXTRA_ARGS:=}"
: "${VARIANT:=cpvton}"
# CP-VTON+ (VARIANT=cpvton+) keeps its checkpoints and results apart: *_train_plus, result_plus/.
case "$VARIANT" in
  cpvton) RUN=new; : "${RESULT_DIR:=result}" ;;
  cpvton+) RUN=plus; : "${RESULT_DIR:=result_plus}" ;;
  *) echo "error: VARIANT=$VARIANT: expected cpvton or cpvton+" >&2; exit 2 ;;
esac
GMM_FINAL="checkpoints/gmm_train_$RUN/gmm_final.pth"
TOM_FINAL="checkpoints/tom_train_$RUN/tom_final.pth"
GMM_RESULT="$RESULT_DIR/gmm_final.pth"  # test.py writes <result_dir>/<checkpoint file name>/<split>/
export PYTHONUNBUFFERED=1  # log lines reach the log file as they are printed

COMMON_ARGS=(--dataroot "$DATAROOT" --device "$DEVICE" --workers "$WORKERS" --batch_size "$BATCH_SIZE"
             --display_count "$DISPLAY_COUNT" --seed "$SEED" --variant "$VARIANT")

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
