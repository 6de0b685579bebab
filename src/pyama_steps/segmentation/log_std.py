"""The log-STD method (``segmentation.method: logstd``, algorithms.md §2).

Per frame, the log of the local standard deviation in a square window is
thresholded at ``mode + k·sigma`` of its histogram (sampled on even rows and
columns, with a smoothed mode and an optional hysteresis), and the binary mask
is cleaned up by hole filling (with the frame edge mirrored), a
phase-contrast halo trim, an opening, an optional closing, a refill, an
optional shrink, a split of touching cells and a minimum area. Each stage
lives in its own module (:mod:`~pyama_steps.segmentation.texture`,
:mod:`~pyama_steps.segmentation.threshold`,
:mod:`~pyama_steps.segmentation.masks`, :mod:`~pyama_steps.segmentation.halo`,
:mod:`~pyama_steps.segmentation.split`,
:mod:`~pyama_steps.segmentation.restore`); the per-FOV window choice of
``window: auto`` is in :mod:`~pyama_steps.segmentation.window`, the options
and their check in :mod:`~pyama_steps.segmentation.options`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from pyama_steps._arrays import check_frame
from pyama_steps._typing import BoolArray, RealArray
from pyama_steps.segmentation.cleanup import (
    _drop_edgeless,
    _open_close_refill,
    _shrink_and_split,
)
from pyama_steps.segmentation.halo import (
    _EdgeLevel,
    _halo_trim,
    _level_allowed,
    _trim_outline_band,
)
from pyama_steps.segmentation.masks import _fill_holes
from pyama_steps.segmentation.options import (
    _CONFIG_FIELDS,
    _FIELDS,
    FillBorder,
    HaloLevel,
    LogStdOptions,
    _checked_options,
)
from pyama_steps.segmentation.registry import (
    FrameSegmentation,
    FrameSource,
    SegmentationMethod,
)
from pyama_steps.segmentation.restore import (
    _restore_junctions,
    _restore_outline,
    _restore_outline_labelled,
)
from pyama_steps.segmentation.split import SplitMethod
from pyama_steps.segmentation.texture import (
    _NumArray,
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
    _threshold_mask,
)
from pyama_steps.segmentation.window import background_reference, choose_fov_window

__all__ = [
    "METHOD",
    "LogStdOptions",
    "SegmentationFrame",
    "segment_log_std",
]


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
        ``mode_smooth_bins`` bins, or of the lowest separate peak below it
        (``mode_peak_fraction``). NaN when the frame is degenerate (no valid
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
    guarded : bool
        The mode guard moved the mode to the FOV's background level (§2.3).
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
    guarded: bool = False


def segment_log_std(
    frame: RealArray,
    *,
    window: int = 3,
    bins: int = BINS,
    mode_smooth_bins: int = MODE_SMOOTH_BINS,
    mode_peak_fraction: float = MODE_PEAK_FRACTION,
    sigma_estimator: SigmaEstimator = SIGMA_ESTIMATOR,
    mode_guard_k: float | None = 1.5,
    background: BackgroundReference | None = None,
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
    fill_trim_holes: bool = True,
    fill_trim_holes_solidity: float = 0.9,
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
    min_edge_fraction: float = 0.4,
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
    mode_peak_fraction : float, optional
        In (0, 1]. The lowest peak of the summed counts with at least this
        share of the fullest bin's count, past a valley deeper than the
        counting noise, is the mode (the background's peak; algorithms.md
        §2.3). 1 keeps the fullest bin.
    sigma_estimator : {'lower_std', 'lower_rms'}, optional
        ``'lower_std'``: standard deviation (ddof 0) of the values at or below
        the mode, about their own mean. ``'lower_rms'``: root mean square of
        their distance to the mode.
    mode_guard_k : float or None, optional
        With `background`: a mode more than ``mode_guard_k`` of its sigmas
        above the FOV's background level is the cells' texture, and the mode is
        the fullest smoothed bin within one sigma of that level (§2.3); finite,
        >= 1. ``None`` turns the guard off.
    background : BackgroundReference or None, optional
        The FOV's background log-STD level and sigma
        (:func:`~pyama_steps.segmentation.window.background_reference`); the
        workflow measures it once per FOV. ``None``: no guard.
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
    fill_trim_holes : bool, optional
        After a halo trim that ran, keep whole the cells whose phase-bright
        centre it removed: where the opening opened a hole of the trimmed mask
        (so the refill could not close it), the cell of the opened mask with
        its holes filled is added when it is convex (algorithms.md §2.4).
        Otherwise such a cell comes out as a crescent or in pieces.
    fill_trim_holes_solidity : float, optional
        The least solidity (pixels over convex-hull pixels) of such a
        component; in [0, 1]. Single cells are convex (0.95-0.99); cells
        joined around a background pocket are not (0.55-0.86).
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
    min_edge_fraction : float, optional
        In [0, 1]. Last, a component is removed when less than this share of
        its outline pixels lies above the threshold: a background pocket
        closed by the hole filling (§2.4). 0: off.

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
    closing; it had no smoothed mode, lower-peak mode, edge mirroring, halo
    trim, split, minimum area or edge test (``threshold_k=3,
    mode_smooth_bins=1, mode_peak_fraction=1, fill_border='open',
    halo_trim=False, open_size=7, open_iterations=3, close_size=7,
    close_iterations=3, refill_holes=False, shrink_px=0, split='none',
    min_area_px=0, min_edge_fraction=0`` reproduces its parameters).

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
    # Every keyword argument is an option of the same name (LogStdOptions).
    arguments = locals()
    options = _checked_options({name: arguments[name] for name in _FIELDS})
    return _segment(check_frame(frame), options)


def _segment(image: RealArray, options: LogStdOptions) -> SegmentationFrame:
    """Run the stages of :func:`segment_log_std` on a checked frame and options."""
    window = _window_of(options)
    n = window * window
    numerator, s1 = _window_sums(image, window, keep_s1=options.halo_trim)
    stats = _sample_statistics(
        _sample_log_std(numerator, n),
        bins=options.bins,
        smooth=options.mode_smooth_bins,
        estimator=options.sigma_estimator,
        peak_fraction=options.mode_peak_fraction,
        reference=options.background,
        guard_k=options.mode_guard_k,
    )
    if stats is None:
        # Constant frame, including an all-zero dropped frame (§2.6): no texture.
        return _empty_result(image.shape, math.nan, math.nan)
    if stats.mode is None:
        # Single-valued histogram (§2.6): nothing stands out from the background.
        return _empty_result(image.shape, stats.lo, stats.hi)
    mode, sigma = stats.mode, stats.sigma
    threshold = mode + options.threshold_k * sigma
    low_k = options.threshold_low_k
    threshold_low = math.nan if low_k is None else mode + low_k * sigma
    strong, fg = _threshold_mask(numerator, n, threshold, threshold_low)
    if options.fill_holes:
        mirror_px = options.fill_mirror_px if options.fill_border == "mirror" else 0
        fg = _fill_holes(fg, mirror_px)
    filled = fg
    # Windows without texture (a saturated or clipped area) are not background
    # for the trim's level: they carry no noise and not the illumination.
    not_background = strong | (numerator == 0) if options.halo_trim else strong
    fg, halo = _trim_halo(fg, not_background, s1, image, mode, options)
    del numerator, not_background
    fg = _open_close_refill(fg, options, trimmed=halo.trimmed, filled=filled)
    if halo.band_level is not None and s1 is not None:
        fg = _trim_outline_band(fg, s1, halo.band_level, options.halo_block_px)
    del s1
    fg = _shrink_and_split(fg, options)
    fg = _restore(fg, halo, image, options)
    fg = _drop_edgeless(fg, strong, options.min_edge_fraction)
    del strong
    return SegmentationFrame(
        mask=fg,
        lo=stats.lo,
        hi=stats.hi,
        mode=mode,
        sigma=sigma,
        threshold=threshold,
        threshold_low=threshold_low,
        foreground_fraction=np.count_nonzero(fg) / fg.size,
        edge_ratio=halo.edge_ratio,
        guarded=stats.guarded,
    )


def _window_of(options: LogStdOptions) -> int:
    if options.window == "auto":
        raise ValueError(
            "segmentation.window is 'auto': choose the FOV's window first "
            "(METHOD.prepare, algorithms.md §2.10)"
        )
    return options.window


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


# --------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Halo:
    """What the halo trim leaves for the later stages (§2.4)."""

    # the edge ratio; NaN when the trim did not run or used the noise margin
    edge_ratio: float = math.nan
    # whether the trim ran (it is skipped without usable background blocks or
    # when the objects are not darker than the background)
    trimmed: bool = False
    # the edge level's block values, for the outline band trim
    band_level: npt.NDArray[np.float64] | None = None
    # the pixel tests of the outline and junction restores
    outline: Callable[[npt.NDArray[np.intp]], BoolArray] | None = None
    junction: Callable[[npt.NDArray[np.intp]], BoolArray] | None = None


def _trim_halo(
    fg: BoolArray,
    strong: BoolArray,
    s1: _NumArray | None,
    image: RealArray,
    mode: float,
    options: LogStdOptions,
) -> tuple[BoolArray, _Halo]:
    """Run the halo trim and set up the restores that follow it (§2.4).

    `strong` marks the pixels whose neighbourhood is not background: above the
    threshold or without texture.
    """
    if not (options.halo_trim and s1 is not None):
        return fg, _Halo()
    filled = fg
    n = _window_of(options) ** 2
    halo_k, block = options.halo_k, options.halo_block_px
    noise_margin = n * halo_k * math.exp(mode)
    edge = None
    if options.halo_level != "noise":
        edge = _EdgeLevel(float(image.min()), n, options.edge_offset_px)
    fg, grid, margin, edge_ratio = _halo_trim(
        fg, strong, s1, noise_margin, block, edge=edge
    )
    if grid is None:
        return fg, _Halo(edge_ratio=edge_ratio)
    edge_used = not math.isnan(edge_ratio)
    outline = junction = None
    if options.halo_edge_k is not None:
        # The pixel itself, in S1 units (n·(x - min)), against
        # T_edge = T + n·(halo_edge_k - halo_k)·exp(mode), in float64,
        # tested at the pixels along the final outlines only.
        outline = _level_allowed(
            image,
            filled,
            grid,
            block,
            margin=margin,
            # At the edge level the pixel itself must not exceed it.
            extra=0.0
            if edge_used
            else n * (options.halo_edge_k - halo_k) * math.exp(mode),
            offset=float(image.min()),
            scale=float(n),
        )
    if options.junction_px > 0:
        # S1 against T_junction = T + n·(junction_k - halo_k)·exp(mode) at
        # the gap pixels only; no window test with junction_k None.
        junction_k = options.junction_k
        junction = _level_allowed(
            s1,
            filled,
            grid,
            block,
            margin=margin,
            extra=(
                math.inf
                if junction_k is None
                else n * (junction_k - halo_k) * math.exp(mode)
            ),
        )
    band_level = grid if edge_used else None
    return fg, _Halo(
        edge_ratio=edge_ratio,
        trimmed=True,
        band_level=band_level,
        outline=outline,
        junction=junction,
    )


def _restore(
    fg: BoolArray, halo: _Halo, image: RealArray, options: LogStdOptions
) -> BoolArray:
    """Restore the outlines, then the junctions (§2.4)."""
    labelled = None
    if halo.outline is not None:
        if halo.junction is None:
            fg = _restore_outline(fg, halo.outline)
        else:
            # The junction restore reuses the labels of the outline restore.
            fg, labels, count = _restore_outline_labelled(fg, halo.outline)
            labelled = None if labels is None else (labels, count)
    if halo.junction is not None:
        fg = _restore_junctions(fg, halo.junction, image, options.junction_px, labelled)
    return fg


# --------------------------------------------------------------------------------------
# The method (segmentation.method: logstd)
# --------------------------------------------------------------------------------------


def _config_options(section: Mapping[str, Any]) -> LogStdOptions:
    """Build the options from the ``segmentation`` config section, checked."""
    raw = {name: section[name] for name in _CONFIG_FIELDS}
    return _checked_options(raw, lambda name: f"'segmentation.{name}'", auto=True)


def _choose_fov_window(
    options: LogStdOptions, n_frames: int, read: FrameSource
) -> tuple[LogStdOptions, list[str]]:
    """Replace ``window: auto`` by the FOV's window (§2.10), with its log line."""
    if options.window != "auto":
        return options, []
    window, line = choose_fov_window(
        n_frames,
        read,
        bins=options.bins,
        mode_smooth_bins=options.mode_smooth_bins,
        mode_peak_fraction=options.mode_peak_fraction,
        sigma_estimator=options.sigma_estimator,
    )
    return dataclasses.replace(options, window=window), [line]


def _prepare_fov(
    options: LogStdOptions, n_frames: int, read: FrameSource
) -> tuple[LogStdOptions, list[str]]:
    """Choose the FOV's window, then measure its background texture (§2.3, §2.10)."""
    options, lines = _choose_fov_window(options, n_frames, read)
    if options.mode_guard_k is None:
        return options, lines
    reference, line = background_reference(
        n_frames,
        read,
        window=_window_of(options),
        bins=options.bins,
        mode_smooth_bins=options.mode_smooth_bins,
        mode_peak_fraction=options.mode_peak_fraction,
        sigma_estimator=options.sigma_estimator,
    )
    return dataclasses.replace(options, background=reference), [*lines, line]


def _method_frame(frame: RealArray, options: LogStdOptions) -> FrameSegmentation:
    """One frame's mask, its figures for the checks and its log line."""
    r = _segment(check_frame(frame), options)
    line = (
        f"lo={r.lo:.6g} hi={r.hi:.6g} mode={r.mode:.6g} sigma={r.sigma:.6g} "
        f"threshold={r.threshold:.6g} fg={r.foreground_fraction:.6f} "
        f"edge={r.edge_ratio:.6g}"
    ) + (" mode_guarded=1" if r.guarded else "")
    return FrameSegmentation(
        mask=r.mask,
        threshold=r.threshold,
        noise=math.exp(r.mode) if math.isfinite(r.mode) else math.nan,
        foreground_fraction=r.foreground_fraction,
        log_line=line,
    )


#: ``segmentation.method: logstd``.
METHOD: Final = SegmentationMethod[LogStdOptions](
    name="logstd",
    options=_config_options,
    segment=_method_frame,
    prepare=_prepare_fov,
)
