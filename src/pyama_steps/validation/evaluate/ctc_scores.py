"""Cell Tracking Challenge measures (py-ctcmetrics, docs/ctc.md)."""

from __future__ import annotations

import math
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from pyama_steps.validation.ctc import write_ctc_result, write_ctc_truth
from pyama_steps.validation.evaluate.fov import (
    _pred_parents,
)
from pyama_steps.validation.evaluate.inputs import (
    _read_csv,
    _RunFov,
)

#: (py-ctcmetrics name, metric key) of the CTC measures, in table order.
_CTC_MEASURES: Final = (
    ("DET", "ctc_det"),
    ("TRA", "ctc_tra"),
    ("CT", "ctc_ct"),
    ("TF", "ctc_tf"),
    ("BC", "ctc_bc"),
    ("CHOTA", "ctc_chota"),
)
#: Frame tolerance ``i`` of BC(i); the example of the CTC's Java measures uses BC(2).
CTC_BC_TOLERANCE: Final = 2
CTC_INSTALL_HINT: Final = (
    "py-ctcmetrics is not installed; install it with "
    "pip install 'pyama-steps[eval]' (or: pip install py-ctcmetrics)"
)


class _CtcExportError(ValueError):
    """py-ctcmetrics rejects an export of :mod:`~pyama_steps.validation.ctc` (a bug)."""


#: What py-ctcmetrics 1.3.3 raises when it trips over input it should accept
#: (an empty frame or result, a zero-size reduction, its own asserts).
_CTC_LIBRARY_ERRORS: Final = (AssertionError, IndexError, KeyError, ValueError)


@dataclass(frozen=True)
class _CtcFov:
    """The CTC measures of one FOV and what the overall values pool.

    Attributes
    ----------
    values : dict of str to float
        Metric key (``ctc_det``, ...) -> value, NaN where undefined.
    n_ref : int
        True cell-frames (reference detections): the weight of the FOV.
    divisions : tuple of int
        True positive, false positive and false negative divisions of BC(i).
    """

    values: dict[str, float]
    n_ref: int
    divisions: tuple[int, int, int]


def _ctc_library() -> str | None:
    """Return ``py-ctcmetrics <version>`` if the library imports, else None."""
    from importlib import metadata

    try:
        import ctc_metrics  # noqa: F401
    except ImportError:
        return None
    try:
        version = metadata.version("py-ctcmetrics")
    except metadata.PackageNotFoundError:  # pragma: no cover - a source tree
        version = "(version unknown)"
    return f"py-ctcmetrics {version}"


def _nan_if_none(value: Any) -> float:
    return math.nan if value is None else float(value)


def _int_frames(frames: Sequence[Any]) -> list[Any]:
    """Give empty per-frame label lists an integer dtype for py-ctcmetrics."""
    # py-ctcmetrics 1.3.3 turns an empty frame's label list into a float64
    # array and indexes with it in track_confusion_matrix (CHOTA), which
    # raises IndexError as soon as the reference has an empty frame, as the
    # generator's dropped frames are. An empty int64 array is the same list.
    return [x if len(x) else np.zeros(0, dtype=np.int64) for x in frames]


def _ctc_score_fov(gt_dir: Path, res_dir: Path) -> _CtcFov:
    """Score one exported FOV (``<gt_dir>/TRA``, ``<res_dir>``) with py-ctcmetrics."""
    from ctc_metrics.metrics import bc, chota, valid
    from ctc_metrics.metrics.biological.bc import get_ids_that_ends_with_split
    from ctc_metrics.scripts.evaluate import (
        calculate_metrics,
        match_computed_to_reference_masks,
    )
    from ctc_metrics.utils.filesystem import parse_masks, read_tracking_file
    from ctc_metrics.utils.representations import merge_tracks

    ref_tracks = read_tracking_file(str(gt_dir / "TRA" / "man_track.txt"))
    comp_tracks = read_tracking_file(str(res_dir / "res_track.txt"))
    nan = dict.fromkeys((key for _, key in _CTC_MEASURES), math.nan)
    if len(ref_tracks) == 0:
        # No true cell: every measure divides by zero. The FOV's predicted
        # divisions still count as false ones in the pooled BC.
        n_comp_div = len(get_ids_that_ends_with_split(comp_tracks))
        return _CtcFov(nan, 0, (0, n_comp_div, 0))
    ref_masks = parse_masks(str(gt_dir / "TRA"))
    comp_masks = parse_masks(str(res_dir))
    # threads=1: no process pool; FOVs are scored one after another.
    traj = match_computed_to_reference_masks(ref_masks, comp_masks, threads=1)
    n_ref = int(sum(len(x) for x in traj["labels_ref"]))
    if len(comp_tracks) == 0:
        # The library rejects an empty result; the CTC definitions give 0
        # (AOGM of an empty result is AOGM_0; no complete track, no match).
        n_div = len(get_ids_that_ends_with_split(ref_tracks))
        values = {**nan, "ctc_det": 0.0, "ctc_tra": 0.0, "ctc_ct": 0.0}
        values["ctc_bc"] = _nan_if_none(bc(0, 0, n_div))
        values["ctc_chota"] = 0.0
        return _CtcFov(values, n_ref, (0, 0, n_div))
    with warnings.catch_warnings(record=True) as caught:
        # The library reports format errors, and harmless empty frames, as
        # UserWarning; numpy warns on its means of empty slices (TF without
        # a matched track, NaN). All are kept here; only a failed check raises.
        warnings.simplefilter("always")
        is_valid = valid(comp_masks, comp_tracks, traj["labels_comp"])
        if not is_valid:
            problems = "; ".join(
                str(w.message)
                for w in caught
                if not str(w.message).startswith("Empty frame")
            )
            raise _CtcExportError(
                f"the CTC export {str(res_dir)!r} fails py-ctcmetrics' format check "
                f"({problems}); this is a bug of pyama_steps.validation.ctc, please "
                "report it."
            )
        raw = calculate_metrics(
            comp_tracks,
            ref_tracks,
            traj,
            {},
            [name for name, _ in _CTC_MEASURES if name != "CHOTA"],
            is_valid,
        )
        ref_m, ref_labels, ref_mapped = merge_tracks(
            ref_tracks, traj["labels_ref"], traj["mapped_ref"]
        )
        comp_m, comp_labels, comp_mapped = merge_tracks(
            comp_tracks, traj["labels_comp"], traj["mapped_comp"]
        )
        raw.update(
            chota(
                ref_m,
                comp_m,
                _int_frames(ref_labels),
                _int_frames(comp_labels),
                ref_mapped,
                comp_mapped,
            )
        )
    i = CTC_BC_TOLERANCE
    raw["BC"] = raw[f"BC({i})"]
    values = {key: _nan_if_none(raw[name]) for name, key in _CTC_MEASURES}
    divisions = (
        int(raw[f"tp_div({i})"]),
        int(raw[f"fp_div({i})"]),
        int(raw[f"fn_div({i})"]),
    )
    return _CtcFov(values, n_ref, divisions)


def _ctc_overall(scores: Sequence[_CtcFov]) -> dict[str, float]:
    """Pool per-FOV CTC measures (see the module docstring)."""
    from ctc_metrics.metrics import bc

    out: dict[str, float] = {}
    for _, key in _CTC_MEASURES:
        if key == "ctc_bc":
            tp, fp, fn = (sum(s.divisions[k] for s in scores) for k in range(3))
            out[key] = _nan_if_none(bc(tp, fp, fn))
            continue
        used = [
            (s.values[key], s.n_ref)
            for s in scores
            if s.n_ref > 0 and not math.isnan(s.values[key])
        ]
        weight = sum(n for _, n in used)
        out[key] = sum(v * n for v, n in used) / weight if weight else math.nan
    return out


def _run_lineage(run: _RunFov) -> pd.DataFrame:
    """``cell``/``parent`` of a run: its lineage CSV, else its traces CSV."""
    header = pd.read_csv(run.traces, nrows=0).columns.tolist()
    cols = ["cell", "parent"] if "parent" in header else ["cell"]
    traces = _read_csv(run.traces, cols, "traces CSV")
    lineage = (
        _read_csv(run.lineage, ["cell", "parent"], "lineage CSV")
        if run.lineage is not None
        else None
    )
    cells, parents = _pred_parents(traces, lineage)
    return pd.DataFrame({"cell": cells, "parent": parents})


def _ctc_measures(
    truth_path: Path, runs: Mapping[int, _RunFov]
) -> tuple[dict[int, dict[str, float]], dict[str, float], str | None]:
    """Export each FOV's truth and run to CTC folders and score them.

    Returns the per-FOV and overall values, and which FOVs the library
    failed on (those are NaN with weight 0), or None.
    """
    import shutil

    scores: dict[int, _CtcFov] = {}
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="pyama-steps-ctc-") as tmp:
        for f, run in runs.items():
            truth_fov = truth_path / f"fov_{f:03d}"
            gt = Path(tmp) / f"fov_{f:03d}_GT"
            res = Path(tmp) / f"fov_{f:03d}"
            write_ctc_truth(truth_fov / "labels.npy", truth_fov / "lineage.csv", gt)
            # uint32 result masks: py-ctcmetrics adds the largest reference
            # label to the result masks in their own dtype, which wraps around
            # in uint16 once both label counts together pass 65535. strict=False:
            # a parent table rebuilt from a traces CSV may miss ids.
            write_ctc_result(
                run.labels, _run_lineage(run), res, dtype=np.uint32, strict=False
            )
            try:
                scores[f] = _ctc_score_fov(gt, res)
            except _CtcExportError:
                raise
            except _CTC_LIBRARY_ERRORS as e:
                # A crash of the optional library must not cost the other
                # metrics; the table names the FOV and the error.
                failed.append(f"FOV {f}: {type(e).__name__}: {e}".splitlines()[0])
                nan = dict.fromkeys((key for _, key in _CTC_MEASURES), math.nan)
                scores[f] = _CtcFov(nan, 0, (0, 0, 0))
            # One FOV on disk at a time (two stacks of it).
            shutil.rmtree(gt)
            shutil.rmtree(res)
    per_fov = {f: s.values for f, s in scores.items()}
    message = (
        "py-ctcmetrics failed on " + "; ".join(failed) + " (left out, n/a)"
        if failed
        else None
    )
    return per_fov, _ctc_overall(list(scores.values())), message
