"""The frame check shared by the segmentation methods."""

from __future__ import annotations

import numpy as np

from pyama_steps._typing import RealArray

__all__: list[str] = []


def _check_frame(frame: RealArray) -> RealArray:
    image = np.asarray(frame)
    if image.dtype.kind not in "iuf":
        raise TypeError(
            "frame must have a real integer or floating dtype; "
            f"got dtype {image.dtype!r}. Convert it, e.g. with frame.astype(np.uint16)"
        )
    if image.ndim != 2:
        raise ValueError(
            f"frame must be a 2-D (Y, X) array; got shape {image.shape!r}. "
            "Pass one frame of the (T, Y, X) stack"
        )
    if image.size == 0:
        raise ValueError(
            "frame must have at least one row and one column; "
            f"got shape {image.shape!r}"
        )
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise ValueError("frame must be finite; got NaN or infinite values")
    return image
