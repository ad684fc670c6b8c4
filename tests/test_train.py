"""Unit-level tests of options.py, train.py, test.py, visualization.py and smart_show_test_result.py.

Training runs here are a few GMM/TOM steps at batch size 1 on the tiny sample dataset.
"""
import io
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboardX import SummaryWriter

import networks
import options
import pipeline
import smart_show_test_result as smart_show
import test as test_py  # this repository's test.py: pytest puts the repository first on sys.path
import train
import visualization

REPO = Path(__file__).resolve().parents[1]
REAL_VGG_LOSS = networks.VGGLoss


def run_args(root, tmp_path, *extra, name="run", steps=(2, 0)):
    """train.py arguments for a tiny CPU run with all outputs under tmp_path."""
    return ["--dataroot", str(root), "--name", name, "--device", "cpu", "-j", "0", "-b", "1",
            "--keep_step", str(steps[0]), "--decay_step", str(steps[1]), "--display_count", "1",
            "--checkpoint_dir", str(tmp_path / "checkpoints"),
            "--tensorboard_dir", str(tmp_path / "tensorboard"), *extra]


def scalars(logdir, tag="metric"):
    """{step: value} of a scalar tag in a TensorBoard log folder."""
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    events.Reload()
    return {s.step: s.value for s in events.Scalars(tag)}


def fail_on_call(monkeypatch, stage, n, error):
    """Make the n-th training step of `stage` raise `error` (before its update)."""
    calls = {"n": 0}
    real_step = pipeline.LOSSES[stage]

    def step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise error
        return real_step(*args, **kwargs)

    monkeypatch.setitem(pipeline.LOSSES, stage, step)


@pytest.fixture(scope="module")
def tom_root(sample_root, tmp_path_factory):
    """The sample dataset plus warp-cloth/warp-mask (here simply copies of cloth/cloth-mask)."""
    root = tmp_path_factory.mktemp("tom_data") / "data"
    shutil.copytree(sample_root, root)
    for split in ("train", "test"):
        shutil.copytree(root / split / "cloth", root / split / "warp-cloth")
        shutil.copytree(root / split / "cloth-mask", root / split / "warp-mask")
    return root


# --- options ---

@pytest.mark.parametrize("parser", [options.train_parser(), options.test_parser()])
def test_every_flag_has_help(parser):
    for action in parser._actions:
        assert action.help and action.help.strip(), action.option_strings


def test_original_defaults():
    opt = options.train_options([])
    assert (opt.name, opt.gpu_ids, opt.workers, opt.batch_size, opt.dataroot, opt.datamode, opt.stage,
            opt.data_list, opt.fine_width, opt.fine_height, opt.radius, opt.grid_size, opt.lr,
            opt.tensorboard_dir, opt.checkpoint_dir, opt.checkpoint, opt.display_count, opt.save_count,
            opt.keep_step, opt.decay_step, opt.shuffle) == (
        "GMM", "", 1, 4, "data", "train", "GMM", "train_pairs.txt", 192, 256, 5, 5, 1e-4,
        "tensorboard", "checkpoints", "", 20, 100, 100000, 100000, False)
    assert (opt.device, opt.seed, opt.resume, opt.perceptual, opt.vgg_weights) == (
        "auto", 0, False, "vgg19", None)
    opt = options.test_options(["--checkpoint", "x.pth"])
    assert (opt.display_count, opt.result_dir, opt.datamode, opt.data_list) == (
        1, "result", "train", "train_pairs.txt")


def test_stage_must_be_gmm_or_tom(capsys):
    with pytest.raises(SystemExit):
        options.train_options(["--stage", "gmm"])
    assert "invalid choice: 'gmm'" in capsys.readouterr().err


def test_gpu_ids_pick_the_cuda_device(monkeypatch):
    opt = options.train_options(["--gpu_ids", "1"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert options.device_of(opt) == torch.device("cuda:1")
    opt.device = "cpu"
    assert options.device_of(opt) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    opt.device = "auto"
    assert options.device_of(opt) == torch.device("cpu")


# --- learning rate and data order ---

def test_lr_factor_constant_then_linear():
    factors = [train.lr_factor(s, keep_step=3, decay_step=4) for s in range(8)]
    assert factors == pytest.approx([1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2])


def test_step_batch_sampler_resumes_the_same_order():
    def batches(start, n):
        it = iter(train.StepBatchSampler(5, 2, shuffle=True, seed=3, start_step=start))
        return [next(it) for _ in range(n)]

    full = batches(0, 9)
    assert batches(4, 5) == full[4:]
    for epoch in range(3):  # every epoch covers each pair once; the last batch is short
        chunk = full[3 * epoch:3 * epoch + 3]
        assert [len(b) for b in chunk] == [2, 2, 1] and sorted(sum(chunk, [])) == list(range(5))
    assert full[:3] != full[3:6]  # a new permutation each epoch
    plain = iter(train.StepBatchSampler(5, 2, shuffle=False, seed=3))
    assert [next(plain) for _ in range(4)] == [[0, 1], [2, 3], [4], [0, 1]]


# --- training: resume, Ctrl-C, losses ---

def test_resume_after_a_crash_matches_an_uninterrupted_run(sample_root, tmp_path, monkeypatch):
    # keep 2 + decay 1 steps, shuffled, saving every 2 steps.
    args = ["--shuffle", "--save_count", "2", "--seed", "5"]
    whole = tmp_path / "whole"
    assert train.main(run_args(sample_root, whole, *args, steps=(2, 1))) == 0

    crashed = tmp_path / "crashed"
    with monkeypatch.context() as patch:
        fail_on_call(patch, "GMM", 3, RuntimeError("power cut"))  # dies in step 3; saved after step 2
        with pytest.raises(RuntimeError, match="power cut"):
            train.main(run_args(sample_root, crashed, *args, steps=(2, 1)))
    state_path = crashed / "checkpoints" / "run" / "train_state.pth"
    assert torch.load(state_path, weights_only=True)["step"] == 2
    assert train.main(run_args(sample_root, crashed, *args, "--resume", steps=(2, 1))) == 0

    run_dir = crashed / "checkpoints" / "run"
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "gmm_final.pth", "step_000002.pth", "train_state.pth"]
    expected = torch.load(whole / "checkpoints" / "run" / "gmm_final.pth", weights_only=True)
    resumed = torch.load(run_dir / "gmm_final.pth", weights_only=True)
    for key, value in expected.items():
        torch.testing.assert_close(resumed[key], value, rtol=1e-4, atol=1e-5, msg=key)
    losses = scalars(crashed / "tensorboard" / "run")
    assert sorted(losses) == [1, 2, 3]
    assert losses == pytest.approx(scalars(whole / "tensorboard" / "run"), rel=1e-4)

    state = torch.load(state_path, weights_only=True)
    assert state["step"] == 3 and state["scheduler"]["last_epoch"] == 3
    # scheduler.step() is called: after 3 steps lr = 1e-4 * (1 - (3 - 2) / 2)
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.5e-4)


def test_ctrl_c_saves_the_state_and_exits_130(sample_root, tmp_path, monkeypatch, capsys):
    with monkeypatch.context() as patch:
        fail_on_call(patch, "GMM", 2, KeyboardInterrupt())
        with pytest.raises(SystemExit) as exit_info:
            train.main(run_args(sample_root, tmp_path, "--save_count", "100", steps=(2, 0)))
    assert exit_info.value.code == 130
    assert "--resume" in capsys.readouterr().err
    state_path = tmp_path / "checkpoints" / "run" / "train_state.pth"
    assert torch.load(state_path, weights_only=True)["step"] == 1
    assert train.main(run_args(sample_root, tmp_path, "--resume", steps=(2, 0))) == 0
    assert torch.load(state_path, weights_only=True)["step"] == 2


def test_ctrl_c_waits_for_the_weight_update():
    # Python's own Ctrl-C handler, also where the suite was started with SIGINT ignored (a shell's
    # background job): ctrl_c_deferred only takes over from that handler.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    updated = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with train.ctrl_c_deferred():
                os.kill(os.getpid(), signal.SIGINT)
                updated.append(True)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    assert updated == [True]


def test_resume_without_a_state_is_an_error(sample_root, tmp_path):
    with pytest.raises(SystemExit, match="no resume state"):
        train.main(run_args(sample_root, tmp_path, "--resume"))


def test_missing_init_checkpoint_is_an_error(sample_root, tmp_path):
    with pytest.raises(SystemExit, match="nowhere.pth"):
        train.main(run_args(sample_root, tmp_path, "--checkpoint", str(tmp_path / "nowhere.pth")))


def test_tom_losses_with_and_without_vgg(tom_root, tmp_path, monkeypatch):
    # Random VGG weights: the test must not download anything.
    monkeypatch.setattr(networks, "VGGLoss", lambda weights_path=None: REAL_VGG_LOSS(pretrained=False))
    for perceptual in ("vgg19", "none"):
        assert train.main(run_args(tom_root, tmp_path, "--stage", "TOM", "--perceptual", perceptual,
                                   name=perceptual, steps=(1, 0))) == 0
        logdir = tmp_path / "tensorboard" / perceptual
        total, l1, vgg, mask = (scalars(logdir, tag)[1] for tag in ("metric", "L1", "VGG", "MaskL1"))
        assert total == pytest.approx(l1 + vgg + mask, rel=1e-5)
        assert (vgg > 0) == (perceptual == "vgg19")
    assert (tmp_path / "checkpoints" / "none" / "tom_final.pth").is_file()


def test_gmm_grid_regulariser_is_opt_in(sample_root, tmp_path):
    assert train.main(run_args(sample_root, tmp_path, "--grid_reg", "40", name="reg", steps=(1, 0))) == 0
    total, l1, grid = (scalars(tmp_path / "tensorboard" / "reg", tag)[1] for tag in ("metric", "L1", "Grid"))
    assert grid > 0 and total == pytest.approx(l1 + 40 * grid, rel=1e-5)
    assert train.main(run_args(sample_root, tmp_path, name="plain", steps=(1, 0))) == 0
    events = EventAccumulator(str(tmp_path / "tensorboard" / "plain"))
    events.Reload()
    assert events.Tags()["scalars"] == ["metric"]  # the original's loss alone


def test_missing_vgg_weights_exit_with_the_message(tom_root, tmp_path, monkeypatch):
    def unavailable(weights_path=None):
        raise networks.VGGWeightsUnavailable("no VGG19 weights: use --vgg_weights PATH or --perceptual none")

    monkeypatch.setattr(networks, "VGGLoss", unavailable)
    with pytest.raises(SystemExit, match="--perceptual none") as exit_info:
        train.main(run_args(tom_root, tmp_path, "--stage", "TOM"))
    assert str(exit_info.value.code).startswith("error: ")


# --- test.py ---

def test_test_refuses_a_missing_checkpoint(sample_root, tmp_path):
    missing = tmp_path / "checkpoints" / "gmm_final.pth"
    with pytest.raises(SystemExit, match="checkpoint not found.*gmm_final.pth"):
        test_py.main(["--dataroot", str(sample_root), "--checkpoint", str(missing)])


def test_test_refuses_a_checkpoint_of_the_other_stage(sample_root, tmp_path):
    path = tmp_path / "tom_final.pth"
    networks.save_checkpoint(networks.build_model("TOM", None), path)
    with pytest.raises(SystemExit, match="TOM checkpoint"):
        test_py.main(["--dataroot", str(sample_root), "--stage", "GMM", "--device", "cpu",
                          "--checkpoint", str(path), "--tensorboard_dir", str(tmp_path / "tb")])


def test_duplicate_outputs_warned_and_stale_results_replaced(sample_root, tmp_path, capsys):
    checkpoint = tmp_path / "gmm_final.pth"
    networks.save_checkpoint(networks.build_model("GMM", options.train_options([])), checkpoint)
    (person_a, cloth_a), (person_b, cloth_b) = [
        line.split() for line in (sample_root / "test_pairs.txt").read_text().splitlines()]

    def run(pairs):
        pairs_file = tmp_path / "pairs.txt"  # an absolute --data_list overrides --dataroot
        pairs_file.write_text("".join(f"{p} {c}\n" for p, c in pairs))
        assert test_py.main([
            "--dataroot", str(sample_root), "--datamode", "test", "--data_list", str(pairs_file),
            "--stage", "GMM", "--device", "cpu", "-j", "0", "-b", "2", "--checkpoint", str(checkpoint),
            "--result_dir", str(tmp_path / "result"), "--tensorboard_dir", str(tmp_path / "tb")]) == 0
        out = tmp_path / "result" / "gmm_final.pth" / "test"
        assert sorted(p.name for p in out.iterdir()) == ["warp-cloth", "warp-mask"]  # no leftovers
        return {kind: sorted(p.name for p in (out / kind).iterdir()) for kind in ("warp-cloth", "warp-mask")}

    assert run([(person_a, cloth_a), (person_b, cloth_a)]) == {"warp-cloth": [cloth_a], "warp-mask": [cloth_a]}
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and cloth_a in err
    assert run([(person_b, cloth_b)]) == {"warp-cloth": [cloth_b], "warp-mask": [cloth_b]}
    assert "warning:" not in capsys.readouterr().err


# --- visualization ---

def test_board_images_tiled_clamped_and_limited(tmp_path):
    b, h, w = 6, 16, 16
    color = torch.full((b, 3, h, w), 3.0)  # out of range: clamped to 1
    mask = torch.full((b, 1, h, w), -1.0)  # 1 channel: repeated to 3, shown black
    canvas = visualization.combine_rows([[color, mask], [mask]])
    assert canvas.shape == (b, 3, 2 * h, 2 * w)
    assert canvas[:, :, :h, :w].eq(1).all() and canvas[:, :, :h, w:].eq(0).all()
    assert canvas[:, :, h:, w:].eq(0.5).all()  # an empty tile keeps the background

    board = SummaryWriter(tmp_path)
    visualization.board_add_images(board, "combine", [[color, mask], [mask]], 7)
    board.close()
    logged = EventAccumulator(str(tmp_path))
    logged.Reload()
    assert logged.Tags()["images"] == [f"combine/{i:03d}" for i in range(4)]  # BOARD_MAX_IMAGES of 6
    event = logged.Images("combine/000")[0]
    assert (event.step, event.width, event.height) == (7, 2 * w, 2 * h)
    image = np.asarray(Image.open(io.BytesIO(event.encoded_image_string)).convert("RGB"), float)
    tiles = {"white": image[2:h - 2, 2:w - 2], "black": image[2:h - 2, w + 2:-2], "grey": image[h + 2:-2, w + 2:-2]}
    for tile, level in zip(tiles.values(), (255, 0, 127)):
        assert np.abs(tile - level).max() <= 6  # JPEG-encoded


def test_save_images_truncates_like_the_original(tmp_path):
    t = torch.tensor([-1.0, 0.0, 0.999, 2.0]).view(1, 1, 1, 4)  # -> 0, 127.5, 254.87, 382
    visualization.save_images(t, ["a.png"], tmp_path)
    assert np.array(Image.open(tmp_path / "a.png")).tolist() == [[0, 127, 254, 255]]


# --- smart_show_test_result.py ---

def test_strip_name():
    assert smart_show.strip_name("012578_0.jpg", "014252_1.jpg") == "src_012578_dst_014252.png"


def test_strip_columns_in_order_and_missing_pair_skipped(tmp_path, capsys):
    colours = {}  # file -> colour of its tile in the strip

    def write(path, colour, mode="RGB"):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new(mode, (192, 256), colour).save(path)
        colours[path] = colour

    data, results = tmp_path / "data", tmp_path / "result"
    data.mkdir()
    (data / "test_pairs.txt").write_text("000001_0.jpg 000002_1.jpg\n000003_0.jpg 000004_1.jpg\n")
    write(data / "test" / "cloth" / "000002_1.jpg", (250, 0, 0))
    write(data / "test" / "cloth-mask" / "000002_1.jpg", 200, mode="L")
    write(data / "test" / "image" / "000001_0.jpg", (0, 250, 0))
    write(data / "test" / "image-parse" / "000001_0.png", 13, mode="L")  # label 13 = face
    write(results / "gmm_final.pth" / "test" / "warp-cloth" / "000002_1.jpg", (0, 0, 250))
    write(results / "gmm_final.pth" / "test" / "warp-mask" / "000002_1.jpg", 100, mode="L")
    write(results / "tom_final.pth" / "test" / "try-on" / "000001_0.jpg", (250, 250, 0))
    expected = [(250, 0, 0), (200,) * 3, (0, 250, 0), visualization.LIP_PALETTE[13], (0, 0, 250),
                (100,) * 3, (250, 250, 0)]

    code = smart_show.main(["--dataroot", str(data), "--result_dir", str(results),
                            "--out", str(tmp_path / "out")])
    assert code == 1  # the second pair has no files
    assert "000003_0.jpg 000004_1.jpg" in capsys.readouterr().err
    strip = np.array(Image.open(tmp_path / "out" / "src_000001_dst_000002.png"))
    assert strip.shape == (256, 1344, 3)
    for i, colour in enumerate(expected):
        tile = strip[:, 192 * i:192 * (i + 1)].reshape(-1, 3).astype(int)
        assert np.abs(tile - colour).max() <= 3, (smart_show.COLUMNS[i], tile[0], colour)
    page = (tmp_path / "out" / "index.html").read_text()
    assert 'src="src_000001_dst_000002.png"' in page and "src_000003" not in page
    assert all(f">{column}</th>" in page for column in smart_show.COLUMNS)
