"""Accuracy on renderings the defaults were not chosen on (issue 13).

Usage::

    python benchmarks/robustness.py                 # everything -> robustness.md
    python benchmarks/robustness.py --only held-out   # sections or variants
    python benchmarks/robustness.py --baseline ../old  # also an older checkout

Each variant is a rendering of the generator with other optics (phase model,
halo kernel, width and strength, the cells' thickness profile, PSF, noise,
illumination), other cell sizes and densities, and other frame sizes. The
data are written once into ``benchmarks/cache/robustness/`` (git-ignored), the
real workflow runs on them with the default configuration (``snakemake``, 2
cores) and ``pyama-steps evaluate`` scores the run against the truth.

Sections:

* ``tuning``: the variants the defaults were chosen on (looked at while
  designing the edge level, the territory total and the other defaults);
* ``held-out``: variants defined before they were ever run and not used to
  choose anything; the issue's targets apply to them, per variant;
* ``small``: small cells (semi-axis 6-13 px, 1024², ~80 per FOV), with their
  own targets.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "benchmarks" / "cache" / "robustness"
RUNS = REPO / "benchmarks" / "runs" / "robustness"


@dataclass(frozen=True)
class Variant:
    name: str
    section: str
    what: str
    overrides: dict[str, Any]
    preset: str = "standard"
    n_fov: int = 2
    n_frames: int = 40
    size: tuple[int, int] = (512, 512)
    seed: int = 0
    config: dict[str, Any] = field(default_factory=dict)


V = Variant
VARIANTS = [
    # --- tuning: looked at while choosing the defaults ------------------------
    V("standard", "tuning", "the standard preset", {}),
    V("weak-halo", "tuning", "halo strength 0.5", {"halo_strength": 0.5}),
    V("airy-halo", "tuning", "ring (airy) halo kernel", {"halo_kernel": "airy"}),
    V("zernike", "tuning", "Zernike phase ring (|E|²)", {"phase_model": "zernike"}),
    V(
        "thin-edge",
        "tuning",
        "cells thinning out at their edge (0.1), 8-px halo",
        {"edge_thickness": 0.1, "halo_sigma_px": 8.0},
    ),
    V(
        "slab-halo-3",
        "tuning",
        "flat cells (edge thickness 1), 3-px halo",
        {"edge_thickness": 1.0, "halo_sigma_px": 3.0},
    ),
    V("wide-psf", "tuning", "PSF sigma 2 px", {"psf_sigma_px": 2.0}),
    V(
        "crowded",
        "tuning",
        "50 % cover, 80 % in colonies",
        {"coverage": 0.5, "cluster_fraction": 0.8},
    ),
    # Noise-limited phase contrast: the window choice (§2.10) was set on these.
    V(
        "low-light",
        "tuning",
        "1500 ADU phase light (photon-starved)",
        {"phase_level_adu": 1500.0},
    ),
    V(
        "starved",
        "tuning",
        "900 ADU phase light, read noise 4",
        {"phase_level_adu": 900.0, "read_noise_adu": 4.0},
    ),
    V("faint", "tuning", "phase contrast 0.25", {"phase_contrast": 0.25}),
    # --- held out: defined before being run, never tuned on -------------------
    V(
        "exp-halo-7",
        "held-out",
        "exponential halo kernel, 7 px, strength 0.7",
        {"halo_kernel": "exponential", "halo_sigma_px": 7.0, "halo_strength": 0.7},
    ),
    V(
        "zernike-airy",
        "held-out",
        "Zernike model with a ring (airy) kernel of 4 px, 15 % ring",
        {
            "phase_model": "zernike",
            "halo_kernel": "airy",
            "halo_sigma_px": 4.0,
            "ring_transmission": 0.15,
        },
    ),
    V(
        "dim-low-contrast",
        "held-out",
        "contrast 0.35, 3000 ADU phase light, read noise 5",
        {"phase_contrast": 0.35, "phase_level_adu": 3000.0, "read_noise_adu": 5.0},
    ),
    V(
        "vignetted",
        "held-out",
        "vignetting 0.45, 6 % mottle, 5 % lamp flicker",
        {"vignetting": 0.45, "illumination_mottle": 0.06, "flicker_pc": 0.05},
    ),
    V(
        "large-1024",
        "held-out",
        "cells 28-70 px, 7-px halo, 1024² frames",
        {"cell_diameter_px": (28.0, 70.0), "max_aspect": 1.4, "halo_sigma_px": 7.0},
        n_fov=1,
        size=(1024, 1024),
    ),
    V(
        "small-256",
        "held-out",
        "256² frames, cells 14-34 px, 30 % cover",
        {"cell_diameter_px": (14.0, 34.0), "max_aspect": 1.3, "coverage": 0.3},
        n_fov=4,
        size=(256, 256),
    ),
    V(
        "blurry",
        "held-out",
        "PSF 1.7 px, focus breathing 0.2, fluorescence PSF 1.9 px, 6-px halo",
        {
            "psf_sigma_px": 1.7,
            "focus_jitter": 0.2,
            "fl_psf_sigma_px": 1.9,
            "halo_sigma_px": 6.0,
        },
    ),
    V(
        "thin-dense",
        "held-out",
        "edge thickness 0.3, 4-px halo, 40 % cover in colonies",
        {
            "edge_thickness": 0.3,
            "halo_sigma_px": 4.0,
            "coverage": 0.4,
            "cluster_fraction": 0.7,
        },
    ),
    # --- small cells (issue 13 item 3) ---------------------------------------
    V(
        "small",
        "small",
        "semi-axis 6-13 px, ~80 cells per 1024² FOV",
        {},
        preset="small",
        n_fov=2,
        n_frames=40,
        size=(1024, 1024),
    ),
]

# (label, metric key, target for the section, higher is better, format)
TARGETS: dict[str, dict[str, tuple[float, float] | float]] = {
    "held-out": {
        "area_ratio_median": (0.95, 1.05),
        "trace_total_rel_err_median_ch_1": 0.02,
        "trace_total_rel_err_p90_ch_1": 0.06,
        "recall": 0.96,
        "complete_fraction": 0.93,
    },
    "small": {
        "recall": 0.97,
        "complete_fraction": 0.95,
        "traced_fraction": 0.97,
        "trace_total_rel_err_p90_ch_1": 0.10,
    },
}
COLUMNS = [
    ("recall", "recall", "frac"),
    ("precision", "precision", "frac"),
    ("area ratio", "area_ratio_median", "frac"),
    ("complete", "complete_fraction", "frac"),
    ("traced", "traced_fraction", "frac"),
    ("total med", "trace_total_rel_err_median_ch_1", "pct"),
    ("total p90", "trace_total_rel_err_p90_ch_1", "pct"),
    ("mean med", "trace_mean_rel_err_median_ch_1", "pct"),
    ("div F1", "division_f1", "frac"),
]


def _data(v: Variant) -> Path:
    from pyama_steps.validation.synth import preset
    from pyama_steps.validation.synth_io import write_dataset

    folder = CACHE / v.name
    image = folder / f"{v.name}.ome.tiff"
    stamp = folder / "variant.json"
    spec = json.dumps(
        {
            "preset": v.preset,
            "overrides": {
                k: list(x) if isinstance(x, tuple) else x
                for k, x in v.overrides.items()
            },
            "n_fov": v.n_fov,
            "n_frames": v.n_frames,
            "size": list(v.size),
            "seed": v.seed,
        },
        sort_keys=True,
    )
    if image.exists() and stamp.exists() and stamp.read_text() == spec:
        return image
    shutil.rmtree(folder, ignore_errors=True)
    params = preset(
        v.preset,
        seed=v.seed,
        n_fov=v.n_fov,
        n_frames=v.n_frames,
        frame_sizes=(v.size,),
        write_background=False,
        **v.overrides,
    )
    write_dataset(folder, params, name=v.name, fmt="ome-tiff")
    stamp.write_text(spec)
    return image


def _run(
    v: Variant, image: Path, tree: Path = REPO, python: str = sys.executable
) -> tuple[dict[str, float], float]:
    """Run the workflow of checkout `tree` (its own Python) and score it."""
    from pyama_steps.validation.evaluate import evaluate_run

    work = RUNS / (v.name if tree == REPO else f"{v.name}-baseline")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    own = work / "config.yaml"
    lines = [f'input: "{image}"', "output_dir: out"]
    lines += [f"{k}: {json.dumps(x)}" for k, x in v.config.items()]
    own.write_text("\n".join(lines) + "\n")
    cmd = [
        python, "-m", "snakemake", "-s", str(tree / "workflow" / "Snakefile"),
        "-d", str(work), "--cores", "2", "--quiet",
        "--workflow-profile", str(tree / "profiles" / "default"),
        "--configfile", str(tree / "config" / "config.yaml"), str(own),
    ]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(
        cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wall = time.perf_counter() - t0
    truth = image.parent / f"{v.name}_truth"
    metrics = evaluate_run(truth, work / "out", ctc=False).overall
    shutil.rmtree(work / "out", ignore_errors=True)  # keep the disk free
    return metrics, wall


def _fmt(value: float, kind: str) -> str:
    if value != value:  # NaN
        return "n/a"
    return f"{100 * value:.1f} %" if kind == "pct" else f"{value:.3f}"


def _met(section: str, key: str, value: float) -> str:
    target = TARGETS.get(section, {}).get(key)
    if target is None or value != value:
        return ""
    if isinstance(target, tuple):
        ok = target[0] <= value <= target[1]
    elif key.startswith("trace_"):
        ok = value <= target
    else:
        ok = value >= target
    return " ✓" if ok else " ✗"


def _target_row(section: str) -> str | None:
    targets = TARGETS.get(section)
    if not targets:
        return None
    cells = []
    for _, key, kind in COLUMNS:
        t = targets.get(key)
        if t is None:
            cells.append("")
        elif isinstance(t, tuple):
            cells.append(f"{t[0]:.2f}-{t[1]:.2f}")
        elif key.startswith("trace_"):
            cells.append("≤ " + _fmt(t, kind))
        else:
            cells.append("≥ " + _fmt(t, kind))
    return "| *target* | | " + " | ".join(cells) + " |"


def table(
    section: str,
    rows: list[tuple[Variant, dict[str, float]]],
    before: dict[str, dict[str, float]] | None = None,
) -> str:
    head = "| variant | what | " + " | ".join(c[0] for c in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 2)]
    target = _target_row(section)
    if target:
        lines.append(target)
    for v, m in rows:
        cells = []
        for _, key, kind in COLUMNS:
            value = m.get(key, float("nan"))
            cells.append(_fmt(value, kind) + _met(section, key, value))
        lines.append(f"| {v.name} | {v.what} | " + " | ".join(cells) + " |")
        if before and v.name in before:
            old = [
                _fmt(before[v.name].get(key, float("nan")), kind)
                for _, key, kind in COLUMNS
            ]
            lines.append("| | *before* | " + " | ".join(old) + " |")
    return "\n".join(lines)


def _commit(tree: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or str(tree)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", default=None, help="sections or variants, comma-separated"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another checkout (with its own .venv) run on the same data, shown "
        "as 'before' rows",
    )
    args = parser.parse_args(argv)
    wanted = set(args.only.split(",")) if args.only else None
    chosen = [
        v for v in VARIANTS if wanted is None or v.name in wanted or v.section in wanted
    ]
    t0 = time.perf_counter()
    results: dict[str, list[tuple[Variant, dict[str, float]]]] = {}
    before: dict[str, dict[str, float]] = {}
    for v in chosen:
        image = _data(v)
        metrics, wall = _run(v, image)
        metrics["wall_s"] = wall
        results.setdefault(v.section, []).append((v, metrics))
        if args.baseline is not None:
            python = str(args.baseline / ".venv" / "bin" / "python")
            before[v.name] = _run(v, image, args.baseline, python)[0]
        print(
            f"{v.section:9s} {v.name:18s} "
            + "  ".join(
                f"{c[0]} {_fmt(metrics.get(c[1], float('nan')), c[2])}" for c in COLUMNS
            ),
            flush=True,
        )
    parts = [
        "# Robustness: renderings the defaults were not chosen on\n",
        (
            f"{datetime.date.today().isoformat()}; `python benchmarks/robustness.py` "
            f"({time.perf_counter() - t0:.0f} s, {platform.machine()}, 2 cores). "
            "Each variant: the generator's `standard` preset (unless named) with the "
            "listed changes, 2 FOVs x 40 frames x 512² unless named, seed 0, one "
            "fluorescence channel; the real workflow with the default configuration; "
            "`pyama-steps evaluate` (area ratio: median over matched cells not "
            "touching the edge of predicted / true pixels; trace errors against the "
            "emitted light)."
            + (
                f" *before*: the workflow of commit `{_commit(args.baseline)}` "
                "(the previous round) on the same data, scored the same way."
                if args.baseline is not None
                else ""
            )
            + "\n"
        ),
    ]
    titles = {
        "held-out": "## Held out (targets per variant)",
        "tuning": "## Tuning variants (defaults chosen on these)",
        "small": "## Small cells",
    }
    for section in ("held-out", "tuning", "small"):
        if section in results:
            rows = table(section, results[section], before)
            parts.append(f"\n{titles[section]}\n\n{rows}\n")
    text = "".join(parts)
    print(text)
    if wanted is None:
        (REPO / "benchmarks" / "robustness.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
