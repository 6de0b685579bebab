# Configuration validation, the run plan, wildcard constraints and input
# functions. Everything that can be checked before a job runs is checked here:
# the schema (unknown keys, types, ranges), then the input file's metadata
# (FOVs, channels, Z, RGB, frame times). A problem stops the workflow with one
# message naming the key or file and the fix.

import json
from pathlib import Path

from snakemake.exceptions import WorkflowError

from pyama_steps import paths as P
from pyama_steps.config import ConfigError, load_schema, validate_config
from pyama_steps.io import InputError
from pyama_steps.manifest import log_path, summary_line, write_results
from pyama_steps.plan import plan_run_cached, z_mode_for

try:
    _validated = validate_config(
        config, load_schema(Path(workflow.basedir) / "schemas/config.schema.yaml")
    )
    # cached in .snakemake/ so that reruns and cluster jobs, which all parse
    # the workflow, do not reopen the input with bioio
    PLAN = plan_run_cached(_validated, Path(".snakemake") / "pyama-steps")
except (ConfigError, InputError) as e:
    raise WorkflowError(f"pyama-steps: {e}") from None
config.clear()
config.update(_validated)

# Literal parts of every path; both are sanitised, so they hold no braces.
OUT = str(config["output_dir"]).rstrip("/") or "."
BASE = PLAN.base
PC = PLAN.pc
FL = list(PLAN.fl)
FOVS = PLAN.fov_ids
FOV_IDS = [f"{f:03d}" for f in FOVS]
BG = config["background"]

METADATA = f"{OUT}/{P.METADATA}"
MANIFEST = f"{OUT}/{P.MANIFEST}"
TRACES_ALL = f"{OUT}/{P.TRACES_ALL}"


wildcard_constraints:
    fov=r"\d\d\d+",
    channel=r"\d+",
    kind="pc|fl",


def stack(kind, channel, fov="{fov}"):
    """Path pattern of one per-FOV stack."""
    return f"{OUT}/{P.stack_file(BASE, fov, kind, channel)}"


def fov_csv(kind, fov="{fov}"):
    """Path pattern of one per-FOV CSV (traces, lineage)."""
    return f"{OUT}/{P.fov_file(BASE, fov, kind)}"


def logfile(rule, suffix=""):
    return f"{OUT}/logs/{rule}/fov_{{fov}}{suffix}.log"


def benchfile(rule, suffix=""):
    return f"{OUT}/benchmarks/{rule}/fov_{{fov}}{suffix}.tsv"


def frame_pixels(wildcards):
    """Pixels per frame (Y * X) of the FOV of a job."""
    y, x = PLAN.fov(int(wildcards.fov)).frame_shape
    return y * x


def n_frames(wildcards):
    return PLAN.fov(int(wildcards.fov)).n_frames


def mem_mb(bytes_per_pixel, base_mb=150):
    """Memory of a job: a fixed base plus frame-sized work arrays (O(P), not O(T))."""

    def estimate(wildcards):
        return int(base_mb + bytes_per_pixel * frame_pixels(wildcards) / 2**20)

    return estimate


def runtime_min(ms_per_megapixel_frame):
    """Wall-time limit in minutes, generous: 10x the measured kernel cost + 5 min."""

    def estimate(wildcards):
        seconds = n_frames(wildcards) * frame_pixels(wildcards) / 1e6 * ms_per_megapixel_frame / 1e3
        return int(5 + 10 * seconds / 60)

    return estimate


def background_written():
    return BG["write_corrected"] or BG["write_background"]


def report_results(failed):
    """Print where the manifest is and a one-line summary; after a failure, first
    rebuild the manifest so that it lists which FOVs failed and why."""
    import yaml

    meta_path = Path(METADATA)
    if not failed and not Path(MANIFEST).exists():
        return
    meta = (
        json.loads(meta_path.read_text()) if meta_path.exists() else PLAN.to_metadata()
    )
    if failed:
        manifest = write_results(OUT, meta, config, FOVS)
    else:
        manifest = yaml.safe_load(Path(MANIFEST).read_text())
    print(f"pyama-steps: {MANIFEST}")
    print(f"pyama-steps: {summary_line(manifest, meta)}")
    for f, s in manifest["fov_status"].items():
        if s["status"] == "failed":
            print(
                f"pyama-steps: FOV {f} failed in step {s['step']}: {s['message']} "
                f"(log: {OUT}/{s['log']})"
            )
