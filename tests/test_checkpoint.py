"""Checkpoint I/O: formats the original produced, clear errors, atomic saving."""
import re
from collections import OrderedDict
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from networks import (CheckpointError, atomic_save, build_model, checkpoint_stage,
                      load_checkpoint, save_checkpoint)

OPT = SimpleNamespace(fine_height=256, fine_width=192, grid_size=5)


@pytest.fixture(scope="module")
def gmm_state():
    """A GMM state_dict with non-default BatchNorm statistics."""
    torch.manual_seed(0)
    model = build_model("GMM", OPT).train()
    with torch.no_grad():
        model(torch.randn(2, 22, 256, 192), torch.randn(2, 3, 256, 192))
    return model.state_dict()


@pytest.fixture(scope="module")
def tom_state():
    torch.manual_seed(1)
    return build_model("TOM", OPT).state_dict()


@pytest.fixture(scope="module")
def gmm():
    return build_model("GMM", OPT)


def assert_loaded(model, state):
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_round_trip_gives_equal_outputs(tmp_path, gmm_state):
    torch.manual_seed(2)
    saved = build_model("GMM", OPT)
    saved.load_state_dict(gmm_state)
    path = tmp_path / "sub" / "dir" / "gmm_final.pth"  # directories are created
    save_checkpoint(saved, path)
    loaded = build_model("GMM", OPT)
    load_checkpoint(loaded, path, stage="GMM")
    inputs = torch.randn(1, 22, 256, 192), torch.randn(1, 3, 256, 192)
    with torch.no_grad():
        for a, b in zip(saved.eval()(*inputs), loaded.eval()(*inputs)):
            assert torch.equal(a, b)


def test_tom_round_trip(tmp_path, tom_state):
    path = tmp_path / "tom_final.pth"
    save_checkpoint(tom_state, path)
    model = build_model("TOM", OPT)
    load_checkpoint(model, str(path))
    assert_loaded(model, tom_state)


def test_saved_file_is_a_plain_cpu_state_dict(tmp_path, tom_state):
    path = tmp_path / "tom.pth"
    wrapped = nn.DataParallel(build_model("TOM", OPT))
    save_checkpoint(wrapped, path)
    state = torch.load(path, weights_only=True)
    assert list(state) == list(tom_state)
    assert all(v.device.type == "cpu" for v in state.values())
    save_checkpoint({"_orig_mod." + k: v for k, v in tom_state.items()}, path)
    assert list(torch.load(path, weights_only=True)) == list(tom_state)


def test_legacy_format_loads(tmp_path, gmm, gmm_state):
    path = tmp_path / "legacy.pth"
    torch.save(gmm_state, path, _use_new_zipfile_serialization=False)
    load_checkpoint(gmm, path)
    assert_loaded(gmm, gmm_state)


def test_missing_num_batches_tracked_loads(tmp_path, gmm, gmm_state):
    """PyTorch 0.4.0 wrote no num_batches_tracked; `_metadata` may even claim BN version 2."""
    state = OrderedDict((k, v) for k, v in gmm_state.items() if "num_batches_tracked" not in k)
    state._metadata = gmm_state._metadata  # version 2: torch alone would refuse this
    assert len(state) == 104 - 14
    path = tmp_path / "old.pth"
    torch.save(state, path, _use_new_zipfile_serialization=False)
    load_checkpoint(gmm, path, stage="GMM")
    counters = {k: v for k, v in gmm.state_dict().items() if k.endswith("num_batches_tracked")}
    assert len(counters) == 14 and all(v.item() == 0 for v in counters.values())
    assert torch.equal(gmm.state_dict()["regression.conv.1.running_var"],
                       gmm_state["regression.conv.1.running_var"])


def test_module_prefix_loads(tmp_path, gmm, gmm_state):
    path = tmp_path / "dp.pth"
    torch.save({"module." + k: v for k, v in gmm_state.items()}, path)
    load_checkpoint(nn.DataParallel(gmm), path)
    assert_loaded(gmm, gmm_state)


def test_wrong_stage_message(tmp_path, gmm, tom_state):
    path = tmp_path / "tom_final.pth"
    torch.save(tom_state, path)
    expected = f"{path} looks like a TOM checkpoint; --stage is GMM"
    with pytest.raises(CheckpointError, match=re.escape(expected)):
        load_checkpoint(gmm, path)


def test_missing_file_message(tmp_path, gmm):
    path = tmp_path / "nope.pth"
    with pytest.raises(CheckpointError, match=re.escape(f"no checkpoint at {path}")):
        load_checkpoint(gmm, path)


@pytest.mark.parametrize("content, expected", [(b"this is not a checkpoint", "is not a PyTorch file"),
                                               (b"", "is empty")])
def test_garbage_file_message(tmp_path, gmm, content, expected):
    path = tmp_path / "garbage.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=re.escape(f"{path} {expected}")):
        load_checkpoint(gmm, path)


@pytest.mark.parametrize("obj", [[1, 2, 3], {"step": 5}, {}])
def test_not_a_state_dict_message(tmp_path, gmm, obj):
    path = tmp_path / "other.pth"
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match=re.escape(f"{path} is not a model checkpoint")):
        load_checkpoint(gmm, path)


def test_shape_mismatch_message(tmp_path, gmm, gmm_state):
    state = dict(gmm_state)
    state["extractionB.model.0.weight"] = torch.zeros(64, 1, 4, 4)  # e.g. a CP-VTON+ GMM
    del state["regression.linear.bias"]
    state["extra.weight"] = torch.zeros(3)
    path = tmp_path / "mismatch.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(gmm, path)
    message = str(err.value)
    assert str(path) in message
    assert "extractionB.model.0.weight: expected [64, 3, 4, 4], found [64, 1, 4, 4]" in message
    assert "missing regression.linear.bias (expected [50])" in message
    assert "unexpected extra.weight (found [3])" in message


def test_checkpoint_stage(gmm_state, tom_state):
    assert checkpoint_stage(gmm_state) == "GMM"
    assert checkpoint_stage(tom_state) == "TOM"
    assert checkpoint_stage({"module." + k: v for k, v in tom_state.items()}) == "TOM"
    assert checkpoint_stage({}) is None and checkpoint_stage({"fc.weight": torch.zeros(1)}) is None


def test_atomic_save_keeps_old_file_on_failure(tmp_path, monkeypatch, tom_state):
    path = tmp_path / "step_000100.pth"
    save_checkpoint(tom_state, path)
    before = path.read_bytes()
    real_save = torch.save

    def failing_save(obj, f, *args, **kwargs):
        f.write(b"partial data")
        raise OSError("disk full (test)")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"model.model.0.bias": torch.ones(64)}, path)
    monkeypatch.setattr(torch, "save", real_save)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    atomic_save({"step": 7}, path)
    assert torch.load(path, weights_only=True) == {"step": 7}
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
