"""The workflow on a real (single-node) SLURM cluster through profiles/slurm.

The module fixture starts the cluster with scripts/slurm/local_slurm.sh
(slurmctld, slurmd, slurmdbd with MariaDB, munged) and stops it afterwards.
What ran is checked with SLURM's own accounting (``sacct``), not with
Snakemake's output: job states, the job steps, the partition and account, and
the SLURM log of each batch job, which names the FOVs whose steps ran in it.
"""

from __future__ import annotations

import io
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from pyama_steps.validation import synth
from pyama_steps.validation.synth_io import write_dataset
from tests.conftest import REPO, SNAKEFILE

pytestmark = pytest.mark.workflow

SCRIPT = REPO / "scripts" / "slurm" / "local_slurm.sh"
PROFILE = REPO / "profiles" / "slurm"
TEST_PROFILE = REPO / "profiles" / "slurm-test"
# what local_slurm.sh creates and profiles/slurm-test names
PARTITION = "local"
ACCOUNT = "pyama"
# seconds: one run of the workflow (~1 min here), the cluster's start (which
# may first install the Debian packages) and stop
RUN_TIMEOUT = 300
START_TIMEOUT = 900
STOP_TIMEOUT = 120


def _unavailable(reason: str) -> None:
    """Skip outside CI; under CI the SLURM test must run, so fail instead."""
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but the SLURM test cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def slurm_env() -> Iterator[dict[str, str]]:
    """Start the local SLURM cluster; yield the environment that reaches it.

    A cluster that is already fully running (same state directory) is used and
    left running; otherwise the daemons this fixture started are stopped at
    teardown, also when the start or a test failed.
    """
    if os.geteuid() != 0:
        _unavailable("the local SLURM cluster runs its daemons as root")
    if shutil.which("bash") is None or shutil.which("timeout") is None:
        _unavailable("bash and coreutils' timeout are needed")
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        _unavailable("snakemake-executor-plugin-slurm is not installed (extra 'test')")

    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    status = subprocess.run(
        ["bash", str(SCRIPT), "status"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    already_running = status.returncode == 0
    try:
        start = subprocess.run(
            ["bash", str(SCRIPT), "start"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
        if start.returncode != 0:
            pytest.fail(f"local_slurm.sh start failed:\n{start.stdout[-4000:]}")
        exports = subprocess.run(
            ["bash", str(SCRIPT), "env"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        match = re.search(r"export SLURM_CONF=(\S+)", exports)
        assert match, exports
        env["SLURM_CONF"] = match.group(1)
        yield env
    finally:
        if not already_running:
            stop = subprocess.run(
                ["bash", str(SCRIPT), "stop"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=STOP_TIMEOUT,
                check=False,
            )
            assert stop.returncode == 0, stop.stdout


@pytest.fixture(scope="module")
def easy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two FOVs (128x160, 144x128) x 8 frames, phase + 1 fluorescence channel."""
    out = tmp_path_factory.mktemp("easy")
    return write_dataset(out, synth.preset("easy", seed=3), name="easy")


@pytest.fixture(scope="module")
def three_fov_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three FOVs (128x160 and 144x128 in turn) x 4 frames, phase + 1 fl channel.

    Every step of a FOV in a SLURM batch job is its own Snakemake process
    (remote jobs run ``run:`` blocks in subprocesses), so each FOV costs
    ~30 s here; three are the fewest that fill one batch of 2 and part of a
    second.
    """
    out = tmp_path_factory.mktemp("three")
    params = synth.preset("easy", seed=3, n_fov=3, n_frames=4)
    return write_dataset(out, params, name="three")


# --------------------------------------------------------------------------
# running the workflow and reading SLURM's accounting
# --------------------------------------------------------------------------


@dataclass
class SlurmJob:
    """One SLURM job of a run, as sacct and the plugin's log file show it."""

    job_id: str
    state: str
    exit_code: str
    comment: str
    partition: str
    account: str
    work_dir: str
    steps: dict[str, str]  # step id (batch, 0, 1, ...) -> state
    # (rule, fov or None) of every Snakemake job that ran inside it
    rules: list[tuple[str, str | None]]

    @property
    def fovs(self) -> set[str]:
        return {fov for _, fov in self.rules if fov is not None}


@dataclass
class SlurmRun:
    returncode: int
    stdout: str
    run_id: str
    jobs: list[SlurmJob]

    def by_comment(self, prefix: str) -> list[SlurmJob]:
        return [j for j in self.jobs if j.comment.startswith(prefix)]


def _sacct(env: dict[str, str], *args: str) -> list[list[str]]:
    out = subprocess.run(
        ["sacct", "-n", "-P", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [line.split("|") for line in out.splitlines() if line]


def _rules_in_log(log: Path) -> list[tuple[str, str | None]]:
    """The ``(rule, fov)`` of each job that Snakemake ran inside a SLURM job."""
    rules: list[tuple[str, str | None]] = []
    current: str | None = None
    for line in log.read_text(errors="replace").splitlines():
        started = re.match(r"(?:local)?rule (\w+):$", line)
        if started:
            current = started.group(1)
            rules.append((current, None))
        elif current is not None and line.strip().startswith("wildcards:"):
            fov = re.search(r"\bfov=(\d+)", line)
            rules[-1] = (current, fov.group(1) if fov else None)
            current = None
    return rules


def run_on_slurm(
    workdir: Path,
    config: dict[str, Any],
    env: dict[str, str],
    *args: str,
) -> SlurmRun:
    """Run the workflow through profiles/slurm (+ profiles/slurm-test) in ``workdir``.

    Returns the exit code, the output and every SLURM job the run submitted,
    found in the accounting database by the run's job name (the plugin names
    all jobs of one run by the run's id).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 60))
    cmd = [
        # the whole process group is killed, Snakemake and its sbatch calls
        "timeout",
        "-k",
        "10",
        str(RUN_TIMEOUT),
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(SNAKEFILE),
        "-d",
        str(workdir),
        "--configfile",
        str(cfg),
        "--profile",
        str(PROFILE),
        # replaces profiles/default; its keys override profiles/slurm's
        "--workflow-profile",
        str(TEST_PROFILE),
        *args,
    ]
    proc = subprocess.run(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        check=False,
    )
    (workdir / f"snakemake-{time.monotonic_ns()}.out").write_text(proc.stdout)
    assert proc.returncode != 124, f"snakemake timed out:\n{proc.stdout[-6000:]}"
    match = re.search(r"SLURM run ID: (\S+)", proc.stdout)
    assert match, f"not a SLURM run:\n{proc.stdout[-6000:]}"
    run_id = match.group(1)
    logs = {
        m.group(1): Path(m.group(2))
        for m in re.finditer(
            r"submitted with SLURM jobid (\d+) \(log: (.+?)\)", proc.stdout
        )
    }

    fields = "JobIDRaw,JobName,State,ExitCode,Comment,Partition,Account,WorkDir"
    jobs = []
    for job_id, _, state, exit_code, comment, partition, account, work_dir in _sacct(
        env, "-X", "--name", run_id, "--starttime", started, "-o", fields
    ):
        steps = {
            step_id.split(".", 1)[1]: step_state
            for step_id, step_state in _sacct(env, "-j", job_id, "-o", "JobID,State")
            if "." in step_id
        }
        log = logs.get(job_id)
        jobs.append(
            SlurmJob(
                job_id=job_id,
                state=state,
                exit_code=exit_code,
                comment=comment,
                partition=partition,
                account=account,
                work_dir=work_dir,
                steps=steps,
                rules=_rules_in_log(log) if log and log.exists() else [],
            )
        )
    return SlurmRun(proc.returncode, proc.stdout, run_id, jobs)


def _describe(run: SlurmRun) -> str:
    rows = [
        f"{j.job_id} {j.state} {j.exit_code} {j.comment} fovs={sorted(j.fovs)}"
        for j in run.jobs
    ]
    return "\n".join(rows) + "\n" + run.stdout[-4000:]


def _assert_ran_as_slurm_job(job: SlurmJob, workdir: Path) -> None:
    """Submitted to the test partition and account, run in the workflow's
    directory, its batch script and Snakemake's srun step(s) completed."""
    assert job.partition == PARTITION
    assert job.account == ACCOUNT
    assert Path(job.work_dir) == workdir
    assert job.steps.get("batch") == "COMPLETED", job.steps
    assert "0" in job.steps, job.steps  # the plugin runs each job through srun


def _manifest(workdir: Path) -> dict[str, Any]:
    return yaml.safe_load((workdir / "out" / "processing_results.yaml").read_text())


# per-FOV rules, all in job group "fov" (one batch job per group component)
FOV_RULES = {
    "copy_channel",
    "segment_phase",
    "correct_background",
    "track_cells",
    "extract_traces",
}


@pytest.fixture(scope="module")
def grouped_run(
    slurm_env: dict[str, str],
    three_fov_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, SlurmRun]:
    """Three FOVs through the profiles, 2 FOVs per batch job (profiles/slurm-test)."""
    workdir = tmp_path_factory.mktemp("slurm_grouped")
    run = run_on_slurm(
        workdir, {"input": str(three_fov_file), "output_dir": "out"}, slurm_env
    )
    return workdir, run


# --------------------------------------------------------------------------
# the tests
# --------------------------------------------------------------------------


def test_profiles_leave_partition_and_account_to_the_user() -> None:
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["keep-going"] is True
    assert profile["rerun-incomplete"] is True
    assert any(g.startswith("fov=") for g in profile["group-components"])
    # placeholders only, as comments
    assert "slurm_partition" not in profile["default-resources"]
    assert "slurm_account" not in profile["default-resources"]
    text = (PROFILE / "config.yaml").read_text()
    assert "# slurm_partition:" in text
    assert "# slurm_account:" in text
    # never in the rules
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        assert "slurm_" not in smk.read_text(), smk
    # the test profile only overrides keys that profiles/slurm has
    test_profile = yaml.safe_load((TEST_PROFILE / "config.yaml").read_text())
    unknown = set(test_profile) - set(profile) - {"seconds-between-status-checks"}
    assert unknown == set()


@pytest.mark.slow
@pytest.mark.slurm
def test_fovs_run_in_grouped_slurm_jobs_of_the_group_size(
    grouped_run: tuple[Path, SlurmRun],
) -> None:
    # 3 FOVs, 2 per batch (fov=2): ceil(3 / 2) = 2 batch jobs, plus
    # inspect_input and aggregate_results, counted in SLURM's accounting
    workdir, run = grouped_run
    assert run.returncode == 0, _describe(run)
    batches = run.by_comment("rule_fov")
    singles = sorted(j.comment for j in run.jobs if j not in batches)
    assert singles == ["rule_aggregate_results", "rule_inspect_input"], _describe(run)
    assert len(batches) == math.ceil(3 / 2), _describe(run)
    for job in run.jobs:
        assert (job.state, job.exit_code) == ("COMPLETED", "0:0"), _describe(run)
        _assert_ran_as_slurm_job(job, workdir)
    # every step of a FOV ran inside one batch job of at most 2 FOVs
    _assert_batches_cover(batches, {f"{f:03d}" for f in range(3)}, size=2)
    for job in batches:
        assert {rule for rule, _ in job.rules} == FOV_RULES, job.rules
        # + the 2nd copy_channel of each FOV
        assert len(job.rules) == len(job.fovs) * (len(FOV_RULES) + 1), job.rules

    manifest = _manifest(workdir)
    assert [s["status"] for s in manifest["fov_status"].values()] == ["ok"] * 3
    assert (workdir / "out" / "traces.csv").exists()


@pytest.mark.slow
@pytest.mark.slurm
def test_failed_fov_is_rerun_alone_through_slurm(
    slurm_env: dict[str, str],
    easy_file: Path,
    tmp_path: Path,
) -> None:
    # A real fault in one FOV: its phase-contrast stack is on disk but cut
    # short (as after a crash on a file system without atomic renames). It is
    # newer than the input, so Snakemake keeps it, and segmentation fails on it.
    name = "easy_fov_001_pc_ch_0.npy"
    stack = io.BytesIO()
    np.save(stack, np.zeros((8, 144, 128), dtype=np.uint16))  # FOV 1 of easy_file
    good = stack.getvalue()
    truncated = tmp_path / "out" / "fov_001" / name
    truncated.parent.mkdir(parents=True)
    truncated.write_bytes(good[: len(good) // 50])
    config = {"input": str(easy_file), "output_dir": "out"}

    # one FOV per batch job, so that the failing FOV fails only its own batch
    # (a batch job stops at its first failed step, docs/cluster.md)
    failed = run_on_slurm(tmp_path, config, slurm_env, "--group-components", "fov=1")
    assert failed.returncode != 0, _describe(failed)
    batches = {frozenset(j.fovs): j for j in failed.by_comment("rule_fov")}
    assert set(batches) == {frozenset({"000"}), frozenset({"001"})}, _describe(failed)
    assert batches[frozenset({"001"})].state == "FAILED", _describe(failed)
    assert batches[frozenset({"000"})].state == "COMPLETED", _describe(failed)
    (inspect,) = failed.by_comment("rule_inspect_input")
    assert inspect.state == "COMPLETED"
    assert failed.by_comment("rule_aggregate_results") == []  # needs every FOV
    _assert_ran_as_slurm_job(batches[frozenset({"000"})], tmp_path)

    manifest = _manifest(tmp_path)
    status = manifest["fov_status"]
    assert status["0"]["status"] == "ok"
    assert status["1"]["status"] == "failed"
    assert status["1"]["step"] == "segment"
    assert name in status["1"]["message"]
    # the other FOV's outputs are kept
    fov0 = tmp_path / "out" / "fov_000"
    kept = {p.name: p.stat().st_mtime_ns for p in fov0.iterdir()}
    assert len(kept) == 9, sorted(kept)  # 7 stacks and CSVs, 2 check JSONs

    # fix the fault (remove the bad file) and rerun the same command: only the
    # failed FOV's batch and the aggregate are submitted
    truncated.unlink()
    rerun = run_on_slurm(tmp_path, config, slurm_env, "--group-components", "fov=1")
    assert rerun.returncode == 0, _describe(rerun)
    assert len(rerun.jobs) == 2, _describe(rerun)
    (batch,) = rerun.by_comment("rule_fov")
    (aggregate,) = rerun.by_comment("rule_aggregate_results")
    for job in (batch, aggregate):
        assert (job.state, job.exit_code) == ("COMPLETED", "0:0"), _describe(rerun)
        _assert_ran_as_slurm_job(job, tmp_path)
    assert batch.fovs == {"001"}, batch.rules
    assert {rule for rule, _ in batch.rules} == FOV_RULES

    manifest = _manifest(tmp_path)
    assert [s["status"] for s in manifest["fov_status"].values()] == ["ok", "ok"]
    assert {p.name: p.stat().st_mtime_ns for p in fov0.iterdir()} == kept


def _assert_batches_cover(batches: list[SlurmJob], fovs: set[str], size: int) -> None:
    """Every FOV's steps ran in exactly one batch job of at most ``size`` FOVs."""
    seen = [fov for job in batches for fov in sorted(job.fovs)]
    assert sorted(seen) == sorted(fovs), [sorted(j.fovs) for j in batches]
    assert all(1 <= len(job.fovs) <= size for job in batches), [j.fovs for j in batches]


@pytest.mark.slow
@pytest.mark.slurm
def test_sample_sheet_batches_pack_all_samples(
    slurm_env: dict[str, str], three_fov_file: Path, tmp_path: Path
) -> None:
    # Two samples of one FOV each (the same FOV of the same file), 2 per batch.
    # Snakemake packs the connected components of group "fov" of the whole run,
    # whatever their sample (docs/cluster.md): ceil(2 / 2) = 1 batch job, not
    # one per sample, and that batch holds the FOVs of both samples (the same
    # FOV number, separate outputs).
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(
        f"sample\tpath\tfovs\na\t{three_fov_file}\t1\nb\t{three_fov_file}\t1\n"
    )
    config = {"samples": str(sheet), "output_dir": "out"}
    run = run_on_slurm(tmp_path, config, slurm_env, "--group-components", "fov=2")
    assert run.returncode == 0, _describe(run)
    batches = run.by_comment("rule_fov")
    assert len(batches) == 1, _describe(run)
    # per sample inspect_input and aggregate_results (summarize_samples is local)
    singles = sorted(j.comment for j in run.jobs if j not in batches)
    assert singles == [
        "rule_aggregate_results__a",
        "rule_aggregate_results__b",
        "rule_inspect_input__a",
        "rule_inspect_input__b",
    ], _describe(run)
    for job in run.jobs:
        assert (job.state, job.exit_code) == ("COMPLETED", "0:0"), _describe(run)
    # (sample, FOV) of every step, from the rule names (<rule>__<sample>)
    (batch,) = batches
    steps = {(rule.rsplit("__", 1)[1], fov) for rule, fov in batch.rules}
    assert steps == {("a", "001"), ("b", "001")}, batch.rules
    for sample in ("a", "b"):
        ran = {
            r.rsplit("__", 1)[0] for r, _ in batch.rules if r.endswith(f"__{sample}")
        }
        assert ran == FOV_RULES, batch.rules
        assert (tmp_path / "out" / sample / "traces.csv").exists()
