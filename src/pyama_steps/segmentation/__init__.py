"""Segmentation of the phase-contrast channel (algorithms.md §2).

What lives here:

- :mod:`~pyama_steps.segmentation.registry`: the segmenter interface
  (:class:`SegmentationMethod`, :class:`FrameSegmentation`) and the registry
  keyed by ``segmentation.method`` (:func:`get_method`); every module that
  defines ``METHOD`` is a method.
- One module per method: :mod:`~pyama_steps.segmentation.log_std` (``logstd``,
  §2.1-§2.7; its options and their check in
  :mod:`~pyama_steps.segmentation.options`) and
  :mod:`~pyama_steps.segmentation.rods` (``rods``, §2.9).
- One module per stage of log-STD: :mod:`~pyama_steps.segmentation.texture`
  (the log-STD map), :mod:`~pyama_steps.segmentation.threshold` (histogram
  mode, the background's peak, sigma, and the threshold masks),
  :mod:`~pyama_steps.segmentation.window` (the per-FOV window choice, §2.10),
  :mod:`~pyama_steps.segmentation.masks` (hole filling,
  hysteresis, labelling helpers), :mod:`~pyama_steps.segmentation.halo` (the
  halo trim), :mod:`~pyama_steps.segmentation.cleanup` (opening, refill,
  shrink, split and minimum area, in order; last, the objects without an
  edge),
  :mod:`~pyama_steps.segmentation.centres` (cells whose phase-bright centre
  the trim removed), :mod:`~pyama_steps.segmentation.split` (touching cells, minimum
  area), :mod:`~pyama_steps.segmentation.restore` (outline and junction
  restores).
- The per-FOV segmentation checks (§2.8): :mod:`~pyama_steps.segmentation.stats`
  (per-frame figures and their JSON files) and
  :mod:`~pyama_steps.segmentation.checks` (the findings).

Imports: only :mod:`pyama_steps._typing`, :mod:`pyama_steps._validate`,
:mod:`pyama_steps._arrays`, :mod:`pyama_steps.morphology`, numpy, scipy and
scikit-image; nothing here reads files, logs or imports the run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyama_steps.segmentation.log_std import (
        LogStdOptions,
        SegmentationFrame,
        segment_log_std,
    )
    from pyama_steps.segmentation.registry import (
        FrameSegmentation,
        SegmentationMethod,
        check_segmentation_options,
        get_method,
        method_names,
    )
    from pyama_steps.segmentation.rods import (
        DenseRodsCheck,
        RodSegmentation,
        RodsOptions,
        check_dense_rods,
        segment_rods,
    )
    from pyama_steps.segmentation.window import (
        MIN_SEPARATION,
        WINDOW_CANDIDATES,
        WindowChoice,
        choose_window,
        texture_separation,
    )

__all__ = [
    "MIN_SEPARATION",
    "WINDOW_CANDIDATES",
    "DenseRodsCheck",
    "FrameSegmentation",
    "LogStdOptions",
    "RodSegmentation",
    "RodsOptions",
    "SegmentationFrame",
    "SegmentationMethod",
    "WindowChoice",
    "check_dense_rods",
    "check_segmentation_options",
    "choose_window",
    "get_method",
    "method_names",
    "segment_log_std",
    "segment_rods",
    "texture_separation",
]

# Where each public name lives. The names are imported on first use, so that
# importing the checks (the manifest, while the workflow is parsed) does not
# import the methods and scipy.
_EXPORTS: dict[str, str] = {
    "MIN_SEPARATION": "window",
    "WINDOW_CANDIDATES": "window",
    "DenseRodsCheck": "rods",
    "FrameSegmentation": "registry",
    "LogStdOptions": "log_std",
    "RodSegmentation": "rods",
    "RodsOptions": "rods",
    "SegmentationFrame": "log_std",
    "SegmentationMethod": "registry",
    "WindowChoice": "window",
    "check_dense_rods": "rods",
    "check_segmentation_options": "registry",
    "choose_window": "window",
    "get_method": "registry",
    "method_names": "registry",
    "segment_log_std": "log_std",
    "segment_rods": "rods",
    "texture_separation": "window",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
