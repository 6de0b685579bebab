"""Accuracy against the generator's ground truth: default vs upstream settings.

Usage::

    python benchmarks/accuracy.py   # prints the table, writes benchmarks/accuracy.md

Generates the ``standard`` data set (4 FOVs x 60 frames x 512², divisions,
crowding, drift, bleaching, a dropped frame; seed 0) once into
``benchmarks/cache/``, runs the real workflow with the default configuration
and with ``config/upstream.yaml`` (the existing PyAMA parameter values), and
scores both with ``pyama-steps evaluate`` (algorithms.md §8).
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "benchmarks" / "cache"
RUNS = REPO / "benchmarks" / "runs"

# (label, metric key, target, higher is better)
ROWS = [
    ("Foreground Dice", "dice", 0.92, True),
    ("Object precision (IoU >= 0.5)", "precision", 0.95, True),
    ("Object recall (IoU >= 0.5)", "recall", 0.95, True),
    ("Complete tracks", "complete_fraction", 0.97, True),
    ("ID switches per 100 cells", "id_switches_per_100_cells", None, False),
    ("Traced cells", "traced_fraction", 0.95, True),
    ("Division recall", "division_recall", None, True),
    ("Division precision", "division_precision", None, True),
    ("Division F1", "division_f1", 0.8, True),
    ("CTC DET", "ctc_det", None, True),
    ("CTC TRA", "ctc_tra", 0.95, True),
    ("CTC CT", "ctc_ct", None, True),
    ("CTC TF", "ctc_tf", None, True),
    ("CTC BC(2)", "ctc_bc", None, True),
    ("CTC CHOTA", "ctc_chota", None, True),
    ("Trace error, total, median", "trace_total_rel_err_median_ch_1", 0.02, False),
    ("Trace error, total, p90", "trace_total_rel_err_p90_ch_1", 0.10, False),
    ("Trace error, mean, median", "trace_mean_rel_err_median_ch_1", 0.02, False),
    ("Trace error, mean, p90", "trace_mean_rel_err_p90_ch_1", 0.10, False),
    ("Pearson r (total)", "trace_pearson_r_ch_1", 0.98, True),
    ("Background error (% of mean)", "background_error_pct_ch_1", None, False),
    ("Max time error (min)", "time_max_abs_err_min", 1e-6, False),
]


def _data() -> Path:
    folder = CACHE / "accuracy-standard"
    image = folder / "standard.ome.tiff"
    if not image.exists():
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run(
            [sys.executable, "-m", "pyama_steps.cli", "generate", str(folder),
             "--preset", "standard", "--seed", "0", "--name", "standard"],
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return image


def _run(name: str, image: Path, overlays: list[Path]) -> dict[str, float]:
    from pyama_steps.validation.evaluate import evaluate_run

    work = RUNS / f"accuracy-{name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    own = work / "config.yaml"
    own.write_text(f'input: "{image}"\noutput_dir: out\n')
    cmd = [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile"),
        "-d", str(work), "--cores", "2", "--quiet",
        "--workflow-profile", str(REPO / "profiles" / "default"),
        "--configfile", str(REPO / "config" / "config.yaml"),
        *[str(p) for p in overlays], str(own),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return evaluate_run(image.parent / "standard_truth", work / "out").overall


def _fmt(value: float, key: str) -> str:
    if value != value:  # NaN
        return "n/a"
    if key == "time_max_abs_err_min":
        return f"{value:.1e}"
    if key.startswith("trace_") and "rel_err" in key:
        return f"{100 * value:.1f} %"
    if key.startswith("background_error"):
        return f"{value:.1f} %"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def table(default: dict[str, float], upstream: dict[str, float]) -> str:
    lines = [
        "| metric | target | default | upstream settings |",
        "|---|---|---|---|",
    ]
    for label, key, target, higher in ROWS:
        goal = "" if target is None else ("≥ " if higher else "≤ ") + _fmt(target, key)
        ok = ""
        if target is not None:
            met = default[key] >= target if higher else default[key] <= target
            ok = " ✓" if met else " ✗"
        lines.append(
            f"| {label} | {goal} | {_fmt(default[key], key)}{ok} | "
            f"{_fmt(upstream.get(key, float('nan')), key)} |"
        )
    return "\n".join(lines)


def main() -> int:
    t0 = time.perf_counter()
    image = _data()
    default = _run("default", image, [])
    upstream = _run("upstream", image, [REPO / "config" / "upstream.yaml"])
    text = table(default, upstream)
    print(text)
    header = (
        f"# Accuracy on the generator's standard data set\n\n"
        f"{datetime.date.today().isoformat()}; `python benchmarks/accuracy.py` "
        f"({time.perf_counter() - t0:.0f} s): 4 FOVs x 60 frames x 512², seed 0, "
        "one fluorescence channel (ch 1). 'upstream settings' is "
        "`config/upstream.yaml`, the existing PyAMA parameter values.\n\n"
    )
    (REPO / "benchmarks" / "accuracy.md").write_text(header + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
