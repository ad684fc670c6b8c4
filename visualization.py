"""Image helpers: TensorBoard grids, saving result images, parses drawn in LIP colours (a
dataset's labels in the colours of the LIP labels of the same meaning).

Tensors are in the networks' range [-1, 1]; they are shown as (t + 1) / 2.
"""
import io
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image
from tensorboardX.proto.summary_pb2 import Summary

import atomic
from cp_dataset import LIP_PALETTE

TILE = (192, 256)  # width, height of a strip's tiles
COLUMNS = ["cloth", "cloth mask", "model image", "model parse", "warped cloth", "warped mask", "try-on"]
BOARD_MAX_IMAGES = 4  # batch elements logged per TensorBoard grid, to bound event-file size
BOARD_JPEG_QUALITY = 90


# The helpers below compute in numpy: torch's elementwise ops would wake its intra-op thread pool
# for every small image, which costs more than the arithmetic (badly so on a loaded machine) and
# oversubscribes the cores when they run on ImageWriter's threads. Same float32 values.


def to_unit(t):
    """[-1, 1] tensor -> [0, 1] float32 array (clamped), 1-channel repeated to 3."""
    a = np.clip((t.detach().float().cpu().numpy() + 1) / 2, 0, 1)
    return np.broadcast_to(a, (*a.shape[:-3], 3, *a.shape[-2:])) if a.shape[-3] == 1 else a


def combine_rows(rows):
    """rows: list of lists of [b, c, H, W] tensors -> [b, 3, rows*H, cols*W] tensor in [0, 1]
    (background 0.5)."""
    b, _, h, w = rows[0][0].shape
    n_cols = max(len(row) for row in rows)
    canvas = np.full((b, 3, len(rows) * h, n_cols * w), 0.5, np.float32)
    for i, row in enumerate(rows):
        for j, t in enumerate(row):
            canvas[:, :, i * h:(i + 1) * h, j * w:(j + 1) * w] = to_unit(t)
    return torch.from_numpy(canvas)


def board_add_images(board, tag, rows, step):
    """Log one grid image per batch element (at most BOARD_MAX_IMAGES) as '<tag>/%03d' on a
    tensorboardX SummaryWriter, JPEG-encoded (quality BOARD_JPEG_QUALITY).

    Deviation: tensorboardX's add_image writes PNGs, whose encoding (~150 ms for a 576x768 grid of
    a barely trained model's noisy output) took most of the test loop's time on a 2-core CPU; a
    JPEG takes ~25 ms and TensorBoard shows it the same way (Summary.Image holds any format)."""
    canvas = combine_rows([[t[:BOARD_MAX_IMAGES] for t in row] for row in rows])
    pixels = (canvas.numpy().transpose(0, 2, 3, 1) * 255).astype(np.uint8)  # as add_image scales
    writer = board._get_file_writer()  # tensorboardX's own route for add_image's summary
    for i, image in enumerate(pixels):
        encoded = io.BytesIO()
        Image.fromarray(image).save(encoded, "JPEG", quality=BOARD_JPEG_QUALITY)
        summary = Summary.Image(height=image.shape[0], width=image.shape[1], colorspace=3,
                                encoded_image_string=encoded.getvalue())
        writer.add_summary(Summary(value=[Summary.Value(tag=f"{tag}/{i:03d}", image=summary)]), step)


def tensor_to_image(t):
    """One [c, H, W] tensor in [-1, 1] -> PIL image, as the original saves results:
    (t+1)/2*255 clamped to [0, 255] and truncated to uint8; 1 channel -> 'L', 3 -> 'RGB'."""
    array = np.clip((t.detach().float().cpu().numpy() + 1) * 0.5 * 255, 0, 255).astype(np.uint8)
    if array.shape[0] == 1:
        return Image.fromarray(array[0], "L")
    return Image.fromarray(array.transpose(1, 2, 0), "RGB")


def save_images(tensors, names, save_dir):
    """Save each [c, H, W] tensor of a batch as save_dir/<name> (format from the extension;
    .jpg = JPEG at PIL's default quality 75, as the original)."""
    os.makedirs(save_dir, exist_ok=True)
    for t, name in zip(tensors, names):
        path = os.path.join(save_dir, name)
        try:
            tensor_to_image(t).save(path)
        except OSError as err:  # a full disk: say which file
            raise atomic.explained(err, path) from err


class ImageWriter:
    """Runs save_images (and other output work, e.g. TensorBoard logging) on a small thread pool,
    so that JPEG encoding and file writes overlap the next batch's compute (Pillow releases the
    GIL while encoding). A context manager: leaving it waits for every pending task; the first
    error of a task is raised there or on a later call. At most 2 * threads tasks are pending;
    threads=0 runs every task at once in the caller's thread."""

    def __init__(self, threads=2):
        self.pool = None
        if threads > 0:
            self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="image-writer")
        self.limit, self.pending = 2 * threads, []

    def submit(self, fn, *args):
        """Run fn(*args) on the pool (first waiting while too many tasks are pending)."""
        if self.pool is None:
            fn(*args)
            return
        while len(self.pending) >= self.limit:
            self.pending.pop(0).result()  # raises the task's error, if any
        for future in [f for f in self.pending if f.done()]:
            self.pending.remove(future)
            future.result()
        self.pending.append(self.pool.submit(fn, *args))

    def save(self, tensors, names, save_dir):
        """save_images(tensors, names, save_dir) on the pool (tensors are moved to the CPU here)."""
        self.submit(save_images, tensors.detach().cpu(), list(names), save_dir)

    def wait(self):
        """Wait for every pending task; raises the first error."""
        pending, self.pending = self.pending, []
        for future in pending:
            future.result()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            if exc[0] is None:
                self.wait()
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)


NECK_COLOUR = (170, 170, 50)  # CP-VTON+'s colour for its neck label (20)
OTHER_COLOURS = {"belt": (170, 0, 255), "bag": (255, 0, 170)}  # Dress Code labels LIP lacks
# Dress Code's ATR label ids (layouts.py) -> the LIP id of the same meaning, or a colour of its own.
ATR_AS_LIP = {0: 0, 1: 1, 2: 2, 3: 4, 4: 5, 5: 12, 6: 9, 7: 6, 8: OTHER_COLOURS["belt"], 9: 18, 10: 19, 11: 13,
              12: 16, 13: 17, 14: 14, 15: 15, 16: OTHER_COLOURS["bag"], 17: 11}


def parse_palette(dataset="viton"):
    """uint8 [256, 3]: the colour of each label id of `dataset`'s parses, so that a colour means the
    same body part in every dataset: LIP's (VITON; CP-VTON+'s neck label 20 in NECK_COLOUR), CIHP's
    (VITON-HD: LIP's ids, but for 10, the torso skin, drawn as CP-VTON+'s neck), ATR's (Dress Code:
    each label in the colour of its LIP counterpart). Ids beyond the set are white."""
    lip = np.full((256, 3), 255, dtype=np.uint8)
    lip[:len(LIP_PALETTE)] = LIP_PALETTE
    lip[len(LIP_PALETTE)] = NECK_COLOUR
    if dataset == "dresscode":
        atr = np.full_like(lip, 255)
        for label, meaning in ATR_AS_LIP.items():
            atr[label] = meaning if isinstance(meaning, tuple) else lip[meaning]
        return atr
    if dataset == "vitonhd":
        lip[10] = NECK_COLOUR
    return lip


def colorize_parse(labels, dataset="viton"):
    """[H, W] integer label array of `dataset`'s parses -> RGB PIL image (parse_palette's colours)."""
    return Image.fromarray(parse_palette(dataset)[np.asarray(labels, dtype=np.uint8)], "RGB")


def load_tile(path, is_parse=False, dataset="viton"):
    """One tile as a 192x256 RGB image, resized from any size (a parse with nearest neighbour); a
    label image (P or L mode) parse is coloured with parse_palette(dataset)."""
    with Image.open(path) as image:
        if is_parse and image.mode in ("P", "L"):
            image = colorize_parse(np.array(image), dataset)
        image = image.convert("RGB")
        if image.size != TILE:
            image = image.resize(TILE, Image.NEAREST if is_parse else Image.BILINEAR)
        return image


def make_strip(paths, dataset="viton"):
    """The 7 tiles of COLUMNS side by side (paths or file objects) -> one RGB strip; the parse in
    the colours of `dataset`'s labels."""
    strip = Image.new("RGB", (TILE[0] * len(paths), TILE[1]))
    for i, path in enumerate(paths):
        strip.paste(load_tile(path, is_parse=COLUMNS[i] == "model parse", dataset=dataset), (i * TILE[0], 0))
    return strip
