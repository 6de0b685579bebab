"""Tests for pyama_steps.traces (algorithms.md §5)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from pyama_steps.traces import (
    BASE_COLUMNS,
    FEATURES_FL,
    FEATURES_PC,
    FrameFeatures,
    build_traces,
    frame_features,
    trace_columns,
    write_traces_csv,
)
from pyama_steps.tracking import lineage_table, relabel_frame, track_masks
from tests.unit.test_territory import slow_territories

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def tiny_frame() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 6 x 7 frame: a 3 x 3 cell (id 5) and a 2 x 2 cell (id 9)."""
    labels = np.zeros((6, 7), dtype=np.uint16)
    labels[1:4, 1:4] = 5
    labels[0:2, 5:7] = 9
    raw = np.arange(42, dtype=np.uint16).reshape(6, 7)
    corr = raw.astype(np.float32) - 1
    return labels, raw, corr


def lineage(cells, parent=None, n_frames=None, n_merged=None, fov=0) -> pd.DataFrame:
    n = len(cells)
    return pd.DataFrame(
        {
            "fov": [fov] * n,
            "cell": cells,
            "parent": parent or [0] * n,
            "n_frames": n_frames or [1] * n,
            "n_merged": n_merged or [0] * n,
        }
    )


def random_labels(rng: np.random.Generator, shape=(40, 50), dtype=np.uint16):
    """Rectangles and discs painted over each other with sparse ids."""
    labels = np.zeros(shape, dtype=dtype)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    ids = rng.choice(np.arange(1, 3000), size=12, replace=False)
    for cell in ids:
        y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        if rng.random() < 0.5:
            h, w = rng.integers(1, 9, 2)
            labels[y : y + h, x : x + w] = cell
        else:
            r = rng.uniform(1, 6)
            labels[(yy - y) ** 2 + (xx - x) ** 2 <= r * r] = cell
    return labels


def brute_force(labels, raws, corrs, erosion_px):
    """Per-cell loop with boolean masks and scipy's binary erosion."""
    out = {}
    for cell in np.unique(labels[labels > 0]).tolist():
        mask = labels == cell
        ys, xs = np.nonzero(mask)
        if erosion_px:
            size = 2 * erosion_px + 1
            inner = ndimage.binary_erosion(
                mask, structure=np.ones((size, size), bool), border_value=0
            )
        else:
            inner = mask
        per_channel = []
        for raw, corr in zip(raws, corrs, strict=True):
            if inner.any():
                total = corr[inner].astype(np.float64).sum()
                per_channel.append(
                    (
                        total,
                        total / inner.sum(),
                        raw[inner].astype(np.float64).mean(),
                    )
                )
            else:
                per_channel.append((np.nan, np.nan, np.nan))
        out[cell] = {
            "area": int(mask.sum()),
            "position_x": xs.mean(),
            "position_y": ys.mean(),
            "bbox": (xs.min(), ys.min(), xs.max(), ys.max()),
            "fl": per_channel,
        }
    return out


def doc_literal(labels, raws, corrs, erosion_px):
    """algorithms.md §5.3 written out literally, over every pixel."""
    lab = labels.astype(np.int64)
    cnt = np.bincount(lab.ravel())
    ids = np.nonzero(cnt[1:])[0] + 1
    n = ids.size
    lut = np.zeros(cnt.size, dtype=np.int64)
    lut[ids] = np.arange(1, n + 1)
    cl = lut[lab]
    rows, cols = np.indices(lab.shape)
    area = cnt[ids]
    sy = np.bincount(cl.ravel(), weights=rows.ravel().astype(float), minlength=n + 1)
    sx = np.bincount(cl.ravel(), weights=cols.ravel().astype(float), minlength=n + 1)
    if erosion_px:
        size = 2 * erosion_px + 1
        lo = ndimage.minimum_filter(cl, size=size, mode="constant", cval=0)
        hi = ndimage.maximum_filter(cl, size=size, mode="constant", cval=0)
        ce = np.where((lo == cl) & (hi == cl), cl, 0)
    else:
        ce = cl
    ae = np.bincount(ce.ravel(), minlength=n + 1)[1:]
    sums = []
    for raw, corr in zip(raws, corrs, strict=True):
        tot = np.bincount(
            ce.ravel(), weights=corr.astype(np.float64).ravel(), minlength=n + 1
        )[1:]
        rsum = np.bincount(
            ce.ravel(), weights=raw.astype(np.float64).ravel(), minlength=n + 1
        )[1:]
        sums.append((tot, rsum))
    return ids, area, sy[1:] / area, sx[1:] / area, ae, sums


# --------------------------------------------------------------------------
# frame_features
# --------------------------------------------------------------------------


def test_frame_features_hand_computed():
    labels, raw, corr = tiny_frame()
    f = frame_features(labels, fl_raw=[raw], fl_corrected=[corr])
    np.testing.assert_array_equal(f.ids, [5, 9])
    np.testing.assert_array_equal(f.area, [9, 4])
    np.testing.assert_array_equal(f.position_x, [2.0, 5.5])
    np.testing.assert_array_equal(f.position_y, [2.0, 0.5])
    np.testing.assert_array_equal(f.bbox_x0, [1, 5])
    np.testing.assert_array_equal(f.bbox_y0, [1, 0])
    np.testing.assert_array_equal(f.bbox_x1, [3, 6])
    np.testing.assert_array_equal(f.bbox_y1, [3, 1])
    # raw values are 7*row + col: cell 5 sums to 144, cell 9 to 5+6+12+13 = 36
    np.testing.assert_array_equal(f.intensity_total, [[135.0, 32.0]])
    np.testing.assert_array_equal(f.intensity_mean, [[15.0, 8.0]])
    np.testing.assert_array_equal(f.intensity_raw_mean, [[16.0, 9.0]])
    assert f.n_cells == 2
    assert f.n_channels == 1
    assert f.ids.dtype == f.area.dtype == f.bbox_x0.dtype == np.int64
    assert f.position_x.dtype == f.intensity_total.dtype == np.float64


def test_frame_features_erosion_1():
    labels, raw, corr = tiny_frame()
    f = frame_features(labels, fl_raw=[raw], fl_corrected=[corr], erosion_px=1)
    # 3 x 3 cell: only its centre (row 2, col 2, raw 16) survives
    np.testing.assert_array_equal(f.area, [9, 4])
    assert f.intensity_total[0, 0] == 15.0
    assert f.intensity_mean[0, 0] == 15.0
    assert f.intensity_raw_mean[0, 0] == 16.0
    # 2 x 2 cell: nothing survives -> NaN, area unchanged
    assert np.isnan(f.intensity_total[0, 1])
    assert np.isnan(f.intensity_mean[0, 1])
    assert np.isnan(f.intensity_raw_mean[0, 1])


def test_erosion_is_per_cell_and_from_the_frame_edge():
    labels = np.zeros((5, 10), dtype=np.uint16)
    labels[1:4, 1:5] = 1
    labels[1:4, 5:9] = 2  # touches cell 1
    corner = np.zeros((5, 10), dtype=np.uint16)
    corner[0:4, 0:4] = 3  # touches the frame corner
    ones = np.ones((5, 10), dtype=np.float32)
    f = frame_features(labels, fl_raw=[ones], fl_corrected=[ones], erosion_px=1)
    # each cell keeps row 2 minus its border columns: 2 pixels
    np.testing.assert_array_equal(f.intensity_total, [[2.0, 2.0]])
    g = frame_features(corner, fl_raw=[ones], fl_corrected=[ones], erosion_px=1)
    # outside the frame counts as background: rows 1-2, cols 1-2 survive
    np.testing.assert_array_equal(g.intensity_total, [[4.0]])


def test_frame_features_empty_and_no_channels():
    labels = np.zeros((5, 6), dtype=np.uint32)
    f = frame_features(labels, fl_raw=[labels], fl_corrected=[labels.astype(float)])
    assert f.n_cells == 0
    assert f.intensity_total.shape == (1, 0)
    tiny, _, _ = tiny_frame()
    g = frame_features(tiny, fl_raw=[], fl_corrected=[])
    assert g.intensity_mean.shape == (0, 2)
    np.testing.assert_array_equal(g.area, [9, 4])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.int32])
@pytest.mark.parametrize("erosion_px", [0, 1, 2])
def test_frame_features_oracle(seed, dtype, erosion_px):
    rng = np.random.default_rng(seed)
    labels = random_labels(rng, dtype=dtype)
    raws = [rng.integers(0, 65535, labels.shape, dtype=np.uint16) for _ in range(2)]
    corrs = [rng.normal(0, 300, labels.shape).astype(np.float32) for _ in range(2)]
    labels_before = labels.copy()
    f = frame_features(labels, fl_raw=raws, fl_corrected=corrs, erosion_px=erosion_px)
    np.testing.assert_array_equal(labels, labels_before)
    expected = brute_force(labels, raws, corrs, erosion_px)
    assert f.ids.tolist() == list(expected)
    for k, cell in enumerate(expected):
        e = expected[cell]
        assert f.area[k] == e["area"]
        assert f.position_x[k] == pytest.approx(e["position_x"], rel=1e-12)
        assert f.position_y[k] == pytest.approx(e["position_y"], rel=1e-12)
        assert (f.bbox_x0[k], f.bbox_y0[k], f.bbox_x1[k], f.bbox_y1[k]) == e["bbox"]
        for c, (total, mean, raw_mean) in enumerate(e["fl"]):
            got = (
                f.intensity_total[c, k],
                f.intensity_mean[c, k],
                f.intensity_raw_mean[c, k],
            )
            np.testing.assert_allclose(got, (total, mean, raw_mean), rtol=1e-9)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("erosion_px", [0, 1])
@pytest.mark.parametrize("reach_px", [1, 2, 4])
def test_frame_features_territory_total_oracle(seed, erosion_px, reach_px):
    # The total sums the whole mask plus each pixel's share of the slow,
    # pixel-by-pixel territory growth; the means stay mask-only.
    rng = np.random.default_rng(seed)
    labels = random_labels(rng, dtype=np.uint16)
    raws = [rng.integers(0, 65535, labels.shape, dtype=np.uint16) for _ in range(2)]
    corrs = [rng.normal(0, 300, labels.shape).astype(np.float32) for _ in range(2)]
    f = frame_features(
        labels,
        fl_raw=raws,
        fl_corrected=corrs,
        erosion_px=erosion_px,
        reach_px=reach_px,
    )
    g = frame_features(labels, fl_raw=raws, fl_corrected=corrs, erosion_px=erosion_px)
    np.testing.assert_array_equal(f.intensity_mean, g.intensity_mean)
    np.testing.assert_array_equal(f.intensity_raw_mean, g.intensity_raw_mean)
    shares = slow_territories(labels, reach_px)
    for c, corr in enumerate(corrs):
        for k, cell in enumerate(f.ids.tolist()):
            expected = corr[labels == cell].astype(np.float64).sum()
            expected += sum(
                float(corr[p]) * labs[cell]
                for p, labs in shares.items()
                if cell in labs
            )
            assert f.intensity_total[c, k] == pytest.approx(
                expected, rel=1e-9, abs=1e-6
            )


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("erosion_px", [0, 1])
def test_frame_features_bit_identical_to_doc_algorithm(seed, erosion_px):
    # the implementation bincounts foreground pixels only; the sums must be
    # the very same floats as the full-frame bincount of algorithms.md §5.3
    rng = np.random.default_rng(seed)
    labels = random_labels(rng, shape=(64, 48))
    raws = [rng.integers(0, 65535, labels.shape, dtype=np.uint16)]
    corrs = [rng.normal(0, 1e4, labels.shape).astype(np.float32)]
    f = frame_features(labels, fl_raw=raws, fl_corrected=corrs, erosion_px=erosion_px)
    ids, area, py, px, ae, sums = doc_literal(labels, raws, corrs, erosion_px)
    np.testing.assert_array_equal(f.ids, ids)
    np.testing.assert_array_equal(f.area, area)
    assert f.position_y.tobytes() == py.tobytes()
    assert f.position_x.tobytes() == px.tobytes()
    tot, rsum = sums[0]
    ok = ae > 0
    assert f.intensity_total[0, ok].tobytes() == tot[ok].tobytes()
    assert f.intensity_mean[0, ok].tobytes() == (tot[ok] / ae[ok]).tobytes()
    assert f.intensity_raw_mean[0, ok].tobytes() == (rsum[ok] / ae[ok]).tobytes()
    assert np.isnan(f.intensity_total[0, ~ok]).all()


def test_frame_features_errors():
    labels, raw, corr = tiny_frame()
    with pytest.raises(TypeError, match="labels must have an integer dtype"):
        frame_features(labels.astype(float), fl_raw=[raw], fl_corrected=[corr])
    with pytest.raises(ValueError, match=r"labels must be a \(Y, X\) array"):
        frame_features(labels[None], fl_raw=[raw], fl_corrected=[corr])
    with pytest.raises(
        ValueError, match=r"labels must hold non-negative values .*, got -1"
    ):
        frame_features(labels.astype(np.int32) - 1, fl_raw=[raw], fl_corrected=[corr])
    with pytest.raises(ValueError, match="one frame per channel each, got 1 and 2"):
        frame_features(labels, fl_raw=[raw], fl_corrected=[corr, corr])
    with pytest.raises(ValueError, match=r"fl_corrected\[0\] must have the shape"):
        frame_features(labels, fl_raw=[raw], fl_corrected=[corr[:-1]])
    with pytest.raises(TypeError, match=r"fl_raw\[0\] must have a real numeric"):
        frame_features(labels, fl_raw=[raw.astype(bool)], fl_corrected=[corr])
    with pytest.raises(TypeError, match="fl_raw must be a sequence"):
        frame_features(labels, fl_raw=raw[None], fl_corrected=[corr])
    with pytest.raises(ValueError, match="erosion_px must be an integer >= 0"):
        frame_features(labels, fl_raw=[raw], fl_corrected=[corr], erosion_px=-1)
    with pytest.raises(ValueError, match="reach_px must be an integer >= 0"):
        frame_features(labels, fl_raw=[raw], fl_corrected=[corr], reach_px=-1)
    with pytest.raises(TypeError, match="erosion_px must be an integer"):
        frame_features(labels, fl_raw=[raw], fl_corrected=[corr], erosion_px=True)
    with pytest.raises(TypeError, match="labels must be a numpy array"):
        frame_features([[1]], fl_raw=[], fl_corrected=[])  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# trace_columns and build_traces
# --------------------------------------------------------------------------


def test_trace_columns():
    assert FEATURES_PC == ("area",)
    assert FEATURES_FL == ("intensity_total", "intensity_mean", "intensity_raw_mean")
    assert trace_columns(0, [1, 3]) == [
        *BASE_COLUMNS,
        "area_ch_0",
        "intensity_total_ch_1",
        "intensity_mean_ch_1",
        "intensity_raw_mean_ch_1",
        "intensity_total_ch_3",
        "intensity_mean_ch_3",
        "intensity_raw_mean_ch_3",
    ]
    assert trace_columns(2, [])[-1] == "area_ch_2"
    assert BASE_COLUMNS == (
        "fov",
        "cell",
        "parent",
        "frame",
        "time",
        "good",
        "position_x",
        "position_y",
        "bbox_x0",
        "bbox_y0",
        "bbox_x1",
        "bbox_y1",
    )
    with pytest.raises(ValueError, match="fl_channels must be strictly ascending"):
        trace_columns(0, [2, 1])
    with pytest.raises(ValueError, match="pc_channel must be an integer >= 0"):
        trace_columns(-1, [])
    with pytest.raises(TypeError, match="fl_channels must be a sequence of int"):
        trace_columns(0, "12")  # type: ignore[arg-type]


def two_frame_example():
    """Cell 1 in frames 0 and 1; cell 2 (parent 1) in frame 1 at the edge."""
    a = np.zeros((6, 7), dtype=np.uint16)
    a[2:4, 2:4] = 1
    b = np.zeros((6, 7), dtype=np.uint16)
    b[2:4, 3:5] = 1
    b[0:2, 5:7] = 2
    fl = np.full((6, 7), 3, dtype=np.uint16)
    corr = np.full((6, 7), 1.0 / 3.0, dtype=np.float32)
    feats = [
        frame_features(x, fl_raw=[fl], fl_corrected=[corr], erosion_px=e)
        for x, e in ((a, 0), (b, 0))
    ]
    lin = lineage([1, 2], parent=[0, 1], n_frames=[2, 1])
    return feats, lin


def test_build_traces_rows_and_columns():
    feats, lin = two_frame_example()
    lin["fov"] = 4
    df = build_traces(
        feats,
        fov=4,
        frames=[0, 1],
        times_min=[0.0, 7.5],
        lineage=lin,
        shape=(2, 6, 7),
        pc_channel=0,
        fl_channels=[2],
        min_frames=1,
    )
    assert list(df.columns) == trace_columns(0, [2])
    assert df[["cell", "frame"]].to_numpy().tolist() == [[1, 0], [1, 1], [2, 1]]
    assert df["fov"].tolist() == [4, 4, 4]
    assert df["parent"].tolist() == [0, 0, 1]
    assert df["time"].tolist() == [0.0, 7.5, 7.5]
    assert df["area_ch_0"].tolist() == [4, 4, 4]
    # cell 2 touches the top and right edges
    assert df["good"].tolist() == [True, True, False]
    assert df["good"].dtype == bool
    for col in ("cell", "bbox_x0", "area_ch_0", "frame", "parent"):
        assert df[col].dtype == np.int64
    for col in ("time", "position_x", "intensity_raw_mean_ch_2"):
        assert df[col].dtype == np.float64


def test_build_traces_sorted_by_cell_then_frame_whatever_the_input_order():
    feats, lin = two_frame_example()
    kwargs = {
        "fov": 0,
        "times_min": [0.0, 1.0],
        "lineage": lin.iloc[::-1],
        "shape": (2, 6, 7),
        "pc_channel": 0,
        "fl_channels": [1],
    }
    a = build_traces(feats, frames=[0, 1], **kwargs)
    b = build_traces(feats[::-1], frames=[1, 0], **kwargs)
    pd.testing.assert_frame_equal(a, b)


def good_for(n_frames, bbox, *, n_t=10, **kwargs):
    """good flag of a single cell with the given lineage n_frames and box."""
    x0, y0, x1, y1 = bbox
    merged = kwargs.pop("merged", 0)
    labels = np.zeros((20, 30), dtype=np.uint16)
    labels[y0 : y1 + 1, x0 : x1 + 1] = 1
    feats = [frame_features(labels, fl_raw=[], fl_corrected=[])]
    df = build_traces(
        feats,
        fov=0,
        frames=[0],
        times_min=np.arange(n_t, dtype=float),
        lineage=lineage([1], n_frames=[n_frames], n_merged=[merged]),
        shape=(n_t, 20, 30),
        pc_channel=0,
        fl_channels=[],
        **kwargs,
    )
    return bool(df["good"].iloc[0])


INNER = (5, 5, 10, 10)


def test_good_min_frames():
    assert good_for(10, INNER, min_frames=10)
    assert not good_for(9, INNER, min_frames=10)
    # T < min_frames: a good track is present in all T frames
    assert good_for(10, INNER, n_t=10, min_frames=30)
    assert not good_for(9, INNER, n_t=10, min_frames=30)
    assert good_for(1, INNER, n_t=1)


@pytest.mark.parametrize(
    ("bbox", "border_px", "good"),
    [
        ((0, 5, 4, 8), 1, False),  # x0 = 0 touches the left edge
        ((1, 5, 4, 8), 1, True),
        ((1, 5, 4, 8), 2, False),
        ((5, 0, 8, 4), 1, False),  # y0 = 0
        ((25, 5, 29, 8), 1, False),  # x1 = X - 1
        ((25, 5, 28, 8), 1, True),
        ((25, 5, 28, 8), 2, False),
        ((5, 15, 8, 19), 1, False),  # y1 = Y - 1
        ((5, 15, 8, 18), 1, True),
        ((0, 0, 29, 19), 0, True),  # 0 turns the rule off
    ],
)
def test_good_border(bbox, border_px, good):
    assert good_for(10, bbox, min_frames=1, border_px=border_px) is good


def test_good_border_in_any_frame_flags_every_row():
    inner = np.zeros((20, 30), dtype=np.uint16)
    inner[5:9, 5:9] = 1
    edge = np.zeros((20, 30), dtype=np.uint16)
    edge[0:4, 5:9] = 1
    feats = [frame_features(x, fl_raw=[], fl_corrected=[]) for x in (inner, edge)]
    df = build_traces(
        feats,
        fov=0,
        frames=[0, 1],
        times_min=[0.0, 1.0],
        lineage=lineage([1], n_frames=[2]),
        shape=(2, 20, 30),
        pc_channel=0,
        fl_channels=[],
    )
    assert df["good"].tolist() == [False, False]


def test_good_exclude_merged():
    assert not good_for(10, INNER, min_frames=1, merged=1)
    assert good_for(10, INNER, min_frames=1, merged=1, exclude_merged=False)
    assert good_for(10, INNER, min_frames=1, merged=0)


def test_build_traces_no_rows():
    df = build_traces(
        [],
        fov=0,
        frames=[],
        times_min=[0.0, 1.0],
        lineage=lineage([]),
        shape=(2, 8, 8),
        pc_channel=0,
        fl_channels=[1],
    )
    assert list(df.columns) == trace_columns(0, [1])
    assert len(df) == 0
    fh = io.StringIO()
    write_traces_csv(df, fh)
    assert fh.getvalue() == ",".join(trace_columns(0, [1])) + "\n"
    empty = np.zeros((8, 8), np.uint16)
    feats = [frame_features(empty, fl_raw=[empty], fl_corrected=[empty])] * 2
    df2 = build_traces(
        feats,
        fov=0,
        frames=[0, 1],
        times_min=[0.0, 1.0],
        lineage=pd.read_csv(io.StringIO("fov,cell,parent,n_frames,n_merged\n")),
        shape=(2, 8, 8),
        pc_channel=0,
        fl_channels=[1],
    )
    fh2 = io.StringIO()
    write_traces_csv(df2, fh2)
    assert fh2.getvalue() == fh.getvalue()


def build_kwargs(**over):
    feats, lin = two_frame_example()
    kwargs = {
        "features": feats,
        "fov": 0,
        "frames": [0, 1],
        "times_min": [0.0, 1.0],
        "lineage": lin,
        "shape": (2, 6, 7),
        "pc_channel": 0,
        "fl_channels": [1],
    }
    kwargs.update(over)
    return kwargs


@pytest.mark.parametrize(
    ("over", "error", "match"),
    [
        ({"lineage": lineage([1])}, ValueError, r"cells \[2\] are in the label"),
        ({"frames": [0]}, ValueError, "frames must give the frame index"),
        ({"frames": [0, 2]}, ValueError, r"frames must lie in \[0, 2\)"),
        ({"frames": [1, 1]}, ValueError, "frames must be distinct"),
        ({"frames": [0, -1]}, ValueError, "frames item must be an integer >= 0"),
        ({"times_min": [0.0]}, ValueError, r"times_min must have one entry per"),
        ({"fl_channels": [1, 2]}, ValueError, "has 1 fluorescence channels"),
        ({"fl_channels": [3, 1]}, ValueError, "must be strictly ascending"),
        ({"lineage": lineage([1, 2]).drop(columns="n_merged")}, ValueError, "missing"),
        ({"lineage": lineage([1, 2], fov=1)}, ValueError, "lineage is for fov"),
        ({"lineage": lineage([1, 1])}, ValueError, "one row per cell"),
        ({"lineage": {"cell": [1]}}, TypeError, "lineage must be a pandas"),
        ({"min_frames": 0}, ValueError, "min_frames must be an integer >= 1"),
        ({"border_px": -1}, ValueError, "border_px must be an integer >= 0"),
        ({"exclude_merged": "no"}, TypeError, "exclude_merged must be True or False"),
        ({"shape": (2, 6)}, ValueError, r"shape must be \(T, Y, X\)"),
        ({"features": [None, None]}, TypeError, r"features\[0\] must be"),
        ({"fov": -2}, ValueError, "fov must be an integer >= 0"),
    ],
)
def test_build_traces_errors(over, error, match):
    with pytest.raises(error, match=match):
        build_traces(**build_kwargs(**over))


# --------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------


def test_csv_exact_text():
    feats, lin = two_frame_example()
    # erode frame 1 so that its 2 x 2 cells have NaN intensities
    a = np.zeros((6, 7), dtype=np.uint16)
    a[1:4, 1:4] = 1
    fl = np.full((6, 7), 3, dtype=np.uint16)
    corr = np.full((6, 7), 1.0 / 3.0, dtype=np.float32)
    b = np.zeros((6, 7), dtype=np.uint16)
    b[2:4, 3:5] = 1
    b[0:2, 5:7] = 2
    feats = [
        frame_features(a, fl_raw=[fl], fl_corrected=[corr], erosion_px=1),
        frame_features(b, fl_raw=[fl], fl_corrected=[corr], erosion_px=1),
    ]
    df = build_traces(
        feats,
        fov=0,
        frames=[0, 1],
        times_min=[0.0, 2.0 / 3.0],
        lineage=lin,
        shape=(2, 6, 7),
        pc_channel=0,
        fl_channels=[1],
        min_frames=2,
    )
    fh = io.StringIO()
    write_traces_csv(df, fh)
    third = float(np.float32(1.0 / 3.0))
    assert f"{third:.6f}" == "0.333333"
    assert fh.getvalue() == (
        "fov,cell,parent,frame,time,good,position_x,position_y,"
        "bbox_x0,bbox_y0,bbox_x1,bbox_y1,area_ch_0,"
        "intensity_total_ch_1,intensity_mean_ch_1,intensity_raw_mean_ch_1\n"
        "0,1,0,0,0.000000,True,2.000000,2.000000,1,1,3,3,9,"
        "0.333333,0.333333,3.000000\n"
        "0,1,0,1,0.666667,True,3.500000,2.500000,3,2,4,3,4,NaN,NaN,NaN\n"
        "0,2,1,1,0.666667,False,5.500000,0.500000,5,0,6,1,4,NaN,NaN,NaN\n"
    )


def test_csv_matches_pandas_reference_over_several_blocks():
    rng = np.random.default_rng(0)
    n = 20000  # more than one formatting block
    columns = trace_columns(0, [1])
    data = {}
    for name in columns:
        if name == "good":
            data[name] = rng.random(n) > 0.5
        elif name in ("time", "position_x", "position_y") or name.startswith("int"):
            values = rng.normal(0, 1e5, n)
            values[rng.random(n) < 0.05] = np.nan
            data[name] = values
        else:
            data[name] = rng.integers(0, 100000, n)
    df = pd.DataFrame(data)
    fh = io.StringIO()
    write_traces_csv(df, fh)
    reference = df.to_csv(
        index=False, float_format="%.6f", na_rep="NaN", lineterminator="\n"
    )
    assert fh.getvalue() == reference


def test_csv_deterministic_and_input_unchanged():
    rng = np.random.default_rng(5)
    labels = [random_labels(rng) for _ in range(3)]
    raw = rng.integers(0, 4000, labels[0].shape, dtype=np.uint16)
    corr = rng.normal(0, 100, labels[0].shape).astype(np.float32)
    cells = np.unique(np.concatenate([x.ravel() for x in labels]))
    cells = cells[cells > 0]
    lin = lineage(cells.tolist(), n_frames=[1] * cells.size, fov=1)
    outs = []
    for _ in range(2):
        feats = [
            frame_features(x, fl_raw=[raw], fl_corrected=[corr], erosion_px=1)
            for x in labels
        ]
        df = build_traces(
            feats,
            fov=1,
            frames=[0, 1, 2],
            times_min=[0.0, 1.5, 3.0],
            lineage=lin,
            shape=(3, *labels[0].shape),
            pc_channel=0,
            fl_channels=[1],
        )
        before = df.copy()
        fh = io.StringIO()
        write_traces_csv(df, fh)
        pd.testing.assert_frame_equal(df, before)
        outs.append(fh.getvalue().encode())
    assert outs[0] == outs[1]


def test_csv_errors():
    df = build_traces(**build_kwargs())
    with pytest.raises(ValueError, match="df must have the traces columns"):
        write_traces_csv(df.drop(columns="time"), io.StringIO())
    with pytest.raises(ValueError, match="df must have the traces columns"):
        write_traces_csv(df.iloc[:, :-1], io.StringIO())
    renamed = df.rename(columns={"intensity_mean_ch_1": "intensity_mean_ch_2"})
    with pytest.raises(ValueError, match="df must have the traces columns"):
        write_traces_csv(renamed, io.StringIO())
    with pytest.raises(ValueError, match="column 'good' must have dtype bool"):
        write_traces_csv(df.astype({"good": int}), io.StringIO())
    bad = df.astype({"bbox_x0": float})
    bad.loc[0, "bbox_x0"] = 0.5
    with pytest.raises(ValueError, match="column 'bbox_x0' must hold integers"):
        write_traces_csv(bad, io.StringIO())
    with pytest.raises(TypeError, match="df must be a pandas DataFrame"):
        write_traces_csv(df.to_numpy(), io.StringIO())  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# end to end with the tracker
# --------------------------------------------------------------------------


def test_end_to_end_with_tracking():
    rng = np.random.default_rng(2)
    shape = (48, 64)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    masks = []
    for t in range(6):
        m = np.zeros(shape, bool)
        for cy, cx, r in ((12, 12, 5), (30, 40, 6), (10, 50, 4)):
            m |= (yy - cy - t) ** 2 + (xx - cx - t) ** 2 <= r * r
        masks.append(m)
    result = track_masks(masks)
    lin = lineage_table(result, fov=0)
    raw = rng.integers(0, 4000, shape, dtype=np.uint16)
    corr = raw.astype(np.float32) - 100
    feats = [
        frame_features(
            relabel_frame(m, result.luts[t], dtype=result.label_dtype),
            fl_raw=[raw],
            fl_corrected=[corr],
        )
        for t, m in enumerate(masks)
    ]
    df = build_traces(
        feats,
        fov=0,
        frames=range(6),
        times_min=np.arange(6) * 5.0,
        lineage=lin,
        shape=(6, *shape),
        pc_channel=0,
        fl_channels=[1],
    )
    assert len(df) == sum(tr.n_frames for tr in result.tracks) == 18
    assert df.groupby("cell").size().tolist() == lin["n_frames"].tolist()
    assert df["good"].all()
    assert isinstance(feats[0], FrameFeatures)
    for t, m in enumerate(masks):
        assert df.loc[df["frame"] == t, "area_ch_0"].sum() == m.sum()


def test_good_counts_bridged_gap_frames():
    """A whole-movie track that missed one (dropped) frame is still good."""
    labels = np.zeros((20, 30), dtype=np.uint16)
    labels[5:10, 5:10] = 1
    feats = [frame_features(labels, fl_raw=[], fl_corrected=[])]
    table = lineage([1], n_frames=[9])
    kwargs = {
        "fov": 0,
        "frames": [0],
        "times_min": np.arange(10, dtype=float),
        "shape": (10, 20, 30),
        "pc_channel": 0,
        "fl_channels": [],
        "min_frames": 30,
    }
    assert not build_traces(feats, lineage=table, **kwargs)["good"].iloc[0]
    table["n_gap_frames"] = [1]  # present 9 of 10 frames, one bridged gap
    assert build_traces(feats, lineage=table, **kwargs)["good"].iloc[0]
