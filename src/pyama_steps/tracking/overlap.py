"""Per-frame quantities of the tracker: components and their overlaps (§4.3).

:func:`label_components` numbers each frame's connected components (both
tracking passes call it, so pass 2 sees pass 1's numbering);
:func:`overlap_pairs` gives the mask IoU of every overlapping pair of
components of two frames in one O(P) label-pair count. The bounding-box IoU
of the ``upstream`` mode lives here too.
"""

from __future__ import annotations

import numbers
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from pyama_steps._arrays import check_label_array
from pyama_steps._typing import BoolArray, IntArray
from pyama_steps._validate import check_int

__all__ = ["label_components", "overlap_pairs"]

_CONNECTIVITY: Final = {4: 1, 8: 2}

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]


def _check_connectivity(connectivity: object) -> int:
    if (
        isinstance(connectivity, bool)
        or not isinstance(connectivity, numbers.Integral)
        or int(connectivity) not in _CONNECTIVITY
    ):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    return int(connectivity)


def _check_mask(mask: object, name: str = "mask") -> BoolArray:
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(mask).__name__!r}")
    if mask.ndim != 2:
        raise ValueError(f"{name} must be a (Y, X) array, got shape {mask.shape!r}")
    if mask.dtype != np.bool_:
        raise TypeError(
            f"{name} must have dtype bool, got {mask.dtype!r}; "
            "pass a segmentation mask (e.g. seg != 0)"
        )
    return mask


def _check_labels(labels: object, n: object, name: str) -> tuple[IntArray, int]:
    labels = check_label_array(labels, name)
    count = check_int(f"n for {name}", n, minimum=0)
    if labels.size:
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi > count:
            raise ValueError(
                f"{name} must hold labels in [0, {count}] (its component count), "
                f"got values in [{lo}, {hi}]"
            )
    return labels, count


def label_components(
    mask: BoolArray, *, connectivity: int = 4
) -> tuple[npt.NDArray[np.int32], int]:
    """Label the connected components of one segmentation frame.

    Parameters
    ----------
    mask : (Y, X) ndarray of bool
        Segmentation of one frame.
    connectivity : {4, 8}, optional
        4 joins only edge-sharing pixels, 8 also corner-sharing ones.

    Returns
    -------
    labels : (Y, X) ndarray of int32
        0 for background, ``1..n`` for the components, numbered in raster
        order of their first pixel (``scipy.ndimage.label``).
    n : int
        Number of components.

    Raises
    ------
    TypeError
        If `mask` is not a bool array.
    ValueError
        If `mask` is not 2-D or `connectivity` is not 4 or 8.

    Notes
    -----
    Both tracking passes call this function, so the numbering of pass 2 is
    the numbering pass 1 decided on (algorithms.md §4.3).
    """
    rank = _CONNECTIVITY[_check_connectivity(connectivity)]
    _check_mask(mask)
    structure = ndimage.generate_binary_structure(2, rank)
    labels = np.empty(mask.shape, dtype=np.int32)  # label writes every pixel
    n = ndimage.label(mask, structure=structure, output=labels)
    return labels, int(n)


def overlap_pairs(
    comp_u: IntArray, n_u: int, comp_t: IntArray, n_t: int
) -> tuple[Int64Array, Int64Array, Int64Array, Float64Array]:
    """Mask IoU of every pair of overlapping components of two frames.

    Parameters
    ----------
    comp_u : (Y, X) ndarray of int
        Component labels ``0..n_u`` of frame u.
    n_u : int
        Number of components of frame u.
    comp_t : (Y, X) ndarray of int
        Component labels ``0..n_t`` of frame t.
    n_t : int
        Number of components of frame t.

    Returns
    -------
    rows : (K,) ndarray of int64
        Label in frame u of each overlapping pair, ascending.
    cols : (K,) ndarray of int64
        Label in frame t; ascending within equal `rows`.
    intersection : (K,) ndarray of int64
        Shared pixels ``I_ij > 0``.
    iou : (K,) ndarray of float64
        ``I_ij / (A_u[i] + A_t[j] - I_ij)``.

    Raises
    ------
    TypeError
        If a label image is not an integer array.
    ValueError
        If the shapes differ or a label image holds values outside
        ``[0, n]``.

    Notes
    -----
    One O(P) label-pair count (algorithms.md §4.3): the int64 key
    ``comp_u * (n_t + 1) + comp_t`` over the pixels where both frames are
    foreground, counted with ``numpy.unique``. Pairs without a shared pixel
    are never stored.
    """
    comp_u, n_u = _check_labels(comp_u, n_u, "comp_u")
    comp_t, n_t = _check_labels(comp_t, n_t, "comp_t")
    if comp_u.shape != comp_t.shape:
        raise ValueError(
            f"comp_u and comp_t must have the same shape, got {comp_u.shape!r} "
            f"and {comp_t.shape!r}"
        )
    flat_u = comp_u.ravel()
    flat_t = comp_t.ravel()
    fg_t = np.flatnonzero(flat_t)
    area_u = np.bincount(flat_u[flat_u != 0], minlength=n_u + 1).astype(np.int64)
    area_t = np.bincount(flat_t[fg_t], minlength=n_t + 1).astype(np.int64)
    return _pairs(flat_u[fg_t], flat_t[fg_t], area_u, area_t, n_t)


def _pairs(
    cu: IntArray, ct: IntArray, area_u: Int64Array, area_t: Int64Array, n_t: int
) -> tuple[Int64Array, Int64Array, Int64Array, Float64Array]:
    """Overlap table from the labels of frames u and t at t's foreground pixels.

    Only pixels where both labels are non-zero contribute, so restricting the
    scan to t's foreground gives the same table as scanning every pixel.
    """
    both = cu != 0
    width = np.int64(n_t + 1)
    key = cu[both].astype(np.int64) * width + ct[both]
    uniq, counts = np.unique(key, return_counts=True)
    rows = (uniq // width).astype(np.int64)
    cols = (uniq % width).astype(np.int64)
    inter = counts.astype(np.int64)
    union = area_u[rows] + area_t[cols] - inter
    iou: Float64Array = inter / union.astype(np.float64)
    return rows, cols, inter, iou


def _bboxes(comp: IntArray, n: int) -> Int64Array:
    """Pixel bounding boxes ``(y0, x0, y1, x1)``, ends exclusive, shape (n, 4)."""
    boxes = np.zeros((n, 4), dtype=np.int64)
    for i, sl in enumerate(ndimage.find_objects(comp, max_label=n)):
        # Every label 1..n is present in a frame labelled by label_components.
        if sl is not None:
            boxes[i] = (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop)
    return boxes


def _bbox_iou(a: Int64Array, b: Int64Array) -> Float64Array:
    """Dense IoU of two sets of boxes, shape (len(a), len(b))."""
    iy = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(
        a[:, None, 0], b[None, :, 0]
    )
    ix = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(
        a[:, None, 1], b[None, :, 1]
    )
    inter = np.clip(iy, 0, None) * np.clip(ix, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    out: Float64Array = inter / union.astype(np.float64)
    return out
