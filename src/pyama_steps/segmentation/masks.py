"""Binary mask helpers (algorithms.md §2.4): hole filling, hysteresis, minimum area.

Package-internal: the stages of :mod:`pyama_steps.segmentation.log_std`
(threshold, fill, split, restores) share these labelling helpers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from pyama_steps._typing import BoolArray, LabelArray

__all__: list[str] = []


def _fill_holes(mask: BoolArray, mirror_px: int = 0) -> BoolArray:
    """Fill background 4-connected components that are enclosed by foreground.

    With ``mirror_px = 0`` a component touching the frame edge is never a hole:
    equal to ``scipy.ndimage.binary_fill_holes(mask)`` (default cross
    structure), but faster (one labelling of the background instead of a
    propagation). With ``mirror_px > 0`` the mask is extended by
    ``np.pad(mask, ((py, py), (px, px)), mode='symmetric')``, ``py =
    min(mirror_px, Y // 4)`` and ``px = min(mirror_px, X // 4)`` (written ``p``
    below), so a cell cut by the frame edge, whose ring is open at the
    edge, is closed by its mirror image. A component of the extended background
    is a hole when it does not touch the border of the extended frame and, if
    it touches the frame edge, does not reach the core of the frame (rows
    ``py .. Y-1-py`` and columns ``px .. X-1-px``). The last rule keeps the
    mirror from closing large background areas: the interior of a cut cell lies
    within ``p`` px of the edge.
    """
    rows, cols = mask.shape
    # A quarter of the frame at most: the core keeps half of each axis.
    py, px = min(mirror_px, rows // 4), min(mirror_px, cols // 4)
    grid = np.pad(mask, ((py, py), (px, px)), mode="symmetric") if py or px else mask
    labels, count = _label_compact(~grid)
    if count == 0:
        return mask.copy()
    open_to_edge = np.zeros(count + 1, dtype=np.bool_)
    _mark_edge(open_to_edge, labels)
    inner = labels[py : py + rows, px : px + cols]
    if py or px:
        # The core, farther than p px from every edge, is entered through
        # its own border.
        deep = np.zeros(count + 1, dtype=np.bool_)
        _mark_edge(deep, inner[py : rows - py, px : cols - px])
        at_edge = np.zeros(count + 1, dtype=np.bool_)
        _mark_edge(at_edge, inner)
        open_to_edge |= deep & at_edge
    # Label 0 is the foreground itself, already in `mask`. Usually the
    # background is a few large regions with few holes, and `_lookup` then
    # compares with each hole instead of a lookup over every pixel.
    holes = ~open_to_edge
    holes[0] = False
    return mask | _lookup(holes, inner)


def _label_compact(mask: BoolArray) -> tuple[npt.NDArray[np.integer[Any]], int]:
    """``ndi.label(mask)`` in uint16 when the labels fit, else in int32.

    The same labels; uint16 halves the memory that labelling and the lookups
    after it stream through.
    """
    try:
        labels, count = ndi.label(mask, output=np.uint16)
    except RuntimeError:  # more than 65535 components
        labels, count = ndi.label(mask)
    return labels, int(count)


def _lookup(table: BoolArray, labels: LabelArray) -> BoolArray:
    """Return ``table[labels]`` (a bool image), fast.

    A few true entries are found by comparisons, which stream the label image
    once each; otherwise np.take with a uint8 view of the table (about twice as
    fast as fancy indexing, and faster than a bool table).
    """
    true = np.flatnonzero(table)
    if true.size <= 2:
        out = np.zeros(labels.shape, dtype=np.bool_)
        for value in true.tolist():
            out |= labels == value
        return out
    return np.take(table.view(np.uint8), labels).view(np.bool_)


def _hysteresis(strong: BoolArray, weak: BoolArray) -> BoolArray:
    """Keep the 4-connected components of `weak` that hold a `strong` pixel.

    `strong` must be a subset of `weak`.
    """
    labels, count = ndi.label(weak)
    if count == 0:
        return weak.copy()
    seeded = np.zeros(count + 1, dtype=np.bool_)
    seeded[labels[strong]] = True
    seeded[0] = False
    return _lookup(seeded, labels)


def _remove_small(
    mask: BoolArray, min_area: int, *, keep_edge: bool = False
) -> BoolArray:
    """Remove 4-connected components with fewer than `min_area` pixels.

    With `keep_edge`, components with a pixel on the frame edge are kept.
    """
    labels, count = ndi.label(mask)
    if count == 0:
        return mask.copy()
    keep = np.bincount(labels[mask], minlength=count + 1) >= min_area
    if keep_edge:
        _mark_edge(keep, labels)
    keep[0] = False
    return _lookup(keep, labels)


def _mark_edge(flags: BoolArray, labels: LabelArray) -> None:
    """Set ``flags[label]`` for every label on the first/last row or column."""
    flags[labels[0]] = True
    flags[labels[-1]] = True
    flags[labels[:, 0]] = True
    flags[labels[:, -1]] = True


def _boundary4(mask: BoolArray) -> BoolArray:
    """Pixels of `mask` with a 4-neighbour outside `mask` or outside the frame."""
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    inner[[0, -1]] = False
    inner[:, [0, -1]] = False
    return mask & ~inner
