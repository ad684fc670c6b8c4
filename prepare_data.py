"""Turn your own photos into a CP-VTON test split that test.py and the step scripts can read.

    python prepare_data.py --persons my_photos/persons --cloths my_photos/cloths \\
        --parse my_photos/parse --pose my_photos/pose --out data/mine

Inputs are matched by file stem: person `alice.jpg` <-> parse `alice.png` <-> pose
`alice_keypoints.json` (or `alice.json`); cloth `shirt.jpg` <-> optional mask `shirt.png`.
The parse comes from a LIP human parser (a label PNG, or an RGB image in the LIP palette),
the pose from OpenPose (COCO-18 or BODY_25 JSON).

Every image is resized to fit 192x256 (aspect ratio kept) and padded (white for cloths, the
median border colour for persons); the parse (nearest neighbour, padded with 0 = background)
and the keypoints get exactly the same scale and offset. Cloth masks are made the way the
original dataset made them unless given. Output, in the original layout:

    <out>/test/{image,cloth,cloth-mask,image-parse,pose}/   <out>/test_pairs.txt
    <out>/name_map.txt                                       "<dataset name> <original name>"

Every pair gets its own id N (person N_0.jpg, cloth N_1.jpg; a photo used in several pairs is
written once per pair) because test.py saves GMM results under the cloth name and TOM
results under the person name: a name shared by two pairs would overwrite results.
All inputs are checked before anything is written; the split is written to a temporary
folder beside --out and moved into place only when complete. An --out that is not empty is
replaced only with --force, which keeps it as `<out>.old`.

With --variant cpvton+ the split also gets CP-VTON+'s two extra folders, made from the fitted
photo and LIP parse the way CP-VTON+'s preprocessing script (since removed from its repository)
made them from VITON's:

    <out>/test/image-mask/N_0.png       the body: 255 on 0, mode L
    <out>/test/image-parse-new/N_0.png  the LIP parse plus label 20 (neck / chest skin), mode L

The body is every pixel that is not backdrop (HSV saturation < 0.08 and value > 0.6 of full
scale: a bright, nearly grey backdrop as in VITON) or that the parse labels, reduced to its
largest connected region with its holes filled. Label 20 goes on the body pixels that the
parse leaves as background in the upper half of the image (CP-VTON+ clears the lower half),
after an opening that drops slivers up to 4 px wide along the outline, and only on the largest
connected region of them. The script's exact thresholds were not published with the data, so
this is an approximation, and a rough one for photos on a dark or coloured backdrop.
"""
import argparse
import json
import os
import os.path as osp
import sys

import numpy as np
from PIL import Image, ImageOps
from scipy import ndimage

import atomic
import cp_dataset
import sample_data

WIDTH, HEIGHT = 192, 256
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')
MAX_UNKNOWN_COLOURS = 5  # unknown parse colours listed in an error message
BACKDROP_SATURATION, BACKDROP_VALUE = 0.08, 0.6  # HSV, of full scale: below / above is backdrop
NECK_OPENING = 2  # iterations of the 3x3-cross opening of the neck candidates


# Colour-coded parses are decoded with the first palette that explains every colour: the LIP
# colours of LIP_JPPNet / CIHP_PGN visualisations, then the PASCAL VOC colour map that SCHP
# (and the sample dataset's parse PNGs) use.
PALETTES = {'LIP': cp_dataset.LIP_PALETTE,
            'PASCAL/SCHP': np.reshape(sample_data.voc_palette(), (-1, 3))[:20].tolist()}


class PrepareError(ValueError):
    """A bad input; the message names the file and the problem."""


# ----------------------------------------------------------------------------- geometry

def fit_box(size):
    """(w, h) of an input -> (new_w, new_h, left, top): the fitted size and its offset in 192x256."""
    w, h = size
    scale = min(WIDTH / w, HEIGHT / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    return new_w, new_h, (WIDTH - new_w) // 2, (HEIGHT - new_h) // 2


def fit_image(image, fill, labels=False):
    """Resize `image` to fit 192x256 (aspect ratio kept) and centre it on a `fill` canvas.

    Label images are resized nearest-neighbour. Photos are shrunk by area averaging (BOX,
    like OpenCV's INTER_AREA: it blurs garment edges least, which matters to the near-white
    mask rule) and enlarged bicubically.
    """
    new_w, new_h, left, top = fit_box(image.size)
    if labels:
        resample = Image.NEAREST
    else:
        resample = Image.BOX if new_w < image.width else Image.BICUBIC
    canvas = Image.new(image.mode, (WIDTH, HEIGHT), fill)
    canvas.paste(image.resize((new_w, new_h), resample), (left, top))
    return canvas


def fit_keypoints(points, size):
    """Map [18, 3] keypoints of an image of `size` the way fit_image maps its pixels.

    Pixel centres map onto pixel centres: x' = (x + 0.5) * new_w / w - 0.5 + left. Missing
    points (0, 0, 0) stay (0, 0, 0).
    """
    new_w, new_h, left, top = fit_box(size)
    fitted = np.array(points, dtype=np.float64)
    present = fitted.any(axis=1)
    fitted[present, 0] = (fitted[present, 0] + 0.5) * new_w / size[0] - 0.5 + left
    fitted[present, 1] = (fitted[present, 1] + 0.5) * new_h / size[1] - 0.5 + top
    return fitted


def border_median(image):
    """Per-channel median colour of the outermost pixel ring: the padding colour for persons."""
    pixels = np.asarray(image)
    ring = np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])
    return tuple(int(v) for v in np.median(ring, axis=0))


# ----------------------------------------------------------------------------- readers

def open_image(path):
    """Open and decode an image file, or raise PrepareError naming it."""
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError on bad files
        raise PrepareError(f'{path}: cannot read image ({err})') from None


def read_photo(path):
    """A photo as RGB: EXIF rotation applied (OpenPose and OpenCV-based parsers apply it too),
    transparency composited onto white."""
    image = ImageOps.exif_transpose(open_image(path))
    if image.mode in ('RGBA', 'LA', 'PA') or 'transparency' in image.info:
        rgba = image.convert('RGBA')
        image = Image.new('RGB', rgba.size, (255, 255, 255))
        image.paste(rgba, mask=rgba.getchannel('A'))
    return image.convert('RGB')


def decode_colours(rgb, path):
    """[H, W, 3] colour-coded parse -> [H, W] label ids, by exact match with a known palette."""
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    colours, inverse = np.unique(codes, return_inverse=True)
    for palette in PALETTES.values():
        lookup = {(r << 16) | (g << 8) | b: label for label, (r, g, b) in enumerate(palette)}
        if all(colour in lookup for colour in colours.tolist()):
            return np.array([lookup[c] for c in colours.tolist()], np.uint8)[inverse.reshape(-1)].reshape(codes.shape)
    lip = {(r << 16) | (g << 8) | b for r, g, b in PALETTES['LIP']}
    unknown = [c for c in colours.tolist() if c not in lip]
    listed = ', '.join(f'({c >> 16}, {(c >> 8) & 255}, {c & 255})' for c in unknown[:MAX_UNKNOWN_COLOURS])
    raise PrepareError(
        f'{path}: {len(unknown)} colours are not in the LIP palette, e.g. {listed}; a colour-coded '
        'parse must use the LIP palette exactly (use the parser\'s PNG output: JPEG or resizing '
        'blends the colours), or give a label PNG (mode P or L, ids 0-19)')


def read_parse(path):
    """A human parse -> uint8 [H, W] LIP label ids (label PNG taken as is, LIP colours decoded)."""
    image = open_image(path)
    if image.mode in ('P', 'L'):
        labels = np.array(image)
    elif image.mode in ('RGB', 'RGBA'):
        labels = decode_colours(np.array(image.convert('RGB')), path)
    else:
        raise PrepareError(f'{path}: parse must be a label PNG (mode P or L, LIP ids 0-19) or an '
                           f'RGB image in the LIP palette, found mode {image.mode}')
    if labels.max() > 19:
        raise PrepareError(f'{path}: parse label {labels.max()} found, LIP ids are 0-19 '
                           '(is this a label image from a LIP/CIHP parser?)')
    return labels


def read_keypoints(path, person_index):
    """OpenPose JSON -> [18, 3] COCO-18 keypoints of its person (see --person_index).

    A single person is read by cp_dataset.read_pose (which also maps BODY_25 to COCO-18).
    """
    try:
        with open(path) as f:
            people = json.load(f).get('people')
    except (OSError, ValueError, AttributeError) as err:
        raise PrepareError(f'{path}: cannot read pose JSON ({err})') from None
    if not people:
        raise PrepareError(f'{path}: no person in the pose file (OpenPose found nobody)')
    if len(people) == 1:
        return cp_dataset.read_pose(path)
    if person_index is None:
        raise PrepareError(f'{path}: {len(people)} persons in the pose file; choose one with '
                           '--person_index (0 = the first)')
    if person_index >= len(people):
        raise PrepareError(f'{path}: --person_index {person_index}, but the file has only '
                           f'{len(people)} persons')
    # read_pose reads people[0]; the chosen person is mapped the same way here.
    person = people[person_index]
    try:
        values = np.asarray(person.get('pose_keypoints_2d', person.get('pose_keypoints')), float)
    except (AttributeError, TypeError, ValueError):
        values = np.zeros(0)
    if values.shape not in ((54,), (75,)):
        raise PrepareError(f'{path}: person {person_index} has no 18 (COCO) or 25 (BODY_25) '
                           'keypoints in pose_keypoints or pose_keypoints_2d')
    points = values.reshape(-1, 3)
    return points[cp_dataset.BODY25_TO_COCO18] if len(points) == 25 else points


# ----------------------------------------------------------------------------- conversion

def fit_person(image, labels, points, paths):
    """Photo, labels and keypoints of one person -> (RGB 192x256, P-mode parse, [18, 3] keypoints).

    `paths` (photo, parse, pose) name the files in errors: all three must describe one image.
    """
    image_path, parse_path, pose_path = paths
    if labels.shape != (image.height, image.width):
        raise PrepareError(f'{parse_path}: parse is {labels.shape[1]}x{labels.shape[0]} but the '
                           f'photo {image_path} is {image.width}x{image.height} (after EXIF rotation)')
    if (points[:, :2].max(axis=0) > image.size).any():
        raise PrepareError(f'{pose_path}: keypoints lie outside the {image.width}x{image.height} '
                           f'photo {image_path}: is this the pose of another image size?')
    parse = fit_image(Image.fromarray(labels, 'L'), 0, labels=True).convert('P')
    parse.putpalette(sample_data.voc_palette())  # the palette of the dataset's parse PNGs
    return (fit_image(image, border_median(image)), parse,
            fit_keypoints(points, image.size))


def fit_cloth(cloth, mask, threshold):
    """Cloth photo (+ mask image or None) -> (RGB 192x256 on white, L mask 192x256 of 0/255)."""
    cloth = fit_image(cloth, (255, 255, 255))
    if mask is None:
        # The rule is "R, G, B all <= 250 is garment"; binarising each channel at `threshold`
        # first makes it "all <= threshold".
        channels = np.where(np.array(cloth) <= threshold, 0, 255).astype(np.uint8)
        return cloth, Image.fromarray(sample_data.cloth_mask_like_viton(channels).astype(np.uint8) * 255)
    mask = fit_image(ImageOps.exif_transpose(mask).convert('L'), 0)
    return cloth, mask.point(lambda v: 255 if v >= 128 else 0)


def pose_json(points):
    """[18, 3] keypoints -> the original dataset's OpenPose 1.0 JSON text."""
    return json.dumps({'version': 1.0, 'people': [{
        'face_keypoints': [], 'pose_keypoints': [round(float(v), 3) for v in np.ravel(points)],
        'hand_right_keypoints': [], 'hand_left_keypoints': []}]})


def largest_region(mask):
    """The largest 8-connected region of a bool mask (the mask itself if it is empty)."""
    regions, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count == 0:
        return mask
    return regions == 1 + np.bincount(regions.ravel())[1:].argmax()


def plus_layers(image, labels):
    """A fitted photo and its LIP labels -> (CP-VTON+'s parse: the labels with NECK_LABEL on the
    uncovered neck, uint8 [H, W]; the body mask, bool [H, W]), as the module docstring describes."""
    hsv = np.asarray(image.convert('HSV'), np.float64) / 255
    backdrop = (hsv[..., 1] < BACKDROP_SATURATION) & (hsv[..., 2] > BACKDROP_VALUE)
    body = ndimage.binary_fill_holes(largest_region(~backdrop | (labels > 0)))
    neck = body & (labels == 0)
    neck[labels.shape[0] // 2:] = False
    neck = largest_region(ndimage.binary_opening(neck, iterations=NECK_OPENING))
    return np.where(neck, cp_dataset.NECK_LABEL, labels).astype(np.uint8), body


# ----------------------------------------------------------------------------- inputs

def list_images(folder, what, problems):
    """{stem: file name} of the images in `folder`; two files with one stem are a problem."""
    if not osp.isdir(folder):
        problems.append(f'{folder}: {what} folder not found')
        return {}
    found = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = osp.splitext(name)
        if name.startswith('.') or ext.lower() not in IMAGE_EXTENSIONS:
            continue
        if stem in found:
            problems.append(f'{folder}: {found[stem]} and {name} have the same stem '
                            '(inputs are matched by stem): keep one')
        found[stem] = name
    if not found:
        problems.append(f'{folder}: no {what} images ({" ".join(IMAGE_EXTENSIONS)})')
    return found


def find_file(folder, candidates, what, owner, problems):
    """The first of `candidates` that exists in `folder`, else None and a problem."""
    for name in candidates:
        if osp.isfile(osp.join(folder, name)):
            return osp.join(folder, name)
    problems.append(f'{owner}: no {what} (looked for {" or ".join(candidates)} in {folder})')
    return None


def read_user_pairs(path, persons, cloths, problems):
    """A pairs file of original names ('<person> <cloth>', file names or stems) -> stem pairs."""
    try:
        with open(path, encoding='utf-8') as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError as err:
        problems.append(f'{path}: not UTF-8 text (byte {err.start}); --pairs lists file names, '
                        'one pair per line')
        return []
    except OSError as err:
        problems.append(f'{path}: cannot read the pairs file ({err.strerror})')
        return []
    pairs = []
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or fields[0].startswith('#'):
            continue
        if len(fields) != 2:
            problems.append(f"{path} line {number}: expected '<person image> <cloth image>', "
                            f'found {line.strip()!r}')
            continue
        stems = []
        for name, known, what in ((fields[0], persons, 'person'), (fields[1], cloths, 'cloth')):
            stem = next((s for s, file in known.items() if name in (s, file)), None)
            if stem is None:
                problems.append(f'{path} line {number}: no {what} image named {name}')
            stems.append(stem)
        if None not in stems:
            pairs.append(tuple(stems))
    if not any(line.split() and not line.split()[0].startswith('#') for line in lines):
        problems.append(f'{path}: no pairs in the pairs file')
    return pairs


def default_pairs(persons, cloths):
    """Persons and cloths in sorted order, side by side; the shorter list is cycled."""
    persons, cloths = sorted(persons), sorted(cloths)
    if not persons or not cloths:
        return []
    return [(persons[i % len(persons)], cloths[i % len(cloths)])
            for i in range(max(len(persons), len(cloths)))]


def attempt(problems, function, *args):
    """function(*args), or None with its error added to `problems`."""
    try:
        return function(*args)
    except (PrepareError, cp_dataset.DatasetError) as err:
        problems.append(str(err))
        return None


def convert_inputs(opt):
    """Read, check and convert every input the pairs need; writes nothing.

    Returns (pairs, persons, cloths, problems): pairs of original file names (person, cloth);
    persons / cloths map an original file name to its converted data.
    """
    problems = []
    person_files = list_images(opt.persons, 'person', problems)
    cloth_files = list_images(opt.cloths, 'cloth', problems)
    pairs = (read_user_pairs(opt.pairs, person_files, cloth_files, problems) if opt.pairs
             else default_pairs(person_files, cloth_files))
    persons, cloths = {}, {}
    for stem in dict.fromkeys(person for person, _ in pairs):
        paths = (osp.join(opt.persons, person_files[stem]),
                 find_file(opt.parse, [f'{stem}.png'], 'parse', person_files[stem], problems),
                 find_file(opt.pose, [f'{stem}_keypoints.json', f'{stem}.json'], 'pose',
                           person_files[stem], problems))
        image = attempt(problems, read_photo, paths[0])
        labels = attempt(problems, read_parse, paths[1]) if paths[1] else None
        points = attempt(problems, read_keypoints, paths[2], opt.person_index) if paths[2] else None
        if image is not None and labels is not None and points is not None:
            persons[person_files[stem]] = attempt(problems, fit_person, image, labels, points, paths)
    for stem in dict.fromkeys(cloth for _, cloth in pairs):
        cloth = attempt(problems, read_photo, osp.join(opt.cloths, cloth_files[stem]))
        mask = None
        if opt.cloth_masks:  # a given mask must exist and read
            mask_path = find_file(opt.cloth_masks, [f'{stem}.png', f'{stem}.jpg'], 'cloth mask',
                                  cloth_files[stem], problems)
            mask = attempt(problems, open_image, mask_path) if mask_path else None
        if cloth is not None and (mask is not None or not opt.cloth_masks):
            cloths[cloth_files[stem]] = fit_cloth(cloth, mask, opt.mask_threshold)
    pairs = [(person_files[person], cloth_files[cloth]) for person, cloth in pairs]
    return pairs, persons, cloths, problems


# ----------------------------------------------------------------------------- output

def write_split(root, pairs, persons, cloths, variant='cpvton'):
    """Write the test split (cp_dataset's layout; for cpvton+ also image-parse-new/ and
    image-mask/), test_pairs.txt and name_map.txt into `root`."""
    split, plus = osp.join(root, 'test'), cp_dataset.VARIANTS['cpvton+']
    extra = (plus.parse_folder, plus.body_folder) if variant == 'cpvton+' else ()
    for folder in cp_dataset.INPUT_FOLDERS + extra:
        os.makedirs(osp.join(split, folder))
    names, map_lines = [], []
    for index, (person, cloth) in enumerate(pairs):
        person_name, cloth_name = f'{index:06d}_0.jpg', f'{index:06d}_1.jpg'
        paths = cp_dataset.pair_paths(split, person_name, cloth_name)
        image, parse, points = persons[person]
        image.save(paths['image'], **sample_data.JPEG_OPTIONS)
        parse.save(paths['parse'])
        if extra:
            plus_paths = cp_dataset.pair_paths(split, person_name, cloth_name, variant=variant)
            parse_new, body = plus_layers(image, np.array(parse))
            Image.fromarray(parse_new, 'L').save(plus_paths['parse'])
            Image.fromarray(body.astype(np.uint8) * 255, 'L').save(plus_paths['body'])
        with open(paths['pose'], 'w') as f:
            f.write(pose_json(points))
        cloth_image, mask = cloths[cloth]
        cloth_image.save(paths['cloth'], **sample_data.JPEG_OPTIONS)
        mask.save(paths['cloth_mask'], **sample_data.JPEG_OPTIONS)
        names.append((person_name, cloth_name))
        map_lines += [f'{person_name} {person}\n', f'{cloth_name} {cloth}\n']
    cp_dataset.write_pairs(osp.join(root, 'test_pairs.txt'), names)
    with open(osp.join(root, 'name_map.txt'), 'w') as f:
        f.writelines(map_lines)


# ----------------------------------------------------------------------------- main

def plural(count, noun):
    return f'{count} {noun}{"" if count == 1 else "s"}'


def next_steps(out, variant='cpvton'):
    """The commands that run the pretrained models of `variant` on the new split."""
    flag, run = (' --variant cpvton+', 'plus') if variant == 'cpvton+' else ('', 'new')
    return f"""Next: run the pretrained GMM, hand its warps to TOM, run TOM, look at the strips:
  python test.py --name gmm_mine --stage GMM{flag} --dataroot {out} --datamode test --data_list test_pairs.txt --result_dir result/mine --checkpoint checkpoints/gmm_train_{run}/gmm_final.pth
  cp -r result/mine/gmm_final.pth/test/warp-cloth result/mine/gmm_final.pth/test/warp-mask {out}/test/
  python test.py --name tom_mine --stage TOM{flag} --dataroot {out} --datamode test --data_list test_pairs.txt --result_dir result/mine --checkpoint checkpoints/tom_train_{run}/tom_final.pth
  python smart_show_test_result.py{flag} --dataroot {out} --result_dir result/mine --out result_simple/mine
Result names -> your files: {out}/name_map.txt"""


def parse_options(argv=None):
    parser = argparse.ArgumentParser(
        description='Make a CP-VTON test split (192x256, VITON layout) from your own person photos, '
                    'cloth photos, human parses and OpenPose keypoints.')
    parser.add_argument('--persons', required=True, metavar='DIR',
                        help='folder of person photos (any size; jpg/png/...); stems match parse and pose')
    parser.add_argument('--cloths', required=True, metavar='DIR', help='folder of in-shop cloth photos (any size)')
    parser.add_argument('--parse', required=True, metavar='DIR',
                        help='folder of LIP human parses <stem>.png: label PNG (mode P or L, ids 0-19) '
                             'or RGB in the LIP palette, same size as the photo')
    parser.add_argument('--pose', required=True, metavar='DIR',
                        help='folder of OpenPose JSON <stem>_keypoints.json or <stem>.json '
                             '(COCO-18 or BODY_25, pose_keypoints or pose_keypoints_2d)')
    parser.add_argument('--out', required=True, metavar='DIR',
                        help='dataset root to create, e.g. data/mine (then test.py --dataroot data/mine)')
    parser.add_argument('--pairs', default=None, metavar='FILE',
                        help="pairs file '<person> <cloth>' per line, original file names or stems "
                             '(default: persons and cloths in sorted order side by side, the shorter '
                             'list repeated)')
    parser.add_argument('--cloth_masks', '--cloth-masks', default=None, metavar='DIR',
                        help='folder of cloth masks <stem>.png or <stem>.jpg, white = garment '
                             '(default: made from the cloth photo, as in the original dataset)')
    parser.add_argument('--mask_threshold', '--mask-threshold', type=int, default=250, metavar='N',
                        help='made masks: pixels with R, G and B all above this are background '
                             '(default 250, as the original dataset)')
    parser.add_argument('--person_index', '--person-index', type=int, default=None, metavar='I',
                        help='which person to take from pose files that hold several (0 = first); '
                             'without it such files are reported')
    parser.add_argument('--variant', default='cpvton', choices=list(cp_dataset.VARIANTS),
                        help="cpvton (default), or cpvton+: also write CP-VTON+'s image-parse-new/ and "
                             'image-mask/, derived from the photo and parse (approximately, as CP-VTON+ '
                             'derived them for VITON)')
    parser.add_argument('--force', action='store_true',
                        help='replace --out if it exists and is not empty; the previous one is kept, '
                             'renamed to <out>.old (refused while that name is taken)')
    opt = parser.parse_args(argv)
    if not 0 <= opt.mask_threshold <= 255:
        parser.error('--mask_threshold must be in 0..255')
    if opt.person_index is not None and opt.person_index < 0:
        parser.error('--person_index must not be negative')
    return opt


def previous_out(out, force):
    """Where --force keeps the previous non-empty `out` (None if there is none to keep), or
    raise PrepareError when `out` must not be replaced."""
    if osp.exists(out) and not osp.isdir(out):
        raise PrepareError(f'{out} exists and is not a folder')
    if not osp.isdir(out) or not os.listdir(out):
        return None
    if not force:
        raise PrepareError(f'{out} exists and is not empty; pass --force to replace it '
                           f'(it is kept as {out}.old)')
    if osp.lexists(f'{out}.old'):
        raise PrepareError(f'{out}.old exists (kept by an earlier --force): delete or move it, '
                           f'then run again')
    return f'{out}.old'


def report(problems, headline):
    """Print `headline` and the problems to stderr; 1 if there are any, else 0."""
    if problems:
        print(headline.format(plural(len(problems), 'problem')), file=sys.stderr)
        for problem in problems:
            print(f'  {problem}', file=sys.stderr)
    return 1 if problems else 0


def main(argv=None):
    opt = parse_options(argv)
    try:
        keep_old = previous_out(opt.out, opt.force)
    except PrepareError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    pairs, persons, cloths, problems = convert_inputs(opt)
    if report(problems, '{} found; nothing was written:'):
        return 1
    with atomic.writing_dir(opt.out, keep_old=keep_old) as root:
        write_split(root, pairs, persons, cloths, opt.variant)
    if keep_old:
        print(f'Moved the previous {opt.out} aside to {keep_old}')
    print(f'Wrote {plural(len(pairs), "pair")} ({plural(len(persons), "person photo")}, '
          f'{plural(len(cloths), "cloth photo")}) to {opt.out}')

    problems = []
    for variant in dict.fromkeys(['cpvton', opt.variant]):  # CP-VTON's layout, then CP-VTON+'s
        problems += cp_dataset.check_dataset(dataroot=opt.out, datamode='test', data_list='test_pairs.txt',
                                             fine_width=WIDTH, fine_height=HEIGHT, variant=variant)
    problems = list(dict.fromkeys(problems))
    if report(problems, 'The dataset check found {}:'):
        return 1
    print(f'Dataset check passed.\n{next_steps(opt.out, opt.variant)}')
    return 0


if __name__ == '__main__':
    atomic.run(main)
