"""What every entry point shares: the device and precision, the GMM and TOM forward passes and
losses, TensorBoard rows, result images, and the test loop.

train.py, test.py, tryon.py, bench.py and evaluate.py are thin commands around these.
"""
import contextlib
import os
import sys
from collections import Counter

import torch
import torch.nn.functional as F
from tensorboardX import SummaryWriter
from tqdm import tqdm

import atomic
import networks
from cp_dataset import (RESULT_FOLDERS, TRYON_FOLDER, WARP_FOLDERS, CPDataLoader, CPDataset, result_dir_of,
                        warp_name)
from visualization import ImageWriter, board_add_images

# ---------------------------------------------------------------------------------------------
# Device and precision


def pick_device(name="auto", gpu_ids=""):
    """The torch.device for --device: 'auto' is CUDA if available, else the CPU; with 'auto' the
    first of the original's --gpu_ids picks cuda:<id> (-1: the CPU). ValueError, naming the
    option, for a device that is not there."""
    ids = [g.strip() for g in gpu_ids.split(",") if g.strip()]
    if name == "auto" and ids and torch.cuda.is_available():
        name = "cpu" if int(ids[0]) < 0 else f"cuda:{ids[0]}"
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"--device {name}: not a device name (use auto, cpu, cuda or cuda:N)") from e
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: CUDA is not available here; use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
    return device


def native_bf16(device):
    """Whether `device` runs bf16 convolutions natively (CUDA with bf16 support; a CPU with
    AVX512-BF16 or AMX). Elsewhere oneDNN emulates them, several times slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


PRECISIONS = ("fp32", "bf16", "fp16", "auto")


def resolve_precision(precision, device):
    """--precision for `device`: 'auto' becomes bf16 where the device runs it natively, else fp32;
    fp16 needs CUDA (ValueError elsewhere)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(f"--precision fp16 needs a CUDA device (float16 autocast is CUDA-only), "
                         f"this run is on {device}; use --precision bf16 or fp32")
    return precision


def autocast(device, precision="fp32"):
    """The context a forward pass (and loss) runs in: nothing for fp32, else bfloat16 / float16
    autocast. Weights stay float32, and so does the TPS grid (TpsGridGen disables autocast)."""
    precision = resolve_precision(precision, device)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def grad_scaler(device, precision):
    """Training's loss scaling: on for fp16 only (elsewhere it passes everything through)."""
    return torch.amp.GradScaler(device.type, enabled=resolve_precision(precision, device) == "fp16")


def to_device(batch, device):
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


# ---------------------------------------------------------------------------------------------
# The two stages: forward pass, loss, TensorBoard rows, result images


def gmm_forward(model, inputs, variant="cpvton"):
    """GMM: warp the cloth, its mask and the grid image onto the person. CP-VTON matches the person
    representation with the cloth, CP-VTON+ with the cloth's mask ({0, 1}, not normalised)."""
    grid, _theta = model(inputs["agnostic"], inputs["cloth_mask" if variant == "cpvton+" else "cloth"])
    return {"grid": grid, "warped_cloth": networks.warp(inputs["cloth"], grid, "border"),
            "warped_mask": networks.warp(inputs["cloth_mask"], grid, "zeros"),
            "warped_grid": networks.warp(inputs["grid_image"], grid, "zeros")}


def tom_forward(model, inputs, variant="cpvton"):
    """TOM: render the person and composite the (already warped) cloth into it. CP-VTON+ also gives
    the TOM the warped mask."""
    extra = [inputs["cloth_mask"]] if variant == "cpvton+" else []
    raw = model(torch.cat([inputs["agnostic"], inputs["cloth"], *extra], 1))
    p_rendered, m_composite, p_tryon = networks.tom_outputs(raw, inputs["cloth"])
    return {"p_rendered": p_rendered, "m_composite": m_composite, "p_tryon": p_tryon}


FORWARD = {"GMM": gmm_forward, "TOM": tom_forward}


GIC_WEIGHT = 40  # CP-VTON+'s weight of gic_loss / (b*H*W)


def gmm_loss(model, inputs, perceptual=None, grid_weight=0.0, variant="cpvton"):
    """One GMM forward pass and its loss: L1 between the warped cloth and the cloth worn in the
    photo; for CP-VTON+ plus 40 x its grid interval consistency loss / (b*H*W); with --grid_reg
    (not in either paper, off by default) plus grid_weight x the grid spacing regulariser.
    Returns (loss, {TensorBoard tag: term}, outputs)."""
    out = gmm_forward(model, inputs, variant)
    l1 = F.l1_loss(out["warped_cloth"], inputs["parse_cloth"])
    loss, scalars = l1, {"L1": l1}
    if variant == "cpvton+":
        scalars["GIC"] = GIC_WEIGHT * networks.gic_loss(out["grid"]) / out["grid"].shape[:3].numel()
        loss = loss + scalars["GIC"]
    if grid_weight:
        scalars["Grid"] = networks.grid_spacing_irregularity(out["grid"])
        loss = loss + grid_weight * scalars["Grid"]
    if len(scalars) == 1:  # the loss is the L1 alone
        return loss, {"metric": loss}, out
    return loss, {"metric": loss, **scalars}, out


def tom_loss(model, inputs, perceptual=None, variant="cpvton"):
    """One TOM forward pass and its loss: L1 + VGG perceptual on the try-on, L1 of the composition
    mask against the warped cloth mask (CP-VTON+: against the garment region of the person's
    parse) (perceptual=None: VGG term 0)."""
    out = tom_forward(model, inputs, variant)
    l1 = F.l1_loss(out["p_tryon"], inputs["image"])
    vgg = torch.zeros((), device=l1.device)
    if perceptual is not None:
        vgg = perceptual(out["p_tryon"], inputs["image"])
    mask = F.l1_loss(out["m_composite"], inputs["parse_cloth_mask" if variant == "cpvton+" else "cloth_mask"])
    loss = l1 + vgg + mask
    return loss, {"metric": loss, "L1": l1, "VGG": vgg, "MaskL1": mask}, out


LOSSES = {"GMM": gmm_loss, "TOM": tom_loss}


def board_rows(stage, inputs, out):
    """The original's 3x3 TensorBoard grid (masks shown as 2*m-1 in train and test alike)."""
    top = [inputs["head"], inputs["shape"], inputs["pose_image"]]
    if stage == "GMM":
        return [top,
                [inputs["cloth"], out["warped_cloth"], inputs["parse_cloth"]],
                [out["warped_grid"], (out["warped_cloth"] + inputs["image"]) / 2, inputs["image"]]]
    return [top,
            [inputs["cloth"], 2 * inputs["cloth_mask"] - 1, 2 * out["m_composite"] - 1],
            [out["p_rendered"], out["p_tryon"], inputs["image"]]]


def result_images(stage, inputs, out, variant="cpvton"):
    """{output folder: (images in [-1, 1], file names)} for one batch: the GMM's by cloth name
    (CP-VTON+: by person name), the mask saved as 2*m-1, the TOM's by person name."""
    if stage == "GMM":
        warp_cloth, warp_mask = WARP_FOLDERS
        names = [warp_name(im, c, variant) for im, c in zip(inputs["im_name"], inputs["c_name"])]
        return {warp_cloth: (out["warped_cloth"], names), warp_mask: (out["warped_mask"] * 2 - 1, names)}
    return {TRYON_FOLDER: (out["p_tryon"], inputs["im_name"])}


def load_for_inference(stage, checkpoint, device, channels_last=True, variant="cpvton", **sizes):
    """A stage's network (built for `sizes`: fine_height, fine_width, grid_size; default 256, 192,
    5) with the weights of `checkpoint` (networks.CheckpointError if they do not fit), on `device`,
    in eval mode and (by default) the channels_last layout."""
    model = networks.build_model(stage, variant=variant, **sizes)
    networks.load_checkpoint(model, checkpoint, stage=stage)
    return networks.for_inference(model.to(device), channels_last=channels_last)


# ---------------------------------------------------------------------------------------------
# The test loop (test.py)


def warn_duplicates(names, what, shown=5):
    """Warn once when several pairs would write the same output file."""
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        more = " ..." if len(repeated) > shown else ""
        print(f"warning: {len(repeated)} {what} name(s) occur in more than one pair; their outputs "
              f"overwrite each other (last pair wins): {', '.join(repeated[:shown])}{more}", file=sys.stderr)


def run_test(opt, device):
    """Run the checkpoint of a stage over a pairs list (test.py's options) and write its images to
    <result_dir>/<checkpoint file name>/<datamode>/. Each output folder is written beside the
    old one and swapped in at the end, so an interrupted run leaves the previous results as they
    were. Returns the result folder."""
    torch.manual_seed(opt.seed)
    precision = resolve_precision(opt.precision, device)
    if precision == "bf16" and not native_bf16(device):
        print(f"warning: {device} has no native bf16 (AVX512-BF16/AMX on CPUs): --precision bf16 runs "
              "emulated, slower than fp32", file=sys.stderr)
    dataset = CPDataset(opt, compact=True)  # items expanded to the original's on the device
    loader = CPDataLoader(opt, dataset)
    print(f"Dataset size: {len(dataset)}")
    if opt.stage == "GMM":
        warn_duplicates([warp_name(*pair, opt.variant) for pair in zip(dataset.im_names, dataset.c_names)],
                        "cloth" if opt.variant == "cpvton" else "person")
    else:
        warn_duplicates(dataset.im_names, "person")
    model = load_for_inference(opt.stage, opt.checkpoint, device, bool(opt.channels_last), opt.variant,
                               fine_height=opt.fine_height, fine_width=opt.fine_width, grid_size=opt.grid_size)
    out_root = result_dir_of(opt.result_dir, opt.checkpoint, opt.datamode)
    folders = RESULT_FOLDERS[opt.stage]
    board = SummaryWriter(logdir=os.path.join(opt.tensorboard_dir, opt.name))
    try:
        with contextlib.ExitStack() as swaps:
            work = {folder: swaps.enter_context(atomic.writing_dir(os.path.join(out_root, folder)))
                    for folder in folders}
            # Result images are encoded and written by `writer`'s threads while the next batch runs
            # (with --save_threads 0, in this loop); leaving the `with` waits for the last ones.
            with ImageWriter(opt.save_threads) as writer, torch.inference_mode(), autocast(device, precision):
                for i, batch in enumerate(tqdm(loader.data_loader, desc=f"test {opt.stage}", unit="batch")):
                    inputs = dataset.expand(to_device(batch, device))
                    out = FORWARD[opt.stage](model, inputs, opt.variant)
                    for folder, (images, names) in result_images(opt.stage, inputs, out, opt.variant).items():
                        writer.save(images, names, work[folder])
                    if (i + 1) % opt.display_count == 0:
                        writer.submit(board_add_images, board, "combine", board_rows(opt.stage, inputs, out), i + 1)
    finally:
        board.close()
    print(f"Results: {', '.join(os.path.join(out_root, f) for f in folders)}")
    return out_root
