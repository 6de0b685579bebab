"""Issue 14.3: outputs you can verify (`pyama-steps verify OUTPUT_DIR`)."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pyama_steps.validation import synth
from pyama_steps.validation.synth_io import write_dataset
from tests.conftest import jobs_run, run_snakemake

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("verify")
    image = write_dataset(root / "data", synth.preset("easy", seed=3), name="easy")
    config = {"input": str(image), "output_dir": "out"}
    run_snakemake(root / "run", config)
    return root / "run", config


def _verify(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyama_steps.cli", "verify", str(out), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_manifest_gathers_each_fovs_sizes_and_checksums(
    finished: tuple[Path, dict],
) -> None:
    out = finished[0] / "out"
    manifest = yaml.safe_load((out / "processing_results.yaml").read_text())
    files = manifest["fov_status"]["0"]["files"]
    for name in (
        "fov_000/easy_fov_000_pc_ch_0.npy",
        "fov_000/easy_fov_000_seg_ch_0.npy",
        "fov_000/easy_fov_000_traces.csv",
        "fov_000/easy_fov_000_lineage.csv",
    ):
        size, digest = files[name]
        assert size == (out / name).stat().st_size
        assert len(digest) == 8  # CRC-32, hex
    assert all(name.startswith("fov_000/") for name in files)
    proc = _verify(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 problems" in proc.stdout


def test_verify_finds_damage_and_fix_lets_the_next_run_redo_it(
    finished: tuple[Path, dict], tmp_path: Path
) -> None:
    workdir = tmp_path / "run"
    shutil.copytree(finished[0], workdir, symlinks=True)
    config = finished[1]
    out = workdir / "out"
    clean = finished[0] / "out"
    seg = out / "fov_000" / "easy_fov_000_seg_ch_0.npy"
    lineage = out / "fov_001" / "easy_fov_001_lineage.csv"
    corrected = out / "fov_001" / "easy_fov_001_fl_background_model_ch_1.npy"
    with open(seg, "r+b") as fh:  # truncated, e.g. a copy cut short
        fh.truncate(seg.stat().st_size // 2)
    text = lineage.read_text()
    lineage.write_text(text.replace(",", ";", 1))  # same size, other content
    corrected.unlink()
    proc = _verify(out)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert "fov_000/easy_fov_000_seg_ch_0.npy: truncated" in proc.stdout
    assert "fov_001/easy_fov_001_lineage.csv: edited (checksum differs)" in lines
    assert "fov_001/easy_fov_001_fl_background_model_ch_1.npy: missing" in lines
    assert "3 problems" in proc.stdout
    fixed = _verify(out, "--fix")
    assert fixed.returncode == 1
    assert "removed 2 file(s)" in fixed.stdout
    assert not seg.exists()
    assert not lineage.exists()
    rerun = run_snakemake(workdir, config)
    jobs = jobs_run(rerun.stdout)
    # the damaged files and what depends on them are redone, nothing else
    assert sorted(set(jobs)) == [
        "aggregate_results",
        "all",
        "correct_background",
        "extract_traces",
        "segment_phase",
        "track_cells",
    ]
    assert jobs.count("segment_phase") == 1
    assert _verify(out).returncode == 0
    for rel in (
        "fov_000/easy_fov_000_seg_ch_0.npy",
        "fov_001/easy_fov_001_lineage.csv",
        "fov_001/easy_fov_001_fl_background_model_ch_1.npy",
        "traces.csv",
        "processing_results.yaml",
    ):
        assert filecmp.cmp(out / rel, clean / rel, shallow=False), rel
