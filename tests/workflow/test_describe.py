"""`pyama-steps inspect` and `pyama-steps init` on real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pyama_steps.run.config import load_schema, validate_config
from pyama_steps.run.describe import guess_channels
from pyama_steps.run.plan import plan_run
from tests.conftest import REPO, real_data_dir


@pytest.mark.parametrize(
    ("names", "pc"),
    [
        (["GFP", "Phase"], 1),
        (["DIC", "FITC BP"], 0),
        (["mCherry", "BF", "GFP"], 1),
        (["Ch1", "T PMT"], 1),
        (["Trans", "GFP"], 0),
        (["DAPI", "EGFP"], 0),  # no phase-like name: channel 0
        (["PhotoConversion", "GFP"], 0),  # 'ph' inside a word does not count
        ([""], 0),
        # whole words only, and pH the acidity is not phase (cluster.nd2)
        (["FM 4-64/2% CHAPS", "5-FAM/pH 9.0"], 0),
        (["5-FAM/pH 9.0", "TL"], 1),
        (["GFP", "pH7 buffer", "PH3"], 2),
        (["EBFP2", "Brightfield"], 1),
        (["GFP", "PC"], 1),
        (["GFP", "TL Phase"], 1),
        (["GFP", "Trans-PMT"], 1),
        (["GFP", "Bright Field"], 1),
        (["GFP", "Ph1"], 1),
        (["GFP", "PhC"], 1),
    ],
)
def test_guess_phase_channel(names: list[str], pc: int) -> None:
    guessed, fl, _ = guess_channels(names)
    assert guessed == pc
    assert fl == [c for c in range(len(names)) if c != pc]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyama_steps.cli", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_inspect_json_lists_every_scene() -> None:
    proc = _cli(
        "inspect", str(real_data_dir() / "S3_1Pos_2Mosaic_T2Z3_CH2_sm.czi"), "--json"
    )
    assert proc.returncode == 0, proc.stderr
    desc = json.loads(proc.stdout)
    assert desc["n_scenes"] == 3
    assert [(s["Y"], s["X"]) for s in desc["scenes"]] == [
        (122, 295),
        (64, 64),
        (237, 352),
    ]
    assert all(s["timestamps"] for s in desc["scenes"])
    assert desc["scenes"][0]["frame_interval_min"] == pytest.approx(
        33.41 / 60, abs=2e-3
    )


def test_inspect_table_and_error() -> None:
    proc = _cli("inspect", str(real_data_dir() / "example-cerevisiae.nd2"))
    assert proc.returncode == 0
    assert "0: 'DIC', 1: 'FITC BP'" in proc.stdout
    assert "phase guess: 0, name 'DIC'" in proc.stdout
    bad = _cli("inspect", str(real_data_dir() / "DAPI_GFP.czi"))
    assert bad.returncode == 2
    assert "DAPI_GFP.czi" in bad.stderr
    assert "cannot read the metadata" in bad.stderr


@pytest.mark.parametrize(
    "name",
    ["tiles_time_z.czi", "example-cerevisiae.nd2", "GA3_Children_node_example.nd2"],
)
def test_init_writes_a_valid_commented_config(name: str, tmp_path: Path) -> None:
    out = tmp_path / "cfg" / "my.yaml"
    proc = _cli("init", str(real_data_dir() / name), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "# CHECK: phase-contrast channel guessed" in text
    config = yaml.safe_load(text)
    schema = load_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")
    if config.get("ingest", {}).get("frame_interval_min", 0) is None:
        assert "# SET: minutes between frames" in text
        config["ingest"]["frame_interval_min"] = 1.0
    if name == "example-cerevisiae.nd2":  # DIC: no phase halo to trim
        assert config["segmentation"] == {"halo_trim": False, "shrink_px": 1}
    else:
        assert "segmentation" not in config
    plan = plan_run(validate_config(config, schema))  # the guess fits the file
    assert plan.n_scenes >= 1
    again = _cli("init", str(real_data_dir() / name), "-o", str(out))
    assert again.returncode == 2
    assert "--force" in again.stderr


def _tiny_ome_tiff(path: Path, names: list[str]) -> Path:
    import numpy as np
    import tifffile

    data = np.zeros((2, len(names), 16, 16), dtype=np.uint16)
    tifffile.imwrite(
        path, data, ome=True, metadata={"axes": "TCYX", "Channel": {"Name": names}}
    )
    return path


def test_init_warns_when_no_channel_looks_like_phase(tmp_path: Path) -> None:
    image = _tiny_ome_tiff(tmp_path / "fluo.ome.tiff", ["FM 4-64", "5-FAM/pH 9.0"])
    out = tmp_path / "cfg.yaml"
    proc = _cli("init", str(image), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith(
        "pyama-steps init: warning: no channel name looks like phase contrast, "
        "bright field or DIC (0: 'FM 4-64', 1: '5-FAM/pH 9.0'); channel 0 was "
        "written as channels.pc."
    )
    assert yaml.safe_load(out.read_text())["channels"] == {
        "pc": "FM 4-64",
        "fl": ["5-FAM/pH 9.0"],
    }
    phase = _tiny_ome_tiff(tmp_path / "phase.ome.tiff", ["GFP", "Ph3"])
    proc = _cli("init", str(phase), "-o", str(tmp_path / "p.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert yaml.safe_load((tmp_path / "p.yaml").read_text())["channels"]["pc"] == "Ph3"


# --------------------------------------------------------------------------
# init reads the first phase planes: dense rods select segmentation.method rods
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("preset", "rods"),
    [("rods", True), ("demo", False)],
)
def test_init_selects_rods_for_dense_rod_colonies(
    preset: str, rods: bool, tmp_path: Path
) -> None:
    from pyama_steps.validation import synth
    from pyama_steps.validation.synth_io import write_dataset

    params = synth.preset(
        preset, n_fov=1, n_frames=3, frame_sizes=((320, 384),), seed=2
    )
    image = write_dataset(tmp_path / "data", params, name=preset)
    out = tmp_path / "cfg.yaml"
    proc = _cli("init", str(image), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    config = yaml.safe_load(text)
    if rods:
        assert config["segmentation"] == {"method": "rods"}
        assert "# CHECK: frame 0 of FOV 0 is a dense field of dark rods" in text
        assert "rod-shaped bacteria" in text
    else:
        assert "segmentation" not in config
    schema = load_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")
    assert plan_run(validate_config(config, schema)).n_scenes == 1


# --------------------------------------------------------------------------
# Issue 14.4: the frame interval of an OME-TIFF from Pixels/@TimeIncrement
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("increment", "unit", "minutes"),
    [(2.5, "min", 2.5), (30.0, "s", 0.5), (1500.0, "ms", 0.025), (1.0, "h", 60.0)],
)
def test_ome_time_increment_gives_the_frame_times(
    increment: float, unit: str, minutes: float, tmp_path: Path
) -> None:
    """tifffile writes the interval as Pixels/@TimeIncrement, with no DeltaT."""
    import numpy as np
    import tifffile

    path = tmp_path / "interval.ome.tiff"
    tifffile.imwrite(
        path,
        np.zeros((3, 2, 16, 16), dtype=np.uint16),
        ome=True,
        metadata={
            "axes": "TCYX",
            "Channel": {"Name": ["Phase", "GFP"]},
            "TimeIncrement": increment,
            "TimeIncrementUnit": unit,
        },
    )
    with tifffile.TiffFile(path) as tif:
        assert "DeltaT" not in tif.ome_metadata
        assert f'TimeIncrement="{increment}"' in tif.ome_metadata
    schema = load_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")
    plan = plan_run(validate_config({"input": str(path)}, schema))
    np.testing.assert_allclose(plan.fovs[0].times_min, [0.0, minutes, 2 * minutes])
    assert plan.fovs[0].time_source == "interval"
    proc = _cli("inspect", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    desc = json.loads(proc.stdout)
    assert desc["scenes"][0]["frame_interval_min"] == pytest.approx(minutes)
