"""Tests for pyama_steps.validation.evaluate (algorithms.md §8.1)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from pyama_steps.cli import main
from pyama_steps.validation.evaluate import (
    Evaluation,
    evaluate_run,
    format_table,
)
from pyama_steps.validation.evaluate.matching import _match_frame
from pyama_steps.validation.evaluate.traces import _trace_pairs
from pyama_steps.validation.evaluate.tracks import _division_counts, _track_table

SHAPE = (10, 12)
BASE = "exp"

Rect = tuple[int, int, int, int]


# --------------------------------------------------------------------------
# helpers: hand-built stacks written in the truth and the run formats
# --------------------------------------------------------------------------


def rects(
    n_frames: int, cells: dict[int, dict[int, Rect]], dtype: Any = np.uint16
) -> np.ndarray:
    """Label stack; ``cells`` maps id -> {frame: (y0, y1, x0, x1)}, ends exclusive."""
    out = np.zeros((n_frames, *SHAPE), dtype=dtype)
    for cid, frames in cells.items():
        for t, (y0, y1, x0, x1) in frames.items():
            out[t, y0:y1, x0:x1] = cid
    return out


def signal_of(labels: np.ndarray) -> np.ndarray:
    """Background-free signal: 100 + 10·id per pixel of each true cell."""
    return np.where(labels > 0, 100.0 + 10.0 * labels, 0.0)


def measure(labels: np.ndarray, signal: np.ndarray) -> list[dict[str, Any]]:
    rows = []
    for t in range(labels.shape[0]):
        lab = labels[t]
        for cid in np.unique(lab[lab > 0]).tolist():
            m = lab == cid
            ys, xs = np.nonzero(m)
            total = float(signal[t][m].sum())
            rows.append(
                {
                    "cell": cid,
                    "frame": t,
                    "area": int(m.sum()),
                    "position_x": float(xs.mean()),
                    "position_y": float(ys.mean()),
                    "bbox_x0": int(xs.min()),
                    "bbox_y0": int(ys.min()),
                    "bbox_x1": int(xs.max()),
                    "bbox_y1": int(ys.max()),
                    "total": total,
                    "mean": total / m.sum(),
                }
            )
    rows.sort(key=lambda r: (r["cell"], r["frame"]))
    return rows


def lineage_rows(labels: np.ndarray, parents: dict[int, int]) -> list[dict[str, Any]]:
    rows = []
    for cid in np.unique(labels[labels > 0]).tolist():
        present = [t for t in range(labels.shape[0]) if np.any(labels[t] == cid)]
        rows.append(
            {
                "cell": cid,
                "parent": parents.get(cid, 0),
                "first_frame": present[0],
                "last_frame": present[-1],
                "n_frames": len(present),
            }
        )
    return rows


def write_csv(path: Path, df: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, float_format="%.6f", lineterminator="\n")


def add_truth(
    root: Path,
    fov: int,
    labels: np.ndarray,
    *,
    parents: dict[int, int] | None = None,
    times: list[float] | None = None,
    dropped: tuple[int, ...] = (),
    background: np.ndarray | None = None,
    signal: np.ndarray | None = None,
) -> Path:
    """Write one FOV of ground truth in the generator's format; return truth dir."""
    truth = root / "demo_truth"
    d = truth / f"fov_{fov:03d}"
    d.mkdir(parents=True, exist_ok=True)
    n_frames = labels.shape[0]
    np.save(d / "labels.npy", labels)
    sig = signal_of(labels) if signal is None else signal
    rows = measure(labels, sig)
    write_csv(
        d / "traces.csv",
        pd.DataFrame(
            {
                "cell": [r["cell"] for r in rows],
                "frame": [r["frame"] for r in rows],
                "area": [r["area"] for r in rows],
                "position_x": [r["position_x"] for r in rows],
                "position_y": [r["position_y"] for r in rows],
                "true_total_ch_1": [r["total"] for r in rows],
                "true_mean_ch_1": [r["mean"] for r in rows],
            },
            columns=[
                "cell",
                "frame",
                "area",
                "position_x",
                "position_y",
                "true_total_ch_1",
                "true_mean_ch_1",
            ],
        ),
    )
    lin = lineage_rows(labels, parents or {})
    write_csv(
        d / "lineage.csv",
        pd.DataFrame(
            [
                {k: r[k] for k in ("cell", "parent", "first_frame", "last_frame")}
                for r in lin
            ],
            columns=["cell", "parent", "first_frame", "last_frame"],
        ),
    )
    if background is not None:
        np.save(d / "background_ch_1.npy", background.astype(np.float32))
    meta_path = truth / "truth.json"
    meta = (
        json.loads(meta_path.read_text())
        if meta_path.exists()
        else {
            "preset": "test",
            "channel_names": ["Phase", "GFP"],
            "phase_channel": 0,
            "fl_channels": [1],
            "fovs": [],
        }
    )
    meta["fovs"] = [e for e in meta["fovs"] if e["fov"] != fov] + [
        {
            "fov": fov,
            "shape": list(labels.shape),
            "times_min": times or [2.5 * t for t in range(n_frames)],
            "dropped_frames": list(dropped),
            "label_dtype": str(labels.dtype),
        }
    ]
    meta["fovs"].sort(key=lambda e: e["fov"])
    meta_path.write_text(json.dumps(meta, indent=1))
    return truth


def add_run(
    root: Path,
    fov: int,
    labels: np.ndarray,
    *,
    signal: np.ndarray,
    parents: dict[int, int] | None = None,
    times: list[float] | None = None,
    lineage: bool = True,
    traces_parents: bool = True,
    drop_ids: tuple[int, ...] = (),
    fl: np.ndarray | None = None,
    corrected: np.ndarray | None = None,
    background: np.ndarray | None = None,
    weight: float = 1.0,
) -> Path:
    """Write one FOV of a run's outputs and its manifest entry; return out dir."""
    out = root / "results"
    d = f"fov_{fov:03d}"
    (out / d).mkdir(parents=True, exist_ok=True)
    n_frames = labels.shape[0]
    times = times or [2.5 * t for t in range(n_frames)]
    parents = parents or {}
    seg = f"{d}/{BASE}_{d}_seg_labeled_ch_0.npy"
    np.save(out / seg, labels)
    rows = [r for r in measure(labels, signal) if r["cell"] not in drop_ids]
    traces = pd.DataFrame(
        {
            "fov": [fov] * len(rows),
            "cell": [r["cell"] for r in rows],
            "parent": [
                parents.get(r["cell"], 0) if traces_parents else 0 for r in rows
            ],
            "frame": [r["frame"] for r in rows],
            "time": [times[r["frame"]] for r in rows],
            "good": [True] * len(rows),
            **{
                k: [r[k] for r in rows]
                for k in (
                    "position_x",
                    "position_y",
                    "bbox_x0",
                    "bbox_y0",
                    "bbox_x1",
                    "bbox_y1",
                )
            },
            "area_ch_0": [r["area"] for r in rows],
            "intensity_total_ch_1": [r["total"] for r in rows],
            "intensity_mean_ch_1": [r["mean"] for r in rows],
            "intensity_raw_mean_ch_1": [r["mean"] for r in rows],
        },
    )
    traces_path = f"{d}/{BASE}_{d}_traces.csv"
    write_csv(out / traces_path, traces)
    lineage_path = None
    if lineage:
        lineage_path = f"{d}/{BASE}_{d}_lineage.csv"
        lin = pd.DataFrame(
            lineage_rows(labels, parents),
            columns=["cell", "parent", "first_frame", "last_frame", "n_frames"],
        )
        lin.insert(0, "fov", fov)
        lin["n_gap_frames"] = (
            lin["last_frame"] - lin["first_frame"] + 1 - lin["n_frames"]
        )
        lin["n_merged"] = 0
        lin["fate"] = "end"
        write_csv(out / lineage_path, lin)
    entry: dict[str, Any] = {
        "pc": None,
        "fl": [],
        "seg": None,
        "seg_labeled": [0, seg],
        "fl_background": [],
        "fl_corrected": [],
        "traces": traces_path,
        "lineage": lineage_path,
    }
    for key, kind, stack in (
        ("fl", "fl", fl),
        ("fl_corrected", "fl_corrected", corrected),
        ("fl_background", "fl_background", background),
    ):
        if stack is not None:
            path = f"{d}/{BASE}_{d}_{kind}_ch_1.npy"
            np.save(out / path, stack)
            entry[key] = [[1, path]]
    manifest_path = out / "processing_results.yaml"
    manifest = (
        yaml.safe_load(manifest_path.read_text())
        if manifest_path.exists()
        else {
            "output_dir": "results",
            "channels": {
                "pc": {"channel": 0, "features": ["area"], "name": "Phase"},
                "fl": [
                    {
                        "channel": 1,
                        "features": [
                            "intensity_total",
                            "intensity_mean",
                            "intensity_raw_mean",
                        ],
                        "name": "GFP",
                    }
                ],
            },
            "results": {},
            "params": {"background": {"weight": weight}},
            "time_units": "min",
            "fov_status": {},
        }
    )
    manifest["results"][str(fov)] = entry
    manifest["fov_status"][str(fov)] = {"status": "ok"}
    manifest_path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return out


def run_case(
    tmp_path: Path,
    truth: np.ndarray,
    pred: np.ndarray,
    *,
    truth_kw: dict[str, Any] | None = None,
    run_kw: dict[str, Any] | None = None,
    **eval_kw: Any,
) -> Evaluation:
    """Write truth and run for FOV 0, the run measured on the true signal."""
    truth_kw = truth_kw or {}
    run_kw = dict(run_kw or {})
    true_signal = truth_kw.get("signal", signal_of(truth))
    run_kw.setdefault("signal", true_signal)
    truth_dir = add_truth(tmp_path, 0, truth, **truth_kw)
    out = add_run(tmp_path, 0, pred, **run_kw)
    return evaluate_run(truth_dir, out, **eval_kw)


def moving_pair(n_frames: int = 4) -> dict[int, dict[int, Rect]]:
    """Cell 1 moves right one column per frame; cell 2 stands still."""
    return {
        1: {t: (2, 5, 2 + t, 5 + t) for t in range(n_frames)},
        2: dict.fromkeys(range(n_frames), (6, 9, 7, 10)),
    }


# --------------------------------------------------------------------------
# pure helpers on hand-built arrays
# --------------------------------------------------------------------------


def test_match_frame_hand_computed() -> None:
    g = np.zeros((6, 8), dtype=np.uint16)
    g[1:4, 1:4] = 1  # 9 px
    g[1:3, 5:7] = 2  # 4 px
    p = np.zeros_like(g)
    p[1:4, 1:3] = 7  # 6 px inside cell 1: IoU 6/9
    p[1:3, 6:8] = 9  # 2 px shared with cell 2: IoU 2/6
    tid, pid, iou = _match_frame(g, p, threshold=0.5)
    np.testing.assert_array_equal(tid, [1])
    np.testing.assert_array_equal(pid, [7])
    np.testing.assert_allclose(iou, [6 / 9])
    tid, pid, iou = _match_frame(g, p, threshold=0.3)
    np.testing.assert_array_equal(tid, [1, 2])
    np.testing.assert_array_equal(pid, [7, 9])
    np.testing.assert_allclose(iou, [6 / 9, 2 / 6])


def test_match_frame_split_cell_is_unmatched() -> None:
    # One true cell, two predicted halves with a split line: IoU 8/20 each.
    g = np.zeros((8, 9), dtype=np.uint16)
    g[2:6, 2:7] = 1
    p = np.zeros_like(g)
    p[2:6, 2:4] = 1
    p[2:6, 5:7] = 2
    tid, pid, iou = _match_frame(g, p)
    assert tid.size == pid.size == iou.size == 0


def test_match_frame_exact_half_tie_is_one_to_one() -> None:
    g = np.zeros((3, 4), dtype=np.uint8)
    g[1, 1:3] = 4
    p = np.zeros_like(g)
    p[1, 1] = 1
    p[1, 2] = 2
    tid, pid, iou = _match_frame(g, p, threshold=0.5)
    np.testing.assert_array_equal(tid, [4])
    assert pid[0] in (1, 2)  # tie: which one wins is not part of the contract
    np.testing.assert_allclose(iou, [0.5])


def test_match_frame_huge_uint32_ids() -> None:
    g = np.zeros((4, 4), dtype=np.uint32)
    g[0:2, 0:2] = 4_000_000_000
    g[2:4, 2:4] = 7
    p = np.zeros_like(g)
    p[0:2, 0:2] = 3_999_999_999
    p[2:4, 2:4] = 4_294_967_295
    tid, pid, iou = _match_frame(g, p)
    np.testing.assert_array_equal(tid, [7, 4_000_000_000])
    np.testing.assert_array_equal(pid, [4_294_967_295, 3_999_999_999])
    np.testing.assert_allclose(iou, [1.0, 1.0])


def test_match_frame_brute_force_oracle() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        g = np.zeros((24, 24), dtype=np.uint16)
        for cid in range(1, 9):
            y, x = rng.integers(0, 20, size=2)
            h, w = rng.integers(2, 6, size=2)
            g[y : y + h, x : x + w] = cid
        p = g.copy()
        noise = rng.random(g.shape) < 0.25
        p[noise] = rng.integers(0, 12, size=int(noise.sum()))
        tid, pid, iou = _match_frame(g, p)
        # brute force IoU of every pair
        brute = {}
        for a in np.unique(g[g > 0]).tolist():
            for b in np.unique(p[p > 0]).tolist():
                inter = np.sum((g == a) & (p == b))
                union = np.sum((g == a) | (p == b))
                if inter:
                    brute[a, b] = inter / union
        got = dict(zip(zip(tid.tolist(), pid.tolist(), strict=True), iou, strict=True))
        for pair, value in got.items():
            assert value >= 0.5
            assert value == pytest.approx(brute[pair])
        for pair, value in brute.items():
            if value > 0.5:
                assert pair in got
        assert len(set(tid.tolist())) == tid.size
        assert len(set(pid.tolist())) == pid.size


@pytest.mark.parametrize(
    ("g", "p", "exc", "match"),
    [
        (np.zeros((3, 3), np.uint8), np.zeros((3, 4), np.uint8), ValueError, "shape"),
        (np.zeros((3, 3), np.float32), np.zeros((3, 3), np.uint8), TypeError, "dtype"),
        (np.full((3, 3), -1, np.int32), np.zeros((3, 3), np.int32), ValueError, "neg"),
        (np.zeros((2, 3, 3), np.uint8), np.zeros((2, 3, 3), np.uint8), ValueError, "2"),
    ],
)
def test_match_frame_rejects_bad_input(
    g: np.ndarray, p: np.ndarray, exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        _match_frame(g, p)


def test_track_table_hand_computed() -> None:
    # cell 1: ids 5, 5, unmatched, 6 -> one switch; cell 2: always 8 -> complete;
    # cell 3: always 9, but 9 is also matched to cell 4 -> not complete.
    frames = [0, 1, 2, 3, 0, 1, 2, 0, 1, 2, 3]
    cells = [1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 4]
    preds = [5, 5, 0, 6, 8, 8, 8, 9, 9, 9, 9]
    table = _track_table(frames, cells, preds, edge_ids=[])
    assert table["cell"].tolist() == [1, 2, 3, 4]
    assert table["switches"].tolist() == [1, 0, 0, 0]
    assert table["n_matched"].tolist() == [3, 3, 2, 2]
    assert table["pred_main"].tolist() == [5, 8, 9, 9]
    assert table["pred_first"].tolist() == [5, 8, 9, 9]
    assert table["pred_last"].tolist() == [6, 8, 9, 9]
    assert table["first_frame"].tolist() == [0, 0, 0, 2]
    assert table["last_frame"].tolist() == [3, 2, 1, 3]
    assert table["complete"].tolist() == [False, True, False, False]
    edge = _track_table(frames, cells, preds, edge_ids=[2])
    assert edge["eligible"].tolist() == [True, False, True, True]
    assert not edge["complete"].any()


def test_track_table_ties_and_single_frame() -> None:
    table = _track_table([0, 1, 5], [3, 3, 4], [7, 2, 1], edge_ids=[])
    assert table["pred_main"].tolist() == [2, 1]  # tie goes to the smaller id
    assert table["eligible"].tolist() == [True, False]  # one frame: not eligible
    assert _track_table([], [], [], edge_ids=[]).empty
    with pytest.raises(ValueError, match="at most once"):
        _track_table([0, 0], [1, 1], [1, 1], edge_ids=[])


def test_division_counts_hand_computed() -> None:
    tracks = pd.DataFrame(
        {"cell": [1, 2, 3], "pred_first": [11, 12, 13], "pred_last": [11, 12, 13]}
    )
    ok = _division_counts([1, 2, 3], [0, 1, 1], [11, 12, 13], [0, 11, 11], tracks)
    assert (ok.n_true, ok.n_pred, ok.n_found, ok.n_pred_true) == (1, 1, 1, 1)
    bad = _division_counts([1, 2, 3], [0, 1, 1], [11, 12, 13], [0, 11, 0], tracks)
    assert (bad.n_true, bad.n_pred, bad.n_found, bad.n_pred_true) == (1, 0, 0, 0)
    # a predicted division where the truth has none
    false = _division_counts([1, 2, 3], [0, 0, 0], [11, 12, 13], [0, 11, 11], tracks)
    assert (false.n_true, false.n_pred, false.n_found) == (0, 1, 0)


def test_trace_pairs_excludes_tiny_signal() -> None:
    # P95 of [100, 200, 1, 300] is 285 (linear), so the floor is 14.25.
    pairs = _trace_pairs(
        [110.0, 200.0, 5.0, 300.0, np.nan],
        [100.0, 200.0, 1.0, 300.0, 50.0],
        [11.0, 20.0, 0.5, 30.0, np.nan],
        [10.0, 20.0, 0.1, 30.0, 5.0],
        min_signal_fraction=0.05,
    )
    assert pairs.excluded == 1
    assert pairs.unmeasured == 1
    np.testing.assert_allclose(pairs.rel_total, [0.1, 0.0, 0.0])
    np.testing.assert_allclose(pairs.rel_mean, [0.1, 0.0, 0.0])
    none = _trace_pairs([1.0], [1.0], [1.0], [1.0], min_signal_fraction=0.0)
    assert (none.excluded, none.rel_total.size) == (0, 1)


# --------------------------------------------------------------------------
# end to end on files
# --------------------------------------------------------------------------


def test_perfect_prediction(tmp_path: Path) -> None:
    truth = rects(4, moving_pair())
    pred = np.where(truth == 1, 5, np.where(truth == 2, 7, 0)).astype(np.uint32)
    ev = run_case(tmp_path, truth, pred)
    m = ev.overall
    assert ev.fl_channels == (1,)
    assert m["dice"] == 1.0
    assert m["precision"] == m["recall"] == m["f1"] == 1.0
    assert m["n_true_objects"] == m["n_matched_objects"] == 8
    assert m["n_true_cells"] == m["n_eligible_tracks"] == m["n_complete_tracks"] == 2
    assert m["complete_fraction"] == 1.0
    assert m["id_switches"] == 0
    assert m["id_switches_per_100_cells"] == 0.0
    assert m["traced_fraction"] == 1.0
    assert m["trace_total_rel_err_median_ch_1"] == 0.0
    assert m["trace_total_rel_err_p90_ch_1"] == 0.0
    assert m["trace_mean_rel_err_median_ch_1"] == 0.0
    assert m["trace_mean_rel_err_p90_ch_1"] == 0.0
    assert m["trace_pearson_r_ch_1"] == pytest.approx(1.0)
    assert m["trace_pairs_used_ch_1"] == 8
    assert m["trace_pairs_excluded_ch_1"] == 0
    assert m["trace_pairs_unmeasured_ch_1"] == 0
    assert m["time_max_abs_err_min"] == 0.0
    assert m["n_trace_rows"] == 8
    assert math.isnan(m["division_recall"])
    assert math.isnan(m["division_precision"])
    assert ev.per_fov[0] == m
    assert list(ev.per_fov[0]) == list(m)


def test_track_broken_halfway_is_one_switch(tmp_path: Path) -> None:
    truth = rects(4, moving_pair())
    pred = truth.copy()
    pred[2:][truth[2:] == 1] = 3  # cell 1 gets a new id from frame 2 on
    m = run_case(tmp_path, truth, pred).overall
    assert m["id_switches"] == 1
    assert m["id_switches_per_100_cells"] == 50.0
    assert m["n_complete_tracks"] == 1
    assert m["complete_fraction"] == 0.5
    assert m["recall"] == m["precision"] == 1.0
    # traces of the broken cell are not counted: 4 pairs of cell 2 only
    assert m["trace_pairs_used_ch_1"] == 4


def test_two_cells_exchange_ids(tmp_path: Path) -> None:
    truth = rects(4, moving_pair())
    pred = truth.copy()
    pred[2:][truth[2:] == 1] = 2
    pred[2:][truth[2:] == 2] = 1
    m = run_case(tmp_path, truth, pred).overall
    assert m["id_switches"] == 2
    assert m["complete_fraction"] == 0.0


def test_id_reused_for_another_cell_is_not_complete(tmp_path: Path) -> None:
    cells = {
        1: {0: (2, 5, 2, 5), 1: (2, 5, 2, 5)},
        2: {2: (6, 9, 7, 10), 3: (6, 9, 7, 10)},
    }
    truth = rects(4, cells)
    pred = (truth > 0).astype(np.uint16)  # one id for both cells
    m = run_case(tmp_path, truth, pred).overall
    assert m["n_eligible_tracks"] == 2
    assert m["complete_fraction"] == 0.0
    assert m["id_switches"] == 0


def test_missed_cell_lowers_recall_exactly(tmp_path: Path) -> None:
    truth = rects(3, moving_pair(3))
    pred = truth.copy()
    pred[1][truth[1] == 2] = 0
    m = run_case(tmp_path, truth, pred).overall
    assert m["n_true_objects"] == 6
    assert m["n_matched_objects"] == 5
    assert m["recall"] == pytest.approx(5 / 6)
    assert m["precision"] == 1.0
    assert m["f1"] == pytest.approx(2 * 5 / (6 + 5))
    assert m["complete_fraction"] == 0.5
    assert m["id_switches"] == 0
    assert m["dice"] == pytest.approx(2 * 45 / (54 + 45))


def test_split_prediction_is_unmatched(tmp_path: Path) -> None:
    truth = rects(2, {1: {0: (2, 6, 2, 7), 1: (2, 6, 2, 7)}})
    pred = rects(
        2,
        {
            1: {0: (2, 6, 2, 4), 1: (2, 6, 2, 4)},
            2: {0: (2, 6, 5, 7), 1: (2, 6, 5, 7)},
        },
    )
    m = run_case(tmp_path, truth, pred).overall
    assert m["n_true_objects"] == 2
    assert m["n_pred_objects"] == 4
    assert m["n_matched_objects"] == 0
    assert m["recall"] == m["precision"] == 0.0
    assert m["complete_fraction"] == 0.0
    assert m["traced_fraction"] == 0.0
    assert m["dice"] == pytest.approx(2 * 32 / (40 + 32))


DIVISION = {
    1: {0: (3, 7, 3, 9), 1: (3, 7, 3, 9)},
    2: {2: (3, 7, 2, 5), 3: (3, 7, 2, 5)},
    3: {2: (3, 7, 7, 10), 3: (3, 7, 7, 10)},
}


@pytest.mark.parametrize(
    ("links", "recall", "precision", "n_pred"),
    [
        ({2: 1, 3: 1}, 1.0, 1.0, 1),
        ({}, 0.0, math.nan, 0),
        ({2: 1}, 0.0, math.nan, 0),
        ({2: 9, 3: 9}, 0.0, 0.0, 1),
    ],
)
def test_division_recall(
    tmp_path: Path,
    links: dict[int, int],
    recall: float,
    precision: float,
    n_pred: int,
) -> None:
    truth = rects(4, DIVISION)
    pred = (truth * 10).astype(np.uint16)  # ids 10, 20, 30
    pred_links = {10 * d: 10 * m for d, m in links.items()}
    m = run_case(
        tmp_path,
        truth,
        pred,
        truth_kw={"parents": {2: 1, 3: 1}},
        run_kw={"parents": pred_links},
    ).overall
    assert m["n_true_divisions"] == 1
    assert m["n_pred_divisions"] == n_pred
    assert m["division_recall"] == recall
    assert m["division_precision"] == pytest.approx(precision, nan_ok=True)
    expected_f1 = 1.0 if recall == 1.0 else (0.0 if precision == 0.0 else math.nan)
    assert m["division_f1"] == pytest.approx(expected_f1, nan_ok=True)


def test_division_parents_from_traces_when_no_lineage(tmp_path: Path) -> None:
    truth = rects(4, DIVISION)
    m = run_case(
        tmp_path,
        truth,
        truth.copy(),
        truth_kw={"parents": {2: 1, 3: 1}},
        run_kw={"parents": {2: 1, 3: 1}, "lineage": False},
    ).overall
    assert m["division_recall"] == 1.0
    assert m["division_f1"] == 1.0


def test_lineage_parents_win_over_traces(tmp_path: Path) -> None:
    truth = rects(4, DIVISION)
    m = run_case(
        tmp_path,
        truth,
        truth.copy(),
        truth_kw={"parents": {2: 1, 3: 1}},
        run_kw={"parents": {2: 1, 3: 1}, "traces_parents": False},
    ).overall
    assert m["division_recall"] == 1.0


def test_edge_touching_and_short_cells_are_not_eligible(tmp_path: Path) -> None:
    cells = moving_pair(3)
    cells[3] = {0: (0, 2, 0, 2), 1: (1, 3, 1, 3), 2: (1, 3, 1, 3)}  # edge in frame 0
    cells[4] = {1: (7, 9, 0 + 3, 5)}  # one frame only
    truth = rects(3, cells)
    pred = truth.copy()
    pred[2][truth[2] == 1] = 0  # cell 1 missed once: eligible, not complete
    m = run_case(tmp_path, truth, pred).overall
    assert m["n_true_cells"] == 4
    assert m["n_eligible_tracks"] == 2
    assert m["n_complete_tracks"] == 1
    assert m["complete_fraction"] == 0.5


def test_dropped_frame_does_not_break_a_track(tmp_path: Path) -> None:
    truth = rects(4, moving_pair())
    truth[2] = 0
    m = run_case(tmp_path, truth, truth.copy(), truth_kw={"dropped": (2,)}).overall
    assert m["n_true_objects"] == 6
    assert m["complete_fraction"] == 1.0
    assert m["id_switches"] == 0


def test_tiny_signal_pairs_are_excluded(tmp_path: Path) -> None:
    truth = rects(4, moving_pair())
    sig = np.where(truth == 1, 100.0, np.where(truth == 2, 0.01, 0.0))
    wrong = np.where(truth == 2, 0.03, sig)  # cell 2 measured 3x too bright
    m = run_case(
        tmp_path,
        truth,
        truth.copy(),
        truth_kw={"signal": sig},
        run_kw={"signal": wrong},
    ).overall
    assert m["trace_pairs_used_ch_1"] == 4
    assert m["trace_pairs_excluded_ch_1"] == 4
    assert m["trace_total_rel_err_median_ch_1"] == 0.0
    assert m["trace_total_rel_err_p90_ch_1"] == 0.0
    # with no floor the tiny pairs count and dominate the upper quantile
    m0 = evaluate_run(
        tmp_path / "demo_truth", tmp_path / "results", min_signal_fraction=0.0
    ).overall
    assert m0["trace_pairs_used_ch_1"] == 8
    assert m0["trace_total_rel_err_p90_ch_1"] == pytest.approx(2.0)


def test_trace_error_values(tmp_path: Path) -> None:
    truth = rects(4, moving_pair())
    sig = signal_of(truth)
    biased = np.where(truth == 2, sig * 1.1, sig)  # cell 2: +10 %
    biased[3] = np.where(truth[3] == 1, sig[3] * 0.8, biased[3])  # cell 1: -20 % once
    m = run_case(tmp_path, truth, truth.copy(), run_kw={"signal": biased}).overall
    # errors: cell 1 [0, 0, 0, 0.2], cell 2 [0.1] * 4
    assert m["trace_total_rel_err_median_ch_1"] == pytest.approx(0.1)
    assert m["trace_total_rel_err_p90_ch_1"] == pytest.approx(0.13)
    assert m["trace_mean_rel_err_median_ch_1"] == pytest.approx(0.1)
    assert m["trace_mean_rel_err_p90_ch_1"] == pytest.approx(0.13)
    true_total = np.array([990.0] * 4 + [1080.0] * 4)
    pred_total = np.array([990.0] * 3 + [792.0] + [1188.0] * 4)
    r = np.corrcoef(pred_total, true_total)[0, 1]
    assert m["trace_pearson_r_ch_1"] == pytest.approx(r)


def test_traced_fraction_and_unmeasured_pairs(tmp_path: Path) -> None:
    truth = rects(4, moving_pair())
    m = run_case(tmp_path, truth, truth.copy(), run_kw={"drop_ids": (2,)}).overall
    assert m["n_traced_cells"] == 1
    assert m["traced_fraction"] == 0.5
    assert m["trace_pairs_used_ch_1"] == 4
    assert m["trace_pairs_unmeasured_ch_1"] == 4


def test_time_error(tmp_path: Path) -> None:
    truth = rects(4, moving_pair())
    times = [0.0, 5.5, 11.25, 17.0]
    m = run_case(
        tmp_path,
        truth,
        truth.copy(),
        truth_kw={"times": times},
        run_kw={"times": [0.0, 5.5, 11.5, 17.0]},
    ).overall
    assert m["time_max_abs_err_min"] == pytest.approx(0.25)


@pytest.mark.parametrize("source", ["fl_background", "fl_minus_corrected", "weight"])
def test_background_error(tmp_path: Path, source: str) -> None:
    truth = rects(3, moving_pair(3))
    true_bg = np.full(truth.shape, 100.0, dtype=np.float32)
    true_bg[1] = 0.0  # dropped frame: no background there
    pred_bg = np.full(truth.shape, 110.0, dtype=np.float32)
    fl = np.full(truth.shape, 150, dtype=np.uint16)
    run_kw: dict[str, Any] = {}
    if source == "fl_background":
        run_kw["background"] = pred_bg
    else:
        weight = 0.5 if source == "weight" else 1.0
        run_kw.update(
            fl=fl, corrected=(fl - weight * pred_bg).astype(np.float32), weight=weight
        )
    ev = run_case(
        tmp_path,
        truth,
        truth.copy(),
        truth_kw={"background": true_bg, "dropped": (1,)},
        run_kw=run_kw,
    )
    assert ev.background_channels == (1,)
    assert ev.overall["background_mae_ch_1"] == pytest.approx(10.0)
    assert ev.overall["background_error_pct_ch_1"] == pytest.approx(10.0)


def test_no_background_metric_without_prediction(tmp_path: Path) -> None:
    truth = rects(2, moving_pair(2))
    bg = np.full(truth.shape, 100.0, dtype=np.float32)
    ev = run_case(tmp_path, truth, truth.copy(), truth_kw={"background": bg})
    assert ev.background_channels == ()
    assert not any(k.startswith("background") for k in ev.overall)


def test_dice_oracle_random_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(2024)
    truth = rng.integers(0, 6, size=(3, *SHAPE)).astype(np.uint16)
    truth[rng.random(truth.shape) < 0.5] = 0
    pred = rng.integers(0, 9, size=(3, *SHAPE)).astype(np.uint32)
    pred[rng.random(pred.shape) < 0.4] = 0
    m = run_case(tmp_path, truth, pred).overall
    s, g = pred > 0, truth > 0
    assert m["dice"] == pytest.approx(2 * np.sum(s & g) / (np.sum(s) + np.sum(g)))
    n_true = sum(np.unique(truth[t][truth[t] > 0]).size for t in range(3))
    n_pred = sum(np.unique(pred[t][pred[t] > 0]).size for t in range(3))
    assert m["n_true_objects"] == n_true
    assert m["n_pred_objects"] == n_pred


def test_pooling_over_fovs(tmp_path: Path) -> None:
    t0 = rects(3, moving_pair(3))
    cells = moving_pair(3)
    cells[3] = dict.fromkeys(range(3), (6, 9, 1, 4))
    t1 = rects(3, cells)
    p1 = t1.copy()
    p1[t1 == 3] = 0  # FOV 1 misses cell 3 in every frame
    truth_dir = add_truth(tmp_path, 0, t0)
    add_truth(tmp_path, 1, t1)
    out = add_run(tmp_path, 0, t0, signal=signal_of(t0))
    add_run(tmp_path, 1, p1, signal=signal_of(t1))
    ev = evaluate_run(truth_dir, out)
    assert ev.per_fov[0]["recall"] == 1.0
    assert ev.per_fov[1]["recall"] == pytest.approx(6 / 9)
    assert ev.overall["recall"] == pytest.approx(12 / 15)  # pooled, not averaged
    assert ev.overall["n_frames"] == 6
    assert ev.overall["n_true_cells"] == 5
    assert evaluate_run(truth_dir, out, fovs=[1]).overall["recall"] == pytest.approx(
        6 / 9
    )


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------


def test_missing_manifest(tmp_path: Path) -> None:
    truth_dir = add_truth(tmp_path, 0, rects(2, moving_pair(2)))
    (tmp_path / "results").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no processing_results\.yaml"):
        evaluate_run(truth_dir, tmp_path / "results")


def test_missing_truth(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no truth\.json"):
        evaluate_run(tmp_path, tmp_path)


def test_fov_in_truth_not_in_run(tmp_path: Path) -> None:
    labels = rects(2, moving_pair(2))
    truth_dir = add_truth(tmp_path, 0, labels)
    add_truth(tmp_path, 1, labels)
    out = add_run(tmp_path, 0, labels, signal=signal_of(labels))
    with pytest.raises(ValueError, match="FOV 1 is in the truth but not in the run"):
        evaluate_run(truth_dir, out)
    assert evaluate_run(truth_dir, out, fovs=[0]).overall["recall"] == 1.0
    with pytest.raises(ValueError, match=r"fovs=\[5\] is invalid"):
        evaluate_run(truth_dir, out, fovs=[5])


def test_shape_mismatch(tmp_path: Path) -> None:
    labels = rects(3, moving_pair(3))
    truth_dir = add_truth(tmp_path, 0, labels)
    out = add_run(tmp_path, 0, labels[:2], signal=signal_of(labels[:2]))
    with pytest.raises(ValueError, match=r"has shape \(2, 10, 12\)"):
        evaluate_run(truth_dir, out)


def test_unfinished_fov_and_missing_file(tmp_path: Path) -> None:
    labels = rects(2, moving_pair(2))
    truth_dir = add_truth(tmp_path, 0, labels)
    out = add_run(tmp_path, 0, labels, signal=signal_of(labels))
    path = out / "processing_results.yaml"
    manifest = yaml.safe_load(path.read_text())
    seg = manifest["results"]["0"]["seg_labeled"][1]
    (out / seg).unlink()
    with pytest.raises(FileNotFoundError, match="listed in processing_results"):
        evaluate_run(truth_dir, out)
    manifest["results"]["0"]["seg_labeled"] = None
    manifest["fov_status"]["0"] = {"status": "failed"}
    path.write_text(yaml.safe_dump(manifest))
    with pytest.raises(ValueError, match=r"no 'seg_labeled'.*status 'failed'"):
        evaluate_run(truth_dir, out)


def test_traces_missing_column(tmp_path: Path) -> None:
    labels = rects(2, moving_pair(2))
    truth_dir = add_truth(tmp_path, 0, labels)
    out = add_run(tmp_path, 0, labels, signal=signal_of(labels))
    traces = next(out.glob("fov_000/*_traces.csv"))
    df = pd.read_csv(traces).drop(columns=["intensity_mean_ch_1"])
    write_csv(traces, df)
    with pytest.raises(ValueError, match="lacks the column"):
        evaluate_run(truth_dir, out)


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        (
            {"iou_threshold": 0.0},
            ValueError,
            r"iou_threshold must be a finite number in \(0\.0, 1\.0\]; got 0\.0",
        ),
        ({"iou_threshold": "0.5"}, TypeError, "iou_threshold must be a real"),
        (
            {"min_signal_fraction": 1.5},
            ValueError,
            r"min_signal_fraction must be a finite number in \[0\.0, 1\.0\]; got 1\.5",
        ),
    ],
)
def test_bad_options(
    tmp_path: Path, kw: dict[str, Any], exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        evaluate_run(tmp_path, tmp_path, **kw)


# --------------------------------------------------------------------------
# table and command line
# --------------------------------------------------------------------------


def test_format_table(tmp_path: Path) -> None:
    truth = rects(4, moving_pair())
    ev = run_case(tmp_path, truth, truth.copy())
    text = format_table(ev)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["FOV", "frames", "Dice"]
    assert lines[2].split()[:3] == ["0", "4", "1.0000"]
    assert lines[3].split()[0] == "all"
    assert "n/a" in text  # no divisions in this data
    assert "tot med" in text
    md = format_table(ev, markdown=True)
    assert md.splitlines()[0].startswith("| FOV |")
    assert "| all |" in md


def test_main_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = rects(4, moving_pair())
    truth_dir = add_truth(tmp_path, 0, truth)
    out = add_run(tmp_path, 0, truth, signal=signal_of(truth))
    report = tmp_path / "eval.json"
    assert main(["evaluate", str(truth_dir), str(out), "--json", str(report)]) == 0
    captured = capsys.readouterr()
    assert "all" in captured.out
    data = json.loads(report.read_text())
    assert data["overall"]["dice"] == 1.0
    assert data["overall"]["division_recall"] is None
    assert data["per_fov"]["0"]["recall"] == 1.0
    assert main(["evaluate", str(truth_dir), str(out), "--markdown"]) == 0
    assert capsys.readouterr().out.startswith("| FOV |")
    assert main(["evaluate", str(truth_dir), str(tmp_path / "nowhere")]) == 2
    assert "processing_results.yaml" in capsys.readouterr().err


def test_empty_movie_gives_undefined_ratios(tmp_path: Path) -> None:
    empty = np.zeros((3, *SHAPE), dtype=np.uint16)
    m = run_case(tmp_path, empty, empty.copy()).overall
    assert m["n_true_objects"] == m["n_pred_objects"] == m["n_trace_rows"] == 0
    for key in ("dice", "precision", "recall", "complete_fraction", "traced_fraction"):
        assert math.isnan(m[key])
    assert math.isnan(m["time_max_abs_err_min"])
    assert m["trace_pairs_used_ch_1"] == 0


def test_nothing_predicted(tmp_path: Path) -> None:
    truth = rects(3, moving_pair(3))
    m = run_case(tmp_path, truth, np.zeros_like(truth)).overall
    assert m["recall"] == 0.0
    assert math.isnan(m["precision"])
    assert m["f1"] == 0.0
    assert m["dice"] == 0.0
    assert m["complete_fraction"] == 0.0
    assert m["trace_pairs_used_ch_1"] == 0


def test_channels_from_truth_traces_when_not_listed(tmp_path: Path) -> None:
    truth = rects(2, moving_pair(2))
    truth_dir = add_truth(tmp_path, 0, truth)
    out = add_run(tmp_path, 0, truth, signal=signal_of(truth))
    meta_path = truth_dir / "truth.json"
    meta = json.loads(meta_path.read_text())
    del meta["fl_channels"]
    meta_path.write_text(json.dumps(meta))
    ev = evaluate_run(truth_dir, out)
    assert ev.fl_channels == (1,)
    assert ev.overall["trace_pairs_used_ch_1"] == 4
