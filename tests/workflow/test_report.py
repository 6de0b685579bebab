"""The QC target and Snakemake's HTML report, checked in a real headless browser."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from pyama_steps.validation import synth
from pyama_steps.validation.synth_io import write_dataset
from tests.conftest import REPO, jobs_run, run_snakemake

pytestmark = pytest.mark.workflow

SCREENSHOT = REPO / "scripts" / "report_screenshot.sh"
FOVS = ("000", "001")
FIGURES = ("overlay", "background", "traces")


def _config(image: Path) -> dict[str, Any]:
    return {"input": str(image), "output_dir": "out"}


@pytest.fixture(scope="module")
def easy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two FOVs (128x160, 144x128) x 8 frames, phase + 1 fluorescence channel."""
    out = tmp_path_factory.mktemp("easy")
    return write_dataset(out, synth.preset("easy", seed=3), name="easy")


@pytest.fixture(scope="module")
def report_run(easy_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workflow run through `qc`, then `--report report.html qc`."""
    work = tmp_path_factory.mktemp("qc")
    config = _config(easy_file)
    run_snakemake(work, config, "qc")
    proc = run_snakemake(work, config, "--report", "report.html", "qc")
    assert "Report created" in proc.stdout
    (work / "report_stdout.txt").write_text(proc.stdout)
    return work


@pytest.fixture(scope="module")
def sample_report(easy_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sample sheet (two samples, one FOV each) through `qc` and the report."""
    work = tmp_path_factory.mktemp("qc_samples")
    sheet = work / "sheet.tsv"
    sheet.write_text(f"sample\tpath\tfovs\na\t{easy_file}\t0\nb\t{easy_file}\t1\n")
    config = {"samples": str(sheet), "output_dir": "out"}
    run_snakemake(work, config, "qc")
    proc = run_snakemake(work, config, "--report", "report.html", "qc")
    assert "Report created" in proc.stdout
    (work / "report_stdout.txt").write_text(proc.stdout)
    return work


def _counts(jobs: list[str]) -> dict[str, int]:
    return {name: jobs.count(name) for name in sorted(set(jobs))}


def test_qc_is_a_separate_target(easy_file: Path, tmp_path: Path) -> None:
    config = _config(easy_file)
    default = _counts(jobs_run(run_snakemake(tmp_path, config, "-n").stdout))
    assert not {"qc", "qc_fov", "qc_summary"} & set(default)
    qc = _counts(jobs_run(run_snakemake(tmp_path, config, "qc", "-n").stdout))
    assert qc["qc_fov"] == 2
    assert qc["qc_summary"] == 1
    assert qc["qc"] == 1
    assert qc["extract_traces"] == 2  # the pipeline runs first


def test_qc_outputs(report_run: Path) -> None:
    qc = report_run / "out" / "qc"
    for fov in FOVS:
        for figure in FIGURES:
            with Image.open(qc / f"fov_{fov}_{figure}.png") as im:
                assert im.format == "PNG"
                pixels = np.asarray(im.convert("L"), dtype=np.float64)
            assert pixels.std() > 5, f"fov {fov} {figure} looks blank"
    manifest = yaml.safe_load(
        (report_run / "out" / "processing_results.yaml").read_text()
    )
    table = pd.read_csv(qc / "summary.tsv", sep="\t", keep_default_na=False)
    assert table["fov"].tolist() == [0, 1]
    assert table["status"].tolist() == ["ok", "ok"]
    status = manifest["fov_status"]
    assert table["cells"].tolist() == [status[k]["n_cells"] for k in ("0", "1")]
    assert table["good_cells"].tolist() == [status[k]["n_good"] for k in ("0", "1")]
    assert table["frames"].tolist() == [8, 8]
    # the easy data give no segmentation warning, only FOV 0's dropped frame
    assert table["warnings"].tolist() == [0, 0]
    assert table["checks"].tolist() == [
        "note: " + status["0"]["notes"][0]["message"],
        "",
    ]
    # the default target does not need the QC files and is still complete
    again = run_snakemake(report_run, _config(_input(report_run)), "-n")
    assert "Nothing to be done" in again.stdout


def _input(work: Path) -> Path:
    return Path(yaml.safe_load((work / "config.yaml").read_text())["input"])


def test_qc_figures_are_byte_identical_when_redone(report_run: Path) -> None:
    qc = report_run / "out" / "qc"
    before = {p.name: p.read_bytes() for p in sorted(qc.iterdir())}
    for p in qc.iterdir():
        p.unlink()
    run_snakemake(report_run, _config(_input(report_run)), "qc")
    assert {p.name: p.read_bytes() for p in sorted(qc.iterdir())} == before


def test_report_has_fov_categories_and_captions(report_run: Path) -> None:
    html = (report_run / "report.html").read_text(encoding="utf-8")
    for fov in FOVS:
        assert f'"FOV {fov}"' in html
        for figure in FIGURES:
            assert f"out/qc/fov_{fov}_{figure}.png" in html
    assert '"Run summary"' in html
    assert "out/qc/summary.html" in html
    # captions (RST rendered by Snakemake) and the workflow description
    assert "Ids of" in html
    assert "This report is for checking a run by eye" in html


def _corrupt_plane(path: Path, series: int, page: int) -> None:
    """Overwrite the middle of one compressed plane, so that it fails to read."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        p = tif.series[series].pages[page]
        offset, count = p.dataoffsets[0], p.databytecounts[0]
    with open(path, "r+b") as fh:
        fh.seek(offset + count // 3)
        fh.write(b"\xff" * 64)


def test_qc_after_a_failed_fov(tmp_path: Path) -> None:
    image = write_dataset(
        tmp_path / "data", synth.preset("easy", seed=3), name="bad", compress=True
    )
    _corrupt_plane(image, series=1, page=7)  # FOV 1, phase, frame 3
    config = _config(image)
    assert run_snakemake(tmp_path, config, check=False).returncode != 0
    # `qc` leaves the failed FOV out and does not retry it
    proc = run_snakemake(tmp_path, config, "qc")
    assert "copy_channel" not in jobs_run(proc.stdout)
    qc = tmp_path / "out" / "qc"
    assert (qc / "fov_000_overlay.png").is_file()
    assert not (qc / "fov_001_overlay.png").exists()
    table = pd.read_csv(qc / "summary.tsv", sep="\t", keep_default_na=False)
    assert table["status"].tolist() == ["ok", "failed"]
    assert table.loc[1, "step"] == "ingest"
    assert table.loc[1, "message"]
    assert 'class="failed"' in (qc / "summary.html").read_text()
    run_snakemake(tmp_path, config, "--report", "report.html", "qc")
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert '"FOV 000"' in html
    assert '"FOV 001"' not in html
    assert '"Run summary"' in html


def _screenshot(report: Path, out: Path, view: str) -> np.ndarray:
    proc = subprocess.run(
        ["bash", str(SCREENSHOT), str(report), str(out), view],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode == 3:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but Chromium cannot be installed:\n{proc.stderr}")
        pytest.skip("Chromium is not installed and cannot be installed here")
    assert proc.returncode == 0, proc.stderr
    with Image.open(out) as im:
        assert im.size == (1400, 1000)
        return np.asarray(im.convert("RGB"))


@pytest.mark.browser
def test_report_renders_in_headless_chromium(report_run: Path, tmp_path: Path) -> None:
    report = report_run / "report.html"
    start = _screenshot(report, tmp_path / "start.png", "start")
    summary = _screenshot(report, tmp_path / "summary.png", "summary")
    overlay = _screenshot(report, tmp_path / "overlay.png", "fov:000")
    for name, shot in (("start", start), ("summary", summary), ("overlay", overlay)):
        grey = shot.mean(axis=2)
        # the "Loading Snakemake Report..." screen is white with one line of
        # text (std ~9): the app rendered only if much more is drawn
        assert grey.std() > 20, f"{name} screenshot looks blank"
    assert not np.array_equal(summary, start)
    assert not np.array_equal(overlay, summary)
    assert (summary.mean(axis=2) < 245).mean() > 0.1
    # the overlay figure: a phase image with coloured outlines fills the pane
    assert (overlay.mean(axis=2) < 245).mean() > 0.3
    assert len(np.unique(overlay.reshape(-1, 3), axis=0)) > 1000
    keep = os.environ.get("PYAMA_REPORT_SHOTS")
    if keep:  # for looking at them: PYAMA_REPORT_SHOTS=/some/dir pytest ...
        Path(keep).mkdir(parents=True, exist_ok=True)
        for name in ("start", "summary", "overlay"):
            shutil.copy(tmp_path / f"{name}.png", Path(keep) / f"{name}.png")


# --------------------------------------------------------------------------
# Issue 14.6: the report tells the truth
# --------------------------------------------------------------------------
def test_report_describes_the_background_method_used(report_run: Path) -> None:
    html = (report_run / "report.html").read_text(encoding="utf-8")
    assert "fitted as a smooth surface to the pixels between the cells" in html
    assert "estimated on tiles" not in html
    assert "WARNING" not in (report_run / "report_stdout.txt").read_text()


def test_sample_sheet_report_names_the_sheet_without_warnings(
    sample_report: Path,
) -> None:
    html = (sample_report / "report.html").read_text(encoding="utf-8")
    stdout = (sample_report / "report_stdout.txt").read_text()
    assert "Duplicate explicit target name" not in stdout
    assert "WARNING" not in stdout
    assert "the sample sheet" in html
    assert str(sample_report / "sheet.tsv") in html
    assert "demo.ome.tiff" not in html  # the default input of the demo
    assert '"a / FOV 000"' in html
    assert '"b / FOV 001"' in html
    assert '"a / Run summary"' in html


def test_screenshot_of_a_view_the_report_lacks_is_refused(
    report_run: Path, sample_report: Path, tmp_path: Path
) -> None:
    """Checked before Chromium starts: no silent fallback to the start page."""

    def shot(report: Path, view: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(SCREENSHOT), str(report), str(tmp_path / "x.png"), view],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    missing = shot(report_run / "report.html", "fov:009")
    assert missing.returncode == 2
    assert "the report has no category 'FOV 009'" in missing.stderr
    assert "FOV 000, FOV 001" in missing.stderr
    assert not (tmp_path / "x.png").exists()
    # a sample sheet's categories are '<sample> / FOV NNN': name the sample
    ambiguous = shot(sample_report / "report.html", "fov:000")
    assert ambiguous.returncode == 2
    assert "a / FOV 000" in ambiguous.stderr
    assert "a/fov:000" in ambiguous.stderr
