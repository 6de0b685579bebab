"""Tests of the log-STD segmentation (algorithms.md §2)."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage import measure

from pyama_steps import morphology
from pyama_steps.segmentation import (
    MIN_SEPARATION,
    SegmentationFrame,
    choose_window,
    segment_log_std,
    texture_separation,
)
from pyama_steps.segmentation import centres as seg_centres
from pyama_steps.segmentation import cleanup as seg_cleanup
from pyama_steps.segmentation import halo as seg_halo
from pyama_steps.segmentation import masks as seg_masks
from pyama_steps.segmentation import restore as seg_restore
from pyama_steps.segmentation import split as seg_split
from pyama_steps.segmentation import texture as seg_texture
from pyama_steps.segmentation import threshold as seg_threshold
from pyama_steps.validation import synth
from pyama_steps.validation.evaluate.matching import _match_frame

# Only thresholding: every step after it off.
RAW = {
    "fill_holes": False,
    "halo_trim": False,
    "open_iterations": 0,
    "refill_holes": False,
    "shrink_px": 0,
    "split": "none",
    "min_area_px": 0,
    "min_edge_fraction": 0.0,
}
# The parameter values of PyAMA's implementation (algorithms.md §2.2 "Existing").
EXISTING = {
    "threshold_k": 3.0,
    "mode_smooth_bins": 1,
    "mode_peak_fraction": 1.0,
    "fill_border": "open",
    "halo_trim": False,
    "open_size": 7,
    "open_iterations": 3,
    "close_size": 7,
    "close_iterations": 3,
    "refill_holes": False,
    "shrink_px": 0,
    "split": "none",
    "min_area_px": 0,
    "min_edge_fraction": 0.0,
}
# Defaults of the previous version of this module (no hysteresis, trim or split).
PREVIOUS = {
    "threshold_k": 3.0,
    "mode_smooth_bins": 1,
    "mode_peak_fraction": 1.0,
    "fill_border": "open",
    "halo_trim": False,
    "shrink_px": 1,
    "split": "none",
    "min_area_px": 0,
    "min_edge_fraction": 0.0,
}
DTYPES = [np.uint8, np.uint16, np.float32]
CROSS = ndi.generate_binary_structure(2, 1)
SQUARE = np.ones((3, 3), dtype=bool)


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


def oracle_window_sum(frame: np.ndarray, window: int) -> np.ndarray:
    """S1 of ``frame - min(frame)`` per window, in Python ints, mirrored border."""
    half = window // 2
    rows, cols = frame.shape
    shifted = frame.astype(np.float64) - float(frame.min())
    padded = shifted[np.ix_(reflect_index(rows, half), reflect_index(cols, half))]
    out = ndi.generic_filter(padded, np.sum, size=window, mode="constant")
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


def oracle_stats(
    frame: np.ndarray,
    *,
    window: int = 3,
    bins: int = 200,
    mode_smooth_bins: int = 11,
    mode_peak_fraction: float = 0.25,
    sigma_estimator: str = "lower_std",
) -> tuple[np.ndarray, dict[str, float]]:
    """N and the statistics of §2.3 from the generic_filter numerator.

    The statistics use the valid pixels of even rows and columns; the mode is
    the bin with the largest count summed over `mode_smooth_bins` bins, or the
    lowest separate peak below it (:func:`oracle_peak`).
    """
    numerator = oracle_numerator(frame, window)
    stats = dict.fromkeys(("lo", "hi", "mode", "sigma"), math.nan)
    sample = numerator[::2, ::2]
    sample = sample[sample > 0]
    if sample.size == 0:
        return numerator, stats
    log_std = 0.5 * np.log(sample) - np.log(np.float64(window * window))
    lo, hi = float(log_std.min()), float(log_std.max())
    stats.update(lo=lo, hi=hi)
    if hi == lo:
        return numerator, stats
    counts, edges = np.histogram(log_std, bins=bins, range=(lo, hi))
    half = mode_smooth_bins // 2
    summed = [
        sum(int(counts[j]) for j in range(i - half, i + half + 1) if 0 <= j < bins)
        for i in range(bins)
    ]
    i = oracle_peak(summed, mode_peak_fraction)
    mode = float((edges[i] + edges[i + 1]) / 2)
    low = log_std[log_std <= mode]
    if low.size < 2:
        sigma = 0.0
    elif sigma_estimator == "lower_std":
        sigma = float(np.std(low))
    else:
        sigma = float(np.sqrt(np.mean((low - mode) ** 2)))
    stats.update(mode=mode, sigma=sigma)
    return numerator, stats


def oracle_peak(counts: list[int], fraction: float) -> int:
    """The mode's bin of §2.3, written out bin by bin.

    The first fullest bin ``top``, unless a bin ``i < top`` is a peak (above its
    left neighbour, not below its right one) with at least `fraction` of the
    top count, and its count minus the smallest count between it and ``top``
    exceeds 3 sqrt(count + that smallest count): the first such bin.
    """
    top = counts.index(max(counts))
    for i in range(top):
        left = counts[i - 1] if i > 0 else -1
        valley = min(counts[i : top + 1])
        if (
            counts[i] > left
            and counts[i] >= counts[i + 1]
            and counts[i] >= fraction * counts[top]
            and counts[i] - valley > 3.0 * math.sqrt(counts[i] + valley)
        ):
            return i
    return top


def oracle_hysteresis(strong: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """Breadth-first search through `weak` from every `strong` pixel, 4-connected."""
    rows, cols = weak.shape
    out = np.zeros(weak.shape, bool)
    queue: deque[tuple[int, int]] = deque(zip(*np.nonzero(strong), strict=True))
    for y, x in queue:
        out[y, x] = True
    while queue:
        y, x = queue.popleft()
        for v, u in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
            if 0 <= v < rows and 0 <= u < cols and weak[v, u] and not out[v, u]:
                out[v, u] = True
                queue.append((v, u))
    return out


def oracle_threshold(
    frame: np.ndarray,
    *,
    threshold_k: float = 1.25,
    threshold_low_k: float | None = None,
    **options: object,
) -> tuple[np.ndarray, dict[str, float]]:
    """Thresholded mask of §2.3 (with the hysteresis) from the oracle statistics."""
    window = int(options.get("window", 3))  # type: ignore[call-overload]
    numerator, stats = oracle_stats(frame, **options)  # type: ignore[arg-type]
    stats.update(threshold=math.nan, threshold_low=math.nan)
    if math.isnan(stats["mode"]):
        return np.zeros(frame.shape, bool), stats
    n = window * window
    threshold = stats["mode"] + threshold_k * stats["sigma"]
    stats["threshold"] = threshold
    # log-STD > t  <=>  N > n²·exp(2t), the same float64 expression as the module
    mask = numerator > float(n) * float(n) * math.exp(2.0 * threshold)
    if threshold_low_k is not None:
        low = stats["mode"] + threshold_low_k * stats["sigma"]
        stats["threshold_low"] = low
        weak = numerator > float(n) * float(n) * math.exp(2.0 * low)
        mask = oracle_hysteresis(mask, weak)
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


def oracle_fill_mirror(mask: np.ndarray, mirror_px: int) -> np.ndarray:
    """Holes of the mirrored mask, except edge components that reach the core."""
    rows, cols = mask.shape
    py, px = min(mirror_px, rows // 4), min(mirror_px, cols // 4)
    grid = np.pad(mask, ((py, py), (px, px)), mode="symmetric")
    holes = oracle_fill_holes(grid) & ~grid
    labels, count = ndi.label(holes)
    frame = np.zeros(grid.shape, bool)
    frame[py : py + rows, px : px + cols] = True
    edge = frame & ~ndi.binary_erosion(frame, CROSS, border_value=0)
    core = np.zeros(grid.shape, bool)
    core[2 * py : py + rows - py, 2 * px : px + cols - px] = True
    keep = np.zeros(grid.shape, bool)
    for i in range(1, count + 1):
        component = labels == i
        if (py or px) and (component & edge).any() and (component & core).any():
            continue
        keep |= component
    return mask | keep[py : py + rows, px : px + cols]


def oracle_erode(mask: np.ndarray, size: int, iterations: int) -> np.ndarray:
    return ndi.binary_erosion(
        mask, np.ones((size, size), bool), iterations=iterations, border_value=1
    )


def oracle_dilate(mask: np.ndarray, size: int, iterations: int) -> np.ndarray:
    return ndi.binary_dilation(
        mask, np.ones((size, size), bool), iterations=iterations, border_value=0
    )


def oracle_background(
    strong: np.ndarray, s1: np.ndarray, block: int, offset: float = 0.0
) -> np.ndarray | None:
    """§2.4 background level (plus `offset`) by explicit loops."""
    grid = oracle_grid(strong, s1, block)
    if grid is None:
        return None
    return oracle_bilinear(grid, *strong.shape, block, offset)


def oracle_grid(strong: np.ndarray, s1: np.ndarray, block: int) -> np.ndarray | None:
    """§2.4 block means of the background pixels' S1, by explicit loops."""
    rows, cols = strong.shape
    near = oracle_dilate(strong, 7, 1)
    gy, gx = -(-rows // block), -(-cols // block)
    grid = np.zeros((gy, gx))
    counts = np.zeros((gy, gx), np.int64)
    for i in range(gy):
        for j in range(gx):
            total, count, size = 0, 0, 0
            for y in range(i * block, min((i + 1) * block, rows), 2):
                for x in range(j * block, min((j + 1) * block, cols), 2):
                    size += 1
                    if not near[y, x]:
                        total += int(s1[y, x])
                        count += 1
            if count >= 0.1 * size:
                counts[i, j] = count
                grid[i, j] = total / count
    if not counts.any():
        return None
    if not counts.all():
        # The fill of the unusable blocks has its own tests (test_fill_blocks_*).
        grid = seg_halo._fill_blocks(grid, counts)
    return grid


def oracle_bilinear(
    grid: np.ndarray, rows: int, cols: int, block: int, offset: float = 0.0
) -> np.ndarray:
    """§2.4 bilinear interpolation of block values by explicit loops."""
    gy, gx = grid.shape

    def weights(z: int, count: int) -> tuple[int, int, float]:
        position = min(max((z + 0.5) / block - 0.5, 0.0), count - 1.0)
        first = math.floor(position)
        return first, min(first + 1, count - 1), position - first

    out = np.zeros((rows, cols))
    for y in range(rows):
        i0, i1, wy = weights(y, gy)
        for x in range(cols):
            j0, j1, wx = weights(x, gx)
            a0 = grid[i0, j0] * (1.0 - wx) + grid[i0, j1] * wx
            a1 = grid[i1, j0] * (1.0 - wx) + grid[i1, j1] * wx
            out[y, x] = wy * (a1 - a0) + (a0 + offset)
    return out


def oracle_halo_trim(
    mask: np.ndarray, strong: np.ndarray, s1: np.ndarray, margin: float, block: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """§2.4 halo trim with the polarity test, from `oracle_background`; also
    returns the level T (None when the trim is skipped)."""
    sampled = mask[::2, ::2]
    if not sampled.any():
        return mask, None
    level = oracle_background(strong, s1, block, margin)  # B + margin
    if level is None:
        return mask, None
    inner = ndi.binary_erosion(sampled, SQUARE, border_value=1)
    if not inner.any():
        inner = sampled
    darker = s1[::2, ::2][inner] < level[::2, ::2][inner] - 2.0 * margin
    if np.count_nonzero(darker) < 0.25 * darker.size:
        return mask, None
    return mask & (s1 <= level), level


def oracle_edge_ratio(
    s1: np.ndarray,
    filled: np.ndarray,
    background: np.ndarray,
    n: int,
    minimum: float,
    offset_px: float,
) -> float:
    """§2.4 edge ratio rho by explicit loops over the sampled ring pixels."""
    rows, cols = filled.shape
    m = 3
    if rows <= 2 * m or cols <= 2 * m:
        return math.nan
    sample = filled[m : rows - m : 2, m : cols - m : 2]
    ring = sample & ~oracle_erode(sample, 7, 1)
    points = [(2 * i + m, 2 * j + m) for i, j in zip(*np.nonzero(ring), strict=True)]
    if len(points) < 30:
        return math.nan
    if len(points) > 4000:
        points = points[:: -(-len(points) // 4000)]
    v = s1.astype(np.float64)

    def grad(y: int, x: int) -> tuple[float, float]:
        return v[y + 1, x] - v[y - 1, x], v[y, x + 1] - v[y, x - 1]

    tan = math.tan(math.pi / 8.0)
    found = []
    for y, x in points:
        gy, gx = grad(y, x)
        g = math.hypot(gy, gx)
        ay, ax = abs(gy), abs(gx)
        diagonal = min(ay, ax) > tan * max(ay, ax)
        sy = int(np.sign(gy)) if (ay >= ax or diagonal) else 0
        sx = int(np.sign(gx)) if (ax > ay or diagonal) else 0
        if sy == 0 and sx == 0:
            continue
        if g < math.hypot(*grad(y + sy, x + sx)) or g < math.hypot(
            *grad(y - sy, x - sx)
        ):
            continue
        b = background[y, x]
        if not v[y - 2 * sy, x - 2 * sx] < b < v[y + 2 * sy, x + 2 * sx]:
            continue
        found.append((g, v[y, x], b))
    if len(found) < 30:
        return math.nan
    arr = np.array(found)
    strong = arr[arr[:, 0] >= np.median(arr[:, 0])]
    level = strong[:, 1] / n + minimum + offset_px * strong[:, 0] / (2.0 * n)
    return float(np.median(level / (strong[:, 2] / n + minimum))) - 1.0


def oracle_peel(mask: np.ndarray, bright: np.ndarray, layers: int) -> np.ndarray:
    """Remove `bright` mask pixels exposed to the background, one layer per step.

    Outside the frame counts as inside the mask.
    """
    out = mask.copy()
    rows, cols = mask.shape
    for _ in range(layers):
        exposed = []
        for y, x in zip(*np.nonzero(out & bright), strict=True):
            near = [
                out[v, u] if 0 <= v < rows and 0 <= u < cols else True
                for v, u in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1))
            ]
            if not all(near):
                exposed.append((y, x))
        if not exposed:
            break
        for y, x in exposed:
            out[y, x] = False
    return out


def oracle_restore_outline(mask: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """§2.4 outline restore with explicit loops over the candidate pixels."""
    labels, _ = ndi.label(mask)
    rows, cols = mask.shape
    out = mask.copy()
    for y in range(rows):
        for x in range(cols):
            if mask[y, x] or not allowed[y, x]:
                continue
            near = [
                labels[v, u]
                for v, u in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1))
                if 0 <= v < rows and 0 <= u < cols
            ]
            if not any(near):
                continue
            within = {
                int(labels[v, u])
                for v in range(y - 2, y + 3)
                for u in range(x - 2, x + 3)
                if 0 <= v < rows
                and 0 <= u < cols
                and 0 < abs(v - y) + abs(u - x) <= 2
                and labels[v, u] > 0
            }
            out[y, x] = len(within) == 1
    return out


def oracle_restore_junctions(
    mask: np.ndarray, allowed: np.ndarray, image: np.ndarray, reach: int
) -> np.ndarray:
    """§2.4 junction restore with explicit loops over pixels."""
    labels, _ = ndi.label(mask)
    rows, cols = mask.shape
    gap = np.zeros_like(mask)
    for y in range(rows):
        for x in range(cols):
            if mask[y, x] or not allowed[y, x]:
                continue
            square = labels[
                max(0, y - reach) : y + reach + 1, max(0, x - reach) : x + reach + 1
            ]
            gap[y, x] = len(set(square[square > 0].tolist())) >= 2
    grown = labels.copy()

    def neighbours(y: int, x: int) -> list[tuple[int, int]]:
        return [
            (v, u)
            for v, u in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1))
            if 0 <= v < rows and 0 <= u < cols
        ]

    for _ in range(reach):
        claims = {}
        for y, x in zip(*np.nonzero(gap & (grown == 0)), strict=True):
            near = {int(grown[v, u]) for v, u in neighbours(y, x) if grown[v, u]}
            if len(near) == 1:
                claims[(y, x)] = near.pop()
        for (y, x), label in claims.items():
            lose = False
            for v, u in neighbours(y, x):
                other = claims.get((v, u))
                if other is not None and other != label:
                    a, b = image[y, x], image[v, u]
                    lose |= bool(a > b or (a == b and label > other))
            if not lose:
                grown[y, x] = label
    return grown > 0


def oracle_octagonal(own: np.ndarray) -> np.ndarray:
    """Mean of the city-block and chessboard distances to the nearest background
    pixel of the 1-px padded crop, by brute force."""
    padded = np.pad(own, 1)
    by, bx = np.nonzero(~padded)
    out = np.zeros(padded.shape)
    for y, x in zip(*np.nonzero(padded), strict=True):
        dy, dx = np.abs(by - y), np.abs(bx - x)
        out[y, x] = (int((dy + dx).min()) + int(np.maximum(dy, dx).min())) / 2
    return out


def oracle_neck_split(own: np.ndarray, ratio: float) -> np.ndarray | None:
    """§2.4 neck split of one component, with explicit loops."""
    d = oracle_octagonal(own)
    padded = np.pad(own, 1)
    rows, cols = padded.shape
    peak = np.zeros(padded.shape, bool)
    for y, x in zip(*np.nonzero(padded), strict=True):
        around = [
            d[v, u] if 0 <= v < rows and 0 <= u < cols else 0.0
            for v in (y - 1, y, y + 1)
            for u in (x - 1, x, x + 1)
        ]
        peak[y, x] = d[y, x] >= 2.0 and d[y, x] >= max(around)
    markers, count = ndi.label(peak, structure=SQUARE)
    if count < 2:
        return None
    centres = []
    for i in range(1, count + 1):
        ys, xs = np.nonzero(markers == i)
        centres.append((sum(ys) / len(ys), sum(xs) / len(xs), d[ys[0], xs[0]]))
    regions = np.zeros(padded.shape, int)
    for y, x in zip(*np.nonzero(padded), strict=True):
        powers = [
            ((y - cy) * (y - cy) + (x - cx) * (x - cx)) - h * h for cy, cx, h in centres
        ]
        regions[y, x] = 1 + powers.index(min(powers))
    top = {i: max(d[regions == i], default=0.0) for i in range(1, count + 1)}
    saddle: dict[tuple[int, int], float] = {}
    for y in range(rows):
        for x in range(cols):
            for v, u in ((y + 1, x), (y, x + 1)):
                if v < rows and u < cols:
                    a, b = regions[y, x], regions[v, u]
                    if a and b and a != b:
                        pair = (min(a, b), max(a, b))
                        value = min(d[y, x], d[v, u])
                        saddle[pair] = max(saddle.get(pair, -math.inf), value)
    group = {i: i for i in range(1, count + 1)}

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    for (a, b), value in sorted(saddle.items(), key=lambda kv: (-kv[1], kv[0])):
        ra, rb = root(a), root(b)
        if ra != rb and value >= ratio * min(top[ra], top[rb]):
            low, high = min(ra, rb), max(ra, rb)
            group[high] = low
            top[low] = max(top[ra], top[rb])
    merged = np.zeros(padded.shape, int)
    for i in range(1, count + 1):
        merged[regions == i] = root(i)
    if len(set(np.unique(merged)) - {0}) < 2:
        return None
    return oracle_separate(merged)[1:-1, 1:-1]


def oracle_split_and_filter(
    mask: np.ndarray, *, neck_ratio: float | None, min_area: int, keep_edge: bool
) -> np.ndarray:
    """Neck split of every component, then the minimum area, step by step."""
    out = mask.copy()
    if neck_ratio is not None:
        labels, count = ndi.label(mask)
        for i in range(1, count + 1):
            ys, xs = np.nonzero(labels == i)
            box = np.s_[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
            own = labels[box] == i
            area = own.sum()
            # The frame edge counts as outside.
            perimeter = np.count_nonzero(
                (labels == i) & ~ndi.binary_erosion(labels == i, CROSS, border_value=0)
            )
            if perimeter * perimeter <= 4 * math.pi * 0.96 * area:
                continue
            parts = oracle_neck_split(own, neck_ratio)
            if parts is not None:
                out[box][own] = parts[own]
    if min_area:
        labels, count = ndi.label(out)
        for i in range(1, count + 1):
            component = labels == i
            at_edge = (
                component[0].any()
                or component[-1].any()
                or component[:, 0].any()
                or component[:, -1].any()
            )
            if component.sum() < min_area and not (keep_edge and at_edge):
                out[component] = False
    return out


def oracle_segment(frame: np.ndarray, **options: object) -> np.ndarray:
    """§2.3 + §2.4 (without watershed) from slow step-by-step references."""
    opts: dict[str, object] = {
        "window": 3,
        "bins": 200,
        "mode_smooth_bins": 11,
        "mode_peak_fraction": 0.25,
        "sigma_estimator": "lower_std",
        "threshold_k": 1.25,
        "threshold_low_k": None,
        "fill_holes": True,
        "fill_border": "mirror",
        "fill_mirror_px": 64,
        "halo_trim": True,
        "halo_k": 1.5,
        "halo_block_px": 32,
        "halo_level": "edge",
        "edge_offset_px": 0.5,
        "halo_edge_k": 2.0,
        "junction_px": 3,
        "junction_k": 6.0,
        "fill_trim_holes": True,
        "fill_trim_holes_solidity": 0.9,
        "open_size": 3,
        "open_iterations": 2,
        "close_size": 3,
        "close_iterations": 0,
        "refill_holes": True,
        "shrink_px": 0,
        "split": "neck",
        "split_neck_ratio": 0.7,
        "min_area_px": 100,
        "min_area_keep_edge": True,
        "min_edge_fraction": 0.4,
    }
    opts.update(options)
    keys = (
        "window",
        "bins",
        "mode_smooth_bins",
        "mode_peak_fraction",
        "sigma_estimator",
    )
    fg, stats = oracle_threshold(
        frame,
        threshold_k=opts["threshold_k"],  # type: ignore[arg-type]
        threshold_low_k=opts["threshold_low_k"],  # type: ignore[arg-type]
        **{k: opts[k] for k in keys},
    )
    if math.isnan(stats["mode"]):
        return fg
    window = int(opts["window"])  # type: ignore[call-overload]
    n = window * window
    strong, _ = oracle_threshold(
        frame,
        threshold_k=opts["threshold_k"],  # type: ignore[arg-type]
        **{k: opts[k] for k in keys},
    )
    mirror = int(opts["fill_mirror_px"]) if opts["fill_border"] == "mirror" else 0  # type: ignore[call-overload]

    def fill(mask: np.ndarray) -> np.ndarray:
        return (
            oracle_fill_mirror(mask, mirror) if mirror else ndi.binary_fill_holes(mask)
        )

    if opts["fill_holes"]:
        fg = fill(fg)
    outline = None
    junction = None
    edge_level = None
    level = None
    if opts["halo_trim"]:
        margin = n * float(opts["halo_k"]) * math.exp(stats["mode"])  # type: ignore[arg-type]
        s1 = oracle_window_sum(frame, window)
        filled = fg
        block = int(opts["halo_block_px"])  # type: ignore[call-overload]
        # Windows of one value (saturated, clipped) are not background either.
        half = window // 2
        rows, cols = frame.shape
        padded = frame[np.ix_(reflect_index(rows, half), reflect_index(cols, half))]
        spread = ndi.generic_filter(padded, np.ptp, size=window, mode="constant")
        flat = spread[half : half + rows, half : half + cols] == 0
        fg, level = oracle_halo_trim(fg, strong | flat, s1, margin, block)
        edge_extra = None
        if level is not None and opts["halo_level"] == "edge":
            grid = oracle_grid(strong | flat, s1, block)
            assert grid is not None
            rows, cols = frame.shape
            background = oracle_bilinear(grid, rows, cols, block)
            low = float(frame.min())
            rho = oracle_edge_ratio(
                s1,
                filled,
                background,
                n,
                low,
                float(opts["edge_offset_px"]),  # type: ignore[arg-type]
            )
            if not math.isnan(rho):
                slack = rho + 0.03
                cap = (1.0 + slack) * grid + slack * n * low
                capped = oracle_bilinear(
                    np.minimum(grid + margin, cap), rows, cols, block
                )
                fg = filled & (s1 <= capped)
                level = oracle_bilinear(
                    (1.0 + rho) * grid + rho * n * low, rows, cols, block
                )
                edge_level = level
                edge_extra = 0.0
        if level is not None and opts["halo_edge_k"] is not None:
            edge_k = float(opts["halo_edge_k"])  # type: ignore[arg-type]
            halo_k = float(opts["halo_k"])  # type: ignore[arg-type]
            edge = level + (
                n * (edge_k - halo_k) * math.exp(stats["mode"])
                if edge_extra is None
                else edge_extra
            )
            pixel = (frame.astype(np.float64) - float(frame.min())) * n
            outline = filled & (pixel <= edge)
        if level is not None and int(opts["junction_px"]) > 0:  # type: ignore[call-overload]
            junction = filled
            if opts["junction_k"] is not None:
                junction_k = float(opts["junction_k"])  # type: ignore[arg-type]
                halo_k = float(opts["halo_k"])  # type: ignore[arg-type]
                window_level = level + n * (junction_k - halo_k) * math.exp(
                    stats["mode"]
                )
                junction = filled & (s1 <= window_level)
    trimmed = bool(opts["halo_trim"]) and level is not None

    def opening(mask: np.ndarray) -> np.ndarray:
        if not opts["open_iterations"]:
            return mask
        mask = oracle_erode(mask, opts["open_size"], opts["open_iterations"])  # type: ignore[arg-type]
        return oracle_dilate(mask, opts["open_size"], opts["open_iterations"])  # type: ignore[arg-type]

    opened = opening(fg)
    out = opened
    if opts["close_iterations"]:
        out = oracle_dilate(out, opts["close_size"], opts["close_iterations"])  # type: ignore[arg-type]
        out = oracle_erode(out, opts["close_size"], opts["close_iterations"])  # type: ignore[arg-type]
    if opts["refill_holes"]:
        out = ndi.binary_fill_holes(out)  # the frame edge is open for the refill
    if trimmed and opts["fill_trim_holes"]:
        # the trim's holes that the opening opened: the cells of the opening
        # of the trimmed mask with its holes filled that hold one, when convex
        # (regionprops' solidity), holes filled, are added
        holes = ndi.binary_fill_holes(fg) & ~fg
        lost = holes & ~ndi.binary_fill_holes(opened)
        labels, _ = ndi.label(opening(fg | holes))
        for region in measure.regionprops(labels):
            cell = labels == region.label
            if (cell & lost).any() and region.solidity >= float(
                opts["fill_trim_holes_solidity"]  # type: ignore[arg-type]
            ):
                out = out | ndi.binary_fill_holes(cell)
    fg = out
    if edge_level is not None:
        band = fg & ~oracle_erode(fg, 7, 1)
        fg = oracle_peel(fg, band & (s1 > edge_level), 3)
    if opts["shrink_px"]:
        fg = oracle_erode(fg, 2 * opts["shrink_px"] + 1, 1)  # type: ignore[operator]
    fg = oracle_split_and_filter(
        fg,
        neck_ratio=opts["split_neck_ratio"] if opts["split"] == "neck" else None,  # type: ignore[arg-type]
        min_area=int(opts["min_area_px"]),  # type: ignore[call-overload]
        keep_edge=bool(opts["min_area_keep_edge"]),
    )
    if outline is not None:
        fg = oracle_restore_outline(fg, outline)
    if junction is not None:
        fg = oracle_restore_junctions(fg, junction, frame, int(opts["junction_px"]))  # type: ignore[call-overload]
    return oracle_drop_edgeless(fg, strong, float(opts["min_edge_fraction"]))  # type: ignore[arg-type]


def oracle_drop_edgeless(
    fg: np.ndarray, textured: np.ndarray, fraction: float
) -> np.ndarray:
    """The edge test of §2.4, pixel by pixel.

    A pixel of an object is an outline pixel when one of its 8 neighbours in
    the frame is background; the object goes when fewer than `fraction` of its
    outline pixels are textured.
    """
    if fraction <= 0:
        return fg
    labels, count = ndi.label(fg)
    out = fg.copy()
    for i in range(1, count + 1):
        band = textured_band = 0
        for y, x in zip(*np.nonzero(labels == i), strict=True):
            window = fg[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]
            if not window.all():
                band += 1
                textured_band += bool(textured[y, x])
        if textured_band < fraction * band:
            out[labels == i] = False
    return out


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


def disk(shape: tuple[int, int], cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return np.hypot(yy - cy, xx - cx) < r


# --------------------------------------------------------------------------------------
# Hand-computed examples
# --------------------------------------------------------------------------------------
#
# A 7x7 frame of zeros with a 3x3 block of ones in the middle. With window 3, a
# pixel whose window holds c ones has S1 = S2 = c and N = c·(9 - c): 0 outside
# the ring around the block and at the block centre (c = 9), 8 (c = 1, 4 px),
# 14 (c = 2, 8 px), 18 (c = 3 or 6, 8 px) and 20 (c = 4, 4 px).

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
# A 2x2 block of ones at rows and columns 1-2: the statistics use the even rows
# and columns, where N is 8 at (0, 0), 14 at (0, 2) and (2, 0), 20 at (2, 2)
# and 0 elsewhere.
CORNER = np.zeros((7, 7), np.uint16)
CORNER[1:3, 1:3] = 1
CORNER_N = np.array(
    [
        [8, 14, 14, 8, 0, 0, 0],
        [14, 20, 20, 14, 0, 0, 0],
        [14, 20, 20, 14, 0, 0, 0],
        [8, 14, 14, 8, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0],
    ]
)


def log_std(n: float) -> float:
    return 0.5 * math.log(n) - math.log(9)


@pytest.mark.parametrize("dtype", DTYPES)
def test_block_numerator_by_hand(dtype: type) -> None:
    np.testing.assert_array_equal(
        seg_texture._variance_numerator(BLOCK.astype(dtype), 3), BLOCK_N
    )
    np.testing.assert_array_equal(
        seg_texture._variance_numerator(CORNER.astype(dtype), 3), CORNER_N
    )


def test_block_statistics_by_hand() -> None:
    # All 24 ring values, 2 bins: bin 0 holds N = 8 (4 values), bin 1 holds
    # N = 14, 18, 20 (20 values), so mode = (lo + 3·hi)/4, between log-STD(14)
    # and log-STD(18); the values at or below it are 4 x log-STD(8) and
    # 8 x log-STD(14).
    values = np.array([log_std(v) for v in BLOCK_N[BLOCK_N > 0]])
    lo, hi = log_std(8), log_std(20)
    mode = seg_threshold._histogram_mode(values, 2, lo, hi)
    assert mode == pytest.approx((lo + 3 * hi) / 4, rel=1e-14)
    assert seg_threshold._lower_sigma(values, mode, "lower_std") == pytest.approx(
        math.sqrt(2) / 3 * (log_std(14) - log_std(8)), rel=1e-12
    )
    expected_rms = math.sqrt(
        (4 * (log_std(8) - mode) ** 2 + 8 * (log_std(14) - mode) ** 2) / 12
    )
    assert seg_threshold._lower_sigma(values, mode, "lower_rms") == pytest.approx(
        expected_rms, rel=1e-12
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_corner_threshold_by_hand(dtype: type) -> None:
    # Sampled values 8, 14, 14, 20; with 2 bins the edge between them is
    # (lo + hi)/2 < log-STD(14), so bin 1 holds 14, 14, 20 and the mode is
    # (lo + 3·hi)/4. At or below it: 8, 14, 14, whose std is sqrt(2)/3 times
    # log-STD(14) - log-STD(8). With k = 0 the threshold is the mode, i.e.
    # N > 8^(1/4)·20^(3/4) = 15.9: only the four N = 20 pixels (the block).
    frame = CORNER.astype(dtype)
    result = segment_log_std(frame, bins=2, mode_smooth_bins=1, threshold_k=0.0, **RAW)
    lo, hi = log_std(8), log_std(20)
    assert result.lo == pytest.approx(lo, rel=1e-14)
    assert result.hi == pytest.approx(hi, rel=1e-14)
    assert result.mode == pytest.approx((lo + 3 * hi) / 4, rel=1e-14)
    assert result.sigma == pytest.approx(
        math.sqrt(2) / 3 * (log_std(14) - log_std(8)), rel=1e-12
    )
    assert result.threshold == result.mode
    assert math.isnan(result.threshold_low)
    np.testing.assert_array_equal(result.mask, CORNER.astype(bool))
    assert result.foreground_fraction == pytest.approx(4 / 49)
    # k = 0.5: threshold = mode + 0.066, N > 18.15: still only N = 20.
    sigma = math.sqrt(2) / 3 * (log_std(14) - log_std(8))
    half = segment_log_std(frame, bins=2, mode_smooth_bins=1, threshold_k=0.5, **RAW)
    assert half.threshold == pytest.approx((lo + 3 * hi) / 4 + 0.5 * sigma)
    assert 18 < 81 * math.exp(2 * half.threshold) < 20
    np.testing.assert_array_equal(half.mask, CORNER.astype(bool))
    # k = 1: N > 20.71, above every value.
    one = segment_log_std(frame, bins=2, mode_smooth_bins=1, threshold_k=1.0, **RAW)
    assert one.threshold == pytest.approx((lo + 3 * hi) / 4 + sigma)
    assert one.threshold > one.hi
    assert not one.mask.any()


def test_corner_hysteresis_by_hand() -> None:
    # High threshold k = 0.5 (N > 18.15) seeds the block; the low one, k = 0
    # (N > 15.9), adds nothing around it. With k = 1 (N > 20.7) nothing is
    # seeded and the low threshold keeps nothing either.
    result = segment_log_std(
        CORNER, bins=2, mode_smooth_bins=1, threshold_k=0.5, threshold_low_k=0.0, **RAW
    )
    assert result.threshold_low == result.mode
    np.testing.assert_array_equal(result.mask, CORNER.astype(bool))
    none = segment_log_std(
        CORNER, bins=2, mode_smooth_bins=1, threshold_k=1.0, threshold_low_k=0.0, **RAW
    )
    assert not none.mask.any()


def test_histogram_tie_goes_to_lowest_bin() -> None:
    # Two bins with 2 values each: the mode is the centre of bin 0.
    values = np.array([0.0, 0.1, 0.9, 1.0])
    assert seg_threshold._histogram_mode(values, 2, 0.0, 1.0) == 0.25
    # The last bin is closed: hi counts in it.
    assert (
        seg_threshold._histogram_mode(np.array([0.0, 1.0, 1.0]), 4, 0.0, 1.0) == 0.875
    )


def test_histogram_smoothing_by_hand() -> None:
    # Counts per bin (5 bins of 0.2 over [0, 1]): 3, 0, 2, 2, 1. The fullest
    # bin is 0; summed over 3 bins (0 beyond the ends): 3, 5, 4, 5, 3, so bin 1
    # (the first of the two maxima); over 5 bins: 5, 7, 8, 5, 5, so bin 2.
    values = np.array([0.05, 0.1, 0.15, 0.45, 0.5, 0.65, 0.7, 1.0])
    assert seg_threshold._histogram_mode(values, 5, 0.0, 1.0) == pytest.approx(0.1)
    assert seg_threshold._histogram_mode(values, 5, 0.0, 1.0, 3) == pytest.approx(0.3)
    assert seg_threshold._histogram_mode(values, 5, 0.0, 1.0, 5) == pytest.approx(0.5)
    # Wider than the histogram: every sum is the total, the first bin wins.
    assert seg_threshold._histogram_mode(values, 5, 0.0, 1.0, 11) == pytest.approx(0.1)


def test_histogram_range_too_narrow_for_bins() -> None:
    hi = np.nextafter(1.0, 2.0)
    assert seg_threshold._histogram_mode(np.array([1.0, hi]), 200, 1.0, hi) is None
    assert seg_threshold._histogram_mode(np.array([1.0, 1.0]), 200, 1.0, 1.0) is None


def _values_for_counts(counts: list[int]) -> np.ndarray:
    """Values in [0, 1] whose histogram of len(counts) bins is `counts`."""
    bins = len(counts)
    centres = (np.arange(bins) + 0.5) / bins
    values = np.repeat(centres, counts)
    return np.concatenate([[0.0, 1.0], values])  # lo = 0, hi = 1


def test_lowest_peak_by_hand() -> None:
    # 10 bins over [0, 1] (the two range values add 1 to bins 0 and 9).
    # Counts 0, 100, 30, 0, 0, 0, 150, 40, 0, 0: the fullest bin is 6; bin 1
    # holds 100 >= 0.25 x 150 and rises 100 above the empty valley between
    # them (> 3 sqrt(100)): it is the mode. With fraction 0.7 (105 > 100) or 1
    # it is not.
    values = _values_for_counts([0, 100, 30, 0, 0, 0, 150, 40, 0, 0])
    mode = seg_threshold._histogram_mode
    assert mode(values, 10, 0.0, 1.0, 1, 0.25) == pytest.approx(0.15)
    assert mode(values, 10, 0.0, 1.0, 1, 0.7) == pytest.approx(0.65)
    assert mode(values, 10, 0.0, 1.0, 1, 1.0) == pytest.approx(0.65)
    assert mode(values, 10, 0.0, 1.0) == pytest.approx(0.65)  # the default: 1


def test_lowest_peak_needs_a_valley_beyond_the_count_noise() -> None:
    # Bin 2 (400) against the fullest bin 4 (500) across a valley of 300:
    # 100 > 3 sqrt(700) = 79, a separate peak. With a valley of 350:
    # 50 < 3 sqrt(750) = 82, a wiggle on one broad peak.
    mode = seg_threshold._histogram_mode
    deep = _values_for_counts([0, 200, 400, 300, 500, 200, 0, 0])
    shallow = _values_for_counts([0, 200, 400, 350, 500, 200, 0, 0])
    assert mode(deep, 8, 0.0, 1.0, 1, 0.25) == pytest.approx(2.5 / 8)
    assert mode(shallow, 8, 0.0, 1.0, 1, 0.25) == pytest.approx(4.5 / 8)
    # The first bin of a plateau is the peak; the lowest of two peaks wins.
    plateau = _values_for_counts([0, 300, 300, 0, 200, 0, 500, 0])
    assert mode(plateau, 8, 0.0, 1.0, 1, 0.25) == pytest.approx(1.5 / 8)
    two = _values_for_counts([200, 0, 300, 0, 500, 0, 0, 0])
    assert mode(two, 8, 0.0, 1.0, 1, 0.25) == pytest.approx(0.5 / 8)
    assert mode(two, 8, 0.0, 1.0, 1, 0.5) == pytest.approx(2.5 / 8)


def test_lowest_peak_matches_the_oracle() -> None:
    # Random mixtures of two or three normal peaks, smoothed or not: the
    # vectorised rule and the bin-by-bin oracle pick the same bin.
    rng = np.random.default_rng(5)
    for trial in range(300):
        k = int(rng.integers(2, 4))
        parts = [
            rng.normal(
                rng.uniform(0, 4), rng.uniform(0.1, 0.6), int(rng.integers(50, 3000))
            )
            for _ in range(k)
        ]
        values = np.concatenate(parts)
        lo, hi = float(values.min()), float(values.max())
        bins = int(rng.choice([20, 50, 200]))
        smooth = int(rng.choice([1, 5, 11]))
        fraction = float(rng.choice([0.1, 0.25, 0.6, 1.0]))
        counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
        half = smooth // 2
        summed = [
            int(sum(counts[max(0, i - half) : i + half + 1])) for i in range(bins)
        ]
        i = oracle_peak(summed, fraction)
        expected = float((edges[i] + edges[i + 1]) / 2)
        got = seg_threshold._histogram_mode(values, bins, lo, hi, smooth, fraction)
        assert got == expected, (trial, summed, fraction)


def test_cells_that_outnumber_the_background_keep_the_background_mode() -> None:
    # Cells with textured interiors (iid ±400 ADU on top of the light) cover
    # 64 % of the frame: their log-STD peak is the fullest bin. The fullest bin
    # as the mode puts the threshold inside the cells' texture and keeps a
    # fraction of them; the lowest peak is the background noise, and the
    # threshold above it keeps every cell pixel and few background ones.
    rng = np.random.default_rng(3)
    frame = rng.poisson(1000.0, (160, 160)).astype(np.float64)
    cells = np.zeros(frame.shape, bool)
    for y in range(0, 160, 40):
        for x in range(0, 160, 40):
            cells[y + 4 : y + 36, x + 4 : x + 36] = True
    frame[cells] += rng.uniform(-400.0, 400.0, int(cells.sum()))
    frame = np.rint(np.clip(frame, 0, None)).astype(np.uint16)
    inner = ndi.binary_erosion(cells, iterations=2)
    outer = ~ndi.binary_dilation(cells, iterations=2)
    new = segment_log_std(frame, **RAW)
    old = segment_log_std(frame, mode_peak_fraction=1.0, **RAW)
    assert old.mode > new.mode + 0.5
    assert new.mask[inner].mean() > 0.99
    assert new.mask[outer].mean() < 0.25
    assert old.mask[inner].mean() < 0.5
    np.testing.assert_array_equal(new.mask, oracle_threshold(frame)[0])


def test_smoothed_mode_is_stable_under_noise() -> None:
    # The fullest single bin of a broad peak wanders with the count noise; the
    # summed counts find its centre (here 0) to within a few bins.
    rng = np.random.default_rng(0)
    single, smooth = [], []
    for _ in range(40):
        values = np.concatenate([rng.normal(0.0, 0.25, 2000), rng.uniform(-2, 6, 40)])
        lo, hi = float(values.min()), float(values.max())
        single.append(seg_threshold._histogram_mode(values, 200, lo, hi, 1))
        smooth.append(seg_threshold._histogram_mode(values, 200, lo, hi, 11))
    assert np.std(smooth) < 0.5 * np.std(single)
    assert abs(np.mean(smooth)) < 0.05


# --------------------------------------------------------------------------------------
# Oracles: box sums, log-STD, statistics, thresholds
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (3, 2), (3, 3), (7, 7), (13, 17)])
@pytest.mark.parametrize("window", [3, 5, 7, 9, 15, 37])
def test_box_sum_matches_correlate1d(shape: tuple[int, int], window: int) -> None:
    rng = np.random.default_rng(window)
    frame = rng.integers(0, 1000, shape).astype(np.int64)
    ones = np.ones(window)
    expected = ndi.correlate1d(frame.astype(np.float64), ones, 0, mode="reflect")
    expected = ndi.correlate1d(expected, ones, 1, mode="reflect")
    np.testing.assert_array_equal(seg_texture._box_sum(frame, window), expected)


@pytest.mark.parametrize("shape", [(3, 3), (4, 9), (30, 41)])
def test_box_sum3_is_bit_identical_to_run_reduce(shape: tuple[int, int]) -> None:
    # The window-3 fast path adds in the same order as the general path.
    rng = np.random.default_rng(shape[1])
    frame = rng.random(shape) * 1e6
    padded = np.pad(frame, 1, mode="symmetric")
    general = morphology.run_reduce(
        morphology.run_reduce(padded, 3, 0, np.add), 3, 1, np.add
    )
    assert seg_texture._box_sum3(frame).tobytes() == general.tobytes()


def test_log_std_is_bit_identical() -> None:
    rng = np.random.default_rng(1)
    numerator = rng.integers(1, 2**40, 1000)
    expected = 0.5 * np.log(numerator.astype(np.float64)) - np.log(np.float64(9))
    assert seg_texture._log_std(numerator, 9).tobytes() == expected.tobytes()


@pytest.mark.parametrize("estimator", ["lower_std", "lower_rms"])
def test_lower_sigma_is_bit_identical_to_numpy(estimator: str) -> None:
    rng = np.random.default_rng(2)
    for size in (3, 4, 1000, 100001):
        values = rng.normal(3.0, 0.4, size)
        mode = float(np.median(values))
        low = values[values <= mode]
        if low.size < 2:
            continue
        if estimator == "lower_std":
            expected = float(np.std(low))
        else:
            expected = float(np.sqrt(np.mean((low - mode) ** 2)))
        assert seg_threshold._lower_sigma(values, mode, estimator) == expected


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
    numerator, s1 = seg_texture._window_sums(frame, window, keep_s1=True)
    assert numerator.dtype.kind == "i"  # exact path
    np.testing.assert_array_equal(numerator, expected)
    np.testing.assert_array_equal(s1, oracle_window_sum(values, window))


@pytest.mark.parametrize("dtype", [np.uint16, np.int64])
def test_numerator_extreme_range_is_exact(dtype: type) -> None:
    # 0 and 65535 next to each other: the largest N a uint16 frame can reach.
    frame = np.zeros((6, 6), dtype)
    frame[::2, 1::2] = 65535
    frame[1::2, ::2] = 65535
    numerator = seg_texture._variance_numerator(frame, 37)
    np.testing.assert_array_equal(numerator, oracle_numerator(frame, 37))


def test_numerator_huge_range_uses_float64() -> None:
    frame = np.array([[0, 2**40], [5, 2**41]], dtype=np.int64)
    numerator, s1 = seg_texture._window_sums(frame, 3, keep_s1=True)
    assert numerator.dtype == np.float64
    np.testing.assert_allclose(numerator, oracle_numerator(frame, 3), rtol=1e-12)
    np.testing.assert_allclose(s1, oracle_window_sum(frame, 3), rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_threshold_matches_oracle(seed: int, dtype: type) -> None:
    rng = np.random.default_rng(seed)
    frame = rng.poisson(100, (40, 50))
    frame[10:25, 12:30] += rng.poisson(80, (15, 18))
    frame[30:, :8] = 7  # flat region: excluded from the histogram
    frame = frame.astype(dtype)
    expected, stats = oracle_threshold(frame, threshold_k=1.0, mode_smooth_bins=5)
    result = segment_log_std(frame, threshold_k=1.0, mode_smooth_bins=5, **RAW)
    np.testing.assert_array_equal(result.mask, expected)
    for key, value in stats.items():
        assert getattr(result, key) == value or (
            math.isnan(value) and math.isnan(getattr(result, key))
        ), key
    assert expected.any()


@pytest.mark.parametrize("estimator", ["lower_std", "lower_rms"])
@pytest.mark.parametrize(("window", "bins"), [(3, 200), (5, 50), (9, 7), (37, 1)])
@pytest.mark.parametrize("smooth", [1, 11])
def test_threshold_options_match_oracle(
    estimator: str, window: int, bins: int, smooth: int
) -> None:
    rng = np.random.default_rng(window)
    frame = rng.poisson(500, (48, 40)).astype(np.uint16)
    frame[5:20, 5:30] //= 2
    options = {
        "window": window,
        "bins": bins,
        "mode_smooth_bins": smooth,
        "sigma_estimator": estimator,
    }
    for k, k_low in ((0.5, None), (1.5, 0.5), (1.0, 1.0)):
        expected, stats = oracle_threshold(
            frame, threshold_k=k, threshold_low_k=k_low, **options
        )
        result = segment_log_std(
            frame, threshold_k=k, threshold_low_k=k_low, **options, **RAW
        )
        np.testing.assert_array_equal(result.mask, expected)
        assert result.sigma == stats["sigma"]
        assert result.threshold == stats["threshold"]


def test_hysteresis_matches_search() -> None:
    rng = np.random.default_rng(4)
    for density in (0.3, 0.5, 0.7):
        weak = rng.random((40, 50)) < density
        strong = weak & (rng.random((40, 50)) < 0.05)
        np.testing.assert_array_equal(
            seg_masks._hysteresis(strong, weak), oracle_hysteresis(strong, weak)
        )
    assert not seg_masks._hysteresis(
        np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    ).any()


def test_hysteresis_uses_4_connectivity() -> None:
    weak = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0]], bool)
    strong = np.zeros_like(weak)
    strong[0, 0] = True
    # (1, 2) touches (0, 1) only diagonally: not reached.
    expected = np.array([[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(seg_masks._hysteresis(strong, weak), expected)


def test_lookup_matches_fancy_indexing() -> None:
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 50, (30, 40)).astype(np.int32)
    for true in (0, 1, 2, 3, 40):
        table = np.zeros(50, bool)
        table[rng.choice(50, true, replace=False)] = True
        out = seg_masks._lookup(table, labels)
        assert out.dtype == np.bool_
        np.testing.assert_array_equal(out, table[labels])


# --------------------------------------------------------------------------------------
# Morphology and hole filling
# --------------------------------------------------------------------------------------

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
            morphology.erode_square(mask, size, iterations),
            oracle_erode(mask, size, iterations),
        )
        np.testing.assert_array_equal(
            morphology.dilate_square(mask, size, iterations),
            oracle_dilate(mask, size, iterations),
        )


def test_erosion_border_keeps_edge_objects() -> None:
    # Outside counts as foreground for erosion and background for dilation:
    # an object cut by the frame edge is neither eaten nor grown by an opening.
    mask = np.zeros((9, 9), bool)
    mask[:5, :5] = True
    eroded = morphology.erode_square(mask, 3, 1)
    expected = np.zeros((9, 9), bool)
    expected[:4, :4] = True
    np.testing.assert_array_equal(eroded, expected)
    np.testing.assert_array_equal(morphology.dilate_square(eroded, 3, 1), mask)
    full = np.ones((4, 4), bool)
    np.testing.assert_array_equal(morphology.erode_square(full, 5, 3), full)
    assert not morphology.dilate_square(np.zeros((4, 4), bool), 5, 3).any()


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (5, 7), (20, 20), (33, 47)])
@pytest.mark.parametrize("density", [0.2, 0.5, 0.6, 0.8])
def test_fill_holes_matches_oracles(shape: tuple[int, int], density: float) -> None:
    rng = np.random.default_rng(int(density * 10) + shape[0])
    for _ in range(3):
        mask = rng.random(shape) < density
        filled = seg_masks._fill_holes(mask)
        np.testing.assert_array_equal(filled, oracle_fill_holes(mask))
        np.testing.assert_array_equal(filled, ndi.binary_fill_holes(mask))


def test_fill_holes_with_more_labels_than_uint16() -> None:
    # 70 000+ one-pixel holes and a few open ones: the labels need int32
    mask = np.ones((600, 520), bool)
    mask[1:-1:2, 1:-1:2] = False
    mask[0, ::7] = False
    assert np.count_nonzero(~mask) > 65535
    filled = seg_masks._fill_holes(mask)
    np.testing.assert_array_equal(filled, ndi.binary_fill_holes(mask))
    assert not filled.all()


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (8, 8), (20, 20), (33, 47), (64, 9)])
@pytest.mark.parametrize("density", [0.3, 0.5, 0.6])
@pytest.mark.parametrize("mirror_px", [1, 3, 64])
def test_mirror_fill_matches_oracle(
    shape: tuple[int, int], density: float, mirror_px: int
) -> None:
    rng = np.random.default_rng(int(density * 10) + shape[0] + mirror_px)
    for _ in range(3):
        mask = rng.random(shape) < density
        np.testing.assert_array_equal(
            seg_masks._fill_holes(mask, mirror_px), oracle_fill_mirror(mask, mirror_px)
        )


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
    np.testing.assert_array_equal(seg_masks._fill_holes(mask), expected)
    # A background region touching the edge is not a hole.
    edge = np.ones((4, 4), bool)
    edge[1:3, 0] = False
    np.testing.assert_array_equal(seg_masks._fill_holes(edge), edge)


def test_mirror_fill_closes_cut_ring_by_hand() -> None:
    # A ring (disk boundary) cut by the left edge: its inside touches column 0,
    # so the plain fill leaves it open; mirrored about the edge the ring closes.
    # The inside reaches column 9; with p = 12 the core starts at column 12.
    ring = disk((48, 48), 24, 3, 9) & ~disk((48, 48), 24, 3, 7)
    inside = disk((48, 48), 24, 3, 7)
    assert not (seg_masks._fill_holes(ring) & inside).any()
    np.testing.assert_array_equal(seg_masks._fill_holes(ring, 12), ring | inside)
    # With p = 5 the inside reaches into the core (columns from 5 on): the
    # mirror must not close a region deeper than p, and it stays open.
    np.testing.assert_array_equal(seg_masks._fill_holes(ring, 5), ring)


def test_mirror_fill_keeps_large_open_background() -> None:
    # Two vertical walls from edge to edge: with mirrored top and bottom edges
    # the band between them is enclosed, but it spans the whole frame height.
    mask = np.zeros((32, 32), bool)
    mask[:, 10] = mask[:, 20] = True
    np.testing.assert_array_equal(seg_masks._fill_holes(mask, 64), mask)


# --------------------------------------------------------------------------------------
# Halo trim
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("radius", [1, 2, 3, 5])
def test_dilate_sampled_matches_dilation(radius: int) -> None:
    rng = np.random.default_rng(radius)
    for shape in [(1, 1), (2, 3), (7, 9), (8, 8), (33, 47), (100, 3)]:
        for density in (0.01, 0.1, 0.5):
            mask = rng.random(shape) < density
            expected = oracle_dilate(mask, 2 * radius + 1, 1)[::2, ::2]
            np.testing.assert_array_equal(
                seg_halo._dilate_sampled(mask, radius), expected
            )


def test_background_level_matches_loops() -> None:
    rng = np.random.default_rng(6)
    for shape, block in (((37, 50), 8), ((64, 64), 32), ((20, 90), 16)):
        strong = rng.random(shape) < 0.02
        strong[: shape[0] // 2, : shape[1] // 3] = True  # blocks without background
        s1 = rng.integers(0, 5000, shape).astype(np.int32)
        level = seg_halo._background_level(strong, s1, block)
        expected = oracle_background(strong, s1, block)
        assert level is not None
        assert expected is not None
        assert level.tobytes() == expected.tobytes()
    assert (
        seg_halo._background_level(np.ones((8, 8), bool), np.zeros((8, 8)), 4) is None
    )


def test_background_level_by_hand() -> None:
    # Two 4x4 blocks side by side, all background: block means 10 and 30 at
    # block centres x = 1.5 and 5.5; linear between (5 per px), constant
    # outside.
    s1 = np.zeros((4, 8), np.int32)
    s1[:, :4] = 10
    s1[:, 4:] = 30
    level = seg_halo._background_level(np.zeros((4, 8), bool), s1, 4)
    assert level is not None
    np.testing.assert_allclose(level[0], [10, 10, 12.5, 17.5, 22.5, 27.5, 30, 30])
    assert (level == level[0]).all()


def test_fill_blocks_follows_a_quadratic_illumination() -> None:
    # Usable blocks on a quadratic surface (any counts): every unusable block
    # gets the surface's value, the usable ones keep theirs bit for bit.
    rng = np.random.default_rng(3)
    rows, cols = 9, 12
    y, x = np.mgrid[0:rows, 0:cols].astype(float)
    surface = 5000 + 40 * y - 25 * x - 6 * (y - 4) ** 2 - 3 * (x - 6) ** 2 + 2 * x * y
    counts = rng.integers(5, 60, (rows, cols))
    counts[2:7, 3:9] = 0  # a crowded region in the middle
    grid = np.where(counts > 0, surface, np.nan)
    filled = seg_halo._fill_blocks(np.nan_to_num(grid), counts)
    np.testing.assert_allclose(filled, surface, rtol=1e-9)
    assert filled[counts > 0].tobytes() == surface[counts > 0].tobytes()


def test_fill_blocks_vignetted_field_beats_nearest_block() -> None:
    # A radial fall-off to 55 % at the corners (vignetting 0.45) with the
    # brightest region crowded: the fill stays within 1 % of the illumination
    # where the nearest usable block is several % off.
    rows, cols = 16, 16
    y, x = np.mgrid[0:rows, 0:cols].astype(float)
    r2 = ((y - 7.5) ** 2 + (x - 7.5) ** 2) / (2 * 7.5**2)
    field = 10000 * (1 - 0.45 * r2)
    counts = np.full((rows, cols), 40)
    counts[4:11, 5:12] = 0
    filled = seg_halo._fill_blocks(np.where(counts > 0, field, 0.0), counts)
    crowded = counts == 0
    error = np.abs(filled - field)[crowded] / field[crowded]
    assert error.max() < 0.01
    nearest = ndi.distance_transform_edt(
        crowded, return_distances=False, return_indices=True
    )
    old = np.abs(field[tuple(nearest)] - field)[crowded] / field[crowded]
    assert old.max() > 0.03


def test_fill_blocks_few_usable_blocks() -> None:
    # Fewer than 12 usable blocks: no quadratic, the count-weighted mean plus
    # the local deviation; beyond the Gaussian's reach, the mean alone.
    grid = np.zeros((3, 30))
    counts = np.zeros((3, 30), np.int64)
    grid[:, 0], counts[:, 0] = 100.0, 30
    grid[:, 1], counts[:, 1] = 130.0, 10
    filled = seg_halo._fill_blocks(grid, counts)
    mean = (100.0 * 30 + 130.0 * 10) / 40
    np.testing.assert_allclose(filled[:, 20:], mean)
    assert filled[:, :2].tobytes() == grid[:, :2].tobytes()
    # Next to the usable blocks the deviation pulls towards them (> the mean).
    assert (filled[:, 2] > mean).all()
    assert (filled[:, 2] < 130.0).all()
    # One usable block: every block takes its level.
    one = np.zeros((4, 4), np.int64)
    one[1, 2] = 7
    np.testing.assert_allclose(
        seg_halo._fill_blocks(np.where(one > 0, 55.0, 0.0), one), 55.0
    )


def halo_disk(
    seed: int = 0, shape: tuple[int, int] = (96, 96)
) -> tuple[np.ndarray, np.ndarray]:
    """A dark disk (radius 12) with a 3-px bright halo, Poisson noise at 2000."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    d = np.hypot(yy - 48, xx - 48)
    light = 2000.0 - 600.0 * (d < 12) + 600.0 * ((d >= 12) & (d < 15))
    return rng.poisson(light).astype(np.uint16), d < 12


def test_halo_trim_removes_the_bright_ring() -> None:
    frame, truth = halo_disk()
    kept = segment_log_std(frame, halo_trim=False)
    trimmed = segment_log_std(frame)
    # Without the trim the mask spreads over the halo; with it, it is the disk.
    assert np.count_nonzero(kept.mask & ~truth) > 150
    assert np.count_nonzero(trimmed.mask & ~truth) < 40
    assert dice(trimmed.mask, truth) > 0.92
    assert dice(trimmed.mask, truth) > dice(kept.mask, truth) + 0.1


def test_halo_trim_skipped_for_bright_objects() -> None:
    # A bright disk (fluorescence-like): nothing of it is darker than the
    # background, so the trim would delete it; it is skipped.
    rng = np.random.default_rng(1)
    truth = disk((96, 96), 48, 48, 12)
    frame = rng.poisson(1000.0 + 1500.0 * truth).astype(np.uint16)
    result = segment_log_std(frame)
    assert dice(result.mask, truth) > 0.85  # 1 px too large: no halo to trim
    assert np.array_equal(result.mask, segment_log_std(frame, halo_trim=False).mask)


def bright_centre_cells(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three dark disks (radius 14) with a 4-px halo and a phase-bright centre.

    The bright centre (radius 7) sits 4 px off the disk's centre, so the dark
    ring around it is 3 px wide on one side: thinner than the 5 px the
    default opening (3 x 3, twice) removes. PSF sigma 1.2 px, Poisson noise.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:128, :128]
    light = np.full((128, 128), 1000.0)
    truth = np.zeros((128, 128), dtype=bool)
    for cy, cx in ((40, 40), (40, 90), (90, 64)):
        d = np.hypot(yy - cy, xx - cx)
        light[(d >= 14) & (d < 18)] = 1250.0
        light[d < 14] = 550.0
        light[np.hypot(yy - cy, xx - cx - 4) < 7] = 1250.0
        truth |= d < 14
    light = ndi.gaussian_filter(light, 1.2)
    return rng.poisson(light).astype(np.uint16), truth


def test_trim_holes_filled_before_the_opening() -> None:
    # The trim removes the bright centres (brighter than the background); the
    # holes it leaves belong to the cells. Filled before the opening, each
    # cell is whole; opened first, the thin side of each ring breaks, the
    # centre is no longer enclosed, and the refill cannot bring it back.
    for seed in range(3):
        frame, truth = bright_centre_cells(seed)
        whole = segment_log_std(frame).mask
        opened_first = segment_log_std(frame, fill_trim_holes=False).mask
        _, cells = ndi.label(whole)
        assert cells == 3
        assert dice(whole, truth) > 0.95
        assert np.count_nonzero(truth & ~whole) < 0.05 * np.count_nonzero(truth)
        # the centres (~3 x 150 px) are missing when the opening runs first
        assert np.count_nonzero(truth & ~opened_first) > 300
        assert dice(opened_first, truth) < dice(whole, truth) - 0.1
        # the oracle pipeline (regionprops' solidity) gives the same masks
        np.testing.assert_array_equal(whole, oracle_segment(frame))
        np.testing.assert_array_equal(
            opened_first, oracle_segment(frame, fill_trim_holes=False)
        )
        # a solidity above every cell's keeps the previous order's result
        np.testing.assert_array_equal(
            segment_log_std(frame, fill_trim_holes_solidity=1.0).mask, opened_first
        )
        # without a trim there are no trim holes: the option changes nothing
        assert np.array_equal(
            segment_log_std(frame, halo_trim=False).mask,
            segment_log_std(frame, halo_trim=False, fill_trim_holes=False).mask,
        )


def test_trim_holes_from_the_removed_pixels() -> None:
    # The holes of a trimmed mask are found among the pixels the trim removed
    # from the filled mask: the same as filling the trimmed mask.
    rng = np.random.default_rng(11)
    for _ in range(20):
        raw = ndi.binary_opening(rng.random((60, 80)) < 0.55)
        filled = ndi.binary_fill_holes(raw)
        trimmed = filled & (rng.random((60, 80)) < 0.8)
        expected = ndi.binary_fill_holes(trimmed) & ~trimmed
        got = seg_centres._trim_holes(trimmed, filled)
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(seg_centres._trim_holes(trimmed, None), expected)


def oracle_whole_cells(
    trimmed: np.ndarray, lost: np.ndarray, min_solidity: float
) -> np.ndarray:
    """The cells (holes filled) of the full-frame opening that hold a lost pixel."""
    holes = ndi.binary_fill_holes(trimmed) & ~trimmed
    whole = oracle_dilate(oracle_erode(trimmed | holes, 3, 2), 3, 2)
    labels, _ = ndi.label(whole)
    out = np.zeros_like(trimmed)
    for region in measure.regionprops(labels):
        cell = labels == region.label
        if (cell & lost).any() and region.solidity >= min_solidity:
            out |= ndi.binary_fill_holes(cell)
    return out


def test_whole_cells_in_crops_match_the_whole_frame() -> None:
    # Disks with holes, a long band (wider than any first crop, so the crop
    # grows) and a cell at the frame edge: the crops give the frame's result.
    yy, xx = np.mgrid[:200, :300]
    trimmed = np.zeros((200, 300), dtype=bool)
    for cy, cx, r in ((30, 40, 14), (100, 150, 20), (185, 290, 12), (60, 220, 9)):
        trimmed |= np.hypot(yy - cy, xx - cx) < r
    trimmed |= (abs(yy - 150) < 6) & (xx > 20) & (xx < 280)
    rng = np.random.default_rng(2)
    trimmed &= rng.random(trimmed.shape) < 0.97  # pinholes
    holes = ndi.binary_fill_holes(trimmed) & ~trimmed
    lost = holes & (rng.random(trimmed.shape) < 0.5)
    lost[150, 100] = True  # in the band
    lost &= holes | (abs(yy - 150) < 6)
    for solidity in (0.0, 0.9):
        got = seg_centres._whole_cells(
            trimmed,
            holes,
            lost,
            open_size=3,
            open_iterations=2,
            min_solidity=solidity,
        )
        np.testing.assert_array_equal(got, oracle_whole_cells(trimmed, lost, solidity))
    # the band (solidity ~1 but not a disk) is kept at 0.9; a ring is not
    ring = (np.hypot(yy - 100, xx - 100) < 30) & (np.hypot(yy - 100, xx - 100) >= 20)
    ring_lost = np.zeros_like(ring)
    ring_lost[100, 75] = True
    assert not seg_centres._whole_cells(
        ring,
        np.zeros_like(ring),
        ring_lost,
        open_size=3,
        open_iterations=2,
        min_solidity=0.9,
    ).any()


def test_halo_trim_matches_oracle() -> None:
    for seed in range(3):
        frame, _ = halo_disk(seed, (70, 90))
        numerator, s1 = seg_texture._window_sums(frame, 3, keep_s1=True)
        _, stats = oracle_stats(frame)
        strong = numerator > 81.0 * math.exp(
            2.0 * (stats["mode"] + 1.25 * stats["sigma"])
        )
        mask = seg_masks._fill_holes(strong, 64)
        margin = 9 * 1.0 * math.exp(stats["mode"])
        for block in (8, 32):
            got, grid, _, _ = seg_halo._halo_trim(mask, strong, s1, margin, block)
            want, want_level = oracle_halo_trim(mask, strong, s1, margin, block)
            np.testing.assert_array_equal(got, want)
            assert (grid is None) == (want_level is None)
            if grid is not None:
                level = seg_halo._bilinear(grid, *mask.shape, block, margin)
                np.testing.assert_array_equal(level, want_level)


def test_restore_outline_matches_oracle_and_keeps_cells_apart() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        mask = ndi.binary_opening(rng.random((40, 50)) < 0.55)
        mask = seg_split._split_and_filter(
            mask, neck_ratio=None, min_area=0, keep_edge=True
        )
        allowed = rng.random(mask.shape) < 0.7
        got = seg_restore._restore_outline(mask, allowed)
        np.testing.assert_array_equal(got, oracle_restore_outline(mask, allowed))
        # Only allowed pixels are added; components neither merge nor appear.
        assert not np.any(got & ~mask & ~allowed)
        before, n_before = ndi.label(mask)
        after, n_after = ndi.label(got)
        assert n_after == n_before
        np.testing.assert_array_equal(
            np.unique(np.stack((before[mask], after[mask])), axis=1).shape[1], n_before
        )


def test_outline_restore_gives_back_edge_pixels() -> None:
    frame, truth = halo_disk()
    without = segment_log_std(frame, halo_edge_k=None).mask
    restored = segment_log_std(frame).mask
    added = restored & ~without
    # One-pixel growth of the trimmed mask, towards the true disk.
    assert np.all(without <= restored)
    assert not np.any(added & ~morphology.dilate_square(without, 3, 1))
    assert np.count_nonzero(added & truth) >= np.count_nonzero(added & ~truth)
    # Skipped together with the trim.
    np.testing.assert_array_equal(
        segment_log_std(frame, halo_trim=False).mask,
        segment_log_std(frame, halo_trim=False, halo_edge_k=None).mask,
    )


def test_restore_junctions_matches_oracle_and_keeps_cells_apart() -> None:
    rng = np.random.default_rng(6)
    for trial in range(20):
        mask = ndi.binary_opening(rng.random((40, 50)) < 0.5)
        mask = seg_split._split_and_filter(
            mask, neck_ratio=None, min_area=0, keep_edge=True
        )
        allowed = rng.random(mask.shape) < 0.8
        image = rng.integers(0, 4 if trial % 2 else 1000, mask.shape)
        for reach in (1, 2, 3):
            got = seg_restore._restore_junctions(mask, allowed, image, reach)
            want = oracle_restore_junctions(mask, allowed, image, reach)
            np.testing.assert_array_equal(got, want)
            assert not np.any(got & ~mask & ~allowed)
            before, n_before = ndi.label(mask)
            after, n_after = ndi.label(got)
            assert n_after == n_before  # nothing merges, nothing appears
            pairs = np.unique(np.stack((before[mask], after[mask])), axis=1)
            assert pairs.shape[1] == n_before


def junction_frame(gap_px: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two dark cells (28 x 37 px) side by side, with a bright line or a gap.

    ``gap_px = 0``: the cells touch along column 48, which carries a bright
    junction line (2600; blurred: +800 and +350 on the cell bodies 1 and 2 px
    beside it). Otherwise `gap_px` background columns separate them. Pixels
    within 3 px outside the cells are halo (+600). The cell bodies are
    textured (standard deviation 80), and Poisson noise is added at 2000.
    Returns the frame and the true labels (1 left, 2 right; the line column
    is background in the truth).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:96, :97]
    half = (gap_px + 1) // 2
    truth = np.zeros(yy.shape, dtype=np.int32)
    rows = (yy >= 30) & (yy <= 66)
    truth[rows & (xx >= 48 - half - 28) & (xx < 48 - half)] = 1
    truth[rows & (xx > 48 + half) & (xx <= 48 + half + 28)] = 2
    light = np.full(yy.shape, 2000.0)
    light[truth > 0] += rng.normal(-600.0, 80.0, np.count_nonzero(truth))
    halo = (truth == 0) & (ndi.distance_transform_edt(truth == 0) <= 3)
    light[halo] += 600.0
    if gap_px == 0:
        light[rows & (xx == 48)] = 2600.0
        light[rows & (np.abs(xx - 48) == 1)] += 800.0
        light[rows & (np.abs(xx - 48) == 2)] += 350.0
    return rng.poisson(light).astype(np.uint16), truth


def test_junction_restore_reaches_the_bright_line() -> None:
    for seed in range(3):
        frame, truth = junction_frame(0, seed)
        # The noise-margin trim (the edge level is tested below).
        without = segment_log_std(frame, junction_px=0, halo_level="noise").mask
        with_junction = segment_log_std(frame, halo_level="noise").mask
        rows = slice(30, 67)  # the 37 rows of the contact
        # The trim leaves a 3-px gap (columns 47-49) along the contact; the
        # outline restore gives back few of its pixels (bright, next to the
        # other cell) ...
        assert np.count_nonzero(without[rows, 47:50]) <= 15
        assert without[rows, 46].all()
        assert without[rows, 50].all()
        # ... the junction restore fills it up to the bright line (column 48).
        assert np.count_nonzero(with_junction[rows, 47]) >= 33
        assert np.count_nonzero(with_junction[rows, 49]) >= 33
        assert not with_junction[:, 48].any()
        labels, count = ndi.label(with_junction)
        assert count == 2
        assert labels[48, 30] != labels[48, 66]
        assert np.all(without <= with_junction)
        assert dice(with_junction, truth > 0) > dice(without, truth > 0) + 0.01
        # The trim at the edge level leaves only the bright line itself.
        edge = segment_log_std(frame).mask
        assert np.count_nonzero(edge[rows, 47]) >= 33
        assert np.count_nonzero(edge[rows, 49]) >= 33
        assert not edge[:, 48].any()
        assert ndi.label(edge)[1] == 2
        assert dice(edge, truth > 0) >= dice(with_junction, truth > 0) - 0.005


def test_junction_restore_leaves_a_wide_gap_alone() -> None:
    frame, _ = junction_frame(8)
    np.testing.assert_array_equal(
        segment_log_std(frame).mask, segment_log_std(frame, junction_px=0).mask
    )
    # Skipped together with the trim.
    np.testing.assert_array_equal(
        segment_log_std(frame, halo_trim=False).mask,
        segment_log_std(frame, halo_trim=False, junction_px=0).mask,
    )


# --------------------------------------------------------------------------------------
# Neck split and minimum area
# --------------------------------------------------------------------------------------


def test_octagonal_distance_by_hand() -> None:
    # A 5x5 square: city-block and chessboard distances agree (1, 2, 3 from the
    # edge to the centre); a plus sign's arm tips: city-block 1, chessboard 1.
    square = np.zeros((7, 7), bool)
    square[1:6, 1:6] = True
    expected = np.array([[1, 1, 1, 1, 1], [1, 2, 2, 2, 1], [1, 2, 3, 2, 1]])
    distance = seg_split._octagonal_distance(square)
    np.testing.assert_array_equal(distance[1:4, 1:6], expected)
    # A diagonal neighbour of the background: city-block 2, chessboard 1.
    corner = np.ones((3, 3), bool)
    corner[0, 0] = False
    padded = np.pad(corner, 1, constant_values=True)
    padded[0, :] = padded[:, 0] = padded[-1, :] = padded[:, -1] = True
    assert seg_split._octagonal_distance(padded)[2, 2] == 1.5


@pytest.mark.parametrize("seed", range(4))
def test_octagonal_distance_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    own = ndi.binary_opening(rng.random((15, 19)) < 0.7)
    np.testing.assert_array_equal(
        seg_split._octagonal_distance(np.pad(own, 1)), oracle_octagonal(own)
    )


def test_power_regions_cut_at_the_contact_by_hand() -> None:
    # Markers at x = 10 (height 8) and x = 30 (height 4) on one row: the power
    # distances (x - 10)² - 64 and (x - 30)² - 16 are equal at x = 21.2, so
    # columns up to 21 go to marker 1 and from 22 on to marker 2 (the midpoint
    # 20 would favour the smaller cell).
    mask = np.zeros((5, 41), bool)
    mask[2, 1:40] = True
    markers = np.zeros((5, 41), int)
    markers[2, 10] = 1
    markers[2, 30] = 2
    distance = np.zeros((5, 41))
    distance[2, 10] = 8.0
    distance[2, 30] = 4.0
    regions = seg_split._power_regions(mask, distance, markers, 2)
    assert (regions[2, 1:22] == 1).all()
    assert (regions[2, 22:40] == 2).all()
    assert (regions[~mask] == 0).all()


def test_merge_at_necks_by_hand() -> None:
    # Regions 1 | 2 | 3 in a row with peak distances 10, 9 and 4; the saddles
    # (largest min(d) across each border) are 8 between 1 and 2 and 1.5
    # between 2 and 3. With ratio 0.7: 8 >= 0.7·9 merges 1 and 2; 1.5 < 0.7·4
    # keeps 3 apart.
    regions = np.array([[1, 1, 1, 2, 2, 2, 3, 3]])
    distance = np.array([[10.0, 9.0, 8.0, 8.0, 9.0, 1.5, 1.5, 4.0]])
    merged = seg_split._merge_at_necks(regions, distance, 3, 0.7)
    assert merged is not None
    np.testing.assert_array_equal(merged, [[1, 1, 1, 1, 1, 1, 3, 3]])
    # With ratio 0.9 nothing merges (8 < 0.9·9); with 0.35 everything does.
    kept = seg_split._merge_at_necks(regions, distance, 3, 0.9)
    assert kept is not None
    np.testing.assert_array_equal(kept, regions)
    assert seg_split._merge_at_necks(regions, distance, 3, 0.35) is None


def two_touching_disks() -> np.ndarray:
    yy, xx = np.mgrid[:60, :90]
    return (np.hypot(yy - 30, xx - 28) < 16) | (np.hypot(yy - 30, xx - 58) < 16)


def test_neck_split_cuts_touching_disks() -> None:
    mask = two_touching_disks()
    assert ndi.label(mask)[1] == 1
    split = seg_split._split_and_filter(
        mask, neck_ratio=0.7, min_area=0, keep_edge=True
    )
    labels, count = ndi.label(split)
    assert count == 2
    assert not (split & ~mask).any()
    assert np.count_nonzero(mask & ~split) < 40  # only a thin cut line is lost
    assert labels[30, 28] != labels[30, 58]
    # The cut is at the contact (x = 43, the radical axis of equal disks).
    assert (mask & ~split)[:, 40:47].sum() == np.count_nonzero(mask & ~split)


@pytest.mark.parametrize("aspect", [1.0, 1.3, 1.6, 2.5])
def test_neck_split_keeps_single_ellipses(aspect: float) -> None:
    yy, xx = np.mgrid[:80, :120]
    for angle in (0.0, 0.5, 0.8):
        u = (xx - 60) * math.cos(angle) + (yy - 40) * math.sin(angle)
        v = -(xx - 60) * math.sin(angle) + (yy - 40) * math.cos(angle)
        mask = (u / (14 * aspect)) ** 2 + (v / 14) ** 2 < 1
        split = seg_split._split_and_filter(
            mask, neck_ratio=0.7, min_area=0, keep_edge=True
        )
        np.testing.assert_array_equal(split, mask)


def test_neck_split_keeps_small_cell_on_big_one() -> None:
    # Radii 15 and 7, touching: the neck is far narrower than 0.7 x 7.
    yy, xx = np.mgrid[:60, :80]
    mask = (np.hypot(yy - 30, xx - 30) < 15) | (np.hypot(yy - 30, xx - 52) < 7.5)
    split = seg_split._split_and_filter(
        mask, neck_ratio=0.7, min_area=0, keep_edge=True
    )
    assert ndi.label(split)[1] == 2


def test_edgeless_objects_by_hand() -> None:
    # Two 15 x 15 squares. The left one's outline (its 15² - 13² = 56 border
    # pixels) is textured all round: kept. The right one is textured in its
    # 3 left columns only (19 of its 56 border pixels, 0.34): it goes at 0.4
    # and stays at 0.3.
    fg = np.zeros((40, 80), bool)
    fg[5:20, 5:20] = True
    fg[5:20, 40:55] = True
    textured = np.zeros_like(fg)
    textured[5:20, 5:20] = True
    textured[8:17, 8:17] = False
    textured[5:20, 40:43] = True
    out = seg_cleanup._drop_edgeless(fg, textured, 0.4)
    assert out[5:20, 5:20].all()
    assert not out[5:20, 40:55].any()
    np.testing.assert_array_equal(seg_cleanup._drop_edgeless(fg, textured, 0.3), fg)
    np.testing.assert_array_equal(seg_cleanup._drop_edgeless(fg, textured, 0.0), fg)
    np.testing.assert_array_equal(out, oracle_drop_edgeless(fg, textured, 0.4))


def test_the_frame_edge_is_no_outline() -> None:
    # A 6 x 30 cell cut by the bottom edge, textured along its top and sides
    # (its 40 outline pixels) and not along the frame edge. Fraction 1: kept at
    # 0.7. Were the frame edge an outline, 28 bottom pixels would join, 24 of
    # them untextured (44 of 68, 0.65).
    fg = np.zeros((40, 80), bool)
    fg[34:40, 40:70] = True
    textured = fg.copy()
    textured[37:40, 43:67] = False
    np.testing.assert_array_equal(seg_cleanup._drop_edgeless(fg, textured, 0.7), fg)
    assert not seg_cleanup._drop_edgeless(fg, textured[::-1], 0.7).any()


@pytest.mark.parametrize("seed", range(4))
def test_edgeless_objects_match_the_oracle(seed: int) -> None:
    # Random disks (some cut by the frame edge, some touching) and a random
    # texture map denser near the disks' outlines.
    rng = np.random.default_rng(seed)
    fg = np.zeros((60, 80), bool)
    for _ in range(8):
        cy, cx, r = rng.uniform(0, 60), rng.uniform(0, 80), rng.uniform(3, 11)
        fg |= disk(fg.shape, cy, cx, r)
    outline = fg & ~ndi.binary_erosion(fg, iterations=2, border_value=1)
    textured = (outline & (rng.random(fg.shape) < rng.uniform(0.2, 1.0))) | (
        rng.random(fg.shape) < 0.1
    )
    for fraction in (0.0, 0.25, 0.4, 0.6, 1.0):
        np.testing.assert_array_equal(
            seg_cleanup._drop_edgeless(fg, textured, fraction),
            oracle_drop_edgeless(fg, textured, fraction),
        )


@pytest.mark.parametrize("seed", range(4))
def test_split_and_filter_matches_oracle(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mask = np.zeros((70, 90), bool)
    for _ in range(7):
        cy, cx, r = rng.uniform(0, 70), rng.uniform(0, 90), rng.uniform(4, 12)
        mask |= disk(mask.shape, cy, cx, r)
    for ratio, min_area, keep_edge in (
        (0.7, 60, True),
        (0.5, 0, False),
        (0.9, 30, False),
    ):
        np.testing.assert_array_equal(
            seg_split._split_and_filter(
                mask, neck_ratio=ratio, min_area=min_area, keep_edge=keep_edge
            ),
            oracle_split_and_filter(
                mask, neck_ratio=ratio, min_area=min_area, keep_edge=keep_edge
            ),
        )
    np.testing.assert_array_equal(
        seg_split._split_and_filter(mask, neck_ratio=None, min_area=80, keep_edge=True),
        oracle_split_and_filter(mask, neck_ratio=None, min_area=80, keep_edge=True),
    )


def test_neck_split_batch_equals_one_by_one() -> None:
    # Packing the components into one sheet changes nothing.
    rng = np.random.default_rng(11)
    owns = []
    while len(owns) < 12:
        shape = (int(rng.integers(12, 40)), int(rng.integers(12, 60)))
        mask = np.zeros(shape, bool)
        for _ in range(int(rng.integers(1, 4))):
            centre = (rng.uniform(0, shape[0]), rng.uniform(0, shape[1]))
            mask |= disk(shape, *centre, rng.uniform(3, 9))
        labels, count = ndi.label(mask)
        if count:
            ys, xs = np.nonzero(labels == 1)
            owns.append((labels == 1)[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])
    batch = seg_split._neck_split_batch(owns, 0.7)
    for own, parts in zip(owns, batch, strict=True):
        single = oracle_neck_split(own, 0.7)
        assert (parts is None) == (single is None)
        if parts is not None:
            np.testing.assert_array_equal(parts, single)
    assert any(parts is not None for parts in batch)


def test_min_area_uses_4_connectivity() -> None:
    mask = np.zeros((8, 8), bool)
    mask[0, 0] = mask[1, 1] = True  # two diagonal 1-px components
    mask[4:7, 4:7] = True  # 9 px
    mask[0, 5:8] = True  # 3 px
    kept = seg_masks._remove_small(mask, 3)
    expected = mask.copy()
    expected[0, 0] = expected[1, 1] = False
    np.testing.assert_array_equal(kept, expected)
    assert not seg_masks._remove_small(mask, 10).any()


def test_min_area_keeps_edge_components() -> None:
    # With keep_edge, the 1-px component at (0, 0) and the 3-px one on row 0
    # stay; (1, 1) and the 9-px block (not on the edge) follow the area rule.
    mask = np.zeros((8, 8), bool)
    mask[0, 0] = mask[1, 1] = True
    mask[4:7, 4:7] = True
    mask[0, 5:8] = True
    expected = mask.copy()
    expected[1, 1] = False
    expected[4:7, 4:7] = False
    np.testing.assert_array_equal(
        seg_masks._remove_small(mask, 10, keep_edge=True), expected
    )
    np.testing.assert_array_equal(
        seg_split._split_and_filter(mask, neck_ratio=None, min_area=10, keep_edge=True),
        expected,
    )


def test_separate_labels_matches_loops() -> None:
    rng = np.random.default_rng(3)
    for _ in range(5):
        labels = rng.integers(0, 5, (17, 23))
        np.testing.assert_array_equal(
            seg_split._separate_labels(labels), oracle_separate(labels)
        )


def test_separate_labels_by_hand() -> None:
    labels = np.array([[1, 1, 2, 2], [1, 1, 2, 0], [3, 0, 2, 0]])
    # 1|2 across rows 0 and 1: the 2s at (0, 2) and (1, 2) go; 1 over 3 in
    # column 0: the 3 goes. Pixels touching only their own label or 0 stay.
    expected = np.array([[1, 1, 0, 1], [1, 1, 0, 0], [0, 0, 1, 0]], bool)
    np.testing.assert_array_equal(seg_split._separate_labels(labels), expected)


# --------------------------------------------------------------------------------------
# Watershed split
# --------------------------------------------------------------------------------------


def test_watershed_splits_touching_disks() -> None:
    mask = two_touching_disks()
    split = seg_split._watershed_split(mask, 2.0)
    labels, count = ndi.label(split)
    assert count == 2
    assert not (split & ~mask).any()
    assert np.count_nonzero(mask & ~split) < 40  # only a thin cut line is lost
    # The left disk keeps its centre, the right one too.
    assert labels[30, 28] != labels[30, 58]


def test_watershed_keeps_single_disk() -> None:
    yy, xx = np.mgrid[:50, :50]
    mask = np.hypot(yy - 25, xx - 25) < 15
    np.testing.assert_array_equal(seg_split._watershed_split(mask, 2.0), mask)
    assert not seg_split._watershed_split(np.zeros((5, 5), bool), 2.0).any()


def test_segment_with_watershed_option(cells: tuple[np.ndarray, np.ndarray]) -> None:
    frame, _ = cells
    plain = segment_log_std(frame, split="none")
    split = segment_log_std(frame, split="watershed")
    assert not (split.mask & ~plain.mask).any()
    assert ndi.label(split.mask)[1] >= ndi.label(plain.mask)[1]


# --------------------------------------------------------------------------------------
# Whole pipeline against the oracle
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {},
        EXISTING,
        PREVIOUS,
        {"close_iterations": 1, "close_size": 5},
        {"min_area_px": 40, "min_area_keep_edge": False},
        {"open_size": 4, "open_iterations": 1, "shrink_px": 2},
        {"fill_holes": False, "refill_holes": False, "open_iterations": 0},
        {"threshold_k": 2.0, "threshold_low_k": 1.0, "split_neck_ratio": 0.5},
        {"halo_block_px": 8, "halo_k": 0.5, "fill_mirror_px": 5},
        {"fill_border": "open", "split": "none"},
        {"halo_edge_k": None},
        {"halo_edge_k": 4.0, "halo_k": 2.0},
        {"junction_px": 0},
        {"junction_px": 1, "halo_edge_k": None},
        {"junction_k": None},
        {"junction_k": 2.0, "junction_px": 2},
        {"halo_level": "noise"},
        {"halo_level": "noise", "junction_px": 1},
        {"edge_offset_px": 0.0},
        {"edge_offset_px": 1.5, "halo_edge_k": None},
    ],
    ids=[
        "defaults",
        "existing",
        "previous",
        "closing",
        "min-area",
        "even-open",
        "no-cleanup",
        "hysteresis",
        "halo-options",
        "open-border",
        "no-outline",
        "outline-k",
        "no-junction",
        "junction-1",
        "junction-no-window-test",
        "junction-k",
        "noise-level",
        "noise-level-junction-1",
        "edge-offset-0",
        "edge-offset-1.5",
    ],
)
def test_segment_matches_oracle_pipeline(options: dict[str, object]) -> None:
    frame, _ = cell_frame((72, 96), n_cells=3, seed=7, radius=(7.0, 12.0))
    frame[:40, :9] = frame[:40, 9:18]  # texture cut by the edge
    result = segment_log_std(frame, **options)
    np.testing.assert_array_equal(result.mask, oracle_segment(frame, **options))
    assert result.foreground_fraction == result.mask.mean()


@pytest.mark.parametrize(
    ("preset", "seed", "frame_index"), [("demo", 3, 0), ("standard", 4, 0)]
)
def test_segment_matches_oracle_on_synthetic_phase_contrast(
    preset: str, seed: int, frame_index: int
) -> None:
    # The standard frame holds touching cells that the neck split separates.
    params = synth.preset(
        preset, seed=seed, frame_sizes=((96, 112),), n_fov=1, n_frames=2
    )
    frame = synth.simulate_fov(params, 0).render(frame_index).images[0]
    result = segment_log_std(frame)
    np.testing.assert_array_equal(result.mask, oracle_segment(frame))
    unsplit = segment_log_std(frame, split="none")
    # (With the edge level the trim already separates some of them.)
    assert ndi.label(result.mask)[1] >= ndi.label(unsplit.mask)[1]
    noise = segment_log_std(frame, halo_level="noise")
    np.testing.assert_array_equal(noise.mask, oracle_segment(frame, halo_level="noise"))
    assert ndi.label(noise.mask)[1] > ndi.label(
        segment_log_std(frame, halo_level="noise", split="none").mask
    )[1] or (preset == "demo")


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
    for key in ("lo", "hi", "mode", "sigma", "threshold", "threshold_low"):
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
    assert (
        seg_threshold._lower_sigma(np.array([0.0, 1.0, 1.0]), 0.75, "lower_std") == 0.0
    )
    assert (
        seg_threshold._lower_sigma(np.array([0.0, 1.0, 1.0]), 0.75, "lower_rms") == 0.0
    )
    # 1 at (0, 1) and 2 at (0, 3) of a 5x5 frame; the windows of the sampled
    # pixels (0, 0), (0, 2), (0, 4) (top row mirrored) give N = 14, 54, 56 and
    # all others 0. With 3 bins, bin 2 (54, 56) is the mode, centred at
    # lo + 2.5·(hi - lo)/3; only N = 14 lies below it, so sigma = 0 and the
    # threshold is the mode: N > 44.4, which only row 0's N = 54, 56, 56 pass.
    frame = np.zeros((5, 5), np.uint16)
    frame[0, 1] = 1
    frame[0, 3] = 2
    result = segment_log_std(frame, bins=3, mode_smooth_bins=1, threshold_k=5.0, **RAW)
    assert result.sigma == 0.0
    assert result.threshold == result.mode
    lo, hi = log_std(14), log_std(56)
    assert result.mode == pytest.approx(lo + 2.5 * (hi - lo) / 3, rel=1e-12)
    expected = np.zeros((5, 5), bool)
    expected[0, 2:] = True
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
    for options in ({}, {"split": "watershed", "min_area_px": 20}):
        first = segment_log_std(frame, **options)
        np.testing.assert_array_equal(frame, cells[0])
        second = segment_log_std(frame, **options)
        assert first.mask.tobytes() == second.mask.tobytes()
        assert isinstance(first, SegmentationFrame)
        keys = ("lo", "hi", "mode", "sigma", "threshold")
        assert [getattr(first, k) for k in keys] == [getattr(second, k) for k in keys]


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
    assert dice(result.mask, truth) > 0.93
    assert ndi.label(result.mask)[1] == 6


def test_shrink_reduces_outward_spread() -> None:
    # Without the halo trim the window spread makes masks too large, and the
    # shrink moves the boundary back; the trim does the same job by itself.
    frame, truth = cell_frame(seed=5)
    outside = [
        np.count_nonzero(
            segment_log_std(frame, halo_trim=False, shrink_px=r).mask & ~truth
        )
        for r in (0, 1, 2)
    ]
    assert outside[0] > outside[1] > outside[2]
    untrimmed = [
        dice(segment_log_std(frame, halo_trim=False, shrink_px=r).mask, truth)
        for r in (0, 1)
    ]
    assert untrimmed[1] > untrimmed[0] + 0.03
    assert dice(segment_log_std(frame).mask, truth) > untrimmed[1]


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


def test_cell_cut_by_frame_edge_is_filled() -> None:
    # A phase-contrast cell (dark body, bright halo, flat interior) half out of
    # the frame: its ring is open at the edge. Mirroring fills it; the plain
    # fill loses its interior and the opening its rim.
    rng = np.random.default_rng(9)
    yy, xx = np.mgrid[:96, :96]
    d = np.hypot(yy - 48, xx - 4)
    light = 2000.0 - 500.0 * (d < 16) + 400.0 * ((d >= 16) & (d < 19))
    frame = rng.poisson(light).astype(np.uint16)
    truth = d < 16
    assert dice(segment_log_std(frame).mask, truth) > 0.9
    assert dice(segment_log_std(frame, fill_border="open").mask, truth) < 0.5


def score(masks: list[np.ndarray], truths: list[np.ndarray]) -> tuple[float, float]:
    """Object recall and precision at IoU >= 0.5 over frames."""
    matched = n_true = n_pred = 0
    for mask, truth in zip(masks, truths, strict=True):
        pred, count = ndi.label(mask)
        ids, _, _ = _match_frame(truth.astype(np.int64), pred.astype(np.int64))
        matched += ids.size
        n_true += np.unique(truth[truth > 0]).size
        n_pred += count
    return matched / n_true, matched / n_pred


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"coverage": 0.3, "cluster_fraction": 0.6},
        {"phase_contrast": 0.45, "phase_level_adu": 3000.0},
        {"psf_sigma_px": 2.0},
    ],
    ids=["demo", "crowded", "low-contrast", "blurred"],
)
def test_accuracy_on_generated_phase_contrast(overrides: dict[str, object]) -> None:
    # Touching cells, debris, cells cut by the edge, uneven illumination; the
    # previous defaults reached recall 0.2-0.7 here.
    params = synth.preset(
        "demo", seed=5, n_fov=1, n_frames=3, frame_sizes=((256, 320),), **overrides
    )
    sim = synth.simulate_fov(params, 0)
    frames = [sim.render(t) for t in range(3)]
    masks = [segment_log_std(f.images[0]).mask for f in frames]
    truths = [f.labels for f in frames]
    recall, precision = score(masks, truths)
    assert recall >= 0.9
    assert precision >= 0.9
    true_px = sum(np.count_nonzero(t) for t in truths)
    both = sum(
        np.count_nonzero(m & (t > 0)) for m, t in zip(masks, truths, strict=True)
    )
    assert 2 * both / (true_px + sum(np.count_nonzero(m) for m in masks)) >= 0.92


def test_touching_cells_split_the_same_way_over_time() -> None:
    # Crowded colonies: every cell matched in one frame is matched in the next
    # one too (no flicker between one and two components).
    params = synth.preset(
        "standard", seed=2, n_fov=1, n_frames=6, frame_sizes=((256, 256),)
    )
    sim = synth.simulate_fov(params, 0)
    previous: dict[int, bool] | None = None
    changes = pairs = 0
    for t in range(6):
        frame = sim.render(t)
        pred, _ = ndi.label(segment_log_std(frame.images[0]).mask)
        ids, _, _ = _match_frame(frame.labels.astype(np.int64), pred.astype(np.int64))
        present = np.unique(frame.labels[frame.labels > 0])
        current = {int(i): bool(i in set(ids.tolist())) for i in present}
        if previous is not None:
            common = current.keys() & previous.keys()
            pairs += len(common)
            changes += sum(current[i] != previous[i] for i in common)
        previous = current
    assert changes <= 0.05 * pairs


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
        ({"window": 3.0}, TypeError, "window must be an integer; got 3.0"),
        ({"window": True}, TypeError, "window must be an integer; got True"),
        ({"bins": 0}, ValueError, "bins must be an integer >= 1; got 0"),
        (
            {"mode_smooth_bins": 4},
            ValueError,
            "mode_smooth_bins must be an odd integer >= 1; got 4",
        ),
        (
            {"mode_smooth_bins": 0},
            ValueError,
            "mode_smooth_bins must be an integer >= 1",
        ),
        ({"sigma_estimator": "std"}, ValueError, "sigma_estimator must be one of"),
        ({"sigma_estimator": None}, ValueError, "sigma_estimator must be one of"),
        ({"threshold_k": -1.0}, ValueError, "threshold_k must be a finite number >= 0"),
        ({"threshold_k": math.nan}, ValueError, "threshold_k must be a finite number"),
        ({"threshold_k": "3"}, TypeError, "threshold_k must be a real number; got '3'"),
        (
            {"threshold_low_k": -0.5},
            ValueError,
            "threshold_low_k must be a finite number >= 0",
        ),
        (
            {"threshold_low_k": 2.0},
            ValueError,
            r"threshold_low_k must be <= threshold_k .*got 2\.0 > 1\.25",
        ),
        ({"threshold_low_k": "1"}, TypeError, "threshold_low_k must be a real number"),
        ({"fill_holes": 1}, TypeError, "fill_holes must be True or False; got 1"),
        ({"fill_border": "reflect"}, ValueError, "fill_border must be one of"),
        ({"fill_mirror_px": 0}, ValueError, "fill_mirror_px must be an integer >= 1"),
        ({"halo_trim": "yes"}, TypeError, "halo_trim must be True or False"),
        ({"halo_k": -1.0}, ValueError, "halo_k must be a finite number >= 0"),
        ({"halo_edge_k": -1.0}, ValueError, "halo_edge_k must be a finite number >= 0"),
        ({"halo_edge_k": "2"}, TypeError, "halo_edge_k must be a real number"),
        ({"junction_px": -1}, ValueError, "junction_px must be an integer >= 0"),
        ({"junction_px": 2.0}, TypeError, "junction_px must be an int"),
        ({"junction_k": -1.0}, ValueError, "junction_k must be a finite number >= 0"),
        ({"junction_k": "6"}, TypeError, "junction_k must be a real number"),
        ({"halo_level": "mid"}, ValueError, "halo_level must be one of"),
        (
            {"edge_offset_px": -0.5},
            ValueError,
            "edge_offset_px must be a finite number >= 0",
        ),
        ({"halo_block_px": 2}, ValueError, "halo_block_px must be an integer >= 4"),
        (
            {"halo_block_px": 33},
            ValueError,
            "halo_block_px must be an even integer >= 4; got 33",
        ),
        ({"open_size": 0}, ValueError, "open_size must be an integer >= 1; got 0"),
        (
            {"open_iterations": -1},
            ValueError,
            "open_iterations must be an integer >= 0",
        ),
        ({"close_size": 0}, ValueError, "close_size must be an integer >= 1; got 0"),
        ({"close_iterations": -1}, ValueError, "close_iterations must be an integer"),
        ({"refill_holes": "yes"}, TypeError, "refill_holes must be True or False"),
        ({"fill_trim_holes": 1}, TypeError, "fill_trim_holes must be True or False"),
        (
            {"fill_trim_holes_solidity": 1.5},
            ValueError,
            r"fill_trim_holes_solidity must be a finite number in \[0\.0, 1\.0\]",
        ),
        ({"shrink_px": -1}, ValueError, "shrink_px must be an integer >= 0; got -1"),
        ({"split": "watershed2"}, ValueError, "split must be one of"),
        ({"split_h_px": 0.0}, ValueError, r"split_h_px must be a finite number > 0\.0"),
        (
            {"split_neck_ratio": 0.0},
            ValueError,
            r"split_neck_ratio must be a finite number in \(0\.0, 1\.0\]; got 0\.0",
        ),
        (
            {"split_neck_ratio": 1.5},
            ValueError,
            r"split_neck_ratio must be a finite number in \(0\.0, 1\.0\]; got 1\.5",
        ),
        ({"min_area_px": -2}, ValueError, "min_area_px must be an integer >= 0"),
        ({"min_area_px": 2.5}, TypeError, "min_area_px must be an integer; got 2.5"),
        (
            {"min_area_keep_edge": None},
            TypeError,
            "min_area_keep_edge must be True or False",
        ),
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


# --------------------------------------------------------------------------------------
# Edge level of the halo trim
# --------------------------------------------------------------------------------------


def _edge_inputs(frame: np.ndarray) -> tuple[np.ndarray, ...]:
    numerator, s1 = seg_texture._window_sums(frame, 3, keep_s1=True)
    _, stats = oracle_stats(frame)
    strong = numerator > 81.0 * math.exp(2.0 * (stats["mode"] + 1.25 * stats["sigma"]))
    filled = seg_masks._fill_holes(strong, 64)
    return s1, strong, filled


@pytest.mark.parametrize("offset", [0.0, 0.5, 1.0])
@pytest.mark.parametrize(
    "variant",
    [{}, {"halo_strength": 0.5}, {"halo_kernel": "airy"}, {"phase_model": "zernike"}],
    ids=["standard", "weak-halo", "airy", "zernike"],
)
def test_edge_ratio_matches_oracle(variant: dict[str, object], offset: float) -> None:
    params = synth.preset(
        "standard", frame_sizes=((128, 160),), n_fov=1, n_frames=2, **variant
    )
    frame = synth.simulate_fov(params, 0).render(0).images[0]
    s1, strong, filled = _edge_inputs(frame)
    for block in (16, 32):
        grid = seg_halo._background_grid(strong, s1, block)
        assert grid is not None
        got = seg_halo._edge_ratio(
            s1, filled, grid, block, seg_halo._EdgeLevel(float(frame.min()), 9, offset)
        )
        background = oracle_bilinear(oracle_grid(strong, s1, block), 128, 160, block)
        want = oracle_edge_ratio(s1, filled, background, 9, float(frame.min()), offset)
        assert got == want


def test_edge_ratio_needs_edges() -> None:
    rng = np.random.default_rng(0)
    frame = rng.poisson(1000, (64, 64)).astype(np.uint16)
    s1, strong, _ = _edge_inputs(frame)
    grid = seg_halo._background_grid(strong, s1, 16)
    assert grid is not None
    # A mask without dark-to-bright steps: no edge level.
    blob = disk((64, 64), 32, 32, 12)
    assert math.isnan(
        seg_halo._edge_ratio(s1, blob, grid, 16, seg_halo._EdgeLevel(0.0, 9, 0.5))
    )
    # Frames too small for the 3-px margin.
    small = np.ones((6, 40), dtype=bool)
    assert math.isnan(
        seg_halo._edge_ratio(s1[:6], small, grid, 16, seg_halo._EdgeLevel(0.0, 9, 0.5))
    )


def test_edge_ratio_by_hand() -> None:
    # A straight step from 600 (cell) to 1400 (halo) centred on column 47 (a
    # sampled column) over a background of 1000: its steepest point has the
    # window mean 1000, so rho is 0 with no offset and the slope per px times
    # the offset over the background with one.
    rows, cols = 128, 96
    x = np.arange(cols, dtype=np.float64)
    profile = 1000.0 + 400.0 * np.tanh((x - 47.0) / 2.0)
    frame = np.rint(np.tile(profile, (rows, 1))).astype(np.uint16)
    s1 = seg_texture._window_sums(frame, 3, keep_s1=True)[1]
    filled = np.zeros((rows, cols), dtype=bool)
    filled[:, :52] = True
    low = float(frame.min())
    grid = np.full((4, 3), 9.0 * (1000.0 - low))
    mean = frame[0].astype(np.float64)
    slope = (mean[47:50].mean() - mean[45:48].mean()) / 2.0
    for offset in (0.0, 1.0):
        rho = seg_halo._edge_ratio(
            s1, filled, grid, 32, seg_halo._EdgeLevel(low, 9, offset)
        )
        level = mean[46:49].mean() + offset * slope
        assert rho == pytest.approx(level / 1000.0 - 1.0, abs=1e-12)
        assert rho == pytest.approx(offset * 0.163, abs=0.002)


@pytest.mark.parametrize("seed", range(4))
def test_outline_band_peels_from_outside_only(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mask = ndi.binary_opening(rng.random((40, 50)) < 0.6, iterations=1)
    s1 = rng.integers(0, 100, mask.shape).astype(np.int64)
    grid = np.full((2, 2), 60.0)
    got = seg_halo._trim_outline_band(mask, s1, grid, 32)
    band = mask & ~oracle_erode(mask, 7, 1)
    want = oracle_peel(mask, band & (s1 > 60.0), 3)
    np.testing.assert_array_equal(got, want)
    # Only removes; a pixel removed has a removed or outside neighbour chain.
    assert np.all(got <= mask)
    assert ndi.binary_fill_holes(got).sum() - got.sum() <= (
        ndi.binary_fill_holes(mask).sum() - mask.sum()
    )


@pytest.mark.parametrize(
    ("variant", "noise_too_large"),
    [
        ({}, False),
        ({"halo_strength": 0.5}, True),
        ({"psf_sigma_px": 2.0}, False),
        ({"halo_sigma_px": 10.0}, True),
        ({"halo_kernel": "exponential"}, False),
    ],
    ids=["standard", "weak-halo", "psf-2", "wide-halo", "exponential"],
)
def test_edge_level_puts_outlines_on_the_cells(
    variant: dict[str, object], noise_too_large: bool
) -> None:
    # Ground truth from the generator: matched cells' area ratio. The edge
    # level keeps it within 7 % where the noise margin drifted with the halo.
    params = synth.preset(
        "standard", frame_sizes=((256, 256),), n_fov=1, n_frames=3, **variant
    )
    sim = synth.simulate_fov(params, 0)
    ratios: dict[str, list[float]] = {"edge": [], "noise": []}
    for t in (0, 2):
        frame = sim.render(t)
        truth = frame.labels.astype(np.int64)
        for level in ratios:
            pred, _ = ndi.label(segment_log_std(frame.images[0], halo_level=level).mask)
            nt, npd = truth.max() + 1, pred.max() + 1
            counts = np.bincount(
                (truth * npd + pred).ravel(), minlength=nt * npd
            ).reshape(nt, npd)
            at, ap = counts.sum(1), counts.sum(0)
            iou = counts[1:, 1:] / np.maximum(
                at[1:, None] + ap[None, 1:] - counts[1:, 1:], 1
            )
            ti, pj = np.nonzero(iou > 0.5)
            ratios[level] += (ap[pj + 1] / at[ti + 1]).tolist()
    edge = float(np.median(ratios["edge"]))
    noise = float(np.median(ratios["noise"]))
    assert 0.93 <= edge <= 1.07, edge
    if noise_too_large:
        assert noise > edge + 0.03, (noise, edge)


# --------------------------------------------------------------------------------------
# Window choice (§2.10)
# --------------------------------------------------------------------------------------


def _matched(mask: np.ndarray, truth: np.ndarray) -> float:
    """Share of the true cells that one predicted object covers at IoU > 0.5."""
    labels, _ = ndi.label(mask)
    ids = [i for i in np.unique(truth) if i]
    hits = 0
    for i in ids:
        own = truth == i
        under = labels[own]
        under = under[under > 0]
        if under.size == 0:
            continue
        best = labels == np.bincount(under).argmax()
        hits += np.count_nonzero(own & best) / np.count_nonzero(own | best) > 0.5
    return hits / len(ids)


def _rendered(**overrides: object) -> tuple[np.ndarray, np.ndarray]:
    params = synth.preset(
        "standard", seed=4, frame_sizes=((256, 256),), n_fov=1, n_frames=2,
        **overrides,
    )  # fmt: skip
    frame = synth.simulate_fov(params, 0).render(1)
    return frame.images[0], frame.labels


@pytest.mark.parametrize("window", [3, 5, 7])
def test_separation_of_pure_noise_is_the_quantile_of_its_scatter(window: int) -> None:
    # Poisson noise alone: the 0.99 quantile lies about 3 sigma above the mode,
    # whatever the window and the light level; a window is never chosen on it.
    rng = np.random.default_rng(window)
    for level in (50.0, 3000.0):
        frame = rng.poisson(level, (256, 256)).astype(np.uint16)
        s = texture_separation(frame, window=window)
        assert 2.0 < s < 4.5, (level, s)
    choice = choose_window([frame])
    assert choice.window == 3
    assert len(choice.separations) == 3
    assert all(s < MIN_SEPARATION for s in choice.separations)


def test_separation_grows_with_the_contrast_to_noise_ratio() -> None:
    # The same cells, lit ever more dimly (Poisson noise): the edges sink
    # towards the noise, and the separation falls with them.
    _, truth = cell_frame(seed=2)
    rng = np.random.default_rng(2)
    separations = []
    for level in (20000.0, 4000.0, 800.0, 160.0):
        light = np.where(truth, 0.7, 1.0) * level
        frame = rng.poisson(light).astype(np.uint16)
        separations.append(texture_separation(frame))
    assert separations == sorted(separations, reverse=True)
    assert separations[0] > 2 * separations[-1]


def test_constant_frames_have_no_separation_and_keep_the_first_window() -> None:
    flat = np.full((64, 64), 100, np.uint16)
    assert math.isnan(texture_separation(flat))
    choice = choose_window([flat, np.zeros((64, 64), np.uint16)])
    assert choice.window == 3
    assert all(math.isnan(s) for s in choice.separations)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 4}, "odd"),
        ({"window": 1}, "window"),
        ({"quantile": 1.0}, "quantile"),
        ({"quantile": 0.0}, "quantile"),
    ],
)
def test_separation_rejects_bad_options(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        texture_separation(np.zeros((16, 16), np.uint16), **kwargs)


def test_choose_window_rejects_bad_options() -> None:
    frame = np.zeros((16, 16), np.uint16)
    with pytest.raises(ValueError, match="at least one"):
        choose_window([frame], candidates=())
    with pytest.raises(ValueError, match="min_separation"):
        choose_window([frame], min_separation=math.nan)


def test_well_lit_phase_contrast_keeps_the_3_px_window() -> None:
    frame, _ = _rendered()
    choice = choose_window([frame])
    assert choice.window == 3
    assert len(choice.separations) == 1
    assert choice.separations[0] >= MIN_SEPARATION


def test_dim_phase_contrast_takes_a_wider_window_that_finds_more_cells() -> None:
    # Photon-starved phase contrast (a tenth of the standard light): with 3 px
    # the outlines break up in the noise and cells are lost; the window chosen
    # finds clearly more of them.
    frame, truth = _rendered(phase_level_adu=900.0, read_noise_adu=4.0)
    choice = choose_window([frame])
    assert choice.window > 3
    assert choice.separations[0] < MIN_SEPARATION <= choice.separations[-1]
    narrow = _matched(segment_log_std(frame, window=3).mask, truth)
    chosen = _matched(segment_log_std(frame, window=choice.window).mask, truth)
    assert chosen >= narrow + 0.1, (narrow, chosen)
    assert chosen >= 0.9
