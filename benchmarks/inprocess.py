"""The same step functions without Snakemake's one-process-per-job DAG.

Usage::

    python benchmarks/inprocess.py [--only ref-czi]

Runs every step of every FOV of a cached workload (see ``run.py``) with the
very functions the workflow's scripts call (``pyama_steps.run.steps``), in a pool
of ``cores`` worker processes that import everything once, in dependency
order. It measures what the process-per-job design costs (interpreter
start-up, imports, Snakemake's parsing and scheduling): the difference between
this wall time and ``run.py``'s for the same workload.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.forkserver
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import RUNS, WORKLOADS, Workload, _data


def _warm() -> None:
    import bioio  # noqa: F401
    import pandas  # noqa: F401

    from pyama_steps.run.execute import keep_freed_memory

    keep_freed_memory()  # as the workflow's workers do

    import pyama_steps.background
    import pyama_steps.run.steps
    import pyama_steps.segmentation.log_std
    import pyama_steps.traces
    import pyama_steps.tracking  # noqa: F401


def _fov(args: tuple[dict[str, Any], dict[str, Any], str, int]) -> float:
    """All steps of one FOV, in order; returns the seconds spent."""
    from pyama_steps.io.paths import fov_file, fov_json, stack_file
    from pyama_steps.run import steps

    plan, config, out, fov = args
    t0 = time.perf_counter()
    base, pc, fl = plan["base"], plan["pc"], plan["fl"]

    def path(kind: str, c: int) -> str:
        return f"{out}/{stack_file(base, fov, kind, c)}"

    ing = config["ingest"]
    for kind, c in [("pc", pc)] + [("fl", c) for c in fl]:
        steps.copy_channel(
            input_path=config["input"], output=path(kind, c), fov=fov, channel=c,
            z_mode="plane", z_plane=0, rgb="error", dtype_policy="strict",
            scale_factor=None, scale_offset=ing["scale_offset"],
        )  # fmt: skip
    steps.segment_phase(
        pc=path("pc", pc), output=path("seg", pc), params=config["segmentation"],
        stats=f"{out}/{fov_json(base, fov, 'seg_stats')}",
    )  # fmt: skip
    for c in fl:
        steps.correct_background(
            fl=path("fl", c), seg=path("seg", pc), corrected=path("fl_corrected", c),
            background=None, params=config["background"],
        )  # fmt: skip
    steps.track_cells(
        seg=path("seg", pc), labeled=path("seg_labeled", pc),
        lineage=f"{out}/{fov_file(base, fov, 'lineage')}", fov=fov,
        params=config["tracking"], stats=f"{out}/{fov_json(base, fov, 'cell_stats')}",
    )  # fmt: skip
    times = next(f for f in plan["fovs"] if f["fov"] == fov)["times_min"]
    steps.extract_traces(
        labeled=path("seg_labeled", pc),
        lineage=f"{out}/{fov_file(base, fov, 'lineage')}",
        output=f"{out}/{fov_file(base, fov, 'traces')}", fov=fov, pc_channel=pc,
        fl_channels=fl, fl=[path("fl", c) for c in fl],
        corrected=[path("fl_corrected", c) for c in fl], background=None, seg=None,
        times_min=times, params=config["extraction"],
        background_params=config["background"],
    )  # fmt: skip
    return time.perf_counter() - t0


def run(w: Workload) -> float:
    from pyama_steps.run.config import load_schema, validate_config
    from pyama_steps.run.execute import PRELOAD, limit_library_threads
    from pyama_steps.run.plan import _plan_to_json, plan_run

    image = _data(w)
    out = RUNS / f"inprocess-{w.name}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    # As the workflow's workers: forked from a fork server that imported the
    # step modules once and started with one BLAS/OpenMP thread
    # (pyama_steps.run.execute.limit_library_threads); started before the clock.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    limit_library_threads()
    multiprocessing.forkserver.ensure_running()
    start = time.perf_counter()
    schema = load_schema(
        Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml"
    )
    config = validate_config(
        {"input": str(image), "ingest": {"frame_interval_min": 10.0}}, schema
    )
    with ProcessPoolExecutor(w.cores, mp_context=context, initializer=_warm) as pool:
        plan = _plan_to_json(plan_run(config))
        jobs = [(plan, config, str(out), f) for f in range(w.n_fov)]
        list(pool.map(_fov, jobs))
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="ref-czi", help="workload names")
    args = parser.parse_args(argv)
    rows = {}
    for w in WORKLOADS:
        if w.name in args.only.split(","):
            rows[w.name] = round(run(w), 2)
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
