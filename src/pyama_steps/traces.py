"""Per-cell trace extraction (algorithms.md §5).

:func:`frame_features` measures every cell of one track-labelled frame in a
single O(P) pass; :func:`build_traces` joins the frames with the lineage
table into the long-format traces table and sets the ``good`` flag;
:func:`write_traces_csv` writes that table in the fixed CSV format of §5.4.
"""

from __future__ import annotations

import itertools
import numbers
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import ndimage

from pyama_steps._typing import LabelArray
from pyama_steps.territory import grow_territories

__all__ = [
    "BASE_COLUMNS",
    "FEATURES_FL",
    "FEATURES_PC",
    "FrameFeatures",
    "build_traces",
    "frame_features",
    "trace_columns",
    "write_traces_csv",
]

FEATURES_PC: Final = ("area",)
FEATURES_FL: Final = ("intensity_total", "intensity_mean", "intensity_raw_mean")
BASE_COLUMNS: Final = (
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

_INT_BASE: Final = frozenset(
    {"fov", "cell", "parent", "frame", "bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"}
)
_PC_RE: Final = re.compile(r"area_ch_(\d+)")
_FL_RE: Final = re.compile(
    r"(intensity_total|intensity_mean|intensity_raw_mean)_ch_(\d+)"
)

# Rows formatted at a time by write_traces_csv (bounds the text held in memory).
_CSV_BLOCK: Final = 8192

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]


# --------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------


def _check_int(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _check_channels(pc_channel: object, fl_channels: object) -> tuple[int, list[int]]:
    pc = _check_int("pc_channel", pc_channel, minimum=0)
    if isinstance(fl_channels, str | bytes) or not isinstance(fl_channels, Sequence):
        raise TypeError(f"fl_channels must be a sequence of int, got {fl_channels!r}")
    fl = [_check_int("fl_channels item", c, minimum=0) for c in fl_channels]
    if any(b <= a for a, b in itertools.pairwise(fl)):
        raise ValueError(
            f"fl_channels must be strictly ascending (algorithms.md §0), got {fl!r}"
        )
    return pc, fl


def _check_plane(plane: object, name: str, shape: tuple[int, ...]) -> np.ndarray:
    if not isinstance(plane, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(plane).__name__!r}")
    if plane.shape != shape:
        raise ValueError(
            f"{name} must have the shape of labels {shape!r}, got {plane.shape!r}"
        )
    if plane.dtype.kind not in "uif":
        raise TypeError(f"{name} must have a real numeric dtype, got {plane.dtype!r}")
    return plane


# --------------------------------------------------------------------------
# Per-frame features (§5.3)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameFeatures:
    """Features of every cell present in one frame.

    Attributes
    ----------
    ids : (n,) ndarray of int64
        Track ids present in the frame, ascending.
    area : (n,) ndarray of int64
        Pixel count of each cell (never eroded).
    position_x, position_y : (n,) ndarray of float64
        Centroid column and row, in pixels.
    bbox_x0, bbox_y0, bbox_x1, bbox_y1 : (n,) ndarray of int64
        Inclusive minimum/maximum column and row.
    intensity_total : (C, n) ndarray of float64
        Per fluorescence channel (in the order given), the sum of the
        corrected image over the cell's territory (``reach_px`` > 0) or over
        the (eroded) cell.
    intensity_mean : (C, n) ndarray of float64
        The sum of the corrected image over the (eroded) cell divided by its
        pixel count: the mean over the mask only.
    intensity_raw_mean : (C, n) ndarray of float64
        Mean raw count over the (eroded) cell.

    Notes
    -----
    The three intensity arrays are NaN where erosion removed the whole cell.
    """

    ids: Int64Array
    area: Int64Array
    position_x: Float64Array
    position_y: Float64Array
    bbox_x0: Int64Array
    bbox_y0: Int64Array
    bbox_x1: Int64Array
    bbox_y1: Int64Array
    intensity_total: Float64Array
    intensity_mean: Float64Array
    intensity_raw_mean: Float64Array

    @property
    def n_cells(self) -> int:
        """Number of cells in the frame."""
        return int(self.ids.size)

    @property
    def n_channels(self) -> int:
        """Number of fluorescence channels measured."""
        return int(self.intensity_total.shape[0])


def frame_features(
    labels: LabelArray,
    *,
    fl_raw: Sequence[npt.NDArray[Any]],
    fl_corrected: Sequence[npt.NDArray[Any]],
    erosion_px: int = 0,
    reach_px: int = 0,
) -> FrameFeatures:
    """Measure every cell of one track-labelled frame in one O(P) pass.

    Parameters
    ----------
    labels : (Y, X) ndarray of int
        Track ids, 0 for background (uint16 or uint32 from tracking; any
        non-negative integer dtype works). Ids may be sparse.
    fl_raw : sequence of (Y, X) ndarray
        Raw fluorescence frame (normally uint16) of each FL channel.
    fl_corrected : sequence of (Y, X) ndarray
        Background-corrected frame (normally float32) of each FL channel,
        in the order of `fl_raw`.
    erosion_px : int, optional
        Erode each cell by a ``(2r+1)²`` square before the mean intensity
        columns (and the total when `reach_px` is 0); 0 turns erosion off.
        The area is never eroded.
    reach_px : int, optional
        The total is summed over the cell's territory: its mask plus the
        background pixels nearer to it than to any other cell, up to this
        many px away (:func:`pyama_steps.territory.grow_territories`; a pixel
        at equal distance from several cells is split between them). It
        collects the light the PSF spreads across the outline, so it does not
        depend on where within a pixel or two the edge is drawn. 0 sums over
        the (eroded) mask only.

    Returns
    -------
    FrameFeatures
        One entry per present id, ascending.

    Raises
    ------
    TypeError
        If an array has the wrong type or dtype, or `erosion_px` is not an
        integer.
    ValueError
        If `labels` is not 2-D or holds negative values, the channel lists
        differ in length, a channel frame's shape differs from `labels`, or
        `erosion_px` is negative.

    Notes
    -----
    algorithms.md §5.3: ``bincount`` of the compacted labels gives areas and
    (with row/column weights) centroids, ``find_objects`` the boxes, and
    ``bincount`` with float64 weights the intensity sums; ``bincount`` adds
    in pixel order, so sums are reproducible. The bincounts run over the
    foreground pixels only, in raster order: background pixels only ever
    reach bin 0, so every cell's sum is the same float as over all pixels,
    at a fraction of the cost. Erosion keeps a pixel only if the minimum and
    maximum filters (window ``2r+1``, constant 0 outside the frame) both
    equal its label, so cells erode independently and from the frame edge.
    PyAMA measured each cell with a full-frame mask, O(cells·P), and took
    the bbox centre as the position.
    """
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"labels must be a numpy array, got {type(labels).__name__!r}")
    if labels.ndim != 2:
        raise ValueError(f"labels must be a (Y, X) array, got shape {labels.shape!r}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must have an integer dtype, got {labels.dtype!r}")
    radius = _check_int("erosion_px", erosion_px, minimum=0)
    reach = _check_int("reach_px", reach_px, minimum=0)
    for name, seq in (("fl_raw", fl_raw), ("fl_corrected", fl_corrected)):
        if isinstance(seq, np.ndarray) or not isinstance(seq, Sequence):
            raise TypeError(
                f"{name} must be a sequence (list or tuple) of (Y, X) arrays, "
                f"got {type(seq).__name__!r}"
            )
    if len(fl_raw) != len(fl_corrected):
        raise ValueError(
            "fl_raw and fl_corrected must have one frame per channel each, got "
            f"{len(fl_raw)!r} and {len(fl_corrected)!r}"
        )
    raws = [_check_plane(p, f"fl_raw[{i}]", labels.shape) for i, p in enumerate(fl_raw)]
    corrs = [
        _check_plane(p, f"fl_corrected[{i}]", labels.shape)
        for i, p in enumerate(fl_corrected)
    ]
    if labels.size and np.issubdtype(labels.dtype, np.signedinteger):
        low = int(labels.min())
        if low < 0:
            raise ValueError(f"labels must be >= 0, got minimum {low!r}")

    n_ch = len(raws)
    width = labels.shape[1]
    flat = labels.ravel()
    # Only foreground pixels reach a cell's bin: bincount over them, in raster
    # order, adds each cell's weights in the same order as over all pixels,
    # so every sum is bit-identical to the full-frame bincount of §5.3.
    fg = np.flatnonzero(flat)
    fg_labels = flat[fg]
    cnt = np.bincount(fg_labels) if fg.size else np.zeros(1, dtype=np.int64)
    ids = np.flatnonzero(cnt).astype(np.int64)
    n = int(ids.size)
    if n == 0:
        # No cell in this frame (empty segmentation): zero rows.
        empty_i = np.zeros(0, dtype=np.int64)
        empty_f = np.zeros(0, dtype=np.float64)
        empty_c = np.zeros((n_ch, 0), dtype=np.float64)
        return FrameFeatures(
            ids=empty_i,
            area=empty_i.copy(),
            position_x=empty_f,
            position_y=empty_f.copy(),
            bbox_x0=empty_i.copy(),
            bbox_y0=empty_i.copy(),
            bbox_x1=empty_i.copy(),
            bbox_y1=empty_i.copy(),
            intensity_total=empty_c,
            intensity_mean=empty_c.copy(),
            intensity_raw_mean=empty_c.copy(),
        )

    # Compact labels 1..n (sparse ids are fine) so every bincount has n + 1 bins.
    compact = np.zeros(cnt.size, dtype=np.intp)
    compact[ids] = np.arange(1, n + 1)
    cl = compact[fg_labels]
    area = cnt[ids].astype(np.int64)

    rows, cols = np.divmod(fg, width)
    sum_y = np.bincount(cl, weights=rows.astype(np.float64), minlength=n + 1)[1:]
    sum_x = np.bincount(cl, weights=cols.astype(np.float64), minlength=n + 1)[1:]
    position_y = sum_y / area
    position_x = sum_x / area

    # find_objects on the track ids gives the boxes of the compact labels
    # without compacting the whole frame.
    objects = ndimage.find_objects(labels)
    boxes = np.array(
        [
            (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop)
            for sl in (objects[i - 1] for i in ids.tolist())
            if sl is not None
        ],
        dtype=np.int64,
    ).reshape(n, 4)

    if radius == 0:
        ce = cl
        eroded_area = area
    else:
        # A pixel survives only if its whole (2r+1)² window lies in its own
        # cell: the window's minimum and maximum both equal the label (0
        # outside the frame), so cells erode independently and from the edge.
        size = 2 * radius + 1
        low = ndimage.minimum_filter(labels, size=size, mode="constant", cval=0)
        high = ndimage.maximum_filter(labels, size=size, mode="constant", cval=0)
        keep = (low.ravel()[fg] == fg_labels) & (high.ravel()[fg] == fg_labels)
        ce = np.where(keep, cl, 0)
        eroded_area = np.bincount(ce, minlength=n + 1)[1:].astype(np.int64)
    has_pixels = eroded_area > 0
    ring = grow_territories(labels, reach_px=reach) if reach > 0 and n_ch else None

    total = np.full((n_ch, n), np.nan, dtype=np.float64)
    mean = np.full((n_ch, n), np.nan, dtype=np.float64)
    raw_mean = np.full((n_ch, n), np.nan, dtype=np.float64)
    for c, (raw, corr) in enumerate(zip(raws, corrs, strict=True)):
        corr_fg = corr.ravel()[fg].astype(np.float64)
        tot = np.bincount(ce, weights=corr_fg, minlength=n + 1)[1:]
        weights = raw.ravel()[fg].astype(np.float64)
        rsum = np.bincount(ce, weights=weights, minlength=n + 1)[1:]
        # A cell eroded away has no measurement: NaN, never 0 (§5.5).
        mean[c, has_pixels] = tot[has_pixels] / eroded_area[has_pixels]
        raw_mean[c, has_pixels] = rsum[has_pixels] / eroded_area[has_pixels]
        if ring is None:
            total[c, has_pixels] = tot[has_pixels]
            continue
        # The territory total: the whole (never eroded) mask plus the
        # cell's share of the pixels around it.
        inside = (
            tot
            if radius == 0
            else np.bincount(cl, weights=corr_fg, minlength=n + 1)[1:]
        )
        around = corr.ravel()[ring.index].astype(np.float64) * ring.weight
        total[c] = (
            inside
            + np.bincount(compact[ring.label], weights=around, minlength=n + 1)[1:]
        )

    return FrameFeatures(
        ids=ids,
        area=area,
        position_x=position_x,
        position_y=position_y,
        bbox_x0=boxes[:, 1].copy(),
        bbox_y0=boxes[:, 0].copy(),
        bbox_x1=boxes[:, 3] - 1,
        bbox_y1=boxes[:, 2] - 1,
        intensity_total=total,
        intensity_mean=mean,
        intensity_raw_mean=raw_mean,
    )


# --------------------------------------------------------------------------
# Traces table (§5.2, §5.4)
# --------------------------------------------------------------------------


def trace_columns(pc_channel: int, fl_channels: Sequence[int]) -> list[str]:
    """Column names of the traces table, in order (algorithms.md §5.4).

    Parameters
    ----------
    pc_channel : int
        Phase-contrast channel index.
    fl_channels : sequence of int
        Fluorescence channel indices, strictly ascending.

    Returns
    -------
    list of str
        ``fov, cell, parent, frame, time, good, position_x, position_y,
        bbox_x0, bbox_y0, bbox_x1, bbox_y1, area_ch_{pc}``, then per FL
        channel ``intensity_total_ch_{c}, intensity_mean_ch_{c},
        intensity_raw_mean_ch_{c}``.

    Raises
    ------
    TypeError, ValueError
        If a channel index is not a non-negative integer or `fl_channels` is
        not strictly ascending.
    """
    pc, fl = _check_channels(pc_channel, fl_channels)
    names = [*BASE_COLUMNS, *(f"{f}_ch_{pc}" for f in FEATURES_PC)]
    for c in fl:
        names.extend(f"{f}_ch_{c}" for f in FEATURES_FL)
    return names


def _lineage_lookup(
    lineage: pd.DataFrame, fov: int
) -> tuple[Int64Array, Int64Array, Int64Array, Int64Array]:
    if not isinstance(lineage, pd.DataFrame):
        raise TypeError(
            f"lineage must be a pandas DataFrame, got {type(lineage).__name__!r}"
        )
    needed = ("cell", "parent", "n_frames", "n_merged")
    missing = [c for c in needed if c not in lineage.columns]
    if missing:
        raise ValueError(
            f"lineage must have the columns {list(needed)!r} "
            f"(tracking.lineage_table), missing {missing!r}"
        )
    if "fov" in lineage.columns and len(lineage):
        fovs = np.unique(lineage["fov"].to_numpy())
        if fovs.size != 1 or int(fovs[0]) != fov:
            raise ValueError(
                f"lineage is for fov {fovs.tolist()!r}, but fov={fov!r} was given"
            )
    arrays = [lineage[c].to_numpy().astype(np.int64) for c in needed]
    if "n_gap_frames" in lineage.columns:
        # A track's length counts the frames it bridged (at most max_gap in a
        # row, e.g. a dropped frame): first to last frame, not frames present.
        arrays[2] = arrays[2] + lineage["n_gap_frames"].to_numpy().astype(np.int64)
    order = np.argsort(arrays[0], kind="stable")
    cell, parent, n_frames, n_merged = (a[order] for a in arrays)
    if np.any(cell[1:] == cell[:-1]):
        raise ValueError("lineage must have one row per cell, found repeated cells")
    return cell, parent, n_frames, n_merged


def build_traces(
    features: Sequence[FrameFeatures],
    *,
    fov: int,
    frames: Sequence[int],
    times_min: Sequence[float] | npt.NDArray[np.floating[Any]],
    lineage: pd.DataFrame,
    shape: tuple[int, int, int],
    pc_channel: int,
    fl_channels: Sequence[int],
    min_frames: int = 30,
    border_px: int = 1,
    exclude_merged: bool = True,
) -> pd.DataFrame:
    """Assemble the long-format traces table of one FOV (algorithms.md §5).

    Parameters
    ----------
    features : sequence of FrameFeatures
        Output of :func:`frame_features`, one per measured frame, with one
        intensity row per channel of `fl_channels`.
    fov : int
        FOV index.
    frames : sequence of int
        Frame index of each entry of `features`; distinct, in ``[0, T)``.
    times_min : (T,) sequence of float
        Time of every frame in minutes (algorithms.md §1.4).
    lineage : pandas.DataFrame
        Lineage table of the FOV (:func:`pyama_steps.tracking.lineage_table`);
        needs ``cell``, ``parent``, ``n_frames`` and ``n_merged``.
    shape : tuple of int
        ``(T, Y, X)`` of the FOV's stacks.
    pc_channel : int
        Phase-contrast channel (names the area column).
    fl_channels : sequence of int
        Fluorescence channels, strictly ascending, in the order of the
        features' intensity rows.
    min_frames : int, optional
        A good track spans at least ``min(min_frames, T)`` frames, from its
        first to its last frame (frames bridged by gap closing count).
    border_px : int, optional
        A track whose bbox comes within this distance of the frame edge in
        any frame is not good; 0 turns the rule off.
    exclude_merged : bool, optional
        Tracks that absorbed another track (``n_merged > 0``) are not good.

    Returns
    -------
    pandas.DataFrame
        Columns :func:`trace_columns`, one row per (cell, frame) present,
        sorted by ``(cell, frame)``; int64, float64 and (``good``) bool
        columns. No rows if no cell is present.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If lengths or shapes disagree, a frame index is out of range or
        repeated, a cell is missing from `lineage`, or a parameter is out of
        range.

    Notes
    -----
    Rows are never removed; ``good`` is a flag. Near the edge means
    ``x0 < b``, ``y0 < b``, ``x1 > X - 1 - b`` or ``y1 > Y - 1 - b`` with
    ``b = border_px`` (§5.2). PyAMA removed short and border cells instead.
    """
    fov = _check_int("fov", fov, minimum=0)
    pc, fl = _check_channels(pc_channel, fl_channels)
    min_frames = _check_int("min_frames", min_frames, minimum=1)
    border = _check_int("border_px", border_px, minimum=0)
    if not isinstance(exclude_merged, bool | np.bool_):
        raise TypeError(f"exclude_merged must be a bool, got {exclude_merged!r}")
    if (
        not isinstance(shape, tuple | list)
        or len(shape) != 3
        or any(
            isinstance(s, bool) or not isinstance(s, numbers.Integral) for s in shape
        )
        or any(int(s) < 0 for s in shape)
    ):
        raise ValueError(f"shape must be (T, Y, X) of non-negative ints, got {shape!r}")
    n_t, height, width = (int(s) for s in shape)
    times = np.asarray(times_min, dtype=np.float64)
    if times.shape != (n_t,):
        raise ValueError(
            f"times_min must have one entry per frame (T={n_t}), got shape "
            f"{times.shape!r}"
        )
    if len(frames) != len(features):
        raise ValueError(
            "frames must give the frame index of each features entry, got "
            f"{len(frames)!r} frames for {len(features)!r} entries"
        )
    frame_idx = np.array(
        [_check_int("frames item", f, minimum=0) for f in frames], dtype=np.int64
    )
    if frame_idx.size and (frame_idx.max() >= n_t):
        raise ValueError(
            f"frames must lie in [0, {n_t}) (T = shape[0]), got "
            f"{int(frame_idx.max())!r}"
        )
    if np.unique(frame_idx).size != frame_idx.size:
        raise ValueError(f"frames must be distinct, got {list(frames)!r}")
    for i, feat in enumerate(features):
        if not isinstance(feat, FrameFeatures):
            raise TypeError(
                f"features[{i}] must be FrameFeatures, got {type(feat).__name__!r}"
            )
        if feat.n_channels != len(fl):
            raise ValueError(
                f"features[{i}] has {feat.n_channels!r} fluorescence channels, "
                f"but fl_channels={fl!r}"
            )
    lin_cell, lin_parent, lin_frames, lin_merged = _lineage_lookup(lineage, fov)

    def cat(values: list[npt.NDArray[Any]], dtype: type) -> npt.NDArray[Any]:
        return np.concatenate(values).astype(dtype) if values else np.zeros(0, dtype)

    feats = list(features)
    cell = cat([f.ids for f in feats], np.int64)
    frame = cat(
        [
            np.full(f.n_cells, t, dtype=np.int64)
            for f, t in zip(feats, frame_idx, strict=True)
        ],
        np.int64,
    )
    x0 = cat([f.bbox_x0 for f in feats], np.int64)
    y0 = cat([f.bbox_y0 for f in feats], np.int64)
    x1 = cat([f.bbox_x1 for f in feats], np.int64)
    y1 = cat([f.bbox_y1 for f in feats], np.int64)

    where = np.searchsorted(lin_cell, cell)
    known = where < lin_cell.size
    known[known] = lin_cell[where[known]] == cell[known]
    if not np.all(known):
        absent = np.unique(cell[~known])
        raise ValueError(
            f"cells {absent[:10].tolist()!r} are in the label frames but not in "
            "lineage; pass the lineage table of the same tracking run"
        )

    good_track = lin_frames >= min(min_frames, n_t)
    if border > 0:
        near = (
            (x0 < border)
            | (y0 < border)
            | (x1 > width - 1 - border)
            | (y1 > height - 1 - border)
        )
        good_track &= ~np.isin(lin_cell, cell[near])
    if exclude_merged:
        good_track &= lin_merged == 0

    order = np.lexsort((frame, cell))
    where = where[order]
    data: dict[str, npt.NDArray[Any]] = {
        "fov": np.full(cell.size, fov, dtype=np.int64),
        "cell": cell[order],
        "parent": lin_parent[where],
        "frame": frame[order],
        "time": times[frame[order]],
        "good": good_track[where],
        "position_x": cat([f.position_x for f in feats], np.float64)[order],
        "position_y": cat([f.position_y for f in feats], np.float64)[order],
        "bbox_x0": x0[order],
        "bbox_y0": y0[order],
        "bbox_x1": x1[order],
        "bbox_y1": y1[order],
        f"area_ch_{pc}": cat([f.area for f in feats], np.int64)[order],
    }
    for k, c in enumerate(fl):
        for name in FEATURES_FL:
            values = cat([getattr(f, name)[k] for f in feats], np.float64)
            data[f"{name}_ch_{c}"] = values[order]
    return pd.DataFrame(data, columns=trace_columns(pc, fl))


# --------------------------------------------------------------------------
# CSV (§5.4)
# --------------------------------------------------------------------------


def _column_kinds(columns: list[str]) -> list[str]:
    """Kind ('i', 'f', 'b') of each traces column; raise if not the §5.4 layout."""
    n_base = len(BASE_COLUMNS)
    bad = (
        len(columns) < n_base + 1
        or (len(columns) - n_base - 1) % len(FEATURES_FL) != 0
        or tuple(columns[:n_base]) != BASE_COLUMNS
        or _PC_RE.fullmatch(columns[n_base]) is None
    )
    fl: list[int] = []
    if not bad:
        for k in range(n_base + 1, len(columns), len(FEATURES_FL)):
            found = [_FL_RE.fullmatch(c) for c in columns[k : k + len(FEATURES_FL)]]
            if any(m is None for m in found):
                bad = True
                break
            names = tuple(m.group(1) for m in found if m is not None)
            chans = {m.group(2) for m in found if m is not None}
            if names != FEATURES_FL or len(chans) != 1:
                bad = True
                break
            fl.append(int(chans.pop()))
    if bad or any(b <= a for a, b in itertools.pairwise(fl)):
        raise ValueError(
            "df must have the traces columns of algorithms.md §5.4 in order "
            "(see trace_columns), got "
            f"{columns!r}"
        )
    kinds = []
    for name in columns:
        if name == "good":
            kinds.append("b")
        elif name in _INT_BASE or _PC_RE.fullmatch(name):
            kinds.append("i")
        else:
            kinds.append("f")
    return kinds


def _column_values(values: npt.NDArray[Any], kind: str, name: str) -> np.ndarray:
    """Validate one column and convert it to bool, int64 or float64."""
    if kind == "b":
        if values.dtype != np.bool_:
            raise ValueError(
                f"column {name!r} must have dtype bool, got {values.dtype!r}"
            )
        return values
    if kind == "i":
        if values.dtype.kind in "iu":
            return values.astype(np.int64)
        as_float = values.astype(np.float64)
        if not np.all(np.isfinite(as_float)) or np.any(as_float != np.trunc(as_float)):
            raise ValueError(
                f"column {name!r} must hold integers, got dtype {values.dtype!r}"
            )
        return as_float.astype(np.int64)
    return values.astype(np.float64)


def _format_column(values: np.ndarray, kind: str) -> list[str]:
    if kind == "b":
        out: list[str] = np.where(values, "True", "False").tolist()
        return out
    if kind == "i":
        return list(map(str, values.tolist()))
    text = list(map("%.6f".__mod__, values.tolist()))
    for i in np.flatnonzero(np.isnan(values)).tolist():
        text[i] = "NaN"
    return text


def write_traces_csv(df: pd.DataFrame, fh: IO[str]) -> None:
    r"""Write a traces table in the CSV format of algorithms.md §5.4.

    Parameters
    ----------
    df : pandas.DataFrame
        A table from :func:`build_traces` (columns :func:`trace_columns`).
    fh : text file
        Open, writable text handle (open files with ``newline=""`` so that
        the ``\n`` line endings are kept on every platform).

    Raises
    ------
    TypeError
        If `df` is not a DataFrame.
    ValueError
        If the columns are not the §5.4 layout, ``good`` is not bool, or an
        integer column holds non-integral values.

    Notes
    -----
    One header line, comma-separated, ``\n`` line endings, no index;
    integers ``%d``, floats ``%.6f``, ``good`` as ``True``/``False``,
    missing values as ``NaN``. A table without rows gives the header only.
    Values are formatted column by column in blocks of rows, so memory stays
    bounded and the bytes depend only on the table.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__!r}")
    columns = [str(c) for c in df.columns]
    kinds = _column_kinds(columns)
    values = [
        _column_values(df[name].to_numpy(), kind, name)
        for name, kind in zip(columns, kinds, strict=True)
    ]
    fh.write(",".join(columns) + "\n")
    for start in range(0, len(df), _CSV_BLOCK):
        text = [
            _format_column(v[start : start + _CSV_BLOCK], kind)
            for v, kind in zip(values, kinds, strict=True)
        ]
        fh.write("\n".join(map(",".join, zip(*text, strict=True))) + "\n")
