"""Fluorescence background: a smooth surface fitted to the pixels between cells.

Implements algorithms.md §3. The cell mask is grown and the remaining pixels are
background. Two methods turn them into a smooth full-size surface that is
subtracted from the raw frame:

* ``fit`` (default): the background pixels are averaged in small blocks, and a
  penalised cubic B-spline surface (P-spline) is fitted by weighted least
  squares to the block means *at the blocks' background centroids*, with two
  robust passes that drop outlying blocks.
* ``tiles`` (the existing implementation's): the median of the background pixels
  of overlapping square tiles, tiles without enough background filled from their
  neighbours, and an interpolating spline through the tile centres, flat beyond
  the outer centres.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
from scipy.interpolate import InterpolatedUnivariateSpline, RectBivariateSpline
from scipy.linalg import solveh_banded

from pyama_steps._typing import BoolArray, FloatArray, IntArray, RealArray
from pyama_steps.morphology import dilate_square

__all__ = [
    "BackgroundFrame",
    "BackgroundMethod",
    "SplineAxis",
    "TileGrid",
    "background_surface",
    "correct_frame",
    "estimate_background",
    "model_shape",
    "spline_axis",
    "tile_grid",
]

BackgroundMethod = Literal["fit", "tiles"]
_METHODS: Final = ("fit", "tiles")

# FITPACK supports spline degrees 1 to 5.
_MAX_SPLINE_DEGREE: Final = 5

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


@dataclass(frozen=True, eq=False)
class BackgroundFrame:
    """Background estimate of one frame.

    Attributes
    ----------
    background : (Y, X) ndarray of float32
        Smooth background surface ``bg``.
    tile_values : ndarray of float64
        ``tiles``: the filled (m_y, m_x) tile values ``V`` the surface passes
        through. ``fit``: the (m_y + 3, m_x + 3) spline coefficients (the
        constant level for fallback rules 1 and 3).
    valid_tiles : ndarray of bool
        ``tiles``: the (m_y, m_x) tiles that had at least ``min_background_px``
        background pixels. ``fit``: the blocks used by the final fit.
    fallback : bool
        True if no tile (``fit``: no block) was usable and a fallback rule set
        the surface.
    fallback_rule : int
        0 without fallback; otherwise the rule of algorithms.md §3.4 step 4 that
        was applied: 1 (median of all background pixels of the frame), 2 (the
        surface of the latest frame with usable background) or 3 (percentile of
        all pixels of the frame).
    carry_values : ndarray of float64 or None
        What to pass as ``previous_values`` with the next frame of the same FOV:
        this frame's ``tile_values`` (``tiles``; ``fit``: the coefficients with
        a last row holding the clip bounds) if it had usable background, else
        the ``previous_values`` it received.
    model : ndarray of float64
        The small array the surface is a function of: ``background_surface(
        model, ...)`` with the same options returns ``background`` bit for bit.
        ``fit``: the (m_y + 4, m_x + 3) coefficients with a last row holding
        the clip bounds (fallback rules 1 and 3: every coefficient and both
        bounds at the constant level). ``tiles``: the (m_y, m_x) filled tile
        values ``V``. Written per frame as the ``fl_background_model`` stack
        (algorithms.md §3.6), from which every later step computes the
        corrected fluorescence.
    """

    background: npt.NDArray[np.float32]
    tile_values: npt.NDArray[np.float64]
    valid_tiles: BoolArray
    fallback: bool
    fallback_rule: int
    carry_values: npt.NDArray[np.float64] | None
    model: npt.NDArray[np.float64]


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
    n = _check_int("n", n, minimum=1)
    knot_spacing_px = _check_real(
        "knot_spacing_px", knot_spacing_px, minimum=0.0, maximum=math.inf
    )
    if knot_spacing_px <= 0.0:
        raise ValueError(f"knot_spacing_px must be > 0; got {knot_spacing_px!r}")
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
    >>> grid = tile_grid(513)
    >>> grid.starts.tolist(), grid.centres.tolist()
    ([0, 86, 171, 257], [127.5, 213.5, 298.5, 384.5])
    """
    n = _check_int("n", n, minimum=1)
    tile_size = _check_int("tile_size", tile_size, minimum=1)
    tile_overlap = _check_real(
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


def estimate_background(
    frame: RealArray,
    mask: BoolArray,
    *,
    method: BackgroundMethod = "fit",
    mask_dilation_px: int = 10,
    tile_size: int = 128,
    tile_overlap: float = 0.5,
    min_background_px: int = 50,
    spline_degree: int = 3,
    block_px: int = 16,
    knot_spacing_px: float = 64.0,
    smoothing: float = 1e-3,
    exclude_zero: bool = False,
    fallback_percentile: float = 5.0,
    previous_values: FloatArray | None = None,
    grid_y: TileGrid | None = None,
    grid_x: TileGrid | None = None,
    axis_y: SplineAxis | None = None,
    axis_x: SplineAxis | None = None,
) -> BackgroundFrame:
    """Estimate the smooth background of one fluorescence frame.

    Parameters
    ----------
    frame : (Y, X) ndarray
        Raw fluorescence frame of any real integer or floating dtype (the
        workflow passes uint16). Float frames must be finite. Not modified.
    mask : (Y, X) ndarray of bool
        Cell mask of the same frame (segmentation output). Not modified.
    method : {"fit", "tiles"}, optional
        ``fit``: a penalised spline fitted to block means of the background
        pixels. ``tiles``: the existing implementation's tile medians and
        interpolating spline. Options of the other method are ignored.
    mask_dilation_px : int, optional
        Cells are grown by a ``(2·r + 1)``² square before the background is
        sampled; >= 0.
    tile_size : int, optional
        Tile side, in px; >= 1, clipped to the frame size.
    tile_overlap : float, optional
        Overlap between neighbouring tiles, in [0, 1).
    min_background_px : int, optional
        Background pixels a tile needs to be valid (``tiles``), or the used
        blocks together (``fit``); >= 1.
    spline_degree : int, optional
        ``tiles``: largest degree of the interpolating spline, in [1, 5]. It
        drops to ``m - 1`` along an axis with ``m`` tiles.
    block_px : int, optional
        ``fit``: side of the square blocks whose background pixels are averaged;
        >= 1.
    knot_spacing_px : float, optional
        ``fit``: spacing of the spline knots, in px; > 0.
    smoothing : float, optional
        ``fit``: weight of the curvature penalty relative to the data (``λ`` per
        coefficient, as a share of the total block weight); >= 0.
    exclude_zero : bool, optional
        Treat raw 0 as "no data" (mosaic padding): such pixels are not
        background.
    fallback_percentile : float, optional
        Percentile (linear), in [0, 100], of all pixels of the frame used when
        neither the frame nor an earlier frame has usable background.
    previous_values : ndarray of float, optional
        ``carry_values`` of the previous frame of the same FOV, for fallback rule
        2: (m_y, m_x) tile values (``tiles``), or the (m_y + 4, m_x + 3) spline
        coefficients with the clip bounds in the last row (``fit``). ``None``
        for the first frame.
    grid_y, grid_x : TileGrid, optional
        ``tiles``: tile grids of the rows and columns, as returned by
        :func:`tile_grid` with the same `tile_size` and `tile_overlap`, to
        compute them once per FOV. Computed here when ``None``.
    axis_y, axis_x : SplineAxis, optional
        ``fit``: spline bases of the rows and columns, as returned by
        :func:`spline_axis` with the same `knot_spacing_px`. Computed here when
        ``None``.

    Returns
    -------
    BackgroundFrame
        The float32 surface, the tile values or spline coefficients, and the
        fallback used.

    Raises
    ------
    TypeError
        If `frame` is not of a real dtype, `mask` is not boolean, or an option
        has the wrong type.
    ValueError
        If the shapes disagree, `frame` holds NaN/inf, an option is out of range,
        or `previous_values` or a grid does not fit the frame.

    Notes
    -----
    1. ``grown = maximum_filter(mask as uint8, 2·r + 1, mode='constant',
       cval=0)``; background pixels are ``grown == 0`` (and ``frame != 0`` with
       `exclude_zero`).

    ``fit`` (algorithms.md §3.4): blocks of ``block_px``² px starting at (0, 0)
    with at least 1/8 of their in-frame pixels background give the mean value
    and centroid of those pixels. The spline coefficients minimise
    ``Σ n_k·(v_k - s(c_k))² + λ·(|D_y C|² + |C D_xᵀ|²)`` (``n_k`` background
    pixels of block ``k``, ``D`` second differences, ``λ = smoothing·Σn_k /
    #coefficients``); blocks farther than 4 robust standard deviations from the
    fit are dropped and it is solved again, until the kept blocks no longer
    change (at most 6 fits). The surface is clipped to the range
    of the used block means widened by that range on either side. Fallbacks as
    in step 4 below, when the used blocks hold fewer than `min_background_px`
    pixels.

    ``tiles``:

    2. A tile with at least `min_background_px` background pixels takes their
       median, computed in float64 (an even count averages the two middle
       values); other tiles are invalid.
    3. Repeatedly, every invalid tile with a valid 8-neighbour takes the mean of
       the valid neighbours' values of the previous pass (summed in raster order
       of the neighbours), until no invalid tile is left.
    4. Without any valid tile, the first that applies: (1) at least
       `min_background_px` background pixels in the frame: their median
       everywhere; (2) `previous_values` given: those; (3) the
       `fallback_percentile` of all pixels everywhere.
    5. A spline of degree ``min(spline_degree, m - 1)`` per axis through the
       tile centres (``RectBivariateSpline`` with ``s=0``; a 1-D
       ``InterpolatedUnivariateSpline`` if one axis has a single tile; the
       constant ``V[0, 0]`` with one tile), evaluated at pixel coordinates
       clipped to the outer tile centres, so that the surface is flat beyond
       them.

    PyAMA's implementation dilated the mask with ``binary_dilation``, accepted
    tiles with a single background pixel, filled empty tiles with the frame's
    global median, propagated NaN for frames without background, and needed
    at least 4 tiles per axis (it failed on frames of 512 px or less).

    References
    ----------
    algorithms.md §3 (tile-interpolation background).

    Examples
    --------
    >>> import numpy as np
    >>> frame = np.full((300, 200), 100, dtype=np.uint16)
    >>> mask = np.zeros((300, 200), dtype=bool)
    >>> result = estimate_background(frame, mask)
    >>> result.tile_values.shape, float(result.background[0, 0])
    ((2, 1), 100.0)
    """
    image = _check_frame(frame)
    cells = np.asarray(mask)
    if cells.dtype != np.bool_:
        raise TypeError(
            f"mask must have dtype bool; got dtype {cells.dtype!r}. "
            "Pass the segmentation mask, or convert with mask.astype(bool)"
        )
    if cells.shape != image.shape:
        raise ValueError(
            f"mask must have the shape of frame {image.shape!r}; "
            f"got shape {cells.shape!r}"
        )
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}; got {method!r}")
    mask_dilation_px = _check_int("mask_dilation_px", mask_dilation_px, minimum=0)
    tile_size = _check_int("tile_size", tile_size, minimum=1)
    tile_overlap = _check_real(
        "tile_overlap", tile_overlap, minimum=0.0, maximum=1.0, open_max=True
    )
    min_background_px = _check_int("min_background_px", min_background_px, minimum=1)
    spline_degree = _check_int(
        "spline_degree", spline_degree, minimum=1, maximum=_MAX_SPLINE_DEGREE
    )
    block_px = _check_int("block_px", block_px, minimum=1)
    knot_spacing_px = _check_real(
        "knot_spacing_px", knot_spacing_px, minimum=0.0, maximum=math.inf
    )
    if knot_spacing_px <= 0.0:
        raise ValueError(f"knot_spacing_px must be > 0; got {knot_spacing_px!r}")
    smoothing = _check_real("smoothing", smoothing, minimum=0.0, maximum=math.inf)
    exclude_zero = _check_bool("exclude_zero", exclude_zero)
    fallback_percentile = _check_real(
        "fallback_percentile", fallback_percentile, minimum=0.0, maximum=100.0
    )
    if method == "fit":
        rows_fit = _check_axis("axis_y", axis_y, image.shape[0], knot_spacing_px)
        cols_fit = _check_axis("axis_x", axis_x, image.shape[1], knot_spacing_px)
        carry_shape = (rows_fit.count + 1, cols_fit.count)
    else:
        rows = _check_grid("grid_y", grid_y, image.shape[0], tile_size, tile_overlap)
        cols = _check_grid("grid_x", grid_x, image.shape[1], tile_size, tile_overlap)
        carry_shape = (rows.count, cols.count)
    previous: npt.NDArray[np.float64] | None = None
    if previous_values is not None:
        given = np.asarray(previous_values)
        if given.dtype.kind not in "iuf" or given.shape != carry_shape:
            what = (
                "fit: coefficients and bounds"
                if method == "fit"
                else "tiles: the tile grid of this frame"
            )
            raise ValueError(
                f"previous_values must be a real array of shape {carry_shape!r} "
                f"({what}); got a {given.dtype!r} array of shape "
                f"{given.shape!r}. Pass carry_values of the previous frame"
            )
        previous = given.astype(np.float64)
        if not np.isfinite(previous).all():
            raise ValueError("previous_values must be finite; got NaN or inf")

    if mask_dilation_px > 0:
        # = ndi.maximum_filter(cells, 2r + 1, mode="constant", cval=0), faster
        background_px = ~dilate_square(cells, 2 * mask_dilation_px + 1, 1)
    else:
        background_px = ~cells
    if exclude_zero:
        background_px &= image != 0

    if method == "fit":
        return _fit_frame(
            image,
            background_px,
            rows_fit,
            cols_fit,
            block=block_px,
            smoothing=smoothing,
            min_background_px=min_background_px,
            fallback_percentile=fallback_percentile,
            previous=previous,
        )
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
            values = np.full(carry_shape, level)
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


def correct_frame(
    frame: RealArray, background: FloatArray, *, weight: float = 1.0
) -> npt.NDArray[np.float32]:
    """Subtract a weighted background from a raw frame.

    Parameters
    ----------
    frame : (Y, X) ndarray
        Raw frame of any real dtype. Not modified.
    background : (Y, X) ndarray of float
        Background surface, normally ``BackgroundFrame.background`` (float32);
        other float dtypes are rounded to float32 first. Not modified.
    weight : float, optional
        Weight ``w`` of the background, in [0, 1].

    Returns
    -------
    (Y, X) ndarray of float32
        ``frame.astype(float32) - float32(w)·background``, computed in float32
        and not clipped: negative values are noise around a zero background.

    Raises
    ------
    TypeError
        If `frame` or `background` has the wrong dtype, or `weight` is not a
        number.
    ValueError
        If the shapes differ, or `weight` is outside [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> raw = np.array([[10, 12]], dtype=np.uint16)
    >>> correct_frame(raw, np.array([[11.0, 11.0]], dtype=np.float32)).tolist()
    [[-1.0, 1.0]]
    """
    image = _check_frame(frame, check_finite=False)
    surface = np.asarray(background)
    if surface.dtype.kind != "f":
        raise TypeError(
            f"background must have a floating dtype; got dtype {surface.dtype!r}"
        )
    if surface.shape != image.shape:
        raise ValueError(
            f"background must have the shape of frame {image.shape!r}; "
            f"got shape {surface.shape!r}"
        )
    weight = _check_real("weight", weight, minimum=0.0, maximum=1.0)
    corrected = image.astype(np.float32)
    surface32 = surface.astype(np.float32, copy=False)
    if weight == 1.0:
        # 1·bg is bg exactly: skip a frame-sized multiplication.
        corrected -= surface32
    else:
        corrected -= np.float32(weight) * surface32
    return corrected


def model_shape(
    shape: tuple[int, int],
    *,
    method: BackgroundMethod = "fit",
    knot_spacing_px: float = 64.0,
    tile_size: int = 128,
    tile_overlap: float = 0.5,
) -> tuple[int, int]:
    """Shape of ``BackgroundFrame.model`` for a frame of `shape` and these options.

    Examples
    --------
    >>> model_shape((1024, 1024))
    (20, 19)
    >>> model_shape((1024, 1024), method="tiles")
    (15, 15)
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}; got {method!r}")
    if method == "fit":
        rows = spline_axis(shape[0], knot_spacing_px=knot_spacing_px)
        cols = spline_axis(shape[1], knot_spacing_px=knot_spacing_px)
        return rows.count + 1, cols.count
    grid_y = tile_grid(shape[0], tile_size=tile_size, tile_overlap=tile_overlap)
    grid_x = tile_grid(shape[1], tile_size=tile_size, tile_overlap=tile_overlap)
    return grid_y.count, grid_x.count


def background_surface(
    model: FloatArray,
    *,
    shape: tuple[int, int],
    method: BackgroundMethod = "fit",
    knot_spacing_px: float = 64.0,
    tile_size: int = 128,
    tile_overlap: float = 0.5,
    spline_degree: int = 3,
    axis_y: SplineAxis | None = None,
    axis_x: SplineAxis | None = None,
    grid_y: TileGrid | None = None,
    grid_x: TileGrid | None = None,
) -> npt.NDArray[np.float32]:
    """Evaluate a background surface from its model (``BackgroundFrame.model``).

    Parameters
    ----------
    model : ndarray of float
        ``fit``: (m_y + 4, m_x + 3) coefficients and clip bounds; ``tiles``:
        (m_y, m_x) tile values. Not modified.
    shape : tuple of int
        Frame shape (Y, X).
    method, knot_spacing_px, tile_size, tile_overlap, spline_degree
        The options `model` was estimated with (``estimate_background``).
    axis_y, axis_x, grid_y, grid_x : optional
        Precomputed bases or grids for `shape` (as for
        ``estimate_background``), to save their set-up per frame.

    Returns
    -------
    (Y, X) ndarray of float32
        The surface; with the estimate's options, bit for bit the
        ``BackgroundFrame.background`` whose model was given.

    Raises
    ------
    ValueError
        If `model` does not have the shape the options give for `shape`, or an
        option is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> frame = np.full((32, 32), 100, dtype=np.uint16)
    >>> est = estimate_background(frame, np.zeros((32, 32), bool), block_px=8)
    >>> surface = background_surface(est.model, shape=(32, 32))
    >>> bool(np.array_equal(surface, est.background))
    True
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}; got {method!r}")
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (Y, X) with Y, X >= 1; got {shape!r}")
    values = np.asarray(model, dtype=np.float64)
    if method == "fit":
        rows_fit = _check_axis("axis_y", axis_y, shape[0], knot_spacing_px)
        cols_fit = _check_axis("axis_x", axis_x, shape[1], knot_spacing_px)
        expected = (rows_fit.count + 1, cols_fit.count)
    else:
        spline_degree = _check_int(
            "spline_degree", spline_degree, minimum=1, maximum=_MAX_SPLINE_DEGREE
        )
        rows = _check_grid("grid_y", grid_y, shape[0], tile_size, tile_overlap)
        cols = _check_grid("grid_x", grid_x, shape[1], tile_size, tile_overlap)
        expected = (rows.count, cols.count)
    if values.shape != expected:
        raise ValueError(
            f"model must have shape {expected!r} for {method!r} on a {shape!r} "
            f"frame; got {values.shape!r}. Pass BackgroundFrame.model estimated "
            "with the same options"
        )
    if method == "fit":
        return _spline_surface(values, rows_fit, cols_fit)
    return _surface(values, rows, cols, spline_degree)


# --------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------


def _fallback_level(
    image: RealArray,
    background_px: BoolArray,
    min_background_px: int,
    fallback_percentile: float,
    previous: npt.NDArray[np.float64] | None,
) -> tuple[int, float]:
    """Return the fallback rule of §3.4 step 4 and its level (NaN for rule 2)."""
    if np.count_nonzero(background_px) >= min_background_px:
        return 1, _median(image[background_px])
    if previous is not None:
        return 2, math.nan
    level = np.percentile(image.astype(np.float64), fallback_percentile)
    return 3, float(level)


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
            valid_tiles=np.zeros(used.shape, dtype=np.bool_),
            fallback=True,
            fallback_rule=rule,
            carry_values=previous,
            model=model,
        )
    n = count[used].astype(np.float64)
    value = total[used] / n
    first_y, wy = rows.locate(sum_y[used] / n)
    first_x, wx = cols.locate(sum_x[used] / n)
    # Row k of the design holds wy[k, a]·wx[k, c] at coefficient
    # (first_y[k] + a)·kx + first_x[k] + c. The normal equations are banded
    # (bandwidth 3·kx + 3) and symmetric: accumulated in band form once for
    # all blocks; a later pass subtracts the blocks it leaves out.
    k2 = ky * kx
    band = 3 * kx + 3
    index = (
        (first_y[:, None, None] + np.arange(4)[None, :, None]) * kx
        + first_x[:, None, None]
        + np.arange(4)[None, None, :]
    ).reshape(-1, 16)
    design = (wy[:, :, None] * wx[:, None, :]).reshape(-1, 16)
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


def _median(values: RealArray) -> float:
    """Median in float64, as ``numpy.median(values.astype(float64))``.

    For uint8/uint16 values it is found from a histogram of counts, which gives
    the identical result (the two middle values are integers, averaged in
    float64) several times faster than a partition.
    """
    if values.dtype.kind == "u" and values.dtype.itemsize <= 2:
        cumulative = np.cumsum(np.bincount(values))
        k = values.size
        lower = int(np.searchsorted(cumulative, (k - 1) // 2, side="right"))
        upper = int(np.searchsorted(cumulative, k // 2, side="right"))
        return (float(lower) + float(upper)) / 2.0
    return float(np.median(values.astype(np.float64)))


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


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def _check_frame(frame: RealArray, *, check_finite: bool = True) -> RealArray:
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
    if check_finite and image.dtype.kind == "f" and not np.isfinite(image).all():
        raise ValueError("frame must be finite; got NaN or infinite values")
    return image


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
    name: str, value: Any, *, minimum: float, maximum: float, open_max: bool = False
) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    result = float(value)
    too_large = result >= maximum if open_max else result > maximum
    if not math.isfinite(result) or result < minimum or too_large:
        upper = ")" if open_max else "]"
        raise ValueError(
            f"{name} must be a number in [{minimum}, {maximum}{upper}; got {value!r}"
        )
    return result


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)
