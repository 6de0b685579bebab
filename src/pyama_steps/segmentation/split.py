"""Separation of touching cells and the minimum area (algorithms.md §2.4).

``split='neck'`` cuts components at distance-map necks (:func:`_split_and_filter`),
``split='watershed'`` is an h-maxima watershed (:func:`_watershed_split`).
Package-internal: called by :mod:`pyama_steps.segmentation.log_std`.
"""

from __future__ import annotations

import math
from typing import Final, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from pyama_steps._typing import BoolArray, LabelArray
from pyama_steps.segmentation.masks import (
    _boundary4,
    _label_compact,
    _lookup,
    _mark_edge,
)

__all__ = ["SplitMethod"]

SplitMethod: TypeAlias = Literal["none", "watershed", "neck"]


_SPLIT_METHODS: Final = ("none", "watershed", "neck")


# Neck split (§2.4): components with 4-boundary² > 4π·_NECK_ROUNDNESS·area are
# examined (a digital disk or ellipse up to aspect 1.6 gives 0.7-0.9, two touching
# disks about 1.5); distance maxima lower than _NECK_MIN_PEAK px seed nothing.
_NECK_ROUNDNESS: Final = 0.96
_NECK_MIN_PEAK: Final = 2.0


def _split_and_filter(
    mask: BoolArray, *, neck_ratio: float | None, min_area: int, keep_edge: bool
) -> BoolArray:
    """Neck split (if `neck_ratio` is given), then the minimum area (§2.4).

    Equal to splitting every component with `_neck_split` and then applying
    `_remove_small` to the result; one labelling serves both steps.
    """
    if neck_ratio is None and min_area == 0:
        return mask
    labels, count = _label_compact(mask)
    if count == 0:
        return mask.copy()
    area = np.bincount(labels[mask], minlength=count + 1)
    keep = area >= min_area
    if keep_edge:
        _mark_edge(keep, labels)
    keep[0] = False
    out = _lookup(keep, labels)
    if neck_ratio is None:
        return out
    boundary = np.flatnonzero(_boundary4(mask))
    owner = labels.ravel()[boundary]
    perimeter = np.bincount(owner, minlength=count + 1).astype(np.float64)
    candidate = perimeter * perimeter > 4.0 * math.pi * _NECK_ROUNDNESS * area
    candidate[0] = False
    if not candidate.any():
        return out
    # Bounding boxes of the candidates from their boundary pixels.
    chosen = candidate[owner]
    cols = mask.shape[1]
    owner = owner[chosen]
    y = boundary[chosen] // cols
    x = boundary[chosen] - y * cols
    order = np.argsort(owner, kind="stable")
    owner, y, x = owner[order], y[order], x[order]
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    boxes = zip(
        owner[starts].tolist(),
        np.minimum.reduceat(y, starts).tolist(),
        (np.maximum.reduceat(y, starts) + 1).tolist(),
        np.minimum.reduceat(x, starts).tolist(),
        (np.maximum.reduceat(x, starts) + 1).tolist(),
        strict=True,
    )
    rows = mask.shape[0]
    windows = [(slice(y0, y1), slice(x0, x1), label) for label, y0, y1, x0, x1 in boxes]
    owns = [labels[wy, wx] == label for wy, wx, label in windows]
    for (wy, wx, _), own, parts in zip(
        windows, owns, _neck_split_batch(owns, neck_ratio), strict=True
    ):
        if parts is None:
            continue
        y0, y1, x0, x1 = wy.start, wy.stop, wx.start, wx.stop
        window = (wy, wx)
        pieces, n_pieces = ndi.label(parts)
        piece_keep = np.bincount(pieces.ravel(), minlength=n_pieces + 1) >= min_area
        if keep_edge:
            if y0 == 0:
                piece_keep[pieces[0]] = True
            if y1 == rows:
                piece_keep[pieces[-1]] = True
            if x0 == 0:
                piece_keep[pieces[:, 0]] = True
            if x1 == cols:
                piece_keep[pieces[:, -1]] = True
        piece_keep[0] = False
        target = out[window]
        target[own] = np.take(piece_keep, pieces[own])
    return out


def _neck_split(own: BoolArray, ratio: float) -> BoolArray | None:
    """Cut one 4-connected component at its distance-map necks (§2.4).

    Parameters
    ----------
    own : (H, W) ndarray of bool
        The component in its bounding box.
    ratio : float
        `split_neck_ratio`.

    Returns
    -------
    (H, W) ndarray of bool or None
        The component with 1-px cuts between its cells, or ``None`` when it
        stays one cell.
    """
    return _neck_split_batch([own], ratio)[0]


def _neck_split_batch(owns: list[BoolArray], ratio: float) -> list[BoolArray | None]:
    """`_neck_split` of several components at once.

    The components, each padded by 1 px of background, are packed side by side
    into one image, so that every step runs once over all of them; the padding
    keeps them apart, and the relative order of the marker labels within each
    component (raster order) is that of the component alone, so the result is
    that of `_neck_split` on each.
    """
    if not owns:
        return []
    shapes = [(own.shape[0] + 2, own.shape[1] + 2) for own in owns]
    sheet, origins, crop = _pack(shapes)
    for own, (oy, ox) in zip(owns, origins, strict=True):
        sheet[oy + 1 : oy + 1 + own.shape[0], ox + 1 : ox + 1 + own.shape[1]] = own
    distance = _octagonal_distance(sheet)
    peak = sheet & (distance >= _NECK_MIN_PEAK)
    peak &= distance == ndi.maximum_filter(distance, size=3, mode="constant")
    markers, count = ndi.label(peak, structure=np.ones((3, 3), dtype=np.bool_))
    results: list[BoolArray | None] = [None] * len(owns)
    if count < 2:
        return results
    regions = _power_regions(sheet, distance, markers, count, crop, origins)
    if regions is None:
        return results
    merged = _merge_at_necks(regions, distance, count, ratio)
    if merged is None:
        return results
    cut = _separate_labels(merged)
    for index, ((oy, ox), (height, width)) in enumerate(
        zip(origins, shapes, strict=True)
    ):
        window = merged[oy : oy + height, ox : ox + width]
        groups = np.unique(window)
        if groups.size - (groups[0] == 0) >= 2:
            results[index] = cut[oy + 1 : oy + height - 1, ox + 1 : ox + width - 1]
    return results


def _pack(
    shapes: list[tuple[int, int]],
) -> tuple[BoolArray, list[tuple[int, int]], npt.NDArray[np.intp]]:
    """Place rectangles on shelves (tallest first) in one sheet.

    Returns the empty bool sheet, the top-left corner of each rectangle and an
    image of the rectangle index of each sheet pixel (-1 between them).
    """
    width = max(
        max(w for _, w in shapes), math.isqrt(sum(h * w for h, w in shapes)) + 1
    )
    origins = [(0, 0)] * len(shapes)
    y = x = shelf = 0
    for index in sorted(range(len(shapes)), key=lambda i: -shapes[i][0]):
        h, w = shapes[index]
        if x + w > width:
            y += shelf
            x = shelf = 0
        origins[index] = (y, x)
        x += w
        shelf = max(shelf, h)
    crop = np.full((y + shelf, width), -1, dtype=np.intp)
    for index, ((oy, ox), (h, w)) in enumerate(zip(origins, shapes, strict=True)):
        crop[oy : oy + h, ox : ox + w] = index
    return np.zeros(crop.shape, dtype=np.bool_), origins, crop


def _octagonal_distance(mask: BoolArray) -> npt.NDArray[np.float64]:
    """Mean of the city-block and chessboard distances to the background.

    Within 6 % of the Euclidean distance in every direction, at a few percent
    of its cost (scipy's chamfer transforms).
    """
    taxicab = ndi.distance_transform_cdt(mask, metric="taxicab")
    chessboard = ndi.distance_transform_cdt(mask, metric="chessboard")
    total: npt.NDArray[np.float64] = taxicab.astype(np.float64)
    total += chessboard
    total *= 0.5
    return total


def _power_regions(
    mask: BoolArray,
    distance: npt.NDArray[np.float64],
    markers: LabelArray,
    count: int,
    crop: npt.NDArray[np.intp] | None = None,
    origins: list[tuple[int, int]] | None = None,
) -> npt.NDArray[np.intp] | None:
    """Assign each pixel of `mask` to the marker of least power distance.

    Marker ``i`` (8-connected plateau of distance maxima, all at height
    ``h_i``) has its centroid ``c_i``; pixel ``p`` goes to the marker with the
    smallest ``|p - c_i|² - h_i²``, the lowest label on ties. For two touching
    disks the dividing line (the radical axis) passes through their contact.
    With `crop` and `origins` (from `_pack`), a pixel only sees the markers of
    its own rectangle, and coordinates are taken relative to the rectangle's
    corner (so the arithmetic is that of the rectangle alone). ``None`` when
    no rectangle holds two markers.
    """
    if crop is None or origins is None:
        crop = np.zeros(mask.shape, dtype=np.intp)
        origins = [(0, 0)]
    corner = np.array(origins, dtype=np.intp).reshape(-1, 2)
    my, mx = np.nonzero(markers)
    ml = markers[my, mx]
    owner = np.zeros(count + 1, dtype=np.intp)
    owner[ml] = crop[my, mx]
    my = my - corner[owner[ml], 0]
    mx = mx - corner[owner[ml], 1]
    size = np.bincount(ml, minlength=count + 1)[1:].astype(np.float64)
    cy = np.bincount(ml, weights=my, minlength=count + 1)[1:] / size
    cx = np.bincount(ml, weights=mx, minlength=count + 1)[1:] / size
    height = np.zeros(count + 1)
    height[ml] = distance[my + corner[owner[ml], 0], mx + corner[owner[ml], 1]]
    # Markers grouped by rectangle, in label order within each.
    per_crop = np.bincount(owner[1:], minlength=len(origins))
    first = np.concatenate(([0], np.cumsum(per_crop)[:-1]))
    ordered = np.argsort(owner[1:], kind="stable") + 1
    active = per_crop >= 2
    if not active.any():
        return None
    py, px = np.nonzero(mask & active[crop] & (crop >= 0))
    pc = crop[py, px]
    ry = py - corner[pc, 0]
    rx = px - corner[pc, 1]
    start = first[pc]
    available = per_crop[pc]
    best = np.full(py.size, np.inf)
    chosen = np.zeros(py.size, dtype=np.intp)
    for j in range(int(available.max())):
        sel = np.flatnonzero(available > j)
        marker = ordered[start[sel] + j]
        power = (ry[sel] - cy[marker - 1]) ** 2
        power += (rx[sel] - cx[marker - 1]) ** 2
        power -= height[marker] ** 2
        better = power < best[sel]
        best[sel[better]] = power[better]
        chosen[sel[better]] = marker[better]
    regions = np.zeros(mask.shape, dtype=np.intp)
    regions[py, px] = chosen
    return regions


def _merge_at_necks(
    regions: npt.NDArray[np.intp],
    distance: npt.NDArray[np.float64],
    count: int,
    ratio: float,
) -> npt.NDArray[np.intp] | None:
    """Merge adjacent regions unless the neck between them is narrow.

    The saddle of two 4-adjacent regions is the largest ``min(d(p), d(q))``
    over their adjacent pixel pairs ``(p, q)``. Pairs are taken by decreasing
    saddle (then increasing labels); two groups merge when the saddle is at
    least `ratio` times the lower of their highest distances. Returns the
    merged regions (labelled by the lowest member), or ``None`` when a single
    group remains.
    """
    top = np.zeros(count + 1)
    np.maximum.at(top, regions.ravel(), distance.ravel())
    pairs = []
    for first, second, d_first, d_second in (
        (regions[:-1], regions[1:], distance[:-1], distance[1:]),
        (regions[:, :-1], regions[:, 1:], distance[:, :-1], distance[:, 1:]),
    ):
        touch = (first != second) & (first > 0) & (second > 0)
        a = first[touch]
        b = second[touch]
        key = np.minimum(a, b) * (count + 1) + np.maximum(a, b)
        pairs.append((key, np.minimum(d_first[touch], d_second[touch])))
    key = np.concatenate([k for k, _ in pairs])
    saddle = np.concatenate([v for _, v in pairs])
    if key.size == 0:
        return None
    unique, inverse = np.unique(key, return_inverse=True)
    best = np.full(unique.size, -np.inf)
    np.maximum.at(best, inverse, saddle)
    parent = list(range(count + 1))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for index in np.lexsort((unique, -best)).tolist():
        a = root(int(unique[index]) // (count + 1))
        b = root(int(unique[index]) % (count + 1))
        if a != b and best[index] >= ratio * min(top[a], top[b]):
            low, high = min(a, b), max(a, b)
            parent[high] = low
            top[low] = max(top[a], top[b])
    roots = np.array([root(i) for i in range(count + 1)], dtype=np.intp)
    if np.unique(roots[1:]).size < 2:
        return None
    return roots[regions]


def _watershed_split(mask: BoolArray, h: float) -> BoolArray:
    """Separate touching cells by a distance-transform watershed (§2.4).

    Markers are the 8-connected components of the h-maxima of the Euclidean
    distance transform, numbered in raster order; the flooding of ``-distance``
    inside `mask` is 4-connected. A component without a marker (every peak
    lower than `h`, unless it holds the global maximum) gets no label and is
    removed.
    """
    # skimage is imported here: only this named option needs it.
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    if not mask.any():
        return mask.copy()
    distance = ndi.distance_transform_edt(mask)
    peaks = h_maxima(distance, h)  # type: ignore[no-untyped-call]
    markers, _ = ndi.label(peaks, structure=np.ones((3, 3), dtype=np.bool_))
    labels: LabelArray = watershed(  # type: ignore[no-untyped-call]
        -distance, markers, mask=mask, connectivity=1
    )
    return _separate_labels(labels)


def _separate_labels(labels: LabelArray) -> BoolArray:
    """Return ``labels > 0`` without the pixels where different labels touch.

    Wherever two 4-adjacent pixels carry different non-zero labels, the pixel
    with the larger label becomes background. All decisions are taken on the
    input labels, so the regions come out 4-separated.
    """
    background = np.zeros(labels.shape, dtype=np.bool_)
    for before, after in (
        ((slice(None, -1), slice(None)), (slice(1, None), slice(None))),
        ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
    ):
        first = labels[before]
        second = labels[after]
        touching = (first != second) & (first > 0) & (second > 0)
        background[before] |= touching & (first > second)
        background[after] |= touching & (second > first)
    return (labels > 0) & ~background
