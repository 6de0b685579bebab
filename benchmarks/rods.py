"""Dense rod-shaped bacteria: segmentation.method rods vs the default (logstd).

Usage::

    python benchmarks/rods.py   # prints the table, writes benchmarks/rods.md

Generates the ``rods`` preset (2 FOVs x 20 frames, 512² and 448x576, rods
15-25 x 40-90 px packed side by side in colonies, divisions end to end) for
seeds 0, 1 and 2 and two renderings of seed 0 with another halo
(``halo_kernel airy``, ``halo_sigma_px 9``) into ``benchmarks/cache/``, runs the
real workflow with ``segmentation.method: rods`` and with the default
configuration, and scores both with ``pyama-steps evaluate`` (algorithms.md
§2.9). The rods defaults were chosen on seed 0 and on renderings of it.
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "benchmarks" / "cache"
RUNS = REPO / "benchmarks" / "runs"

# (label, seed, generator overrides)
DATA: list[tuple[str, int, dict[str, Any]]] = [
    ("seed 0", 0, {}),
    ("seed 1", 1, {}),
    ("seed 2", 2, {}),
    ("seed 0, halo_kernel airy", 0, {"halo_kernel": "airy"}),
    ("seed 0, halo_sigma_px 9", 0, {"halo_sigma_px": 9.0}),
]
# (label, metric key, format)
COLUMNS = [
    ("Dice", "dice", "{:.3f}"),
    ("precision", "precision", "{:.3f}"),
    ("recall", "recall", "{:.3f}"),
    ("complete", "complete_fraction", "{:.3f}"),
    ("IDsw/100", "id_switches_per_100_cells", "{:.1f}"),
    ("div F1", "division_f1", "{:.2f}"),
    ("CTC TRA", "ctc_tra", "{:.3f}"),
    ("total err med", "trace_total_rel_err_median_ch_1", "pct"),
    ("total err p90", "trace_total_rel_err_p90_ch_1", "pct"),
    ("mean err med", "trace_mean_rel_err_median_ch_1", "pct"),
    ("pairs", "trace_pairs_used_ch_1", "{:.0f}"),
]


def _data(seed: int, overrides: dict[str, Any]) -> Path:
    from pyama_steps.validation import synth
    from pyama_steps.validation.synth_io import write_dataset

    tag = "-".join(f"{k}={v}" for k, v in sorted(overrides.items()))
    folder = CACHE / f"rods-s{seed}{'-' + tag if tag else ''}"
    image = folder / "rods.ome.tiff"
    if not image.exists():
        shutil.rmtree(folder, ignore_errors=True)
        write_dataset(folder, synth.preset("rods", seed=seed, **overrides), name="rods")
    return image


def _run(name: str, image: Path, method: str) -> tuple[dict[str, float], float]:
    from pyama_steps.validation.evaluate import evaluate_run

    work = RUNS / f"rods-{name}-{method}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    own = work / "config.yaml"
    own.write_text(
        f'input: "{image}"\noutput_dir: out\nsegmentation: {{method: {method}}}\n'
    )
    cmd = [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile"),
        "-d", str(work), "--cores", "2", "--quiet",
        "--workflow-profile", str(REPO / "profiles" / "default"),
        "--configfile", str(REPO / "config" / "config.yaml"), str(own),
    ]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    return evaluate_run(image.parent / "rods_truth", work / "out").overall, seconds


def _cell(value: float, fmt: str) -> str:
    if value != value:  # NaN
        return "n/a"
    return f"{100 * value:.1f} %" if fmt == "pct" else fmt.format(value)


def main() -> int:
    t0 = time.perf_counter()
    head = " | ".join(c[0] for c in COLUMNS)
    lines = [
        f"| data | method | {head} | run (s) |",
        "|---|---|" + "---|" * (len(COLUMNS) + 1),
    ]
    for label, seed, overrides in DATA:
        image = _data(seed, overrides)
        for method in ("rods", "logstd"):
            name = f"s{seed}-" + "-".join(f"{k}{v}" for k, v in overrides.items())
            overall, seconds = _run(name, image, method)
            cells = " | ".join(_cell(overall[key], fmt) for _, key, fmt in COLUMNS)
            lines.append(f"| {label} | {method} | {cells} | {seconds:.0f} |")
            print(lines[-1], flush=True)
    header = (
        "# Dense rods: segmentation.method rods vs logstd\n\n"
        f"{datetime.date.today().isoformat()}; `python benchmarks/rods.py` "
        f"({time.perf_counter() - t0:.0f} s): generator preset `rods` (2 FOVs x 20 "
        "frames, 512² and 448x576), one fluorescence channel (ch 1); logstd is the "
        "default configuration.\n\n"
    )
    (REPO / "benchmarks" / "rods.md").write_text(header + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
