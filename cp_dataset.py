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

Run `python cp_dataset.py --check --dataroot data --datamode train --data_list train_pairs.txt`
to validate a whole split before training.
"""
import argparse
import json
import os.path as osp
import sys
from functools import partial

import numpy as np
import torch
import torch.utils.data as data
from PIL import Image
from tqdm import tqdm

# LIP human-parsing label ids (the pixel values of image-parse/*.png).
LIP_LABELS = {
    0: 'background', 1: 'hat', 2: 'hair', 3: 'glove', 4: 'sunglasses', 5: 'upper-clothes',
    6: 'dress', 7: 'coat', 8: 'socks', 9: 'pants', 10: 'jumpsuit', 11: 'scarf', 12: 'skirt',
    13: 'face', 14: 'left-arm', 15: 'right-arm', 16: 'left-leg', 17: 'right-leg',
    18: 'left-shoe', 19: 'right-shoe',
}
HEAD_LABELS = (1, 2, 4, 13)   # hat, hair, sunglasses, face: kept in the person representation
CLOTH_LABELS = (5, 6, 7)      # upper-clothes, dress, coat: the garment GMM learns to match
# The body-shape mask is every label > 0.

# COCO-18 keypoint i is BODY_25 keypoint BODY25_TO_COCO18[i] (BODY_25 adds MidHip=8 and feet).
BODY25_TO_COCO18 = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]

MAX_REPORTED = 5  # missing files listed in a constructor error before "... and N more"
GMM_OUTPUTS_HINT = ('warp-cloth/ and warp-mask/ are the GMM test outputs: run the GMM test on '
                    'this split first (step 3: step3-generate-tom-data.sh copies them into '
                    '<dataroot>/<datamode>/)')


class DatasetError(ValueError):
    """A bad dataset input; the message names the file and the problem."""


class ImageSizeError(DatasetError):
    """An image or parse that is not fine_width x fine_height (nothing is resized at load time)."""


def normalised(array):
    """uint8 [C, H, W] (or [H, W]) array -> float32 array in [-1, 1]: ToTensor + Normalize(0.5,
    0.5), i.e. (v / 255 - 0.5) / 0.5, by the same float32 operations, so bit for bit the same."""
    array = np.asarray(array)
    values = np.divide(array[None] if array.ndim == 2 else array, np.float32(255), dtype=np.float32)
    values -= 0.5
    values *= 2  # == / 0.5 exactly
    return values


def to_tensor(image):
    """PIL image (L or RGB) -> float32 CHW tensor in [-1, 1] (ToTensor + Normalize(0.5, 0.5)).

    The original used 3-element mean/std for 1-channel images too, which modern torchvision
    rejects; the values here are the ones of (0.5,)/(0.5,) per channel.
    """
    array = np.asarray(image)
    return torch.from_numpy(normalised(array.transpose(2, 0, 1) if array.ndim == 3 else array))


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
    return to_tensor(Image.fromarray(make_grid_image(height, width)))


def read_image(path, size, mode):
    """Open an image, check it is `size` = (width, height), return it converted to `mode`."""
    try:
        with Image.open(path) as image:
            image.load()
            converted = image if image.mode == mode else image.convert(mode)
    except FileNotFoundError:
        raise DatasetError(f'{path}: file not found') from None
    except Exception as err:  # PIL raises OSError, SyntaxError or ValueError on bad files
        raise DatasetError(f'{path}: cannot read image ({err})') from None
    if converted.size != tuple(size):
        raise ImageSizeError(f'{path}: image is {converted.width}x{converted.height}, '
                             f'expected {size[0]}x{size[1]} (fine_width x fine_height)')
    return converted


def read_parse(path, size):
    """Read a LIP parse (palette or grayscale PNG of label ids 0-19) -> uint8 [H, W] labels."""
    try:
        with Image.open(path) as image:
            image.load()
            mode, labels = image.mode, np.array(image)
    except FileNotFoundError:
        raise DatasetError(f'{path}: file not found') from None
    except Exception as err:
        raise DatasetError(f'{path}: cannot read image ({err})') from None
    if mode not in ('P', 'L'):
        raise DatasetError(f'{path}: parse must be a label image (mode P or L holding LIP ids '
                           f'0-19), found mode {mode}')
    if labels.shape != (size[1], size[0]):
        raise ImageSizeError(f'{path}: image is {labels.shape[1]}x{labels.shape[0]}, '
                             f'expected {size[0]}x{size[1]} (fine_width x fine_height)')
    if labels.max() > 19:
        raise DatasetError(f'{path}: parse label {labels.max()} found, LIP ids are 0-19')
    return labels


def read_pose(path):
    """Read an OpenPose JSON -> float64 [18, 3] COCO-18 keypoints (x, y, confidence).

    Accepts `pose_keypoints` (OpenPose 1.0, as in the dataset) or `pose_keypoints_2d` (newer
    OpenPose), with 18 COCO points or 25 BODY_25 points (mapped to COCO-18). As in the
    original, only the first person (people[0]) is used when several are present.
    """
    try:
        with open(path) as f:
            pose = json.load(f)
    except FileNotFoundError:
        raise DatasetError(f'{path}: file not found') from None
    except (OSError, ValueError) as err:
        raise DatasetError(f'{path}: cannot read pose JSON ({err})') from None
    people = pose.get('people') if isinstance(pose, dict) else None
    if not isinstance(people, list):
        raise DatasetError(f"{path}: pose JSON has no 'people' list")
    if not people:
        raise DatasetError(f'{path}: no people in the pose file (OpenPose found nobody)')
    person = people[0]
    key = next((k for k in ('pose_keypoints', 'pose_keypoints_2d')
                if isinstance(person, dict) and k in person), None)
    if key is None:
        raise DatasetError(f"{path}: people[0] has no 'pose_keypoints' or 'pose_keypoints_2d'")
    try:
        values = np.asarray(person[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetError(f'{path}: {key} is not a list of numbers') from None
    if values.ndim != 1 or values.size % 3 or values.size // 3 not in (18, 25):
        raise DatasetError(f'{path}: {key} has {values.size} values, expected 18 (COCO) or '
                           f'25 (BODY_25) (x, y, confidence) triples = 54 or 75 values')
    if not np.isfinite(values).all():
        raise DatasetError(f'{path}: {key} contains non-finite values')
    points = values.reshape(-1, 3)
    return points[BODY25_TO_COCO18] if len(points) == 25 else points


def pose_squares(keypoints, radius):
    """(index, rows, columns) slices of the square drawn for each visible keypoint.

    Equal to the original's PIL drawing `ImageDraw.rectangle((x-r, y-r, x+r, y+r))`: Pillow
    truncates float corners towards zero, includes both corners and clips at the border.
    Points with x <= 1 or y <= 1 (missing points are (0, 0)) are not drawn (the original's
    strict `x > 1 and y > 1`).
    """
    squares = []
    for i, (x, y) in enumerate(np.asarray(keypoints, dtype=np.float64)[:, :2]):
        if x > 1 and y > 1:
            rows = slice(max(int(y - radius), 0), max(int(y + radius) + 1, 0))
            columns = slice(max(int(x - radius), 0), max(int(x + radius) + 1, 0))
            squares.append((i, rows, columns))
    return squares


def pose_maps(keypoints, height, width, radius):
    """18 keypoints -> float32 [18, H, W] maps: 1 inside the square of each visible point
    (see pose_squares), 0 elsewhere."""
    maps = np.zeros((len(keypoints), height, width), np.float32)
    for i, rows, columns in pose_squares(keypoints, radius):
        maps[i, rows, columns] = 1
    return maps


def blur_shape(shape_mask, width, height):
    """Body-shape mask -> blurred L image: PIL bilinear down to (W//16, H//16) and back up.

    PIL's bilinear downscale is antialiased (a box-like filter), so this must stay in PIL.
    """
    image = Image.fromarray(shape_mask.astype(np.uint8) * 255)
    image = image.resize((width // 16, height // 16), Image.BILINEAR)
    return image.resize((width, height), Image.BILINEAR)


def pair_readers(size):
    """{key: reader(path)} for the five files of a pair; size = (width, height).

    Keys: cloth, cloth_mask (in the TOM stage: the warped cloth and mask), image, parse, pose.
    """
    return {
        'cloth': partial(read_image, size=size, mode='RGB'),
        # The original read the mask without .convert('L'): an RGB mask broke the shapes.
        'cloth_mask': partial(read_image, size=size, mode='L'),
        'image': partial(read_image, size=size, mode='RGB'),
        'parse': partial(read_parse, size=size),
        'pose': read_pose,
    }


# Label id -> 255 on the head, 0 elsewhere / 0 on the garment, 255 elsewhere (index with the parse).
HEAD_ON = np.where(np.isin(np.arange(256), HEAD_LABELS), 255, 0).astype(np.uint8)
CLOTH_OFF = np.where(np.isin(np.arange(256), CLOTH_LABELS), 0, 255).astype(np.uint8)


def item_tensors(cloth, cloth_mask, image, parse, pose, radius):
    """One pair's tensors from its files as pair_readers returns them (PIL images, label array,
    keypoints): the spec's item without names and grid image. Used by CPDataset and tryon.py.

    Equal to the original's float computations, done on uint8 pixels first: image*m + (1-m)
    and image*m - (1-m) for a {0,1} mask m are `image` inside the mask and +1 / -1 outside,
    which are the normalised values of 255 / 0. All images are then normalised in one pass.
    """
    height, width = parse.shape
    pixels = np.empty((13, height, width), np.uint8)  # cloth, image, parse_cloth, shape, head
    for channel, band in enumerate(cloth.split() + image.split()):
        pixels[channel] = band
    np.maximum(pixels[3:6], np.take(CLOTH_OFF, parse), out=pixels[6:9])  # garment, white elsewhere
    pixels[9] = blur_shape(parse > 0, width, height)
    np.minimum(pixels[3:6], np.take(HEAD_ON, parse), out=pixels[10:13])  # head, black elsewhere
    values = normalised(pixels)

    agnostic = np.empty((4 + len(pose), height, width), np.float32)  # shape, head, 18 pose maps
    agnostic[0:4], agnostic[4:] = values[9:13], -1
    pose_image = np.full((1, height, width), -1, np.float32)  # all squares, for display
    for i, rows, columns in pose_squares(pose, radius):
        agnostic[4 + i, rows, columns] = 1
        pose_image[0, rows, columns] = 1

    tensors = torch.from_numpy(values)  # the items below are non-overlapping views of it
    return {
        'cloth': tensors[0:3],
        'cloth_mask': torch.from_numpy((np.asarray(cloth_mask) >= 128).astype(np.float32)[None]),
        'image': tensors[3:6],
        'agnostic': torch.from_numpy(agnostic),
        'parse_cloth': tensors[6:9],
        'shape': tensors[9:10],
        'head': tensors[10:13],
        'pose_image': torch.from_numpy(pose_image),
    }


class CPDataset(data.Dataset):
    """Person/cloth pairs of <dataroot>/<data_list> from <dataroot>/<datamode>/.

    Reads opt.dataroot, datamode, stage ('GMM' or 'TOM'), data_list, fine_height, fine_width,
    radius. Construction checks that the pairs file parses and every listed file exists;
    items are validated as they are read. With `problems` (a list, used by check_dataset)
    pairs-file problems are appended to it instead of raised, and missing files are left
    for read_files to report.
    """

    def __init__(self, opt, problems=None):
        super().__init__()
        if opt.stage not in ('GMM', 'TOM'):
            raise DatasetError(f"unknown stage {opt.stage!r}: expected 'GMM' or 'TOM'")
        self.opt = opt
        self.stage = opt.stage
        self.fine_height, self.fine_width, self.radius = opt.fine_height, opt.fine_width, opt.radius
        self.data_path = osp.join(opt.dataroot, opt.datamode)
        self.pairs_path = osp.join(opt.dataroot, opt.data_list)
        # TOM takes the GMM test outputs, still named after the cloth.
        self.cloth_dirs = ('cloth', 'cloth-mask') if self.stage == 'GMM' else ('warp-cloth', 'warp-mask')
        self.readers = pair_readers((self.fine_width, self.fine_height))
        self.im_names, self.c_names = [], []
        self._read_pairs(problems)
        if problems is None:  # check_dataset reports missing files while reading them
            self._check_files_exist()
        # The original opened grid.png from the working directory for every item.
        self.grid_image = None
        if self.stage == 'GMM':
            self.grid_image = grid_tensor(self.fine_height, self.fine_width)

    def _read_pairs(self, problems):
        found = []  # malformed lines, all of them
        try:
            with open(self.pairs_path) as f:
                lines = f.read().splitlines()
        except OSError as err:
            message = (f'{self.pairs_path}: cannot read the pairs file ({err.strerror}); '
                       '--data_list is relative to --dataroot')
            if problems is None:
                raise DatasetError(message) from None
            problems.append(message)
            return
        for number, line in enumerate(lines, 1):
            fields = line.split()
            if not fields:
                continue  # blank lines are skipped (the original crashed on them)
            if len(fields) != 2:
                found.append(f"{self.pairs_path} line {number}: expected '<person image> "
                             f"<cloth image>', found {len(fields)} fields: {line.strip()!r}")
                continue
            self.im_names.append(fields[0])
            self.c_names.append(fields[1])
        if not self.im_names and not found:
            found.append(f'{self.pairs_path}: no pairs in the pairs file')
        if found:
            if problems is None:
                raise DatasetError('\n'.join(found))
            problems.extend(found)

    def _missing(self, path):
        """The problem message for a missing file (with a hint for the GMM outputs)."""
        if self.stage == 'TOM' and osp.basename(osp.dirname(path)) in self.cloth_dirs:
            return f'{path}: file not found; {GMM_OUTPUTS_HINT}'
        return f'{path}: file not found'

    def _check_files_exist(self):
        """os.path.exists on every listed file: cheap, and fails before any training starts."""
        paths = dict.fromkeys(path for i in range(len(self)) for path in self._paths(i).values())
        missing = [path for path in paths if not osp.exists(path)]
        if not missing:
            return
        lines = [f'{len(missing)} files listed in {self.pairs_path} are missing:']
        lines += [f'  {path}' for path in missing[:MAX_REPORTED]]
        if len(missing) > MAX_REPORTED:
            lines.append(f'  ... and {len(missing) - MAX_REPORTED} more')
        if any(self._missing(path) != f'{path}: file not found' for path in missing):
            lines.append(GMM_OUTPUTS_HINT)
        raise DatasetError('\n'.join(lines))

    def _paths(self, index):
        """{key: path} for every file of pair `index` (the keys of pair_readers)."""
        c_name, im_name = self.c_names[index], self.im_names[index]
        cloth_dir, mask_dir = self.cloth_dirs
        return {
            'cloth': osp.join(self.data_path, cloth_dir, c_name),
            'cloth_mask': osp.join(self.data_path, mask_dir, c_name),
            'image': osp.join(self.data_path, 'image', im_name),
            'parse': osp.join(self.data_path, 'image-parse', im_name.replace('.jpg', '.png')),
            'pose': osp.join(self.data_path, 'pose', im_name.replace('.jpg', '_keypoints.json')),
        }

    def read_files(self, index, problems=None):
        """Read and validate every file of pair `index` -> {key: PIL image / array}.

        Raises the first DatasetError, or appends every problem to `problems` if given.
        """
        raw = {}
        for key, path in self._paths(index).items():
            try:
                if not osp.exists(path):
                    raise DatasetError(self._missing(path))
                raw[key] = self.readers[key](path)
            except DatasetError as err:
                if problems is None:
                    raise
                problems.append(str(err))
        return raw

    def __len__(self):
        return len(self.im_names)

    def __getitem__(self, index):
        return {
            'c_name': self.c_names[index],
            'im_name': self.im_names[index],
            **item_tensors(**self.read_files(index), radius=self.radius),
            # The original gives '' in the TOM stage (collated into a list of '').
            # A copy per item (numpy's: torch's clone would start its thread pool for 0.6 MB).
            'grid_image': torch.from_numpy(self.grid_image.numpy().copy()) if self.stage == 'GMM' else '',
        }


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


def _check_split(opt):
    """(problems, number of pairs) for check_dataset and the CLI."""
    problems = []
    dataset = CPDataset(opt, problems=problems)
    for index in tqdm(range(len(dataset)), desc='checking', unit='pair'):
        dataset.read_files(index, problems)
    return list(dict.fromkeys(problems)), len(dataset)  # a file shared by pairs is listed once


def check_dataset(opt):
    """Read every file of every pair; return all problems found (empty list = dataset OK)."""
    return _check_split(opt)[0]


def main(argv=None):
    """The dataset checker CLI; returns the exit status (1 if any problem was found)."""
    parser = argparse.ArgumentParser(
        description='Validate a CP-VTON dataset split: the pairs file parses, every listed '
                    'file exists and reads, images are fine_width x fine_height, parses are '
                    'LIP label images and pose files are readable OpenPose JSON. Prints every '
                    'problem and exits 1 if there is any.')
    parser.add_argument('--check', action='store_true', help='check the split (required)')
    parser.add_argument('--dataroot', default='data', help='dataset root (default: data)')
    parser.add_argument('--datamode', default='train', help='subfolder of dataroot: train or test')
    parser.add_argument('--data_list', default='train_pairs.txt', help='pairs file, relative to dataroot')
    parser.add_argument('--stage', default='GMM', choices=['GMM', 'TOM'],
                        help='GMM reads cloth/ and cloth-mask/; TOM reads warp-cloth/ and warp-mask/')
    parser.add_argument('--fine_width', type=int, default=192, help='expected image width')
    parser.add_argument('--fine_height', type=int, default=256, help='expected image height')
    parser.add_argument('--radius', type=int, default=5, help='pose square half-size (unused by the check)')
    opt = parser.parse_args(argv)
    if not opt.check:
        parser.error('nothing to do: pass --check')
    problems, pairs = _check_split(opt)
    for problem in problems:
        print(problem)
    print(f'{len(problems)} problems in {pairs} pairs' if problems else f'OK: {pairs} pairs checked')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
