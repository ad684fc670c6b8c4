"""End to end: the five step scripts and smart_show_test_result.py on the tiny sample dataset.

The scripts run as a user runs them, in a scratch working directory (outputs land there) with a
copy of the sample data, for a few steps on the CPU. Step 1 is interrupted with Ctrl-C (SIGINT
to its process group) after its first step and resumed with EXTRA_ARGS=--resume.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import networks
import options
from smart_show_test_result import strip_name
from visualization import colorize_parse

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {"PYTHON": sys.executable, "DATAROOT": "data", "DEVICE": "cpu", "WORKERS": "0",
            "BATCH_SIZE": "2", "KEEP_STEP": "2", "DECAY_STEP": "1", "SAVE_COUNT": "2",
            "DISPLAY_COUNT": "1", "PERCEPTUAL": "none"}
TOTAL_STEPS = 3


def step_env(**extra):
    return {**os.environ, **SETTINGS, **extra}


def run_step(work, script, expect=0, **extra):
    done = subprocess.run(["bash", str(REPO / script)], cwd=work, env=step_env(**extra),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == expect, f"{script}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def interrupt_after_first_step(work, script):
    """Start `script`, press Ctrl-C (SIGINT to its process group) once step 1 is logged."""
    proc = subprocess.Popen(["bash", str(REPO / script)], cwd=work, env=step_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    output = b""
    while b"step:        1," not in output:
        chunk = proc.stdout.read1(4096)
        assert chunk, f"{script} ended before its first step:\n{output.decode()}"
        output += chunk
    os.killpg(proc.pid, signal.SIGINT)
    output += proc.stdout.read()
    return proc.wait(timeout=120), output.decode()


def read_pairs(path):
    return [tuple(line.split()) for line in path.read_text().splitlines() if line.strip()]


def names_in(folder):
    return sorted(p.name for p in folder.iterdir())


def events(logdir):
    accumulator = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return accumulator


@pytest.fixture(scope="module")
def run(sample_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("pipeline")
    shutil.copytree(sample_root, work / "data")
    interrupted = interrupt_after_first_step(work, "step1-train-gmm.sh")
    resumed = run_step(work, "step1-train-gmm.sh", EXTRA_ARGS="--resume")
    too_early = run_step(work, "step3-generate-tom-data.sh", expect=1)
    for script in ("step2-test-gmm.sh", "step3-generate-tom-data.sh", "step4-train-tom.sh", "step5-test-tom.sh"):
        run_step(work, script)
    show = subprocess.run([sys.executable, str(REPO / "smart_show_test_result.py")], cwd=work,
                          capture_output=True, text=True, timeout=300)
    assert show.returncode == 0, show.stderr
    return SimpleNamespace(work=work, interrupted=interrupted, resumed=resumed, too_early=too_early,
                           train_pairs=read_pairs(work / "data" / "train_pairs.txt"),
                           test_pairs=read_pairs(work / "data" / "test_pairs.txt"))


def test_ctrl_c_then_resume_completes_the_same_step_count(run):
    code, output = run.interrupted
    assert code == 130, output
    done = int(re.search(r"Interrupted after step (\d+); state saved", output).group(1))
    assert 1 <= done < TOTAL_STEPS and "--resume" in output
    assert f"steps {done} -> {TOTAL_STEPS}" in run.resumed.stdout
    state = torch.load(run.work / "checkpoints" / "gmm_train_new" / "train_state.pth", weights_only=True)
    assert state["step"] == TOTAL_STEPS
    steps = [s.step for s in events(run.work / "tensorboard" / "gmm_train_new").Scalars("metric")]
    assert steps == [1, 2, 3]  # the resumed run's log continues the interrupted one, no repeats


def test_checkpoints(run):
    opt = options.train_options([])
    for name, stage in (("gmm_train_new", "GMM"), ("tom_train_new", "TOM")):
        folder = run.work / "checkpoints" / name
        final = f"{stage.lower()}_final.pth"
        assert names_in(folder) == sorted([final, "step_000002.pth", "train_state.pth"])
        for checkpoint in (final, "step_000002.pth"):  # plain state_dicts of the right stage
            networks.load_checkpoint(networks.build_model(stage, opt), folder / checkpoint, stage=stage)


def test_gmm_results_copied_into_the_dataset(run):
    for split, pairs in (("train", run.train_pairs), ("test", run.test_pairs)):
        cloths = sorted(c for _, c in pairs)
        for kind, mode in (("warp-cloth", "RGB"), ("warp-mask", "L")):
            result = run.work / "result" / "gmm_final.pth" / split / kind
            copied = run.work / "data" / split / kind
            assert names_in(result) == names_in(copied) == cloths
            for name in cloths:
                assert (result / name).read_bytes() == (copied / name).read_bytes()
                with Image.open(result / name) as image:
                    assert (image.format, image.mode, image.size) == ("JPEG", mode, (192, 256))


def test_try_on_results(run):
    folder = run.work / "result" / "tom_final.pth" / "test" / "try-on"
    assert names_in(folder) == sorted(p for p, _ in run.test_pairs)


def test_step_logs(run):
    logs = names_in(run.work / "logs")
    for script in ("step1-train-gmm", "step2-test-gmm", "step3-generate-tom-data", "step4-train-tom",
                   "step5-test-tom"):
        assert any(re.fullmatch(rf"{script}-\d{{8}}-\d{{6}}\.log", log) for log in logs), (script, logs)
    step1_logs = "".join((run.work / "logs" / log).read_text() for log in logs if log.startswith("step1"))
    assert "Interrupted after step" in step1_logs and "Finished stage GMM" in step1_logs


def test_step3_needs_step2(run):
    assert "run step2 first" in run.too_early.stderr


def test_tensorboard_tags(run):
    board = run.work / "tensorboard"
    tom = events(board / "tom_train_new")
    assert sorted(tom.Tags()["scalars"]) == ["L1", "MaskL1", "VGG", "metric"]
    assert all(s.value == 0 for s in tom.Scalars("VGG"))  # PERCEPTUAL=none
    for name in ("gmm_train_new", "tom_train_new", "gmm_traintest_new", "tom_test_new"):
        assert events(board / name).Tags()["images"] == ["combine/000", "combine/001"], name
        image = events(board / name).Images("combine/000")[0]
        assert (image.width, image.height) == (3 * 192, 3 * 256)


def test_strips_and_index(run):
    data, result = run.work / "data" / "test", run.work / "result"
    out = run.work / "result_simple"
    page = (out / "index.html").read_text()
    for person, cloth in run.test_pairs:
        strip = np.asarray(Image.open(out / strip_name(person, cloth)), dtype=float)
        assert strip.shape == (256, 1344, 3)
        with Image.open(data / "image-parse" / person.replace(".jpg", ".png")) as parse:
            parse_tile = colorize_parse(np.array(parse))
        sources = [data / "cloth" / cloth, data / "cloth-mask" / cloth, data / "image" / person, parse_tile,
                   result / "gmm_final.pth" / "test" / "warp-cloth" / cloth,
                   result / "gmm_final.pth" / "test" / "warp-mask" / cloth,
                   result / "tom_final.pth" / "test" / "try-on" / person]
        for i, source in enumerate(sources):
            expected = source if isinstance(source, Image.Image) else Image.open(source)
            tile = strip[:, 192 * i:192 * (i + 1)]
            assert np.abs(tile - np.asarray(expected.convert("RGB"), dtype=float)).mean() < 2, (person, i)
        assert f'src="{strip_name(person, cloth)}"' in page


def test_rerunning_step3_is_safe(run):
    train_dir = run.work / "data" / "train"
    before = {p.name: p.read_bytes() for p in (train_dir / "warp-cloth").iterdir()}
    run_step(run.work, "step3-generate-tom-data.sh")
    assert {p.name: p.read_bytes() for p in (train_dir / "warp-cloth").iterdir()} == before
    assert names_in(train_dir) == ["cloth", "cloth-mask", "image", "image-mask", "image-parse", "image-parse-new",
                                   "pose", "warp-cloth", "warp-mask"]  # no temporary folders left behind


def test_the_five_steps_with_variant_cpvtonplus(sample_root, tmp_path):
    """VARIANT=cpvton+: CP-VTON+'s checkpoints and results apart from CP-VTON's, warps by person."""
    shutil.copytree(sample_root, tmp_path / "data")
    for script in ("step1-train-gmm.sh", "step2-test-gmm.sh", "step3-generate-tom-data.sh",
                   "step4-train-tom.sh", "step5-test-tom.sh"):
        run_step(tmp_path, script, VARIANT="cpvton+")
    assert names_in(tmp_path / "checkpoints") == ["gmm_train_plus", "tom_train_plus"]
    persons = [person for person, _ in read_pairs(tmp_path / "data" / "test_pairs.txt")]
    assert names_in(tmp_path / "data" / "test" / "warp-cloth") == sorted(persons)
    assert names_in(tmp_path / "result_plus" / "tom_final.pth" / "test" / "try-on") == sorted(persons)
    assert not (tmp_path / "result").exists()
    run_step(tmp_path, "step1-train-gmm.sh", expect=2, VARIANT="cpvton++")
