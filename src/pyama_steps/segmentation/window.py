"""What a FOV's frames share, measured once per FOV before its first frame.

The window choice of ``segmentation.window: auto`` (algorithms.md §2.10) and
the background texture of the mode guard (§2.3).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from pyama_steps._arrays import check_frame
from pyama_steps._typing import RealArray
from pyama_steps._validate import check_int
from pyama_steps.segmentation.texture import (
    _MAX_WINDOW,
    _MIN_WINDOW,
    _sample_log_std,
    _window_sums,
)
from pyama_steps.segmentation.threshold import (
    BINS,
    MODE_PEAK_FRACTION,
    MODE_SMOOTH_BINS,
    SIGMA_ESTIMATOR,
    BackgroundReference,
    SigmaEstimator,
    _sample_statistics,
    _Statistics,
)

__all__ = [
    "MIN_SEPARATION",
    "REFERENCE_FRAMES",
    "SEPARATION_QUANTILE",
    "WINDOW_CANDIDATES",
    "WindowChoice",
    "background_reference",
    "choose_fov_window",
    "choose_window",
    "texture_separation",
]

#: Windows tried by :func:`choose_window`, smallest first.
WINDOW_CANDIDATES: Final = (3, 5, 7)
#: Separation (noise sigmas) at which a window is taken; see algorithms.md §2.10.
MIN_SEPARATION: Final = 5.0
#: Quantile of the log-STD sample that stands for the cells' edges.
SEPARATION_QUANTILE: Final = 0.99
#: Frames of a FOV that ``window: auto`` measures (first, middle, last).
_WINDOW_SAMPLE_FRAMES: Final = 3
#: Frames of a FOV, evenly spaced from the first to the last, whose median
#: mode and sigma are its background texture (the mode guard, §2.3): up to two
#: crowded frames among them do not move it.
REFERENCE_FRAMES: Final = 5
#: Least number of those frames with texture (the median of 2 is their mean,
#: which neither frame holds; a dropped frame has no texture): fewer, and the
#: FOV is not guarded.
_REFERENCE_MIN_FRAMES: Final = 3


def _spread_frames(n_frames: int, count: int) -> list[int]:
    """`count` frame indices evenly spaced over ``0 .. n_frames - 1``, distinct."""
    if n_frames < 1:
        return []
    return sorted({round(i * (n_frames - 1) / (count - 1)) for i in range(count)})


def _frame_statistics(
    image: RealArray,
    window: int,
    bins: int,
    smooth: int,
    peak_fraction: float,
    estimator: SigmaEstimator,
) -> tuple[npt.NDArray[np.float64], _Statistics | None]:
    """Return a checked frame's log-STD sample and its §2.3 statistics (unguarded)."""
    numerator, _ = _window_sums(image, window, keep_s1=False)
    values = _sample_log_std(numerator, window * window)
    stats = _sample_statistics(
        values,
        bins=bins,
        smooth=smooth,
        estimator=estimator,
        peak_fraction=peak_fraction,
    )
    return values, stats


@dataclass(frozen=True)
class WindowChoice:
    """The window :func:`choose_window` took, and what it measured.

    Attributes
    ----------
    window : int
        The window side to segment with.
    separations : tuple of float
        The median separation of each window tried, in the order of the
        candidates (windows after the one taken were not tried).
    """

    window: int
    separations: tuple[float, ...]


def texture_separation(
    frame: RealArray,
    *,
    window: int = 3,
    bins: int = BINS,
    mode_smooth_bins: int = MODE_SMOOTH_BINS,
    mode_peak_fraction: float = MODE_PEAK_FRACTION,
    sigma_estimator: SigmaEstimator = SIGMA_ESTIMATOR,
    quantile: float = SEPARATION_QUANTILE,
) -> float:
    """How far a frame's strongest texture stands above its background noise.

    The log-STD sample, mode and sigma are those of :func:`segment_log_std`
    with the same options; the separation is ``(q - mode) / sigma`` with ``q``
    the `quantile` of the sample. Pure noise gives about 3 at the 0.99
    quantile, for any window; cells whose edges are far above the noise give
    6-14 with a 3-px window.

    Parameters
    ----------
    frame : (Y, X) ndarray
        One phase-contrast frame (real; float frames finite).
    window, bins, mode_smooth_bins, mode_peak_fraction, sigma_estimator
        As for :func:`segment_log_std`.
    quantile : float, optional
        In (0, 1).

    Returns
    -------
    float
        The separation in units of sigma; NaN for a frame without texture
        (constant, single-valued histogram, or sigma 0).
    """
    image = check_frame(frame)
    window = check_int("window", window, minimum=_MIN_WINDOW, maximum=_MAX_WINDOW)
    if window % 2 == 0:
        raise ValueError(f"window must be odd, got {window}")
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile!r}")
    values, stats = _frame_statistics(
        image, window, bins, mode_smooth_bins, mode_peak_fraction, sigma_estimator
    )
    if stats is None or stats.mode is None or not stats.sigma > 0.0:
        return math.nan
    q = float(np.quantile(values, quantile))
    mode, sigma = stats.mode, stats.sigma
    return (q - mode) / sigma


def choose_window(
    frames: Sequence[RealArray],
    *,
    candidates: Sequence[int] = WINDOW_CANDIDATES,
    min_separation: float = MIN_SEPARATION,
    bins: int = BINS,
    mode_smooth_bins: int = MODE_SMOOTH_BINS,
    mode_peak_fraction: float = MODE_PEAK_FRACTION,
    sigma_estimator: SigmaEstimator = SIGMA_ESTIMATOR,
) -> WindowChoice:
    """Pick the smallest window in which the cells stand out of the noise.

    A 3-px window estimates the local std from 9 pixels, so the log-STD of the
    background scatters widely; in dim or low-contrast phase images the cells'
    edges then reach only a few noise sigmas above the background and their
    outlines break up. A larger window averages more pixels: the background
    scatter shrinks faster than the edges' response. The window taken is the
    first of `candidates` whose median :func:`texture_separation` over
    `frames` reaches `min_separation`; when none does (an empty field, or pure
    noise), the first candidate.

    Parameters
    ----------
    frames : sequence of (Y, X) ndarray
        A few frames of one FOV (frames without texture are ignored).
    candidates : sequence of int, optional
        Odd window sides in [3, 37], tried in order.
    min_separation : float, optional
        Separation, in noise sigmas, that a window must reach; finite, > 0.
    bins, mode_smooth_bins, mode_peak_fraction, sigma_estimator
        As for :func:`segment_log_std`.

    Returns
    -------
    WindowChoice
    """
    if not candidates:
        raise ValueError("candidates must name at least one window")
    if not (math.isfinite(min_separation) and min_separation > 0.0):
        raise ValueError(
            f"min_separation must be finite and > 0, got {min_separation!r}"
        )
    separations: list[float] = []
    for window in candidates:
        per_frame = [
            texture_separation(
                f,
                window=window,
                bins=bins,
                mode_smooth_bins=mode_smooth_bins,
                mode_peak_fraction=mode_peak_fraction,
                sigma_estimator=sigma_estimator,
            )
            for f in frames
        ]
        finite = [s for s in per_frame if math.isfinite(s)]
        separation = float(np.median(finite)) if finite else math.nan
        separations.append(separation)
        if separation >= min_separation:
            return WindowChoice(window=int(window), separations=tuple(separations))
    return WindowChoice(window=int(candidates[0]), separations=tuple(separations))


def choose_fov_window(
    n_frames: int,
    read: Callable[[int], RealArray],
    *,
    bins: int,
    mode_smooth_bins: int,
    mode_peak_fraction: float,
    sigma_estimator: SigmaEstimator,
) -> tuple[int, str]:
    """Choose a FOV's window from its first, middle and last frame (§2.10).

    Parameters
    ----------
    n_frames : int
        Frames of the FOV.
    read : callable
        ``read(t)`` returns frame ``t``.
    bins, mode_smooth_bins, mode_peak_fraction, sigma_estimator
        As for :func:`choose_window`.

    Returns
    -------
    window : int
        The window of :func:`choose_window`.
    line : str
        The window, the frames measured and each window's separation, for
        the segment job's log.
    """
    picks = _spread_frames(n_frames, _WINDOW_SAMPLE_FRAMES)
    choice = choose_window(
        [read(t) for t in picks],
        bins=bins,
        mode_smooth_bins=mode_smooth_bins,
        mode_peak_fraction=mode_peak_fraction,
        sigma_estimator=sigma_estimator,
    )
    measured = ", ".join(
        f"{w} px: {s:.3g}"
        for w, s in zip(WINDOW_CANDIDATES, choice.separations, strict=False)
    )
    frames = ",".join(map(str, picks))
    line = (
        f"window={choice.window:d} (auto; separation of frames {frames} in noise "
        f"sigma: {measured})"
    )
    return choice.window, line


def background_reference(
    n_frames: int,
    read: Callable[[int], RealArray],
    *,
    window: int,
    bins: int,
    mode_smooth_bins: int,
    mode_peak_fraction: float,
    sigma_estimator: SigmaEstimator,
) -> tuple[BackgroundReference | None, str]:
    """Measure a FOV's background texture for the mode guard (§2.3).

    The background's log-STD is set by the optics and the camera noise, not
    by how many cells cover the field, so it stays put over a time-lapse
    while the cells' share of the histogram grows. The reference is the
    median histogram mode and the median lower sigma of
    :data:`REFERENCE_FRAMES` frames spread over the FOV, each measured as
    :func:`~pyama_steps.segmentation.log_std.segment_log_std` measures a
    frame without the guard.

    Parameters
    ----------
    n_frames : int
        Frames of the FOV.
    read : callable
        ``read(t)`` returns frame ``t``.
    window, bins, mode_smooth_bins, mode_peak_fraction, sigma_estimator
        As for :func:`~pyama_steps.segmentation.log_std.segment_log_std`.

    Returns
    -------
    reference : BackgroundReference or None
        None when fewer than 3 of the measured frames have texture (a median
        that one crowded frame could move), or the median sigma is 0.
    line : str
        The reference and the frames measured, for the segment job's log.
    """
    picks = _spread_frames(n_frames, REFERENCE_FRAMES)
    modes: list[float] = []
    sigmas: list[float] = []
    for t in picks:
        _, stats = _frame_statistics(
            check_frame(read(t)),
            window,
            bins,
            mode_smooth_bins,
            mode_peak_fraction,
            sigma_estimator,
        )
        if stats is not None and stats.mode is not None:
            modes.append(stats.mode)
            sigmas.append(stats.sigma)
    frames = ",".join(map(str, picks))
    if len(modes) < _REFERENCE_MIN_FRAMES or not float(np.median(sigmas)) > 0.0:
        return None, (
            f"background: {len(modes)} of frames {frames} with texture, "
            f"{_REFERENCE_MIN_FRAMES} needed; mode guard off"
        )
    reference = BackgroundReference(
        level=float(np.median(modes)), sigma=float(np.median(sigmas))
    )
    line = (
        f"background log-STD {reference.level:.6g} (sigma {reference.sigma:.6g}; "
        f"median of frames {frames})"
    )
    return reference, line
