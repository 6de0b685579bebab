"""Checks of scalar options, shared by every module that takes options.

One place for "is this an int in range", "a finite real", "a fraction", "a
flag", "one of these names": the algorithm modules call these at their public
entry points, so a bad option raises the same message wherever it is passed.
Imports nothing from the package.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection

import numpy as np

__all__ = [
    "check_bool",
    "check_choice",
    "check_fraction",
    "check_int",
    "check_real",
]


def check_int(
    name: str, value: object, *, minimum: int, maximum: int | None = None
) -> int:
    """Return ``value`` as an int, or raise if it is not an integer in range.

    Parameters
    ----------
    name : str
        The option's name, for the message.
    value : object
        The value given.
    minimum, maximum : int
        Inclusive bounds; no upper bound when ``maximum`` is None.

    Raises
    ------
    TypeError
        ``value`` is a bool or not an integer.
    ValueError
        ``value`` is outside the bounds.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {value!r}")
    result = int(value)
    if result < minimum or (maximum is not None and result > maximum):
        valid = f"in [{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name} must be an integer {valid}; got {value!r}")
    return result


def check_real(
    name: str,
    value: object,
    *,
    minimum: float = -math.inf,
    maximum: float = math.inf,
    open_min: bool = False,
    open_max: bool = False,
) -> float:
    """Return ``value`` as a finite float, or raise if it is not a real in range.

    Parameters
    ----------
    name : str
        The option's name, for the message.
    value : object
        The value given.
    minimum, maximum : float
        Bounds, inclusive unless ``open_min`` / ``open_max``.
    open_min, open_max : bool
        Exclude the bound itself.

    Raises
    ------
    TypeError
        ``value`` is a bool or not a real number.
    ValueError
        ``value`` is not finite or is outside the bounds.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    result = float(value)
    too_small = result <= minimum if open_min else result < minimum
    too_large = result >= maximum if open_max else result > maximum
    if not math.isfinite(result) or too_small or too_large:
        valid = _interval(minimum, maximum, open_min, open_max)
        raise ValueError(f"{name} must be a finite number {valid}; got {value!r}")
    return result


def check_fraction(name: str, value: object, *, allow_zero: bool = True) -> float:
    """Return ``value`` as a float in [0, 1] (or (0, 1] without ``allow_zero``)."""
    return check_real(name, value, minimum=0.0, maximum=1.0, open_min=not allow_zero)


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` as a bool, or raise TypeError if it is not True or False."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def check_choice(name: str, value: object, choices: Collection[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ValueError."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)!r}; got {value!r}")
    return value


def _interval(minimum: float, maximum: float, open_min: bool, open_max: bool) -> str:
    if math.isinf(maximum):
        return f"> {minimum}" if open_min else f">= {minimum}"
    if math.isinf(minimum):
        return f"< {maximum}" if open_max else f"<= {maximum}"
    left = "(" if open_min else "["
    right = ")" if open_max else "]"
    return f"in {left}{minimum}, {maximum}{right}"
