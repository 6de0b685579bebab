"""The cleanup stages of log-STD segmentation after the halo trim (algorithms.md §2.4).

Package-internal: :mod:`pyama_steps.segmentation.log_std` runs them in order.
The opening, closing and refill, with the cells whose phase-bright centre the
trim removed kept whole (``fill_trim_holes``,
:mod:`pyama_steps.segmentation.centres`); then the shrink, the split of
touching cells and the minimum area; and the objects without an edge of their
own (``min_edge_fraction``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import numpy as np

from pyama_steps._typing import BoolArray
from pyama_steps.morphology import dilate_square as _dilate
from pyama_steps.morphology import erode_square as _erode
from pyama_steps.morphology import open_square
from pyama_steps.segmentation.centres import _trim_holes, _whole_cells
from pyama_steps.segmentation.masks import _fill_holes, _label_compact, _lookup
from pyama_steps.segmentation.split import _split_and_filter, _watershed_split

if TYPE_CHECKING:
    from pyama_steps.segmentation.options import LogStdOptions

__all__: list[str] = []

#: Width (px, chessboard) of the band inside an object's outline that
#: :func:`_drop_edgeless` measures: its outline pixels.
EDGE_BAND_PX: Final = 1


def _open_close_refill(
    fg: BoolArray,
    options: LogStdOptions,
    *,
    trimmed: bool,
    filled: BoolArray | None,
) -> BoolArray:
    """Open, close and refill; add the cells the trim holed (§2.4)."""
    keep_whole = trimmed and options.fill_trim_holes
    opened = _open(fg, options)
    out = opened
    if options.close_iterations:
        out = _dilate(out, options.close_size, options.close_iterations)
        out = _erode(out, options.close_size, options.close_iterations)
    refilled = None
    if options.refill_holes or keep_whole:
        # The frame edge is open here: the trim has cleared the bright background
        # bays that the mirror closed between cells at the edge, and filling
        # them again would join those cells.
        refilled = _fill_holes(opened)
        if options.refill_holes:
            out = refilled if out is opened else _fill_holes(out)
    if keep_whole and refilled is not None:
        # A hole the trim opened inside a cell is its phase-bright centre;
        # where the opening cut the thin ring around it, the refill could not
        # close it. The cell opened with the hole filled is added when it is
        # convex (one cell, not cells joined around a background pocket).
        holes = _trim_holes(fg, filled if options.fill_holes else None)
        lost = holes & ~refilled
        if lost.any():
            out = out | _whole_cells(
                fg,
                holes,
                lost,
                open_size=options.open_size,
                open_iterations=options.open_iterations,
                min_solidity=options.fill_trim_holes_solidity,
            )
    return out


def _open(fg: BoolArray, options: LogStdOptions) -> BoolArray:
    return open_square(fg, options.open_size, options.open_iterations)


def _shrink_and_split(fg: BoolArray, options: LogStdOptions) -> BoolArray:
    """Shrink, split touching cells and apply the minimum area (§2.4)."""
    if options.shrink_px > 0:
        fg = _erode(fg, 2 * options.shrink_px + 1, 1)
    if options.split == "watershed":
        fg = _watershed_split(fg, options.split_h_px)
    return _split_and_filter(
        fg,
        neck_ratio=options.split_neck_ratio if options.split == "neck" else None,
        min_area=options.min_area_px,
        keep_edge=options.min_area_keep_edge,
    )


def _drop_edgeless(
    fg: BoolArray, textured: BoolArray, min_fraction: float
) -> BoolArray:
    """Remove the objects along whose outline too little texture lies (§2.4).

    A cell's outline is its edge: the phase step makes the local std high all
    along it. A pocket of background that the hole filling closed between
    cells and halos, and that the trim then cut loose, has an outline drawn by
    the fill and the trim instead. An object (4-connected component of `fg`)
    is removed when fewer than `min_fraction` of the pixels of its outline band
    (within :data:`EDGE_BAND_PX` px of the background, chessboard; the frame
    edge is not an outline) are in `textured`.
    """
    if min_fraction <= 0.0 or not fg.any():
        return fg
    band = fg & ~_erode(fg, 2 * EDGE_BAND_PX + 1, 1)
    labels, count = _label_compact(fg)
    in_band = np.bincount(labels[band], minlength=count + 1)
    with_texture = np.bincount(labels[band & textured], minlength=count + 1)
    drop = with_texture < min_fraction * in_band
    drop[0] = False
    if not drop.any():
        return fg
    return fg & ~_lookup(drop, labels)
