"""Train the CP-VTON GMM or TOM stage.

    python train.py --name gmm_train_new --stage GMM --save_count 5000 --shuffle
    python train.py --name tom_train_new --stage TOM --save_count 5000 --shuffle

Writes checkpoints/<name>/step_NNNNNN.pth every --save_count steps and gmm_final.pth /
tom_final.pth at the end (plain state_dicts, as the original), plus train_state.pth (weights,
optimiser, scheduler, step, RNG states) that --resume continues from. TensorBoard logs go to
tensorboard/<name>/.
"""
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
import torch.nn.functional as F
from tensorboardX import SummaryWriter
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

import networks
from cp_dataset import CPDataset, DatasetError
from options import device_of, train_options
from visualization import board_add_images

STATE_FILE = "train_state.pth"
LOG_NAMES = {"metric": "loss", "L1": "l1", "VGG": "vgg", "MaskL1": "mask"}  # scalar tag -> stdout name


# --- the two stages: forward pass (shared with test.py), loss, TensorBoard rows ---

def gmm_forward(model, inputs):
    """GMM: warp the cloth, its mask and the grid image onto the person."""
    grid, _theta = model(inputs["agnostic"], inputs["cloth"])
    return {"warped_cloth": networks.warp(inputs["cloth"], grid, "border"),
            "warped_mask": networks.warp(inputs["cloth_mask"], grid, "zeros"),
            "warped_grid": networks.warp(inputs["grid_image"], grid, "zeros")}


def tom_forward(model, inputs):
    """TOM: render the person and composite the (already warped) cloth into it."""
    raw = model(torch.cat([inputs["agnostic"], inputs["cloth"]], 1))
    p_rendered, m_composite, p_tryon = networks.tom_outputs(raw, inputs["cloth"])
    return {"p_rendered": p_rendered, "m_composite": m_composite, "p_tryon": p_tryon}


FORWARD = {"GMM": gmm_forward, "TOM": tom_forward}


def gmm_step(model, inputs, perceptual=None):
    """One GMM forward pass and its loss: L1 between the warped cloth and the cloth worn in the photo."""
    out = gmm_forward(model, inputs)
    loss = F.l1_loss(out["warped_cloth"], inputs["parse_cloth"])
    return loss, {"metric": loss}, out


def tom_step(model, inputs, perceptual=None):
    """One TOM forward pass and its loss: L1 + VGG perceptual on the try-on, L1 of the composition
    mask against the warped cloth mask (perceptual=None: VGG term 0)."""
    out = tom_forward(model, inputs)
    l1 = F.l1_loss(out["p_tryon"], inputs["image"])
    vgg = torch.zeros((), device=l1.device)
    if perceptual is not None:
        vgg = perceptual(out["p_tryon"], inputs["image"])
    mask = F.l1_loss(out["m_composite"], inputs["cloth_mask"])
    loss = l1 + vgg + mask
    return loss, {"metric": loss, "L1": l1, "VGG": vgg, "MaskL1": mask}, out


STEPS = {"GMM": gmm_step, "TOM": tom_step}


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


def to_device(batch, device):
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


# --- data order, learning rate, resume state ---

class StepBatchSampler(Sampler):
    """Endless batches whose content depends only on (seed, step): epoch e = step // batches_per_epoch
    visits the pairs in a permutation seeded by (seed, e) (file order without shuffle); the last batch
    of an epoch may be short, as when the original loader restarts. A resumed run therefore sees
    exactly the batches the uninterrupted run would have seen."""

    def __init__(self, n, batch_size, shuffle, seed, start_step=0):
        self.n, self.batch_size, self.shuffle = n, batch_size, shuffle
        self.seed, self.start_step = seed, start_step

    def epoch_order(self, epoch):
        if not self.shuffle:
            return np.arange(self.n)
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def __iter__(self):
        per_epoch = math.ceil(self.n / self.batch_size)
        step, order_epoch, order = self.start_step, None, None
        while True:
            epoch, i = divmod(step, per_epoch)
            if epoch != order_epoch:
                order_epoch, order = epoch, self.epoch_order(epoch)
            yield order[i * self.batch_size:(i + 1) * self.batch_size].tolist()
            step += 1


def lr_factor(step, keep_step, decay_step):
    """Learning-rate multiplier after `step` steps: 1 for keep_step steps, then linear towards 0."""
    return 1.0 - max(0, step - keep_step) / float(decay_step + 1)


def rng_state():
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    if len(state.get("cuda", [])) == torch.cuda.device_count() > 0:  # same GPUs as when saved
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path, stage, step, model, optimizer, scheduler):
    """The resume state: everything --resume needs to continue exactly where this run is."""
    networks.atomic_save({"stage": stage, "step": step, "model": model.state_dict(),
                          "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                          "rng": rng_state()}, path)


def load_state(path, stage, model, optimizer, scheduler):
    """Restore a resume state written by save_state; returns the number of steps already done."""
    if not os.path.isfile(path):
        raise SystemExit(f"error: --resume: no resume state at {path} (run without --resume to start afresh)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state["stage"] != stage:
        raise SystemExit(f"error: --resume: {path} is a {state['stage']} run; --stage is {stage}")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    return state["step"]


# --- the training loop ---

@contextmanager
def ctrl_c_deferred():
    """Hold back Ctrl-C until the block is done, so an interrupt never leaves the weights and
    optimiser half-updated (the state saved on Ctrl-C must match its step count)."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield  # Ctrl-C is not Python's KeyboardInterrupt here: leave it alone
        return
    pressed = []
    previous = signal.signal(signal.SIGINT, lambda *args: pressed.append(args))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pressed:
        raise KeyboardInterrupt


def log_step(board, bar, stage, step, seconds, scalars, inputs, out):
    values = {tag: v.item() for tag, v in scalars.items()}
    for tag, value in values.items():
        board.add_scalar(tag, value, step)
    board_add_images(board, "combine", board_rows(stage, inputs, out), step)
    bar.set_postfix(loss=f"{values['metric']:.4f}")
    bar.write(f"step: {step:8d}, time: {seconds:.3f}, "
              + ", ".join(f"{LOG_NAMES[tag]}: {value:.4f}" for tag, value in values.items()))


def train(opt, device):
    torch.manual_seed(opt.seed)
    np.random.seed(opt.seed)
    random.seed(opt.seed)
    run_dir = os.path.join(opt.checkpoint_dir, opt.name)
    state_path = os.path.join(run_dir, STATE_FILE)

    dataset = CPDataset(opt)
    model = networks.build_model(opt.stage, opt)
    if opt.checkpoint:
        networks.load_checkpoint(model, opt.checkpoint, stage=opt.stage)
    model.to(device).train()
    perceptual = None
    if opt.stage == "TOM" and opt.perceptual == "vgg19":
        perceptual = networks.VGGLoss(weights_path=opt.vgg_weights).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=opt.lr, betas=(0.5, 0.999))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, opt.keep_step, opt.decay_step))
    start = load_state(state_path, opt.stage, model, optimizer, scheduler) if opt.resume else 0

    sampler = StepBatchSampler(len(dataset), opt.batch_size, opt.shuffle, opt.seed, start_step=start)
    batches = iter(DataLoader(dataset, batch_sampler=sampler, num_workers=opt.workers,
                              pin_memory=device.type == "cuda"))
    board = SummaryWriter(logdir=os.path.join(opt.tensorboard_dir, opt.name),
                          purge_step=start + 1 if opt.resume else None)
    total = opt.keep_step + opt.decay_step
    print(f"Train stage {opt.stage}, named {opt.name}, on {device}; dataset size: {len(dataset)}; "
          f"steps {start} -> {total}")

    step_fn, step = STEPS[opt.stage], start  # `step` = number of steps done
    bar = tqdm(total=total, initial=start, desc=f"{opt.stage} {opt.name}", unit="step", dynamic_ncols=True)
    try:
        tic = time.time()
        while step < total:
            inputs = to_device(next(batches), device)
            loss, scalars, out = step_fn(model, inputs, perceptual)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            with ctrl_c_deferred():
                optimizer.step()
                scheduler.step()
                step += 1
            bar.update()
            if step % opt.display_count == 0:
                log_step(board, bar, opt.stage, step, (time.time() - tic) / opt.display_count,
                         scalars, inputs, out)
                tic = time.time()
            if step % opt.save_count == 0:
                networks.save_checkpoint(model, os.path.join(run_dir, f"step_{step:06d}.pth"))
                save_state(state_path, opt.stage, step, model, optimizer, scheduler)
    except KeyboardInterrupt:
        save_state(state_path, opt.stage, step, model, optimizer, scheduler)
        bar.close()
        print(f"\nInterrupted after step {step}; state saved to {state_path}. "
              "To continue, run the same command with --resume.", file=sys.stderr)
        raise SystemExit(130)
    finally:
        bar.close()
        board.close()
    networks.save_checkpoint(model, os.path.join(run_dir, f"{opt.stage.lower()}_final.pth"))
    if step % opt.save_count:  # (otherwise the loop has just saved it)
        save_state(state_path, opt.stage, step, model, optimizer, scheduler)
    print(f"Finished stage {opt.stage}, named {opt.name}: {run_dir}/{opt.stage.lower()}_final.pth")
    return 0


def main(argv=None):
    opt = train_options(argv)
    try:
        return train(opt, device_of(opt))
    except (networks.CheckpointError, networks.VGGWeightsUnavailable, DatasetError) as e:
        raise SystemExit(f"error: {e}")


if __name__ == "__main__":
    sys.exit(main())
