"""The real workflow (snakemake) on generated data: DAG, resume, determinism, errors."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from pyama_steps.io.job_record import read_job_record
from pyama_steps.validation import synth
from pyama_steps.validation.synth_io import write_dataset
from tests.conftest import jobs_run, run_snakemake

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def easy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two FOVs (128x160, 144x128) x 8 frames, phase + 1 fluorescence channel."""
    out = tmp_path_factory.mktemp("easy")
    return write_dataset(out, synth.preset("easy", seed=3), name="easy")


def _config(image: Path, **extra: Any) -> dict[str, Any]:
    return {"input": str(image), "output_dir": "out", **extra}


def _count(jobs: list[str]) -> dict[str, int]:
    return {name: jobs.count(name) for name in sorted(set(jobs))}


def test_dry_run_plans_one_job_per_step(easy_file: Path, tmp_path: Path) -> None:
    proc = run_snakemake(tmp_path, _config(easy_file), "-n")
    assert _count(jobs_run(proc.stdout)) == {
        "aggregate_results": 1,
        "all": 1,
        "copy_channel": 4,  # 2 FOVs x (phase + fluorescence)
        "correct_background": 2,
        "extract_traces": 2,
        "inspect_input": 1,
        "segment_phase": 2,
        "track_cells": 2,
    }
    assert not (tmp_path / "out").exists()


def test_full_run_resume_and_rerun_of_one_fov(easy_file: Path, tmp_path: Path) -> None:
    config = _config(easy_file)
    run_snakemake(tmp_path, config)
    out = tmp_path / "out"
    manifest = yaml.safe_load((out / "processing_results.yaml").read_text())
    assert [s["status"] for s in manifest["fov_status"].values()] == ["ok", "ok"]
    assert manifest["time_units"] == "min"
    assert manifest["channels"]["pc"] == {
        "channel": 0,
        "features": ["area"],
        "name": "Phase",
    }
    assert list(manifest) == [
        "output_dir",
        "channels",
        "results",
        "params",
        "time_units",
        "software",
        "input",
        "metadata",
        "traces_all",
        "fov_status",
        "config_hash",  # issue 14.1
    ]
    for entry in manifest["results"].values():
        # the float32 corrected stacks are opt-in; the background models are
        # always there (§3.5)
        assert entry["fl_corrected"] == []
        assert [c for c, _ in entry["fl_background_model"]] == [1]
        for _, path in entry["fl_background_model"]:
            stack = np.load(out / path, mmap_mode="r")
            assert stack.dtype == np.float64
            assert stack.ndim == 3
        labels = np.load(out / entry["seg_labeled"][1], mmap_mode="r")
        seg = np.load(out / entry["seg"][1], mmap_mode="r")
        # lineage-mode invariant (§4.6): the labels are the mask less the
        # lines of the merge split (step 0), a small share of it
        assert not np.any((labels > 0) & ~seg)
        assert np.count_nonzero(seg & (labels == 0)) <= 0.01 * np.count_nonzero(seg)
    # the aggregate is the per-FOV CSVs concatenated under one header
    per_fov = [
        (out / e["traces"]).read_text().splitlines()
        for e in manifest["results"].values()
    ]
    combined = (out / "traces.csv").read_text().splitlines()
    assert combined == per_fov[0] + per_fov[1][1:]

    # each step job has a record beside its log (its worker's figures), and
    # Snakemake's own benchmark: file, whose wall time covers the job's
    for rule in ("copy_channel", "segment_phase", "track_cells", "extract_traces"):
        logs = sorted((out / "logs" / rule).glob("*.log"))
        assert logs
        for log in logs:
            job = read_job_record(log)
            assert job is not None
            assert job["status"] == "ok"
            figures = job["figures"]
            assert figures["cpu_s"] > 0
            assert figures["peak_rss_mb"] > 0
            assert 0 <= figures["work_s"] <= figures["job_s"]
            bench = out / "benchmarks" / rule / log.with_suffix(".tsv").name
            header, row = bench.read_text().splitlines()
            record = dict(zip(header.split("\t"), row.split("\t"), strict=True))
            assert float(record["s"]) >= figures["job_s"] - 0.01

    # a second run does nothing
    again = run_snakemake(tmp_path, config)
    assert "Nothing to be done" in again.stdout

    # delete one FOV's mask: only that FOV's downstream jobs (and the aggregate) rerun
    seg_file = out / manifest["results"]["1"]["seg"][1]
    before = {p: p.stat().st_mtime_ns for p in (out / "fov_000").iterdir()}
    seg_file.unlink()
    plan = run_snakemake(tmp_path, config, "-n")
    assert _count(jobs_run(plan.stdout)) == {
        "aggregate_results": 1,
        "all": 1,
        "correct_background": 1,
        "extract_traces": 1,
        "segment_phase": 1,
        "track_cells": 1,
    }
    assert "fov=001" in plan.stdout
    assert "fov=000" not in plan.stdout
    run_snakemake(tmp_path, config)
    assert seg_file.exists()
    assert {p: p.stat().st_mtime_ns for p in (out / "fov_000").iterdir()} == before


def _tree(root: Path) -> list[Path]:
    skip = {"logs", "benchmarks"}
    return sorted(
        p.relative_to(root)
        for p in root.rglob("*")
        if p.is_file() and not skip.intersection(p.relative_to(root).parts)
    )


def test_outputs_are_byte_identical_across_runs(
    easy_file: Path, tmp_path: Path
) -> None:
    """Same input and config from two working directories: identical bytes (§7.1)."""
    local = tmp_path / "copy" / easy_file.name
    local.parent.mkdir()
    shutil.copy(easy_file, local)
    run_snakemake(tmp_path / "a", _config(easy_file))
    run_snakemake(tmp_path / "b", _config(easy_file))
    a, b = tmp_path / "a" / "out", tmp_path / "b" / "out"
    files = _tree(a)
    assert files == _tree(b)
    assert len(files) > 10
    mismatch = [str(f) for f in files if not filecmp.cmp(a / f, b / f, shallow=False)]
    assert mismatch == []


# --------------------------------------------------------------------------
# bad input: one readable message, before any job runs
# --------------------------------------------------------------------------


def _fails(tmp_path: Path, config: dict[str, Any], *expected: str) -> None:
    proc = run_snakemake(tmp_path, config, check=False)
    assert proc.returncode != 0
    for text in expected:
        assert text in proc.stdout, proc.stdout[-3000:]
    assert jobs_run(proc.stdout) == []
    assert not (tmp_path / "out").exists()


def test_missing_input_file(tmp_path: Path) -> None:
    _fails(
        tmp_path,
        _config(tmp_path / "nope.nd2"),
        "nope.nd2' does not exist; check the 'input' key",
    )


def test_unsupported_format(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image\n")
    _fails(tmp_path, _config(bad), "cannot read", "notes.txt")


def test_known_extension_with_other_content(tmp_path: Path) -> None:
    bad = tmp_path / "fake.nd2"
    bad.write_bytes(b"this is not an ND2 file" * 100)
    _fails(tmp_path, _config(bad), "cannot read", "fake.nd2", "bioio-nd2")


@pytest.mark.parametrize(
    ("channels", "message"),
    [
        (
            {"pc": 5},
            (
                "config key 'channels.pc' = 5 is not a channel of the file; valid "
                "channels are 0: 'Phase', 1: 'GFP'"
            ),
        ),
        (
            {"pc": 0, "fl": ["mCherry"]},
            (
                "config key 'channels.fl' = 'mCherry' matches no channel; the file's "
                "channels are 0: 'Phase', 1: 'GFP'"
            ),
        ),
        ({"pc": "phase"}, None),  # a single case-insensitive match is accepted
    ],
)
def test_channel_errors_list_the_valid_channels(
    easy_file: Path, tmp_path: Path, channels: dict[str, Any], message: str | None
) -> None:
    config = _config(easy_file, channels=channels)
    if message is None:
        proc = run_snakemake(tmp_path, config, "-n")
        assert "copy_channel" in jobs_run(proc.stdout)
    else:
        _fails(tmp_path, config, message)


def test_fov_out_of_range(easy_file: Path, tmp_path: Path) -> None:
    _fails(
        tmp_path,
        _config(easy_file, fovs="1-4"),
        "config key 'fovs' selects FOV 4 but the file has 2 FOV(s) (scenes); "
        "valid indices are 0-1.",
    )


def test_unknown_config_key(easy_file: Path, tmp_path: Path) -> None:
    _fails(
        tmp_path,
        _config(easy_file, segmentation={"windw": 5}),
        "unknown config key(s) 'windw' in section 'segmentation'; valid keys are:",
    )


def test_wrong_type(easy_file: Path, tmp_path: Path) -> None:
    _fails(
        tmp_path,
        _config(easy_file, background={"weight": 2}),
        "config key 'background.weight' = 2",
    )


def test_fov_selection_processes_only_those(easy_file: Path, tmp_path: Path) -> None:
    proc = run_snakemake(tmp_path, _config(easy_file, fovs=[1]), "-n")
    assert "fov=001" in proc.stdout
    assert "fov=000" not in proc.stdout


# --------------------------------------------------------------------------
# several input files: the sample sheet
# --------------------------------------------------------------------------


def test_sample_sheet_runs_each_file_into_its_folder(
    easy_file: Path, tmp_path: Path
) -> None:
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(
        "sample\tpath\tpc\tfl\tfovs\n"
        f"all\t{easy_file}\t\t\t\n"
        f"fov1_phase_only\t{easy_file}\tPhase\t-\t1\n"
    )
    config = {"samples": str(sheet), "output_dir": "out"}
    proc = run_snakemake(tmp_path, config)
    out = tmp_path / "out"
    summary = (out / "samples_summary.tsv").read_text().splitlines()
    assert summary[0].split("\t")[:6] == [
        "sample",
        "input",
        "fovs",
        "ok",
        "failed",
        "pending",
    ]
    assert summary[1].split("\t")[:6] == ["all", str(easy_file), "2", "2", "0", "0"]
    assert summary[2].split("\t")[:6] == [
        "fov1_phase_only",
        str(easy_file),
        "1",
        "1",
        "0",
        "0",
    ]
    one = yaml.safe_load(
        (out / "fov1_phase_only" / "processing_results.yaml").read_text()
    )
    assert list(one["results"]) == ["1"]
    assert one["channels"]["fl"] == []
    both = yaml.safe_load((out / "all" / "processing_results.yaml").read_text())
    assert list(both["results"]) == ["0", "1"]
    header = (out / "fov1_phase_only" / "traces.csv").read_text().splitlines()[0]
    assert header.endswith("area_ch_0")  # no fluorescence columns
    assert "pyama-steps: [all] FOVs: 2 ok" in proc.stdout
    # Issue 14.5: status on the sheet's folder lists the samples
    status = subprocess.run(
        [sys.executable, "-m", "pyama_steps.cli", "status", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert "has not finished" not in status.stdout + status.stderr
    assert "sample all: 2 ok, 0 failed, 0 pending" in status.stdout
    assert "sample fov1_phase_only: 1 ok, 0 failed, 0 pending" in status.stdout
    again = run_snakemake(tmp_path, config)
    assert "Nothing to be done" in again.stdout


def test_sample_sheet_errors_name_the_sample(easy_file: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(f"sample\tpath\tpc\nok\t{easy_file}\t\nbad\t{easy_file}\t7\n")
    _fails(
        tmp_path,
        {"samples": str(sheet), "output_dir": "out"},
        "sample 'bad': config key 'channels.pc' = 7 is not a channel of the file",
    )


def test_directory_as_input(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    _fails(
        tmp_path,
        _config(folder),
        "is a directory; 'input' must name one microscopy file",
    )
