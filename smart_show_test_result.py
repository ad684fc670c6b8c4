"""Put the inputs and results of each test pair side by side, one PNG strip per pair.

    python smart_show_test_result.py                       # every pair of data/test_pairs.txt
    python smart_show_test_result.py --num 20              # the first 20
    python smart_show_test_result.py --pairs 012578_0.jpg  # chosen persons
    python smart_show_test_result.py --dataset dresscode --category dresses \
        --result_dir result_dresscode_dresses --out result_simple_dresscode_dresses

For the pair `012578_0.jpg 014252_1.jpg` it writes result_simple/src_012578_dst_014252.png:
seven 192x256 tiles (1344x256): cloth, cloth mask, model image, model parse, warped cloth, warped
mask, try-on; and result_simple/index.html, a gallery of all strips. Inputs of any size (VITON-HD's
and Dress Code's 1024x768) are resized to the tiles. The parse is drawn in LIP colours, each label
of the dataset's parses (VITON-HD's CIHP, Dress Code's ATR) in the colour of the LIP label of the
same meaning (visualization.parse_palette). Pairs with missing or unreadable inputs are reported by
name and skipped (exit code 1).
"""
import argparse
import html
import os
import sys

from tqdm import tqdm

import atomic
import layouts
from cp_dataset import (TRYON_FOLDER, VARIANTS, WARP_FOLDERS, DatasetError, image_id, pair_paths, read_pairs,
                        result_dir_of, warp_name)
from layouts import LAYOUTS, stem
from visualization import COLUMNS, TILE, make_strip


def parse_options(argv=None):
    parser = argparse.ArgumentParser(description="Side-by-side strips of CP-VTON test inputs and results.")
    layouts.add_options(parser)
    parser.add_argument("--datamode", default="test", help="dataset split the pairs come from")
    parser.add_argument("--data_list", default=None,
                        help="pairs file, relative to --dataroot (Dress Code: to <dataroot>/<category>); default: "
                             "the dataset's unpaired test list (test_pairs.txt; Dress Code: test_pairs_unpaired.txt)")
    parser.add_argument("--variant", default="cpvton", choices=list(VARIANTS),
                        help="cpvton+ shows the image-parse-new parse and finds the warps by person name")
    parser.add_argument("--result_dir", help="test.py's --result_dir (default: the step scripts' for --dataset, "
                        "--category and --variant at 256x192: result, result_plus, result_vitonhd, "
                        "result_dresscode_<category>)")
    parser.add_argument("--gmm_result", default=None,
                        help="folder with warp-cloth/ and warp-mask/ "
                             "(default <result_dir>/gmm_final.pth/<datamode>)")
    parser.add_argument("--tom_result", default=None,
                        help="folder with try-on/ (default <result_dir>/tom_final.pth/<datamode>)")
    parser.add_argument("--out", help="output folder for the strips and index.html (default: result_simple, "
                        "or result_simple_<run> as for --result_dir)")
    parser.add_argument("--num", type=int, default=None, help="show only the first N pairs")
    parser.add_argument("--pairs", nargs="+", metavar="NAME", default=None,
                        help="show only these person images (e.g. 012578_0.jpg)")
    opt = parser.parse_args(argv)
    if opt.num is not None and opt.num < 0:
        parser.error("--num must not be negative")
    layouts.fill_defaults(opt, parser.error)
    run = layouts.run_name(opt.dataset, opt.variant, opt.category)
    opt.result_dir = opt.result_dir or layouts.result_folder("result", run)
    opt.out = opt.out or layouts.result_folder("result_simple", run)
    opt.gmm_result = opt.gmm_result or result_dir_of(opt.result_dir, "gmm_final.pth", opt.datamode)
    opt.tom_result = opt.tom_result or result_dir_of(opt.result_dir, "tom_final.pth", opt.datamode)
    return opt


def strip_name(person, cloth):
    """'012578_0.jpg', '014252_1.jpg' -> 'src_012578_dst_014252.png'."""
    return f"src_{image_id(person)}_dst_{image_id(cloth)}.png"


def strip_names(pairs):
    """The strip file name of each pair: strip_name's, or where two different pairs would get the same
    one (ids shared by files of other suffixes), 'src_<person stem>_dst_<cloth stem>.png' for all."""
    names = [strip_name(person, cloth) for person, cloth in pairs]
    if len(set(names)) < len(set(pairs)):
        names = [f"src_{stem(person)}_dst_{stem(cloth)}.png" for person, cloth in pairs]
    return names


def tile_paths(opt, person, cloth):
    """The file behind each column, in COLUMNS order."""
    split_dir = LAYOUTS[opt.dataset].split_dir(opt.dataroot, opt.datamode, opt.category)
    inputs = pair_paths(split_dir, person, cloth, variant=opt.variant, dataset=opt.dataset)
    return ([inputs[key] for key in ("cloth", "cloth_mask", "image", "parse")]
            + [os.path.join(opt.gmm_result, folder, warp_name(person, cloth, opt.variant)) for folder in WARP_FOLDERS]
            + [os.path.join(opt.tom_result, TRYON_FOLDER, person)])


def write_index(out_dir, shown, source):
    """index.html: a table of the strips under one header row of column names (relative links)."""
    header = "".join(f'<th style="width:{TILE[0]}px">{html.escape(c)}</th>' for c in COLUMNS)
    rows = "\n".join(
        f'<tr><td colspan="{len(COLUMNS)}">{html.escape(person)} + {html.escape(cloth)}<br>'
        f'<img src="{html.escape(name)}" width="{TILE[0] * len(COLUMNS)}" height="{TILE[1]}" '
        f'alt="{html.escape(name)}"></td></tr>'
        for person, cloth, name in shown)
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>CP-VTON test results</title>
<style>body {{ font-family: sans-serif; }} table {{ border-collapse: collapse; }}
th {{ text-align: center; }} td {{ padding-bottom: 12px; }} img {{ display: block; }}</style></head>
<body><h1>CP-VTON test results</h1><p>Pairs from {html.escape(source)}: {len(shown)}</p>
<table><tr>{header}</tr>
{rows}
</table></body></html>
"""
    with open(os.path.join(out_dir, "index.html"), "w") as f:
        f.write(page)


def main(argv=None):
    opt = parse_options(argv)
    layout = LAYOUTS[opt.dataset]
    pairs_path = layout.pairs_path(opt.dataroot, opt.data_list, opt.category)
    try:
        pairs = layout.pairs(read_pairs(pairs_path), opt.datamode)
    except DatasetError as e:
        raise SystemExit(f"error: {e}")
    if opt.pairs:
        unknown = sorted(set(opt.pairs) - {person for person, _ in pairs})
        if unknown:
            raise SystemExit(f"error: not in {pairs_path}: {', '.join(unknown)}")
        pairs = [pair for pair in pairs if pair[0] in opt.pairs]
    pairs = pairs[:opt.num]

    os.makedirs(opt.out, exist_ok=True)
    shown, skipped = [], []
    for (person, cloth), name in tqdm(zip(pairs, strip_names(pairs)), total=len(pairs), desc="strips", unit="pair"):
        paths = tile_paths(opt, person, cloth)
        missing = [p for p in paths if not os.path.isfile(p)]
        try:
            if missing:
                raise OSError("missing " + ", ".join(missing))
            make_strip(paths, opt.dataset).save(os.path.join(opt.out, name))
        except OSError as e:  # missing or unreadable input (PIL's errors are OSErrors)
            skipped.append(f"{person} {cloth}: {e}")
            tqdm.write(f"skipped {person} {cloth}: {e}")
            continue
        shown.append((person, cloth, name))
    write_index(opt.out, shown, pairs_path)
    print(f"{len(shown)} strips and index.html in {opt.out}/")
    if skipped:
        print(f"{len(skipped)} of {len(pairs)} pairs skipped:\n  " + "\n  ".join(skipped), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    atomic.run(main)
