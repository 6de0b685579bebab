"""The options of the log-STD method (``segmentation.method: logstd``, §2).

:class:`LogStdOptions` holds every option of
:func:`~pyama_steps.segmentation.log_std.segment_log_std`, checked once:
when the config is read (``METHOD.options``) or when the function is called.
Package-internal apart from :class:`LogStdOptions`, which
:mod:`~pyama_steps.segmentation.log_std` exports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from pyama_steps._validate import (
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    check_real,
)
from pyama_steps.segmentation.split import _SPLIT_METHODS, SplitMethod
from pyama_steps.segmentation.texture import _MAX_WINDOW, _MIN_WINDOW
from pyama_steps.segmentation.threshold import (
    _SIGMA_ESTIMATORS,
    BackgroundReference,
    SigmaEstimator,
)

__all__ = ["FillBorder", "HaloLevel", "LogStdOptions"]

FillBorder: TypeAlias = Literal["open", "mirror"]
HaloLevel: TypeAlias = Literal["edge", "noise"]

_FILL_BORDERS: Final = ("open", "mirror")
_HALO_LEVELS: Final = ("edge", "noise")


@dataclass(frozen=True)
class LogStdOptions:
    """The checked options of :func:`segment_log_std` (the ``segmentation`` section).

    Every attribute is the keyword argument of :func:`segment_log_std` of the
    same name. ``window`` is ``'auto'`` until the FOV's window is chosen
    (``prepare`` of :data:`METHOD`, algorithms.md §2.10).
    """

    window: int | Literal["auto"]
    bins: int
    mode_smooth_bins: int
    mode_peak_fraction: float
    sigma_estimator: SigmaEstimator
    mode_guard_k: float | None
    threshold_k: float
    threshold_low_k: float | None
    fill_holes: bool
    fill_border: FillBorder
    fill_mirror_px: int
    halo_trim: bool
    halo_k: float
    halo_block_px: int
    halo_level: HaloLevel
    edge_offset_px: float
    halo_edge_k: float | None
    junction_px: int
    junction_k: float | None
    fill_trim_holes: bool
    fill_trim_holes_solidity: float
    open_size: int
    open_iterations: int
    close_size: int
    close_iterations: int
    refill_holes: bool
    shrink_px: int
    split: SplitMethod
    split_h_px: float
    split_neck_ratio: float
    min_area_px: int
    min_area_keep_edge: bool
    min_edge_fraction: float
    # Not a config key: the FOV's background texture (``prepare``, §2.3).
    background: BackgroundReference | None = None


_FIELDS: Final = tuple(f.name for f in dataclasses.fields(LogStdOptions))
_CONFIG_FIELDS: Final = tuple(name for name in _FIELDS if name != "background")


def _checked_options(
    raw: Mapping[str, Any], key: Callable[[str], str] = str, *, auto: bool = False
) -> LogStdOptions:
    """Check the options once and return them typed (``TypeError``/``ValueError``).

    `key` turns an option's name into the name the messages use (the config
    key when the config is read); ``window='auto'`` is accepted with `auto`.
    """
    checked = {**_threshold_options(raw, key, auto=auto), **_cleanup_options(raw, key)}
    return LogStdOptions(**checked)


def _threshold_options(
    raw: Mapping[str, Any], key: Callable[[str], str], *, auto: bool
) -> dict[str, Any]:
    """Check the options of the log-STD map and its threshold (§2.2-§2.3)."""
    window = raw["window"]
    if not (auto and window == "auto"):
        window = check_int(
            key("window"), window, minimum=_MIN_WINDOW, maximum=_MAX_WINDOW
        )
        if window % 2 == 0:
            raise ValueError(
                f"{key('window')} must be an odd integer in [{_MIN_WINDOW}, "
                f"{_MAX_WINDOW}]; got {window!r}"
            )
    smooth = check_int(key("mode_smooth_bins"), raw["mode_smooth_bins"], minimum=1)
    if smooth % 2 == 0:
        raise ValueError(
            f"{key('mode_smooth_bins')} must be an odd integer >= 1; got {smooth!r}"
        )
    threshold_k = check_real(key("threshold_k"), raw["threshold_k"], minimum=0.0)
    guard_k = raw["mode_guard_k"]
    if guard_k is not None:
        guard_k = check_real(key("mode_guard_k"), guard_k, minimum=1.0)
    background = raw.get("background")
    if not (background is None or isinstance(background, BackgroundReference)):
        raise TypeError(
            f"background must be a BackgroundReference or None, got {background!r}"
        )
    low_k = raw["threshold_low_k"]
    if low_k is not None:
        low_k = check_real(key("threshold_low_k"), low_k, minimum=0.0)
        if low_k > threshold_k:
            raise ValueError(
                f"{key('threshold_low_k')} must be <= {key('threshold_k')} (the "
                f"hysteresis grows into a lower threshold); got {low_k!r} > "
                f"{threshold_k!r}. Lower it, or pass None to disable the hysteresis"
            )
    return {
        "window": window,
        "bins": check_int(key("bins"), raw["bins"], minimum=1),
        "mode_smooth_bins": smooth,
        "mode_peak_fraction": check_fraction(
            key("mode_peak_fraction"), raw["mode_peak_fraction"], allow_zero=False
        ),
        "sigma_estimator": check_choice(
            key("sigma_estimator"), raw["sigma_estimator"], _SIGMA_ESTIMATORS
        ),
        "mode_guard_k": guard_k,
        "background": background,
        "threshold_k": threshold_k,
        "threshold_low_k": low_k,
    }


def _cleanup_options(
    raw: Mapping[str, Any], key: Callable[[str], str]
) -> dict[str, Any]:
    """Check the options of the fill, trim, restores, split and area (§2.4)."""

    def integer(name: str, minimum: int) -> int:
        return check_int(key(name), raw[name], minimum=minimum)

    def real(name: str, **bounds: Any) -> float:
        return check_real(key(name), raw[name], **bounds)

    def optional(name: str) -> float | None:
        return None if raw[name] is None else real(name, minimum=0.0)

    def flag(name: str) -> bool:
        return check_bool(key(name), raw[name])

    def choice(name: str, choices: tuple[str, ...]) -> str:
        return check_choice(key(name), raw[name], choices)

    block = integer("halo_block_px", 4)
    if block % 2:
        raise ValueError(
            f"{key('halo_block_px')} must be an even integer >= 4; got {block!r}"
        )
    return {
        "fill_holes": flag("fill_holes"),
        "fill_border": choice("fill_border", _FILL_BORDERS),
        "fill_mirror_px": integer("fill_mirror_px", 1),
        "halo_trim": flag("halo_trim"),
        "halo_k": real("halo_k", minimum=0.0),
        "halo_block_px": block,
        "halo_level": choice("halo_level", _HALO_LEVELS),
        "edge_offset_px": real("edge_offset_px", minimum=0.0),
        "halo_edge_k": optional("halo_edge_k"),
        "junction_px": integer("junction_px", 0),
        "junction_k": optional("junction_k"),
        "fill_trim_holes": flag("fill_trim_holes"),
        "fill_trim_holes_solidity": real(
            "fill_trim_holes_solidity", minimum=0.0, maximum=1.0
        ),
        "open_size": integer("open_size", 1),
        "open_iterations": integer("open_iterations", 0),
        "close_size": integer("close_size", 1),
        "close_iterations": integer("close_iterations", 0),
        "refill_holes": flag("refill_holes"),
        "shrink_px": integer("shrink_px", 0),
        "split": choice("split", _SPLIT_METHODS),
        "split_h_px": real("split_h_px", minimum=0.0, open_min=True),
        "split_neck_ratio": real(
            "split_neck_ratio", minimum=0.0, maximum=1.0, open_min=True
        ),
        "min_area_px": integer("min_area_px", 0),
        "min_area_keep_edge": flag("min_area_keep_edge"),
        "min_edge_fraction": real("min_edge_fraction", minimum=0.0, maximum=1.0),
    }
