"""Tracking pass 2: write each frame's track ids (algorithms.md §4.6)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from pyama_steps._typing import BoolArray, IntArray
from pyama_steps.tracking.overlap import _check_mask, label_components

__all__ = ["relabel_frame"]


def relabel_frame(
    mask: BoolArray,
    lut: IntArray,
    *,
    connectivity: int = 4,
    dtype: npt.DTypeLike,
    cut: IntArray | None = None,
) -> npt.NDArray[np.unsignedinteger[Any]]:
    """Write one frame's track ids (tracking pass 2, algorithms.md §4.6).

    Parameters
    ----------
    mask : (Y, X) ndarray of bool
        The same segmentation frame that pass 1 saw.
    lut : (n + 1,) ndarray of int
        That frame's look-up table from :class:`TrackingResult`.
    connectivity : {4, 8}, optional
        Must equal the connectivity of pass 1.
    dtype : {uint16, uint32}
        Output dtype, normally ``TrackingResult.label_dtype``.
    cut : (k,) ndarray of int, optional
        That frame's ``TrackingResult.cuts`` entry: flat indices cleared
        before labelling, as in pass 1.

    Returns
    -------
    (Y, X) ndarray of `dtype`
        Track id of every pixel, 0 for background.

    Raises
    ------
    TypeError
        If `mask` is not bool or `dtype` is not uint16/uint32.
    ValueError
        If `lut` does not fit the frame (wrong length, so not the same frame
        or connectivity) or holds ids that `dtype` cannot represent.
    """
    out_dtype = np.dtype(dtype)
    if out_dtype not in (np.dtype(np.uint16), np.dtype(np.uint32)):
        raise TypeError(f"dtype must be uint16 or uint32, got {out_dtype!r}")
    if not isinstance(lut, np.ndarray) or lut.ndim != 1:
        raise ValueError(
            f"lut must be a 1-D array, got {getattr(lut, 'shape', type(lut))!r}"
        )
    if not np.issubdtype(lut.dtype, np.integer):
        raise TypeError(f"lut must have an integer dtype, got {lut.dtype!r}")
    if cut is not None and np.size(cut):
        _check_mask(mask)
        mask = mask.copy()
        mask.ravel()[cut] = False
    comp, n = label_components(mask, connectivity=connectivity)
    if lut.size != n + 1:
        raise ValueError(
            f"lut has length {lut.size!r} but the mask has {n!r} components "
            f"(expected {n + 1}); pass the lut of this frame and the "
            "connectivity of pass 1"
        )
    if lut.size and (int(lut.min()) < 0 or int(lut.max()) > np.iinfo(out_dtype).max):
        raise ValueError(
            f"lut holds ids in [{int(lut.min())}, {int(lut.max())}], which "
            f"dtype {out_dtype!r} cannot represent; use TrackingResult.label_dtype"
        )
    out: npt.NDArray[np.unsignedinteger[Any]] = np.zeros(comp.shape, dtype=out_dtype)
    fg = np.flatnonzero(mask)
    out.ravel()[fg] = lut.astype(out_dtype)[comp.ravel()[fg]]
    return out
