"""Tests for pyama_steps.validation.ctc and the CTC measures of the evaluation."""

from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tifffile
import yaml

from pyama_steps.cli import main
from pyama_steps.validation.ctc import (
    CTC_MAX_LABEL,
    ctc_track_table,
    export_run,
    export_truth,
    format_track_file,
    mask_name,
    relabel_frame_ctc,
    to_ctc,
    write_ctc_result,
    write_ctc_truth,
)
from pyama_steps.validation.evaluate import (
    CTC_INSTALL_HINT,
    evaluate_run,
    format_table,
)
from pyama_steps.validation.evaluate.ctc_scores import _ctc_score_fov

# The conversion needs nothing more; the measures need py-ctcmetrics (the
# `eval` and `test` extras).
needs_ctcmetrics = pytest.mark.skipif(
    importlib.util.find_spec("ctc_metrics") is None,
    reason="py-ctcmetrics is not installed (pip install 'pyama-steps[eval]')",
)

SHAPE = (10, 12)
Rect = tuple[int, int, int, int]

CTC_KEYS = ("ctc_det", "ctc_tra", "ctc_ct", "ctc_tf", "ctc_bc", "ctc_chota")


# --------------------------------------------------------------------------
# helpers
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


def lineage(parents: dict[int, int], cells: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {"cell": cells, "parent": [parents.get(c, 0) for c in cells]},
        columns=["cell", "parent"],
    )


# Cell 7 is missed in frame 2 (a gap) and divides into 8 and 9 after frame 3;
# daughter 9 is missed in frame 5. Cell 4 stands still in every frame.
GAPPY = {
    7: {0: (1, 4, 1, 4), 1: (1, 4, 1, 4), 3: (1, 4, 2, 5)},
    8: {4: (1, 3, 1, 3), 5: (1, 3, 1, 3)},
    9: {4: (3, 5, 3, 6), 6: (3, 5, 3, 6)},
    4: dict.fromkeys(range(7), (6, 9, 8, 11)),
}
GAPPY_PARENTS = {8: 7, 9: 7}
# Labels in (cell, first frame) order: 4 -> 1; 7 -> 2 (0-1), 3 (3);
# 8 -> 4; 9 -> 5 (4), 6 (6).
GAPPY_TRACKS = "1 0 6 0\n2 0 1 0\n3 3 3 2\n4 4 5 3\n5 4 4 3\n6 6 6 5\n"


def gappy_stack(dtype: Any = np.uint16) -> tuple[np.ndarray, pd.DataFrame]:
    return rects(7, GAPPY, dtype), lineage(GAPPY_PARENTS, [4, 7, 8, 9])


def save_stack(path: Path, labels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, labels)
    return path


def write_truth(root: Path, fov: int, labels: np.ndarray, parents: dict[int, int]):
    """One FOV of generator truth (labels, lineage, traces, truth.json)."""
    truth = root / "demo_truth"
    d = truth / f"fov_{fov:03d}"
    d.mkdir(parents=True, exist_ok=True)
    np.save(d / "labels.npy", labels)
    ids = sorted(int(i) for i in np.unique(labels) if i)
    lineage(parents, ids).to_csv(d / "lineage.csv", index=False)
    rows = [
        (int(c), t) for t in range(labels.shape[0]) for c in np.unique(labels[t]) if c
    ]
    pd.DataFrame(rows, columns=["cell", "frame"]).to_csv(d / "traces.csv", index=False)
    meta_path = truth / "truth.json"
    meta = (
        json.loads(meta_path.read_text())
        if meta_path.exists()
        else {"fl_channels": [], "fovs": []}
    )
    meta["fovs"] = [e for e in meta["fovs"] if e["fov"] != fov] + [
        {
            "fov": fov,
            "shape": list(labels.shape),
            "times_min": [1.0 * t for t in range(labels.shape[0])],
        }
    ]
    meta_path.write_text(json.dumps(meta))
    return truth


def write_run(root: Path, fov: int, labels: np.ndarray, parents: dict[int, int]):
    """One FOV of a run (seg_labeled, lineage, traces) and its manifest entry."""
    out = root / "results"
    d = f"fov_{fov:03d}"
    seg = f"{d}/exp_{d}_seg_labeled_ch_0.npy"
    save_stack(out / seg, labels)
    ids = sorted(int(i) for i in np.unique(labels) if i)
    lin = f"{d}/exp_{d}_lineage.csv"
    lineage(parents, ids).to_csv(out / lin, index=False)
    rows = [
        (int(c), parents.get(int(c), 0), t, 1.0 * t)
        for t in range(labels.shape[0])
        for c in np.unique(labels[t])
        if c
    ]
    traces = f"{d}/exp_{d}_traces.csv"
    pd.DataFrame(rows, columns=["cell", "parent", "frame", "time"]).to_csv(
        out / traces, index=False
    )
    path = out / "processing_results.yaml"
    manifest = (
        yaml.safe_load(path.read_text())
        if path.exists()
        else {"channels": {"fl": []}, "results": {}, "fov_status": {}}
    )
    manifest["results"][str(fov)] = {
        "seg_labeled": [0, seg],
        "traces": traces,
        "lineage": lin,
    }
    manifest["fov_status"][str(fov)] = {"status": "ok"}
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return out


def cell_frames(labels: np.ndarray) -> int:
    """True cell-frames: the number of reference detections."""
    return sum(int(np.unique(f[f > 0]).size) for f in labels)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------
# pure conversion
# --------------------------------------------------------------------------


def test_track_table_gap_split_and_division_parents() -> None:
    labels, lin = gappy_stack()
    masks, table = to_ctc(labels, lin)
    assert format_track_file(table) == GAPPY_TRACKS
    assert table["cell"].tolist() == [4, 7, 7, 8, 9, 9]
    assert list(table.columns) == ["label", "begin", "end", "parent", "cell"]
    # Every CTC label is present exactly in the frames [begin, end].
    for row in table.itertuples():
        present = [t for t in range(masks.shape[0]) if np.any(masks[t] == row.label)]
        assert present == list(range(row.begin, row.end + 1))
        cell_px = labels == row.cell
        seg_px = masks == row.label
        assert np.array_equal(seg_px, cell_px & seg_px.any(axis=(1, 2))[:, None, None])
    assert np.array_equal(masks > 0, labels > 0)


def test_track_table_from_observations() -> None:
    # Docstring case: cell 1 in frames 0, 1, 3, daughters 2 and 3 from frame 4.
    lin = lineage({2: 1, 3: 1}, [1, 2, 3])
    table = ctc_track_table([4, 0, 3, 1, 4], [3, 1, 1, 1, 2], lin)
    assert format_track_file(table) == "1 0 1 0\n2 3 3 1\n3 4 4 2\n4 4 4 2\n"


def test_track_table_empty() -> None:
    table = ctc_track_table([], [], lineage({}, []))
    assert table.empty
    assert format_track_file(table) == ""


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.int32, np.int64])
def test_to_ctc_dtypes(dtype: Any) -> None:
    labels, lin = gappy_stack(dtype)
    masks, table = to_ctc(labels, lin)
    assert masks.dtype == np.uint16
    assert format_track_file(table) == GAPPY_TRACKS
    assert labels.dtype == dtype  # input untouched
    assert np.array_equal(labels, gappy_stack(dtype)[0])


def test_relabel_frame_sparse_huge_ids_match_dense_path() -> None:
    labels, lin = gappy_stack(np.uint32)
    dense, _ = to_ctc(labels, lin)
    big = labels.astype(np.uint32)
    offset = np.uint32(4_000_000_000)
    big[big > 0] += offset  # beyond the dense look-up limit
    big_lin = lin.assign(
        cell=lin["cell"] + int(offset),
        parent=np.where(lin["parent"] > 0, lin["parent"] + int(offset), 0),
    )
    masks, big_table = to_ctc(big, big_lin)
    assert np.array_equal(masks, dense)
    assert format_track_file(big_table) == GAPPY_TRACKS
    for t in range(big.shape[0]):
        frame = relabel_frame_ctc(big[t], t, big_table, dtype=np.uint32)
        assert frame.dtype == np.uint32
        assert np.array_equal(frame, dense[t])


def test_relabel_frame_rejects_unknown_id() -> None:
    labels, lin = gappy_stack()
    _, table = to_ctc(labels, lin)
    frame = labels[0].copy()
    frame[0, 0] = 42
    with pytest.raises(ValueError, match="holds cell 42, which no CTC segment"):
        relabel_frame_ctc(frame, 0, table)
    with pytest.raises(ValueError, match="holds cell 7"):
        relabel_frame_ctc(labels[0], 2, table)  # cell 7 is in its gap at t=2
    with pytest.raises(TypeError, match=r"uint16 .* or uint32"):
        relabel_frame_ctc(labels[0], 0, table, dtype=np.int32)
    with pytest.raises(TypeError, match="integer dtype"):
        relabel_frame_ctc(labels[0].astype(float), 0, table)
    with pytest.raises(ValueError, match="non-negative"):
        relabel_frame_ctc(-labels[0].astype(np.int32), 0, table)


@pytest.mark.parametrize(
    ("t", "n", "name"),
    [
        (0, 1, "mask000.tif"),
        (7, 60, "mask007.tif"),
        (999, 1000, "mask999.tif"),
        (5, 1001, "mask0005.tif"),
        (1000, 1001, "mask1000.tif"),
        (12345, 20000, "mask12345.tif"),
    ],
)
def test_mask_name(t: int, n: int, name: str) -> None:
    assert mask_name(t, n) == name
    assert mask_name(t, n, prefix="man_track") == name.replace("mask", "man_track")


def test_mask_name_out_of_range() -> None:
    with pytest.raises(IndexError, match="frame 3 out of range for 3 frames"):
        mask_name(3, 3)


def test_too_many_segments() -> None:
    # One cell seen every other frame: 65536 one-frame segments.
    frames = np.arange(0, 2 * (CTC_MAX_LABEL + 1), 2)
    cells = np.ones_like(frames)
    with pytest.raises(ValueError, match=r"65536 CTC labels .* at most 65535"):
        ctc_track_table(frames, cells, lineage({}, [1]))
    table = ctc_track_table(frames[:-1], cells[:-1], lineage({}, [1]))
    assert table["label"].max() == CTC_MAX_LABEL


@pytest.mark.parametrize(
    ("frames", "cells", "parents", "match"),
    [
        ([0, 1], [1, 2], {}, "does not list"),
        ([0, 1], [1, 1], {1: 1}, "cell 1 itself as parent"),
        ([0, 1], [1, 2], {1: 0, 2: 9}, "parent 9, which has no pixel"),
        ([0, 1, 1], [1, 1, 2], {1: 0, 2: 1}, "still present in frame 1"),
        ([0, 0], [1, 1], {}, "at most once"),
        ([-1], [1], {}, "frames must be >= 0"),
        ([0], [0], {}, "cells >= 1"),
        ([0, 1], [1], {}, "1-D of one length"),
    ],
)
def test_track_table_errors(
    frames: list[int], cells: list[int], parents: dict[int, int], match: str
) -> None:
    listed = sorted(parents) if parents else [1]
    with pytest.raises(ValueError, match=match):
        ctc_track_table(frames, cells, lineage(parents, listed))


def test_track_table_lenient_drops_links_ctc_cannot_hold() -> None:
    # Cell 2: parent never present; cell 3: parent still present; cell 5
    # is not in the lineage; cell 4 is a valid daughter of 1.
    frames = [0, 1, 1, 2, 3]
    cells = [1, 1, 3, 2, 5]
    lin = lineage({2: 9, 3: 1}, [1, 2, 3])
    with pytest.raises(ValueError, match="does not list"):
        ctc_track_table(frames, cells, lin)
    table = ctc_track_table(frames, cells, lin, strict=False)
    assert table["parent"].tolist() == [0, 0, 0, 0]
    table = ctc_track_table([0, 1, 2], [1, 1, 4], lineage({4: 1}, [1, 4]), strict=False)
    assert table["parent"].tolist() == [0, 1]


def test_lineage_table_errors() -> None:
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['parent'\]"):
        ctc_track_table([0], [1], pd.DataFrame({"cell": [1]}))
    clash = pd.DataFrame({"cell": [1, 1], "parent": [0, 2]})
    with pytest.raises(ValueError, match="cell 1 twice with different parents"):
        ctc_track_table([0], [1], clash)
    same = pd.DataFrame({"cell": [1, 1], "parent": [0, 0]})
    assert len(ctc_track_table([0], [1], same)) == 1
    with pytest.raises(ValueError, match="must be >= 1"):
        ctc_track_table([0], [1], pd.DataFrame({"cell": [0], "parent": [0]}))


# --------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------


def test_write_result_exact_files_and_round_trip(tmp_path: Path) -> None:
    labels, lin = gappy_stack(np.uint32)
    stack = save_stack(tmp_path / "seg_labeled.npy", labels)
    dest = tmp_path / "ctc" / "fov_000"
    table = write_ctc_result(stack, lin, dest)
    assert (dest / "res_track.txt").read_text() == GAPPY_TRACKS
    assert format_track_file(table) == GAPPY_TRACKS
    names = sorted(p.name for p in dest.iterdir())
    assert names == [f"mask{t:03d}.tif" for t in range(7)] + ["res_track.txt"]
    expected, _ = to_ctc(labels, lin)
    for t in range(7):
        with tifffile.TiffFile(dest / f"mask{t:03d}.tif") as tif:
            page = tif.pages[0]
            assert page.dtype == np.uint16
            assert "DateTime" not in page.tags
            assert "Software" not in page.tags
            assert "ImageDescription" not in page.tags
            assert np.array_equal(page.asarray(), expected[t])
    # No temporary folder is left behind.
    assert sorted(p.name for p in dest.parent.iterdir()) == ["fov_000"]


def test_write_result_reads_lineage_csv(tmp_path: Path) -> None:
    labels, lin = gappy_stack()
    stack = save_stack(tmp_path / "seg.npy", labels)
    csv = tmp_path / "lineage.csv"
    lin.assign(fov=0, fate="end").to_csv(csv, index=False)
    write_ctc_result(stack, csv, tmp_path / "out")
    assert (tmp_path / "out" / "res_track.txt").read_text() == GAPPY_TRACKS
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_ctc_result(stack, tmp_path / "nope.csv", tmp_path / "out2")
    pd.DataFrame({"cell": [1]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="lacks the column"):
        write_ctc_result(stack, tmp_path / "bad.csv", tmp_path / "out2")


def test_write_is_deterministic(tmp_path: Path) -> None:
    labels, lin = gappy_stack()
    stack = save_stack(tmp_path / "seg.npy", labels)
    write_ctc_result(stack, lin, tmp_path / "a")
    write_ctc_result(stack, lin, tmp_path / "b")
    first = folder_bytes(tmp_path / "a")
    assert first == folder_bytes(tmp_path / "b")
    write_ctc_truth(stack, lin, tmp_path / "g1")
    write_ctc_truth(stack, lin, tmp_path / "g2")
    assert folder_bytes(tmp_path / "g1") == folder_bytes(tmp_path / "g2")


def test_write_replaces_existing_folder_atomically(tmp_path: Path) -> None:
    labels, lin = gappy_stack()
    stack = save_stack(tmp_path / "seg.npy", labels)
    dest = tmp_path / "ctc" / "fov_000"
    dest.mkdir(parents=True)
    (dest / "stale.txt").write_text("old")
    (dest.parent / ".fov_000.tmp-1").mkdir()  # left by a killed job
    write_ctc_result(stack, lin, dest)
    assert not (dest / "stale.txt").exists()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["fov_000"]
    before = folder_bytes(dest)
    bad = lineage({4: 7}, [4, 7, 8, 9])  # 4 exists before its "mother"
    with pytest.raises(ValueError, match="still present"):
        write_ctc_result(stack, bad, dest)
    assert folder_bytes(dest) == before  # the old folder is kept
    assert sorted(p.name for p in dest.parent.iterdir()) == ["fov_000"]
    with pytest.raises(ValueError, match="still present"):
        write_ctc_result(stack, bad, tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_write_rejects_bad_stacks(tmp_path: Path) -> None:
    labels, lin = gappy_stack()
    empty = save_stack(tmp_path / "empty.npy", labels[:0])
    with pytest.raises(ValueError, match="has no frames"):
        write_ctc_result(empty, lin, tmp_path / "out")
    floats = save_stack(tmp_path / "float.npy", labels.astype(np.float32))
    with pytest.raises(TypeError, match="expected a label stack of integers"):
        write_ctc_result(floats, lin, tmp_path / "out")
    stack = save_stack(tmp_path / "seg.npy", labels)
    with pytest.raises(TypeError, match=r"uint16 .* or uint32"):
        write_ctc_result(stack, lin, tmp_path / "out", dtype=np.uint8)
    assert not (tmp_path / "out").exists()


def test_write_truth_layout(tmp_path: Path) -> None:
    labels, lin = gappy_stack()
    stack = save_stack(tmp_path / "labels.npy", labels)
    write_ctc_truth(stack, lin, tmp_path / "fov_000_GT")
    tra = tmp_path / "fov_000_GT" / "TRA"
    assert sorted(p.name for p in tra.iterdir()) == sorted(
        [f"man_track{t:03d}.tif" for t in range(7)] + ["man_track.txt"]
    )
    assert (tra / "man_track.txt").read_text() == GAPPY_TRACKS
    masks = np.stack([tifffile.imread(tra / f"man_track{t:03d}.tif") for t in range(7)])
    assert np.array_equal(masks, to_ctc(labels, lin)[0])


def test_export_run_and_truth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels, _ = gappy_stack()
    out = write_run(tmp_path, 0, labels, GAPPY_PARENTS)
    write_run(tmp_path, 2, labels[:3], {})
    truth = write_truth(tmp_path, 0, labels, GAPPY_PARENTS)
    write_truth(tmp_path, 2, labels[:3], {})
    dest = tmp_path / "ctc"
    assert export_run(out, dest) == [dest / "fov_000", dest / "fov_002"]
    assert (dest / "fov_000" / "res_track.txt").read_text() == GAPPY_TRACKS
    assert len(list((dest / "fov_002").glob("mask*.tif"))) == 3
    assert export_truth(truth, dest, fovs=[2]) == [dest / "fov_002_GT"]
    assert (dest / "fov_002_GT" / "TRA" / "man_track002.tif").is_file()
    code = main(["export-ctc", str(out), str(tmp_path / "cli"), "--fovs", "0"])
    assert code == 0
    assert "fov_000" in capsys.readouterr().out
    assert [p.name for p in (tmp_path / "cli").iterdir()] == ["fov_000"]
    args = [str(out), str(tmp_path / "cli2"), "--truth", str(truth)]
    assert main(["export-ctc", *args]) == 0
    assert "ctc_evaluate" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "cli2").iterdir()) == [
        "fov_000",
        "fov_000_GT",
        "fov_002",
        "fov_002_GT",
    ]


def test_export_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(FileNotFoundError, match=r"no processing_results\.yaml"):
        export_run(tmp_path, tmp_path / "ctc")
    labels, _ = gappy_stack()
    out = write_run(tmp_path, 0, labels, GAPPY_PARENTS)
    with pytest.raises(ValueError, match=r"has FOVs \[0\]"):
        export_run(out, tmp_path / "ctc", fovs=[3])
    manifest = yaml.safe_load((out / "processing_results.yaml").read_text())
    manifest["results"]["1"] = {"seg_labeled": None, "lineage": None}
    manifest["fov_status"]["1"] = {"status": "failed"}
    (out / "processing_results.yaml").write_text(yaml.safe_dump(manifest))
    with pytest.raises(ValueError, match=r"FOV 1 has no tracks .* 'failed'"):
        export_run(out, tmp_path / "ctc")
    assert not (tmp_path / "ctc").exists()  # checked before writing anything
    os.remove(out / manifest["results"]["0"]["lineage"])
    with pytest.raises(FileNotFoundError, match=r"listed in .* but missing"):
        export_run(out, tmp_path / "ctc", fovs=[0])
    with pytest.raises(FileNotFoundError, match=r"no truth\.json"):
        export_truth(tmp_path, tmp_path / "gt")
    assert main(["export-ctc", str(tmp_path / "nowhere"), str(tmp_path / "x")]) == 2
    assert "processing_results.yaml" in capsys.readouterr().err


# --------------------------------------------------------------------------
# the library (py-ctcmetrics) on exported folders
# --------------------------------------------------------------------------


def score(tmp_path: Path, truth: np.ndarray, pred: np.ndarray, parents=None):
    lin_t = lineage(parents or {}, sorted(int(i) for i in np.unique(truth) if i))
    lin_p = lineage(parents or {}, sorted(int(i) for i in np.unique(pred) if i))
    gt = tmp_path / "GT"
    res = tmp_path / "RES"
    write_ctc_truth(save_stack(tmp_path / "t.npy", truth), lin_t, gt)
    write_ctc_result(save_stack(tmp_path / "p.npy", pred), lin_p, res, strict=False)
    return gt, res


@needs_ctcmetrics
def test_library_validates_and_scores_perfect_export(tmp_path: Path) -> None:
    # No empty frame here, so the library's own entry point runs without
    # warnings (it warns on empty frames).
    labels, _ = gappy_stack()
    gt, res = score(tmp_path, labels, labels, GAPPY_PARENTS)
    from ctc_metrics import evaluate_sequence, validate_sequence

    assert validate_sequence(str(res))["Valid"] == 1
    result = evaluate_sequence(str(res), str(gt), ["Valid", "DET", "TRA"], threads=1)
    assert result["Valid"] == 1
    assert result["DET"] == 1.0
    assert result["TRA"] == 1.0


@needs_ctcmetrics
def test_perfect_prediction_scores_one(tmp_path: Path) -> None:
    labels, _ = gappy_stack()
    gt, res = score(tmp_path, labels, labels, GAPPY_PARENTS)
    fov = _ctc_score_fov(gt, res)
    assert fov.values == dict.fromkeys(CTC_KEYS, 1.0)
    assert fov.divisions == (1, 0, 0)
    assert fov.n_ref == cell_frames(labels) == 14


@needs_ctcmetrics
def test_perfect_prediction_with_empty_frame(tmp_path: Path) -> None:
    # An empty reference frame used to crash the library's CHOTA.
    labels, _ = gappy_stack()
    labels[2] = 0
    gt, res = score(tmp_path, labels, labels, GAPPY_PARENTS)
    assert _ctc_score_fov(gt, res).values == dict.fromkeys(CTC_KEYS, 1.0)


@needs_ctcmetrics
def test_one_missing_detection_lowers_det_exactly(tmp_path: Path) -> None:
    labels, _ = gappy_stack()
    pred = labels.copy()
    pred[3][pred[3] == 4] = 0  # cell 4 missed once: its track gets a gap
    gt, res = score(tmp_path, labels, pred, GAPPY_PARENTS)
    fov = _ctc_score_fov(gt, res)
    n_ref = fov.n_ref
    # One false negative vertex (weight 10) out of AOGM-D0 = 10 * n_ref.
    assert fov.values["ctc_det"] == pytest.approx(1.0 - 1.0 / n_ref)
    assert fov.values["ctc_tra"] < 1.0
    assert fov.values["ctc_ct"] < 1.0
    assert fov.values["ctc_chota"] < 1.0
    assert fov.values["ctc_bc"] == 1.0  # the division is still right


@needs_ctcmetrics
def test_empty_prediction_and_empty_truth(tmp_path: Path) -> None:
    labels, _ = gappy_stack()
    gt, res = score(tmp_path / "a", labels, np.zeros_like(labels), GAPPY_PARENTS)
    fov = _ctc_score_fov(gt, res)
    assert fov.values["ctc_det"] == fov.values["ctc_tra"] == 0.0
    assert fov.values["ctc_ct"] == fov.values["ctc_chota"] == 0.0
    assert fov.values["ctc_bc"] == 0.0
    assert math.isnan(fov.values["ctc_tf"])
    assert fov.divisions == (0, 0, 1)
    gt, res = score(tmp_path / "b", np.zeros_like(labels), labels, GAPPY_PARENTS)
    fov = _ctc_score_fov(gt, res)
    assert all(math.isnan(v) for v in fov.values.values())
    assert fov.n_ref == 0
    assert fov.divisions == (0, 1, 0)  # its division counts as a false one


# --------------------------------------------------------------------------
# evaluate_run integration
# --------------------------------------------------------------------------


@needs_ctcmetrics
def test_evaluate_run_adds_ctc_measures(tmp_path: Path) -> None:
    labels, _ = gappy_stack()
    truth = write_truth(tmp_path, 0, labels, GAPPY_PARENTS)
    out = write_run(tmp_path, 0, labels, GAPPY_PARENTS)
    ev = evaluate_run(truth, out)
    assert ev.ctc_library is not None
    assert ev.ctc_library.startswith("py-ctcmetrics ")
    assert ev.ctc_message is None
    for key in CTC_KEYS:
        assert ev.per_fov[0][key] == ev.overall[key] == 1.0
    assert list(ev.per_fov[0])[-6:] == list(CTC_KEYS)
    text = format_table(ev)
    assert "Cell Tracking Challenge measures (py-ctcmetrics" in text
    assert text.splitlines()[-4].split() == [
        "FOV",
        "DET",
        "TRA",
        "CT",
        "TF",
        "BC(2)",
        "CHOTA",
    ]
    assert text.splitlines()[-1].split() == ["all"] + ["1.0000"] * 6
    data = ev.to_dict()
    assert data["ctc_library"] == ev.ctc_library
    assert data["overall"]["ctc_det"] == 1.0


@needs_ctcmetrics
def test_evaluate_run_pools_fovs_by_true_cell_frames(tmp_path: Path) -> None:
    labels, _ = gappy_stack()
    pred = labels.copy()
    pred[3][pred[3] == 4] = 0
    truth = write_truth(tmp_path, 0, labels, GAPPY_PARENTS)
    write_truth(tmp_path, 1, labels[:4], {})
    out = write_run(tmp_path, 0, pred, GAPPY_PARENTS)
    write_run(tmp_path, 1, np.zeros_like(labels[:4]), {})
    ev = evaluate_run(truth, out)
    n0, n1 = cell_frames(labels), cell_frames(labels[:4])
    assert (n0, n1) == (14, 7)
    assert ev.per_fov[0]["ctc_det"] == pytest.approx(1 - 1 / n0)
    assert ev.per_fov[1]["ctc_det"] == 0.0  # nothing predicted
    assert ev.overall["ctc_det"] == pytest.approx((n0 - 1) / (n0 + n1))
    # BC pools the division counts: FOV 1 has no division, FOV 0's is found.
    assert ev.overall["ctc_bc"] == 1.0
    assert math.isnan(ev.per_fov[1]["ctc_bc"])
    # TF is undefined for FOV 1 and left out.
    assert ev.overall["ctc_tf"] == pytest.approx(ev.per_fov[0]["ctc_tf"])


def test_evaluate_run_without_ctc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels, _ = gappy_stack()
    truth = write_truth(tmp_path, 0, labels, GAPPY_PARENTS)
    out = write_run(tmp_path, 0, labels, GAPPY_PARENTS)
    ev = evaluate_run(truth, out, ctc=False)
    assert ev.ctc_library is None
    assert ev.ctc_message is None
    assert not any(k.startswith("ctc_") for k in ev.overall)
    assert "Cell Tracking Challenge" not in format_table(ev)
    # Library missing: the rest still works and the table says how to install.
    monkeypatch.setattr(
        "pyama_steps.validation.evaluate.evaluation._ctc_library", lambda: None
    )
    ev = evaluate_run(truth, out)
    assert ev.ctc_message == CTC_INSTALL_HINT
    assert not any(k.startswith("ctc_") for k in ev.overall)
    assert ev.overall["recall"] == 1.0
    assert "pip install 'pyama-steps[eval]'" in format_table(ev)
    assert "pip install 'pyama-steps[eval]'" in format_table(ev, markdown=True)


@needs_ctcmetrics
def test_main_evaluate_no_ctc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels, _ = gappy_stack()
    truth = write_truth(tmp_path, 0, labels, GAPPY_PARENTS)
    out = write_run(tmp_path, 0, labels, GAPPY_PARENTS)
    report = tmp_path / "eval.json"
    assert main(["evaluate", str(truth), str(out), "--json", str(report)]) == 0
    assert "BC(2)" in capsys.readouterr().out
    assert json.loads(report.read_text())["overall"]["ctc_tra"] == 1.0
    assert main(["evaluate", str(truth), str(out), "--no-ctc", "--markdown"]) == 0
    printed = capsys.readouterr().out
    assert "BC(2)" not in printed
    assert printed.startswith("| FOV |")


@needs_ctcmetrics
def test_invalid_export_is_reported_as_a_bug(tmp_path: Path) -> None:
    labels, _ = gappy_stack()
    gt, res = score(tmp_path, labels, labels, GAPPY_PARENTS)
    track_file = res / "res_track.txt"
    track_file.write_text("".join(track_file.read_text().splitlines(True)[:-1]))
    with pytest.raises(ValueError, match=r"fails py-ctcmetrics' format check .*6"):
        _ctc_score_fov(gt, res)


@needs_ctcmetrics
def test_library_crash_leaves_other_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels, _ = gappy_stack()
    truth = write_truth(tmp_path, 0, labels, GAPPY_PARENTS)
    out = write_run(tmp_path, 0, labels, GAPPY_PARENTS)

    def crash(gt: Path, res: Path) -> None:
        raise IndexError("arrays used as indices must be of integer type")

    monkeypatch.setattr(
        "pyama_steps.validation.evaluate.ctc_scores._ctc_score_fov", crash
    )
    ev = evaluate_run(truth, out)
    assert ev.overall["recall"] == 1.0
    assert all(math.isnan(ev.overall[k]) for k in CTC_KEYS)
    assert ev.ctc_message is not None
    assert "FOV 0: IndexError: arrays used" in ev.ctc_message
    text = format_table(ev)
    assert "BC(2)" in text
    assert "FOV 0: IndexError" in text
