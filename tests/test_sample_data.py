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
