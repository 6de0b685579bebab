# Configuration validation, the run plan(s), wildcard constraints and the
# per-run path helpers. Everything that can be checked before a job runs is
# checked here: the schema (unknown keys, types, ranges), the sample sheet,
# then each input file's metadata (FOVs, channels, Z, RGB, frame times). A
# problem stops the workflow with one message naming the key or file and the
# fix.
#
# One input file is one *run* (an object of class Run below) with its own
# output folder, plan and configuration. Without a sample sheet there is one
# run, whose rules have the plain names (segment_phase, ...); with
# `samples: sheet.tsv` there is one run per sample, whose rules are named
# <rule>__<sample> and write to <output_dir>/<sample>/.

import hashlib
import json
import os
import sys
import re
from pathlib import Path
from types import SimpleNamespace

from snakemake.exceptions import WorkflowError

from pyama_steps.run import execute
from pyama_steps.io import paths as P
from pyama_steps.run.config import ConfigError, load_schema, validate_config
from pyama_steps.run.execute import run_step
from pyama_steps.io.integrity import (
    input_fingerprint,
    input_mismatch,
    record_outputs,
    stale_files,
)
from pyama_steps.io import InputError
from pyama_steps.run.manifest import summary_line, warning_lines, write_results
from pyama_steps.run.plan import plan_run_cached, z_mode_for
from pyama_steps.run.samples import read_sample_sheet, sample_config, summary_table

SCHEMA = load_schema(Path(workflow.basedir) / "schemas/config.schema.yaml")
# plans are cached in .snakemake/ so that reruns and cluster jobs, which all
# parse the workflow, do not reopen the inputs with bioio
PLAN_CACHE = Path(".snakemake") / "pyama-steps"


class Run:
    """One input file: its configuration, plan, output folder and path patterns."""

    def __init__(self, sample, cfg, plan):
        self.sample = sample
        self.suffix = "" if sample is None else "__" + re.sub(r"\W", "_", sample)
        self.config = cfg
        self.plan = plan
        # literal parts of every path; both are sanitised, so they hold no braces
        self.out = str(cfg["output_dir"]).rstrip("/") or "."
        self.base = plan.base
        self.pc = plan.pc
        self.fl = list(plan.fl)
        self.fovs = plan.fov_ids
        self.fov_ids = [f"{f:03d}" for f in self.fovs]
        self.bg = cfg["background"]
        # outputs: lean writes the raw copies, the mask and the background
        # stacks as temp() files, removed once nothing needs them (§0.2)
        self.lean = cfg["outputs"] == "lean"
        # where each plane of the input is (pyama_steps.io.plane_index), built by
        # index_planes before the first job; named after the output folder,
        # which holds one input's results, so that the name is stable
        key = hashlib.sha256(self.out.encode()).hexdigest()[:16]
        self.plane_index = str(PLAN_CACHE / f"planes-{key}.json")
        self.metadata = f"{self.out}/{P.METADATA}"
        self.manifest = f"{self.out}/{P.MANIFEST}"
        self.traces_all = f"{self.out}/{P.TRACES_ALL}"

    def name(self, rule):
        """Rule name of this run."""
        return rule + self.suffix

    def stack(self, kind, channel, fov="{fov}"):
        """Path (pattern) of one per-FOV stack."""
        return f"{self.out}/{P.stack_file(self.base, fov, kind, channel)}"

    def stack_out(self, kind, channel, fov="{fov}"):
        """Output path (pattern) of one per-FOV stack: temp() when outputs:
        lean removes that kind once the traces exist."""
        path = self.stack(kind, channel, fov)
        return temp(path) if self.temporary(path) else path

    def temporary(self, path):
        """True when outputs: lean removes this file after use."""
        return self.lean and P.stack_kind(path) in P.LEAN_TEMPORARY_KINDS

    def kept(self, files):
        """The files of a job that stay: their sizes and checksums are
        recorded (pyama-steps verify, §6.5)."""
        return [f for f in files if not self.temporary(f)]

    def fov_csv(self, kind, fov="{fov}"):
        """Path (pattern) of one per-FOV CSV (traces, lineage)."""
        return f"{self.out}/{P.fov_file(self.base, fov, kind)}"

    def fov_json(self, kind, fov="{fov}"):
        """Path (pattern) of one per-FOV JSON (seg_stats, cell_stats)."""
        return f"{self.out}/{P.fov_json(self.base, fov, kind)}"

    def log(self, rule, suffix=""):
        return f"{self.out}/logs/{rule}/fov_{{fov}}{suffix}.log"

    def bench(self, rule, suffix=""):
        return f"{self.out}/benchmarks/{rule}/fov_{{fov}}{suffix}.tsv"

    def frame_pixels(self, wildcards):
        """Pixels per frame (Y * X) of the FOV of a job."""
        y, x = self.plan.fov(int(wildcards.fov)).frame_shape
        return y * x

    def n_frames(self, wildcards):
        return self.plan.fov(int(wildcards.fov)).n_frames

    def times(self, wildcards):
        return list(self.plan.fov(int(wildcards.fov)).times_min)

    def per_fov(self, estimate):
        """A resource of a job computed from its FOV by `estimate(wildcards)`.

        When all FOVs of the run have the same frame count and size (the usual
        case), the value is computed once, here, and the rule gets a number;
        otherwise it gets the function, which Snakemake calls for every job
        (~40 µs a call: 4 of 61 CPU s of a dry run of 100 samples x 50 FOVs,
        benchmarks/results.md, "DAG scaling"). Same values either way.
        """
        if len({(f.n_frames, f.frame_shape) for f in self.plan.fovs}) == 1:
            return estimate(SimpleNamespace(fov=self.fov_ids[0]))
        return estimate

    def mem_mb(self, bytes_per_pixel, base_mb=150):
        """Memory of a job: a base plus frame-sized work arrays (O(P), not O(T))."""
        return self.per_fov(
            lambda wc: int(base_mb + bytes_per_pixel * self.frame_pixels(wc) / 2**20)
        )

    def runtime_estimate(self, ms_per_megapixel_frame):
        """Wall-time limit in minutes, generous: 10x the kernel cost + 5 min."""

        def estimate(wc):
            megapixels = self.n_frames(wc) * self.frame_pixels(wc) / 1e6
            return int(5 + 10 * megapixels * ms_per_megapixel_frame / 1e3 / 60)

        return estimate

    def runtime_min(self, ms_per_megapixel_frame):
        """`runtime_estimate` as a job resource (see `per_fov`)."""
        return self.per_fov(self.runtime_estimate(ms_per_megapixel_frame))

    def channel_names(self):
        return {c: self.plan.channel_names[c] for c in [self.pc, *self.fl]}

    def all_outputs(self):
        """Every per-FOV output that stays, and metadata.json: targets of rule
        all (outputs: lean leaves out the temporary files)."""
        files = [self.metadata]
        for fov in self.fov_ids:
            files += [
                self.stack("pc", self.pc, fov),
                self.stack("seg", self.pc, fov),
                self.stack("seg_labeled", self.pc, fov),
            ]
            files += [self.stack("fl", c, fov) for c in self.fl]
            files += [self.stack("fl_background_model", c, fov) for c in self.fl]
            if self.bg["write_corrected"]:
                files += [self.stack("fl_corrected", c, fov) for c in self.fl]
            if self.bg["write_background"]:
                files += [self.stack("fl_background", c, fov) for c in self.fl]
            files += [self.fov_csv("lineage", fov), self.fov_csv("traces", fov)]
            files += [self.fov_json("seg_stats", fov), self.fov_json("cell_stats", fov)]
        return self.kept(files)

    def aggregate_inputs(self):
        """What aggregate_results waits for: metadata.json and each FOV's traces.

        Every other per-FOV output is written by a job upstream of its FOV's
        traces (copy -> segment -> track -> extract; background -> extract),
        so these files order the aggregate after every job of the run, and a
        rerun of any of those jobs reruns it. What gets a deleted output
        redone is `all_outputs` as targets of `all`; listing those ~650 files
        per sample here too cost 3 of 57 CPU s and 90 MB of a dry run of 100
        samples x 50 FOVs (benchmarks/results.md, "DAG scaling").
        """
        return [self.metadata, *(self.fov_csv("traces", fov) for fov in self.fov_ids)]

    def report(self, failed):
        """Print the manifest's path and summary; after a failure, first rebuild
        the manifest so that it lists which FOVs failed and why."""
        import yaml

        if not failed and not Path(self.manifest).exists():
            return None
        meta_path = Path(self.metadata)
        meta = (
            json.loads(meta_path.read_text())
            if meta_path.exists()
            else self.plan.to_metadata()
        )
        if failed:
            manifest = write_results(self.out, meta, self.config, self.fovs)
            # recorded as the aggregate job would (pyama-steps verify)
            record_outputs(
                log_path=f"{self.out}/logs/aggregate_results/aggregate_results.log",
                files=[self.manifest, self.traces_all],
            )
        else:
            manifest = yaml.safe_load(Path(self.manifest).read_text())
        label = "" if self.sample is None else f"[{self.sample}] "
        print(f"pyama-steps: {label}{self.manifest}")
        print(f"pyama-steps: {label}{summary_line(manifest, meta)}")
        for f, s in manifest["fov_status"].items():
            if s["status"] == "failed":
                print(
                    f"pyama-steps: {label}FOV {f} failed in step {s['step']}: "
                    f"{s['message']} (log: {self.out}/{s['log']})"
                )
        # the segmentation checks (algorithms.md §2.8): warnings and notes
        for line in warning_lines(manifest, limit=20, out_dir=self.out):
            print(f"pyama-steps: {label}{line}")
        return manifest


def check_same_input(run):
    """Stop when the run's output folder holds another input's results: one
    folder is one experiment (algorithms.md §6.4). Cheap: a stat and 4 MiB."""
    meta_path = Path(run.metadata)
    if not workflow.is_main_process or not meta_path.is_file():
        return
    try:
        recorded = json.loads(meta_path.read_text(encoding="utf-8"))["input"]
    except (ValueError, KeyError, TypeError):
        return  # an unreadable metadata.json is redone by its rule
    problem = input_mismatch(
        recorded=recorded,
        current=input_fingerprint(run.config["input"]),
        current_path=str(run.config["input"]),
        output_dir=run.out,
        base=run.base,
    )
    if problem:
        label = "" if run.sample is None else f"sample {run.sample!r}: "
        raise ConfigError(label + problem)


def missing_profile_settings(workflow):
    """What profiles/default sets and this run lacks (it was not found or was
    replaced): keep-going and rerun-incomplete change what a failure or a
    killed run leaves behind, so say so instead of silently running without."""
    missing = []
    # a dry run has no execution settings: nothing runs, nothing to say
    if getattr(workflow.execution_settings, "keep_going", True) is False:
        missing.append("keep-going (one failed FOV stops the others)")
    if getattr(workflow.dag_settings, "force_incomplete", True) is False:
        missing.append(
            "rerun-incomplete (after a killed run snakemake stops at the "
            "incomplete files)"
        )
    if not missing:
        return []
    return [
        f"the run lacks {', '.join(missing)}: profiles/default of the workflow "
        "was not used. Run snakemake in the repository, or pass "
        f"--workflow-profile {Path(workflow.basedir).parent / 'profiles' / 'default'}"
    ]


def index_planes(runs):
    """Before the first job (onstart): build each run's plane index when it is
    missing or out of date, in a worker process (a reader that crashes takes
    only the worker down). Copy jobs then read planes at its offsets instead
    of opening the input with bioio, a cost that grows with the file (issue
    16). A run without an index reads through bioio as before."""
    from pyama_steps.io.plane_index import index_is_current

    if not workflow.is_main_process:
        return
    for run in runs:
        inp = str(run.config["input"])
        if index_is_current(run.plane_index, input_path=inp, fovs=run.fovs):
            continue
        label = "" if run.sample is None else f"sample {run.sample!r}: "
        try:
            done = run_step(
                # planes-<key>.index.log: its job record (.index.json) is
                # not the index (planes-<key>.json)
                str(Path(run.plane_index).with_suffix(".index.log")),
                "pyama_steps.io.plane_index:write_plane_index",
                input_path=inp,
                output=run.plane_index,
                reader=run.plan.reader,
                fovs=run.plan.to_metadata()["fovs"],
            )
        except execute.StepFailed as e:
            Path(run.plane_index).unlink(missing_ok=True)
            done = {"warning": f"indexing failed ({e})"}
        if done["warning"]:
            print(
                f"pyama-steps: warning: {label}the copy jobs read {inp} through "
                f"bioio, without a plane index: {done['warning']}",
                file=sys.stderr,
            )


def start_workers():
    """In the local run itself, the step rules' run: blocks hand their work to
    warm worker processes (pyama_steps.run.execute, README "Performance"), one per
    core, instead of starting a Python process per job. Started once the
    configuration is valid and before the inputs are opened, so that the
    workers' imports overlap with planning and building the DAG. That needs
    Snakemake to run run: blocks in threads of this process
    (--force-use-threads, which profiles/default sets; without it every such
    job is a new Snakemake process). A cluster job, or a job in its own
    process, runs its step inline."""
    if not workflow.is_main_process:
        return
    try:
        cores = workflow.cores
    except WorkflowError:  # no --cores (e.g. a dry run): one worker
        cores = 1
    cpus = len(os.sched_getaffinity(0))
    # locally only: with a cluster executor --cores is not this machine's
    if workflow.local_exec and isinstance(cores, int) and cores > cpus:
        print(
            f"pyama-steps: warning: --cores {cores} is more than this machine's "
            f"{cpus} CPU(s); jobs share the CPUs and each takes longer (use --cores "
            f"{cpus} or fewer)",
            file=sys.stderr,
        )
    execute.configure(workers=cores)


try:
    _validated = validate_config(config, SCHEMA)
    start_workers()
    if _validated.get("samples"):
        RUNS = []
        for _row in read_sample_sheet(_validated["samples"]):
            _cfg = validate_config(sample_config(_validated, _row), SCHEMA)
            try:
                _plan = plan_run_cached(_cfg, PLAN_CACHE)
            except (ConfigError, InputError) as e:
                raise type(e)(f"sample {_row.sample!r}: {e}") from None
            RUNS.append(Run(_row.sample, _cfg, _plan))
    else:
        RUNS = [Run(None, _validated, plan_run_cached(_validated, PLAN_CACHE))]
    for _run in RUNS:
        P.check_writable(_run.out)
        check_same_input(_run)
except (ConfigError, InputError, OSError) as e:
    # the message is the first line of the output: no WorkflowError header
    # naming this file, no traceback line (a SystemExit is not wrapped)
    print(f"pyama-steps: {e}", file=sys.stderr)
    raise SystemExit(1) from None
if workflow.is_main_process:
    # Snakemake's DAG (~25 kB of objects per job) is built faster without
    # Python's garbage collector; onstart (Snakefile) switches it on again
    # before the first job, and a dry run exits without it (execute.py). Not
    # before the plans are made: opening a file with bioio leaves cyclic
    # garbage (100 new files: 4 GB without the collector, 1.3 GB with it).
    execute.defer_garbage_collection()
    # the plan's warnings (Z-stacks, frame times, dtype), with the sample
    for _run in RUNS:
        _label = "" if _run.sample is None else f"sample {_run.sample!r}: "
        for _w in _run.plan.warnings:
            print(f"pyama-steps: warning: {_label}{_w}", file=sys.stderr)
    for _run in RUNS:
        _label = "" if _run.sample is None else f"sample {_run.sample!r}: "
        _stale = stale_files(
            out_dir=_run.out, base=_run.base, fov_dirs=[f"fov_{f}" for f in _run.fov_ids]
        )
        if _stale:
            _shown = ", ".join(f"{_run.out}/{f}" for f in _stale[:3])
            print(
                f"pyama-steps: warning: {_label}{_run.out} holds {len(_stale)} file(s) "
                f"of another base name, not part of this run or its manifest: "
                f"{_shown}{', ...' if len(_stale) > 3 else ''}; they are listed as "
                "stale_files in the manifest: delete them, or use another output_dir",
                file=sys.stderr,
            )
    for _missing in missing_profile_settings(workflow):
        print(f"pyama-steps: warning: {_missing}", file=sys.stderr)
# Snakemake's `config` becomes the validated one, defaults filled in: the
# report's caption (workflow/report/workflow.rst) reads `snakemake.config`, so a
# separate validated dict would leave the caption without the defaults.
config.clear()
config.update(_validated)

OUT = str(config["output_dir"]).rstrip("/") or "."
SAMPLES_SUMMARY = f"{OUT}/samples_summary.tsv"


wildcard_constraints:
    fov=r"\d\d\d+",
    channel=r"\d+",
    kind="pc|fl",


def report_all(failed):
    manifests = [(run, run.report(failed)) for run in RUNS]
    if not config.get("samples"):
        return
    if failed:  # the summarize_samples rule could not run: write it here
        rows = [(r.sample, r.config["input"], m) for r, m in manifests]
        Path(SAMPLES_SUMMARY).parent.mkdir(parents=True, exist_ok=True)
        Path(SAMPLES_SUMMARY).write_text(summary_table(rows))
    if Path(SAMPLES_SUMMARY).exists():
        print(f"pyama-steps: {SAMPLES_SUMMARY}")
