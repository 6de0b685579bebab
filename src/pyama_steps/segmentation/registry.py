"""The segmenter interface and the registry keyed by ``segmentation.method``.

A segmentation method is one module of this package that defines ``METHOD``, a
:class:`SegmentationMethod`: its name (the value of ``segmentation.method``),
how its options are built and checked from the ``segmentation`` config
section (once, when the config is read), the function from one phase-contrast
frame to that frame's :class:`FrameSegmentation`, and optionally a per-FOV
preparation that sees a few frames before the first is segmented. The
registry finds the methods by importing the package's modules, so adding a
method touches its module and the config schema only.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from pyama_steps._typing import BoolArray, RealArray

__all__ = [
    "FrameSegmentation",
    "SegmentationMethod",
    "check_segmentation_options",
    "get_method",
    "method_names",
]

OptionsT = TypeVar("OptionsT")

#: Reads frame ``t`` of the FOV being segmented.
FrameSource = Callable[[int], np.ndarray]


@dataclass(frozen=True, eq=False)
class FrameSegmentation:
    """One frame's segmentation, as the segment step writes and logs it.

    Attributes
    ----------
    mask : (Y, X) ndarray of bool
        Cell pixels; touching cells are 4-separated.
    threshold : float
        The method's threshold for the segmentation checks (algorithms.md
        §2.8); NaN when the frame had none.
    noise : float
        The background's pixel noise, in the frame's units; NaN when unknown.
    foreground_fraction : float
        Share of ``True`` pixels in `mask`.
    log_line : str
        The method's figures of the frame, for the job's log.
    """

    mask: BoolArray
    threshold: float
    noise: float
    foreground_fraction: float
    log_line: str


@dataclass(frozen=True)
class SegmentationMethod(Generic[OptionsT]):
    """One segmentation method: its options, its frame function, its preparation.

    Attributes
    ----------
    name : str
        The value of ``segmentation.method`` that selects it.
    options : callable
        ``options(section) -> OptionsT``: the method's options from the
        (schema-validated) ``segmentation`` config section; raises
        ``ValueError`` or ``TypeError`` naming the config key.
    segment : callable
        ``segment(frame, options) -> FrameSegmentation`` for one (Y, X) frame.
    prepare : callable or None
        ``prepare(options, n_frames, read) -> (options, lines)``: run once per
        FOV before its first frame, with ``read(t)`` reading frame ``t``;
        returns the options to segment the FOV with and lines for the log.
        None: the options are used as they are.
    """

    name: str
    options: Callable[[Mapping[str, Any]], OptionsT]
    segment: Callable[[RealArray, OptionsT], FrameSegmentation]
    prepare: (
        Callable[[OptionsT, int, FrameSource], tuple[OptionsT, list[str]]] | None
    ) = None


@functools.cache
def _methods() -> dict[str, SegmentationMethod[Any]]:
    """Every ``METHOD`` defined by a module of this package, by name."""
    package = importlib.import_module(__package__ or "pyama_steps.segmentation")
    found: dict[str, SegmentationMethod[Any]] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        method = getattr(module, "METHOD", None)
        if not isinstance(method, SegmentationMethod):
            continue
        if method.name in found:
            raise RuntimeError(
                f"segmentation method {method.name!r} is defined twice; rename "
                f"the METHOD of {module.__name__}"
            )
        found[method.name] = method
    return found


def method_names() -> tuple[str, ...]:
    """Return the names of the registered methods, sorted."""
    return tuple(sorted(_methods()))


def get_method(name: str) -> SegmentationMethod[Any]:
    """Return the method that ``segmentation.method: <name>`` selects.

    Raises
    ------
    ValueError
        If no module of the package defines that method.
    """
    methods = _methods()
    if name not in methods:
        raise ValueError(
            f"segmentation.method must be one of {tuple(sorted(methods))!r}; "
            f"got {name!r}"
        )
    return methods[name]


def check_segmentation_options(section: Mapping[str, Any]) -> None:
    """Build every method's options from the ``segmentation`` section (§1.3).

    The semantic pass of the config check: the options of every method are
    checked, not only the selected one's, so that a bad value is reported
    before the method is switched to.

    Raises
    ------
    ValueError, TypeError
        From the first method whose options are invalid, naming the key.
    """
    for name in method_names():
        _methods()[name].options(section)
