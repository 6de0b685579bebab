"""The ``tiles`` method: tile medians and an interpolating spline (§3.3).

The existing implementation's method: the median of the background pixels of
overlapping square tiles, tiles without enough background filled from their
neighbours, and an interpolating spline through the tile centres, flat beyond
the outer centres.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.interpolate import InterpolatedUnivariateSpline, RectBivariateSpline

from pyama_steps._typing import BoolArray, RealArray
from pyama_steps.background.grids import TileGrid
from pyama_steps.background.model import BackgroundFrame, _fallback_level, _median

__all__: list[str] = []


def _tiles_frame(
    image: RealArray,
    background_px: BoolArray,
    rows: TileGrid,
    cols: TileGrid,
    *,
    min_background_px: int,
    fallback_percentile: float,
    spline_degree: int,
    previous: npt.NDArray[np.float64] | None,
) -> BackgroundFrame:
    """Estimate one frame's background by the ``tiles`` method (§3.3, §3.4)."""
    values, valid = _tile_medians(image, background_px, rows, cols, min_background_px)
    rule = 0
    carry = previous
    if valid.any():
        values = _fill_tiles(values, valid)
        carry = values
    else:
        rule, level = _fallback_level(
            image, background_px, min_background_px, fallback_percentile, previous
        )
        # Rule 2 is the previous frame's values; it needs `previous`.
        if rule == 2 and previous is not None:
            values = previous.copy()
        else:
            values = np.full((rows.count, cols.count), level)
    surface = _surface(values, rows, cols, spline_degree)
    return BackgroundFrame(
        background=surface,
        tile_values=values,
        valid_tiles=valid,
        fallback=rule != 0,
        fallback_rule=rule,
        carry_values=carry,
        model=values.copy(),
    )


def _tile_medians(
    image: RealArray,
    background_px: BoolArray,
    rows: TileGrid,
    cols: TileGrid,
    min_background_px: int,
) -> tuple[npt.NDArray[np.float64], BoolArray]:
    """Return the tile medians (NaN where invalid) and the valid tiles."""
    values = np.full((rows.count, cols.count), np.nan)
    valid = np.zeros((rows.count, cols.count), dtype=np.bool_)
    for a, y0 in enumerate(rows.starts.tolist()):
        for b, x0 in enumerate(cols.starts.tolist()):
            window = (slice(y0, y0 + rows.size), slice(x0, x0 + cols.size))
            selected = background_px[window]
            if np.count_nonzero(selected) >= min_background_px:
                # Boolean indexing keeps raster order: a fixed pixel order.
                values[a, b] = _median(image[window][selected])
                valid[a, b] = True
    return values, valid


def _fill_tiles(
    values: npt.NDArray[np.float64], valid: BoolArray
) -> npt.NDArray[np.float64]:
    """Fill invalid tiles from their valid 8-neighbours, pass by pass.

    Each pass reads only the values of the previous pass, so the result does
    not depend on the order tiles are visited. Neighbours are summed in raster
    order. `valid` must have at least one ``True``.
    """
    filled = values.copy()
    known = valid.copy()
    m_y, m_x = filled.shape
    while not known.all():
        padded = np.zeros((m_y + 2, m_x + 2))
        padded[1:-1, 1:-1] = np.where(known, filled, 0.0)
        present = np.zeros((m_y + 2, m_x + 2), dtype=np.int64)
        present[1:-1, 1:-1] = known
        total = np.zeros((m_y, m_x))
        count = np.zeros((m_y, m_x), dtype=np.int64)
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                if dy == 1 and dx == 1:
                    continue
                total += padded[dy : dy + m_y, dx : dx + m_x]
                count += present[dy : dy + m_y, dx : dx + m_x]
        new = ~known & (count > 0)
        filled[new] = total[new] / count[new]
        known |= new
    return filled


def _surface(
    values: npt.NDArray[np.float64], rows: TileGrid, cols: TileGrid, degree: int
) -> npt.NDArray[np.float32]:
    """Interpolate the tile values to every pixel, flat beyond the outer centres."""
    m_y, m_x = values.shape
    y = np.clip(np.arange(rows.n, dtype=np.float64), rows.centres[0], rows.centres[-1])
    x = np.clip(np.arange(cols.n, dtype=np.float64), cols.centres[0], cols.centres[-1])
    if m_y == 1 and m_x == 1:
        return np.full((rows.n, cols.n), values[0, 0], dtype=np.float32)
    if m_y == 1 or m_x == 1:
        along_y = m_x == 1
        centres = rows.centres if along_y else cols.centres
        k = min(degree, centres.size - 1)
        line = InterpolatedUnivariateSpline(centres, values.ravel(), k=k)
        profile = np.asarray(line(y if along_y else x), dtype=np.float64)
        profile32 = profile.astype(np.float32)
        shape = (rows.n, cols.n)
        expanded = profile32[:, None] if along_y else profile32[None, :]
        return np.ascontiguousarray(np.broadcast_to(expanded, shape))
    spline = RectBivariateSpline(
        rows.centres,
        cols.centres,
        values,
        kx=min(degree, m_y - 1),
        ky=min(degree, m_x - 1),
        s=0,
    )
    # Grid evaluation needs strictly increasing coordinates: evaluate at the
    # distinct clipped coordinates and repeat. FITPACK evaluates every point
    # independently, so the values are those at the clipped coordinates.
    y_unique, y_index = np.unique(y, return_inverse=True)
    x_unique, x_index = np.unique(x, return_inverse=True)
    grid = np.asarray(spline(y_unique, x_unique), dtype=np.float64).astype(np.float32)
    return np.take(np.take(grid, y_index, axis=0), x_index, axis=1)
