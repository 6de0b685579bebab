"""The long-format traces table of one FOV (algorithms.md §5.2, §5.4).

:func:`build_traces` joins the per-frame features with the lineage table into
one row per (cell, frame) and sets the ``good`` flag; :func:`trace_columns`
names the columns.
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from pyama_steps._validate import check_bool, check_int
from pyama_steps.traces.features import FrameFeatures

__all__ = [
    "BASE_COLUMNS",
    "FEATURES_FL",
    "FEATURES_PC",
    "build_traces",
    "trace_columns",
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

Int64Array = npt.NDArray[np.int64]


def _check_channels(pc_channel: object, fl_channels: object) -> tuple[int, list[int]]:
    pc = check_int("pc_channel", pc_channel, minimum=0)
    if isinstance(fl_channels, str | bytes) or not isinstance(fl_channels, Sequence):
        raise TypeError(f"fl_channels must be a sequence of int, got {fl_channels!r}")
    fl = [check_int("fl_channels item", c, minimum=0) for c in fl_channels]
    if any(b <= a for a, b in itertools.pairwise(fl)):
        raise ValueError(
            f"fl_channels must be strictly ascending (algorithms.md §0), got {fl!r}"
        )
    return pc, fl


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
    fov = check_int("fov", fov, minimum=0)
    pc, fl = _check_channels(pc_channel, fl_channels)
    min_frames = check_int("min_frames", min_frames, minimum=1)
    border = check_int("border_px", border_px, minimum=0)
    exclude_merged = check_bool("exclude_merged", exclude_merged)
    n_t, height, width = _check_shape(shape)
    times = np.asarray(times_min, dtype=np.float64)
    if times.shape != (n_t,):
        raise ValueError(
            f"times_min must have one entry per frame (T={n_t}), got shape "
            f"{times.shape!r}"
        )
    frame_idx = _check_frames(features, frames, n_t=n_t, fl=fl)
    lin_cell, lin_parent, lin_frames, lin_merged = _lineage_lookup(lineage, fov)

    feats = list(features)
    cell = _cat([f.ids for f in feats], np.int64)
    frame = _cat(
        [
            np.full(f.n_cells, t, dtype=np.int64)
            for f, t in zip(feats, frame_idx, strict=True)
        ],
        np.int64,
    )
    x0 = _cat([f.bbox_x0 for f in feats], np.int64)
    y0 = _cat([f.bbox_y0 for f in feats], np.int64)
    x1 = _cat([f.bbox_x1 for f in feats], np.int64)
    y1 = _cat([f.bbox_y1 for f in feats], np.int64)

    where = _lineage_rows(lin_cell, cell)
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
        "position_x": _cat([f.position_x for f in feats], np.float64)[order],
        "position_y": _cat([f.position_y for f in feats], np.float64)[order],
        "bbox_x0": x0[order],
        "bbox_y0": y0[order],
        "bbox_x1": x1[order],
        "bbox_y1": y1[order],
        f"area_ch_{pc}": _cat([f.area for f in feats], np.int64)[order],
    }
    for k, c in enumerate(fl):
        for name in FEATURES_FL:
            values = _cat([getattr(f, name)[k] for f in feats], np.float64)
            data[f"{name}_ch_{c}"] = values[order]
    return pd.DataFrame(data, columns=trace_columns(pc, fl))


def _cat(values: list[npt.NDArray[Any]], dtype: type) -> npt.NDArray[Any]:
    return np.concatenate(values).astype(dtype) if values else np.zeros(0, dtype)


def _check_shape(shape: object) -> tuple[int, int, int]:
    """``(T, Y, X)`` as ints, or raise."""
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
    return n_t, height, width


def _check_frames(
    features: Sequence[FrameFeatures], frames: Sequence[int], *, n_t: int, fl: list[int]
) -> Int64Array:
    """Return the frame index of each features entry, checked against them."""
    if len(frames) != len(features):
        raise ValueError(
            "frames must give the frame index of each features entry, got "
            f"{len(frames)!r} frames for {len(features)!r} entries"
        )
    frame_idx = np.array(
        [check_int("frames item", f, minimum=0) for f in frames], dtype=np.int64
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
    return frame_idx


def _lineage_rows(lin_cell: Int64Array, cell: Int64Array) -> npt.NDArray[np.intp]:
    """Row of each cell in the (sorted) lineage arrays; raise if one is absent."""
    where = np.searchsorted(lin_cell, cell)
    known = where < lin_cell.size
    known[known] = lin_cell[where[known]] == cell[known]
    if not np.all(known):
        absent = np.unique(cell[~known])
        raise ValueError(
            f"cells {absent[:10].tolist()!r} are in the label frames but not in "
            "lineage; pass the lineage table of the same tracking run"
        )
    return where
