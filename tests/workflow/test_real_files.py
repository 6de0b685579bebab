"""Every real ND2/CZI file in ../shared/data/real goes through ingestion.

Scene counts, shapes, channel names and frame times are checked against what
the vendors' files hold (the folder's README and independent reads with the
format's own libraries); one ND2 and two CZIs run the whole workflow to traces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from pyama_steps.io import InputError, NpyFrameReader, open_image
from pyama_steps.run.config import ConfigError, load_schema, validate_config
from pyama_steps.run.plan import plan_run
from pyama_steps.run.steps import copy_channel
from tests.conftest import REPO, jobs_run, real_data_dir, run_snakemake

pytestmark = pytest.mark.real

SCHEMA = load_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")

# file -> (scene shapes (T, C, Z, Y, X), channel names, dtype, needs interval)
EXPECTED: dict[str, tuple[list[tuple[int, ...]], list[str], str, bool]] = {
    "cluster.nd2": (
        [(3, 2, 10, 31, 38)],
        ["5-FAM/pH 9.0", "FM 4-64/2% CHAPS"],
        "uint16",
        False,
    ),
    "example-timelapse.nd2": ([(53, 1, 1, 64, 64)], ["GFP 488 nm"], "uint16", False),
    "example-multichannel.nd2": (
        [(1, 4, 1, 256, 256)],
        ["Mono", "DAPI", "FITC BP", "TRITC BP"],
        "uint16",
        False,
    ),
    "example-cerevisiae.nd2": (
        [(1, 2, 1, 256, 256)],
        ["DIC", "FITC BP"],
        "uint16",
        False,
    ),
    "example-zstack.nd2": ([(1, 1, 11, 128, 128)], ["FITC BP"], "uint16", False),
    "synthetic-objects-timelapse.nd2": ([(2, 1, 1, 548, 752)], ["DAPI"], "uint8", True),
    "GA3_Children_node_example.nd2": ([(1, 1, 1, 548, 752)], [""], "uint8", False),
    "S3_1Pos_2Mosaic_T2Z3_CH2_sm.czi": (
        [(2, 2, 3, 122, 295), (2, 2, 3, 64, 64), (2, 2, 3, 237, 352)],
        ["DAPI", "EGFP"],
        "uint16",
        False,
    ),
    "WellD6-7_S2.czi": ([(1, 1, 1, 440, 544)] * 2, ["AF488"], "uint16", False),
    "CellDivision_T3_Z5_CH2_X240_Y170.czi": (
        [(3, 2, 5, 170, 240)],
        ["LED555", "LED470"],
        "uint16",
        False,
    ),
    "Airyscan.czi": ([(3, 2, 1, 480, 480)], ["ChA-T1", "ChA-T2"], "uint16", True),
    "LLS7_small.czi": (
        [(2, 2, 3, 64, 64)],
        ["LatticeLightsheet 1-T1", "LatticeLightsheet 2-T2"],
        "uint16",
        True,
    ),
    "CellDivision_T3_Z6_CH1_X300_Y200_DCV_ZSTD.czi": (
        [(3, 1, 6, 200, 300)],
        ["LED555"],
        "uint16",
        False,
    ),
    "tiles_time_z.czi": ([(2, 2, 2, 512, 512)], ["Ch1", "T PMT"], "uint8", True),
}

INTERVAL_MIN = 0.5


def _plan(name: str, **overrides: Any) -> Any:
    config: dict[str, Any] = {
        "input": str(real_data_dir() / name),
        "ingest": {"rgb": "mean"},
    }
    if EXPECTED[name][3]:
        config["ingest"]["frame_interval_min"] = INTERVAL_MIN
    config.update(overrides)
    return plan_run(validate_config(config, SCHEMA))


def test_every_file_is_listed(real_dir: Path) -> None:
    files = {p.name for p in real_dir.iterdir() if p.suffix in {".nd2", ".czi"}}
    assert files == set(EXPECTED) | {"DAPI_GFP.czi"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_inspect_real_file(name: str) -> None:
    shapes, names, dtype, needs_interval = EXPECTED[name]
    plan = _plan(name)
    assert plan.n_scenes == len(shapes)
    assert [f.shape_tczyx for f in plan.fovs] == shapes
    assert list(plan.channel_names) == names
    assert {f.dtype for f in plan.fovs} == {dtype}
    assert plan.pc == 0
    assert list(plan.fl) == list(range(1, len(names)))
    for f in plan.fovs:
        times = np.asarray(f.times_min)
        assert times.shape == (f.n_frames,)
        assert np.all(np.diff(times) > 0)
        if needs_interval:
            assert f.time_source == "interval"
            np.testing.assert_allclose(times, np.arange(f.n_frames) * INTERVAL_MIN)
        else:
            assert f.time_source == "timestamps"
            assert times.min() >= 0


def test_nd2_times_are_real_timestamps() -> None:
    """ND2 times are the events table's, not bioio's evenly spaced T axis."""
    import nd2

    path = real_data_dir() / "example-timelapse.nd2"
    with nd2.ND2File(path) as fh:
        seconds = np.asarray(fh.events(orient="list")["Time [s]"], dtype=float)
    plan = _plan("example-timelapse.nd2")
    np.testing.assert_allclose(
        plan.fovs[0].times_min, (seconds - seconds[0]) / 60.0, atol=1e-6
    )


def test_czi_times_from_acquisition_time() -> None:
    # CellDivision: T0 09:47:08.28, T1 09:48:08.30, T2 09:49:08.37 (README).
    plan = _plan("CellDivision_T3_Z5_CH2_X240_Y170.czi")
    np.testing.assert_allclose(
        plan.fovs[0].times_min, [0.0, 60.02 / 60, 120.09 / 60], atol=2e-3
    )
    multi = _plan("S3_1Pos_2Mosaic_T2Z3_CH2_sm.czi")
    for fov in multi.fovs:  # 33.41 s between frames, one experiment clock
        assert fov.times_min[1] - fov.times_min[0] == pytest.approx(
            33.41 / 60, abs=2e-3
        )


def test_simulator_zero_times_need_an_interval() -> None:
    config = {"input": str(real_data_dir() / "synthetic-objects-timelapse.nd2")}
    with pytest.raises(
        ConfigError,
        match=r"no frame timestamps and no interval: set ingest\.frame_interval_min",
    ):
        plan_run(validate_config(config, SCHEMA))


def test_rgb_needs_a_choice() -> None:
    config = {"input": str(real_data_dir() / "GA3_Children_node_example.nd2")}
    with pytest.raises(
        ConfigError, match=r"is RGB \(3 samples per pixel\); set ingest\.rgb: mean"
    ):
        plan_run(validate_config(config, SCHEMA))


def test_unreadable_czi_names_the_file() -> None:
    config = {"input": str(real_data_dir() / "DAPI_GFP.czi")}
    with pytest.raises(
        InputError, match=r"DAPI_GFP\.czi: cannot read the metadata of FOV 0"
    ):
        plan_run(validate_config(config, SCHEMA))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_copy_matches_bioio(name: str, tmp_path: Path) -> None:
    """The copied stack of the last scene's last channel equals bioio's planes."""
    plan = _plan(name)
    fov = plan.fovs[-1]
    channel = fov.shape_tczyx[1] - 1
    out = tmp_path / "stack.npy"
    copy_channel(
        input_path=str(real_data_dir() / name),
        output=str(out),
        fov=fov.fov,
        channel=channel,
        z_mode="max",
        z_plane=0,
        rgb="mean",
        dtype_policy="strict",
        scale_factor=None,
        scale_offset=0.0,
    )
    img = open_image(real_data_dir() / name)
    img.set_scene(fov.fov)
    order = "TZYXS" if "S" in img.dims.order else "TZYX"
    data = img.get_image_dask_data(order, C=channel)
    with NpyFrameReader(out) as reader:
        assert reader.shape == (fov.n_frames, *fov.frame_shape)
        assert reader.dtype == np.uint16
        for t in range(fov.n_frames):
            expected = np.asarray(data[t].compute()).max(axis=0)
            if order.endswith("S"):
                expected = np.rint(expected.astype(np.float64).mean(axis=-1))
            np.testing.assert_array_equal(reader.read(t), expected.astype(np.uint16))
    assert np.load(out, mmap_mode="r").shape == reader.shape  # a valid .npy


# --------------------------------------------------------------------------
# whole workflow on real files
# --------------------------------------------------------------------------


#: FOVs the plane index lists (pyama_steps.io.plane_index)
INDEXED = {
    "example-cerevisiae.nd2": {0},
    "CellDivision_T3_Z5_CH2_X240_Y170.czi": {0},
    "S3_1Pos_2Mosaic_T2Z3_CH2_sm.czi": {1},
}


@pytest.mark.workflow
@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("example-cerevisiae.nd2", {}),
        ("CellDivision_T3_Z5_CH2_X240_Y170.czi", {"ingest": {"z_mode": "max"}}),
        (
            "S3_1Pos_2Mosaic_T2Z3_CH2_sm.czi",
            {"channels": {"pc": "EGFP", "fl": ["DAPI"]}},
        ),
    ],
)
def test_real_file_to_traces(name: str, extra: dict[str, Any], tmp_path: Path) -> None:
    config = {"input": str(real_data_dir() / name), "output_dir": "out", **extra}
    proc = run_snakemake(tmp_path, config)
    out = tmp_path / "out"
    # copy jobs read at the offsets of the run's plane index the FOVs it lists
    # (one uncompressed block per plane: not the mosaic scenes), the others
    # through bioio
    logs = sorted((out / "logs" / "copy_channel").glob("*.log"))
    assert logs
    for log in logs:
        text = log.read_text()
        indexed = int(log.name[4:7]) in INDEXED[name]
        assert ("at the offsets of .snakemake/pyama-steps/planes-" in text) == indexed
        assert ("not used: it does not list FOV" in text) != indexed
    manifest = yaml.safe_load((out / "processing_results.yaml").read_text())
    n_scenes = len(EXPECTED[name][0])
    assert set(manifest["fov_status"]) == {str(f) for f in range(n_scenes)}
    assert all(s["status"] == "ok" for s in manifest["fov_status"].values())
    for entry in manifest["results"].values():
        for key in ("pc", "seg", "seg_labeled"):
            assert (out / entry[key][1]).is_file()
        assert (out / entry["traces"]).is_file()
    header = (out / "traces.csv").read_text().splitlines()[0].split(",")
    assert header[:6] == ["fov", "cell", "parent", "frame", "time", "good"]
    assert "pyama-steps: FOVs:" in proc.stdout
    assert "aggregate_results" in jobs_run(proc.stdout)
    # segmentation checks (algorithms.md §2.8): DIC passes; the CZIs, whose
    # "phase" channel is a fluorescence channel, are said to look like one
    checks = [
        {w["check"] for w in s["warnings"]} for s in manifest["fov_status"].values()
    ]
    if name == "example-cerevisiae.nd2":
        assert checks == [set()]
    else:
        assert all("fluorescence_like" in c for c in checks)
        assert "looks like fluorescence" in proc.stdout


@pytest.mark.workflow
def test_unreadable_czi_stops_before_any_job(tmp_path: Path) -> None:
    config = {"input": str(real_data_dir() / "DAPI_GFP.czi"), "output_dir": "out"}
    proc = run_snakemake(tmp_path, config, check=False)
    assert proc.returncode != 0
    assert "DAPI_GFP.czi: cannot read the metadata of FOV 0" in proc.stdout
    assert jobs_run(proc.stdout) == []
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------
# damaged real files
# --------------------------------------------------------------------------


def _truncated(name: str, tmp_path: Path, fraction: float = 0.5) -> Path:
    data = (real_data_dir() / name).read_bytes()
    out = tmp_path / f"cut_{name}"
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


@pytest.mark.workflow
@pytest.mark.parametrize(
    ("name", "message"),
    [
        # nd2 fails at open with "Invalid ChunkMap signature"
        (
            "example-timelapse.nd2",
            'the reader failed with "ValueError: Invalid ChunkMap',
        ),
        # bioio-czi says "does not support the image": translated
        (
            "S3_1Pos_2Mosaic_T2Z3_CH2_sm.czi",
            (
                "files ending in '.czi' are read by bioio-czi, which is installed but "
                "rejected this file: it is probably truncated, corrupt"
            ),
        ),
    ],
)
def test_truncated_file_fails_before_any_job(
    name: str, message: str, tmp_path: Path
) -> None:
    bad = _truncated(name, tmp_path)
    proc = run_snakemake(
        tmp_path, {"input": str(bad), "output_dir": "out"}, check=False
    )
    assert proc.returncode != 0
    assert message in proc.stdout
    assert bad.name in proc.stdout
    assert jobs_run(proc.stdout) == []


@pytest.mark.workflow
def test_truncated_czi_that_opens_fails_in_copy_with_the_plane(tmp_path: Path) -> None:
    bad = _truncated("CellDivision_T3_Z5_CH2_X240_Y170.czi", tmp_path)
    config = {"input": str(bad), "output_dir": "out"}
    plan = run_snakemake(tmp_path, config, check=False)
    assert "the frame timestamps could not be read" in plan.stdout
    assert "the file may be truncated or corrupt" in plan.stdout
    # with an interval given (as --config would pass it), the copy fails alone
    config["ingest"] = {"frame_interval_min": "1.0"}
    proc = run_snakemake(tmp_path, config, check=False)
    assert proc.returncode != 0
    assert (
        "FOV 0 failed in step ingest: OSError: cannot read FOV 0, channel 0"
        in proc.stdout
    )
    assert "The file is probably truncated or corrupt at this plane." in proc.stdout
    out = tmp_path / "out"
    assert not list(out.glob("fov_000/*.npy"))  # nothing that looks complete
    manifest = yaml.safe_load((out / "processing_results.yaml").read_text())
    assert manifest["fov_status"]["0"]["status"] == "failed"


@pytest.mark.workflow
def test_zstack_warning_names_the_keys(tmp_path: Path) -> None:
    config = {
        "input": str(real_data_dir() / "example-zstack.nd2"),
        "output_dir": "out",
    }
    proc = run_snakemake(tmp_path, config, "-n")
    assert (
        "the input has Z-stacks (11 planes): using pc: plane 0, fl: plane 0; set "
        "ingest.z_mode / ingest.z_plane to choose another"
    ) in proc.stdout
