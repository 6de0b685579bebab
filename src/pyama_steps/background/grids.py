"""Where a background is sampled: tile grids and cubic spline bases along an axis.

``tiles`` takes the median of overlapping square tiles (:func:`tile_grid`),
``fit`` fits a uniform cubic B-spline surface (:func:`spline_axis`); both lay
their grid out once per frame size, one axis at a time (algorithms.md §3.3,
§3.4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pyama_steps._typing import FloatArray, IntArray
from pyama_steps._validate import check_int, check_real

__all__ = ["SplineAxis", "TileGrid", "spline_axis", "tile_grid"]


@dataclass(frozen=True, eq=False)
class TileGrid:
    """Tiles along one axis (algorithms.md §3.3).

    Attributes
    ----------
    n : int
        Length of the axis, in px.
    tile_size : int
        Requested tile side, in px.
    tile_overlap : float
        Requested overlap between neighbouring tiles, as a fraction of a tile.
    size : int
        Actual tile side ``s = min(tile_size, n)``; every tile covers ``s`` px.
    stride : int
        Nominal distance between tile starts, in px.
    starts : (m,) ndarray of int64
        First pixel of each tile; tile ``i`` covers ``[starts[i], starts[i] + s)``.
        ``starts[0] == 0`` and ``starts[-1] == n - s``.
    centres : (m,) ndarray of float64
        Tile centres in pixel-centre coordinates, ``starts + (s - 1) / 2``.
    """

    n: int
    tile_size: int
    tile_overlap: float
    size: int
    stride: int
    starts: IntArray
    centres: FloatArray

    @property
    def count(self) -> int:
        """Number of tiles ``m`` along the axis."""
        return int(self.starts.size)


@dataclass(frozen=True, eq=False)
class SplineAxis:
    """Uniform cubic B-spline basis along one axis (algorithms.md §3.4, ``fit``).

    Attributes
    ----------
    n : int
        Length of the axis, in px.
    knot_spacing_px : float
        Requested knot spacing, in px.
    spacing : float
        Actual knot spacing ``h = (n - 1) / m`` (1 when ``n == 1``).
    intervals : int
        Number of knot intervals ``m = max(1, round((n - 1) / knot_spacing_px))``
        across the pixel centres ``0 .. n - 1``.
    first : (n,) ndarray of int64
        Index of the first of the 4 basis functions that are non-zero at each
        pixel centre.
    weights : (n, 4) ndarray of float64
        Their values there; each row sums to 1.
    """

    n: int
    knot_spacing_px: float
    spacing: float
    intervals: int
    first: IntArray
    weights: FloatArray

    @property
    def count(self) -> int:
        """Number of basis functions (coefficients) ``m + 3``."""
        return self.intervals + 3

    def locate(self, coords: FloatArray) -> tuple[IntArray, FloatArray]:
        """First non-zero basis function and the 4 values at `coords` (px)."""
        u = np.clip(np.asarray(coords, dtype=np.float64) / self.spacing, 0.0, None)
        first = np.minimum(np.floor(u).astype(np.int64), self.intervals - 1)
        return first, _cubic_weights(u - first)

    def dense(self) -> FloatArray:
        """Return the (n, m + 3) matrix of every basis function at every pixel."""
        out = np.zeros((self.n, self.count))
        rows = np.arange(self.n)
        for j in range(4):
            out[rows, self.first + j] = self.weights[:, j]
        return out


def spline_axis(n: int, *, knot_spacing_px: float = 64.0) -> SplineAxis:
    """Lay out a uniform cubic B-spline basis along one axis.

    Parameters
    ----------
    n : int
        Length of the axis, in px; >= 1.
    knot_spacing_px : float, optional
        Knot spacing, in px; > 0. The actual spacing divides the span of the
        pixel centres ``[0, n - 1]`` into a whole number of intervals.

    Returns
    -------
    SplineAxis
        ``m + 3`` basis functions with knots at ``(k - 3)·h``, ``k = 0 .. m + 6``:
        every pixel centre lies inside the span where the 4 non-zero functions
        sum to 1, so a constant surface is represented exactly.

    Examples
    --------
    >>> axis = spline_axis(513, knot_spacing_px=64)
    >>> axis.intervals, axis.spacing, axis.count
    (8, 64.0, 11)
    """
    n = check_int("n", n, minimum=1)
    knot_spacing_px = check_real(
        "knot_spacing_px", knot_spacing_px, minimum=0.0, open_min=True
    )
    intervals = max(1, math.floor((n - 1) / knot_spacing_px + 0.5))
    spacing = (n - 1) / intervals if n > 1 else 1.0
    u = np.arange(n, dtype=np.float64) / spacing
    first = np.minimum(np.floor(u).astype(np.int64), intervals - 1)
    return SplineAxis(
        n=n,
        knot_spacing_px=knot_spacing_px,
        spacing=spacing,
        intervals=intervals,
        first=first,
        weights=_cubic_weights(u - first),
    )


def tile_grid(n: int, *, tile_size: int = 128, tile_overlap: float = 0.5) -> TileGrid:
    """Lay out overlapping tiles of equal size along one axis.

    Parameters
    ----------
    n : int
        Length of the axis, in px; >= 1.
    tile_size : int, optional
        Tile side, in px; >= 1. Clipped to `n`.
    tile_overlap : float, optional
        Overlap between neighbouring tiles as a fraction of a tile, in [0, 1).

    Returns
    -------
    TileGrid
        ``m`` tiles of ``s = min(tile_size, n)`` px. The first starts at 0, the
        last ends at `n`, and the starts are spread evenly in between.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If an argument is out of range.

    Notes
    -----
    With ``stride = max(1, floor(s·(1 - tile_overlap) + 0.5))``, the count is
    ``m = 1`` if ``n == s`` and ``1 + ceil((n - s) / stride)`` otherwise, and tile
    ``i`` starts at ``(2·i·(n - s) + (m - 1)) // (2·(m - 1))``, i.e. at
    ``i·(n - s)/(m - 1)`` rounded half up. With the defaults this gives the tile
    centres of PyAMA's implementation (7 tiles for 1024 px), and, unlike it, any
    ``n >= 1`` works.

    Examples
    --------
    >>> grid = tile_grid(513, tile_size=256)
    >>> grid.starts.tolist(), grid.centres.tolist()
    ([0, 86, 171, 257], [127.5, 213.5, 298.5, 384.5])
    """
    n = check_int("n", n, minimum=1)
    tile_size = check_int("tile_size", tile_size, minimum=1)
    tile_overlap = check_real(
        "tile_overlap", tile_overlap, minimum=0.0, maximum=1.0, open_max=True
    )
    size = min(tile_size, n)
    stride = max(1, math.floor(size * (1.0 - tile_overlap) + 0.5))
    count = 1 if n == size else 1 + -(-(n - size) // stride)
    if count == 1:
        starts = np.zeros(1, dtype=np.int64)
    else:
        i = np.arange(count, dtype=np.int64)
        starts = (2 * i * (n - size) + (count - 1)) // (2 * (count - 1))
    return TileGrid(
        n=n,
        tile_size=tile_size,
        tile_overlap=tile_overlap,
        size=size,
        stride=stride,
        starts=starts,
        centres=starts + (size - 1) / 2.0,
    )


def _cubic_weights(t: FloatArray) -> FloatArray:
    """Values of the 4 uniform cubic B-splines non-zero at offset ``t`` in [0, 1]."""
    t = np.asarray(t, dtype=np.float64)
    s = 1.0 - t
    t2 = t * t
    t3 = t2 * t
    out = np.empty((*t.shape, 4))
    out[..., 0] = s * s * s / 6.0
    out[..., 1] = (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0
    out[..., 2] = (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0
    out[..., 3] = t3 / 6.0
    return out


def _check_grid(
    name: str, grid: TileGrid | None, n: int, tile_size: int, tile_overlap: float
) -> TileGrid:
    if grid is None:
        return tile_grid(n, tile_size=tile_size, tile_overlap=tile_overlap)
    if not isinstance(grid, TileGrid):
        raise TypeError(f"{name} must be a TileGrid or None; got {grid!r}")
    if (grid.n, grid.tile_size, grid.tile_overlap) != (n, tile_size, tile_overlap):
        raise ValueError(
            f"{name} must be tile_grid({n}, tile_size={tile_size}, "
            f"tile_overlap={tile_overlap}) for this frame; got a grid for n={grid.n}, "
            f"tile_size={grid.tile_size}, tile_overlap={grid.tile_overlap}"
        )
    return grid


def _check_axis(
    name: str, axis: SplineAxis | None, n: int, knot_spacing_px: float
) -> SplineAxis:
    if axis is None:
        return spline_axis(n, knot_spacing_px=knot_spacing_px)
    if not isinstance(axis, SplineAxis):
        raise TypeError(f"{name} must be a SplineAxis or None; got {axis!r}")
    if (axis.n, axis.knot_spacing_px) != (n, knot_spacing_px):
        raise ValueError(
            f"{name} must be spline_axis({n}, knot_spacing_px={knot_spacing_px}) "
            f"for this frame; got an axis for n={axis.n}, "
            f"knot_spacing_px={axis.knot_spacing_px}"
        )
    return axis
