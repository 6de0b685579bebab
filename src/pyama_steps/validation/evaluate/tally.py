"""Tallies: raw counts per FOV, pooled by summing, and the metrics from them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from pyama_steps.validation.evaluate.traces import (
    _no_pairs,
    _pearson,
    _quantile,
    _TracePairs,
)

Float64Array = npt.NDArray[np.float64]


@dataclass
class _Background:
    abs_sum: float = 0.0
    true_sum: float = 0.0
    n_px: int = 0


@dataclass
class _Tally:
    """Everything a metric is computed from; FOVs pool by summing."""

    n_frames: int = 0
    true_px: int = 0
    pred_px: int = 0
    both_px: int = 0
    true_objects: int = 0
    pred_objects: int = 0
    matched_objects: int = 0
    true_cells: int = 0
    eligible_tracks: int = 0
    complete_tracks: int = 0
    id_switches: int = 0
    traced_cells: int = 0
    true_divisions: int = 0
    pred_divisions: int = 0
    divisions_found: int = 0
    pred_divisions_true: int = 0
    trace_rows: int = 0
    time_err: float = math.nan
    area_ratios: Float64Array = field(default_factory=lambda: np.zeros(0))
    area_true_px: int = 0
    area_pred_px: int = 0
    traces: dict[int, _TracePairs] = field(default_factory=dict)
    background: dict[int, _Background] = field(default_factory=dict)


_SUMMED: Final = (
    "n_frames",
    "true_px",
    "pred_px",
    "both_px",
    "true_objects",
    "pred_objects",
    "matched_objects",
    "true_cells",
    "eligible_tracks",
    "complete_tracks",
    "id_switches",
    "traced_cells",
    "true_divisions",
    "pred_divisions",
    "divisions_found",
    "pred_divisions_true",
    "trace_rows",
    "area_true_px",
    "area_pred_px",
)


def _pool(tallies: Sequence[_Tally]) -> _Tally:
    out = _Tally()
    for name in _SUMMED:
        setattr(out, name, sum(getattr(t, name) for t in tallies))
    errs = [t.time_err for t in tallies if not math.isnan(t.time_err)]
    out.time_err = max(errs) if errs else math.nan
    out.area_ratios = np.concatenate([np.zeros(0), *(t.area_ratios for t in tallies)])
    channels = sorted({c for t in tallies for c in t.traces})
    for c in channels:
        parts = [t.traces[c] for t in tallies if c in t.traces]
        out.traces[c] = _TracePairs(
            pred_total=np.concatenate([p.pred_total for p in parts]),
            true_total=np.concatenate([p.true_total for p in parts]),
            rel_total=np.concatenate([p.rel_total for p in parts]),
            rel_mean=np.concatenate([p.rel_mean for p in parts]),
            excluded=sum(p.excluded for p in parts),
            unmeasured=sum(p.unmeasured for p in parts),
        )
    for c in sorted({c for t in tallies for c in t.background}):
        bgs = [t.background[c] for t in tallies if c in t.background]
        out.background[c] = _Background(
            abs_sum=sum(b.abs_sum for b in bgs),
            true_sum=sum(b.true_sum for b in bgs),
            n_px=sum(b.n_px for b in bgs),
        )
    return out


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else math.nan


def _f1(precision: float, recall: float) -> float:
    if math.isnan(precision) or math.isnan(recall):
        return math.nan
    if precision + recall == 0.0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def _metrics(
    tally: _Tally, fl_channels: Sequence[int], bg_channels: Sequence[int]
) -> dict[str, float]:
    """Compute the metric dictionary of one tally, in a fixed key order."""
    t = tally
    m: dict[str, float] = {"n_frames": t.n_frames}
    m["dice"] = _ratio(2 * t.both_px, t.true_px + t.pred_px)
    m["n_true_objects"] = t.true_objects
    m["n_pred_objects"] = t.pred_objects
    m["n_matched_objects"] = t.matched_objects
    m["precision"] = _ratio(t.matched_objects, t.pred_objects)
    m["recall"] = _ratio(t.matched_objects, t.true_objects)
    m["f1"] = _ratio(2 * t.matched_objects, t.true_objects + t.pred_objects)
    m["area_ratio_median"] = _quantile(t.area_ratios, 50)
    m["area_ratio_p10"] = _quantile(t.area_ratios, 10)
    m["area_ratio_p90"] = _quantile(t.area_ratios, 90)
    m["area_ratio_pooled"] = _ratio(t.area_pred_px, t.area_true_px)
    m["n_true_cells"] = t.true_cells
    m["n_eligible_tracks"] = t.eligible_tracks
    m["n_complete_tracks"] = t.complete_tracks
    m["complete_fraction"] = _ratio(t.complete_tracks, t.eligible_tracks)
    m["id_switches"] = t.id_switches
    m["id_switches_per_100_cells"] = _ratio(100 * t.id_switches, t.true_cells)
    m["n_traced_cells"] = t.traced_cells
    m["traced_fraction"] = _ratio(t.traced_cells, t.true_cells)
    m["n_true_divisions"] = t.true_divisions
    m["n_pred_divisions"] = t.pred_divisions
    m["n_divisions_found"] = t.divisions_found
    m["n_pred_divisions_true"] = t.pred_divisions_true
    recall = _ratio(t.divisions_found, t.true_divisions)
    precision = _ratio(t.pred_divisions_true, t.pred_divisions)
    m["division_recall"] = recall
    m["division_precision"] = precision
    m["division_f1"] = _f1(precision, recall)
    for c in fl_channels:
        pairs = t.traces.get(c, _no_pairs())
        m[f"trace_total_rel_err_median_ch_{c}"] = _quantile(pairs.rel_total, 50)
        m[f"trace_total_rel_err_p90_ch_{c}"] = _quantile(pairs.rel_total, 90)
        m[f"trace_mean_rel_err_median_ch_{c}"] = _quantile(pairs.rel_mean, 50)
        m[f"trace_mean_rel_err_p90_ch_{c}"] = _quantile(pairs.rel_mean, 90)
        m[f"trace_pearson_r_ch_{c}"] = _pearson(pairs.pred_total, pairs.true_total)
        m[f"trace_pairs_used_ch_{c}"] = int(pairs.rel_total.size)
        m[f"trace_pairs_excluded_ch_{c}"] = pairs.excluded
        m[f"trace_pairs_unmeasured_ch_{c}"] = pairs.unmeasured
    for c in bg_channels:
        bg = t.background.get(c, _Background())
        m[f"background_mae_ch_{c}"] = _ratio(bg.abs_sum, bg.n_px)
        m[f"background_error_pct_ch_{c}"] = _ratio(100.0 * bg.abs_sum, bg.true_sum)
    m["n_trace_rows"] = t.trace_rows
    m["time_max_abs_err_min"] = t.time_err
    return m
