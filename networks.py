"""CP-VTON networks: the Geometric Matching Module (GMM), the Try-On Module (TOM), the VGG19
perceptual loss, and checkpoint I/O.

Module names, layer order and Sequential indices follow the original sergeywong/cp-vton code so
that its checkpoints load unchanged (state_dict keys and shapes are identical). Differences from
the original are marked "Deviation" in comments; reproduced quirks are marked "Original quirk".
"""
import logging
import os
import pickle
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import init

import atomic

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Weight initialisation


def _init_normal(m):
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        init.normal_(m.weight, 0.0, 0.02)


def _init_xavier(m):
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        init.xavier_normal_(m.weight, gain=0.02)


def _init_kaiming(m):
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        init.kaiming_normal_(m.weight, a=0, mode="fan_in")


_INITIALISERS = {"normal": _init_normal, "xavier": _init_xavier, "kaiming": _init_kaiming}


def init_weights(net, init_type="normal"):
    """Initialise conv/linear weights of `net` ('normal' N(0, 0.02), 'xavier' gain 0.02, or
    'kaiming' fan_in) and BatchNorm2d weight N(1, 0.02), bias 0. Biases of convs keep PyTorch's
    default init, as in the original."""
    if init_type not in _INITIALISERS:
        raise NotImplementedError(f"initialization method [{init_type}] is not implemented")
    # The original printed this line (twice per GMM); a debug log keeps the console quiet.
    logger.debug("initialization method [%s]", init_type)

    def apply(m):
        _INITIALISERS[init_type](m)
        if isinstance(m, nn.BatchNorm2d):
            init.normal_(m.weight, 1.0, 0.02)
            init.constant_(m.bias, 0.0)

    net.apply(apply)


# ---------------------------------------------------------------------------------------------
# GMM: feature extraction, correlation, regression, thin-plate-spline grid


class FeatureExtraction(nn.Module):
    """Four stride-2 4x4 convs and two 3x3 convs: [b, input_nc, H, W] -> [b, 512, H/16, W/16]
    ([b, 512, 16, 12] at 256x192)."""

    def __init__(self, input_nc, ngf=64, n_layers=3, norm_layer=nn.BatchNorm2d):
        super().__init__()
        # Original quirk: ReLU comes BEFORE the norm layer, and the last conv has no norm.
        # The Sequential indices (conv 0, 3, 6, 9, 12, 15; BN 2, 5, 8, 11, 14) are checkpoint keys.
        layers = [nn.Conv2d(input_nc, ngf, 4, 2, 1), nn.ReLU(True), norm_layer(ngf)]
        for i in range(n_layers):
            in_ngf = min(2**i * ngf, 512)
            out_ngf = 2 ** (i + 1) * ngf if 2**i * ngf < 512 else 512
            layers += [nn.Conv2d(in_ngf, out_ngf, 4, 2, 1), nn.ReLU(True), norm_layer(out_ngf)]
        layers += [nn.Conv2d(512, 512, 3, 1, 1), nn.ReLU(True), norm_layer(512)]
        layers += [nn.Conv2d(512, 512, 3, 1, 1), nn.ReLU(True)]
        self.model = nn.Sequential(*layers)
        init_weights(self.model, init_type="normal")

    def forward(self, x):
        return self.model(x)


class FeatureL2Norm(nn.Module):
    """Normalise each spatial feature vector to unit L2 norm over channels."""

    def forward(self, feature):
        # The epsilon sits inside the square root, as in the original.
        return feature / torch.sqrt(feature.pow(2).sum(1, keepdim=True) + 1e-6)


class FeatureCorrelation(nn.Module):
    """Dot products between every position of A and every position of B.

    Output [b, h*w, h, w]: the spatial grid is B's; channel k = x*h + y indexes the A position
    (x-major, because the original transposes A's h and w before flattening).
    """

    def forward(self, feature_A, feature_B):
        b, c, h, w = feature_A.shape
        a = feature_A.transpose(2, 3).reshape(b, c, h * w)  # column-major: index x*h + y
        bt = feature_B.reshape(b, c, h * w).transpose(1, 2)  # row-major: index y*w + x
        corr = torch.bmm(bt, a)  # [b, B position, A position]
        return corr.reshape(b, h, w, h * w).permute(0, 3, 1, 2)


class FeatureRegression(nn.Module):
    """Correlation map [b, input_nc, h, w] -> TPS parameters theta [b, output_dim] in (-1, 1).

    Two stride-2 convs reduce the map to [b, 64, h/4, w/4], which the linear layer reads whole, so
    the layer is sized for one map size. In the GMM (h, w) = (H/16, W/16) and input_nc = h*w: at
    256x192 a [b, 192, 16, 12] map and 64*4*3 = 768 linear inputs, the original's hard-coded sizes.
    """

    def __init__(self, input_nc=192, output_dim=6, map_size=(16, 12)):
        super().__init__()
        self.map_size = tuple(map_size)
        self.conv = nn.Sequential(
            nn.Conv2d(input_nc, 512, 4, 2, 1), nn.BatchNorm2d(512), nn.ReLU(True),
            nn.Conv2d(512, 256, 4, 2, 1), nn.BatchNorm2d(256), nn.ReLU(True),
            nn.Conv2d(256, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(True),
            nn.Conv2d(128, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(True),
        )
        h, w = self.map_size
        self.linear = nn.Linear(64 * (h // 4) * (w // 4), output_dim)
        self.tanh = nn.Tanh()

    def forward(self, x):
        expected = (self.conv[0].in_channels, *self.map_size)
        if x.shape[1:] != expected:
            (h, w), (got_h, got_w) = self.map_size, x.shape[2:]
            raise ValueError(
                f"FeatureRegression was built for a {list(expected)} correlation map, the GMM's at "
                f"{16 * h}x{16 * w} images (fine_height x fine_width), got {list(x.shape[1:])}, as "
                f"from {16 * got_h}x{16 * got_w} images: build the GMM with the images' size")
        x = self.conv(x)
        # Deviation: `reshape` instead of the original `.view`, which fails on modern PyTorch
        # because the conv output inherits the correlation tensor's channels_last strides.
        return self.tanh(self.linear(x.reshape(x.shape[0], -1)))


class TpsGridGen(nn.Module):
    """Thin-plate-spline sampling grid from control-point offsets.

    theta [b, 2N] (first N: X offsets, last N: Y offsets of the grid_size x grid_size control
    points) -> grid [b, out_h, out_w, 2] of (x, y) source coordinates for grid_sample
    (align_corners=True convention). theta = 0 gives the identity grid.

    Same maths as the original, evaluated as one matmul: per output pixel a fixed feature row
    [U_1..U_N, 1, x, y] times a [N+3, 2] coefficient matrix [W; A] = Li[:, :N] @ Q. All constants
    are non-persistent buffers: they follow .to(device) and add no state_dict keys.
    """

    def __init__(self, out_h=256, out_w=192, grid_size=3):
        super().__init__()
        # Deviation: the original's use_regular_grid / reg_factor (never used) and use_cuda
        # (replaced by .to(device)) arguments are dropped.
        a = torch.linspace(-1, 1, grid_size)
        # Control point k = grid_size*i + j has X = a[i], Y = a[j] (X varies slowest).
        P = torch.stack(torch.meshgrid(a, a, indexing="ij"), -1).reshape(-1, 2)  # [N, 2]
        n = P.shape[0]
        L = torch.zeros(n + 3, n + 3)
        L[:n, :n] = self._radial(P, P)
        L[:n, n] = L[n, :n] = 1
        L[:n, n + 1:] = P
        L[n + 1:, :n] = P.t()
        Li = torch.inverse(L)  # float32, computed once, as in the original
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, out_h), torch.linspace(-1, 1, out_w),
                                indexing="ij")
        points = torch.stack([xs.reshape(-1), ys.reshape(-1)], 1)  # [H*W, 2], x fastest
        features = torch.cat([self._radial(points, P), torch.ones(len(points), 1), points], 1)
        self.out_h, self.out_w, self.N = out_h, out_w, n
        self.register_buffer("P", P, persistent=False)
        self.register_buffer("Li_rhs", Li[:, :n].contiguous(), persistent=False)  # [N+3, N]
        self.register_buffer("features", features, persistent=False)  # [H*W, N+3]

    @staticmethod
    def _radial(p, q):
        """U(|p_i - q_j|) = d2 * log(d2) with d2 == 0 replaced by 1 (so U = 0 there)."""
        d2 = (p[:, None, :] - q[None, :, :]).pow(2).sum(-1)
        d2 = torch.where(d2 == 0, torch.ones_like(d2), d2)
        return d2 * torch.log(d2)

    def forward(self, theta):
        # The spline is evaluated in the buffers' precision (float32), even under autocast:
        # half precision would visibly distort the grid.
        with torch.autocast(theta.device.type, enabled=False):
            theta = theta.to(self.features.dtype)
            Q = self.P + theta.reshape(-1, 2, self.N).transpose(1, 2)  # [b, N, 2]
            coefficients = self.Li_rhs @ Q  # [b, N+3, 2]: rows W_1..W_N, then A_0, A_x, A_y
            grid = self.features @ coefficients  # [b, H*W, 2]
        return grid.reshape(-1, self.out_h, self.out_w, 2)


def check_image_size(fine_height, fine_width):
    """Raise ValueError unless both sides are positive multiples of 64: the GMM halves them 4
    times (feature extraction) then twice more (regression), the TOM's U-Net 6 times."""
    if not (fine_height > 0 and fine_width > 0 and fine_height % 64 == 0 and fine_width % 64 == 0):
        raise ValueError(f"image size {fine_height}x{fine_width} (fine_height x fine_width): both "
                         f"sides must be positive multiples of 64, as in 256x192 or 512x384")


class GMM(nn.Module):
    """Geometric Matching Module. forward(agnostic [b,22,H,W], cloth [b,3,H,W]) ->
    (grid [b,H,W,2], theta [b, 2*grid_size^2]). Built from plain arguments or, as in the
    original, from an options object with fine_height, fine_width and grid_size. H and W must
    be multiples of 64; the regression's input and linear layer depend on them (see
    FeatureRegression), so a checkpoint fits only the image size it was trained at."""

    def __init__(self, opt=None, fine_height=256, fine_width=192, grid_size=5, cloth_channels=3):
        super().__init__()
        if opt is not None:
            fine_height, fine_width, grid_size = opt.fine_height, opt.fine_width, opt.grid_size
        check_image_size(fine_height, fine_width)
        self.image_size = (fine_height, fine_width)
        self.extractionA = FeatureExtraction(22, ngf=64, n_layers=3, norm_layer=nn.BatchNorm2d)
        # CP-VTON+ matches the person with the cloth's mask (1 channel), CP-VTON with the cloth (RGB).
        self.extractionB = FeatureExtraction(cloth_channels, ngf=64, n_layers=3, norm_layer=nn.BatchNorm2d)
        self.l2norm = FeatureL2Norm()
        self.correlation = FeatureCorrelation()
        map_h, map_w = fine_height // 16, fine_width // 16  # the feature maps' size
        self.regression = FeatureRegression(input_nc=map_h * map_w, output_dim=2 * grid_size**2,
                                            map_size=(map_h, map_w))
        self.gridGen = TpsGridGen(fine_height, fine_width, grid_size=grid_size)

    def forward(self, inputA, inputB):
        featureA, featureB = self.extractionA(inputA), self.extractionB(inputB)
        # Under autocast (bf16/fp16) only the feature extractors, nearly all the FLOPs, run in low
        # precision: normalisation, correlation and regression in float32 halve the grid's error
        # (bf16 on the sample data: at most ~0.3 px from fp32's grid instead of ~0.6 px). A float64
        # model stays float64.
        precision = torch.promote_types(featureA.dtype, torch.float32)
        with torch.autocast(inputA.device.type, enabled=False):
            featureA = self.l2norm(featureA.to(precision))
            featureB = self.l2norm(featureB.to(precision))
            theta = self.regression(self.correlation(featureA, featureB))
        return self.gridGen(theta), theta


def warp(image, grid, padding_mode="border"):
    """Sample `image` [b,c,H,W] at `grid` [b,H,W,2] (bilinear). align_corners=True reproduces
    PyTorch 0.4, where the original ran (the default changed in 1.3). Cloth uses 'border';
    masks and the grid image use 'zeros'."""
    return F.grid_sample(image, grid, mode="bilinear", padding_mode=padding_mode,
                         align_corners=True)


def gic_loss(grid):
    """CP-VTON+'s grid interval consistency loss (its GicLoss): over the inner pixels of the
    sampling grid [b,H,W,2] with x = grid[..., 0], y = grid[..., 1], the sum of
    | |x(left) - x| - |x(right) - x| | + | |y(up) - y| - |y(down) - y| | (x compared along rows, y
    along columns only). A sum, not a mean: CP-VTON+'s loss divides it by b*H*W and weights it 40.
    Zero for any affine grid."""
    x, y = grid[..., 0], grid[..., 1]
    centre_x, centre_y = x[:, 1:-1, 1:-1], y[:, 1:-1, 1:-1]
    along_x = (x[:, 1:-1, :-2] - centre_x).abs() - (x[:, 1:-1, 2:] - centre_x).abs()
    along_y = (y[:, :-2, 1:-1] - centre_y).abs() - (y[:, 2:, 1:-1] - centre_y).abs()
    return along_x.abs().sum() + along_y.abs().sum()


def grid_spacing_irregularity(grid):
    """The grid spacing regulariser of --grid_reg (not CP-VTON's, and not CP-VTON+'s gic_loss, which
    it resembles): for every inner pixel of the sampling grid [b,H,W,2], |Euclidean distance to the
    left neighbour - to the right one| plus the same vertically, averaged over b*H*W. Zero for any
    affine grid; large where the warp folds or locally stretches the cloth."""
    def spacing(a, b):  # Euclidean distance between neighbouring grid points (eps: finite gradient)
        return torch.sqrt(((a - b) ** 2).sum(-1) + 1e-12)

    centre = grid[:, 1:-1, 1:-1]
    horizontal = spacing(grid[:, 1:-1, :-2], centre) - spacing(grid[:, 1:-1, 2:], centre)
    vertical = spacing(grid[:, :-2, 1:-1], centre) - spacing(grid[:, 2:, 1:-1], centre)
    return (horizontal.abs().sum() + vertical.abs().sum()) / grid.shape[:3].numel()


# ---------------------------------------------------------------------------------------------
# TOM: U-Net


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: downsample, submodule, upsample (bilinear x2 + 3x3 conv), skip concat.

    Sequential positions (checkpoint keys): outermost [conv, sub, relu, up, conv, norm];
    middle [lrelu, conv, norm, sub, relu, up, conv, norm(, dropout)];
    innermost [lrelu, conv, relu, up, conv, norm].
    """

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False,
                 innermost=False, norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        self.outermost = outermost
        use_bias = norm_layer == nn.InstanceNorm2d
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, 2, 1, bias=use_bias)
        # Original quirk: this LeakyReLU is in place, so it also rewrites the block's input `x`
        # and the skip connection in forward() carries LeakyReLU(x), not x.
        downrelu = nn.LeakyReLU(0.2, True)
        upconv_in = inner_nc if innermost else inner_nc * 2
        up = [nn.ReLU(True),
              nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
              nn.Conv2d(upconv_in, outer_nc, 3, 1, 1, bias=use_bias),
              # On the outermost block too: the final 4-channel output is instance-normalised.
              norm_layer(outer_nc)]
        if outermost:
            layers = [downconv, submodule] + up
        elif innermost:
            layers = [downrelu, downconv] + up
        else:
            layers = [downrelu, downconv, norm_layer(inner_nc), submodule] + up
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """U-Net with `num_downs` halvings; TOM is UnetGenerator(25, 4, 6, ngf=64,
    norm_layer=nn.InstanceNorm2d). Input sides must be divisible by 2**num_downs."""

    def __init__(self, input_nc, output_nc, num_downs, ngf=64, norm_layer=nn.BatchNorm2d,
                 use_dropout=False):
        super().__init__()
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm_layer=norm_layer, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block,
                                            norm_layer=norm_layer, use_dropout=use_dropout)
        for mult in (4, 2, 1):
            block = UnetSkipConnectionBlock(ngf * mult, ngf * mult * 2, submodule=block,
                                            norm_layer=norm_layer)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block,
                                             outermost=True, norm_layer=norm_layer)

    def forward(self, x):
        return self.model(x)


def tom_outputs(raw, warped_cloth):
    """Split the TOM output [b,4,H,W] into (p_rendered = tanh(first 3 channels),
    m_composite = sigmoid(last channel), p_tryon = cloth*m + rendered*(1-m))."""
    p_rendered = torch.tanh(raw[:, :3])
    m_composite = torch.sigmoid(raw[:, 3:])
    p_tryon = warped_cloth * m_composite + p_rendered * (1 - m_composite)
    return p_rendered, m_composite, p_tryon


def build_model(stage, opt=None, variant="cpvton", fine_height=256, fine_width=192, grid_size=5):
    """'GMM' -> GMM(fine_height, fine_width, grid_size); 'TOM' -> UnetGenerator(25, 4, 6, ngf=64,
    InstanceNorm2d), whose layers do not depend on the image size. An options object `opt` gives
    the sizes instead (and the variant, if it has one). Both stages need sides that are multiples
    of 64 (ValueError otherwise). variant 'cpvton+': CP-VTON+'s, whose GMM reads the 1-channel
    cloth mask and whose TOM also takes the warped mask (26 input channels); every other layer is
    CP-VTON's."""
    if opt is not None:
        fine_height, fine_width, grid_size = opt.fine_height, opt.fine_width, opt.grid_size
        variant = getattr(opt, "variant", variant)
    check_image_size(fine_height, fine_width)
    plus = variant == "cpvton+"
    if stage == "GMM":
        return GMM(fine_height=fine_height, fine_width=fine_width, grid_size=grid_size,
                   cloth_channels=1 if plus else 3)
    if stage == "TOM":
        return UnetGenerator(26 if plus else 25, 4, 6, ngf=64, norm_layer=nn.InstanceNorm2d)
    raise ValueError(f"unknown stage {stage!r}: expected 'GMM' or 'TOM'")


# ---------------------------------------------------------------------------------------------
# Inference fast path


class ChannelsLastInstanceNorm2d(nn.InstanceNorm2d):
    """nn.InstanceNorm2d without affine parameters or running statistics (as in TOM), computed
    with var_mean and one fused multiply-add, which keep a channels_last input channels_last:
    torch's instance_norm copies it to the contiguous layout and back. Same values up to float
    rounding (~1e-6). (F.group_norm with a group per channel is faster still, but its one-pass
    variance drifts by ~1e-4 over the U-Net.)"""

    def forward(self, x):
        var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, unbiased=False)
        scale = torch.rsqrt(var + self.eps)
        return torch.addcmul(-mean * scale, x, scale)  # (x - mean) * scale in one pass


def use_channels_last(model):
    """`model` switched in place to the channels_last memory format (oneDNN / cuDNN's faster
    convolution layout), with its plain InstanceNorm2d layers switched to
    ChannelsLastInstanceNorm2d; for training and inference. The state_dict (saved contiguous by
    save_checkpoint) and the outputs (up to float rounding, ~1e-5) are unchanged. Returns it."""
    model.to(memory_format=torch.channels_last)
    for module in model.modules():
        if (type(module) is nn.InstanceNorm2d and not module.affine
                and not module.track_running_stats):
            module.__class__ = ChannelsLastInstanceNorm2d  # no state: a safe class swap
    return model


def channels_last_inputs(inputs):
    """A batch dict with its image tensors ([b, c, H, W]) copied to the channels_last layout, so
    that a channels_last model does not reorder them in each convolution. Other values pass
    through."""
    return {key: value.contiguous(memory_format=torch.channels_last)
            if torch.is_tensor(value) and value.dim() == 4 else value for key, value in inputs.items()}


def for_inference(model, channels_last=True):
    """`model` (on its device) prepared for the inference fast path, in place: eval mode and,
    with `channels_last`, use_channels_last. Returns the model."""
    model.eval()
    return use_channels_last(model) if channels_last else model


# ---------------------------------------------------------------------------------------------
# VGG19 perceptual loss

VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's VGG19_Weights.IMAGENET1K_V1
# Layer ranges of torchvision's vgg19().features ending at relu1_1, relu2_1, ..., relu5_1.
VGG19_SLICES = ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))


class VGGWeightsUnavailable(RuntimeError):
    """The VGG19 ImageNet weights needed by the perceptual loss could not be obtained."""


def _vgg19_layers():
    """Layers 0..29 of torchvision's vgg19().features (conv1_1 .. relu5_1), same indices."""
    layers, channels = [], 3
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512):
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU(inplace=True)]
            channels = v
    return layers


def _load_vgg_layers(layers, state, source):
    """Copy conv weights from a torchvision vgg19 state_dict (full: 'features.N.*', or
    features-only: 'N.*') into `layers`; `source` names the file in errors."""
    if not isinstance(state, dict):
        raise VGGWeightsUnavailable(
            f"{source} is not a VGG19 state_dict (found {type(state).__name__})")
    if any(k.startswith("features.") for k in state):
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    target = nn.Sequential(*layers)
    problems = []
    for key, expected in target.state_dict().items():
        found = state.get(key)
        if not isinstance(found, torch.Tensor):
            problems.append(f"{key} missing")
        elif found.shape != expected.shape:
            problems.append(f"{key}: expected {list(expected.shape)}, found {list(found.shape)}")
    if problems:
        raise VGGWeightsUnavailable(
            f"{source} does not hold torchvision VGG19 weights: " + "; ".join(problems[:5]))
    target.load_state_dict({k: state[k] for k in target.state_dict()})


def _load_vgg_file(layers, path):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise VGGWeightsUnavailable(f"--vgg_weights: no file at {path}")
    try:
        state = safe_load(path)
    except CheckpointError as e:
        raise VGGWeightsUnavailable(f"--vgg_weights: {e}") from e
    _load_vgg_layers(layers, state, path)


def _load_vgg_imagenet(layers):
    """ImageNet weights through torchvision's own cache (downloaded there on first use)."""
    from torchvision.models import VGG19_Weights

    cached = os.path.join(torch.hub.get_dir(), "checkpoints", VGG19_FILE)
    try:
        state = VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=True, check_hash=True)
    except Exception as e:  # offline, proxy, corrupt cache file, ...: all mean "no weights"
        raise VGGWeightsUnavailable(
            f"the perceptual (VGG) loss needs the VGG19 ImageNet weights, which could not be "
            f"obtained ({type(e).__name__}: {e}). Either download "
            f"{VGG19_Weights.IMAGENET1K_V1.url} and pass --vgg_weights PATH, or copy it to "
            f"torchvision's cache at {cached}, or train without the perceptual term with "
            f"--perceptual none (a deviation from the paper's TOM loss).") from e
    _load_vgg_layers(layers, state, cached)


class Vgg19(nn.Module):
    """Frozen VGG19 trunk returning the relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 features.

    Weights: `weights_path` (a local torchvision vgg19 state_dict, full or features-only), else
    ImageNet weights via torchvision if `pretrained`, else random (no download).
    """

    def __init__(self, requires_grad=False, pretrained=True, weights_path=None):
        super().__init__()
        layers = _vgg19_layers()
        if weights_path is not None:
            _load_vgg_file(layers, weights_path)
        elif pretrained:
            _load_vgg_imagenet(layers)
        for i, (start, end) in enumerate(VGG19_SLICES, 1):
            # Keys keep torchvision's layer numbers (slice2.2.weight, ...), as in the original.
            setattr(self, f"slice{i}",
                    nn.Sequential(OrderedDict((str(k), layers[k]) for k in range(start, end))))
        for param in self.parameters():
            param.requires_grad = requires_grad

    def forward(self, x):
        outputs = []
        for block in (self.slice1, self.slice2, self.slice3, self.slice4, self.slice5):
            x = block(x)
            outputs.append(x)
        return outputs


class VGGLoss(nn.Module):
    """sum_i w_i * L1(vgg_i(x), vgg_i(y)) over relu1_1..relu5_1, w = 1/32, 1/16, 1/8, 1/4, 1.

    Original quirk: images are fed in [-1, 1] with no ImageNet mean/std normalisation.
    Raises VGGWeightsUnavailable if the weights cannot be obtained (see Vgg19).
    """

    def __init__(self, weights_path=None, pretrained=True):
        super().__init__()
        self.vgg = Vgg19(pretrained=pretrained, weights_path=weights_path)
        self.criterion = nn.L1Loss()
        self.weights = [1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0]

    def forward(self, x, y):
        x_vgg = self.vgg(x)
        with torch.no_grad():  # the original detaches the target features; same values
            y_vgg = self.vgg(y)
        return sum(w * self.criterion(a, b) for w, a, b in zip(self.weights, x_vgg, y_vgg))


# ---------------------------------------------------------------------------------------------
# Checkpoints


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable, or does not fit the model."""


_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DataParallel/DDP, torch.compile


def _unwrap(model):
    """The plain module inside DataParallel / DistributedDataParallel / torch.compile wrappers."""
    while True:
        inner = getattr(model, "_orig_mod", getattr(model, "module", model))
        if inner is model:
            return model
        model = inner


def _plain_key(key):
    while key.startswith(_WRAPPER_PREFIXES):
        key = key.split(".", 1)[1]
    return key


def checkpoint_variant(state_dict):
    """'cpvton+' or 'cpvton' judging by the first layers' input channels, None if unknown."""
    shapes = {_plain_key(k): tuple(v.shape) for k, v in state_dict.items()}
    first = shapes.get("extractionB.model.0.weight") or shapes.get("model.model.0.weight")
    if first is None or len(first) < 2:
        return None
    return {1: "cpvton+", 26: "cpvton+", 3: "cpvton", 25: "cpvton"}.get(first[1])


def checkpoint_stage(state_dict):
    """'GMM' or 'TOM' judging by the state_dict's keys, None if neither."""
    keys = [_plain_key(k) for k in state_dict]
    if any(k.startswith(("extractionA.", "extractionB.", "regression.")) for k in keys):
        return "GMM"
    if any(k.startswith("model.model.") for k in keys):
        return "TOM"
    return None


def atomic_save(obj, path):
    """torch.save `obj` to `path` so that `path` is either the old file or the complete new one."""
    with atomic.writing_file(path) as f:
        torch.save(obj, f)


def safe_load(path, map_location="cpu"):
    """torch.load(weights_only=True): tensors and plain containers only, no pickled code. Raises
    CheckpointError, naming the file, for a file that is empty or cut short, not a PyTorch file,
    or one holding other objects (refused as unsafe)."""
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"{path} is empty (an interrupted copy or download?)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:  # torch's advice to load the file unsafely is not passed on
        if "GLOBAL" in str(e) or "Unsupported global" in str(e):
            raise CheckpointError(f"{path} holds Python objects other than tensors, which are not loaded "
                                  "because loading them could run code: only plain state_dicts are read") from e
        raise CheckpointError(f"{path} is not a PyTorch file of plain tensors (only those are read: "
                              "loading other objects could run code)") from e
    except Exception as e:  # truncated, not a zip or legacy pickle, ...
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(f"{path} is not a PyTorch file, or is cut short "
                              f"({type(e).__name__}: {first_line})") from e


def save_checkpoint(model_or_state_dict, path):
    """Save a plain CPU state_dict (no wrapper prefixes, contiguous tensors whatever the model's
    memory format) atomically; accepts a module (also wrapped in DataParallel/DDP/torch.compile)
    or a state_dict."""
    state = model_or_state_dict
    if isinstance(state, nn.Module):
        state = _unwrap(state).state_dict()
    state = OrderedDict((_plain_key(k), v.detach().cpu().contiguous()) for k, v in state.items())
    atomic_save(state, path)


def _mismatches(expected, found):
    """Human-readable differences between two state_dicts' keys and shapes."""
    problems = [f"missing {k} (expected {list(v.shape)})"
                for k, v in expected.items() if k not in found]
    problems += [f"unexpected {k} (found {list(v.shape)})"
                 for k, v in found.items() if k not in expected]
    problems += [f"{k}: expected {list(v.shape)}, found {list(found[k].shape)}"
                 for k, v in expected.items() if k in found and found[k].shape != v.shape]
    return problems


def _image_size_hint(model, expected, found):
    """For a GMM checkpoint whose regression reads another number of correlation channels,
    (H/16)*(W/16): the likely cause, training at another image size. '' otherwise."""
    key = "regression.conv.0.weight"
    if not (isinstance(model, GMM) and key in found and found[key].dim() == 4
            and found[key].shape[1] != expected[key].shape[1]):
        return ""
    height, width = model.image_size
    return (f"; the checkpoint's GMM reads {found[key].shape[1]} correlation channels, "
            f"(fine_height/16)*(fine_width/16), this network {expected[key].shape[1]} for "
            f"{height}x{width} images: it was likely trained at another --fine_height/--fine_width")


def load_checkpoint(model, path, stage=None, map_location="cpu"):
    """Load a CP-VTON state_dict from `path` into `model` (strict).

    Accepts the legacy (non-zip) format, 'module.'/'_orig_mod.' key prefixes and state_dicts
    without BatchNorm num_batches_tracked (PyTorch 0.4.0). `stage` ('GMM'/'TOM') defaults to the
    model's. Raises CheckpointError, naming the path, on a missing/unreadable file, a checkpoint
    of the other stage, or mismatched keys/shapes.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        # Deviation: the original silently returned here and went on with random weights.
        raise CheckpointError(f"no checkpoint at {path}")
    state = safe_load(path, map_location)
    if not (isinstance(state, dict) and state
            and all(isinstance(v, torch.Tensor) for v in state.values())):
        found = (f"a dict with keys {list(state)[:5]}" if isinstance(state, dict)
                 else f"a {type(state).__name__}")
        raise CheckpointError(f"{path} is not a model checkpoint: expected a state_dict "
                              f"(a dict of tensors), found {found}")
    # A fresh dict also drops `_metadata`, whose BatchNorm version 2 would make torch refuse
    # a state_dict without num_batches_tracked; those are filled in below instead.
    state = OrderedDict((_plain_key(k), v) for k, v in state.items())
    target = _unwrap(model)
    expected = target.state_dict()
    stage = stage or checkpoint_stage(expected)
    found_stage = checkpoint_stage(state)
    if stage and found_stage and found_stage != stage:
        raise CheckpointError(f"{path} looks like a {found_stage} checkpoint; --stage is {stage}")
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)  # PyTorch 0.4.0 had no such counter
    problems = _mismatches(expected, state)
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        variants = checkpoint_variant(expected), checkpoint_variant(state)
        hint = (f"; it is a {variants[1]} checkpoint, the network a {variants[0]} one: use --variant "
                f"{variants[1]}" if None not in variants and variants[0] != variants[1] else "")
        raise CheckpointError(f"{path} does not match the {stage or 'model'} network: "
                              + "; ".join(problems[:5]) + more + hint
                              + _image_size_hint(target, expected, state))
    target.load_state_dict(state, strict=True)
