"""The log-STD map (algorithms.md §2.2): window sums and the local log std.

``N = n·S2 - S1²`` with ``n = window²`` and ``S1``, ``S2`` the window sums of
the frame and its square: ``n²`` times the local variance, exact in integers
where the frame allows it. The threshold is applied to ``N`` itself
(``N > n²·exp(2·t)``), so the logarithm is taken of the statistics sample
only. Package-internal: :mod:`pyama_steps.segmentation.log_std` and
:mod:`~pyama_steps.segmentation.window` call these helpers.
"""

from __future__ import annotations

import math
from typing import Any, Final, TypeAlias

import numpy as np
import numpy.typing as npt

from pyama_steps._typing import RealArray
from pyama_steps.morphology import run_reduce as _run_reduce

__all__: list[str] = []

_MIN_WINDOW: Final = 3
_MAX_WINDOW: Final = 37
# Below this bound on (n·ptp)², every box sum, n·S2 and S1² is exact in int64.
_EXACT_LIMIT: Final = 2**62


_NumArray: TypeAlias = (
    npt.NDArray[np.int32] | npt.NDArray[np.int64] | npt.NDArray[np.float64]
)


def _log_std(numerator: _NumArray, n: int) -> npt.NDArray[np.float64]:
    """Return ``0.5·ln(N) - ln(n)`` in float64 for a 1-D array of ``N > 0``.

    Computed in place on one float64 copy; the arithmetic (and so every bit of
    the result) is that of ``0.5 * np.log(N) - np.log(n)``.
    """
    values = np.array(numerator, dtype=np.float64)
    np.log(values, out=values)
    values *= 0.5
    values -= np.log(np.float64(n))
    return values


def _numerator_threshold(threshold: float, n: int) -> float:
    """``N`` above which log-STD exceeds `threshold`: ``n²·exp(2·threshold)``."""
    return float(n) * float(n) * math.exp(2.0 * threshold)


def _variance_numerator(image: RealArray, window: int) -> _NumArray:
    """Return ``N = n·S2 - S1²`` (``n = window²``), the scaled local variance.

    Exact, in int32 or int64, for integer values whose range allows it (always
    for uint16); float64 otherwise.
    """
    return _window_sums(image, window, keep_s1=False)[0]


def _window_sums(
    image: RealArray, window: int, *, keep_s1: bool
) -> tuple[_NumArray, _NumArray | None]:
    """Return ``N = n·S2 - S1²`` and, if asked, ``S1`` of the shifted frame.

    The frame minimum is subtracted first (``N`` does not change), so ``S1`` is
    the window sum of ``x - min(x)``. ``S1`` is ``None`` for a constant frame or
    when `keep_s1` is false.
    """
    n = window * window
    low = image.min()
    if image.dtype.kind in "iu":
        ptp = int(image.max()) - int(low)
        whole = True
    else:
        ptp_f = float(image.max()) - float(low)
        whole = bool(np.all(image == np.trunc(image))) and ptp_f < 2.0**62
        ptp = int(ptp_f) if whole else 0
    if ptp == 0 and whole:
        # Constant frame: every window is flat.
        return np.zeros(image.shape, dtype=np.int64), None
    if not whole or (n * ptp) ** 2 >= _EXACT_LIMIT:
        shifted_f = image.astype(np.float64)
        shifted_f -= float(low)
        s1_f = _box_sum(shifted_f, window)
        s2_f = _box_sum(shifted_f * shifted_f, window)
        s2_f *= n
        s2_f -= s1_f * s1_f
        return s2_f, (s1_f if keep_s1 else None)
    # Subtracting the minimum keeps N exact and unchanged, and keeps the sums
    # small enough for int32 on typical frames: the narrowest exact dtype is
    # chosen because the box sums are limited by memory traffic.
    sums = np.int32 if n * ptp * ptp < 2**31 else np.int64
    shifted: npt.NDArray[Any]
    if image.dtype.kind == "u" and image.dtype.itemsize == 8:
        shifted = (image - low).astype(sums)
    elif image.dtype.kind in "iu" and image.dtype.itemsize <= 2:
        shifted = image.astype(sums)
        shifted -= int(low)
    elif image.dtype.kind in "iu":
        shifted = image.astype(np.int64)
        shifted -= int(low)
        shifted = shifted.astype(sums, copy=False)
    else:
        shifted = (image.astype(np.float64) - float(low)).astype(sums)
    s1 = _box_sum(shifted, window)
    np.multiply(shifted, shifted, out=shifted)
    s2 = _box_sum(shifted, window)
    del shifted
    if n * n * ptp * ptp < 2**31:
        s2 *= n
        if keep_s1:
            s2 -= s1 * s1
            return s2, s1
        s1 *= s1
        s2 -= s1
        return s2, None
    numerator = np.multiply(s2, n, dtype=np.int64)
    del s2
    square = np.multiply(s1, s1, dtype=np.int64)
    numerator -= square
    return numerator, (s1 if keep_s1 else None)


def _box_sum(image: _NumArray, window: int) -> _NumArray:
    """Sum over the ``window x window`` square centred on each pixel.

    The border is mirrored (numpy ``'symmetric'`` padding, which equals scipy's
    ``'reflect'`` mode, also when the pad is longer than the axis).
    """
    if window == 3 and min(image.shape) >= 3:
        return _box_sum3(image)
    half = window // 2
    padded = np.pad(image, half, mode="symmetric")
    rows = _run_reduce(padded, window, 0, np.add)
    return _run_reduce(rows, window, 1, np.add)  # type: ignore[no-any-return]


def _box_sum3(image: _NumArray) -> _NumArray:
    """`_box_sum` for ``window = 3`` without padding, on frames of >= 3 x 3.

    Each sum is formed as ``a + (b + c)``, the order of `_run_reduce` on the
    padded frame, so float64 results are bit-identical too.
    """
    rows = np.empty_like(image)
    np.add(image[1:-1], image[2:], out=rows[1:-1])
    rows[1:-1] += image[:-2]
    np.add(image[0], image[1], out=rows[0])
    rows[0] += image[0]
    np.add(image[-1], image[-1], out=rows[-1])
    rows[-1] += image[-2]
    out = np.empty_like(image)
    np.add(rows[:, 1:-1], rows[:, 2:], out=out[:, 1:-1])
    out[:, 1:-1] += rows[:, :-2]
    np.add(rows[:, 0], rows[:, 1], out=out[:, 0])
    out[:, 0] += rows[:, 0]
    np.add(rows[:, -1], rows[:, -1], out=out[:, -1])
    out[:, -1] += rows[:, -2]
    return out


def _sample_log_std(numerator: _NumArray, n: int) -> npt.NDArray[np.float64]:
    """Return the log-STD values of the statistics sample (§2.3).

    The pixels of even rows and columns with non-zero local variance: the
    windows overlap, so the sample still sees every pixel, at a quarter of the
    cost.
    """
    sample = numerator[::2, ::2]
    return _log_std(sample[sample > 0], n)
