"""Running it like a lab runs it: kills, failed FOVs, parameter changes.

* SIGKILL of the whole snakemake process tree during copy, segmentation,
  tracking and aggregation, then the same command again: the final outputs are
  byte-identical to a clean run's, and no file that looks complete is ever
  left behind.
* A corrupt plane in one FOV: the other FOV finishes, the manifest and
  ``pyama-steps status`` name the failed FOV, step and error; once the cause is
  gone, the same command reruns only that FOV.
* A changed segmentation parameter reruns segmentation and what follows, never
  the copies; a changed extraction parameter reruns only extraction and the
  aggregate.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import yaml

from pyama_steps.validation import synth
from pyama_steps.validation.synth_io import write_dataset
from tests.conftest import REPO, SNAKEFILE, jobs_run, run_snakemake

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 FOVs x 12 frames of 384x384 (big enough that jobs take a moment)."""
    out = tmp_path_factory.mktemp("recovery")
    params = synth.preset(
        "easy", seed=5, n_frames=12, frame_sizes=((384, 384), (384, 384))
    )
    return write_dataset(out, params, name="rec", compress=True)


@pytest.fixture(scope="module")
def clean_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("clean")
    run_snakemake(work, _config(data))
    return work / "out"


def _config(image: Path, **extra: Any) -> dict[str, Any]:
    return {"input": str(image), "output_dir": "out", **extra}


def _outputs(root: Path) -> list[Path]:
    skip = {"logs", "benchmarks"}
    return sorted(
        p.relative_to(root)
        for p in root.rglob("*")
        if p.is_file()
        and not skip.intersection(p.relative_to(root).parts)
        and ".tmp-" not in p.name
    )


# --------------------------------------------------------------------------
# kill -9 and resume
# --------------------------------------------------------------------------


def _start(workdir: Path, config: dict[str, Any]) -> subprocess.Popen[bytes]:
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    cmd = [
        sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir),
        "--configfile", str(cfg), "--cores", "2",
        "--workflow-profile", str(REPO / "profiles" / "default"),
    ]  # fmt: skip
    return subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: kill the whole tree
    )


@pytest.mark.parametrize(
    "rule", ["copy_channel", "segment_phase", "track_cells", "aggregate_results"]
)
def test_kill_during_a_step_then_resume(
    rule: str, data: Path, clean_run: Path, tmp_path: Path
) -> None:
    config = _config(data)
    proc = _start(tmp_path, config)
    logs = tmp_path / "out" / "logs" / rule
    deadline = time.monotonic() + 120
    try:
        while not (logs.is_dir() and any(logs.iterdir())):
            assert proc.poll() is None, f"the run ended before {rule} started"
            assert time.monotonic() < deadline, f"{rule} never started"
            time.sleep(0.002)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    out = tmp_path / "out"
    # Nothing that looks complete is incomplete: every output under its final
    # name is byte-identical to the clean run's.
    for rel in _outputs(out):
        assert filecmp.cmp(out / rel, clean_run / rel, shallow=False), rel

    # After a kill, Snakemake's lock on the directory is left behind: the
    # documented recovery is `snakemake --unlock`, then the same command.
    blocked = run_snakemake(tmp_path, config, check=False)
    assert blocked.returncode != 0
    assert "--unlock" in blocked.stdout
    run_snakemake(tmp_path, config, "--unlock")
    run_snakemake(tmp_path, config)
    assert _outputs(out) == _outputs(clean_run)
    mismatch = [
        str(rel)
        for rel in _outputs(out)
        if not filecmp.cmp(out / rel, clean_run / rel, shallow=False)
    ]
    assert mismatch == []
    again = run_snakemake(tmp_path, config)
    assert "Nothing to be done" in again.stdout


# --------------------------------------------------------------------------
# one failed FOV
# --------------------------------------------------------------------------


def _corrupt_plane(path: Path, series: int, page: int) -> tuple[int, bytes]:
    """Overwrite the middle of one compressed plane; return what to restore."""
    with tifffile.TiffFile(path) as tif:
        p = tif.series[series].pages[page]
        offset, count = p.dataoffsets[0], p.databytecounts[0]
    start = offset + count // 3
    with open(path, "r+b") as fh:
        fh.seek(start)
        original = fh.read(64)
        fh.seek(start)
        fh.write(b"\xff" * 64)
    return start, original


def test_failed_fov_is_reported_and_rerun_alone(data: Path, tmp_path: Path) -> None:
    image = tmp_path / data.name
    shutil.copy2(data, image)
    stat = image.stat()
    start, original = _corrupt_plane(image, series=1, page=7)  # FOV 1, phase, frame 3
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    config = _config(image)

    proc = run_snakemake(tmp_path, config, check=False)
    assert proc.returncode != 0
    out = tmp_path / "out"
    manifest = yaml.safe_load((out / "processing_results.yaml").read_text())
    assert manifest["fov_status"]["0"]["status"] == "ok"
    failed = manifest["fov_status"]["1"]
    assert failed["status"] == "failed"
    assert failed["step"] == "ingest"
    assert failed["log"].startswith("logs/copy_channel/fov_001")
    assert failed["message"]  # the reader's error line
    assert manifest["results"]["1"]["traces"] is None
    assert (out / manifest["results"]["0"]["traces"]).is_file()
    traces = (out / "traces.csv").read_text().splitlines()
    assert len(traces) > 1
    assert all(line.startswith("0,") for line in traces[1:])
    assert "pyama-steps: FOV 1 failed in step ingest" in proc.stdout

    status = subprocess.run(
        [sys.executable, "-m", "pyama_steps.cli", "status", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert status.returncode == 1
    assert "FOV    1  failed   step ingest" in status.stdout
    assert "rerun the same snakemake command" in status.stdout

    # the read error was transient: the plane reads again (same file, same mtime)
    with open(image, "r+b") as fh:
        fh.seek(start)
        fh.write(original)
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    rerun = run_snakemake(tmp_path, config)
    jobs = jobs_run(rerun.stdout)
    assert "fov=000" not in rerun.stdout
    assert jobs.count("copy_channel") >= 1
    assert "inspect_input" not in jobs
    manifest = yaml.safe_load((out / "processing_results.yaml").read_text())
    assert [s["status"] for s in manifest["fov_status"].values()] == ["ok", "ok"]


# --------------------------------------------------------------------------
# parameter changes
# --------------------------------------------------------------------------


def test_parameter_changes_rerun_only_downstream(data: Path, tmp_path: Path) -> None:
    run_snakemake(tmp_path, _config(data))
    seg = _config(data, segmentation={"threshold_k": 2.5})
    jobs = jobs_run(run_snakemake(tmp_path, seg, "-n").stdout)
    assert sorted(set(jobs)) == [
        "aggregate_results",
        "all",
        "correct_background",
        "extract_traces",
        "segment_phase",
        "track_cells",
    ]
    assert jobs.count("segment_phase") == 2

    ext = _config(data, extraction={"min_frames": 5})
    jobs = jobs_run(run_snakemake(tmp_path, ext, "-n").stdout)
    assert sorted(set(jobs)) == ["aggregate_results", "all", "extract_traces"]
    run_snakemake(tmp_path, ext)
    manifest = yaml.safe_load(
        (tmp_path / "out" / "processing_results.yaml").read_text()
    )
    assert manifest["params"]["extraction"]["min_frames"] == 5
    labels = np.load(
        tmp_path / "out" / manifest["results"]["0"]["seg_labeled"][1], mmap_mode="r"
    )
    assert labels.shape[0] == 12


# --------------------------------------------------------------------------
# outputs: lean (temporary copies, mask and background stacks)
# --------------------------------------------------------------------------

_KEPT_SUFFIXES = ("_seg_labeled_ch_0.npy", "_traces.csv", "_lineage.csv")


def test_lean_outputs_resume_and_rerun_a_failed_fov(
    data: Path, clean_run: Path, tmp_path: Path
) -> None:
    image = tmp_path / data.name
    shutil.copy2(data, image)
    stat = image.stat()
    start, original = _corrupt_plane(image, series=1, page=7)  # FOV 1, phase, frame 3
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    config = _config(image, outputs="lean")

    proc = run_snakemake(tmp_path, config, check=False)
    assert proc.returncode != 0
    out = tmp_path / "out"
    manifest = yaml.safe_load((out / "processing_results.yaml").read_text())
    assert manifest["fov_status"]["0"]["status"] == "ok"
    assert manifest["fov_status"]["1"]["status"] == "failed"
    # FOV 0 is done: its temporary stacks are gone, what users keep is there
    assert sorted(p.name for p in (out / "fov_000").glob("*.npy")) == [
        "rec_fov_000_seg_labeled_ch_0.npy"
    ]
    entry = manifest["results"]["0"]
    assert entry["pc"] is None
    assert entry["fl"] == []
    assert entry["seg"] is None
    assert entry["fl_background_model"] == []
    assert entry["seg_labeled"][1] == "fov_000/rec_fov_000_seg_labeled_ch_0.npy"

    # the cause is gone: the same command redoes FOV 1 only, and then nothing
    with open(image, "r+b") as fh:
        fh.seek(start)
        fh.write(original)
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    rerun = run_snakemake(tmp_path, config)
    assert "fov=000" not in rerun.stdout
    assert "copy_channel" in jobs_run(rerun.stdout)
    manifest = yaml.safe_load((out / "processing_results.yaml").read_text())
    assert [s["status"] for s in manifest["fov_status"].values()] == ["ok", "ok"]
    again = run_snakemake(tmp_path, config)
    assert jobs_run(again.stdout) == []

    # what stays is byte-identical to a full run's; nothing else is left
    kept = [p for p in _outputs(out) if p.suffix in (".npy", ".csv")]
    assert sorted(p.name for p in kept if p.suffix == ".npy") == [
        "rec_fov_000_seg_labeled_ch_0.npy",
        "rec_fov_001_seg_labeled_ch_0.npy",
    ]
    for rel in kept:
        assert rel.name.endswith(_KEPT_SUFFIXES) or rel.name == "traces.csv", rel
        assert filecmp.cmp(out / rel, clean_run / rel, shallow=False), rel
    verify = subprocess.run(
        [sys.executable, "-m", "pyama_steps.cli", "verify", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _bytes(root: Path) -> int:
    """Bytes of a run's outputs: stacks, tables, JSON and the manifest."""
    skip = {"logs", "benchmarks", "records", ".snakemake"}
    return sum(
        p.stat().st_size
        for p in root.rglob("*")
        if p.is_file() and not skip.intersection(p.relative_to(root).parts)
    )


def test_output_bytes_per_input_byte(tmp_path: Path) -> None:
    """Phase + 3 fluorescence channels (the seed's shape), uncompressed: the
    full set is at most 2x the input, lean at most 0.6x (issue 16)."""
    params = synth.preset(
        "easy", seed=3, n_fov=1, n_frames=6, n_fl_channels=3,
        frame_sizes=((256, 256),), write_background=False,
    )  # fmt: skip
    image = write_dataset(tmp_path / "data", params, name="seed")
    size = image.stat().st_size
    ratios = {}
    for mode in ("full", "lean"):
        work = tmp_path / mode
        run_snakemake(work, _config(image, outputs=mode))
        ratios[mode] = _bytes(work / "out") / size
    assert ratios["full"] <= 2.0, ratios
    assert ratios["lean"] <= 0.6, ratios
    # the full set: raw copies (1x), mask (1/8x), labels (1/4x), models
    assert ratios["full"] >= 1.3, ratios
