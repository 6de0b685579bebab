"""Accuracy of a run against the synthetic generator's ground truth (algorithms.md §8).

:func:`evaluate_run` compares a finished run (its ``processing_results.yaml``
and the files it lists) with the truth written by
:mod:`pyama_steps.synth_io` and returns the §8.1 metrics per FOV and pooled
over every frame and FOV; :func:`format_table` renders them and
:func:`main_evaluate` is the command line (``TRUTH_DIR OUTPUT_DIR``).

Everything streams: each FOV's true and predicted label stacks are read one
frame at a time with :class:`~pyama_steps.io.NpyFrameReader`, one label-pair
contingency count per frame gives every IoU
(:func:`~pyama_steps.tracking.overlap_pairs`), and only per-(cell, frame)
tables are kept (algorithms.md §7.4).

Metric definitions
------------------
Every IoU match is one-to-one per frame, at ``IoU >= iou_threshold`` (0.5):
above 0.5 a match is unique by construction, and the exact ties at 0.5 are
resolved by :func:`~pyama_steps.tracking.assign` (largest total IoU).
Objects are ids: a true object is a truth id present in a frame, a predicted
object a track id present in a frame of ``seg_labeled``.

* ``dice``: ``2|S ∩ G| / (|S| + |G|)`` over all pixels of all frames.
* ``precision``/``recall``/``f1``: matched objects over predicted / true
  objects, counted per frame and pooled.
* ``area_ratio_median`` (``_p10``, ``_p90``): over the matched pairs whose
  true cell does not touch the frame edge, the predicted object's pixel count
  over the true cell's; ``area_ratio_pooled`` the ratio of their sums.
* ``complete_fraction``: of the *eligible* true cells (truth ids whose pixels
  never touch the first/last row or column and that are present in >= 2
  frames of the truth labels), the share whose every present frame is matched
  to one and the same predicted id, that id being matched to no other true
  cell in any frame of the FOV.
* ``id_switches``: per true cell, the number of changes of the matched
  predicted id between consecutive *matched* frames (unmatched frames are
  skipped), summed; ``id_switches_per_100_cells`` divides by the number of
  true cells.
* ``traced_fraction``: the share of true cells whose main predicted id (the
  one matched in most frames; ties: smaller id) has rows in the predicted
  traces CSV, ``good`` or not. Never-matched cells are not traced.
* Trace errors per fluorescence channel ``c``, over the (cell, frame) pairs
  of complete tracks: ``|intensity_total - true_total| / true_total`` and the
  same for the means, median and 90th percentile, and Pearson r of
  ``intensity_total`` against ``true_total``. A pair is *excluded* when
  ``true_total <= min_signal_fraction * P95`` (P95: 95th percentile of
  ``true_total`` over that FOV's complete-track pairs) or ``true_total <= 0``;
  it is *unmeasured* when the prediction has no row or a NaN intensity.
* Divisions: a true division is a truth id that is the ``parent`` of >= 2
  truth ids; a predicted division a run id that is the ``parent`` of >= 2 run
  ids (each id's ``parent`` from the lineage CSV when the manifest lists one,
  else from the traces CSV). A true division is found
  when the predicted id matched to the mother in her last present frame is
  the ``parent`` of every predicted id matched to a daughter in the
  daughter's first present frame (all matched, all distinct). A predicted
  division is true when it is the predicted mother of a found division.
* Background: per channel, ``mean |bg - true_bg|`` over the pixels of every
  frame that is not dropped, and that as a percentage of ``mean(true_bg)``.
  ``bg`` is ``fl_background`` when written, else ``(fl - fl_corrected) / w``
  with ``w = params.background.weight > 0``.
* ``time_max_abs_err_min``: the largest ``|time - times_min[frame]|`` over the
  predicted trace rows.
* ``ctc_det``, ``ctc_tra``, ``ctc_ct``, ``ctc_tf``, ``ctc_bc``, ``ctc_chota``:
  the Cell Tracking Challenge measures DET, TRA, CT, TF, BC(2) and CHOTA,
  computed by py-ctcmetrics (docs/ctc.md) on CTC exports of the run and of
  the truth (:mod:`pyama_steps.ctc`); only with ``ctc=True`` and the library
  installed. ``overall`` holds the mean over FOVs weighted by each FOV's
  number of true cell-frames (for DET this is the value of the pooled
  graphs), except BC, the F1 of the pooled division counts. A FOV without
  true cells has NaN and weight 0; a FOV without predicted cells scores DET,
  TRA, CT and CHOTA 0 (their CTC definitions; the library rejects an empty
  result) and TF NaN.

Ratios with a zero denominator are NaN, never 0 or 1.
"""

from __future__ import annotations

import argparse
import json
import math
import numbers
import re
import sys
import tempfile
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from pyama_steps._typing import LabelArray
from pyama_steps.ctc import write_ctc_result, write_ctc_truth
from pyama_steps.io import NpyFrameReader, atomic_write_text
from pyama_steps.io.paths import MANIFEST, parse_fov_list
from pyama_steps.tracking import assign, overlap_pairs

__all__ = [
    "CTC_BC_TOLERANCE",
    "CTC_INSTALL_HINT",
    "Evaluation",
    "evaluate_run",
    "format_table",
    "main_evaluate",
]

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]

TRUTH_JSON: Final = "truth.json"

#: Largest ``(n_true + 1) * (n_pred + 1)`` for which the int64 pair key of
#: ``overlap_pairs`` cannot overflow; sparse huge ids are compacted first.
_MAX_PAIR_KEY: Final = 2**62

_TRACK_COLUMNS: Final = (
    "cell",
    "n_frames",
    "first_frame",
    "last_frame",
    "pred_first",
    "pred_last",
    "pred_main",
    "n_matched",
    "switches",
    "edge",
    "eligible",
    "complete",
)

_TRUE_TOTAL_RE: Final = re.compile(r"true_total_ch_(\d+)")


# --------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------


def _check_label_frame(labels: object, name: str) -> LabelArray:
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(labels).__name__!r}")
    if labels.ndim != 2:
        raise ValueError(f"{name} must be a (Y, X) array, got shape {labels.shape!r}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"{name} must have an integer dtype, got {labels.dtype!r}")
    if labels.size and np.issubdtype(labels.dtype, np.signedinteger):
        lo = int(labels.min())
        if lo < 0:
            raise ValueError(
                f"{name} must hold non-negative labels (0 = background), got {lo}"
            )
    return labels


def _check_fraction(name: str, value: object, *, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    out = float(value)
    lo_ok = out >= 0.0 if allow_zero else out > 0.0
    if not (lo_ok and out <= 1.0):
        valid = "[0, 1]" if allow_zero else "(0, 1]"
        raise ValueError(f"{name} must lie in {valid}, got {value!r}")
    return out


# --------------------------------------------------------------------------
# Per-frame matching
# --------------------------------------------------------------------------


def _compact(labels: LabelArray) -> tuple[Int64Array, Int64Array]:
    """Relabel to ``0..n`` keeping 0 as background; also return the old ids."""
    ids, inverse = np.unique(labels, return_inverse=True)
    compact = inverse.reshape(labels.shape).astype(np.int64)
    if ids.size == 0 or ids[0] != 0:
        ids = np.concatenate((np.zeros(1, dtype=ids.dtype), ids))
        compact += 1
    return compact, ids.astype(np.int64)


def _match_frame(
    true_labels: LabelArray, pred_labels: LabelArray, *, threshold: float = 0.5
) -> tuple[Int64Array, Int64Array, Float64Array]:
    """Match the true and predicted objects of one frame one-to-one by mask IoU.

    Parameters
    ----------
    true_labels : (Y, X) ndarray of int
        Truth ids, 0 for background.
    pred_labels : (Y, X) ndarray of int
        Predicted ids, 0 for background.
    threshold : float, optional
        Smallest IoU of a match, in (0, 1].

    Returns
    -------
    true_ids : (M,) ndarray of int64
        Matched truth ids, ascending.
    pred_ids : (M,) ndarray of int64
        The predicted id matched to each.
    iou : (M,) ndarray of float64
        IoU of each match.

    Raises
    ------
    TypeError
        If a label frame is not an integer array.
    ValueError
        If the shapes differ, a frame is not 2-D or holds negative labels, or
        `threshold` is outside (0, 1].

    Notes
    -----
    One label-pair count (:func:`~pyama_steps.tracking.overlap_pairs`) gives
    every overlapping pair; :func:`~pyama_steps.tracking.assign` keeps a
    one-to-one subset with ``IoU >= threshold`` of largest total IoU. Above
    0.5 each object has at most one candidate; the assignment only settles
    exact ties at 0.5 (for example a 2-px cell and two 1-px predictions).
    """
    g = _check_label_frame(true_labels, "true_labels")
    p = _check_label_frame(pred_labels, "pred_labels")
    if g.shape != p.shape:
        raise ValueError(
            f"true_labels and pred_labels must have the same shape, got "
            f"{g.shape!r} and {p.shape!r}"
        )
    threshold = _check_fraction("threshold", threshold, allow_zero=False)
    n_g = int(g.max()) if g.size else 0
    n_p = int(p.max()) if p.size else 0
    g_ids: Int64Array | None = None
    p_ids: Int64Array | None = None
    if (n_g + 1) * (n_p + 1) > _MAX_PAIR_KEY:
        # Sparse uint32 ids near 2**32 would overflow the int64 pair key.
        g, g_ids = _compact(g)
        p, p_ids = _compact(p)
        n_g, n_p = g_ids.size - 1, p_ids.size - 1
    rows, cols, _, iou = overlap_pairs(g, n_g, p, n_p)
    mg, mp = assign(rows, cols, iou, threshold=threshold)
    width = np.int64(n_p + 1)
    # overlap_pairs returns its pairs sorted by (row, col), so the keys are
    # ascending and each link is found by binary search.
    at = np.searchsorted(rows * width + cols, mg * width + mp)
    m_iou: Float64Array = iou[at].astype(np.float64)
    if g_ids is not None and p_ids is not None:
        mg, mp = g_ids[mg], p_ids[mp]
    return mg.astype(np.int64), mp.astype(np.int64), m_iou


@dataclass(frozen=True)
class _FrameStats:
    """What the evaluation keeps of one frame.

    Attributes
    ----------
    true_px, pred_px, both_px : int
        Foreground pixels of the truth, of the prediction, and of both.
    true_ids : (n,) ndarray of int64
        Truth ids present, ascending.
    matched : (n,) ndarray of int64
        Predicted id matched to each of `true_ids`, 0 where unmatched.
    n_pred : int
        Predicted ids present.
    edge_ids : (k,) ndarray of int64
        Truth ids with a pixel in the first/last row or column.
    area_true, area_pred : (m,) ndarray of int64
        Pixel counts of the matched pairs whose true cell does not touch the
        frame edge: the true cell's and its matched prediction's.
    """

    true_px: int
    pred_px: int
    both_px: int
    true_ids: Int64Array
    matched: Int64Array
    n_pred: int
    edge_ids: Int64Array
    area_true: Int64Array
    area_pred: Int64Array


def _frame_stats(
    true_labels: LabelArray, pred_labels: LabelArray, *, threshold: float = 0.5
) -> _FrameStats:
    """Pixel counts, present ids, matches and edge ids of one frame."""
    mg, mp, _ = _match_frame(true_labels, pred_labels, threshold=threshold)
    fg_g = true_labels != 0
    fg_p = pred_labels != 0
    true_ids, true_area = np.unique(true_labels[fg_g], return_counts=True)
    true_ids = true_ids.astype(np.int64)
    pred_ids, pred_area = np.unique(pred_labels[fg_p], return_counts=True)
    n_pred = int(pred_ids.size)
    matched = np.zeros(true_ids.size, dtype=np.int64)
    matched[np.searchsorted(true_ids, mg)] = mp
    if true_labels.size:
        border = np.concatenate(
            (true_labels[0], true_labels[-1], true_labels[:, 0], true_labels[:, -1])
        )
        edge_ids = np.unique(border[border != 0]).astype(np.int64)
    else:  # a 0-px frame has no edge and no cells
        edge_ids = np.zeros(0, dtype=np.int64)
    inner = ~np.isin(mg, edge_ids)
    area_true = true_area[np.searchsorted(true_ids, mg[inner])].astype(np.int64)
    area_pred = pred_area[np.searchsorted(pred_ids, mp[inner])].astype(np.int64)
    return _FrameStats(
        true_px=int(np.count_nonzero(fg_g)),
        pred_px=int(np.count_nonzero(fg_p)),
        both_px=int(np.count_nonzero(fg_g & fg_p)),
        true_ids=true_ids,
        matched=matched,
        n_pred=n_pred,
        edge_ids=edge_ids,
        area_true=area_true,
        area_pred=area_pred,
    )


# --------------------------------------------------------------------------
# Per-cell tables: complete tracks, switches, traced cells, divisions
# --------------------------------------------------------------------------


def _empty_track_table() -> pd.DataFrame:
    data: dict[str, Any] = {
        name: np.zeros(0, dtype=np.int64) for name in _TRACK_COLUMNS
    }
    for name in ("edge", "eligible", "complete"):
        data[name] = np.zeros(0, dtype=bool)
    return pd.DataFrame(data)


def _track_table(
    frames: npt.ArrayLike,
    true_ids: npt.ArrayLike,
    pred_ids: npt.ArrayLike,
    *,
    edge_ids: npt.ArrayLike,
) -> pd.DataFrame:
    """Per true cell: lifetime, matched ids, switches and completeness.

    Parameters
    ----------
    frames : (N,) array_like of int
        Frame of each (cell, frame) observation.
    true_ids : (N,) array_like of int
        Truth id of each observation; each (id, frame) at most once.
    pred_ids : (N,) array_like of int
        Predicted id matched to the observation, 0 where unmatched.
    edge_ids : (K,) array_like of int
        Truth ids that touch the frame edge in at least one frame.

    Returns
    -------
    pandas.DataFrame
        One row per truth id, ascending, with columns ``cell``, ``n_frames``
        (frames present), ``first_frame``, ``last_frame`` (first/last present
        frame), ``pred_first``, ``pred_last`` (id matched there, 0 if none),
        ``pred_main`` (id matched in most frames; ties: smaller; 0 if never
        matched), ``n_matched``, ``switches``, ``edge``, ``eligible`` and
        ``complete`` (algorithms.md §8.1).

    Raises
    ------
    ValueError
        If the arrays are not 1-D of one length, or an (id, frame) pair
        repeats.
    """
    t = np.asarray(frames, dtype=np.int64)
    g = np.asarray(true_ids, dtype=np.int64)
    p = np.asarray(pred_ids, dtype=np.int64)
    if not (t.ndim == g.ndim == p.ndim == 1 and t.shape == g.shape == p.shape):
        raise ValueError(
            "frames, true_ids and pred_ids must be 1-D of one length, got shapes "
            f"{t.shape!r}, {g.shape!r} and {p.shape!r}"
        )
    if g.size == 0:
        return _empty_track_table()
    order = np.lexsort((t, g))
    t, g, p = t[order], g[order], p[order]
    if np.any((g[1:] == g[:-1]) & (t[1:] == t[:-1])):
        raise ValueError("true_ids must list each (id, frame) pair at most once")
    cells, start, counts = np.unique(g, return_index=True, return_counts=True)
    n = cells.size
    end = start + counts - 1
    cell_of = np.repeat(np.arange(n), counts)
    matched = p > 0
    n_matched = np.bincount(cell_of[matched], minlength=n).astype(np.int64)
    p_min = np.minimum.reduceat(p, start)
    p_max = np.maximum.reduceat(p, start)

    # How many true cells each predicted id is matched to, over the FOV.
    pm, gm, cm = p[matched], g[matched], cell_of[matched]
    pair_p = np.unique(np.stack((pm, gm)), axis=1)[0] if pm.size else pm
    partner_ids, partners = np.unique(pair_p, return_counts=True)
    exclusive = np.zeros(n, dtype=bool)
    has_id = p_min > 0
    at = np.searchsorted(partner_ids, p_min[has_id])
    exclusive[has_id] = partners[at] == 1

    # Changes of the matched id between consecutive matched frames of a cell.
    change = (cm[1:] == cm[:-1]) & (pm[1:] != pm[:-1])
    switches = np.bincount(cm[1:][change], minlength=n).astype(np.int64)

    # Main predicted id: most matched frames, ties to the smaller id.
    pred_main = np.zeros(n, dtype=np.int64)
    if pm.size:
        uniq, votes = np.unique(np.stack((cm, pm)), axis=1, return_counts=True)
        by = np.lexsort((uniq[1], -votes, uniq[0]))
        uc, up = uniq[0][by], uniq[1][by]
        first = np.r_[True, uc[1:] != uc[:-1]]
        pred_main[uc[first]] = up[first]

    edge = np.isin(cells, np.asarray(edge_ids, dtype=np.int64))
    eligible = ~edge & (counts >= 2)
    complete = eligible & (n_matched == counts) & (p_min == p_max) & exclusive
    return pd.DataFrame(
        {
            "cell": cells.astype(np.int64),
            "n_frames": counts.astype(np.int64),
            "first_frame": t[start],
            "last_frame": t[end],
            "pred_first": p[start],
            "pred_last": p[end],
            "pred_main": pred_main,
            "n_matched": n_matched,
            "switches": switches,
            "edge": edge,
            "eligible": eligible,
            "complete": complete,
        }
    )


def _children(cells: Iterable[int], parents: Iterable[int]) -> dict[int, list[int]]:
    """Mother id -> her children ids (ascending), for parents > 0."""
    out: dict[int, list[int]] = {}
    for cell, parent in sorted(zip(cells, parents, strict=True)):
        if parent > 0:
            out.setdefault(int(parent), []).append(int(cell))
    return out


@dataclass(frozen=True)
class _DivisionCounts:
    n_true: int
    n_pred: int
    n_found: int
    n_pred_true: int


def _division_counts(
    true_cells: npt.ArrayLike,
    true_parents: npt.ArrayLike,
    pred_cells: npt.ArrayLike,
    pred_parents: npt.ArrayLike,
    tracks: pd.DataFrame,
) -> _DivisionCounts:
    """Count true, predicted, found and correctly predicted divisions.

    Parameters
    ----------
    true_cells, true_parents : (N,) array_like of int
        The truth lineage (``parent`` 0 = none).
    pred_cells, pred_parents : (M,) array_like of int
        The run's lineage, one row per id.
    tracks : pandas.DataFrame
        :func:`_track_table` of the FOV (``pred_first``, ``pred_last``).

    Returns
    -------
    _DivisionCounts
        ``n_true`` truth ids with >= 2 children, ``n_pred`` run ids with >= 2
        children, ``n_found`` true divisions whose predicted mother (matched
        to the mother in her last present frame) is the ``parent`` of every
        predicted daughter (matched to each daughter in her first present
        frame; all matched and distinct), ``n_pred_true`` distinct predicted
        mothers of found divisions.
    """
    t_cells = np.asarray(true_cells, dtype=np.int64).tolist()
    t_par = np.asarray(true_parents, dtype=np.int64).tolist()
    p_cells = np.asarray(pred_cells, dtype=np.int64).tolist()
    p_par = np.asarray(pred_parents, dtype=np.int64).tolist()
    true_div = {m: k for m, k in _children(t_cells, t_par).items() if len(k) >= 2}
    pred_div = {m: k for m, k in _children(p_cells, p_par).items() if len(k) >= 2}
    parent_of = dict(zip(p_cells, p_par, strict=True))
    ids = tracks["cell"].to_numpy().tolist()
    last = dict(zip(ids, tracks["pred_last"].to_numpy().tolist(), strict=True))
    first = dict(zip(ids, tracks["pred_first"].to_numpy().tolist(), strict=True))
    found = 0
    right: set[int] = set()
    for mother, daughters in sorted(true_div.items()):
        pm = int(last.get(mother, 0))
        pds = [int(first.get(d, 0)) for d in daughters]
        if (
            pm > 0
            and all(pd > 0 for pd in pds)
            and len(set(pds)) == len(pds)
            and all(parent_of.get(pd, 0) == pm for pd in pds)
        ):
            found += 1
            right.add(pm)
    return _DivisionCounts(
        n_true=len(true_div),
        n_pred=len(pred_div),
        n_found=found,
        n_pred_true=len(right & set(pred_div)),
    )


# --------------------------------------------------------------------------
# Trace errors
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _TracePairs:
    """The usable (cell, frame) pairs of one channel, and what was left out.

    Attributes
    ----------
    pred_total, true_total : (n,) ndarray of float64
        Predicted and true totals of the used pairs.
    rel_total, rel_mean : (n,) ndarray of float64
        Relative errors of the totals and of the means.
    excluded : int
        Pairs left out for a true signal at or below the floor.
    unmeasured : int
        Pairs without a predicted (or true) value, or with NaN.
    """

    pred_total: Float64Array
    true_total: Float64Array
    rel_total: Float64Array
    rel_mean: Float64Array
    excluded: int
    unmeasured: int


def _no_pairs() -> _TracePairs:
    z = np.zeros(0, dtype=np.float64)
    return _TracePairs(z, z.copy(), z.copy(), z.copy(), 0, 0)


def _trace_pairs(
    pred_total: npt.ArrayLike,
    true_total: npt.ArrayLike,
    pred_mean: npt.ArrayLike,
    true_mean: npt.ArrayLike,
    *,
    min_signal_fraction: float = 0.05,
) -> _TracePairs:
    """Relative errors of one FOV's complete-track pairs, tiny signals left out.

    Parameters
    ----------
    pred_total, true_total, pred_mean, true_mean : (N,) array_like of float
        Predicted and true total and mean of each pair; NaN where missing.
    min_signal_fraction : float, optional
        Pairs with ``true_total <= min_signal_fraction * P95`` are excluded,
        where P95 is the 95th percentile (linear) of the known ``true_total``
        values; pairs with ``true_total <= 0`` are always excluded.

    Returns
    -------
    _TracePairs
        The used pairs and the excluded / unmeasured counts.
    """
    pt, tt, pmn, tmn = (
        np.asarray(a, dtype=np.float64)
        for a in (pred_total, true_total, pred_mean, true_mean)
    )
    if not (pt.shape == tt.shape == pmn.shape == tmn.shape and pt.ndim == 1):
        raise ValueError(
            "pred_total, true_total, pred_mean and true_mean must be 1-D of one "
            f"length, got shapes {pt.shape!r}, {tt.shape!r}, {pmn.shape!r} and "
            f"{tmn.shape!r}"
        )
    known = np.isfinite(tt) & np.isfinite(tmn)
    floor = (
        min_signal_fraction * float(np.percentile(tt[known], 95))
        if known.any()
        else 0.0
    )
    tiny = known & ((tt <= floor) | (tt <= 0.0) | (tmn <= 0.0))
    used = known & ~tiny & np.isfinite(pt) & np.isfinite(pmn)
    return _TracePairs(
        pred_total=pt[used],
        true_total=tt[used],
        rel_total=np.abs(pt[used] - tt[used]) / tt[used],
        rel_mean=np.abs(pmn[used] - tmn[used]) / tmn[used],
        excluded=int(np.count_nonzero(tiny)),
        unmeasured=int(np.count_nonzero(~used & ~tiny)),
    )


def _pearson(a: Float64Array, b: Float64Array) -> float:
    """Pearson r, NaN with fewer than two pairs or a constant side."""
    if a.size < 2:
        return math.nan
    da = a - a.mean()
    db = b - b.mean()
    den = math.sqrt(float(np.dot(da, da)) * float(np.dot(db, db)))
    if den == 0.0:
        return math.nan
    # Rounding can push a perfect correlation a hair past 1.
    return float(min(1.0, max(-1.0, float(np.dot(da, db)) / den)))


def _quantile(values: Float64Array, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else math.nan


# --------------------------------------------------------------------------
# Tallies: raw counts per FOV, pooled by summing
# --------------------------------------------------------------------------


@dataclass
class _Background:
    abs_sum: float = 0.0
    true_sum: float = 0.0
    n_px: int = 0


@dataclass
class _Tally:
    """Everything a metric is computed from; FOVs pool by summing."""

    n_frames: int = 0
    true_px: int = 0
    pred_px: int = 0
    both_px: int = 0
    true_objects: int = 0
    pred_objects: int = 0
    matched_objects: int = 0
    true_cells: int = 0
    eligible_tracks: int = 0
    complete_tracks: int = 0
    id_switches: int = 0
    traced_cells: int = 0
    true_divisions: int = 0
    pred_divisions: int = 0
    divisions_found: int = 0
    pred_divisions_true: int = 0
    trace_rows: int = 0
    time_err: float = math.nan
    area_ratios: Float64Array = field(default_factory=lambda: np.zeros(0))
    area_true_px: int = 0
    area_pred_px: int = 0
    traces: dict[int, _TracePairs] = field(default_factory=dict)
    background: dict[int, _Background] = field(default_factory=dict)


_SUMMED: Final = (
    "n_frames",
    "true_px",
    "pred_px",
    "both_px",
    "true_objects",
    "pred_objects",
    "matched_objects",
    "true_cells",
    "eligible_tracks",
    "complete_tracks",
    "id_switches",
    "traced_cells",
    "true_divisions",
    "pred_divisions",
    "divisions_found",
    "pred_divisions_true",
    "trace_rows",
    "area_true_px",
    "area_pred_px",
)


def _pool(tallies: Sequence[_Tally]) -> _Tally:
    out = _Tally()
    for name in _SUMMED:
        setattr(out, name, sum(getattr(t, name) for t in tallies))
    errs = [t.time_err for t in tallies if not math.isnan(t.time_err)]
    out.time_err = max(errs) if errs else math.nan
    out.area_ratios = np.concatenate([np.zeros(0), *(t.area_ratios for t in tallies)])
    channels = sorted({c for t in tallies for c in t.traces})
    for c in channels:
        parts = [t.traces[c] for t in tallies if c in t.traces]
        out.traces[c] = _TracePairs(
            pred_total=np.concatenate([p.pred_total for p in parts]),
            true_total=np.concatenate([p.true_total for p in parts]),
            rel_total=np.concatenate([p.rel_total for p in parts]),
            rel_mean=np.concatenate([p.rel_mean for p in parts]),
            excluded=sum(p.excluded for p in parts),
            unmeasured=sum(p.unmeasured for p in parts),
        )
    for c in sorted({c for t in tallies for c in t.background}):
        bgs = [t.background[c] for t in tallies if c in t.background]
        out.background[c] = _Background(
            abs_sum=sum(b.abs_sum for b in bgs),
            true_sum=sum(b.true_sum for b in bgs),
            n_px=sum(b.n_px for b in bgs),
        )
    return out


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else math.nan


def _f1(precision: float, recall: float) -> float:
    if math.isnan(precision) or math.isnan(recall):
        return math.nan
    if precision + recall == 0.0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def _metrics(
    tally: _Tally, fl_channels: Sequence[int], bg_channels: Sequence[int]
) -> dict[str, float]:
    """Compute the metric dictionary of one tally, in a fixed key order."""
    t = tally
    m: dict[str, float] = {"n_frames": t.n_frames}
    m["dice"] = _ratio(2 * t.both_px, t.true_px + t.pred_px)
    m["n_true_objects"] = t.true_objects
    m["n_pred_objects"] = t.pred_objects
    m["n_matched_objects"] = t.matched_objects
    m["precision"] = _ratio(t.matched_objects, t.pred_objects)
    m["recall"] = _ratio(t.matched_objects, t.true_objects)
    m["f1"] = _ratio(2 * t.matched_objects, t.true_objects + t.pred_objects)
    m["area_ratio_median"] = _quantile(t.area_ratios, 50)
    m["area_ratio_p10"] = _quantile(t.area_ratios, 10)
    m["area_ratio_p90"] = _quantile(t.area_ratios, 90)
    m["area_ratio_pooled"] = _ratio(t.area_pred_px, t.area_true_px)
    m["n_true_cells"] = t.true_cells
    m["n_eligible_tracks"] = t.eligible_tracks
    m["n_complete_tracks"] = t.complete_tracks
    m["complete_fraction"] = _ratio(t.complete_tracks, t.eligible_tracks)
    m["id_switches"] = t.id_switches
    m["id_switches_per_100_cells"] = _ratio(100 * t.id_switches, t.true_cells)
    m["n_traced_cells"] = t.traced_cells
    m["traced_fraction"] = _ratio(t.traced_cells, t.true_cells)
    m["n_true_divisions"] = t.true_divisions
    m["n_pred_divisions"] = t.pred_divisions
    m["n_divisions_found"] = t.divisions_found
    m["n_pred_divisions_true"] = t.pred_divisions_true
    recall = _ratio(t.divisions_found, t.true_divisions)
    precision = _ratio(t.pred_divisions_true, t.pred_divisions)
    m["division_recall"] = recall
    m["division_precision"] = precision
    m["division_f1"] = _f1(precision, recall)
    for c in fl_channels:
        pairs = t.traces.get(c, _no_pairs())
        m[f"trace_total_rel_err_median_ch_{c}"] = _quantile(pairs.rel_total, 50)
        m[f"trace_total_rel_err_p90_ch_{c}"] = _quantile(pairs.rel_total, 90)
        m[f"trace_mean_rel_err_median_ch_{c}"] = _quantile(pairs.rel_mean, 50)
        m[f"trace_mean_rel_err_p90_ch_{c}"] = _quantile(pairs.rel_mean, 90)
        m[f"trace_pearson_r_ch_{c}"] = _pearson(pairs.pred_total, pairs.true_total)
        m[f"trace_pairs_used_ch_{c}"] = int(pairs.rel_total.size)
        m[f"trace_pairs_excluded_ch_{c}"] = pairs.excluded
        m[f"trace_pairs_unmeasured_ch_{c}"] = pairs.unmeasured
    for c in bg_channels:
        bg = t.background.get(c, _Background())
        m[f"background_mae_ch_{c}"] = _ratio(bg.abs_sum, bg.n_px)
        m[f"background_error_pct_ch_{c}"] = _ratio(100.0 * bg.abs_sum, bg.true_sum)
    m["n_trace_rows"] = t.trace_rows
    m["time_max_abs_err_min"] = t.time_err
    return m


# --------------------------------------------------------------------------
# Files: truth, manifest, CSVs
# --------------------------------------------------------------------------


def _load_truth(
    truth_dir: Path,
) -> tuple[dict[int, dict[str, Any]], list[int] | None]:
    """Per-FOV entries of ``truth.json`` and its ``fl_channels`` (if listed)."""
    path = truth_dir / TRUTH_JSON
    if not path.is_file():
        raise FileNotFoundError(
            f"no {TRUTH_JSON} in {str(truth_dir)!r}: TRUTH_DIR must be the "
            "'<name>_truth' directory written by 'pyama-steps generate'."
        )
    try:
        truth = json.loads(path.read_text(encoding="utf-8"))
        fovs = {int(e["fov"]): dict(e) for e in truth["fovs"]}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise ValueError(
            f"{str(path)!r} is not a generator truth file (expected a 'fovs' list of "
            f"{{'fov', 'shape', 'times_min', ...}} entries): {type(e).__name__}: {e}"
        ) from e
    for f, entry in fovs.items():
        if "shape" not in entry or "times_min" not in entry:
            raise ValueError(
                f"{str(path)!r}: FOV {f} lacks 'shape' or 'times_min'; regenerate the "
                "truth with 'pyama-steps generate'."
            )
    listed = truth.get("fl_channels")
    channels = None if listed is None else sorted(int(c) for c in listed)
    return fovs, channels


def _load_manifest(out_dir: Path) -> dict[str, Any]:
    import yaml

    path = out_dir / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"no {MANIFEST} in {str(out_dir)!r}: OUTPUT_DIR must be the output_dir of "
            "a finished run (run snakemake until the aggregate step has written it)."
        )
    manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(manifest, dict) or not isinstance(manifest.get("results"), dict):
        raise ValueError(
            f"{str(path)!r} has no 'results' mapping; it is not a pyama-steps "
            "manifest (algorithms.md §6.2). Rerun the aggregate step."
        )
    return manifest


def _resolve(out_dir: Path, rel: str, what: str) -> Path:
    path = Path(rel)
    path = path if path.is_absolute() else out_dir / path
    if not path.is_file():
        raise FileNotFoundError(
            f"{what} {str(path)!r} is listed in {MANIFEST} but missing; rerun the "
            "workflow so that it is written again."
        )
    return path


def _channel_paths(out_dir: Path, items: Any, what: str) -> dict[int, Path]:
    out: dict[int, Path] = {}
    for item in items or []:
        c, rel = item
        out[int(c)] = _resolve(out_dir, str(rel), f"{what} of channel {c}")
    return out


@dataclass(frozen=True)
class _RunFov:
    labels: Path
    traces: Path
    lineage: Path | None
    fl: dict[int, Path]
    corrected: dict[int, Path]
    background: dict[int, Path]
    model: dict[int, Path]
    background_params: Mapping[str, Any]


def _run_fov(manifest: Mapping[str, Any], out_dir: Path, fov: int) -> _RunFov:
    results = manifest["results"]
    key = str(fov)
    if key not in results:
        listed = ", ".join(sorted(results, key=lambda k: int(k))) or "none"
        raise ValueError(
            f"FOV {fov} is in the truth but not in the run ({MANIFEST} lists FOVs: "
            f"{listed}); process it (config key 'fovs') or evaluate only the run's "
            "FOVs with fovs=[...] / --fovs."
        )
    entry = results[key]
    status = (manifest.get("fov_status") or {}).get(key, {}).get("status", "unknown")
    for name in ("seg_labeled", "traces"):
        if not entry.get(name):
            raise ValueError(
                f"FOV {fov} has no {name!r} in {MANIFEST} (status {status!r}); rerun "
                "the workflow until the FOV is ok, or leave it out with fovs=[...]."
            )
    return _RunFov(
        labels=_resolve(out_dir, str(entry["seg_labeled"][1]), "seg_labeled"),
        traces=_resolve(out_dir, str(entry["traces"]), "traces CSV"),
        lineage=(
            _resolve(out_dir, str(entry["lineage"]), "lineage CSV")
            if entry.get("lineage")
            else None
        ),
        fl=_channel_paths(out_dir, entry.get("fl"), "fl"),
        corrected=_channel_paths(out_dir, entry.get("fl_corrected"), "fl_corrected"),
        background=_channel_paths(out_dir, entry.get("fl_background"), "fl_background"),
        model=_channel_paths(
            out_dir, entry.get("fl_background_model"), "fl_background_model"
        ),
        background_params=(manifest.get("params") or {}).get("background") or {},
    )


def _read_csv(path: Path, required: Sequence[str], what: str) -> pd.DataFrame:
    header = pd.read_csv(path, nrows=0).columns.tolist()
    missing = [c for c in required if c not in header]
    if missing:
        raise ValueError(
            f"{what} {str(path)!r} lacks the column(s) {missing!r} (has "
            f"{header!r}); regenerate it with this version of pyama-steps."
        )
    df = pd.read_csv(path, usecols=list(required))
    for col in ("cell", "parent", "frame"):
        if col in df.columns:
            df[col] = df[col].astype(np.int64)
    return df


def _check_shape(reader: NpyFrameReader, shape: tuple[int, ...], ref: str) -> None:
    if reader.shape != shape:
        raise ValueError(
            f"{str(reader.path)!r} has shape {reader.shape!r} but {ref} has "
            f"{shape!r}; the run was made from another input than the truth, or "
            "with other frames. Evaluate the run of the generated image file."
        )


# --------------------------------------------------------------------------
# One FOV
# --------------------------------------------------------------------------


def _label_pass(
    truth_labels: Path,
    pred_labels: Path,
    shape: tuple[int, int, int],
    tally: _Tally,
    *,
    threshold: float,
) -> tuple[Int64Array, Int64Array, Int64Array, Int64Array]:
    """Stream both label stacks; return (frame, true id, matched id) and edge ids."""
    frames: list[Int64Array] = []
    ids: list[Int64Array] = []
    matched: list[Int64Array] = []
    edges: list[Int64Array] = []
    ratios: list[Float64Array] = [tally.area_ratios]
    with NpyFrameReader(truth_labels) as gt, NpyFrameReader(pred_labels) as pr:
        _check_shape(gt, shape, f"{TRUTH_JSON} of its FOV")
        _check_shape(pr, gt.shape, repr(str(truth_labels)))
        for t in range(shape[0]):
            fs = _frame_stats(gt.read(t), pr.read(t), threshold=threshold)
            tally.n_frames += 1
            tally.true_px += fs.true_px
            tally.pred_px += fs.pred_px
            tally.both_px += fs.both_px
            tally.true_objects += int(fs.true_ids.size)
            tally.pred_objects += fs.n_pred
            tally.matched_objects += int(np.count_nonzero(fs.matched))
            frames.append(np.full(fs.true_ids.size, t, dtype=np.int64))
            ids.append(fs.true_ids)
            matched.append(fs.matched)
            edges.append(fs.edge_ids)
            tally.area_true_px += int(fs.area_true.sum())
            tally.area_pred_px += int(fs.area_pred.sum())
            ratios.append(fs.area_pred / fs.area_true)
    tally.area_ratios = np.concatenate(ratios)

    def cat(parts: list[Int64Array]) -> Int64Array:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    return cat(frames), cat(ids), cat(matched), np.unique(cat(edges))


def _background_pass(
    c: int,
    truth_bg: Path,
    run: _RunFov,
    shape: tuple[int, int, int],
    dropped: set[int],
    weight: float,
) -> _Background | None:
    """Sum ``|bg - true_bg|`` and ``true_bg`` over the frames that are not dropped."""
    if c in run.fl and c in run.model and run.background_params:
        return _background_model_pass(c, truth_bg, run, shape, dropped)
    if c in run.background:
        paths = [run.background[c]]
    elif c in run.fl and c in run.corrected and weight > 0.0:
        paths = [run.fl[c], run.corrected[c]]
    else:
        return None
    out = _Background()
    readers = [NpyFrameReader(truth_bg), *(NpyFrameReader(p) for p in paths)]
    try:
        for r in readers:
            _check_shape(r, shape, f"{TRUTH_JSON} of its FOV")
        for t in range(shape[0]):
            if t in dropped:  # the truth background is 0 there: nothing imaged
                continue
            true_bg = readers[0].read(t).astype(np.float64)
            if len(readers) == 2:
                bg = readers[1].read(t).astype(np.float64)
            else:
                raw = readers[1].read(t).astype(np.float64)
                corr = readers[2].read(t).astype(np.float64)
                bg = (raw - corr) / weight
            out.abs_sum += float(np.abs(bg - true_bg).sum())
            out.true_sum += float(true_bg.sum())
            out.n_px += int(true_bg.size)
    finally:
        for r in readers:
            r.close()
    return out


def _background_model_pass(
    c: int,
    truth_bg: Path,
    run: _RunFov,
    shape: tuple[int, int, int],
    dropped: set[int],
) -> _Background:
    """``_background_pass`` on the surfaces of the background model (§3.6)."""
    from pyama_steps.background import CorrectedReader

    out = _Background()
    with (
        NpyFrameReader(truth_bg) as truth,
        CorrectedReader(
            fl=run.fl[c], model=run.model[c], params=run.background_params
        ) as pred,
    ):
        _check_shape(truth, shape, f"{TRUTH_JSON} of its FOV")
        _check_shape(pred.raw_reader, shape, f"{TRUTH_JSON} of its FOV")
        for t in range(shape[0]):
            if t in dropped:  # the truth background is 0 there: nothing imaged
                continue
            true_bg = truth.read(t).astype(np.float64)
            bg = pred.background(t).astype(np.float64)
            out.abs_sum += float(np.abs(bg - true_bg).sum())
            out.true_sum += float(true_bg.sum())
            out.n_px += int(true_bg.size)
    return out


def _pred_parents(
    traces: pd.DataFrame, lineage: pd.DataFrame | None
) -> tuple[Int64Array, Int64Array]:
    """One ``(cell, parent)`` per run id: the lineage CSV, else the traces CSV."""
    parts = []
    if "parent" in traces.columns:
        parts.append(traces[["cell", "parent"]])
    if lineage is not None:
        parts.append(lineage[["cell", "parent"]])
    if not parts:
        z = np.zeros(0, dtype=np.int64)
        return z, z.copy()
    table = pd.concat(parts, ignore_index=True)
    table = table.drop_duplicates(subset="cell", keep="last").sort_values("cell")
    return (
        table["cell"].to_numpy(dtype=np.int64),
        table["parent"].to_numpy(dtype=np.int64),
    )


def _evaluate_fov(
    fov: int,
    info: Mapping[str, Any],
    truth_fov: Path,
    run: _RunFov,
    fl_channels: Sequence[int],
    weight: float,
    *,
    iou_threshold: float,
    min_signal_fraction: float,
) -> _Tally:
    shape_list = [int(v) for v in info["shape"]]
    if len(shape_list) != 3:
        raise ValueError(
            f"{TRUTH_JSON}: FOV {fov} has shape {shape_list!r}; expected [T, Y, X]."
        )
    shape = (shape_list[0], shape_list[1], shape_list[2])
    tally = _Tally()
    frames, true_ids, matched, edge_ids = _label_pass(
        truth_fov / "labels.npy", run.labels, shape, tally, threshold=iou_threshold
    )
    tracks = _track_table(frames, true_ids, matched, edge_ids=edge_ids)
    tally.true_cells = len(tracks)
    tally.eligible_tracks = int(tracks["eligible"].sum())
    tally.complete_tracks = int(tracks["complete"].sum())
    tally.id_switches = int(tracks["switches"].sum())

    fl_cols = [
        f"{kind}_ch_{c}"
        for c in fl_channels
        for kind in ("intensity_total", "intensity_mean")
    ]
    header = pd.read_csv(run.traces, nrows=0).columns.tolist()
    base = ["cell", "frame", "time"] + (["parent"] if "parent" in header else [])
    pred = _read_csv(run.traces, base + fl_cols, "traces CSV")
    lineage = (
        _read_csv(run.lineage, ["cell", "parent"], "lineage CSV")
        if run.lineage is not None
        else None
    )
    true_cols = [
        f"{kind}_ch_{c}" for c in fl_channels for kind in ("true_total", "true_mean")
    ]
    truth_traces = _read_csv(
        truth_fov / "traces.csv", ["cell", "frame", *true_cols], "truth traces CSV"
    )
    truth_lineage = _read_csv(
        truth_fov / "lineage.csv", ["cell", "parent"], "truth lineage CSV"
    )

    # Traced: the main matched id has rows in the traces CSV.
    main = tracks["pred_main"].to_numpy()
    with_rows = np.unique(pred["cell"].to_numpy(dtype=np.int64))
    tally.traced_cells = int(np.count_nonzero((main > 0) & np.isin(main, with_rows)))

    p_cells, p_parents = _pred_parents(pred, lineage)
    div = _division_counts(
        truth_lineage["cell"].to_numpy(),
        truth_lineage["parent"].to_numpy(),
        p_cells,
        p_parents,
        tracks,
    )
    tally.true_divisions = div.n_true
    tally.pred_divisions = div.n_pred
    tally.divisions_found = div.n_found
    tally.pred_divisions_true = div.n_pred_true

    # Trace errors over every (cell, frame) of the complete tracks.
    complete = tracks.loc[tracks["complete"], "cell"].to_numpy(dtype=np.int64)
    keep = np.isin(true_ids, complete)
    pairs = pd.DataFrame(
        {"cell": true_ids[keep], "frame": frames[keep], "pred": matched[keep]}
    )
    try:
        pairs = pairs.merge(
            truth_traces, on=["cell", "frame"], how="left", validate="m:1"
        )
        measured = pred.rename(columns={"cell": "pred"})[["pred", "frame", *fl_cols]]
        pairs = pairs.merge(measured, on=["pred", "frame"], how="left", validate="m:1")
    except pd.errors.MergeError as e:
        raise ValueError(
            f"FOV {fov}: a (cell, frame) pair appears twice in {str(run.traces)!r} "
            f"or {str(truth_fov / 'traces.csv')!r}; the CSV is corrupt, rerun the "
            "step that wrote it."
        ) from e
    for c in fl_channels:
        tally.traces[c] = _trace_pairs(
            pairs[f"intensity_total_ch_{c}"].to_numpy(dtype=np.float64),
            pairs[f"true_total_ch_{c}"].to_numpy(dtype=np.float64),
            pairs[f"intensity_mean_ch_{c}"].to_numpy(dtype=np.float64),
            pairs[f"true_mean_ch_{c}"].to_numpy(dtype=np.float64),
            min_signal_fraction=min_signal_fraction,
        )

    # Time: the run's time column against the generator's timestamps.
    times = np.asarray(info["times_min"], dtype=np.float64)
    if times.size != shape[0]:
        raise ValueError(
            f"{TRUTH_JSON}: FOV {fov} lists {times.size} times for {shape[0]} frames; "
            "regenerate the truth."
        )
    frame_col = pred["frame"].to_numpy(dtype=np.int64)
    if frame_col.size and (frame_col.min() < 0 or frame_col.max() >= shape[0]):
        raise ValueError(
            f"{str(run.traces)!r} has frames outside [0, {shape[0] - 1}]; the run was "
            "made from another input than the truth."
        )
    tally.trace_rows = int(frame_col.size)
    if frame_col.size:
        diff = np.abs(pred["time"].to_numpy(dtype=np.float64) - times[frame_col])
        tally.time_err = float(diff.max())

    dropped = {int(t) for t in info.get("dropped_frames", [])}
    for c in fl_channels:
        truth_bg = truth_fov / f"background_ch_{c}.npy"
        if truth_bg.is_file():
            bg = _background_pass(c, truth_bg, run, shape, dropped, weight)
            if bg is not None:
                tally.background[c] = bg
    return tally


# --------------------------------------------------------------------------
# Cell Tracking Challenge measures (py-ctcmetrics, docs/ctc.md)
# --------------------------------------------------------------------------

#: (py-ctcmetrics name, metric key) of the CTC measures, in table order.
_CTC_MEASURES: Final = (
    ("DET", "ctc_det"),
    ("TRA", "ctc_tra"),
    ("CT", "ctc_ct"),
    ("TF", "ctc_tf"),
    ("BC", "ctc_bc"),
    ("CHOTA", "ctc_chota"),
)
#: Frame tolerance ``i`` of BC(i); the example of the CTC's Java measures uses BC(2).
CTC_BC_TOLERANCE: Final = 2
CTC_INSTALL_HINT: Final = (
    "py-ctcmetrics is not installed; install it with "
    "pip install 'pyama-steps[eval]' (or: pip install py-ctcmetrics)"
)


class _CtcExportError(ValueError):
    """py-ctcmetrics rejects an export of :mod:`pyama_steps.ctc` (a bug here)."""


#: What py-ctcmetrics 1.3.3 raises when it trips over input it should accept
#: (an empty frame or result, a zero-size reduction, its own asserts).
_CTC_LIBRARY_ERRORS: Final = (AssertionError, IndexError, KeyError, ValueError)


@dataclass(frozen=True)
class _CtcFov:
    """The CTC measures of one FOV and what the overall values pool.

    Attributes
    ----------
    values : dict of str to float
        Metric key (``ctc_det``, ...) -> value, NaN where undefined.
    n_ref : int
        True cell-frames (reference detections): the weight of the FOV.
    divisions : tuple of int
        True positive, false positive and false negative divisions of BC(i).
    """

    values: dict[str, float]
    n_ref: int
    divisions: tuple[int, int, int]


def _ctc_library() -> str | None:
    """Return ``py-ctcmetrics <version>`` if the library imports, else None."""
    from importlib import metadata

    try:
        import ctc_metrics  # noqa: F401
    except ImportError:
        return None
    try:
        version = metadata.version("py-ctcmetrics")
    except metadata.PackageNotFoundError:  # pragma: no cover - a source tree
        version = "(version unknown)"
    return f"py-ctcmetrics {version}"


def _nan_if_none(value: Any) -> float:
    return math.nan if value is None else float(value)


def _int_frames(frames: Sequence[Any]) -> list[Any]:
    """Give empty per-frame label lists an integer dtype for py-ctcmetrics."""
    # py-ctcmetrics 1.3.3 turns an empty frame's label list into a float64
    # array and indexes with it in track_confusion_matrix (CHOTA), which
    # raises IndexError as soon as the reference has an empty frame, as the
    # generator's dropped frames are. An empty int64 array is the same list.
    return [x if len(x) else np.zeros(0, dtype=np.int64) for x in frames]


def _ctc_score_fov(gt_dir: Path, res_dir: Path) -> _CtcFov:
    """Score one exported FOV (``<gt_dir>/TRA``, ``<res_dir>``) with py-ctcmetrics."""
    from ctc_metrics.metrics import bc, chota, valid
    from ctc_metrics.metrics.biological.bc import get_ids_that_ends_with_split
    from ctc_metrics.scripts.evaluate import (
        calculate_metrics,
        match_computed_to_reference_masks,
    )
    from ctc_metrics.utils.filesystem import parse_masks, read_tracking_file
    from ctc_metrics.utils.representations import merge_tracks

    ref_tracks = read_tracking_file(str(gt_dir / "TRA" / "man_track.txt"))
    comp_tracks = read_tracking_file(str(res_dir / "res_track.txt"))
    nan = dict.fromkeys((key for _, key in _CTC_MEASURES), math.nan)
    if len(ref_tracks) == 0:
        # No true cell: every measure divides by zero. The FOV's predicted
        # divisions still count as false ones in the pooled BC.
        n_comp_div = len(get_ids_that_ends_with_split(comp_tracks))
        return _CtcFov(nan, 0, (0, n_comp_div, 0))
    ref_masks = parse_masks(str(gt_dir / "TRA"))
    comp_masks = parse_masks(str(res_dir))
    # threads=1: no process pool; FOVs are scored one after another.
    traj = match_computed_to_reference_masks(ref_masks, comp_masks, threads=1)
    n_ref = int(sum(len(x) for x in traj["labels_ref"]))
    if len(comp_tracks) == 0:
        # The library rejects an empty result; the CTC definitions give 0
        # (AOGM of an empty result is AOGM_0; no complete track, no match).
        n_div = len(get_ids_that_ends_with_split(ref_tracks))
        values = {**nan, "ctc_det": 0.0, "ctc_tra": 0.0, "ctc_ct": 0.0}
        values["ctc_bc"] = _nan_if_none(bc(0, 0, n_div))
        values["ctc_chota"] = 0.0
        return _CtcFov(values, n_ref, (0, 0, n_div))
    with warnings.catch_warnings(record=True) as caught:
        # The library reports format errors, and harmless empty frames, as
        # UserWarning; numpy warns on its means of empty slices (TF without
        # a matched track, NaN). All are kept here; only a failed check raises.
        warnings.simplefilter("always")
        is_valid = valid(comp_masks, comp_tracks, traj["labels_comp"])
        if not is_valid:
            problems = "; ".join(
                str(w.message)
                for w in caught
                if not str(w.message).startswith("Empty frame")
            )
            raise _CtcExportError(
                f"the CTC export {str(res_dir)!r} fails py-ctcmetrics' format check "
                f"({problems}); this is a bug of pyama_steps.ctc, please report it."
            )
        raw = calculate_metrics(
            comp_tracks,
            ref_tracks,
            traj,
            {},
            [name for name, _ in _CTC_MEASURES if name != "CHOTA"],
            is_valid,
        )
        ref_m, ref_labels, ref_mapped = merge_tracks(
            ref_tracks, traj["labels_ref"], traj["mapped_ref"]
        )
        comp_m, comp_labels, comp_mapped = merge_tracks(
            comp_tracks, traj["labels_comp"], traj["mapped_comp"]
        )
        raw.update(
            chota(
                ref_m,
                comp_m,
                _int_frames(ref_labels),
                _int_frames(comp_labels),
                ref_mapped,
                comp_mapped,
            )
        )
    i = CTC_BC_TOLERANCE
    raw["BC"] = raw[f"BC({i})"]
    values = {key: _nan_if_none(raw[name]) for name, key in _CTC_MEASURES}
    divisions = (
        int(raw[f"tp_div({i})"]),
        int(raw[f"fp_div({i})"]),
        int(raw[f"fn_div({i})"]),
    )
    return _CtcFov(values, n_ref, divisions)


def _ctc_overall(scores: Sequence[_CtcFov]) -> dict[str, float]:
    """Pool per-FOV CTC measures (see the module docstring)."""
    from ctc_metrics.metrics import bc

    out: dict[str, float] = {}
    for _, key in _CTC_MEASURES:
        if key == "ctc_bc":
            tp, fp, fn = (sum(s.divisions[k] for s in scores) for k in range(3))
            out[key] = _nan_if_none(bc(tp, fp, fn))
            continue
        used = [
            (s.values[key], s.n_ref)
            for s in scores
            if s.n_ref > 0 and not math.isnan(s.values[key])
        ]
        weight = sum(n for _, n in used)
        out[key] = sum(v * n for v, n in used) / weight if weight else math.nan
    return out


def _run_lineage(run: _RunFov) -> pd.DataFrame:
    """``cell``/``parent`` of a run: its lineage CSV, else its traces CSV."""
    header = pd.read_csv(run.traces, nrows=0).columns.tolist()
    cols = ["cell", "parent"] if "parent" in header else ["cell"]
    traces = _read_csv(run.traces, cols, "traces CSV")
    lineage = (
        _read_csv(run.lineage, ["cell", "parent"], "lineage CSV")
        if run.lineage is not None
        else None
    )
    cells, parents = _pred_parents(traces, lineage)
    return pd.DataFrame({"cell": cells, "parent": parents})


def _ctc_measures(
    truth_path: Path, runs: Mapping[int, _RunFov]
) -> tuple[dict[int, dict[str, float]], dict[str, float], str | None]:
    """Export each FOV's truth and run to CTC folders and score them.

    Returns the per-FOV and overall values, and which FOVs the library
    failed on (those are NaN with weight 0), or None.
    """
    import shutil

    scores: dict[int, _CtcFov] = {}
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="pyama-steps-ctc-") as tmp:
        for f, run in runs.items():
            truth_fov = truth_path / f"fov_{f:03d}"
            gt = Path(tmp) / f"fov_{f:03d}_GT"
            res = Path(tmp) / f"fov_{f:03d}"
            write_ctc_truth(truth_fov / "labels.npy", truth_fov / "lineage.csv", gt)
            # uint32 result masks: py-ctcmetrics adds the largest reference
            # label to the result masks in their own dtype, which wraps around
            # in uint16 once both label counts together pass 65535. strict=False:
            # a parent table rebuilt from a traces CSV may miss ids.
            write_ctc_result(
                run.labels, _run_lineage(run), res, dtype=np.uint32, strict=False
            )
            try:
                scores[f] = _ctc_score_fov(gt, res)
            except _CtcExportError:
                raise
            except _CTC_LIBRARY_ERRORS as e:
                # A crash of the optional library must not cost the other
                # metrics; the table names the FOV and the error.
                failed.append(f"FOV {f}: {type(e).__name__}: {e}".splitlines()[0])
                nan = dict.fromkeys((key for _, key in _CTC_MEASURES), math.nan)
                scores[f] = _CtcFov(nan, 0, (0, 0, 0))
            # One FOV on disk at a time (two stacks of it).
            shutil.rmtree(gt)
            shutil.rmtree(res)
    per_fov = {f: s.values for f, s in scores.items()}
    message = (
        "py-ctcmetrics failed on " + "; ".join(failed) + " (left out, n/a)"
        if failed
        else None
    )
    return per_fov, _ctc_overall(list(scores.values())), message


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """Accuracy of one run (algorithms.md §8.1).

    Attributes
    ----------
    per_fov : dict of int to dict of str to float
        FOV -> metric name -> value; every FOV has the same keys as `overall`.
    overall : dict of str to float
        The metrics pooled over every frame and FOV (counts summed, ratios of
        the sums, quantiles and r of the pooled pairs, time error the maximum).
    fl_channels : tuple of int
        Fluorescence channels evaluated (in both the truth and the run).
    background_channels : tuple of int
        Channels with a background error (truth and prediction available).
    iou_threshold : float
        IoU of a match.
    min_signal_fraction : float
        The tiny-signal floor of the trace errors, as a fraction of P95.
    ctc_library : str or None
        ``py-ctcmetrics <version>`` when the ``ctc_*`` measures were
        computed, else None.
    ctc_message : str or None
        Why the CTC measures were requested but not computed (the library is
        missing, and how to install it), or the FOVs the library failed on
        (their ``ctc_*`` values are NaN); else None.
    """

    per_fov: dict[int, dict[str, float]]
    overall: dict[str, float]
    fl_channels: tuple[int, ...]
    background_channels: tuple[int, ...]
    iou_threshold: float
    min_signal_fraction: float
    ctc_library: str | None = None
    ctc_message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dictionary; NaN becomes ``None``."""

        def clean(d: Mapping[str, float]) -> dict[str, Any]:
            return {
                k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in d.items()
            }

        return {
            "iou_threshold": self.iou_threshold,
            "min_signal_fraction": self.min_signal_fraction,
            "fl_channels": list(self.fl_channels),
            "background_channels": list(self.background_channels),
            "ctc_library": self.ctc_library,
            "ctc_message": self.ctc_message,
            "per_fov": {str(f): clean(m) for f, m in self.per_fov.items()},
            "overall": clean(self.overall),
        }


def _truth_channels(truth_fov: Path) -> list[int]:
    """Fluorescence channels of the truth traces CSV (``true_total_ch_{c}``)."""
    path = truth_fov / "traces.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"truth traces {str(path)!r} is missing; regenerate the truth."
        )
    header = pd.read_csv(path, nrows=0).columns
    return sorted(int(m.group(1)) for h in header if (m := _TRUE_TOTAL_RE.fullmatch(h)))


def evaluate_run(
    truth_dir: str | Path,
    out_dir: str | Path,
    *,
    iou_threshold: float = 0.5,
    min_signal_fraction: float = 0.05,
    fovs: Sequence[int] | None = None,
    ctc: bool = True,
) -> Evaluation:
    """Measure a run's accuracy against the generator's ground truth.

    Parameters
    ----------
    truth_dir : str or Path
        The ``<name>_truth`` directory (``truth.json`` and ``fov_NNN/``).
    out_dir : str or Path
        The run's output directory (holding ``processing_results.yaml``).
    iou_threshold : float, optional
        Smallest mask IoU of a match, in (0, 1]; algorithms.md §8.1 uses 0.5.
    min_signal_fraction : float, optional
        Trace-error pairs with ``true_total`` at or below this fraction of the
        FOV's 95th percentile of ``true_total`` are excluded, in [0, 1].
    fovs : sequence of int, optional
        FOVs to evaluate; default every FOV of the truth.
    ctc : bool, optional
        Also compute the Cell Tracking Challenge measures (``ctc_*`` keys)
        with py-ctcmetrics. Without the library they are left out and
        ``Evaluation.ctc_message`` says how to install it.

    Returns
    -------
    Evaluation
        Per-FOV and pooled metrics (see the module docstring for the keys).

    Raises
    ------
    FileNotFoundError
        If ``truth.json``, the manifest, or a file either lists is missing.
    ValueError
        If a FOV of the truth (or of `fovs`) is not in the run or not
        finished, a stack's shape differs from the truth, a CSV lacks a
        column, or an option is out of range.
    TypeError
        If an option has the wrong type.

    Notes
    -----
    Memory: one true and one predicted frame at a time (one background frame
    and up to two run frames in the background pass), plus the per-(cell,
    frame) tables of one FOV. The CTC measures export one FOV's truth and run
    at a time to a temporary folder (``tempfile``, so ``TMPDIR`` applies; two
    FOV stacks as uint16/uint32 TIFFs) and keep py-ctcmetrics' per-frame
    match lists of that FOV.
    """
    iou_threshold = _check_fraction("iou_threshold", iou_threshold, allow_zero=False)
    min_signal_fraction = _check_fraction(
        "min_signal_fraction", min_signal_fraction, allow_zero=True
    )
    truth_path, out_path = Path(truth_dir), Path(out_dir)
    truth, listed_channels = _load_truth(truth_path)
    manifest = _load_manifest(out_path)
    if fovs is None:
        selected = sorted(truth)
    else:
        selected = sorted({int(f) for f in fovs})
        unknown = [f for f in selected if f not in truth]
        if unknown or not selected:
            raise ValueError(
                f"fovs={list(fovs)!r} is invalid: the truth has FOVs "
                f"{sorted(truth)!r}; pick a non-empty subset of them."
            )
    runs = {f: _run_fov(manifest, out_path, f) for f in selected}
    run_channels = {
        int(ch["channel"])
        for ch in (manifest.get("channels") or {}).get("fl", []) or []
    }
    truth_channels = (
        listed_channels
        if listed_channels is not None
        else _truth_channels(truth_path / f"fov_{selected[0]:03d}")
    )
    fl_channels = tuple(c for c in truth_channels if c in run_channels)
    params = manifest.get("params") or {}
    weight = float((params.get("background") or {}).get("weight", 1.0))

    tallies: dict[int, _Tally] = {}
    for f in selected:
        tallies[f] = _evaluate_fov(
            f,
            truth[f],
            truth_path / f"fov_{f:03d}",
            runs[f],
            fl_channels,
            weight,
            iou_threshold=iou_threshold,
            min_signal_fraction=min_signal_fraction,
        )
    bg_channels = tuple(sorted({c for t in tallies.values() for c in t.background}))
    per_fov = {
        f: _metrics(t, fl_channels, bg_channels) for f, t in sorted(tallies.items())
    }
    overall = _metrics(_pool(list(tallies.values())), fl_channels, bg_channels)
    ctc_library = _ctc_library() if ctc else None
    ctc_message = CTC_INSTALL_HINT if ctc and ctc_library is None else None
    if ctc_library is not None:
        ctc_per_fov, ctc_overall, ctc_message = _ctc_measures(truth_path, runs)
        for f, values in ctc_per_fov.items():
            per_fov[f].update(values)
        overall.update(ctc_overall)
    return Evaluation(
        per_fov=per_fov,
        overall=overall,
        fl_channels=fl_channels,
        background_channels=bg_channels,
        iou_threshold=iou_threshold,
        min_signal_fraction=min_signal_fraction,
        ctc_library=ctc_library,
        ctc_message=ctc_message,
    )


# --------------------------------------------------------------------------
# Table and command line
# --------------------------------------------------------------------------


def _fmt(value: float, kind: str) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    if kind == "int":
        return f"{int(value):d}"
    if kind == "sci":
        return f"{value:.1e}"
    if kind == "pct":
        return f"{value:.2f}"
    return f"{value:.4f}"


def _render(
    headers: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool
) -> str:
    if markdown:
        lines = ["| " + " | ".join(headers) + " |"]
        lines.append("|" + "|".join("---:" for _ in headers) + "|")
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in rows
    ]
    return "\n".join(lines)


_MAIN_COLUMNS: Final = (
    ("frames", "n_frames", "int"),
    ("Dice", "dice", "frac"),
    ("P", "precision", "frac"),
    ("R", "recall", "frac"),
    ("F1", "f1", "frac"),
    ("area", "area_ratio_median", "frac"),
    ("complete", "complete_fraction", "frac"),
    ("tracks", "n_eligible_tracks", "int"),
    ("IDsw/100", "id_switches_per_100_cells", "pct"),
    ("traced", "traced_fraction", "frac"),
    ("div R", "division_recall", "frac"),
    ("div P", "division_precision", "frac"),
    ("div F1", "division_f1", "frac"),
    ("time err", "time_max_abs_err_min", "sci"),
)

_CTC_COLUMNS: Final = (
    ("DET", "ctc_det", "frac"),
    ("TRA", "ctc_tra", "frac"),
    ("CT", "ctc_ct", "frac"),
    ("TF", "ctc_tf", "frac"),
    (f"BC({CTC_BC_TOLERANCE})", "ctc_bc", "frac"),
    ("CHOTA", "ctc_chota", "frac"),
)

_CHANNEL_COLUMNS: Final = (
    ("tot med", "trace_total_rel_err_median", "frac"),
    ("tot p90", "trace_total_rel_err_p90", "frac"),
    ("mean med", "trace_mean_rel_err_median", "frac"),
    ("mean p90", "trace_mean_rel_err_p90", "frac"),
    ("r", "trace_pearson_r", "frac"),
    ("used", "trace_pairs_used", "int"),
    ("excl", "trace_pairs_excluded", "int"),
    ("unmeas", "trace_pairs_unmeasured", "int"),
    ("bg err %", "background_error_pct", "pct"),
)


def format_table(evaluation: Evaluation, *, markdown: bool = False) -> str:
    """Render an evaluation as text: one row per FOV and one for all FOVs.

    Parameters
    ----------
    evaluation : Evaluation
        The result of :func:`evaluate_run`.
    markdown : bool, optional
        Markdown tables instead of fixed-width columns.

    Returns
    -------
    str
        A segmentation/tracking table, then a trace-error table with one row
        per FOV and channel (when fluorescence channels were evaluated), then
        the CTC measures (or why they are missing). Fractions have 4
        decimals, undefined values read ``n/a``.
    """
    named = [(str(f), m) for f, m in evaluation.per_fov.items()]
    named.append(("all", evaluation.overall))
    rows = [
        [name] + [_fmt(m.get(key, math.nan), kind) for _, key, kind in _MAIN_COLUMNS]
        for name, m in named
    ]
    parts = [_render(["FOV"] + [h for h, _, _ in _MAIN_COLUMNS], rows, markdown)]
    if evaluation.fl_channels:
        ch_rows = [
            [name, str(c)]
            + [
                _fmt(m.get(f"{key}_ch_{c}", math.nan), kind)
                for _, key, kind in _CHANNEL_COLUMNS
            ]
            for name, m in named
            for c in evaluation.fl_channels
        ]
        headers = ["FOV", "ch"] + [h for h, _, _ in _CHANNEL_COLUMNS]
        parts.append(_render(headers, ch_rows, markdown))
    if evaluation.ctc_library is not None:
        ctc_rows = [
            [name] + [_fmt(m.get(key, math.nan), kind) for _, key, kind in _CTC_COLUMNS]
            for name, m in named
        ]
        caption = (
            f"Cell Tracking Challenge measures ({evaluation.ctc_library}; 'all' "
            "weights FOVs by true cell-frames, BC pools the divisions):"
        )
        table = _render(["FOV"] + [h for h, _, _ in _CTC_COLUMNS], ctc_rows, markdown)
        note = "" if evaluation.ctc_message is None else f"\n{evaluation.ctc_message}."
        parts.append(f"{caption}\n{table}{note}")
    elif evaluation.ctc_message is not None:
        parts.append(
            f"Cell Tracking Challenge measures not computed: {evaluation.ctc_message}."
        )
    return "\n\n".join(parts) + "\n"


def main_evaluate(argv: Sequence[str] | None = None) -> int:
    """Run the evaluation from the command line and print the table.

    Parameters
    ----------
    argv : sequence of str, optional
        ``TRUTH_DIR OUTPUT_DIR [--json PATH] [--markdown] [--fovs 0,1]
        [--iou-threshold X] [--min-signal-fraction X] [--no-ctc]`` (default:
        ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 when the inputs are missing or inconsistent (the
        message goes to stderr); argparse exits with 2 on bad arguments.
    """
    parser = argparse.ArgumentParser(
        prog="pyama-steps evaluate",
        description=(
            "Compare a run with the synthetic generator's ground truth "
            "(algorithms.md §8)."
        ),
    )
    parser.add_argument("truth_dir", type=Path, help="the '<name>_truth' directory")
    parser.add_argument("output_dir", type=Path, help="the run's output_dir")
    parser.add_argument("--json", type=Path, default=None, help="also write JSON here")
    parser.add_argument("--markdown", action="store_true", help="markdown tables")
    parser.add_argument(
        "--fovs", type=parse_fov_list, default=None, help="FOVs to evaluate, e.g. 0,2"
    )
    parser.add_argument("--iou-threshold", type=float, default=0.5)
    parser.add_argument("--min-signal-fraction", type=float, default=0.05)
    parser.add_argument(
        "--no-ctc",
        action="store_true",
        help="skip the Cell Tracking Challenge measures (py-ctcmetrics)",
    )
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        evaluation = evaluate_run(
            args.truth_dir,
            args.output_dir,
            iou_threshold=args.iou_threshold,
            min_signal_fraction=args.min_signal_fraction,
            fovs=args.fovs,
            ctc=not args.no_ctc,
        )
    except (FileNotFoundError, ValueError) as e:
        print(f"pyama-steps evaluate: error: {e}", file=sys.stderr)
        return 2
    print(format_table(evaluation, markdown=args.markdown), end="")
    if args.json is not None:
        text = json.dumps(
            evaluation.to_dict(), indent=1, sort_keys=False, ensure_ascii=True
        )
        atomic_write_text(args.json, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main_evaluate())
