"""Checks of array arguments, shared by the algorithm and validation packages.

One place for "is this one 2-D real frame", "is this an integer label array"
and "does this table column hold integers": the modules that take frames,
label images or tables call these at their public entry points, so a bad array
raises the same message wherever it is passed. Imports only ``_typing`` and
numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from pyama_steps._typing import LabelArray, RealArray

__all__ = [
    "check_frame",
    "check_label_array",
    "check_no_negative_ids",
    "integral_int64",
]


def check_frame(frame: RealArray, *, check_finite: bool = True) -> RealArray:
    """Return `frame` as an array, or raise if it is not one 2-D real frame.

    Parameters
    ----------
    frame : (Y, X) ndarray
        One frame of any real integer or floating dtype.
    check_finite : bool, optional
        Also raise if a float frame holds NaN or infinite values.

    Raises
    ------
    TypeError
        The dtype is not real integer or floating.
    ValueError
        The array is not 2-D, is empty, or (with `check_finite`) not finite.
    """
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
    if check_finite and image.dtype.kind == "f" and not np.isfinite(image).all():
        raise ValueError("frame must be finite; got NaN or infinite values")
    return image


def check_label_array(labels: object, name: str, *, ndim: int = 2) -> LabelArray:
    """Return `labels`, or raise unless it is an integer array of `ndim` dimensions.

    Parameters
    ----------
    labels : object
        The value given.
    name : str
        The argument's name, for the message.
    ndim : {2, 3}, optional
        2 for one (Y, X) frame, 3 for a (T, Y, X) stack.

    Raises
    ------
    TypeError
        `labels` is not a numpy array or has no integer dtype.
    ValueError
        `labels` has another number of dimensions.
    """
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(labels).__name__!r}")
    if labels.ndim != ndim:
        shape = "(Y, X)" if ndim == 2 else "(T, Y, X)"
        raise ValueError(f"{name} must be a {shape} array, got shape {labels.shape!r}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"{name} must have an integer dtype, got {labels.dtype!r}")
    return labels


def check_no_negative_ids(labels: LabelArray, name: str, *, what: str) -> None:
    """Raise ``ValueError`` if a signed label array holds a negative value.

    Parameters
    ----------
    labels : ndarray of int
        Checked by :func:`check_label_array`.
    name : str
        The argument's name, for the message.
    what : str
        What the values are called in the message (``"labels"``, ``"ids"``).
    """
    if labels.size and np.issubdtype(labels.dtype, np.signedinteger):
        lo = int(labels.min())
        if lo < 0:
            raise ValueError(
                f"{name} must hold non-negative {what} (0 = background), got {lo}"
            )


def integral_int64(values: npt.NDArray[Any], name: str) -> npt.NDArray[np.int64]:
    """Return a table column of integer values as int64, or raise ``ValueError``.

    Integer dtypes convert directly; any other dtype must hold finite whole
    numbers (e.g. a float column read back from a CSV).

    Parameters
    ----------
    values : (N,) ndarray
        The column's values.
    name : str
        The column's name, for the message.
    """
    if values.dtype.kind in "iu":
        out: npt.NDArray[np.int64] = values.astype(np.int64)
        return out
    as_float = values.astype(np.float64)
    if not np.all(np.isfinite(as_float)) or np.any(as_float != np.trunc(as_float)):
        raise ValueError(
            f"column {name!r} must hold integers, got dtype {values.dtype!r}"
        )
    out = as_float.astype(np.int64)
    return out
