"""What one frame's background estimate is, and the fallback rules of §3.4 step 4.

:class:`BackgroundFrame` is the result of both methods; its ``model`` is the
small array the surface is a function of (the ``fl_background_model`` stack,
algorithms.md §3.6). The fallback rules apply when a frame has too little
background for either method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pyama_steps._typing import BoolArray, RealArray

__all__ = ["BackgroundFrame"]


@dataclass(frozen=True, eq=False)
class BackgroundFrame:
    """Background estimate of one frame.

    Attributes
    ----------
    background : (Y, X) ndarray of float32
        Smooth background surface ``bg``.
    tile_values : ndarray of float64
        ``tiles``: the filled (m_y, m_x) tile values ``V`` the surface passes
        through. ``fit``: the (m_y + 3, m_x + 3) spline coefficients (the
        constant level for fallback rules 1 and 3).
    valid_tiles : ndarray of bool
        ``tiles``: the (m_y, m_x) tiles that had at least ``min_background_px``
        background pixels. ``fit``: the blocks used by the final fit.
    fallback : bool
        True if no tile (``fit``: no block) was usable and a fallback rule set
        the surface.
    fallback_rule : int
        0 without fallback; otherwise the rule of algorithms.md §3.4 step 4 that
        was applied: 1 (median of all background pixels of the frame), 2 (the
        surface of the latest frame with usable background) or 3 (percentile of
        all pixels of the frame).
    carry_values : ndarray of float64 or None
        What to pass as ``previous_values`` with the next frame of the same FOV:
        this frame's ``tile_values`` (``tiles``; ``fit``: the coefficients with
        a last row holding the clip bounds) if it had usable background, else
        the ``previous_values`` it received.
    model : ndarray of float64
        The small array the surface is a function of: ``background_surface(
        model, ...)`` with the same options returns ``background`` bit for bit.
        ``fit``: the (m_y + 4, m_x + 3) coefficients with a last row holding
        the clip bounds (fallback rules 1 and 3: every coefficient and both
        bounds at the constant level). ``tiles``: the (m_y, m_x) filled tile
        values ``V``. Written per frame as the ``fl_background_model`` stack
        (algorithms.md §3.6), from which every later step computes the
        corrected fluorescence.
    """

    background: npt.NDArray[np.float32]
    tile_values: npt.NDArray[np.float64]
    valid_tiles: BoolArray
    fallback: bool
    fallback_rule: int
    carry_values: npt.NDArray[np.float64] | None
    model: npt.NDArray[np.float64]


def _fallback_level(
    image: RealArray,
    background_px: BoolArray,
    min_background_px: int,
    fallback_percentile: float,
    previous: npt.NDArray[np.float64] | None,
) -> tuple[int, float]:
    """Return the fallback rule of §3.4 step 4 and its level (NaN for rule 2)."""
    if np.count_nonzero(background_px) >= min_background_px:
        return 1, _median(image[background_px])
    if previous is not None:
        return 2, math.nan
    level = np.percentile(image.astype(np.float64), fallback_percentile)
    return 3, float(level)


def _median(values: RealArray) -> float:
    """Median in float64, as ``numpy.median(values.astype(float64))``.

    For uint8/uint16 values it is found from a histogram of counts, which gives
    the identical result (the two middle values are integers, averaged in
    float64) several times faster than a partition.
    """
    if values.dtype.kind == "u" and values.dtype.itemsize <= 2:
        cumulative = np.cumsum(np.bincount(values))
        k = values.size
        lower = int(np.searchsorted(cumulative, (k - 1) // 2, side="right"))
        upper = int(np.searchsorted(cumulative, k // 2, side="right"))
        return (float(lower) + float(upper)) / 2.0
    return float(np.median(values.astype(np.float64)))
