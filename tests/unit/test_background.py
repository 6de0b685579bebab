"""Tests of pyama_steps.background (algorithms.md §3, tile interpolation)."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from scipy import ndimage as ndi

from pyama_steps import background as bgm
from pyama_steps.background import (
    BackgroundFrame,
    TileGrid,
    correct_frame,
)
from pyama_steps.background import model as bg_model
from pyama_steps.background import tiles as bg_tiles

# The worked values in this file use the document's 256-px tiles (the existing
# implementation's tile size, algorithms.md §3.3); the default is tested in
# test_default_tile_size.
tile_grid = functools.partial(bgm.tile_grid, tile_size=256)
estimate_background = functools.partial(
    bgm.estimate_background, method="tiles", tile_size=256
)

SIZES = [1, 64, 256, 300, 512, 513, 1024]
DTYPES = [np.uint8, np.uint16, np.float32]


# --------------------------------------------------------------------------------------
# Slow, obvious reference implementations
# --------------------------------------------------------------------------------------


def oracle_tiles(
    frame: np.ndarray,
    mask: np.ndarray,
    *,
    starts_y: list[int],
    starts_x: list[int],
    size_y: int,
    size_x: int,
    dilation: int,
    min_px: int,
    exclude_zero: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Tile medians with Python loops over tiles and pixels."""
    grown = ndi.binary_dilation(
        mask, np.ones((2 * dilation + 1,) * 2, bool), border_value=0
    )
    values = np.full((len(starts_y), len(starts_x)), np.nan)
    valid = np.zeros(values.shape, bool)
    for a, y0 in enumerate(starts_y):
        for b, x0 in enumerate(starts_x):
            pixels = []
            for y in range(y0, y0 + size_y):
                for x in range(x0, x0 + size_x):
                    if grown[y, x] or (exclude_zero and frame[y, x] == 0):
                        continue
                    pixels.append(float(frame[y, x]))
            if len(pixels) >= min_px:
                pixels.sort()
                k = len(pixels)
                values[a, b] = (pixels[(k - 1) // 2] + pixels[k // 2]) / 2
                valid[a, b] = True
    return values, valid


def oracle_fill(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """§3.4 step 3 with explicit loops; neighbours summed in raster order."""
    current = values.copy()
    known = valid.copy()
    rows, cols = values.shape
    while not known.all():
        new_values = current.copy()
        new_known = known.copy()
        for a in range(rows):
            for b in range(cols):
                if known[a, b]:
                    continue
                neighbours = [
                    current[a + dy, b + dx]
                    for dy in (-1, 0, 1)
                    for dx in (-1, 0, 1)
                    if (dy, dx) != (0, 0)
                    and 0 <= a + dy < rows
                    and 0 <= b + dx < cols
                    and known[a + dy, b + dx]
                ]
                if neighbours:
                    new_values[a, b] = sum(neighbours) / len(neighbours)
                    new_known[a, b] = True
        current, known = new_values, new_known
    return current


def plane(shape: tuple[int, int]) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return 100 + yy + 2 * xx


def clipped_plane(shape: tuple[int, int]) -> np.ndarray:
    """The plane evaluated at coordinates clipped to the outer tile centres."""
    gy, gx = tile_grid(shape[0]), tile_grid(shape[1])
    y = np.clip(np.arange(shape[0]), gy.centres[0], gy.centres[-1])
    x = np.clip(np.arange(shape[1]), gx.centres[0], gx.centres[-1])
    return 100 + y[:, None] + 2 * x[None, :]


def scene(
    shape: tuple[int, int] = (512, 640), seed: int = 0, n_cells: int = 25
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson frame of a smooth polynomial background plus bright cells."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    yy, xx = np.mgrid[:rows, :cols].astype(np.float64)
    u, v = yy / rows, xx / cols
    surface = 400 + 150 * u + 80 * v - 120 * (u - 0.5) ** 2 + 60 * u * v
    cells = np.zeros(shape, bool)
    for _ in range(n_cells):
        cy, cx, r = rng.uniform(0, rows), rng.uniform(0, cols), rng.uniform(8, 20)
        cells |= np.hypot(yy - cy, xx - cx) < r
    frame = rng.poisson(surface + 1500 * cells).astype(np.uint16)
    return frame, cells, surface


# --------------------------------------------------------------------------------------
# Tile grid
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "starts"),
    [
        (1, [0]),
        (64, [0]),
        (256, [0]),
        (300, [0, 44]),
        (512, [0, 128, 256]),
        (513, [0, 86, 171, 257]),
        (1024, [0, 128, 256, 384, 512, 640, 768]),
        (2048, [128 * i for i in range(15)]),
    ],
)
def test_tile_grid_by_hand(n: int, starts: list[int]) -> None:
    grid = tile_grid(n, tile_size=256)  # the document's worked values
    size = min(256, n)
    assert grid.size == size
    assert grid.count == len(starts)
    assert grid.starts.tolist() == starts
    assert grid.starts.dtype == np.int64
    assert grid.centres.tolist() == [s + (size - 1) / 2 for s in starts]
    assert grid.n == n
    assert grid.stride == max(1, math.floor(size * 0.5 + 0.5))


def test_tile_grid_small_by_hand() -> None:
    assert tile_grid(1, tile_size=256).centres.tolist() == [0.0]
    assert tile_grid(64, tile_size=256).centres.tolist() == [31.5]
    assert tile_grid(300, tile_size=256).centres.tolist() == [127.5, 171.5]
    # 513 px: (n - s) = 257 over 3 gaps = 85.67 per gap, rounded half up.
    assert tile_grid(513, tile_size=256).centres.tolist() == [
        127.5,
        213.5,
        298.5,
        384.5,
    ]
    # No overlap: tiles side by side where they fit, the last one flush right.
    assert tile_grid(600, tile_size=200, tile_overlap=0.0).starts.tolist() == [
        0,
        200,
        400,
    ]
    assert tile_grid(601, tile_size=200, tile_overlap=0.0).starts.tolist() == [
        0,
        134,
        267,
        401,
    ]
    # stride = floor(3·0.75 + 0.5) = 2 for a 3-px tile with 25 % overlap.
    assert tile_grid(10, tile_size=3, tile_overlap=0.25).starts.tolist() == [
        0,
        2,
        4,
        5,
        7,
    ]


@pytest.mark.parametrize("tile_size", [1, 2, 7, 64, 256])
@pytest.mark.parametrize("tile_overlap", [0.0, 0.25, 0.5, 0.9, 0.999])
def test_tile_grid_properties(tile_size: int, tile_overlap: float) -> None:
    for n in [*range(1, 70), 255, 256, 257, 511, 513, 1000, 2047]:
        grid = tile_grid(n, tile_size=tile_size, tile_overlap=tile_overlap)
        s = min(tile_size, n)
        stride = max(1, math.floor(s * (1 - tile_overlap) + 0.5))
        m = 1 if n == s else 1 + math.ceil((n - s) / stride)
        starts = grid.starts.tolist()
        assert grid.size == s
        assert len(starts) == m
        assert starts[0] == 0
        assert starts[-1] == n - s
        gaps = np.diff(grid.starts)
        assert (gaps >= 1).all()
        assert (gaps <= stride).all()  # at least the requested overlap
        if gaps.size:
            assert gaps.max() - gaps.min() <= 1  # spread evenly


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((0,), {}, ValueError, "n must be an integer >= 1; got 0"),
        ((1.5,), {}, TypeError, "n must be an integer; got 1.5"),
        ((100,), {"tile_size": 0}, ValueError, "tile_size must be an integer >= 1"),
        (
            (100,),
            {"tile_overlap": 1.0},
            ValueError,
            r"tile_overlap must be .*\[0\.0, 1\.0\)",
        ),
        (
            (100,),
            {"tile_overlap": -0.1},
            ValueError,
            "tile_overlap must be a finite number in",
        ),
        ((100,), {"tile_overlap": "0.5"}, TypeError, "tile_overlap must be a real"),
    ],
)
def test_tile_grid_errors(
    args: tuple[object, ...],
    kwargs: dict[str, object],
    error: type[Exception],
    match: str,
) -> None:
    with pytest.raises(error, match=match):
        tile_grid(*args, **kwargs)


# --------------------------------------------------------------------------------------
# Medians and filling against oracles
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64]
)
def test_median_matches_numpy(dtype: type) -> None:
    rng = np.random.default_rng(1)
    high = 200 if dtype in (np.uint8, np.int16) else 60000
    for size in [*range(1, 12), 100, 101, 65536]:
        values = rng.integers(0, high, size).astype(dtype)
        expected = float(np.median(values.astype(np.float64)))
        assert bg_model._median(values) == expected


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.int32])
@pytest.mark.parametrize(("dilation", "min_px"), [(0, 1), (2, 30), (5, 120)])
def test_tile_medians_match_loops(dtype: type, dilation: int, min_px: int) -> None:
    rng = np.random.default_rng(dilation)
    shape = (40, 52)
    frame = rng.integers(0, 3000, shape).astype(dtype)
    mask = np.zeros(shape, bool)
    mask[5:12, 3:20] = True
    mask[25:38, 30:50] = True
    mask[rng.random(shape) < 0.01] = True
    options = {"tile_size": 16, "tile_overlap": 0.5}
    gy, gx = tile_grid(40, **options), tile_grid(52, **options)
    result = estimate_background(
        frame, mask, mask_dilation_px=dilation, min_background_px=min_px, **options
    )
    values, valid = oracle_tiles(
        frame,
        mask,
        starts_y=gy.starts.tolist(),
        starts_x=gx.starts.tolist(),
        size_y=gy.size,
        size_x=gx.size,
        dilation=dilation,
        min_px=min_px,
    )
    np.testing.assert_array_equal(result.valid_tiles, valid)
    assert valid.any()
    assert valid.all() == (dilation == 0)  # grown cells leave tiles invalid
    np.testing.assert_array_equal(result.tile_values[valid], values[valid])
    np.testing.assert_array_equal(result.tile_values, oracle_fill(values, valid))
    assert result.fallback_rule == 0


def test_mask_dilation_by_hand() -> None:
    # One cell pixel grown by r = 2 removes a 5 x 5 square: 400 - 25 = 375
    # background pixels. At the corner only 3 x 3 = 9 pixels lie in the frame.
    frame = np.arange(400, dtype=np.uint16).reshape(20, 20)
    mask = np.zeros((20, 20), bool)
    mask[10, 10] = True
    ok = estimate_background(frame, mask, mask_dilation_px=2, min_background_px=375)
    assert ok.valid_tiles.tolist() == [[True]]
    expected = np.median(frame[np.abs(np.indices((20, 20)) - 10).max(axis=0) > 2])
    assert ok.tile_values[0, 0] == expected
    short = estimate_background(frame, mask, mask_dilation_px=2, min_background_px=376)
    assert short.valid_tiles.tolist() == [[False]]
    corner = np.zeros((20, 20), bool)
    corner[0, 0] = True
    edge = estimate_background(frame, corner, mask_dilation_px=2, min_background_px=391)
    assert edge.valid_tiles.tolist() == [[True]]


def test_fill_by_hand() -> None:
    nan = np.nan
    values = np.array([[1.0, nan, nan], [nan, nan, nan], [nan, nan, 5.0]])
    valid = ~np.isnan(values)
    # Pass 1: neighbours of a corner take its value, the centre sees both (3).
    # Pass 2: the two remaining corners see 1, 3 and 5.
    expected = np.array([[1.0, 1.0, 3.0], [1.0, 3.0, 5.0], [3.0, 5.0, 5.0]])
    np.testing.assert_array_equal(bg_tiles._fill_tiles(values, valid), expected)
    row = np.array([[2.0, nan, nan, nan, 10.0]])
    np.testing.assert_array_equal(
        bg_tiles._fill_tiles(row, ~np.isnan(row)), [[2.0, 2.0, 6.0, 10.0, 10.0]]
    )


def test_fill_matches_loops() -> None:
    rng = np.random.default_rng(7)
    for shape in [(1, 1), (1, 9), (9, 1), (7, 7), (15, 15), (4, 13)]:
        for density in (0.05, 0.3, 0.8):
            values = rng.normal(500, 50, shape)
            valid = rng.random(shape) < density
            if not valid.any():
                valid[rng.integers(shape[0]), rng.integers(shape[1])] = True
            values[~valid] = np.nan
            filled = bg_tiles._fill_tiles(values, valid)
            np.testing.assert_array_equal(filled, oracle_fill(values, valid))
            assert np.isfinite(filled).all()
            np.testing.assert_array_equal(filled[valid], values[valid])


# --------------------------------------------------------------------------------------
# Surface
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("cols", SIZES)
def test_plane_is_reproduced_for_every_size(rows: int, cols: int) -> None:
    # The median of a plane over a square tile is its value at the tile centre,
    # and splines of degree >= 1 reproduce a plane: bg is the plane, flat beyond
    # the outer tile centres. Covers 1, 2 (linear), 3 (quadratic), >= 4 (cubic)
    # tiles per axis, square and not square.
    frame = plane((rows, cols)).astype(np.uint16)
    result = estimate_background(frame, np.zeros((rows, cols), bool))
    assert result.background.shape == (rows, cols)
    assert result.background.dtype == np.float32
    assert result.tile_values.shape == (tile_grid(rows).count, tile_grid(cols).count)
    # A 1 x 1 frame has fewer than min_background_px pixels: rule 3 (percentile).
    assert result.fallback_rule == (3 if rows * cols < 50 else 0)
    np.testing.assert_allclose(
        result.background, clipped_plane((rows, cols)), rtol=0, atol=2e-3
    )


@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("cols", [1, 300, 513])
def test_every_size_with_cells_is_finite(rows: int, cols: int) -> None:
    rng = np.random.default_rng(rows + cols)
    frame = rng.poisson(300, (rows, cols)).astype(np.uint16)
    mask = rng.random((rows, cols)) < 0.001
    result = estimate_background(frame, mask)
    assert np.isfinite(result.background).all()
    assert np.isfinite(result.tile_values).all()


def test_surface_bilinear_by_hand() -> None:
    # 300 px: 2 tiles per axis with centres 127.5 and 171.5 (degree 1).
    gy = gx = tile_grid(300)
    values = np.array([[0.0, 10.0], [20.0, 30.0]])
    surface = bg_tiles._surface(values, gy, gx, 3)
    assert surface[0, 0] == 0.0
    assert surface[0, 299] == 10.0
    assert surface[299, 0] == 20.0
    assert surface[299, 299] == 30.0
    assert surface[127, 200] == 10.0  # flat beyond the outer centres
    t = (150 - 127.5) / 44
    assert surface[150, 150] == pytest.approx(30 * t, rel=1e-6)
    assert surface[150, 0] == pytest.approx(20 * t, rel=1e-6)


def test_surface_quadratic_with_three_tiles() -> None:
    # 512 px: 3 tiles, so the degree drops to 2 and a parabola is reproduced.
    gy, gx = tile_grid(512), tile_grid(64)
    f = lambda y: 3.0 + 0.01 * (y - 200.0) ** 2  # noqa: E731
    values = f(gy.centres)[:, None]
    surface = bg_tiles._surface(values, gy, gx, 3)
    y = np.clip(np.arange(512), gy.centres[0], gy.centres[-1])
    np.testing.assert_allclose(surface[:, 0], f(y), rtol=1e-6)
    assert (surface == surface[:, :1]).all()  # constant along the single tile
    linear = bg_tiles._surface(values, gy, gx, 1)
    t = (191 - 127.5) / 128  # pixel 191 between the centres 127.5 and 255.5
    between = f(127.5) + t * (f(255.5) - f(127.5))
    assert linear[191, 5] == pytest.approx(between, rel=1e-6)


def test_surface_single_tile_is_constant() -> None:
    g = tile_grid(64)
    surface = bg_tiles._surface(np.array([[7.25]]), g, tile_grid(1), 3)
    assert surface.shape == (64, 1)
    assert (surface == np.float32(7.25)).all()


def test_polynomial_background_with_cells() -> None:
    # A dense field (about 17 % of the frame is cells, 1500 counts above a
    # 400-600 count background): away from cells, inside the outer tile
    # centres, the estimate is within 1 % (mean) and 2 % (max) of the truth.
    frame, cells, surface = scene(seed=1, n_cells=100)
    result = estimate_background(frame, cells)
    assert result.valid_tiles.all()
    gy, gx = tile_grid(512), tile_grid(640)
    inner = np.zeros(frame.shape, bool)
    inner[
        int(gy.centres[0]) : int(gy.centres[-1]) + 1,
        int(gx.centres[0]) : int(gx.centres[-1]) + 1,
    ] = True
    away = inner & ~ndi.binary_dilation(cells, iterations=10)
    error = np.abs(result.background - surface)[away]
    assert error.mean() < 0.01 * surface.mean()
    assert error.max() < 0.02 * surface.mean()
    # Without the mask the cells pull every tile median up.
    blind = estimate_background(frame, np.zeros_like(cells))
    assert np.abs(blind.background - surface)[away].mean() > 2 * error.mean()


# --------------------------------------------------------------------------------------
# Fallback rules
# --------------------------------------------------------------------------------------


def test_fallback_rule_1_median_of_frame_background() -> None:
    # 300 x 300: tiles [0, 256) and [44, 300) per axis. 60 background pixels
    # in the top-left corner and 60 in the bottom-right corner: each tile
    # sees at most 60 < 100, the frame 120 >= 100.
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 1000, (300, 300)).astype(np.uint16)
    mask = np.ones((300, 300), bool)
    mask[:6, :10] = False
    mask[-6:, -10:] = False
    result = estimate_background(frame, mask, mask_dilation_px=0, min_background_px=100)
    assert result.fallback
    assert result.fallback_rule == 1
    assert not result.valid_tiles.any()
    expected = np.median(frame[~mask].astype(np.float64))
    assert (result.tile_values == expected).all()
    np.testing.assert_allclose(result.background, expected, rtol=1e-6)
    assert result.carry_values is None


def test_fallback_rule_2_previous_values() -> None:
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 1000, (300, 513)).astype(np.uint16)
    first = estimate_background(frame, np.zeros(frame.shape, bool))
    assert first.fallback_rule == 0
    assert first.carry_values is first.tile_values
    covered = np.ones(frame.shape, bool)
    second = estimate_background(
        frame // 2, covered, previous_values=first.carry_values
    )
    assert second.fallback_rule == 2
    np.testing.assert_array_equal(second.tile_values, first.tile_values)
    np.testing.assert_array_equal(second.background, first.background)
    np.testing.assert_array_equal(second.carry_values, first.tile_values)
    # A later frame with usable background starts its own values again.
    third = estimate_background(
        frame // 2, np.zeros(frame.shape, bool), previous_values=second.carry_values
    )
    assert third.fallback_rule == 0
    assert third.tile_values.max() < first.tile_values.max()


@pytest.mark.parametrize("percentile", [0.0, 5.0, 50.0, 100.0])
def test_fallback_rule_3_percentile_of_frame(percentile: float) -> None:
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 1000, (64, 300)).astype(np.uint16)
    result = estimate_background(
        frame, np.ones(frame.shape, bool), fallback_percentile=percentile
    )
    assert result.fallback_rule == 3
    expected = np.percentile(frame.astype(np.float64), percentile)
    assert (result.tile_values == expected).all()
    assert np.isfinite(result.background).all()
    np.testing.assert_allclose(result.background, expected, rtol=1e-6)


def test_fully_covered_never_nan_and_rule_order() -> None:
    frame = np.full((256, 256), 40, np.uint16)
    covered = np.ones(frame.shape, bool)
    previous = np.array([[11.0]])
    # Rule 1 wins over rule 2 when the frame has enough background in total.
    some = covered.copy()
    some[:, :1] = False  # 256 px, each tile is the whole frame -> valid
    assert estimate_background(frame, some, mask_dilation_px=0).fallback_rule == 0
    assert (
        estimate_background(
            frame, some, mask_dilation_px=0, min_background_px=300
        ).fallback_rule
        == 3
    )
    with_previous = estimate_background(frame, covered, previous_values=previous)
    assert with_previous.fallback_rule == 2
    assert (with_previous.background == 11.0).all()
    alone = estimate_background(frame, covered)
    assert alone.fallback_rule == 3
    assert (alone.background == 40.0).all()


def test_exclude_zero_ignores_padding() -> None:
    frame = np.full((300, 600), 500, np.uint16)
    frame[:, 300:] = 0  # mosaic padding
    mask = np.zeros(frame.shape, bool)
    plain = estimate_background(frame, mask)
    assert (plain.tile_values == 0).any()
    padded = estimate_background(frame, mask, exclude_zero=True)
    assert not padded.valid_tiles.all()
    assert (padded.tile_values == 500).all()
    np.testing.assert_allclose(padded.background, 500.0, rtol=1e-6)
    # Only zeros: no background at all -> percentile of every pixel (rule 3).
    zeros = estimate_background(
        np.zeros((40, 40), np.uint16), mask[:40, :40], exclude_zero=True
    )
    assert zeros.fallback_rule == 3
    assert (zeros.background == 0).all()


# --------------------------------------------------------------------------------------
# Dtypes, grids, determinism, inputs
# --------------------------------------------------------------------------------------


def test_dtypes_give_identical_results() -> None:
    rng = np.random.default_rng(3)
    values = rng.integers(0, 256, (300, 513))
    mask = rng.random(values.shape) < 0.002
    results = [
        estimate_background(values.astype(dtype), mask, min_background_px=60000)
        for dtype in DTYPES
    ]
    assert results[0].fallback_rule == 1  # the whole-frame median
    results += [estimate_background(values.astype(dtype), mask) for dtype in DTYPES]
    assert results[3].fallback_rule == 0
    for first, rest in ((results[0], results[1:3]), (results[3], results[4:])):
        for other in rest:
            np.testing.assert_array_equal(other.tile_values, first.tile_values)
            np.testing.assert_array_equal(other.background, first.background)
            assert other.fallback_rule == first.fallback_rule


def test_precomputed_grids_give_identical_result() -> None:
    frame, cells, _ = scene((300, 513), seed=4)
    direct = estimate_background(frame, cells, tile_size=128, tile_overlap=0.25)
    grids = {
        "grid_y": tile_grid(300, tile_size=128, tile_overlap=0.25),
        "grid_x": tile_grid(513, tile_size=128, tile_overlap=0.25),
    }
    reused = estimate_background(
        frame, cells, tile_size=128, tile_overlap=0.25, **grids
    )
    assert reused.background.tobytes() == direct.background.tobytes()
    with pytest.raises(
        ValueError, match=r"grid_y must be tile_grid\(300, tile_size=256"
    ):
        estimate_background(frame, cells, **grids)
    with pytest.raises(ValueError, match=r"grid_x must be tile_grid\(513"):
        estimate_background(
            frame, cells, tile_size=128, tile_overlap=0.25, grid_x=grids["grid_y"]
        )
    with pytest.raises(TypeError, match="grid_y must be a TileGrid or None"):
        estimate_background(frame, cells, grid_y=[0, 128])  # type: ignore[arg-type]


def test_deterministic_and_inputs_not_modified() -> None:
    frame, cells, _ = scene((256, 300), seed=5)
    frame_copy, cells_copy = frame.copy(), cells.copy()
    previous = np.full((1, 2), 3.0)
    first = estimate_background(frame, cells, previous_values=previous)
    second = estimate_background(frame, cells, previous_values=previous)
    np.testing.assert_array_equal(frame, frame_copy)
    np.testing.assert_array_equal(cells, cells_copy)
    assert (previous == 3.0).all()
    assert first.background.tobytes() == second.background.tobytes()
    assert first.tile_values.tobytes() == second.tile_values.tobytes()
    assert isinstance(first, BackgroundFrame)
    corrected = correct_frame(frame, first.background)
    np.testing.assert_array_equal(frame, frame_copy)
    assert corrected.tobytes() == correct_frame(frame, second.background).tobytes()


# --------------------------------------------------------------------------------------
# Correction
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight", [0.0, 0.25, 0.5, 1.0])
def test_correct_frame_formula(dtype: type, weight: float) -> None:
    rng = np.random.default_rng(int(weight * 4))
    raw = rng.integers(0, 256, (30, 40)).astype(dtype)
    bg = rng.uniform(0, 300, (30, 40)).astype(np.float32)
    corrected = correct_frame(raw, bg, weight=weight)
    assert corrected.dtype == np.float32
    expected = raw.astype(np.float32) - np.float32(weight) * bg
    assert corrected.tobytes() == expected.tobytes()
    if weight == 0.0:
        np.testing.assert_array_equal(corrected, raw.astype(np.float32))
    else:
        assert (corrected < 0).any()  # not clipped


def test_correct_frame_rounds_float64_background() -> None:
    raw = np.array([[3, 4]], np.uint16)
    bg = np.array([[0.1, 1.0 / 3.0]])
    expected = raw.astype(np.float32) - bg.astype(np.float32)
    assert correct_frame(raw, bg).tobytes() == expected.tobytes()


def test_write_nothing_parity(tmp_path: object) -> None:
    # Extraction rebuilds `corr` from a written background, from a recomputed one,
    # or reads the corrected stack: all three must agree bit for bit.
    import pathlib

    frame, cells, _ = scene((300, 400), seed=6)
    result = estimate_background(frame, cells)
    direct = correct_frame(frame, result.background, weight=0.5)
    path = pathlib.Path(str(tmp_path)) / "bg.npy"
    np.save(path, result.background)
    reloaded = correct_frame(frame, np.load(path), weight=0.5)
    recomputed = correct_frame(
        frame, estimate_background(frame, cells).background, weight=0.5
    )
    assert direct.tobytes() == reloaded.tobytes() == recomputed.tobytes()


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------

GOOD_FRAME = np.zeros((16, 16), np.uint16)
GOOD_MASK = np.zeros((16, 16), bool)


@pytest.mark.parametrize(
    ("frame", "mask", "error", "match"),
    [
        (GOOD_FRAME.astype(bool), GOOD_MASK, TypeError, "real integer or floating"),
        (GOOD_FRAME[None], GOOD_MASK[None], ValueError, r"2-D \(Y, X\) array"),
        (GOOD_FRAME[:0], GOOD_MASK[:0], ValueError, "at least one row and one"),
        (np.full((2, 2), np.nan), GOOD_MASK[:2, :2], ValueError, "must be finite"),
        (
            GOOD_FRAME,
            GOOD_MASK.astype(np.uint8),
            TypeError,
            "mask must have dtype bool",
        ),
        (GOOD_FRAME, GOOD_MASK[:8], ValueError, r"mask must have the shape of frame"),
    ],
)
def test_estimate_bad_arrays(
    frame: np.ndarray, mask: np.ndarray, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        estimate_background(frame, mask)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        (
            {"mask_dilation_px": -1},
            ValueError,
            "mask_dilation_px must be an integer >=",
        ),
        ({"mask_dilation_px": 1.0}, TypeError, "mask_dilation_px must be an int"),
        ({"tile_size": 0}, ValueError, "tile_size must be an integer >= 1; got 0"),
        ({"tile_overlap": 1}, ValueError, r"tile_overlap must be .* \[0.0, 1.0\)"),
        (
            {"min_background_px": 0},
            ValueError,
            "min_background_px must be an int.* >= 1",
        ),
        ({"spline_degree": 0}, ValueError, r"spline_degree must .* \[1, 5\]"),
        ({"spline_degree": 6}, ValueError, r"spline_degree must .* \[1, 5\]"),
        ({"exclude_zero": 0}, TypeError, "exclude_zero must be True or False; got 0"),
        (
            {"fallback_percentile": 101},
            ValueError,
            r"fallback_percentile .* \[0.0, 100.0\]",
        ),
        (
            {"fallback_percentile": None},
            TypeError,
            "fallback_percentile must be a real",
        ),
        (
            {"previous_values": np.zeros((2, 2))},
            ValueError,
            r"previous_values .* shape \(1, 1\)",
        ),
        (
            {"previous_values": np.full((1, 1), np.nan)},
            ValueError,
            "previous_values must be finite",
        ),
        (
            {"previous_values": np.array([["a"]])},
            ValueError,
            "previous_values must be a real",
        ),
    ],
)
def test_estimate_bad_options(
    options: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        estimate_background(GOOD_FRAME, GOOD_MASK, **options)


@pytest.mark.parametrize(
    ("frame", "background", "weight", "error", "match"),
    [
        (GOOD_FRAME, GOOD_FRAME, 1.0, TypeError, "background must have a floating"),
        (
            GOOD_FRAME,
            np.zeros((4, 4), np.float32),
            1.0,
            ValueError,
            "background must have the shape",
        ),
        (
            GOOD_FRAME.astype(complex),
            np.zeros((16, 16), np.float32),
            1.0,
            TypeError,
            "real integer or floating",
        ),
        (
            GOOD_FRAME,
            np.zeros((16, 16), np.float32),
            1.5,
            ValueError,
            r"weight .* \[0.0, 1.0\]; got 1.5",
        ),
        (
            GOOD_FRAME,
            np.zeros((16, 16), np.float32),
            -0.1,
            ValueError,
            "weight must be a finite number in",
        ),
        (
            GOOD_FRAME,
            np.zeros((16, 16), np.float32),
            "1",
            TypeError,
            "weight must be a real number; got '1'",
        ),
    ],
)
def test_correct_frame_errors(
    frame: np.ndarray,
    background: np.ndarray,
    weight: object,
    error: type[Exception],
    match: str,
) -> None:
    with pytest.raises(error, match=match):
        correct_frame(frame, background, weight=weight)  # type: ignore[arg-type]


def test_tile_grid_is_frozen() -> None:
    grid = tile_grid(100)
    assert isinstance(grid, TileGrid)
    with pytest.raises(AttributeError):
        grid.n = 5  # type: ignore[misc]


def test_default_tile_size() -> None:
    """128-px tiles by default: 15 tiles for 1024 px, 7 for 512 (§3.3)."""
    assert bgm.tile_grid(1024).count == 15
    assert bgm.tile_grid(512).starts.tolist() == [64 * i for i in range(7)]
    frame, cells, surface = scene(seed=2, n_cells=40)
    result = bgm.estimate_background(frame, cells, method="tiles")
    assert result.tile_values.shape == (7, 9)  # 512 x 640
    away = ~ndi.binary_dilation(cells, iterations=10)
    inner = np.zeros(frame.shape, bool)
    inner[64:448, 64:576] = True
    error = np.abs(result.background - surface)[away & inner]
    assert error.mean() < 0.01 * surface.mean()


# --------------------------------------------------------------------------------------
# The background model (§3.6): the surface from its small array, bit for bit
# --------------------------------------------------------------------------------------


def _model_cases(method: str) -> list[tuple[str, object]]:
    """Frames of every fallback rule, estimated one after another (rule 2 needs
    the previous frame's carry)."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:300, 0:333]
    frame = (400 + 0.5 * y + 0.3 * x + rng.normal(0, 20, y.shape)).astype(np.uint16)
    cells = (((y - 150) % 60) < 20) & (((x - 100) % 70) < 25)
    covered = np.ones(frame.shape, bool)
    corners = covered.copy()
    if method == "tiles":  # no tile has 100 background px, the frame has 120
        corners[:6, :10] = False
        corners[-6:, -10:] = False
    else:  # every block has 1/16 < 1/8 of its pixels as background
        corners[::4, ::4] = False
    options = {"method": method, "tile_size": 128, "knot_spacing_px": 48.0}
    first = estimate_background(frame, cells, **options)
    second = estimate_background(
        frame, covered, previous_values=first.carry_values, **options
    )
    rule1 = estimate_background(
        frame, corners, mask_dilation_px=0, min_background_px=100, **options
    )
    rule3 = estimate_background(frame, covered, **options)
    return [("0", first), ("2", second), ("1", rule1), ("3", rule3)]


@pytest.mark.parametrize("method", ["fit", "tiles"])
def test_background_surface_from_model_is_bit_identical(method: str) -> None:
    cases = _model_cases(method)
    assert [c[1].fallback_rule for c in cases] == [0, 2, 1, 3]
    for rule, est in cases:
        surface = bgm.background_surface(
            est.model, shape=(300, 333), method=method, tile_size=128,
            knot_spacing_px=48.0,
        )  # fmt: skip
        assert surface.dtype == np.float32
        assert surface.tobytes() == est.background.tobytes(), f"rule {rule}"
        # the model is stored as float64 .npy: a round trip keeps every bit
        assert np.asarray(est.model, dtype=np.float64).dtype == np.float64


def test_background_surface_rejects_a_model_of_other_options() -> None:
    frame = np.full((64, 64), 100, np.uint16)
    est = estimate_background(frame, np.zeros(frame.shape, bool), block_px=8)
    with pytest.raises(ValueError, match="model must have shape"):
        bgm.background_surface(est.model, shape=(64, 64), knot_spacing_px=16.0)
    with pytest.raises(ValueError, match="method must be one of"):
        bgm.background_surface(est.model, shape=(64, 64), method="median")
