"""The same step functions without Snakemake's one-process-per-job DAG.

Usage::

    python benchmarks/inprocess.py [--only ref-czi]

Builds the plane index as the workflow does before its first job, then runs
every step of every FOV of a cached workload (``workloads.py``) with the very
functions and arguments the workflow's rules pass (``pyama_steps.run.steps``:
copy, segment, background model, track, extract), in a pool of ``cores``
worker processes that import everything once, in dependency order. The run's
metadata.json, job records and manifest (inspect_input, aggregate_results) are
not written. It measures what the process-per-job design costs (interpreter
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

from workloads import REPO, RUNS, WORKLOADS, Workload, input_file, workload_config


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


def _fov(args: tuple[Any, dict[str, Any], str, str, int]) -> float:
    """All steps of one FOV, in order, as the rules call them; returns seconds."""
    from pyama_steps.io.paths import fov_file, fov_json, stack_file
    from pyama_steps.run import steps
    from pyama_steps.run.plan import z_mode_for

    plan, config, out, plane_index, fov = args
    t0 = time.perf_counter()
    base, pc, fl = plan.base, plan.pc, list(plan.fl)
    ing, bg = config["ingest"], config["background"]

    def path(kind: str, c: int) -> str:
        return f"{out}/{stack_file(base, fov, kind, c)}"

    for kind, c in [("pc", pc)] + [("fl", c) for c in fl]:
        steps.copy_channel(
            input_path=config["input"], output=path(kind, c), fov=fov, channel=c,
            z_mode=z_mode_for(ing, kind), z_plane=ing["z_plane"], rgb=ing["rgb"],
            dtype_policy=ing["dtype_policy"], scale_factor=ing["scale_factor"],
            scale_offset=ing["scale_offset"], plane_index=plane_index,
        )  # fmt: skip
    steps.segment_phase(
        pc=path("pc", pc), output=path("seg", pc), params=config["segmentation"],
        stats=f"{out}/{fov_json(base, fov, 'seg_stats')}",
    )  # fmt: skip
    for c in fl:
        steps.correct_background(
            fl=path("fl", c), seg=path("seg", pc),
            model=path("fl_background_model", c),
            corrected=path("fl_corrected", c) if bg["write_corrected"] else None,
            background=path("fl_background", c) if bg["write_background"] else None,
            params=bg,
        )  # fmt: skip
    steps.track_cells(
        seg=path("seg", pc), labeled=path("seg_labeled", pc),
        lineage=f"{out}/{fov_file(base, fov, 'lineage')}", fov=fov,
        params=config["tracking"], stats=f"{out}/{fov_json(base, fov, 'cell_stats')}",
    )  # fmt: skip
    steps.extract_traces(
        labeled=path("seg_labeled", pc),
        lineage=f"{out}/{fov_file(base, fov, 'lineage')}",
        output=f"{out}/{fov_file(base, fov, 'traces')}", fov=fov, pc_channel=pc,
        fl_channels=fl, fl=[path("fl", c) for c in fl],
        model=[path("fl_background_model", c) for c in fl],
        times_min=list(plan.fov(fov).times_min), params=config["extraction"],
        background_params=bg,
    )  # fmt: skip
    return time.perf_counter() - t0


def run(w: Workload) -> float:
    """Wall seconds of all steps of `w` in one pool of ``w.cores`` workers."""
    from pyama_steps.io.plane_index import write_plane_index
    from pyama_steps.run.config import load_schema, validate_config
    from pyama_steps.run.execute import PRELOAD, limit_library_threads
    from pyama_steps.run.plan import plan_run

    image = input_file(w)
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
    schema = load_schema(REPO / "workflow/schemas/config.schema.yaml")
    config = validate_config(workload_config(w, image), schema)
    with ProcessPoolExecutor(w.cores, mp_context=context, initializer=_warm) as pool:
        plan = plan_run(config)
        # as the workflow's onstart (index_planes in common.smk)
        plane_index = str(out / "planes.json")
        write_plane_index(
            input_path=str(image), output=plane_index, reader=plan.reader,
            fovs=plan.to_metadata()["fovs"],
        )  # fmt: skip
        jobs = [(plan, config, str(out), plane_index, f) for f in plan.fov_ids]
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
