"""One FOV: the label, background and track passes over its frames."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from pyama_steps.io import NpyFrameReader
from pyama_steps.validation._run_files import TRUTH_JSON
from pyama_steps.validation.evaluate.inputs import (
    _check_shape,
    _read_csv,
    _RunFov,
)
from pyama_steps.validation.evaluate.matching import (
    _frame_stats,
)
from pyama_steps.validation.evaluate.tally import (
    _Background,
    _Tally,
)
from pyama_steps.validation.evaluate.traces import (
    _trace_pairs,
)
from pyama_steps.validation.evaluate.tracks import (
    _division_counts,
    _track_table,
)

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]


def _label_pass(
    truth_labels: Path,
    pred_labels: Path,
    shape: tuple[int, int, int],
    tally: _Tally,
    *,
    threshold: float,
) -> tuple[Int64Array, Int64Array, Int64Array, Int64Array]:
    """Stream both label stacks; return (frame, true id, matched id) and edge ids."""
    frames: list[Int64Array] = []
    ids: list[Int64Array] = []
    matched: list[Int64Array] = []
    edges: list[Int64Array] = []
    ratios: list[Float64Array] = [tally.area_ratios]
    with NpyFrameReader(truth_labels) as gt, NpyFrameReader(pred_labels) as pr:
        _check_shape(gt, shape, f"{TRUTH_JSON} of its FOV")
        _check_shape(pr, gt.shape, repr(str(truth_labels)))
        for t in range(shape[0]):
            fs = _frame_stats(gt.read(t), pr.read(t), threshold=threshold)
            tally.n_frames += 1
            tally.true_px += fs.true_px
            tally.pred_px += fs.pred_px
            tally.both_px += fs.both_px
            tally.true_objects += int(fs.true_ids.size)
            tally.pred_objects += fs.n_pred
            tally.matched_objects += int(np.count_nonzero(fs.matched))
            frames.append(np.full(fs.true_ids.size, t, dtype=np.int64))
            ids.append(fs.true_ids)
            matched.append(fs.matched)
            edges.append(fs.edge_ids)
            tally.area_true_px += int(fs.area_true.sum())
            tally.area_pred_px += int(fs.area_pred.sum())
            ratios.append(fs.area_pred / fs.area_true)
    tally.area_ratios = np.concatenate(ratios)

    def cat(parts: list[Int64Array]) -> Int64Array:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    return cat(frames), cat(ids), cat(matched), np.unique(cat(edges))


def _background_pass(
    c: int,
    truth_bg: Path,
    run: _RunFov,
    shape: tuple[int, int, int],
    dropped: set[int],
    weight: float,
) -> _Background | None:
    """Sum ``|bg - true_bg|`` and ``true_bg`` over the frames that are not dropped."""
    if c in run.fl and c in run.model and run.background_params:
        return _background_model_pass(c, truth_bg, run, shape, dropped)
    if c in run.background:
        paths = [run.background[c]]
    elif c in run.fl and c in run.corrected and weight > 0.0:
        paths = [run.fl[c], run.corrected[c]]
    else:
        return None
    out = _Background()
    readers = [NpyFrameReader(truth_bg), *(NpyFrameReader(p) for p in paths)]
    try:
        for r in readers:
            _check_shape(r, shape, f"{TRUTH_JSON} of its FOV")
        for t in range(shape[0]):
            if t in dropped:  # the truth background is 0 there: nothing imaged
                continue
            true_bg = readers[0].read(t).astype(np.float64)
            if len(readers) == 2:
                bg = readers[1].read(t).astype(np.float64)
            else:
                raw = readers[1].read(t).astype(np.float64)
                corr = readers[2].read(t).astype(np.float64)
                bg = (raw - corr) / weight
            out.abs_sum += float(np.abs(bg - true_bg).sum())
            out.true_sum += float(true_bg.sum())
            out.n_px += int(true_bg.size)
    finally:
        for r in readers:
            r.close()
    return out


def _background_model_pass(
    c: int,
    truth_bg: Path,
    run: _RunFov,
    shape: tuple[int, int, int],
    dropped: set[int],
) -> _Background:
    """``_background_pass`` on the surfaces of the background model (§3.6)."""
    from pyama_steps.background import CorrectedReader

    out = _Background()
    with (
        NpyFrameReader(truth_bg) as truth,
        CorrectedReader(
            fl=run.fl[c], model=run.model[c], params=run.background_params
        ) as pred,
    ):
        _check_shape(truth, shape, f"{TRUTH_JSON} of its FOV")
        _check_shape(pred.raw_reader, shape, f"{TRUTH_JSON} of its FOV")
        for t in range(shape[0]):
            if t in dropped:  # the truth background is 0 there: nothing imaged
                continue
            true_bg = truth.read(t).astype(np.float64)
            bg = pred.background(t).astype(np.float64)
            out.abs_sum += float(np.abs(bg - true_bg).sum())
            out.true_sum += float(true_bg.sum())
            out.n_px += int(true_bg.size)
    return out


def _pred_parents(
    traces: pd.DataFrame, lineage: pd.DataFrame | None
) -> tuple[Int64Array, Int64Array]:
    """One ``(cell, parent)`` per run id: the lineage CSV, else the traces CSV."""
    parts = []
    if "parent" in traces.columns:
        parts.append(traces[["cell", "parent"]])
    if lineage is not None:
        parts.append(lineage[["cell", "parent"]])
    if not parts:
        z = np.zeros(0, dtype=np.int64)
        return z, z.copy()
    table = pd.concat(parts, ignore_index=True)
    table = table.drop_duplicates(subset="cell", keep="last").sort_values("cell")
    return (
        table["cell"].to_numpy(dtype=np.int64),
        table["parent"].to_numpy(dtype=np.int64),
    )


def _evaluate_fov(
    fov: int,
    info: Mapping[str, Any],
    truth_fov: Path,
    run: _RunFov,
    fl_channels: Sequence[int],
    weight: float,
    *,
    iou_threshold: float,
    min_signal_fraction: float,
) -> _Tally:
    shape_list = [int(v) for v in info["shape"]]
    if len(shape_list) != 3:
        raise ValueError(
            f"{TRUTH_JSON}: FOV {fov} has shape {shape_list!r}; expected [T, Y, X]."
        )
    shape = (shape_list[0], shape_list[1], shape_list[2])
    tally = _Tally()
    frames, true_ids, matched, edge_ids = _label_pass(
        truth_fov / "labels.npy", run.labels, shape, tally, threshold=iou_threshold
    )
    tracks = _track_table(frames, true_ids, matched, edge_ids=edge_ids)
    tally.true_cells = len(tracks)
    tally.eligible_tracks = int(tracks["eligible"].sum())
    tally.complete_tracks = int(tracks["complete"].sum())
    tally.id_switches = int(tracks["switches"].sum())

    tables = _read_tables(truth_fov, run, fl_channels)
    _tally_lineage(tally, tracks, tables)
    # Trace errors over every (cell, frame) of the complete tracks.
    complete = tracks.loc[tracks["complete"], "cell"].to_numpy(dtype=np.int64)
    keep = np.isin(true_ids, complete)
    pairs = pd.DataFrame(
        {"cell": true_ids[keep], "frame": frames[keep], "pred": matched[keep]}
    )
    _tally_traces(
        tally, fov, pairs, tables, fl_channels, min_signal_fraction=min_signal_fraction
    )
    _tally_times(tally, fov, info, shape, tables)
    dropped = {int(t) for t in info.get("dropped_frames", [])}
    for c in fl_channels:
        truth_bg = truth_fov / f"background_ch_{c}.npy"
        if truth_bg.is_file():
            bg = _background_pass(c, truth_bg, run, shape, dropped, weight)
            if bg is not None:
                tally.background[c] = bg
    return tally


@dataclass(frozen=True)
class _FovTables:
    """One FOV's predicted and true CSV tables, with the paths they came from."""

    pred: pd.DataFrame
    lineage: pd.DataFrame | None
    truth_traces: pd.DataFrame
    truth_lineage: pd.DataFrame
    fl_cols: list[str]
    traces_path: Path
    truth_traces_path: Path


def _read_tables(
    truth_fov: Path, run: _RunFov, fl_channels: Sequence[int]
) -> _FovTables:
    """Read the run's traces (and lineage) and the truth's traces and lineage."""
    fl_cols = [
        f"{kind}_ch_{c}"
        for c in fl_channels
        for kind in ("intensity_total", "intensity_mean")
    ]
    header = pd.read_csv(run.traces, nrows=0).columns.tolist()
    base = ["cell", "frame", "time"] + (["parent"] if "parent" in header else [])
    pred = _read_csv(run.traces, base + fl_cols, "traces CSV")
    lineage = (
        _read_csv(run.lineage, ["cell", "parent"], "lineage CSV")
        if run.lineage is not None
        else None
    )
    true_cols = [
        f"{kind}_ch_{c}" for c in fl_channels for kind in ("true_total", "true_mean")
    ]
    truth_traces = _read_csv(
        truth_fov / "traces.csv", ["cell", "frame", *true_cols], "truth traces CSV"
    )
    truth_lineage = _read_csv(
        truth_fov / "lineage.csv", ["cell", "parent"], "truth lineage CSV"
    )
    return _FovTables(
        pred=pred,
        lineage=lineage,
        truth_traces=truth_traces,
        truth_lineage=truth_lineage,
        fl_cols=fl_cols,
        traces_path=run.traces,
        truth_traces_path=truth_fov / "traces.csv",
    )


def _tally_lineage(tally: _Tally, tracks: pd.DataFrame, tables: _FovTables) -> None:
    """Count the traced cells and the true, predicted and found divisions."""
    pred = tables.pred
    # Traced: the main matched id has rows in the traces CSV.
    main = tracks["pred_main"].to_numpy()
    with_rows = np.unique(pred["cell"].to_numpy(dtype=np.int64))
    tally.traced_cells = int(np.count_nonzero((main > 0) & np.isin(main, with_rows)))

    p_cells, p_parents = _pred_parents(pred, tables.lineage)
    div = _division_counts(
        tables.truth_lineage["cell"].to_numpy(),
        tables.truth_lineage["parent"].to_numpy(),
        p_cells,
        p_parents,
        tracks,
    )
    tally.true_divisions = div.n_true
    tally.pred_divisions = div.n_pred
    tally.divisions_found = div.n_found
    tally.pred_divisions_true = div.n_pred_true


def _tally_traces(
    tally: _Tally,
    fov: int,
    pairs: pd.DataFrame,
    tables: _FovTables,
    fl_channels: Sequence[int],
    *,
    min_signal_fraction: float,
) -> None:
    """Compare the (cell, frame, pred) ``pairs``' measured and true intensities."""
    try:
        pairs = pairs.merge(
            tables.truth_traces, on=["cell", "frame"], how="left", validate="m:1"
        )
        measured = tables.pred.rename(columns={"cell": "pred"})[
            ["pred", "frame", *tables.fl_cols]
        ]
        pairs = pairs.merge(measured, on=["pred", "frame"], how="left", validate="m:1")
    except pd.errors.MergeError as e:
        raise ValueError(
            f"FOV {fov}: a (cell, frame) pair appears twice in "
            f"{str(tables.traces_path)!r} or {str(tables.truth_traces_path)!r}; the "
            "CSV is corrupt, rerun the step that wrote it."
        ) from e
    for c in fl_channels:
        tally.traces[c] = _trace_pairs(
            pairs[f"intensity_total_ch_{c}"].to_numpy(dtype=np.float64),
            pairs[f"true_total_ch_{c}"].to_numpy(dtype=np.float64),
            pairs[f"intensity_mean_ch_{c}"].to_numpy(dtype=np.float64),
            pairs[f"true_mean_ch_{c}"].to_numpy(dtype=np.float64),
            min_signal_fraction=min_signal_fraction,
        )


def _tally_times(
    tally: _Tally,
    fov: int,
    info: Mapping[str, Any],
    shape: tuple[int, int, int],
    tables: _FovTables,
) -> None:
    """Compare the run's time column with the generator's timestamps."""
    pred = tables.pred
    times = np.asarray(info["times_min"], dtype=np.float64)
    if times.size != shape[0]:
        raise ValueError(
            f"{TRUTH_JSON}: FOV {fov} lists {times.size} times for {shape[0]} frames; "
            "regenerate the truth."
        )
    frame_col = pred["frame"].to_numpy(dtype=np.int64)
    if frame_col.size and (frame_col.min() < 0 or frame_col.max() >= shape[0]):
        raise ValueError(
            f"{str(tables.traces_path)!r} has frames outside [0, {shape[0] - 1}]; the "
            "run was made from another input than the truth."
        )
    tally.trace_rows = int(frame_col.size)
    if frame_col.size:
        diff = np.abs(pred["time"].to_numpy(dtype=np.float64) - times[frame_col])
        tally.time_err = float(diff.max())
