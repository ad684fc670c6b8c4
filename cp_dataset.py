"""CP-VTON dataset: person / cloth pairs -> the tensors GMM and TOM train on.

Layout read (see README): <dataroot>/<data_list> holds "<person>.jpg <cloth>.jpg" lines;
<dataroot>/<datamode>/{image,image-parse,pose,cloth,cloth-mask}/ hold the files, plus
warp-cloth/ and warp-mask/ (written by the GMM test) for the TOM stage.

Every item equals the original cp-vton preprocessing value for value; the deviations are bug
fixes only: masks are read with .convert('L') (person and cloth images with .convert('RGB'),
a no-op on the dataset's RGB JPEGs), 1-channel images are normalised with
(0.5,)/(0.5,), the grid image is made in code (not read from the working directory), the
loader shuffles only with --shuffle, newer OpenPose files (pose_keypoints_2d, BODY_25) are
accepted, and bad inputs raise DatasetError naming the file and the problem.

train.py and test.py load compact items (CPDataset(opt, compact=True): uint8 pixels, labels and
pose square bounds) and expand each batch into the same tensors on the device (CPDataset.expand):
a tenth of the bytes through the loader, and the float work batched where the model runs.

Run `python cp_dataset.py --check --dataroot data --datamode train --data_list train_pairs.txt`
to validate a whole split before training.
"""
import argparse
import functools
from collections import namedtuple
import json
import os
import os.path as osp
import sys

import numpy as np
import torch
import torch.utils.data as data
import PIL
from PIL import Image
from tqdm import tqdm

import atomic
import layouts
from layouts import CATEGORIES, DATASETS, LAYOUTS, stem

# LIP human-parsing label ids (the pixel values of image-parse/*.png).
LIP_LABELS = {
    0: 'background', 1: 'hat', 2: 'hair', 3: 'glove', 4: 'sunglasses', 5: 'upper-clothes',
    6: 'dress', 7: 'coat', 8: 'socks', 9: 'pants', 10: 'jumpsuit', 11: 'scarf', 12: 'skirt',
    13: 'face', 14: 'left-arm', 15: 'right-arm', 16: 'left-leg', 17: 'right-leg',
    18: 'left-shoe', 19: 'right-shoe',
}
# Colours of the 20 LIP labels (0 background ... 19 right shoe), as the LIP/JPPNet tools draw them.
LIP_PALETTE = [
    (0, 0, 0), (128, 0, 0), (255, 0, 0), (0, 85, 0), (170, 0, 51),
    (255, 85, 0), (0, 0, 85), (0, 119, 221), (85, 85, 0), (0, 85, 85),
    (85, 51, 0), (52, 86, 128), (0, 128, 0), (0, 0, 255), (51, 170, 221),
    (0, 255, 255), (85, 255, 170), (170, 255, 85), (255, 255, 0), (255, 170, 0),
]
HEAD_LABELS = LAYOUTS['viton'].head_labels  # hat, hair, sunglasses, face: kept in the person representation
CLOTH_LABELS = LAYOUTS['viton'].cloth_labels()  # upper-clothes, dress, coat: the garment GMM learns to match
# The body-shape mask is every label > 0.
NECK_LABEL = 20  # CP-VTON+'s parses add one label to LIP's: the skin of the neck and chest


class Variant(namedtuple('Variant', 'parse_folder max_label body_folder head_labels warps_by')):
    """What a variant reads: its parse folder and highest label id, the folder of its body masks
    (None: the body is every parse label > 0), the labels kept in the person representation per
    stage, and whether the GMM's warps are named by cloth or by person."""


VARIANTS = {
    'cpvton': Variant('image-parse', 19, None, {'GMM': HEAD_LABELS, 'TOM': HEAD_LABELS}, 'cloth'),
    # CP-VTON+ (Minar et al. 2020): grayscale parses with NECK_LABEL, separate body masks, hair
    # left out for the GMM, the lower body kept for the TOM.
    'cpvton+': Variant('image-parse-new', NECK_LABEL, 'image-mask',
                       {'GMM': (1, 4, 13), 'TOM': (1, 2, 4, 9, 12, 13, 16, 17)}, 'person'),
}

# COCO-18 keypoint i is BODY_25 keypoint BODY25_TO_COCO18[i] (BODY_25 adds MidHip=8 and feet).
BODY25_TO_COCO18 = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]

MAX_REPORTED = 5  # missing files listed in a constructor error before "... and N more"

# ---------------------------------------------------------------------------------------------
# The VITON layout (layouts.py holds each dataset's paths; VITON-HD's and Dress Code's there):
#
#   <dataroot>/<pairs file>                            "<person>.jpg <cloth>.jpg" per line
#   <dataroot>/<split>/image/<person>.jpg              person photo
#   <dataroot>/<split>/image-parse/<person stem>.png   LIP parse (label ids)
#   <dataroot>/<split>/pose/<person stem>_keypoints.json   OpenPose keypoints
#   <dataroot>/<split>/cloth/<cloth>.jpg, cloth-mask/<cloth>.jpg   in-shop garment and its mask
#   <dataroot>/<split>/warp-cloth/<cloth>.jpg, warp-mask/<cloth>.jpg   the GMM's warps (TOM input)
#   CP-VTON+ (VARIANTS): image-parse-new/ and image-mask/ beside these, warps named by person
#   <result_dir>/<checkpoint file name>/<split>/warp-cloth/, warp-mask/ (GMM) or try-on/ (TOM)

SPLITS = ('train', 'test')
INPUT_FOLDERS = ('image', 'image-parse', 'pose', 'cloth', 'cloth-mask')
WARP_FOLDERS = ('warp-cloth', 'warp-mask')  # written by the GMM test, named by cloth (or person: warp_name)
TRYON_FOLDER = 'try-on'  # written by the TOM test, named by person
RESULT_FOLDERS = {'GMM': WARP_FOLDERS, 'TOM': (TRYON_FOLDER,)}
PLUS_DATA_HINT = ('CP-VTON+ reads image-parse-new/ (parses with the neck label) and image-mask/ (body '
                  'masks): `python data_download.py --variant cpvton+` says where to get its data, '
                  '`python prepare_data.py --variant cpvton+` makes them for your own photos')
GMM_OUTPUTS_HINT = ('warp-cloth/ and warp-mask/ are the GMM test outputs: run the GMM test on '
                    'this split first (step 3: step3-generate-tom-data.sh copies them into the split\'s '
                    'folder, <dataroot>/<datamode>/; Dress Code: <dataroot>/<category>/)')


def image_id(name):
    """'000001_0.jpg' -> '000001': the id a person and her own garment share."""
    return stem(name).rsplit('_', 1)[0]


def is_same_id(im_name, c_name):
    """Whether a pair is a person with her own garment (the paired, ground-truth case)."""
    return image_id(im_name) == image_id(c_name)


def warp_name(im_name, c_name, variant='cpvton'):
    """The file name of a pair's warps in warp-cloth/ and warp-mask/: the cloth's (CP-VTON) or the
    person's (CP-VTON+)."""
    return im_name if VARIANTS[variant].warps_by == 'person' else c_name


def pair_paths(split_dir, im_name, c_name, stage='GMM', variant='cpvton', dataset='viton'):
    """{key: path} of the files of a pair in `split_dir` (the dataset's split folder, for VITON
    <dataroot>/<datamode>): cloth, cloth_mask (for the TOM: the GMM's warped cloth and mask),
    image, parse, pose, and for CP-VTON+ body (the body mask)."""
    paths = LAYOUTS[dataset].input_paths(split_dir, im_name, c_name)
    if stage == 'TOM':
        paths['cloth'], paths['cloth_mask'] = (osp.join(split_dir, folder, warp_name(im_name, c_name, variant))
                                               for folder in WARP_FOLDERS)
    kind = VARIANTS[variant]
    if kind.body_folder:  # CP-VTON+ (VITON only): its own parses, and body masks
        paths['parse'] = osp.join(split_dir, kind.parse_folder, stem(im_name) + '.png')
        paths['body'] = osp.join(split_dir, kind.body_folder, stem(im_name) + '.png')
    return paths


def same_id_pairs(split_dir, dataset='viton'):
    """[(person, her own garment)] of a split whose garment file is there too: for VITON every
    person photo '<id>_0.jpg' with '<id>_1.jpg' (the paired lists train_pairs.txt and
    test_pairs_same.txt); for VITON-HD each person with the garment of her file name."""
    return LAYOUTS[dataset].same_clothes_pairs(split_dir)


def result_dir_of(result_dir, checkpoint, datamode):
    """Where test.py writes a checkpoint's outputs: <result_dir>/<checkpoint file name>/<datamode>."""
    return osp.join(result_dir, osp.basename(checkpoint), datamode)


def is_file_name(name):
    """Whether `name` is a plain file name, one that stays inside the folder it is joined to."""
    return (name not in ('', '.', '..') and '/' not in name and '\\' not in name
            and '\0' not in name and not osp.isabs(name))


def read_pairs(path, problems=None):
    """[(person, cloth), ...] from a pairs file ('<person>.jpg <cloth>.jpg' per line, blank lines
    skipped). Raises DatasetError naming the file and every bad line; with `problems` (a list)
    they are appended to it instead, and the good lines returned."""
    found = []
    try:
        with open(path, 'rb') as f:
            lines = f.read().splitlines()
    except OSError as err:
        found.append(f'{path}: cannot read the pairs file ({err.strerror}); '
                     '--data_list is relative to --dataroot')
        lines = []
    pairs = []
    for number, line in enumerate(lines, 1):
        try:
            fields = line.decode('utf-8').split()
        except UnicodeDecodeError:
            found.append(f'{path} line {number}: not UTF-8 text ({line[:40]!r}); a pairs file lists '
                         'file names, one pair per line')
            continue
        if not fields:
            continue  # (the original crashed on blank lines)
        if len(fields) != 2:
            found.append(f"{path} line {number}: expected '<person image> <cloth image>', "
                         f'found {len(fields)} fields: {" ".join(fields)!r}')
            continue
        bad = [name for name in fields if not is_file_name(name)]
        if bad:
            found.append(f'{path} line {number}: {bad[0]!r} is not a file name: a pairs file names '
                         'files inside the split\'s folders (no folders, no "..", no absolute paths)')
            continue
        pairs.append((fields[0], fields[1]))
    if not pairs and not found:
        found.append(f'{path}: no pairs in the pairs file')
    if found and problems is None:
        raise DatasetError('\n'.join(found))
    if found:
        problems.extend(found)
    return pairs


def write_pairs(path, pairs):
    """Write [(person, cloth), ...] as a pairs file (beside, then swapped in)."""
    with atomic.writing_file(path, 'w') as f:
        f.writelines(f'{person} {cloth}\n' for person, cloth in pairs)


class DatasetError(ValueError):
    """A bad dataset input; the message names the file and the problem."""

    def __str__(self):
        # Raised again in the main process by a DataLoader worker, the message is wrapped in the
        # worker's traceback: give the original message, which names the file, on its own.
        text = super().__str__()
        marker = f'{type(self).__module__}.{type(self).__qualname__}: '
        if 'Original Traceback' in text and marker in text:
            return text.rsplit(marker, 1)[1].strip()
        return text


class ImageSizeError(DatasetError):
    """A VITON image or parse that is not fine_width x fine_height (VITON files are read as they
    are; VITON-HD's and Dress Code's are resized)."""


def normalised(pixels, out=None):
    """Pixel values 0-255 (uint8 or float32) -> float32 [-1, 1] (a new tensor, or written into
    `out`), in one conversion, one division and one subtraction, each a vectorised pass over
    float32 (dividing uint8 directly takes a slower mixed-type path, about 40% slower on a current x86 CPU):
    ToTensor + Normalize(0.5, 0.5), i.e. (v / 255 - 0.5) / 0.5, bit for bit. v / 127.5 - 1 rounds
    the same: 127.5 and 1 are the original's 255 and 0.5 times 2, and doubling is exact (the
    test checks all 256 values). The divisor is a tensor on the pixels' device because CUDA
    divides by a Python number as a multiplication by its reciprocal, which rounds differently for
    about half of the values. The original used 3-element mean/std for 1-channel images too,
    which modern torchvision rejects; the values here are the ones of (0.5,)/(0.5,) per channel."""
    values = pixels.to(torch.float32, copy=True) if out is None else out.copy_(pixels)
    return values.div_(torch.tensor(127.5, device=pixels.device)).sub_(1)


def make_grid_image(height=256, width=192):
    """The original grid.png as a uint8 [H, W, 3] array: 3-px red lines every 17 px on black.

    Pixel (x, y) is red (255, 0, 0) iff (x-1) % 17 < 3, x in {0, W-1} or (y+1) % 17 < 3;
    for 192x256 this equals the original file pixel for pixel.
    """
    x, y = np.arange(width), np.arange(height)
    columns = ((x - 1) % 17 < 3) | (x == 0) | (x == width - 1)
    rows = (y + 1) % 17 < 3
    grid = np.zeros((height, width, 3), np.uint8)
    grid[rows[:, None] | columns[None, :], 0] = 255
    return grid


def grid_tensor(height=256, width=192):
    """The grid image as GMM warps it for display: [3, H, W] in {-1, 1}."""
    return normalised(torch.from_numpy(make_grid_image(height, width)).permute(2, 0, 1).contiguous())


def read_image(path, size, mode, resize=False):
    """Open an image, convert it to `mode` and check it is `size` = (width, height), or with
    `resize` resize it to that size (bilinear)."""
    try:
        with Image.open(path) as image:
            image.load()
            converted = image if image.mode == mode else image.convert(mode)
            if resize and converted.size != tuple(size):
                converted = converted.resize(tuple(size), Image.BILINEAR)
    except FileNotFoundError:
        raise DatasetError(f'{path}: file not found') from None
    except Exception as err:  # PIL raises OSError, SyntaxError or ValueError on bad files
        raise DatasetError(f'{path}: cannot read image ({err})') from None
    if converted.size != tuple(size):
        raise ImageSizeError(f'{path}: image is {converted.width}x{converted.height}, '
                             f'expected {size[0]}x{size[1]} (fine_width x fine_height)')
    return converted


def read_parse(path, size, max_label=19, resize=False):
    """Read a parse -> uint8 [H, W] labels: a palette or grayscale PNG of label ids 0-max_label
    (LIP and CIHP 0-19, Dress Code's ATR 0-17), or with max_label=20, a CP-VTON+ parse
    (image-parse-new): grayscale ids 0-20, 20 the neck. `resize`: resize it to `size` = (width,
    height) with nearest neighbour (else a parse of another size is an error).

    CP-VTON+ reads its parses with .convert('L'), which keeps the ids of a grayscale image but
    turns a palette image's into colour luminances: there a palette PNG is accepted only when
    its palette is the grey ramp (index i drawn as (i, i, i)), where both readings agree."""
    try:
        with Image.open(path) as image:
            image.load()
            mode, palette = image.mode, image.getpalette()
            if resize and image.size != tuple(size) and mode in ('P', 'L'):
                image = image.resize(tuple(size), Image.NEAREST)
            labels = np.array(image)
    except FileNotFoundError:
        raise DatasetError(f'{path}: file not found') from None
    except Exception as err:
        raise DatasetError(f'{path}: cannot read image ({err})') from None
    if mode not in ('P', 'L'):
        raise DatasetError(f'{path}: parse must be a label image (mode P or L holding label ids '
                           f'0-{max_label}), found mode {mode}')
    if labels.shape != (size[1], size[0]):
        raise ImageSizeError(f'{path}: image is {labels.shape[1]}x{labels.shape[0]}, '
                             f'expected {size[0]}x{size[1]} (fine_width x fine_height)')
    if labels.max() > max_label:
        raise DatasetError(f'{path}: parse label {labels.max()} found, the ids are 0-{max_label}')
    if max_label == NECK_LABEL and mode == 'P':
        colours = np.reshape(palette, (-1, 3))[np.unique(labels)]
        if not (colours == np.unique(labels)[:, None]).all():
            raise DatasetError(f'{path}: a palette PNG with colours, but CP-VTON+ parses '
                               '(image-parse-new) are grayscale label images (mode L, ids 0-20): '
                               'CP-VTON+ would read its colours, not its ids; save the ids as mode L')
    return labels


def _keypoint_values(path, pose):
    """(key, float64 [N, 3] x, y, confidence) of a parsed pose JSON, or DatasetError."""
    if isinstance(pose, dict) and 'keypoints' in pose and 'people' not in pose:
        key, columns, counts = 'keypoints', 4, (18,)  # Dress Code: [[x, y, score, id], ...]
        rows = pose['keypoints']
    else:
        people = pose.get('people') if isinstance(pose, dict) else None
        if not isinstance(people, list):
            raise DatasetError(f"{path}: pose JSON has no 'people' list (OpenPose) or 'keypoints' list (Dress Code)")
        if not people:
            raise DatasetError(f'{path}: no people in the pose file (OpenPose found nobody)')
        person = people[0]
        key = next((k for k in ('pose_keypoints', 'pose_keypoints_2d')
                    if isinstance(person, dict) and k in person), None)
        if key is None:
            raise DatasetError(f"{path}: people[0] has no 'pose_keypoints' or 'pose_keypoints_2d'")
        columns, counts, rows = 3, (18, 25), person[key]
    try:
        values = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetError(f'{path}: {key} is not a list of numbers') from None
    if columns == 4 and values.shape != (18, 4):
        raise DatasetError(f'{path}: keypoints has shape {values.shape}, expected 18 [x, y, score, id] '
                           'entries (Dress Code)')
    if columns == 3 and (values.ndim != 1 or values.size % 3 or values.size // 3 not in counts):
        raise DatasetError(f'{path}: {key} has {values.size} values, expected 18 (COCO) or '
                           f'25 (BODY_25) (x, y, confidence) triples = 54 or 75 values')
    if not np.isfinite(values).all():
        raise DatasetError(f'{path}: {key} contains non-finite values')
    return key, values.reshape(-1, columns)[:, :3]


def read_pose(path, scale=None):
    """Read a keypoint JSON -> float64 [18, 3] COCO-18 keypoints (x, y, confidence).

    Accepts OpenPose's `pose_keypoints` (OpenPose 1.0, as in VITON) or `pose_keypoints_2d` (newer
    OpenPose, as in VITON-HD), with 18 COCO points or 25 BODY_25 points (mapped to COCO-18), and
    Dress Code's {"keypoints": [[x, y, score, id], ...]} (COCO-18; missing points -1, -1). As in
    the original, only the first person (people[0]) is used when several are present. `scale`:
    (sx, sy) multiplying x and y, from the frame the file's coordinates are in to the image's.
    """
    try:
        with open(path) as f:
            pose = json.load(f)
    except FileNotFoundError:
        raise DatasetError(f'{path}: file not found') from None
    except (OSError, ValueError) as err:
        raise DatasetError(f'{path}: cannot read pose JSON ({err})') from None
    _, points = _keypoint_values(path, pose)
    if len(points) == 25:
        points = points[BODY25_TO_COCO18]
    if scale is not None:
        points = points.copy()
        points[:, :2] *= scale
    return points


def pose_off_frame(keypoints, size):
    """Why keypoints [18, 3] do not fit an image of `size` = (width, height): most of those present
    (missing ones are (0, 0)) lie outside it, as when they are in the pixels of the full-size photo;
    None when they fit. Such a pose draws (almost) nothing in the person representation."""
    points = np.asarray(keypoints)[:, :2]
    present = points[(points > 0).any(1)]  # missing: (0, 0) in OpenPose files, negative in Dress Code's
    outside = ((present < 0) | (present >= size)).any(1)
    if outside.sum() * 2 <= max(len(present), 1):
        return None
    return (f'{outside.sum()} of {len(present)} keypoints lie outside the {size[0]}x{size[1]} image '
            f'(x up to {present[:, 0].max():.0f}, y up to {present[:, 1].max():.0f}): are they in the '
            f'pixels of another image size? prepare_data.py fits photo, parse and keypoints together')


_WARNED = set()


def warn_once(path, message):
    """Print 'warning: <path>: <message>' to stderr, once per path and process."""
    if path not in _WARNED:
        _WARNED.add(path)
        print(f'warning: {path}: {message}', file=sys.stderr)


def pose_squares(keypoints, radius):
    """int64 [18, 4]: (row start, row stop, column start, column stop) of the square drawn for
    each keypoint, all 0 (empty) for the points not drawn.

    Equal to the original's PIL drawing `ImageDraw.rectangle((x-r, y-r, x+r, y+r))`: Pillow
    truncates float corners towards zero, includes both corners and clips at the border.
    Points with x <= 1 or y <= 1 (missing points are (0, 0)) are not drawn (the original's
    strict `x > 1 and y > 1`).
    """
    yx = np.asarray(keypoints, dtype=np.float64)[:, 1::-1]
    drawn = (yx > 1).all(1, keepdims=True)
    start = np.maximum((yx - radius).astype(np.int64), 0)  # astype truncates towards zero, as int()
    stop = np.maximum((yx + radius).astype(np.int64) + 1, 0)
    return np.stack([start[:, 0], stop[:, 0], start[:, 1], stop[:, 1]], 1) * drawn


def _square_extents(squares, height, width):
    """pose_squares' bounds [..., 18, 4] (a tensor) -> float32 {0, 1} [..., 18, H] and
    [..., 18, W]: the rows and the columns each keypoint's square covers."""
    bounds = squares[..., None]
    rows = torch.arange(height, device=squares.device)
    columns = torch.arange(width, device=squares.device)
    return (((rows >= bounds[..., 0, :]) & (rows < bounds[..., 1, :])).float(),
            ((columns >= bounds[..., 2, :]) & (columns < bounds[..., 3, :])).float())


def pose_maps(squares, height, width, out=None):
    """pose_squares' bounds [..., 18, 4] (a tensor, batched or not) -> float32 [..., 18, H, W]:
    1 inside each keypoint's square, -1 elsewhere (the agnostic's pose channels)."""
    rows, columns = _square_extents(squares, height, width)  # {0, 1} -> {-1, 1}, then 1 where both are
    return torch.minimum(rows.mul_(2).sub_(1)[..., :, None], columns.mul_(2).sub_(1)[..., None, :], out=out)


def pose_union(squares, height, width):
    """pose_squares' bounds [..., 18, 4] -> float32 [..., 1, H, W]: 1 inside any keypoint's
    square, -1 elsewhere (the pose image shown on TensorBoard)."""
    rows, columns = _square_extents(squares, height, width)
    covering = rows.transpose(-1, -2) @ columns  # [..., H, W]: how many squares cover each pixel
    return covering.clamp_(max=1).mul_(2).sub_(1).unsqueeze(-3)


PIL_PRECISION_BITS = 22  # Pillow's fixed-point resampling weights for 8-bit images
# Pillow >= 13 resizes vertically first when the height shrinks by more than twice as many pixels
# as the width; older versions always start with the horizontal pass (the dataset's two resizes
# are horizontal first in both).
PIL_PASS_ORDER_RULE = int(PIL.__version__.split('.')[0]) >= 13


@functools.lru_cache(maxsize=None)
def pil_bilinear_weights(in_size, out_size):
    """float64 [out_size, in_size]: the integer weights of Pillow's BILINEAR resize along one axis,
    computed as libImaging/Resample.c does (a triangle filter, widened by the scale when reducing,
    normalised per output pixel in sequential double sums, then rounded to 22-bit fixed point)."""
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    support, inverse = filter_scale, 1.0 / filter_scale  # the triangle's support is 1
    weights = np.zeros((out_size, in_size))
    for i in range(out_size):
        centre = (i + 0.5) * scale
        first = max(int(centre - support + 0.5), 0)
        last = min(int(centre + support + 0.5), in_size)
        taps = [max(1.0 - abs((x - centre + 0.5) * inverse), 0.0) for x in range(first, last)]
        total = 0.0
        for tap in taps:
            total += tap
        for x, tap in enumerate(taps, first):
            weights[i, x] = int(0.5 + (tap / total if total else tap) * (1 << PIL_PRECISION_BITS))
    return weights


def pil_bilinear_resize(images, width, height):
    """Pillow's `Image.resize((width, height), BILINEAR)` of 8-bit images [..., H, W] (a tensor, on
    any device), value for value -> uint8 [..., height, width]. Each pass is a matmul with
    pil_bilinear_weights in float64 (exact: the sums stay far below 2^53), then Pillow's rounding:
    + half, shift right by 22 bits, clip to 0-255; the passes in Pillow's order."""
    values = images.double()
    in_height, in_width = values.shape[-2:]

    def horizontal(x):
        return x if width == in_width else _pil_round(x @ _weights(in_width, width, x.device).T)

    def vertical(x):
        return x if height == in_height else _pil_round(_weights(in_height, height, x.device) @ x)

    shrink_height, shrink_width = in_height - height, in_width - width
    if PIL_PASS_ORDER_RULE and shrink_height > 0 and shrink_height > 2 * shrink_width:
        return horizontal(vertical(values)).to(torch.uint8)
    return vertical(horizontal(values)).to(torch.uint8)


@functools.lru_cache(maxsize=None)
def _weights(in_size, out_size, device):
    """pil_bilinear_weights as a tensor on `device`, made once per device (not per batch)."""
    return torch.from_numpy(pil_bilinear_weights(in_size, out_size)).to(device)


def _pil_round(sums):
    return sums.add_(1 << (PIL_PRECISION_BITS - 1)).div_(1 << PIL_PRECISION_BITS).floor_().clamp_(0, 255)


def blur_shape(body, width, height):
    """Body-shape mask [..., H, W] (bool tensor) -> the original's blurred shape, uint8: PIL
    bilinear down to (W//16, H//16) and back up (Pillow's antialiased filter, reproduced exactly
    by pil_bilinear_resize so that it runs batched on the device)."""
    small = pil_bilinear_resize(body.to(torch.uint8) * 255, width // 16, height // 16)
    return pil_bilinear_resize(small, width, height)


def write_cloth_mask(cloth_path, mask_path):
    """Make a garment image's mask as VITON's were made (sample_data.cloth_mask_like_viton:
    near-white background, holes filled) and write it as a 0/255 PNG (beside, then swapped in).
    Raises DatasetError naming the garment image when it does not read."""
    from sample_data import cloth_mask_like_viton  # (sample_data imports this module)
    try:
        with Image.open(cloth_path) as image:
            cloth = np.asarray(image.convert('RGB'))
    except Exception as err:  # PIL raises OSError, SyntaxError or ValueError on bad files
        raise DatasetError(f'{cloth_path}: cannot read image ({err}); its cloth mask {mask_path} '
                           'cannot be made') from None
    with atomic.writing_file(mask_path) as f:
        Image.fromarray(cloth_mask_like_viton(cloth).astype(np.uint8) * 255).save(f, format='PNG')


def head_labels(dataset, variant, stage):
    """The parse labels kept in the person representation: the dataset's head, or CP-VTON+'s
    per-stage set."""
    return LAYOUTS[dataset].head_labels if variant == 'cpvton' else VARIANTS[variant].head_labels[stage]


def pose_radius(radius, fine_height):
    """The pose squares' half-size at `fine_height`: --radius is given for 256-pixel-high images
    (CP-VTON's 5) and scales with the height (10 at 512, 20 at 1024), so that a square covers the
    same part of the body at every size, as the Dress Code loader scales its radius. The blurred
    body shape needs no rule: it is made at 1/16 of the size at every size."""
    return radius if fine_height == 256 else radius * fine_height / 256


def pair_readers(size, variant='cpvton', dataset='viton'):
    """{key: reader(path)} for the files of a pair (the keys of pair_paths); size = (width, height).
    VITON's files are read at their size; VITON-HD's and Dress Code's are resized to `size`, their
    keypoints scaled from the layout's pose_frame."""
    layout = LAYOUTS[dataset]
    image = functools.partial(read_image, size=size, resize=layout.resize)
    max_label = VARIANTS[variant].max_label if variant != 'cpvton' else layout.max_label
    scale = None if layout.pose_frame is None else np.divide(size, layout.pose_frame)
    return {
        'cloth': functools.partial(image, mode='RGB'),
        # The original read the mask without .convert('L'): an RGB mask broke the shapes.
        'cloth_mask': functools.partial(image, mode='L'),
        'image': functools.partial(image, mode='RGB'),
        'parse': functools.partial(read_parse, size=size, max_label=max_label, resize=layout.resize),
        'pose': functools.partial(read_pose, scale=scale),
        'body': functools.partial(image, mode='L'),  # CP-VTON+'s image-mask
    }


@functools.lru_cache(maxsize=None)  # made once per label set, not per item
def label_lookup(labels, inside, outside):
    """uint8 [256]: `inside` for the label ids in `labels`, `outside` for the others (index it with
    a parse)."""
    lookup = np.where(np.isin(np.arange(256), labels), inside, outside).astype(np.uint8)
    lookup.setflags(write=False)  # shared by every caller
    return lookup


def compact_item(cloth, cloth_mask, image, parse, pose, radius, body=None, head_labels=HEAD_LABELS,
                 cloth_labels=CLOTH_LABELS, parse_cloth_mask=False):
    """One pair's files as pair_readers returns them (PIL images, label array, keypoints; for
    CP-VTON+ also its body mask, `body`) -> the item in compact form: uint8 pixels, the body mask,
    the cloth mask and the pose squares' bounds, 0.7 MB where the item's float32 tensors take
    7.5 MB. `expand` makes those tensors from a batch of these on the batch's device, where the
    float work is done (normalising, body-shape blur, pose maps). `head_labels`: the parse labels
    kept in the person representation; `cloth_labels`: the garment's; `parse_cloth_mask`: also the
    garment region as a mask (the target of CP-VTON+'s TOM mask loss).

    The garment and head images are made here on uint8 pixels: the original's image*m + (1-m)
    and image*m - (1-m) for a {0,1} mask m are `image` inside the mask and +1 / -1 outside,
    which are the normalised values of 255 / 0.
    """
    height, width = parse.shape
    pixels = np.empty((12, height, width), np.uint8)  # cloth, image, parse_cloth, head
    for channel, band in enumerate(cloth.split() + image.split()):
        pixels[channel] = band
    cloth_off = label_lookup(tuple(cloth_labels), 0, 255)  # 0 on the garment, 255 elsewhere
    np.maximum(pixels[3:6], np.take(cloth_off, parse), out=pixels[6:9])  # garment, white elsewhere
    head_on = label_lookup(tuple(head_labels), 255, 0)  # 255 on the head, 0 elsewhere
    np.minimum(pixels[3:6], np.take(head_on, parse), out=pixels[9:12])  # head, black elsewhere
    item = {'pixels': torch.from_numpy(pixels),
            'body': torch.from_numpy(parse > 0 if body is None else np.asarray(body) > 0),
            'cloth_mask_on': torch.from_numpy(np.asarray(cloth_mask) >= 128)[None],
            'pose_squares': torch.from_numpy(pose_squares(pose, radius))}
    if parse_cloth_mask:
        item['parse_cloth_mask'] = torch.from_numpy(np.isin(parse, cloth_labels))[None]
    return item


def expand(batch, grid_image=None):
    """A collated batch of compact items (names included, on any device) -> the batch of the original's
    items: float32 tensors equal to the original's computations, names passed through, and
    grid_image [3, H, W] for every item (the GMM stage) or '' per item (TOM, as the original).

    Each value is written once: shape and head are views of their channels in agnostic, and the
    grid image is one image broadcast over the batch (read-only views, as every consumer uses them).
    """
    pixels = batch['pixels']
    b, _, height, width = pixels.shape
    images = normalised(pixels[:, :9], out=torch.empty((b, 9, height, width), device=pixels.device))
    agnostic = torch.empty((b, 4 + batch['pose_squares'].shape[1], height, width), device=pixels.device)
    normalised(blur_shape(batch['body'], width, height), out=agnostic[:, 0])  # body shape
    normalised(pixels[:, 9:], out=agnostic[:, 1:4])  # head
    pose_maps(batch['pose_squares'], height, width, out=agnostic[:, 4:])
    extra = {'parse_cloth_mask': batch['parse_cloth_mask'].float()} if 'parse_cloth_mask' in batch else {}
    return {
        'c_name': batch['c_name'],
        'im_name': batch['im_name'],
        'cloth': images[:, 0:3],
        'cloth_mask': batch['cloth_mask_on'].float(),
        'image': images[:, 3:6],
        'agnostic': agnostic,
        'parse_cloth': images[:, 6:9],
        'shape': agnostic[:, 0:1],
        'head': agnostic[:, 1:4],
        'pose_image': pose_union(batch['pose_squares'], height, width),
        'grid_image': [''] * b if grid_image is None else grid_image.to(pixels.device).expand(b, -1, -1, -1),
        **extra,
    }


class CPDataset(data.Dataset):
    """Person/cloth pairs of <dataroot>/<data_list> from <dataroot>/<datamode>/.

    Built from plain arguments (CPDataset(dataroot='data', datamode='test', stage='TOM', ...)) or,
    as in the original, from an options object with those attributes (CPDataset(opt)). Items are
    the original's; with compact=True they are compact_item's instead (0.7 MB, no float work),
    which `self.expand(batch)` turns into the original's batch on the batch's device: what
    train.py and test.py do. Construction checks that the pairs file parses and every listed
    file exists; items are validated as they are read. With `problems` (a list, used by
    check_dataset) pairs-file problems are appended to it instead of raised, and missing files
    are left for read_files to report.
    """

    def __init__(self, opt=None, problems=None, compact=False, *, dataroot='data', datamode='train',
                 stage='GMM', data_list='train_pairs.txt', fine_height=256, fine_width=192, radius=5,
                 variant='cpvton', dataset='viton', category=None):
        super().__init__()
        if opt is not None:
            dataroot, datamode, stage, data_list = opt.dataroot, opt.datamode, opt.stage, opt.data_list
            fine_height, fine_width, radius = opt.fine_height, opt.fine_width, opt.radius
            variant = getattr(opt, 'variant', 'cpvton')
            dataset, category = getattr(opt, 'dataset', 'viton'), getattr(opt, 'category', None)
        if stage not in ('GMM', 'TOM'):
            raise DatasetError(f"unknown stage {stage!r}: expected 'GMM' or 'TOM'")
        if variant not in VARIANTS:
            raise DatasetError(f"unknown variant {variant!r}: expected one of {', '.join(VARIANTS)}")
        wrong = layouts.check_choice(dataset, category, variant)
        if wrong:
            raise DatasetError(wrong)
        self.stage, self.compact, self.variant, self.dataset = stage, compact, variant, dataset
        self.layout = LAYOUTS[dataset]
        self.fine_height, self.fine_width = fine_height, fine_width
        self.radius = pose_radius(radius, fine_height)
        self.head_labels = head_labels(dataset, variant, stage)
        self.cloth_labels = self.layout.cloth_labels(category)
        self.data_path = self.layout.split_dir(dataroot, datamode, category)
        self.pairs_path = self.layout.pairs_path(dataroot, data_list, category)
        self.readers = pair_readers((fine_width, fine_height), variant, dataset)
        pairs = self.layout.pairs(read_pairs(self.pairs_path, problems), datamode)
        self.im_names = [person for person, _ in pairs]
        self.c_names = [cloth for _, cloth in pairs]
        if stage == 'GMM' and self.layout.makes_cloth_masks(self.data_path):
            self._make_cloth_masks(problems)
        if problems is None:  # check_dataset reports missing files while reading them
            self._check_files_exist()
        # The original opened grid.png from the working directory for every item.
        self.grid_image = grid_tensor(fine_height, fine_width) if stage == 'GMM' else None

    def _make_cloth_masks(self, problems=None):
        """Make the cloth masks the dataset does not ship (Dress Code without LaDI-VTON's masks/),
        once: from each garment image, as VITON's were made (near-white is background), cached
        full-size beside the data in <category>/cloth-mask/."""
        todo = {}
        for index in range(len(self)):
            paths = self.paths(index)
            if not osp.exists(paths['cloth_mask']) and osp.exists(paths['cloth']):
                todo[paths['cloth_mask']] = paths['cloth']
        if todo:
            folder = osp.dirname(next(iter(todo)))
            print(f'{folder}: making {len(todo)} cloth masks from the garment images (once; '
                  'they are kept there)', file=sys.stderr)
            os.makedirs(folder, exist_ok=True)
            for mask_path, cloth_path in tqdm(todo.items(), desc='cloth masks', unit='mask'):
                try:
                    write_cloth_mask(cloth_path, mask_path)
                except DatasetError as err:
                    if problems is None:
                        raise
                    problems.append(str(err))

    def _hint(self, path):
        """Where a missing file comes from, for the files a user makes in a later step or gets
        separately (the GMM's warps, CP-VTON+'s folders); None for the others."""
        folder = osp.basename(osp.dirname(path))
        if self.stage == 'TOM' and folder in WARP_FOLDERS:
            return GMM_OUTPUTS_HINT
        if folder in (VARIANTS['cpvton+'].parse_folder, VARIANTS['cpvton+'].body_folder):
            return PLUS_DATA_HINT
        return None

    def _missing(self, path):
        """The problem message for a missing file."""
        hint = self._hint(path)
        return f'{path}: file not found' + (f'; {hint}' if hint else '')

    def _check_files_exist(self):
        """os.path.exists on every listed file: cheap, and fails before any training starts."""
        paths = dict.fromkeys(path for i in range(len(self)) for path in self.paths(i).values())
        missing = [path for path in paths if not osp.exists(path)]
        if not missing:
            return
        lines = [f'{len(missing)} files listed in {self.pairs_path} are missing:']
        lines += [f'  {path}' for path in missing[:MAX_REPORTED]]
        if len(missing) > MAX_REPORTED:
            lines.append(f'  ... and {len(missing) - MAX_REPORTED} more')
        lines += dict.fromkeys(hint for hint in map(self._hint, missing) if hint)
        raise DatasetError('\n'.join(lines))

    def paths(self, index):
        """{key: path} for every file of pair `index` (the keys of pair_readers)."""
        return pair_paths(self.data_path, self.im_names[index], self.c_names[index], self.stage,
                          self.variant, self.dataset)

    def read_files(self, index, problems=None):
        """Read and validate every file of pair `index` -> {key: PIL image / array}.

        Raises the first DatasetError, or appends every problem to `problems` if given.
        """
        raw, paths = {}, self.paths(index)
        for key, path in paths.items():
            try:
                if not osp.exists(path):
                    raise DatasetError(self._missing(path))
                raw[key] = self.readers[key](path)
            except DatasetError as err:
                if problems is None:
                    raise
                problems.append(str(err))
        off_frame = 'pose' in raw and pose_off_frame(raw['pose'], (self.fine_width, self.fine_height))
        if off_frame and problems is not None:
            problems.append(f"{paths['pose']}: {off_frame}")
        elif off_frame:
            warn_once(paths['pose'], off_frame)
        return raw

    def __len__(self):
        return len(self.im_names)

    def __getitem__(self, index):
        plus = self.variant == 'cpvton+'
        item = {'c_name': self.c_names[index], 'im_name': self.im_names[index],
                **compact_item(**self.read_files(index), radius=self.radius, parse_cloth_mask=plus,
                               head_labels=self.head_labels, cloth_labels=self.cloth_labels)}
        if self.compact:
            return item
        batch = self.expand({key: value[None] if torch.is_tensor(value) else [value]
                             for key, value in item.items()})
        item = {key: value[0] for key, value in batch.items()}
        if torch.is_tensor(item['grid_image']):  # a view of self.grid_image: the item gets its own
            item['grid_image'] = item['grid_image'].clone()
        return item

    def expand(self, batch):
        """A batch of compact items -> the original's batch (see `expand`), grid image included."""
        return expand(batch, self.grid_image)


class CPDataLoader:
    """Batches of a CPDataset; `.next_batch()` loops over epochs, `.data_loader` is one pass.

    Shuffles only with opt.shuffle (the original always shuffled, test runs included).
    """

    def __init__(self, opt, dataset):
        workers = opt.workers
        self.data_loader = data.DataLoader(
            dataset, batch_size=opt.batch_size, shuffle=bool(getattr(opt, 'shuffle', False)),
            num_workers=workers, pin_memory=torch.cuda.is_available(),
            persistent_workers=workers > 0)
        self.data_iter = None  # made on the first next_batch: test.py iterates data_loader itself

    def next_batch(self):
        """The next batch; silently starts a new epoch when the current one ends."""
        if self.data_iter is None:
            self.data_iter = iter(self.data_loader)
        try:
            return next(self.data_iter)
        except StopIteration:
            self.data_iter = iter(self.data_loader)
            return next(self.data_iter)


def _check_split(opt=None, **split):
    """(problems, number of pairs) for check_dataset and the CLI."""
    problems = []
    dataset = CPDataset(opt, problems=problems, **split)
    for index in tqdm(range(len(dataset)), desc='checking', unit='pair'):
        dataset.read_files(index, problems)
    return list(dict.fromkeys(problems)), len(dataset)  # a file shared by pairs is listed once


def check_dataset(opt=None, **split):
    """Read every file of every pair of a split (an options object, or CPDataset's keywords:
    dataroot, datamode, data_list, ...); return all problems found (empty list = dataset OK)."""
    return _check_split(opt, **split)[0]


def main(argv=None):
    """The dataset checker CLI; returns the exit status (1 if any problem was found)."""
    parser = argparse.ArgumentParser(
        description='Validate a CP-VTON dataset split (VITON, VITON-HD or a Dress Code category): the '
                    'pairs file parses, every listed file exists and reads, VITON images are '
                    'fine_width x fine_height, parses are label images with the dataset\'s ids and '
                    'keypoint files are readable JSON. Dress Code cloth masks not shipped are made '
                    'first. Prints every problem and exits 1 if there is any.')
    parser.add_argument('--check', action='store_true', help='check the split (required)')
    layouts.add_options(parser)
    parser.add_argument('--datamode', default='train', help='the split, train or test (for VITON and VITON-HD the '
                        'subfolder of dataroot; for Dress Code the pairs file picks it)')
    parser.add_argument('--data_list', help='pairs file, relative to dataroot (Dress Code: to '
                        '<dataroot>/<category>); default: train_pairs.txt for train, the unpaired test list for test')
    parser.add_argument('--stage', default='GMM', choices=['GMM', 'TOM'],
                        help='GMM reads cloth/ and cloth-mask/; TOM reads warp-cloth/ and warp-mask/')
    parser.add_argument('--variant', default='cpvton', choices=list(VARIANTS),
                        help='cpvton+ reads the parses from image-parse-new/ (grayscale ids 0-20) and the '
                             'body masks from image-mask/, and the TOM its warps by person name')
    parser.add_argument('--fine_width', type=int, default=192,
                        help='image width (VITON: expected; VITON-HD, Dress Code: resized to)')
    parser.add_argument('--fine_height', type=int, default=256,
                        help='image height (VITON: expected; VITON-HD, Dress Code: resized to)')
    parser.add_argument('--radius', type=int, default=5, help='pose square half-size (unused by the check)')
    opt = parser.parse_args(argv)
    if not opt.check:
        parser.error('nothing to do: pass --check')
    layouts.fill_defaults(opt, parser.error)
    problems, pairs = _check_split(opt)
    for problem in problems:
        print(problem)
    print(f'{len(problems)} problems in {pairs} pairs' if problems else f'OK: {pairs} pairs checked')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
