"""The ``fit`` method: a penalised cubic B-spline surface (P-spline, §3.4).

The background pixels are averaged in small blocks, and the surface is fitted
by weighted least squares to the block means at the blocks' background
centroids, with robust passes that drop outlying blocks.
"""

from __future__ import annotations

import functools
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy.linalg import solveh_banded

from pyama_steps._typing import BoolArray, FloatArray, IntArray, RealArray
from pyama_steps.background.grids import SplineAxis
from pyama_steps.background.model import BackgroundFrame, _fallback_level

__all__: list[str] = []

# ``fit``: a block is used when at least this share of its in-frame pixels is
# background; blocks whose mean lies more than _FIT_CLIP robust standard
# deviations (of the block means, scaled by sqrt(count)) from the current fit
# are left out of the next, for at most _FIT_PASSES fits; _FIT_RIDGE keeps the
# system regular where the data leave the surface free (it pulls towards the
# weighted mean level).
_FIT_MIN_SHARE: Final = 0.125
_FIT_CLIP: Final = 4.0
_FIT_PASSES: Final = 6
_FIT_RIDGE: Final = 1e-6


def _block_stats(
    image: RealArray, background_px: BoolArray, block: int
) -> tuple[IntArray, FloatArray, FloatArray, FloatArray, IntArray]:
    """Per block: background count, value sum, row and column centroid sums.

    Returns ``(count, total, sum_y, sum_x, in_frame)``, each of shape
    ``(ceil(Y / block), ceil(X / block))``. Sums of integer frames are exact:
    the partial sums along a block's row are formed in float32 only where
    every one is an integer below 2**24, otherwise in float64.
    """
    rows, cols = image.shape
    row_starts = np.arange(0, rows, block)
    col_starts = np.arange(0, cols, block)
    small_int = image.dtype.kind in "iu" and image.dtype.itemsize <= 2
    exact32 = small_int and block * max(65535, cols) < 2**24
    acc = np.float32 if exact32 else np.float64
    selected: npt.NDArray[Any] = background_px.astype(acc)
    values: npt.NDArray[Any] = image.astype(acc)
    values *= selected
    # Sums along each row within each column of blocks: (Y, ceil(X / block)).
    row_total = np.add.reduceat(values, col_starts, axis=1).astype(np.float64)
    del values
    row_count = np.add.reduceat(selected, col_starts, axis=1).astype(np.float64)
    selected *= np.arange(cols, dtype=acc)
    row_x = np.add.reduceat(selected, col_starts, axis=1).astype(np.float64)
    del selected
    y = np.arange(rows, dtype=np.float64)[:, None]
    total = np.add.reduceat(row_total, row_starts, axis=0)
    count = np.add.reduceat(row_count, row_starts, axis=0)
    sum_x = np.add.reduceat(row_x, row_starts, axis=0)
    sum_y = np.add.reduceat(row_count * y, row_starts, axis=0)
    heights = np.diff(np.append(row_starts, rows))
    widths = np.diff(np.append(col_starts, cols))
    in_frame = heights[:, None] * widths[None, :]
    return count.astype(np.int64), total, sum_y, sum_x, in_frame


def _second_difference_gram(k: int) -> FloatArray:
    """``DᵀD`` of the second-difference operator on ``k`` coefficients."""
    if k < 3:
        return np.zeros((k, k))
    d = np.diff(np.eye(k), n=2, axis=0)
    return d.T @ d


# The 136 pairs (m1 <= m2) of the 16 coefficients a block touches: its index
# list is increasing, so these are the pairs on or above the diagonal.
_UPPER_PAIRS: Final = np.triu_indices(16)
# Blocks per accumulation chunk (bounds the pair temporaries to a few MB).
_GRAM_CHUNK: Final = 4096


@functools.lru_cache(maxsize=8)
def _penalty_band(ky: int, kx: int) -> FloatArray:
    """Second-difference penalty along both coefficient axes, upper band form.

    Row ``band + p - q`` of column ``q`` holds entry ``(p, q)``, ``p <= q``,
    of ``kron(G_y, I) + kron(I, G_x)`` (coefficient ``i·kx + j``), with
    ``band = 3·kx + 3``, as `scipy.linalg.solveh_banded` takes it.
    """
    band, size = 3 * kx + 3, ky * kx
    out = np.zeros((band + 1, size))
    gy, gx = _second_difference_gram(ky), _second_difference_gram(kx)
    j = np.arange(kx)
    for d in range(min(3, ky)):  # along y: offset d·kx, the same for every j
        for i in range(ky - d):
            out[band - d * kx, (i + d) * kx + j] += gy[i, i + d]
    for d in range(min(3, kx)):  # along x: offset d within a row of C
        for i in range(ky):
            out[band - d, i * kx + j[d:]] += gx[j[: kx - d], j[d:]]
    out.flags.writeable = False
    return out


def _gram_band(
    index: IntArray, design: FloatArray, weight: FloatArray, band: int, size: int
) -> FloatArray:
    """``Σ_k weight_k · a_k a_kᵀ`` of the design rows, in upper band form."""
    out = np.zeros((band + 1) * size)
    first, second = _UPPER_PAIRS
    for start in range(0, weight.size, _GRAM_CHUNK):
        part = slice(start, start + _GRAM_CHUNK)
        p = index[part][:, first]
        q = index[part][:, second]
        where = (band + p - q) * size + q
        value = design[part][:, first] * design[part][:, second]
        value *= weight[part, None]
        out += np.bincount(where.ravel(), value.ravel(), minlength=out.size)
    return out.reshape(band + 1, size)


def _spline_surface(
    carry: npt.NDArray[np.float64], rows: SplineAxis, cols: SplineAxis
) -> npt.NDArray[np.float32]:
    """Evaluate a ``fit`` surface from its carry array (coefficients, bounds).

    ``carry[:-1]`` holds the (m_y + 3, m_x + 3) coefficients, ``carry[-1, :2]``
    the clip bounds. Evaluated as ``B_y · C · B_xᵀ`` (the second product in
    float32), clipped, float32.
    """
    along_x = (carry[:-1] @ cols.dense().T).astype(np.float32)  # (m_y + 3, X)
    surface = rows.dense().astype(np.float32) @ along_x  # (Y, X)
    low, high = np.float32(carry[-1, 0]), np.float32(carry[-1, 1])
    np.clip(surface, low, high, out=surface)
    return surface


def _fit_frame(
    image: RealArray,
    background_px: BoolArray,
    rows: SplineAxis,
    cols: SplineAxis,
    *,
    block: int,
    smoothing: float,
    min_background_px: int,
    fallback_percentile: float,
    previous: npt.NDArray[np.float64] | None,
) -> BackgroundFrame:
    """Estimate one frame's background by the ``fit`` method (§3.4)."""
    count, total, sum_y, sum_x, in_frame = _block_stats(image, background_px, block)
    used = (count > 0) & (count >= _FIT_MIN_SHARE * in_frame)
    ky, kx = rows.count, cols.count
    if int(count[used].sum()) < min_background_px:
        return _fit_fallback(
            image,
            background_px,
            rows,
            cols,
            used_shape=used.shape,
            min_background_px=min_background_px,
            fallback_percentile=fallback_percentile,
            previous=previous,
        )
    n = count[used].astype(np.float64)
    value = total[used] / n
    index, design = _block_design(rows, cols, sum_y[used] / n, sum_x[used] / n)
    coef, keep = _robust_fit(index, design, n, value, ky=ky, kx=kx, smoothing=smoothing)
    low, high = float(value[keep].min()), float(value[keep].max())
    span = high - low
    carry = np.zeros((ky + 1, kx))
    carry[:-1] = coef.reshape(ky, kx)
    carry[-1, :2] = (low - span, high + span)
    valid = np.zeros(used.shape, dtype=np.bool_)
    valid[used] = keep
    return BackgroundFrame(
        background=_spline_surface(carry, rows, cols),
        tile_values=carry[:-1].copy(),
        valid_tiles=valid,
        fallback=False,
        fallback_rule=0,
        carry_values=carry,
        model=carry.copy(),
    )


def _fit_fallback(
    image: RealArray,
    background_px: BoolArray,
    rows: SplineAxis,
    cols: SplineAxis,
    *,
    used_shape: tuple[int, ...],
    min_background_px: int,
    fallback_percentile: float,
    previous: npt.NDArray[np.float64] | None,
) -> BackgroundFrame:
    """Return the ``fit`` estimate of a frame whose blocks hold too few pixels."""
    ky, kx = rows.count, cols.count
    rule, level = _fallback_level(
        image, background_px, min_background_px, fallback_percentile, previous
    )
    if rule == 2 and previous is not None:
        surface32 = _spline_surface(previous, rows, cols)
        coefficients = previous[:-1].copy()
        model = previous.copy()
    else:
        surface32 = np.full(image.shape, level, dtype=np.float32)
        coefficients = np.full((ky, kx), level)
        # bounds low = high = level: the clip makes the evaluated surface
        # exactly float32(level) everywhere, as np.full does
        model = np.full((ky + 1, kx), level)
    return BackgroundFrame(
        background=surface32,
        tile_values=coefficients,
        valid_tiles=np.zeros(used_shape, dtype=np.bool_),
        fallback=True,
        fallback_rule=rule,
        carry_values=previous,
        model=model,
    )


def _block_design(
    rows: SplineAxis, cols: SplineAxis, centre_y: FloatArray, centre_x: FloatArray
) -> tuple[IntArray, FloatArray]:
    """Return the 16 coefficients each block touches and their design values."""
    kx = cols.count
    first_y, wy = rows.locate(centre_y)
    first_x, wx = cols.locate(centre_x)
    # Row k of the design holds wy[k, a]·wx[k, c] at coefficient
    # (first_y[k] + a)·kx + first_x[k] + c.
    index = (
        (first_y[:, None, None] + np.arange(4)[None, :, None]) * kx
        + first_x[:, None, None]
        + np.arange(4)[None, None, :]
    ).reshape(-1, 16)
    design = (wy[:, :, None] * wx[:, None, :]).reshape(-1, 16)
    return index, design


def _robust_fit(
    index: IntArray,
    design: FloatArray,
    n: FloatArray,
    value: FloatArray,
    *,
    ky: int,
    kx: int,
    smoothing: float,
) -> tuple[FloatArray, BoolArray]:
    """Solve the penalised fit, dropping outlying blocks; return coef and kept."""
    # The normal equations are banded (bandwidth 3·kx + 3) and symmetric:
    # accumulated in band form once for all blocks; a later pass subtracts
    # the blocks it leaves out.
    k2 = ky * kx
    band = 3 * kx + 3
    gram_all = _gram_band(index, design, n, band, k2)
    penalty = _penalty_band(ky, kx)
    keep = np.ones(n.size, dtype=np.bool_)
    coef = np.zeros(k2)
    for attempt in range(_FIT_PASSES):
        w = np.where(keep, n, 0.0)
        level = float(np.dot(w, value) / w.sum())
        system = gram_all
        if not keep.all():
            left_out = ~keep
            system = gram_all - _gram_band(
                index[left_out], design[left_out], n[left_out], band, k2
            )
        rhs = np.bincount(
            index.ravel(), (design * (w * (value - level))[:, None]).ravel(),
            minlength=k2,
        )  # fmt: skip
        lam = smoothing * float(w.sum()) / k2
        system = system + lam * penalty
        system[band] += _FIT_RIDGE * max(lam, float(w.sum()) / k2)
        coef = solveh_banded(system, rhs, overwrite_ab=True) + level
        if attempt == _FIT_PASSES - 1:
            break
        # Hard rejection, judged afresh against each fit: a block is kept when
        # its residual, scaled to one pixel (times sqrt(count)), is within
        # _FIT_CLIP robust standard deviations of the kept blocks' residuals.
        z = np.abs(value - np.einsum("ij,ij->i", design, coef[index])) * np.sqrt(n)
        spread = 1.4826 * float(np.median(z[keep]))
        again = z <= _FIT_CLIP * spread
        if spread == 0.0 or not again.any() or np.array_equal(again, keep):
            break
        keep = again
    return coef, keep
