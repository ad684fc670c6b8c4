"""bench.py --quick runs end to end and writes its figures as JSON (no timing is checked)."""
import json
import math
import subprocess
import sys
from pathlib import Path

ROOT_DIR = Path(__file__).resolve().parent.parent


def test_bench_quick_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "bench.py", "--quick", "--device", "cpu", "--json", str(out)],
                          cwd=ROOT_DIR, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())
    assert {"machine", "peak_gflops", "dataset", "forward", "end_to_end", "train", "memory",
            "targets"} <= results.keys()
    assert results["quick"] is True
    assert {"matmul_fp32", "conv_fp32", "conv_bf16_channels_last", "native_bf16"} <= results["peak_gflops"].keys()
    assert results["dataset"]["equal_to_original"] is True
    assert {"original_items_per_s", "items_per_s", "compact_items_per_s", "expand_items_per_s",
            "spec_items_per_s", "speedup", "loader_items_per_s"} <= results["dataset"].keys()
    modes = {(r["model"], r["mode"]) for r in results["forward"]}
    assert {("GMM", "fp32"), ("GMM", "fast"), ("TOM", "fp32"), ("TOM", "fast")} <= modes
    assert all(r["max_abs_diff"] < 1e-4 for r in results["forward"] if r["mode"] in ("fp32", "fast"))
    e2e = results["end_to_end"]
    assert e2e["original_pairs_per_s"] > 0
    modes = {m["mode"]: m for m in e2e["modes"]}
    assert modes["fast"]["precision"] == "fp32"  # bf16 ("fast-bf16") only where it runs natively
    assert set(modes) <= {"fast", "fast-bf16"}
    for mode in modes.values():
        assert {"pairs_per_s", "speedup", "image_max_level_diff", "image_fraction_differing"} <= mode.keys()
    assert {"GMM_fp32_steps_per_s", "TOM_fp32_steps_per_s", "GMM_fp32_channels_last_steps_per_s",
            "TOM_fp32_channels_last_steps_per_s"} <= results["train"].keys()
    assert results["memory"]["peak_rss_mb"] > 0
    assert set(results["targets"]) == {"end_to_end_speedup", "dataset_speedup", "fp32_max_abs_diff"}
    assert results["targets"]["end_to_end_speedup"]["mode"] in modes
    numbers = [modes["fast"]["pairs_per_s"], e2e["original_pairs_per_s"], results["dataset"]["items_per_s"]]
    assert all(math.isfinite(x) and x > 0 for x in numbers)
    assert "end to end" in done.stdout and "forward" in done.stdout  # the table
