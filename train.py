"""Train the CP-VTON GMM or TOM stage, in one process or several (DistributedDataParallel).

    python train.py --name gmm_train_new --stage GMM --save_count 5000 --shuffle
    python train.py --name tom_train_new --stage TOM --save_count 5000 --shuffle
    python -m torch.distributed.run --standalone --nproc_per_node 4 train.py --name gmm_train_new ...

Writes checkpoints/<name>/step_NNNNNN.pth every --save_count steps and gmm_final.pth /
tom_final.pth at the end (plain state_dicts, as the original), plus train_state.pth (weights,
optimiser, scheduler, gradient scaler, step) that --resume continues from. TensorBoard logs go to
tensorboard/<name>/.

Under torchrun every process trains on its own share of each global batch (--batch_size is per
process, so the global batch is nproc x batch_size) and DDP averages the gradients; only rank 0
writes checkpoints, TensorBoard and the log. The same loop serves CPU, GPU, DDP and --precision.
"""
import functools
import math
import os
import random
import signal
import sys
import threading
import time
from contextlib import contextmanager

import numpy as np
import torch
import torch.distributed as dist
from tensorboardX import SummaryWriter
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Sampler
from tqdm import tqdm

import atomic
import networks
import pipeline
from cp_dataset import CPDataset, DatasetError
from options import device_of, train_options
from visualization import board_add_images

STATE_FILE = "train_state.pth"
# TensorBoard scalar tag -> its name on stdout
LOG_NAMES = {"metric": "loss", "L1": "l1", "VGG": "vgg", "MaskL1": "mask", "Grid": "grid", "GIC": "gic"}


# --- processes, devices, precision ---

def setup(opt):
    """This process's (device, rank, world_size). Under torchrun (which sets RANK, WORLD_SIZE and
    LOCAL_RANK) it joins the process group: each process on cuda:LOCAL_RANK with NCCL for CUDA
    tensors (gloo for the few CPU ones), or gloo when training on the CPU."""
    device = device_of(opt)
    try:
        pipeline.resolve_precision(opt.precision, device)
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    if opt.sync_bn and device.type != "cuda":
        raise SystemExit("error: --sync_bn needs CUDA devices (PyTorch's SyncBatchNorm has no CPU version)")
    if "RANK" not in os.environ:  # plain `python train.py`
        return device, 0, 1
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    dist.init_process_group("cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo")
    return device, dist.get_rank(), dist.get_world_size()


def wrap_model(model, device, sync_bn):
    """The model as the loop drives it: under torchrun a DistributedDataParallel wrapper (optionally
    with SyncBatchNorm, whose state_dict keys are BatchNorm's), else the model itself."""
    if not dist.is_initialized():
        return model
    if sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def forward_backward(model, inputs, loss_fn, perceptual, autocast, scaler):
    """Forward pass and loss (under autocast), then backward: leaves the gradients in the
    parameters (under DDP averaged over the processes). Returns the loss terms and outputs."""
    with autocast:
        loss, scalars, out = loss_fn(model, inputs, perceptual)
    scaler.scale(loss).backward()
    return scalars, out


def averaged(scalars):
    """The loss terms averaged over the processes: the loss of the global batch, for the log."""
    if not dist.is_initialized():
        return scalars
    values = torch.stack([value.detach().float() for value in scalars.values()])
    dist.all_reduce(values)  # a sum: gloo has no average
    return dict(zip(scalars, values / dist.get_world_size()))


def on_any_rank(flag):
    """True if `flag` is true in any process (all processes must ask together). A one-number
    all-reduce of a CPU tensor: through gloo, without waiting for the GPU."""
    if not dist.is_initialized():
        return flag
    flag = torch.tensor([int(flag)])
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


# --- data order, learning rate, seeds, resume state ---

class StepBatchSampler(Sampler):
    """Endless batches whose content depends only on (seed, step) and the process's rank.

    Epoch e = step // batches_per_epoch takes torch's DistributedSampler order for that epoch
    (set_epoch(e): a permutation seeded by seed + e, or file order without shuffle; padded to a
    multiple of world_size by repeating its start, then dealt out so that rank r gets positions
    r, r + world_size, ...) and cuts this rank's share into batches; the last batch of an epoch may
    be short, as when the original loader restarts. Every rank has the same number of batches, so
    together the ranks see one global batch per step, and a resumed run sees exactly the batches
    the uninterrupted run would have seen."""

    def __init__(self, n, batch_size, shuffle, seed, start_step=0, rank=0, world_size=1):
        self.share = DistributedSampler(range(n), num_replicas=world_size, rank=rank,
                                        shuffle=shuffle, seed=seed)
        self.batch_size, self.start_step = batch_size, start_step

    def __iter__(self):
        per_epoch = math.ceil(len(self.share) / self.batch_size)
        step, order_epoch, order = self.start_step, None, None
        while True:
            epoch, i = divmod(step, per_epoch)
            if epoch != order_epoch:
                self.share.set_epoch(epoch)
                order_epoch, order = epoch, list(self.share)
            yield order[i * self.batch_size:(i + 1) * self.batch_size]
            step += 1


def lr_factor(step, keep_step, decay_step):
    """Learning-rate multiplier after `step` steps: 1 for keep_step steps, then linear towards 0."""
    return 1.0 - max(0, step - keep_step) / float(decay_step + 1)


def seed_all(seed):
    """Seed torch (CPU and CUDA), numpy and random."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def process_seed(seed, rank, step):
    """The seed of process `rank` for a run that starts (or resumes) at `step`.

    Every process draws different random numbers, and a resume reseeds from its step instead of
    restoring saved RNG states (which would have to be gathered from all processes into rank 0's
    state file). Nothing in a training step draws random numbers today (no dropout; the data order
    comes from StepBatchSampler), so resumed runs still match uninterrupted ones."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


def save_state(path, stage, step, parts):
    """The resume state: the step count and the state_dict of each part (model, optimizer, ...)."""
    networks.atomic_save({"stage": stage, "step": step,
                          **{name: part.state_dict() for name, part in parts.items()}}, path)


def load_state(path, stage, parts):
    """Restore a resume state written by save_state; returns the number of steps already done."""
    if not os.path.isfile(path):
        raise SystemExit(f"error: --resume: no resume state at {path} (run without --resume to start afresh)")
    advice = ("; to start afresh, move it away and run without --resume (or start from a saved "
              "step_NNNNNN.pth with --checkpoint)")
    try:
        state = networks.safe_load(path)
    except networks.CheckpointError as e:
        raise SystemExit(f"error: --resume: {e}{advice}") from None
    if not (isinstance(state, dict) and {"stage", "step", "model"} <= state.keys()):
        raise SystemExit(f"error: --resume: {path} is not a resume state written by train.py (a plain "
                         f"checkpoint goes to --checkpoint){advice}")
    if state["stage"] != stage:
        raise SystemExit(f"error: --resume: {path} is a {state['stage']} run; --stage is {stage}")
    try:
        for name, part in parts.items():
            if state.get(name):  # (a disabled GradScaler saves {} and ignores a saved scale)
                part.load_state_dict(state[name])
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SystemExit(f"error: --resume: {path} does not fit this run's {name} ({first_line}): "
                         f"was it written with other options?{advice}") from None
    return state["step"]


# --- the training loop ---

@contextmanager
def ctrl_c_deferred():
    """Hold back Ctrl-C until the block is done, so an interrupt never leaves the weights and
    optimiser half-updated (the state saved on Ctrl-C must match its step count). Yields the list
    of presses so far, for a loop that checks it at points of its own choosing."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield []  # Ctrl-C is not Python's KeyboardInterrupt here: leave it alone
        return
    pressed = []
    previous = signal.signal(signal.SIGINT, lambda *args: pressed.append(args))
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)
    if pressed:
        raise KeyboardInterrupt


def ignore_ctrl_c(_worker_id):
    """DataLoader worker init: Ctrl-C is for the main process, which stops after the current step
    (a worker killed by it mid-batch would break that step)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def log_step(board, bar, stage, step, seconds, scalars, inputs, out):
    values = {tag: v.item() for tag, v in scalars.items()}
    for tag, value in values.items():
        board.add_scalar(tag, value, step)
    board_add_images(board, "combine", pipeline.board_rows(stage, inputs, out), step)
    bar.set_postfix(loss=f"{values['metric']:.4f}")
    bar.write(f"step: {step:8d}, time: {seconds:.3f}, "
              + ", ".join(f"{LOG_NAMES[tag]}: {value:.4f}" for tag, value in values.items()))


def build_training(opt, device):
    """(model as the loop drives it, perceptual loss or None, the parts a resume state holds:
    the plain model, optimiser, learning-rate schedule and gradient scaler)."""
    raw_model = networks.build_model(opt.stage, opt)
    if opt.checkpoint:
        networks.load_checkpoint(raw_model, opt.checkpoint, stage=opt.stage)
    raw_model.to(device).train()
    if opt.channels_last:
        networks.use_channels_last(raw_model)
    perceptual = None
    if opt.stage == "TOM" and opt.perceptual == "vgg19":
        perceptual = networks.VGGLoss(weights_path=opt.vgg_weights).to(device)
    model = wrap_model(raw_model, device, opt.sync_bn)
    optimizer = torch.optim.Adam(model.parameters(), lr=opt.lr, betas=(0.5, 0.999))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, opt.keep_step, opt.decay_step))
    parts = {"model": raw_model, "optimizer": optimizer, "scheduler": scheduler,
             "scaler": pipeline.grad_scaler(device, opt.precision)}
    return model, perceptual, parts


def loss_function(opt):
    """The stage's loss for --variant, with --grid_reg's term for the GMM."""
    if opt.stage == "GMM" and opt.grid_reg:
        return functools.partial(pipeline.LOSSES["GMM"], grid_weight=opt.grid_reg, variant=opt.variant)
    return functools.partial(pipeline.LOSSES[opt.stage], variant=opt.variant)


def training_step(model, parts, inputs, loss_fn, perceptual, autocast):
    """One optimiser step (loss scaling for fp16, learning-rate schedule) -> (loss terms, outputs)."""
    parts["optimizer"].zero_grad(set_to_none=True)
    scalars, out = forward_backward(model, inputs, loss_fn, perceptual, autocast, parts["scaler"])
    parts["scaler"].step(parts["optimizer"])
    parts["scaler"].update()
    parts["scheduler"].step()
    return scalars, out


def save_step(run_dir, state_path, opt, step, parts):
    networks.save_checkpoint(parts["model"], os.path.join(run_dir, f"step_{step:06d}.pth"))
    save_state(state_path, opt.stage, step, parts)


def train(opt, device, rank=0, world_size=1):
    master = rank == 0  # only rank 0 writes checkpoints, TensorBoard and the log
    seed_all(opt.seed)  # the same initial weights in every process
    run_dir = os.path.join(opt.checkpoint_dir, opt.name)
    state_path = os.path.join(run_dir, STATE_FILE)
    dataset = CPDataset(opt, compact=True)  # items expanded to the original's on the device
    model, perceptual, parts = build_training(opt, device)
    start = load_state(state_path, opt.stage, parts) if opt.resume else 0
    seed_all(process_seed(opt.seed, rank, start))
    sampler = StepBatchSampler(len(dataset), opt.batch_size, opt.shuffle, opt.seed, start, rank, world_size)
    batches = iter(DataLoader(dataset, batch_sampler=sampler, num_workers=opt.workers,
                              pin_memory=device.type == "cuda", worker_init_fn=ignore_ctrl_c))
    total, board = opt.keep_step + opt.decay_step, None
    if master:
        board = SummaryWriter(logdir=os.path.join(opt.tensorboard_dir, opt.name),
                              purge_step=start + 1 if opt.resume else None)
        where = str(device)
        if world_size > 1:
            where += f" x {world_size} processes (global batch {world_size * opt.batch_size})"
        print(f"Train stage {opt.stage}, named {opt.name}, on {where}; dataset size: {len(dataset)}; "
              f"steps {start} -> {total}")

    loss_fn, autocast = loss_function(opt), pipeline.autocast(device, opt.precision)
    step = start  # the number of steps done
    bar = tqdm(total=total, initial=start, desc=f"{opt.stage} {opt.name}", unit="step",
               dynamic_ncols=True, disable=not master)
    try:
        # Ctrl-C takes effect at the end of a step; under DDP all processes stop after the same one.
        with ctrl_c_deferred() as pressed:
            tic = time.time()
            while step < total:
                inputs = dataset.expand(pipeline.to_device(next(batches), device))
                if opt.channels_last:
                    inputs = networks.channels_last_inputs(inputs)
                scalars, out = training_step(model, parts, inputs, loss_fn, perceptual, autocast)
                step += 1
                bar.update()
                if step % opt.display_count == 0:
                    scalars = averaged(scalars)
                    if master:
                        log_step(board, bar, opt.stage, step, (time.time() - tic) / opt.display_count,
                                 scalars, inputs, out)
                    tic = time.time()
                if master and step % opt.save_count == 0:
                    save_step(run_dir, state_path, opt, step, parts)
                if on_any_rank(bool(pressed)):
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        if master:
            save_state(state_path, opt.stage, step, parts)
            bar.close()
            print(f"\nInterrupted after step {step}; state saved to {state_path}. "
                  "To continue, run the same command with --resume.", file=sys.stderr)
        raise SystemExit(130)
    finally:
        bar.close()
        if board:
            board.close()
    if master:
        networks.save_checkpoint(parts["model"], os.path.join(run_dir, f"{opt.stage.lower()}_final.pth"))
        if step % opt.save_count:  # (otherwise the loop has just saved it)
            save_state(state_path, opt.stage, step, parts)
        print(f"Finished stage {opt.stage}, named {opt.name}: {run_dir}/{opt.stage.lower()}_final.pth")
    return 0


def main(argv=None):
    opt = train_options(argv)
    device, rank, world_size = setup(opt)
    try:
        return train(opt, device, rank, world_size)
    except (networks.CheckpointError, networks.VGGWeightsUnavailable, DatasetError) as e:
        raise SystemExit(f"error: {e}")
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    atomic.run(main)
