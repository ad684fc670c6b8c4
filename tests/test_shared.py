"""The shared pieces: atomic writes, the VITON layout in cp_dataset, options' spellings, and the
plain-argument constructors that stand beside the original's options-object ones."""
import os
from argparse import Namespace

import pytest
import torch

import atomic
import cp_dataset
import networks
import options
import pipeline


# --- atomic ----------------------------------------------------------------------------------

def test_writing_dir_swaps_in_only_a_complete_folder(tmp_path):
    target = tmp_path / "results"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic.writing_dir(target) as new:
            (tmp_path / new / "half.txt").write_text("half")
            raise RuntimeError("interrupted")
    assert sorted(os.listdir(target)) == ["old.txt"]  # untouched
    assert sorted(os.listdir(tmp_path)) == ["results"]  # no leftovers
    with atomic.writing_dir(target) as new:
        (tmp_path / new / "new.txt").write_text("new")
    assert sorted(os.listdir(target)) == ["new.txt"]
    assert sorted(os.listdir(tmp_path)) == ["results"]
    assert oct(target.stat().st_mode & 0o777) != oct(0o700)  # a normal folder, not mkdtemp's


def test_writing_dir_keeps_the_old_folder_when_asked(tmp_path):
    target, old = tmp_path / "out", tmp_path / "out.old"
    target.mkdir()
    (target / "mine.txt").write_text("mine")
    with atomic.writing_dir(target, keep_old=old) as new:
        (tmp_path / new / "new.txt").write_text("new")
    assert (old / "mine.txt").read_text() == "mine"
    assert os.listdir(target) == ["new.txt"]


def test_writing_file_leaves_the_old_file_on_error(tmp_path):
    path = tmp_path / "a" / "state.bin"
    with atomic.writing_file(path) as f:
        f.write(b"first")
    with pytest.raises(OSError):
        with atomic.writing_file(path) as f:
            f.write(b"sec")
            raise OSError("disk full")
    assert path.read_bytes() == b"first"
    assert os.listdir(path.parent) == ["state.bin"]


# --- the layout --------------------------------------------------------------------------------

def test_pair_paths_follow_the_viton_layout():
    paths = cp_dataset.pair_paths("data/train", "000001_0.jpg", "000002_1.jpg")
    assert paths == {"cloth": "data/train/cloth/000002_1.jpg",
                     "cloth_mask": "data/train/cloth-mask/000002_1.jpg",
                     "image": "data/train/image/000001_0.jpg",
                     "parse": "data/train/image-parse/000001_0.png",
                     "pose": "data/train/pose/000001_0_keypoints.json"}
    tom = cp_dataset.pair_paths("d", "p_0.jpg", "c_1.jpg", stage="TOM")
    assert (tom["cloth"], tom["cloth_mask"]) == ("d/warp-cloth/c_1.jpg", "d/warp-mask/c_1.jpg")
    assert cp_dataset.result_dir_of("result", "x/gmm_final.pth", "test") == "result/gmm_final.pth/test"


def test_read_pairs_names_every_bad_line(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("a_0.jpg a_1.jpg\n\nb_0.jpg\nc_0.jpg c_1.jpg extra\nd_0.jpg d_1.jpg\n")
    with pytest.raises(cp_dataset.DatasetError) as err:
        cp_dataset.read_pairs(path)
    assert f"{path} line 3" in str(err.value) and f"{path} line 4" in str(err.value)
    problems = []
    assert cp_dataset.read_pairs(path, problems) == [("a_0.jpg", "a_1.jpg"), ("d_0.jpg", "d_1.jpg")]
    assert len(problems) == 2
    cp_dataset.write_pairs(path, [("x_0.jpg", "y_1.jpg")])
    assert cp_dataset.read_pairs(path) == [("x_0.jpg", "y_1.jpg")]
    path.write_text("\n")
    with pytest.raises(cp_dataset.DatasetError, match="no pairs"):
        cp_dataset.read_pairs(path)


def test_same_id_pairs_and_ids(sample_root):
    pairs = cp_dataset.same_id_pairs(sample_root / "train")
    assert pairs == cp_dataset.read_pairs(sample_root / "train_pairs.txt")
    assert cp_dataset.image_id("000003_0.jpg") == "000003"
    assert cp_dataset.is_same_id("000003_0.jpg", "000003_1.jpg")
    assert not cp_dataset.is_same_id("000003_0.jpg", "000004_1.jpg")


# --- plain arguments and the original's options objects ------------------------------------------

def test_dataset_from_keywords_equals_dataset_from_options(sample_root):
    opt = Namespace(dataroot=str(sample_root), datamode="test", stage="GMM", data_list="test_pairs.txt",
                    fine_height=256, fine_width=192, radius=5)
    from_opt = cp_dataset.CPDataset(opt)[1]
    from_keywords = cp_dataset.CPDataset(dataroot=str(sample_root), datamode="test",
                                         data_list="test_pairs.txt")[1]
    assert from_opt.keys() == from_keywords.keys()
    for key, value in from_opt.items():
        assert torch.equal(value, from_keywords[key]) if torch.is_tensor(value) else value == from_keywords[key]


def test_build_model_from_keywords_or_options():
    opt = Namespace(fine_height=256, fine_width=192, grid_size=3)
    shapes = {k: v.shape for k, v in networks.build_model("GMM", opt).state_dict().items()}
    assert shapes == {k: v.shape for k, v in networks.build_model("GMM", grid_size=3).state_dict().items()}
    assert shapes["regression.linear.weight"] == (18, 768)
    assert networks.build_model("GMM").state_dict()["regression.linear.weight"].shape == (50, 768)


# --- options -----------------------------------------------------------------------------------

def test_one_precision_spelling_with_the_older_alias():
    assert options.train_options([]).precision == "fp32"
    assert options.train_options(["--amp", "none"]).precision == "fp32"
    assert options.train_options(["--amp", "bf16"]).precision == "bf16"
    assert options.train_options(["--precision", "auto"]).precision == "auto"
    assert options.test_options(["--checkpoint", "c", "--precision", "auto"]).precision == "auto"


def test_flag_spellings_and_switches():
    assert options.train_options(["--batch-size", "3"]).batch_size == 3
    assert options.train_options(["--batch_size", "5"]).batch_size == 5
    assert options.train_options([]).channels_last == 0
    assert options.test_options(["--checkpoint", "c"]).channels_last == 1
    assert options.test_options(["--checkpoint", "c", "--channels_last", "off"]).channels_last == 0
    with pytest.raises(SystemExit):
        options.train_options(["--channels_last", "maybe"])


def test_resolve_precision():
    cpu = torch.device("cpu")
    assert pipeline.resolve_precision("auto", cpu) == ("bf16" if pipeline.native_bf16(cpu) else "fp32")
    assert pipeline.resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        pipeline.resolve_precision("fp16", cpu)
    assert not pipeline.grad_scaler(cpu, "bf16").is_enabled()
