"""prepare_data.py: a user's photos (other sizes, colour-coded parse, BODY_25 pose, no masks)
come back as the sample dataset's own items; bad inputs are reported and nothing is written."""
import argparse
import json
import os

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

import cp_dataset
import prepare_data

# The 7 BODY_25 points that are not COCO-18 (MidHip and the feet) sit at these indices.
BODY25_ONLY = [8, 19, 20, 21, 22, 23, 24]


def read_pairs(root):
    return cp_dataset.read_pairs(root / 'test_pairs.txt')


def upscale_points(points, factor):
    """Keypoints of an image scaled by `factor` (pixel centres onto pixel centres); (0,0,0) kept."""
    scaled = points.copy()
    present = points.any(axis=1)
    scaled[present, :2] = (points[present, :2] + 0.5) * factor - 0.5
    return scaled


def as_body25(points):
    """[18, 3] COCO-18 -> [25, 3] BODY_25 (MidHip between the hips, feet missing)."""
    body25 = np.zeros((25, 3))
    body25[[i for i in range(25) if i not in BODY25_ONLY]] = points
    body25[8] = (points[8] + points[11]) / 2
    return body25


def make_user_photos(sample_root, folder, factor=2):
    """The sample's test pairs as a user would have them: photos `factor`x larger (pixels
    repeated, so that shrinking them back is exact up to JPEG loss), named
    person_<i>.jpg / cloth_<i>.png, RGB LIP-coloured parses, BODY_25 pose_keypoints_2d, no masks.
    Returns the sample's pairs in the order of the written pairs.txt."""
    test = sample_root / 'test'
    for sub in ('persons', 'cloths', 'parse', 'pose'):
        (folder / sub).mkdir(parents=True)
    pairs = read_pairs(sample_root)
    palette = np.array(cp_dataset.LIP_PALETTE, np.uint8)
    lines = []
    for i, (person, cloth) in enumerate(pairs):
        image = Image.open(test / 'image' / person)
        size = (image.width * factor, image.height * factor)
        image.resize(size, Image.NEAREST).save(folder / 'persons' / f'person_{i}.jpg', quality=98)
        labels = np.array(Image.open(test / 'image-parse' / person.replace('.jpg', '.png')))
        Image.fromarray(palette[labels]).resize(size, Image.NEAREST).save(folder / 'parse' / f'person_{i}.png')
        points = upscale_points(cp_dataset.read_pose(test / 'pose' / person.replace('.jpg', '_keypoints.json')), factor)
        people = [{'pose_keypoints_2d': as_body25(points).ravel().tolist()}]
        (folder / 'pose' / f'person_{i}_keypoints.json').write_text(json.dumps({'version': 1.3, 'people': people}))
        Image.open(test / 'cloth' / cloth).resize(size, Image.NEAREST).save(folder / 'cloths' / f'cloth_{i}.png')
        lines.append(f'person_{i}.jpg cloth_{i}.png\n')
    (folder / 'pairs.txt').write_text(''.join(lines))
    return pairs


def prepare_argv(folder, out, *extra):
    return ['--persons', str(folder / 'persons'), '--cloths', str(folder / 'cloths'),
            '--parse', str(folder / 'parse'), '--pose', str(folder / 'pose'), '--out', str(out), *extra]


def pixels(path):
    return np.asarray(Image.open(path).convert('RGB'), np.float64)


def test_round_trip_gives_back_the_sample_items(sample_root, tmp_path, capsys):
    pairs = make_user_photos(sample_root, tmp_path / 'mine')
    out = tmp_path / 'data' / 'mine'
    assert prepare_data.main(prepare_argv(tmp_path / 'mine', out, '--pairs', str(tmp_path / 'mine' / 'pairs.txt'))) == 0
    assert 'Dataset check passed' in capsys.readouterr().out

    original, result = sample_root / 'test', out / 'test'
    written = read_pairs(out)
    assert written == [(f'{i:06d}_0.jpg', f'{i:06d}_1.jpg') for i in range(len(pairs))]
    name_map = dict(line.split(maxsplit=1) for line in (out / 'name_map.txt').read_text().splitlines())
    for i, ((person, cloth), (new_person, new_cloth)) in enumerate(zip(pairs, written)):
        assert (name_map[new_person], name_map[new_cloth]) == (f'person_{i}.jpg', f'cloth_{i}.png')
        for folder, old, new in (('image', person, new_person), ('cloth', cloth, new_cloth)):
            assert np.abs(pixels(original / folder / old) - pixels(result / folder / new)).mean() < 4

        old_mask = np.array(Image.open(original / 'cloth-mask' / cloth).convert('L')) >= 128
        new_mask = np.array(Image.open(result / 'cloth-mask' / new_cloth)) >= 128
        assert (old_mask & new_mask).sum() / (old_mask | new_mask).sum() >= 0.98

        old_points = cp_dataset.read_pose(original / 'pose' / person.replace('.jpg', '_keypoints.json'))
        with open(result / 'pose' / new_person.replace('.jpg', '_keypoints.json')) as f:
            pose = json.load(f)
        assert set(pose['people'][0]) == {'face_keypoints', 'pose_keypoints', 'hand_right_keypoints',
                                          'hand_left_keypoints'}
        new_points = np.reshape(pose['people'][0]['pose_keypoints'], (18, 3))
        assert np.abs(new_points - old_points).max() <= 1
        assert (new_points[~old_points.any(axis=1)] == 0).all()

        old_labels = np.array(Image.open(original / 'image-parse' / person.replace('.jpg', '.png')))
        parse = Image.open(result / 'image-parse' / new_person.replace('.jpg', '.png'))
        sample_palette = Image.open(original / 'image-parse' / person.replace('.jpg', '.png')).getpalette()
        assert parse.mode == 'P' and parse.getpalette()[:60] == sample_palette[:60]
        new_labels = np.array(parse)
        for label in np.unique(old_labels):
            inside = ndimage.binary_erosion(old_labels == label, iterations=2)
            assert (new_labels[inside] == label).all(), f'label {label} of {person} moved'

    split = dict(dataroot=str(out), datamode='test', data_list='test_pairs.txt', stage='GMM',
                 fine_height=256, fine_width=192, radius=5)
    assert cp_dataset.check_dataset(argparse.Namespace(**split)) == []
    item = cp_dataset.CPDataset(**split)[0]
    assert item['agnostic'].shape == (22, 256, 192) and item['cloth_mask'].sum() > 0


def test_other_aspect_ratios_are_padded_and_keypoints_follow(sample_root, tmp_path):
    """Person 2x with 192 px added on the right (576x512): scale 1/3, centred vertically;
    cloth 2x with 256 px added below (384x768): scale 1/3, centred horizontally on white."""
    make_user_photos(sample_root, tmp_path / 'mine')
    mine = tmp_path / 'mine'
    person = Image.open(mine / 'persons' / 'person_0.jpg')
    background = tuple(int(v) for v in np.median(np.asarray(person)[:, -1], axis=0))
    wide = Image.new('RGB', (576, 512), background)
    wide.paste(person)
    wide.save(mine / 'persons' / 'person_0.jpg', quality=98)
    parse = Image.open(mine / 'parse' / 'person_0.png')
    wide_parse = Image.new('RGB', (576, 512))
    wide_parse.paste(parse)
    wide_parse.save(mine / 'parse' / 'person_0.png')
    cloth = Image.open(mine / 'cloths' / 'cloth_0.png')
    tall = Image.new('RGB', (384, 768), (255, 255, 255))
    tall.paste(cloth)
    tall.save(mine / 'cloths' / 'cloth_0.png')
    out = tmp_path / 'out'
    assert prepare_data.main(prepare_argv(mine, out, '--pairs', str(mine / 'pairs.txt'))) == 0

    result = out / 'test'
    top = (256 - 171) // 2  # 512 / 3 = 170.67 -> 171 rows, centred
    padding = pixels(result / 'image' / '000000_0.jpg')[np.r_[:top - 1, top + 172:256]]
    assert np.abs(padding - background).mean() < 1  # the photo's border colour
    labels = np.array(Image.open(result / 'image-parse' / '000000_0.png'))
    assert (labels[:top] == 0).all() and (labels[top + 171:] == 0).all() and labels[top:top + 171].any()
    with open(mine / 'pose' / 'person_0_keypoints.json') as f:
        body25 = np.reshape(json.load(f)['people'][0]['pose_keypoints_2d'], (25, 3))
    points = body25[cp_dataset.BODY25_TO_COCO18]
    with open(result / 'pose' / '000000_0_keypoints.json') as f:
        new_points = np.reshape(json.load(f)['people'][0]['pose_keypoints'], (18, 3))
    present = points.any(axis=1)
    expected_x = (points[present, 0] + 0.5) / 3 - 0.5
    expected_y = (points[present, 1] + 0.5) * 171 / 512 - 0.5 + top
    assert np.abs(new_points[present, 0] - expected_x).max() < 0.01
    assert np.abs(new_points[present, 1] - expected_y).max() < 0.01

    cloth_out = pixels(result / 'cloth' / '000000_1.jpg')
    mask = np.array(Image.open(result / 'cloth-mask' / '000000_1.jpg'))
    assert (cloth_out[:, :30] > 250).all() and (mask[:, :30] < 128).all()
    assert (cloth_out[:, -30:] > 250).all() and mask[:, 32:160].any()


def test_given_masks_and_label_png_parses_are_used_as_they_are(sample_root, tmp_path):
    pairs = make_user_photos(sample_root, tmp_path / 'mine')
    mine, test = tmp_path / 'mine', sample_root / 'test'
    (mine / 'masks').mkdir()
    for i, (person, cloth) in enumerate(pairs):
        original = Image.open(test / 'image-parse' / person.replace('.jpg', '.png'))
        original.resize((384, 512), Image.NEAREST).save(mine / 'parse' / f'person_{i}.png')  # mode P
        mask = Image.open(test / 'cloth-mask' / cloth).point(lambda v: 0 if v < 128 else 255)
        mask.resize((384, 512), Image.NEAREST).save(mine / 'masks' / f'cloth_{i}.png')
    out = tmp_path / 'out'
    assert prepare_data.main(prepare_argv(mine, out, '--cloth_masks', str(mine / 'masks'),
                                          '--pairs', str(mine / 'pairs.txt'))) == 0
    for i, (person, cloth) in enumerate(pairs):
        labels = np.array(Image.open(out / 'test' / 'image-parse' / f'{i:06d}_0.png'))
        assert (labels == np.array(Image.open(test / 'image-parse' / person.replace('.jpg', '.png')))).all()
        mask = np.array(Image.open(out / 'test' / 'cloth-mask' / f'{i:06d}_1.jpg')) >= 128
        assert (mask == (np.array(Image.open(test / 'cloth-mask' / cloth)) >= 128)).mean() > 0.999


def test_default_pairs_cycle_the_shorter_list_and_copy_reused_items(sample_root, tmp_path, capsys):
    make_user_photos(sample_root, tmp_path / 'mine')
    mine = tmp_path / 'mine'
    os.remove(mine / 'cloths' / 'cloth_1.png')
    out = tmp_path / 'out'
    assert prepare_data.main(prepare_argv(mine, out)) == 0
    assert f'--dataroot {out}' in capsys.readouterr().out
    assert read_pairs(out) == [('000000_0.jpg', '000000_1.jpg'), ('000001_0.jpg', '000001_1.jpg')]
    assert (out / 'name_map.txt').read_text().splitlines() == [
        '000000_0.jpg person_0.jpg', '000000_1.jpg cloth_0.png',
        '000001_0.jpg person_1.jpg', '000001_1.jpg cloth_0.png']
    same = [pixels(out / 'test' / 'cloth' / name) for name in ('000000_1.jpg', '000001_1.jpg')]
    assert (same[0] == same[1]).all()


def test_refuses_to_overwrite_unless_forced_and_keeps_the_old_out(sample_root, tmp_path, capsys):
    make_user_photos(sample_root, tmp_path / 'mine')
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'keep.txt').write_text('mine')
    assert prepare_data.main(prepare_argv(tmp_path / 'mine', out)) == 1
    assert '--force' in capsys.readouterr().err and (out / 'keep.txt').exists()
    assert prepare_data.main(prepare_argv(tmp_path / 'mine', out, '--force')) == 0
    printed = capsys.readouterr().out
    assert sorted(os.listdir(out)) == ['name_map.txt', 'test', 'test_pairs.txt']
    assert sorted(os.listdir(tmp_path)) == ['mine', 'out', 'out.old']
    assert f'aside to {out}.old' in printed  # the name printed is where the old contents are
    assert (tmp_path / 'out.old' / 'keep.txt').read_text() == 'mine'
    # out.old is taken: a further --force is refused and changes nothing
    assert prepare_data.main(prepare_argv(tmp_path / 'mine', out, '--force')) == 1
    assert f'{out}.old exists' in capsys.readouterr().err
    assert (tmp_path / 'out.old' / 'keep.txt').read_text() == 'mine'
    assert sorted(os.listdir(out)) == ['name_map.txt', 'test', 'test_pairs.txt']


def test_help_names_the_flags_with_underscores(capsys):
    with pytest.raises(SystemExit):
        prepare_data.parse_options(['--help'])
    out = capsys.readouterr().out
    for flag in ('cloth_masks', 'mask_threshold', 'person_index'):
        assert f'--{flag}' in out and f'--{flag.replace("_", "-")}' in out
    assert '<out>.old' in out


def test_several_people_need_a_person_index(sample_root, tmp_path, capsys):
    make_user_photos(sample_root, tmp_path / 'mine')
    pose_file = tmp_path / 'mine' / 'pose' / 'person_0_keypoints.json'
    pose = json.loads(pose_file.read_text())
    pose_file.write_text(json.dumps({'people': [{'pose_keypoints_2d': [0] * 75}] + pose['people']}))
    out = tmp_path / 'out'
    assert prepare_data.main(prepare_argv(tmp_path / 'mine', out)) == 1
    err = capsys.readouterr().err
    assert '2 persons' in err and '--person_index' in err and not out.exists()
    assert prepare_data.main(prepare_argv(tmp_path / 'mine', out, '--person-index', '1')) == 0
    with open(out / 'test' / 'pose' / '000000_0_keypoints.json') as f:
        assert any(json.load(f)['people'][0]['pose_keypoints'])


def test_schp_colours_are_decoded_too():
    labels = np.arange(20, dtype=np.uint8).reshape(4, 5)
    colours = np.array(prepare_data.PALETTES['PASCAL/SCHP'], np.uint8)[labels]
    assert (prepare_data.decode_colours(colours, 'x.png') == labels).all()


def _unreadable_photo(mine):
    (mine / 'persons' / 'person_1.jpg').write_bytes(b'not an image')
    return 'person_1.jpg: cannot read image'


def _unknown_colours(mine):
    parse = np.array(Image.open(mine / 'parse' / 'person_0.png'))
    parse[:10, :10] = (1, 2, 3)
    Image.fromarray(parse).save(mine / 'parse' / 'person_0.png')
    return 'not in the LIP palette, e.g. (1, 2, 3)'


def _no_people(mine):
    (mine / 'pose' / 'person_1_keypoints.json').write_text('{"version": 1.3, "people": []}')
    return 'person_1_keypoints.json: no person in the pose file'


def _missing_parse(mine):
    os.remove(mine / 'parse' / 'person_0.png')
    return 'person_0.jpg: no parse (looked for person_0.png'


@pytest.mark.parametrize('breaks', [_unreadable_photo, _unknown_colours, _no_people, _missing_parse])
def test_bad_input_is_reported_and_nothing_written(sample_root, tmp_path, capsys, breaks):
    mine = tmp_path / 'mine'
    make_user_photos(sample_root, mine)
    message = breaks(mine)
    out = tmp_path / 'data' / 'mine'
    (tmp_path / 'data').mkdir()
    assert prepare_data.main(prepare_argv(mine, out)) == 1
    err = capsys.readouterr().err
    assert '1 problem found; nothing was written' in err and message in err
    assert os.listdir(tmp_path / 'data') == []  # neither --out nor a temporary folder


def test_all_problems_are_collected(sample_root, tmp_path, capsys):
    mine = tmp_path / 'mine'
    make_user_photos(sample_root, mine)
    _no_people(mine)
    _missing_parse(mine)
    assert prepare_data.main(prepare_argv(mine, tmp_path / 'out')) == 1
    assert '2 problems found' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def _neck_gap_person(folder):
    """One 192x256 person on a light grey backdrop whose parse leaves the neck, the legs and a
    hand at the side unlabelled (0), as LIP parsers do; returns (neck, legs, hand) boxes."""
    for sub in ('persons', 'cloths', 'parse', 'pose'):
        (folder / sub).mkdir(parents=True)
    image = np.full((256, 192, 3), 226, np.uint8)
    labels = np.zeros((256, 192), np.uint8)
    skin, shirt = (224, 178, 146), (40, 60, 160)
    yy, xx = np.mgrid[:256, :192]
    head = ((xx - 96) / 18) ** 2 + ((yy - 50) / 22) ** 2 <= 1
    image[head], labels[head] = skin, 13
    neck, legs, hand = np.s_[68:88, 86:106], np.s_[170:250, 70:122], np.s_[100:108, 133:140]
    for box in (neck, legs, hand):
        image[box] = skin
    image[84:170, 60:133], labels[84:170, 60:133] = shirt, 5
    Image.fromarray(image).save(folder / 'persons' / 'me.png')
    Image.fromarray(labels).save(folder / 'parse' / 'me.png')  # mode L label ids
    points = np.zeros((18, 3))
    points[[0, 1, 2, 5, 8, 11]] = [(96, 55, 0.9), (96, 80, 0.9), (66, 90, 0.9), (126, 90, 0.9),
                                   (80, 165, 0.9), (112, 165, 0.9)]
    (folder / 'pose' / 'me_keypoints.json').write_text(
        json.dumps({'people': [{'pose_keypoints': points.ravel().tolist()}]}))
    cloth = np.full((256, 192, 3), 255, np.uint8)
    cloth[40:220, 40:152] = shirt
    Image.fromarray(cloth).save(folder / 'cloths' / 'shirt.png')
    return neck, legs, hand


def test_cpvton_plus_adds_the_neck_label_and_the_body_mask(tmp_path, capsys):
    neck, legs, hand = _neck_gap_person(tmp_path / 'mine')
    out = tmp_path / 'out'
    assert prepare_data.main(prepare_argv(tmp_path / 'mine', out, '--variant', 'cpvton+')) == 0
    printed = capsys.readouterr().out
    assert 'Dataset check passed' in printed and printed.count('--variant cpvton+') == 3
    split = out / 'test'
    labels = np.array(Image.open(split / 'image-parse' / '000000_0.png'))
    with Image.open(split / 'image-parse-new' / '000000_0.png') as new, \
            Image.open(split / 'image-mask' / '000000_0.png') as mask:
        assert (new.mode, new.size, mask.mode, mask.size) == ('L', (192, 256), 'L', (192, 256))
        new, mask = np.array(new), np.array(mask)
    assert (new[74:84, 88:104] == cp_dataset.NECK_LABEL).all()  # the neck below the chin, edges aside
    assert (new == cp_dataset.NECK_LABEL).sum() <= 20 * 22
    assert (new[legs] == 0).all() and (new[hand] == 0).all()  # the lower half; a smaller region
    unchanged = new != cp_dataset.NECK_LABEL
    assert (new[unchanged] == labels[unchanged]).all() and (labels[~unchanged] == 0).all()
    assert set(np.unique(mask)) == {0, 255}
    body = mask > 0
    assert body[labels > 0].all() and body[neck].all() and body[legs].all() and body[hand].all()
    assert not body[:20].any() and not body[:, :40].any()  # the backdrop
    assert cp_dataset.check_dataset(dataroot=str(out), datamode='test', data_list='test_pairs.txt',
                                    variant='cpvton+') == []


def test_cpvton_plus_body_mask_of_the_sample_persons(sample_root, tmp_path):
    mine, out = tmp_path / 'mine', tmp_path / 'out'
    pairs = make_user_photos(sample_root, mine)
    assert prepare_data.main(prepare_argv(mine, out, '--pairs', str(mine / 'pairs.txt'), '--variant', 'cpvton+')) == 0
    for i, (person, _) in enumerate(pairs):
        expected = np.array(Image.open(sample_root / 'test' / 'image-mask' / f'{person[:-4]}.png')) > 0
        body = np.array(Image.open(out / 'test' / 'image-mask' / f'{i:06d}_0.png')) > 0
        assert body[expected].all() and (body & expected).sum() / (body | expected).sum() > 0.93


def test_default_variant_writes_no_cpvton_plus_folders(tmp_path, capsys):
    _neck_gap_person(tmp_path / 'mine')
    out = tmp_path / 'out'
    assert prepare_data.main(prepare_argv(tmp_path / 'mine', out)) == 0
    assert '--variant' not in capsys.readouterr().out
    assert sorted(os.listdir(out / 'test')) == sorted(cp_dataset.INPUT_FOLDERS)


def test_a_pairs_file_that_is_not_text_is_reported(sample_root, tmp_path, capsys):
    make_user_photos(sample_root, tmp_path / 'mine')
    (tmp_path / 'bad.txt').write_bytes(b'person_0.jpg cloth_0.png\n\xff\xfe garbage\n')
    out = tmp_path / 'out'
    assert prepare_data.main(prepare_argv(tmp_path / 'mine', out, '--pairs', str(tmp_path / 'bad.txt'))) == 1
    err = capsys.readouterr().err
    assert f'{tmp_path / "bad.txt"}: not UTF-8 text' in err and 'nothing was written' in err
    assert not out.exists()
