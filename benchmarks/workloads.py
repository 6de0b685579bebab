"""The benchmark workloads, their cached inputs and their configuration.

Shared by ``run.py`` (the workflow, through ``snakemake``) and ``inprocess.py``
(the same steps in one process pool); both import this module, and ``run.py``
imports ``inprocess.py`` for its comparison, never the other way round.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "benchmarks" / "cache"
RUNS = REPO / "benchmarks" / "runs"


@dataclass(frozen=True)
class Workload:
    name: str
    n_fov: int
    n_frames: int
    size: int
    fmt: str = "czi"
    cores: int = 2
    #: runs of the workload; the table shows the run with the median wall time
    repeats: int = 1
    #: fluorescence channels beside the phase contrast
    n_fl: int = 1
    #: the ``outputs`` setting (full or lean)
    outputs: str = "full"
    #: ``default`` rows run without --suite; ``seed`` rows with --suite seed
    suite: str = "default"


WORKLOADS = [
    Workload("ref-czi", 4, 30, 1024, "czi", repeats=3),
    Workload("ref-ome-tiff", 4, 30, 1024, "ome-tiff"),
    Workload("ref-czi-1core", 4, 30, 1024, "czi", cores=1),
    Workload("fov-1", 1, 30, 1024),
    Workload("fov-16", 16, 30, 1024),
    Workload("frames-120", 1, 120, 1024),
    Workload("size-512", 1, 30, 512),
    Workload("size-2048", 1, 30, 2048),
    Workload("seed-czi", 8, 100, 768, "czi", n_fl=3, suite="seed"),
    Workload("seed-ome-tiff", 8, 100, 768, "ome-tiff", n_fl=3, suite="seed"),
    Workload("seed-czi-lean", 8, 100, 768, "czi", n_fl=3, outputs="lean", suite="seed"),
    Workload("seed-8-384", 8, 100, 384, "czi", n_fl=3, suite="seed"),
    Workload("seed-50-384", 50, 100, 384, "czi", n_fl=3, suite="seed"),
]
# fov-4 = ref-czi and frames-30 = size-1024 = fov-1 (same data and settings).


def input_file(w: Workload) -> Path:
    """The workload's input file, generated into ``CACHE`` when missing."""
    key = f"{w.fmt}-f{w.n_fov}-t{w.n_frames}-s{w.size}"
    if w.n_fl != 1:
        key += f"-fl{w.n_fl}"
    folder = CACHE / key
    suffix = "czi" if w.fmt == "czi" else "ome.tiff"
    image = folder / f"bench.{suffix}"
    if image.exists():
        return image
    tmp = CACHE / f"{key}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [
        sys.executable, "-m", "pyama_steps.cli", "generate", str(tmp),
        "--preset", "demo", "--name", "bench", "--format", w.fmt,
        "--n-fov", str(w.n_fov), "--n-frames", str(w.n_frames),
        "--size", str(w.size), "--no-background-truth",
        "--n-fl-channels", str(w.n_fl),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return image


def workload_config(w: Workload, image: Path) -> dict[str, Any]:
    """The run's configuration (before defaults): the same for both runners."""
    return {
        "input": str(image),
        "output_dir": "out",
        "ingest": {"frame_interval_min": 10.0, "input_checksum": "stat"},
        "outputs": w.outputs,
    }
