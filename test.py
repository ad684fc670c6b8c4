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
batch (-b) help where there are cores and memory to spare.
"""
import os
import shutil
import sys
import tempfile
from collections import Counter

import torch
from tensorboardX import SummaryWriter
from tqdm import tqdm

import networks
from cp_dataset import CPDataLoader, CPDataset, DatasetError
from options import device_of, test_options
from train import FORWARD, board_rows, to_device
from visualization import ImageWriter, board_add_images


def result_images(stage, inputs, out):
    """{output folder: (images in [-1, 1], file names)} for one batch."""
    if stage == "GMM":  # keyed by cloth name, mask saved as 2*m-1, as the original
        return {"warp-cloth": (out["warped_cloth"], inputs["c_name"]),
                "warp-mask": (out["warped_mask"] * 2 - 1, inputs["c_name"])}
    return {"try-on": (out["p_tryon"], inputs["im_name"])}


def warn_duplicates(names, what, shown=5):
    """Warn once when several pairs would write the same output file."""
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        more = " ..." if len(repeated) > shown else ""
        print(f"warning: {len(repeated)} {what} name(s) occur in more than one pair; their outputs "
              f"overwrite each other (last pair wins): {', '.join(repeated[:shown])}{more}", file=sys.stderr)


def test(opt, device):
    torch.manual_seed(opt.seed)
    autocast = networks.autocast(device, opt.precision)  # ValueError for fp16 off CUDA
    if opt.precision == "bf16" and not networks.native_bf16(device):
        print(f"warning: {device} has no native bf16 (AVX512-BF16/AMX on CPUs): --precision bf16 runs "
              "emulated, slower than fp32", file=sys.stderr)
    dataset = CPDataset(opt, compact=True)  # items expanded to the spec's on the device
    loader = CPDataLoader(opt, dataset)
    print(f"Dataset size: {len(dataset)}")
    if opt.stage == "GMM":
        warn_duplicates(dataset.c_names, "cloth")
    else:
        warn_duplicates(dataset.im_names, "person")

    model = networks.build_model(opt.stage, opt)
    networks.load_checkpoint(model, opt.checkpoint, stage=opt.stage)
    model = networks.for_inference(model.to(device), channels_last=bool(opt.channels_last))
    board = SummaryWriter(logdir=os.path.join(opt.tensorboard_dir, opt.name))

    out_root = os.path.join(opt.result_dir, os.path.basename(opt.checkpoint), opt.datamode)
    os.makedirs(out_root, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".partial-", dir=out_root)
    folders = ["warp-cloth", "warp-mask"] if opt.stage == "GMM" else ["try-on"]
    try:
        # Result images are encoded and written by `writer`'s threads while the next batch runs
        # (with --save_threads 0, in this loop); leaving the `with` waits for the last ones.
        with ImageWriter(opt.save_threads) as writer, torch.inference_mode(), autocast:
            for i, batch in enumerate(tqdm(loader.data_loader, desc=f"test {opt.stage}", unit="batch")):
                inputs = dataset.expand(to_device(batch, device))
                out = FORWARD[opt.stage](model, inputs)
                for folder, (images, names) in result_images(opt.stage, inputs, out).items():
                    writer.save(images, names, os.path.join(work, folder))
                if (i + 1) % opt.display_count == 0:
                    writer.submit(board_add_images, board, "combine", board_rows(opt.stage, inputs, out), i + 1)
        for folder in folders:  # swap the new results in; the old ones leave with `work`
            target, new = os.path.join(out_root, folder), os.path.join(work, folder)
            os.makedirs(new, exist_ok=True)
            if os.path.exists(target):
                os.rename(target, os.path.join(work, "old-" + folder))
            os.rename(new, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        board.close()
    print(f"Results: {', '.join(os.path.join(out_root, f) for f in folders)}")
    return 0


def main(argv=None):
    opt = test_options(argv)
    if not os.path.isfile(opt.checkpoint):
        raise SystemExit(f"error: checkpoint not found: {opt.checkpoint!r} (--checkpoint)")
    device = device_of(opt)
    try:
        networks.autocast(device, opt.precision)  # fp16 off CUDA: a clear error before any work
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    try:
        return test(opt, device)
    except (networks.CheckpointError, DatasetError) as e:
        raise SystemExit(f"error: {e}")


if __name__ == "__main__":
    sys.exit(main())
