"""VITON-HD and Dress Code read in place: hand-made files whose CP-VTON inputs the reference
conventions fix (keypoint frames and orders, label sets per dataset and category, resizing)."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

import cp_dataset
import layouts
from cp_dataset import CPDataset, DatasetError

FULL = (768, 1024)  # both datasets' image size (width, height)
PERSON_RGB = (30, 60, 200)
# Label blocks of the hand-made parses: (label, top, left) of 128x128 blocks at full size, i.e.
# 32x32 blocks at 256x192.
BLOCK = 128


def _parse(blocks, palette=True):
    labels = np.zeros(FULL[::-1], np.uint8)
    for label, top, left in blocks:
        labels[top:top + BLOCK, left:left + BLOCK] = label
    image = Image.fromarray(labels, 'L')
    if palette:  # both datasets ship P-mode PNGs
        image = image.convert('P')
        image.putpalette([v for i in range(256) for v in (i * 7 % 256, i * 13 % 256, i * 29 % 256)])
    return image


def _garment_image():
    """A red garment on white, its mask the central block."""
    cloth = np.full(FULL[::-1] + (3,), 255, np.uint8)
    cloth[256:768, 128:640] = (200, 20, 20)
    return Image.fromarray(cloth)


def _write_vitonhd(root, blocks, body25):
    """One VITON-HD person 00001_00 (and a second, 00002_00, for an unpaired line)."""
    for split in ('train', 'test'):
        for person in ('00001_00', '00002_00'):
            folder = root / split
            for sub in ('image', 'cloth', 'cloth-mask', 'image-parse-v3', 'openpose_json'):
                (folder / sub).mkdir(parents=True, exist_ok=True)
            Image.new('RGB', FULL, PERSON_RGB).save(folder / 'image' / f'{person}.jpg')
            _garment_image().save(folder / 'cloth' / f'{person}.jpg')
            mask = Image.new('L', FULL, 0)
            mask.paste(255, (128, 256, 640, 768))
            mask.save(folder / 'cloth-mask' / f'{person}.jpg')
            _parse(blocks).save(folder / 'image-parse-v3' / f'{person}.png')
            keypoints = {'version': 1.3, 'people': [{'person_id': [-1], 'pose_keypoints_2d': body25,
                                                     'face_keypoints_2d': [0.0] * 210}]}
            (folder / 'openpose_json' / f'{person}_keypoints.json').write_text(json.dumps(keypoints))
    for split in ('train', 'test'):
        (root / f'{split}_pairs.txt').write_text('00001_00.jpg 00002_00.jpg\n')


def _write_dresscode(root, category, blocks, keypoints, masks=False):
    folder = root / category
    for sub in ('images', 'label_maps', 'keypoints'):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    Image.new('RGB', FULL, PERSON_RGB).save(folder / 'images' / '048392_0.jpg')
    _garment_image().save(folder / 'images' / '048392_1.jpg')
    _parse(blocks).save(folder / 'label_maps' / '048392_4.png')
    (folder / 'keypoints' / '048392_2.json').write_text(json.dumps({'keypoints': keypoints}))
    if masks:
        (folder / 'masks').mkdir()
        mask = Image.new('L', FULL, 0)
        mask.paste(255, (0, 0, 384, 512))  # not the garment's shape: shows where the mask came from
        mask.save(folder / 'masks' / '048392_1.png')
    (folder / 'test_pairs_paired.txt').write_text('048392_0.jpg    048392_1.jpg\n')


def _item(root, dataset, category=None, datamode='test', data_list=None, **sizes):
    data_list = data_list or layouts.default_list(dataset, datamode)
    return CPDataset(dataroot=str(root), datamode=datamode, data_list=data_list, dataset=dataset,
                     category=category, **sizes)


def _block_value(tensor, top, left, scale=4):
    """The values of a [C, H, W] tensor at the centre of a full-size block, at the read size."""
    return tensor[:, (top + BLOCK // 2) // scale, (left + BLOCK // 2) // scale]


# --------------------------------------------------------------------------------------------
# VITON-HD

def _body25(points):
    """{BODY_25 index: (x, y)} -> the 75 values of pose_keypoints_2d (others missing: 0, 0, 0)."""
    values = [0.0] * 75
    for index, (x, y) in points.items():
        values[3 * index:3 * index + 3] = [x, y, 0.9]
    return values


VITONHD_BLOCKS = [(10, 0, 0), (5, 0, 128), (13, 0, 256), (2, 128, 0), (9, 128, 128)]


@pytest.fixture(scope='module')
def vitonhd_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('vitonhd')
    # BODY_25 2 (right shoulder) and 12 (left hip, COCO-18 11); 8 (mid hip) has no COCO-18 point.
    _write_vitonhd(root, VITONHD_BLOCKS, _body25({2: (400, 300), 12: (600, 800), 8: (500, 700)}))
    return root


def test_vitonhd_keypoints_body25_to_coco18_and_scaled(vitonhd_root):
    item = _item(vitonhd_root, 'vitonhd')[0]
    pose = item['agnostic'][4:]  # 18 COCO-18 channels at 256x192: x and y divided by 4
    assert pose.shape == (18, 256, 192)
    drawn = {int(c) for c in torch.nonzero((pose == 1).flatten(1).any(1))}
    assert drawn == {2, 11}  # BODY_25 12 (left hip) is COCO-18 11; mid hip dropped
    assert pose[2, 75, 100] == 1 and pose[11, 200, 150] == 1
    # radius 5 at 256 high: rows 70-80 inclusive
    assert pose[2, 70, 100] == 1 and pose[2, 81, 100] == -1 and pose[2, 69, 100] == -1


def test_vitonhd_labels_cihp_torso_skin_is_body_not_garment(vitonhd_root):
    item = _item(vitonhd_root, 'vitonhd')[0]
    person = torch.tensor(PERSON_RGB, dtype=torch.float32) / 127.5 - 1
    garment = _block_value(item['parse_cloth'], 0, 128)
    torso_skin = _block_value(item['parse_cloth'], 0, 0)
    assert torch.allclose(garment, person, atol=0.04)  # upper clothes (5) kept
    assert torch.equal(torso_skin, torch.ones(3))  # CIHP 10 (torso skin): white, not garment
    assert torch.equal(_block_value(item['parse_cloth'], 128, 128), torch.ones(3))  # pants: not garment
    assert torch.allclose(_block_value(item['head'], 0, 256), person, atol=0.04)  # face (13) is head
    assert torch.allclose(_block_value(item['head'], 128, 0), person, atol=0.04)  # hair (2) is head
    assert torch.equal(_block_value(item['head'], 0, 0), -torch.ones(3))
    assert _block_value(item['shape'], 0, 0) > 0.9  # torso skin is body


def test_vitonhd_images_resized_and_parse_nearest(vitonhd_root):
    dataset = _item(vitonhd_root, 'vitonhd')
    raw = dataset.read_files(0)
    assert raw['image'].size == (192, 256) and raw['cloth_mask'].size == (192, 256)
    assert set(np.unique(raw['parse'])) == {0, 2, 5, 9, 10, 13}  # nearest: no new labels


def test_vitonhd_training_is_paired(vitonhd_root):
    train = _item(vitonhd_root, 'vitonhd', datamode='train')
    test = _item(vitonhd_root, 'vitonhd', datamode='test')
    assert (train.im_names, train.c_names) == (['00001_00.jpg'], ['00001_00.jpg'])  # cloth/<person name>
    assert test.c_names == ['00002_00.jpg']  # the unpaired test list as listed
    assert train.paths(0)['cloth'].endswith('train/cloth/00001_00.jpg')


def test_vitonhd_same_clothes_pairs(vitonhd_root):
    assert cp_dataset.same_id_pairs(vitonhd_root / 'test', 'vitonhd') == [
        ('00001_00.jpg', '00001_00.jpg'), ('00002_00.jpg', '00002_00.jpg')]


def test_vitonhd_at_512x384_scales_keypoints_and_radius(vitonhd_root):
    item = _item(vitonhd_root, 'vitonhd', fine_height=512, fine_width=384)[0]
    pose = item['agnostic'][4:]
    assert pose.shape == (18, 512, 384)
    # shoulder (400, 300) / 2 = (200, 150); radius 10 at 512 high: rows 140-160
    assert pose[2, 150, 200] == 1 and pose[2, 140, 200] == 1 and pose[2, 161, 200] == -1


def test_vitonhd_older_folder_names(tmp_path):
    _write_vitonhd(tmp_path, VITONHD_BLOCKS, _body25({2: (400, 300)}))
    for split in ('train', 'test'):
        (tmp_path / split / 'image-parse-v3').rename(tmp_path / split / 'image-parse')
        (tmp_path / split / 'openpose_json').rename(tmp_path / split / 'openpose-json')
    item = _item(tmp_path, 'vitonhd')[0]
    assert item['agnostic'][4 + 2, 75, 100] == 1


def test_variant_plus_is_viton_only(vitonhd_root):
    with pytest.raises(DatasetError, match='VITON only'):
        CPDataset(dataroot=str(vitonhd_root), datamode='test', data_list='test_pairs.txt',
                  dataset='vitonhd', variant='cpvton+')


# --------------------------------------------------------------------------------------------
# Dress Code

# ATR ids: 4 upper clothes, 5 skirt, 6 pants, 7 dress, 11 face, 2 hair, 13 right leg, 12 left leg
DRESSCODE_BLOCKS = [(4, 0, 0), (5, 0, 128), (6, 0, 256), (7, 0, 384), (11, 128, 0), (2, 128, 128),
                    (13, 128, 256), (12, 128, 384)]
GARMENT_BLOCKS = {4: (0, 0), 5: (0, 128), 6: (0, 256), 7: (0, 384)}


def _dresscode_keypoints():
    """18 COCO-18 entries at 384x512: right shoulder (2) at (100, 200), the rest missing."""
    points, detected = [], 0
    for index in range(18):
        if index in (2, 9):
            points.append([100.0, 200.0, 0.8, detected] if index == 2 else [150.0, 400.0, 0.7, detected])
            detected += 1
        else:
            points.append([-1, -1, 0, -1])
    return points


@pytest.fixture(scope='module')
def dresscode_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('dresscode')
    for category in layouts.CATEGORIES:
        _write_dresscode(root, category, DRESSCODE_BLOCKS, _dresscode_keypoints())
    return root


@pytest.mark.parametrize('category, garments', [('upper_body', {4}), ('lower_body', {5, 6}), ('dresses', {7})])
def test_dresscode_garment_region_per_category(dresscode_root, category, garments):
    item = _item(dresscode_root, 'dresscode', category, data_list='test_pairs_paired.txt')[0]
    person = torch.tensor(PERSON_RGB, dtype=torch.float32) / 127.5 - 1
    for label, (top, left) in GARMENT_BLOCKS.items():
        value = _block_value(item['parse_cloth'], top, left)
        if label in garments:
            assert torch.allclose(value, person, atol=0.04), (category, label)
        else:
            assert torch.equal(value, torch.ones(3)), (category, label)


def test_dresscode_head_is_atr_head(dresscode_root):
    item = _item(dresscode_root, 'dresscode', 'dresses', data_list='test_pairs_paired.txt')[0]
    person = torch.tensor(PERSON_RGB, dtype=torch.float32) / 127.5 - 1
    assert torch.allclose(_block_value(item['head'], 128, 0), person, atol=0.04)  # ATR 11 face
    assert torch.allclose(_block_value(item['head'], 128, 128), person, atol=0.04)  # ATR 2 hair
    assert torch.equal(_block_value(item['head'], 128, 256), -torch.ones(3))  # ATR 13 is a leg (LIP: face)


def test_dresscode_keypoints_from_384x512(dresscode_root):
    item = _item(dresscode_root, 'dresscode', 'upper_body', data_list='test_pairs_paired.txt')[0]
    pose = item['agnostic'][4:]
    drawn = {int(c) for c in torch.nonzero((pose == 1).flatten(1).any(1))}
    assert drawn == {2, 9}  # the missing [-1, -1, 0, -1] entries draw nothing
    assert pose[2, 100, 50] == 1  # (100, 200) at 384x512 -> (50, 100) at 192x256
    assert pose[9, 200, 75] == 1


def test_dresscode_cloth_masks_made_once_and_cached(tmp_path, capsys):
    _write_dresscode(tmp_path, 'lower_body', DRESSCODE_BLOCKS, _dresscode_keypoints())
    dataset = _item(tmp_path, 'dresscode', 'lower_body', data_list='test_pairs_paired.txt')
    cached = tmp_path / 'lower_body' / 'cloth-mask' / '048392_1.png'
    assert cached.is_file() and 'making 1 cloth masks' in capsys.readouterr().err
    mask = np.array(Image.open(cached)) > 0
    assert mask.shape == (1024, 768) and mask[512, 384] and not mask[100, 100]
    assert 512 * 512 - 4 <= mask.sum() <= 512 * 512  # the red garment block (the 3x3 median rounds its corners)
    assert dataset[0]['cloth_mask'][0, 128, 96] == 1
    _item(tmp_path, 'dresscode', 'lower_body', data_list='test_pairs_paired.txt')
    assert 'making' not in capsys.readouterr().err  # cached: not made again


def test_dresscode_masks_folder_used_where_present(tmp_path):
    _write_dresscode(tmp_path, 'upper_body', DRESSCODE_BLOCKS, _dresscode_keypoints(), masks=True)
    item = _item(tmp_path, 'dresscode', 'upper_body', data_list='test_pairs_paired.txt')[0]
    assert not (tmp_path / 'upper_body' / 'cloth-mask').exists()
    assert item['cloth_mask'][0, 10, 10] == 1 and item['cloth_mask'][0, 200, 150] == 0  # masks/'s block


def test_dresscode_needs_a_category(dresscode_root):
    with pytest.raises(DatasetError, match='--category'):
        _item(dresscode_root, 'dresscode', None, data_list='test_pairs_paired.txt')


def test_dresscode_checker_names_bad_files(tmp_path, capsys):
    _write_dresscode(tmp_path, 'dresses', DRESSCODE_BLOCKS, _dresscode_keypoints())
    folder = tmp_path / 'dresses'
    (folder / 'keypoints' / '048392_2.json').write_text('{"keypoints": [[1, 2]]}')
    _parse([(18, 0, 0)]).save(folder / 'label_maps' / '048392_4.png')  # 18: not an ATR id
    status = cp_dataset.main(['--check', '--dataset', 'dresscode', '--category', 'dresses', '--dataroot',
                              str(tmp_path), '--datamode', 'test', '--data_list', 'test_pairs_paired.txt'])
    out = capsys.readouterr().out
    assert status == 1
    assert '048392_2.json: keypoints has shape (1, 2)' in out
    assert '048392_4.png: parse label 18 found, the ids are 0-17' in out


def test_dresscode_unreadable_garment_named_when_its_mask_is_made(tmp_path):
    _write_dresscode(tmp_path, 'dresses', DRESSCODE_BLOCKS, _dresscode_keypoints())
    garment = tmp_path / 'dresses' / 'images' / '048392_1.jpg'
    garment.write_bytes(b'not a jpeg')
    with pytest.raises(DatasetError, match='048392_1.jpg: cannot read image .*its cloth mask .* cannot be made'):
        _item(tmp_path, 'dresscode', 'dresses', data_list='test_pairs_paired.txt')
    problems = cp_dataset.check_dataset(dataroot=str(tmp_path), datamode='test', data_list='test_pairs_paired.txt',
                                        dataset='dresscode', category='dresses')
    assert any('cannot be made' in p for p in problems)
    assert not list((tmp_path / 'dresses' / 'cloth-mask').iterdir())  # nothing half-written
