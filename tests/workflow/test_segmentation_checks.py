"""The segmentation checks (algorithms.md §2.8) on real snakemake runs.

A file whose phase channel is blank, replaced by the fluorescence image, or
blank in a few frames gives warnings in the manifest, at the end of the run,
in `pyama-steps status` and in the QC summary; the generator's presets give
none (only the dropped frame's note).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import yaml

from pyama_steps.validation import synth
from pyama_steps.validation.synth_io import write_dataset
from tests.conftest import run_snakemake

pytestmark = pytest.mark.workflow

T = 8


def _bad_phase_file(path: Path) -> Path:
    """Four FOVs of the same easy movie (phase 'Phase', fluorescence 'GFP').

    FOV 0: phase frame 4 all zero (a dropped frame). FOV 1: phase all zero.
    FOV 2: the phase channel holds the fluorescence image. FOV 3: phase
    frames 2-4 all zero (longer than tracking.max_gap = 2).
    """
    params = synth.preset("easy", seed=3, n_fov=1, n_frames=T, dropped_frames=())
    sim = synth.simulate_fov(params, 0)
    movie = np.stack([np.stack(sim.render(t).images) for t in range(T)])
    variants = [movie.copy() for _ in range(4)]
    variants[0][4, 0] = 0
    variants[1][:, 0] = 0
    variants[2][:, 0] = movie[:, 1]
    variants[3][2:5, 0] = 0
    with tifffile.TiffWriter(path, ome=True) as tif:
        for fov, data in enumerate(variants):
            tif.write(
                data,
                photometric="minisblack",
                metadata={
                    "axes": "TCYX",
                    "Name": f"FOV {fov}",
                    "Channel": {"Name": ["Phase", "GFP"]},
                },
            )
    return path


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    work = tmp_path_factory.mktemp("bad_phase")
    image = _bad_phase_file(work / "bad.ome.tiff")
    config = {
        "input": str(image),
        "output_dir": "out",
        "ingest": {"frame_interval_min": 10.0},
    }
    proc = run_snakemake(work, config)
    return work, proc.stdout


def _checks(entry: dict[str, Any], key: str = "warnings") -> list[tuple[str, str]]:
    return [(w["check"], w["frames"]) for w in entry[key]]


def test_manifest_records_the_warnings(bad_run: tuple[Path, str]) -> None:
    work, _ = bad_run
    manifest = yaml.safe_load((work / "out" / "processing_results.yaml").read_text())
    status = manifest["fov_status"]
    # the FOVs stay ok: the checks never change a status
    assert [s["status"] for s in status.values()] == ["ok"] * 4
    assert _checks(status["0"]) == []
    assert _checks(status["0"], "notes") == [("dropped_frames", "4")]
    assert _checks(status["1"]) == [("blank_channel", "0-7")]
    assert status["1"]["warnings"][0]["message"] == (
        "FOV 1: the phase-contrast channel 0 ('Phase') is blank in all 8 frames "
        "(value 0), so there is nothing to segment: check channels.pc "
        "(`pyama-steps inspect FILE` lists the channels) and that this FOV was "
        "imaged in that channel."
    )
    assert ("fluorescence_like", "0-7") in _checks(status["2"])
    assert _checks(status["3"]) == [("blank_frames", "2-4")]
    assert "tracks break there" in status["3"]["warnings"][0]["message"]
    for entry in status.values():
        for item in entry["warnings"] + entry["notes"]:
            assert list(item) == ["check", "frames", "n_frames", "message"]
    # the figures they come from are listed per FOV
    for fov, entry in manifest["results"].items():
        for key in ("seg_stats", "cell_stats"):
            assert entry[key] == f"fov_00{fov}/bad_fov_00{fov}_{key}.json"
            assert (work / "out" / entry[key]).is_file()
    assert manifest["params"]["qc"] == {
        "cell_diameter_px": [10, 60],
        "jump_factor": 2.0,
    }


def test_end_of_run_message(bad_run: tuple[Path, str]) -> None:
    _, stdout = bad_run
    lines = [ln for ln in stdout.splitlines() if ln.startswith("pyama-steps: ")]
    # the plan's warnings come first (issue 14.5: with the prefix); the
    # end-of-run message starts with the manifest's path
    lines = lines[lines.index("pyama-steps: out/processing_results.yaml") :]
    assert lines[1] == (
        "pyama-steps: FOVs: 4 ok, 0 failed, 0 pending; cells: "
        + lines[1].split("cells: ")[1].split(";")[0]
        + "; frames: 32; segmentation warnings: 3 in 3 FOV(s) (1, 2, 3)"
    )
    assert (
        "pyama-steps: warning: FOV 1: the phase-contrast channel 0 ('Phase') is "
        "blank in all 8 frames (value 0)" in stdout
    )
    assert (
        "pyama-steps: warning: FOV 2, frames 0-7 (8 of 8): the phase-contrast "
        "channel 0 ('Phase') looks like fluorescence" in stdout
    )
    assert (
        "pyama-steps: warning: FOV 3, frames 2-4 (3 of 8): the phase-contrast "
        "channel 0 ('Phase') is blank (every pixel 0)" in stdout
    )
    assert (
        "pyama-steps: note: FOV 0, frame 4: the phase-contrast image is all zero"
        in stdout
    )


def test_status_shows_the_warnings(bad_run: tuple[Path, str]) -> None:
    work, _ = bad_run
    proc = subprocess.run(
        [sys.executable, "-m", "pyama_steps.cli", "status", str(work / "out")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr  # warnings are not failures
    out = proc.stdout.splitlines()
    assert out[0].startswith("FOV    0  ok       ")
    assert out[1].startswith("          note: FOV 0, frame 4: the phase-contrast")
    assert out[2] == "FOV    1  ok       0 cells (0 good), 1 segmentation warning"
    assert out[3].startswith(
        "          warning: FOV 1: the phase-contrast channel 0 ('Phase') is blank"
    )
    assert out[-1] == (
        "4 ok, 0 failed, 0 pending; 3 FOV(s) with segmentation warnings (see above)"
    )


def test_qc_summary_shows_the_warnings(bad_run: tuple[Path, str]) -> None:
    work, _ = bad_run
    config = yaml.safe_load((work / "config.yaml").read_text())
    run_snakemake(work, config, "out/qc/summary.html")
    page = (work / "out" / "qc" / "summary.html").read_text()
    assert "<h2>Segmentation checks</h2>" in page
    assert "warning: FOV 1: the phase-contrast channel 0 (&#x27;Phase&#x27;)" in page
    assert "looks like fluorescence" in page
    assert page.count('<tr class="warned">') == 3


@pytest.mark.parametrize("preset", ["easy", "demo"])
def test_generated_presets_give_no_warning(
    preset: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = tmp_path_factory.mktemp(preset)
    image = write_dataset(data, synth.preset(preset, seed=0), name=preset)
    proc = run_snakemake(data / "run", {"input": str(image), "output_dir": "out"})
    manifest = yaml.safe_load(
        (data / "run" / "out" / "processing_results.yaml").read_text()
    )
    status = manifest["fov_status"]
    assert {f: e["warnings"] for f, e in status.items()} == {f: [] for f in status}
    # the one dropped frame of the preset (FOV 0, frame T // 2) is only a note
    notes = {f: _checks(e, "notes") for f, e in status.items() if e["notes"]}
    frames = {"easy": 8, "demo": 24}[preset]
    assert notes == {"0": [("dropped_frames", str(frames // 2))]}
    assert "pyama-steps: warning" not in proc.stdout
    assert "segmentation warnings" not in proc.stdout


def test_dense_rods_with_the_default_method_warn(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Dense rod colonies segmented with log-STD come out as colony-sized
    # objects (issue 13): the run warns and names the rods method.
    data = tmp_path_factory.mktemp("rods")
    params = synth.preset(
        "rods", seed=0, n_fov=1, n_frames=6, frame_sizes=((384, 448),)
    )
    image = write_dataset(data, params, name="rods")
    proc = run_snakemake(data / "run", {"input": str(image), "output_dir": "out"})
    manifest = yaml.safe_load(
        (data / "run" / "out" / "processing_results.yaml").read_text()
    )
    checks = [check for check, _ in _checks(manifest["fov_status"]["0"])]
    assert "merged_objects" in checks
    assert "pyama-steps: warning: FOV 0" in proc.stdout
    assert "segmentation.method: rods" in proc.stdout
    # With the rods method: no such warning.
    proc = run_snakemake(
        data / "run2",
        {"input": str(image), "output_dir": "out", "segmentation": {"method": "rods"}},
    )
    manifest = yaml.safe_load(
        (data / "run2" / "out" / "processing_results.yaml").read_text()
    )
    assert manifest["fov_status"]["0"]["warnings"] == []
