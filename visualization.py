"""Image helpers: TensorBoard grids, saving result images, the LIP parse palette.

Tensors are in the networks' range [-1, 1]; they are shown as (t + 1) / 2.
"""
import os

import numpy as np
import torch
from PIL import Image

# Colours of the 20 LIP labels (0 background ... 19 right shoe), as the LIP/JPPNet tools draw them.
LIP_PALETTE = [
    (0, 0, 0), (128, 0, 0), (255, 0, 0), (0, 85, 0), (170, 0, 51),
    (255, 85, 0), (0, 0, 85), (0, 119, 221), (85, 85, 0), (0, 85, 85),
    (85, 51, 0), (52, 86, 128), (0, 128, 0), (0, 0, 255), (51, 170, 221),
    (0, 255, 255), (85, 255, 170), (170, 255, 85), (255, 255, 0), (255, 170, 0),
]

BOARD_MAX_IMAGES = 4  # batch elements logged per TensorBoard grid, to bound event-file size


def to_unit(t):
    """[-1, 1] tensor -> [0, 1] (clamped), 1-channel repeated to 3."""
    t = ((t.detach().float() + 1) / 2).clamp(0, 1)
    return t.expand(*t.shape[:-3], 3, *t.shape[-2:]) if t.shape[-3] == 1 else t


def combine_rows(rows):
    """rows: list of lists of [b, c, H, W] tensors -> [b, 3, rows*H, cols*W] canvas (background 0.5)."""
    b, _, h, w = rows[0][0].shape
    n_cols = max(len(row) for row in rows)
    canvas = torch.full((b, 3, len(rows) * h, n_cols * w), 0.5)
    for i, row in enumerate(rows):
        for j, t in enumerate(row):
            canvas[:, :, i * h:(i + 1) * h, j * w:(j + 1) * w] = to_unit(t).cpu()
    return canvas


def board_add_images(board, tag, rows, step):
    """Log one grid image per batch element (at most BOARD_MAX_IMAGES) as '<tag>/%03d'."""
    canvas = combine_rows(rows)
    for i, image in enumerate(canvas[:BOARD_MAX_IMAGES]):
        board.add_image(f"{tag}/{i:03d}", image, step)


def tensor_to_image(t):
    """One [c, H, W] tensor in [-1, 1] -> PIL image, as the original saves results:
    (t+1)/2*255 clamped to [0, 255] and truncated to uint8; 1 channel -> 'L', 3 -> 'RGB'."""
    array = ((t.detach().float().cpu() + 1) * 0.5 * 255).clamp(0, 255).numpy().astype(np.uint8)
    if array.shape[0] == 1:
        return Image.fromarray(array[0], "L")
    return Image.fromarray(array.transpose(1, 2, 0), "RGB")


def save_images(tensors, names, save_dir):
    """Save each [c, H, W] tensor of a batch as save_dir/<name> (format from the extension;
    .jpg = JPEG at PIL's default quality 75, as the original)."""
    os.makedirs(save_dir, exist_ok=True)
    for t, name in zip(tensors, names):
        tensor_to_image(t).save(os.path.join(save_dir, name))


def colorize_parse(labels):
    """[H, W] integer LIP label array -> RGB PIL image (labels beyond 19 drawn white)."""
    palette = np.full((256, 3), 255, dtype=np.uint8)
    palette[:len(LIP_PALETTE)] = LIP_PALETTE
    return Image.fromarray(palette[np.asarray(labels, dtype=np.uint8)], "RGB")
