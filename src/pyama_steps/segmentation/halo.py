"""The halo trim (algorithms.md §2.4): the local background level and the edge level.

The bright phase-contrast halo around each cell passes the log-STD threshold;
the trim removes the mask pixels whose window mean exceeds a level set from
the local background (block means over background pixels, interpolated
bilinearly) or, with ``halo_level='edge'``, at the cells' measured edges. The
outline and junction restores (:mod:`~pyama_steps.segmentation.restore`) test
candidate pixels against the same level (:func:`_level_allowed`).
Package-internal: called by :mod:`pyama_steps.segmentation.log_std`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from pyama_steps._typing import BoolArray, RealArray
from pyama_steps.morphology import erode_square as _erode
from pyama_steps.morphology import run_reduce as _run_reduce
from pyama_steps.segmentation.texture import _NumArray

__all__: list[str] = []

# Halo trim (§2.4): pixels within this many px of a thresholded pixel are not used
# for the background level.
_HALO_EXCLUDE_PX: Final = 3
# The halo trim needs this share of the objects' inner pixels darker than the
# background by the margin: phase-dense (dark) objects, as in phase contrast. In
# fluorescence or bright field, where objects are bright, it is skipped.
_HALO_MIN_DARK: Final = 0.25
# A block is a usable background sample when at least this share of it is background.
_HALO_MIN_BACKGROUND: Final = 0.1
# Unusable blocks (§2.4): a quadratic trend needs at least this many usable blocks
# (twice its six coefficients), and the usable blocks' deviations from it spread
# with a Gaussian of this many blocks, shrunk towards 0 where the Gaussian's
# summed weight is below this share of the usable blocks' mean count.
_FILL_MIN_BLOCKS: Final = 12
_FILL_SIGMA_BLOCKS: Final = 1.0
_FILL_FULL_WEIGHT: Final = 0.5


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
    of its sampled pixels in the background is unusable and takes a value
    interpolated from the usable ones (`_fill_blocks`). ``None`` when no block
    is usable.
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
        grid = _fill_blocks(grid, np.where(usable, counts, 0))
    return grid


def _fill_blocks(
    grid: npt.NDArray[np.float64], counts: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """Give the unusable blocks (``counts == 0``) a level from the usable ones (§2.4).

    The illumination of a microscope falls off smoothly from the centre of the
    field (vignetting) and the blocks without background are where cells
    crowd, so an unusable block takes a trend plus the local deviation from
    it, not a neighbour's level (which, on a slope, is off by the slope over
    the distance). The trend is the quadratic surface in the block indices
    fitted to the usable blocks by least squares with weights `counts` (their
    count-weighted mean when fewer than `_FILL_MIN_BLOCKS` are usable); the
    deviation is ``Σ counts·G·residual / max(Σ counts·G, f·c̄)``: the usable
    blocks' residuals averaged with weights ``counts·G``, ``G`` a Gaussian of
    `_FILL_SIGMA_BLOCKS` blocks, shrunk towards 0 where the usable blocks
    within its reach weigh less than ``f = _FILL_FULL_WEIGHT`` times their
    mean count ``c̄`` (it fades to the trend away from them). Usable blocks
    keep their level.

    Parameters
    ----------
    grid : (GY, GX) ndarray of float64
        Block levels; read where ``counts > 0``.
    counts : (GY, GX) ndarray of int64
        Background pixels per usable block, 0 for the unusable ones (at least
        one is positive).

    Returns
    -------
    (GY, GX) ndarray of float64
    """
    usable = counts > 0
    weight = counts.astype(np.float64)
    rows, cols = grid.shape
    scale = float(max(rows, cols))
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    y = (y - 0.5 * (rows - 1)) / scale
    x = (x - 0.5 * (cols - 1)) / scale
    if np.count_nonzero(usable) >= _FILL_MIN_BLOCKS:
        terms = np.stack((np.ones_like(y), y, x, y * y, y * x, x * x), axis=-1)
        root = np.sqrt(weight[usable])
        coef = np.linalg.lstsq(
            terms[usable] * root[:, None], grid[usable] * root, rcond=None
        )[0]
        trend = terms @ coef
    else:
        trend = np.full(grid.shape, np.average(grid[usable], weights=weight[usable]))
    residual = np.where(usable, grid - trend, 0.0) * weight
    spread = partial(
        ndi.gaussian_filter, sigma=_FILL_SIGMA_BLOCKS, mode="nearest", truncate=3.0
    )
    # Where the Gaussian sees few usable blocks the deviation shrinks towards
    # the trend: its weight is at least half the usable blocks' mean count.
    floor = _FILL_FULL_WEIGHT * float(weight[usable].mean())
    local = spread(residual) / np.maximum(spread(weight), floor)
    return np.where(usable, grid, trend + local)


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
