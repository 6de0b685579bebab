"""Segmentation checks: say when the segmentation of a FOV cannot have worked.

Implements algorithms.md §2.8. The segment and track jobs record a few figures
per frame (:mod:`pyama_steps.segmentation.stats`). When the manifest is
written, :func:`check_segmentation` turns those figures into findings, each
naming the FOV, the frames and the likely fix: warnings
(blank or constant phase-contrast frames, no threshold, no cells, jumps in the
cell count or size, cells far outside the expected size, a "phase" channel
that looks like fluorescence) and notes (dropped all-zero frames that the
tracker bridges). The detectors are pure functions on per-frame arrays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from pyama_steps._typing import BoolArray, RealArray

__all__ = [
    "Finding",
    "check_segmentation",
    "find_blank",
    "find_dropped",
    "find_fluorescence_like",
    "find_jumps",
    "find_merged",
    "find_size_outliers",
    "format_frames",
]

# Objects "mostly bright" (phase_statistics' bright share above this) look like
# fluorescence; see pyama_steps.segmentation.stats for the measured shares.
_BRIGHT_LIMIT: Final = 0.5
# Cell sizes: "far outside" the configured range means a median object area
# more than this factor above the disk of the largest diameter, or below the
# disk of the smallest divided by it.
_SIZE_FACTOR: Final = 4.0
# Jumps in the cell count are only counted when the two counts differ by at
# least this many objects, and jumps in the median area only when both frames
# hold at least this many: a few cells dividing, entering or leaving a sparse
# FOV are not a failure.
_JUMP_MIN_OBJECTS: Final = 5
# At most this many frame pairs are spelled out in one message.
_MAX_LISTED: Final = 5

Level = Literal["warning", "note"]


# --------------------------------------------------------------------------
# detectors (pure, per-frame arrays)
# --------------------------------------------------------------------------


def find_blank(minimum: RealArray, maximum: RealArray) -> BoolArray:
    """Frames whose every pixel has the same value (``minimum == maximum``)."""
    blank: BoolArray = np.asarray(minimum) == np.asarray(maximum)
    return blank


def _runs(flags: BoolArray) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of True, in order."""
    padded = np.concatenate(([False], flags, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def find_dropped(minimum: RealArray, maximum: RealArray, *, max_gap: int) -> BoolArray:
    """Find dropped frames: all-zero frames in runs the tracker can bridge.

    Parameters
    ----------
    minimum, maximum : (T,) ndarray
        Per-frame pixel minimum and maximum.
    max_gap : int
        Consecutive frames a track may bridge (``tracking.max_gap``; 0 in
        ``upstream`` mode, which bridges none).

    Returns
    -------
    (T,) ndarray of bool
        True for all-zero frames in runs of at most `max_gap` frames, unless
        every frame is blank (then nothing is a dropped frame: the channel is
        empty).
    """
    lo, hi = np.asarray(minimum), np.asarray(maximum)
    zero = (lo == 0) & (hi == 0)
    out = np.zeros(zero.shape, dtype=np.bool_)
    if find_blank(lo, hi).all():
        return out
    for a, b in _runs(zero):
        if b - a <= max_gap:
            out[a:b] = True
    return out


def find_jumps(
    values: RealArray, usable: BoolArray, *, factor: float, min_diff: float = 0.0
) -> list[tuple[int, int]]:
    """Consecutive usable frames whose values differ by more than `factor`.

    Parameters
    ----------
    values : (T,) ndarray
        A positive per-frame figure (cell count, median area).
    usable : (T,) ndarray of bool
        Frames to compare; the others are skipped, so frames ``t`` and ``u``
        are compared when no usable frame lies between them.
    factor : float
        A jump is ``max(a, b) > factor * min(a, b)``; > 1.
    min_diff : float, optional
        ...and ``max(a, b) - min(a, b) >= min_diff``.

    Returns
    -------
    list of (int, int)
        The frame pairs ``(t, u)``, ``t < u``, in order.
    """
    v = np.asarray(values, dtype=np.float64)
    idx = np.flatnonzero(np.asarray(usable) & np.isfinite(v))
    a, b = v[idx[:-1]], v[idx[1:]]
    low, high = np.minimum(a, b), np.maximum(a, b)
    jump = (high > factor * low) & (high - low >= min_diff)
    return [(int(idx[i]), int(idx[i + 1])) for i in np.flatnonzero(jump)]


def _disk_area(diameter: float) -> float:
    return math.pi * diameter * diameter / 4.0


def find_size_outliers(
    median_area: RealArray,
    usable: BoolArray,
    *,
    cell_diameter_px: tuple[float, float],
) -> tuple[BoolArray, BoolArray]:
    """Frames whose median object is far larger or smaller than a cell.

    Returns
    -------
    large, small : (T,) ndarray of bool
        Usable frames whose median object area exceeds 4x the area of a
        disk of the largest diameter, or is below 1/4 of the area of a disk
        of the smallest.
    """
    area = np.asarray(median_area, dtype=np.float64)
    ok = np.asarray(usable) & np.isfinite(area)
    d_min, d_max = cell_diameter_px
    large = ok & (area > _SIZE_FACTOR * _disk_area(d_max))
    small = ok & (area < _disk_area(d_min) / _SIZE_FACTOR)
    return large, small


def find_fluorescence_like(bright_fraction: RealArray, usable: BoolArray) -> BoolArray:
    """Usable frames whose objects are mostly brighter than the background."""
    bright = np.asarray(bright_fraction, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.asarray(usable) & (bright > _BRIGHT_LIMIT)


# --------------------------------------------------------------------------
# findings
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One warning or note about a FOV's segmentation.

    Attributes
    ----------
    check : str
        Which check (``blank_channel``, ``blank_frames``, ``dropped_frames``,
        ``no_threshold``, ``no_cells``, ``no_cells_frames``,
        ``cell_count_jump``, ``cell_area_jump``, ``merged_objects``,
        ``cells_too_large``, ``cells_too_small``, ``fluorescence_like``).
    level : {'warning', 'note'}
        Notes are known, harmless cases (a dropped frame).
    frames : tuple of int
        The frames concerned.
    message : str
        What was found, in which FOV and frames, and the likely fix.
    """

    check: str
    level: Level
    frames: tuple[int, ...]
    message: str

    def to_dict(self) -> dict[str, Any]:
        """Return the manifest entry: check, frames (as text), n_frames, message."""
        return {
            "check": self.check,
            "frames": format_frames(self.frames),
            "n_frames": len(self.frames),
            "message": self.message,
        }


def format_frames(frames: Sequence[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``'0-2, 5, 7-8'``."""
    flags = np.zeros(max(frames) + 1 if len(frames) else 0, dtype=np.bool_)
    flags[list(frames)] = True
    return ", ".join(str(a) if b - a == 1 else f"{a}-{b - 1}" for a, b in _runs(flags))


def _frames(flags: BoolArray) -> tuple[int, ...]:
    return tuple(int(t) for t in np.flatnonzero(flags))


@dataclass(frozen=True)
class _Fov:
    """The per-frame figures of one FOV and what the messages need."""

    fov: int
    pc: str
    n_t: int
    minimum: npt.NDArray[np.float64]
    maximum: npt.NDArray[np.float64]
    threshold: npt.NDArray[np.float64]
    bright: npt.NDArray[np.float64]
    n_obj: npt.NDArray[np.float64]
    area: npt.NDArray[np.float64]
    pixel_area: npt.NDArray[np.float64]

    def where(self, frames: Sequence[int]) -> str:
        word = "frame" if len(frames) == 1 else "frames"
        share = "" if len(frames) == 1 else f" ({len(frames)} of {self.n_t})"
        return f"FOV {self.fov}, {word} {format_frames(frames)}{share}"


def check_segmentation(
    seg: Mapping[str, Any],
    cells: Mapping[str, Any],
    *,
    fov: int,
    channel: str,
    cell_diameter_px: tuple[float, float],
    jump_factor: float,
    max_gap: int,
) -> list[Finding]:
    """Check one FOV's segmentation figures and say what looks wrong (§2.8).

    Parameters
    ----------
    seg : mapping
        Per-frame arrays ``minimum``, ``maximum``, ``threshold`` and
        ``bright_fraction`` (the segment job's statistics).
    cells : mapping
        Per-frame arrays ``n_objects`` and ``median_area_px`` (the track
        job's statistics).
    fov : int
        The FOV, for the messages.
    channel : str
        The phase-contrast channel as the messages name it, e.g.
        ``"0 ('Phase')"``.
    cell_diameter_px : (float, float)
        ``qc.cell_diameter_px``: the smallest and largest expected diameter.
    jump_factor : float
        ``qc.jump_factor``; > 1.
    max_gap : int
        Consecutive frames the tracker bridges (``tracking.max_gap``; 0 in
        ``upstream`` mode).

    Returns
    -------
    list of Finding
        In the order of algorithms.md §2.8; empty when nothing was found.
        A blank channel, or a FOV without any cell, ends the checks: the
        others would only repeat it.

    Raises
    ------
    ValueError
        If the arrays do not all have one value per frame.
    """
    columns = {
        name: np.asarray(src[name], dtype=np.float64).ravel()
        for src, names in (
            (seg, ("minimum", "maximum", "threshold", "bright_fraction")),
            (cells, ("n_objects", "median_area_px")),
        )
        for name in names
    }
    # Written by the track job since the merged-objects check (optional).
    columns["pixel_median_area_px"] = np.asarray(
        cells.get("pixel_median_area_px", np.full(columns["n_objects"].size, np.nan)),
        dtype=np.float64,
    ).ravel()
    sizes = {v.size for v in columns.values()}
    if len(sizes) != 1:
        raise ValueError(
            "segmentation and cell statistics cover different numbers of frames "
            f"({sorted(sizes)}); rerun the segment and track jobs of FOV {fov}"
        )
    data = _Fov(
        fov=fov,
        pc=f"the phase-contrast channel {channel}",
        n_t=sizes.pop(),
        minimum=columns["minimum"],
        maximum=columns["maximum"],
        threshold=columns["threshold"],
        bright=columns["bright_fraction"],
        n_obj=columns["n_objects"],
        area=columns["median_area_px"],
        pixel_area=columns["pixel_median_area_px"],
    )
    found = _check_blank(data, max_gap)
    blank = find_blank(data.minimum, data.maximum)
    if data.n_t == 0 or blank.all():
        return found
    found += _check_threshold(data, blank)
    measured = ~blank & np.isfinite(data.threshold)
    cells_found = _check_cells(data, measured)
    found += cells_found
    if any(f.check == "no_cells" for f in cells_found):
        return found
    usable = measured & (data.n_obj > 0)
    found += _check_jumps(data, usable, jump_factor)
    found += _check_sizes(data, usable, cell_diameter_px)
    found += _check_fluorescence(data, usable)
    return found


def _check_blank(data: _Fov, max_gap: int) -> list[Finding]:
    """Report (a): a blank channel, blank frames, dropped frames."""
    lo, hi = data.minimum, data.maximum
    blank = find_blank(lo, hi)
    if not blank.any():
        return []
    if blank.all():
        value = f"value {lo[0]:g}" if np.all(lo == lo[0]) else "constant values"
        return [
            Finding(
                "blank_channel",
                "warning",
                _frames(blank),
                f"FOV {data.fov}: {data.pc} is blank in all {data.n_t} frames "
                f"({value}), so there is nothing to segment: check channels.pc "
                "(`pyama-steps inspect FILE` lists the channels) and that this "
                "FOV was imaged in that channel.",
            )
        ]
    found = []
    dropped = find_dropped(lo, hi, max_gap=max_gap)
    other = blank & ~dropped
    if other.any():
        frames = _frames(other)
        values = " or ".join(sorted({f"{v:g}" for v in lo[other]}))
        breaks = (
            f", and tracks break there (the tracker bridges at most {max_gap} "
            "consecutive empty frame(s))"
            if any(b - a > max_gap for a, b in _runs(blank))
            else ""
        )
        found.append(
            Finding(
                "blank_frames",
                "warning",
                frames,
                f"{data.where(frames)}: {data.pc} is blank (every pixel {values}), "
                f"so these frames have no cells{breaks}: check the acquisition "
                "of these frames (lamp, shutter, camera, exposure).",
            )
        )
    if dropped.any():
        frames = _frames(dropped)
        found.append(
            Finding(
                "dropped_frames",
                "note",
                frames,
                f"{data.where(frames)}: the phase-contrast image is all zero (a "
                "dropped frame); it has no cells and the tracks are bridged over "
                "it (tracking.max_gap).",
            )
        )
    return found


def _check_threshold(data: _Fov, blank: BoolArray) -> list[Finding]:
    """Report (b): frames with texture but no threshold."""
    flags = ~blank & ~np.isfinite(data.threshold)
    if not flags.any():
        return []
    frames = _frames(flags)
    return [
        Finding(
            "no_threshold",
            "warning",
            frames,
            f"{data.where(frames)}: no segmentation threshold could be computed "
            "(the local standard deviation takes a single value: almost no "
            "texture, e.g. a saturated or nearly flat image), so these frames "
            f"have no cells: check the exposure and focus of {data.pc}.",
        )
    ]


def _check_cells(data: _Fov, measured: BoolArray) -> list[Finding]:
    """Report (c): no cell in the FOV, or in some frames."""
    empty = measured & (data.n_obj == 0)
    if not empty.any():
        return []
    if empty[measured].all():
        return [
            Finding(
                "no_cells",
                "warning",
                _frames(measured),
                f"FOV {data.fov}: no cell was segmented in any frame: check that "
                f"{data.pc} is phase contrast (channels.pc), and "
                "segmentation.threshold_k and segmentation.min_area_px (smaller "
                "objects are removed).",
            )
        ]
    frames = _frames(empty)
    return [
        Finding(
            "no_cells_frames",
            "warning",
            frames,
            f"{data.where(frames)}: no cell was segmented, while other frames "
            f"have up to {np.nanmax(data.n_obj):.0f}: check focus and "
            "illumination in these frames (the QC overlay of `snakemake qc` "
            "shows the masks).",
        )
    ]


def _pairs(pairs: list[tuple[int, int]], values: npt.NDArray[np.float64]) -> str:
    shown = [
        f"{t}->{u} ({values[t]:.0f} -> {values[u]:.0f})" for t, u in pairs[:_MAX_LISTED]
    ]
    more = len(pairs) - _MAX_LISTED
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _check_jumps(data: _Fov, usable: BoolArray, factor: float) -> list[Finding]:
    """Report (d): the cell count or median cell area jumping."""
    found = []
    count = find_jumps(data.n_obj, usable, factor=factor, min_diff=_JUMP_MIN_OBJECTS)
    if count:
        found.append(
            Finding(
                "cell_count_jump",
                "warning",
                tuple(u for _, u in count),
                f"FOV {data.fov}: the number of cells changes more than "
                f"{factor:g}x between frames {_pairs(count, data.n_obj)}: the "
                "segmentation is unstable there (focus, illumination, or a "
                "threshold close to the noise); check these frames in the QC "
                "overlay (`snakemake qc`).",
            )
        )
    crowded = usable & (data.n_obj >= _JUMP_MIN_OBJECTS)
    area = find_jumps(data.area, crowded, factor=factor)
    if area:
        found.append(
            Finding(
                "cell_area_jump",
                "warning",
                tuple(u for _, u in area),
                f"FOV {data.fov}: the median cell area (px) changes more than "
                f"{factor:g}x between frames {_pairs(area, data.area)}: cells are "
                "merged or split differently from frame to frame; check these "
                "frames in the QC overlay (`snakemake qc`).",
            )
        )
    return found


def _check_sizes(
    data: _Fov, usable: BoolArray, diameters: tuple[float, float]
) -> list[Finding]:
    """Report (e): median objects far outside the expected cell size."""
    large, small = find_size_outliers(data.area, usable, cell_diameter_px=diameters)
    d_min, d_max = diameters
    texts = {
        "cells_too_large": (
            f"more than {_SIZE_FACTOR:g}x the area of a cell {d_max:g} px across "
            f"({_disk_area(d_max):.0f} px; qc.cell_diameter_px): objects merge "
            "several cells or cover the background. Check channels.pc and "
            "segmentation.threshold_k; if the cells really are this large, raise "
            "qc.cell_diameter_px."
        ),
        "cells_too_small": (
            f"less than 1/{_SIZE_FACTOR:g} of the area of a cell {d_min:g} px "
            f"across ({_disk_area(d_min):.0f} px; qc.cell_diameter_px): objects "
            "are noise or fragments. Check segmentation.threshold_k and "
            "segmentation.min_area_px; if the cells really are this small, lower "
            "qc.cell_diameter_px."
        ),
    }
    found = _check_merged(data, usable & ~large, d_max)
    for check, flags in (("cells_too_large", large), ("cells_too_small", small)):
        if not flags.any():
            continue
        frames = _frames(flags)
        median = float(np.median(data.area[flags]))
        across = math.sqrt(4.0 * median / math.pi)
        found.append(
            Finding(
                check,
                "warning",
                frames,
                f"{data.where(frames)}: the median object is {median:.0f} px (a "
                f"disk {across:.0f} px across), {texts[check]}",
            )
        )
    return found


def find_merged(
    pixel_median_area: RealArray, usable: BoolArray, *, d_max: float
) -> BoolArray:
    """Usable frames whose median foreground pixel lies in a far too large object.

    Returns
    -------
    (T,) ndarray of bool
        Usable frames whose pixel-median object area (:func:`object_statistics`)
        exceeds 4x the area of a disk of the largest expected diameter: half of
        the foreground is in objects that merge many cells.
    """
    area = np.asarray(pixel_median_area, dtype=np.float64)
    ok = np.asarray(usable) & np.isfinite(area)
    return ok & (area > _SIZE_FACTOR * _disk_area(d_max))


def _check_merged(data: _Fov, usable: BoolArray, d_max: float) -> list[Finding]:
    """Report (e'): half of the cell pixels in objects far larger than a cell."""
    flags = find_merged(data.pixel_area, usable, d_max=d_max)
    if not flags.any():
        return []
    frames = _frames(flags)
    area = float(np.median(data.pixel_area[flags]))
    return [
        Finding(
            "merged_objects",
            "warning",
            frames,
            f"{data.where(frames)}: half of the cell pixels lie in objects of "
            f"{area:.0f} px or more, over {_SIZE_FACTOR:g}x the area of a cell "
            f"{d_max:g} px across ({_disk_area(d_max):.0f} px; qc.cell_diameter_px): "
            "the segmentation merges cells into colonies. For dense rod-shaped "
            "bacteria set segmentation.method: rods (pyama-steps init proposes it); "
            "otherwise check channels.pc and segmentation.threshold_k, or raise "
            "qc.cell_diameter_px if the cells really are this large.",
        )
    ]


def _check_fluorescence(data: _Fov, usable: BoolArray) -> list[Finding]:
    """Report (f): a phase-contrast channel that looks like fluorescence."""
    flags = find_fluorescence_like(data.bright, usable)
    if not flags.any():
        return []
    frames = _frames(flags)
    share = float(np.median(data.bright[flags]))
    return [
        Finding(
            "fluorescence_like",
            "warning",
            frames,
            f"{data.where(frames)}: {data.pc} looks like fluorescence: "
            f"{100 * share:.0f}% of the segmented pixels are brighter than the "
            "background (in phase contrast cells are darker), so the masks "
            "follow bright objects, not cell outlines: check channels.pc "
            "(`pyama-steps inspect FILE` lists the channels).",
        )
    ]
