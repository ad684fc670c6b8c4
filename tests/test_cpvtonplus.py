"""--variant cpvton+: CP-VTON+'s data, networks and losses, checked against hand computations of
its code's definitions, and the whole pipeline in that mode on the tiny sample dataset."""
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import cp_dataset
import networks
import pipeline
import test as test_py  # this repository's test.py (pytest puts the repository first on sys.path)
import train
from bench import original_pose, original_transform
from test_networks import reference_layout  # CP-VTON's layout, from tests/data/cpvton_state_dict.txt

H, W = 256, 192
# The only two shapes CP-VTON+'s checkpoints change: the GMM reads the 1-channel cloth mask, the
# TOM also the warped mask.
PLUS_SHAPES = {"extractionB.model.0.weight": [64, 1, 4, 4], "model.model.0.weight": [64, 26, 4, 4]}


# --- the grid interval consistency loss ------------------------------------------------------------

def gic_by_hand(grid):
    """CP-VTON+'s GicLoss written out pixel by pixel in float64."""
    g = grid.double().numpy()
    total = 0.0
    for b in range(g.shape[0]):
        for y in range(1, g.shape[1] - 1):
            for x in range(1, g.shape[2] - 1):
                gx, gy = g[b, :, :, 0], g[b, :, :, 1]
                total += abs(abs(gx[y, x - 1] - gx[y, x]) - abs(gx[y, x + 1] - gx[y, x]))
                total += abs(abs(gy[y - 1, x] - gy[y, x]) - abs(gy[y + 1, x] - gy[y, x]))
    return total


def test_gic_loss_equals_its_definition():
    generator = torch.Generator().manual_seed(0)
    grid = torch.rand(2, 9, 7, 2, generator=generator, dtype=torch.float64) * 2 - 1
    assert networks.gic_loss(grid).item() == pytest.approx(gic_by_hand(grid), rel=1e-12)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 9, dtype=torch.float64),
                            torch.linspace(-1, 1, 7, dtype=torch.float64), indexing="ij")
    affine = torch.stack([0.8 * xs + 0.3 * ys + 0.1, -0.2 * xs + 1.1 * ys], -1)[None]
    assert gic_by_hand(affine) < 1e-12 and networks.gic_loss(affine).item() < 1e-12


def test_gmm_loss_adds_forty_gic_per_pixel():
    torch.manual_seed(0)
    model = networks.build_model("GMM", variant="cpvton+").eval()
    inputs = {"agnostic": torch.rand(2, 22, H, W) * 2 - 1, "cloth": torch.rand(2, 3, H, W) * 2 - 1,
              "cloth_mask": (torch.rand(2, 1, H, W) > 0.5).float(), "grid_image": torch.zeros(2, 3, H, W),
              "parse_cloth": torch.rand(2, 3, H, W) * 2 - 1}
    with torch.no_grad():
        loss, scalars, out = pipeline.gmm_loss(model, inputs, variant="cpvton+")
        l1 = torch.nn.functional.l1_loss(out["warped_cloth"], inputs["parse_cloth"])
        expected = l1 + 40 * networks.gic_loss(out["grid"]) / (2 * H * W)
    assert torch.allclose(loss, expected) and set(scalars) == {"metric", "L1", "GIC"}


# --- networks --------------------------------------------------------------------------------------

@pytest.mark.parametrize("stage", ["GMM", "TOM"])
def test_models_have_cpvtonplus_keys_and_shapes(stage):
    expected = [(key, PLUS_SHAPES.get(key, shape)) for key, shape in reference_layout(stage)]
    model = networks.build_model(stage, variant="cpvton+")
    assert [(k, list(v.shape)) for k, v in model.state_dict().items()] == expected


def test_a_cpvtonplus_checkpoint_in_cpvton_mode_names_the_variant(tmp_path):
    path = tmp_path / "gmm_final.pth"
    networks.save_checkpoint(networks.build_model("GMM", variant="cpvton+"), path)
    with pytest.raises(networks.CheckpointError, match="a cpvton\\+ checkpoint.*--variant cpvton\\+"):
        networks.load_checkpoint(networks.build_model("GMM"), path)
    networks.load_checkpoint(networks.build_model("GMM", variant="cpvton+"), path)  # strict


# --- data ------------------------------------------------------------------------------------------

def hand_made_pair(root):
    """One CP-VTON+ pair whose parse has the neck label (20), hair, pants and legs, and whose body
    mask differs from parse > 0 (a hole and an extra region)."""
    rng = np.random.default_rng(0)
    split = root / "train"
    for folder in ("image", "image-parse-new", "image-mask", "pose", "cloth", "cloth-mask", "warp-cloth", "warp-mask"):
        (split / folder).mkdir(parents=True)
    parse = np.zeros((H, W), np.uint8)
    parse[10:40, 70:120], parse[25:60, 80:110], parse[60:70, 85:105] = 2, 13, 20  # hair, face, neck
    parse[70:150, 50:140], parse[150:200, 60:130], parse[200:250, 60:90] = 5, 9, 16  # top, pants, leg
    parse[70:140, 30:50], parse[5:12, 75:115] = 14, 1  # arm, hat
    mask = (parse > 0).astype(np.uint8) * 255
    mask[100:120, 80:100], mask[200:256, 140:180] = 0, 255
    Image.fromarray(parse, "L").save(split / "image-parse-new" / "000000_0.png")
    Image.fromarray(mask, "L").save(split / "image-mask" / "000000_0.png")
    for folder, name in (("image", "000000_0.jpg"), ("cloth", "000000_1.jpg"), ("warp-cloth", "000000_0.jpg")):
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(split / folder / name)
    cloth_mask = (rng.random((H, W)) > 0.5).astype(np.uint8) * 255
    for folder, name in (("cloth-mask", "000000_1.jpg"), ("warp-mask", "000000_0.jpg")):
        Image.fromarray(cloth_mask).save(split / folder / name)
    points = [[96, 40, 1], [95, 62, 1], [70, 65, 1]] + [[0, 0, 0]] * 15
    (split / "pose" / "000000_0_keypoints.json").write_text(
        json.dumps({"people": [{"pose_keypoints": [v for p in points for v in p]}]}))
    (root / "pairs.txt").write_text("000000_0.jpg 000000_1.jpg\n")
    return parse, mask


def reference_item(root, parse, mask, stage):
    """The item as CP-VTON+'s cp_dataset.py computes it (PIL and torchvision, float32)."""
    split = root / "train"
    warp = stage == "TOM"
    image = original_transform(Image.open(split / "image" / "000000_0.jpg"))
    cloth = original_transform(Image.open(split / ("warp-cloth/000000_0.jpg" if warp else "cloth/000000_1.jpg")))
    body = Image.fromarray((mask > 0).astype(np.uint8) * 255).resize((W // 16, H // 16), Image.BILINEAR)
    shape = original_transform(body.resize((W, H), Image.BILINEAR))
    head_labels = (1, 2, 4, 9, 12, 13, 16, 17) if warp else (1, 4, 13)
    head = torch.from_numpy(np.isin(parse, head_labels).astype(np.float32))
    garment = torch.from_numpy(np.isin(parse, (5, 6, 7)).astype(np.float32))
    im_h = image * head - (1 - head)
    keypoints = json.loads((split / "pose" / "000000_0_keypoints.json").read_text())["people"][0]["pose_keypoints"]
    pose_maps, _ = original_pose(np.reshape(keypoints, (-1, 3)), 5)
    cloth_mask = np.array(Image.open(split / ("warp-mask/000000_0.jpg" if warp else "cloth-mask/000000_1.jpg")))
    return {"cloth": cloth, "cloth_mask": torch.from_numpy((cloth_mask >= 128).astype(np.float32))[None],
            "image": image, "agnostic": torch.cat([shape, im_h, pose_maps]), "shape": shape, "head": im_h,
            "parse_cloth": image * garment + (1 - garment), "parse_cloth_mask": garment[None]}


@pytest.mark.parametrize("stage", ["GMM", "TOM"])
def test_items_equal_cpvtonplus_preprocessing(tmp_path, stage):
    parse, mask = hand_made_pair(tmp_path)
    assert (mask > 0).sum() != (parse > 0).sum()
    item = cp_dataset.CPDataset(dataroot=str(tmp_path), data_list="pairs.txt", stage=stage, variant="cpvton+")[0]
    for key, value in reference_item(tmp_path, parse, mask, stage).items():
        assert torch.equal(item[key], value), key
    neck = torch.from_numpy(parse == 20)
    assert (item["head"][:, neck] == -1).all()  # the neck is not kept; hair only for the TOM
    assert (item["head"][:, torch.from_numpy(parse == 2)] > -1).any() == (stage == "TOM")


def test_cpvtonplus_data_errors(tmp_path):
    parse, _ = hand_made_pair(tmp_path)
    path = tmp_path / "train" / "image-parse-new" / "000000_0.png"
    coloured = Image.fromarray(parse, "P")
    coloured.putpalette([c for i in range(256) for c in ((i * 7) % 256, (i * 11) % 256, (i * 13) % 256)])
    coloured.save(path)
    problems = cp_dataset.check_dataset(dataroot=str(tmp_path), data_list="pairs.txt", variant="cpvton+")
    assert len(problems) == 1 and problems[0].startswith(f"{path}: a palette PNG") and "mode L" in problems[0]
    grey = Image.fromarray(parse, "P")
    grey.putpalette([v for i in range(256) for v in (i, i, i)])
    grey.save(path)  # a palette that is the grey ramp reads the same either way
    assert cp_dataset.check_dataset(dataroot=str(tmp_path), data_list="pairs.txt", variant="cpvton+") == []
    (tmp_path / "train" / "image-mask" / "000000_0.png").unlink()
    with pytest.raises(cp_dataset.DatasetError, match="image-mask/000000_0.png(.|\n)*data_download.py --variant cpvton"):
        cp_dataset.CPDataset(dataroot=str(tmp_path), data_list="pairs.txt", variant="cpvton+")


# --- the pipeline in cpvton+ mode ------------------------------------------------------------------

@pytest.fixture(scope="module")
def plus_root(sample_root, tmp_path_factory):
    """The sample set with CP-VTON+'s folders (made here from the LIP parse: neck left as face)."""
    root = tmp_path_factory.mktemp("plus") / "data"
    shutil.copytree(sample_root, root)
    for split in ("train", "test"):
        for folder in ("image-parse-new", "image-mask"):
            (root / split / folder).mkdir(exist_ok=True)
        for path in (root / split / "image-parse").glob("*.png"):
            labels = np.array(Image.open(path))
            Image.fromarray(labels, "L").save(root / split / "image-parse-new" / path.name)
            Image.fromarray((labels > 0).astype(np.uint8) * 255, "L").save(root / split / "image-mask" / path.name)
    return root


def test_train_and_test_both_stages_in_cpvtonplus_mode(plus_root, tmp_path):
    common = ["--dataroot", str(plus_root), "--device", "cpu", "-j", "0", "-b", "1", "--variant", "cpvton+",
              "--tensorboard_dir", str(tmp_path / "tb")]
    train_args = common + ["--keep_step", "1", "--decay_step", "0", "--checkpoint_dir", str(tmp_path / "ckpt")]
    assert train.main(train_args + ["--stage", "GMM", "--name", "gmm"]) == 0
    gmm = tmp_path / "ckpt" / "gmm" / "gmm_final.pth"
    assert networks.checkpoint_variant(torch.load(gmm, weights_only=True)) == "cpvton+"
    test_args = common + ["--datamode", "test", "--data_list", "test_pairs.txt", "--result_dir", str(tmp_path / "res")]
    assert test_py.main(test_args + ["--stage", "GMM", "--checkpoint", str(gmm)]) == 0
    warps = tmp_path / "res" / "gmm_final.pth" / "test"
    persons = [p for p, _ in cp_dataset.read_pairs(plus_root / "test_pairs.txt")]
    for folder in cp_dataset.WARP_FOLDERS:  # named by person, as CP-VTON+ names them
        assert sorted(p.name for p in (warps / folder).iterdir()) == sorted(persons)
        shutil.copytree(warps / folder, plus_root / "test" / folder, dirs_exist_ok=True)
        shutil.copytree(warps / folder, plus_root / "train" / folder, dirs_exist_ok=True)
    for split in ("train",):  # the TOM trains on warps named by the train persons
        for folder in cp_dataset.WARP_FOLDERS:
            for person, _ in cp_dataset.read_pairs(plus_root / "train_pairs.txt"):
                shutil.copy(warps / folder / persons[0], plus_root / split / folder / person)
    assert train.main(train_args + ["--stage", "TOM", "--name", "tom", "--perceptual", "none"]) == 0
    tom = tmp_path / "ckpt" / "tom" / "tom_final.pth"
    assert test_py.main(test_args + ["--stage", "TOM", "--checkpoint", str(tom)]) == 0
    assert len(list((tmp_path / "res" / "tom_final.pth" / "test" / "try-on").iterdir())) == len(persons)
    with pytest.raises(SystemExit, match="--variant cpvton\\+"):  # the checkpoint is a CP-VTON+ one
        test_py.main([a for a in test_args if a not in ("--variant", "cpvton+")] + ["--checkpoint", str(gmm)])
