"""Parse + DAG time and memory of the Snakemake process for 1, 10 and 100 samples.

Usage::

    python benchmarks/dag_scaling.py                  # -> section in results.md
    python benchmarks/dag_scaling.py --before 8085e71 # + that commit's workflow
    python benchmarks/dag_scaling.py --samples 1,10 --no-write   # quick look

Every sample of the sample sheet is a symbolic link to one generated OME-TIFF
of 50 FOVs x 2 frames x 64² with phase + 3 fluorescence channels
(``benchmarks/cache/dag/``, git-ignored), so a sample is 50 FOVs x 4 channels
and 502 jobs (inspect, 4 copies + segment + 3 backgrounds + track + extract per
FOV, aggregate). The working folders are ``benchmarks/runs/dag/<n>/``.

Per sheet size and workflow version the table gives

* parse: ``snakemake --list-rules`` (Python and Snakemake start, the Snakefile:
  config and sheet validation, each file's plan from the plan cache, the rule
  definitions);
* dry run: ``snakemake -n`` (parse, the DAG of every job, the dry run's
  listing of every job), the issue's "parse + DAG" figure;

each as wall time (min / median of ``--repeats`` runs, the versions
alternating), CPU seconds (user + system of the Snakemake process and the
children it waited for, median) and the peak RSS of the Snakemake process
alone (``VmHWM`` of ``/proc/PID/status``, read every 20 ms; the fork server of
the warm workers is a separate process and not counted). The first dry run of a
fresh folder also opens every input file with bioio to plan it (then cached in
``.snakemake/pyama-steps``); it is timed once, apart.

``--idiom`` adds Snakemake's own cost of the two ways to write the rules of a
sample sheet: the same DAG (same jobs, files and dependencies) from trivial
``run:`` rules defined once per sample (``<rule>__<sample>``, as the workflow
does) or once with a ``{sample}`` wildcard.

The machine is shared (2 cores): wall times vary with the other load; the
CPU seconds vary less.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "benchmarks" / "cache" / "dag"
RUNS = REPO / "benchmarks" / "runs" / "dag"
RESULTS = REPO / "benchmarks" / "results.md"
SECTION = "## DAG scaling"
N_FOV = 50
N_FRAMES = 2
SIZE = 64
N_FL = 3
#: the issue's limit for the dry run of 100 samples x 50 FOVs
LIMIT_S = 60.0


@dataclass
class Measured:
    wall: float
    cpu: float
    rss_mb: float
    out: str


@dataclass
class Row:
    samples: int
    version: str
    jobs: int = 0
    rules: int = 0
    parse: list[Measured] = field(default_factory=list)
    dry: list[Measured] = field(default_factory=list)


def _image() -> Path:
    """The one small input file (generated once)."""
    image = CACHE / "tiny.ome.tiff"
    if image.exists():
        return image
    tmp = CACHE / "gen.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [
        sys.executable, "-m", "pyama_steps.cli", "generate", str(tmp),
        "--preset", "demo", "--name", "tiny", "--format", "ome-tiff",
        "--n-fov", str(N_FOV), "--n-frames", str(N_FRAMES), "--size", str(SIZE),
        "--n-fl-channels", str(N_FL), "--no-background-truth",
    ]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    (tmp / "tiny.ome.tiff").rename(image)
    shutil.rmtree(tmp)
    return image


def _workdir(n: int) -> Path:
    """``runs/dag/<n>/``: the sheet and one link per sample (plan cache kept)."""
    work = RUNS / str(n)
    (work / "data").mkdir(parents=True, exist_ok=True)
    lines = ["sample\tpath"]
    for i in range(1, n + 1):
        link = work / "data" / f"s{i:03d}.ome.tiff"
        if not link.is_symlink():
            link.symlink_to(_image())
        lines.append(f"s{i:03d}\tdata/{link.name}")
    (work / "samples.tsv").write_text("\n".join(lines) + "\n")
    return work


def _snakefile(before: str | None) -> Path:
    """The Snakefile of this checkout, or of commit ``before`` (exported once)."""
    if before is None:
        return REPO / "workflow" / "Snakefile"
    sha = subprocess.run(
        ["git", "rev-parse", "--short", before],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dest = CACHE / f"rev-{sha}"
    if not dest.exists():
        archive = subprocess.run(
            ["git", "archive", sha, "workflow", "profiles"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout
        tmp = CACHE / f"rev-{sha}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="tar")
        tmp.rename(dest)
    return dest / "workflow" / "Snakefile"


class _PeakRss(threading.Thread):
    """Peak RSS of one process: its VmHWM, read until it exits."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.status = Path(f"/proc/{pid}/status")
        self.peak_kb = 0

    def run(self) -> None:
        while True:
            try:
                text = self.status.read_text()
            except OSError:
                return
            match = re.search(r"^VmHWM:\s+(\d+) kB", text, re.MULTILINE)
            if match is None:  # a zombie has no memory lines
                return
            self.peak_kb = max(self.peak_kb, int(match.group(1)))
            time.sleep(0.02)


def _measure(cmd: list[str], cwd: Path) -> Measured:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    log = cwd / "snakemake.out"
    with log.open("w") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT)
        sampler = _PeakRss(proc.pid)
        sampler.start()
        code = proc.wait()
        wall = time.perf_counter() - t0
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = log.read_text(errors="replace")
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({code}):\n{out[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measured(wall, cpu, sampler.peak_kb / 1024, out)


def _snakemake(snakefile: Path, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "snakemake", "-s", str(snakefile), *args,
        "--config", "samples=samples.tsv", "output_dir=out",
    ]  # fmt: skip


def _jobs(out: str) -> int:
    match = re.search(r"^total\s+(\d+)\s*$", out, re.MULTILINE)
    return int(match.group(1)) if match else 0


def _rules(out: str) -> int:
    return sum(1 for line in out.splitlines() if re.fullmatch(r"\w+", line.strip()))


def _first_dry_run(n: int, snakefile: Path) -> Measured:
    """A dry run of a fresh folder: every file is planned with bioio first."""
    work = _workdir(n)
    shutil.rmtree(work / ".snakemake", ignore_errors=True)
    return _measure(_snakemake(snakefile, "-n"), work)


def _measure_sizes(
    sizes: list[int], versions: dict[str, Path], repeats: int
) -> tuple[list[Row], dict[int, Measured]]:
    rows: list[Row] = []
    first: dict[int, Measured] = {}
    for n in sizes:
        work = _workdir(n)
        # the current version's first dry run fills the plan cache, which
        # every version reads (the plan does not depend on the workflow files)
        first[n] = _first_dry_run(n, versions[next(reversed(versions))])
        print(f"{n} samples: first dry run {first[n].wall:.1f} s", flush=True)
        by_version = {v: Row(n, v) for v in versions}
        for _ in range(repeats):
            for version, snakefile in versions.items():
                row = by_version[version]
                row.parse.append(_measure(_snakemake(snakefile, "--list-rules"), work))
                row.dry.append(_measure(_snakemake(snakefile, "-n"), work))
                row.jobs = _jobs(row.dry[-1].out)
                row.rules = _rules(row.parse[-1].out)
                print(
                    f"{n} samples, {version}: parse {row.parse[-1].wall:.1f} s, "
                    f"dry run {row.dry[-1].wall:.1f} s "
                    f"({row.dry[-1].cpu:.1f} CPU s, {row.dry[-1].rss_mb:.0f} MB)",
                    flush=True,
                )
        rows += by_version.values()
    return rows, first


def _walls(runs: list[Measured]) -> str:
    walls = [m.wall for m in runs]
    return f"{min(walls):.1f} / {statistics.median(walls):.1f}"


def _table(rows: list[Row]) -> str:
    head = (
        "| samples x FOVs | jobs | rules | workflow | parse s (min / median) | "
        "dry run s (min / median) | dry run CPU s | dry run peak RSS MB | "
        "parse peak RSS MB |\n"
        "|---|---:|---:|---|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r.samples} x {N_FOV} | {r.jobs:,} | {r.rules:,} | {r.version} | "
            f"{_walls(r.parse)} | {_walls(r.dry)} | "
            f"{statistics.median(m.cpu for m in r.dry):.1f} | "
            f"{max(m.rss_mb for m in r.dry):.0f} | "
            f"{max(m.rss_mb for m in r.parse):.0f} |"
        )
    return "\n".join(lines)


def _notes(rows: list[Row], first: dict[int, Measured]) -> list[str]:
    notes = [
        "* First dry run of a fresh folder (the current workflow; every file is "
        "opened with bioio to plan it, then the plan is cached): "
        + ", ".join(
            f"{n} sample{'s' if n > 1 else ''} {m.wall:.1f} s ({m.rss_mb:.0f} MB)"
            for n, m in first.items()
        )
        + "."
    ]
    by_size: dict[int, list[Row]] = {}
    for r in rows:
        by_size.setdefault(r.samples, []).append(r)
    for n, versions in by_size.items():
        if len(versions) == 2:
            old, new = versions

            def median(runs: list[Measured], key: str) -> float:
                return statistics.median(getattr(m, key) for m in runs)

            notes.append(
                f"* {n} x {N_FOV}, {old.version} -> {new.version}: dry run "
                f"{median(old.dry, 'wall'):.1f} -> {median(new.dry, 'wall'):.1f} s "
                f"(CPU {median(old.dry, 'cpu'):.1f} -> {median(new.dry, 'cpu'):.1f} "
                f"s), peak RSS {max(m.rss_mb for m in old.dry):.0f} -> "
                f"{max(m.rss_mb for m in new.dry):.0f} MB."
            )
    hundred = [r for r in rows if r.samples == 100]
    if hundred:
        now = hundred[-1]
        median_wall = statistics.median(m.wall for m in now.dry)
        mark = "met" if median_wall <= LIMIT_S else "**not met**"
        notes.append(
            f"* Target: dry run of 100 samples x {N_FOV} FOVs ({now.jobs:,} jobs) "
            f"<= {LIMIT_S:.0f} s, {now.version}: median {median_wall:.1f} s {mark} "
            f"(runs: {', '.join(f'{m.wall:.1f}' for m in now.dry)} s)."
        )
    return notes


# --------------------------------------------------------------------------
# the rule idiom alone: rules per sample vs one set of {sample} rules
# --------------------------------------------------------------------------

IDIOM_SNAKEFILE = """
# The DAG of pyama-steps for a sample sheet (inspect, per FOV 4 copies,
# segment, 3 backgrounds, track, extract, aggregate), with trivial run: rules.
N = int(config["nsamp"])
SAMPLES = [f"s{i:03d}" for i in range(N)]
FOVS = [f"{f:03d}" for f in range(50)]
FL = [1, 2, 3]


def outputs(s):
    files = [f"out/{s}/metadata.json"]
    for f in FOVS:
        d = f"out/{s}/fov_{f}/x_fov_{f}"
        files += [f"{d}_pc_ch_0.npy", f"{d}_seg_ch_0.npy", f"{d}_seg_labeled_ch_0.npy"]
        files += [f"{d}_fl_ch_{c}.npy" for c in FL]
        files += [f"{d}_fl_corrected_ch_{c}.npy" for c in FL]
        files += [f"{d}_traces.csv"]
    return files


rule all:
    input:
        [f"out/{s}/manifest.yaml" for s in SAMPLES],


wildcard_constraints:
    fov=r"\\d\\d\\d+",
    channel=r"\\d+",
    kind="pc|fl",
    sample="|".join(SAMPLES),


def define(o, suffix, agg_input):
    d = o + "/fov_{fov}/x_fov_{fov}"

    rule:
        name: "inspect" + suffix
        output: f"{o}/metadata.json"
        run: pass

    rule:
        name: "copy" + suffix
        output: d + "_{kind}_ch_{channel}.npy"
        run: pass

    rule:
        name: "segment" + suffix
        input: d + "_pc_ch_0.npy"
        output: d + "_seg_ch_0.npy"
        run: pass

    rule:
        name: "background" + suffix
        input: fl=d + "_fl_ch_{channel}.npy", seg=d + "_seg_ch_0.npy"
        output: d + "_fl_corrected_ch_{channel}.npy"
        run: pass

    rule:
        name: "track" + suffix
        input: d + "_seg_ch_0.npy"
        output: d + "_seg_labeled_ch_0.npy"
        run: pass

    rule:
        name: "extract" + suffix
        input:
            labeled=d + "_seg_labeled_ch_0.npy",
            corrected=[d + f"_fl_corrected_ch_{c}.npy" for c in FL],
        output: d + "_traces.csv"
        run: pass

    rule:
        name: "aggregate" + suffix
        input: agg_input
        output: f"{o}/manifest.yaml"
        run: pass


if config["mode"] == "per_sample":
    for s in SAMPLES:
        define(f"out/{s}", f"__{s}", outputs(s))
else:
    define("out/{sample}", "", lambda wc: outputs(wc.sample))
"""


def _idiom(sizes: list[int], repeats: int) -> str:
    folder = CACHE / "idiom"
    folder.mkdir(parents=True, exist_ok=True)
    snakefile = folder / "Snakefile"
    snakefile.write_text(IDIOM_SNAKEFILE)
    lines = [
        "| samples x FOVs | jobs | rules | dry run s (min / median) | CPU s | RSS MB |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for n in sizes:
        runs: dict[str, list[Measured]] = {"per_sample": [], "wildcard": []}
        for _ in range(repeats):
            for mode, done in runs.items():
                cmd = [
                    sys.executable, "-m", "snakemake", "-s", str(snakefile), "-n",
                    "--config", f"nsamp={n}", f"mode={mode}",
                ]  # fmt: skip
                done.append(_measure(cmd, folder))
                print(f"idiom {n} {mode}: {done[-1].wall:.1f} s", flush=True)
        for mode, done in runs.items():
            rules = (
                f"{7 * n} (7 per sample)" if mode == "per_sample" else "7 ({sample})"
            )
            lines.append(
                f"| {n} x {N_FOV} | {_jobs(done[0].out):,} | {rules} | {_walls(done)} "
                f"| {statistics.median(m.cpu for m in done):.1f} | "
                f"{max(m.rss_mb for m in done):.0f} |"
            )
    return "\n".join(lines)


def _machine() -> str:
    import psutil

    return (
        f"this machine: {os.cpu_count()} cores (shared), "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python "
        f"{platform.python_version()}, Snakemake {_version('snakemake')}"
    )


def _version(name: str) -> str:
    from importlib import metadata

    return metadata.version(name)


def _write(section: str) -> None:
    """Replace (or append) this script's section of results.md, keep the rest."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(SECTION))
        rest = "" if end < 0 else text[end:]
        text = text[:start] + section.rstrip("\n") + "\n" + rest
    RESULTS.write_text(text.rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", default="1,10,100", help="sheet sizes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", help="also time this commit's workflow/")
    parser.add_argument(
        "--idiom", action="store_true", help="also time the rule idiom alone"
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.samples.split(",")]
    t0 = time.perf_counter()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    versions: dict[str, Path] = {}
    if args.before:
        versions[f"`{args.before}` (before)"] = _snakefile(args.before)
    versions[f"`{commit}`"] = _snakefile(None)
    rows, first = _measure_sizes(sizes, versions, args.repeats)
    table = _table(rows)
    notes = "\n".join(_notes(rows, first))
    print(f"\n{table}\n\n{notes}")
    parts = [table, notes]
    if args.idiom:
        idiom = _idiom([s for s in sizes if s >= 10], max(2, args.repeats - 1))
        print("\n" + idiom)
        parts.append(
            "Snakemake's cost of the rule idiom alone (trivial `run:` rules, the "
            "same DAG): rules defined per sample vs once with a `{sample}` "
            "wildcard.\n\n" + idiom
        )
    command = "python benchmarks/dag_scaling.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:])
    )
    head = (
        f"{SECTION}: parse + DAG time and memory vs samples\n\n"
        f"{datetime.date.today().isoformat()}, {_machine()}; `{command}` took "
        f"{time.perf_counter() - t0:.0f} s ({args.repeats} runs per cell, the "
        f"workflow versions alternating). Each sample: {N_FOV} FOVs x {N_FRAMES} "
        f"frames x {SIZE}², phase + {N_FL} fluorescence channels (OME-TIFF). "
        "Peak RSS: the Snakemake process alone."
    )
    section = "\n\n".join([head, *parts])
    if not args.no_write:
        _write(section + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
