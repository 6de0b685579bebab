"""Phase-contrast segmentation by thresholding the local log standard deviation.

Implements algorithms.md §2 (log-STD): per frame, the log of the local standard
deviation in a square window is thresholded at ``mode + k·sigma`` of its histogram
(sampled on even rows and columns, with a smoothed mode and an optional hysteresis),
and the binary mask is cleaned up by hole filling (with the frame edge mirrored), a
phase-contrast halo trim, an opening, an optional closing, a refill, an optional
shrink, a split of touching cells and a minimum area.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from pyama_steps._typing import BoolArray, LabelArray, RealArray
from pyama_steps.morphology import dilate_square as _dilate
from pyama_steps.morphology import erode_square as _erode
from pyama_steps.morphology import run_reduce as _run_reduce

__all__ = [
    "MIN_SEPARATION",
    "WINDOW_CANDIDATES",
    "SegmentationFrame",
    "WindowChoice",
    "choose_window",
    "segment_log_std",
    "texture_separation",
]

SigmaEstimator: TypeAlias = Literal["lower_std", "lower_rms"]
SplitMethod: TypeAlias = Literal["none", "watershed", "neck"]
FillBorder: TypeAlias = Literal["open", "mirror"]
HaloLevel: TypeAlias = Literal["edge", "noise"]

_SIGMA_ESTIMATORS: Final = ("lower_std", "lower_rms")
_SPLIT_METHODS: Final = ("none", "watershed", "neck")
_FILL_BORDERS: Final = ("open", "mirror")
_HALO_LEVELS: Final = ("edge", "noise")
# Halo trim (§2.4): pixels within this many px of a thresholded pixel are not used
# for the background level.
_HALO_EXCLUDE_PX: Final = 3
# The halo trim needs this share of the objects' inner pixels darker than the
# background by the margin: phase-dense (dark) objects, as in phase contrast. In
# fluorescence or bright field, where objects are bright, it is skipped.
_HALO_MIN_DARK: Final = 0.25
# A block is a usable background sample when at least this share of it is background.
_HALO_MIN_BACKGROUND: Final = 0.1
# Neck split (§2.4): components with 4-boundary² > 4π·_NECK_ROUNDNESS·area are
# examined (a digital disk or ellipse up to aspect 1.6 gives 0.7-0.9, two touching
# disks about 1.5); distance maxima lower than _NECK_MIN_PEAK px seed nothing.
_NECK_ROUNDNESS: Final = 0.96
_NECK_MIN_PEAK: Final = 2.0
_MIN_WINDOW: Final = 3
_MAX_WINDOW: Final = 37
# Below this bound on (n·ptp)², every box sum, n·S2 and S1² is exact in int64.
_EXACT_LIMIT: Final = 2**62

_NumArray: TypeAlias = (
    npt.NDArray[np.int32] | npt.NDArray[np.int64] | npt.NDArray[np.float64]
)


@dataclass(frozen=True, eq=False)
class SegmentationFrame:
    """Mask and per-frame statistics of one log-STD segmentation.

    Attributes
    ----------
    mask : (Y, X) ndarray of bool
        Foreground (cell) pixels after cleanup.
    lo, hi : float
        Smallest and largest log-STD value over the pixels of even rows and
        columns with non-zero local variance (the statistics sample). NaN when
        the sample has no such pixel.
    mode : float
        Centre of the histogram bin with the largest count summed over
        ``mode_smooth_bins`` bins. NaN when the frame is degenerate (no valid
        sampled pixel, or ``hi == lo``).
    sigma : float
        Spread estimate of the values at or below the mode; 0 when fewer than
        two such values exist. NaN when the frame is degenerate.
    threshold : float
        ``mode + threshold_k * sigma``. NaN when the frame is degenerate.
    threshold_low : float
        ``mode + threshold_low_k * sigma``, the lower threshold of the
        hysteresis. NaN when the hysteresis is off or the frame is degenerate.
    foreground_fraction : float
        Share of ``True`` pixels in `mask`, in [0, 1].
    edge_ratio : float
        The halo trim's edge level relative to the background minus 1
        (``halo_level='edge'``); NaN when the trim did not run or used the
        noise margin.
    """

    mask: BoolArray
    lo: float
    hi: float
    mode: float
    sigma: float
    threshold: float
    threshold_low: float
    foreground_fraction: float
    edge_ratio: float = math.nan


def segment_log_std(
    frame: RealArray,
    *,
    window: int = 3,
    bins: int = 200,
    mode_smooth_bins: int = 11,
    sigma_estimator: SigmaEstimator = "lower_std",
    threshold_k: float = 1.25,
    threshold_low_k: float | None = None,
    fill_holes: bool = True,
    fill_border: FillBorder = "mirror",
    fill_mirror_px: int = 64,
    halo_trim: bool = True,
    halo_k: float = 1.5,
    halo_block_px: int = 32,
    halo_level: HaloLevel = "edge",
    edge_offset_px: float = 0.5,
    halo_edge_k: float | None = 2.0,
    junction_px: int = 3,
    junction_k: float | None = 6.0,
    open_size: int = 3,
    open_iterations: int = 2,
    close_size: int = 3,
    close_iterations: int = 0,
    refill_holes: bool = True,
    shrink_px: int = 0,
    split: SplitMethod = "neck",
    split_h_px: float = 2.0,
    split_neck_ratio: float = 0.7,
    min_area_px: int = 100,
    min_area_keep_edge: bool = True,
) -> SegmentationFrame:
    """Segment one phase-contrast frame by its local log standard deviation.

    Parameters
    ----------
    frame : (Y, X) ndarray
        One frame of any real integer or floating dtype (the workflow passes
        uint16). Float frames must be finite. Not modified.
    window : int, optional
        Side of the square window of the local standard deviation; odd, in
        [3, 37].
    bins : int, optional
        Number of equal histogram bins over ``[lo, hi]`` of the valid log-STD
        values of the pixels of even rows and columns; at least 1.
    mode_smooth_bins : int, optional
        The mode is the centre of the bin whose counts, summed over this many
        consecutive bins centred on it, are largest; odd, >= 1 (1: the fullest
        single bin).
    sigma_estimator : {'lower_std', 'lower_rms'}, optional
        ``'lower_std'``: standard deviation (ddof 0) of the values at or below
        the mode, about their own mean. ``'lower_rms'``: root mean square of
        their distance to the mode.
    threshold_k : float, optional
        Foreground is ``log-STD > mode + threshold_k * sigma``; finite, >= 0.
    threshold_low_k : float or None, optional
        Hysteresis: a 4-connected region of ``log-STD > mode + threshold_low_k *
        sigma`` is foreground when it holds a pixel above the threshold of
        `threshold_k`; finite, in [0, threshold_k]. ``None`` disables it.
    fill_holes : bool, optional
        Fill holes right after thresholding.
    fill_border : {'open', 'mirror'}, optional
        How the first hole filling treats the frame edge. ``'open'``: a
        background region touching the edge is never a hole. ``'mirror'``:
        holes are filled in the mask extended by mirroring (``d c b a | a b c
        d``) over `fill_mirror_px`, so a cell cut by the edge is filled. The
        refill always treats the edge as open.
    fill_mirror_px : int, optional
        Width of the mirrored band, >= 1 (clipped to a quarter of the frame
        size); edge regions reaching farther into the frame are not filled.
        Used only with ``fill_border='mirror'``.
    halo_trim : bool, optional
        Remove the bright phase-contrast halo: pixels whose window mean exceeds
        the local background level by ``halo_k`` times the pixel noise leave the
        mask (skipped in a frame whose objects are not darker than their
        background). Turn it off for DIC or bright field (and set
        ``shrink_px=1``).
    halo_k : float, optional
        Margin of the halo trim in units of the pixel noise ``exp(mode)``;
        finite, >= 0.
    halo_block_px : int, optional
        Side of the blocks whose background means, interpolated bilinearly,
        give the local background level; even, >= 4.
    halo_level : {'edge', 'noise'}, optional
        Where the halo trim's level lies. ``'edge'``: at the cells' edges, a
        ratio of the local background measured in each frame at the steep
        steps from the cells' dark bodies to their halos (``edge_offset_px``
        outward of the steepest slope); ``'noise'`` (or when fewer than 30
        such edge pixels are found): `halo_k` times the pixel noise above the
        background.
    edge_offset_px : float
        ``'edge'``: the level is the window mean this many px outward of the
        steepest slope (the window mean plus this times its slope per px);
        finite, >= 0.
    halo_edge_k : float or None, optional
        Outline restore after the halo trim: each final component grows by one
        pixel (4-neighbours) into pixels of the filled threshold mask whose own
        value (not the window mean) exceeds the background level by at most
        ``halo_edge_k`` times the pixel noise, except where another component
        lies within 2 px (city-block), so cells stay 4-separated. It gives back
        the cell's edge pixels that the trim removed because their window
        reaches one pixel into the halo. Finite, >= 0; ``None`` disables it.
        Used only when the trim runs.
    junction_px : int, optional
        Junction restore after the outline restore: background pixels whose
        ``(2·junction_px + 1)``² square holds pixels of two or more components,
        and that are in the filled threshold mask, are given to the nearest
        component by growing all components together one pixel (4-neighbours)
        per step for `junction_px` steps; a pixel next to two components stays
        background, and of two 4-adjacent pixels claimed by different
        components the brighter stays background, so the separating line
        follows the bright junction line and cells stay 4-separated. >= 0; 0
        disables it. Used only when the trim runs.
    junction_k : float or None, optional
        Image test of the junction restore: a gap pixel is filled only when its
        window mean exceeds the background level by at most ``junction_k``
        times the pixel noise (the thin junction line leaves the window darker
        than the broad halo over a background gap). Finite, >= 0; ``None``
        drops the test (the filled threshold mask still applies).
    open_size, open_iterations : int, optional
        Square element side (>= 1) and number of erosions followed by as many
        dilations (>= 0; 0 disables the opening).
    close_size, close_iterations : int, optional
        Square element side (>= 1) and number of dilations followed by as many
        erosions (>= 0; 0 disables the closing).
    refill_holes : bool, optional
        Fill holes again after the halo trim, the opening and the closing.
    shrink_px : int, optional
        Final erosion by a ``(2·shrink_px + 1)``² square; >= 0, 0 disables it.
    split : {'none', 'watershed', 'neck'}, optional
        Separation of touching cells (algorithms.md §2.4): ``'neck'`` cuts
        components at distance-map necks narrower than `split_neck_ratio` of
        the cells on both sides; ``'watershed'`` is an h-maxima watershed.
    split_h_px : float, optional
        Minimum height, in px, of a distance-transform peak that seeds a
        watershed region; finite, > 0. Used only with ``split='watershed'``.
    split_neck_ratio : float, optional
        Two distance maxima stay one cell when the highest path between them
        never drops below this fraction of the lower maximum; in (0, 1]. Used
        only with ``split='neck'``.
    min_area_px : int, optional
        Remove 4-connected components with fewer pixels; >= 0, 0 disables it.
    min_area_keep_edge : bool, optional
        Keep components touching the frame edge whatever their area.

    Returns
    -------
    SegmentationFrame
        The (Y, X) bool mask and the statistics ``lo``, ``hi``, ``mode``,
        ``sigma``, ``threshold``, ``threshold_low`` and
        ``foreground_fraction``.

    Raises
    ------
    TypeError
        If `frame` does not have a real (integer or floating) dtype, or an option
        has the wrong type.
    ValueError
        If `frame` is not 2-D, is empty or holds NaN/inf, or an option is out of
        range.

    Notes
    -----
    With ``n = window²`` and ``S1``, ``S2`` the window sums of ``x`` and ``x²``
    (border mode ``reflect``: ``d c b a | a b c d``), ``N = n·S2 - S1²`` is
    ``n²`` times the local variance and ``log-STD = 0.5·ln(N) - ln(n)``. For
    integer frames and float frames holding whole numbers, ``N`` is computed
    exactly in int64 (the frame minimum is subtracted first, which leaves ``N``
    unchanged), so flat regions have exactly ``N = 0``; they are excluded from
    the histogram and from the foreground. Other float frames are summed in
    float64, where ``N`` carries rounding errors. The histogram, ``lo``,
    ``hi`` and ``sigma`` use the pixels of even rows and columns (their 3 x 3
    windows cover every pixel); the threshold is applied to every pixel as
    ``N > n²·exp(2·threshold)``.

    A frame without valid sampled pixel (constant, including all-zero) or with
    a single log-STD value gives an empty mask. PyAMA's implementation instead
    computed ``E[x²] - E[x]²`` in float32, put zero-variance pixels into the
    histogram as log-STD 0, and used a 19 x 19 effective opening with a
    closing; it had no smoothed mode, edge mirroring, halo trim, split or
    minimum area (``threshold_k=3, mode_smooth_bins=1, fill_border='open',
    halo_trim=False, open_size=7, open_iterations=3, close_size=7,
    close_iterations=3, refill_holes=False, shrink_px=0, split='none',
    min_area_px=0`` reproduces its parameters).

    Erosions treat pixels outside the frame as foreground and dilations treat
    them as background, so the frame edge neither eats nor creates objects.

    References
    ----------
    algorithms.md §2 (log-STD segmentation).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> frame = rng.poisson(1000, (64, 64)).astype(np.uint16)
    >>> frame[20:40, 20:40] += rng.poisson(3000, (20, 20)).astype(np.uint16)
    >>> seg = segment_log_std(frame)
    >>> bool(seg.mask[30, 30]), bool(seg.mask[5, 5])
    (True, False)
    """
    image = _check_frame(frame)
    window = _check_int("window", window, minimum=_MIN_WINDOW, maximum=_MAX_WINDOW)
    if window % 2 == 0:
        raise ValueError(
            f"window must be an odd integer in [{_MIN_WINDOW}, {_MAX_WINDOW}]; "
            f"got {window!r}"
        )
    bins = _check_int("bins", bins, minimum=1)
    mode_smooth_bins = _check_int("mode_smooth_bins", mode_smooth_bins, minimum=1)
    if mode_smooth_bins % 2 == 0:
        raise ValueError(
            f"mode_smooth_bins must be an odd integer >= 1; got {mode_smooth_bins!r}"
        )
    _check_choice("sigma_estimator", sigma_estimator, _SIGMA_ESTIMATORS)
    threshold_k = _check_real("threshold_k", threshold_k, minimum=0.0)
    if threshold_low_k is not None:
        threshold_low_k = _check_real("threshold_low_k", threshold_low_k, minimum=0.0)
        if threshold_low_k > threshold_k:
            raise ValueError(
                "threshold_low_k must be <= threshold_k (the hysteresis grows "
                f"into a lower threshold); got {threshold_low_k!r} > "
                f"{threshold_k!r}. Lower it, or pass None to disable the hysteresis"
            )
    fill_holes = _check_bool("fill_holes", fill_holes)
    _check_choice("fill_border", fill_border, _FILL_BORDERS)
    fill_mirror_px = _check_int("fill_mirror_px", fill_mirror_px, minimum=1)
    halo_trim = _check_bool("halo_trim", halo_trim)
    halo_k = _check_real("halo_k", halo_k, minimum=0.0)
    halo_block_px = _check_int("halo_block_px", halo_block_px, minimum=4)
    _check_choice("halo_level", halo_level, _HALO_LEVELS)
    edge_offset_px = _check_real("edge_offset_px", edge_offset_px, minimum=0.0)
    if halo_edge_k is not None:
        halo_edge_k = _check_real("halo_edge_k", halo_edge_k, minimum=0.0)
    junction_px = _check_int("junction_px", junction_px, minimum=0)
    if junction_k is not None:
        junction_k = _check_real("junction_k", junction_k, minimum=0.0)
    if halo_block_px % 2:
        raise ValueError(
            f"halo_block_px must be an even integer >= 4; got {halo_block_px!r}"
        )
    open_size = _check_int("open_size", open_size, minimum=1)
    open_iterations = _check_int("open_iterations", open_iterations, minimum=0)
    close_size = _check_int("close_size", close_size, minimum=1)
    close_iterations = _check_int("close_iterations", close_iterations, minimum=0)
    refill_holes = _check_bool("refill_holes", refill_holes)
    shrink_px = _check_int("shrink_px", shrink_px, minimum=0)
    _check_choice("split", split, _SPLIT_METHODS)
    split_h_px = _check_real("split_h_px", split_h_px, minimum=0.0, open_min=True)
    split_neck_ratio = _check_real(
        "split_neck_ratio", split_neck_ratio, minimum=0.0, open_min=True
    )
    if split_neck_ratio > 1.0:
        raise ValueError(
            f"split_neck_ratio must be a finite number in (0, 1]; "
            f"got {split_neck_ratio!r}"
        )
    min_area_px = _check_int("min_area_px", min_area_px, minimum=0)
    min_area_keep_edge = _check_bool("min_area_keep_edge", min_area_keep_edge)

    nan = math.nan
    n = window * window
    numerator, s1 = _window_sums(image, window, keep_s1=halo_trim)
    # The statistics use the pixels of even rows and columns: the windows
    # overlap, so the sample still sees every pixel, at a quarter of the cost.
    sample = numerator[::2, ::2]
    values = _log_std(sample[sample > 0], n)
    if values.size == 0:
        # Constant frame, including an all-zero dropped frame (§2.6): no texture.
        return _empty_result(image.shape, nan, nan)
    lo = float(values.min())
    hi = float(values.max())
    mode = _histogram_mode(values, bins, lo, hi, mode_smooth_bins)
    if mode is None:
        # Single-valued histogram (§2.6): nothing stands out from the background.
        return _empty_result(image.shape, lo, hi)
    sigma = _lower_sigma(values, mode, sigma_estimator)
    del values, sample
    threshold = mode + threshold_k * sigma
    threshold_low = nan if threshold_low_k is None else mode + threshold_low_k * sigma

    # log-STD > t  <=>  N > n²·exp(2t): no logarithm of the whole frame.
    strong = numerator > _numerator_threshold(threshold, n)
    if threshold_low_k is not None and threshold_low < threshold:
        fg = _hysteresis(strong, numerator > _numerator_threshold(threshold_low, n))
    else:
        fg = strong
    mirror_px = fill_mirror_px if fill_border == "mirror" else 0
    if fill_holes:
        fg = _fill_holes(fg, mirror_px)
    outline: Callable[[npt.NDArray[np.intp]], BoolArray] | None = None
    junction: Callable[[npt.NDArray[np.intp]], BoolArray] | None = None
    edge_ratio = nan
    band_level: npt.NDArray[np.float64] | None = None
    if halo_trim and s1 is not None:
        filled = fg
        noise_margin = n * halo_k * math.exp(mode)
        fg, grid, margin, edge_ratio = _halo_trim(
            fg,
            strong,
            s1,
            noise_margin,
            halo_block_px,
            edge=None
            if halo_level == "noise"
            else _EdgeLevel(float(image.min()), n, edge_offset_px),
        )
        edge_used = not math.isnan(edge_ratio)
        if grid is not None and edge_used:
            band_level = grid
        if grid is not None and halo_edge_k is not None:
            # The pixel itself, in S1 units (n·(x - min)), against
            # T_edge = T + n·(halo_edge_k - halo_k)·exp(mode), in float64,
            # tested at the pixels along the final outlines only.
            outline = _level_allowed(
                image,
                filled,
                grid,
                halo_block_px,
                margin=margin,
                # At the edge level the pixel itself must not exceed it.
                extra=0.0 if edge_used else n * (halo_edge_k - halo_k) * math.exp(mode),
                offset=float(image.min()),
                scale=float(n),
            )
        if grid is not None and junction_px > 0:
            # S1 against T_junction = T + n·(junction_k - halo_k)·exp(mode) at
            # the gap pixels only; no window test with junction_k None.
            junction = _level_allowed(
                s1,
                filled,
                grid,
                halo_block_px,
                margin=margin,
                extra=(
                    math.inf
                    if junction_k is None
                    else n * (junction_k - halo_k) * math.exp(mode)
                ),
            )
        del filled, grid
    del strong, numerator
    if open_iterations:
        fg = _erode(fg, open_size, open_iterations)
        fg = _dilate(fg, open_size, open_iterations)
    if close_iterations:
        fg = _dilate(fg, close_size, close_iterations)
        fg = _erode(fg, close_size, close_iterations)
    if refill_holes:
        # The frame edge is open here: the trim has cleared the bright background
        # bays that the mirror closed between cells at the edge, and filling
        # them again would join those cells.
        fg = _fill_holes(fg)
    if band_level is not None and s1 is not None:
        fg = _trim_outline_band(fg, s1, band_level, halo_block_px)
    del s1
    if shrink_px > 0:
        fg = _erode(fg, 2 * shrink_px + 1, 1)
    if split == "watershed":
        fg = _watershed_split(fg, split_h_px)
    fg = _split_and_filter(
        fg,
        neck_ratio=split_neck_ratio if split == "neck" else None,
        min_area=min_area_px,
        keep_edge=min_area_keep_edge,
    )
    labelled = None
    if outline is not None:
        if junction is None:
            fg = _restore_outline(fg, outline)
        else:
            # The junction restore reuses the labels of the outline restore.
            fg, labels, count = _restore_outline_labelled(fg, outline)
            labelled = None if labels is None else (labels, count)
    if junction is not None:
        fg = _restore_junctions(fg, junction, image, junction_px, labelled)
    return SegmentationFrame(
        mask=fg,
        lo=lo,
        hi=hi,
        mode=mode,
        sigma=sigma,
        threshold=threshold,
        threshold_low=threshold_low,
        foreground_fraction=np.count_nonzero(fg) / fg.size,
        edge_ratio=edge_ratio,
    )


# --------------------------------------------------------------------------------------
# Window choice (§2.10)
# --------------------------------------------------------------------------------------

#: Windows tried by :func:`choose_window`, smallest first.
WINDOW_CANDIDATES: Final = (3, 5, 7)
#: Separation (noise sigmas) at which a window is taken; see algorithms.md §2.10.
MIN_SEPARATION: Final = 5.0
#: Quantile of the log-STD sample that stands for the cells' edges.
SEPARATION_QUANTILE: Final = 0.99


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
    bins: int = 200,
    mode_smooth_bins: int = 11,
    sigma_estimator: SigmaEstimator = "lower_std",
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
    window, bins, mode_smooth_bins, sigma_estimator
        As for :func:`segment_log_std`.
    quantile : float, optional
        In (0, 1).

    Returns
    -------
    float
        The separation in units of sigma; NaN for a frame without texture
        (constant, single-valued histogram, or sigma 0).
    """
    image = _check_frame(frame)
    window = _check_int("window", window, minimum=_MIN_WINDOW, maximum=_MAX_WINDOW)
    if window % 2 == 0:
        raise ValueError(f"window must be odd, got {window}")
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile!r}")
    numerator, _ = _window_sums(image, window, keep_s1=False)
    sample = numerator[::2, ::2]
    values = _log_std(sample[sample > 0], window * window)
    if values.size == 0:
        return math.nan
    q = float(np.quantile(values, quantile))
    mode = _histogram_mode(
        values, bins, float(values.min()), float(values.max()), mode_smooth_bins
    )
    if mode is None:
        return math.nan
    sigma = _lower_sigma(values, mode, sigma_estimator)
    if not sigma > 0.0:
        return math.nan
    return (q - mode) / sigma


def choose_window(
    frames: Sequence[RealArray],
    *,
    candidates: Sequence[int] = WINDOW_CANDIDATES,
    min_separation: float = MIN_SEPARATION,
    bins: int = 200,
    mode_smooth_bins: int = 11,
    sigma_estimator: SigmaEstimator = "lower_std",
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
    bins, mode_smooth_bins, sigma_estimator
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


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def _check_frame(frame: RealArray) -> RealArray:
    image = np.asarray(frame)
    if image.dtype.kind not in "iuf":
        raise TypeError(
            "frame must have a real integer or floating dtype; "
            f"got dtype {image.dtype!r}. Convert it, e.g. with frame.astype(np.uint16)"
        )
    if image.ndim != 2:
        raise ValueError(
            f"frame must be a 2-D (Y, X) array; got shape {image.shape!r}. "
            "Pass one frame of the (T, Y, X) stack"
        )
    if image.size == 0:
        raise ValueError(
            "frame must have at least one row and one column; "
            f"got shape {image.shape!r}"
        )
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise ValueError("frame must be finite; got NaN or infinite values")
    return image


def _check_int(
    name: str, value: Any, *, minimum: int, maximum: int | None = None
) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int; got {value!r}")
    result = int(value)
    if result < minimum or (maximum is not None and result > maximum):
        valid = f"in [{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name} must be an integer {valid}; got {value!r}")
    return result


def _check_real(
    name: str, value: Any, *, minimum: float, open_min: bool = False
) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    result = float(value)
    too_small = result <= minimum if open_min else result < minimum
    if not math.isfinite(result) or too_small:
        valid = f"> {minimum}" if open_min else f">= {minimum}"
        raise ValueError(f"{name} must be a finite number {valid}; got {value!r}")
    return result


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices!r}; got {value!r}")


# --------------------------------------------------------------------------------------
# Threshold
# --------------------------------------------------------------------------------------


def _empty_result(shape: tuple[int, ...], lo: float, hi: float) -> SegmentationFrame:
    nan = math.nan
    return SegmentationFrame(
        mask=np.zeros(shape, dtype=np.bool_),
        lo=lo,
        hi=hi,
        mode=nan,
        sigma=nan,
        threshold=nan,
        threshold_low=nan,
        foreground_fraction=0.0,
    )


def _histogram_mode(
    values: npt.NDArray[np.float64],
    bins: int,
    lo: float,
    hi: float,
    smooth: int = 1,
) -> float | None:
    """Return the centre of the fullest of `bins` equal bins over [lo, hi].

    With ``smooth > 1`` (odd) the fullest bin is that of the counts summed over
    `smooth` consecutive bins centred on each bin (bins beyond the ends count
    0). ``None`` when the range is empty, or so narrow (a few ulps) that `bins`
    distinct float64 edges do not exist; numpy would raise there, and the frame
    is treated as single-valued.
    """
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
    # argmax returns the first maximum: ties go to the lowest bin (§2.3 item 3).
    i = int(np.argmax(counts))
    return float((edges[i] + edges[i + 1]) / 2)


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


# --------------------------------------------------------------------------------------
# Binary morphology
# --------------------------------------------------------------------------------------


def _fill_holes(mask: BoolArray, mirror_px: int = 0) -> BoolArray:
    """Fill background 4-connected components that are enclosed by foreground.

    With ``mirror_px = 0`` a component touching the frame edge is never a hole:
    equal to ``scipy.ndimage.binary_fill_holes(mask)`` (default cross
    structure), but faster (one labelling of the background instead of a
    propagation). With ``mirror_px > 0`` the mask is extended by
    ``np.pad(mask, ((py, py), (px, px)), mode='symmetric')``, ``py =
    min(mirror_px, Y // 4)`` and ``px = min(mirror_px, X // 4)`` (written ``p``
    below), so a cell cut by the frame edge, whose ring is open at the
    edge, is closed by its mirror image. A component of the extended background
    is a hole when it does not touch the border of the extended frame and, if
    it touches the frame edge, does not reach the core of the frame (rows
    ``py .. Y-1-py`` and columns ``px .. X-1-px``). The last rule keeps the
    mirror from closing large background areas: the interior of a cut cell lies
    within ``p`` px of the edge.
    """
    rows, cols = mask.shape
    # A quarter of the frame at most: the core keeps half of each axis.
    py, px = min(mirror_px, rows // 4), min(mirror_px, cols // 4)
    grid = np.pad(mask, ((py, py), (px, px)), mode="symmetric") if py or px else mask
    labels, count = _label_compact(~grid)
    if count == 0:
        return mask.copy()
    open_to_edge = np.zeros(count + 1, dtype=np.bool_)
    _mark_edge(open_to_edge, labels)
    inner = labels[py : py + rows, px : px + cols]
    if py or px:
        # The core, farther than p px from every edge, is entered through
        # its own border.
        deep = np.zeros(count + 1, dtype=np.bool_)
        _mark_edge(deep, inner[py : rows - py, px : cols - px])
        at_edge = np.zeros(count + 1, dtype=np.bool_)
        _mark_edge(at_edge, inner)
        open_to_edge |= deep & at_edge
    # Label 0 is the foreground itself, already in `mask`. Usually the
    # background is a few large regions with few holes, and `_lookup` then
    # compares with each hole instead of a lookup over every pixel.
    holes = ~open_to_edge
    holes[0] = False
    return mask | _lookup(holes, inner)


def _label_compact(mask: BoolArray) -> tuple[npt.NDArray[np.integer[Any]], int]:
    """``ndi.label(mask)`` in uint16 when the labels fit, else in int32.

    The same labels; uint16 halves the memory that labelling and the lookups
    after it stream through.
    """
    try:
        labels, count = ndi.label(mask, output=np.uint16)
    except RuntimeError:  # more than 65535 components
        labels, count = ndi.label(mask)
    return labels, int(count)


def _lookup(table: BoolArray, labels: LabelArray) -> BoolArray:
    """Return ``table[labels]`` (a bool image), fast.

    A few true entries are found by comparisons, which stream the label image
    once each; otherwise np.take with a uint8 view of the table (about twice as
    fast as fancy indexing, and faster than a bool table).
    """
    true = np.flatnonzero(table)
    if true.size <= 2:
        out = np.zeros(labels.shape, dtype=np.bool_)
        for value in true.tolist():
            out |= labels == value
        return out
    return np.take(table.view(np.uint8), labels).view(np.bool_)


def _hysteresis(strong: BoolArray, weak: BoolArray) -> BoolArray:
    """Keep the 4-connected components of `weak` that hold a `strong` pixel.

    `strong` must be a subset of `weak`.
    """
    labels, count = ndi.label(weak)
    if count == 0:
        return weak.copy()
    seeded = np.zeros(count + 1, dtype=np.bool_)
    seeded[labels[strong]] = True
    seeded[0] = False
    return _lookup(seeded, labels)


@dataclass(frozen=True)
class _EdgeLevel:
    """What the halo trim needs to place its level at the cells' edges (§2.4)."""

    minimum: float  # the frame minimum subtracted before the window sums
    n: int  # window², so that S1 / n + minimum is the window mean
    offset_px: float  # the level lies this many px outward of the steepest slope


def _halo_trim(
    mask: BoolArray,
    strong: BoolArray,
    s1: _NumArray,
    margin: float,
    block: int,
    *,
    edge: _EdgeLevel | None = None,
) -> tuple[BoolArray, npt.NDArray[np.float64] | None, float, float]:
    """Remove the pixels brighter than the local background (§2.4 halo trim).

    Parameters
    ----------
    mask : (Y, X) ndarray of bool
        The filled mask.
    strong : (Y, X) ndarray of bool
        Pixels above the threshold; they and their neighbours within
        `_HALO_EXCLUDE_PX` are not background.
    s1 : (Y, X) ndarray
        Window sums ``S1`` (of the frame minus its minimum).
    margin : float
        ``n·halo_k·exp(mode)``, the margin in ``S1`` units.
    block : int
        Block side in px (even).

    edge : _EdgeLevel or None
        With `edge`, the level is placed at the cells' edges instead of
        `margin` above the background: ``T = (1 + rho)·B_abs`` in absolute
        intensity, ``rho`` from `_edge_ratio` (§2.4); `margin` is kept when
        too few edge pixels are found.

    Returns
    -------
    trimmed : (Y, X) ndarray of bool
        `mask` without its pixels with ``S1 > T``, ``T = B + margin`` and
        ``B`` the background level (`_background_level`; ``T`` as `_bilinear`
        with offset `margin`). `mask` itself when no block is
        usable background, or when the objects are not phase-dense: fewer than
        `_HALO_MIN_DARK` of the mask's even-row, even-column pixels whose 8
        sampled neighbours (2 px away) are in the mask (of all its even-row,
        even-column pixels if there is none) have ``S1 < B - margin``.
    grid : ndarray of float64 or None
        None when the trim was skipped, else the block values of the level:
        ``T = _bilinear(grid, Y, X, block, level_margin)``. They are the block
        means ``B`` (`_background_grid`), or with an edge level
        ``(1 + rho)·B + rho·n·minimum``.
    level_margin : float
        `margin`, or 0 with an edge level.
    rho : float
        The edge ratio ``rho``; NaN when it was not used.
    """
    nan = math.nan
    sampled = mask[::2, ::2]
    if not sampled.any():
        return mask, None, margin, nan
    grid = _background_grid(strong, s1, block)
    if grid is None:
        return mask, None, margin, nan
    # T = B + margin; the polarity compares with T - 2·margin (= B - margin).
    rows, cols = mask.shape
    level = _bilinear(grid, rows, cols, block, margin, step=2)  # = T[::2, ::2]
    inner = _erode(sampled, 3, 1)
    if not inner.any():
        inner = sampled
    level_inner = level[inner]
    level_inner -= 2.0 * margin
    dark = np.count_nonzero(s1[::2, ::2][inner] < level_inner)
    if dark < _HALO_MIN_DARK * level_inner.size:
        # Objects as bright as their surroundings (fluorescence, bright field):
        # no phase-contrast halo to remove.
        return mask, None, margin, nan
    rho = nan if edge is None else _edge_ratio(s1, mask, grid, block, edge)
    if math.isnan(rho) or edge is None:
        trimmed = mask & _bilinear(grid, rows, cols, block, margin, at_least=s1)
        return trimmed, grid, margin, rho
    # Edge level: T_edge = (1 + rho)·B_abs in absolute intensity, i.e.
    # (1 + rho)·B + rho·n·minimum in S1 units, bilinear in the block values.
    # The trim removes what is brighter than T_edge + _EDGE_TRIM_SLACK·B_abs
    # (and than the noise level), then, within _EDGE_BAND_PX of the trimmed
    # outlines, what is brighter than T_edge itself: bright parts inside a
    # cell (a phase-bright centre) stay unless they are near its outline.
    edge_grid = (1.0 + rho) * grid + rho * edge.n * edge.minimum
    slack = rho + _EDGE_TRIM_SLACK
    cap_grid = (1.0 + slack) * grid + slack * edge.n * edge.minimum
    low = np.minimum(grid + margin, cap_grid)
    trimmed = mask & _bilinear(low, rows, cols, block, at_least=s1)
    return trimmed, edge_grid, 0.0, rho


def _trim_outline_band(
    mask: BoolArray, s1: _NumArray, edge_grid: npt.NDArray[np.float64], block: int
) -> BoolArray:
    """Peel the pixels brighter than T_edge from the outlines inward (§2.4).

    In each of `_EDGE_BAND_PX` steps, the mask pixels with a 4-neighbour
    outside the mask (the frame edge counts as inside) whose ``S1 >
    T_edge`` leave it; so no hole opens inside a cell, and nothing deeper than
    `_EDGE_BAND_PX` px goes.
    """
    rows, cols = mask.shape
    test = _level_allowed(s1, mask, edge_grid, block, margin=0.0, extra=0.0)
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    cand = np.flatnonzero(mask & ~inner)
    out = mask.copy()
    flat = out.ravel()
    for _ in range(_EDGE_BAND_PX):
        if cand.size == 0:
            break
        bright = cand[~test(cand)]
        if bright.size == 0:
            break
        flat[bright] = False
        # The in-frame 4-neighbours of the removed pixels still in the mask are
        # the next candidates.
        y = bright // cols
        x = bright - y * cols
        nb = np.concatenate(
            (
                bright[y > 0] - cols,
                bright[y < rows - 1] + cols,
                bright[x > 0] - 1,
                bright[x < cols - 1] + 1,
            )
        )
        nb = np.unique(nb)
        cand = nb[flat[nb]]
    return out


# The edge-level trim's first pass keeps pixels up to this share of the
# background above the edge level (§2.4).
_EDGE_TRIM_SLACK: Final = 0.03
_EDGE_BAND_PX: Final = 3


# Edge level (§2.4): the ring of the filled mask searched for the cells' edges,
# the least number of edge pixels for a level, and how far (px) on either side of
# an edge pixel its dark and bright sides are read.
_EDGE_RING_PX: Final = 6
_EDGE_MIN_PIXELS: Final = 30
_EDGE_SIDE_PX: Final = 2
_EDGE_MAX_SAMPLES: Final = 4000


def _edge_ratio(
    s1: _NumArray,
    filled: BoolArray,
    grid: npt.NDArray[np.float64],
    block: int,
    edge: _EdgeLevel,
) -> float:
    """Return the cells' edge level relative to the background, ``rho`` (§2.4).

    Among the pixels of odd rows and columns within `_EDGE_RING_PX` of the
    outline of `filled` (and 3 px from the frame edge), edge pixels are local
    maxima of the gradient magnitude of ``S1`` along their quantised gradient
    direction whose dark side (2 px against the gradient) is below the
    background ``B`` and bright side (2 px along it) above it: the steep step
    from a cell's dark body to its halo. Of these, the stronger half (gradient
    at least their median) gives ``rho = median((I + offset_px·g) / B_abs) - 1``
    with ``I`` the window mean, ``g`` its slope per px and ``B_abs`` the
    background level, all in absolute intensity. NaN with fewer than
    `_EDGE_MIN_PIXELS` edge pixels.
    """
    nan = math.nan
    rows, cols = filled.shape
    m = 3
    if rows <= 2 * m or cols <= 2 * m:
        return nan
    # Rows and columns m, m + 2, ... of the frame (m = 3 is odd: the samples
    # lie on odd rows and columns, between those of the trim's statistics); the
    # ring is found on that half-resolution grid.
    sample = filled[m : rows - m : 2, m : cols - m : 2]
    ring = sample & ~_erode(sample, _EDGE_RING_PX + 1, 1)
    ys, xs = np.nonzero(ring)
    if ys.size < _EDGE_MIN_PIXELS:
        return nan
    if ys.size > _EDGE_MAX_SAMPLES:
        # A fixed stride through the raster order keeps the estimate's cost
        # bounded in crowded frames; a median over this many is stable.
        keep = np.arange(0, ys.size, -(-ys.size // _EDGE_MAX_SAMPLES))
        ys, xs = ys[keep], xs[keep]
    y = 2 * ys + m
    x = 2 * xs + m
    at = y * cols + x
    v = s1.ravel()

    def grad(p: npt.NDArray[np.intp]) -> tuple[npt.NDArray[np.float64], ...]:
        gy = v[p + cols].astype(np.float64) - v[p - cols]
        gx = v[p + 1].astype(np.float64) - v[p - 1]
        return gy, gx

    gy, gx = grad(at)
    g = np.hypot(gy, gx)
    # Quantised direction of the gradient (towards the bright side).
    ay, ax = np.abs(gy), np.abs(gx)
    diagonal = (np.minimum(ay, ax) > _TAN_22_5 * np.maximum(ay, ax)).astype(np.intp)
    step_y = np.where((ay >= ax) | (diagonal == 1), np.sign(gy), 0).astype(np.intp)
    step_x = np.where((ax > ay) | (diagonal == 1), np.sign(gx), 0).astype(np.intp)
    step = step_y * cols + step_x
    ok = step != 0
    ahead, behind = at + step, at - step
    g_ahead = np.hypot(*grad(ahead))
    g_behind = np.hypot(*grad(behind))
    ridge = ok & (g >= g_ahead) & (g >= g_behind)
    along, i0, i1, wy = _bilinear_axes(grid, rows, cols, block)
    first = along[i0[y], x]
    background = wy[y] * (along[i1[y], x] - first) + first
    bright = v[at + _EDGE_SIDE_PX * step].astype(np.float64)
    dark = v[at - _EDGE_SIDE_PX * step].astype(np.float64)
    ridge &= (dark < background) & (bright > background)
    if np.count_nonzero(ridge) < _EDGE_MIN_PIXELS:
        return nan
    g, v_at, b_at = g[ridge], v[at[ridge]].astype(np.float64), background[ridge]
    strong = g >= np.median(g)
    n = float(edge.n)
    # Absolute intensities: the window mean S1 / n + minimum; the slope per px
    # of a central difference over 2 px is g / (2 n).
    level = v_at[strong] / n + edge.minimum + edge.offset_px * g[strong] / (2.0 * n)
    b_abs = b_at[strong] / n + edge.minimum
    return float(np.median(level / b_abs)) - 1.0


_TAN_22_5: Final = math.tan(math.pi / 8.0)


# City-block offsets 1 and 2 px away: a pixel joins a component only when no
# other component lies within 2 px, so two pixels added to different components
# are never 4-adjacent.
_OUTLINE_OFFSETS: Final = tuple(
    (dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if 0 < abs(dy) + abs(dx) <= 2
)


def _restore_outline(
    mask: BoolArray, allowed: BoolArray | Callable[[npt.NDArray[np.intp]], BoolArray]
) -> BoolArray:
    """Grow each 4-component of `mask` by one pixel into `allowed` (§2.4).

    A pixel is added when it is in `allowed`, not in `mask`, 4-adjacent to
    `mask`, and every `mask` pixel within city-block distance 2 belongs to one
    and the same 4-component. Pixels outside the frame are background. The
    result keeps the components of `mask` 4-separated and adds no component.
    `allowed` is a bool image, or a function that takes the flat indices of
    the candidate pixels and returns whether each is allowed (so that the test
    is computed for the few pixels along the outlines only).
    """
    return _restore_outline_labelled(mask, allowed)[0]


def _restore_outline_labelled(
    mask: BoolArray, allowed: BoolArray | Callable[[npt.NDArray[np.intp]], BoolArray]
) -> tuple[BoolArray, npt.NDArray[np.integer[Any]] | None, int]:
    """`_restore_outline`, also returning the 4-component labels of the result.

    The labels are those of `_label_compact` on `mask`, with each added pixel
    given its component's label (the added pixels join exactly one component
    and components stay 4-separated, so this labels the result's
    4-components). ``None`` (and count 0) when nothing is added.
    """
    cols = mask.shape[1]
    near = np.zeros_like(mask)
    near[1:] |= mask[:-1]
    near[:-1] |= mask[1:]
    near[:, 1:] |= mask[:, :-1]
    near[:, :-1] |= mask[:, 1:]
    near &= ~mask
    at = np.flatnonzero(near)
    if at.size:
        at = at[allowed(at) if callable(allowed) else allowed.ravel()[at]]
    if at.size == 0:
        return mask, None, 0
    labels, count = _label_compact(mask)
    rows = mask.shape[0]
    y = at // cols
    x = at - y * cols
    big = count + 1
    low = np.full(at.size, big, dtype=np.int64)
    high = np.zeros(at.size, dtype=np.int64)
    for dy, dx in _OUTLINE_OFFSETS:
        # neighbours outside the frame are background (label 0)
        yy, xx = y + dy, x + dx
        inside = (yy >= 0) & (yy < rows) & (xx >= 0) & (xx < cols)
        v = np.zeros(at.size, dtype=np.int64)
        v[inside] = labels[yy[inside], xx[inside]]
        np.maximum(high, v, out=high)
        np.minimum(low, np.where(v > 0, v, big), out=low)
    out = mask.copy()
    chosen = low == high
    out.ravel()[at[chosen]] = True
    labels.ravel()[at[chosen]] = low[chosen]
    return out, labels, count


def _restore_junctions(
    mask: BoolArray,
    allowed: BoolArray | Callable[[npt.NDArray[np.intp]], BoolArray],
    image: RealArray,
    reach: int,
    labelled: tuple[npt.NDArray[np.integer[Any]], int] | None = None,
) -> BoolArray:
    """Fill the gaps between components up to a 1-px separating line (§2.4).

    Gap pixels are the pixels outside `mask` whose ``(2·reach + 1)``² square
    (outside the frame: background) holds pixels of at least two 4-components
    of `mask`, and that `allowed` accepts: a bool image or, as in
    `_restore_outline`, a function of the flat indices of the candidates. In
    `reach` steps all components grow together: a gap pixel not yet taken
    whose labelled 4-neighbours all carry one label claims it; of two
    4-adjacent claims of different labels the one at the brighter pixel of
    `image` is dropped (equal values: the larger label's). Claims are decided
    on the labels before each step, so different labels never become
    4-adjacent and no component merges or appears. `labelled`, if given, is
    the 4-component labelling of `mask` and its count.
    """
    labels, count = _label_compact(mask) if labelled is None else labelled
    if count < 2:
        return mask
    cols = mask.shape[1]
    width = 2 * reach + 1
    padded = np.pad(labels, reach)
    if padded.dtype != np.uint16:
        padded = padded.astype(np.uint32)
    high = _run_reduce(_run_reduce(padded, width, 0, np.maximum), width, 1, np.maximum)
    # Labels minus 1, wrapping background to the largest value: their minimum
    # is the lowest label minus 1, or that value when the square holds none.
    padded -= padded.dtype.type(1)
    low = _run_reduce(_run_reduce(padded, width, 0, np.minimum), width, 1, np.minimum)
    del padded
    # Two labels in the square: lowest + 1 != highest (no label: 0 == 0).
    low += low.dtype.type(1)
    gap = low != high
    gap &= ~mask
    del high, low
    if not callable(allowed):
        gap &= allowed
    at = np.flatnonzero(gap)
    del gap
    if at.size and callable(allowed):
        at = at[allowed(at)]
    if at.size == 0:
        return mask
    stride = cols + 2
    # The gap pixels in the frame padded by 1 px, and their values; `pos` and
    # `value` keep the pixels not yet taken.
    pos = at + 2 * (at // cols) + stride + 1
    grown = np.pad(labels, 1).ravel()
    value = image.ravel()[at]
    steps = (-stride, stride, -1, 1)
    claim = np.zeros(grown.size, dtype=np.int32)
    taken = []
    for _ in range(reach):
        near = [grown[pos + step] for step in steps]
        most = np.maximum.reduce(near)
        single = most > 0
        for v in near:
            single &= (v == most) | (v == 0)
        index = np.flatnonzero(single)
        if index.size == 0:
            break
        own = most[index]
        where = pos[index]
        mine = value[index]
        claim[where] = np.arange(1, index.size + 1, dtype=np.int32)
        keep = np.ones(index.size, dtype=np.bool_)
        for step in steps:
            other = claim[where + step]
            clash = np.flatnonzero(other)
            if clash.size == 0:
                continue
            other = other[clash] - 1
            theirs = own[other]
            their_value = mine[other]
            lose = (theirs != own[clash]) & (
                (mine[clash] > their_value)
                | ((mine[clash] == their_value) & (own[clash] > theirs))
            )
            keep[clash[lose]] = False
        claim[where] = 0
        index = index[keep]
        grown[pos[index]] = own[keep]
        taken.append(pos[index])
        left = np.ones(pos.size, dtype=np.bool_)
        left[index] = False
        pos = pos[left]
        value = value[left]
    if not taken:
        return mask
    added = np.concatenate(taken)
    added -= stride + 1
    added -= 2 * (added // stride)
    out = mask.copy()
    out.ravel()[added] = True
    return out


def _level_allowed(
    values: _NumArray | RealArray,
    filled: BoolArray,
    grid: npt.NDArray[np.float64],
    block: int,
    *,
    margin: float,
    extra: float,
    offset: float = 0.0,
    scale: float = 1.0,
) -> Callable[[npt.NDArray[np.intp]], BoolArray]:
    """Return a pixel test against the halo trim's level, for the restores (§2.4).

    A pixel is allowed when it is in `filled` and
    ``(values - offset)·scale <= T + extra`` (in float64), with
    ``T = _bilinear(grid, Y, X, block, margin)`` the halo trim's level formed
    at the candidate pixels only, with the operations of `_bilinear` (the
    same values). The outline restore passes the frame (``offset = min``,
    ``scale = n``: the pixel's own value in ``S1`` units), the junction
    restore ``S1`` (the window sum); ``extra = inf`` tests `filled` only.
    """
    rows, cols = values.shape
    along, i0, i1, wy = _bilinear_axes(grid, rows, cols, block)

    def allowed(at: npt.NDArray[np.intp]) -> BoolArray:
        inside = filled.ravel()[at]
        if math.isinf(extra):
            return inside
        y = at // cols
        x = at - y * cols
        first = along[i0[y], x]
        level = wy[y] * (along[i1[y], x] - first)
        level += first + margin
        level += extra
        pixel = values.ravel()[at].astype(np.float64)
        pixel -= offset
        pixel *= scale
        result: BoolArray = inside & (pixel <= level)
        return result

    return allowed


def _background_grid(
    strong: BoolArray, s1: _NumArray, block: int
) -> npt.NDArray[np.float64] | None:
    """Block means of ``S1`` over background pixels (§2.4 halo trim, steps 1-2).

    Background pixels are those of even rows and columns farther than
    `_HALO_EXCLUDE_PX` from every `strong` pixel (square metric). Blocks of
    `block` px start at (0, 0); a block with fewer than `_HALO_MIN_BACKGROUND`
    of its sampled pixels in the background is unusable and takes the mean of
    the nearest usable block (Euclidean distance between block indices;
    scipy's choice on ties). ``None`` when no block is usable.
    """
    # The windows overlap, so the sums of the even rows and columns still see
    # every pixel; sampling them quarters the cost. Blocks start on even rows
    # and columns (`block` is even).
    background = ~_dilate_sampled(strong, _HALO_EXCLUDE_PX)
    sampled = s1[::2, ::2]
    row_starts = np.arange(0, background.shape[0], block // 2)
    col_starts = np.arange(0, background.shape[1], block // 2)
    acc = np.float64 if sampled.dtype.kind == "f" else np.int64
    values = np.where(background, sampled, 0)
    sums = np.add.reduceat(
        np.add.reduceat(values, row_starts, axis=0, dtype=acc), col_starts, axis=1
    )
    counts = np.add.reduceat(
        np.add.reduceat(background, row_starts, axis=0, dtype=np.int64),
        col_starts,
        axis=1,
    )
    sizes = np.outer(
        np.diff(np.append(row_starts, background.shape[0])),
        np.diff(np.append(col_starts, background.shape[1])),
    )
    usable = counts >= _HALO_MIN_BACKGROUND * sizes
    if not usable.any():
        return None
    grid = np.zeros(usable.shape, dtype=np.float64)
    grid[usable] = sums[usable] / counts[usable]
    if not usable.all():
        nearest = ndi.distance_transform_edt(
            ~usable, return_distances=False, return_indices=True
        )
        grid = grid[tuple(nearest)]
    return grid


def _background_level(
    strong: BoolArray, s1: _NumArray, block: int
) -> npt.NDArray[np.float64] | None:
    """Return the background level ``B`` (a (Y, X) float64 image), or ``None``."""
    grid = _background_grid(strong, s1, block)
    if grid is None:
        return None
    return _bilinear(grid, strong.shape[0], strong.shape[1], block)


def _dilate_sampled(mask: BoolArray, radius: int) -> BoolArray:
    """`_dilate(mask, 2·radius + 1, 1)` at the pixels of even rows and columns.

    Rows first: the window of even row ``2i`` spans rows ``2i - radius`` to
    ``2i + radius``, that is `radius` pairs of rows and one more row.
    """
    out = mask
    for axis in (0, 1):
        size = out.shape[axis]
        count = (size + 1) // 2
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius, radius + 1)
        padded = np.pad(out, pad)
        index: list[slice] = [slice(None), slice(None)]
        index[axis] = slice(0, 2 * (count + radius), 2)
        first = padded[tuple(index)]
        index[axis] = slice(1, 2 * (count + radius), 2)
        pairs = first | padded[tuple(index)]
        runs = _run_reduce(pairs, radius, axis, np.logical_or)
        index[axis] = slice(2 * radius, 2 * radius + 2 * count, 2)
        last = padded[tuple(index)]
        index[axis] = slice(0, count)
        out = runs[tuple(index)] | last
    return out


def _bilinear(
    grid: npt.NDArray[np.float64],
    rows: int,
    cols: int,
    block: int,
    offset: float = 0.0,
    *,
    step: int = 1,
    at_least: _NumArray | None = None,
) -> npt.NDArray[Any]:
    """Upsample block values to (rows, cols) pixels, bilinearly, plus `offset`.

    Block centres are at ``(i + 0.5)·block - 0.5``; beyond the outermost ones
    the value is constant. Columns first: ``A[i, x] = grid[i, j0]·(1 - wx) +
    grid[i, j1]·wx``; then each row ``y`` is ``wy·(A[i1] - A[i0]) + (A[i0] +
    offset)``, computed band by band between block centres.

    With ``step = 2`` only the pixels of even rows and columns are computed
    (the same values as ``[::2, ::2]`` of the full image). With `at_least`, a
    (rows, cols) image, the result is the bool image ``at_least <= level``,
    compared band by band without forming the float64 level image.
    """
    along, i0, i1, wy = _bilinear_axes(grid, rows, cols, block, step)
    n_rows, n_cols = i0.size, along.shape[1]
    starts = np.flatnonzero(np.r_[True, (i0[1:] != i0[:-1]) | (i1[1:] != i1[:-1])])
    stops = np.r_[starts[1:], n_rows]
    if at_least is None:
        out = np.empty((n_rows, n_cols), dtype=np.float64)
        buffer = None
    else:
        out = np.empty((n_rows, n_cols), dtype=np.bool_)
        buffer = np.empty((int(np.max(stops - starts)), n_cols), dtype=np.float64)
    for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
        first = along[i0[start]]
        step_value = along[i1[start]] - first
        band = out[start:stop] if buffer is None else buffer[: stop - start]
        np.multiply(wy[start:stop, None], step_value, out=band)
        band += first + offset
        if at_least is not None:
            np.less_equal(at_least[start:stop], band, out=out[start:stop])
    return out


def _bilinear_axes(
    grid: npt.NDArray[np.float64], rows: int, cols: int, block: int, step: int = 1
) -> tuple[
    npt.NDArray[np.float64],
    npt.NDArray[np.intp],
    npt.NDArray[np.intp],
    npt.NDArray[np.float64],
]:
    """Return `_bilinear`'s column pass ``A`` and its row weights.

    Returns ``A`` (one row per block row, one column per `step`-th pixel
    column) and ``i0, i1, wy`` of every `step`-th pixel row; the level at
    pixel ``(y, x)`` is ``wy[y]·(A[i1[y], x] - A[i0[y], x]) + (A[i0[y], x] +
    offset)``.
    """
    j0, j1, wx = _weights(cols, block, grid.shape[1])
    j0, j1, wx = j0[::step], j1[::step], wx[::step]
    along: npt.NDArray[np.float64] = grid[:, j0] * (1.0 - wx) + grid[:, j1] * wx
    i0, i1, wy = _weights(rows, block, grid.shape[0])
    return along, i0[::step], i1[::step], wy[::step]


def _weights(
    size: int, block: int, count: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """Linear interpolation between block centres ``(i + 0.5)·block - 0.5``.

    Positions outside the first and last centres take the nearest centre's
    value.
    """
    position = (np.arange(size, dtype=np.float64) + 0.5) / block - 0.5
    np.clip(position, 0.0, count - 1, out=position)
    first = np.floor(position).astype(np.intp)
    second = np.minimum(first + 1, count - 1)
    return first, second, position - first


def _remove_small(
    mask: BoolArray, min_area: int, *, keep_edge: bool = False
) -> BoolArray:
    """Remove 4-connected components with fewer than `min_area` pixels.

    With `keep_edge`, components with a pixel on the frame edge are kept.
    """
    labels, count = ndi.label(mask)
    if count == 0:
        return mask.copy()
    keep = np.bincount(labels[mask], minlength=count + 1) >= min_area
    if keep_edge:
        _mark_edge(keep, labels)
    keep[0] = False
    return _lookup(keep, labels)


def _mark_edge(flags: BoolArray, labels: LabelArray) -> None:
    """Set ``flags[label]`` for every label on the first/last row or column."""
    flags[labels[0]] = True
    flags[labels[-1]] = True
    flags[labels[:, 0]] = True
    flags[labels[:, -1]] = True


def _boundary4(mask: BoolArray) -> BoolArray:
    """Pixels of `mask` with a 4-neighbour outside `mask` or outside the frame."""
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    inner[[0, -1]] = False
    inner[:, [0, -1]] = False
    return mask & ~inner


def _split_and_filter(
    mask: BoolArray, *, neck_ratio: float | None, min_area: int, keep_edge: bool
) -> BoolArray:
    """Neck split (if `neck_ratio` is given), then the minimum area (§2.4).

    Equal to splitting every component with `_neck_split` and then applying
    `_remove_small` to the result; one labelling serves both steps.
    """
    if neck_ratio is None and min_area == 0:
        return mask
    labels, count = _label_compact(mask)
    if count == 0:
        return mask.copy()
    area = np.bincount(labels[mask], minlength=count + 1)
    keep = area >= min_area
    if keep_edge:
        _mark_edge(keep, labels)
    keep[0] = False
    out = _lookup(keep, labels)
    if neck_ratio is None:
        return out
    boundary = np.flatnonzero(_boundary4(mask))
    owner = labels.ravel()[boundary]
    perimeter = np.bincount(owner, minlength=count + 1).astype(np.float64)
    candidate = perimeter * perimeter > 4.0 * math.pi * _NECK_ROUNDNESS * area
    candidate[0] = False
    if not candidate.any():
        return out
    # Bounding boxes of the candidates from their boundary pixels.
    chosen = candidate[owner]
    cols = mask.shape[1]
    owner = owner[chosen]
    y = boundary[chosen] // cols
    x = boundary[chosen] - y * cols
    order = np.argsort(owner, kind="stable")
    owner, y, x = owner[order], y[order], x[order]
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    boxes = zip(
        owner[starts].tolist(),
        np.minimum.reduceat(y, starts).tolist(),
        (np.maximum.reduceat(y, starts) + 1).tolist(),
        np.minimum.reduceat(x, starts).tolist(),
        (np.maximum.reduceat(x, starts) + 1).tolist(),
        strict=True,
    )
    rows = mask.shape[0]
    windows = [(slice(y0, y1), slice(x0, x1), label) for label, y0, y1, x0, x1 in boxes]
    owns = [labels[wy, wx] == label for wy, wx, label in windows]
    for (wy, wx, _), own, parts in zip(
        windows, owns, _neck_split_batch(owns, neck_ratio), strict=True
    ):
        if parts is None:
            continue
        y0, y1, x0, x1 = wy.start, wy.stop, wx.start, wx.stop
        window = (wy, wx)
        pieces, n_pieces = ndi.label(parts)
        piece_keep = np.bincount(pieces.ravel(), minlength=n_pieces + 1) >= min_area
        if keep_edge:
            if y0 == 0:
                piece_keep[pieces[0]] = True
            if y1 == rows:
                piece_keep[pieces[-1]] = True
            if x0 == 0:
                piece_keep[pieces[:, 0]] = True
            if x1 == cols:
                piece_keep[pieces[:, -1]] = True
        piece_keep[0] = False
        target = out[window]
        target[own] = np.take(piece_keep, pieces[own])
    return out


def _neck_split(own: BoolArray, ratio: float) -> BoolArray | None:
    """Cut one 4-connected component at its distance-map necks (§2.4).

    Parameters
    ----------
    own : (H, W) ndarray of bool
        The component in its bounding box.
    ratio : float
        `split_neck_ratio`.

    Returns
    -------
    (H, W) ndarray of bool or None
        The component with 1-px cuts between its cells, or ``None`` when it
        stays one cell.
    """
    return _neck_split_batch([own], ratio)[0]


def _neck_split_batch(owns: list[BoolArray], ratio: float) -> list[BoolArray | None]:
    """`_neck_split` of several components at once.

    The components, each padded by 1 px of background, are packed side by side
    into one image, so that every step runs once over all of them; the padding
    keeps them apart, and the relative order of the marker labels within each
    component (raster order) is that of the component alone, so the result is
    that of `_neck_split` on each.
    """
    if not owns:
        return []
    shapes = [(own.shape[0] + 2, own.shape[1] + 2) for own in owns]
    sheet, origins, crop = _pack(shapes)
    for own, (oy, ox) in zip(owns, origins, strict=True):
        sheet[oy + 1 : oy + 1 + own.shape[0], ox + 1 : ox + 1 + own.shape[1]] = own
    distance = _octagonal_distance(sheet)
    peak = sheet & (distance >= _NECK_MIN_PEAK)
    peak &= distance == ndi.maximum_filter(distance, size=3, mode="constant")
    markers, count = ndi.label(peak, structure=np.ones((3, 3), dtype=np.bool_))
    results: list[BoolArray | None] = [None] * len(owns)
    if count < 2:
        return results
    regions = _power_regions(sheet, distance, markers, count, crop, origins)
    if regions is None:
        return results
    merged = _merge_at_necks(regions, distance, count, ratio)
    if merged is None:
        return results
    cut = _separate_labels(merged)
    for index, ((oy, ox), (height, width)) in enumerate(
        zip(origins, shapes, strict=True)
    ):
        window = merged[oy : oy + height, ox : ox + width]
        groups = np.unique(window)
        if groups.size - (groups[0] == 0) >= 2:
            results[index] = cut[oy + 1 : oy + height - 1, ox + 1 : ox + width - 1]
    return results


def _pack(
    shapes: list[tuple[int, int]],
) -> tuple[BoolArray, list[tuple[int, int]], npt.NDArray[np.intp]]:
    """Place rectangles on shelves (tallest first) in one sheet.

    Returns the empty bool sheet, the top-left corner of each rectangle and an
    image of the rectangle index of each sheet pixel (-1 between them).
    """
    width = max(
        max(w for _, w in shapes), math.isqrt(sum(h * w for h, w in shapes)) + 1
    )
    origins = [(0, 0)] * len(shapes)
    y = x = shelf = 0
    for index in sorted(range(len(shapes)), key=lambda i: -shapes[i][0]):
        h, w = shapes[index]
        if x + w > width:
            y += shelf
            x = shelf = 0
        origins[index] = (y, x)
        x += w
        shelf = max(shelf, h)
    crop = np.full((y + shelf, width), -1, dtype=np.intp)
    for index, ((oy, ox), (h, w)) in enumerate(zip(origins, shapes, strict=True)):
        crop[oy : oy + h, ox : ox + w] = index
    return np.zeros(crop.shape, dtype=np.bool_), origins, crop


def _octagonal_distance(mask: BoolArray) -> npt.NDArray[np.float64]:
    """Mean of the city-block and chessboard distances to the background.

    Within 6 % of the Euclidean distance in every direction, at a few percent
    of its cost (scipy's chamfer transforms).
    """
    taxicab = ndi.distance_transform_cdt(mask, metric="taxicab")
    chessboard = ndi.distance_transform_cdt(mask, metric="chessboard")
    total: npt.NDArray[np.float64] = taxicab.astype(np.float64)
    total += chessboard
    total *= 0.5
    return total


def _power_regions(
    mask: BoolArray,
    distance: npt.NDArray[np.float64],
    markers: LabelArray,
    count: int,
    crop: npt.NDArray[np.intp] | None = None,
    origins: list[tuple[int, int]] | None = None,
) -> npt.NDArray[np.intp] | None:
    """Assign each pixel of `mask` to the marker of least power distance.

    Marker ``i`` (8-connected plateau of distance maxima, all at height
    ``h_i``) has its centroid ``c_i``; pixel ``p`` goes to the marker with the
    smallest ``|p - c_i|² - h_i²``, the lowest label on ties. For two touching
    disks the dividing line (the radical axis) passes through their contact.
    With `crop` and `origins` (from `_pack`), a pixel only sees the markers of
    its own rectangle, and coordinates are taken relative to the rectangle's
    corner (so the arithmetic is that of the rectangle alone). ``None`` when
    no rectangle holds two markers.
    """
    if crop is None or origins is None:
        crop = np.zeros(mask.shape, dtype=np.intp)
        origins = [(0, 0)]
    corner = np.array(origins, dtype=np.intp).reshape(-1, 2)
    my, mx = np.nonzero(markers)
    ml = markers[my, mx]
    owner = np.zeros(count + 1, dtype=np.intp)
    owner[ml] = crop[my, mx]
    my = my - corner[owner[ml], 0]
    mx = mx - corner[owner[ml], 1]
    size = np.bincount(ml, minlength=count + 1)[1:].astype(np.float64)
    cy = np.bincount(ml, weights=my, minlength=count + 1)[1:] / size
    cx = np.bincount(ml, weights=mx, minlength=count + 1)[1:] / size
    height = np.zeros(count + 1)
    height[ml] = distance[my + corner[owner[ml], 0], mx + corner[owner[ml], 1]]
    # Markers grouped by rectangle, in label order within each.
    per_crop = np.bincount(owner[1:], minlength=len(origins))
    first = np.concatenate(([0], np.cumsum(per_crop)[:-1]))
    ordered = np.argsort(owner[1:], kind="stable") + 1
    active = per_crop >= 2
    if not active.any():
        return None
    py, px = np.nonzero(mask & active[crop] & (crop >= 0))
    pc = crop[py, px]
    ry = py - corner[pc, 0]
    rx = px - corner[pc, 1]
    start = first[pc]
    available = per_crop[pc]
    best = np.full(py.size, np.inf)
    chosen = np.zeros(py.size, dtype=np.intp)
    for j in range(int(available.max())):
        sel = np.flatnonzero(available > j)
        marker = ordered[start[sel] + j]
        power = (ry[sel] - cy[marker - 1]) ** 2
        power += (rx[sel] - cx[marker - 1]) ** 2
        power -= height[marker] ** 2
        better = power < best[sel]
        best[sel[better]] = power[better]
        chosen[sel[better]] = marker[better]
    regions = np.zeros(mask.shape, dtype=np.intp)
    regions[py, px] = chosen
    return regions


def _merge_at_necks(
    regions: npt.NDArray[np.intp],
    distance: npt.NDArray[np.float64],
    count: int,
    ratio: float,
) -> npt.NDArray[np.intp] | None:
    """Merge adjacent regions unless the neck between them is narrow.

    The saddle of two 4-adjacent regions is the largest ``min(d(p), d(q))``
    over their adjacent pixel pairs ``(p, q)``. Pairs are taken by decreasing
    saddle (then increasing labels); two groups merge when the saddle is at
    least `ratio` times the lower of their highest distances. Returns the
    merged regions (labelled by the lowest member), or ``None`` when a single
    group remains.
    """
    top = np.zeros(count + 1)
    np.maximum.at(top, regions.ravel(), distance.ravel())
    pairs = []
    for first, second, d_first, d_second in (
        (regions[:-1], regions[1:], distance[:-1], distance[1:]),
        (regions[:, :-1], regions[:, 1:], distance[:, :-1], distance[:, 1:]),
    ):
        touch = (first != second) & (first > 0) & (second > 0)
        a = first[touch]
        b = second[touch]
        key = np.minimum(a, b) * (count + 1) + np.maximum(a, b)
        pairs.append((key, np.minimum(d_first[touch], d_second[touch])))
    key = np.concatenate([k for k, _ in pairs])
    saddle = np.concatenate([v for _, v in pairs])
    if key.size == 0:
        return None
    unique, inverse = np.unique(key, return_inverse=True)
    best = np.full(unique.size, -np.inf)
    np.maximum.at(best, inverse, saddle)
    parent = list(range(count + 1))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for index in np.lexsort((unique, -best)).tolist():
        a = root(int(unique[index]) // (count + 1))
        b = root(int(unique[index]) % (count + 1))
        if a != b and best[index] >= ratio * min(top[a], top[b]):
            low, high = min(a, b), max(a, b)
            parent[high] = low
            top[low] = max(top[a], top[b])
    roots = np.array([root(i) for i in range(count + 1)], dtype=np.intp)
    if np.unique(roots[1:]).size < 2:
        return None
    return roots[regions]


def _watershed_split(mask: BoolArray, h: float) -> BoolArray:
    """Separate touching cells by a distance-transform watershed (§2.4).

    Markers are the 8-connected components of the h-maxima of the Euclidean
    distance transform, numbered in raster order; the flooding of ``-distance``
    inside `mask` is 4-connected. A component without a marker (every peak
    lower than `h`, unless it holds the global maximum) gets no label and is
    removed.
    """
    # skimage is imported here: only this named option needs it.
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    if not mask.any():
        return mask.copy()
    distance = ndi.distance_transform_edt(mask)
    peaks = h_maxima(distance, h)  # type: ignore[no-untyped-call]
    markers, _ = ndi.label(peaks, structure=np.ones((3, 3), dtype=np.bool_))
    labels: LabelArray = watershed(  # type: ignore[no-untyped-call]
        -distance, markers, mask=mask, connectivity=1
    )
    return _separate_labels(labels)


def _separate_labels(labels: LabelArray) -> BoolArray:
    """Return ``labels > 0`` without the pixels where different labels touch.

    Wherever two 4-adjacent pixels carry different non-zero labels, the pixel
    with the larger label becomes background. All decisions are taken on the
    input labels, so the regions come out 4-separated.
    """
    background = np.zeros(labels.shape, dtype=np.bool_)
    for before, after in (
        ((slice(None, -1), slice(None)), (slice(1, None), slice(None))),
        ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
    ):
        first = labels[before]
        second = labels[after]
        touching = (first != second) & (first > 0) & (second > 0)
        background[before] |= touching & (first > second)
        background[after] |= touching & (second > first)
    return (labels > 0) & ~background
