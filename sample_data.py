"""A small procedural dataset in the layouts CP-VTON reads, so it runs without the real data.

`generate(root, dataset=...)` writes one of three layouts (layouts.DATASETS), with the marker
.sample_dataset that lists every file written (remove_sample deletes exactly those):

  viton      {train,test}/{image,image-parse,pose,cloth,cloth-mask}/ at 256x192 (train ids
             000000, ...; test ids 100000, ...), CP-VTON+'s image-parse-new/ (the parse with the
             visible neck as NECK_LABEL, mode L) and image-mask/ (the body, 255 on 0, mode L), and
             train_pairs.txt, test_pairs.txt (unpaired), test_pairs_same.txt (paired). The usual
             entry is `python data_download.py --sample`, which also guards existing data.
  vitonhd    VITON-HD's zalando-hd-resized: {train,test}/{image,cloth,cloth-mask,image-parse-v3,
             openpose_json}/ at 768x1024, ids 00000_00 (train) and 50000_00 (test) on; parses in
             CIHP ids (the neck and chest skin 10), poses as OpenPose 1.3 BODY_25 JSON; both pair
             lists unpaired, as the real ones. The same persons as the VITON set of that seed,
             enlarged 4 times (keypoints exactly). Not written, as CP-VTON reads none of them:
             image-parse-agnostic-v3.2/, openpose_img/, image-densepose/, agnostic-v3.2/.
  dresscode  Dress Code: {upper_body,lower_body,dresses}/images/NNNNNN_0.jpg (person) and _1.jpg
             (product), label_maps/_4.png (ATR ids), keypoints/_2.json (COCO-18 at 384x512), at
             768x1024; per-category train_pairs.txt, test_pairs_paired.txt, test_pairs_unpaired.txt
             and the root lists of all three with the category index as a third column. Persons
             are drawn whole, the face cut at about the nose as in Dress Code, and wear the
             category's product: a top (upper_body), trousers, shorts or a skirt (lower_body, worn
             with some top), a dress (dresses). Not written, as CP-VTON reads none of them:
             skeletons/, dense/, and masks/ (which Dress Code does not ship either).

A person is a flat-coloured figure on a light background, of varied proportions, pose and colours,
wearing her product-image garment (short, long or no sleeves, solid or printed) warped on by a
thin-plate spline; everything is drawn at 256x192 (the larger layouts enlarge it: images bicubic,
parses nearest). Parses hold the LIP ids as drawn, mapped to the layout's label set. Each person
draws from a numpy Generator seeded by (seed, id): same seed, same bytes.
"""
import contextlib
import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

import cp_dataset
import layouts

HEIGHT, WIDTH = 256, 192
CX = WIDTH / 2
PIXELS = np.stack(np.mgrid[:HEIGHT, :WIDTH][::-1], -1).astype(float)  # (x, y) of every pixel
TRAIN_ID0, TEST_ID0 = 0, 100000
# A GMM trained on 64 persons generalises clearly worse than on 256; 64 test persons give the
# mean try-on SSIM a standard error of about 0.005. A smaller split starts a larger one.
N_TRAIN, N_TEST = 256, 64
# Dress Code's, per category: the three categories take about 30 s of CPU time to generate.
DRESSCODE_N_TRAIN, DRESSCODE_N_TEST = 128, 32
MARKER = '.sample_dataset'
DRESSCODE_STREAM = 1  # Dress Code persons draw from Generator([seed, DRESSCODE_STREAM, id])
JPEG_OPTIONS = dict(quality=95, subsampling=0, optimize=False)
SOFTNESS = 1.0  # sigma (pixels) of the blur that band-limits drawn images like a photo's optics
MASK_WHITE = 250  # the original cloth masks: garment where R, G and B are all <= this
GARMENT_MAX = 230  # garment colours stay below the mask threshold, even after JPEG
LUMA = (0.299, 0.587, 0.114)

PLUS_FOLDERS = (cp_dataset.VARIANTS['cpvton+'].parse_folder, cp_dataset.VARIANTS['cpvton+'].body_folder)

# LIP label ids (see cp_dataset.LIP_LABELS); side -1 is the person's right (image left).
HAIR, UPPER, DRESS, COAT, PANTS, SKIRT, FACE = 2, 5, 6, 7, 9, 12, 13
LEFT_ARM, RIGHT_ARM, LEFT_LEG, RIGHT_LEG, LEFT_SHOE, RIGHT_SHOE = 14, 15, 16, 17, 18, 19
ARM, LEG, SHOE = {-1: RIGHT_ARM, 1: LEFT_ARM}, {-1: RIGHT_LEG, 1: LEFT_LEG}, {-1: RIGHT_SHOE, 1: LEFT_SHOE}
# COCO-18 keypoint order of OpenPose's pose_keypoints.
KEYPOINTS = ('nose', 'neck', 'r_shoulder', 'r_elbow', 'r_wrist', 'l_shoulder', 'l_elbow',
             'l_wrist', 'r_hip', 'r_knee', 'r_ankle', 'l_hip', 'l_knee', 'l_ankle',
             'r_eye', 'l_eye', 'r_ear', 'l_ear')

# Body at scale 1, in pixels: half the shoulder width, neck to hips, half the head height, the
# limbs joint to joint; and the product-image height that matches the wearer's neck-to-hip length.
SHOULDER_HALF, TORSO_LEN, HEAD_RY = 33, 100, 20
UPPER_ARM, FOREARM, THIGH, SHIN = 48, 44, 58, 55
PRODUCT_TORSO = 132.0
# How the person fills the 256x192 frame: the scale range, the neck's height and the legs' length
# (times THIGH and SHIN). VITON crops at the shins; Dress Code shows the whole figure down to the
# shoes, the face cut at about the nose (its legs are longer, for a full figure's proportions).
VITON_FRAME = SimpleNamespace(scale=(0.96, 1.12), neck_y=(64, 72), legs=1.0)
FULL_FIGURE = SimpleNamespace(scale=(0.74, 0.84), neck_y=(18, 26), legs=1.35)

# How often each kind is drawn.
SLEEVE_KINDS = {'short': 0.45, 'long': 0.25, 'none': 0.3}
PATTERNS = {'solid': 0.25, 'stripes': 0.18, 'vstripes': 0.1, 'checks': 0.15, 'dots': 0.12, 'logo': 0.2}
ARM_MODES = {'down': 0.68, 'front': 0.17, 'hip': 0.15}  # hanging, forearm across, hand on hip
HAIR_STYLES = {'short': 0.45, 'long': 0.35, 'bob': 0.2}
BOTTOMS = {'pants': 0.55, 'shorts': 0.2, 'skirt': 0.25}
DRESS_P, COAT_P, V_NECK_P = 0.12, 0.35, 0.3  # a dress has no long sleeves, a coat has them
HIDDEN_EAR_P = 0.25  # an ear keypoint is left out, as OpenPose often misses ears

SKIN = np.array([(243, 212, 189), (232, 190, 160), (214, 168, 132), (190, 144, 108),
                 (152, 108, 78), (112, 78, 58)], float)
HAIR_COLOURS = np.array([(32, 26, 24), (62, 42, 30), (96, 64, 40), (150, 108, 62),
                         (196, 160, 98), (124, 54, 34)], float)
BOTTOM_COLOURS = np.array([(42, 52, 82), (34, 34, 38), (72, 72, 78), (62, 86, 128),
                           (148, 134, 102), (86, 92, 62), (104, 44, 50)], float)


def voc_palette():
    """The PASCAL VOC colour map (768 values) that the parse PNGs carry, as LIP's and VITON's
    do; only a label's value counts (the project draws parses in cp_dataset.LIP_PALETTE)."""
    return [sum(((label >> (3 * bit + channel)) & 1) << (7 - bit) for bit in range(8))
            for label in range(256) for channel in range(3)]


PARSE_PALETTE = voc_palette()


def _pick(rng, weights):
    """One key of `weights` (a dict key -> probability)."""
    return rng.choice(list(weights), p=list(weights.values()))


# ---- Geometry (points are float (x, y) in image pixels, y down) ----

def _unit(angle, down, right, side):
    """Direction `angle` radians away from `down`, turned outwards on `side`."""
    return np.cos(angle) * down + side * np.sin(angle) * right


def _ellipse(centre, rx, ry, angle=0.0, n=40, start=0.0, stop=2 * np.pi):
    """Points of an ellipse rotated by `angle` (radians, image frame) as an (n, 2) array."""
    t = np.linspace(start, stop, n, endpoint=stop - start < 2 * np.pi)
    local = np.stack([rx * np.cos(t), ry * np.sin(t)], 1)
    c, s = np.cos(angle), np.sin(angle)
    return np.asarray(centre) + local @ np.array([[c, -s], [s, c]])


def _limb(points, half_widths):
    """Outline of a polyline with a half width per vertex (an arm, a leg, a trouser leg)."""
    points, half_widths = np.asarray(points, float), np.asarray(half_widths, float)
    tangents = np.gradient(points, axis=0) if len(points) > 2 else np.repeat(
        [points[-1] - points[0]], len(points), 0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True) + 1e-9
    normals = np.stack([-tangents[:, 1], tangents[:, 0]], 1) * half_widths[:, None]
    return np.concatenate([points + normals, (points - normals)[::-1]])


def _bezier(p0, p1, p2, n=8):
    """A quadratic Bezier curve from p0 to p2 pulled towards p1, as (n, 2) points."""
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def _fill(polygons=(), circles=()):
    """Boolean [H, W] mask of filled polygons and circles ((centre, radius) pairs), drawn by PIL."""
    image = Image.new('L', (WIDTH, HEIGHT), 0)
    draw = ImageDraw.Draw(image)
    for polygon in polygons:
        draw.polygon([tuple(p) for p in np.asarray(polygon, float)], fill=255)
    for (x, y), r in circles:
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return np.array(image) > 0


def _tps_kernel(d2):
    return np.where(d2 > 0, d2 * np.log(np.maximum(d2, 1e-12)), 0.0)


def tps_map(source, target, points, scale=100.0, smoothing=5e-2):
    """Thin-plate spline from `source[i]` to `target[i]` (N, 2), evaluated at `points` (M, 2).
    Slightly smoothed, which keeps it from folding between nearby landmarks that move apart."""
    source, target, points = (np.asarray(a, float) / scale for a in (source, target, points))
    n = len(source)
    system = np.zeros((n + 3, n + 3))
    system[:n, :n] = _tps_kernel(((source[:, None] - source[None]) ** 2).sum(-1)) + smoothing * np.eye(n)
    affine = np.hstack([np.ones((n, 1)), source])
    system[:n, n:], system[n:, :n] = affine, affine.T
    coef = np.linalg.solve(system, np.vstack([target, np.zeros((3, 2))]))
    kernel = _tps_kernel(((points[:, None] - source[None]) ** 2).sum(-1))
    return (kernel @ coef[:n] + coef[n] + points @ coef[n + 1:]) * scale


# ---- The in-shop garment ----

def _garment_colour(rng, value=(0.35, 0.9)):
    """A saturated-enough colour whose brightest channel stays <= GARMENT_MAX."""
    hue, sat, val = rng.uniform(0, 1), rng.uniform(0.3, 0.9), rng.uniform(*value)
    h6, c = hue * 6, val * sat
    x = c * (1 - abs(h6 % 2 - 1))
    rgb = [(c, x, 0), (x, c, 0), (0, c, x), (0, x, c), (x, 0, c), (c, 0, x)][int(h6) % 6]
    return np.clip((np.array(rgb) + val - c) * 255, 0, GARMENT_MAX)


def _texture(rng, garment):
    """The garment's print over the whole product canvas: uint8 [H, W, 3]."""
    base = _garment_colour(rng)
    for _ in range(20):  # a second colour that stands out (a visible print)
        other = _garment_colour(rng, value=(0.2, 0.9))
        if abs(np.dot(other, LUMA) - np.dot(base, LUMA)) > 70:
            break
    else:
        other = base * 0.35 if np.dot(base, LUMA) > 100 else np.minimum(base + 120, GARMENT_MAX)
    pattern = garment['pattern']
    y, x = np.mgrid[:HEIGHT, :WIDTH].astype(float)
    texture = np.full((HEIGHT, WIDTH, 3), base, float)
    if pattern in ('stripes', 'vstripes'):
        period = rng.uniform(18, 28)
        coord = y if pattern == 'stripes' else x
        texture[(coord + rng.uniform(0, period)) % period < period * rng.uniform(0.3, 0.5)] = other
    elif pattern == 'checks':
        period = rng.uniform(24, 36)
        a, b = ((c + rng.uniform(0, period)) % period < period / 2 for c in (y, x))  # rows, columns
        texture[a ^ b] = (base + other) / 2
        texture[a & b] = other
    elif pattern == 'dots':
        period, radius = rng.uniform(20, 28), rng.uniform(4.5, 6.5)
        dx = (x + (np.floor(y / period) % 2) * period / 2) % period - period / 2
        dy = y % period - period / 2
        texture[dx ** 2 + dy ** 2 <= radius ** 2] = other
    image = Image.fromarray(texture.astype(np.uint8))
    if pattern == 'logo':
        _draw_logo(rng, image, garment['top'], tuple(int(v) for v in other))
    return np.array(image)


def _draw_logo(rng, image, top, colour):
    """A few letters, a disc, a rectangle or a star on the chest of the product image."""
    draw = ImageDraw.Draw(image)
    cx, cy = CX, top + rng.uniform(45, 65)
    if rng.random() < 0.5:
        text = ''.join(rng.choice(list('ABCDEFGHKMNPRSTVXZ'), int(rng.integers(2, 5))))
        font = ImageFont.load_default(size=int(rng.integers(20, 27)))
        draw.text((cx, cy), text, fill=colour, font=font, anchor='mm')
        return
    r, shape = rng.uniform(13, 19), rng.integers(3)
    if shape == 0:
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif shape == 1:
        draw.rectangle((cx - r, cy - 0.7 * r, cx + r, cy + 0.7 * r), fill=colour)
    else:
        angles = -np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2, 0.45 * r, r)
        draw.polygon([(cx + q * np.cos(a), cy + q * np.sin(a)) for a, q in zip(angles, radii)],
                     fill=colour)


def _garment_measures(rng, sleeves, dress):
    """The drawn sizes of a garment, in product-image pixels (x half widths from the centre)."""
    kinds = SLEEVE_KINDS if not dress else {k: p / (1 - SLEEVE_KINDS['long'])
                                            for k, p in SLEEVE_KINDS.items() if k != 'long'}
    m = SimpleNamespace(sleeves=_pick(rng, kinds) if sleeves is None else sleeves)
    m.dress = (m.sleeves != 'long' and rng.random() < DRESS_P) if dress is None else dress
    m.label = DRESS if m.dress else (COAT if m.sleeves == 'long' and rng.random() < COAT_P else UPPER)
    m.top = rng.uniform(26, 34)  # y of the neckline's ends, the garment's top
    m.shoulder = rng.uniform(41, 46) if m.sleeves == 'long' else rng.uniform(42, 50)
    m.chest = m.shoulder * rng.uniform(0.92, 1.0)
    m.waist = m.chest * rng.uniform(0.9, 1.0)
    m.hem = m.chest * rng.uniform(0.92, 1.08)
    m.hem_y = m.top + (rng.uniform(195, 210) if m.dress else rng.uniform(145, 170))
    m.neck = rng.uniform(15, 21)
    m.v_neck = rng.random() < V_NECK_P
    m.depth = rng.uniform(20, 30) if m.v_neck else rng.uniform(8, 15)  # of the neckline
    m.drop = rng.uniform(6, 10)  # of the shoulder seams below the neckline's ends
    m.armpit_y = m.top + rng.uniform(48, 58)
    return m


def _garment_side(rng, m, side):
    """One side's outline from the shoulder to the hem, and its sleeve [shoulder, armpit,
    outer end, inner end] (None for a sleeveless garment)."""
    s_pt = np.array([CX + side * m.shoulder, m.top + m.drop])
    a_pt = np.array([CX + side * m.chest, m.armpit_y])
    lower = [np.array([CX + side * m.waist, (m.armpit_y + m.hem_y) / 2]),
             np.array([CX + side * m.hem, m.hem_y])]
    if m.sleeves == 'none':
        strap = np.array([CX + side * (m.neck + rng.uniform(11, 16)), m.top + 0.4 * m.drop])
        armhole = _bezier(strap, np.array([CX + side * (m.neck + 14), m.armpit_y - 8]), a_pt)
        return [strap, *armhole[1:], *lower], None
    if m.sleeves == 'short':
        angle, reach, half = rng.uniform(0.45, 0.7), rng.uniform(34, 44), rng.uniform(14, 17)
    else:
        angle, reach, half = rng.uniform(0.22, 0.32), rng.uniform(105, 118), rng.uniform(10, 13)
    axis = np.array([side * np.sin(angle), np.cos(angle)])
    across = side * np.array([axis[1], -axis[0]])  # away from the armpit
    end = (s_pt + a_pt) / 2 + reach * axis
    sleeve = np.array([s_pt, a_pt, end + half * across, end - half * across])
    return [s_pt, *sleeve[2:], a_pt, *lower], sleeve


def _torso_points(outline, sleeve_ends):
    """The outline's vertices except the sleeve ends, with extra points about every 12 px
    along its edges (except those that run to a sleeve end): they move with the torso."""
    is_end = np.array([any((p == q).all() for q in sleeve_ends) for p in outline])
    torso = []
    for i in np.flatnonzero(~is_end):
        j = (i + 1) % len(outline)
        steps = 1 if is_end[j] else max(1, int(np.linalg.norm(outline[j] - outline[i]) // 12))
        torso += [outline[i] + (outline[j] - outline[i]) * f for f in np.arange(steps) / steps]
    return np.array(torso)


def random_garment(rng, sleeves=None, dress=None):
    """Shape, landmarks and print of a product image, in its pixels. `points` holds 'outline',
    'torso' (outline points that move with the torso), 'neckline', 'armpits', 'interior' (a grid
    inside the body part) and per sleeve side [shoulder, armpit, outer end, inner end]; `scale`
    < 1 if the garment was shrunk to fit the frame. `dress`: True or False for a dress or a top
    (a dress has no long sleeves), None to draw which (DRESS_P)."""
    m = _garment_measures(rng, sleeves, dress)
    points, sides = {}, {}
    for side in (-1, 1):
        sides[side], sleeve = _garment_side(rng, m, side)
        if sleeve is not None:
            points[f'sleeve{side}'] = sleeve
    neckline = (np.array([[CX + m.neck, m.top], [CX, m.top + m.depth], [CX - m.neck, m.top]]) if m.v_neck
                else _ellipse((CX, m.top), m.neck, m.depth, n=13, start=0, stop=np.pi))
    outline = np.array([(CX - m.neck, m.top), *sides[-1], *sides[1][::-1], (CX + m.neck, m.top),
                        *neckline[1:-1]])
    sleeve_ends = [end for sleeve in points.values() for end in sleeve[2:]]
    interior = np.meshgrid(CX + m.chest * np.linspace(-0.7, 0.7, 4),
                           np.linspace(m.top + m.depth + 12, m.hem_y - 8, 5))
    points.update(torso=_torso_points(outline, sleeve_ends), outline=outline, neckline=neckline,
                  armpits=np.array([[CX - m.chest, m.armpit_y], [CX + m.chest, m.armpit_y]]),
                  interior=np.stack(interior, -1).reshape(-1, 2))
    # shrink about the top centre if a sleeve or the hem would come within 5 px of the edge
    over = max(1.0, np.abs(outline[:, 0] - CX).max() / (CX - 5), outline[:, 1].max() / (HEIGHT - 5))
    anchor = np.array([CX, m.top])
    garment = dict(sleeves=m.sleeves, label=m.label, dress=m.dress, top=m.top,
                   points={k: anchor + (v - anchor) / over for k, v in points.items()},
                   shoulder=m.shoulder / over, chest=m.chest / over,
                   armpit_v=(m.armpit_y - m.top - 2) / over, scale=1 / over,
                   pattern=_pick(rng, PATTERNS))
    garment['texture'] = _texture(rng, garment)
    return garment


def cloth_mask_like_viton(cloth):
    """The original data's cloth mask: R, G, B all <= MASK_WHITE, holes filled, 3x3 median."""
    garment = ndimage.binary_fill_holes((cloth <= MASK_WHITE).all(axis=2))
    return ndimage.median_filter(garment.astype(np.uint8), size=3).astype(bool)


def _soften(image):
    """A drawn float image as a photo: blurred by SOFTNESS pixels, uint8."""
    image = ndimage.gaussian_filter(np.asarray(image, float), (SOFTNESS, SOFTNESS, 0))
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def render_cloth(garment):
    """Product image (uint8 [H, W, 3], garment on white) and its mask (bool [H, W]), the mask
    made from the image as a JPEG written with JPEG_OPTIONS reads back."""
    cloth = _soften(np.where(_fill([garment['points']['outline']])[..., None], garment['texture'], 255))
    return cloth, cloth_mask_like_viton(_jpeg(Image.fromarray(cloth))[1])


def _jpeg(image):
    """(the bytes of a PIL image written as JPEG with JPEG_OPTIONS, the RGB array they read back as)."""
    buffer = io.BytesIO()
    image.save(buffer, 'JPEG', **JPEG_OPTIONS)
    return buffer.getvalue(), np.array(Image.open(buffer).convert('RGB'))


# ---- The person ----

def random_body(rng, long_sleeves=False, frame=VITON_FRAME):
    """Keypoints and body measurements of a front-facing person (a dict), placed by `frame`."""
    s = rng.uniform(*frame.scale)  # the person's scale
    tilt = rng.uniform(-0.06, 0.06)  # lean, radians
    down, right = np.array([np.sin(tilt), np.cos(tilt)]), np.array([np.cos(tilt), -np.sin(tilt)])
    neck = np.array([CX + rng.uniform(-8, 8), rng.uniform(*frame.neck_y)])

    def torso(u, v):
        return neck + u * right + v * down

    shoulder_half = SHOULDER_HALF * s * rng.uniform(0.93, 1.07)
    torso_len = TORSO_LEN * s * rng.uniform(0.95, 1.05)
    hip_half = shoulder_half * rng.uniform(0.5, 0.6)
    sway = rng.uniform(-6, 6)  # of the hips, sideways
    body = dict(s=s, tilt=tilt, down=down, right=right, neck=neck, shoulder_half=shoulder_half,
                torso_len=torso_len, hip_half=hip_half, torso=torso)
    for side in (-1, 1):
        body[f'shoulder{side}'] = torso(side * shoulder_half, 7 * s + rng.uniform(-2.5, 2.5))
        body[f'hip{side}'] = torso(side * hip_half + sway, torso_len + rng.uniform(-2, 2))
    head_ry = HEAD_RY * s * rng.uniform(0.95, 1.05)
    body.update(head_ry=head_ry, head_rx=head_ry * rng.uniform(0.78, 0.86),
                head_tilt=tilt + rng.uniform(-0.1, 0.1))
    body['head'] = torso(rng.uniform(-2, 2), -(9 * s + 0.92 * head_ry))
    _add_arms(rng, body, long_sleeves)
    thigh, shin = THIGH * frame.legs * s, SHIN * frame.legs * s
    for side in (-1, 1):
        knee = body[f'hip{side}'] + thigh * _unit(rng.uniform(-0.02, 0.1), down, right, side)
        body[f'knee{side}'] = knee
        body[f'ankle{side}'] = knee + shin * _unit(rng.uniform(-0.06, 0.04), down, right, side)
    return body


def _add_arms(rng, body, long_sleeves):
    """Elbows and wrists. An arm hangs, holds its forearm across the torso or its hand on the
    hip (long sleeves always hang); angles are from the body axis, outwards."""
    s, down, right = body['s'], body['down'], body['right']
    modes = {side: 'down' if long_sleeves else _pick(rng, ARM_MODES) for side in (-1, 1)}
    for side, mode in modes.items():
        if mode == 'down':
            upper = rng.uniform(0.12, 0.42) if not long_sleeves else rng.uniform(0.18, 0.35)
            fore = upper + rng.uniform(-0.06, 0.12 if long_sleeves else 0.25)
        elif mode == 'front':
            upper, fore = rng.uniform(0.12, 0.3), -rng.uniform(0.9, 1.3)
        else:  # hand on the hip
            upper, fore = rng.uniform(0.55, 0.8), -rng.uniform(0.35, 0.75)
        elbow = body[f'shoulder{side}'] + UPPER_ARM * s * _unit(upper, down, right, side)
        wrist = elbow + FOREARM * s * _unit(fore, down, right, side)
        body.update({f'arm_mode{side}': mode, f'arm_angle{side}': upper,
                     f'elbow{side}': elbow, f'wrist{side}': wrist})


def on_head(body, u, v):
    """Image point(s) at (u, v) in the head's frame (centre, tilted with the head)."""
    u, v = np.asarray(u, float), np.asarray(v, float)
    c, s = np.cos(body['head_tilt']), np.sin(body['head_tilt'])
    return body['head'] + np.stack([u * c - v * s, u * s + v * c], -1)


def keypoints(body, rng):
    """COCO-18 (x, y, confidence) [18, 3]; points off the image or hidden are (0, 0, 0)."""
    rx, ry = body['head_rx'], body['head_ry']
    named = {'nose': on_head(body, 0, 0.3 * ry), 'neck': body['neck'],
             'r_eye': on_head(body, -0.36 * rx, 0), 'l_eye': on_head(body, 0.36 * rx, 0),
             'r_ear': on_head(body, -0.93 * rx, 0.12 * ry), 'l_ear': on_head(body, 0.93 * rx, 0.12 * ry)}
    for side, prefix in ((-1, 'r'), (1, 'l')):
        for joint in ('shoulder', 'elbow', 'wrist', 'hip', 'knee', 'ankle'):
            named[f'{prefix}_{joint}'] = body[f'{joint}{side}']
    points = np.zeros((18, 3))
    for i, name in enumerate(KEYPOINTS):
        x, y = named[name]
        hidden = name.endswith('ear') and rng.random() < HIDDEN_EAR_P
        if 1 < x < WIDTH - 1 and 1 < y < HEIGHT - 1 and not hidden:
            points[i] = (round(x, 2), round(y, 2), round(rng.uniform(0.55, 0.95), 3))
    return points


def _smooth(t):
    t = np.clip(t, 0, 1)
    return t * t * (3 - 2 * t)


def _body_frames(body, garment):
    """place(points): product-image points -> where they sit on this body (sleeves aside). The
    shoulder seams go just outside the shoulders, the chest inside the hanging arms, the hem over
    the hips; heights scale with the neck-to-hip length. The top follows the neck and shoulder
    line, the bottom the hips (sway and tilt), blended smoothly down the torso."""
    s, armpit = body['s'], garment['armpit_v']
    anchor = np.array([CX, garment['top'] + 2])
    length = PRODUCT_TORSO * garment['scale']  # product height of the neck-to-hip length
    sx_shoulder = (body['shoulder_half'] + 4 * s) / garment['shoulder']
    sx_chest = (body['shoulder_half'] - 5 * s) / garment['shoulder']
    sx_hips = (body['hip_half'] + 12 * s) / garment['chest']
    l_sh, r_sh, l_hip, r_hip = body['shoulder1'], body['shoulder-1'], body['hip1'], body['hip-1']
    neck_top = body['neck'] - 3 * s * body['down']
    hips = (l_hip + r_hip) / 2
    sy = np.linalg.norm(hips - neck_top) / length
    frames = []
    for origin, across in ((neck_top, l_sh - r_sh), (hips, l_hip - r_hip)):
        ax = across / np.linalg.norm(across)
        frames.append((origin, ax, np.array([-ax[1], ax[0]]) * sy))
    (o0, x0, y0), (o1, x1, y1) = frames

    def place(p):
        rel = np.atleast_2d(np.asarray(p, float)) - anchor
        u, v = rel[:, :1], rel[:, 1:]
        u = u * (sx_shoulder + (sx_chest - sx_shoulder) * _smooth(v / armpit)
                 + (sx_hips - sx_chest) * _smooth((v - armpit) / (length - armpit)))
        w = _smooth(v / length)
        return (1 - w) * (o0 + u * x0 + v * y0) + w * (o1 + u * x1 + (v - length) * y1)
    return place


def garment_landmarks(body, garment):
    """(product points, body points): the thin-plate spline's landmark pairs. Torso landmarks go
    where `_body_frames` puts them; a sleeve lies along its upper arm, keeping length and width."""
    place, points = _body_frames(body, garment), garment['points']
    product = [points['torso'], points['interior']]
    on_body = [place(points['torso']), place(points['interior'])]
    for side in (-1, 1):
        if f'sleeve{side}' not in points:
            continue
        s_pt, a_pt, e_out, e_in = points[f'sleeve{side}']
        s_b, a_b, eo_b, ei_b = place(points[f'sleeve{side}'])
        shoulder = body[f'shoulder{side}']
        d = _unit(body[f'arm_angle{side}'], body['down'], body['right'], side)
        across = side * np.array([d[1], -d[0]])
        seam = (s_b + a_b) / 2
        end = shoulder + ((seam - shoulder) @ d + np.linalg.norm((eo_b + ei_b) / 2 - seam)) * d
        half = (np.linalg.norm(e_out - e_in) / 2 * (body['shoulder_half'] + 4 * body['s'])
                / garment['shoulder'])
        eo_b, ei_b = end + half * across, end - half * across
        for f in (1 / 3, 2 / 3, 1):  # along both edges of the sleeve
            product.append([s_pt + f * (e_out - s_pt), a_pt + f * (e_in - a_pt)])
            on_body.append([s_b + f * (eo_b - s_b), a_b + f * (ei_b - a_b)])
    return np.concatenate(product), np.concatenate(on_body)


def _bilinear(stack, x, y):
    """Sample stack [h, w, c] at float pixel coordinates (clamped to the array) -> [..., c]."""
    h, w = stack.shape[:2]
    x, y = np.clip(x, 0, w - 1.0001), np.clip(y, 0, h - 1.0001)
    x0, y0 = x.astype(int), y.astype(int)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    top = stack[y0, x0] * (1 - fx) + stack[y0, x0 + 1] * fx
    bottom = stack[y0 + 1, x0] * (1 - fx) + stack[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _wear(product, on_body, layers):
    """Product-image layers [H, W, c] (colour, masks) as worn, float [H, W, c]: the smooth spline
    that takes each landmark on_body[i] to product[i] (body pixel -> product pixel) is evaluated
    on a 4-px grid and interpolated; the layers are then sampled bilinearly, like GMM's grid_sample."""
    step = 4
    ys, xs = np.mgrid[:HEIGHT + step:step, :WIDTH + step:step]
    coarse = tps_map(on_body, product, np.stack([xs.ravel(), ys.ravel()], 1)).reshape(*xs.shape, 2)
    y, x = np.mgrid[:HEIGHT, :WIDTH] / step
    source = _bilinear(coarse, x, y)
    return _bilinear(layers.astype(float), source[..., 0], source[..., 1])


def warp_garment(body, garment, cloth_mask):
    """The garment as worn: (RGB float [H, W, 3], worn mask, sleeve mask) on the person."""
    points = garment['points']
    sleeves = _fill([points[f'sleeve{s}'][[0, 2, 3, 1]] for s in (-1, 1) if f'sleeve{s}' in points])
    sampled = _wear(*garment_landmarks(body, garment), np.dstack([garment['texture'], cloth_mask, sleeves]))
    worn = sampled[..., 3] >= 0.5
    return sampled[..., :3], worn, worn & (sampled[..., 4] >= 0.5)


# ---- Trousers, shorts and skirts as products (Dress Code's lower_body) ----

PANTS_HALF_WIDTHS = (13, 10.5, 9)  # of a trouser leg on the body at the hip, knee and ankle (scale 1)
PRODUCT_LEG = 184.0  # product-image length of a trouser leg, hip line to hem
BOTTOM_PATTERNS = {'solid': 0.4, 'stripes': 0.1, 'vstripes': 0.15, 'checks': 0.2, 'dots': 0.15}
LEG_STEPS = np.linspace(0, 1, 4)[:, None]  # where landmarks sit along a trouser leg, top to hem


def random_bottom(rng, kind=None):
    """Trousers, shorts or a skirt laid flat (`kind`, or drawn from BOTTOMS): a dict with the
    keys of random_garment's that render_cloth and _texture read, and its measures (product
    pixels): the waist's top and half width; a skirt's length and flare (of its hem's half
    width); trousers' hip line (y, half width), crotch height, hem (y, half width, centre offset)
    and reach (the fraction of the leg they cover, 1 to the ankle)."""
    kind = _pick(rng, BOTTOMS) if kind is None else kind
    m = SimpleNamespace(kind=kind, top=rng.uniform(14, 22), waist=rng.uniform(28, 34))
    if kind == 'skirt':
        m.length, m.flare = rng.uniform(80, 150), rng.uniform(10, 30)
        hem = [np.array([CX + side * (m.waist + m.flare), m.top + m.length]) for side in (1, -1)]
        outline = [(CX - m.waist, m.top), (CX + m.waist, m.top),
                   *_bezier(hem[0], np.array([CX, m.top + m.length + 8]), hem[1])]
    else:
        m.hip, m.hip_y = m.waist * rng.uniform(1.08, 1.2), m.top + rng.uniform(34, 42)
        m.crotch_y = m.hip_y + rng.uniform(4, 10)
        if kind == 'pants':
            m.reach, m.hem_half, m.hem_centre = 1.0, rng.uniform(11, 17), m.hip / 2 + rng.uniform(2, 10)
        else:  # shorts: wide legs
            m.reach, m.hem_half, m.hem_centre = (rng.uniform(0.25, 0.4), m.hip / 2 + rng.uniform(-2, 3),
                                                 m.hip / 2 + rng.uniform(4, 9))
        m.hem_y = m.hip_y + m.reach * PRODUCT_LEG
        leg = {side: [(CX + side * (m.hem_centre + m.hem_half), m.hem_y),
                      (CX + side * (m.hem_centre - m.hem_half), m.hem_y)] for side in (-1, 1)}
        outline = [(CX - m.waist, m.top), (CX + m.waist, m.top), (CX + m.hip, m.hip_y), *leg[1],
                   (CX, m.crotch_y), *leg[-1][::-1], (CX - m.hip, m.hip_y)]
    bottom = dict(kind=kind, label=SKIRT if kind == 'skirt' else PANTS, top=m.top, measures=m,
                  points={'outline': np.array(outline)}, pattern=_pick(rng, BOTTOM_PATTERNS))
    bottom['texture'] = _texture(rng, bottom)
    return bottom


def _waist_line(body):
    """Where a bottom's waistband sits: its height down the torso, the hips' sideways sway and
    the waistband's half width."""
    s, torso = body['s'], body['torso']
    sway = ((body['hip-1'] + body['hip1']) / 2 - torso(0, body['torso_len'])) @ body['right']
    return body['torso_len'] - 14 * s, sway, body['hip_half'] + 10 * s


def _along(line, f):
    """Points at fractions f [n, 1] of a three-point polyline (0.5 at its middle point)."""
    return np.where(f <= 0.5, line[0] + 2 * f * (line[1] - line[0]),
                    line[1] + (2 * f - 1) * (line[2] - line[1]))


def _trouser_landmarks(waist, crotch, legs):
    """The landmarks of trousers in one order, on the product or on the body: the waistband's
    three points (image left to right), the crotch, the point between them, and per side (legs:
    {side: (outer edge, inner edge)} at LEG_STEPS, the inner edge starting at the crotch) the
    edges' points and those midway between them."""
    points = [*waist, crotch, (waist[1] + crotch) / 2]
    for side in (-1, 1):
        outer, inner = legs[side]
        points += [*outer, *inner[1:], *(outer[1:] + inner[1:]) / 2]
    return np.array(points)


def _product_leg(m, side):
    """(outer edge, inner edge) of a flat trouser leg at LEG_STEPS: straight, hip line to hem."""
    top = np.array([[CX + side * m.hip, m.hip_y], [CX, m.crotch_y]])
    hem = np.array([[CX + side * (m.hem_centre + m.hem_half), m.hem_y],
                    [CX + side * (m.hem_centre - m.hem_half), m.hem_y]])
    return tuple(top[i] + LEG_STEPS * (hem[i] - top[i]) for i in (0, 1))


def _worn_leg(body, side, crotch, reach):
    """(outer edge, inner edge) of a trouser leg as worn at LEG_STEPS * reach of the leg: along
    hip, knee and ankle at PANTS_HALF_WIDTHS, the inner edge from the crotch."""
    joints = np.array([body[f'{joint}{side}'] for joint in ('hip', 'knee', 'ankle')])
    leg = joints[2] - joints[0]
    out = side * np.array([leg[1], -leg[0]]) / np.linalg.norm(leg)  # away from the other leg
    widths = np.array(PANTS_HALF_WIDTHS)[:, None] * body['s'] * out
    inner = np.array([crotch, *(joints - widths)[1:]])
    return _along(joints + widths, LEG_STEPS * reach), _along(inner, LEG_STEPS * reach)


def bottom_landmarks(body, bottom):
    """(product points, body points), as garment_landmarks: the waistband on the waist line (its
    width gives the product-to-body scale of a skirt's length and flare), trouser legs along the
    legs (shorts along the first `reach` of them)."""
    m, torso = bottom['measures'], body['torso']
    waist, sway, outer = _waist_line(body)
    if m.kind == 'skirt':
        k = outer / m.waist
        grid = [(u, v) for v in LEG_STEPS[:, 0] for u in (-1, 0, 1)]
        product = [(CX + u * (m.waist + v * m.flare), m.top + v * m.length) for u, v in grid]
        on_body = [torso(sway + u * (outer + v * m.flare * k), waist + v * m.length * k) for u, v in grid]
        return np.array(product), np.array(on_body)
    crotch = torso(sway, body['torso_len'] + 16 * body['s'])
    legs = {side: _product_leg(m, side) for side in (-1, 1)}
    product = _trouser_landmarks([np.array([CX + u * m.waist, m.top]) for u in (-1, 0, 1)],
                                 np.array([CX, m.crotch_y]), legs)
    legs = {side: _worn_leg(body, side, crotch, m.reach) for side in (-1, 1)}
    on_body = _trouser_landmarks([torso(sway + u * outer, waist) for u in (-1, 0, 1)], crotch, legs)
    return product, on_body


def warp_bottom(body, bottom, cloth_mask):
    """The bottom as worn: (RGB float [H, W, 3], worn mask)."""
    sampled = _wear(*bottom_landmarks(body, bottom), np.dstack([bottom['texture'], cloth_mask]))
    return sampled[..., :3], sampled[..., 3] >= 0.5


def _colour(rng, table, jitter=8):
    return np.clip(table[rng.integers(len(table))] + rng.uniform(-jitter, jitter, 3), 0, 255)


class Layers:
    """The person image and its parse, painted back to front with the same masks; `neck` marks
    where the neck's paint is still visible."""

    def __init__(self, background):
        self.image = np.full((HEIGHT, WIDTH, 3), background, float)
        self.parse = np.zeros((HEIGHT, WIDTH), np.uint8)
        self.neck = np.zeros((HEIGHT, WIDTH), bool)

    def paint(self, mask, label, colour, neck=False):
        """Label `mask` and colour it: one colour, or an [H, W, 3] image (the worn garment)."""
        self.parse[mask] = label
        self.neck[mask] = neck
        self.image[mask] = colour if np.ndim(colour) == 1 else colour[mask]


def _draw_lower_body(layers, rng, body, legs_only, skin, bottom):
    """Legs, shoes when the ankles are in the frame, then (unless `legs_only`: under a dress or a
    worn product) trousers, shorts or a skirt."""
    s, right, torso = body['s'], body['right'], body['torso']
    leg_lines = {side: [body[f'hip{side}'], body[f'knee{side}'], body[f'ankle{side}']] for side in (-1, 1)}
    for side in (-1, 1):
        layers.paint(_fill([_limb(leg_lines[side], np.array([11, 8.5, 6.5]) * s)]), LEG[side], skin)
        ankle = body[f'ankle{side}']
        if ankle[1] < HEIGHT + 4:
            shoe = _ellipse(ankle + np.array([side * 2, 6 * s]), 8 * s, 5 * s)
            layers.paint(_fill([shoe]), SHOE[side], bottom * 0.5)
    if legs_only:
        return
    waist, sway, outer = _waist_line(body)
    kind = _pick(rng, BOTTOMS)
    if kind == 'skirt':
        flare = rng.uniform(10, 20) * s
        hem = body['torso_len'] + rng.uniform(38, 58) * s
        skirt = [torso(sway - outer, waist), torso(sway + outer, waist),
                 torso(sway + outer + flare, hem), torso(sway - outer - flare, hem)]
        layers.paint(_fill([skirt]), SKIRT, bottom)
        return
    pelvis = [torso(sway - outer, waist), torso(sway + outer, waist), body['hip1'] + 10 * s * right,
              torso(sway, body['torso_len'] + 16 * s), body['hip-1'] - 10 * s * right]
    stop = rng.uniform(0.25, 0.4)  # shorts end this far down the thigh
    legs = [_limb([hip, knee, ankle], np.array(PANTS_HALF_WIDTHS) * s) if kind == 'pants'
            else _limb([hip, hip + 2 * stop * (knee - hip)], np.array([13, 12]) * s)
            for hip, knee, ankle in leg_lines.values()]
    layers.paint(_fill([pelvis] + legs), PANTS, bottom)


def _draw_torso_skin(layers, body, neckline, sleeveless, skin):
    """Skin showing beside the garment: the shoulders of a sleeveless garment (labelled as
    the arm of that side) and the neck down into the neckline (labelled face, as LIP does)."""
    s, down, right, torso = body['s'], body['down'], body['right'], body['torso']
    if sleeveless:
        for side in (-1, 1):
            sh = body[f'shoulder{side}']
            shoulder = [torso(0, -1), torso(side * 0.5 * body['shoulder_half'], 0),
                        sh - 5 * s * down, sh + 6 * s * right * side,
                        torso(side * 0.9 * body['shoulder_half'], 36 * s), torso(0, 36 * s)]
            layers.paint(_fill([shoulder], [(sh, 7 * s)]), ARM[side], skin)
    rx, ry = body['head_rx'], body['head_ry']
    left, right_end = neckline[-1] - 3 * right, neckline[0] + 3 * right
    deepest = neckline[neckline[:, 1].argmax()]
    neck = [on_head(body, -0.5 * rx, 0.55 * ry), on_head(body, 0.5 * rx, 0.55 * ry), right_end,
            right_end + ((deepest - right_end) @ down + 4) * down,
            left + ((deepest - left) @ down + 4) * down, left]
    layers.paint(_fill([neck]), FACE, skin, neck=True)


def _draw_arms(layers, body, worn, sleeves, armpits, sleeveless, skin):
    """Arms go under the garment's sleeves and shoulders but over its sides below the
    armpits. Returns the forearms held in front of the torso, painted last."""
    s, in_front = body['s'], []
    for side, armpit in zip((-1, 1), armpits):
        sh, el, wr = body[f'shoulder{side}'], body[f'elbow{side}'], body[f'wrist{side}']
        hand = wr + 4 * s * (wr - el) / np.linalg.norm(wr - el)
        caps = [(sh, 7 * s), (el, 5.6 * s)] if sleeveless else [(el, 5.6 * s)]
        upper = _fill([_limb([sh, el], np.array([6.5, 5.6]) * s)], caps)
        fore = _fill([_limb([el, wr], np.array([5.6, 4.4]) * s)], [(hand, 5.5 * s)])
        if body[f'arm_mode{side}'] == 'down':
            upper |= fore
        else:
            in_front.append((fore, ARM[side]))
        along = (el - sh) / np.linalg.norm(el - sh)
        below_armpit = (PIXELS - sh) @ along > (armpit - sh) @ along
        layers.paint(upper & (~worn | (below_armpit & ~sleeves)), ARM[side], skin)
    return in_front


def _draw_head(layers, rng, body, hair_style, skin, hair):
    """Hair cap (above the mouth line), face, fringe, then eyes, brows and mouth."""
    s, rx, ry, angle = body['s'], body['head_rx'], body['head_ry'], body['head_tilt']
    t = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    # an ellipse's width, centre, height and the level it is cut at, in head radii
    wide, centre, tall, cut = (1.22, 0.05, 1.12, 0.5) if hair_style == 'bob' else (1.1, -0.14, 1.02, 0.3)
    cap = np.stack([wide * rx * np.cos(t), centre * ry + tall * ry * np.sin(t)], 1)
    cap = cap[cap[:, 1] < cut * ry]
    layers.paint(_fill([on_head(body, cap[:, 0], cap[:, 1])]), HAIR, hair)
    layers.paint(_fill([_ellipse(body['head'], rx, ry, angle)]), FACE, skin)
    start = np.arcsin(-rng.uniform(0.4, 0.55))  # the hairline, as an angle on the face ellipse
    fringe = _ellipse(body['head'], rx, ry, angle, n=24, start=np.pi - start, stop=2 * np.pi + start)
    layers.paint(_fill([fringe]), HAIR, hair)
    # features are colour only: the parse keeps them as face
    eyes = _fill(circles=[(on_head(body, u * rx, 0), 1.7 * s) for u in (-0.36, 0.36)])
    brows = _fill([_limb([on_head(body, (u - 0.12) * rx, -0.2 * ry),
                          on_head(body, (u + 0.12) * rx, -0.22 * ry)], [0.9, 0.9])
                   for u in (-0.36, 0.36)])
    mouth = _fill([_limb([on_head(body, -0.2 * rx, 0.56 * ry), on_head(body, 0.2 * rx, 0.56 * ry)],
                         [1.1, 1.1])])
    layers.image[eyes] = (40, 32, 30)
    layers.image[brows & (layers.parse == FACE)] = hair * 0.8
    layers.image[mouth] = (150, 72, 70)


def render_person(rng, body, garment, cloth_mask, lower=None):
    """Draw the person back to front -> (image uint8 [H, W, 3], parse uint8 [H, W], CP-VTON+'s
    parse: the same with the visible neck as NECK_LABEL). `lower`: (a bottom from random_bottom,
    its product mask), worn tucked in (over the garment's hem, under the arms) instead of drawn
    trousers, shorts or skirt."""
    layers = Layers(background=rng.uniform(234, 246) + rng.uniform(-2, 2, 3))  # light, tinted
    skin, hair, bottom = _colour(rng, SKIN), _colour(rng, HAIR_COLOURS), _colour(rng, BOTTOM_COLOURS)
    rx, ry, s, torso = body['head_rx'], body['head_ry'], body['s'], body['torso']
    hair_style = _pick(rng, HAIR_STYLES)
    if hair_style == 'long':  # falls behind the shoulders
        length = rng.uniform(20, 40) * s
        back = [on_head(body, -1.08 * rx, -0.1 * ry), torso(-1.25 * rx, length),
                torso(1.25 * rx, length), on_head(body, 1.08 * rx, -0.1 * ry)]
        layers.paint(_fill([back]), HAIR, hair)
    _draw_lower_body(layers, rng, body, garment['dress'] or lower is not None, skin, bottom)
    rgb, worn, sleeves = warp_garment(body, garment, cloth_mask)
    place = _body_frames(body, garment)
    sleeveless = garment['sleeves'] == 'none'
    _draw_torso_skin(layers, body, place(garment['points']['neckline']), sleeveless, skin)
    layers.paint(worn, garment['label'], rgb)
    if lower is not None:
        lower_rgb, lower_worn = warp_bottom(body, *lower)
        layers.paint(lower_worn, lower[0]['label'], lower_rgb)
    in_front = _draw_arms(layers, body, worn, sleeves, place(garment['points']['armpits']),
                          sleeveless, skin)
    _draw_head(layers, rng, body, hair_style, skin, hair)
    for mask, label in in_front:  # forearms in front of the torso cover the garment
        layers.paint(mask, label, skin)
    return _soften(layers.image), layers.parse, np.where(layers.neck, cp_dataset.NECK_LABEL, layers.parse)


def make_sample(seed, person_id):
    """Everything about one person: dict of image, parse, keypoints, cloth, cloth_mask and
    CP-VTON+'s parse_new and body (bool [H, W])."""
    rng = np.random.default_rng([seed, person_id])
    garment = random_garment(rng)
    cloth, cloth_mask = render_cloth(garment)
    body = random_body(rng, long_sleeves=garment['sleeves'] == 'long')
    image, parse, parse_new = render_person(rng, body, garment, cloth_mask)
    return dict(image=image, parse=parse, keypoints=keypoints(body, rng), cloth=cloth, cloth_mask=cloth_mask,
                parse_new=parse_new.astype(np.uint8), body=parse > 0)


def make_dresscode_sample(seed, person_id, category):
    """One Dress Code person of `category`, the whole figure in the frame (FULL_FIGURE): dict of
    image, parse (LIP ids), keypoints (COCO-18) and cloth, the category's product image: the top
    (upper_body; never a dress), the trousers, shorts or skirt worn with some top (lower_body) or
    the dress (dresses). Its own random stream, apart from the VITON persons'."""
    rng = np.random.default_rng([seed, DRESSCODE_STREAM, person_id])
    garment = random_garment(rng, dress=category == 'dresses')
    cloth, cloth_mask = render_cloth(garment)
    lower = None
    if category == 'lower_body':
        bottom = random_bottom(rng)
        cloth, bottom_mask = render_cloth(bottom)
        lower = (bottom, bottom_mask)
    body = random_body(rng, long_sleeves=garment['sleeves'] == 'long', frame=FULL_FIGURE)
    image, parse, _ = render_person(rng, body, garment, cloth_mask, lower)
    return dict(image=image, parse=parse, keypoints=keypoints(body, rng), cloth=cloth)


# ---- Writing the dataset ----

# The first file number of each split, per layout. VITON-HD's persons are VITON's (VITON person
# TEST_ID0 + i is VITON-HD file FIRST_ID['vitonhd']['test'] + i). Dress Code numbers each split's
# categories in blocks of CATEGORY_BLOCK, in CATEGORIES order.
FIRST_ID = {'viton': {'train': TRAIN_ID0, 'test': TEST_ID0},
            'vitonhd': {'train': 0, 'test': 50000},
            'dresscode': {'train': 0, 'test': 500000}}
CATEGORY_BLOCK = 100000
MAX_COUNTS = {'viton': (TEST_ID0 - TRAIN_ID0, 999999 - TEST_ID0),  # (train, test): the ids' digits
              'vitonhd': (50000, 50000), 'dresscode': (CATEGORY_BLOCK, CATEGORY_BLOCK)}
SCALE = 4  # VITON-HD's and Dress Code's 768x1024 images are the 192x256 drawings enlarged 4 times
TORSO_SKIN = 10  # CIHP's label of the neck and chest skin (VITON-HD's parses)
# LIP ids as drawn -> Dress Code's ATR ids (gloves and socks, never drawn, have no ATR class: 255)
LIP_TO_ATR = np.full(256, 255, np.uint8)
LIP_TO_ATR[[0, 1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]] = [
    0, 1, 2, 3, 4, 7, 4, 6, 7, 17, 5, 11, 14, 15, 12, 13, 9, 10]  # a coat is upper clothes


def _groups(dataset, n_train, n_test):
    """[(split, category (Dress Code) or None, file numbers)]: each split's persons, per category."""
    categories = list(enumerate(layouts.CATEGORIES)) if dataset == 'dresscode' else [(0, None)]
    return [(split, category, [FIRST_ID[dataset][split] + index * CATEGORY_BLOCK + i for i in range(n)])
            for split, n in (('train', n_train), ('test', n_test)) for index, category in categories]


def _pair_files(dataset):
    """A layout's pair lists, relative to the root."""
    if dataset == 'viton':
        return ['train_pairs.txt', 'test_pairs.txt', 'test_pairs_same.txt']
    if dataset == 'vitonhd':
        return ['train_pairs.txt', 'test_pairs.txt']
    lists = ['train_pairs.txt', 'test_pairs_paired.txt', 'test_pairs_unpaired.txt']
    return lists + [f'{category}/{name}' for category in layouts.CATEGORIES for name in lists]


def _person_files(dataset, split, category, number):
    """A person's paths relative to the root, in the order its writer takes them."""
    if dataset == 'viton':  # image, parse, pose, cloth, cloth-mask, parse-new, body mask
        n = f'{number:06d}'
        return [f'{split}/image/{n}_0.jpg', f'{split}/image-parse/{n}_0.png',
                f'{split}/pose/{n}_0_keypoints.json', f'{split}/cloth/{n}_1.jpg',
                f'{split}/cloth-mask/{n}_1.jpg',
                *(f'{split}/{folder}/{n}_0.png' for folder in PLUS_FOLDERS)]
    if dataset == 'vitonhd':
        n = f'{number:05d}_00'
        return [f'{split}/image/{n}.jpg', f'{split}/cloth/{n}.jpg', f'{split}/cloth-mask/{n}.jpg',
                f'{split}/image-parse-v3/{n}.png', f'{split}/openpose_json/{n}_keypoints.json']
    n = f'{number:06d}'  # person, garment, label map, keypoints
    return [f'{category}/images/{n}_0.jpg', f'{category}/images/{n}_1.jpg',
            f'{category}/label_maps/{n}_4.png', f'{category}/keypoints/{n}_2.json']


def planned_files(n_train, n_test, dataset='viton'):
    """Every path (relative to the root) that generate() writes, the marker excluded."""
    files = _pair_files(dataset)
    for split, category, numbers in _groups(dataset, n_train, n_test):
        for number in numbers:
            files += _person_files(dataset, split, category, number)
    return files


def _deranged(ids, rng):
    """(id, partner) pairs, every id once on each side and never with itself (for two or more ids):
    one cycle through a random order."""
    order = rng.permutation(len(ids))
    partner = np.empty(len(ids), int)
    partner[order] = np.roll(order, -1)
    return [(i, ids[j]) for i, j in zip(ids, partner)]


def _pair_lists(dataset, groups, seed):
    """{path: text} of a layout's pair lists. VITON: train and test_pairs_same pair each person
    with her own garment, test_pairs with another's. VITON-HD: both lists with another's, as the
    real ones (the test list the VITON sample's). Dress Code: per category train and paired test
    lists with her own, the unpaired test list with another of the category; the root lists are
    theirs joined, with the category's index as a third column."""
    ids = {(split, category): numbers for split, category, numbers in groups}

    def text(line, pairs):
        return ''.join(line.format(p, c) for p, c in pairs)

    def rng(*stream):
        return np.random.default_rng([seed, *stream])
    if dataset == 'viton':
        line, train, test = '{:06d}_0.jpg {:06d}_1.jpg\n', ids['train', None], ids['test', None]
        return {'train_pairs.txt': text(line, zip(train, train)),
                'test_pairs_same.txt': text(line, zip(test, test)),
                'test_pairs.txt': text(line, _deranged(test, rng(999999)))}
    if dataset == 'vitonhd':
        line = '{:05d}_00.jpg {:05d}_00.jpg\n'
        return {'train_pairs.txt': text(line, _deranged(ids['train', None], rng(999998))),
                'test_pairs.txt': text(line, _deranged(ids['test', None], rng(999999)))}
    lists = {}
    for index, category in enumerate(layouts.CATEGORIES):
        train, test = ids['train', category], ids['test', category]
        category_lists = {'train_pairs.txt': list(zip(train, train)),
                          'test_pairs_paired.txt': list(zip(test, test)),
                          'test_pairs_unpaired.txt': _deranged(test, rng(DRESSCODE_STREAM, 999999, index))}
        for name, pairs in category_lists.items():
            lists[f'{category}/{name}'] = text('{:06d}_0.jpg    {:06d}_1.jpg\n', pairs)
            lists[name] = lists.get(name, '') + text('{:06d}_0.jpg\t{:06d}_1.jpg\t%d\n' % index, pairs)
    return lists


def _save_parse(labels, path):
    """Label ids [H, W] as a palette PNG with the VOC colour map, as the datasets' parses are."""
    parse = Image.fromarray(labels, mode='L').convert('P')
    parse.putpalette(PARSE_PALETTE)
    parse.save(path)


def _write_person(paths, sample):
    """Write one VITON person's seven files to `paths` (as from _person_files)."""
    image, parse_path, pose_path, cloth, mask, parse_new, body = paths
    Image.fromarray(sample['image']).save(image, 'JPEG', **JPEG_OPTIONS)
    _save_parse(sample['parse'], parse_path)
    pose_path.write_text(json.dumps({'version': 1.0, 'people': [{
        'face_keypoints': [], 'pose_keypoints': [float(v) for v in sample['keypoints'].ravel()],
        'hand_right_keypoints': [], 'hand_left_keypoints': []}]}))
    Image.fromarray(sample['cloth']).save(cloth, 'JPEG', **JPEG_OPTIONS)
    Image.fromarray(sample['cloth_mask'].astype(np.uint8) * 255, mode='L').save(mask, 'JPEG', **JPEG_OPTIONS)
    Image.fromarray(sample['parse_new'], mode='L').save(parse_new)
    Image.fromarray(sample['body'].astype(np.uint8) * 255, mode='L').save(body)


def _enlarged(rgb):
    """A drawn image at 768x1024 (bicubic)."""
    return Image.fromarray(rgb).resize((WIDTH * SCALE, HEIGHT * SCALE), Image.Resampling.BICUBIC)


def _enlarged_labels(labels):
    """A parse at 768x1024 (nearest: every label pixel becomes SCALE x SCALE)."""
    return labels.repeat(SCALE, axis=0).repeat(SCALE, axis=1)


def body25(points):
    """OpenPose BODY_25 [25, 3] from the drawn COCO-18 keypoints [18, 3], in pixels of the enlarged
    image: MidHip is the hips' mean when both are found; toes and heels are put below a found
    ankle (when in the frame); a missing point is (0, 0, 0)."""
    out = np.zeros((25, 3))
    out[cp_dataset.BODY25_TO_COCO18] = points * (SCALE, SCALE, 1)
    if (out[[9, 12], 2] > 0).all():
        out[8] = out[[9, 12]].mean(axis=0)
    # BODY_25 ankles (11 right, 14 left) -> big toe, small toe, heel; side -1 is the image left
    for ankle, feet, side in ((11, (22, 23, 24), -1), (14, (19, 20, 21), 1)):
        x, y, confidence = out[ankle]
        for index, (dx, dy) in zip(feet, ((-4 * side, 11), (6 * side, 10), (side, 4))):
            if confidence > 0 and y + dy * SCALE < HEIGHT * SCALE - 1:
                out[index] = x + dx * SCALE, y + dy * SCALE, confidence
    return out


def _write_vitonhd_person(paths, sample):
    """Write one VITON person enlarged to VITON-HD's five files (as from _person_files): the
    parse in CIHP ids (the visible neck and chest skin TORSO_SKIN), the pose as BODY_25 in
    OpenPose 1.3's JSON (no face or hands found: zeros), the cloth mask made from the enlarged
    cloth as its JPEG reads back."""
    image, cloth, mask, parse, pose = paths
    _enlarged(sample['image']).save(image, 'JPEG', **JPEG_OPTIONS)
    cloth_bytes, cloth_pixels = _jpeg(_enlarged(sample['cloth']))
    cloth.write_bytes(cloth_bytes)
    mask_pixels = cloth_mask_like_viton(cloth_pixels).astype(np.uint8) * 255
    Image.fromarray(mask_pixels, mode='L').save(mask, 'JPEG', **JPEG_OPTIONS)
    labels = sample['parse_new']
    _save_parse(_enlarged_labels(np.where(labels == cp_dataset.NECK_LABEL, TORSO_SKIN, labels)), parse)
    pose.write_text(json.dumps({'version': 1.3, 'people': [{
        'person_id': [-1], 'pose_keypoints_2d': [float(v) for v in body25(sample['keypoints']).ravel()],
        'face_keypoints_2d': [0.0] * 210, 'hand_left_keypoints_2d': [0.0] * 63,
        'hand_right_keypoints_2d': [0.0] * 63, 'pose_keypoints_3d': [], 'face_keypoints_3d': [],
        'hand_left_keypoints_3d': [], 'hand_right_keypoints_3d': []}]}))


def dresscode_keypoints(points):
    """Dress Code's [[x, y, score, id]] x 18 from the drawn COCO-18 keypoints: at 384x512 (half
    the 768x1024 image's pixels), id counting the found points, a missing one [-1, -1, 0, -1]."""
    rows, found = [], 0
    for x, y, confidence in points:
        if confidence > 0:
            rows.append([float(x) * SCALE / 2, float(y) * SCALE / 2, float(confidence), found])
            found += 1
        else:
            rows.append([-1, -1, 0, -1])
    return rows


def _write_dresscode_person(paths, sample):
    """Write one Dress Code person's four files (as from _person_files), the label map in ATR ids."""
    image, cloth, label_map, points = paths
    _enlarged(sample['image']).save(image, 'JPEG', **JPEG_OPTIONS)
    _enlarged(sample['cloth']).save(cloth, 'JPEG', **JPEG_OPTIONS)
    _save_parse(_enlarged_labels(LIP_TO_ATR[sample['parse']]), label_map)
    points.write_text(json.dumps({'keypoints': dresscode_keypoints(sample['keypoints'])}))


def _draw(dataset, seed, split, category, number):
    """The person behind a file number."""
    if dataset == 'dresscode':
        return make_dresscode_sample(seed, number, category)
    return make_sample(seed, number - FIRST_ID[dataset][split] + FIRST_ID['viton'][split])


WRITERS = {'viton': _write_person, 'vitonhd': _write_vitonhd_person, 'dresscode': _write_dresscode_person}


def read_marker(root):
    """The marker of a sample dataset in `root` (a dict), or None if there is none."""
    try:
        return json.loads((Path(root) / MARKER).read_text())
    except (OSError, ValueError):
        return None


def counts(dataset, n_train=None, n_test=None):
    """(n_train, n_test) with the dataset's defaults for those left None (Dress Code: per category)."""
    defaults = (DRESSCODE_N_TRAIN, DRESSCODE_N_TEST) if dataset == 'dresscode' else (N_TRAIN, N_TEST)
    return (defaults[0] if n_train is None else n_train, defaults[1] if n_test is None else n_test)


def generate(root, n_train=None, n_test=None, seed=0, dataset='viton'):
    """Write a sample dataset in `dataset`'s layout (see the module doc) into `root`: n_train +
    n_test persons (per category for Dress Code; by default N_TRAIN and N_TEST, for Dress Code
    DRESSCODE_N_TRAIN and DRESSCODE_N_TEST), overwriting files of the same names and
    touching nothing else. The marker lists every file: it is written first (as incomplete) so an
    interrupted run can still be cleaned up, and completed at the end. VITON's marker has no
    'dataset' key (as before the other layouts); the others' name theirs."""
    if dataset not in layouts.DATASETS:
        raise ValueError(f'dataset must be one of {", ".join(layouts.DATASETS)}, got {dataset!r}')
    n_train, n_test = counts(dataset, n_train, n_test)
    max_train, max_test = MAX_COUNTS[dataset]
    if not 1 <= n_train <= max_train:
        raise ValueError(f'n_train must be between 1 and {max_train}, got {n_train}')
    if not 2 <= n_test <= max_test:
        raise ValueError(f'n_test must be between 2 (the unpaired test list pairs every test person '
                         f'with another person\'s garment) and {max_test}, got {n_test}')
    root, files = Path(root), planned_files(n_train, n_test, dataset)
    marker = dict(generator='sample_data.py', **({} if dataset == 'viton' else {'dataset': dataset}),
                  n_train=n_train, n_test=n_test, seed=seed, complete=False, files=files)
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text(json.dumps(marker, indent=1))
    for folder in sorted({(root / name).parent for name in files}):
        folder.mkdir(parents=True, exist_ok=True)
    groups = _groups(dataset, n_train, n_test)
    for split, category, numbers in groups:
        for number in numbers:
            paths = [root / name for name in _person_files(dataset, split, category, number)]
            WRITERS[dataset](paths, _draw(dataset, seed, split, category, number))
    for name, text in _pair_lists(dataset, groups, seed).items():
        (root / name).write_text(text)
    marker['complete'] = True
    (root / MARKER).write_text(json.dumps(marker, indent=1))


def remove_sample(root):
    """Delete what a previous generate() wrote in `root` (per its marker), nothing else; the
    folders of those files only when that leaves them empty. Returns the number of files removed."""
    root, marker = Path(root), read_marker(root)
    if marker is None:
        return 0
    removed, folders = 0, set()
    for name in marker.get('files', []):
        if '..' in Path(name).parts or Path(name).is_absolute():  # a marker can be edited
            continue
        path = root / name
        folders.update(Path(name).parents)
        if path.is_file() and not path.is_symlink():
            path.unlink()
            removed += 1
    for folder in sorted(folders - {Path('.')}, key=lambda f: len(f.parts), reverse=True):
        with contextlib.suppress(OSError):  # not empty (or not there)
            (root / folder).rmdir()
    (root / MARKER).unlink()
    return removed


def preview(path, seed=0, ids=(0, 4, 7)):
    """Save a strip of garment / person / parse for three persons (a small PNG); the README's is
    made by `python -c "import sample_data; sample_data.preview('pics/sample_dataset.png')"`."""
    tiles, gap = [], np.full((HEIGHT, 4, 3), 255, np.uint8)
    for person_id in ids:
        sample = make_sample(seed, person_id)
        parse = np.array(cp_dataset.LIP_PALETTE, np.uint8)[sample['parse']]
        parse[sample['parse'] == 0] = 255  # a white background
        tiles += [sample['cloth'], gap, sample['image'], gap, parse, np.full((HEIGHT, 12, 3), 255, np.uint8)]
    strip = Image.fromarray(np.concatenate(tiles[:-1], axis=1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    strip.quantize(colors=96, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True)
