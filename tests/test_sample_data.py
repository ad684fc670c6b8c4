"""The procedural sample dataset: layout, loader, label / pose consistency, determinism, pairs."""
import argparse
import hashlib
import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

import cp_dataset
import sample_data


def _opt(root, datamode, data_list):
    return argparse.Namespace(dataroot=str(root), datamode=datamode, data_list=data_list,
                              stage='GMM', fine_height=256, fine_width=192, radius=5)


def _pairs(root, name):
    return [line.split() for line in (root / name).read_text().splitlines()]


def _persons(root):
    """(split, stem, image, parse, keypoints, cloth, cloth mask) for every person."""
    for split in ('train', 'test'):
        for path in sorted((root / split / 'image').glob('*_0.jpg')):
            stem = path.stem[:-2]
            yield (split, stem, np.array(Image.open(path)),
                   np.array(Image.open(root / split / 'image-parse' / f'{stem}_0.png')),
                   cp_dataset.read_pose(root / split / 'pose' / f'{stem}_0_keypoints.json'),
                   np.array(Image.open(root / split / 'cloth' / f'{stem}_1.jpg')),
                   np.array(Image.open(root / split / 'cloth-mask' / f'{stem}_1.jpg')) >= 128)


@pytest.mark.parametrize('datamode, data_list', [('train', 'train_pairs.txt'), ('test', 'test_pairs.txt'),
                                                 ('test', 'test_pairs_same.txt')])
def test_passes_check_and_loads(sample_root, datamode, data_list):
    opt = _opt(sample_root, datamode, data_list)
    assert cp_dataset.check_dataset(opt) == []
    dataset = cp_dataset.CPDataset(opt)
    assert len(dataset) == (4 if datamode == 'train' else 2)
    item = dataset[0]
    assert item['agnostic'].shape == (22, 256, 192)
    assert item['cloth_mask'].sum() > 2000  # the garment fills the product image
    assert (item['parse_cloth'] < 0.9).any()  # the worn garment is there
    assert (item['head'] > -1).any()


def test_file_formats(sample_root):
    split_dir = sample_root / 'train'
    with Image.open(split_dir / 'image' / '000000_0.jpg') as image:
        assert (image.format, image.mode, image.size) == ('JPEG', 'RGB', (192, 256))
    with Image.open(split_dir / 'image-parse' / '000000_0.png') as parse:
        assert (parse.format, parse.mode, parse.size) == ('PNG', 'P', (192, 256))
        # the PASCAL VOC colour map, as LIP's and VITON's parse PNGs carry it (5: purple)
        assert parse.getpalette() == sample_data.voc_palette()
        assert parse.getpalette()[:3 * 6] == [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0,
                                              0, 0, 128, 128, 0, 128]
    with Image.open(split_dir / 'cloth' / '000000_1.jpg') as cloth:
        assert (cloth.format, cloth.mode, cloth.size) == ('JPEG', 'RGB', (192, 256))
    with Image.open(split_dir / 'cloth-mask' / '000000_1.jpg') as mask:
        assert (mask.format, mask.mode, mask.size) == ('JPEG', 'L', (192, 256))
    pose = json.loads((split_dir / 'pose' / '000000_0_keypoints.json').read_text())
    assert pose['version'] == 1.0
    person = pose['people'][0]
    assert set(person) == {'face_keypoints', 'pose_keypoints', 'hand_right_keypoints', 'hand_left_keypoints'}
    assert len(person['pose_keypoints']) == 54
    marker = sample_data.read_marker(sample_root)
    assert marker['complete'] and len(marker['files']) == 3 + 7 * 6
    assert all((sample_root / name).is_file() for name in marker['files'])


def test_cpvton_plus_parse_and_body_mask(sample_root):
    """image-parse-new is the LIP parse with the visible neck as label 20; image-mask is the body."""
    for split, stem, image, parse, *_ in _persons(sample_root):
        folder = sample_root / split
        with Image.open(folder / 'image-parse-new' / f'{stem}_0.png') as new, \
                Image.open(folder / 'image-mask' / f'{stem}_0.png') as mask:
            assert (new.format, new.mode, new.size) == ('PNG', 'L', (192, 256))
            assert (mask.format, mask.mode, mask.size) == ('PNG', 'L', (192, 256))
            new, mask = np.array(new), np.array(mask)
        neck = new == cp_dataset.NECK_LABEL
        assert (new[~neck] == parse[~neck]).all(), stem
        assert 100 < neck.sum() < 1500, stem
        assert (parse[neck] == 13).all(), stem  # LIP labels the neck as face
        face_centre = np.nonzero(new == 13)[0].mean()
        assert np.nonzero(neck)[0].min() > face_centre, stem
        assert (mask == (parse > 0) * 255).all(), stem
        read = cp_dataset.read_parse(folder / 'image-parse-new' / f'{stem}_0.png', (192, 256), max_label=20)
        assert (read == new).all()
    problems = cp_dataset.check_dataset(dataroot=str(sample_root), datamode='test',
                                        data_list='test_pairs.txt', variant='cpvton+')
    assert problems == []


# sha256 of the first train person's files for seed 0: a change to the generator that alters
# any byte of them (a draw, a drawing step, an encoder option) fails here.
FROZEN = {
    'train/image/000000_0.jpg': '722031bc144e030d25c4a97ca4ad6c8f7b444392c02e36ce0d452b1283d21c27',
    'train/image-parse/000000_0.png': 'e389eab5bccf25b6f169fee87b99d11fd8fe88fdf74ffa2d4ceb4d2bbc98c3a0',
    'train/cloth/000000_1.jpg': 'b554fcc8c6765110d914fe78345991efa21827602c978304a64ef8fcdcb8e000',
    'train/cloth-mask/000000_1.jpg': '888a42a76b9c71fe1bb310936b1189b43a804ea3b0fa3216773937300df3fcce',
    'train/pose/000000_0_keypoints.json': '453f43dd181231a3c7ae7913da9b3f801e4f39a37bb8d5b34035ab09cb67b195',
    'train/image-parse-new/000000_0.png': '49e08e0d69d4d3127e17a2a96710d8db163e743f1d2925af77ce690ff691f456',
    'train/image-mask/000000_0.png': 'cf605fb3fd4140057946b7755f47937ef451df326bbfb278a77d631e05dd167f',
}


def test_files_keep_their_bytes(sample_root):
    assert {name: hashlib.sha256((sample_root / name).read_bytes()).hexdigest() for name in FROZEN} == FROZEN


def test_keypoints_lie_on_the_person(sample_root):
    allowed = {0, 2, 5, 6, 7, 9, 12, 13, 14, 15, 16, 17, 18, 19}
    for split, stem, image, parse, points, *_ in _persons(sample_root):
        assert set(np.unique(parse)) <= allowed, stem
        person = ndimage.binary_dilation(parse > 0, iterations=2)  # 2-px tolerance
        face = ndimage.binary_dilation(parse == 13, iterations=2)
        visible = points[:, 2] > 0
        assert visible[[0, 1, 2, 5, 8, 11, 14, 15]].all(), stem  # head, neck, shoulders, hips
        for index, (x, y, c) in enumerate(points):
            if c > 0:
                assert person[int(round(y)), int(round(x))], (stem, sample_data.KEYPOINTS[index])
        for index in (0, 14, 15):  # nose and eyes on the face
            x, y, _ = points[index]
            assert face[int(round(y)), int(round(x))], (stem, sample_data.KEYPOINTS[index])
        # the person's right (keypoint 2) is on the image left
        assert points[2, 0] < points[1, 0] < points[5, 0]


def test_parse_agrees_with_the_image(sample_root):
    for split, stem, image, parse, points, cloth, mask in _persons(sample_root):
        worn = np.isin(parse, (5, 6, 7))
        assert worn.sum() > 2000, stem
        assert {14, 15, 13, 2} <= set(np.unique(parse)), stem  # both arms, face, hair
        # background in the parse is the light, plain background in the image (JPEG aside)
        background = ndimage.binary_erosion(parse == 0, iterations=2)
        pixels = image[background].astype(float)
        assert pixels.min(axis=1).mean() > 215, stem
        assert (np.abs(pixels - np.median(pixels, 0)).max(axis=1) < 20).mean() > 0.99, stem
        # the figure is where the parse says it is
        person = ndimage.binary_erosion(parse > 0, iterations=2)
        assert (np.abs(image[person].astype(float) - np.median(pixels, 0)).max(axis=1) > 20).mean() > 0.9
        # the garment is not simply where it sits in the product image
        iou = (worn & mask).sum() / (worn | mask).sum()
        assert 0.3 < iou < 0.8, (stem, iou)


def test_cloth_masks_are_made_like_the_originals(sample_root):
    for split, stem, image, parse, points, cloth, mask in _persons(sample_root):
        assert (sample_data.cloth_mask_like_viton(cloth) == mask).mean() > 0.995, stem
        assert (ndimage.binary_fill_holes(mask) == mask).all(), stem
        # no near-white garment pixels (only the tip of a sleeve-to-body gap, closed by the median)
        inside = ndimage.binary_erosion(mask, iterations=2)
        assert ((cloth > 250).all(axis=2) & inside).sum() < 0.002 * mask.sum(), stem
        assert (cloth[~ndimage.binary_dilation(mask, iterations=2)] > 230).all(), stem  # white around (JPEG aside)


def test_pairs_files(sample_root):
    train, test = _pairs(sample_root, 'train_pairs.txt'), _pairs(sample_root, 'test_pairs.txt')
    same = _pairs(sample_root, 'test_pairs_same.txt')
    assert [p for p, _ in train] == ['000000_0.jpg', '000001_0.jpg', '000002_0.jpg', '000003_0.jpg']
    assert all(c == p.replace('_0.jpg', '_1.jpg') for p, c in train + same)
    assert [p for p, _ in same] == [p for p, _ in test]
    assert all(c[:6] != p[:6] for p, c in test)  # unpaired
    assert sorted(c for _, c in test) == sorted(c for _, c in same)  # each test cloth once
    assert not {p[:6] for p, _ in train} & {p[:6] for p, _ in test}


def _digest(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob('*')) if p.is_file()}


def test_same_seed_same_bytes(tmp_path):
    for name, seed in (('a', 5), ('b', 5), ('c', 6)):
        sample_data.generate(tmp_path / name, n_train=2, n_test=2, seed=seed)
    a, b, c = (_digest(tmp_path / name) for name in 'abc')
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a if k.endswith(('.jpg', '.png')))


def test_remove_sample_removes_only_its_files(tmp_path):
    sample_data.generate(tmp_path, n_train=2, n_test=2, seed=0)
    (tmp_path / 'train' / 'image' / 'mine.jpg').write_bytes(b'user file')
    (tmp_path / 'notes.txt').write_text('user file')
    sample_data.remove_sample(tmp_path)
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob('*'))
    assert left == ['notes.txt', 'train', 'train/image', 'train/image/mine.jpg']


def test_generate_rejects_a_test_split_without_derangement(tmp_path):
    with pytest.raises(ValueError, match='n_test'):
        sample_data.generate(tmp_path, n_train=2, n_test=1)
    assert not any(tmp_path.iterdir())


def test_preview_picture(tmp_path):
    path = tmp_path / 'pics' / 'preview.png'
    sample_data.preview(path)
    with Image.open(path) as picture:
        assert picture.height == 256 and picture.width > 3 * 3 * 192
        strip = np.array(picture.convert('RGB')).astype(int)
    assert path.stat().st_size < 150_000
    # the first person's parse tile (after cloth, gap, image, gap) is drawn in the LIP colours
    parse = sample_data.make_sample(0, 0)['parse']
    tile = strip[:, 2 * (192 + 4):2 * (192 + 4) + 192]
    for label in set(np.unique(parse)) - {0}:
        inside = ndimage.binary_erosion(parse == label, iterations=2)
        if inside.any():
            colour = np.median(tile[inside], axis=0)
            assert np.abs(colour - cp_dataset.LIP_PALETTE[label]).max() < 24, (label, colour)
    assert (tile[ndimage.binary_erosion(parse == 0, iterations=2)] == 255).all()


# ---- VITON-HD and Dress Code layouts ----

HD_FOLDERS = {'image': '.jpg', 'cloth': '.jpg', 'cloth-mask': '.jpg', 'image-parse-v3': '.png',
              'openpose_json': '_keypoints.json'}
HD_IDS = {'train': ['00000_00', '00001_00', '00002_00', '00003_00'], 'test': ['50000_00', '50001_00']}
DC_FILES = {'images': ('_0.jpg', '_1.jpg'), 'label_maps': ('_4.png',), 'keypoints': ('_2.json',)}
DC_LISTS = ('train_pairs.txt', 'test_pairs_paired.txt', 'test_pairs_unpaired.txt')
CATEGORIES = ('upper_body', 'lower_body', 'dresses')


@pytest.fixture(scope='module')
def hd_root(tmp_path_factory):
    """VITON-HD with the same seed and counts as the VITON sample_root: the same persons."""
    root = tmp_path_factory.mktemp('vitonhd')
    sample_data.generate(root, n_train=4, n_test=2, seed=0, dataset='vitonhd')
    return root


@pytest.fixture(scope='module')
def dc_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('dresscode')
    sample_data.generate(root, n_train=4, n_test=2, seed=0, dataset='dresscode')
    return root


def _files(root):
    return {str(p.relative_to(root)) for p in root.rglob('*') if p.is_file()} - {sample_data.MARKER}


def _hd_persons(root):
    """(split, VITON-HD id, VITON id, image, parse, pose JSON, cloth, cloth mask) per person."""
    for split, ids in HD_IDS.items():
        for index, name in enumerate(ids):
            folder = root / split
            yield (split, name, f'{(0 if split == "train" else 100000) + index:06d}',
                   np.array(Image.open(folder / 'image' / f'{name}.jpg')),
                   np.array(Image.open(folder / 'image-parse-v3' / f'{name}.png')),
                   json.loads((folder / 'openpose_json' / f'{name}_keypoints.json').read_text()),
                   np.array(Image.open(folder / 'cloth' / f'{name}.jpg')),
                   np.array(Image.open(folder / 'cloth-mask' / f'{name}.jpg')))


def _dc_persons(root):
    """(category, NNNNNN, person, garment, label map, keypoints [18, 4]) per person."""
    for category in CATEGORIES:
        for path in sorted((root / category / 'images').glob('*_0.jpg')):
            n, folder = path.stem[:-2], root / category
            points = json.loads((folder / 'keypoints' / f'{n}_2.json').read_text())['keypoints']
            yield (category, n, np.array(Image.open(path)),
                   np.array(Image.open(folder / 'images' / f'{n}_1.jpg')),
                   np.array(Image.open(folder / 'label_maps' / f'{n}_4.png')), np.array(points, float))


def test_vitonhd_files(hd_root):
    expected = {'train_pairs.txt', 'test_pairs.txt'} | {
        f'{split}/{folder}/{name}{suffix}' for split, names in HD_IDS.items() for name in names
        for folder, suffix in HD_FOLDERS.items()}
    assert _files(hd_root) == expected
    marker = sample_data.read_marker(hd_root)
    assert marker['complete'] and marker['dataset'] == 'vitonhd' and set(marker['files']) == expected
    folder = hd_root / 'train'
    for sub, mode in (('image', 'RGB'), ('cloth', 'RGB'), ('cloth-mask', 'L')):
        with Image.open(folder / sub / '00000_00.jpg') as image:
            assert (image.format, image.mode, image.size) == ('JPEG', mode, (768, 1024)), sub
    with Image.open(folder / 'image-parse-v3' / '00000_00.png') as parse:
        assert (parse.format, parse.mode, parse.size) == ('PNG', 'P', (768, 1024))
        assert len(parse.getpalette()) == 3 * 256


def test_vitonhd_persons_are_the_viton_persons_enlarged(hd_root, sample_root):
    """CIHP ids, the visible neck as torso-skin (10); keypoints exactly 4 times VITON's."""
    for split, name, viton_id, image, parse, pose, cloth, mask in _hd_persons(hd_root):
        folder = sample_root / split
        viton_parse = np.array(Image.open(folder / 'image-parse' / f'{viton_id}_0.png'))
        neck = np.array(Image.open(folder / 'image-parse-new' / f'{viton_id}_0.png')) == cp_dataset.NECK_LABEL
        assert parse.max() <= 19 and (parse == 10).sum() >= 16 * 100, name
        assert (parse[::4, ::4] == np.where(neck, 10, viton_parse)).all(), name
        blocks = parse.reshape(256, 4, 192, 4)
        assert (blocks == blocks[:, :1, :, :1]).all(), name  # enlarged nearest: 4x4 blocks
        viton_image = np.array(Image.open(folder / 'image' / f'{viton_id}_0.jpg')).astype(float)
        small = np.array(Image.fromarray(image).resize((192, 256), Image.Resampling.BILINEAR)).astype(float)
        assert np.abs(small - viton_image).mean() < 4, name
        viton_pose = json.loads((folder / 'pose' / f'{viton_id}_0_keypoints.json').read_text())
        coco = np.reshape(viton_pose['people'][0]['pose_keypoints'], (18, 3))
        body25 = np.reshape(pose['people'][0]['pose_keypoints_2d'], (25, 3))
        assert (body25[cp_dataset.BODY25_TO_COCO18] / (4, 4, 1) == coco).all(), name
        hips = body25[[9, 12]]
        if (hips[:, 2] > 0).all():
            assert np.allclose(body25[8], hips.mean(axis=0)), name
        missing = body25[:, 2] == 0
        assert (body25[missing] == 0).all() and missing.sum() < 25 - 14, name
        person = ndimage.binary_dilation(parse > 0, iterations=8)
        for x, y, _ in body25[~missing]:  # every found point (feet included) on the person
            assert person[int(y), int(x)], (name, x, y)


def test_vitonhd_openpose_json(hd_root):
    for *_, pose, cloth, mask in _hd_persons(hd_root):
        assert pose['version'] == 1.3 and len(pose['people']) == 1
        person = pose['people'][0]
        lengths = {key: len(value) for key, value in person.items()}
        assert lengths == {'person_id': 1, 'pose_keypoints_2d': 75, 'face_keypoints_2d': 210,
                           'hand_left_keypoints_2d': 63, 'hand_right_keypoints_2d': 63,
                           'pose_keypoints_3d': 0, 'face_keypoints_3d': 0,
                           'hand_left_keypoints_3d': 0, 'hand_right_keypoints_3d': 0}
        assert person['person_id'] == [-1]
        assert all(isinstance(v, float) for v in person['pose_keypoints_2d'])
        points = np.reshape(person['pose_keypoints_2d'], (25, 3))
        assert (points[:, 0] < 768).all() and (points[:, 1] < 1024).all()
        assert points[2, 0] < points[1, 0] < points[5, 0]  # right shoulder on the image left


def test_vitonhd_cloth_masks(hd_root):
    for split, name, viton_id, image, parse, pose, cloth, mask in _hd_persons(hd_root):
        garment = mask >= 128
        assert ((mask < 16) | (mask > 240)).mean() > 0.99, name  # 0/255 (JPEG aside)
        assert (sample_data.cloth_mask_like_viton(cloth) == garment).mean() > 0.995, name
        assert 0.1 < garment.mean() < 0.7, name
        assert (cloth[~ndimage.binary_dilation(garment, iterations=8)] > 230).all(), name  # on white


def test_vitonhd_pairs(hd_root):
    ids = {}
    for split, name in (('train', 'train_pairs.txt'), ('test', 'test_pairs.txt')):
        lines = (hd_root / name).read_text().splitlines()
        pairs = [line.split(' ') for line in lines]
        assert all(len(pair) == 2 for pair in pairs), name  # one space
        assert [p for p, _ in pairs] == [f'{n}.jpg' for n in HD_IDS[split]]
        assert sorted(c for _, c in pairs) == [p for p, _ in pairs]  # each garment once
        assert all(p != c for p, c in pairs), name  # unpaired, as the real lists
        assert all((hd_root / split / 'cloth' / c).is_file() for _, c in pairs)
        ids[split] = {p for p, _ in pairs}
    assert not ids['train'] & ids['test']


def test_dresscode_files(dc_root):
    found = _files(dc_root)
    numbers = {}
    for index, category in enumerate(CATEGORIES):
        names = sorted(p.name for p in (dc_root / category / 'images').glob('*_0.jpg'))
        numbers[category] = [name[:6] for name in names]
        assert len(names) == 6 and all(len(name) == 12 and name[:6].isdigit() for name in names), names
        for n in numbers[category]:
            for folder, suffixes in DC_FILES.items():
                assert all(f'{category}/{folder}/{n}{suffix}' in found for suffix in suffixes), (category, n)
        assert sorted(p.name for p in (dc_root / category).iterdir()) == sorted([*DC_LISTS, *DC_FILES])
    assert len({n for ns in numbers.values() for n in ns}) == 18  # distinct across categories
    assert found == set(DC_LISTS) | {f'{c}/{name}' for c in CATEGORIES for name in DC_LISTS} | {
        f'{c}/{folder}/{n}{suffix}' for c in CATEGORIES for n in numbers[c]
        for folder, suffixes in DC_FILES.items() for suffix in suffixes}
    marker = sample_data.read_marker(dc_root)
    assert marker['complete'] and marker['dataset'] == 'dresscode' and set(marker['files']) == found
    n = numbers['dresses'][0]
    for name in (f'{n}_0.jpg', f'{n}_1.jpg'):
        with Image.open(dc_root / 'dresses' / 'images' / name) as image:
            assert (image.format, image.mode, image.size) == ('JPEG', 'RGB', (768, 1024))
    with Image.open(dc_root / 'dresses' / 'label_maps' / f'{n}_4.png') as label_map:
        assert (label_map.format, label_map.mode, label_map.size) == ('PNG', 'P', (768, 1024))


def test_dresscode_keypoints(dc_root):
    for category, n, image, cloth, labels, points in _dc_persons(dc_root):
        assert points.shape == (18, 4), n
        found = points[:, 2] > 0
        assert (points[~found] == [-1, -1, 0, -1]).all(), n
        assert (points[found, 3] == np.arange(found.sum())).all(), n  # a running detection id
        assert found[[1, 2, 5, 8, 11, 9, 12]].all(), n  # neck, shoulders, hips, knees
        assert (points[found, 0] < 384).all() and (points[found, 1] < 512).all(), n
        body = ndimage.binary_dilation(labels > 0, iterations=4)
        for index in np.flatnonzero(found):  # at 384x512: twice is a pixel of the person
            x, y = points[index, :2] * 2
            assert body[int(y), int(x)], (n, sample_data.KEYPOINTS[index])
        for index, labels_there in ((2, (4, 7, 14, 15)), (9, (5, 6, 7, 12, 13)), (13, (6, 9, 10, 12, 13))):
            if found[index]:  # right shoulder, knee and ankle on the garment or limb there
                x, y = (points[index, :2] * 2).astype(int)
                assert set(np.unique(labels[y - 6:y + 7, x - 6:x + 7])) & set(labels_there), (n, index)
        assert points[2, 0] < points[1, 0] < points[5, 0], n


def test_dresscode_wears_the_product(dc_root):
    """Each category's garment label is in its persons' maps, coloured like the product image."""
    garment_labels = {'upper_body': (4,), 'lower_body': (5, 6), 'dresses': (7,)}
    for category, n, image, cloth, labels, points in _dc_persons(dc_root):
        assert labels.max() <= 17, n
        assert {0, 2, 11, 14, 15, 9, 10} <= set(np.unique(labels)), n  # shoes: the whole figure
        worn = np.isin(labels, garment_labels[category])
        assert worn.mean() > 0.02, (category, n)
        if category == 'lower_body':
            assert (labels == 4).any(), n  # with some top
        if category == 'dresses':
            assert not np.isin(labels, (4, 5, 6)).any(), n
        product = sample_data.cloth_mask_like_viton(cloth)
        assert 0.05 < product.mean() < 0.7, n
        assert (cloth[~ndimage.binary_dilation(product, iterations=8)] > 230).all(), n  # on white
        inside = ndimage.binary_erosion(worn, iterations=4)
        product_inside = ndimage.binary_erosion(product, iterations=4)
        difference = np.abs(image[inside].mean(0) - cloth[product_inside].mean(0))
        assert difference.max() < 25, (n, difference)


def test_dresscode_pairs(dc_root):
    roots = {name: [] for name in DC_LISTS}
    ids = {'train': set(), 'test': set()}
    for index, category in enumerate(CATEGORIES):
        lists = {}
        for name in DC_LISTS:
            lines = (dc_root / category / name).read_text().splitlines()
            lists[name] = [line.split('    ') for line in lines]
            assert all(len(pair) == 2 and '\t' not in line for pair, line in zip(lists[name], lines)), name
            roots[name] += [f'{p}\t{c}\t{index}' for p, c in lists[name]]
            assert all((dc_root / category / 'images' / c).is_file() for _, c in lists[name])
        for name in ('train_pairs.txt', 'test_pairs_paired.txt'):
            assert all(c == p.replace('_0.jpg', '_1.jpg') for p, c in lists[name]), name
        paired, unpaired = lists['test_pairs_paired.txt'], lists['test_pairs_unpaired.txt']
        assert [p for p, _ in paired] == [p for p, _ in unpaired]
        assert all(c != p.replace('_0.jpg', '_1.jpg') for p, c in unpaired)
        assert sorted(c for _, c in paired) == sorted(c for _, c in unpaired)  # each garment once
        ids['train'] |= {p for p, _ in lists['train_pairs.txt']}
        ids['test'] |= {p for p, _ in paired}
    for name, lines in roots.items():  # the root lists: all categories, tab-separated, with the index
        assert (dc_root / name).read_text().splitlines() == lines, name
    assert len(ids['train']) == 12 and len(ids['test']) == 6 and not ids['train'] & ids['test']


@pytest.mark.parametrize('dataset', ['vitonhd', 'dresscode'])
def test_new_layouts_same_seed_same_bytes(tmp_path, dataset):
    for name, seed in (('a', 5), ('b', 5), ('c', 6)):
        sample_data.generate(tmp_path / name, n_train=1, n_test=2, seed=seed, dataset=dataset)
    a, b, c = (_digest(tmp_path / name) for name in 'abc')
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a if k.endswith(('.jpg', '.png')))


@pytest.mark.parametrize('dataset, mine', [('vitonhd', 'train/image/mine.jpg'),
                                           ('dresscode', 'lower_body/images/mine.jpg')])
def test_remove_sample_removes_only_its_files_in_every_layout(tmp_path, dataset, mine):
    sample_data.generate(tmp_path, n_train=1, n_test=2, seed=0, dataset=dataset)
    (tmp_path / mine).write_bytes(b'user file')
    (tmp_path / 'notes.txt').write_text('user file')
    assert sample_data.remove_sample(tmp_path) == len(sample_data.planned_files(1, 2, dataset))
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob('*'))
    folder = mine.rsplit('/', 1)[0]
    assert left == sorted(['notes.txt', mine, folder, folder.split('/')[0]])


def test_generate_rejects_unknown_layouts_and_counts(tmp_path):
    with pytest.raises(ValueError, match='dataset'):
        sample_data.generate(tmp_path, n_train=2, n_test=2, dataset='viton-hd')
    with pytest.raises(ValueError, match='n_train'):
        sample_data.generate(tmp_path, n_train=50001, n_test=2, dataset='vitonhd')  # 5-digit ids
    with pytest.raises(ValueError, match='n_test'):
        sample_data.generate(tmp_path, n_train=2, n_test=1, dataset='dresscode')
    assert not any(tmp_path.iterdir())
