"""Run a trained CP-VTON GMM or TOM over a pairs list and save its outputs.

    python test.py --name gmm_traintest_new --stage GMM --datamode test --data_list test_pairs.txt \
        --checkpoint checkpoints/gmm_train_new/gmm_final.pth
    python test.py --name tom_test_new --stage TOM --datamode test --data_list test_pairs.txt \
        --checkpoint checkpoints/tom_train_new/tom_final.pth

Results go to <result_dir>/<basename(checkpoint)>/<datamode>/: GMM warp-cloth/<cloth name> and
warp-mask/<cloth name>, TOM try-on/<person name> (JPEG, as the original). Each output folder is
written beside the target and swapped in at the end, so a re-run never mixes old and new results
and an interrupted run leaves the previous results untouched.

Speed (see bench.py): the model runs under torch.inference_mode() in the channels_last memory
format (--channels_last 0 for the plain layout; same outputs up to float rounding), optionally
in bf16/fp16 autocast (--precision; fp32 by default), and the images are encoded and written by
--save_threads threads while the next batch runs. More DataLoader workers (-j) and a larger
batch (-b) help where there are cores and memory to spare. The loop is pipeline.run_test.
"""
import os

import atomic
import networks
import pipeline
from cp_dataset import DatasetError
from options import device_of, test_options


def main(argv=None):
    opt = test_options(argv)
    if not os.path.isfile(opt.checkpoint):
        raise SystemExit(f"error: checkpoint not found: {opt.checkpoint!r} (--checkpoint)")
    device = device_of(opt)
    try:
        pipeline.resolve_precision(opt.precision, device)  # fp16 off CUDA: a clear error before any work
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    try:
        pipeline.run_test(opt, device)
    except (DatasetError, networks.CheckpointError) as e:
        raise SystemExit(f"error: {e}")
    return 0


if __name__ == "__main__":
    atomic.run(main)
