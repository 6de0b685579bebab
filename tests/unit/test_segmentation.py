"""Tests of pyama_steps.segmentation (algorithms.md §2, log-STD)."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest
from scipy import ndimage as ndi

from pyama_steps import segmentation as seg
from pyama_steps.segmentation import SegmentationFrame, segment_log_std

# Only thresholding: every cleanup step off.
RAW = {
    "fill_holes": False,
    "open_iterations": 0,
    "refill_holes": False,
    "shrink_px": 0,
}
# The parameter values of PyAMA's implementation (algorithms.md §2.2 "Existing").
EXISTING = {
    "open_size": 7,
    "open_iterations": 3,
    "close_size": 7,
    "close_iterations": 3,
    "refill_holes": False,
    "shrink_px": 0,
}
DTYPES = [np.uint8, np.uint16, np.float32]


# --------------------------------------------------------------------------------------
# Slow, obvious reference implementations
# --------------------------------------------------------------------------------------


def reflect_index(size: int, half: int) -> np.ndarray:
    """Indices of an axis extended by `half` on both sides as ``d c b a | a b c d``."""
    index = np.arange(-half, size + half) % (2 * size)
    return np.where(index < size, index, 2 * size - 1 - index)


def oracle_numerator(frame: np.ndarray, window: int) -> np.ndarray:
    """N = n·sum(x²) - sum(x)² per window, in Python ints, mirrored border.

    The frame is extended explicitly: ``generic_filter``'s own 'reflect' mode
    disagrees with ``correlate1d`` when the window is much larger than the frame.
    """
    n = window * window
    half = window // 2

    def numerator(values: np.ndarray) -> float:
        ints = [int(v) for v in values]
        return float(n * sum(v * v for v in ints) - sum(ints) ** 2)

    rows, cols = frame.shape
    padded = frame.astype(np.float64)[
        np.ix_(reflect_index(rows, half), reflect_index(cols, half))
    ]
    out = ndi.generic_filter(padded, numerator, size=window, mode="constant")
    return out[half : half + rows, half : half + cols]


def test_reflect_index_is_scipy_reflect() -> None:
    for size in range(1, 6):
        line = np.arange(1.0, size + 1)
        for half in range(20):
            kernel = np.zeros(2 * half + 1)
            kernel[0] = 1.0  # picks the value `half` to the left of each pixel
            extended = line[reflect_index(size, half)]
            picked = ndi.correlate1d(line, kernel, mode="reflect")
            np.testing.assert_array_equal(picked, extended[:size])


def oracle_threshold(
    frame: np.ndarray,
    *,
    window: int = 3,
    bins: int = 200,
    sigma_estimator: str = "lower_std",
    threshold_k: float = 3.0,
) -> tuple[np.ndarray, dict[str, float]]:
    """Thresholded mask of §2.3 from the generic_filter numerator."""
    numerator = oracle_numerator(frame, window)
    valid = numerator > 0
    stats = dict.fromkeys(("lo", "hi", "mode", "sigma", "threshold"), math.nan)
    if not valid.any():
        return np.zeros(frame.shape, bool), stats
    log_std = 0.5 * np.log(numerator[valid]) - np.log(np.float64(window * window))
    lo, hi = float(log_std.min()), float(log_std.max())
    stats.update(lo=lo, hi=hi)
    if hi == lo:
        return np.zeros(frame.shape, bool), stats
    counts, edges = np.histogram(log_std, bins=bins, range=(lo, hi))
    i = int(np.argmax(counts))
    mode = float((edges[i] + edges[i + 1]) / 2)
    low = log_std[log_std <= mode]
    if low.size < 2:
        sigma = 0.0
    elif sigma_estimator == "lower_std":
        sigma = float(np.std(low))
    else:
        sigma = float(np.sqrt(np.mean((low - mode) ** 2)))
    threshold = mode + threshold_k * sigma
    stats.update(mode=mode, sigma=sigma, threshold=threshold)
    mask = np.zeros(frame.shape, bool)
    mask[valid] = log_std > threshold
    return mask, stats


def oracle_fill_holes(mask: np.ndarray) -> np.ndarray:
    """Breadth-first search of the background from the frame edge, 4-connected."""
    rows, cols = mask.shape
    outside = np.zeros(mask.shape, bool)
    queue: deque[tuple[int, int]] = deque()
    for y in range(rows):
        for x in range(cols):
            edge = y in (0, rows - 1) or x in (0, cols - 1)
            if edge and not mask[y, x]:
                outside[y, x] = True
                queue.append((y, x))
    while queue:
        y, x = queue.popleft()
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            v, u = y + dy, x + dx
            inside = 0 <= v < rows and 0 <= u < cols
            if inside and not mask[v, u] and not outside[v, u]:
                outside[v, u] = True
                queue.append((v, u))
    return ~outside


def oracle_erode(mask: np.ndarray, size: int, iterations: int) -> np.ndarray:
    return ndi.binary_erosion(
        mask, np.ones((size, size), bool), iterations=iterations, border_value=1
    )


def oracle_dilate(mask: np.ndarray, size: int, iterations: int) -> np.ndarray:
    return ndi.binary_dilation(
        mask, np.ones((size, size), bool), iterations=iterations, border_value=0
    )


def oracle_segment(frame: np.ndarray, **options: object) -> np.ndarray:
    """§2.3 + §2.4 (without watershed) from scipy's general-purpose functions."""
    opts = {
        "fill_holes": True,
        "open_size": 3,
        "open_iterations": 2,
        "close_size": 3,
        "close_iterations": 0,
        "refill_holes": True,
        "shrink_px": 1,
        "min_area_px": 0,
    }
    opts.update(options)
    fg, _ = oracle_threshold(frame)
    if opts["fill_holes"]:
        fg = ndi.binary_fill_holes(fg)
    if opts["open_iterations"]:
        fg = oracle_erode(fg, opts["open_size"], opts["open_iterations"])
        fg = oracle_dilate(fg, opts["open_size"], opts["open_iterations"])
    if opts["close_iterations"]:
        fg = oracle_dilate(fg, opts["close_size"], opts["close_iterations"])
        fg = oracle_erode(fg, opts["close_size"], opts["close_iterations"])
    if opts["refill_holes"]:
        fg = ndi.binary_fill_holes(fg)
    if opts["shrink_px"]:
        fg = oracle_erode(fg, 2 * opts["shrink_px"] + 1, 1)
    if opts["min_area_px"]:
        labels, _ = ndi.label(fg)
        areas = np.bincount(labels.ravel())
        small = areas < opts["min_area_px"]
        small[0] = False
        fg = fg & ~small[labels]
    return fg


def oracle_separate(labels: np.ndarray) -> np.ndarray:
    """Step 4 of watershed_split with explicit loops over pixel pairs."""
    out = labels > 0
    rows, cols = labels.shape
    for y in range(rows):
        for x in range(cols):
            for v, u in ((y + 1, x), (y, x + 1)):
                if v >= rows or u >= cols:
                    continue
                a, b = labels[y, x], labels[v, u]
                if a > 0 and b > 0 and a != b:
                    if a > b:
                        out[y, x] = False
                    else:
                        out[v, u] = False
    return out


# --------------------------------------------------------------------------------------
# Synthetic frames
# --------------------------------------------------------------------------------------


def cell_frame(
    shape: tuple[int, int] = (256, 256),
    n_cells: int = 6,
    seed: int = 0,
    radius: tuple[float, float] = (14.0, 22.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Dark disks with a bright halo on a textured background, Poisson noise.

    Returns the uint16 frame and the true (Y, X) bool mask of the disks.
    """
    rng = np.random.default_rng(seed)
    rows, cols = shape
    yy, xx = np.mgrid[:rows, :cols]
    light = 1000.0 + 30.0 * np.sin(yy / 7.0) * np.cos(xx / 11.0)
    truth = np.zeros(shape, bool)
    cells: list[tuple[float, float, float]] = []
    while len(cells) < n_cells:
        r = rng.uniform(*radius)
        cy, cx = rng.uniform(r + 8, rows - r - 8), rng.uniform(r + 8, cols - r - 8)
        if any(math.hypot(cy - a, cx - b) < r + c + 8 for a, b, c in cells):
            continue
        cells.append((cy, cx, r))
        d = np.hypot(yy - cy, xx - cx)
        truth |= d < r
        light -= 300.0 * (d < r)
        light += 500.0 * np.exp(-((d - r) ** 2) / (2 * 0.7**2)) * (d >= r)
    return rng.poisson(light).astype(np.uint16), truth


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


@pytest.fixture(scope="module")
def cells() -> tuple[np.ndarray, np.ndarray]:
    return cell_frame()


# --------------------------------------------------------------------------------------
# Hand-computed example
# --------------------------------------------------------------------------------------
#
# A 7x7 frame of zeros with a 3x3 block of ones in the middle. With window 3, a
# pixel whose window holds c ones has S1 = S2 = c and N = c·(9 - c): 0 outside
# the ring around the block and at the block centre (c = 9), 8 (c = 1, 4 px),
# 14 (c = 2, 8 px), 18 (c = 3 or 6, 8 px) and 20 (c = 4, 4 px).
# With 2 bins, bin 0 holds N = 8 and bin 1 holds N = 14, 18, 20, so
# mode = (lo + 3·hi)/4, which lies between log-STD(14) and log-STD(18).

BLOCK = np.zeros((7, 7), np.uint16)
BLOCK[2:5, 2:5] = 1
BLOCK_N = np.array(
    [
        [0, 0, 0, 0, 0, 0, 0],
        [0, 8, 14, 18, 14, 8, 0],
        [0, 14, 20, 18, 20, 14, 0],
        [0, 18, 18, 0, 18, 18, 0],
        [0, 14, 20, 18, 20, 14, 0],
        [0, 8, 14, 18, 14, 8, 0],
        [0, 0, 0, 0, 0, 0, 0],
    ]
)
DIAMOND = np.array(
    [
        [0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 1, 0, 0, 0],
        [0, 0, 1, 1, 1, 0, 0],
        [0, 1, 1, 1, 1, 1, 0],
        [0, 0, 1, 1, 1, 0, 0],
        [0, 0, 0, 1, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0],
    ],
    bool,
)


def log_std(n: float) -> float:
    return 0.5 * math.log(n) - math.log(9)


@pytest.mark.parametrize("dtype", DTYPES)
def test_block_numerator_by_hand(dtype: type) -> None:
    numerator = seg._variance_numerator(BLOCK.astype(dtype), 3)
    np.testing.assert_array_equal(numerator, BLOCK_N)


@pytest.mark.parametrize("dtype", DTYPES)
def test_block_threshold_by_hand(dtype: type) -> None:
    frame = BLOCK.astype(dtype)
    result = segment_log_std(frame, bins=2, threshold_k=0.0, **RAW)
    ring = DIAMOND.copy()
    ring[3, 3] = False  # the block centre is flat (N = 0): never foreground
    np.testing.assert_array_equal(result.mask, ring)
    lo, hi = log_std(8), log_std(20)
    assert result.lo == pytest.approx(lo, rel=1e-14)
    assert result.hi == pytest.approx(hi, rel=1e-14)
    assert result.mode == pytest.approx((lo + 3 * hi) / 4, rel=1e-14)
    # Values at or below the mode: 4 x log-STD(8) and 8 x log-STD(14).
    assert result.sigma == pytest.approx(
        math.sqrt(2) / 3 * (log_std(14) - log_std(8)), rel=1e-12
    )
    assert result.threshold == result.mode
    assert result.foreground_fraction == pytest.approx(12 / 49)

    filled = segment_log_std(
        frame, bins=2, threshold_k=0.0, **{**RAW, "fill_holes": True}
    )
    np.testing.assert_array_equal(filled.mask, DIAMOND)


def test_block_lower_rms_by_hand() -> None:
    result = segment_log_std(BLOCK, bins=2, sigma_estimator="lower_rms", **RAW)
    mode = (log_std(8) + 3 * log_std(20)) / 4
    expected = math.sqrt(
        (4 * (log_std(8) - mode) ** 2 + 8 * (log_std(14) - mode) ** 2) / 12
    )
    assert result.sigma == pytest.approx(expected, rel=1e-12)


def test_block_threshold_k_removes_everything() -> None:
    # k = 1: threshold = mode + 0.132 ≈ log-STD(20.7), above the largest value.
    result = segment_log_std(BLOCK, bins=2, threshold_k=1.0, **RAW)
    assert result.threshold > result.hi
    assert not result.mask.any()


def test_histogram_tie_goes_to_lowest_bin() -> None:
    # Two bins with 2 values each: the mode is the centre of bin 0.
    values = np.array([0.0, 0.1, 0.9, 1.0])
    assert seg._histogram_mode(values, 2, 0.0, 1.0) == 0.25
    # The last bin is closed: hi counts in it.
    assert seg._histogram_mode(np.array([0.0, 1.0, 1.0]), 4, 0.0, 1.0) == 0.875


def test_histogram_range_too_narrow_for_bins() -> None:
    hi = np.nextafter(1.0, 2.0)
    assert seg._histogram_mode(np.array([1.0, hi]), 200, 1.0, hi) is None
    assert seg._histogram_mode(np.array([1.0, 1.0]), 200, 1.0, 1.0) is None


# --------------------------------------------------------------------------------------
# Oracles: box sums, log-STD, morphology, hole filling
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (3, 2), (7, 7), (13, 17)])
@pytest.mark.parametrize("window", [3, 5, 7, 9, 15, 37])
def test_box_sum_matches_correlate1d(shape: tuple[int, int], window: int) -> None:
    rng = np.random.default_rng(window)
    frame = rng.integers(0, 1000, shape).astype(np.int64)
    ones = np.ones(window)
    expected = ndi.correlate1d(frame.astype(np.float64), ones, 0, mode="reflect")
    expected = ndi.correlate1d(expected, ones, 1, mode="reflect")
    np.testing.assert_array_equal(seg._box_sum(frame, window), expected)


@pytest.mark.parametrize(
    ("dtype", "high", "offset"),
    [
        (np.uint8, 256, 0),
        (np.uint16, 65536, 0),
        (np.uint16, 4, 0),
        (np.int16, 200, -100),
        (np.int32, 65536, -(2**31) + 1),
        (np.uint32, 65536, 2**32 - 65536),
        (np.int64, 65536, 2**40),
        (np.uint64, 65536, 2**63),
        (np.float32, 65536, 0),
        (np.float64, 65536, 2.0**50),
    ],
)
@pytest.mark.parametrize("window", [3, 5, 37])
def test_numerator_matches_generic_filter(
    dtype: type, high: int, offset: int, window: int
) -> None:
    rng = np.random.default_rng(high + window)
    values = rng.integers(0, high, (9, 11))
    values[:3, :4] = values[0, 0]  # a flat patch
    frame = (values.astype(object) + offset).astype(dtype)
    expected = oracle_numerator(values, window)  # N does not depend on the offset
    numerator = seg._variance_numerator(frame, window)
    assert numerator.dtype.kind == "i"  # exact path
    np.testing.assert_array_equal(numerator, expected)


@pytest.mark.parametrize("dtype", [np.uint16, np.int64])
def test_numerator_extreme_range_is_exact(dtype: type) -> None:
    # 0 and 65535 next to each other: the largest N a uint16 frame can reach.
    frame = np.zeros((6, 6), dtype)
    frame[::2, 1::2] = 65535
    frame[1::2, ::2] = 65535
    numerator = seg._variance_numerator(frame, 37)
    np.testing.assert_array_equal(numerator, oracle_numerator(frame, 37))


def test_numerator_huge_range_uses_float64() -> None:
    frame = np.array([[0, 2**40], [5, 2**41]], dtype=np.int64)
    numerator = seg._variance_numerator(frame, 3)
    assert numerator.dtype == np.float64
    expected = oracle_numerator(frame, 3)
    np.testing.assert_allclose(numerator, expected, rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_threshold_matches_oracle(seed: int, dtype: type) -> None:
    rng = np.random.default_rng(seed)
    frame = rng.poisson(100, (40, 50))
    frame[10:25, 12:30] += rng.poisson(80, (15, 18))
    frame[30:, :8] = 7  # flat region: excluded from the histogram
    frame = frame.astype(dtype)
    expected, stats = oracle_threshold(frame, threshold_k=1.0)
    result = segment_log_std(frame, threshold_k=1.0, **RAW)
    np.testing.assert_array_equal(result.mask, expected)
    for key, value in stats.items():
        assert getattr(result, key) == value, key
    assert expected.any()


@pytest.mark.parametrize("estimator", ["lower_std", "lower_rms"])
@pytest.mark.parametrize(("window", "bins"), [(3, 200), (5, 50), (9, 7), (37, 1)])
def test_threshold_options_match_oracle(estimator: str, window: int, bins: int) -> None:
    rng = np.random.default_rng(window)
    frame = rng.poisson(500, (48, 40)).astype(np.uint16)
    frame[5:20, 5:30] //= 2
    options = {
        "window": window,
        "bins": bins,
        "sigma_estimator": estimator,
        "threshold_k": 0.5,
    }
    expected, stats = oracle_threshold(frame, **options)
    result = segment_log_std(frame, **options, **RAW)
    np.testing.assert_array_equal(result.mask, expected)
    assert result.sigma == stats["sigma"]
    assert result.threshold == stats["threshold"]


MASK_SHAPES = [(1, 1), (1, 6), (6, 1), (2, 3), (7, 9), (30, 41)]


@pytest.mark.parametrize("shape", MASK_SHAPES)
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("iterations", [1, 2, 3])
def test_erode_dilate_match_scipy(
    shape: tuple[int, int], size: int, iterations: int
) -> None:
    rng = np.random.default_rng(size * 10 + iterations)
    for density in (0.3, 0.7, 0.95):
        mask = rng.random(shape) < density
        np.testing.assert_array_equal(
            seg._erode(mask, size, iterations), oracle_erode(mask, size, iterations)
        )
        np.testing.assert_array_equal(
            seg._dilate(mask, size, iterations), oracle_dilate(mask, size, iterations)
        )


def test_erosion_border_keeps_edge_objects() -> None:
    # Outside counts as foreground for erosion and background for dilation:
    # an object cut by the frame edge is neither eaten nor grown by an opening.
    mask = np.zeros((9, 9), bool)
    mask[:5, :5] = True
    eroded = seg._erode(mask, 3, 1)
    expected = np.zeros((9, 9), bool)
    expected[:4, :4] = True
    np.testing.assert_array_equal(eroded, expected)
    np.testing.assert_array_equal(seg._dilate(eroded, 3, 1), mask)
    full = np.ones((4, 4), bool)
    np.testing.assert_array_equal(seg._erode(full, 5, 3), full)
    assert not seg._dilate(np.zeros((4, 4), bool), 5, 3).any()


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (5, 7), (20, 20), (33, 47)])
@pytest.mark.parametrize("density", [0.2, 0.5, 0.6, 0.8])
def test_fill_holes_matches_oracles(shape: tuple[int, int], density: float) -> None:
    rng = np.random.default_rng(int(density * 10) + shape[0])
    for _ in range(3):
        mask = rng.random(shape) < density
        filled = seg._fill_holes(mask)
        np.testing.assert_array_equal(filled, oracle_fill_holes(mask))
        np.testing.assert_array_equal(filled, ndi.binary_fill_holes(mask))


def test_fill_holes_uses_4_connectivity() -> None:
    # The centre pixel touches the outside only diagonally: it is a hole.
    mask = np.array(
        [
            [0, 0, 0, 0, 0],
            [0, 1, 1, 0, 0],
            [0, 1, 0, 1, 0],
            [0, 0, 1, 1, 0],
            [0, 0, 0, 0, 0],
        ],
        bool,
    )
    expected = mask.copy()
    expected[2, 2] = True
    np.testing.assert_array_equal(seg._fill_holes(mask), expected)
    # A background region touching the edge is not a hole.
    edge = np.ones((4, 4), bool)
    edge[1:3, 0] = False
    np.testing.assert_array_equal(seg._fill_holes(edge), edge)


@pytest.mark.parametrize(
    "options",
    [
        {},
        EXISTING,
        {"close_iterations": 1, "close_size": 5},
        {"min_area_px": 40},
        {"open_size": 4, "open_iterations": 1, "shrink_px": 2},
        {"fill_holes": False, "refill_holes": False, "open_iterations": 0},
    ],
    ids=["defaults", "existing", "closing", "min-area", "even-open", "no-cleanup"],
)
def test_segment_matches_oracle_pipeline(
    cells: tuple[np.ndarray, np.ndarray], options: dict[str, object]
) -> None:
    frame = cells[0][:96, :128]
    result = segment_log_std(frame, **options)
    np.testing.assert_array_equal(result.mask, oracle_segment(frame, **options))
    assert result.foreground_fraction == result.mask.mean()


def test_separate_labels_matches_loops() -> None:
    rng = np.random.default_rng(3)
    for _ in range(5):
        labels = rng.integers(0, 5, (17, 23))
        np.testing.assert_array_equal(
            seg._separate_labels(labels), oracle_separate(labels)
        )


def test_separate_labels_by_hand() -> None:
    labels = np.array([[1, 1, 2, 2], [1, 1, 2, 0], [3, 0, 2, 0]])
    # 1|2 across rows 0 and 1: the 2s at (0, 2) and (1, 2) go; 1 over 3 in
    # column 0: the 3 goes. Pixels touching only their own label or 0 stay.
    expected = np.array([[1, 1, 0, 1], [1, 1, 0, 0], [0, 0, 1, 0]], bool)
    np.testing.assert_array_equal(seg._separate_labels(labels), expected)


# --------------------------------------------------------------------------------------
# Watershed split and minimum area
# --------------------------------------------------------------------------------------


def two_touching_disks() -> np.ndarray:
    yy, xx = np.mgrid[:60, :90]
    return (np.hypot(yy - 30, xx - 28) < 16) | (np.hypot(yy - 30, xx - 58) < 16)


def test_watershed_splits_touching_disks() -> None:
    mask = two_touching_disks()
    assert ndi.label(mask)[1] == 1
    split = seg._watershed_split(mask, 2.0)
    labels, count = ndi.label(split)
    assert count == 2
    assert not (split & ~mask).any()
    assert np.count_nonzero(mask & ~split) < 40  # only a thin cut line is lost
    # The left disk keeps its centre, the right one too.
    assert labels[30, 28] != labels[30, 58]


def test_watershed_keeps_single_disk() -> None:
    yy, xx = np.mgrid[:50, :50]
    mask = np.hypot(yy - 25, xx - 25) < 15
    np.testing.assert_array_equal(seg._watershed_split(mask, 2.0), mask)
    assert not seg._watershed_split(np.zeros((5, 5), bool), 2.0).any()


def test_segment_with_watershed_option(cells: tuple[np.ndarray, np.ndarray]) -> None:
    frame, _ = cells
    plain = segment_log_std(frame)
    split = segment_log_std(frame, split="watershed")
    assert not (split.mask & ~plain.mask).any()
    assert ndi.label(split.mask)[1] >= ndi.label(plain.mask)[1]


def test_min_area_uses_4_connectivity() -> None:
    mask = np.zeros((8, 8), bool)
    mask[0, 0] = mask[1, 1] = True  # two diagonal 1-px components
    mask[4:7, 4:7] = True  # 9 px
    mask[0, 5:8] = True  # 3 px
    kept = seg._remove_small(mask, 3)
    expected = mask.copy()
    expected[0, 0] = expected[1, 1] = False
    np.testing.assert_array_equal(kept, expected)
    assert not seg._remove_small(mask, 10).any()


# --------------------------------------------------------------------------------------
# Degenerate frames
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("value", [0, 7, 255])
def test_constant_frame_gives_empty_mask(dtype: type, value: int) -> None:
    result = segment_log_std(np.full((32, 48), value, dtype))
    assert result.mask.shape == (32, 48)
    assert result.mask.dtype == np.bool_
    assert not result.mask.any()
    assert result.foreground_fraction == 0.0
    for key in ("lo", "hi", "mode", "sigma", "threshold"):
        assert math.isnan(getattr(result, key)), key


def test_single_valued_histogram_gives_empty_mask() -> None:
    # A checkerboard: every window (borders mirrored) holds 4 of one value and 5
    # of the other, so N = 20·(a - b)² everywhere and hi == lo.
    frame = (np.indices((20, 30)).sum(axis=0) % 2 * 100).astype(np.uint16)
    result = segment_log_std(frame)
    assert not result.mask.any()
    assert result.lo == result.hi == pytest.approx(log_std(20 * 100**2))
    assert math.isnan(result.mode)
    assert math.isnan(result.sigma)
    assert math.isnan(result.threshold)


@pytest.mark.parametrize("counts", [50, 1000, 20000])
def test_poisson_noise_has_almost_no_foreground(counts: int) -> None:
    rng = np.random.default_rng(counts)
    for _ in range(2):
        frame = rng.poisson(counts, (512, 512)).astype(np.uint16)
        result = segment_log_std(frame)
        assert result.foreground_fraction < 0.001


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (2, 2), (2, 3), (3, 2)])
@pytest.mark.parametrize("window", [3, 37])
def test_frames_smaller_than_window(shape: tuple[int, int], window: int) -> None:
    rng = np.random.default_rng(shape[0] * window)
    frame = rng.integers(0, 1000, shape).astype(np.uint16)
    result = segment_log_std(frame, window=window)
    assert result.mask.shape == shape
    assert not result.mask.any()  # the opening removes everything
    raw = segment_log_std(frame, window=window, **RAW)
    expected, _ = oracle_threshold(frame, window=window)
    np.testing.assert_array_equal(raw.mask, expected)


def test_sigma_zero_with_one_value_at_or_below_mode() -> None:
    assert seg._lower_sigma(np.array([0.0, 1.0, 1.0]), 0.75, "lower_std") == 0.0
    assert seg._lower_sigma(np.array([0.0, 1.0, 1.0]), 0.75, "lower_rms") == 0.0
    # One bright corner pixel; its mirrored windows give N = 20 at (0, 0), 14 at
    # (0, 1) and (1, 0), 8 at (1, 1). With 3 bins the middle bin (N = 14) is
    # the mode, centred at N = sqrt(8·20) ≈ 12.6: only N = 8 lies below it.
    frame = np.zeros((9, 9), np.uint16)
    frame[0, 0] = 1
    result = segment_log_std(frame, bins=3, threshold_k=5.0, **RAW)
    assert result.sigma == 0.0
    assert result.threshold == result.mode
    assert result.mode == pytest.approx(log_std(math.sqrt(160)), rel=1e-12)
    expected = np.zeros((9, 9), bool)
    expected[0, :2] = expected[1, 0] = True
    np.testing.assert_array_equal(result.mask, expected)


def test_flat_region_excluded_from_histogram() -> None:
    # A large saturated area must not become the mode (existing implementation
    # set it to log-STD 0 and let it drag the threshold down).
    frame, truth = cell_frame(seed=4)
    saturated = frame.copy()
    saturated[:, 160:] = 65535
    result = segment_log_std(saturated)
    reference = segment_log_std(frame[:, :150])
    assert result.lo > 0.5
    assert result.mode == pytest.approx(reference.mode, abs=0.1)
    left = result.mask[:, :150]
    assert dice(left, truth[:, :150]) > 0.85


# --------------------------------------------------------------------------------------
# Dtypes, determinism, inputs
# --------------------------------------------------------------------------------------


def test_dtypes_give_identical_masks(cells: tuple[np.ndarray, np.ndarray]) -> None:
    frame = cells[0][:128, :128]
    scaled = (frame // 8).astype(np.uint8)
    masks = [segment_log_std(scaled.astype(dtype)).mask for dtype in DTYPES]
    masks.append(segment_log_std(scaled.astype(np.int64) + 2**40).mask)
    for mask in masks[1:]:
        np.testing.assert_array_equal(mask, masks[0])
    assert masks[0].any()


def test_fractional_float_frame_close_to_integer_frame(
    cells: tuple[np.ndarray, np.ndarray],
) -> None:
    frame = cells[0]
    exact = segment_log_std(frame).mask
    fractional = segment_log_std(frame.astype(np.float64) / 8.0 + 0.3).mask
    assert np.mean(exact == fractional) > 0.999


def test_inputs_not_modified_and_deterministic(
    cells: tuple[np.ndarray, np.ndarray],
) -> None:
    frame = cells[0].copy()
    first = segment_log_std(frame, split="watershed", min_area_px=20)
    np.testing.assert_array_equal(frame, cells[0])
    second = segment_log_std(frame, split="watershed", min_area_px=20)
    assert first.mask.tobytes() == second.mask.tobytes()
    assert isinstance(first, SegmentationFrame)
    assert (first.lo, first.hi, first.mode, first.sigma, first.threshold) == (
        second.lo,
        second.hi,
        second.mode,
        second.sigma,
        second.threshold,
    )


def test_read_only_memmap_input(cells: tuple[np.ndarray, np.ndarray]) -> None:
    frame = cells[0].copy()
    frame.flags.writeable = False
    np.testing.assert_array_equal(
        segment_log_std(frame).mask, segment_log_std(cells[0]).mask
    )


# --------------------------------------------------------------------------------------
# Accuracy on synthetic cells
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mask_matches_true_disks(seed: int) -> None:
    frame, truth = cell_frame(seed=seed)
    result = segment_log_std(frame)
    assert dice(result.mask, truth) > 0.9
    assert ndi.label(result.mask)[1] == 6


def test_shrink_reduces_outward_spread() -> None:
    frame, truth = cell_frame(seed=5)
    outside = [
        np.count_nonzero(segment_log_std(frame, shrink_px=r).mask & ~truth)
        for r in (0, 1, 2)
    ]
    assert outside[0] > outside[1] > outside[2]
    dices = [dice(segment_log_std(frame, shrink_px=r).mask, truth) for r in (0, 1)]
    assert dices[1] > dices[0] + 0.03


def test_existing_parameters_delete_small_cells() -> None:
    # The 19 x 19 effective opening of the existing parameters removes cells a
    # 19-px square cannot fit in; the default 5 x 5 opening keeps them.
    frame, truth = cell_frame(n_cells=8, seed=6, radius=(6.0, 8.0))
    default = segment_log_std(frame)
    existing = segment_log_std(frame, **EXISTING)
    assert ndi.label(default.mask)[1] == 8
    assert dice(default.mask, truth) > 0.8
    assert not existing.mask.any()


def test_object_cut_by_frame_edge_keeps_edge_pixels() -> None:
    # A textured object in the corner: erosions count the outside as foreground,
    # so the opening and the shrink do not eat it from the frame edge.
    rng = np.random.default_rng(8)
    frame = rng.poisson(1000, (64, 64))
    frame[:30, :30] = rng.integers(0, 4000, (30, 30))
    result = segment_log_std(frame.astype(np.uint16))
    truth = np.zeros((64, 64), bool)
    truth[:30, :30] = True
    assert result.mask[0, :28].all()
    assert result.mask[:28, 0].all()
    assert dice(result.mask, truth) > 0.95


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "error", "match"),
    [
        (np.zeros((4, 4), bool), TypeError, "real integer or floating dtype"),
        (np.zeros((4, 4), complex), TypeError, "real integer or floating dtype"),
        (np.zeros((2, 4, 4), np.uint16), ValueError, r"2-D \(Y, X\) array"),
        (np.zeros(4, np.uint16), ValueError, r"2-D \(Y, X\) array"),
        (np.zeros((0, 4), np.uint16), ValueError, "at least one row and one column"),
        (np.array([[1.0, np.nan]]), ValueError, "frame must be finite"),
        (np.array([[1.0, np.inf]]), ValueError, "frame must be finite"),
    ],
)
def test_bad_frame(frame: np.ndarray, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        segment_log_std(frame)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        (
            {"window": 4},
            ValueError,
            r"window must be an odd integer in \[3, 37\]; got 4",
        ),
        ({"window": 1}, ValueError, r"window must be an integer in \[3, 37\]; got 1"),
        ({"window": 39}, ValueError, r"window must be an integer in \[3, 37\]; got 39"),
        ({"window": 3.0}, TypeError, "window must be an int; got 3.0"),
        ({"window": True}, TypeError, "window must be an int; got True"),
        ({"bins": 0}, ValueError, "bins must be an integer >= 1; got 0"),
        ({"sigma_estimator": "std"}, ValueError, "sigma_estimator must be one of"),
        ({"sigma_estimator": None}, ValueError, "sigma_estimator must be one of"),
        ({"threshold_k": -1.0}, ValueError, "threshold_k must be a finite number >= 0"),
        ({"threshold_k": math.nan}, ValueError, "threshold_k must be a finite number"),
        ({"threshold_k": "3"}, TypeError, "threshold_k must be a real number; got '3'"),
        ({"fill_holes": 1}, TypeError, "fill_holes must be True or False; got 1"),
        ({"open_size": 0}, ValueError, "open_size must be an integer >= 1; got 0"),
        (
            {"open_iterations": -1},
            ValueError,
            "open_iterations must be an integer >= 0",
        ),
        ({"close_size": 0}, ValueError, "close_size must be an integer >= 1; got 0"),
        ({"close_iterations": -1}, ValueError, "close_iterations must be an integer"),
        ({"refill_holes": "yes"}, TypeError, "refill_holes must be True or False"),
        ({"shrink_px": -1}, ValueError, "shrink_px must be an integer >= 0; got -1"),
        ({"split": "watershed2"}, ValueError, "split must be one of"),
        ({"split_h_px": 0.0}, ValueError, r"split_h_px must be a finite number > 0\.0"),
        ({"min_area_px": -2}, ValueError, "min_area_px must be an integer >= 0"),
        ({"min_area_px": 2.5}, TypeError, "min_area_px must be an int; got 2.5"),
    ],
)
def test_bad_option(
    options: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        segment_log_std(np.zeros((8, 8), np.uint16), **options)


def test_numpy_integer_options_accepted() -> None:
    frame, _ = cell_frame(seed=1)
    a = segment_log_std(frame, window=np.int64(5), threshold_k=np.float32(2.5))
    b = segment_log_std(frame, window=5, threshold_k=float(np.float32(2.5)))
    np.testing.assert_array_equal(a.mask, b.mask)
