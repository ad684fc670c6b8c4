"""Score test.py outputs (this project's or the original's) against the dataset: GMM warps and
TOM try-ons.

    python evaluate.py --dataroot data --datamode test --data_list test_pairs_same.txt
    python evaluate.py --stage TOM --tom_result result/tom_final.pth/test
    python evaluate.py --dataset dresscode --category dresses --result_dir result_dresscode_dresses/same

Protocol of the CP-VTON+ paper's Table 1: IoU, SSIM and LPIPS on a paired list (each person with
her own garment, so the person image is the ground truth: test_pairs_same.txt; Dress Code's
test_pairs_paired.txt), IS on the unpaired test_pairs.txt; on an unpaired list only reference-free
figures are reported. VITON-HD and Dress Code (--dataset, --category) are read as train.py reads
them: the ground truth is resized to the outputs' size (--fine_width x --fine_height).

- GMM: IoU between the warped mask (warp-mask/<c_name> >= 128) and the person's garment region in
  the parse (the dataset's garment labels, CPDataset.cloth_labels: LIP's and CIHP's upper clothes,
  dress, coat; the garment of Dress Code's category; two empty masks count as 1); SSIM between the
  warped cloth and parse_cloth (the person inside the garment region, white elsewhere). The same
  two figures for the identity warp (the unwarped cloth and mask) are the baseline a useful GMM beats.
- TOM: SSIM, PSNR, L1 and LPIPS between try-on/<im_name> and the person image; when unpaired IS,
  and FID and KID (as Dress Code reports them) of the try-ons against the persons' own images.
- Settings (also written to metrics.json): uint8 images; SSIM is skimage's structural_similarity
  as MATLAB's ssim (Gaussian 11x11 window, sigma 1.5, K1 0.01, K2 0.03, population covariance,
  data range 255, mean over RGB; skimage leaves out the 5-pixel border); PSNR with data range
  255, identical images counted as 100 dB; L1 in [0, 1]; LPIPS is lpips' AlexNet v0.1 on [-1, 1];
  IS follows inception-score-pytorch (torchvision Inception-v3, 299x299, --is_splits splits);
  FID/KID are torchmetrics' on torch-fidelity's FID Inception-v3 (2048-d pool3 features of the image
  resized to 299x299 by TF1-compatible bilinear interpolation; KID over 100 subsets of min(1000, n)
  images, printed unscaled; docs/fid_kid.md).
  LPIPS, IS and FID/KID need weights already on disk (nothing is downloaded): without them they
  are reported as skipped.
- Published figures, printed beside these for reference (PUBLISHED): CP-VTON's and CP-VTON+'s on
  VITON (the CP-VTON+ paper's Table 1); CP-VTON's on Dress Code at 256x192 (SSIM 0.803, FID 35.16,
  KID 2.245 in the Dress Code authors' README, which does not say whether the three categories are
  pooled). That README states no scale for KID, but its KIDs (0.570 to 2.245 beside FIDs of 11.40
  to 35.16) are KIDs x100: an unscaled KID is about a thousandth of the FID on such sets. So its
  KID is shown divided by 100 (0.02245), beside this unscaled one. None for VITON-HD: the only
  CP-VTON figures found (SSIM 0.785, LPIPS 0.2871, FID 48.86, KID 4.42) are a third party's, at a
  size it does not state.

Output: a table per result folder and <result folder>/metrics.json, {stage: {data_list: result}}
(entries of other stages and lists are kept; inf/NaN written as null). test.py names its outputs
by cloth (GMM) or person (TOM) only, so score a result folder with the list test.py last ran.
"""
import argparse
import glob
import json
import math
import os.path as osp
import warnings
from collections import namedtuple

import lpips
import numpy as np
import torch
import torch.nn.functional as F
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3
from torchmetrics.image.kid import KernelInceptionDistance
from torchvision.models import AlexNet_Weights, Inception_V3_Weights, inception_v3
from tqdm import tqdm

import atomic
import layouts
from cp_dataset import TRYON_FOLDER, VARIANTS, WARP_FOLDERS, CPDataset, is_same_id, read_image, warp_name
from networks import CheckpointError, safe_load
from pipeline import pick_device

PSNR_CAP = 100.0  # dB used for identical images (true PSNR inf) when averaging
MASK_THRESHOLD = 128
MAX_LISTED = 5  # missing result files named in an error before "... and N more"
# Published figures per (dataset, variant), printed beside the figures for reference only: figures on
# another test set (the sample set, say) or at another size do not compare with them. See the docstring.
Published = namedtuple('Published', 'source figures note')
PUBLISHED = {
    ('viton', 'cpvton'): Published('VITON', {('GMM', 'iou'): 0.7898, ('TOM', 'ssim'): 0.7798,
                                             ('TOM', 'lpips'): 0.1397, ('TOM', 'is'): 2.78}, None),
    ('viton', 'cpvton+'): Published('VITON', {('GMM', 'iou'): 0.8425, ('TOM', 'ssim'): 0.8163,
                                              ('TOM', 'lpips'): 0.1144, ('TOM', 'is'): 3.1048}, None),
    ('dresscode', 'cpvton'): Published(
        'Dress Code 256x192', {('TOM', 'ssim'): 0.803, ('TOM', 'fid'): 35.16, ('TOM', 'kid'): 2.245 / 100},
        "published: CP-VTON on Dress Code at 256x192 (its authors' README, which names no category); "
        'its KID there, 2.245, is x100: shown / 100'),
}
LABELS = {'iou': 'IoU', 'ssim': 'SSIM', 'psnr': 'PSNR dB', 'l1': 'L1', 'lpips': 'LPIPS', 'is': 'IS',
          'fid': 'FID', 'kid': 'KID'}
# File names torchvision and torch-fidelity give these weights in the torch hub cache (<hub>/checkpoints/).
ALEXNET_FILE = osp.basename(AlexNet_Weights.IMAGENET1K_V1.url)
INCEPTION_FILE = osp.basename(Inception_V3_Weights.IMAGENET1K_V1.url)
FID_INCEPTION_FILE = osp.basename(URL_INCEPTION_V3)  # weights-inception-2015-12-05-6726825d.pth
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000  # torch-fidelity's and torchmetrics' defaults (size capped at n)


# ---------------------------------------------------------------------------------------------
# Metrics on single images

def mask_iou(pred, target):
    """Intersection over union of two boolean masks; two empty masks agree perfectly (1.0)."""
    pred, target = np.asarray(pred, bool), np.asarray(target, bool)
    union = np.logical_or(pred, target).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, target).sum() / union)


def ssim(a, b):
    """MATLAB-style SSIM of two uint8 images (H, W) or (H, W, 3); RGB is the per-channel mean."""
    return float(structural_similarity(
        np.asarray(a, np.float64), np.asarray(b, np.float64), data_range=255, gaussian_weights=True,
        sigma=1.5, use_sample_covariance=False, channel_axis=2 if np.ndim(a) == 3 else None))


def psnr(a, b):
    """PSNR in dB of two uint8 images (data range 255); inf when they are identical."""
    a, b = np.asarray(a), np.asarray(b)
    if np.array_equal(a, b):
        return math.inf
    return float(peak_signal_noise_ratio(a, b, data_range=255))


def l1(a, b):
    """Mean absolute difference of two uint8 images in [0, 1] units."""
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).mean() / 255)


def inception_score(probs, splits=10):
    """IS from class probabilities [N, classes]: exp(mean KL(p(y|x) || p(y))) per split -> (mean, std)."""
    probs = np.asarray(probs, np.float64)
    scores = []
    for part in np.array_split(probs, min(splits, len(probs))):
        p_y = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(p_y + 1e-12))).sum(axis=1)
        scores.append(math.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def fid_kid(real_images, fake_images, feature_extractor, device='cpu'):
    """FID and KID (torchmetrics) between two sets of uint8 HWC RGB images (arrays or PIL), on the features
    feature_extractor(uint8 [1, 3, H, W]) -> [1, d] (computed once per image, in float64 after).
    KID: polynomial kernel (x.y / d + 1)^3, mean and std over KID_SUBSETS subsets of
    min(KID_SUBSET_SIZE, n) images per set (n: the smaller set; drawn with a fixed seed), unscaled
    (papers often print it x100 or x1000). -> {'fid': {'value'}, 'kid': {'mean', 'std'}}"""
    with torch.no_grad():
        real, fake = (torch.cat([feature_extractor(to_uint8(image, device)).double().cpu() for image in images])
                      for images in (real_images, fake_images))
    given = torch.nn.Identity()  # the features, handed to torchmetrics as its "feature extractor"
    given.num_features = real.shape[1]
    fid = FrechetInceptionDistance(feature=given)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # KID's note that it keeps every feature in memory
        kid = KernelInceptionDistance(feature=given, subsets=KID_SUBSETS,
                                      subset_size=min(KID_SUBSET_SIZE, len(real), len(fake)))
    for metric in (fid, kid):
        metric.update(real, real=True)
        metric.update(fake, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # KID's random subsets
        kid_mean, kid_std = kid.compute()
    return {'fid': {'value': fid.compute().item()}, 'kid': {'mean': kid_mean.item(), 'std': kid_std.item()}}


def summary(values):
    """{'mean', 'std'} over images (ddof=0)."""
    return {'mean': float(np.mean(values)), 'std': float(np.std(values))}


# ---------------------------------------------------------------------------------------------
# Pretrained networks, only from files already on disk

def hub_file(name):
    """Where torchvision keeps a downloaded weight file (the torch hub cache)."""
    return osp.join(torch.hub.get_dir(), 'checkpoints', name)


def load_lpips(path, device):
    """lpips AlexNet model with the ImageNet trunk read from `path` -> (model, None) or (None, reason)."""
    if not osp.isfile(path):
        return None, (f'LPIPS skipped: AlexNet weights not found at {path}; put torchvision\'s '
                      f'{ALEXNET_FILE} there or pass --alexnet_weights PATH')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # torchvision's deprecation of pretrained=...
        model = lpips.LPIPS(net='alex', version='0.1', pnet_rand=True, verbose=False)  # no download
    state = safe_load(path)
    features = {k[len('features.'):]: v for k, v in state.items()
                if k.startswith('features.')} if isinstance(state, dict) else {}
    # lpips splits torchvision's alexnet().features into slices, keeping each layer's index as its name.
    layers = {name: layer for piece in model.net.children() for name, layer in piece.named_children()}
    expected = {f'{name}.{p}' for name, layer in layers.items() for p, _ in layer.named_parameters()}
    if set(features) != expected:
        raise ValueError(f'{path}: not torchvision AlexNet weights (features.* keys do not match)')
    for key, value in features.items():
        index, param = key.split('.')
        getattr(layers[index], param).data.copy_(value)
    return model.to(device).eval(), None


def load_inception(path, device):
    """torchvision Inception-v3 read from `path` -> (model, None) or (None, reason)."""
    if not osp.isfile(path):
        return None, (f'IS skipped: Inception weights not found at {path}; put torchvision\'s '
                      f'{INCEPTION_FILE} there or pass --inception_weights PATH')
    model = inception_v3(weights=None, aux_logits=True, transform_input=False, init_weights=False)
    try:
        model.load_state_dict(safe_load(path))
    except (RuntimeError, AttributeError) as err:  # another network's weights
        raise ValueError(f'{path}: not torchvision Inception-v3 weights ({str(err).splitlines()[0]})') from None
    return model.to(device).eval(), None


def load_fid_inception(path, device):
    """torch-fidelity's FID Inception-v3 from `path` (torchmetrics' wrapper): uint8 [N, 3, H, W] resized to 299x299
    (TF1-compatible bilinear, no antialiasing) -> 2048-d pool3 features; -> (model, None) or (None, reason)."""
    if not osp.isfile(path):
        return None, (f'FID/KID skipped: Inception weights not found at {path}; put torch-fidelity\'s '
                      f'{FID_INCEPTION_FILE} there or pass --fid_inception_weights PATH')
    safe_load(path)  # plain tensors only: torch-fidelity reads the file with weights_only=False
    try:
        model = NoTrainInceptionV3('inception-v3-compat', ['2048'], feature_extractor_weights_path=path,
                                   antialias=False)
    except (RuntimeError, AttributeError, TypeError) as err:  # another network's weights
        raise ValueError(f'{path}: not torch-fidelity FID Inception-v3 weights ({str(err).splitlines()[0]})') from None
    return model.to(device), None


def to_uint8(image, device):
    """uint8 HWC RGB (an array or a PIL image) -> uint8 [1, 3, H, W]."""
    return torch.from_numpy(np.array(image, np.uint8)).permute(2, 0, 1)[None].to(device)


def to_input(image, device):
    """uint8 HWC RGB -> float [1, 3, H, W] in [-1, 1]."""
    return to_uint8(image, device).float() / 127.5 - 1


# ---------------------------------------------------------------------------------------------
# Evaluation of one result folder

def pair_list(args):
    """The dataset's pairs (via CPDataset, which checks the listed inputs exist) -> CPDataset."""
    return CPDataset(dataroot=args.dataroot, datamode=args.datamode, data_list=args.data_list,
                     fine_height=args.fine_height, fine_width=args.fine_width, variant=args.variant,
                     dataset=args.dataset, category=args.category)


def is_paired(dataset):
    """True when every pair is a person with her own garment (the same id)."""
    return all(is_same_id(im, c) for im, c in zip(dataset.im_names, dataset.c_names))


def check_results(folder, subdirs, names, stage):
    """Raise FileNotFoundError naming the missing result files (and how to make them)."""
    hint = (f'run test.py first (python test.py --stage {stage} --datamode <datamode> '
            '--data_list <data_list> --checkpoint <checkpoint>) or point --gmm_result/--tom_result at them')
    missing = [osp.join(folder, sub, n) for sub in subdirs for n in dict.fromkeys(names)
               if not osp.isfile(osp.join(folder, sub, n))]
    if missing:
        listed = '\n  '.join(missing[:MAX_LISTED])
        more = f'\n  ... and {len(missing) - MAX_LISTED} more' if len(missing) > MAX_LISTED else ''
        raise FileNotFoundError(f'{len(missing)} {stage} result files are missing:\n  {listed}{more}\n{hint}')


def evaluate_gmm(dataset, folder, paired=True):
    """GMM figures for the warps in folder/{warp-cloth,warp-mask}, plus the identity-warp baseline."""
    pairs = list(zip(dataset.im_names, dataset.c_names))
    check_results(folder, WARP_FOLDERS, [warp_name(*pair, dataset.variant) for pair in pairs], 'GMM')
    out = {'stage': 'GMM', 'count': len(dataset), 'paired': paired, 'metrics': {}, 'baseline': {}, 'skipped': {}}
    if not paired:
        out['skipped']['iou/ssim'] = ('IoU/SSIM skipped: they need a paired list (a person with her own '
                                      f'garment, e.g. {dataset.layout.same_list})')
        return out
    size = (dataset.fine_width, dataset.fine_height)
    values = {k: [] for k in ('iou', 'ssim', 'base_iou', 'base_ssim')}
    for index, (im_name, c_name) in enumerate(tqdm(pairs, desc='GMM', leave=False)):
        inputs = dataset.paths(index)
        region = np.isin(dataset.readers['parse'](inputs['parse']), dataset.cloth_labels)
        person = np.array(dataset.readers['image'](inputs['image']))  # resized as the model saw it
        parse_cloth = np.where(region[..., None], person, np.uint8(255))
        cloth_path, mask_path = (osp.join(folder, warp, warp_name(im_name, c_name, dataset.variant))
                                 for warp in WARP_FOLDERS)
        candidates = {'': (read_image(cloth_path, size, 'RGB'), read_image(mask_path, size, 'L')),  # the warps
                      'base_': (dataset.readers['cloth'](inputs['cloth']),  # the unwarped inputs, as read
                                dataset.readers['cloth_mask'](inputs['cloth_mask']))}
        for prefix, (cloth, mask) in candidates.items():
            mask, cloth = np.array(mask) >= MASK_THRESHOLD, np.array(cloth)
            values[prefix + 'iou'].append(mask_iou(mask, region))
            values[prefix + 'ssim'].append(ssim(cloth, parse_cloth))
    for key in ('iou', 'ssim'):
        out['metrics'][key] = summary(values[key])
        out['baseline'][key] = summary(values['base_' + key])
    return out


def evaluate_tom(dataset, folder, paired=True, alexnet_weights=None, inception_weights=None,
                 is_splits=10, device='cpu', fid_inception_weights=None):
    """TOM figures for the try-ons in folder/try-on: reconstruction metrics, or IS, FID and KID when unpaired."""
    check_results(folder, (TRYON_FOLDER,), dataset.im_names, 'TOM')
    out = {'stage': 'TOM', 'count': len(dataset), 'paired': paired, 'metrics': {}, 'skipped': {}}
    device = torch.device(device)
    first = {}  # each person once, in the list's order: her first pair
    for index, im_name in enumerate(dataset.im_names):
        first.setdefault(im_name, index)
    fid_net = None
    if paired:
        net, reason = load_lpips(alexnet_weights or hub_file(ALEXNET_FILE), device)
        name = 'lpips'
    else:
        net, reason = load_inception(inception_weights or hub_file(INCEPTION_FILE), device)
        name = 'is'
        out['skipped']['ssim/psnr/l1/lpips'] = 'reference metrics skipped: the list is unpaired (no ground truth)'
    if reason:
        out['skipped'][name] = reason
    if not paired:
        fid_net, reason = load_fid_inception(fid_inception_weights or hub_file(FID_INCEPTION_FILE), device)
        if reason or len(first) < 2:
            fid_net, out['skipped']['fid/kid'] = None, reason or 'FID/KID skipped: they need at least 2 persons'
    size = (dataset.fine_width, dataset.fine_height)
    values = {k: [] for k in ('ssim', 'psnr', 'l1', 'lpips', 'probs')}
    with torch.no_grad():
        for im_name, index in tqdm(first.items() if paired or net is not None else [], desc='TOM', leave=False):
            tryon = np.array(read_image(osp.join(folder, TRYON_FOLDER, im_name), size, 'RGB'))
            if not paired:
                if net is not None:
                    x = F.interpolate(to_input(tryon, device), size=(299, 299), mode='bilinear', align_corners=False)
                    values['probs'].append(F.softmax(net(x), dim=1)[0].cpu().numpy())
                continue
            person = np.array(dataset.readers['image'](dataset.paths(index)['image']))  # at the outputs' size
            values['ssim'].append(ssim(tryon, person))
            values['psnr'].append(min(psnr(tryon, person), PSNR_CAP))
            values['l1'].append(l1(tryon, person))
            if net is not None:
                values['lpips'].append(net(to_input(tryon, device), to_input(person, device)).item())
    for key in ('ssim', 'psnr', 'l1', 'lpips'):
        if values[key]:
            out['metrics'][key] = summary(values[key])
    if values['probs']:
        mean, std = inception_score(values['probs'], is_splits)
        out['metrics']['is'] = {'mean': mean, 'std': std}
    if fid_net is not None:
        real = (dataset.readers['image'](dataset.paths(i)['image']) for i in tqdm(first.values(), 'real', leave=False))
        fake = (read_image(osp.join(folder, TRYON_FOLDER, im), size, 'RGB') for im in tqdm(first, 'fake', leave=False))
        out['metrics'].update(fid_kid(real, fake, fid_net, device))
    return out


# ---------------------------------------------------------------------------------------------
# Reporting

def finite(obj):
    """Copy of a JSON-able structure with inf/NaN replaced by None (JSON has no inf)."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_metrics(folder, result):
    """Merge result into folder/metrics.json as [stage][data_list] (other entries are kept)."""
    path = osp.join(folder, 'metrics.json')
    merged = {}
    if osp.isfile(path):
        with open(path) as f:
            merged = json.load(f)
    merged.setdefault(result['stage'], {})[result['settings']['data_list']] = finite(result)
    with open(path, 'w') as f:
        json.dump(merged, f, indent=2, allow_nan=False)
    return path


def format_table(result):
    """A plain-text table of one stage's figures: these results, the identity-warp baseline, and the
    published figures of the variant on the dataset, where there are any (for reference: comparable
    only on that dataset's test set, at the size named)."""
    def cell(stats):
        if stats and 'value' in stats:  # FID: one figure for the whole set
            return f"{stats['value']:.4f}"
        return f"{stats['mean']:.4f} ± {stats['std']:.4f}" if stats else ''

    stage, baseline = result['stage'], result.get('baseline', {})
    kind = 'paired' if result['paired'] else 'unpaired'
    settings = result['settings']
    published = PUBLISHED.get((settings['dataset'], settings['variant']), Published(None, {}, None))
    title = f'published ({published.source})' if published.source else 'published'
    width = max(19, len(title) + 2)
    lines = [f"{stage}  {result['result']}  ({result['count']} pairs, {kind} list {settings['data_list']})",
             f"  {'metric':<8}{'this result':>20}{'identity warp' if baseline else '':>20}{title:>{width}}"]
    for key, stats in result['metrics'].items():
        figure = published.figures.get((stage, key))
        lines.append(f"  {LABELS[key]:<8}{cell(stats):>20}{cell(baseline.get(key)):>20}"
                     f"{'-' if figure is None else f'{figure:.4f}':>{width}}")
    if published.note and any((stage, key) in published.figures for key in result['metrics']):
        lines.append(f'  {published.note}')
    lines += [f'  {reason}' for reason in result['skipped'].values()]
    return '\n'.join(lines)


def find_results(args):
    """[(stage, folder)] to evaluate: the given --gmm_result/--tom_result, else every
    result_dir/*/datamode (and result_dir/datamode) holding warp-cloth/ (GMM) or try-on/ (TOM)."""
    given = {'GMM': args.gmm_result, 'TOM': args.tom_result}
    stages = ['GMM', 'TOM'] if args.stage == 'auto' else [args.stage]
    if any(given.values()):
        stages = [s for s in stages if given[s]]
        if not stages:
            raise FileNotFoundError(f'--stage {args.stage} but only --{"tom" if args.gmm_result is None else "gmm"}'
                                    '_result was given')
        for stage in stages:
            if not osp.isdir(given[stage]):
                raise FileNotFoundError(f'{given[stage]}: result folder not found; run test.py first')
        return [(s, given[s]) for s in stages]
    candidates = [osp.join(args.result_dir, args.datamode)]
    candidates += sorted(glob.glob(osp.join(args.result_dir, '*', args.datamode)))
    subdir = {'GMM': WARP_FOLDERS[0], 'TOM': TRYON_FOLDER}
    found = [(s, d) for s in stages for d in candidates if osp.isdir(osp.join(d, subdir[s]))]
    if not found:
        wanted = ' or '.join(osp.join(args.result_dir, '<checkpoint>', args.datamode, subdir[s]) for s in stages)
        raise FileNotFoundError(f'no results found: expected {wanted}; run test.py first '
                                f'(with --datamode {args.datamode} --data_list {args.data_list}) '
                                'or pass --gmm_result/--tom_result')
    return found


def get_options(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--stage', default='auto', choices=['auto', 'GMM', 'TOM'],
                        help='which results to score; auto scores every GMM and TOM result folder found (default: %(default)s)')
    layouts.add_options(parser)
    parser.add_argument('--datamode', default='test', help='dataset split folder under --dataroot (Dress Code: '
                        'the pairs file picks the split) (default: %(default)s)')
    parser.add_argument('--variant', default='cpvton', choices=list(VARIANTS),
                        help='cpvton+: the garment region from image-parse-new, the warps named by person '
                        '(default: %(default)s)')
    parser.add_argument('--data_list', default=None,
                        help='pairs list relative to --dataroot (Dress Code: to <dataroot>/<category>); default: '
                        'the same-clothes list, test_pairs_same.txt (Dress Code: test_pairs_paired.txt); '
                        'paired (same id) -> reference metrics, '
                        'unpaired -> count, IS, FID and KID')
    parser.add_argument('--result_dir',
                        help='test.py --result_dir; searched as <result_dir>/<checkpoint>/<datamode>/ (default: the '
                        "step scripts' for --dataset, --category, --variant and the size: result, result_plus, "
                        'result_vitonhd, result_dresscode_<category>, ...)')
    parser.add_argument('--gmm_result', default=None,
                        help='folder holding warp-cloth/ and warp-mask/ (overrides the search)')
    parser.add_argument('--tom_result', default=None, help='folder holding try-on/ (overrides the search)')
    parser.add_argument('--fine_width', type=int, default=192,
                        help='the outputs\' width; VITON-HD and Dress Code are resized to it (default: %(default)s)')
    parser.add_argument('--fine_height', type=int, default=256,
                        help='the outputs\' height; VITON-HD and Dress Code are resized to it (default: %(default)s)')
    parser.add_argument('--alexnet_weights', default=None,
                        help=f'torchvision AlexNet ImageNet weights for LPIPS (default: the torch hub '
                        f'cache, <hub>/checkpoints/{ALEXNET_FILE}); never downloaded')
    parser.add_argument('--inception_weights', default=None,
                        help=f'torchvision Inception-v3 weights for IS (default: <hub>/checkpoints/'
                        f'{INCEPTION_FILE}); never downloaded')
    parser.add_argument('--fid_inception_weights', default=None,
                        help=f'torch-fidelity FID Inception-v3 weights for FID/KID (default: <hub>/checkpoints/'
                        f'{FID_INCEPTION_FILE}); never downloaded')
    parser.add_argument('--is_splits', type=int, default=10, help='number of splits for the IS mean/std (default: %(default)s)')
    parser.add_argument('--device', default='auto', help='auto (cuda if available), cpu, cuda or cuda:N (default: %(default)s)')
    args = parser.parse_args(argv)
    if args.data_list is None:
        args.data_list = layouts.LAYOUTS[args.dataset].same_list
    layouts.fill_defaults(args, parser.error)
    if args.result_dir is None:
        run = layouts.run_name(args.dataset, args.variant, args.category, (args.fine_width, args.fine_height))
        args.result_dir = layouts.result_folder('result', run)
    return args


def main(argv=None):
    """Evaluate, print a table per result folder, write metrics.json there -> {folder: {stage: result}}."""
    args = get_options(argv)
    device = pick_device(args.device)
    jobs = find_results(args)
    dataset = pair_list(args)
    paired = is_paired(dataset)
    settings = {k: getattr(args, k) for k in ('dataset', 'category', 'dataroot', 'datamode', 'data_list',
                                              'fine_width', 'fine_height', 'variant')}
    settings.update(ssim='skimage structural_similarity: RGB channel_axis, gaussian_weights, sigma 1.5, '
                    'K1 0.01, K2 0.03, use_sample_covariance False, data_range 255',
                    psnr=f'skimage peak_signal_noise_ratio, data_range 255, identical images -> {PSNR_CAP} dB',
                    l1='mean absolute difference in [0, 1]', mask_threshold=MASK_THRESHOLD,
                    cloth_labels=list(dataset.cloth_labels), is_splits=args.is_splits, device=str(device),
                    fid_kid='torchmetrics, torch-fidelity Inception-v3 2048-d pool3, TF1 bilinear resize to 299x299; '
                    f'KID cubic kernel, {KID_SUBSETS} subsets of min({KID_SUBSET_SIZE}, n) images, unscaled')
    results = {}
    for stage, folder in jobs:
        if stage == 'GMM':
            result = evaluate_gmm(dataset, folder, paired)
        else:
            result = evaluate_tom(dataset, folder, paired, args.alexnet_weights, args.inception_weights,
                                  args.is_splits, device, args.fid_inception_weights)
        result.update(result=folder, settings=settings)
        path = write_metrics(folder, result)
        print(format_table(result))
        print(f'  -> {path}')
        results.setdefault(folder, {})[stage] = result
    return results


def command(argv=None):
    """main() as a command: 0, or a one-line error (a missing result file, a bad dataset file or
    --device) instead of a traceback."""
    try:
        main(argv)
    except (FileNotFoundError, ValueError, CheckpointError) as err:  # DatasetError, a bad --device: ValueErrors
        return f'evaluate.py: error: {err}'
    return 0


if __name__ == '__main__':
    atomic.run(command)
