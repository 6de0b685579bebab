"""Compare the workflow's outputs of two checkouts byte for byte.

A restructuring must not change any output (issue 15). This script runs the
real workflow of an earlier commit and of the working tree on the same inputs
and compares every output file byte for byte::

    python scripts/compare_outputs.py 8085e71                # demo, standard, real
    python scripts/compare_outputs.py HEAD~3 --cases demo    # one case
    python scripts/compare_outputs.py main --keep            # keep the runs

Cases: ``demo`` (the README's demo data), ``standard`` (the generator's
``standard`` preset, the accuracy benchmark's data) and ``real`` (the real-file
workflow tests' three files, read in place from ``../shared/data/real``).
Both checkouts run with this Python environment: the earlier commit's
``src`` comes first on ``PYTHONPATH`` and its own ``workflow/Snakefile``
runs. Logs, Snakemake benchmark files and ``.snakemake`` are not compared
(timings); everything else is, including the per-job records and the
manifest. Exit status 0 when every file is identical, 1 otherwise.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real"
SKIP = {"logs", "benchmarks", ".snakemake"}

# the real-file workflow tests' files and settings (tests/workflow/test_real_files.py)
REAL_CASES = {
    "cerevisiae": ("example-cerevisiae.nd2", {}),
    "celldivision": (
        "CellDivision_T3_Z5_CH2_X240_Y170.czi",
        {"ingest": {"z_mode": "max"}},
    ),
    "mosaic": (
        "S3_1Pos_2Mosaic_T2Z3_CH2_sm.czi",
        {"channels": {"pc": "EGFP", "fl": ["DAPI"]}},
    ),
}


def _generate(data: Path, preset: str) -> Path:
    folder = data / preset
    image = folder / f"{preset}.ome.tiff"
    if not image.exists():
        subprocess.run(
            [sys.executable, "-m", "pyama_steps.cli", "generate", str(folder),
             "--preset", preset, "--name", preset],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return image


def _cases(names: list[str], data: Path) -> dict[str, dict[str, object]]:
    cases: dict[str, dict[str, object]] = {}
    for name in names:
        if name in ("demo", "standard"):
            cases[name] = {"input": str(_generate(data, name))}
        elif name == "real":
            if not REAL.is_dir():
                print(f"compare_outputs: {REAL} is absent: real files skipped")
                continue
            for key, (file, extra) in REAL_CASES.items():
                cases[f"real-{key}"] = {"input": str(REAL / file), **extra}
        else:
            raise SystemExit(f"compare_outputs: unknown case {name!r}")
    return cases


def _run(tree: Path, work: Path, config: dict[str, object]) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    cfg = work / "config.yaml"
    cfg.write_text(yaml.safe_dump({**config, "output_dir": "out"}))
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    cmd = [
        sys.executable, "-m", "snakemake", "-s", str(tree / "workflow" / "Snakefile"),
        "-d", str(work), "--configfile", str(cfg), "--cores", "2", "--quiet",
        "--workflow-profile", str(tree / "profiles" / "default"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(
            f"compare_outputs: the run of {tree} in {work} failed:\n"
            f"{(proc.stdout + proc.stderr)[-3000:]}"
        )
    return work / "out"


def _files(root: Path) -> set[Path]:
    return {
        p.relative_to(root)
        for p in root.rglob("*")
        if p.is_file() and not SKIP.intersection(p.relative_to(root).parts)
    }


def compare(a: Path, b: Path) -> list[str]:
    """Differences between two output folders, one line each."""
    fa, fb = _files(a), _files(b)
    lines = [f"only in the earlier run: {p}" for p in sorted(fa - fb)]
    lines += [f"only in the working tree's run: {p}" for p in sorted(fb - fa)]
    lines += [
        f"differs: {p}"
        for p in sorted(fa & fb)
        if not filecmp.cmp(a / p, b / p, shallow=False)
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run both checkouts on every case and print the differences."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the earlier commit (any git revision)")
    parser.add_argument(
        "--cases", default="demo,standard,real", help="comma-separated subset"
    )
    parser.add_argument("--keep", action="store_true", help="keep the runs' folders")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="compare-outputs-"))
    base_tree = root / "base"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(base_tree),
         args.base],
        check=True,
    )  # fmt: skip
    failed = False
    try:
        cases = _cases(args.cases.split(","), root / "data")
        for name, config in cases.items():
            before = _run(base_tree, root / "runs" / name / "base", config)
            after = _run(REPO, root / "runs" / name / "head", config)
            problems = compare(before, after)
            n = len(_files(before))
            if problems:
                failed = True
                print(f"{name}: {len(problems)} difference(s) in {n} files")
                for line in problems[:50]:
                    print(f"  {line}")
            else:
                print(f"{name}: {n} files, all byte-identical")
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(base_tree)],
            check=False,
        )  # fmt: skip
        if args.keep:
            print(f"compare_outputs: runs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
