"""Cell tracking by mask IoU and Hungarian assignment (algorithms.md §4).

Tracking runs in two passes so that memory stays independent of the movie
length (algorithms.md §7.4):

* **Pass 1** (:class:`LineageTracker`, or :func:`track_masks` for an iterable
  of masks) labels each frame's connected components and decides, frame by
  frame, which track every component belongs to. It keeps at most
  ``max_gap + 2`` label frames and returns one look-up table per frame
  (component label -> track id) plus the lineage records; when it finishes,
  it undoes the divisions that a daughter did not survive (segmentation
  flicker) and renumbers the ids.
* **Pass 2** (:func:`relabel_frame`) labels each frame again with the same
  function and indexes its look-up table, which gives the track-labelled frame
  in the dtype chosen after pass 1.

Two modes exist. ``lineage`` (the default) links components by mask IoU with
births, gap closing, divisions and merges. ``upstream`` reproduces PyAMA's
tracker: frame-0 seeds only and bounding-box IoU.
"""

from __future__ import annotations

import itertools
import numbers
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import IO, Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

from pyama_steps._typing import BoolArray, IntArray

__all__ = [
    "FATES",
    "LINEAGE_COLUMNS",
    "MODES",
    "LineageTracker",
    "Track",
    "TrackingResult",
    "assign",
    "label_components",
    "lineage_table",
    "overlap_pairs",
    "relabel_frame",
    "track_masks",
    "write_lineage_csv",
]

MODES: Final = ("lineage", "upstream")
FATES: Final = ("divided", "merged", "lost", "end")
LINEAGE_COLUMNS: Final = (
    "fov",
    "cell",
    "parent",
    "first_frame",
    "last_frame",
    "n_frames",
    "n_gap_frames",
    "n_merged",
    "fate",
)

_CONNECTIVITY: Final = {4: 1, 8: 2}
_UINT16_MAX: Final = 65535

# Fate codes of the track table; index into ``_FATE_NAMES``.
_OPEN, _DIVIDED, _MERGED, _LOST, _END = range(5)
_FATE_NAMES: Final = ("", "divided", "merged", "lost", "end")

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]

_NO_BOXES: Final = np.zeros((0, 4), dtype=np.int64)
_NO_BOXES.setflags(write=False)
_NO_INDEX: Final = np.zeros(0, dtype=np.intp)
_NO_INDEX.setflags(write=False)
_NO_LABELS: Final = np.zeros(0, dtype=np.int32)
_NO_LABELS.setflags(write=False)
_NO_COMP: Final = np.zeros((0, 0), dtype=np.int32)
_NO_COMP.setflags(write=False)
# A joined component more convex than this (pixels / pixels whose centres lie
# in the convex hull of its pixel centres) is
# left whole by the merge split: touching convex cells leave notches in the
# outline, two pieces of one cell do not (chosen on the tuning variants of
# benchmarks/robustness.py, algorithms.md §4.5 step 0).
_SPLIT_MAX_SOLIDITY: Final = 0.96
_NO_CUT: Final = np.zeros(0, dtype=np.int64)
_NO_CUT.setflags(write=False)


# --------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------


def _check_int(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _check_fraction(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number in [0, 1], got {value!r}")
    out = float(value)
    if not 0.0 <= out <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return out


def _check_connectivity(connectivity: object) -> int:
    if (
        isinstance(connectivity, bool)
        or not isinstance(connectivity, numbers.Integral)
        or int(connectivity) not in _CONNECTIVITY
    ):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    return int(connectivity)


def _check_mode(mode: object) -> str:
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"mode must be one of 'lineage', 'upstream', got {mode!r}")
    return mode


def _check_mask(mask: object, name: str = "mask") -> BoolArray:
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(mask).__name__!r}")
    if mask.ndim != 2:
        raise ValueError(f"{name} must be a (Y, X) array, got shape {mask.shape!r}")
    if mask.dtype != np.bool_:
        raise TypeError(
            f"{name} must have dtype bool, got {mask.dtype!r}; "
            "pass a segmentation mask (e.g. seg != 0)"
        )
    return mask


def _check_labels(labels: object, n: object, name: str) -> tuple[IntArray, int]:
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(labels).__name__!r}")
    if labels.ndim != 2:
        raise ValueError(f"{name} must be a (Y, X) array, got shape {labels.shape!r}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"{name} must have an integer dtype, got {labels.dtype!r}")
    count = _check_int(f"n for {name}", n, minimum=0)
    if labels.size:
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi > count:
            raise ValueError(
                f"{name} must hold labels in [0, {count}] (its component count), "
                f"got values in [{lo}, {hi}]"
            )
    return labels, count


# --------------------------------------------------------------------------
# Per-frame quantities (§4.3) and the assignment routine (§4.4)
# --------------------------------------------------------------------------


def label_components(
    mask: BoolArray, *, connectivity: int = 4
) -> tuple[npt.NDArray[np.int32], int]:
    """Label the connected components of one segmentation frame.

    Parameters
    ----------
    mask : (Y, X) ndarray of bool
        Segmentation of one frame.
    connectivity : {4, 8}, optional
        4 joins only edge-sharing pixels, 8 also corner-sharing ones.

    Returns
    -------
    labels : (Y, X) ndarray of int32
        0 for background, ``1..n`` for the components, numbered in raster
        order of their first pixel (``scipy.ndimage.label``).
    n : int
        Number of components.

    Raises
    ------
    TypeError
        If `mask` is not a bool array.
    ValueError
        If `mask` is not 2-D or `connectivity` is not 4 or 8.

    Notes
    -----
    Both tracking passes call this function, so the numbering of pass 2 is
    the numbering pass 1 decided on (algorithms.md §4.3).
    """
    rank = _CONNECTIVITY[_check_connectivity(connectivity)]
    _check_mask(mask)
    structure = ndimage.generate_binary_structure(2, rank)
    labels = np.empty(mask.shape, dtype=np.int32)  # label writes every pixel
    n = ndimage.label(mask, structure=structure, output=labels)
    return labels, int(n)


def overlap_pairs(
    comp_u: IntArray, n_u: int, comp_t: IntArray, n_t: int
) -> tuple[Int64Array, Int64Array, Int64Array, Float64Array]:
    """Mask IoU of every pair of overlapping components of two frames.

    Parameters
    ----------
    comp_u : (Y, X) ndarray of int
        Component labels ``0..n_u`` of frame u.
    n_u : int
        Number of components of frame u.
    comp_t : (Y, X) ndarray of int
        Component labels ``0..n_t`` of frame t.
    n_t : int
        Number of components of frame t.

    Returns
    -------
    rows : (K,) ndarray of int64
        Label in frame u of each overlapping pair, ascending.
    cols : (K,) ndarray of int64
        Label in frame t; ascending within equal `rows`.
    intersection : (K,) ndarray of int64
        Shared pixels ``I_ij > 0``.
    iou : (K,) ndarray of float64
        ``I_ij / (A_u[i] + A_t[j] - I_ij)``.

    Raises
    ------
    TypeError
        If a label image is not an integer array.
    ValueError
        If the shapes differ or a label image holds values outside
        ``[0, n]``.

    Notes
    -----
    One O(P) label-pair count (algorithms.md §4.3): the int64 key
    ``comp_u * (n_t + 1) + comp_t`` over the pixels where both frames are
    foreground, counted with ``numpy.unique``. Pairs without a shared pixel
    are never stored.
    """
    comp_u, n_u = _check_labels(comp_u, n_u, "comp_u")
    comp_t, n_t = _check_labels(comp_t, n_t, "comp_t")
    if comp_u.shape != comp_t.shape:
        raise ValueError(
            f"comp_u and comp_t must have the same shape, got {comp_u.shape!r} "
            f"and {comp_t.shape!r}"
        )
    flat_u = comp_u.ravel()
    flat_t = comp_t.ravel()
    fg_t = np.flatnonzero(flat_t)
    area_u = np.bincount(flat_u[flat_u != 0], minlength=n_u + 1).astype(np.int64)
    area_t = np.bincount(flat_t[fg_t], minlength=n_t + 1).astype(np.int64)
    return _pairs(flat_u[fg_t], flat_t[fg_t], area_u, area_t, n_t)


def _pairs(
    cu: IntArray, ct: IntArray, area_u: Int64Array, area_t: Int64Array, n_t: int
) -> tuple[Int64Array, Int64Array, Int64Array, Float64Array]:
    """Overlap table from the labels of frames u and t at t's foreground pixels.

    Only pixels where both labels are non-zero contribute, so restricting the
    scan to t's foreground gives the same table as scanning every pixel.
    """
    both = cu != 0
    width = np.int64(n_t + 1)
    key = cu[both].astype(np.int64) * width + ct[both]
    uniq, counts = np.unique(key, return_counts=True)
    rows = (uniq // width).astype(np.int64)
    cols = (uniq % width).astype(np.int64)
    inter = counts.astype(np.int64)
    union = area_u[rows] + area_t[cols] - inter
    iou: Float64Array = inter / union.astype(np.float64)
    return rows, cols, inter, iou


def assign(
    rows: IntArray,
    cols: IntArray,
    iou: npt.NDArray[np.floating[Any]],
    *,
    threshold: float,
) -> tuple[Int64Array, Int64Array]:
    """One-to-one links that maximise the total IoU (algorithms.md §4.4).

    Parameters
    ----------
    rows : (K,) ndarray of int
        Row id of each candidate pair (a track id or a component label).
    cols : (K,) ndarray of int
        Column id of each pair (a component label).
    iou : (K,) ndarray of float
        IoU of each pair, in [0, 1]. Each (row, col) pair appears once.
    threshold : float
        Smallest IoU a link may have, in [0, 1].

    Returns
    -------
    rows : (L,) ndarray of int64
        Linked row ids, ascending.
    cols : (L,) ndarray of int64
        The column linked to each row.

    Raises
    ------
    TypeError
        If `rows`/`cols` are not integer arrays or `threshold` is not a number.
    ValueError
        If the arrays are not 1-D of one length, an IoU lies outside [0, 1],
        a pair appears twice, or `threshold` lies outside [0, 1].

    Notes
    -----
    Pairs with ``IoU >= threshold`` (and ``IoU > 0``; a zero-overlap pair
    adds nothing to the sum) form a bipartite graph, split into connected
    blocks with ``scipy.sparse.csgraph.connected_components``. Blocks are
    solved in order of their smallest row id; within a block rows and
    columns are sorted ascending, absent pairs cost 1.0 and present ones
    ``1 - IoU``, and ``scipy.optimize.linear_sum_assignment`` solves the
    dense block. Assignments on absent pairs are dropped. A block of a
    single pair is that pair's link.
    """
    threshold = _check_fraction("threshold", threshold)
    arrays = {"rows": rows, "cols": cols, "iou": iou}
    for name, arr in arrays.items():
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{name} must be a numpy array, got {type(arr).__name__!r}")
        if arr.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {arr.shape!r}")
    if not (rows.shape == cols.shape == iou.shape):
        raise ValueError(
            "rows, cols and iou must have the same length, got "
            f"{rows.shape[0]!r}, {cols.shape[0]!r} and {iou.shape[0]!r}"
        )
    for name in ("rows", "cols"):
        if not np.issubdtype(arrays[name].dtype, np.integer):
            raise TypeError(
                f"{name} must have an integer dtype, got {arrays[name].dtype!r}"
            )
    if not np.issubdtype(iou.dtype, np.floating):
        raise TypeError(f"iou must have a float dtype, got {iou.dtype!r}")
    weights = iou.astype(np.float64)
    if weights.size and not (
        np.all(np.isfinite(weights)) and weights.min() >= 0.0 and weights.max() <= 1.0
    ):
        raise ValueError(
            f"iou must lie in [0, 1], got values in [{weights.min()!r}, "
            f"{weights.max()!r}]"
        )
    keep = (weights >= threshold) & (weights > 0.0)
    r = rows[keep].astype(np.int64)
    c = cols[keep].astype(np.int64)
    w = weights[keep]
    empty = np.zeros(0, dtype=np.int64)
    if r.size == 0:
        return empty, empty.copy()

    row_ids, ri = np.unique(r, return_inverse=True)
    col_ids, ci = np.unique(c, return_inverse=True)
    n_r, n_c = row_ids.size, col_ids.size
    pair_key = ri.astype(np.int64) * n_c + ci
    if np.unique(pair_key).size != pair_key.size:
        raise ValueError("rows and cols must not repeat a (row, col) pair")

    graph = coo_array(
        (np.ones(r.size, dtype=np.int8), (ri, n_r + ci)),
        shape=(n_r + n_c, n_r + n_c),
    ).tocsr()
    n_blocks, node_block = connected_components(graph, directed=False)
    pair_block = node_block[ri]
    # Every block holds at least one row (each pair joins a row and a col),
    # so ordering by the smallest row index orders by the smallest row id.
    first_row = np.full(n_blocks, n_r, dtype=np.int64)
    np.minimum.at(first_row, pair_block, ri)
    rank = np.empty(n_blocks, dtype=np.int64)
    rank[np.argsort(first_row, kind="stable")] = np.arange(n_blocks)
    pair_rank = rank[pair_block]
    order = np.lexsort((ci, ri, pair_rank))
    pair_rank, ri, ci, w = pair_rank[order], ri[order], ci[order], w[order]
    starts = np.flatnonzero(np.r_[True, pair_rank[1:] != pair_rank[:-1]])
    sizes = np.diff(np.r_[starts, pair_rank.size])

    out_r: list[Int64Array] = []
    out_c: list[Int64Array] = []
    single = starts[sizes == 1]
    out_r.append(ri[single].astype(np.int64))
    out_c.append(ci[single].astype(np.int64))
    for start, size in zip(starts[sizes > 1], sizes[sizes > 1], strict=True):
        block = slice(int(start), int(start + size))
        b_rows, b_ri = np.unique(ri[block], return_inverse=True)
        b_cols, b_ci = np.unique(ci[block], return_inverse=True)
        cost = np.ones((b_rows.size, b_cols.size), dtype=np.float64)
        present = np.zeros(cost.shape, dtype=bool)
        cost[b_ri, b_ci] = 1.0 - w[block]
        present[b_ri, b_ci] = True
        sel_r, sel_c = linear_sum_assignment(cost)
        ok = present[sel_r, sel_c]
        out_r.append(b_rows[sel_r[ok]].astype(np.int64))
        out_c.append(b_cols[sel_c[ok]].astype(np.int64))
    link_ri = np.concatenate(out_r)
    link_ci = np.concatenate(out_c)
    by_row = np.argsort(link_ri, kind="stable")
    return (
        row_ids[link_ri[by_row]].astype(np.int64),
        col_ids[link_ci[by_row]].astype(np.int64),
    )


def _bboxes(comp: IntArray, n: int) -> Int64Array:
    """Pixel bounding boxes ``(y0, x0, y1, x1)``, ends exclusive, shape (n, 4)."""
    boxes = np.zeros((n, 4), dtype=np.int64)
    for i, sl in enumerate(ndimage.find_objects(comp, max_label=n)):
        # Every label 1..n is present in a frame labelled by label_components.
        if sl is not None:
            boxes[i] = (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop)
    return boxes


def _bbox_iou(a: Int64Array, b: Int64Array) -> Float64Array:
    """Dense IoU of two sets of boxes, shape (len(a), len(b))."""
    iy = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(
        a[:, None, 0], b[None, :, 0]
    )
    ix = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(
        a[:, None, 1], b[None, :, 1]
    )
    inter = np.clip(iy, 0, None) * np.clip(ix, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    out: Float64Array = inter / union.astype(np.float64)
    return out


# --------------------------------------------------------------------------
# Pass 1
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Track:
    """One row of the lineage table (algorithms.md §4.7).

    Attributes
    ----------
    cell : int
        Track id, from 1 in order of creation.
    parent : int
        Mother's id, or 0.
    first_frame, last_frame : int
        First and last frame in which the track is present.
    n_frames : int
        Frames present.
    n_gap_frames : int
        ``last_frame - first_frame + 1 - n_frames`` (bridged frames).
    n_merged : int
        Other tracks absorbed into this one.
    fate : {'divided', 'merged', 'lost', 'end'}
        How the track ended.
    """

    cell: int
    parent: int
    first_frame: int
    last_frame: int
    n_frames: int
    n_gap_frames: int
    n_merged: int
    fate: str


@dataclass(frozen=True)
class TrackingResult:
    """Decisions of tracking pass 1.

    Attributes
    ----------
    luts : tuple of (n_t + 1,) ndarray of int64
        Per frame, component label -> track id; ``lut[0] == 0``. In
        ``upstream`` mode unlinked components map to 0 as well. Read-only.
    tracks : tuple of Track
        Lineage records, ascending by ``cell``.
    max_id : int
        Largest track id (0 without tracks).
    label_dtype : numpy.dtype
        uint16 if ``max_id <= 65535``, otherwise uint32 (algorithms.md §4.6).
    shape : tuple of int
        ``(T, Y, X)`` of the tracked stack; ``(0, 0, 0)`` if no frame was
        pushed.
    mode : {'lineage', 'upstream'}
        Tracking mode used.
    connectivity : {4, 8}
        Connectivity used; pass 2 must use the same.
    cuts : tuple of (k_t,) ndarray of int64
        Per frame, the flat indices of the mask pixels that pass 1 cleared to
        split components joining established tracks (``split_merged_min_frames``;
        mostly empty). Pass 2 must clear them too. Read-only.
    """

    luts: tuple[Int64Array, ...]
    tracks: tuple[Track, ...]
    max_id: int
    label_dtype: np.dtype[np.unsignedinteger[Any]]
    shape: tuple[int, int, int]
    mode: str
    connectivity: int
    cuts: tuple[Int64Array, ...] = ()


@dataclass(frozen=True)
class _Frame:
    """One label frame of the ring buffer."""

    t: int
    comp: npt.NDArray[np.int32]
    n: int
    area: Int64Array
    lut: Int64Array
    boxes: Int64Array
    fg: npt.NDArray[np.intp]
    fg_labels: npt.NDArray[np.int32]


class _TrackTable:
    """Growable per-track state; index = track id, row 0 unused."""

    def __init__(self) -> None:
        self.count = 0
        self._cap = 0
        self.parent = np.zeros(0, dtype=np.int64)
        self.first = np.zeros(0, dtype=np.int64)
        self.last = np.zeros(0, dtype=np.int64)
        self.present = np.zeros(0, dtype=np.int64)
        self.merged_in = np.zeros(0, dtype=np.int64)
        self.marked = np.zeros(0, dtype=bool)
        self.fate = np.zeros(0, dtype=np.int8)
        self._grow(64)

    def _grow(self, need: int) -> None:
        cap = max(need, 2 * self._cap)
        for name in ("parent", "first", "last", "present", "merged_in", "marked"):
            old = getattr(self, name)
            new = np.zeros(cap, dtype=old.dtype)
            new[: old.size] = old
            setattr(self, name, new)
        fate = np.zeros(cap, dtype=np.int8)
        fate[: self.fate.size] = self.fate
        self.fate = fate
        self._cap = cap

    def new(self, parents: Int64Array, t: int) -> Int64Array:
        """Create ``len(parents)`` tracks first seen at frame `t`."""
        k = parents.size
        if self.count + k + 1 > self._cap:
            self._grow(self.count + k + 1)
        ids = np.arange(self.count + 1, self.count + k + 1, dtype=np.int64)
        self.parent[ids] = parents
        self.first[ids] = t
        self.last[ids] = t
        self.present[ids] = 1
        self.count += k
        return ids

    def see(self, ids: Int64Array, t: int) -> None:
        """Record that tracks `ids` are present at frame `t`."""
        self.last[ids] = t
        self.present[ids] += 1

    def ids(self) -> Int64Array:
        return np.arange(1, self.count + 1, dtype=np.int64)

    def is_open(self, ids: Int64Array) -> BoolArray:
        out: BoolArray = self.fate[ids] == _OPEN
        return out


class LineageTracker:
    """Streaming pass 1 of the tracker: push one mask per frame, then finish.

    Parameters
    ----------
    mode : {'lineage', 'upstream'}, optional
        ``lineage``: mask IoU with births, gaps, divisions and merges
        (algorithms.md §4.5). ``upstream``: PyAMA's tracker (§4.2).
    connectivity : {4, 8}, optional
        Connectivity of the per-frame components.
    min_iou : float, optional
        Smallest IoU for a link between consecutive frames (mask IoU in
        ``lineage`` mode, bounding-box IoU in ``upstream`` mode).
    max_gap : int, optional
        Consecutive missing frames a track may bridge (``lineage`` only).
    gap_min_iou : float, optional
        Smallest mask IoU for a gap-closing link (``lineage`` only).
    divisions : bool, optional
        Detect divisions (``lineage`` only).
    division_min_overlap : float, optional
        Share of each daughter's area, or of half the mother's last area if
        that is smaller, that must lie inside the mother's last mask
        (``lineage`` only).
    division_min_frames : int, optional
        A daughter whose track ends (lost or merged) after fewer frames than
        this was a part of a cell split by the segmentation, not a daughter:
        she loses her parent, and a mother left with one daughter continues
        in her (applied by :meth:`finish`; ``lineage`` only). 0 or 1 keeps
        every division.
    merge_min_overlap : float, optional
        Share of a lost track's last mask that must lie inside another
        track's current component for it to count as merged (``lineage``
        only).
    split_merged_min_frames : int, optional
        A component that holds `merge_min_overlap` of the last masks of two
        or more tracks, each present in at least this many frames, is split
        between them before linking (cells do not fuse; the segmentation
        joined touching cells). 0 disables it (``lineage`` only).

    Raises
    ------
    TypeError
        If a parameter has the wrong type.
    ValueError
        If a parameter is out of range.

    Notes
    -----
    Holds at most ``max_gap + 2`` label frames (``lineage``) or one frame's
    bounding boxes (``upstream``) plus per-track tables, independent of the
    number of frames (algorithms.md §7.4).

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((4, 4), dtype=bool)
    >>> mask[1:3, 1:3] = True
    >>> tracker = LineageTracker()
    >>> [tracker.push(mask).tolist() for _ in range(2)]
    [[0, 1], [0, 1]]
    >>> tracker.finish().tracks[0].fate
    'end'
    """

    def __init__(
        self,
        *,
        mode: str = "lineage",
        connectivity: int = 4,
        min_iou: float = 0.1,
        max_gap: int = 2,
        gap_min_iou: float = 0.1,
        divisions: bool = True,
        division_min_overlap: float = 0.4,
        division_min_frames: int = 4,
        merge_min_overlap: float = 0.5,
        split_merged_min_frames: int = 2,
    ) -> None:
        self._mode = _check_mode(mode)
        self._connectivity = _check_connectivity(connectivity)
        self._min_iou = _check_fraction("min_iou", min_iou)
        self._max_gap = _check_int("max_gap", max_gap, minimum=0)
        self._gap_min_iou = _check_fraction("gap_min_iou", gap_min_iou)
        if not isinstance(divisions, bool | np.bool_):
            raise TypeError(f"divisions must be a bool, got {divisions!r}")
        self._divisions = bool(divisions)
        self._division_min_overlap = _check_fraction(
            "division_min_overlap", division_min_overlap
        )
        self._division_min_frames = _check_int(
            "division_min_frames", division_min_frames, minimum=0
        )
        self._merge_min_overlap = _check_fraction(
            "merge_min_overlap", merge_min_overlap
        )
        self._split_min_frames = _check_int(
            "split_merged_min_frames", split_merged_min_frames, minimum=0
        )
        # With the current frame held apart, max_gap + 1 past frames make the
        # max_gap + 2 label frames of algorithms.md §4.5.
        keep = self._max_gap + 1 if self._mode == "lineage" else 1
        self._frames: deque[_Frame] = deque(maxlen=keep)
        self._luts: list[Int64Array] = []
        self._cuts: list[Int64Array] = []
        self._prev_pairs: (
            tuple[Int64Array, Int64Array, Int64Array, Float64Array] | None
        ) = None
        self._tracks = _TrackTable()
        self._frame_shape: tuple[int, int] | None = None

    @property
    def n_frames(self) -> int:
        """Number of frames pushed so far."""
        return len(self._luts)

    @property
    def last_areas(self) -> Int64Array:
        """Areas (px) of the components of the frame pushed last.

        ``(n,)`` int64 in label order, empty before the first push; read-only.
        Pass 1 counts them anyway, so the segmentation checks (algorithms.md
        §2.8) get each frame's objects without another pass over the pixels.
        """
        if not self._frames:
            return np.zeros(0, dtype=np.int64)
        areas = self._frames[-1].area[1:]
        areas.setflags(write=False)
        return areas

    def push(self, mask: BoolArray) -> Int64Array:
        """Track the next frame.

        Parameters
        ----------
        mask : (Y, X) ndarray of bool
            Segmentation of the next frame; every frame must have the same
            shape.

        Returns
        -------
        (n_t + 1,) ndarray of int64
            Read-only look-up table: component label -> track id, with
            ``lut[0] == 0``. These are the frame's decisions; :meth:`finish`
            may still undo a division (`division_min_frames`), which
            renumbers ids, so use its look-up tables for the output.

        Raises
        ------
        TypeError
            If `mask` is not a bool array.
        ValueError
            If `mask` is not 2-D or its shape differs from the first frame's.
        """
        _check_mask(mask)
        shape = (int(mask.shape[0]), int(mask.shape[1]))
        if self._frame_shape is None:
            self._frame_shape = shape
        elif shape != self._frame_shape:
            raise ValueError(
                f"mask of frame {self.n_frames} has shape {mask.shape!r}, but "
                f"frame 0 had {self._frame_shape!r}; every frame must match"
            )
        comp, n = label_components(mask, connectivity=self._connectivity)
        t = self.n_frames
        cut = _NO_CUT
        self._prev_pairs = None
        if self._mode == "lineage" and self._split_min_frames and self._frames:
            cut = self._merged_cut(self._frames[-1], comp, n)
            if cut.size:
                mask = mask.copy()
                mask.ravel()[cut] = False
                comp, n = label_components(mask, connectivity=self._connectivity)
        self._cuts.append(cut)
        fg = np.flatnonzero(mask)
        if self._mode == "lineage":
            frame = self._push_lineage(t, comp, n, fg)
        else:
            frame = self._push_upstream(t, comp, n, fg)
        frame.lut.setflags(write=False)
        self._frames.append(frame)
        self._luts.append(frame.lut)
        return frame.lut

    # -- lineage mode (§4.5) -------------------------------------------------

    def _merged_cut(
        self, prev: _Frame, comp: npt.NDArray[np.int32], n: int
    ) -> Int64Array:
        """(0) Pixels to clear so that no component joins established tracks.

        A component of this frame that holds at least `merge_min_overlap` of
        the last masks of two or more tracks present in at least
        `split_merged_min_frames` frames is divided between them: each pixel
        goes to the nearest of those masks (inside the component), and the
        pixels of each part that touch a part of an earlier track are
        cleared. Returns their flat indices, ascending (empty if none).
        """
        if prev.n == 0 or n == 0:
            return _NO_CUT
        flat = comp.ravel()
        fg = np.flatnonzero(flat)
        ct = flat[fg]
        area = np.bincount(ct, minlength=n + 1).astype(np.int64)
        pairs = _pairs(prev.comp.ravel()[fg], ct, prev.area, area, n)
        self._prev_pairs = pairs  # the link step's overlaps, unless a cut follows
        rows, cols, inter, _ = pairs
        trk = prev.lut[rows]
        ok = (inter >= self._merge_min_overlap * prev.area[rows]) & (
            self._tracks.present[trk] >= self._split_min_frames
        )
        rows, cols, trk = rows[ok], cols[ok], trk[ok]
        comps, counts = np.unique(cols, return_counts=True)
        joined = comps[counts >= 2]
        if joined.size == 0:
            return _NO_CUT
        cuts = [_NO_CUT]
        width = comp.shape[1]
        for c in joined.tolist():
            sel = cols == c
            at = fg[ct == c]
            if _solidity(at, width) > _SPLIT_MAX_SOLIDITY:
                continue  # convex: pieces of one cell, not touching cells
            seeds = rows[sel][np.argsort(trk[sel], kind="stable")]
            cuts.append(
                _cut_between(
                    comp,
                    prev.comp,
                    label=c,
                    seeds=seeds,
                    box=(
                        int(at[0] // width),
                        int(at[-1] // width) + 1,
                        int((at % width).min()),
                        int((at % width).max()) + 1,
                    ),
                    connectivity=self._connectivity,
                )
            )
        out: Int64Array = np.sort(np.concatenate(cuts))
        if out.size:
            self._prev_pairs = None
        return out

    def _push_lineage(
        self, t: int, comp: npt.NDArray[np.int32], n: int, fg: npt.NDArray[np.intp]
    ) -> _Frame:
        tracks = self._tracks
        # fg: foreground pixel indices in raster order. Every per-frame count
        # below only needs these pixels and their labels.
        fg_labels = comp.ravel()[fg]
        area = np.bincount(fg_labels, minlength=n + 1).astype(np.int64)
        lut = np.zeros(n + 1, dtype=np.int64)
        frame = _Frame(
            t=t,
            comp=comp,
            n=n,
            area=area,
            lut=lut,
            boxes=_NO_BOXES,
            fg=fg,
            fg_labels=fg_labels,
        )
        prev = self._frames[-1] if self._frames else None
        if prev is not None and prev.n and n:
            self._link_divide_merge(prev, frame)
        self._bridge(frame)
        # (5) birth: components still unlinked, in label order.
        unlinked = np.flatnonzero(lut[1:] == 0) + 1
        if unlinked.size:
            lut[unlinked] = tracks.new(np.zeros(unlinked.size, dtype=np.int64), t)
        # (6) retire: tracks that have had their last bridging chance.
        ids = tracks.ids()
        gone = ids[tracks.is_open(ids) & (tracks.last[ids] <= t - self._max_gap - 1)]
        tracks.fate[gone] = np.where(tracks.marked[gone], _MERGED, _LOST)
        # Past frames keep only what later overlaps need.
        return _Frame(
            t=t,
            comp=comp,
            n=n,
            area=area,
            lut=lut,
            boxes=_NO_BOXES,
            fg=_NO_INDEX,
            fg_labels=_NO_LABELS,
        )

    def _overlap(
        self, old: _Frame, cur: _Frame
    ) -> tuple[Int64Array, Int64Array, Int64Array, Float64Array]:
        cu = old.comp.ravel()[cur.fg]
        return _pairs(cu, cur.fg_labels, old.area, cur.area, cur.n)

    def _link_divide_merge(self, prev: _Frame, cur: _Frame) -> None:
        tracks = self._tracks
        t, lut, area = cur.t, cur.lut, cur.area
        if self._prev_pairs is not None:
            p_rows, cols, inter, iou = self._prev_pairs
        else:
            p_rows, cols, inter, iou = self._overlap(prev, cur)
        trk = prev.lut[p_rows]
        # Rows are track ids (as in upstream mode); every component of t-1
        # belongs to a track, so these are exactly the tracks with last == t-1.
        link_trk, link_comp = assign(trk, cols, iou, threshold=self._min_iou)
        lut[link_comp] = link_trk

        if self._divisions and link_trk.size:
            self._divide(
                t,
                trk,
                cols,
                inter,
                iou,
                prev.area[p_rows],
                link_trk,
                link_comp,
                lut,
                area,
                min_iou=self._min_iou,
                claim=True,
            )

        # Links that survived the division step.
        linked = lut[link_comp] == link_trk
        tracks.see(link_trk[linked], t)

        # (3) merge: previous tracks left unlinked (and not ended by dividing).
        prev_trk = prev.lut[1:]
        lost = prev_trk[tracks.is_open(prev_trk) & (tracks.last[prev_trk] == t - 1)]
        if lost.size == 0:
            return
        is_lost = np.zeros(tracks.count + 1, dtype=bool)
        is_lost[lost] = True
        owner = lut[cols]
        cand = (
            is_lost[trk]
            & (owner > 0)
            & (inter >= self._merge_min_overlap * prev.area[p_rows])
        )
        c_trk, c_comp, c_inter = trk[cand], cols[cand], inter[cand]
        if c_trk.size == 0:
            return
        # Per lost track: the component holding most of it, ties smaller label.
        order = np.lexsort((c_comp, -c_inter, c_trk))
        c_trk, c_comp = c_trk[order], c_comp[order]
        first = np.r_[True, c_trk[1:] != c_trk[:-1]]
        merged, into = c_trk[first], lut[c_comp[first]]
        tracks.marked[merged] = True
        np.add.at(tracks.merged_in, into, 1)

    def _divide(
        self,
        t: int,
        trk: Int64Array,
        cols: Int64Array,
        inter: Int64Array,
        iou: Float64Array,
        mother_area: Int64Array,
        link_trk: Int64Array,
        link_comp: Int64Array,
        lut: Int64Array,
        area: Int64Array,
        *,
        min_iou: float,
        claim: bool,
    ) -> None:
        """(2) Split linked tracks whose last mask holds an unlinked component too.

        Every array before `link_trk` has one entry per overlapping pair (track
        of the earlier frame, component of frame `t`); `mother_area` is the
        track's area in the earlier frame. With `claim`, a component linked to
        another track can be a daughter too (algorithms.md §4.5).
        """
        tracks = self._tracks
        share = self._division_min_overlap
        # Overlap pairs are sorted by (component of the earlier frame,
        # component of t), not by track id: look pairs up by an explicit key.
        key = trk * lut.size + cols
        key_order = np.argsort(key, kind="stable")
        sorted_key = key[key_order]

        def pair_of(a: Int64Array, b: Int64Array) -> npt.NDArray[np.intp]:
            return key_order[np.searchsorted(sorted_key, a * lut.size + b)]

        # A daughter must hold `share` of the smaller of her own area and half
        # the mother's: daughters of a mother that rounded up before the split
        # are each larger than half of her last mask (algorithms.md §4.5).
        half = 0.5 * mother_area
        is_linked = np.zeros(tracks.count + 1, dtype=bool)
        is_linked[link_trk] = True
        owner = lut[cols]
        free = owner == 0
        if claim:
            # A small track next to the mother (a fragment, a bright pocket
            # between cells) can win a daughter in the assignment with a low
            # IoU; she is the mother's when she lies more inside the mother.
            held = owner > 0
            owner_inter = np.zeros(owner.size, dtype=np.int64)
            owner_inter[held] = inter[pair_of(owner[held], cols[held])]
            free |= held & (owner != trk) & (inter > owner_inter)
        cand = (
            is_linked[trk]
            & free
            & (iou >= min_iou)
            & (inter >= share * np.minimum(area[cols], half))
        )
        if claim and np.any(cand):
            # Never take a component from a track that may divide itself.
            may_divide = np.zeros(tracks.count + 1, dtype=bool)
            may_divide[trk[cand]] = True
            cand &= (owner == 0) | ~may_divide[owner]
        if not np.any(cand):
            return
        m, k, i_mk = trk[cand], cols[cand], inter[cand]
        # Each unlinked component k goes to the candidate mother holding the
        # most of it; ties go to the smaller id.
        order = np.lexsort((m, -i_mk, k))
        m, k = m[order], k[order]
        first = np.r_[True, k[1:] != k[:-1]]
        m, k = m[first], k[first]
        mothers = np.unique(m)
        # Each mother's own link j must lie inside the mother as well.
        link_of = np.zeros(tracks.count + 1, dtype=np.int64)
        link_of[link_trk] = link_comp
        j = link_of[mothers]
        pair = pair_of(mothers, j)
        divides = inter[pair] >= share * np.minimum(area[j], half[pair])
        mothers, j = mothers[divides], j[divides]
        if mothers.size == 0:
            return
        daughter_mother = np.concatenate([mothers, m[np.isin(m, mothers)]])
        daughter_comp = np.concatenate([j, k[np.isin(m, mothers)]])
        order = np.lexsort((daughter_comp, daughter_mother))
        daughter_mother, daughter_comp = daughter_mother[order], daughter_comp[order]
        tracks.fate[mothers] = _DIVIDED
        lut[daughter_comp] = tracks.new(daughter_mother, t)

    def _bridge(self, cur: _Frame) -> None:
        """(4) Link dormant tracks to unlinked components, shortest gap first."""
        tracks = self._tracks
        t, lut = cur.t, cur.lut
        past = {f.t: f for f in self._frames}
        for g in range(2, self._max_gap + 2):
            old = past.get(t - g)
            if old is None or old.n == 0:
                continue
            if cur.n == 0 or not np.any(lut[1:] == 0):
                return
            old_trk = old.lut[1:]
            dormant = tracks.is_open(old_trk) & (tracks.last[old_trk] == old.t)
            if not np.any(dormant):
                continue
            rows, cols, inter, iou = self._overlap(old, cur)
            trk = old.lut[rows]
            sel = tracks.is_open(trk) & (tracks.last[trk] == old.t) & (lut[cols] == 0)
            trk, cols, inter, iou = trk[sel], cols[sel], inter[sel], iou[sel]
            b_trk, b_comp = assign(trk, cols, iou, threshold=self._gap_min_iou)
            lut[b_comp] = b_trk
            if self._divisions and b_trk.size:
                # A mother not segmented in the frames before her split (a
                # dropped frame, or rounded up beyond recognition).
                self._divide(
                    t,
                    trk,
                    cols,
                    inter,
                    iou,
                    old.area[rows[sel]],
                    b_trk,
                    b_comp,
                    lut,
                    cur.area,
                    min_iou=self._gap_min_iou,
                    claim=False,
                )
            bridged = b_trk[lut[b_comp] == b_trk]
            tracks.see(bridged, t)
            tracks.marked[bridged] = False

    # -- upstream mode (§4.2) ------------------------------------------------

    def _push_upstream(
        self, t: int, comp: npt.NDArray[np.int32], n: int, fg: npt.NDArray[np.intp]
    ) -> _Frame:
        tracks = self._tracks
        lut = np.zeros(n + 1, dtype=np.int64)
        boxes = _bboxes(comp, n)
        # Only for last_areas: this mode's linking uses the boxes alone.
        area = np.bincount(comp.ravel()[fg], minlength=n + 1).astype(np.int64)
        # The past frame only needs its boxes and lut, not its label image.
        frame = _Frame(
            t=t,
            comp=_NO_COMP,
            n=n,
            area=area,
            lut=lut,
            boxes=boxes,
            fg=_NO_INDEX,
            fg_labels=_NO_LABELS,
        )
        if t == 0:
            # Only frame 0 starts tracks.
            if n:
                lut[1:] = tracks.new(np.zeros(n, dtype=np.int64), 0)
            return frame
        prev = self._frames[-1]
        alive = np.flatnonzero(prev.lut)
        if alive.size == 0:
            return frame
        order = np.argsort(prev.lut[alive], kind="stable")
        row_comp = alive[order]
        row_trk = prev.lut[row_comp]
        linked_trk = np.zeros(0, dtype=np.int64)
        if n:
            iou = _bbox_iou(prev.boxes[row_comp - 1], boxes)
            valid = (iou >= self._min_iou) & (iou > 0.0)
            cost = np.where(valid, 1.0 - iou, 1.0)
            sel_r, sel_c = linear_sum_assignment(cost)
            ok = valid[sel_r, sel_c]
            linked_trk = row_trk[sel_r[ok]]
            lut[sel_c[ok] + 1] = linked_trk
            tracks.see(linked_trk, t)
        # A track left unlinked ends for good.
        ended = row_trk[~np.isin(row_trk, linked_trk)]
        tracks.fate[ended] = _LOST
        return frame

    # -- result ----------------------------------------------------------------

    def finish(self) -> TrackingResult:
        """Return the decisions for the frames pushed so far.

        Returns
        -------
        TrackingResult
            Look-up tables, lineage records, ``max_id`` and label dtype.
            Tracks still open get fate ``end`` if present in the last frame,
            otherwise ``merged`` if marked as merged, else ``lost``.

        Notes
        -----
        With ``division_min_frames > 1`` divisions that a daughter did not
        survive are undone here (algorithms.md §4.5, step 7), and ids are
        renumbered ``1..max_id`` in order of creation. The tracker's state is
        not changed; pushing more frames and calling `finish` again is
        allowed.
        """
        tracks = self._tracks
        n_t = self.n_frames
        ids = tracks.ids()
        fate = tracks.fate[: ids.size + 1].copy()
        still = fate == _OPEN
        still[0] = False
        fate[still] = np.where(
            tracks.last[: ids.size + 1][still] == n_t - 1,
            _END,
            np.where(tracks.marked[: ids.size + 1][still], _MERGED, _LOST),
        )
        table = _Lineage(
            parent=tracks.parent[: ids.size + 1].copy(),
            first=tracks.first[: ids.size + 1].copy(),
            last=tracks.last[: ids.size + 1].copy(),
            present=tracks.present[: ids.size + 1].copy(),
            merged_in=tracks.merged_in[: ids.size + 1].copy(),
            fate=fate,
        )
        luts = tuple(self._luts)
        if self._mode == "lineage" and self._division_min_frames > 1:
            table, new_id = _confirm_divisions(
                table, min_frames=self._division_min_frames
            )
            if new_id.size != ids.size + 1 or np.any(new_id != np.arange(new_id.size)):
                luts = tuple(_read_only(new_id[lut]) for lut in luts)
        ids = np.arange(1, table.parent.size, dtype=np.int64)
        parent, first, last = table.parent[1:], table.first[1:], table.last[1:]
        present, merged_in, fate = (
            table.present[1:],
            table.merged_in[1:],
            table.fate[1:],
        )
        records = tuple(
            Track(
                cell=int(cell),
                parent=int(p),
                first_frame=int(f0),
                last_frame=int(f1),
                n_frames=int(nf),
                n_gap_frames=int(f1 - f0 + 1 - nf),
                n_merged=int(nm),
                fate=_FATE_NAMES[int(code)],
            )
            for cell, p, f0, f1, nf, nm, code in zip(
                ids.tolist(),
                parent.tolist(),
                first.tolist(),
                last.tolist(),
                present.tolist(),
                merged_in.tolist(),
                fate.tolist(),
                strict=True,
            )
        )
        max_id = int(ids.size)
        dtype: np.dtype[np.unsignedinteger[Any]] = (
            np.dtype(np.uint16) if max_id <= _UINT16_MAX else np.dtype(np.uint32)
        )
        y, x = self._frame_shape if self._frame_shape is not None else (0, 0)
        return TrackingResult(
            luts=luts,
            tracks=records,
            max_id=max_id,
            label_dtype=dtype,
            shape=(n_t, y, x),
            mode=self._mode,
            connectivity=self._connectivity,
            cuts=tuple(self._cuts),
        )


def _solidity(at: npt.NDArray[np.intp], width: int) -> float:
    """Pixels of one component (flat indices) over those of its convex hull."""
    from skimage.morphology import convex_hull_image

    ys, xs = np.divmod(at, width)
    y0, x0 = int(ys.min()), int(xs.min())
    crop = np.zeros((int(ys.max()) - y0 + 1, int(xs.max()) - x0 + 1), dtype=bool)
    crop[ys - y0, xs - x0] = True
    # The hull of the pixel centres: a digitally convex set scores 1.
    hull_image = convex_hull_image(crop, offset_coordinates=False)  # type: ignore[no-untyped-call]
    hull = int(np.count_nonzero(hull_image))
    return at.size / max(hull, at.size)


def _cut_between(
    comp: npt.NDArray[np.int32],
    prev_comp: npt.NDArray[np.int32],
    *,
    label: int,
    seeds: Int64Array,
    box: tuple[int, int, int, int],
    connectivity: int,
) -> Int64Array:
    """Flat indices that separate component `label` into one part per seed.

    `seeds` are component labels of the previous frame (in order of their
    tracks' ids); `box` is ``(y0, y1, x0, x1)`` of the component. Each of its
    pixels goes to the nearest seed pixel inside it (Euclidean; ties as
    :func:`scipy.ndimage.distance_transform_edt` resolves them); a pixel with
    a neighbour (under `connectivity`) of a part of a smaller index is cut,
    so that the parts are no longer connected.
    """
    y0, y1, x0, x1 = box
    inside = comp[y0:y1, x0:x1] == label
    before = prev_comp[y0:y1, x0:x1]
    part = np.zeros(inside.shape, dtype=np.int32)
    for i, s in enumerate(seeds.tolist(), start=1):
        part[inside & (before == s)] = i
    _, (iy, ix) = ndimage.distance_transform_edt(part == 0, return_indices=True)
    part = np.where(inside, part[iy, ix], 0)
    # A neighbour of a smaller, non-zero part index makes a pixel a cut pixel.
    big = np.iinfo(np.int32).max
    low = np.where(part > 0, part, big)
    padded = np.pad(low, 1, constant_values=big)
    h, w = part.shape
    shifts = [(0, 1), (2, 1), (1, 0), (1, 2)]
    if connectivity == 8:
        shifts += [(0, 0), (0, 2), (2, 0), (2, 2)]
    smallest = np.full(part.shape, big, dtype=np.int32)
    for dy, dx in shifts:
        np.minimum(smallest, padded[dy : dy + h, dx : dx + w], out=smallest)
    yy, xx = np.nonzero((part > 0) & (smallest < part))
    out: Int64Array = ((yy + y0) * comp.shape[1] + (xx + x0)).astype(np.int64)
    return out


@dataclass(frozen=True)
class _Lineage:
    """Per-track arrays indexed by track id; row 0 unused."""

    parent: Int64Array
    first: Int64Array
    last: Int64Array
    present: Int64Array
    merged_in: Int64Array
    fate: npt.NDArray[np.int8]


def _read_only(array: Int64Array) -> Int64Array:
    array.setflags(write=False)
    return array


def _confirm_divisions(
    table: _Lineage, *, min_frames: int
) -> tuple[_Lineage, Int64Array]:
    """Undo divisions that a daughter does not survive (algorithms.md §4.5, (7)).

    A daughter is *short* when her track ends (fate lost or merged) less than
    `min_frames` frames after it began (``last - first + 1 < min_frames``):
    segmentation flicker that split a cell for a frame or two. Short daughters
    lose their parent. A mother left with fewer than two daughters did not
    divide: her longest-lived remaining daughter (else the short one seen
    last; then the one present in most frames; then the smaller id) becomes
    the rest of the mother's track, and the other daughters lose their parent.

    Returns the new table, ids renumbered ``1..n`` in the old order, and
    ``new_id`` (old id -> new id, ``new_id[0] == 0``) for the look-up tables.
    """
    parent = table.parent.copy()
    size = parent.size
    ids = np.arange(size, dtype=np.int64)
    span = table.last - table.first + 1
    ended = (table.fate == _LOST) | (table.fate == _MERGED)
    short = ended & (span < min_frames)
    short[0] = False
    heir_of = ids.copy()  # heir id -> the mother whose track it continues
    kids = np.flatnonzero(parent > 0)
    kids = kids[np.lexsort((kids, parent[kids]))]
    bounds = np.flatnonzero(np.r_[True, parent[kids][1:] != parent[kids][:-1], True])
    for lo, hi in itertools.pairwise(bounds if kids.size else ()):
        daughters = kids[lo:hi]
        mother = parent[daughters[0]]
        gone = daughters[short[daughters]]
        if gone.size == 0:
            continue
        kept = daughters[~short[daughters]]
        if kept.size >= 2:
            parent[gone] = 0
            continue
        if kept.size:
            heir = kept[0]
        else:
            pick = np.lexsort((gone, -table.present[gone], -table.last[gone]))
            heir = gone[pick[0]]
        parent[daughters] = 0
        heir_of[heir] = mother
    if np.all(heir_of == ids):
        return replace(table, parent=parent), ids
    root = heir_of.copy()
    # An heir's mother can be an heir herself; ids only grow along a chain.
    for x in range(size):
        root[x] = root[root[x]]
    last, present = table.last.copy(), table.present.copy()
    merged_in, fate = table.merged_in.copy(), table.fate.copy()
    # Ascending ids follow each chain in time: the last heir sets the end.
    for x in np.flatnonzero(root != ids).tolist():
        r = root[x]
        last[r], fate[r] = last[x], fate[x]
        present[r] += present[x]
        merged_in[r] += merged_in[x]
    parent = root[parent]
    keep = root == ids
    new_id = np.cumsum(keep).astype(np.int64) - 1
    new_id = new_id[root]
    out = _Lineage(
        parent=new_id[parent[keep]],
        first=table.first[keep],
        last=last[keep],
        present=present[keep],
        merged_in=merged_in[keep],
        fate=fate[keep],
    )
    return out, new_id


def track_masks(
    masks: Iterable[BoolArray],
    *,
    mode: str = "lineage",
    connectivity: int = 4,
    min_iou: float = 0.1,
    max_gap: int = 2,
    gap_min_iou: float = 0.1,
    divisions: bool = True,
    division_min_overlap: float = 0.4,
    division_min_frames: int = 4,
    merge_min_overlap: float = 0.5,
    split_merged_min_frames: int = 2,
) -> TrackingResult:
    """Run tracking pass 1 over a sequence of segmentation frames.

    Parameters
    ----------
    masks : iterable of (Y, X) ndarray of bool
        Segmentation frames in frame order; a (T, Y, X) array works too. The
        iterable is consumed one frame at a time.
    mode, connectivity, min_iou, max_gap, gap_min_iou, divisions, \
division_min_overlap, division_min_frames, merge_min_overlap, \
split_merged_min_frames
        As for :class:`LineageTracker`.

    Returns
    -------
    TrackingResult
        Per-frame look-up tables and lineage records.

    Raises
    ------
    TypeError, ValueError
        As for :class:`LineageTracker` and :meth:`LineageTracker.push`.
    """
    tracker = LineageTracker(
        mode=mode,
        connectivity=connectivity,
        min_iou=min_iou,
        max_gap=max_gap,
        gap_min_iou=gap_min_iou,
        divisions=divisions,
        division_min_overlap=division_min_overlap,
        division_min_frames=division_min_frames,
        merge_min_overlap=merge_min_overlap,
        split_merged_min_frames=split_merged_min_frames,
    )
    for mask in masks:
        tracker.push(mask)
    return tracker.finish()


# --------------------------------------------------------------------------
# Pass 2 and output
# --------------------------------------------------------------------------


def relabel_frame(
    mask: BoolArray,
    lut: IntArray,
    *,
    connectivity: int = 4,
    dtype: npt.DTypeLike,
    cut: IntArray | None = None,
) -> npt.NDArray[np.unsignedinteger[Any]]:
    """Write one frame's track ids (tracking pass 2, algorithms.md §4.6).

    Parameters
    ----------
    mask : (Y, X) ndarray of bool
        The same segmentation frame that pass 1 saw.
    lut : (n + 1,) ndarray of int
        That frame's look-up table from :class:`TrackingResult`.
    connectivity : {4, 8}, optional
        Must equal the connectivity of pass 1.
    dtype : {uint16, uint32}
        Output dtype, normally ``TrackingResult.label_dtype``.
    cut : (k,) ndarray of int, optional
        That frame's ``TrackingResult.cuts`` entry: flat indices cleared
        before labelling, as in pass 1.

    Returns
    -------
    (Y, X) ndarray of `dtype`
        Track id of every pixel, 0 for background.

    Raises
    ------
    TypeError
        If `mask` is not bool or `dtype` is not uint16/uint32.
    ValueError
        If `lut` does not fit the frame (wrong length, so not the same frame
        or connectivity) or holds ids that `dtype` cannot represent.
    """
    out_dtype = np.dtype(dtype)
    if out_dtype not in (np.dtype(np.uint16), np.dtype(np.uint32)):
        raise TypeError(f"dtype must be uint16 or uint32, got {out_dtype!r}")
    if not isinstance(lut, np.ndarray) or lut.ndim != 1:
        raise ValueError(
            f"lut must be a 1-D array, got {getattr(lut, 'shape', type(lut))!r}"
        )
    if not np.issubdtype(lut.dtype, np.integer):
        raise TypeError(f"lut must have an integer dtype, got {lut.dtype!r}")
    if cut is not None and np.size(cut):
        _check_mask(mask)
        mask = mask.copy()
        mask.ravel()[cut] = False
    comp, n = label_components(mask, connectivity=connectivity)
    if lut.size != n + 1:
        raise ValueError(
            f"lut has length {lut.size!r} but the mask has {n!r} components "
            f"(expected {n + 1}); pass the lut of this frame and the "
            "connectivity of pass 1"
        )
    if lut.size and (int(lut.min()) < 0 or int(lut.max()) > np.iinfo(out_dtype).max):
        raise ValueError(
            f"lut holds ids in [{int(lut.min())}, {int(lut.max())}], which "
            f"dtype {out_dtype!r} cannot represent; use TrackingResult.label_dtype"
        )
    out: npt.NDArray[np.unsignedinteger[Any]] = np.zeros(comp.shape, dtype=out_dtype)
    fg = np.flatnonzero(mask)
    out.ravel()[fg] = lut.astype(out_dtype)[comp.ravel()[fg]]
    return out


def lineage_table(result: TrackingResult, *, fov: int) -> pd.DataFrame:
    """Lineage table of one FOV (algorithms.md §4.7).

    Parameters
    ----------
    result : TrackingResult
        Output of pass 1.
    fov : int
        FOV index, written in the ``fov`` column.

    Returns
    -------
    pandas.DataFrame
        Columns ``fov, cell, parent, first_frame, last_frame, n_frames,
        n_gap_frames, n_merged`` (int64) and ``fate`` (str), one row per
        track, sorted by ``cell``. No rows if there are no tracks.

    Raises
    ------
    TypeError, ValueError
        If `fov` is not a non-negative integer.
    """
    fov = _check_int("fov", fov, minimum=0)
    tracks = sorted(result.tracks, key=lambda tr: tr.cell)
    n = len(tracks)
    data: dict[str, Any] = {"fov": np.full(n, fov, dtype=np.int64)}
    for name in LINEAGE_COLUMNS[1:-1]:
        data[name] = np.array([getattr(tr, name) for tr in tracks], dtype=np.int64)
    data["fate"] = [tr.fate for tr in tracks]
    return pd.DataFrame(data, columns=list(LINEAGE_COLUMNS))


def write_lineage_csv(df: pd.DataFrame, fh: IO[str]) -> None:
    r"""Write a lineage table as CSV (algorithms.md §4.7).

    Parameters
    ----------
    df : pandas.DataFrame
        A table from :func:`lineage_table`.
    fh : text file
        Open, writable text handle (open files with ``newline=""`` so that
        the ``\n`` line endings are kept on every platform).

    Raises
    ------
    ValueError
        If the columns are not those of :data:`LINEAGE_COLUMNS` in order, or
        an integer column holds non-integral values.

    Notes
    -----
    One header line, comma-separated, ``\n`` line endings, no index,
    integers as ``%d``. The output depends only on the table.
    """
    if list(df.columns) != list(LINEAGE_COLUMNS):
        raise ValueError(
            f"df must have the columns {list(LINEAGE_COLUMNS)!r} in this order, "
            f"got {list(df.columns)!r}"
        )
    out = pd.DataFrame(
        {name: _as_int64(df[name], name) for name in LINEAGE_COLUMNS[:-1]}
    )
    out["fate"] = df["fate"].astype(str).to_numpy()
    out.to_csv(fh, index=False, lineterminator="\n")


def _as_int64(column: pd.Series[Any], name: str) -> Int64Array:
    values: npt.NDArray[Any] = np.asarray(column.to_numpy())
    if values.dtype.kind in "iu":
        out: Int64Array = values.astype(np.int64)
        return out
    if values.dtype.kind == "b":
        raise ValueError(f"column {name!r} must hold integers, got bool")
    as_float = values.astype(np.float64)
    if not np.all(np.isfinite(as_float)) or np.any(as_float != np.trunc(as_float)):
        raise ValueError(f"column {name!r} must hold integers, got {column.dtype!r}")
    out = as_float.astype(np.int64)
    return out
