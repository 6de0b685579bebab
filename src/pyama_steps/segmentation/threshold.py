"""The histogram threshold (algorithms.md §2.3): smoothed mode and lower sigma.

Package-internal: :mod:`pyama_steps.segmentation.log_std` and
:mod:`~pyama_steps.segmentation.window` call these helpers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from pyama_steps._typing import BoolArray
from pyama_steps.segmentation.masks import _hysteresis
from pyama_steps.segmentation.texture import _NumArray, _numerator_threshold

__all__ = [
    "BINS",
    "GUARD_SIGMA_RATIO",
    "MODE_PEAK_FRACTION",
    "MODE_SMOOTH_BINS",
    "PEAK_DIP_Z",
    "SIGMA_ESTIMATOR",
    "BackgroundReference",
    "SigmaEstimator",
]

SigmaEstimator: TypeAlias = Literal["lower_std", "lower_rms"]


_SIGMA_ESTIMATORS: Final = ("lower_std", "lower_rms")

# The histogram's defaults (algorithms.md §2.2), written once: segment_log_std
# and the window choice (texture_separation, choose_window) take them, and the
# schema's defaults equal them (tests/unit/test_segmentation_registry.py checks).
#: Histogram bins over [min, max] of the sampled log-STD.
BINS: Final = 200
#: The mode's count is summed over this many bins centred on each bin.
MODE_SMOOTH_BINS: Final = 11
#: Least share of the fullest bin's count that a lower peak needs (§2.3).
MODE_PEAK_FRACTION: Final = 0.25
#: Spread of the log-STD values at or below the mode.
SIGMA_ESTIMATOR: Final[SigmaEstimator] = "lower_std"


#: How far, in counting-noise standard deviations, a lower peak of the smoothed
#: histogram must rise above the valley between it and the fullest bin (§2.3).
PEAK_DIP_Z: Final = 3.0


@dataclass(frozen=True)
class BackgroundReference:
    """A FOV's background texture, for the mode guard (algorithms.md §2.3).

    Attributes
    ----------
    level : float
        The background's log-STD: the median histogram mode of a few frames
        of the FOV (``prepare``, §2.10).
    sigma : float
        Their median lower sigma, > 0.
    """

    level: float
    sigma: float


def _histogram_mode(
    values: npt.NDArray[np.float64],
    bins: int,
    lo: float,
    hi: float,
    smooth: int = 1,
    peak_fraction: float = 1.0,
) -> float | None:
    """Return the centre of the background's peak of `bins` equal bins over [lo, hi].

    With ``smooth > 1`` (odd) the counts are first summed over `smooth`
    consecutive bins centred on each bin (bins beyond the ends count 0). The
    mode is the fullest bin, unless a lower peak holds at least
    `peak_fraction` of its count and a valley deeper than the counting noise
    (:data:`PEAK_DIP_Z`) separates the two: then the lowest such peak (the
    background is the least textured part of a frame; a peak above it is the
    texture of cells, which can outnumber the background). ``peak_fraction =
    1`` keeps the fullest bin. ``None`` when the range is empty, or so narrow
    (a few ulps) that `bins` distinct float64 edges do not exist; numpy would
    raise there, and the frame is treated as single-valued.
    """
    histogram = _smoothed_histogram(values, bins, lo, hi, smooth)
    if histogram is None:
        return None
    counts, centres = histogram
    return float(centres[_mode_bin(counts, peak_fraction)])


def _smoothed_histogram(
    values: npt.NDArray[np.float64], bins: int, lo: float, hi: float, smooth: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None:
    """Return the counts (summed over `smooth` bins) and the bin centres."""
    if not hi > lo:
        return None
    edges = np.linspace(lo, hi, bins + 1)
    if np.any(edges[1:] <= edges[:-1]):
        return None
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    if smooth > 1:
        # Integer sums: exact. The fullest single bin of a broad peak wanders
        # with the noise of its counts; the summed counts do not.
        counts = np.convolve(counts, np.ones(smooth, dtype=counts.dtype))
        counts = counts[smooth // 2 : smooth // 2 + bins]
    return counts, (edges[:-1] + edges[1:]) / 2


def _mode_bin(counts: npt.NDArray[np.int64], peak_fraction: float) -> int:
    """Return the bin of the background's peak (see :func:`_histogram_mode`)."""
    # argmax returns the first maximum: ties go to the lowest bin (§2.3 item 3).
    i = int(np.argmax(counts))
    if i > 0 and peak_fraction < 1.0:
        i = _lowest_peak(counts, i, peak_fraction)
    return i


#: The mode guard acts on a frame whose lower sigma exceeds the FOV's by this
#: factor: the log-STD of pure noise has a spread set by the window alone, so
#: a wider spread below the mode means the mode sits on the cells' texture,
#: with the background below it (§2.3).
GUARD_SIGMA_RATIO: Final = 1.25


def _guard_bin(
    counts: npt.NDArray[np.int64],
    centres: npt.NDArray[np.float64],
    mode: float,
    sigma: float,
    reference: BackgroundReference,
    guard_k: float,
) -> int | None:
    """Return the bin the mode guard takes instead of the mode, or None (§2.3).

    The guard acts when the mode lies more than ``guard_k`` reference sigmas
    above the FOV's background level and the frame's lower sigma exceeds the
    reference sigma by :data:`GUARD_SIGMA_RATIO`: the mode is then the
    fullest smoothed bin within one reference sigma of the level, if any.
    """
    if not (
        mode > reference.level + guard_k * reference.sigma
        and sigma > GUARD_SIGMA_RATIO * reference.sigma
    ):
        return None
    near = np.flatnonzero(np.abs(centres - reference.level) <= reference.sigma)
    if near.size == 0:
        return None
    # argmax: the lowest of equal counts, as for the mode
    return int(near[np.argmax(counts[near])])


def _lowest_peak(counts: npt.NDArray[np.int64], top: int, fraction: float) -> int:
    """Return the lowest bin below `top` that is a separate peak, else `top`.

    A separate peak is a local maximum (the first bin of a plateau) holding at
    least `fraction` of ``counts[top]``, whose count exceeds the smallest count
    between it and `top` (the valley) by more than :data:`PEAK_DIP_Z` times
    the counting noise of the difference, ``sqrt(peak + valley)``.
    """
    c = counts[: top + 1].astype(np.float64)
    left = np.concatenate(([-1.0], c[:-1]))
    right = np.concatenate((c[1:], [-1.0]))
    valley = np.minimum.accumulate(c[::-1])[::-1]
    peak = (
        (c > left)
        & (c >= right)
        & (c >= fraction * c[top])
        & (c - valley > PEAK_DIP_Z * np.sqrt(c + valley))
    )
    peak[top] = True
    return int(np.flatnonzero(peak)[0])


def _lower_sigma(
    values: npt.NDArray[np.float64], mode: float, estimator: SigmaEstimator
) -> float:
    """Spread of the values at or below the mode; 0 if there are fewer than two."""
    low = values[values <= mode]
    if low.size < 2:
        return 0.0
    # In place on the selected copy, with the operations (and so the rounding)
    # of np.std(low) and np.sqrt(np.mean((low - mode) ** 2)).
    if estimator == "lower_std":
        center = np.add.reduce(low, keepdims=True)
        np.true_divide(center, low.size, out=center)
    else:
        center = np.array([mode])
    np.subtract(low, center, out=low)
    np.multiply(low, low, out=low)
    return float(np.sqrt(np.add.reduce(low) / low.size))


@dataclass(frozen=True)
class _Statistics:
    """The statistics sample's range, the histogram mode and the lower sigma."""

    lo: float
    hi: float
    mode: float | None  # None: a single-valued histogram (§2.6)
    sigma: float  # NaN without a mode
    guarded: bool = False  # the mode guard moved the mode (BackgroundReference)


def _sample_statistics(
    values: npt.NDArray[np.float64],
    *,
    bins: int,
    smooth: int,
    estimator: SigmaEstimator,
    peak_fraction: float = 1.0,
    reference: BackgroundReference | None = None,
    guard_k: float | None = None,
) -> _Statistics | None:
    """``lo``, ``hi``, mode and sigma of the log-STD sample (§2.3).

    ``None`` when the sample is empty (a constant frame, §2.6). `reference`
    and `guard_k`: the mode guard (:func:`_guard_bin`).
    """
    if values.size == 0:
        return None
    lo = float(values.min())
    hi = float(values.max())
    histogram = _smoothed_histogram(values, bins, lo, hi, smooth)
    if histogram is None:
        return _Statistics(lo=lo, hi=hi, mode=None, sigma=math.nan)
    counts, centres = histogram
    mode = float(centres[_mode_bin(counts, peak_fraction)])
    sigma = _lower_sigma(values, mode, estimator)
    if reference is None or guard_k is None:
        return _Statistics(lo=lo, hi=hi, mode=mode, sigma=sigma)
    near = _guard_bin(counts, centres, mode, sigma, reference, guard_k)
    if near is None:
        return _Statistics(lo=lo, hi=hi, mode=mode, sigma=sigma)
    mode = float(centres[near])
    return _Statistics(
        lo=lo,
        hi=hi,
        mode=mode,
        sigma=_lower_sigma(values, mode, estimator),
        guarded=True,
    )


def _threshold_mask(
    numerator: _NumArray, n: int, threshold: float, threshold_low: float
) -> tuple[BoolArray, BoolArray]:
    """Return the pixels above the threshold and the foreground (hysteresis).

    `threshold_low` is NaN without the hysteresis; a lower threshold not
    below `threshold` leaves it off too.
    """
    # log-STD > t  <=>  N > n²·exp(2t): no logarithm of the whole frame.
    strong = numerator > _numerator_threshold(threshold, n)
    if threshold_low < threshold:
        weak = numerator > _numerator_threshold(threshold_low, n)
        return strong, _hysteresis(strong, weak)
    return strong, strong
