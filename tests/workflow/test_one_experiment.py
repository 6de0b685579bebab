"""Issue 14.1: one experiment per output folder.

A second input run into a folder that holds another input's results stops
before any job, naming both files; files of another base name are reported
and listed in the manifest; `init` proposes results/<base name>.
"""

from __future__ import annotations

import json
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
def two_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("two")
    first = write_dataset(root / "a", synth.preset("easy", seed=3), name="easy")
    second = write_dataset(root / "b", synth.preset("easy", seed=4), name="other")
    return first, second


@pytest.fixture(scope="module")
def done_run(
    two_files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    workdir = tmp_path_factory.mktemp("done")
    run_snakemake(workdir, {"input": str(two_files[0]), "output_dir": "out"})
    return workdir


def test_identity_and_config_hash_are_recorded(done_run: Path) -> None:
    out = done_run / "out"
    meta = json.loads((out / "metadata.json").read_text())
    identity = meta["input"]
    assert {"path", "size_bytes", "mtime_ns", "sample_blake2b"} <= set(identity)
    assert len(identity["sample_blake2b"]) == 32
    manifest = yaml.safe_load((out / "processing_results.yaml").read_text())
    assert manifest["input"]["sample_blake2b"] == identity["sample_blake2b"]
    assert manifest["input"]["mtime_ns"] == identity["mtime_ns"]
    assert len(manifest["config_hash"]) == 32
    assert "stale_files" not in manifest


def test_another_input_stops_before_any_job(
    done_run: Path, two_files: tuple[Path, Path]
) -> None:
    first, second = two_files
    proc = run_snakemake(
        done_run, {"input": str(second), "output_dir": "out"}, check=False
    )
    assert proc.returncode != 0
    assert jobs_run(proc.stdout) == []
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("pyama-steps:")]
    assert len(lines) == 1, proc.stdout
    message = lines[0]
    assert "output_dir 'out' holds the results of" in message
    assert str(first) in message
    assert str(second) in message
    assert "output_dir=results/other" in message
    assert not list((done_run / "out").glob("fov_*/other_*"))


def test_the_same_content_elsewhere_is_the_same_input(
    done_run: Path, two_files: tuple[Path, Path], tmp_path: Path
) -> None:
    moved = tmp_path / "moved" / two_files[0].name
    moved.parent.mkdir()
    shutil.copy2(two_files[0], moved)
    proc = run_snakemake(done_run, {"input": str(moved), "output_dir": "out"}, "-n")
    assert "holds the results of" not in proc.stdout


def test_files_of_another_base_name_are_reported(
    two_files: tuple[Path, Path], tmp_path: Path
) -> None:
    config = {"input": str(two_files[0]), "output_dir": "out", "fovs": 0}
    run_snakemake(tmp_path, config)
    config["ingest"] = {"base_name": "renamed"}
    proc = run_snakemake(tmp_path, config)
    assert (
        "pyama-steps: warning: out holds 9 file(s) of another base name, not part "
        "of this run or its manifest: out/fov_000/easy_fov_000_cell_stats.json, "
    ) in proc.stdout
    manifest = yaml.safe_load(
        (tmp_path / "out" / "processing_results.yaml").read_text()
    )
    assert "fov_000/easy_fov_000_pc_ch_0.npy" in manifest["stale_files"]
    assert all("renamed" not in f for f in manifest["stale_files"])


def test_init_proposes_a_folder_per_input(
    two_files: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "cfg.yaml"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pyama_steps.cli",
            "init",
            str(two_files[1]),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(out.read_text())["output_dir"] == "results/other"
