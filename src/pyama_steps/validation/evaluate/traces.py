"""Trace errors: predicted against true fluorescence of complete tracks."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

Float64Array = npt.NDArray[np.float64]

_TRUE_TOTAL_RE: Final = re.compile(r"true_total_ch_(\d+)")


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
