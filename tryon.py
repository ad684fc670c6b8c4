"""Try one garment on one person: GMM warps the cloth, TOM renders the try-on.

    python tryon.py --person image.jpg --parse parse.png --pose keypoints.json \\
        --cloth cloth.jpg --cloth_mask mask.jpg --out out.png [--strip strip.png]
    python tryon.py --dataset dresscode --category dresses \\
        --person DressCode/dresses/images/048392_0.jpg --parse DressCode/dresses/label_maps/048392_4.png \\
        --pose DressCode/dresses/keypoints/048392_2.json --cloth DressCode/dresses/images/048392_1.jpg \\
        --cloth_mask DressCode/dresses/cloth-mask/048392_1.png --out out.png

The inputs are a person photo with its human parse (label PNG) and keypoints (JSON), and an
in-shop garment photo with its mask, read as the dataset's files are read (cp_dataset's readers,
so a bad file gives the dataset's message, exit status 2). With the default --dataset viton they
are VITON's: a LIP parse (ids 0-19), OpenPose keypoints (COCO-18 or BODY_25), all already at
--fine_width x --fine_height (prepare_data.py fits photos of other sizes, parse and keypoints
included). With --dataset vitonhd or dresscode they are that dataset's files at any size: its
parse labels (CIHP; Dress Code's ATR), its keypoints in its frame, resized to the model's size
(a Dress Code cloth mask: LaDI-VTON's masks/, or the cloth-mask/ the GMM's dataset makes).
The checkpoints must have been trained at that size (--fine_height/--fine_width, default 256x192);
the final checkpoints of the step scripts for the dataset are used unless --gmm_checkpoint /
--tom_checkpoint.

Same result as test.py. In the pipeline the GMM test saves the warped cloth and the warped
mask (as 2m-1) as JPEG (quality 75, values truncated to uint8), step 3 copies them into the
dataset and the TOM dataset reads them back (the mask re-thresholded at 128): the TOM is
trained and tested on JPEG-round-tripped warps. This script does the same round trip in
memory, encoding with visualization.tensor_to_image (what test.py's save_images uses) and
decoding with the dataset's readers, and builds both stages' inputs with
cp_dataset.compact_item and cp_dataset.expand, as train.py and test.py do. So for a pair of a
dataset the try-on equals test.py's (with --out *.jpg, byte for byte, as both save through
save_images) when test.py runs batches of one: a batched GMM convolution can differ in the
last float bit, which the uint8 truncation and the JPEG round trip can turn into differences of
a few levels.
"""
import argparse
import io
import os
import sys

import torch
from PIL import Image

import atomic
import cp_dataset
import layouts
import networks
from pipeline import FORWARD, load_for_inference, pick_device, result_images, to_device
from visualization import make_strip, save_images, tensor_to_image

RADIUS = 5  # test.py's default, at 256 pixels high (scaled with the height: cp_dataset.pose_radius)
# pair_readers key -> the command-line option naming that file
INPUTS = {"cloth": "cloth", "cloth_mask": "cloth_mask", "image": "person", "parse": "parse", "pose": "pose",
          "body": "body_mask"}
CHECKPOINT_HINT = ("train the models (step1-train-gmm.sh ... step4-train-tom.sh) or download the released "
                   "checkpoints with `python data_download.py --checkpoints`")
SIZE_HINT = ("tryon.py takes VITON inputs at --fine_width x --fine_height: fit your photos, parse and "
             "keypoints with prepare_data.py (`python prepare_data.py --help`), then use the files it writes")


def build_parser():
    parser = argparse.ArgumentParser(description="CP-VTON try-on of one person with one garment "
                                                 "(GMM then TOM). VITON inputs must be at the model's "
                                                 "size (--fine_width x --fine_height, 192x256 by default); "
                                                 "VITON-HD's and Dress Code's are resized to it.")
    parser.add_argument("--person", required=True, metavar="PATH",
                        help="person photo, RGB (VITON: at the model's size, 192x256 by default)")
    parser.add_argument("--parse", required=True, metavar="PATH",
                        help="the person's human parse, a label PNG (mode P or L) of the dataset's labels: LIP "
                             "(ids 0-19) for viton, CIHP for vitonhd (image-parse-v3), ATR for dresscode "
                             "(label_maps); for cpvton+ its image-parse-new (mode L, ids 0-20)")
    parser.add_argument("--body_mask", "--body-mask", metavar="PATH",
                        help="cpvton+ only (required there): the person's body mask (image-mask), at the model's size")
    parser.add_argument("--pose", required=True, metavar="PATH",
                        help="the person's keypoints JSON: OpenPose (COCO-18 or BODY_25), in the photo's "
                             "pixels (VITON-HD: the 768x1024 photo's); Dress Code's keypoints file")
    parser.add_argument("--cloth", required=True, metavar="PATH",
                        help="in-shop garment photo, RGB (VITON: at the model's size)")
    parser.add_argument("--cloth_mask", "--cloth-mask", required=True, metavar="PATH",
                        help="garment mask, grayscale, pixels >= 128 are garment (VITON: at the model's size)")
    layouts.add_options(parser, dataroot=False)
    parser.add_argument("--fine_width", type=int, default=192,
                        help="the model's image width, a multiple of 64: what the checkpoints were trained "
                             "at (default: 192)")
    parser.add_argument("--fine_height", type=int, default=256,
                        help="the model's image height, a multiple of 64 (default: 256)")
    parser.add_argument("--out", metavar="PATH", default="tryon.png",
                        help="try-on image to write; format from the extension, .jpg = JPEG quality 75 "
                             "like test.py (default: tryon.png)")
    parser.add_argument("--strip", default=None, metavar="PATH",
                        help="also write a 1344x256 strip: cloth, cloth mask, person, parse (the dataset's "
                             "labels in LIP colours), warped cloth, warped mask, try-on")
    parser.add_argument("--variant", default="cpvton", choices=list(cp_dataset.VARIANTS),
                        help="cpvton (default) or cpvton+: which model the checkpoints are")
    parser.add_argument("--gmm_checkpoint", metavar="PATH",
                        help="GMM weights (default: what step 1 writes, checkpoints/gmm_train_new/"
                             "gmm_final.pth; for cpvton+ gmm_train_plus/, for vitonhd gmm_train_vitonhd/, for "
                             "dresscode gmm_train_dresscode_<category>/)")
    parser.add_argument("--tom_checkpoint", metavar="PATH",
                        help="TOM weights (default: checkpoints/tom_train_new/tom_final.pth; tom_train_<run>/ "
                             "as for --gmm_checkpoint)")
    parser.add_argument("--device", default="auto",
                        help="auto | cpu | cuda | cuda:N; auto = CUDA if available")
    return parser


def parse_options(argv=None):
    parser = build_parser()
    opt = parser.parse_args(argv)
    if (opt.body_mask is None) == (opt.variant == "cpvton+"):
        parser.error("--body_mask is needed with --variant cpvton+, and only there")
    wrong = layouts.check_choice(opt.dataset, opt.category, opt.variant)
    if wrong:
        parser.error(wrong)
    try:
        networks.check_image_size(opt.fine_height, opt.fine_width)
    except ValueError as e:
        parser.error(str(e))
    opt.size = (opt.fine_width, opt.fine_height)
    for stage in ("gmm", "tom"):
        if getattr(opt, f"{stage}_checkpoint") is None:
            run = f"{stage}_train_{layouts.run_name(opt.dataset, opt.variant, opt.category, opt.size)}"
            setattr(opt, f"{stage}_checkpoint", os.path.join("checkpoints", run, f"{stage}_final.pth"))
    for flag in ("out", "strip"):
        path = getattr(opt, flag)
        if path is not None and os.path.splitext(path)[1].lower() not in Image.registered_extensions():
            parser.error(f"--{flag} {path}: unknown image file extension (use e.g. .png or .jpg)")
    return opt


def jpeg_round_trip(tensor, mode):
    """A result tensor saved as test.py saves a .jpg, then read back as the TOM dataset reads it:
    (the JPEG bytes, the decoded image)."""
    buffer = io.BytesIO()
    image = tensor_to_image(tensor)
    image.save(buffer, format="JPEG")
    return buffer.getvalue(), cp_dataset.read_image(io.BytesIO(buffer.getvalue()), image.size, mode)


def try_on(gmm, tom, files, names, device, variant="cpvton", dataset="viton", category=None):
    """GMM then TOM on one pair's files (as pair_readers returns them, at the model's size) ->
    (try-on tensor [3, H, W], {'warp-cloth'/'warp-mask': JPEG bytes}). The person representation
    and garment region as CPDataset makes them for `dataset` (its head and garment labels)."""
    height, width = files["parse"].shape
    layout = layouts.LAYOUTS[dataset]

    def batch(files, stage, grid_image=None):  # a batch of one, as test.py's DataLoader gives it
        item = cp_dataset.compact_item(**files, radius=cp_dataset.pose_radius(RADIUS, height),
                                       head_labels=cp_dataset.head_labels(dataset, variant, stage),
                                       cloth_labels=layout.cloth_labels(category))
        one = to_device({key: value[None] for key, value in item.items()}, device)
        return cp_dataset.expand(one | names, grid_image)

    inputs = batch(files, "GMM", cp_dataset.grid_tensor(height, width))
    warps = result_images("GMM", inputs, FORWARD["GMM"](gmm, inputs, variant), variant)
    round_trips = {folder: jpeg_round_trip(warps[folder][0][0], mode)
                   for folder, mode in zip(cp_dataset.WARP_FOLDERS, ("RGB", "L"))}
    (_, cloth), (_, mask) = round_trips.values()
    warped = files | {"cloth": cloth, "cloth_mask": mask}  # what the TOM dataset reads from warp-*/
    inputs = batch(warped, "TOM")
    images, _names = result_images("TOM", inputs, FORWARD["TOM"](tom, inputs, variant))[cp_dataset.TRYON_FOLDER]
    return images[0], {folder: jpeg for folder, (jpeg, _) in round_trips.items()}


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv=None):
    """Returns the exit status: 0, or 2 after printing what is wrong with an input or checkpoint."""
    opt = parse_options(argv)
    readers = cp_dataset.pair_readers(opt.size, opt.variant, opt.dataset)
    try:
        files = {key: readers[key](getattr(opt, option)) for key, option in INPUTS.items()
                 if getattr(opt, option) is not None}
    except cp_dataset.ImageSizeError as e:
        return fail(f"{e}\n{SIZE_HINT}")
    except cp_dataset.DatasetError as e:
        return fail(e)
    off_frame = cp_dataset.pose_off_frame(files["pose"], opt.size)
    if off_frame:
        cp_dataset.warn_once(opt.pose, off_frame)
    paths = {"GMM": opt.gmm_checkpoint, "TOM": opt.tom_checkpoint}
    missing = [f"{stage} checkpoint not found: {path} (--{stage.lower()}_checkpoint)"
               for stage, path in paths.items() if not os.path.isfile(path)]
    if missing:
        return fail("\n".join(missing + [CHECKPOINT_HINT]))
    try:
        device = pick_device(opt.device)
    except ValueError as e:
        return fail(e)
    try:
        # test.py's default fast path (channels_last): the same outputs
        gmm, tom = (load_for_inference(stage, path, device, variant=opt.variant, fine_height=opt.fine_height,
                                       fine_width=opt.fine_width) for stage, path in paths.items())
    except networks.CheckpointError as e:
        return fail(e)

    names = {"c_name": [os.path.basename(opt.cloth)], "im_name": [os.path.basename(opt.person)]}
    with torch.inference_mode():
        p_tryon, warps = try_on(gmm, tom, files, names, device, opt.variant, opt.dataset, opt.category)
    save_images([p_tryon], [os.path.basename(opt.out)], os.path.dirname(opt.out) or ".")
    print(f"try-on: {opt.out}")
    if opt.strip:
        os.makedirs(os.path.dirname(opt.strip) or ".", exist_ok=True)
        # make_strip opens each tile with PIL, which reads the in-memory warps like files.
        tiles = [opt.cloth, opt.cloth_mask, opt.person, opt.parse,
                 *(io.BytesIO(warps[folder]) for folder in cp_dataset.WARP_FOLDERS), opt.out]
        make_strip(tiles, opt.dataset).save(opt.strip)
        print(f"strip: {opt.strip}")
    return 0


if __name__ == "__main__":
    atomic.run(main)
