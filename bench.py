"""Benchmark of the CP-VTON reproduction: the machine's peak GFLOP/s, dataset items/s, GMM/TOM
forward pairs/s, the end-to-end test (steps 2 + 5), training steps/s and memory, printed as a table
and, with --json, written to a file.

    python bench.py                       # full run: a few minutes on a 2-core CPU
    python bench.py --quick               # tiny counts, seconds (what the tests run)
    python bench.py --json bench.json     # also write every figure as JSON
    python bench.py --sizes 256x192:4,512x384:2,1024x768:1   # training at image sizes (batch after ':')

It runs on --device (default: CUDA if available, else the CPU), with random weights on a sample
dataset in a temporary folder. Each figure is the median of --repeats timed runs after a warm-up.
The original cp-vton code (per-item PIL drawing, batch 4, one loader worker, images saved and
logged every step) and this code's fast path are timed in the same process and interleaved
(A, B, A, B, ...), so that load from other processes hits both alike.

With --sizes it measures only train.py's GMM and TOM training steps (forward, loss, backward,
Adam) on random inputs at each image size, each stage, size and precision in a fresh process:
steps/s and peak memory (CUDA: max allocated; CPU: peak RSS above an idle process with the same
imports).
"""
import argparse
import contextlib
import copy
import functools
import io
import json
import multiprocessing
import os
import os.path as osp
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
import torch.nn as nn
import torchvision.transforms as T
from PIL import Image, ImageDraw
from tensorboardX import SummaryWriter
from torch.utils.data import DataLoader, Dataset
from torch.utils.data._utils.collate import default_collate
from torch.utils.flop_counter import FlopCounterMode

import cp_dataset
import networks
import options
import pipeline
import sample_data
import train

STAGES = ("GMM", "TOM")


def get_options(argv=None):
    class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
        pass

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=Formatter)
    parser.add_argument("--quick", action="store_true",
                        help="tiny counts (2 pairs, batch 1, one run, no warm-up): checks that everything runs")
    parser.add_argument("--json", metavar="PATH", help="also write the results to this JSON file")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--pairs", type=int, default=32, help="test pairs of the sample dataset (end to end)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure (median)")
    parser.add_argument("--batches", default="1,8", help="forward batch sizes, comma-separated")
    parser.add_argument("--fast_batch", type=int, default=8, help="test.py batch size in the fast path")
    parser.add_argument("--fast_workers", type=int, default=0,
                        help="loader workers in the fast path (0: in the main process, fastest on 2 cores)")
    parser.add_argument("--train_batch", type=int, default=4, help="batch size of the training steps")
    parser.add_argument("--train_steps", type=int, default=5, help="timed training steps per stage")
    parser.add_argument("--emulated_bf16", action="store_true",
                        help="also time bf16 forward passes, the bf16 end-to-end test and (--sizes) bf16 "
                             "training where the device has no native bf16 (slow: oneDNN emulates it)")
    parser.add_argument("--sizes", metavar="HxW[:BATCH],...",
                        help="instead of the full run: training steps/s and peak memory at these image "
                             "sizes (multiples of 64), each with its batch size (default --train_batch), "
                             "e.g. 256x192:4,512x384:2,1024x768:1")
    args = parser.parse_args(argv)
    args.warmup = 1
    if args.quick:
        args.pairs, args.repeats, args.warmup, args.batches = 2, 1, 0, "1"
        args.fast_batch, args.train_batch, args.train_steps = 2, 1, 1
    args.batches = [int(b) for b in args.batches.split(",")]
    if args.pairs < 2:
        parser.error("--pairs must be at least 2")
    if args.sizes:
        try:
            args.sizes = [parse_size(size, args.train_batch) for size in args.sizes.split(",")]
        except ValueError as e:
            parser.error(f"--sizes: {e}")
    try:
        args.device = pipeline.pick_device(args.device)
    except ValueError as e:
        parser.error(str(e))
    return args


def parse_size(text, batch):
    """'HxW' or 'HxW:BATCH' -> (H, W, batch); ValueError unless H and W are multiples of 64."""
    size, _, batch_text = text.partition(":")
    try:
        height, width = (int(side) for side in size.lower().split("x"))
        batch = int(batch_text) if batch_text else batch
    except ValueError:
        raise ValueError(f"{text!r} is not HxW or HxW:BATCH, e.g. 512x384:2") from None
    networks.check_image_size(height, width)
    if batch < 1:
        raise ValueError(f"{text!r}: the batch size must be at least 1")
    return height, width, batch


def cpu_name():
    """The CPU's model name (Linux's /proc/cpuinfo), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(fns, device, repeats, warmup, self_timed=False):
    """{name: median seconds} of the callables run in turn, `warmup` untimed rounds then `repeats`
    timed ones; with self_timed, each callable returns its own seconds."""
    times = {name: [] for name in fns}
    for round_ in range(warmup + repeats):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            seconds = fn()
            sync(device)
            if round_ >= warmup:
                times[name].append(seconds if self_timed else time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


# ---------------------------------------------------------------------------------------------
# The original cp-vton preprocessing and test loop: the baselines, and the reference that
# tests/test_dataset.py checks CPDataset's items against. Written the way the original works
# (torchvision transforms, PIL drawing), sharing no code with cp_dataset's fast path.


def original_transform(image):
    """The original's ToTensor + Normalize(0.5, 0.5): a PIL image -> [c, H, W] in [-1, 1]."""
    tensor = T.ToTensor()(image)
    return T.Normalize((0.5,) * len(tensor), (0.5,) * len(tensor))(tensor)


def original_pose(keypoints, radius, height=256, width=192):
    """(pose maps [n, H, W], pose image [1, H, W]) in {-1, 1}: a white square of half-size `radius`
    drawn by PIL for each keypoint (x, y, score) with x > 1 and y > 1."""
    maps = torch.zeros(len(keypoints), height, width)
    pose_image = Image.new("L", (width, height))
    for i, (x, y, _) in enumerate(keypoints):
        one_map = Image.new("L", (width, height))
        if x > 1 and y > 1:
            for canvas in (one_map, pose_image):
                ImageDraw.Draw(canvas).rectangle((x - radius, y - radius, x + radius, y + radius),
                                                 "white", "white")
        maps[i] = original_transform(one_map)[0]
    return maps, original_transform(pose_image)


def original_item(split_dir, im_name, c_name, stage="GMM", radius=5, height=256, width=192,
                  grid_path="grid.png"):
    """The original CPDataset.__getitem__ for a pair of `split_dir` (<dataroot>/<datamode>); the
    GMM's grid image is read from `grid_path`."""
    paths = cp_dataset.pair_paths(split_dir, im_name, c_name, stage)
    cloth = original_transform(Image.open(paths["cloth"]))
    cloth_mask = torch.from_numpy((np.array(Image.open(paths["cloth_mask"])) >= 128).astype(np.float32))
    image = original_transform(Image.open(paths["image"]))
    parse = np.array(Image.open(paths["parse"]))
    body = Image.fromarray(((parse > 0) * 255).astype(np.uint8))
    body = body.resize((width // 16, height // 16), Image.BILINEAR).resize((width, height), Image.BILINEAR)
    shape = original_transform(body)
    head = torch.from_numpy(sum((parse == label).astype(np.float32) for label in (1, 2, 4, 13)))
    garment = torch.from_numpy(sum((parse == label).astype(np.float32) for label in (5, 6, 7)))
    im_h = image * head - (1 - head)
    with open(paths["pose"]) as f:
        keypoints = np.array(json.load(f)["people"][0]["pose_keypoints"]).reshape((-1, 3))
    pose_maps, pose_image = original_pose(keypoints, radius, height, width)
    return {"c_name": c_name, "im_name": im_name, "cloth": cloth, "cloth_mask": cloth_mask[None],
            "image": image, "agnostic": torch.cat([shape, im_h, pose_maps], 0),
            "parse_cloth": image * garment + (1 - garment), "shape": shape, "head": im_h,
            "pose_image": pose_image,
            "grid_image": original_transform(Image.open(grid_path)) if stage == "GMM" else ""}


class OriginalDataset(Dataset):
    """original_item over the pairs of test/train options `opt`."""

    def __init__(self, opt, grid_path):
        self.pairs = cp_dataset.read_pairs(osp.join(opt.dataroot, opt.data_list))
        self.item = functools.partial(original_item, osp.join(opt.dataroot, opt.datamode), stage=opt.stage,
                                      radius=opt.radius, height=opt.fine_height, width=opt.fine_width,
                                      grid_path=grid_path)

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, index):
        return self.item(*self.pairs[index])


def original_test(opt, grid_path, device):
    """The original test.py loop for opt.stage: the plain fp32 model under no_grad, OriginalDataset
    with the batch size and workers of opt, and every step the original visualization.save_images
    and board_add_images (PNG grids, images (t+1)/2 clamped, 1 channel repeated to 3)."""
    model = networks.build_model(opt.stage)
    networks.load_checkpoint(model, opt.checkpoint, stage=opt.stage)
    model.to(device).eval()
    loader = DataLoader(OriginalDataset(opt, grid_path), batch_size=opt.batch_size,
                        num_workers=opt.workers, pin_memory=device.type == "cuda")
    out_dir = cp_dataset.result_dir_of(opt.result_dir, opt.checkpoint, opt.datamode)
    for folder in cp_dataset.RESULT_FOLDERS[opt.stage]:
        os.makedirs(osp.join(out_dir, folder), exist_ok=True)
    board = SummaryWriter(logdir=osp.join(opt.tensorboard_dir, opt.name))
    with torch.no_grad():
        for step, inputs in enumerate(loader):
            x = pipeline.to_device(inputs, device)
            top = [x["head"], x["shape"], x["pose_image"]]
            if opt.stage == "GMM":
                grid, _theta = model(x["agnostic"], x["cloth"])
                warped_cloth = networks.warp(x["cloth"], grid, "border")
                warped_mask = networks.warp(x["cloth_mask"], grid, "zeros")
                warped_grid = networks.warp(x["grid_image"], grid, "zeros")
                visuals = [top, [x["cloth"], warped_cloth, x["parse_cloth"]],
                           [warped_grid, (warped_cloth + x["image"]) * 0.5, x["image"]]]
                saved = [(warped_cloth, inputs["c_name"]), (warped_mask * 2 - 1, inputs["c_name"])]
            else:
                outputs = model(torch.cat([x["agnostic"], x["cloth"]], 1))
                p_rendered, m_composite = torch.tanh(outputs[:, :3]), torch.sigmoid(outputs[:, 3:])
                p_tryon = x["cloth"] * m_composite + p_rendered * (1 - m_composite)
                visuals = [top, [x["cloth"], 2 * x["cloth_mask"] - 1, m_composite],
                           [p_rendered, p_tryon, x["image"]]]
                saved = [(p_tryon, inputs["im_name"])]
            for folder, (images, names) in zip(cp_dataset.RESULT_FOLDERS[opt.stage], saved):
                for image, name in zip(images, names):
                    array = ((image.clone() + 1) * 0.5 * 255).cpu().clamp(0, 255).numpy().astype("uint8")
                    array = array[0] if len(array) == 1 else array.transpose(1, 2, 0)
                    Image.fromarray(array).save(osp.join(out_dir, folder, name))
            rows = [torch.cat([((t.clone() + 1) * 0.5).cpu().clamp(0, 1).expand(-1, 3, -1, -1)
                               for t in row], 3) for row in visuals]
            for i, image in enumerate(torch.cat(rows, 2)):
                board.add_image("combine/%03d" % i, image, step + 1)
    board.close()


# ---------------------------------------------------------------------------------------------
# Sections


def fast_precisions(args, fp16=True):
    """{mode: precision} of the fast path: fp32; bf16 where the device runs it natively (or with
    --emulated_bf16); fp16 on CUDA (with `fp16`)."""
    modes = {"fast": "fp32"}
    if pipeline.native_bf16(args.device) or args.emulated_bf16:
        modes["fast-bf16"] = "bf16"
    if fp16 and args.device.type == "cuda":
        modes["fast-fp16"] = "fp16"
    return modes


def measure_peaks(args):
    """GFLOP/s of a large fp32 matmul and of a 3x3 convolution (fp32, and bf16 channels_last)."""
    device = args.device
    n, batch = (8192, 64) if device.type == "cuda" else (512, 1) if args.quick else (2048, 8)
    a = torch.randn(n, n, device=device)
    conv = nn.Conv2d(256, 256, 3, padding=1).to(device).eval()
    conv_cl = copy.deepcopy(conv).to(memory_format=torch.channels_last)
    x = torch.randn(batch, 256, 32, 24, device=device)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    native = pipeline.native_bf16(device)
    x_bf16 = x_cl if native else x_cl[:1]  # emulated bf16 is slow: a small problem shows it

    def conv_bf16():
        with pipeline.autocast(device, "bf16"):
            conv_cl(x_bf16)

    with torch.inference_mode():
        t = interleaved({"matmul": lambda: a @ a, "conv": lambda: conv(x), "conv_cl": lambda: conv_cl(x_cl),
                         "conv_bf16": conv_bf16}, device, repeats=3, warmup=1)
    gflop = 2 * 256 * 256 * 9 * 32 * 24 / 1e9  # per image
    return {"matmul_fp32": 2 * n ** 3 / 1e9 / t["matmul"], "conv_fp32": gflop * batch / t["conv"],
            "conv_fp32_channels_last": gflop * batch / t["conv_cl"],
            "conv_bf16_channels_last": gflop * len(x_bf16) / t["conv_bf16"], "native_bf16": native}


def dataset_section(args):
    """Items/s with 1 torch thread (as in a loader worker) of the original items and of compact
    items expanded on the device in batches of 4 (the fast path), checked equal; then through
    DataLoaders of batch 4 (the original with 1 worker, the fast path with --fast_workers)."""
    device = args.device
    opt = options.test_options(["--checkpoint", "", "--dataroot", args.root, "--datamode", "test",
                                "--data_list", "test_pairs.txt"])
    original, compact = OriginalDataset(opt, args.grid_path), cp_dataset.CPDataset(opt, compact=True)
    n = len(compact)
    chunks = [range(start, min(start + 4, n)) for start in range(0, n, 4)]
    batches = [default_collate([compact[i] for i in chunk]) for chunk in chunks]
    equal = True
    for chunk, batch in list(zip(chunks, batches))[:2]:
        a = default_collate([original[i] for i in chunk])
        b = compact.expand(pipeline.to_device(batch, device))
        equal &= all(a[k] == b[k] if isinstance(a[k], list) else torch.equal(a[k], b[k].cpu()) for k in a)

    def read_all(dataset):
        for i in range(n):
            dataset[i]

    def expand_all(compact_batches):  # each expanded batch dropped, as a training step would
        for batch in compact_batches:
            compact.expand(pipeline.to_device(batch, device))

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    t = interleaved({"original": lambda: read_all(original), "compact": lambda: read_all(compact),
                     "expand": lambda: expand_all(batches)}, device, args.repeats, args.warmup)
    torch.set_num_threads(threads)
    loaders = {name: DataLoader(dataset, batch_size=4, num_workers=workers, persistent_workers=workers > 0)
               for name, dataset, workers in (("original", original, 1), ("fast", compact, args.fast_workers))}
    tl = interleaved({"original": lambda: [None for _ in loaders["original"]], "fast": lambda: expand_all(loaders["fast"])},
                     device, args.repeats, args.warmup)
    fast = t["compact"] + t["expand"]
    return {"items": n, "equal_to_original": bool(equal),
            "original_items_per_s": n / t["original"], "compact_items_per_s": n / t["compact"],
            "expand_items_per_s": n / t["expand"], "items_per_s": n / fast, "speedup": t["original"] / fast,
            "original_loader_workers": 1, "loader_workers": args.fast_workers,
            "original_loader_items_per_s": n / tl["original"], "loader_items_per_s": n / tl["fast"]}


def forward_section(args):
    """pairs/s and GFLOP/s of GMM and TOM forward passes on random inputs: the plain fp32 model against
    networks.for_inference in each fast mode; max_abs_diff: from the plain output (the GMM's grid)."""
    device, precisions, rows = args.device, fast_precisions(args), []
    for stage in STAGES:
        torch.manual_seed(0)
        plain = networks.build_model(stage).to(device).eval()
        fast = networks.for_inference(copy.deepcopy(plain))
        shapes = [(22, 256, 192), (3, 256, 192)] if stage == "GMM" else [(25, 256, 192)]
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            plain(*[torch.zeros(1, *s, device=device) for s in shapes])
        gflop = counter.get_total_flops() / 1e9
        for batch in args.batches:
            inputs = [torch.randn(batch, *s, device=device) for s in shapes]
            outputs = {}

            def run(mode):
                grad_mode = torch.no_grad() if mode == "fp32" else torch.inference_mode()
                with grad_mode, pipeline.autocast(device, precisions.get(mode, "fp32")):
                    out = (plain if mode == "fp32" else fast)(*inputs)
                outputs[mode] = (out[0] if stage == "GMM" else out).float()

            t = interleaved({mode: functools.partial(run, mode) for mode in ["fp32", *precisions]},
                            device, args.repeats, args.warmup)
            rows += [{"model": stage, "batch": batch, "mode": mode, "pairs_per_s": batch / t[mode],
                      "gflop_per_pair": gflop, "gflops": gflop * batch / t[mode],
                      "max_abs_diff": (outputs[mode] - outputs["fp32"]).abs().max().item()} for mode in t]
    return rows


def steps_2_and_5(args, mode, argv, checkpoints):
    """Seconds of the GMM test (step 2), then of the TOM test (step 5) on its warps, which are
    copied into the dataset first, untimed (step 3): the original loop for mode 'original', else
    pipeline.run_test. `argv`: test.py's options common to both stages."""
    root, device, seconds = args.root, args.device, 0.0
    for stage in STAGES:
        opt = options.test_options(argv + ["--stage", stage, "--checkpoint", checkpoints[stage],
                                           "--name", f"{mode}_{stage}"])
        if stage == "TOM":
            warps = cp_dataset.result_dir_of(opt.result_dir, checkpoints["GMM"], opt.datamode)
            for folder in cp_dataset.WARP_FOLDERS:
                shutil.rmtree(osp.join(root, opt.datamode, folder), ignore_errors=True)
                shutil.copytree(osp.join(warps, folder), osp.join(root, opt.datamode, folder))
        sync(device)
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # progress bars
            original_test(opt, args.grid_path, device) if mode == "original" else pipeline.run_test(opt, device)
        sync(device)
        seconds += time.perf_counter() - start
    return seconds


def compare_images(dir_a, dir_b):
    """Max and mean 8-bit level difference, and the fraction differing, of dir_a's images from dir_b's."""
    diffs = [np.abs(np.asarray(Image.open(osp.join(dir_a, name)), np.int16)
                    - np.asarray(Image.open(osp.join(dir_b, name)), np.int16)).ravel()
             for name in sorted(os.listdir(dir_a))]
    diff = np.concatenate(diffs)
    return {"max_level_diff": int(diff.max()), "mean_level_diff": float(diff.mean()),
            "fraction_differing": float((diff > 0).mean())}


def end_to_end_section(args):
    """pairs/s of steps 2 + 5: the original loop against test.py's in each fast mode but fp16, and
    each mode's result images against the original's (the TOM reads each mode's own warps)."""
    device, root, work = args.device, args.root, args.work
    torch.manual_seed(0)
    checkpoints = {stage: osp.join(work, f"{stage.lower()}_final.pth") for stage in STAGES}
    for stage, path in checkpoints.items():
        networks.save_checkpoint(networks.build_model(stage), path)
    precisions = fast_precisions(args, fp16=False)
    common = ["--dataroot", root, "--datamode", "test", "--data_list", "test_pairs.txt",
              "--device", str(device), "--tensorboard_dir", osp.join(work, "tensorboard")]
    argv = {"original": ["--batch_size", "4", "--workers", "1"]}
    argv.update({mode: ["--batch_size", str(args.fast_batch), "--workers", str(args.fast_workers),
                        "--precision", precision] for mode, precision in precisions.items()})
    runs = {mode: functools.partial(steps_2_and_5, args, mode, common + more + ["--result_dir", osp.join(work, mode)],
                                    checkpoints) for mode, more in argv.items()}
    t = interleaved(runs, device, args.repeats, args.warmup, self_timed=True)
    outputs = [osp.join(cp_dataset.result_dir_of("", checkpoints[stage], "test"), folder)  # in a --result_dir
               for stage in STAGES for folder in cp_dataset.RESULT_FOLDERS[stage]]
    pairs = len(cp_dataset.read_pairs(osp.join(root, "test_pairs.txt")))
    out = {"pairs": pairs, "original_pairs_per_s": pairs / t["original"],
           "original": {"batch": 4, "workers": 1, "precision": "fp32"}, "modes": []}
    for mode, precision in precisions.items():
        images = {osp.basename(path): compare_images(osp.join(work, "original", path), osp.join(work, mode, path))
                  for path in outputs}
        out["modes"].append({"mode": mode, "batch": args.fast_batch, "workers": args.fast_workers,
                             "precision": precision, "pairs_per_s": pairs / t[mode],
                             "speedup": t["original"] / t[mode], "images_vs_original": images})
    return out


def train_section(args):
    """steps/s of the GMM and TOM losses with backward and Adam at --train_batch: the plain layout
    and channels_last, in fp32 and, where the device runs it natively, bf16."""
    device = args.device
    dataset = cp_dataset.CPDataset(dataroot=args.root, datamode="train", data_list="train_pairs.txt")
    inputs = pipeline.to_device(default_collate([dataset[i % len(dataset)] for i in range(args.train_batch)]), device)
    modes = {"fp32": (False, "fp32"), "fp32_channels_last": (True, "fp32")}
    if pipeline.native_bf16(device):
        modes.update(bf16=(False, "bf16"), bf16_channels_last=(True, "bf16"))
    result = {"batch": args.train_batch, "modes": list(modes)}

    def make_step(stage, channels_last, precision):
        torch.manual_seed(0)
        model = networks.build_model(stage).to(device).train()
        step_inputs = networks.channels_last_inputs(inputs) if channels_last else inputs
        if channels_last:
            networks.use_channels_last(model)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.5, 0.999))
        perceptual = networks.VGGLoss(pretrained=False).to(device) if stage == "TOM" else None

        def step():
            with pipeline.autocast(device, precision):
                loss = pipeline.LOSSES[stage](model, step_inputs, perceptual)[0]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return step

    for stage in STAGES:
        t = interleaved({mode: make_step(stage, *how) for mode, how in modes.items()},
                        device, args.train_steps, args.warmup)
        result.update({f"{stage}_{mode}_steps_per_s": 1 / t[mode] for mode in modes})
    return result


def memory_section(args):
    rss = lambda who: resource.getrusage(who).ru_maxrss / 1024  # KiB -> MiB on Linux
    result = {"peak_rss_mb": rss(resource.RUSAGE_SELF), "peak_rss_children_mb": rss(resource.RUSAGE_CHILDREN)}
    if args.device.type == "cuda":
        result["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(args.device) / 2 ** 20
    return result


# ---------------------------------------------------------------------------------------------
# Training at several image sizes (--sizes), each measurement in a fresh process

# The training inputs: random values in [-1, 1] with a batch's channels.
TRAIN_INPUTS = {"agnostic": 22, "cloth": 3, "cloth_mask": 1, "image": 3, "parse_cloth": 3, "grid_image": 3}


def peak_rss_mb():
    """This process's peak resident memory in MiB: Linux's VmHWM, the peak of its own address space
    (ru_maxrss would also count the spawning process's peak, which it keeps across exec)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def in_fresh_process(fn, *args):
    """fn(*args) run in a new process, forked from a server process that has only imported this
    module: each one starts from the same memory, without importing torch again."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["bench"])  # by name: "__main__" is not preloaded (Python 3.11)
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(fn, *args).result()


def time_training(stage, height, width, batch, precision, perceptual, device, steps, warmup):
    """(median seconds of a training step at this size after `warmup` untimed ones, {'peak_rss_mb',
    on CUDA also 'cuda_max_allocated_mb'}): the model, optimiser and loss built from train.py's
    options by train.build_training, each step train.training_step, as train.py runs them. Meant
    for a fresh process, whose peak memory is then this measurement's."""
    device = torch.device(device)
    opt = options.train_options(["--stage", stage, "--fine_height", str(height), "--fine_width", str(width),
                                 "--batch_size", str(batch), "--precision", precision,
                                 "--perceptual", perceptual])
    model, perceptual_loss, parts = train.build_training(opt, device)
    loss_fn, autocast = train.loss_function(opt), pipeline.autocast(device, opt.precision)
    inputs = {key: torch.rand(batch, channels, height, width, device=device) * 2 - 1
              for key, channels in TRAIN_INPUTS.items()}
    step = lambda: train.training_step(model, parts, inputs, loss_fn, perceptual_loss, autocast)
    seconds = interleaved({"step": step}, device, steps, warmup)["step"]
    memory = {"peak_rss_mb": peak_rss_mb()}
    if device.type == "cuda":
        memory["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    return seconds, memory


def sizes_section(args):
    """steps/s, pairs/s and peak memory of the GMM's and the TOM's training steps at each of --sizes,
    in each precision of the fast path (fp32; bf16 where native or with --emulated_bf16; fp16 on
    CUDA), each in a fresh process. The TOM's loss has the VGG19 perceptual term only where its
    ImageNet weights are in torchvision's cache (nothing is downloaded)."""
    vgg_cached = osp.isfile(osp.join(torch.hub.get_dir(), "checkpoints", networks.VGG19_FILE))
    result = {"perceptual": "vgg19" if vgg_cached else "none", "steps": args.train_steps, "warmup": args.warmup,
              "idle_rss_mb": in_fresh_process(peak_rss_mb), "rows": []}
    for stage in STAGES:
        for height, width, batch in args.sizes:
            for precision in fast_precisions(args).values():
                seconds, memory = in_fresh_process(time_training, stage, height, width, batch, precision,
                                                   result["perceptual"], str(args.device), args.train_steps,
                                                   args.warmup)
                memory["peak_rss_above_idle_mb"] = memory.pop("peak_rss_mb") - result["idle_rss_mb"]
                result["rows"].append({"stage": stage, "height": height, "width": width, "batch": batch,
                                       "precision": precision, "steps_per_s": 1 / seconds,
                                       "pairs_per_s": batch / seconds, **memory})
                print(f"[{stage} {height}x{width} batch {batch} {precision}: {seconds:.2f} s/step]",
                      file=sys.stderr, flush=True)
    return result


def sizes_table(results):
    m, r = results["machine"], results["sizes"]
    cuda = "cuda_max_allocated_mb" in r["rows"][0]
    perceptual = ("with the VGG19 perceptual term (ImageNet weights from torchvision's cache)"
                  if r["perceptual"] == "vgg19" else
                  "without the VGG19 perceptual term (--perceptual none: no VGG19 weights in torchvision's cache)")
    memory = ("CUDA max allocated" if cuda else
              f"peak RSS above an idle process with the same imports ({r['idle_rss_mb']:.0f} MiB)")
    lines = [
        f"CP-VTON training by image size on {m['device']} ({m['cuda'] or m['cpu']}), torch {m['torch']}, "
        f"{m['threads']} threads, load {m['load_before'][0]:.2f} -> {m['load_after'][0]:.2f}"
        f"{' [quick]' if results['quick'] else ''}",
        f"train.py's step (forward, loss, backward, Adam; plain layout) on random inputs, median of "
        f"{r['steps']} steps after {r['warmup']} warm-up; TOM {perceptual}",
        f"memory: {memory}, each row measured in its own process",
        "",
        f"{'stage':6}{'size':>10}{'batch':>6}{'precision':>10}{'steps/s':>9}{'pairs/s':>9}{'memory MiB':>12}"]
    lines += [f"{row['stage']:6}{row['height']:>6d}x{row['width']:<3d}{row['batch']:6d}{row['precision']:>10}"
              f"{row['steps_per_s']:9.3f}{row['pairs_per_s']:9.3f}"
              f"{row['cuda_max_allocated_mb' if cuda else 'peak_rss_above_idle_mb']:12.0f}" for row in r["rows"]]
    return "\n".join(lines)


def table(results):
    m, peak, d, e = (results[k] for k in ("machine", "peak_gflops", "dataset", "end_to_end"))
    tr, mem = results["train"], results["memory"]
    lines = [
        f"CP-VTON benchmark on {m['device']} ({m['cpu']}), torch {m['torch']}, {m['threads']} threads, "
        f"load {m['load_before'][0]:.2f} -> {m['load_after'][0]:.2f}{' [quick]' if results['quick'] else ''}",
        f"peak GFLOP/s: matmul fp32 {peak['matmul_fp32']:.0f}; conv fp32 {peak['conv_fp32']:.0f} "
        f"(channels_last {peak['conv_fp32_channels_last']:.0f}); conv bf16 channels_last "
        f"{peak['conv_bf16_channels_last']:.0f} ({'native' if peak['native_bf16'] else 'emulated'})",
        "",
        f"dataset items/s, one process, 1 thread: original {d['original_items_per_s']:.1f}, fast "
        f"{d['items_per_s']:.1f} (x{d['speedup']:.2f}); items equal to the original: {d['equal_to_original']}",
        f"  fast = compact items {d['compact_items_per_s']:.0f}/s, then expanded on {m['device']} "
        f"{d['expand_items_per_s']:.0f}/s",
        f"  through the loader, workers {d['original_loader_workers']} / {d['loader_workers']}: original "
        f"{d['original_loader_items_per_s']:.1f}, fast {d['loader_items_per_s']:.1f}",
        "",
        f"{'forward':10}{'batch':>6}{'mode':>11}{'pairs/s':>10}{'GFLOP/s':>10}{'max|diff|':>11}"]
    lines += [f"{r['model']:10}{r['batch']:6d}{r['mode']:>11}{r['pairs_per_s']:10.2f}{r['gflops']:10.1f}"
              f"{r['max_abs_diff']:11.1e}" for r in results["forward"]]
    lines += ["", f"end to end, steps 2+5, {e['pairs']} pairs (pairs/s): original "
                  f"{e['original_pairs_per_s']:.2f} (batch 4, 1 worker, fp32)"]
    lines += [f"  {r['mode']:10} {r['pairs_per_s']:6.2f} (batch {r['batch']}, {r['workers']} worker(s), "
              f"{r['precision']}): x{r['speedup']:.2f}; images vs original (max / mean level diff): "
              + ", ".join(f"{folder} {c['max_level_diff']} / {c['mean_level_diff']:.2f}"
                          for folder, c in r["images_vs_original"].items()) for r in e["modes"]]
    lines.append(f"training (steps/s, batch {tr['batch']}, TOM with VGG19 perceptual on random weights):")
    lines += [f"  {stage}: " + ", ".join(f"{mode} {tr[f'{stage}_{mode}_steps_per_s']:.2f}"
                                         for mode in tr["modes"]) for stage in STAGES]
    cuda = f", CUDA max allocated {mem['cuda_max_allocated_mb']:.0f} MiB" if "cuda_max_allocated_mb" in mem else ""
    lines.append(f"peak memory: RSS {mem['peak_rss_mb']:.0f} MiB "
                 f"(loader workers {mem['peak_rss_children_mb']:.0f} MiB){cuda}")
    return "\n".join(lines)


def full_run(args, results):
    """The sections of the full run, on a sample dataset in a temporary folder, into `results`."""
    args.work = tempfile.mkdtemp(prefix="cpvton-bench-")
    try:
        args.root = osp.join(args.work, "data")
        sample_data.generate(args.root, n_train=max(2, args.train_batch), n_test=args.pairs, seed=0)
        args.grid_path = osp.join(args.work, "grid.png")  # the original reads it from the working directory
        Image.fromarray(cp_dataset.make_grid_image()).save(args.grid_path)
        sections = {"peak_gflops": measure_peaks, "dataset": dataset_section, "forward": forward_section,
                    "end_to_end": end_to_end_section, "train": train_section, "memory": memory_section}
        for name, section in sections.items():
            start = time.perf_counter()
            results[name] = section(args)
            print(f"[{name}: {time.perf_counter() - start:.1f} s]", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(args.work, ignore_errors=True)


def main(argv=None):
    args = get_options(argv)
    device = args.device
    results = {"quick": args.quick, "machine": {
        "device": str(device), "cpu": cpu_name(), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "load_before": os.getloadavg(),
        "cuda": torch.cuda.get_device_name(device) if device.type == "cuda" else None}}
    if args.sizes:
        results["sizes"] = sizes_section(args)
    else:
        full_run(args, results)
    results["machine"]["load_after"] = os.getloadavg()
    print(sizes_table(results) if args.sizes else table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
