"""Tests for pyama_steps.report.export: OME-Zarr (image + labels) and Parquet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from pyama_steps.io import NpyFrameWriter
from pyama_steps.report.export import (
    LABELS_NAME,
    _FrameSource,
    export_fov_zarr,
    have_pyarrow,
    pyramid_factors,
    write_traces_parquet,
)
from pyama_steps.run import steps

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

SHAPE = (3, 600, 520)  # big enough for one pyramid level below full resolution
# the background section's defaults (workflow/schemas/config.schema.yaml)
BACKGROUND: dict[str, object] = {
    "method": "fit",
    "mask_dilation_px": 10,
    "block_px": 16,
    "knot_spacing_px": 64,
    "smoothing": 0.001,
    "tile_size": 128,
    "tile_overlap": 0.5,
    "min_background_px": 50,
    "spline_degree": 3,
    "exclude_zero": False,
    "fallback_percentile": 5,
    "weight": 1.0,
}


def write_stack(path: Path, frames: np.ndarray) -> str:
    with NpyFrameWriter(path, frames.shape, frames.dtype) as w:
        for t, frame in enumerate(frames):
            w.write(t, frame)
    return str(path)


@pytest.fixture
def fov(tmp_path: Path) -> dict[str, object]:
    rng = np.random.default_rng(7)
    _, _, x = SHAPE
    labels = np.zeros(SHAPE, dtype=np.uint16)
    labels[:, 100:140, 200:260] = 4
    labels[:2, 300:330, 50:90] = 9
    pc = rng.integers(0, 65535, SHAPE).astype(np.uint16)
    ramp = np.linspace(90, 110, x)[None, None, :]
    raw = (rng.integers(0, 300, SHAPE) + ramp).astype(np.uint16)
    fl = write_stack(tmp_path / "fl.npy", raw)
    # the background step writes the model the export computes from, and the
    # corrected stack it must reproduce
    steps.correct_background(
        fl=fl,
        seg=write_stack(tmp_path / "seg.npy", labels > 0),
        model=str(tmp_path / "model.npy"),
        corrected=str(tmp_path / "corr.npy"),
        background=None,
        params=BACKGROUND,
    )
    corrected = np.load(tmp_path / "corr.npy")
    traces = tmp_path / "traces.csv"
    pd.DataFrame(
        {
            "fov": 0,
            "cell": [4, 4, 4, 9, 9],
            "parent": [0, 0, 0, 4, 4],
            "frame": [0, 1, 2, 0, 1],
            "good": [True, True, True, False, False],
        }
    ).to_csv(traces, index=False)
    return {
        "pc": write_stack(tmp_path / "pc.npy", pc),
        "labeled": write_stack(tmp_path / "labels.npy", labels),
        "fl": [fl],
        "model": [str(tmp_path / "model.npy")],
        "traces": str(traces),
        "arrays": {"pc": pc, "labels": labels, "corrected": corrected},
    }


def export(fov: dict[str, object], output: Path, **kw: object) -> Path:
    args: dict[str, object] = {
        "pc": fov["pc"],
        "labeled": fov["labeled"],
        "traces": fov["traces"],
        "output": str(output),
        "fl_channels": [1],
        "fl": fov["fl"],
        "model": fov["model"],
        "background_params": BACKGROUND,
        "channel_names": {0: "Phase", 1: "GFP"},
        "pc_channel": 0,
        "pixel_size_um": (0.65, 0.65),
        "times_min": [0.0, 10.0, 20.5],
    }
    args.update(kw)
    export_fov_zarr(**args)  # type: ignore[arg-type]
    return output


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------
# pyramid and frame source
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((512, 640), [2]),
        ((2048, 2048), [2, 4, 8]),
        ((511, 4000), []),
        ((100, 130), []),
        ((1 << 16, 1 << 16), [2, 4, 8, 16]),  # at most 5 levels
    ],
)
def test_pyramid_factors(shape: tuple[int, int], expected: list[int]) -> None:
    assert pyramid_factors(shape) == expected


def test_frame_source_reads_only_requested_frames() -> None:
    stack = np.arange(4 * 3 * 5, dtype=np.uint16).reshape(4, 3, 5)
    read: list[int] = []

    def reader(t: int) -> np.ndarray:
        read.append(t)
        return stack[t]

    source = _FrameSource(stack.shape, stack.dtype, reader)
    assert np.array_equal(source[1:3, 0:2, 1:4], stack[1:3, 0:2, 1:4])
    assert read == [1, 2]


# --------------------------------------------------------------------------
# OME-Zarr
# --------------------------------------------------------------------------


def test_ome_zarr_pixels_match_the_stacks(
    fov: dict[str, object], tmp_path: Path
) -> None:
    out = export(fov, tmp_path / "fov_000.ome.zarr")
    arrays = fov["arrays"]
    assert isinstance(arrays, dict)
    root = zarr.open_group(str(out), mode="r")
    image = root["s0"]
    assert image.shape == (3, 2, 600, 520)
    assert image.dtype == np.float32
    assert image.chunks == (1, 1, 600, 520)
    assert np.array_equal(image[:, 0], arrays["pc"].astype(np.float32))
    assert np.array_equal(image[:, 1], arrays["corrected"])
    # level 1: 2 x 2 means of level 0
    level1 = root["s1"][1, 1]
    expected = arrays["corrected"][1].reshape(300, 2, 260, 2).mean(axis=(1, 3))
    assert level1.shape == (300, 260)
    np.testing.assert_allclose(level1, expected, rtol=1e-6)
    # labels: the same frames, ids unchanged, nearest-neighbour pyramid
    labels = root[f"labels/{LABELS_NAME}/s0"]
    assert labels.dtype == np.uint16
    assert np.array_equal(labels[:], arrays["labels"])
    assert np.array_equal(
        root[f"labels/{LABELS_NAME}/s1"][:], arrays["labels"][:, ::2, ::2]
    )
    assert not list(tmp_path.glob("*.tmp-*"))


def test_ome_zarr_metadata(fov: dict[str, object], tmp_path: Path) -> None:
    out = export(fov, tmp_path / "fov_000.ome.zarr")
    attrs = json.loads((out / ".zattrs").read_text())
    (ms,) = attrs["multiscales"]
    assert ms["version"] == "0.4"
    assert [a["name"] for a in ms["axes"]] == ["t", "c", "y", "x"]
    assert ms["axes"][0]["unit"] == "minute"
    assert ms["axes"][2]["unit"] == "micrometer"
    assert [d["path"] for d in ms["datasets"]] == ["s0", "s1"]
    scale0 = ms["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert scale0 == [10.25, 1.0, 0.65, 0.65]  # median frame interval
    channels = attrs["omero"]["channels"]
    assert [c["label"] for c in channels] == ["Phase", "GFP corrected"]
    assert json.loads((out / "labels" / ".zattrs").read_text()) == {
        "labels": [LABELS_NAME]
    }
    label_attrs = json.loads((out / "labels" / LABELS_NAME / ".zattrs").read_text())
    (label_ms,) = label_attrs["multiscales"]
    assert [a["name"] for a in label_ms["axes"]] == ["t", "y", "x"]
    assert label_ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [
        10.25,
        0.65,
        0.65,
    ]
    image_label = label_attrs["image-label"]
    assert image_label["source"] == {"image": "../../"}
    assert image_label["properties"] == [
        {
            "label-value": 4,
            "parent": 0,
            "good": True,
            "first_frame": 0,
            "last_frame": 2,
        },
        {
            "label-value": 9,
            "parent": 4,
            "good": False,
            "first_frame": 0,
            "last_frame": 1,
        },
    ]


def test_ome_zarr_is_read_as_image_and_labels_by_ome_zarr_reader(
    fov: dict[str, object], tmp_path: Path
) -> None:
    # napari-ome-zarr opens files through ome_zarr.reader: it must find one
    # multiscale image and its label image
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Multiscales, Reader

    out = export(fov, tmp_path / "fov_000.ome.zarr")
    nodes = list(Reader(parse_url(str(out)))())
    image = [n for n in nodes if n.load(Multiscales) and not n.load(Label)]
    labels = [n for n in nodes if n.load(Label)]
    assert len(image) == 1
    assert len(labels) == 1
    assert [d.shape for d in image[0].data] == [(3, 2, 600, 520), (3, 2, 300, 260)]
    assert [d.shape for d in labels[0].data] == [(3, 600, 520), (3, 300, 260)]
    arrays = fov["arrays"]
    assert isinstance(arrays, dict)
    assert np.array_equal(np.asarray(labels[0].data[0][1]), arrays["labels"][1])


def test_ome_zarr_is_deterministic_and_replaced(
    fov: dict[str, object], tmp_path: Path
) -> None:
    a = export(fov, tmp_path / "a.ome.zarr")
    b = export(fov, tmp_path / "b.ome.zarr")
    assert tree_bytes(a) == tree_bytes(b)
    # writing again replaces the directory; a stale temporary one is removed
    (tmp_path / "a.ome.zarr.tmp-1").mkdir()
    (a / "stray").write_text("x")
    export(fov, a)
    assert tree_bytes(a) == tree_bytes(b)
    assert not list(tmp_path.glob("*.tmp-*"))


def test_ome_zarr_needs_a_model_per_channel(
    fov: dict[str, object], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"and 0 model\(s\)"):
        export(fov, tmp_path / "x.ome.zarr", model=[])
    assert not (tmp_path / "x.ome.zarr").exists()


def test_ome_zarr_rejects_mismatched_stacks(
    fov: dict[str, object], tmp_path: Path
) -> None:
    small = write_stack(tmp_path / "small.npy", np.zeros((3, 10, 10), np.uint16))
    with pytest.raises(ValueError, match="has shape"):
        export(fov, tmp_path / "x.ome.zarr", fl=[small])
    assert not list(tmp_path.glob("x.ome.zarr*"))


# --------------------------------------------------------------------------
# Parquet
# --------------------------------------------------------------------------


def test_have_pyarrow_matches_import() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        assert not have_pyarrow()
    else:
        assert have_pyarrow()


def test_traces_parquet_roundtrip(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    csv = tmp_path / "traces.csv"
    csv.write_text(
        "fov,cell,parent,frame,time,good,position_x,position_y,bbox_x0,bbox_y0,"
        "bbox_x1,bbox_y1,area_ch_0,intensity_total_ch_1,intensity_mean_ch_1,"
        "intensity_raw_mean_ch_1\n"
        "0,1,0,0,0.000000,True,1.500000,2.000000,0,1,3,3,9,90.000000,10.000000,"
        "110.000000\n"
        "1,2,1,3,30.500000,False,4.000000,5.000000,3,4,5,6,4,NaN,NaN,NaN\n"
    )
    assert write_traces_parquet(str(csv), str(tmp_path / "traces.parquet")) == 2
    back = pd.read_parquet(tmp_path / "traces.parquet")
    expected = pd.read_csv(csv)
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)
    assert back["good"].dtype == bool
    assert back["cell"].dtype == np.int64
