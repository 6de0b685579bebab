"""Tests of the ``fit`` background method (algorithms.md §3.4, the default).

The oracle builds the design matrix with scipy's own B-spline evaluation at
block centroids found with Python loops, and solves the penalised least-squares
problem with a dense solver: an independent route to the same numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from scipy.interpolate import BSpline

from pyama_steps import background as bgm

# --------------------------------------------------------------------------------------
# Oracle and scenes
# --------------------------------------------------------------------------------------


def oracle_fit(
    frame: np.ndarray,
    mask: np.ndarray,
    *,
    dilation: int,
    block: int,
    spacing: float,
    smoothing: float,
) -> np.ndarray:
    """The ``fit`` surface with loops, scipy's B-splines and a dense solve."""
    rows, cols = frame.shape
    grown = ndi.binary_dilation(
        mask, np.ones((2 * dilation + 1,) * 2, bool), border_value=0
    )
    values, ys, xs, counts = [], [], [], []
    for y0 in range(0, rows, block):
        for x0 in range(0, cols, block):
            pix = [
                (y, x)
                for y in range(y0, min(y0 + block, rows))
                for x in range(x0, min(x0 + block, cols))
                if not grown[y, x]
            ]
            inside = (min(y0 + block, rows) - y0) * (min(x0 + block, cols) - x0)
            if pix and len(pix) >= inside / 8:
                values.append(sum(float(frame[p]) for p in pix) / len(pix))
                ys.append(sum(p[0] for p in pix) / len(pix))
                xs.append(sum(p[1] for p in pix) / len(pix))
                counts.append(len(pix))
    v, n = np.array(values), np.array(counts, float)

    def basis(coords: np.ndarray, length: int) -> np.ndarray:
        m = max(1, int(np.floor((length - 1) / spacing + 0.5)))
        h = (length - 1) / m if length > 1 else 1.0
        knots = np.arange(-3, m + 4) * h
        # scipy's design matrix is exact at the right end too.
        return BSpline.design_matrix(coords, knots, 3).toarray()

    by, bx = basis(np.array(ys), rows), basis(np.array(xs), cols)
    design = np.einsum("ki,kj->kij", by, bx).reshape(v.size, -1)
    ky, kx = by.shape[1], bx.shape[1]

    def second(k: int) -> np.ndarray:
        return np.diff(np.eye(k), 2, axis=0) if k >= 3 else np.zeros((0, k))

    dy, dx = second(ky), second(kx)
    penalty = np.kron(dy.T @ dy, np.eye(kx)) + np.kron(np.eye(ky), dx.T @ dx)
    keep = np.ones(v.size, bool)
    for attempt in range(6):
        w = np.where(keep, n, 0.0)
        level = w @ v / w.sum()
        lam = smoothing * w.sum() / (ky * kx)
        system = design.T @ (design * w[:, None]) + lam * penalty
        system += 1e-6 * max(lam, w.sum() / (ky * kx)) * np.eye(ky * kx)
        coef = np.linalg.solve(system, design.T @ (w * (v - level))) + level
        if attempt == 5:
            break
        z = np.abs(v - design @ coef) * np.sqrt(n)
        spread = 1.4826 * np.median(z[keep])
        again = z <= 4 * spread
        if spread == 0 or not again.any() or (again == keep).all():
            break
        keep = again
    grid_y = basis(np.arange(rows, dtype=float), rows)
    grid_x = basis(np.arange(cols, dtype=float), cols)
    surface = grid_y @ coef.reshape(ky, kx) @ grid_x.T
    lo, hi = v[keep].min(), v[keep].max()
    return np.clip(surface, lo - (hi - lo), hi + (hi - lo))


def vignetted_scene(
    shape: tuple[int, int] = (512, 640), seed: int = 0, n_cells: int = 120
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson frame: vignetted background (falls 26 % to the corners) + cells."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    yy, xx = np.mgrid[:rows, :cols].astype(np.float64)
    r2 = ((yy - 0.45 * rows) ** 2 + (xx - 0.55 * cols) ** 2) / (
        (rows / 2) ** 2 + (cols / 2) ** 2
    )
    surface = 350.0 * (1.0 - 0.26 * r2) + 15.0 * np.sin(xx / 170.0 + yy / 230.0)
    cells = np.zeros(shape, bool)
    for _ in range(n_cells):
        cy, cx, r = rng.uniform(0, rows), rng.uniform(0, cols), rng.uniform(8, 20)
        cells |= np.hypot(yy - cy, xx - cx) < r
    frame = rng.poisson(surface + 600.0 * cells).astype(np.uint16)
    return frame, cells, surface


# --------------------------------------------------------------------------------------
# Basis
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5, 64, 100, 513, 1024])
@pytest.mark.parametrize("spacing", [16.0, 64.0, 300.0])
def test_spline_axis_matches_scipy(n: int, spacing: float) -> None:
    axis = bgm.spline_axis(n, knot_spacing_px=spacing)
    assert axis.intervals == max(1, int(np.floor((n - 1) / spacing + 0.5)))
    assert axis.count == axis.intervals + 3
    np.testing.assert_allclose(axis.weights.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    knots = np.arange(-3, axis.intervals + 4) * axis.spacing
    expected = BSpline.design_matrix(np.arange(n, dtype=float), knots, 3).toarray()
    np.testing.assert_allclose(axis.dense(), expected, rtol=0, atol=1e-14)
    first, weights = axis.locate(np.arange(n, dtype=float))
    assert first.tolist() == axis.first.tolist()
    np.testing.assert_array_equal(weights, axis.weights)


def test_spline_axis_by_hand() -> None:
    axis = bgm.spline_axis(513, knot_spacing_px=64)
    assert (axis.intervals, axis.spacing, axis.count) == (8, 64.0, 11)
    # At a knot the cubic B-splines are 1/6, 4/6, 1/6 (and 0).
    np.testing.assert_allclose(axis.weights[64], [1 / 6, 4 / 6, 1 / 6, 0.0])
    assert axis.first[64] == 1
    assert axis.first[512] == 7  # the last pixel uses the last interval
    np.testing.assert_allclose(axis.weights[512], [0.0, 1 / 6, 4 / 6, 1 / 6])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n": 0}, ValueError, "n must be an integer >= 1"),
        (
            {"n": 10, "knot_spacing_px": 0},
            ValueError,
            "knot_spacing_px must be a finite number > 0",
        ),
        ({"n": 10, "knot_spacing_px": "8"}, TypeError, "knot_spacing_px must be"),
    ],
)
def test_spline_axis_errors(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        bgm.spline_axis(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# The fit
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "block", "spacing", "smoothing", "seed"),
    [
        ((60, 70), 8, 16.0, 1e-3, 0),
        ((45, 33), 5, 12.0, 0.0, 1),
        ((64, 64), 16, 64.0, 1e-2, 2),
        ((40, 90), 4, 20.0, 1.0, 3),
    ],
)
def test_fit_matches_dense_oracle(
    shape: tuple[int, int], block: int, spacing: float, smoothing: float, seed: int
) -> None:
    frame, cells, _ = vignetted_scene(shape, seed=seed, n_cells=3)
    frame[5, 7] = 4000  # a hot pixel in the background: an outlying block
    result = bgm.estimate_background(
        frame,
        cells,
        mask_dilation_px=2,
        block_px=block,
        knot_spacing_px=spacing,
        smoothing=smoothing,
    )
    expected = oracle_fit(
        frame, cells, dilation=2, block=block, spacing=spacing, smoothing=smoothing
    )
    assert not result.fallback
    assert result.background.dtype == np.float32
    np.testing.assert_allclose(result.background, expected, rtol=2e-6, atol=1e-3)


def test_fit_follows_vignetting_to_the_edges() -> None:
    # Dense cells (about 40 % of the frame): the fit stays within 1 % of the true
    # surface everywhere, the frame edges and corners included, where the tile
    # method is flat beyond the outer tile centres and errs several times more.
    frame, cells, surface = vignetted_scene(seed=4)
    fit = bgm.estimate_background(frame, cells)
    tiles = bgm.estimate_background(frame, cells, method="tiles")
    fit_err = np.abs(fit.background - surface)
    tile_err = np.abs(tiles.background - surface)
    assert fit_err.max() < 0.01 * surface.mean()
    assert np.sqrt(np.mean(fit_err**2)) < 0.002 * surface.mean()
    edge = np.ones(frame.shape, bool)
    edge[32:-32, 32:-32] = False
    assert tile_err[edge].mean() > 4 * fit_err[edge].mean()


def test_fit_ignores_unmasked_bright_objects() -> None:
    # Bright debris the segmentation missed (3 blobs outside the mask): the
    # robust pass drops the blocks it spoils.
    frame, cells, surface = vignetted_scene(seed=5, n_cells=60)
    yy, xx = np.mgrid[: frame.shape[0], : frame.shape[1]]
    debris = np.zeros(frame.shape, bool)
    for cy, cx in ((100, 100), (300, 420), (450, 200)):
        debris |= np.hypot(yy - cy, xx - cx) < 6
    dirty = frame.copy()
    dirty[debris & ~cells] += 3000
    robust = bgm.estimate_background(dirty, cells)
    err = np.abs(robust.background - surface)
    assert err.max() < 0.015 * surface.mean()
    assert not robust.valid_tiles.all()  # blocks were dropped


def test_fit_with_no_cells_and_constant_frame_is_exact() -> None:
    frame = np.full((100, 130), 237, np.uint16)
    result = bgm.estimate_background(frame, np.zeros(frame.shape, bool))
    np.testing.assert_array_equal(result.background, np.float32(237.0))


@pytest.mark.parametrize(("rows", "cols"), [(1, 1), (1, 7), (3, 300), (513, 64)])
def test_fit_every_size_is_finite(rows: int, cols: int) -> None:
    rng = np.random.default_rng(rows * 1000 + cols)
    frame = rng.integers(90, 110, (rows, cols)).astype(np.uint16)
    result = bgm.estimate_background(
        frame, np.zeros((rows, cols), bool), min_background_px=1
    )
    assert result.background.shape == (rows, cols)
    assert np.isfinite(result.background).all()
    assert (result.background >= 70).all()
    assert (result.background <= 130).all()


def test_fit_fallback_rules() -> None:
    frame, cells, _ = vignetted_scene((64, 64), seed=6, n_cells=2)
    # Rule 1: background pixels exist but no block holds 1/8 of its pixels.
    sparse = np.ones(frame.shape, bool)
    sparse[::8, ::8] = False  # 1 px in 64 per 8x8 area: 4 per 16x16 block
    one = bgm.estimate_background(frame, sparse, mask_dilation_px=0)
    assert one.fallback_rule == 1
    expected = np.median(frame[~sparse].astype(np.float64))
    np.testing.assert_array_equal(one.background, np.float32(expected))
    assert one.carry_values is None
    # Rule 2: the previous frame's surface, reused as is.
    good = bgm.estimate_background(frame, cells)
    assert good.fallback_rule == 0
    assert good.carry_values is not None
    covered = np.ones(frame.shape, bool)
    two = bgm.estimate_background(frame, covered, previous_values=good.carry_values)
    assert two.fallback_rule == 2
    np.testing.assert_array_equal(two.background, good.background)
    np.testing.assert_array_equal(two.carry_values, good.carry_values)
    # Rule 3: the percentile of the frame.
    three = bgm.estimate_background(frame, covered, fallback_percentile=20)
    assert three.fallback_rule == 3
    level = np.percentile(frame.astype(np.float64), 20)
    np.testing.assert_array_equal(three.background, np.float32(level))
    # Too few pixels in the used blocks together: also a fallback.
    few = bgm.estimate_background(
        frame, np.zeros(frame.shape, bool), min_background_px=64 * 64 + 1
    )
    assert few.fallback


def test_fit_dtypes_axes_and_determinism() -> None:
    frame, cells, _ = vignetted_scene((200, 260), seed=7, n_cells=20)
    before = (frame.copy(), cells.copy())
    base = bgm.estimate_background(frame, cells)
    assert (
        base.background.tobytes()
        == bgm.estimate_background(frame, cells).background.tobytes()
    )
    for dtype in (np.float32, np.float64, np.int32):
        other = bgm.estimate_background(frame.astype(dtype), cells)
        assert other.background.tobytes() == base.background.tobytes()
    axes = {
        "axis_y": bgm.spline_axis(200, knot_spacing_px=64.0),
        "axis_x": bgm.spline_axis(260, knot_spacing_px=64.0),
    }
    given = bgm.estimate_background(frame, cells, **axes)
    assert given.background.tobytes() == base.background.tobytes()
    np.testing.assert_array_equal(frame, before[0])
    np.testing.assert_array_equal(cells, before[1])


def test_fit_exclude_zero() -> None:
    frame, cells, surface = vignetted_scene((128, 256), seed=8, n_cells=5)
    padded = frame.copy()
    padded[:, :40] = 0  # mosaic padding
    plain = bgm.estimate_background(padded, cells)
    excluded = bgm.estimate_background(padded, cells, exclude_zero=True)
    inside = np.s_[:, 60:]
    err_plain = np.abs(plain.background - surface)[inside].mean()
    err_excluded = np.abs(excluded.background - surface)[inside].mean()
    assert err_excluded < 0.01 * surface.mean() < err_plain


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"method": "median"}, ValueError, r"method must be one of \('fit', 'tiles'\)"),
        ({"block_px": 0}, ValueError, "block_px must be an integer >= 1"),
        (
            {"knot_spacing_px": 0.0},
            ValueError,
            "knot_spacing_px must be a finite number > 0",
        ),
        ({"smoothing": -1.0}, ValueError, "smoothing must be a finite number >= 0"),
        (
            {"smoothing": float("nan")},
            ValueError,
            "smoothing must be a finite number >= 0",
        ),
        (
            {"previous_values": np.zeros((2, 2))},
            ValueError,
            r"previous_values .* shape \(5, 4\) \(fit: coefficients and bounds\)",
        ),
        (
            {"axis_y": bgm.spline_axis(17)},
            ValueError,
            r"axis_y must be spline_axis\(16",
        ),
        ({"axis_x": "x"}, TypeError, "axis_x must be a SplineAxis or None"),
    ],
)
def test_fit_bad_options(
    options: dict[str, object], error: type[Exception], match: str
) -> None:
    frame = np.zeros((16, 16), np.uint16)
    with pytest.raises(error, match=match):
        bgm.estimate_background(frame, np.zeros((16, 16), bool), **options)  # type: ignore[arg-type]
