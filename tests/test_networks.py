"""Networks: state_dict layout of the original, TPS maths, correlation order, forward/backward,
warp semantics, TOM outputs, VGG perceptual loss (never downloads)."""
import urllib.error
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

import networks
from networks import (GMM, FeatureCorrelation, FeatureExtraction, FeatureL2Norm,
                      FeatureRegression, TpsGridGen, UnetGenerator, VGGLoss,
                      VGGWeightsUnavailable, Vgg19, build_model, tom_outputs, warp)
from pipeline import pick_device

# A copy of shared/reference/cpvton_state_dict.txt (listed from the original code), kept in
# the repository so the test does not depend on shared/.
REFERENCE = Path(__file__).resolve().parent / "data" / "cpvton_state_dict.txt"
OPT = SimpleNamespace(fine_height=256, fine_width=192, grid_size=5)
H, W = 256, 192


def reference_layout(stage):
    """[(key, shape)] of one model section of the reference list."""
    entries, section = [], None
    for line in REFERENCE.read_text().splitlines():
        if line.startswith("# model:"):
            section = line.split()[2]
        elif line and not line.startswith("#") and section == stage:
            key, shape, _kind = line.split("\t")
            entries.append((key, [int(s) for s in shape.strip("[]").split(",") if s.strip()]))
    return entries


@pytest.fixture(scope="module")
def gmm():
    torch.manual_seed(0)
    return GMM(OPT)


def identity_grid(h=H, w=W):
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    return torch.stack([xs, ys], -1)


# --- state_dict layout ------------------------------------------------------------------------

@pytest.mark.parametrize("stage, n_params", [("GMM", 19_057_650), ("TOM", 21_349_252)])
def test_state_dict_matches_original(stage, n_params):
    model = build_model(stage, OPT)
    layout = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert layout == reference_layout(stage)
    assert len(layout) == {"GMM": 104, "TOM": 24}[stage]
    assert sum(p.numel() for p in model.parameters()) == n_params


def test_tps_constants_are_non_persistent_buffers_that_follow_to(gmm):
    assert not any(k.startswith("gridGen") for k in gmm.state_dict())
    tps = TpsGridGen(16, 12, grid_size=5).to(torch.float64)
    assert {name for name, _ in tps.named_buffers()} == {"P", "Li_rhs", "features"}
    assert all(b.dtype == torch.float64 for b in tps.buffers())
    assert tps(torch.zeros(1, 50, dtype=torch.float64)).dtype == torch.float64


def test_build_model_rejects_unknown_stage():
    with pytest.raises(ValueError, match="unknown stage"):
        build_model("XYZ", OPT)


# --- TPS --------------------------------------------------------------------------------------

def slow_tps(theta, out_h, out_w, grid_size):
    """The original TPS formula, written out directly in float64: solve L [W; A] = [Q; 0] per
    axis, then x' = A0 + A1 x + A2 y + sum_k W_k U(|p - P_k|) for every output pixel."""
    theta = theta.double()
    a = torch.linspace(-1, 1, grid_size, dtype=torch.float64)
    n = grid_size * grid_size
    px = torch.tensor([a[k // grid_size] for k in range(n)], dtype=torch.float64)
    py = torch.tensor([a[k % grid_size] for k in range(n)], dtype=torch.float64)

    def U(d2):
        d2 = torch.where(d2 == 0, torch.ones_like(d2), d2)
        return d2 * torch.log(d2)

    L = torch.zeros(n + 3, n + 3, dtype=torch.float64)
    for i in range(n):
        for j in range(n):
            L[i, j] = U((px[i] - px[j]) ** 2 + (py[i] - py[j]) ** 2)
        L[i, n:] = torch.stack([torch.tensor(1.0, dtype=torch.float64), px[i], py[i]])
        L[n:, i] = L[i, n:]
    grid = identity_grid(out_h, out_w).double()
    x, y = grid[..., 0], grid[..., 1]
    dist = U((x[..., None] - px) ** 2 + (y[..., None] - py) ** 2)  # [H, W, N]
    out = []
    for b in range(theta.shape[0]):
        axes = []
        for q in (px + theta[b, :n], py + theta[b, n:]):
            coef = torch.linalg.solve(L, torch.cat([q, torch.zeros(3, dtype=torch.float64)]))
            w, aff = coef[:n], coef[n:]
            axes.append(aff[0] + aff[1] * x + aff[2] * y + (dist * w).sum(-1))
        out.append(torch.stack(axes, -1))
    return torch.stack(out)


def test_tps_zero_theta_is_identity():
    grid = TpsGridGen(H, W, grid_size=5)(torch.zeros(2, 50))
    assert grid.shape == (2, H, W, 2)
    assert torch.allclose(grid, identity_grid().expand(2, -1, -1, -1), atol=1e-5)


def test_tps_reproduces_affine_maps():
    tps = TpsGridGen(H, W, grid_size=5)
    shift = torch.cat([torch.full((1, 25), 0.2), torch.full((1, 25), -0.1)], 1)
    assert torch.allclose(tps(shift), identity_grid() + torch.tensor([0.2, -0.1]), atol=1e-5)
    scale = 0.3 * torch.cat([tps.P[:, 0], tps.P[:, 1]])[None]  # offsets = 0.3 * P: zoom 1.3
    assert torch.allclose(tps(scale), 1.3 * identity_grid(), atol=1e-5)


def test_grid_spacing_irregularity_zero_for_affine_grids_positive_for_folds():
    rotation = torch.tensor([[0.9, -0.3], [0.3, 0.9]])
    affine = (identity_grid() @ rotation.T + torch.tensor([0.1, -0.2]))[None]
    assert networks.grid_spacing_irregularity(affine) < 1e-5
    folded = identity_grid()[None].clone()
    folded[:, :, 90:100, 0] = folded[:, :, 90:100, 0].flip(-1)  # a band of columns mirrored
    # at each end of the band two inner pixels see a 10-px gap on one side, a 1-px step on the other
    px = 2 / (W - 1)
    expected = (H - 2) * 4 * 9 * px / (H * W)
    assert networks.grid_spacing_irregularity(folded).item() == pytest.approx(expected, rel=1e-3)
    folded.requires_grad_(True)
    networks.grid_spacing_irregularity(folded).backward()
    assert torch.isfinite(folded.grad).all() and folded.grad.abs().sum() > 0


def test_tps_control_point_order():
    tps = TpsGridGen(H, W, grid_size=5)
    a = [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert tps.P[:, 0].tolist() == [v for v in a for _ in range(5)]  # X varies slowest
    assert tps.P[:, 1].tolist() == a * 5


def test_tps_matches_slow_reference_for_random_theta():
    torch.manual_seed(1)
    theta = 0.3 * torch.randn(2, 50)
    grid = TpsGridGen(H, W, grid_size=5)(theta)
    assert torch.allclose(grid.double(), slow_tps(theta, H, W, 5), atol=1e-4)
    theta3 = 0.3 * torch.randn(1, 18)
    assert torch.allclose(TpsGridGen(20, 16, grid_size=3)(theta3).double(),
                          slow_tps(theta3, 20, 16, 3), atol=1e-4)


# --- GMM pieces -------------------------------------------------------------------------------

def test_feature_correlation_order():
    torch.manual_seed(2)
    b, c, h, w = 2, 5, 4, 3
    A, B = torch.randn(b, c, h, w), torch.randn(b, c, h, w)
    out = FeatureCorrelation()(A, B)
    assert out.shape == (b, h * w, h, w)
    # channel k = x_A * h + y_A (A flattened x-major); spatial grid = B's (y_B, x_B)
    expected = torch.einsum("bcij,bckl->bjikl", A, B).reshape(b, w * h, h, w)
    assert torch.allclose(out, expected, atol=1e-6)
    xa, ya, yb, xb = 2, 1, 3, 0
    assert torch.isclose(out[1, xa * h + ya, yb, xb], (A[1, :, ya, xa] * B[1, :, yb, xb]).sum())


def test_feature_l2norm():
    f = torch.randn(2, 8, 3, 3)
    f[0, :, 0, 0] = 0
    out = FeatureL2Norm()(f)
    assert torch.allclose(out, f / torch.sqrt((f**2).sum(1, keepdim=True) + 1e-6))
    assert out[0, :, 0, 0].abs().sum() == 0 and torch.isfinite(out).all()


def test_feature_extraction_layout_and_init():
    torch.manual_seed(3)
    model = FeatureExtraction(3).model
    kinds = [type(m).__name__ for m in model]
    assert kinds[:3] == ["Conv2d", "ReLU", "BatchNorm2d"]  # ReLU before BatchNorm
    assert kinds[-2:] == ["Conv2d", "ReLU"]
    assert abs(model[9].weight.std().item() - 0.02) < 0.002
    assert abs(model[11].weight.mean().item() - 1.0) < 0.01 and model[11].bias.abs().sum() == 0


def test_feature_regression_rejects_other_sizes():
    message = (r"built for a \[192, 16, 12\] correlation map, the GMM's at 256x192 images .*"
               r"got \[48, 8, 6\], as from 128x96 images")
    with pytest.raises(ValueError, match=message):
        FeatureRegression(192, 50)(torch.randn(1, 48, 8, 6))


def test_gmm_forward_backward(gmm):
    gmm.train()
    agnostic, cloth = torch.randn(2, 22, H, W), torch.randn(2, 3, H, W)
    grid, theta = gmm(agnostic, cloth)
    assert grid.shape == (2, H, W, 2) and theta.shape == (2, 50)
    assert theta.abs().max() < 1
    warp(cloth, grid).abs().mean().backward()
    assert gmm.extractionA.model[0].weight.grad is not None
    assert gmm.regression.linear.weight.grad.abs().sum() > 0


def test_gmm_channels_last_input(gmm):
    gmm.eval()
    torch.manual_seed(4)
    agnostic, cloth = torch.randn(1, 22, H, W), torch.randn(1, 3, H, W)
    with torch.no_grad():
        grid, theta = gmm(agnostic, cloth)
        grid_cl, theta_cl = gmm(agnostic.to(memory_format=torch.channels_last),
                                cloth.to(memory_format=torch.channels_last))
    assert torch.allclose(theta, theta_cl, atol=1e-5) and torch.allclose(grid, grid_cl, atol=1e-5)


# --- other image sizes ------------------------------------------------------------------------

@pytest.mark.parametrize("h, w", [(256, 192), (512, 384), (1024, 768)])
def test_regression_is_sized_by_the_image_size(h, w):
    gmm = GMM(fine_height=h, fine_width=w)
    assert gmm.regression.conv[0].in_channels == (h // 16) * (w // 16)  # correlation channels
    assert gmm.regression.linear.in_features == 64 * (h // 64) * (w // 64)
    # Only those two layers differ from the original's 256x192 layout.
    layout = {k: list(v.shape) for k, v in gmm.state_dict().items()}
    reference = dict(reference_layout("GMM"))
    assert list(layout) == list(reference)
    differ = {k for k in layout if layout[k] != reference[k]}
    assert differ == (set() if (h, w) == (H, W)
                      else {"regression.conv.0.weight", "regression.linear.weight"})


def test_gmm_and_tom_forward_at_512x384():
    torch.manual_seed(12)
    opt = SimpleNamespace(fine_height=512, fine_width=384, grid_size=5)
    gmm, tom = build_model("GMM", opt), build_model("TOM", opt)
    agnostic, cloth = torch.randn(2, 22, 512, 384), torch.randn(2, 3, 512, 384)
    grid, theta = gmm(agnostic, cloth)  # train mode: batch statistics
    assert grid.shape == (2, 512, 384, 2) and theta.shape == (2, 50) and theta.abs().max() < 1
    with torch.no_grad():
        assert tom(torch.randn(1, 25, 512, 384)).shape == (1, 4, 512, 384)


def test_gmm_forward_at_1024x768():
    gmm = build_model("GMM", fine_height=1024, fine_width=768).eval()
    with torch.no_grad():
        grid, theta = gmm(torch.randn(1, 22, 1024, 768), torch.randn(1, 3, 1024, 768))
    assert grid.shape == (1, 1024, 768, 2) and theta.shape == (1, 50)


@pytest.mark.parametrize("stage, h, w", [("GMM", 250, 192), ("GMM", 256, 200), ("TOM", 320, 100),
                                         ("GMM", 0, 192)])
def test_sizes_must_be_multiples_of_64(stage, h, w):
    message = f"image size {h}x{w} .*multiples of 64"
    with pytest.raises(ValueError, match=message):
        build_model(stage, SimpleNamespace(fine_height=h, fine_width=w, grid_size=5))
    if stage == "GMM":
        with pytest.raises(ValueError, match=message):
            GMM(fine_height=h, fine_width=w)


def test_checkpoint_of_another_size_is_refused_with_the_likely_cause(tmp_path):
    path = tmp_path / "gmm_512x384.pth"
    networks.save_checkpoint(GMM(fine_height=512, fine_width=384), path)
    with pytest.raises(networks.CheckpointError) as err:
        networks.load_checkpoint(GMM(OPT), path)
    message = str(err.value)
    assert "regression.conv.0.weight: expected [512, 192, 4, 4], found [512, 768, 4, 4]" in message
    assert "regression.linear.weight: expected [50, 768], found [50, 3072]" in message
    assert "reads 768 correlation channels" in message and "192 for 256x192 images" in message
    assert "trained at another --fine_height/--fine_width" in message
    networks.load_checkpoint(GMM(fine_height=512, fine_width=384), path)  # strict, fits


# --- warp and TOM -----------------------------------------------------------------------------

def test_warp_align_corners_and_padding():
    torch.manual_seed(5)
    image = torch.randn(2, 3, 16, 12)
    grid = identity_grid(16, 12).expand(2, -1, -1, -1)
    assert torch.allclose(warp(image, grid), image, atol=1e-5)  # float rounding of linspace
    assert not torch.allclose(  # the modern default (align_corners=False) would blur/shrink
        nn.functional.grid_sample(image, grid, align_corners=False), image, atol=1e-2)
    outside = grid.clone()
    outside[..., 0] = 3.0  # far right of the image
    assert warp(image, outside, padding_mode="zeros").abs().max() == 0
    border = warp(image, outside, padding_mode="border")
    assert torch.allclose(border, image[..., -1:].expand_as(image), atol=1e-5)


def test_tom_forward_backward_full_size():
    torch.manual_seed(6)
    tom = build_model("TOM", OPT)
    raw = tom(torch.randn(2, 25, H, W))
    assert raw.shape == (2, 4, H, W)
    raw.mean().backward()
    assert tom.model.model[0].weight.grad.abs().sum() > 0


def test_tom_train_and_eval_agree_and_skip_quirk():
    torch.manual_seed(7)
    tom = UnetGenerator(25, 4, 6, ngf=8, norm_layer=nn.InstanceNorm2d)
    x = torch.randn(1, 25, 64, 64)
    with torch.no_grad():
        assert torch.equal(tom.train()(x), tom.eval()(x))
        # Original quirk: the in-place LeakyReLU means a block's skip half is LeakyReLU(input).
        block = tom.model.model[1]
        h = torch.randn(1, 8, 32, 32)
        out = block(h.clone())
        assert torch.allclose(out[:, :8], nn.functional.leaky_relu(h, 0.2))


def test_tom_outputs_formula():
    torch.manual_seed(8)
    raw, cloth = torch.randn(2, 4, 8, 6), torch.rand(2, 3, 8, 6) * 2 - 1
    rendered, mask, tryon = tom_outputs(raw, cloth)
    assert torch.allclose(rendered, torch.tanh(raw[:, :3]))
    assert torch.allclose(mask, torch.sigmoid(raw[:, 3:])) and mask.shape == (2, 1, 8, 6)
    assert torch.allclose(tryon, cloth * mask + rendered * (1 - mask))


# --- VGG perceptual loss ----------------------------------------------------------------------

def vgg_features_state(seed=0):
    """A random torchvision-style vgg19 `features` state_dict ('0.weight', '2.weight', ...)."""
    torch.manual_seed(seed)
    vgg = Vgg19(pretrained=False)
    return {k: v for s in (vgg.slice1, vgg.slice2, vgg.slice3, vgg.slice4, vgg.slice5)
            for k, v in s.state_dict().items()}


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No torchvision cache and a network that fails, so nothing can be downloaded."""
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))

    def no_network(url, dst, *args, **kwargs):
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return hub


def test_vgg_loss_random_weights():
    torch.manual_seed(9)
    loss = VGGLoss(pretrained=False)
    assert not any(p.requires_grad for p in loss.parameters())
    assert list(loss.vgg.state_dict())[:4] == ["slice1.0.weight", "slice1.0.bias",
                                               "slice2.2.weight", "slice2.2.bias"]
    x = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_()
    y = torch.rand(2, 3, 32, 32) * 2 - 1
    assert loss(x, x.detach()).item() == 0
    value = loss(x, y)
    assert value.item() > 0
    value.backward()
    assert x.grad.abs().sum() > 0


def test_vgg_loss_local_file_full_and_features_only(tmp_path, offline):
    features = vgg_features_state(seed=10)
    full = {f"features.{k}": v for k, v in features.items()}
    full["classifier.0.weight"] = torch.zeros(2, 2)  # the classifier is ignored
    for name, state in (("full.pth", full), ("features.pth", features)):
        torch.save(state, tmp_path / name)
        loss = VGGLoss(weights_path=str(tmp_path / name))
        assert torch.equal(loss.vgg.state_dict()["slice5.28.weight"], features["28.weight"])


def test_vgg_loss_local_file_errors_name_the_file(tmp_path):
    with pytest.raises(VGGWeightsUnavailable, match="no file at .*missing.pth"):
        VGGLoss(weights_path=str(tmp_path / "missing.pth"))
    bad = vgg_features_state()
    bad["0.weight"] = torch.zeros(64, 1, 3, 3)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(VGGWeightsUnavailable, match=r"bad.pth.*0.weight: expected \[64, 3, 3, 3\]"):
        VGGLoss(weights_path=str(tmp_path / "bad.pth"))


def test_vgg_loss_uses_torchvision_cache(offline):
    features = vgg_features_state(seed=11)
    (offline / "checkpoints").mkdir(parents=True)
    torch.save({f"features.{k}": v for k, v in features.items()},
               offline / "checkpoints" / "vgg19-dcbb9e9d.pth")
    loss = VGGLoss()
    assert torch.equal(loss.vgg.state_dict()["slice1.0.weight"], features["0.weight"])


def test_vgg_loss_offline_error_names_remedies(offline):
    with pytest.raises(VGGWeightsUnavailable) as err:
        VGGLoss()
    message = str(err.value)
    assert "--vgg_weights PATH" in message and "--perceptual none" in message
    assert str(offline / "checkpoints" / "vgg19-dcbb9e9d.pth") in message
    assert isinstance(err.value, RuntimeError)


# --- devices ----------------------------------------------------------------------------------

def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="not a device"):
        pick_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            pick_device("cuda")


def test_no_cuda_calls_in_source():
    assert ".cuda()" not in Path(networks.__file__).read_text()
