"""The fast paths: channels_last + inference_mode equal to the plain models, channels_last
training steps equal to plain ones, the bf16 path close, --precision fp16 refused on the CPU,
threaded image writing equal to plain writes."""
import copy
import functools

import pytest
import torch
import torch.nn as nn

import networks
import options
import pipeline
import test as test_py
from visualization import ImageWriter

CPU = torch.device("cpu")
OPT = options.test_options(["--checkpoint", ""])


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {"GMM": networks.build_model("GMM", OPT).eval(), "TOM": networks.build_model("TOM", OPT).eval()}


def smooth(batch, channels):
    """Random images as smooth as photos: a sub-pixel change of the grid (the fast path's ~1e-6)
    moves a warp of pixel noise by ~1e-4, of a smooth image by far less."""
    coarse = torch.rand(batch, channels, 16, 12) * 2 - 1
    return nn.functional.interpolate(coarse, size=(256, 192), mode="bicubic", align_corners=False).clamp(-1, 1)


def gmm_inputs(batch=2):
    torch.manual_seed(1)
    return {"agnostic": torch.randn(batch, 22, 256, 192), "cloth": smooth(batch, 3),
            "cloth_mask": (smooth(batch, 1) + 1) / 2, "grid_image": smooth(batch, 3)}


def test_for_inference_keeps_state_dict_and_switches_instance_norm(models):
    fast = networks.for_inference(copy.deepcopy(models["TOM"]))
    assert fast.state_dict().keys() == models["TOM"].state_dict().keys()
    norms = [m for m in fast.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert norms and all(type(m) is networks.ChannelsLastInstanceNorm2d for m in norms)
    conv = next(m for m in fast.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_instance_norm_equal_to_torch():
    x = torch.randn(2, 5, 12, 10) * 3 + 1
    norm = networks.ChannelsLastInstanceNorm2d(5)
    expected = nn.InstanceNorm2d(5)(x)
    assert torch.allclose(norm(x), expected, atol=1e-5)
    assert torch.allclose(norm(x.contiguous(memory_format=torch.channels_last)), expected, atol=1e-5)


def test_fp32_fast_path_equals_plain_gmm(models):
    inputs = gmm_inputs()
    with torch.no_grad():
        plain = pipeline.FORWARD["GMM"](models["GMM"], inputs)
        grid, theta = models["GMM"](inputs["agnostic"], inputs["cloth"])
    fast_model = networks.for_inference(copy.deepcopy(models["GMM"]))
    with torch.inference_mode():
        fast = pipeline.FORWARD["GMM"](fast_model, inputs)
        fast_grid, fast_theta = fast_model(inputs["agnostic"], inputs["cloth"])
    assert (fast_grid - grid).abs().max() < 1e-4 and (fast_theta - theta).abs().max() < 1e-4
    assert (fast["warped_cloth"] - plain["warped_cloth"]).abs().max() < 1e-4
    # 'zeros' padding puts a one-pixel step at the image border, where a grid difference of
    # ~1e-6 (in [-1, 1] units: ~1e-4 px) moves the sampled value by up to ~100x as much.
    for key in ("warped_mask", "warped_grid"):
        assert (fast[key] - plain[key]).abs().max() < 1e-3, key


def test_fp32_fast_path_equals_plain_tom(models):
    torch.manual_seed(2)
    inputs = {"agnostic": torch.randn(1, 22, 256, 192), "cloth": torch.rand(1, 3, 256, 192) * 2 - 1}
    with torch.no_grad():
        raw = models["TOM"](torch.cat([inputs["agnostic"], inputs["cloth"]], 1))
        plain = pipeline.FORWARD["TOM"](models["TOM"], inputs)
    fast_model = networks.for_inference(copy.deepcopy(models["TOM"]))
    with torch.inference_mode():
        fast_raw = fast_model(torch.cat([inputs["agnostic"], inputs["cloth"]], 1))
        fast = pipeline.FORWARD["TOM"](fast_model, inputs)
    assert (fast_raw - raw).abs().max() < 1e-4
    for key in plain:
        assert (fast[key] - plain[key]).abs().max() < 1e-4, key


@pytest.mark.parametrize("stage", ["GMM", "TOM"])
def test_channels_last_training_step_equals_plain(models, stage, tmp_path):
    """train.py's --channels_last 1: the same loss and gradients as the plain layout. In float64,
    so that only a real difference shows (in float32 the training-mode BatchNorm of a batch of
    two amplifies rounding to ~1% in some gradients); the checkpoint saved is contiguous."""
    if stage == "GMM":
        inputs = {**gmm_inputs(), "parse_cloth": smooth(2, 3)}
    else:
        inputs = {"agnostic": torch.randn(1, 22, 256, 192), "cloth": smooth(1, 3),
                  "cloth_mask": (smooth(1, 1) + 1) / 2, "image": smooth(1, 3)}
    inputs = {key: value.double() for key, value in inputs.items()}
    assert networks.channels_last_inputs(inputs)["cloth"].is_contiguous(memory_format=torch.channels_last)
    step = functools.partial(pipeline.gmm_loss, grid_weight=40.0) if stage == "GMM" else pipeline.tom_loss
    results = []
    for fast in (False, True):
        model = copy.deepcopy(models[stage]).double().train()
        if fast:
            networks.use_channels_last(model)
        loss = step(model, networks.channels_last_inputs(inputs) if fast else inputs)[0]
        loss.backward()
        results.append((loss.item(), {k: p.grad for k, p in model.named_parameters()}))
    (plain_loss, plain_grads), (fast_loss, fast_grads) = results
    assert abs(fast_loss - plain_loss) < 1e-12
    scale = max(grad.abs().max() for grad in plain_grads.values())
    for key, grad in plain_grads.items():
        assert (fast_grads[key] - grad).abs().max() < 1e-9 * scale, key
    networks.save_checkpoint(model, tmp_path / "fast.pth")
    saved = torch.load(tmp_path / "fast.pth")
    assert all(value.is_contiguous() for value in saved.values())
    assert all(torch.equal(saved[key], value) for key, value in model.state_dict().items())


def test_bf16_path_close_and_finite(models):
    """bf16 autocast (emulated, slow on CPUs without native bf16): the real GMM at batch 1, a
    small U-Net for TOM. Loose tolerances: bf16 keeps ~3 significant digits."""
    inputs = gmm_inputs(batch=1)
    torch.manual_seed(3)
    tom = networks.UnetGenerator(25, 4, 6, ngf=8, norm_layer=nn.InstanceNorm2d).eval()
    x = torch.randn(1, 25, 64, 64)
    with torch.no_grad():
        grid, _ = models["GMM"](inputs["agnostic"], inputs["cloth"])
        raw = tom(x)
    gmm_fast = networks.for_inference(copy.deepcopy(models["GMM"]))
    tom_fast = networks.for_inference(copy.deepcopy(tom))
    with torch.inference_mode(), pipeline.autocast(CPU, "bf16"):
        grid_bf16, _ = gmm_fast(inputs["agnostic"], inputs["cloth"])
        raw_bf16 = tom_fast(x).float()
    assert grid_bf16.dtype == torch.float32  # the TPS grid stays float32
    assert torch.isfinite(grid_bf16).all() and torch.isfinite(raw_bf16).all()
    assert (grid_bf16 - grid).abs().max() < 0.05
    assert (raw_bf16 - raw).abs().max() < 0.1 * raw.abs().max()


def test_autocast_choices():
    assert pipeline.autocast(CPU, "fp32").__class__.__name__ == "nullcontext"
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        pipeline.autocast(CPU, "fp16")
    with pytest.raises(ValueError, match="unknown precision"):
        pipeline.autocast(CPU, "int8")


def test_test_py_fp16_on_cpu_is_a_clear_error(tmp_path):
    checkpoint = tmp_path / "gmm_final.pth"
    checkpoint.write_bytes(b"")
    with pytest.raises(SystemExit) as exit_info:
        test_py.main(["--checkpoint", str(checkpoint), "--device", "cpu", "--precision", "fp16"])
    message = str(exit_info.value.code)
    assert message.startswith("error:") and "fp16" in message and "CUDA" in message and "bf16 or fp32" in message


def test_threaded_writer_files_equal_plain_writes(sample_root, tmp_path):
    torch.manual_seed(0)
    checkpoint = tmp_path / "gmm_final.pth"
    networks.save_checkpoint(networks.build_model("GMM", OPT), checkpoint)
    outputs = {}
    for threads in (0, 2):
        result = tmp_path / f"result{threads}"
        assert test_py.main(["--stage", "GMM", "--checkpoint", str(checkpoint), "--dataroot", str(sample_root),
                             "--datamode", "test", "--data_list", "test_pairs.txt", "--device", "cpu",
                             "--workers", "0", "--batch-size", "1", "--save_threads", str(threads),
                             "--result_dir", str(result), "--tensorboard_dir", str(tmp_path / "tb")]) == 0
        folder = result / "gmm_final.pth" / "test"
        outputs[threads] = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert len(outputs[0]) == 4  # 2 pairs x (warp-cloth, warp-mask)
    assert outputs[2] == outputs[0]


def test_image_writer_raises_task_errors_and_waits(tmp_path):
    done = []
    with ImageWriter(2) as writer:
        for i in range(6):
            writer.submit(done.append, i)
    assert sorted(done) == list(range(6))

    def fail():
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        with ImageWriter(1) as writer:
            writer.submit(fail)
