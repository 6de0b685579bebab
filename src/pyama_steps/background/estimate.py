"""The public entry points: estimate a frame's background, evaluate, subtract.

:func:`estimate_background` checks its input and options once and hands the
frame to the method's module (:mod:`~pyama_steps.background.fit` or
:mod:`~pyama_steps.background.tiles`); :func:`background_surface` evaluates a
surface from its model and :func:`correct_frame` subtracts it.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from pyama_steps._arrays import check_frame
from pyama_steps._typing import BoolArray, FloatArray, RealArray
from pyama_steps._validate import check_bool, check_choice, check_int, check_real
from pyama_steps.background.fit import _fit_frame, _spline_surface
from pyama_steps.background.grids import (
    SplineAxis,
    TileGrid,
    _check_axis,
    _check_grid,
    spline_axis,
    tile_grid,
)
from pyama_steps.background.model import BackgroundFrame
from pyama_steps.background.tiles import _surface, _tiles_frame
from pyama_steps.morphology import dilate_square

__all__ = [
    "BackgroundMethod",
    "background_surface",
    "correct_frame",
    "estimate_background",
    "model_shape",
]

BackgroundMethod = Literal["fit", "tiles"]
_METHODS: Final = ("fit", "tiles")

# FITPACK supports spline degrees 1 to 5.
_MAX_SPLINE_DEGREE: Final = 5


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
    >>> result = estimate_background(frame, mask, method="tiles", tile_size=256)
    >>> result.tile_values.shape, float(result.background[0, 0])
    ((2, 1), 100.0)
    """
    image, cells = _check_frame_and_mask(frame, mask)
    check_choice("method", method, _METHODS)
    mask_dilation_px = check_int("mask_dilation_px", mask_dilation_px, minimum=0)
    tile_size = check_int("tile_size", tile_size, minimum=1)
    tile_overlap = check_real(
        "tile_overlap", tile_overlap, minimum=0.0, maximum=1.0, open_max=True
    )
    min_background_px = check_int("min_background_px", min_background_px, minimum=1)
    spline_degree = check_int(
        "spline_degree", spline_degree, minimum=1, maximum=_MAX_SPLINE_DEGREE
    )
    block_px = check_int("block_px", block_px, minimum=1)
    knot_spacing_px = check_real(
        "knot_spacing_px", knot_spacing_px, minimum=0.0, open_min=True
    )
    smoothing = check_real("smoothing", smoothing, minimum=0.0)
    exclude_zero = check_bool("exclude_zero", exclude_zero)
    fallback_percentile = check_real(
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
    previous = _check_previous(previous_values, carry_shape, method)
    background_px = _background_pixels(
        image, cells, mask_dilation_px=mask_dilation_px, exclude_zero=exclude_zero
    )

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
    return _tiles_frame(
        image,
        background_px,
        rows,
        cols,
        min_background_px=min_background_px,
        fallback_percentile=fallback_percentile,
        spline_degree=spline_degree,
        previous=previous,
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
    image = check_frame(frame, check_finite=False)
    surface = np.asarray(background)
    if surface.dtype.kind != "f":
        raise TypeError(
            f"background must have a floating dtype; got dtype {surface.dtype!r}"
        )
    _check_shape("background", surface, image.shape)
    weight = check_real("weight", weight, minimum=0.0, maximum=1.0)
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
    check_choice("method", method, _METHODS)
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
    check_choice("method", method, _METHODS)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (Y, X) with Y, X >= 1; got {shape!r}")
    values = np.asarray(model, dtype=np.float64)
    if method == "fit":
        rows_fit = _check_axis("axis_y", axis_y, shape[0], knot_spacing_px)
        cols_fit = _check_axis("axis_x", axis_x, shape[1], knot_spacing_px)
        expected = (rows_fit.count + 1, cols_fit.count)
    else:
        spline_degree = check_int(
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


def _check_frame_and_mask(
    frame: RealArray, mask: BoolArray
) -> tuple[RealArray, BoolArray]:
    """Check a frame and its cell mask: real dtype, bool mask, same shape."""
    image = check_frame(frame)
    cells = np.asarray(mask)
    if cells.dtype != np.bool_:
        raise TypeError(
            f"mask must have dtype bool; got dtype {cells.dtype!r}. "
            "Pass the segmentation mask, or convert with mask.astype(bool)"
        )
    _check_shape("mask", cells, image.shape)
    return image, cells


def _check_shape(name: str, array: npt.NDArray[Any], shape: tuple[int, ...]) -> None:
    """Raise ValueError unless `array` has the frame's `shape`."""
    if array.shape != shape:
        raise ValueError(
            f"{name} must have the shape of frame {shape!r}; got shape {array.shape!r}"
        )


def _check_previous(
    previous_values: FloatArray | None, carry_shape: tuple[int, int], method: str
) -> npt.NDArray[np.float64] | None:
    """Return `previous_values` as float64, checked against the carry shape."""
    if previous_values is None:
        return None
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
    return previous


def _background_pixels(
    image: RealArray, cells: BoolArray, *, mask_dilation_px: int, exclude_zero: bool
) -> BoolArray:
    """Return the background pixels: outside the grown cells (step 1)."""
    if mask_dilation_px > 0:
        # = ndi.maximum_filter(cells, 2r + 1, mode="constant", cval=0), faster
        background_px = ~dilate_square(cells, 2 * mask_dilation_px + 1, 1)
    else:
        background_px = ~cells
    if exclude_zero:
        background_px &= image != 0
    return background_px
