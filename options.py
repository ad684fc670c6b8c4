"""Command-line options for train.py and test.py, in one place (pix2pix style).

The names and defaults are the original CP-VTON ones; the additions are marked "(new)" in their
help text. Flags are spelt with underscores, as the original's; the hyphenated spellings
(--batch-size, the original's own) are accepted too. test.py's --checkpoint is required (the
original silently ran random weights without one).
"""
import argparse
import os

import layouts
from cp_dataset import VARIANTS
from networks import check_image_size
from pipeline import PRECISIONS, pick_device


def on_off(value):
    """--channels_last's values: 1/0 (also on/off, true/false, yes/no)."""
    words = {"1": 1, "on": 1, "true": 1, "yes": 1, "0": 0, "off": 0, "false": 0, "no": 0}
    if value.lower() not in words:
        raise argparse.ArgumentTypeError(f"expected 1 or 0 (on / off), got {value!r}")
    return words[value.lower()]


def _common_options(parser, display_count, channels_last):
    """Options shared by train.py and test.py."""
    parser.add_argument("--name", default="GMM",
                        help="run name: outputs go to <checkpoint_dir>/<name>/ and <tensorboard_dir>/<name>/")
    parser.add_argument("--device", default="auto",
                        help="(new) auto | cpu | cuda | cuda:N; auto = CUDA if available, else CPU")
    parser.add_argument("--gpu_ids", default="",
                        help="the original's way to pick a GPU, e.g. '0': with --device auto the first "
                             "id picks cuda:<id> when CUDA is available (-1 = CPU; one GPU is used)")
    parser.add_argument("-j", "--workers", type=int, default=1, help="DataLoader worker processes")
    parser.add_argument("-b", "--batch_size", "--batch-size", type=int, default=4, help="batch size")
    layouts.add_options(parser)
    parser.add_argument("--datamode", default="train",
                        help="dataset split, train or test: the subfolder of --dataroot to read (Dress Code: the "
                             "pairs file picks the split; --datamode names the results)")
    parser.add_argument("--stage", default="GMM", choices=["GMM", "TOM"],
                        help="GMM (geometric matching module) or TOM (try-on module)")
    parser.add_argument("--variant", default="cpvton", choices=list(VARIANTS),
                        help="(new) cpvton: CP-VTON (default); cpvton+: CP-VTON+ (Minar et al. 2020): "
                             "its data (image-parse-new/, image-mask/), networks and losses")
    parser.add_argument("--data_list",
                        help="pairs file '<person>.jpg <cloth>.jpg' per line, relative to --dataroot (Dress Code: "
                             "to <dataroot>/<category>); default: train_pairs.txt for --datamode train, the "
                             "dataset's unpaired test list for test (test_pairs.txt; Dress Code: "
                             "test_pairs_unpaired.txt)")
    parser.add_argument("--fine_width", type=int, default=192,
                        help="image width, a multiple of 64 (VITON-HD and Dress Code are resized to it)")
    parser.add_argument("--fine_height", type=int, default=256,
                        help="image height, a multiple of 64 (VITON-HD and Dress Code are resized to it)")
    parser.add_argument("--radius", type=int, default=5,
                        help="half-size of the pose keypoint squares at 256 pixels high; scaled with "
                             "--fine_height (10 at 512, 20 at 1024)")
    parser.add_argument("--grid_size", type=int, default=5,
                        help="TPS control points per side (grid_size x grid_size)")
    parser.add_argument("--tensorboard_dir", default="tensorboard",
                        help="TensorBoard logs are written to <tensorboard_dir>/<name>/")
    parser.add_argument("--display_count", type=int, default=display_count,
                        help="log to stdout and TensorBoard every N steps")
    parser.add_argument("--shuffle", action="store_true", help="shuffle the training pairs")
    parser.add_argument("--seed", type=int, default=0,
                        help="(new) seed for weight init and data order (torch, numpy, random)")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="(new) fp32 (default), or autocast of the forward pass (and loss) to bf16 "
                             "(CUDA, or a CPU with native bf16: AVX512-BF16/AMX; elsewhere emulated "
                             "and slower) or fp16 (CUDA only; training adds a gradient scaler); auto = "
                             "bf16 where the device runs it natively, else fp32. Weights, checkpoints "
                             "and the TPS grid stay float32")
    parser.add_argument("--channels_last", default=channels_last, type=on_off, metavar="{1,0}",
                        help="(new) 1: run the model in the channels_last memory format (same results "
                             "up to float rounding; faster convolutions on most CPUs and GPUs); 0: the "
                             "original's layout (default: %(default)s)")


# The smallest value each numeric option takes (a TPS needs at least 2x2 control points).
MINIMUM = {"batch_size": 1, "display_count": 1, "save_count": 1, "workers": 0, "radius": 0,
           "grid_size": 2, "fine_width": 1, "fine_height": 1, "keep_step": 0, "decay_step": 0,
           "save_threads": 0}


def _parse(parser, argv):
    opt = parser.parse_args(argv)
    for flag, least in MINIMUM.items():
        if getattr(opt, flag, least) < least:
            parser.error(f"--{flag} must be at least {least}, got {getattr(opt, flag)}")
    try:
        check_image_size(opt.fine_height, opt.fine_width)
    except ValueError as e:
        parser.error(str(e))
    layouts.fill_defaults(opt, parser.error)
    if getattr(opt, "lr", 1) <= 0:
        parser.error(f"--lr must be positive, got {opt.lr}")
    if not all(g.strip().lstrip("-").isdigit() for g in opt.gpu_ids.split(",") if g.strip()):
        parser.error(f"--gpu_ids must be comma-separated integers, got {opt.gpu_ids!r}")
    for flag in ("result_dir", "checkpoint_dir", "tensorboard_dir"):
        folder = getattr(opt, flag, None)
        if folder and os.path.exists(folder) and not os.path.isdir(folder):
            parser.error(f"--{flag} {folder} is a file, not a folder")
    return opt


def train_parser():
    parser = argparse.ArgumentParser(description="Train the CP-VTON GMM or TOM stage.")
    # Training in channels_last is faster for the TOM but not for the GMM (see docs/performance.md).
    _common_options(parser, display_count=20, channels_last=0)
    parser.add_argument("--lr", type=float, default=1e-4, help="initial learning rate for adam")
    parser.add_argument("--checkpoint_dir", default="checkpoints",
                        help="checkpoints are written to <checkpoint_dir>/<name>/")
    parser.add_argument("--checkpoint", default="",
                        help="plain checkpoint (state_dict) to initialise the weights from; "
                             "'' = fresh initialisation")
    parser.add_argument("--save_count", type=int, default=100,
                        help="save step_NNNNNN.pth and the resume state every N steps")
    parser.add_argument("--keep_step", type=int, default=100000,
                        help="steps at the initial learning rate")
    parser.add_argument("--decay_step", type=int, default=100000,
                        help="steps of linear learning-rate decay after --keep_step "
                             "(total steps = keep_step + decay_step)")
    parser.add_argument("--resume", action="store_true",
                        help="(new) continue from <checkpoint_dir>/<name>/train_state.pth "
                             "(weights, optimiser, scheduler, gradient scaler, step)")
    parser.add_argument("--perceptual", default="vgg19", choices=["vgg19", "none"],
                        help="(new) TOM perceptual loss: vgg19 (original) or none (VGG term = 0)")
    parser.add_argument("--vgg_weights", default=None,
                        help="(new) local VGG19 ImageNet weights file (vgg19-dcbb9e9d.pth); "
                             "default: torchvision's cache / download")
    parser.add_argument("--grid_reg", type=float, default=0.0,
                        help="(new) weight of a grid spacing regulariser on the GMM's warp (Euclidean "
                             "distances between neighbouring grid points; like CP-VTON+'s grid interval "
                             "consistency loss, which --variant cpvton+ adds by itself), which keeps the "
                             "warp from folding; 0 = off (the original's loss)")
    parser.add_argument("--amp", dest="precision", choices=["none", *PRECISIONS],
                        help="the older spelling of --precision (none = fp32)")
    parser.add_argument("--sync_bn", action="store_true",
                        help="(new) under torchrun: synchronise the GMM's BatchNorm statistics across "
                             "processes (CUDA only); checkpoints still load into the plain model")
    return parser


def test_parser():
    parser = argparse.ArgumentParser(description="Run a trained CP-VTON GMM or TOM over a pairs list.")
    _common_options(parser, display_count=1, channels_last=1)
    parser.add_argument("--result_dir", default="result",
                        help="results go to <result_dir>/<basename of checkpoint>/<datamode>/")
    parser.add_argument("--checkpoint", required=True, help="model checkpoint for test (required)")
    parser.add_argument("--save_threads", type=int, default=2,
                        help="(new) threads that encode and write the result images (and TensorBoard "
                             "images) while the next batch runs; 0 = write in the main loop")
    return parser


def train_options(argv=None):
    """Parse train.py options (argv=None reads sys.argv)."""
    opt = _parse(train_parser(), argv)
    if opt.precision == "none":
        opt.precision = "fp32"
    return opt


def test_options(argv=None):
    """Parse test.py options (argv=None reads sys.argv)."""
    return _parse(test_parser(), argv)


def device_of(opt):
    """The torch.device of --device / --gpu_ids; exits with a message for a device that is not there."""
    try:
        return pick_device(opt.device, opt.gpu_ids)
    except ValueError as e:
        raise SystemExit(f"error: {e}")
