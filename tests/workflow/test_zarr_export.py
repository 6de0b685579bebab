"""The `zarr` export target: OME-Zarr per FOV, traces.parquet when pyarrow is there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import zarr

from pyama_steps.report.export import have_pyarrow
from pyama_steps.validation import synth
from pyama_steps.validation.synth_io import write_dataset
from tests.conftest import jobs_run, run_snakemake

pytestmark = pytest.mark.workflow


# the float32 corrected stacks too: the export must match them bit for bit
WITH_STACKS: dict[str, Any] = {"background": {"write_corrected": True}}


def _config(image: Path, **extra: Any) -> dict[str, Any]:
    return {"input": str(image), "output_dir": "out", **extra}


@pytest.fixture(scope="module")
def easy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two FOVs (128x160, 144x128) x 8 frames, phase + 1 fluorescence channel."""
    out = tmp_path_factory.mktemp("easy")
    return write_dataset(out, synth.preset("easy", seed=3), name="easy")


@pytest.fixture(scope="module")
def zarr_run(
    easy_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    work = tmp_path_factory.mktemp("zarr")
    proc = run_snakemake(work, _config(easy_file, **WITH_STACKS), "zarr")
    return work / "out", proc.stdout


def test_zarr_is_a_separate_target(easy_file: Path, tmp_path: Path) -> None:
    default = jobs_run(run_snakemake(tmp_path, _config(easy_file), "-n").stdout)
    assert "export_zarr" not in default
    planned = jobs_run(run_snakemake(tmp_path, _config(easy_file), "zarr", "-n").stdout)
    assert planned.count("export_zarr") == 2
    assert planned.count("export_parquet") == (1 if have_pyarrow() else 0)


def test_ome_zarr_matches_the_stacks(zarr_run: tuple[Path, str]) -> None:
    out, _ = zarr_run
    for fov in ("000", "001"):
        root = zarr.open_group(str(out / "zarr" / f"fov_{fov}.ome.zarr"), mode="r")
        pc = np.load(out / f"fov_{fov}" / f"easy_fov_{fov}_pc_ch_0.npy")
        corr = np.load(out / f"fov_{fov}" / f"easy_fov_{fov}_fl_corrected_ch_1.npy")
        labels = np.load(out / f"fov_{fov}" / f"easy_fov_{fov}_seg_labeled_ch_0.npy")
        image = root["s0"][:]
        assert image.shape == (pc.shape[0], 2, *pc.shape[1:])
        assert np.array_equal(image[:, 0], pc.astype(np.float32))
        assert np.array_equal(image[:, 1], corr)
        assert np.array_equal(root["labels/cells/s0"][:], labels)
        assert dict(root["labels"].attrs) == {"labels": ["cells"]}
        attrs = dict(root.attrs)
        assert [c["label"] for c in attrs["omero"]["channels"]] == [
            "Phase",
            "GFP corrected",
        ]
        # every track of the traces CSV is a label property
        traces = pd.read_csv(out / f"fov_{fov}" / f"easy_fov_{fov}_traces.csv")
        props = root["labels/cells"].attrs["image-label"]["properties"]
        assert [p["label-value"] for p in props] == sorted(traces["cell"].unique())


def test_traces_parquet_or_a_skip_line(zarr_run: tuple[Path, str]) -> None:
    out, stdout = zarr_run
    if have_pyarrow():
        back = pd.read_parquet(out / "traces.parquet")
        pd.testing.assert_frame_equal(
            back, pd.read_csv(out / "traces.csv"), check_dtype=False
        )
    else:
        assert not (out / "traces.parquet").exists()
        assert "traces.parquet skipped: pyarrow is not installed" in stdout


def test_zarr_log_and_benchmark(zarr_run: tuple[Path, str]) -> None:
    out, _ = zarr_run
    for fov in ("000", "001"):
        log = (out / "logs" / "export_zarr" / f"fov_{fov}.log").read_text()
        assert "wrote" in log
        assert (out / "benchmarks" / "export_zarr" / f"fov_{fov}.tsv").exists()
    attrs = json.loads((out / "zarr" / "fov_000.ome.zarr" / ".zattrs").read_text())
    assert attrs["multiscales"][0]["version"] == "0.4"


def test_zarr_after_a_lean_run_without_stacks_is_the_same(
    easy_file: Path, zarr_run: tuple[Path, str], tmp_path: Path
) -> None:
    # no corrected stack, and the raw copies and models removed by a lean run:
    # the export regenerates them and writes the same pixels
    config = _config(easy_file, outputs="lean")
    run_snakemake(tmp_path, config)
    assert not list((tmp_path / "out" / "fov_000").glob("*_fl_*.npy"))
    run_snakemake(tmp_path, config, "zarr")
    for fov in ("000", "001"):
        name = f"zarr/fov_{fov}.ome.zarr"
        ours = zarr.open_group(str(tmp_path / "out" / name), mode="r")
        theirs = zarr.open_group(str(zarr_run[0] / name), mode="r")
        assert np.array_equal(ours["s0"][:], theirs["s0"][:])


def test_ome_zarr_holds_only_zarr_files(
    zarr_run: tuple[Path, str], easy_file: Path
) -> None:
    """Issue 14.6: no .snakemake_timestamp inside (zarr warns on it)."""
    import warnings

    out, _ = zarr_run
    for fov in ("000", "001"):
        folder = out / "zarr" / f"fov_{fov}.ome.zarr"
        assert not (folder / ".snakemake_timestamp").exists()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            root = zarr.open_group(str(folder), mode="r")
            assert {name for name, _ in root.members()} >= {"s0", "labels"}
    again = run_snakemake(out.parent, _config(easy_file, **WITH_STACKS), "zarr")
    assert "export_zarr" not in jobs_run(again.stdout)
