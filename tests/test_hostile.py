"""Hostile and careless inputs: nothing is written outside its folder, nothing already written is
lost, and every command ends with a one-line error naming the file or option, not a traceback."""
import errno
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import atomic
import cp_dataset
import data_download
import networks
import smart_show_test_result as smart_show
import test as test_py  # this repository's test.py (pytest puts the repository first on sys.path)
import train
import visualization

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def data(sample_root, tmp_path):
    """A private copy of the tiny sample dataset (the tests write pairs files into it)."""
    root = tmp_path / "data"
    shutil.copytree(sample_root, root)
    return root


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Random GMM and TOM weights."""
    folder = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    paths = {stage: folder / f"{stage.lower()}_final.pth" for stage in ("GMM", "TOM")}
    for stage, path in paths.items():
        networks.save_checkpoint(networks.build_model(stage), path)
    return paths


def run_test(data, tmp_path, stage, checkpoint, *extra, data_list="test_pairs.txt"):
    """test.py as a user runs it (atomic.run: an OSError becomes a message); returns the exit code."""
    argv = ["--stage", stage, "--checkpoint", str(checkpoint), "--dataroot", str(data), "--datamode", "test",
            "--data_list", data_list, "--device", "cpu", "--workers", "0", "--result_dir", str(tmp_path / "result"),
            "--tensorboard_dir", str(tmp_path / "tensorboard"), *extra]
    with pytest.raises(SystemExit) as exit_:
        atomic.run(test_py.main, argv)
    return exit_.value.code


def train_args(data, tmp_path, *extra, steps=1):
    return ["--dataroot", str(data), "--device", "cpu", "-j", "0", "-b", "1", "--keep_step", str(steps),
            "--decay_step", "0", "--save_count", "1", "--checkpoint_dir", str(tmp_path / "checkpoints"),
            "--tensorboard_dir", str(tmp_path / "tensorboard"), "--name", "run", *extra]


# --- pairs files: names stay inside their folders, any bytes give a message -----------------------

def test_a_pairs_name_cannot_write_outside_the_result_folder(data, tmp_path, checkpoints):
    victim = tmp_path / "outside" / "victim.jpg"
    victim.parent.mkdir()
    victim.write_bytes(b"precious")
    person = tmp_path / "person.jpg"
    shutil.copy(data / "test" / "image" / "100000_0.jpg", person)
    original = person.read_bytes()
    # cloth name ../../../outside/victim.jpg: read from data/test/cloth/, written to warp-cloth/
    (data / "gmm_pairs.txt").write_text("100000_0.jpg ../../../outside/victim.jpg\n")
    (data / "tom_pairs.txt").write_text(f"{person} 100000_1.jpg\n")
    for stage, pairs in (("GMM", "gmm_pairs.txt"), ("TOM", "tom_pairs.txt")):
        code = run_test(data, tmp_path, stage, checkpoints[stage], data_list=pairs)
        assert "is not a file name" in str(code) and f"{pairs} line 1" in str(code)
    assert victim.read_bytes() == b"precious" and person.read_bytes() == original
    assert not (tmp_path / "result").exists()
    check = subprocess.run([sys.executable, str(REPO / "cp_dataset.py"), "--check", "--dataroot", str(data),
                            "--datamode", "test", "--data_list", "gmm_pairs.txt"], capture_output=True, text=True)
    assert check.returncode == 1 and "'../../../outside/victim.jpg' is not a file name" in check.stdout


@pytest.mark.parametrize("command", ["test.py", "smart_show_test_result.py", "cp_dataset.py", "evaluate.py"])
def test_a_pairs_file_that_is_not_text(data, tmp_path, checkpoints, command):
    (data / "bad_pairs.txt").write_bytes(b"100000_0.jpg 100000_1.jpg\n\xff\xfe\x00garbage \x80\n")
    argv = {"test.py": ["--checkpoint", str(checkpoints["GMM"]), "--datamode", "test", "--device", "cpu",
                        "--result_dir", str(tmp_path / "result"), "--tensorboard_dir", str(tmp_path / "tb")],
            "smart_show_test_result.py": ["--out", str(tmp_path / "strips")],
            "cp_dataset.py": ["--check", "--datamode", "test"],
            "evaluate.py": ["--gmm_result", str(tmp_path)]}[command]
    done = subprocess.run([sys.executable, str(REPO / command), "--dataroot", str(data),
                           "--data_list", "bad_pairs.txt", *argv], capture_output=True, text=True)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "Traceback" not in output
    assert "bad_pairs.txt line 2: not UTF-8 text" in output


# --- resume states, checkpoints ---------------------------------------------------------------------

def write_evil_pickle(path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    path.write_bytes(pickle.dumps(Evil()))


@pytest.mark.parametrize("kind, message", [
    ("empty", "is empty"), ("truncated", "cut short"), ("malicious", "could run code"),
    ("plain checkpoint", "not a resume state"), ("other sizes", "does not fit this run's")])
def test_resume_from_a_bad_state_is_a_message(data, tmp_path, checkpoints, kind, message):
    state = tmp_path / "checkpoints" / "run" / "train_state.pth"
    state.parent.mkdir(parents=True)
    if kind == "empty":
        state.write_bytes(b"")
    elif kind == "truncated":
        torch.save({"stage": "GMM", "step": 1, "model": networks.build_model("GMM").state_dict()}, state)
        state.write_bytes(state.read_bytes()[:5000])
    elif kind == "malicious":
        write_evil_pickle(state)
    elif kind == "plain checkpoint":
        shutil.copy(checkpoints["GMM"], state)
    else:
        torch.save({"stage": "GMM", "step": 1, "model": networks.build_model("GMM", grid_size=3).state_dict()}, state)
    with pytest.raises(SystemExit) as exit_:
        train.main(train_args(data, tmp_path, "--resume", steps=2))
    assert message in str(exit_.value.code) and str(state) in str(exit_.value.code)
    assert "weights_only=False" not in str(exit_.value.code)


def test_an_unsafe_checkpoint_gets_no_advice_to_load_it_unsafely(tmp_path):
    path = tmp_path / "evil.pth"
    write_evil_pickle(path)
    with pytest.raises(networks.CheckpointError) as err:
        networks.load_checkpoint(networks.build_model("TOM"), path)
    assert "could run code" in str(err.value) and "weights_only" not in str(err.value)


# --- a full disk ---------------------------------------------------------------------------------

def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_while_training_keeps_the_previous_state(data, tmp_path, monkeypatch):
    assert train.main(train_args(data, tmp_path, steps=1)) == 0
    state = tmp_path / "checkpoints" / "run" / "train_state.pth"
    before = state.read_bytes()
    monkeypatch.setattr(torch, "save", no_space)
    with pytest.raises(SystemExit) as exit_:
        atomic.run(train.main, train_args(data, tmp_path, "--resume", steps=2))
    assert "no space left on the device writing" in str(exit_.value.code)
    assert "step_000002.pth" in str(exit_.value.code)
    assert state.read_bytes() == before
    assert sorted(os.listdir(state.parent)) == ["gmm_final.pth", "step_000001.pth", "train_state.pth"]


def test_a_full_disk_while_testing_keeps_the_previous_results(data, tmp_path, checkpoints, monkeypatch):
    assert run_test(data, tmp_path, "GMM", checkpoints["GMM"]) == 0
    results = tmp_path / "result" / "gmm_final.pth" / "test"
    before = {p: p.read_bytes() for p in results.rglob("*.jpg")}
    monkeypatch.setattr(Image.Image, "save", no_space)
    code = run_test(data, tmp_path, "GMM", checkpoints["GMM"])
    assert "no space left on the device writing" in str(code) and ".jpg" in str(code)
    assert {p: p.read_bytes() for p in results.rglob("*.jpg")} == before
    assert sorted(os.listdir(results)) == ["warp-cloth", "warp-mask"]


# --- options, archives, loader workers, keypoints, leftovers -------------------------------------------

@pytest.mark.parametrize("script, argv, message", [
    ("train.py", ["--workers", "-1"], "--workers must be at least 0"),
    ("train.py", ["--grid_size", "1"], "--grid_size must be at least 2"),
    ("train.py", ["--radius", "-5"], "--radius must be at least 0"),
    ("train.py", ["--lr", "-1"], "--lr must be positive"),
    ("test.py", ["--checkpoint", "x", "--save_threads", "-1"], "--save_threads must be at least 0"),
    ("test.py", ["--checkpoint", "x", "--result_dir", "README.md"], "--result_dir README.md is a file"),
])
def test_options_out_of_range(script, argv, message):
    done = subprocess.run([sys.executable, str(REPO / script), *argv], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_an_archive_with_a_file_and_a_folder_of_one_name(tmp_path):
    archive = tmp_path / "clash.tar"
    with tarfile.open(archive, "w") as tar:
        for name in ("viton_resize/train", "viton_resize/train/x.jpg"):
            info = tarfile.TarInfo(name)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(data_download.UnsafeArchive, match="'viton_resize/train/x.jpg'.*clashes"):
        data_download.safe_extract(archive, tmp_path / "out")


def test_a_bad_file_read_by_a_loader_worker_is_reported_by_name(data, tmp_path, checkpoints):
    broken = data / "test" / "image" / "100000_0.jpg"
    broken.write_bytes(b"not a jpeg")
    code = run_test(data, tmp_path, "GMM", checkpoints["GMM"], "--workers", "1")
    assert str(code).startswith(f"error: {broken}: cannot read image") and "Traceback" not in str(code)


def test_keypoints_of_another_image_size(data, tmp_path, capsys):
    pose_path = data / "test" / "pose" / "100000_0_keypoints.json"
    pose = json.loads(pose_path.read_text())
    pose["people"][0]["pose_keypoints"] = [v * 16 if i % 3 < 2 else v
                                           for i, v in enumerate(pose["people"][0]["pose_keypoints"])]
    pose_path.write_text(json.dumps(pose))
    problems = cp_dataset.check_dataset(dataroot=str(data), datamode="test", data_list="test_pairs_same.txt")
    assert len(problems) == 1 and problems[0].startswith(f"{pose_path}: ") and "outside the 192x256" in problems[0]
    dataset = cp_dataset.CPDataset(dataroot=str(data), datamode="test", data_list="test_pairs_same.txt")
    dataset[0], dataset[0]
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(pose_path) in warnings[0]  # once per file


def test_a_killed_runs_leftovers_are_removed_by_the_next_run(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / f".train_state.pth.{dead.pid}.tmp").write_bytes(b"x" * 100)
    (folder / f".warp-cloth.partial-{dead.pid}").mkdir()
    (folder / f".warp-cloth.partial-{dead.pid}" / "a.jpg").write_bytes(b"x")
    (folder / f".train_state.pth.{os.getppid()}.tmp").write_bytes(b"a live process's")
    with atomic.writing_file(folder / "train_state.pth") as f:
        f.write(b"state")
    with atomic.writing_dir(folder / "warp-cloth"):
        pass
    assert sorted(os.listdir(folder)) == [f".train_state.pth.{os.getppid()}.tmp", "train_state.pth", "warp-cloth"]


def test_save_images_names_the_file_on_a_full_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(Image.Image, "save", no_space)
    with pytest.raises(OSError, match=f"no space left on the device writing {tmp_path / 'a.jpg'}"):
        visualization.save_images(torch.zeros(1, 3, 4, 4), ["a.jpg"], str(tmp_path))


def test_strips_refuse_a_name_outside_the_split(data, tmp_path):
    (data / "evil.txt").write_text("../../etc/passwd 100000_1.jpg\n")
    with pytest.raises(SystemExit, match="is not a file name"):
        smart_show.main(["--dataroot", str(data), "--data_list", "evil.txt", "--out", str(tmp_path / "s")])
    assert not np.any([p.name == "passwd" for p in tmp_path.rglob("*")])
