"""Multi-process training (DistributedDataParallel) and mixed precision, on the CPU with gloo.

Two processes at batch size 1 each: gradients against one process on the same global batch (the
TOM, and the GMM whose BatchNorm normalises each process's batch alone unless --sync_bn, which
needs CUDA), a torchrun run interrupted with Ctrl-C and resumed, and bf16 autocast on the CPU.
"""
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import networks
import options
import pipeline
import train

REPO = Path(__file__).resolve().parents[1]
OPT = options.train_options([])


def run_args(root, out, *extra, steps=4):
    return ["--dataroot", str(root), "--name", "run", "--device", "cpu", "-j", "0", "-b", "1",
            "--keep_step", str(steps), "--decay_step", "0", "--display_count", "1",
            "--checkpoint_dir", str(out / "checkpoints"), "--tensorboard_dir", str(out / "tensorboard"),
            *extra]


def logged_steps(logdir):
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    events.Reload()
    return [s.step for s in events.Scalars("metric")], [s.value for s in events.Scalars("metric")]


# --- data order ---

def test_ranks_share_every_epoch_and_resume_exactly():
    def batches(rank, start=0, n=6):
        it = iter(train.StepBatchSampler(5, 2, True, seed=3, start_step=start, rank=rank, world_size=2))
        return [next(it) for _ in range(n)]

    ranks = [batches(0), batches(1)]
    for epoch in range(3):  # 2 steps per epoch: 3 indices per rank (5 padded to 6), batches of 2 + 1
        steps = range(2 * epoch, 2 * epoch + 2)
        assert [len(ranks[r][s]) for r in (0, 1) for s in steps] == [2, 1, 2, 1]
        seen = [i for r in (0, 1) for s in steps for i in ranks[r][s]]
        assert sorted(set(seen)) == list(range(5)) and len(seen) == 6
    assert ranks[0][:2] != ranks[0][2:4]  # a new permutation each epoch
    assert batches(1, start=3, n=3) == ranks[1][3:]


# --- precision and SyncBatchNorm options ---

def test_sync_bn_model_saves_the_plain_state_dict(tmp_path):
    plain = networks.build_model("GMM", OPT)
    synced = torch.nn.SyncBatchNorm.convert_sync_batchnorm(networks.build_model("GMM", OPT))
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in synced.modules())
    assert {k: v.shape for k, v in synced.state_dict().items()} == {
        k: v.shape for k, v in plain.state_dict().items()}
    networks.save_checkpoint(synced, tmp_path / "gmm.pth")
    networks.load_checkpoint(plain, tmp_path / "gmm.pth", stage="GMM")  # strict


@pytest.mark.parametrize("flags, message", [(["--precision", "fp16"], "--precision fp16 needs a CUDA device"),
                                            (["--amp", "fp16"], "--precision fp16 needs a CUDA device"),
                                            (["--sync_bn"], "--sync_bn needs CUDA")])
def test_cuda_only_options_refused_on_the_cpu(sample_root, tmp_path, flags, message):
    with pytest.raises(SystemExit, match=message):
        train.main(run_args(sample_root, tmp_path, *flags))


def test_bf16_autocast_trains_on_the_cpu(sample_root, tmp_path):
    # One step: without AVX-512 bf16 a bf16 GMM step takes seconds on the CPU.
    assert train.main(run_args(sample_root, tmp_path, "--precision", "bf16", steps=1)) == 0
    steps, losses = logged_steps(tmp_path / "tensorboard" / "run")
    assert steps == [1] and 0 < losses[0] < 10
    weights = torch.load(tmp_path / "checkpoints" / "run" / "gmm_final.pth", weights_only=True)
    assert all(w.dtype in (torch.float32, torch.int64) and w.isfinite().all() for w in weights.values())


@pytest.mark.parametrize("native", [True, False])
def test_precision_auto_is_bf16_only_where_native(monkeypatch, native):
    monkeypatch.setattr(pipeline, "native_bf16", lambda device: native)
    autocast = pipeline.autocast(torch.device("cpu"), "auto")
    scaler = pipeline.grad_scaler(torch.device("cpu"), "auto")
    with autocast:
        dtype = torch.nn.Linear(2, 2)(torch.ones(1, 2)).dtype
    assert dtype == (torch.bfloat16 if native else torch.float32)
    assert not scaler.is_enabled()


# --- DDP gradients: 2 spawned processes vs. one process on the same global batch ---

def global_batch(stage, n=2):
    """Random inputs for a stage (values in [-1, 1], masks in [0, 1]): 256 x 192 for the GMM (its
    size is fixed), 64 x 64 for the TOM to save time (the U-Net takes any multiple of 64)."""
    channels = {"agnostic": 22, "cloth": 3, "cloth_mask": 1}
    channels.update({"grid_image": 3, "parse_cloth": 3} if stage == "GMM" else {"image": 3})
    size = (256, 192) if stage == "GMM" else (64, 64)
    generator = torch.Generator().manual_seed(1)
    batch = {key: 2 * torch.rand(n, c, *size, generator=generator) - 1 for key, c in channels.items()}
    batch["cloth_mask"] = (batch["cloth_mask"] + 1) / 2
    return batch


def gradients(model, inputs, device, stage):
    """Parameter gradients of one training step's backward pass (the model is seeded: same init)."""
    autocast, scaler = pipeline.autocast(device, "fp32"), pipeline.grad_scaler(device, "fp32")
    inputs = {key: value.to(device) for key, value in inputs.items()}
    train.forward_backward(model, inputs, pipeline.LOSSES[stage], None, autocast, scaler)
    plain = getattr(model, "module", model)
    return {name: p.grad.detach().cpu().clone() for name, p in plain.named_parameters()}


def seeded_model(stage, device):
    torch.manual_seed(0)
    return networks.build_model(stage, OPT).to(device).train()


def ddp_worker(rank, world_size, init_file, device_type, cases, result):
    """One DDP process: gradients of its slice [rank] of each case's global batch (rank 0 saves)."""
    torch.set_num_threads(1)
    device = torch.device(device_type, rank) if device_type == "cuda" else torch.device("cpu")
    dist.init_process_group("nccl" if device_type == "cuda" else "gloo", init_method=f"file://{init_file}",
                            rank=rank, world_size=world_size)
    try:
        found = {}
        for name, (stage, sync_bn, batch) in cases.items():
            model = train.wrap_model(seeded_model(stage, device), device, sync_bn)
            found[name] = gradients(model, {k: v[rank:rank + 1] for k, v in batch.items()}, device, stage)
        if rank == 0:
            torch.save(found, result)
    finally:
        dist.destroy_process_group()


def ddp_gradients(tmp_path, device_type, cases):
    result = tmp_path / "gradients.pth"
    mp.spawn(ddp_worker, args=(2, str(tmp_path / "rendezvous"), device_type, cases, str(result)), nprocs=2)
    return torch.load(result, weights_only=True)


def assert_same_gradients(found, expected):
    assert found.keys() == expected.keys()
    for name, grad in expected.items():
        assert grad.abs().max() > 0, name
        torch.testing.assert_close(found[name], grad, rtol=1e-3, atol=1e-6, msg=name)


@pytest.fixture
def one_thread():
    """One CPU thread, as in each DDP process: the GMM's gradients at batch size 1 change by a few
    percent with the thread count (rounding magnified), so the reference must run the same kernels."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_ddp_gradients_equal_one_process_on_the_global_batch(tmp_path, one_thread):
    cpu = torch.device("cpu")
    tom, gmm = global_batch("TOM"), global_batch("GMM")
    found = ddp_gradients(tmp_path, "cpu", {"TOM": ("TOM", False, tom), "GMM": ("GMM", False, gmm)})
    # TOM (InstanceNorm: no statistics across samples): the same as one step on both samples at once.
    assert_same_gradients(found["TOM"], gradients(seeded_model("TOM", cpu), tom, cpu, "TOM"))
    # GMM (BatchNorm over each process's batch): the mean of the two processes' own gradients.
    per_rank = [gradients(seeded_model("GMM", cpu), {k: v[r:r + 1] for k, v in gmm.items()}, cpu, "GMM")
                for r in (0, 1)]
    assert_same_gradients(found["GMM"], {name: (per_rank[0][name] + per_rank[1][name]) / 2
                                         for name in per_rank[0]})


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="SyncBatchNorm needs 2 CUDA devices")
def test_sync_bn_gradients_equal_one_process_on_the_global_batch(tmp_path):
    cuda, gmm = torch.device("cuda", 0), global_batch("GMM")
    found = ddp_gradients(tmp_path, "cuda", {"GMM": ("GMM", True, gmm)})
    expected = gradients(seeded_model("GMM", cuda), gmm, cuda, "GMM")
    assert_same_gradients(found["GMM"], expected)


# --- torchrun: 2 processes, Ctrl-C, --resume ---

def torchrun(args):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            str(REPO / "train.py"), *args]


def interrupt_after_step(command, step):
    """Start `command`, press Ctrl-C (SIGINT to its process group: torchrun) once `step` is logged."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    output = b""
    while f"step: {step:8d},".encode() not in output:
        chunk = proc.stdout.read1(4096)
        assert chunk, f"ended before step {step}:\n{output.decode()}"
        output += chunk
    os.killpg(proc.pid, signal.SIGINT)
    output += proc.stdout.read()
    return proc.wait(timeout=120), output.decode()


def test_torchrun_ctrl_c_then_resume(sample_root, tmp_path):
    args = run_args(sample_root, tmp_path, "--shuffle", "--save_count", "2", steps=4)
    run_dir = tmp_path / "checkpoints" / "run"
    code, output = interrupt_after_step(torchrun(args), 2)
    assert code != 0, output
    done = [int(n) for n in re.findall(r"Interrupted after step (\d+); state saved", output)]
    assert len(done) == 1 and done[0] in (2, 3), output  # rank 0 alone reports and saves
    assert torch.load(run_dir / "train_state.pth", weights_only=True)["step"] == done[0]

    resumed = subprocess.run(torchrun([*args, "--resume"]), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert resumed.stdout.count(f"steps {done[0]} -> 4") == 1 and resumed.stdout.count("Finished stage") == 1

    # One set of checkpoints, written by rank 0: plain state_dicts that load strictly into the model.
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "gmm_final.pth", "step_000002.pth", "step_000004.pth", "train_state.pth"]
    plain_keys = list(networks.build_model("GMM", OPT).state_dict())
    for name in ("gmm_final.pth", "step_000002.pth", "step_000004.pth"):
        assert list(torch.load(run_dir / name, weights_only=True)) == plain_keys
        networks.load_checkpoint(networks.build_model("GMM", OPT), run_dir / name, stage="GMM")
    state = torch.load(run_dir / "train_state.pth", weights_only=True)
    assert state["step"] == 4 and list(state["model"]) == plain_keys
    logdir = tmp_path / "tensorboard" / "run"
    assert len(list(logdir.iterdir())) == 2  # one event file per run: rank 0's
    assert logged_steps(logdir)[0] == [1, 2, 3, 4]
