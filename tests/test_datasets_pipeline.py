"""The pipeline on VITON-HD and on a Dress Code category, as `make demo DATASET=...` runs it: the five
step scripts, the strips and the evaluation on tiny sample sets in each dataset's layout, in its
default folder; the settings the scripts and the Makefile derive per dataset; each dataset's parse
colours.

The two pipelines run side by side (each a chain of processes) on the same-clothes test list, so
that the evaluation has ground truth for every figure.
"""
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import data_download
import layouts
from cp_dataset import LIP_PALETTE, read_pairs
from smart_show_test_result import strip_names
from visualization import ATR_AS_LIP, NECK_COLOUR, load_tile, parse_palette

REPO = Path(__file__).resolve().parents[1]
STEPS = ("step1-train-gmm.sh", "step2-test-gmm.sh", "step3-generate-tom-data.sh", "step4-train-tom.sh",
         "step5-test-tom.sh")
SETTINGS = {"PYTHON": sys.executable, "DEVICE": "cpu", "WORKERS": "0", "BATCH_SIZE": "2", "KEEP_STEP": "1",
            "DECAY_STEP": "0", "SAVE_COUNT": "1", "DISPLAY_COUNT": "1", "PERCEPTUAL": "none"}
# dataset -> (category, run name); Dress Code's lower body: a garment label set furthest from LIP's
RUNS = {"vitonhd": (None, "vitonhd"), "dresscode": ("lower_body", "dresscode_lower_body")}


def script_env(dataset, category, **extra):
    """The step scripts' environment: SETTINGS, the dataset, its folders left to their defaults."""
    inherited = {k: v for k, v in os.environ.items() if k not in ("DATAROOT", "RESULT_DIR", "FINE_HEIGHT",
                                                                   "FINE_WIDTH", "EXTRA_ARGS", "VARIANT")}
    return {**inherited, **SETTINGS, "DATASET": dataset, **({"CATEGORY": category} if category else {}), **extra}


def dataset_options(dataset, category):
    return ["--dataset", dataset] + (["--category", category] if category else [])


def run_pipeline(work, dataset, category):
    """The five steps, the strips and the evaluation in `work`, on the dataset's same-clothes list
    -> {step: completed process}."""
    same_list = layouts.LAYOUTS[dataset].same_list
    env = script_env(dataset, category, DATA_LIST_TEST=same_list)
    commands = [(script, ["bash", str(REPO / script)]) for script in STEPS]
    run = RUNS[dataset][1]
    options = dataset_options(dataset, category)
    commands += [("strips", [sys.executable, str(REPO / "smart_show_test_result.py"), *options, "--data_list",
                             same_list, "--result_dir", f"result_{run}", "--out", f"result_simple_{run}"]),
                 ("evaluate", [sys.executable, str(REPO / "evaluate.py"), *options, "--result_dir", f"result_{run}",
                               "--device", "cpu"])]
    done = {}
    for name, command in commands:
        done[name] = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=600)
        report = f"{dataset} {name}: exit {done[name].returncode}\n{done[name].stdout}\n{done[name].stderr}"
        assert done[name].returncode == 0, report
    return done


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{dataset: namespace of its run}: each dataset's sample set written where the scripts look by
    default, then the two pipelines at once."""
    setups = {}
    for dataset, (category, run) in RUNS.items():
        work = tmp_path_factory.mktemp(dataset)
        root = work / layouts.DEFAULT_ROOTS[dataset]
        data_download.make_sample_dataset(root, n_train=2, n_test=2, dataset=dataset)
        layout = layouts.LAYOUTS[dataset]
        setups[dataset] = SimpleNamespace(
            work=work, category=category, run=run, root=root, layout=layout,
            test_dir=Path(layout.split_dir(root, "test", category)),
            same_pairs=read_pairs(layout.pairs_path(root, layout.same_list, category)),
            train_pairs=layout.pairs(read_pairs(layout.pairs_path(root, layouts.TRAIN_LIST, category)), "train"))
    with ThreadPoolExecutor(len(setups)) as pool:
        outputs = dict(zip(setups, pool.map(lambda d: run_pipeline(setups[d].work, d, setups[d].category), setups)))
    for dataset, setup in setups.items():
        setup.output = outputs[dataset]
    return setups


def names_in(folder):
    return sorted(p.name for p in Path(folder).iterdir())


@pytest.mark.parametrize("dataset", RUNS)
def test_checkpoints_and_results_kept_apart(runs, dataset):
    run = runs[dataset]
    assert names_in(run.work / "checkpoints") == [f"gmm_train_{run.run}", f"tom_train_{run.run}"]
    assert {"result_" + run.run, "result_simple_" + run.run} <= set(names_in(run.work))
    assert not (run.work / "result").exists() and not (run.work / "result_simple").exists()


def test_dresscode_step3_merges_both_splits_into_the_category_folder(runs):
    run = runs["dresscode"]
    category_dir = run.root / run.category
    splits = {split: run.work / f"result_{run.run}" / "gmm_final.pth" / split for split in ("train", "test")}
    for kind in ("warp-cloth", "warp-mask"):
        train, test = (names_in(splits[split] / kind) for split in ("train", "test"))
        assert train == sorted(c for _, c in run.train_pairs) and test == sorted(c for _, c in run.same_pairs)
        assert not set(train) & set(test)  # the two splits' ids differ
        assert names_in(category_dir / kind) == sorted(train + test)
        for split, names in (("train", train), ("test", test)):
            for name in names:
                assert (category_dir / kind / name).read_bytes() == (splits[split] / kind / name).read_bytes()
    assert not [p for p in category_dir.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_dresscode_step3_refuses_a_name_in_both_splits(runs):
    """A warp name in both splits' results would let one split's warp replace the other's: step 3
    stops and leaves the category folder as it was."""
    run = runs["dresscode"]
    kept = run.root / run.category / "warp-cloth"
    before = {p.name: p.read_bytes() for p in kept.iterdir()}
    planted = run.work / f"result_{run.run}" / "gmm_final.pth" / "test" / "warp-cloth" / run.train_pairs[0][1]
    planted.write_bytes(b"not a warp")
    try:
        done = subprocess.run(["bash", str(REPO / "step3-generate-tom-data.sh")], cwd=run.work, capture_output=True,
                              text=True, timeout=600, env=script_env("dresscode", run.category))
    finally:
        planted.unlink()
    assert done.returncode == 1 and "the same file name in more than one of these folders" in done.stderr
    assert {p.name: p.read_bytes() for p in kept.iterdir()} == before
    assert not [p for p in kept.parent.iterdir() if p.name.startswith(".")]


def test_vitonhd_step3_copies_each_split_into_its_folder(runs):
    run = runs["vitonhd"]
    for split, pairs in (("train", run.train_pairs), ("test", run.same_pairs)):
        result = run.work / f"result_{run.run}" / "gmm_final.pth" / split / "warp-cloth"
        assert names_in(run.root / split / "warp-cloth") == names_in(result) == sorted(c for _, c in pairs)


@pytest.mark.parametrize("dataset", RUNS)
def test_try_ons_at_the_model_size(runs, dataset):
    run = runs[dataset]
    folder = run.work / f"result_{run.run}" / "tom_final.pth" / "test" / "try-on"
    assert names_in(folder) == sorted(p for p, _ in run.same_pairs)
    for name in names_in(folder):
        with Image.open(folder / name) as image:
            assert image.size == (192, 256)


@pytest.mark.parametrize("dataset", RUNS)
def test_strips_of_full_size_inputs(runs, dataset):
    """One strip per pair, named by the ids; the 768x1024 person and parse resized into their
    tiles, the parse in its dataset's colours (only colours of the labels the file holds)."""
    run = runs[dataset]
    out = run.work / f"result_simple_{run.run}"
    names = strip_names(run.same_pairs)
    assert names_in(out) == sorted(names + ["index.html"])
    palette = parse_palette(dataset)
    for (person, cloth), name in zip(run.same_pairs, names):
        assert name == f"src_{person.rsplit('_', 1)[0]}_dst_{cloth.rsplit('_', 1)[0]}.png"
        strip = np.asarray(Image.open(out / name))
        assert strip.shape == (256, 7 * 192, 3)
        files = run.layout.input_paths(run.test_dir, person, cloth)
        with Image.open(files["image"]) as image:
            assert image.size == (768, 1024)
            expected = np.asarray(image.convert("RGB").resize((192, 256), Image.BILINEAR), float)
        assert np.abs(strip[:, 2 * 192:3 * 192] - expected).mean() < 2
        labels = np.unique(np.asarray(Image.open(files["parse"])))
        tile_colours = np.unique(strip[:, 3 * 192:4 * 192].reshape(-1, 3), axis=0)
        assert {tuple(c) for c in tile_colours} <= {tuple(palette[label]) for label in labels}


def test_strip_names_fall_back_to_file_stems_when_ids_collide():
    assert strip_names([("012578_0.jpg", "014252_1.jpg")]) == ["src_012578_dst_014252.png"]
    assert strip_names([("00001_00.jpg", "00002_00.jpg"), ("00001_01.jpg", "00002_00.jpg")]) == [
        "src_00001_00_dst_00002_00.png", "src_00001_01_dst_00002_00.png"]


@pytest.mark.parametrize("dataset", RUNS)
def test_evaluation_on_the_same_clothes_pairs(runs, dataset):
    run = runs[dataset]
    result = run.work / f"result_{run.run}"
    for stage, keys in (("GMM", {"iou", "ssim"}), ("TOM", {"ssim", "psnr", "l1"})):
        folder = result / f"{stage.lower()}_final.pth" / "test"
        saved = json.loads((folder / "metrics.json").read_text())[stage][run.layout.same_list]
        assert saved["paired"] and saved["count"] == len(run.same_pairs)
        assert keys <= set(saved["metrics"])
        assert all(0 <= saved["metrics"][key]["mean"] <= 1 for key in keys - {"psnr"})
        settings = saved["settings"]
        assert (settings["dataset"], settings["category"]) == (dataset, run.category)
        assert settings["cloth_labels"] == list(run.layout.cloth_labels(run.category))
    table = run.output["evaluate"].stdout
    ssim_rows = [line.split() for line in table.splitlines() if line.split()[:1] == ["SSIM"]]
    if dataset == "dresscode":  # CP-VTON's published SSIM on Dress Code, beside the TOM's
        assert "published (Dress Code 256x192)" in table and ssim_rows[-1][-1] == "0.8030"
    else:  # none published for VITON-HD
        assert all(row[-1] == "-" for row in ssim_rows)


# ---------------------------------------------------------------------------------------------
# The settings per dataset, without running anything


def script_settings(tmp_path, **env):
    """(exit status, the settings scripts/common.sh derives, stderr), sourced in tmp_path."""
    show = ('source "$0"; printf "%s\\n" "$DATAROOT" "$DATA_LIST_TEST" "$RUN" "$RESULT_DIR" '
            '"$(split_dir train)" "$(split_dir test)" "${COMMON_ARGS[*]}"')
    done = subprocess.run(["bash", "-c", show, str(REPO / "scripts" / "common.sh")], cwd=tmp_path,
                          env={"PATH": os.environ["PATH"], **env}, capture_output=True, text=True)
    keys = ("dataroot", "test_list", "run", "result_dir", "train_dir", "test_dir", "args")
    values = done.stdout.splitlines()[1:]  # after "log: ..."
    return done.returncode, dict(zip(keys, values)) if done.returncode == 0 else None, done.stderr


@pytest.mark.parametrize("env, expected", [
    ({}, ("viton", "new", "result", "data/train", "data/test")),
    ({"VARIANT": "cpvton+"}, ("viton", "plus", "result_plus", "data/train", "data/test")),
    ({"DATASET": "vitonhd"}, ("vitonhd", "vitonhd", "result_vitonhd", "data/zalando-hd-resized/train",
                              "data/zalando-hd-resized/test")),
    ({"DATASET": "dresscode"}, ("dresscode", "dresscode_upper_body", "result_dresscode_upper_body",
                                "data/DressCode/upper_body", "data/DressCode/upper_body")),
    ({"DATASET": "dresscode", "CATEGORY": "dresses"}, ("dresscode", "dresscode_dresses", "result_dresscode_dresses",
                                                       "data/DressCode/dresses", "data/DressCode/dresses")),
])
def test_script_settings_per_dataset(tmp_path, env, expected):
    dataset, run, result_dir, train_dir, test_dir = expected
    code, settings, _ = script_settings(tmp_path, **env)
    assert code == 0
    assert settings["dataroot"] == layouts.DEFAULT_ROOTS[dataset]
    assert settings["test_list"] == layouts.LAYOUTS[dataset].test_list
    assert (settings["run"], settings["result_dir"], settings["train_dir"], settings["test_dir"]) == (
        run, result_dir, train_dir, test_dir)
    args = settings["args"].split()
    if dataset == "viton":  # the commands as they were before the other datasets
        assert "--dataset" not in args and "--category" not in args
    else:
        assert args[args.index("--dataset") + 1] == dataset
        assert ("--category" in args) == (dataset == "dresscode")
    assert "--fine_height" not in args


def test_script_size_and_errors(tmp_path):
    _, settings, _ = script_settings(tmp_path, DATASET="vitonhd", FINE_HEIGHT="512", FINE_WIDTH="384")
    assert "--fine_height 512 --fine_width 384" in settings["args"]
    assert (settings["run"], settings["result_dir"]) == ("vitonhd_512x384", "result_vitonhd_512x384")
    for env, message in (({"DATASET": "viton-hd"}, "DATASET=viton-hd: expected viton, vitonhd or dresscode"),
                         ({"DATASET": "dresscode", "CATEGORY": "shoes"}, "CATEGORY=shoes: expected upper_body"),
                         ({"DATASET": "vitonhd", "VARIANT": "cpvton+"}, "DATASET=viton only")):
        code, _, stderr = script_settings(tmp_path, **env)
        assert code == 2 and message in stderr, (env, stderr)


def make_demo(*assignments):
    """`make -n demo` (the commands, none run) -> (exit status, output)."""
    done = subprocess.run(["make", "-n", "demo", f"VIRTUAL_ENV={Path(sys.executable).parent.parent}", *assignments],
                          cwd=REPO, capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


def test_make_demo_per_dataset():
    code, viton = make_demo()
    assert code == 0 and "--dataset" not in viton and "DATASET=" not in viton
    code, commands = make_demo("DATASET=dresscode", "CATEGORY=dresses")
    assert code == 0
    for expected in ("data_download.py --sample --dataset dresscode",
                     "VARIANT=cpvton DATASET=dresscode CATEGORY=dresses BATCH_SIZE=4",
                     "--result_dir result_dresscode_dresses --out result_simple_dresscode_dresses "
                     "--dataset dresscode --category dresses",
                     "DATA_LIST_TEST=test_pairs_paired.txt EXTRA_ARGS=\"--result_dir result_dresscode_dresses/same\"",
                     "result_dresscode_dresses/gmm_final.pth/test/warp-mask data/DressCode/dresses/",
                     "evaluate.py --variant cpvton --result_dir result_dresscode_dresses/same --data_list "
                     "test_pairs_paired.txt --dataset dresscode --category dresses"):
        assert expected in commands, expected
    code, commands = make_demo("DATASET=vitonhd")
    assert code == 0 and "--out result_simple_vitonhd --dataset vitonhd" in commands
    assert "result_vitonhd/same/gmm_final.pth/test/warp-mask data/zalando-hd-resized/test/" in commands
    code, output = make_demo("DATASET=dresscode", "CATEGORY=shoes")
    assert code != 0 and "CATEGORY=shoes: expected upper_body, lower_body or dresses" in output


# ---------------------------------------------------------------------------------------------
# Parse colours


def test_parse_colours_mean_the_same_in_every_dataset():
    viton, vitonhd, dresscode = (parse_palette(d) for d in layouts.DATASETS)
    assert (viton[:20] == LIP_PALETTE).all() and tuple(viton[20]) == NECK_COLOUR
    assert (vitonhd[:10] == viton[:10]).all() and (vitonhd[11:20] == viton[11:20]).all()
    assert tuple(vitonhd[10]) == NECK_COLOUR  # CIHP's torso skin, not LIP's jumpsuit
    # ATR: hair 2, upper clothes 4, skirt 5, pants 6, dress 7, face 11 in LIP's hair, upper clothes,
    # skirt, pants, dress, face colours
    for atr, lip in ((2, 2), (4, 5), (5, 12), (6, 9), (7, 6), (11, 13)):
        assert tuple(dresscode[atr]) == LIP_PALETTE[lip]
    assert len({tuple(c) for c in dresscode[:18]}) == 18  # every ATR label its own colour
    assert set(ATR_AS_LIP) == set(range(18))


def test_full_size_tiles(tmp_path):
    labels = np.zeros((1024, 768), np.uint8)
    labels[512:] = 4  # ATR upper clothes
    parse = Image.fromarray(labels, "L").convert("P")
    parse.putpalette([0, 0, 0] * 4 + [0, 0, 128] + [0, 0, 0] * 251)  # the file's own colours: not shown
    parse.save(tmp_path / "parse.png")
    tile = np.asarray(load_tile(tmp_path / "parse.png", is_parse=True, dataset="dresscode"))
    assert tile.shape == (256, 192, 3)
    assert (tile[:128] == 0).all() and (tile[128:] == LIP_PALETTE[5]).all()
    Image.new("RGB", (768, 1024), (10, 200, 30)).save(tmp_path / "image.jpg")
    tile = np.asarray(load_tile(tmp_path / "image.jpg"), int)
    assert tile.shape == (256, 192, 3) and np.abs(tile - (10, 200, 30)).max() <= 3


def test_vitonhd_pipeline_at_512x384(tmp_path):
    """The five steps at 512x384: the GMM's regression is sized for it, and every output is 384x512."""
    root = tmp_path / layouts.DEFAULT_ROOTS["vitonhd"]
    data_download.make_sample_dataset(root, n_train=2, n_test=2, dataset="vitonhd")
    env = script_env("vitonhd", None, FINE_HEIGHT="512", FINE_WIDTH="384", BATCH_SIZE="1")
    for script in STEPS:
        done = subprocess.run(["bash", str(REPO / script)], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, f"{script}: {done.stdout}\n{done.stderr}"
    state = torch.load(tmp_path / "checkpoints/gmm_train_vitonhd_512x384/gmm_final.pth", weights_only=True)
    assert state["regression.linear.weight"].shape[1] == 64 * (512 // 64) * (384 // 64)
    for folder in ("gmm_final.pth/test/warp-cloth", "tom_final.pth/test/try-on"):
        images = list((tmp_path / "result_vitonhd_512x384" / folder).iterdir())
        assert images and all(Image.open(p).size == (384, 512) for p in images)
