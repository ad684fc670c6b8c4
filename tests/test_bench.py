"""bench.py --quick runs end to end and writes its figures as JSON, with --sizes too (no timing is
checked)."""
import json
import math
import subprocess
import sys
from pathlib import Path

ROOT_DIR = Path(__file__).resolve().parent.parent

# The fp32 fast path's result images against the original loop's (random weights): the same up to
# float rounding, which JPEG encoding can turn into a few levels here and there. Mean difference in
# 8-bit levels; the TOM's try-on images (on each mode's own warps) are the noisier.
MEAN_LEVEL_DIFF = {"warp-cloth": 0.5, "warp-mask": 0.5, "try-on": 2.0}


def positive(*values):
    return all(isinstance(x, (int, float)) and math.isfinite(x) and x > 0 for x in values)


def test_bench_quick_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "bench.py", "--quick", "--device", "cpu", "--json", str(out)],
                          cwd=ROOT_DIR, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results.keys() == {"quick", "machine", "peak_gflops", "dataset", "forward", "end_to_end",
                              "train", "memory"}
    assert results["quick"] is True and results["machine"]["device"] == "cpu"

    peak = results["peak_gflops"]
    assert positive(peak["matmul_fp32"], peak["conv_fp32"], peak["conv_fp32_channels_last"],
                    peak["conv_bf16_channels_last"])

    data = results["dataset"]
    assert data["equal_to_original"] is True and data["items"] == 2
    assert positive(*(data[k] for k in ("original_items_per_s", "compact_items_per_s", "expand_items_per_s",
                                        "items_per_s", "speedup", "original_loader_items_per_s",
                                        "loader_items_per_s")))

    forward = {(r["model"], r["mode"]): r for r in results["forward"]}
    assert {("GMM", "fp32"), ("GMM", "fast"), ("TOM", "fp32"), ("TOM", "fast")} <= forward.keys()
    assert all(positive(r["pairs_per_s"], r["gflops"], r["gflop_per_pair"]) for r in forward.values())
    assert all(forward[stage, mode]["max_abs_diff"] < 1e-4 for stage in ("GMM", "TOM") for mode in ("fp32", "fast"))

    e2e = results["end_to_end"]
    modes = {m["mode"]: m for m in e2e["modes"]}
    assert e2e["pairs"] == 2 and positive(e2e["original_pairs_per_s"])
    assert modes["fast"]["precision"] == "fp32" and set(modes) <= {"fast", "fast-bf16"}
    for mode in modes.values():
        assert positive(mode["pairs_per_s"], mode["speedup"])
        assert mode["images_vs_original"].keys() == MEAN_LEVEL_DIFF.keys()
    for folder, diff in modes["fast"]["images_vs_original"].items():
        assert 0 <= diff["mean_level_diff"] <= MEAN_LEVEL_DIFF[folder], (folder, diff)
        assert 0 <= diff["fraction_differing"] <= 1 and diff["max_level_diff"] <= 255

    train = results["train"]
    assert {"fp32", "fp32_channels_last"} <= set(train["modes"])
    assert positive(*(train[f"{stage}_{mode}_steps_per_s"] for stage in ("GMM", "TOM") for mode in train["modes"]))
    assert positive(results["memory"]["peak_rss_mb"])

    assert "end to end" in done.stdout and "forward" in done.stdout and "target" not in done.stdout


def test_bench_sizes_reports_each_stage_size_and_precision(tmp_path):
    out = tmp_path / "sizes.json"
    done = subprocess.run([sys.executable, "bench.py", "--sizes", "64x64:2,128x64", "--quick", "--device", "cpu",
                           "--json", str(out)], cwd=ROOT_DIR, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results.keys() == {"quick", "machine", "sizes"}
    sizes = results["sizes"]
    assert sizes["perceptual"] in ("vgg19", "none") and positive(sizes["idle_rss_mb"])
    rows = {(r["stage"], r["height"], r["width"], r["precision"]): r for r in sizes["rows"]}
    precisions = {r["precision"] for r in sizes["rows"]}
    assert "fp32" in precisions and precisions <= {"fp32", "bf16"}
    assert rows.keys() == {(stage, h, w, precision) for stage in ("GMM", "TOM") for h, w in ((64, 64), (128, 64))
                           for precision in precisions}
    for (stage, h, w, precision), row in rows.items():
        assert row["batch"] == (2 if (h, w) == (64, 64) else 1)  # --quick: --train_batch 1
        assert positive(row["steps_per_s"], row["pairs_per_s"], row["peak_rss_above_idle_mb"])
        assert math.isclose(row["pairs_per_s"], row["batch"] * row["steps_per_s"])
        assert f"{stage:6}{h:>6d}x{w:<3d}{row['batch']:6d}{precision:>10}" in done.stdout


def test_bench_sizes_must_be_multiples_of_64():
    done = subprocess.run([sys.executable, "bench.py", "--sizes", "256x200"], cwd=ROOT_DIR,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--sizes: image size 256x200" in done.stderr
