"""Per-frame features of every cell of a track-labelled frame (§5.3).

:func:`frame_features` measures every cell of one frame in a single O(P)
pass over its foreground pixels: area, centroid, bounding box, and per
fluorescence channel the total (over the cell's territory,
:mod:`pyama_steps.traces.territory`), the mean and the raw mean intensity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from pyama_steps._arrays import check_label_array, check_no_negative_ids
from pyama_steps._typing import LabelArray
from pyama_steps._validate import check_int
from pyama_steps.traces.territory import Territories, grow_territories

__all__ = ["FrameFeatures", "frame_features"]

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]
IntpArray = npt.NDArray[np.intp]


def _check_plane(plane: object, name: str, shape: tuple[int, ...]) -> np.ndarray:
    if not isinstance(plane, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(plane).__name__!r}")
    if plane.shape != shape:
        raise ValueError(
            f"{name} must have the shape of labels {shape!r}, got {plane.shape!r}"
        )
    if plane.dtype.kind not in "uif":
        raise TypeError(f"{name} must have a real numeric dtype, got {plane.dtype!r}")
    return plane


@dataclass(frozen=True)
class FrameFeatures:
    """Features of every cell present in one frame.

    Attributes
    ----------
    ids : (n,) ndarray of int64
        Track ids present in the frame, ascending.
    area : (n,) ndarray of int64
        Pixel count of each cell (never eroded).
    position_x, position_y : (n,) ndarray of float64
        Centroid column and row, in pixels.
    bbox_x0, bbox_y0, bbox_x1, bbox_y1 : (n,) ndarray of int64
        Inclusive minimum/maximum column and row.
    intensity_total : (C, n) ndarray of float64
        Per fluorescence channel (in the order given), the sum of the
        corrected image over the cell's territory (``reach_px`` > 0) or over
        the (eroded) cell.
    intensity_mean : (C, n) ndarray of float64
        The sum of the corrected image over the (eroded) cell divided by its
        pixel count: the mean over the mask only.
    intensity_raw_mean : (C, n) ndarray of float64
        Mean raw count over the (eroded) cell.

    Notes
    -----
    The three intensity arrays are NaN where erosion removed the whole cell.
    """

    ids: Int64Array
    area: Int64Array
    position_x: Float64Array
    position_y: Float64Array
    bbox_x0: Int64Array
    bbox_y0: Int64Array
    bbox_x1: Int64Array
    bbox_y1: Int64Array
    intensity_total: Float64Array
    intensity_mean: Float64Array
    intensity_raw_mean: Float64Array

    @property
    def n_cells(self) -> int:
        """Number of cells in the frame."""
        return int(self.ids.size)

    @property
    def n_channels(self) -> int:
        """Number of fluorescence channels measured."""
        return int(self.intensity_total.shape[0])


def frame_features(
    labels: LabelArray,
    *,
    fl_raw: Sequence[npt.NDArray[Any]],
    fl_corrected: Sequence[npt.NDArray[Any]],
    erosion_px: int = 0,
    reach_px: int = 0,
) -> FrameFeatures:
    """Measure every cell of one track-labelled frame in one O(P) pass.

    Parameters
    ----------
    labels : (Y, X) ndarray of int
        Track ids, 0 for background (uint16 or uint32 from tracking; any
        non-negative integer dtype works). Ids may be sparse.
    fl_raw : sequence of (Y, X) ndarray
        Raw fluorescence frame (normally uint16) of each FL channel.
    fl_corrected : sequence of (Y, X) ndarray
        Background-corrected frame (normally float32) of each FL channel,
        in the order of `fl_raw`.
    erosion_px : int, optional
        Erode each cell by a ``(2r+1)²`` square before the mean intensity
        columns (and the total when `reach_px` is 0); 0 turns erosion off.
        The area is never eroded.
    reach_px : int, optional
        The total is summed over the cell's territory: its mask plus the
        background pixels nearer to it than to any other cell, up to this
        many px away (:func:`pyama_steps.traces.territory.grow_territories`; a pixel
        at equal distance from several cells is split between them). It
        collects the light the PSF spreads across the outline, so it does not
        depend on where within a pixel or two the edge is drawn. 0 sums over
        the (eroded) mask only.

    Returns
    -------
    FrameFeatures
        One entry per present id, ascending.

    Raises
    ------
    TypeError
        If an array has the wrong type or dtype, or `erosion_px` is not an
        integer.
    ValueError
        If `labels` is not 2-D or holds negative values, the channel lists
        differ in length, a channel frame's shape differs from `labels`, or
        `erosion_px` is negative.

    Notes
    -----
    algorithms.md §5.3: ``bincount`` of the compacted labels gives areas and
    (with row/column weights) centroids, ``find_objects`` the boxes, and
    ``bincount`` with float64 weights the intensity sums; ``bincount`` adds
    in pixel order, so sums are reproducible. The bincounts run over the
    foreground pixels only, in raster order: background pixels only ever
    reach bin 0, so every cell's sum is the same float as over all pixels,
    at a fraction of the cost. Erosion keeps a pixel only if the minimum and
    maximum filters (window ``2r+1``, constant 0 outside the frame) both
    equal its label, so cells erode independently and from the frame edge.
    PyAMA measured each cell with a full-frame mask, O(cells·P), and took
    the bbox centre as the position.
    """
    radius, reach, raws, corrs = _checked_frame_inputs(
        labels, fl_raw, fl_corrected, erosion_px=erosion_px, reach_px=reach_px
    )

    n_ch = len(raws)
    width = labels.shape[1]
    flat = labels.ravel()
    # Only foreground pixels reach a cell's bin: bincount over them, in raster
    # order, adds each cell's weights in the same order as over all pixels,
    # so every sum is bit-identical to the full-frame bincount of §5.3.
    fg = np.flatnonzero(flat)
    fg_labels = flat[fg]
    cnt = np.bincount(fg_labels) if fg.size else np.zeros(1, dtype=np.int64)
    ids = np.flatnonzero(cnt).astype(np.int64)
    n = int(ids.size)
    if n == 0:
        # No cell in this frame (empty segmentation): zero rows.
        return _no_cells(n_ch)

    # Compact labels 1..n (sparse ids are fine) so every bincount has n + 1 bins.
    compact = np.zeros(cnt.size, dtype=np.intp)
    compact[ids] = np.arange(1, n + 1)
    cl = compact[fg_labels]
    area = cnt[ids].astype(np.int64)

    rows, cols = np.divmod(fg, width)
    sum_y = np.bincount(cl, weights=rows.astype(np.float64), minlength=n + 1)[1:]
    sum_x = np.bincount(cl, weights=cols.astype(np.float64), minlength=n + 1)[1:]
    position_y = sum_y / area
    position_x = sum_x / area
    boxes = _boxes(labels, ids)

    ce, eroded_area = _eroded(labels, radius, fg, fg_labels, cl, area)
    ring = grow_territories(labels, reach_px=reach) if reach > 0 and n_ch else None
    total, mean, raw_mean = _intensities(
        raws,
        corrs,
        fg=fg,
        cl=cl,
        ce=ce,
        eroded_area=eroded_area,
        compact=compact,
        ring=ring,
        radius=radius,
    )

    return FrameFeatures(
        ids=ids,
        area=area,
        position_x=position_x,
        position_y=position_y,
        bbox_x0=boxes[:, 1].copy(),
        bbox_y0=boxes[:, 0].copy(),
        bbox_x1=boxes[:, 3] - 1,
        bbox_y1=boxes[:, 2] - 1,
        intensity_total=total,
        intensity_mean=mean,
        intensity_raw_mean=raw_mean,
    )


def _checked_frame_inputs(
    labels: LabelArray,
    fl_raw: Sequence[npt.NDArray[Any]],
    fl_corrected: Sequence[npt.NDArray[Any]],
    *,
    erosion_px: int,
    reach_px: int,
) -> tuple[int, int, list[np.ndarray], list[np.ndarray]]:
    """Validate :func:`frame_features`' arguments; return radius, reach, planes."""
    check_label_array(labels, "labels")
    radius = check_int("erosion_px", erosion_px, minimum=0)
    reach = check_int("reach_px", reach_px, minimum=0)
    for name, seq in (("fl_raw", fl_raw), ("fl_corrected", fl_corrected)):
        if isinstance(seq, np.ndarray) or not isinstance(seq, Sequence):
            raise TypeError(
                f"{name} must be a sequence (list or tuple) of (Y, X) arrays, "
                f"got {type(seq).__name__!r}"
            )
    if len(fl_raw) != len(fl_corrected):
        raise ValueError(
            "fl_raw and fl_corrected must have one frame per channel each, got "
            f"{len(fl_raw)!r} and {len(fl_corrected)!r}"
        )
    raws = [_check_plane(p, f"fl_raw[{i}]", labels.shape) for i, p in enumerate(fl_raw)]
    corrs = [
        _check_plane(p, f"fl_corrected[{i}]", labels.shape)
        for i, p in enumerate(fl_corrected)
    ]
    check_no_negative_ids(labels, "labels", what="values")
    return radius, reach, raws, corrs


def _no_cells(n_ch: int) -> FrameFeatures:
    """Return the features of a frame without cells: zero rows, `n_ch` channels."""
    empty_i = np.zeros(0, dtype=np.int64)
    empty_f = np.zeros(0, dtype=np.float64)
    empty_c = np.zeros((n_ch, 0), dtype=np.float64)
    return FrameFeatures(
        ids=empty_i,
        area=empty_i.copy(),
        position_x=empty_f,
        position_y=empty_f.copy(),
        bbox_x0=empty_i.copy(),
        bbox_y0=empty_i.copy(),
        bbox_x1=empty_i.copy(),
        bbox_y1=empty_i.copy(),
        intensity_total=empty_c,
        intensity_mean=empty_c.copy(),
        intensity_raw_mean=empty_c.copy(),
    )


def _boxes(labels: LabelArray, ids: Int64Array) -> Int64Array:
    """``(y0, x0, y1, x1)`` of each id, ends exclusive, shape (n, 4)."""
    n = int(ids.size)
    # find_objects on the track ids gives the boxes of the compact labels
    # without compacting the whole frame.
    objects = ndimage.find_objects(labels)
    boxes = np.array(
        [
            (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop)
            for sl in (objects[i - 1] for i in ids.tolist())
            if sl is not None
        ],
        dtype=np.int64,
    ).reshape(n, 4)
    return boxes


def _eroded(
    labels: LabelArray,
    radius: int,
    fg: IntpArray,
    fg_labels: npt.NDArray[np.integer[Any]],
    cl: IntpArray,
    area: Int64Array,
) -> tuple[IntpArray, Int64Array]:
    """Compact labels at the foreground pixels after erosion, and the new areas."""
    n = int(area.size)
    if radius == 0:
        return cl, area
    # A pixel survives only if its whole (2r+1)² window lies in its own
    # cell: the window's minimum and maximum both equal the label (0
    # outside the frame), so cells erode independently and from the edge.
    size = 2 * radius + 1
    low = ndimage.minimum_filter(labels, size=size, mode="constant", cval=0)
    high = ndimage.maximum_filter(labels, size=size, mode="constant", cval=0)
    keep = (low.ravel()[fg] == fg_labels) & (high.ravel()[fg] == fg_labels)
    ce = np.where(keep, cl, 0)
    eroded_area = np.bincount(ce, minlength=n + 1)[1:].astype(np.int64)
    return ce, eroded_area


def _intensities(
    raws: list[np.ndarray],
    corrs: list[np.ndarray],
    *,
    fg: IntpArray,
    cl: IntpArray,
    ce: IntpArray,
    eroded_area: Int64Array,
    compact: IntpArray,
    ring: Territories | None,
    radius: int,
) -> tuple[Float64Array, Float64Array, Float64Array]:
    """Total, mean and raw mean intensity, each (C, n), NaN where eroded away."""
    n_ch, n = len(raws), int(eroded_area.size)
    has_pixels = eroded_area > 0
    total = np.full((n_ch, n), np.nan, dtype=np.float64)
    mean = np.full((n_ch, n), np.nan, dtype=np.float64)
    raw_mean = np.full((n_ch, n), np.nan, dtype=np.float64)
    for c, (raw, corr) in enumerate(zip(raws, corrs, strict=True)):
        corr_fg = corr.ravel()[fg].astype(np.float64)
        tot = np.bincount(ce, weights=corr_fg, minlength=n + 1)[1:]
        weights = raw.ravel()[fg].astype(np.float64)
        rsum = np.bincount(ce, weights=weights, minlength=n + 1)[1:]
        # A cell eroded away has no measurement: NaN, never 0 (§5.5).
        mean[c, has_pixels] = tot[has_pixels] / eroded_area[has_pixels]
        raw_mean[c, has_pixels] = rsum[has_pixels] / eroded_area[has_pixels]
        if ring is None:
            total[c, has_pixels] = tot[has_pixels]
            continue
        # The territory total: the whole (never eroded) mask plus the
        # cell's share of the pixels around it.
        inside = (
            tot
            if radius == 0
            else np.bincount(cl, weights=corr_fg, minlength=n + 1)[1:]
        )
        around = corr.ravel()[ring.index].astype(np.float64) * ring.weight
        total[c] = (
            inside
            + np.bincount(compact[ring.label], weights=around, minlength=n + 1)[1:]
        )
    return total, mean, raw_mean
