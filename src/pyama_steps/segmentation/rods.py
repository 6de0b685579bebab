"""Phase-contrast segmentation of dense rod-shaped bacteria.

Implements algorithms.md §2.9 (``segmentation.method: rods``): the frame is
divided by its local bright level (background flattening), dark bodies are
thresholded between the dark and the bright level of the frame, the bright
lines between touching rods are found as ridges of the Hessian, and the dark
cores that remain between those lines seed one cell each; the seeds grow back
to the body outline and touching cells are left 4-separated, as
:func:`pyama_steps.segmentation.log_std.segment_log_std` leaves them.

The log-STD method (§2.1-§2.7) marks texture, so a colony whose cells touch
along their sides becomes one object; here the dark interior is the signal and
the bright junction line between two cells is the cut.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from pyama_steps._arrays import check_frame
from pyama_steps._typing import BoolArray, RealArray
from pyama_steps._validate import check_bool, check_fraction, check_int, check_real
from pyama_steps.segmentation.registry import FrameSegmentation, SegmentationMethod

__all__ = [
    "METHOD",
    "DenseRodsCheck",
    "RodSegmentation",
    "RodsOptions",
    "check_dense_rods",
    "segment_rods",
]

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]

# The background envelope is built on block means of this side (px): a 4x
# smaller image keeps the maximum filter and its smoothing cheap.
_BLOCK: Final = 4
# Statistics (Otsu threshold, levels, noise) use every 4th row and column.
_SAMPLE: Final = 4
# A frame whose dark/bright contrast is below this many pixel-noise sigmas holds
# no cells (noise or a flat field): Otsu would split the noise itself.
_MIN_CONTRAST_NOISE: Final = 3.0
# Cores touching the frame edge seed a cell from this share of min_core_px.
_EDGE_CORE_SHARE: Final = 0.25
# 1.4826 * MAD is the standard deviation of a normal sample; the pixel-to-pixel
# difference has sqrt(2) times the pixel's.
_MAD_TO_SIGMA: Final = 1.4826 / math.sqrt(2.0)


@dataclass(frozen=True, eq=False)
class RodSegmentation:
    """Mask and per-frame statistics of one rod segmentation.

    Attributes
    ----------
    mask : (Y, X) ndarray of bool
        Cell pixels; touching cells are 4-separated.
    dark_level, bright_level : float
        Medians of the flattened, smoothed frame below and above its Otsu
        threshold (1 is the local bright level). NaN when the frame is
        degenerate (constant).
    body_threshold, core_threshold : float
        Levels of the body mask and of the seed cores (see
        :func:`segment_rods`). NaN when no threshold was applied.
    noise : float
        Pixel noise of the flattened frame (robust standard deviation), NaN
        for a constant frame.
    n_cells : int
        Number of cells in `mask`.
    foreground_fraction : float
        Share of ``True`` pixels in `mask`, in [0, 1].
    """

    mask: BoolArray
    dark_level: float
    bright_level: float
    body_threshold: float
    core_threshold: float
    noise: float
    n_cells: int
    foreground_fraction: float


def segment_rods(
    frame: RealArray,
    *,
    smooth_sigma_px: float = 1.5,
    background_px: int = 48,
    body_level: float = 0.7,
    core_level: float = 0.5,
    ridge_threshold: float = 0.007,
    grow_px: int = 4,
    min_core_px: int = 40,
    min_area_px: int = 150,
    min_area_keep_edge: bool = True,
) -> RodSegmentation:
    """Segment dense rod-shaped cells (dark bodies, bright junctions) in phase.

    Parameters
    ----------
    frame : (Y, X) ndarray
        One phase-contrast frame of any real integer or floating dtype (the
        workflow passes uint16); float frames must be finite. Not modified.
        Computed in float32: the method compares intensities relative to the
        local bright level, where float32 resolves 1e-7.
    smooth_sigma_px : float, optional
        Standard deviation (px) of the Gaussian applied to the flattened frame
        before the thresholds and the ridge filter; > 0. About the width of
        the bright line between two touching cells.
    background_px : int, optional
        Side (px) of the window whose brightest 4 x 4 block mean is the local
        bright level (background or halo) that the frame is divided by; >= 8.
        At least twice the widest cell, so that every cell pixel sees
        background or a junction line.
    body_level : float, optional
        Body mask: the smoothed flattened frame below ``dark + body_level *
        (bright - dark)``, with ``dark`` and ``bright`` the medians below and
        above its Otsu threshold; in (0, 1].
    core_level : float, optional
        Seed cores: pixels of the body below ``dark + core_level * (bright -
        dark)`` and off every ridge; in (0, `body_level`].
    ridge_threshold : float, optional
        A pixel lies on a bright line between cells when the negative of the
        smaller Hessian eigenvalue of the smoothed flattened frame exceeds
        this (in units of the local bright level per px²); > 0.
    grow_px : int, optional
        Steps (4-neighbour, 1 px each) by which the cores grow back into the
        body mask; a pixel next to two cells is not taken; >= 0.
    min_core_px : int, optional
        Smallest core (4-connected px) that seeds a cell; a core touching the
        frame edge needs a quarter of it; >= 1.
    min_area_px : int, optional
        Cells with fewer pixels are dropped; >= 0.
    min_area_keep_edge : bool, optional
        Keep cells touching the frame edge whatever their area.

    Returns
    -------
    RodSegmentation
        The (Y, X) bool mask and the frame's levels, thresholds and noise.

    Raises
    ------
    TypeError
        If `frame` does not have a real dtype, or an option has the wrong type.
    ValueError
        If `frame` is not 2-D, is empty or holds NaN/inf, or an option is out
        of range.

    Notes
    -----
    1. **Flattening.** The frame is averaged over 4 x 4 blocks; the maximum
       over ``ceil(background_px / 4)`` blocks, smoothed by a Gaussian of half
       that width and interpolated bilinearly back to the pixels, is the local
       bright level ``B``; ``f = frame / B`` (1 = the brightest background or
       halo nearby, cell bodies about 0.6-0.8). This removes vignetting and
       uneven illumination.
    2. **Levels.** ``s`` is ``f`` smoothed by `smooth_sigma_px`. On every 4th
       row and column, Otsu's threshold of ``s`` splits dark from bright;
       ``dark`` and ``bright`` are the medians of the two classes. A frame
       whose ``bright - dark`` is below 3 pixel-noise sigmas (robust, from the
       pixel-to-pixel differences of ``f``) has no cells.
    3. **Bodies and lines.** The body mask is ``s < dark + body_level *
       (bright - dark)``. The ridge strength is ``-lambda_min`` of the Hessian
       of ``s`` (central differences): large on a bright line, whatever its
       direction, and negative in the dark valley of a rod.
    4. **Cores.** Body pixels below the core level and with ridge strength <=
       `ridge_threshold`, opened once by the 4-neighbour cross, labelled
       4-connected; cores smaller than `min_core_px` (a quarter of it at the
       frame edge) are dropped.
    5. **Growth.** `grow_px` times, every unlabelled body pixel whose labelled
       4-neighbours all carry one label takes it.
    6. **Separation.** Of two 4-adjacent pixels of different cells, the
       brighter (in ``s``; the larger label on a tie) becomes background, so
       the cut follows the junction line. Holes enclosed by one cell are
       filled with it; cells smaller than `min_area_px` are dropped (those at
       the edge kept when `min_area_keep_edge`).

    A constant frame (including an all-zero dropped frame) and a frame
    without contrast give an empty mask.

    References
    ----------
    algorithms.md §2.9 (rod segmentation).

    Examples
    --------
    >>> import numpy as np
    >>> frame = np.full((64, 96), 1000.0)
    >>> frame[24:40, 10:45] = 700.0  # two touching dark rods ...
    >>> frame[24:40, 46:81] = 700.0
    >>> frame[24:40, 45] = 1000.0  # ... with a bright line between them
    >>> result = segment_rods(frame, min_area_px=50)
    >>> result.n_cells
    2
    """
    options = _checked_options(
        {
            "smooth_sigma_px": smooth_sigma_px,
            "background_px": background_px,
            "body_level": body_level,
            "core_level": core_level,
            "ridge_threshold": ridge_threshold,
            "grow_px": grow_px,
            "min_core_px": min_core_px,
            "min_area_px": min_area_px,
            "min_area_keep_edge": min_area_keep_edge,
        }
    )
    return _segment(check_frame(frame), options)


@dataclass(frozen=True)
class RodsOptions:
    """The checked options of :func:`segment_rods` (``segmentation.rods``).

    Every attribute is the keyword argument of :func:`segment_rods` of the
    same name.
    """

    smooth_sigma_px: float
    background_px: int
    body_level: float
    core_level: float
    ridge_threshold: float
    grow_px: int
    min_core_px: int
    min_area_px: int
    min_area_keep_edge: bool


_FIELDS: Final = tuple(f.name for f in dataclasses.fields(RodsOptions))


def _checked_options(
    raw: Mapping[str, Any], key: Callable[[str], str] = str
) -> RodsOptions:
    """Check the options once and return them typed (``TypeError``/``ValueError``).

    `key` turns an option's name into the name the messages use (the config
    key when the config is read).
    """
    body_level = check_fraction(key("body_level"), raw["body_level"], allow_zero=False)
    core_level = check_fraction(key("core_level"), raw["core_level"], allow_zero=False)
    if core_level > body_level:
        raise ValueError(
            f"{key('core_level')} must not exceed {key('body_level')} (cores lie "
            f"inside the bodies); got {core_level!r} > {body_level!r}"
        )
    return RodsOptions(
        smooth_sigma_px=check_real(
            key("smooth_sigma_px"), raw["smooth_sigma_px"], minimum=0.0, open_min=True
        ),
        background_px=check_int(key("background_px"), raw["background_px"], minimum=8),
        body_level=body_level,
        core_level=core_level,
        ridge_threshold=check_real(
            key("ridge_threshold"), raw["ridge_threshold"], minimum=0.0, open_min=True
        ),
        grow_px=check_int(key("grow_px"), raw["grow_px"], minimum=0),
        min_core_px=check_int(key("min_core_px"), raw["min_core_px"], minimum=1),
        min_area_px=check_int(key("min_area_px"), raw["min_area_px"], minimum=0),
        min_area_keep_edge=check_bool(
            key("min_area_keep_edge"), raw["min_area_keep_edge"]
        ),
    )


def _segment(image: RealArray, options: RodsOptions) -> RodSegmentation:
    """Run the stages of :func:`segment_rods` on a checked frame and options."""
    work = image.astype(np.float32)
    if work.max() == work.min():
        # Constant frame, including an all-zero dropped frame: nothing to find.
        return _empty(image.shape)
    flat = _flatten(work, math.ceil(options.background_px / _BLOCK))
    s = np.asarray(ndi.gaussian_filter(flat, options.smooth_sigma_px), dtype=np.float32)
    levels = _levels(s, flat)
    if levels is None:
        # No contrast above the noise: a frame without cells.
        return _empty(image.shape)
    dark, bright, noise = levels
    body_t = dark + options.body_level * (bright - dark)
    core_t = dark + options.core_level * (bright - dark)
    body = s < np.float32(body_t)
    ridge = np.float32(options.ridge_threshold)
    cores = body & (s < np.float32(core_t)) & (_ridge_strength(s) <= ridge)
    labels = _seed_labels(cores, options.min_core_px)
    labels = _grow(labels, body, options.grow_px)
    labels = _separate(labels, s)
    labels = _fill_cell_holes(labels)
    mask, n_cells = _drop_small(labels, options.min_area_px, options.min_area_keep_edge)
    return RodSegmentation(
        mask=mask,
        dark_level=dark,
        bright_level=bright,
        body_threshold=body_t,
        core_threshold=core_t,
        noise=noise,
        n_cells=n_cells,
        foreground_fraction=float(mask.mean()),
    )


@dataclass(frozen=True)
class DenseRodsCheck:
    """Whether a phase-contrast frame is a dense field of elongated dark objects.

    Attributes
    ----------
    dense_rods : bool
        The verdict of :func:`check_dense_rods`.
    n_cells : int
        Objects of at least `min_area_px` found by :func:`segment_rods`.
    median_aspect : float
        Median length/width ratio of those objects (from their second
        moments); NaN without objects.
    touching_fraction : float
        Share of those objects with another object within 2 px (city block
        and diagonal: a 5 x 5 window); NaN without objects.
    foreground_fraction : float
        Share of the frame covered by the mask of :func:`segment_rods`.
    """

    dense_rods: bool
    n_cells: int
    median_aspect: float
    touching_fraction: float
    foreground_fraction: float


def check_dense_rods(
    frame: RealArray,
    *,
    min_cells: int = 10,
    min_aspect: float = 2.0,
    min_touching: float = 0.3,
    min_area_px: int = 150,
) -> DenseRodsCheck:
    """Decide whether a frame shows rod-shaped cells packed against each other.

    Parameters
    ----------
    frame : (Y, X) ndarray
        One phase-contrast frame (any real dtype, finite); not modified.
    min_cells : int, optional
        At least this many objects; >= 1.
    min_aspect : float, optional
        Their median length/width ratio at least this; >= 1. Rods of the
        generator's ``rods`` preset give 2.6-2.7, round and oval cells
        (``demo``, ``standard``) 1.2-1.5.
    min_touching : float, optional
        At least this share of them has a neighbour within 2 px; in [0, 1].
        Dense colonies give 0.65-0.8, sparse cells up to 0.2.
    min_area_px : int, optional
        Objects smaller than this are not counted; >= 1.

    Returns
    -------
    DenseRodsCheck
        The verdict and the measures it rests on.

    Raises
    ------
    TypeError, ValueError
        As :func:`segment_rods` for the frame; for an option out of range.

    Notes
    -----
    The frame is segmented with :func:`segment_rods` (its defaults), so the
    check costs one segmentation. ``pyama-steps init`` runs it on the first
    and the last phase plane of the first FOV to propose
    ``segmentation.method: rods`` (algorithms.md §2.9).
    """
    min_cells = check_int("min_cells", min_cells, minimum=1)
    min_aspect = check_real("min_aspect", min_aspect, minimum=1.0)
    min_touching = check_fraction("min_touching", min_touching)
    min_area_px = check_int("min_area_px", min_area_px, minimum=1)
    mask = segment_rods(frame).mask
    labels, n = ndi.label(mask)
    labels = np.asarray(labels, dtype=np.int32)
    aspect, touching, big = _object_shapes(labels, n, min_area_px)
    n_big = int(big.sum())
    nan = math.nan
    med_aspect = float(np.median(aspect[big])) if n_big else nan
    touch = float(touching[big].mean()) if n_big else nan
    dense = n_big >= min_cells and med_aspect >= min_aspect and touch >= min_touching
    return DenseRodsCheck(
        dense_rods=bool(dense),
        n_cells=n_big,
        median_aspect=med_aspect,
        touching_fraction=touch,
        foreground_fraction=float(mask.mean()),
    )


def _object_shapes(
    labels: I32, n: int, min_area_px: int
) -> tuple[npt.NDArray[np.float64], BoolArray, BoolArray]:
    """Aspect ratio, touching flag and size flag of every label (index = id)."""
    flat = labels.ravel()
    yy, xx = np.indices(labels.shape, dtype=np.float64)
    count = np.bincount(flat, minlength=n + 1).astype(np.float64)
    c = np.maximum(count, 1.0)

    def mean(values: Any) -> npt.NDArray[np.float64]:
        return np.bincount(flat, weights=values.ravel(), minlength=n + 1) / c

    my, mx = mean(yy), mean(xx)
    # + 1/12: the variance of a uniform pixel, so a 1-px line is not degenerate
    vy = mean(yy * yy) - my * my + 1.0 / 12.0
    vx = mean(xx * xx) - mx * mx + 1.0 / 12.0
    cxy = mean(xx * yy) - mx * my
    mid = (vx + vy) / 2.0
    spread = np.sqrt(((vx - vy) / 2.0) ** 2 + cxy * cxy)
    aspect = np.sqrt((mid + spread) / np.maximum(mid - spread, 1e-12))
    top = ndi.maximum_filter(labels, size=5, mode="constant")
    low = ndi.minimum_filter(
        np.where(labels > 0, labels, n + 1), size=5, mode="constant", cval=n + 1
    )
    near = (labels > 0) & ((top != labels) | (low != labels))
    touching = np.bincount(flat[near.ravel()], minlength=n + 1) > 0
    big = count >= min_area_px
    big[0] = False
    return aspect, touching, big


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def _empty(shape: tuple[int, ...]) -> RodSegmentation:
    nan = math.nan
    return RodSegmentation(
        mask=np.zeros(shape, dtype=np.bool_),
        dark_level=nan,
        bright_level=nan,
        body_threshold=nan,
        core_threshold=nan,
        noise=nan,
        n_cells=0,
        foreground_fraction=0.0,
    )


# --------------------------------------------------------------------------------------
# Flattening and levels
# --------------------------------------------------------------------------------------


def _flatten(image: F32, window: int) -> F32:
    """Divide by the local bright level (block maxima, smoothed, interpolated)."""
    ny, nx = image.shape
    pad_y, pad_x = (-ny) % _BLOCK, (-nx) % _BLOCK
    padded = np.pad(image, ((0, pad_y), (0, pad_x)), mode="edge")
    blocks = padded.reshape(
        padded.shape[0] // _BLOCK, _BLOCK, padded.shape[1] // _BLOCK, _BLOCK
    ).mean(axis=(1, 3), dtype=np.float32)
    env = ndi.maximum_filter(blocks, size=window, mode="nearest")
    env = ndi.gaussian_filter(env, window / 2.0, mode="nearest")
    # A dark corner of an all-but-empty frame must not divide by zero.
    floor = np.float32(max(float(env.max()), 1.0) * 1e-6)
    env = np.maximum(env, floor)
    level = _upsample(_upsample(env, ny, axis=0), nx, axis=1)
    return np.asarray(image / level, dtype=np.float32)


def _upsample(small: F32, n: int, *, axis: int) -> F32:
    """Interpolate block centres linearly to ``n`` pixel centres along ``axis``.

    Pixel ``k`` of block ``i`` lies ``(k + 0.5) / B - 0.5`` blocks from the
    centre of block ``i``; beyond the outermost centres the value is constant.
    """
    edge = (slice(0, 1), slice(-1, None))
    if axis == 0:
        ext = np.concatenate([small[edge[0]], small, small[edge[1]]], axis=0)
        mid, before, after = ext[1:-1], ext[:-2], ext[2:]
    else:
        ext = np.concatenate([small[:, edge[0]], small, small[:, edge[1]]], axis=1)
        mid, before, after = ext[:, 1:-1], ext[:, :-2], ext[:, 2:]
    parts = []
    for k in range(_BLOCK):
        f = (k + 0.5) / _BLOCK - 0.5
        near = before if f < 0 else after
        parts.append(mid * np.float32(1.0 - abs(f)) + near * np.float32(abs(f)))
    stacked = np.stack(parts, axis=axis + 1)
    shape = list(small.shape)
    shape[axis] *= _BLOCK
    out = stacked.reshape(shape)
    out = out[:n] if axis == 0 else out[:, :n]
    return np.ascontiguousarray(out, dtype=np.float32)


def _levels(s: F32, flat: F32) -> tuple[float, float, float] | None:
    """Dark and bright levels of ``s`` and the pixel noise of ``flat``."""
    sample = s[::_SAMPLE, ::_SAMPLE]
    if sample.max() == sample.min():
        return None
    # skimage is imported here: the config check imports this module while
    # the workflow is parsed, and only a rods job needs Otsu's threshold.
    from skimage.filters import threshold_otsu

    threshold = float(threshold_otsu(sample))  # type: ignore[no-untyped-call]
    lower = sample[sample <= threshold]
    upper = sample[sample > threshold]
    if lower.size == 0 or upper.size == 0:
        return None
    dark, bright = float(np.median(lower)), float(np.median(upper))
    rows = flat[::_SAMPLE]
    noise = _MAD_TO_SIGMA * float(np.median(np.abs(np.diff(rows, axis=1))))
    if bright - dark < _MIN_CONTRAST_NOISE * noise:
        return None
    return dark, bright, noise


def _ridge_strength(s: F32) -> F32:
    """Negative smaller eigenvalue of the Hessian (central differences).

    The outermost rows and columns, where the differences are undefined, repeat
    their inner neighbours, so a junction line runs on to the frame edge (0 for
    a frame under 3 px on a side).
    """
    out = np.zeros_like(s)
    if min(s.shape) < 3:
        return out
    c = s[1:-1, 1:-1]
    hyy = s[2:, 1:-1] + s[:-2, 1:-1] - 2 * c
    hxx = s[1:-1, 2:] + s[1:-1, :-2] - 2 * c
    hxy = (s[2:, 2:] - s[2:, :-2] - s[:-2, 2:] + s[:-2, :-2]) * np.float32(0.25)
    half = (hxx - hyy) * np.float32(0.5)
    root = np.sqrt(half * half + hxy * hxy)
    out[1:-1, 1:-1] = root - (hxx + hyy) * np.float32(0.5)
    out[0], out[-1] = out[1], out[-2]
    out[:, 0], out[:, -1] = out[:, 1], out[:, -2]
    return out


# --------------------------------------------------------------------------------------
# Cores, growth, separation
# --------------------------------------------------------------------------------------


def _shifts() -> tuple[tuple[Any, Any], ...]:
    """``(source, destination)`` slices of the four 4-neighbour shifts."""
    s = slice
    return (
        ((s(None, -1),), (s(1, None),)),
        ((s(1, None),), (s(None, -1),)),
        ((s(None), s(None, -1)), (s(None), s(1, None))),
        ((s(None), s(1, None)), (s(None), s(None, -1))),
    )


def _open_cross(mask: BoolArray) -> BoolArray:
    """Open by the 4-neighbour cross; outside the frame counts as foreground."""
    eroded = mask.copy()
    for src, dst in _shifts():
        eroded[dst] &= mask[src]
    opened = eroded.copy()
    for src, dst in _shifts():
        opened[dst] |= eroded[src]
    return opened


def _edge_ids(labels: I32, n: int) -> BoolArray:
    edge = np.zeros(n + 1, dtype=np.bool_)
    for side in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        edge[side] = True
    edge[0] = False
    return edge


def _seed_labels(cores: BoolArray, min_core_px: int) -> I32:
    """Label the opened cores (4-connected), dropping the small ones."""
    labels, n = ndi.label(_open_cross(cores))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    edge_min = max(1, math.ceil(_EDGE_CORE_SHARE * min_core_px))
    keep = (sizes >= min_core_px) | (_edge_ids(labels, n) & (sizes >= edge_min))
    keep[0] = False
    # Renumber in raster order of the kept cores (deterministic ids).
    new_id = np.cumsum(keep).astype(np.int32) * keep
    return np.asarray(new_id[labels], dtype=np.int32)


def _neighbour_range(
    flat: I32, index: npt.NDArray[np.intp], width: int
) -> tuple[I32, I32]:
    """Largest label and smallest non-zero label among the 4-neighbours."""
    near = np.stack(
        [flat[index - 1], flat[index + 1], flat[index - width], flat[index + width]]
    )
    top = np.iinfo(np.int32).max
    return near.max(axis=0), np.where(near > 0, near, top).min(axis=0)


def _grow(labels: I32, allowed: BoolArray, steps: int) -> I32:
    """Grow labels into ``allowed`` pixels with a single labelled neighbour."""
    ny, nx = labels.shape
    padded = np.zeros((ny + 2, nx + 2), dtype=np.int32)
    padded[1:-1, 1:-1] = labels
    free = np.zeros(padded.shape, dtype=np.bool_)
    free[1:-1, 1:-1] = allowed & (labels == 0)
    flat = padded.ravel()
    index = np.flatnonzero(free)
    for _ in range(steps):
        if index.size == 0:
            break
        top, low = _neighbour_range(flat, index, nx + 2)
        take = (top > 0) & (top == low)
        if not take.any():
            break
        flat[index[take]] = top[take]
        index = index[~take]
    return np.asarray(padded[1:-1, 1:-1], dtype=np.int32)


def _separate(labels: I32, s: F32) -> I32:
    """Clear the brighter pixel of every 4-adjacent pair of different cells."""
    clear = np.zeros(labels.shape, dtype=np.bool_)
    for a_idx, b_idx in (
        ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
        ((slice(None, -1), slice(None)), (slice(1, None), slice(None))),
    ):
        a, b = labels[a_idx], labels[b_idx]
        touch = (a > 0) & (b > 0) & (a != b)
        sa, sb = s[a_idx], s[b_idx]
        a_out = touch & ((sa > sb) | ((sa == sb) & (a > b)))
        clear[a_idx] |= a_out
        clear[b_idx] |= touch & ~a_out
    out = labels.copy()
    out[clear] = 0
    return out


def _fill_cell_holes(labels: I32) -> I32:
    """Give each hole that one cell encloses alone to that cell."""
    mask = labels > 0
    background, n_bg = ndi.label(~mask)
    outside = _edge_ids(background, n_bg)
    outside[0] = True
    holes = ~outside[background]
    if not holes.any():
        return labels
    hole_ids, n_holes = ndi.label(holes)
    ny, nx = labels.shape
    padded = np.zeros((ny + 2, nx + 2), dtype=np.int32)
    padded[1:-1, 1:-1] = labels
    at = np.zeros(padded.shape, dtype=np.bool_)
    at[1:-1, 1:-1] = holes
    top, low = _neighbour_range(padded.ravel(), np.flatnonzero(at), nx + 2)
    which = hole_ids[holes]
    big = np.iinfo(np.int32).max
    hole_top = np.zeros(n_holes + 1, dtype=np.int64)
    np.maximum.at(hole_top, which, top)
    hole_low = np.full(n_holes + 1, big, dtype=np.int64)
    np.minimum.at(hole_low, which, np.where(top > 0, low, big))
    single = (hole_top == hole_low) & (hole_top > 0)
    out = labels.copy()
    out[holes] = np.where(single[which], hole_top[which], 0)
    return out


def _drop_small(
    labels: I32, min_area_px: int, keep_edge: bool
) -> tuple[BoolArray, int]:
    """Return the mask of the cells that are large enough and their count."""
    n = int(labels.max())
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = sizes >= max(min_area_px, 1)
    if keep_edge:
        keep |= _edge_ids(labels, n) & (sizes > 0)
    keep[0] = False
    return np.asarray(keep[labels], dtype=np.bool_), int(keep.sum())


# --------------------------------------------------------------------------------------
# The method (segmentation.method: rods)
# --------------------------------------------------------------------------------------


def _config_options(section: Mapping[str, Any]) -> RodsOptions:
    """Build the options from ``segmentation.rods``, checked."""
    rods = section["rods"]
    raw = {name: rods[name] for name in _FIELDS}
    return _checked_options(raw, lambda name: f"'segmentation.rods.{name}'")


def _method_frame(frame: RealArray, options: RodsOptions) -> FrameSegmentation:
    """One frame's mask, its figures for the checks and its log line."""
    r = _segment(check_frame(frame), options)
    line = (
        f"dark={r.dark_level:.6g} bright={r.bright_level:.6g} "
        f"body={r.body_threshold:.6g} core={r.core_threshold:.6g} "
        f"noise={r.noise:.6g} cells={r.n_cells:d} "
        f"fg={r.foreground_fraction:.6f}"
    )
    return FrameSegmentation(
        mask=r.mask,
        threshold=r.body_threshold,
        noise=r.noise,
        foreground_fraction=r.foreground_fraction,
        log_line=line,
    )


#: ``segmentation.method: rods``.
METHOD: Final = SegmentationMethod[RodsOptions](
    name="rods", options=_config_options, segment=_method_frame
)
