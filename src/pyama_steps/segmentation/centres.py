"""Cells whose phase-bright centre the halo trim removed (algorithms.md §2.4).

Package-internal: a stage of :mod:`pyama_steps.segmentation.log_std`
(``fill_trim_holes``). The trim removes a centre brighter than the background
like halo and leaves a hole in the cell; where the opening cuts the thin ring
around that hole, the refill cannot close it. These helpers find such holes
and the convex cells that the opening of the filled mask keeps whole. Every
full-frame pass here is one labelling of the pixels the trim removed; the
cells themselves are measured in crops around the opened holes.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from pyama_steps._typing import BoolArray
from pyama_steps.morphology import open_square
from pyama_steps.segmentation.masks import (
    _fill_holes,
    _label_compact,
    _lookup,
    _mark_edge,
)

__all__: list[str] = []

# First half-side (px) of the crop around an opened hole; doubled until the
# cell lies inside it.
_CROP_PX = 32


def _trim_holes(trimmed: BoolArray, filled: BoolArray | None) -> BoolArray:
    """Return the holes of `trimmed` (4-connected background, frame edge open).

    With `filled`, the mask the trim cut `trimmed` from and whose background
    components all touch the frame edge (the filled threshold mask), every hole
    of `trimmed` is a 4-connected component of ``filled & ~trimmed`` (the
    pixels the trim removed) that touches neither the frame edge nor a pixel
    outside `filled`; labelling those pixels costs less than labelling the
    whole background. Without it, ``fill_holes(trimmed) & ~trimmed``.
    """
    if filled is None:
        return _fill_holes(trimmed) & ~trimmed
    removed = filled & ~trimmed
    labels, count = _label_compact(removed)
    if count == 0:
        return removed
    reaches_out = np.zeros(count + 1, dtype=np.bool_)
    _mark_edge(reaches_out, labels)
    # removed pixels with a 4-neighbour outside `filled`
    outside = ~filled
    near = np.zeros_like(removed)
    near[1:] |= outside[:-1]
    near[:-1] |= outside[1:]
    near[:, 1:] |= outside[:, :-1]
    near[:, :-1] |= outside[:, 1:]
    reaches_out[labels[near & removed]] = True
    holes = ~reaches_out
    holes[0] = False
    return _lookup(holes, labels)


def _whole_cells(
    trimmed: BoolArray,
    holes: BoolArray,
    lost: BoolArray,
    *,
    open_size: int,
    open_iterations: int,
    min_solidity: float,
) -> BoolArray:
    """Return the convex cells, holes filled, that hold an opened trim hole.

    For each 4-connected component ``K`` of ``open(trimmed | holes)`` that
    holds a pixel of `lost` and whose solidity (pixels over convex-hull
    pixels, as ``skimage.measure.regionprops``) is at least `min_solidity`:
    ``fill_holes(K)``. ``open`` is the opening of §2.4 (outside the frame is
    foreground for the erosions, background for the dilations); it is
    computed in a crop around each lost pixel, which grows until ``K`` lies
    farther than the opening's reach from every side of the crop that is not
    the frame edge, so the result is that of the whole frame.
    """
    # skimage is imported here: only frames with an opened trim hole need it.
    from skimage.morphology import convex_hull_image

    rows, cols = trimmed.shape
    reach = open_iterations * (open_size - 1) + 1
    out = np.zeros_like(trimmed)
    todo = lost.copy()
    # the rows holding a lost pixel first: a full-frame nonzero is slow
    lost_rows = np.flatnonzero(lost.any(axis=1))
    ys, xs = np.nonzero(lost[lost_rows])
    for y, x in zip(lost_rows[ys].tolist(), xs.tolist(), strict=True):
        if not todo[y, x]:
            continue
        half = _CROP_PX
        while True:
            box = (
                slice(max(0, y - half), min(rows, y + half + 1)),
                slice(max(0, x - half), min(cols, x + half + 1)),
            )
            labels, inside = _open_cells(
                trimmed[box] | holes[box],
                open_size,
                open_iterations,
                reach,
                edges=(
                    box[0].start == 0,
                    box[0].stop == rows,
                    box[1].start == 0,
                    box[1].stop == cols,
                ),
            )
            index = labels[y - box[0].start, x - box[1].start]
            if index == 0 or inside[index]:
                break
            half *= 2
        # Every lost pixel of this crop that is background of the opening, or
        # in a cell wholly inside the crop, is decided here.
        seeds = todo[box]
        todo[box] &= ~(labels == 0)
        for cell_index in np.unique(labels[seeds]).tolist():
            if cell_index == 0 or not inside[cell_index]:
                continue
            cell = labels == cell_index
            todo[box] &= ~cell
            hull = convex_hull_image(cell)  # type: ignore[no-untyped-call]
            if np.count_nonzero(cell) >= min_solidity * np.count_nonzero(hull):
                out[box] |= ndi.binary_fill_holes(cell)
    return out


def _open_cells(
    mask: BoolArray,
    open_size: int,
    open_iterations: int,
    reach: int,
    *,
    edges: tuple[bool, bool, bool, bool],
) -> tuple[npt.NDArray[np.int32], BoolArray]:
    """Label the opened crop; flag the cells farther than `reach` from its cut sides.

    `edges` says which sides (top, bottom, left, right) are the frame edge.
    """
    labels, count = ndi.label(open_square(mask, open_size, open_iterations))
    inside = np.ones(count + 1, dtype=np.bool_)
    top, bottom, left, right = edges
    if not top:
        inside[labels[:reach]] = False
    if not bottom:
        inside[labels[-reach:]] = False
    if not left:
        inside[labels[:, :reach]] = False
    if not right:
        inside[labels[:, -reach:]] = False
    return labels, inside
