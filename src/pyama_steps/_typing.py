"""Array type aliases shared by the algorithm modules."""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = [
    "BoolArray",
    "FloatArray",
    "IntArray",
    "LabelArray",
    "RealArray",
    "UIntArray",
]

BoolArray: TypeAlias = npt.NDArray[np.bool_]
FloatArray: TypeAlias = npt.NDArray[np.floating[Any]]
IntArray: TypeAlias = npt.NDArray[np.integer[Any]]
UIntArray: TypeAlias = npt.NDArray[np.unsignedinteger[Any]]
LabelArray: TypeAlias = npt.NDArray[np.integer[Any]]
RealArray: TypeAlias = npt.NDArray[np.integer[Any] | np.floating[Any]]
