"""cp_dataset: items equal the original preprocessing, pose maps equal PIL drawing, errors."""
import json
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import default_collate

import cp_dataset as cpd
from bench import original_item, original_pose, original_transform
from cp_dataset import (CPDataLoader, CPDataset, DatasetError, check_dataset, make_grid_image,
                        pose_maps, pose_squares, pose_union, read_pose)

H, W = 256, 192
ROOT_DIR = Path(__file__).resolve().parent.parent

# Keypoints exercising the PIL rounding: floats, ints, borders, negative corners, skipped points.
KEYPOINTS = [
    (96.0, 40.0, 0.9), (95.7, 60.3, 0.8), (70, 62, 1), (60.5, 100.5, 0.7),
    (1.0, 50.0, 0.9),            # x == 1: skipped (strict x > 1)
    (50.0, 1.0, 0.9),            # y == 1: skipped
    (1.001, 1.001, 0.5),         # just inside: square clipped at the top-left corner
    (2.9, 3.2, 0.5),             # corners x-r < 0 truncate towards zero, then clip
    (190.6, 254.9, 0.5),         # clipped at the bottom-right border
    (191.99, 120.0, 0.5), (185, 255, 1), (0.0, 0.0, 0.0),  # missing point
    (120.4999, 150.5001, 0.6), (3.999, 200.0, 0.4), (100.0, 300.0, 0.3),  # y off the image
    (-5.0, 80.0, 0.2), (140.25, 230.75, 0.9), (30, 250, 1),
]


def write_pose(path, keypoints, key='pose_keypoints'):
    """An OpenPose 1.0-style JSON with one person."""
    flat = [v for point in keypoints for v in point]
    path.write_text(json.dumps({'version': 1.0, 'people': [{key: flat, 'face_keypoints': []}]}))


def write_parse(path, rng):
    """A palette PNG of LIP labels: head, hair, garment, arms, pants and a few random blocks."""
    labels = np.zeros((H, W), np.uint8)
    labels[10:50, 70:120] = 2      # hair
    labels[25:60, 80:110] = 13     # face
    labels[5:15, 75:115] = 1       # hat
    labels[35:42, 82:108] = 4      # sunglasses
    labels[60:150, 50:140] = 5     # upper clothes
    labels[70:140, 30:50] = 14     # arms
    labels[70:140, 140:160] = 15
    labels[150:240, 60:130] = 9    # pants
    labels[120:150, 60:90] = 6     # dress
    labels[120:150, 90:120] = 7    # coat
    for _ in range(4):
        y, x = rng.integers(0, H - 20), rng.integers(0, W - 20)
        labels[y:y + 20, x:x + 20] = rng.integers(0, 20)
    image = Image.fromarray(labels, 'P')
    image.putpalette(list(rng.integers(0, 256, 768, dtype=np.uint8)))
    image.save(path)


def random_rgb(rng):
    """A smooth random RGB picture (gradients + noise): realistic enough for JPEG."""
    y, x = np.mgrid[0:H, 0:W]
    base = np.stack([x * 255 / W, y * 255 / H, (x + y) % 256], -1)
    return Image.fromarray(np.clip(base + rng.normal(0, 20, (H, W, 3)), 0, 255).astype(np.uint8))


def random_mask(rng):
    """A garment-like blob plus a 0..255 ramp, so values near the 128 threshold occur."""
    mask = np.zeros((H, W), np.uint8)
    mask[40 + rng.integers(0, 20):200, 30:160 + rng.integers(0, 20)] = 255
    mask[220:240, :] = np.linspace(0, 255, W).astype(np.uint8)
    return Image.fromarray(mask, 'L')


def make_dataset(root, n=3, datamode='train', seed=0, warp=False):
    """Write a tiny dataset (n same-id pairs) under root; returns the pairs-file name."""
    rng = np.random.default_rng(seed)
    dirs = ['image', 'image-parse', 'pose', 'cloth', 'cloth-mask'] + (['warp-cloth', 'warp-mask'] if warp else [])
    for d in dirs:
        (root / datamode / d).mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        person, cloth = f'{i:06d}_0.jpg', f'{i:06d}_1.jpg'
        base = root / datamode
        random_rgb(rng).save(base / 'image' / person)
        write_parse(base / 'image-parse' / person.replace('.jpg', '.png'), rng)
        points = [KEYPOINTS[k] for k in rng.permutation(18)]  # ints stay ints in the JSON
        write_pose(base / 'pose' / person.replace('.jpg', '_keypoints.json'), points)
        random_rgb(rng).save(base / 'cloth' / cloth)
        random_mask(rng).save(base / 'cloth-mask' / cloth)
        if warp:
            random_rgb(rng).save(base / 'warp-cloth' / cloth)
            random_mask(rng).save(base / 'warp-mask' / cloth)
        lines.append(f'{person} {cloth}')
    pairs = f'{datamode}_pairs.txt'
    (root / pairs).write_text('\n'.join(lines) + '\n')
    return pairs


def make_opt(root, pairs='train_pairs.txt', stage='GMM', **kw):
    opt = dict(dataroot=str(root), datamode='train', stage=stage, data_list=pairs,
               fine_height=H, fine_width=W, radius=5, batch_size=2, workers=0, shuffle=False)
    opt.update(kw)
    return Namespace(**opt)


@pytest.fixture
def root(tmp_path):
    make_dataset(tmp_path)
    return tmp_path


# ----- the original preprocessing (bench.py's slow reference: torchvision transforms, PIL drawing) -----

@pytest.fixture
def grid_png(tmp_path):
    """The original's grid.png, read from disk for every GMM item."""
    path = tmp_path / 'grid.png'
    Image.fromarray(make_grid_image(H, W)).save(path)
    return path


def assert_original_item(item, split_dir, stage='GMM', grid_path=None):
    """`item` equals the original preprocessing of its pair, key by key (torch.equal)."""
    expected = original_item(split_dir, item['im_name'], item['c_name'], stage, grid_path=grid_path)
    assert list(item) == list(expected)
    for key, value in expected.items():
        assert torch.equal(item[key], value) if torch.is_tensor(value) else item[key] == value, key


# ----- items -----

def test_item_keys_shapes_dtypes_ranges(root):
    item = CPDataset(make_opt(root))[0]
    shapes = {'cloth': 3, 'cloth_mask': 1, 'image': 3, 'agnostic': 22, 'parse_cloth': 3,
              'shape': 1, 'head': 3, 'pose_image': 1, 'grid_image': 3}
    assert list(item) == ['c_name', 'im_name', 'cloth', 'cloth_mask', 'image', 'agnostic',
                          'parse_cloth', 'shape', 'head', 'pose_image', 'grid_image']
    assert (item['im_name'], item['c_name']) == ('000000_0.jpg', '000000_1.jpg')
    for key, channels in shapes.items():
        assert item[key].shape == (channels, H, W), key
        assert item[key].dtype == torch.float32, key
        assert item[key].min() >= -1 and item[key].max() <= 1, key
    assert set(item['cloth_mask'].unique().tolist()) == {0.0, 1.0}
    for key in ('pose_image', 'grid_image'):
        assert set(item[key].unique().tolist()) == {-1.0, 1.0}
    assert len(item['shape'].unique()) > 10  # blurred, continuous


def test_items_equal_original_preprocessing(root, grid_png):
    dataset = CPDataset(make_opt(root))
    for index in range(len(dataset)):
        assert_original_item(dataset[index], root / 'train', grid_path=grid_png)


def test_agnostic_channel_order(root):
    item = CPDataset(make_opt(root))[1]
    agnostic = item['agnostic']
    assert torch.equal(agnostic[0:1], item['shape'])
    assert torch.equal(agnostic[1:4], item['head'])
    points = read_pose(root / 'train' / 'pose' / '000001_0_keypoints.json')
    assert torch.equal(agnostic[4:], drawn(points, 5) * 2 - 1)


def test_parse_cloth_and_head_fills(root):
    item = CPDataset(make_opt(root))[0]
    labels = np.array(Image.open(root / 'train' / 'image-parse' / '000000_0.png'))
    garment, head = np.isin(labels, (5, 6, 7)), np.isin(labels, (1, 2, 4, 13))
    image = item['image'].numpy()
    assert (item['parse_cloth'].numpy()[:, ~garment] == 1).all()
    assert np.array_equal(item['parse_cloth'].numpy()[:, garment], image[:, garment])
    assert (item['head'].numpy()[:, ~head] == -1).all()
    assert np.array_equal(item['head'].numpy()[:, head], image[:, head])


def test_normalised_equals_torchvision_for_every_pixel_value():
    """v / 127.5 - 1 rounds like the original's ToTensor + Normalize(0.5, 0.5), all 256 values
    (an image large enough for the vectorised kernels), from uint8 and from float32."""
    from torchvision import transforms
    pixels = np.tile(np.arange(256, dtype=np.uint8), 3 * 96).reshape(96, 256, 3)
    expected = transforms.Normalize((0.5,) * 3, (0.5,) * 3)(transforms.ToTensor()(Image.fromarray(pixels)))
    chw = torch.from_numpy(pixels).permute(2, 0, 1).contiguous()
    assert torch.equal(cpd.normalised(chw), expected)
    assert torch.equal(cpd.normalised(chw.float()), expected)


def test_shape_blur_is_pil_two_step_resize():
    labels = np.zeros((H, W), np.uint8)
    labels[30:200, 40:150] = 5
    labels[100:120, 0:10] = 14
    expected = Image.fromarray(((labels > 0) * 255).astype(np.uint8))
    expected = expected.resize((12, 16), Image.BILINEAR).resize((W, H), Image.BILINEAR)
    assert np.array_equal(cpd.blur_shape(torch.from_numpy(labels > 0), W, H).numpy(), np.array(expected))


def test_bilinear_resize_equals_pillow():
    """Random sizes up and down, both pass orders, random and binary images, batched."""
    rng = np.random.default_rng(1)
    for trial in range(60):
        (h, w), (out_h, out_w) = rng.integers(2, 300, 2), rng.integers(1, 300, 2)
        images = rng.integers(0, 256, (2, h, w)).astype(np.uint8)
        if trial % 2:
            images = (images > 128).astype(np.uint8) * 255
        ours = cpd.pil_bilinear_resize(torch.from_numpy(images), int(out_w), int(out_h))
        for image, resized in zip(images, ours):
            expected = Image.fromarray(image).resize((int(out_w), int(out_h)), Image.BILINEAR)
            assert np.array_equal(resized.numpy(), np.array(expected)), ((h, w), (out_h, out_w))


def test_l_mode_parse_and_rgb_mask_accepted(root, grid_png):
    """Bug fix: masks are read with convert('L'); a grayscale (L) parse works like a P one."""
    base = root / 'train'
    reference = original_item(base, '000000_0.jpg', '000000_1.jpg', grid_path=grid_png)
    labels = np.array(Image.open(base / 'image-parse' / '000000_0.png'))
    Image.fromarray(labels, 'L').save(base / 'image-parse' / '000000_0.png')
    Image.open(base / 'cloth-mask' / '000000_1.jpg').convert('RGB').save(base / 'cloth-mask' / '000000_1.png')
    item = CPDataset(make_opt(root))[0]
    assert torch.equal(item['agnostic'], reference['agnostic'])
    mask = cpd.read_image(base / 'cloth-mask' / '000000_1.png', (W, H), 'L')
    assert np.array(mask).shape == (H, W)


# ----- pose -----

def drawn(points, radius):
    """The dataset's 18 pose maps of `points` as float32 {0, 1}."""
    return (pose_maps(torch.from_numpy(pose_squares(points, radius)), H, W) + 1) / 2


@pytest.mark.parametrize('radius', [0, 3, 5])
def test_pose_maps_equal_pil_drawing(radius):
    points = np.array(KEYPOINTS, dtype=np.float64)
    maps, pose_image = original_pose(points, radius)
    squares = torch.from_numpy(pose_squares(points, radius))
    assert maps.shape == (18, H, W)
    assert torch.equal(pose_maps(squares, H, W), maps)
    assert torch.equal(pose_union(squares, H, W), pose_image)
    ours = drawn(points, radius).numpy()
    assert ours[0].sum() == (2 * radius + 1) ** 2  # a full square is 2r+1 px wide
    assert ours[4].sum() == 0 and ours[5].sum() == 0 and ours[11].sum() == 0


def test_pose_maps_random_points_equal_pil():
    rng = np.random.default_rng(1)
    for trial in range(20):
        points = np.column_stack([rng.uniform(-10, W + 10, 18), rng.uniform(-10, H + 10, 18), np.ones(18)])
        if trial % 2:
            points = np.round(points)  # integer keypoints
        radius = int(rng.integers(0, 8))
        assert torch.equal(drawn(points, radius) * 2 - 1, original_pose(points, radius)[0])


def test_pose_maps_int_keypoints_list():
    points = [(int(x), int(y), 1) for x, y, _ in KEYPOINTS]
    assert torch.equal(drawn(points, 5) * 2 - 1, original_pose(points, 5)[0])


def test_read_pose_body25_and_pose_keypoints_2d(tmp_path):
    body25 = [(float(i), float(100 + i), i / 25) for i in range(25)]
    write_pose(tmp_path / 'b25.json', body25, key='pose_keypoints_2d')
    points = read_pose(tmp_path / 'b25.json')
    expected_ids = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]  # MidHip, feet dropped
    assert points.shape == (18, 3)
    assert points[:, 0].tolist() == expected_ids
    write_pose(tmp_path / 'coco.json', KEYPOINTS, key='pose_keypoints_2d')
    assert np.array_equal(read_pose(tmp_path / 'coco.json'), np.array(KEYPOINTS, np.float64))


def test_read_pose_first_person_only(tmp_path):
    path = tmp_path / 'two.json'
    flat = [[v for p in KEYPOINTS for v in p], [5.0] * 54]
    path.write_text(json.dumps({'people': [{'pose_keypoints': flat[0]}, {'pose_keypoints': flat[1]}]}))
    assert np.array_equal(read_pose(path), np.array(KEYPOINTS, np.float64))


# ----- grid image -----

def test_grid_image_rule():
    grid = make_grid_image(H, W)
    assert grid.shape == (H, W, 3) and grid.dtype == np.uint8
    for y in range(0, H, 3):
        for x in range(W):
            red = (x - 1) % 17 < 3 or x in (0, 191) or (y + 1) % 17 < 3
            assert tuple(grid[y, x]) == ((255, 0, 0) if red else (0, 0, 0)), (x, y)
    assert (make_grid_image(64, 50)[:, 49] == (255, 0, 0)).all()  # right border for other sizes


def test_grid_image_tensor_cached_and_independent_of_cwd(root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no grid.png here
    dataset = CPDataset(make_opt(root))
    item = dataset[0]
    expected = original_transform(Image.fromarray(make_grid_image(H, W)))
    assert torch.equal(item['grid_image'], expected)
    item['grid_image'].zero_()  # the item's own copy: the dataset's grid image is unchanged
    assert torch.equal(dataset[1]['grid_image'], expected)


def test_tom_stage_reads_warp_outputs(tmp_path):
    make_dataset(tmp_path, warp=True)
    item = CPDataset(make_opt(tmp_path, stage='TOM'))[2]
    assert item['grid_image'] == ''
    assert_original_item(item, tmp_path / 'train', stage='TOM')
    batch = CPDataLoader(make_opt(tmp_path, stage='TOM'), CPDataset(make_opt(tmp_path, stage='TOM'))).next_batch()
    assert batch['grid_image'] == ['', '']


@pytest.mark.parametrize('stage', ['GMM', 'TOM'])
def test_compact_batches_expand_to_the_items(tmp_path, stage):
    """train.py and test.py load compact items and expand each batch: the same tensors."""
    make_dataset(tmp_path, warp=True)
    opt = make_opt(tmp_path, stage=stage)
    plain, compact = CPDataset(opt), CPDataset(opt, compact=True)
    assert all(value.dtype != torch.float32 for value in compact[0].values() if torch.is_tensor(value))
    order = [2, 0, 1]
    expected = default_collate([plain[i] for i in order])
    batch = compact.expand(default_collate([compact[i] for i in order]))
    assert batch.keys() == expected.keys()
    for key, value in expected.items():
        assert (torch.equal(batch[key], value) if torch.is_tensor(value) else batch[key] == value), key


# ----- loader -----

def test_loader_keeps_pairs_order_and_next_batch_wraps(root):
    opt = make_opt(root)
    loader = CPDataLoader(opt, CPDataset(opt))
    assert loader.data_loader.pin_memory == torch.cuda.is_available()
    names = [name for batch in loader.data_loader for name in batch['im_name']]
    assert names == ['000000_0.jpg', '000001_0.jpg', '000002_0.jpg']
    batches = [loader.next_batch()['im_name'] for _ in range(3)]
    assert batches == [['000000_0.jpg', '000001_0.jpg'], ['000002_0.jpg'], ['000000_0.jpg', '000001_0.jpg']]
    assert loader.next_batch()['agnostic'].shape == (1, 22, H, W)


def test_loader_with_worker_processes(root):
    opt = make_opt(root, workers=1, batch_size=3)
    loader = CPDataLoader(opt, CPDataset(opt))
    assert [loader.next_batch()['c_name'] for _ in range(2)] == [['000000_1.jpg', '000001_1.jpg', '000002_1.jpg']] * 2


def test_loader_shuffles_only_with_shuffle(root):
    opt = make_opt(root, shuffle=True)
    sampler = CPDataLoader(opt, CPDataset(opt)).data_loader.sampler
    assert isinstance(sampler, torch.utils.data.RandomSampler)
    opt.shuffle = False
    sampler = CPDataLoader(opt, CPDataset(opt)).data_loader.sampler
    assert isinstance(sampler, torch.utils.data.SequentialSampler)


# ----- errors -----

def error_message(opt, index=None):
    with pytest.raises(DatasetError) as info:
        dataset = CPDataset(opt)
        if index is not None:
            dataset[index]
    return str(info.value)


def test_missing_pairs_file(root):
    message = error_message(make_opt(root, pairs='nope.txt'))
    assert 'nope.txt' in message and 'relative to --dataroot' in message


def test_malformed_pairs_line(root):
    (root / 'bad.txt').write_text('000000_0.jpg 000000_1.jpg\n\n000001_0.jpg\n')
    message = error_message(make_opt(root, pairs='bad.txt'))
    assert 'bad.txt line 3' in message and "found 1 fields: '000001_0.jpg'" in message


def test_missing_files_listed_with_count(root):
    (root / 'train' / 'image' / '000001_0.jpg').unlink()
    for i in range(3):
        (root / 'train' / 'pose' / f'00000{i}_0_keypoints.json').unlink()
    (root / 'train' / 'cloth' / '000002_1.jpg').unlink()
    (root / 'train' / 'cloth-mask' / '000002_1.jpg').unlink()
    message = error_message(make_opt(root))
    assert message.startswith('6 files listed in') and '... and 1 more' in message
    assert str(root / 'train' / 'image' / '000001_0.jpg') in message


def test_missing_warp_outputs_say_run_gmm_test(root):
    message = error_message(make_opt(root, stage='TOM'))
    assert message.startswith('6 files listed in') and str(root / 'train' / 'warp-cloth' / '000000_1.jpg') in message
    assert message.count('run the GMM test on this split first (step 3') == 1


def test_corrupt_jpeg(root):
    path = root / 'train' / 'cloth' / '000001_1.jpg'
    path.write_bytes(path.read_bytes()[:600])
    message = error_message(make_opt(root), index=1)
    assert message.startswith(f'{path}: cannot read image')


def test_wrong_size(root):
    path = root / 'train' / 'image' / '000000_0.jpg'
    Image.new('RGB', (100, 80)).save(path)
    assert error_message(make_opt(root), index=0) == (
        f'{path}: image is 100x80, expected 192x256 (fine_width x fine_height)')


def test_rgb_parse(root):
    path = root / 'train' / 'image-parse' / '000000_0.png'
    Image.open(path).convert('RGB').save(path)
    message = error_message(make_opt(root), index=0)
    assert message.startswith(str(path)) and 'found mode RGB' in message


def test_parse_label_out_of_range(root):
    path = root / 'train' / 'image-parse' / '000002_0.png'
    Image.fromarray(np.full((H, W), 25, np.uint8), 'L').save(path)
    assert 'parse label 25 found' in error_message(make_opt(root), index=2)


@pytest.mark.parametrize('content, problem', [
    ({'people': []}, 'no people'),
    ({'people': [{'pose_keypoints': [1.0] * 20}]}, 'has 20 values'),
    ({'people': [{'face_keypoints': []}]}, "no 'pose_keypoints'"),
    ('{"people": [', 'cannot read pose JSON'),
])
def test_bad_pose(root, content, problem):
    path = root / 'train' / 'pose' / '000001_0_keypoints.json'
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    message = error_message(make_opt(root), index=1)
    assert message.startswith(str(path)) and problem in message


# ----- checker -----

def test_check_dataset_lists_all_problems(root, capsys):
    base = root / 'train'
    Image.new('RGB', (10, 10)).save(base / 'image' / '000000_0.jpg')
    (base / 'pose' / '000000_0_keypoints.json').write_text('{"people": []}')
    (base / 'cloth' / '000001_1.jpg').unlink()
    (base / 'image-parse' / '000002_0.png').write_bytes(b'not a png')
    (root / 'train_pairs.txt').write_text((root / 'train_pairs.txt').read_text() + 'a b c\n')
    problems = check_dataset(make_opt(root))
    assert len(problems) == 5, problems
    assert 'line 4' in problems[0] and '10x10' in problems[1] and 'no people' in problems[2]
    assert 'file not found' in problems[3] and 'cannot read image' in problems[4]
    argv = ['--check', '--dataroot', str(root), '--data_list', 'train_pairs.txt']
    assert cpd.main(argv) == 1
    assert capsys.readouterr().out.strip().endswith('5 problems in 3 pairs')


def test_cli_ok_and_help(root):
    command = [sys.executable, 'cp_dataset.py', '--check', '--dataroot', str(root)]
    result = subprocess.run(command, cwd=ROOT_DIR, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith('OK: 3 pairs checked')
    assert cpd.main(['--check', '--dataroot', str(root), '--stage', 'TOM']) == 1
    with pytest.raises(SystemExit) as info:
        cpd.main(['--help'])
    assert info.value.code == 0


def test_sample_data_is_valid(request):
    """The procedural sample dataset (sample_data.py) passes the checker."""
    pytest.importorskip('sample_data')
    sample_root = request.getfixturevalue('sample_root')
    for datamode, pairs in (('train', 'train_pairs.txt'), ('test', 'test_pairs.txt')):
        opt = make_opt(sample_root, pairs=pairs, datamode=datamode)
        assert check_dataset(opt) == []
        assert CPDataset(opt)[0]['agnostic'].shape == (22, H, W)
