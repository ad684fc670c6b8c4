"""Benchmark of the CP-VTON reproduction: data loading, GMM/TOM forward, end-to-end test
(steps 2 + 5), training steps, memory, and the distance to the machine's measured peak.

    python bench.py                       # full run: a few minutes on a 2-core CPU
    python bench.py --quick               # tiny counts, seconds (what the tests run)
    python bench.py --json bench.json     # also write every figure as JSON

It runs on the device present (CUDA if available, else the CPU; --device to choose). Each figure
is the median of --repeats timed runs after a warm-up. Speed-ups are ratios to a baseline that
mirrors the original code, timed in the same process and interleaved with the fast path (run A,
run B, run A, ...), so that load from other processes on a shared machine hits both alike:

- dataset: the original item preprocessing, kept in this file (not in the library): torchvision
  ToTensor + Normalize per image, 18 PIL canvases for the pose maps (+1 for the pose image),
  grid.png read from disk for every item; against the fast path's compact items
  (CPDataset(compact=True)) expanded in batches on the device, the same values as CPDataset's;
- forward: the plain fp32 models under torch.no_grad(), against the fast path
  (networks.for_inference: channels_last under torch.inference_mode(), and bf16/fp16 autocast
  where the device runs them natively);
- end to end: the original test loop (batch 4, one loader worker, images written and TensorBoard
  images logged in the loop every step as with the default --display_count 1, with the original's
  torch-op save_images / board_add_images, also kept here) against test.py
  (--fast_batch, --fast_workers, its threaded writer) in fp32 and, where the device runs bf16
  natively, in bf16 (--precision bf16), the GMM test (step 2) then the TOM test (step 5) on a
  sample dataset written to a temporary folder, with random weights;
- training: steps/s of train.py's GMM and TOM steps (loss, backward, Adam) at --train_batch, in
  the original's plain layout and in the channels_last one, in fp32 and in bf16 autocast where
  native (TOM with the VGG19 perceptual loss on random VGG weights: the same compute as ImageNet
  weights).

GFLOP/s are the models' forward FLOPs (counted by torch.utils.flop_counter) per second, shown
against the peak of a large matmul and a large convolution measured in the same run.
"""
import argparse
import contextlib
import copy
import io
import json
import os
import os.path as osp
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time

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
import sample_data
import test as test_py
import train

TARGETS = {"end_to_end_speedup": 3.0, "dataset_speedup": 5.0, "fp32_max_abs_diff": 1e-4}


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
                        help="also time bf16 forward passes and the bf16 end-to-end test where the "
                             "device has no native bf16 (slow: oneDNN emulates it)")
    args = parser.parse_args(argv)
    args.warmup = 1
    if args.quick:
        args.pairs, args.repeats, args.warmup, args.batches = 2, 1, 0, "1"
        args.fast_batch, args.train_batch, args.train_steps = 2, 1, 1
    args.batches = [int(b) for b in args.batches.split(",")]
    if args.pairs < 2:
        parser.error("--pairs must be at least 2")
    return args


# ---------------------------------------------------------------------------------------------
# Timing


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(fns, device, repeats, warmup):
    """{name: median seconds} of the callables, run in turn `repeats` times after `warmup` rounds."""
    times = {name: [] for name in fns}
    for round_ in range(warmup + repeats):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


@contextlib.contextmanager
def torch_threads(n):
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def quiet():
    """Silence a run's progress bars and prints."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


# ---------------------------------------------------------------------------------------------
# The baseline: the original preprocessing and test loop


class OriginalDataset(Dataset):
    """The original cp_dataset.CPDataset.__getitem__, minimal: same values as CPDataset (with the
    1-channel Normalize that modern torchvision needs), same per-item work, grid.png from disk."""

    def __init__(self, opt, grid_path):
        self.stage, self.radius = opt.stage, opt.radius
        self.height, self.width = opt.fine_height, opt.fine_width
        self.data_path, self.grid_path = osp.join(opt.dataroot, opt.datamode), grid_path
        self.transform = T.Compose([T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
        self.transform_1 = T.Compose([T.ToTensor(), T.Normalize((0.5,), (0.5,))])
        with open(osp.join(opt.dataroot, opt.data_list)) as f:
            self.im_names, self.c_names = zip(*(line.split() for line in f if line.strip()))

    def __len__(self):
        return len(self.im_names)

    def __getitem__(self, index):
        c_name, im_name = self.c_names[index], self.im_names[index]
        folders = ("cloth", "cloth-mask") if self.stage == "GMM" else ("warp-cloth", "warp-mask")
        c = self.transform(Image.open(osp.join(self.data_path, folders[0], c_name)))
        cm = np.array(Image.open(osp.join(self.data_path, folders[1], c_name)))
        cm = torch.from_numpy((cm >= 128).astype(np.float32)).unsqueeze(0)
        im = self.transform(Image.open(osp.join(self.data_path, "image", im_name)))

        parse = np.array(Image.open(osp.join(self.data_path, "image-parse", im_name.replace(".jpg", ".png"))))
        parse_shape = (parse > 0).astype(np.float32)
        parse_head = sum((parse == label).astype(np.float32) for label in (1, 2, 4, 13))
        parse_cloth = sum((parse == label).astype(np.float32) for label in (5, 6, 7))
        shape = Image.fromarray((parse_shape * 255).astype(np.uint8))
        shape = shape.resize((self.width // 16, self.height // 16), Image.BILINEAR)
        shape = self.transform_1(shape.resize((self.width, self.height), Image.BILINEAR))
        pcm, phead = torch.from_numpy(parse_cloth), torch.from_numpy(parse_head)
        im_c = im * pcm + (1 - pcm)
        im_h = im * phead - (1 - phead)

        with open(osp.join(self.data_path, "pose", im_name.replace(".jpg", "_keypoints.json"))) as f:
            pose = np.array(json.load(f)["people"][0]["pose_keypoints"]).reshape((-1, 3))
        r = self.radius
        pose_map = torch.zeros(len(pose), self.height, self.width)
        im_pose = Image.new("L", (self.width, self.height))
        pose_draw = ImageDraw.Draw(im_pose)
        for i, (x, y, _) in enumerate(pose):
            one_map = Image.new("L", (self.width, self.height))
            if x > 1 and y > 1:
                ImageDraw.Draw(one_map).rectangle((x - r, y - r, x + r, y + r), "white", "white")
                pose_draw.rectangle((x - r, y - r, x + r, y + r), "white", "white")
            pose_map[i] = self.transform_1(one_map)[0]
        im_pose = self.transform_1(im_pose)
        agnostic = torch.cat([shape, im_h, pose_map], 0)
        im_g = self.transform(Image.open(self.grid_path)) if self.stage == "GMM" else ""
        return {"c_name": c_name, "im_name": im_name, "cloth": c, "cloth_mask": cm, "image": im,
                "agnostic": agnostic, "parse_cloth": im_c, "shape": shape, "head": im_h,
                "pose_image": im_pose, "grid_image": im_g}


def original_save_images(img_tensors, img_names, save_dir):
    """The original visualization.save_images (torch ops per image)."""
    for img_tensor, img_name in zip(img_tensors, img_names):
        tensor = ((img_tensor.clone() + 1) * 0.5 * 255).cpu().clamp(0, 255)
        array = tensor.numpy().astype("uint8")
        array = array.squeeze(0) if array.shape[0] == 1 else array.swapaxes(0, 1).swapaxes(1, 2)
        Image.fromarray(array).save(osp.join(save_dir, img_name))


def original_board_add_images(board, tag_name, img_tensors_list, step_count):
    """The original visualization.board_add_images: a (t+1)/2 canvas of the rows, one image per
    batch element (with the clamp fix, for the same images as ours)."""
    def for_board(t):
        t = ((t.clone() + 1) * 0.5).clamp(0, 1)
        return t.repeat(1, 3, 1, 1) if t.size(1) == 1 else t

    b, c, h, w = for_board(img_tensors_list[0][0]).size()
    canvas = torch.FloatTensor(b, c, len(img_tensors_list) * h,
                               max(len(row) for row in img_tensors_list) * w).fill_(0.5)
    for i, row in enumerate(img_tensors_list):
        for j, t in enumerate(row):
            canvas[:, :, i * h:(i + 1) * h, j * w:(j + 1) * w].copy_(for_board(t))
    for i, img in enumerate(canvas):
        board.add_image("%s/%03d" % (tag_name, i), img, step_count)


def original_test(opt, grid_path, device):
    """The original test.py loop for opt.stage: no_grad, plain fp32 model, batch/workers of opt,
    images saved and TensorBoard images logged in the loop (display_count 1)."""
    model = networks.build_model(opt.stage, opt)
    networks.load_checkpoint(model, opt.checkpoint, stage=opt.stage)
    model.to(device).eval()
    loader = DataLoader(OriginalDataset(opt, grid_path), batch_size=opt.batch_size, shuffle=False,
                        num_workers=opt.workers, pin_memory=device.type == "cuda")
    out_dir = osp.join(opt.result_dir, osp.basename(opt.checkpoint), opt.datamode)
    for folder in ("warp-cloth", "warp-mask") if opt.stage == "GMM" else ("try-on",):
        os.makedirs(osp.join(out_dir, folder), exist_ok=True)
    board = SummaryWriter(logdir=osp.join(opt.tensorboard_dir, opt.name))
    with torch.no_grad():
        for step, inputs in enumerate(loader):
            x = {k: v.to(device) if torch.is_tensor(v) else v for k, v in inputs.items()}
            if opt.stage == "GMM":
                grid, _theta = model(x["agnostic"], x["cloth"])
                warped_cloth = networks.warp(x["cloth"], grid, "border")
                warped_mask = networks.warp(x["cloth_mask"], grid, "zeros")
                warped_grid = networks.warp(x["grid_image"], grid, "zeros")
                visuals = [[x["head"], x["shape"], x["pose_image"]],
                           [x["cloth"], warped_cloth, x["parse_cloth"]],
                           [warped_grid, (warped_cloth + x["image"]) * 0.5, x["image"]]]
                original_save_images(warped_cloth, inputs["c_name"], osp.join(out_dir, "warp-cloth"))
                original_save_images(warped_mask * 2 - 1, inputs["c_name"], osp.join(out_dir, "warp-mask"))
            else:
                outputs = model(torch.cat([x["agnostic"], x["cloth"]], 1))
                p_rendered, m_composite = torch.tanh(outputs[:, :3]), torch.sigmoid(outputs[:, 3:])
                p_tryon = x["cloth"] * m_composite + p_rendered * (1 - m_composite)
                visuals = [[x["head"], x["shape"], x["pose_image"]],
                           [x["cloth"], 2 * x["cloth_mask"] - 1, m_composite],
                           [p_rendered, p_tryon, x["image"]]]
                original_save_images(p_tryon, inputs["im_name"], osp.join(out_dir, "try-on"))
            original_board_add_images(board, "combine", visuals, step + 1)
    board.close()


# ---------------------------------------------------------------------------------------------
# Sections


def measure_peaks(device, quick):
    """GFLOP/s of a large fp32 matmul and of a 3x3 convolution (fp32, and bf16 channels_last)."""
    cuda = device.type == "cuda"
    n = 8192 if cuda else (512 if quick else 2048)
    a = torch.randn(n, n, device=device)
    batch = 64 if cuda else (1 if quick else 8)
    conv = nn.Conv2d(256, 256, 3, padding=1).to(device).eval()
    conv_cl = copy.deepcopy(conv).to(memory_format=torch.channels_last)
    x = torch.randn(batch, 256, 32, 24, device=device)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    conv_flops = 2 * batch * 256 * 256 * 9 * 32 * 24
    native = networks.native_bf16(device)
    bf16_batch = batch if native else 1  # emulated bf16 is slow: a small problem shows it
    x_bf16 = x_cl[:bf16_batch]

    def conv_bf16():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            conv_cl(x_bf16)

    with torch.inference_mode():
        t = interleaved({"matmul": lambda: a @ a, "conv": lambda: conv(x), "conv_cl": lambda: conv_cl(x_cl),
                         "conv_bf16": conv_bf16}, device, repeats=3, warmup=1)
    return {"matmul_fp32": 2 * n ** 3 / t["matmul"] / 1e9,
            "conv_fp32": conv_flops / t["conv"] / 1e9,
            "conv_fp32_channels_last": conv_flops / t["conv_cl"] / 1e9,
            "conv_bf16_channels_last": conv_flops * bf16_batch / batch / t["conv_bf16"] / 1e9,
            "native_bf16": native}


def dataset_section(opt, grid_path, args, device):
    """Items/s of the original preprocessing and of ours, in one process with 1 torch thread (as in
    a loader worker): CPDataset's items (the spec's), and the fast path's compact items plus their
    expansion on `device` in batches of 4 (what train.py and test.py do; the speed-up target); and
    through DataLoaders of batch 4 (original: 1 worker; fast: compact items, --fast_workers,
    each batch expanded)."""
    original, spec = OriginalDataset(opt, grid_path), cp_dataset.CPDataset(opt)
    compact = cp_dataset.CPDataset(opt, compact=True)
    n = len(spec)
    chunks = [range(start, min(start + 4, n)) for start in range(0, n, 4)]  # batches of 4
    batches = [default_collate([compact[i] for i in chunk]) for chunk in chunks]
    equal = True  # the first 8 items: CPDataset's, and the fast path's expanded batches
    for chunk, batch in list(zip(chunks, batches))[:2]:
        a = default_collate([original[i] for i in chunk])
        for b in (default_collate([spec[i] for i in chunk]), compact.expand(train.to_device(batch, device))):
            equal &= all(a[k] == b[k] if isinstance(a[k], list) else torch.equal(a[k], b[k].cpu()) for k in a)

    def read_all(dataset):
        for i in range(n):
            dataset[i]

    def expand_all(compact_batches):  # each expanded batch dropped, as a training step would
        for batch in compact_batches:
            compact.expand(train.to_device(batch, device))

    with torch_threads(1):
        t = interleaved({"original": lambda: read_all(original), "spec": lambda: read_all(spec),
                         "compact": lambda: read_all(compact), "expand": lambda: expand_all(batches)},
                        device, args.repeats, args.warmup)
    original_loader = DataLoader(original, batch_size=4, num_workers=1, persistent_workers=True)
    fast_loader = cp_dataset.CPDataLoader(
        argparse.Namespace(batch_size=4, workers=args.fast_workers, shuffle=False), compact).data_loader
    tl = interleaved({"original": lambda: [None for _ in original_loader],
                      "ours": lambda: expand_all(fast_loader)},
                     device, args.repeats, args.warmup)
    del original_loader, fast_loader
    fast = t["compact"] + t["expand"]
    return {"items": n, "equal_to_original": bool(equal),
            "original_items_per_s": n / t["original"], "spec_items_per_s": n / t["spec"],
            "compact_items_per_s": n / t["compact"], "expand_items_per_s": n / t["expand"],
            "items_per_s": n / fast, "speedup": t["original"] / fast,
            "original_loader_workers": 1, "loader_workers": args.fast_workers,
            "original_loader_items_per_s": n / tl["original"], "loader_items_per_s": n / tl["ours"]}


def forward_section(opt, args, device):
    """pairs/s of GMM and TOM forward passes: plain fp32 (no_grad) and the fast path."""
    modes = ["fast"]
    if networks.native_bf16(device) or args.emulated_bf16:
        modes.append("fast-bf16")
    if device.type == "cuda":
        modes.append("fast-fp16")
    rows = []
    for stage in ("GMM", "TOM"):
        torch.manual_seed(0)
        plain = networks.build_model(stage, opt).to(device).eval()
        fast = networks.for_inference(copy.deepcopy(plain))
        shapes = [(22, 256, 192), (3, 256, 192)] if stage == "GMM" else [(25, 256, 192)]
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            plain(*[torch.zeros(1, *s, device=device) for s in shapes])
        gflop = counter.get_total_flops() / 1e9
        for batch in args.batches:
            inputs = [torch.randn(batch, *s, device=device) for s in shapes]
            outputs = {}

            def run(mode, model):
                precision = mode.split("-")[1] if "-" in mode else "fp32"
                grad_mode = torch.no_grad() if mode == "fp32" else torch.inference_mode()
                with grad_mode, networks.autocast(device, precision):
                    out = model(*inputs)
                outputs[mode] = (out[0] if stage == "GMM" else out).float()  # GMM: the grid

            fns = {mode: (lambda mode=mode: run(mode, plain if mode == "fp32" else fast))
                   for mode in ["fp32"] + modes}
            t = interleaved(fns, device, args.repeats, args.warmup)
            for mode in fns:
                rows.append({"model": stage, "batch": batch, "mode": mode,
                             "pairs_per_s": batch / t[mode], "gflop_per_pair": gflop,
                             "gflops": gflop * batch / t[mode],
                             "max_abs_diff": (outputs[mode] - outputs["fp32"]).abs().max().item()})
    return rows


def compare_images(dir_a, dir_b):
    """(max abs difference in levels, fraction of differing values) over the images of dir_a."""
    worst, differing, total = 0, 0, 0
    for name in sorted(os.listdir(dir_a)):
        a = np.asarray(Image.open(osp.join(dir_a, name)), np.int16)
        b = np.asarray(Image.open(osp.join(dir_b, name)), np.int16)
        worst = max(worst, int(np.abs(a - b).max()))
        differing, total = differing + int((a != b).sum()), total + a.size
    return worst, differing / max(total, 1)


def end_to_end_section(root, grid_path, work, args, device):
    """pairs/s of steps 2 + 5 (GMM test, then TOM test on its warps): the original loop against
    test.py in fp32 and, where the device runs it natively (or with --emulated_bf16), in bf16."""
    opt = options.test_options(["--checkpoint", ""])
    checkpoints = {}
    torch.manual_seed(0)
    for stage in ("GMM", "TOM"):
        checkpoints[stage] = osp.join(work, "checkpoints", f"{stage.lower()}_final.pth")
        networks.save_checkpoint(networks.build_model(stage, opt), checkpoints[stage])
    data = ["--dataroot", str(root), "--datamode", "test", "--data_list", "test_pairs.txt",
            "--device", str(device), "--tensorboard_dir", osp.join(work, "tensorboard")]
    precisions = {"fast": "fp32"}  # test.py modes timed against the original loop
    if device.type == "cuda" or networks.native_bf16(device) or args.emulated_bf16:
        precisions["fast-bf16"] = "bf16"
    settings = {"original": ["--batch-size", "4", "--workers", "1"]}
    for which, precision in precisions.items():
        settings[which] = ["--batch-size", str(args.fast_batch), "--workers", str(args.fast_workers),
                           "--precision", precision]
    results = {which: osp.join(work, which) for which in settings}

    def stage_argv(which, stage):
        return (["--stage", stage, "--name", f"{which}_{stage}", "--checkpoint", checkpoints[stage],
                 "--result_dir", results[which]] + data + settings[which])

    def copy_warps(which):  # step 3, not timed
        for folder in ("warp-cloth", "warp-mask"):
            target = osp.join(root, "test", folder)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(osp.join(results[which], "gmm_final.pth", "test", folder), target)

    def run(which):
        seconds = 0.0
        for stage in ("GMM", "TOM"):
            if stage == "TOM":
                copy_warps(which)
            sync(device)
            start = time.perf_counter()
            with quiet():
                if which == "original":
                    original_test(options.test_options(stage_argv(which, stage)), grid_path, device)
                else:
                    test_py.main(stage_argv(which, stage))
            sync(device)
            seconds += time.perf_counter() - start
        return seconds

    pairs = len(cp_dataset.CPDataset(options.test_options(["--checkpoint", ""] + data[:6])))
    times = {which: [] for which in settings}
    for round_ in range(args.warmup + args.repeats):
        for which in times:
            seconds = run(which)
            if round_ >= args.warmup:
                times[which].append(seconds)
    t = {which: statistics.median(v) for which, v in times.items()}
    out = {"pairs": pairs, "original_pairs_per_s": pairs / t["original"],
           "original": {"batch": 4, "workers": 1, "precision": "fp32"}, "modes": []}
    for which, precision in precisions.items():
        # Each mode's images against the original's (the TOM read each mode's own warps).
        diffs = {folder: compare_images(osp.join(results["original"], ckpt, "test", folder),
                                        osp.join(results[which], ckpt, "test", folder))
                 for ckpt, folder in (("gmm_final.pth", "warp-cloth"), ("gmm_final.pth", "warp-mask"),
                                      ("tom_final.pth", "try-on"))}
        out["modes"].append({"mode": which, "batch": args.fast_batch, "workers": args.fast_workers,
                             "precision": precision, "channels_last": True, "save_threads": 2,
                             "pairs_per_s": pairs / t[which], "speedup": t["original"] / t[which],
                             "image_max_level_diff": {k: v[0] for k, v in diffs.items()},
                             "image_fraction_differing": {k: v[1] for k, v in diffs.items()}})
    return out


def train_section(root, args, device):
    """steps/s of train.py's GMM and TOM steps (loss, backward, Adam) at --train_batch, timed
    interleaved: the original's plain layout and the channels_last one (--channels_last 1), in fp32
    and, where the device runs bf16 natively, under bf16 autocast (--amp bf16)."""
    opt = options.train_options(["--dataroot", str(root), "--datamode", "train",
                                 "--data_list", "train_pairs.txt"])
    dataset = cp_dataset.CPDataset(opt)
    batch = default_collate([dataset[i % len(dataset)] for i in range(args.train_batch)])
    inputs = train.to_device(batch, device)
    modes = {"fp32": (False, "none"), "fp32_channels_last": (True, "none")}
    if networks.native_bf16(device):
        modes.update(bf16=(False, "bf16"), bf16_channels_last=(True, "bf16"))
    result = {"batch": args.train_batch, "modes": list(modes)}

    def make_step(stage, channels_last, amp):
        torch.manual_seed(0)
        model = networks.build_model(stage, opt).to(device).train()
        step_inputs = inputs
        if channels_last:  # as train.py --channels_last 1
            networks.use_channels_last(model)
            step_inputs = networks.channels_last_inputs(inputs)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.5, 0.999))
        perceptual = networks.VGGLoss(pretrained=False).to(device) if stage == "TOM" else None
        autocast, _ = train.make_amp(amp, device)

        def step():
            with autocast:
                loss = train.STEPS[stage](model, step_inputs, perceptual)[0]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return step

    for stage in ("GMM", "TOM"):
        steps = {mode: make_step(stage, *how) for mode, how in modes.items()}
        t = interleaved(steps, device, args.train_steps, args.warmup)
        for mode in modes:
            result[f"{stage}_{mode}_steps_per_s"] = 1 / t[mode]
        del steps
    return result


def memory_section(device):
    rss = lambda who: resource.getrusage(who).ru_maxrss / 1024  # KiB -> MiB on Linux
    result = {"peak_rss_mb": rss(resource.RUSAGE_SELF),
              "peak_rss_children_mb": rss(resource.RUSAGE_CHILDREN)}
    if device.type == "cuda":
        result["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    return result


# ---------------------------------------------------------------------------------------------
# Report


def table(results):
    lines = []
    add = lines.append
    m, peak = results["machine"], results["peak_gflops"]
    add(f"CP-VTON benchmark on {m['device']} ({m['cpu']}), torch {m['torch']}, {m['threads']} threads, "
        f"load {m['load_before'][0]:.2f} -> {m['load_after'][0]:.2f}{' [quick]' if results['quick'] else ''}")
    add(f"peak GFLOP/s: matmul fp32 {peak['matmul_fp32']:.0f}; conv fp32 {peak['conv_fp32']:.0f} "
        f"(channels_last {peak['conv_fp32_channels_last']:.0f}); conv bf16 channels_last "
        f"{peak['conv_bf16_channels_last']:.0f} ({'native' if peak['native_bf16'] else 'emulated: no native bf16'})")
    d = results["dataset"]
    add("")
    add(f"{'dataset (items/s)':34}{'original':>12}{'fast':>12}{'ratio':>8}")
    add(f"{'  one process, 1 thread':34}{d['original_items_per_s']:12.1f}{d['items_per_s']:12.1f}"
        f"{d['speedup']:8.2f}")
    add(f"    (fast = compact items {d['compact_items_per_s']:.0f}/s, then expanded on {results['machine']['device']} "
        f"{d['expand_items_per_s']:.0f}/s; CPDataset's spec items {d['spec_items_per_s']:.0f}/s)")
    add(f"{'  loader, workers ' + str(d['original_loader_workers']) + ' / ' + str(d['loader_workers']):34}"
        f"{d['original_loader_items_per_s']:12.1f}{d['loader_items_per_s']:12.1f}"
        f"{d['loader_items_per_s'] / d['original_loader_items_per_s']:8.2f}")
    add(f"  items equal to the original: {d['equal_to_original']}")
    add("")
    add(f"{'forward':10}{'batch':>6}{'mode':>11}{'pairs/s':>10}{'GFLOP/s':>10}{'vs fp32':>9}{'max|diff|':>11}")
    base = {(r["model"], r["batch"]): r["pairs_per_s"] for r in results["forward"] if r["mode"] == "fp32"}
    for r in results["forward"]:
        add(f"{r['model']:10}{r['batch']:6d}{r['mode']:>11}{r['pairs_per_s']:10.2f}{r['gflops']:10.1f}"
            f"{r['pairs_per_s'] / base[r['model'], r['batch']]:9.2f}{r['max_abs_diff']:11.1e}")
    e = results["end_to_end"]
    add("")
    add(f"end to end, steps 2+5, {e['pairs']} pairs (pairs/s): original {e['original_pairs_per_s']:.2f} "
        f"(batch 4, 1 worker, fp32)")
    for m in e["modes"]:
        add(f"  {m['mode']:10} {m['pairs_per_s']:6.2f} (batch {m['batch']}, {m['workers']} worker(s), "
            f"{m['precision']}): x{m['speedup']:.2f}; images vs original (max levels / fraction differing): "
            + ", ".join(f"{k} {m['image_max_level_diff'][k]} / {m['image_fraction_differing'][k]:.1e}"
                        for k in m["image_max_level_diff"]))
    tr = results["train"]
    add(f"training (steps/s, batch {tr['batch']}, TOM with VGG19 perceptual on random weights):")
    for stage in ("GMM", "TOM"):
        plain = tr[f"{stage}_fp32_steps_per_s"]
        add(f"  {stage}: " + ", ".join(f"{mode} {tr[f'{stage}_{mode}_steps_per_s']:.2f} "
                                       f"(x{tr[f'{stage}_{mode}_steps_per_s'] / plain:.2f})"
                                       for mode in tr["modes"]))
    mem = results["memory"]
    add(f"peak memory: RSS {mem['peak_rss_mb']:.0f} MiB (loader workers {mem['peak_rss_children_mb']:.0f} MiB)"
        + (f", CUDA max allocated {mem['cuda_max_allocated_mb']:.0f} MiB" if "cuda_max_allocated_mb" in mem else ""))
    add("")
    for name, t in results["targets"].items():
        add(f"target {name}: {t['value']:.3g}{' (' + t['mode'] + ')' if 'mode' in t else ''} (target "
            f"{'<=' if name.endswith('diff') else '>='} {t['target']:g}): {'met' if t['met'] else 'NOT met'}")
    return "\n".join(lines)


def check_targets(results):
    fast = [r for r in results["forward"] if r["mode"] == "fast"]
    best = max(results["end_to_end"]["modes"], key=lambda m: m["speedup"])
    values = {"end_to_end_speedup": best["speedup"],
              "dataset_speedup": results["dataset"]["speedup"],
              "fp32_max_abs_diff": max(r["max_abs_diff"] for r in fast)}
    targets = {name: {"value": value, "target": TARGETS[name],
                      "met": value <= TARGETS[name] if name.endswith("diff") else value >= TARGETS[name]}
               for name, value in values.items()}
    targets["end_to_end_speedup"]["mode"] = best["mode"]
    return targets


def main(argv=None):
    args = get_options(argv)
    device = networks.pick_device(args.device)
    results = {"quick": args.quick, "machine": {
        "device": str(device), "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "load_before": os.getloadavg(),
        "cuda": torch.cuda.get_device_name(device) if device.type == "cuda" else None}}
    work = tempfile.mkdtemp(prefix="cpvton-bench-")
    try:
        root = osp.join(work, "data")
        sample_data.generate(root, n_train=max(2, args.train_batch), n_test=args.pairs, seed=0)
        grid_path = osp.join(work, "grid.png")  # the original reads it from the working directory
        Image.fromarray(cp_dataset.make_grid_image()).save(grid_path)
        opt = options.test_options(["--checkpoint", "", "--dataroot", root, "--datamode", "test",
                                    "--data_list", "test_pairs.txt"])
        sections = [("peak_gflops", lambda: measure_peaks(device, args.quick)),
                    ("dataset", lambda: dataset_section(opt, grid_path, args, device)),
                    ("forward", lambda: forward_section(opt, args, device)),
                    ("end_to_end", lambda: end_to_end_section(root, grid_path, work, args, device)),
                    ("train", lambda: train_section(root, args, device))]
        for name, section in sections:
            start = time.perf_counter()
            results[name] = section()
            print(f"[{name}: {time.perf_counter() - start:.1f} s]", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["memory"] = memory_section(device)
    results["machine"]["load_after"] = os.getloadavg()
    results["targets"] = check_targets(results)
    print(table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
