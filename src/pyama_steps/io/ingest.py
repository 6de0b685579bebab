"""Pure pixel conversions of ingestion: RGB mean, Z projection, uint16 policy.

These functions take one plane (or one Z plane at a time) and never touch
files; :mod:`pyama_steps.io` feeds them from bioio (algorithms.md §1.5-§1.6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "ConvertedPlane",
    "ZAccumulator",
    "rgb_to_gray",
    "to_uint16",
]

_UINT16_MAX = 65535


@dataclass(frozen=True)
class ConvertedPlane:
    """A plane converted to uint16 and what the conversion had to change.

    Attributes
    ----------
    pixels : (Y, X) ndarray of uint16
        The converted plane.
    clipped : int
        Pixels clipped to [0, 65535] (``scale`` policy only).
    nan : int
        NaN pixels set to 0 (``scale`` policy only).
    """

    pixels: npt.NDArray[np.uint16]
    clipped: int
    nan: int


def rgb_to_gray(plane: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """Average an RGB(A) plane over its trailing sample axis.

    Parameters
    ----------
    plane : (Y, X, S) ndarray
        A plane with samples last.

    Returns
    -------
    (Y, X) ndarray of float64
        ``rint(mean over S)``, computed in float64 (algorithms.md §1.5).
    """
    if plane.ndim != 3:
        raise ValueError(f"plane must be (Y, X, S), got shape {plane.shape!r}")
    out: npt.NDArray[np.float64] = np.rint(plane.astype(np.float64).mean(axis=2))
    return out


class ZAccumulator:
    """Reduce a Z-stack one plane at a time: a plane, a running max or a mean.

    Parameters
    ----------
    mode : {'plane', 'max', 'mean'}
        ``plane`` keeps the single plane it is given, ``max`` the running
        maximum and ``mean`` a float64 running sum ended by ``rint(sum / Z)``.

    Notes
    -----
    Memory is one frame whatever Z is (algorithms.md §1.6).
    """

    def __init__(self, mode: str) -> None:
        if mode not in {"plane", "max", "mean"}:
            raise ValueError(
                f"z_mode must be one of 'plane', 'max', 'mean', got {mode!r}"
            )
        self.mode = mode
        self._acc: npt.NDArray[Any] | None = None
        self._n = 0

    def add(self, plane: npt.NDArray[Any]) -> None:
        """Add one Z plane."""
        if self._acc is None:
            self._acc = (
                plane.astype(np.float64) if self.mode == "mean" else plane.copy()
            )
        elif self.mode == "max":
            np.maximum(self._acc, plane, out=self._acc)
        elif self.mode == "mean":
            self._acc += plane
        else:
            raise ValueError("z_mode 'plane' takes exactly one plane")
        self._n += 1

    def result(self) -> npt.NDArray[Any]:
        """Return the reduced plane."""
        if self._acc is None:
            raise ValueError("no Z plane was added")
        if self.mode == "mean":
            return np.rint(self._acc / self._n)
        return self._acc


def to_uint16(
    plane: npt.NDArray[Any],
    *,
    policy: str = "strict",
    scale_factor: float | None = None,
    scale_offset: float = 0.0,
) -> ConvertedPlane:
    """Convert one plane to uint16 without silent wrap-around or truncation.

    Parameters
    ----------
    plane : (Y, X) ndarray
        A plane in the file's native dtype (or float64 after an RGB mean or a
        Z mean).
    policy : {'strict', 'scale'}
        ``strict`` stores counts unchanged and refuses values that uint16
        cannot hold exactly; ``scale`` applies
        ``clip(rint((v - offset) * factor), 0, 65535)`` with NaN set to 0.
    scale_factor : float, optional
        Factor of the ``scale`` policy (required with it).
    scale_offset : float
        Offset of the ``scale`` policy, in input units.

    Returns
    -------
    ConvertedPlane
        The uint16 plane and the counts of clipped and NaN pixels.

    Raises
    ------
    TypeError
        For a boolean plane.
    ValueError
        Under ``strict`` for a value outside [0, 65535], not whole or not
        finite; the message gives the observed range and the ``scale`` option.

    Notes
    -----
    uint8 is widened with values unchanged (no x257 stretch): log-STD ignores a
    constant gain, and traces keep raw counts (algorithms.md §1.5).
    """
    dtype = plane.dtype
    if dtype == np.bool_:
        raise TypeError(
            "boolean images cannot be converted to intensities; this input holds "
            "masks, not a microscope channel"
        )
    if policy not in {"strict", "scale"}:
        raise ValueError(f"dtype_policy must be 'strict' or 'scale', got {policy!r}")
    if dtype == np.uint16:
        return ConvertedPlane(np.ascontiguousarray(plane), 0, 0)
    if dtype == np.uint8:
        return ConvertedPlane(plane.astype(np.uint16), 0, 0)
    if policy == "scale":
        if scale_factor is None or not scale_factor > 0:
            raise ValueError(
                "scale_factor must be > 0 with dtype_policy 'scale', got "
                f"{scale_factor!r}"
            )
        values = plane.astype(np.float64)
        nan = np.isnan(values)
        n_nan = int(nan.sum())
        scaled = np.rint((values - scale_offset) * scale_factor)
        scaled[nan] = 0.0
        clipped = int(np.count_nonzero((scaled < 0) | (scaled > _UINT16_MAX)))
        np.clip(scaled, 0, _UINT16_MAX, out=scaled)
        return ConvertedPlane(scaled.astype(np.uint16), clipped, n_nan)
    if plane.size == 0:
        return ConvertedPlane(plane.astype(np.uint16), 0, 0)
    if np.issubdtype(dtype, np.integer):
        lo, hi = int(plane.min()), int(plane.max())
        if lo < 0 or hi > _UINT16_MAX:
            raise ValueError(
                f"values range from {lo} to {hi} ({dtype}), outside uint16 [0, 65535]; "
                "set ingest.dtype_policy: scale with ingest.scale_factor (and "
                "ingest.scale_offset) to map them linearly"
            )
        return ConvertedPlane(plane.astype(np.uint16), 0, 0)
    if np.issubdtype(dtype, np.floating):
        finite = np.isfinite(plane)
        if not finite.all():
            raise ValueError(
                f"{int((~finite).sum())} pixel(s) are NaN or infinite ({dtype}); set "
                "ingest.dtype_policy: scale (NaN becomes 0) with ingest.scale_factor"
            )
        lo_f, hi_f = float(plane.min()), float(plane.max())
        whole = bool(np.all(np.rint(plane) == plane))
        if lo_f < 0 or hi_f > _UINT16_MAX or not whole:
            reason = "not whole numbers" if whole is False else "outside [0, 65535]"
            raise ValueError(
                f"float values range from {lo_f:g} to {hi_f:g} and are {reason}; "
                "uint16 cannot hold them unchanged. Set ingest.dtype_policy: scale "
                "with ingest.scale_factor (and ingest.scale_offset)"
            )
        return ConvertedPlane(plane.astype(np.uint16), 0, 0)
    raise TypeError(f"unsupported pixel dtype {dtype!s}")
