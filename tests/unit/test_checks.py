"""Tests of the segmentation checks (algorithms.md §2.8).

pyama_steps.segmentation.stats (per-frame figures, JSON) and
pyama_steps.segmentation.checks (findings).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from pyama_steps.segmentation import segment_log_std
from pyama_steps.segmentation.checks import (
    check_segmentation,
    find_blank,
    find_dropped,
    find_fluorescence_like,
    find_jumps,
    find_size_outliers,
    format_frames,
)
from pyama_steps.segmentation.stats import (
    CELL_STATS_FIELDS,
    SEG_STATS_FIELDS,
    object_statistics,
    phase_statistics,
    read_stats_json,
    stats_json,
)
from pyama_steps.tracking import LineageTracker, label_components

NAN = math.nan


def _disks(shape: tuple[int, int], centres: list[tuple[int, int]], r: float) -> Any:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    inside = np.zeros(shape, dtype=bool)
    for cy, cx in centres:
        inside |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    return inside


CENTRES = [(20, 20), (20, 60), (60, 30), (90, 90), (50, 100)]


def _phase_frame(rng: np.random.Generator) -> np.ndarray:
    """Grey background, dark cells with a bright halo: phase contrast."""
    shape = (128, 128)
    cells = _disks(shape, CENTRES, 9)
    halo = _disks(shape, CENTRES, 12) & ~cells
    frame = rng.normal(1000, 20, shape)
    frame[cells] -= 300
    frame[halo] += 300
    return np.clip(frame, 0, None).astype(np.uint16)


def _fluorescence_frame(rng: np.random.Generator) -> np.ndarray:
    """Dark background, sparse bright cells: fluorescence."""
    shape = (128, 128)
    frame = rng.normal(100, 5, shape)
    frame[_disks(shape, CENTRES, 9)] += 900
    return np.clip(frame, 0, None).astype(np.uint16)


# --------------------------------------------------------------------------
# per-frame statistics
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.int32])
def test_phase_and_fluorescence_frames_differ_in_bright_share(dtype: Any) -> None:
    rng = np.random.default_rng(0)
    phase = _phase_frame(rng).astype(dtype)
    fluo = _fluorescence_frame(rng).astype(dtype)
    seg_p = segment_log_std(phase)
    seg_f = segment_log_std(fluo)
    assert seg_p.mask.any()
    assert seg_f.mask.any()
    p = phase_statistics(phase, seg_p.mask, noise=math.exp(seg_p.mode))
    f = phase_statistics(fluo, seg_f.mask, noise=math.exp(seg_f.mode))
    assert p.bright_fraction < 0.2
    assert f.bright_fraction > 0.6  # the mask includes the rim of the blurred edge
    assert (p.minimum, p.maximum) == (float(phase.min()), float(phase.max()))


def test_bright_share_matches_a_brute_force_count() -> None:
    # frames up to 128 x 128 are read in full: the count is exact
    rng = np.random.default_rng(1)
    frame = _fluorescence_frame(rng)
    mask = _disks(frame.shape, CENTRES, 10)
    noise = 5.0
    level = np.median(frame[~mask]) + 3 * noise
    expected = sum(1 for v in frame[mask] if v > level) / mask.sum()
    got = phase_statistics(frame, mask, noise=noise).bright_fraction
    assert got == pytest.approx(expected, abs=0)


def test_large_frames_are_sampled() -> None:
    frame = np.full((1024, 1024), 100, dtype=np.uint16)
    frame[::2, :] = 1000  # bright on the even rows only
    mask = np.zeros(frame.shape, dtype=bool)
    mask[:, :512] = True
    # every 8th row and column is read: all even rows, so all bright
    stats = phase_statistics(frame, mask, noise=1.0)
    assert stats.bright_fraction == 0.0  # background median is 1000 too
    frame[:, 512:] = 100
    stats = phase_statistics(frame, mask, noise=1.0)
    assert stats.bright_fraction == 1.0


@pytest.mark.parametrize(
    ("frame", "mask", "noise"),
    [
        (np.zeros((8, 8), np.uint16), np.zeros((8, 8), bool), 1.0),  # blank
        (np.arange(64).reshape(8, 8), np.zeros((8, 8), bool), 1.0),  # no object
        (np.arange(64).reshape(8, 8), np.ones((8, 8), bool), 1.0),  # no background
        (np.arange(64).reshape(8, 8), np.eye(8, dtype=bool), NAN),  # no threshold
    ],
)
def test_bright_share_is_nan_when_undefined(
    frame: Any, mask: Any, noise: float
) -> None:
    stats = phase_statistics(frame, mask, noise=noise)
    assert math.isnan(stats.bright_fraction)


def test_phase_statistics_errors() -> None:
    frame = np.zeros((4, 4), np.uint16)
    with pytest.raises(TypeError, match="frame must have a real dtype"):
        phase_statistics(frame.astype(bool), frame > 0, noise=1.0)
    with pytest.raises(TypeError, match="mask must be a bool ndarray"):
        phase_statistics(frame, frame, noise=1.0)
    with pytest.raises(ValueError, match="same shape"):
        phase_statistics(frame, np.zeros((4, 5), bool), noise=1.0)


def test_object_statistics() -> None:
    assert object_statistics(np.array([10, 30, 20])) == (3, 20.0, 20.0)
    # Ten cells of 100 px and one colony of 5000: the median object is a
    # cell, the median foreground pixel lies in the colony.
    assert object_statistics(np.array([100] * 10 + [5000])) == (11, 100.0, 5000.0)
    # Oracle: the area at which the cumulative sorted area reaches half.
    rng = np.random.default_rng(4)
    for _ in range(20):
        areas = rng.integers(1, 500, int(rng.integers(1, 40)))
        pixels = np.repeat(areas, areas)  # one entry per foreground pixel
        want = float(np.sort(pixels)[(pixels.size - 1) // 2])
        got = object_statistics(areas)[2]
        assert got == want or got == float(np.sort(pixels)[pixels.size // 2])
    n, median, pixel_median = object_statistics(np.zeros(0, np.int64))
    assert n == 0
    assert math.isnan(median)
    assert math.isnan(pixel_median)
    with pytest.raises(ValueError, match="areas must be 1-D"):
        object_statistics(np.zeros((2, 2), np.int64))


@pytest.mark.parametrize("mode", ["lineage", "upstream"])
def test_tracker_reports_the_areas_of_each_frame(mode: str) -> None:
    rng = np.random.default_rng(2)
    tracker = LineageTracker(mode=mode)
    assert tracker.last_areas.size == 0
    for _ in range(3):
        mask = rng.random((40, 50)) < 0.3
        tracker.push(mask)
        comp, n = label_components(mask)
        expected = np.bincount(comp.ravel(), minlength=n + 1)[1:]
        assert np.array_equal(tracker.last_areas, expected)
        assert not tracker.last_areas.flags.writeable


# --------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------


def test_stats_json_round_trip() -> None:
    columns = {
        "n_objects": [3, 0, np.int64(5)],
        "median_area_px": [120.5, NAN, 1 / 3],
        "pixel_median_area_px": [300.0, NAN, 2.0],
    }
    text = stats_json(columns, fields=CELL_STATS_FIELDS)
    content = json.loads(text)
    assert list(content) == ["version", "n_frames", *CELL_STATS_FIELDS]
    assert content["median_area_px"] == [120.5, None, 0.333333]
    back = read_stats_json(text, fields=CELL_STATS_FIELDS, name="x.json")
    assert back["n_frames"] == 3
    assert np.array_equal(back["n_objects"], [3.0, 0.0, 5.0])
    assert math.isnan(back["median_area_px"][1])
    # A file written before the pixel-median figure existed still reads.
    old = json.dumps(
        {"version": 1, "n_frames": 1, "n_objects": [2], "median_area_px": [50.0]}
    )
    back = read_stats_json(old, fields=CELL_STATS_FIELDS, name="x.json")
    assert math.isnan(back["pixel_median_area_px"][0])


@pytest.mark.parametrize(
    "text",
    ["", "{}", '{"version": 1, "n_frames": 2, "n_objects": [1], "median_area_px": []}'],
)
def test_invalid_stats_json_says_how_to_fix(text: str) -> None:
    fix = r"x\.json is not a valid.*delete it and rerun"
    with pytest.raises(ValueError, match=fix):
        read_stats_json(text, fields=CELL_STATS_FIELDS, name="x.json")


def test_stats_json_columns_must_match() -> None:
    with pytest.raises(ValueError, match="different lengths"):
        stats_json(
            {"n_objects": [1], "median_area_px": [], "pixel_median_area_px": [1]},
            fields=CELL_STATS_FIELDS,
        )


# --------------------------------------------------------------------------
# detectors
# --------------------------------------------------------------------------


def test_find_blank_and_dropped() -> None:
    lo = np.array([5, 0, 7, 0, 0, 0, 9, 65535, 0])
    hi = np.array([99, 0, 88, 0, 0, 0, 77, 65535, 0])
    assert find_blank(lo, hi).tolist() == [0, 1, 0, 1, 1, 1, 0, 1, 1]
    # runs of zero frames up to max_gap are dropped frames; the saturated
    # (constant, non-zero) frame 7 never is
    assert find_dropped(lo, hi, max_gap=2).tolist() == [0, 1, 0, 0, 0, 0, 0, 0, 1]
    assert find_dropped(lo, hi, max_gap=3).tolist() == [0, 1, 0, 1, 1, 1, 0, 0, 1]
    assert not find_dropped(lo, hi, max_gap=0).any()
    # a channel blank in every frame has no dropped frames: it is empty
    assert not find_dropped(np.zeros(3), np.zeros(3), max_gap=2).any()


def test_find_jumps_skips_unusable_frames() -> None:
    counts = np.array([40, 41, 0, 10, 12, 30, 31])
    usable = counts > 0
    # 41 -> 10 jumps across the empty frame 2; 12 -> 30 is 2.5x
    assert find_jumps(counts, usable, factor=2.0) == [(1, 3), (4, 5)]
    assert find_jumps(counts, usable, factor=3.0) == [(1, 3)]
    assert find_jumps(np.array([2, 5, 2]), np.ones(3, bool), factor=2, min_diff=5) == []
    assert find_jumps(np.array([2, 7]), np.ones(2, bool), factor=2, min_diff=5) == [
        (0, 1)
    ]
    assert find_jumps(np.array([10.0, 20.0]), np.ones(2, bool), factor=2) == []


def test_find_size_outliers() -> None:
    # disks of 10 and 60 px: 78.5 and 2827 px; limits 19.6 and 11310 px
    area = np.array([500, 11000, 11400, 20, 19, NAN, 50000])
    usable = np.array([1, 1, 1, 1, 1, 1, 0], bool)
    large, small = find_size_outliers(area, usable, cell_diameter_px=(10, 60))
    assert large.tolist() == [0, 0, 1, 0, 0, 0, 0]
    assert small.tolist() == [0, 0, 0, 0, 1, 0, 0]


def test_find_fluorescence_like() -> None:
    bright = np.array([0.02, 0.3, 0.51, 0.9, NAN, 0.95])
    usable = np.array([1, 1, 1, 1, 1, 0], bool)
    assert find_fluorescence_like(bright, usable).tolist() == [0, 0, 1, 1, 0, 0]


def test_format_frames() -> None:
    assert format_frames([0, 1, 2, 5, 7, 8]) == "0-2, 5, 7-8"
    assert format_frames([4]) == "4"
    assert format_frames([]) == ""


# --------------------------------------------------------------------------
# check_segmentation
# --------------------------------------------------------------------------

T = 8


def _fov(**changes: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A healthy FOV of T frames: 40 cells of ~500 px, dark objects."""
    seg: dict[str, Any] = {
        "minimum": np.full(T, 2000.0),
        "maximum": np.full(T, 14000.0),
        "threshold": np.full(T, 5.1),
        "foreground_fraction": np.full(T, 0.12),
        "noise": np.full(T, 160.0),
        "bright_fraction": np.full(T, 0.03),
    }
    cells: dict[str, Any] = {
        "n_objects": np.arange(40.0, 40 + T),
        "median_area_px": np.full(T, 500.0),
    }
    for key, value in changes.items():
        target = seg if key in SEG_STATS_FIELDS else cells
        target[key] = np.asarray(value, dtype=np.float64)
    return seg, cells


def _check(seg: Any, cells: Any, *, max_gap: int = 2) -> list[Any]:
    return check_segmentation(
        seg,
        cells,
        fov=3,
        channel="0 ('Phase')",
        cell_diameter_px=(10.0, 60.0),
        jump_factor=2.0,
        max_gap=max_gap,
    )


def _summary(found: list[Any]) -> list[tuple[str, str, str]]:
    return [(f.check, f.level, format_frames(f.frames)) for f in found]


def test_a_healthy_fov_gives_no_finding() -> None:
    assert _check(*_fov()) == []


def test_blank_channel_is_one_warning() -> None:
    seg, cells = _fov(
        minimum=np.zeros(T),
        maximum=np.zeros(T),
        threshold=np.full(T, NAN),
        n_objects=np.zeros(T),
        median_area_px=np.full(T, NAN),
        bright_fraction=np.full(T, NAN),
    )
    found = _check(seg, cells)
    assert _summary(found) == [("blank_channel", "warning", "0-7")]
    assert found[0].message.startswith(
        "FOV 3: the phase-contrast channel 0 ('Phase') is blank in all 8 frames "
        "(value 0)"
    )
    assert "channels.pc" in found[0].message


def _blank(frames: list[int], value: float = 0.0) -> dict[str, Any]:
    seg, cells = _fov()
    for t in frames:
        seg["minimum"][t] = seg["maximum"][t] = value
        seg["threshold"][t] = NAN
        seg["bright_fraction"][t] = NAN
        cells["n_objects"][t] = 0
        cells["median_area_px"][t] = NAN
    return {"seg": seg, "cells": cells}


def test_one_dropped_frame_is_a_note() -> None:
    found = _check(**_blank([4]))
    assert _summary(found) == [("dropped_frames", "note", "4")]
    assert found[0].message.startswith("FOV 3, frame 4: the phase-contrast image")


def test_dropped_frame_without_gap_closing_is_a_warning() -> None:
    found = _check(**_blank([4]), max_gap=0)
    assert _summary(found) == [("blank_frames", "warning", "4")]
    assert "tracks break there" in found[0].message


def test_long_run_of_zero_frames_is_a_warning() -> None:
    found = _check(**_blank([2, 3, 4]))
    assert _summary(found) == [("blank_frames", "warning", "2-4")]
    assert found[0].message.startswith(
        "FOV 3, frames 2-4 (3 of 8): the phase-contrast channel 0 ('Phase') is "
        "blank (every pixel 0), so these frames have no cells, and tracks break"
    )


def test_constant_non_zero_frame_is_a_warning() -> None:
    found = _check(**_blank([5], value=65535.0))
    assert _summary(found) == [("blank_frames", "warning", "5")]
    assert "every pixel 65535" in found[0].message
    assert "tracks break" not in found[0].message


def test_nan_threshold_on_a_textured_frame() -> None:
    seg, cells = _fov()
    seg["threshold"][[1, 2]] = NAN
    cells["n_objects"][[1, 2]] = 0
    found = _check(seg, cells)
    assert _summary(found) == [("no_threshold", "warning", "1-2")]
    assert "no segmentation threshold could be computed" in found[0].message


def test_no_cells_anywhere() -> None:
    found = _check(*_fov(n_objects=np.zeros(T), median_area_px=np.full(T, NAN)))
    assert _summary(found) == [("no_cells", "warning", "0-7")]
    assert "FOV 3: no cell was segmented in any frame" in found[0].message


def test_no_cells_in_some_frames() -> None:
    seg, cells = _fov()
    cells["n_objects"][[6, 7]] = 0
    cells["median_area_px"][[6, 7]] = NAN
    found = _check(seg, cells)
    assert _summary(found) == [("no_cells_frames", "warning", "6-7")]
    assert "while other frames have up to 45" in found[0].message


def test_cell_count_jump() -> None:
    counts = [40, 41, 42, 8, 9, 40, 41, 42]
    found = _check(*_fov(n_objects=counts))
    assert _summary(found) == [("cell_count_jump", "warning", "3, 5")]
    assert "between frames 2->3 (42 -> 8), 4->5 (9 -> 40)" in found[0].message


def test_few_cells_dividing_are_no_jump() -> None:
    assert _check(*_fov(n_objects=[1, 2, 2, 4, 4, 4, 8, 8])) == []


def test_cell_area_jump() -> None:
    area = [500, 520, 510, 1500, 1450, 500, 490, 480]
    found = _check(*_fov(median_area_px=area))
    assert _summary(found) == [("cell_area_jump", "warning", "3, 5")]
    assert "median cell area (px) changes more than 2x" in found[0].message


def test_cells_far_outside_the_size_range() -> None:
    found = _check(*_fov(median_area_px=np.full(T, 40000.0)))
    assert _summary(found) == [("cells_too_large", "warning", "0-7")]
    assert "the median object is 40000 px (a disk 226 px across)" in found[0].message
    assert "qc.cell_diameter_px" in found[0].message
    found = _check(*_fov(median_area_px=np.full(T, 12.0)))
    assert _summary(found) == [("cells_too_small", "warning", "0-7")]


def test_colonies_merged_into_objects() -> None:
    # Dense rods with the default method: most objects are cell-sized pieces,
    # but half of the cell pixels lie in colony-sized objects.
    seg, cells = _fov()
    cells["pixel_median_area_px"] = np.full(T, 150000.0)
    found = _check(seg, cells)
    assert _summary(found) == [("merged_objects", "warning", "0-7")]
    assert "half of the cell pixels lie in objects of 150000 px" in found[0].message
    assert "segmentation.method: rods" in found[0].message
    # Cells of the expected size: nothing; a file without the figure: nothing.
    cells["pixel_median_area_px"] = np.full(T, 900.0)
    assert _check(seg, cells) == []
    del cells["pixel_median_area_px"]
    assert _check(seg, cells) == []


def test_fluorescence_like_phase_channel() -> None:
    found = _check(*_fov(bright_fraction=np.full(T, 0.86)))
    assert _summary(found) == [("fluorescence_like", "warning", "0-7")]
    assert found[0].message.startswith(
        "FOV 3, frames 0-7 (8 of 8): the phase-contrast channel 0 ('Phase') looks "
        "like fluorescence: 86% of the segmented pixels are brighter"
    )


def test_findings_to_dict() -> None:
    (finding,) = _check(**_blank([4]))
    assert finding.to_dict() == {
        "check": "dropped_frames",
        "frames": "4",
        "n_frames": 1,
        "message": finding.message,
    }


def test_mismatched_statistics() -> None:
    seg, cells = _fov()
    cells["n_objects"] = cells["n_objects"][:-1]
    with pytest.raises(ValueError, match=r"different numbers of frames.*FOV 3"):
        _check(seg, cells)
