"""Per-frame matching of true and predicted labels, and segmentation counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from pyama_steps._arrays import check_label_array, check_no_negative_ids
from pyama_steps._typing import LabelArray
from pyama_steps._validate import check_fraction
from pyama_steps.tracking import assign, overlap_pairs

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]

#: Largest ``(n_true + 1) * (n_pred + 1)`` for which the int64 pair key of
#: ``overlap_pairs`` cannot overflow; sparse huge ids are compacted first.
_MAX_PAIR_KEY: Final = 2**62


def _check_label_frame(labels: object, name: str) -> LabelArray:
    checked = check_label_array(labels, name)
    check_no_negative_ids(checked, name, what="labels")
    return checked


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
    threshold = check_fraction("threshold", threshold, allow_zero=False)
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
