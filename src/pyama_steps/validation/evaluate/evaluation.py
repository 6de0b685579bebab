"""The public entry point: :func:`evaluate_run` and its :class:`Evaluation`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pyama_steps._validate import check_fraction
from pyama_steps.validation._run_files import _load_manifest
from pyama_steps.validation.evaluate.ctc_scores import (
    CTC_INSTALL_HINT,
    _ctc_library,
    _ctc_measures,
)
from pyama_steps.validation.evaluate.fov import (
    _evaluate_fov,
)
from pyama_steps.validation.evaluate.inputs import (
    _load_truth,
    _run_fov,
)
from pyama_steps.validation.evaluate.tally import (
    _metrics,
    _pool,
    _Tally,
)
from pyama_steps.validation.evaluate.traces import (
    _TRUE_TOTAL_RE,
)


@dataclass(frozen=True)
class Evaluation:
    """Accuracy of one run (algorithms.md §8.1).

    Attributes
    ----------
    per_fov : dict of int to dict of str to float
        FOV -> metric name -> value; every FOV has the same keys as `overall`.
    overall : dict of str to float
        The metrics pooled over every frame and FOV (counts summed, ratios of
        the sums, quantiles and r of the pooled pairs, time error the maximum).
    fl_channels : tuple of int
        Fluorescence channels evaluated (in both the truth and the run).
    background_channels : tuple of int
        Channels with a background error (truth and prediction available).
    iou_threshold : float
        IoU of a match.
    min_signal_fraction : float
        The tiny-signal floor of the trace errors, as a fraction of P95.
    ctc_library : str or None
        ``py-ctcmetrics <version>`` when the ``ctc_*`` measures were
        computed, else None.
    ctc_message : str or None
        Why the CTC measures were requested but not computed (the library is
        missing, and how to install it), or the FOVs the library failed on
        (their ``ctc_*`` values are NaN); else None.
    """

    per_fov: dict[int, dict[str, float]]
    overall: dict[str, float]
    fl_channels: tuple[int, ...]
    background_channels: tuple[int, ...]
    iou_threshold: float
    min_signal_fraction: float
    ctc_library: str | None = None
    ctc_message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dictionary; NaN becomes ``None``."""

        def clean(d: Mapping[str, float]) -> dict[str, Any]:
            return {
                k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in d.items()
            }

        return {
            "iou_threshold": self.iou_threshold,
            "min_signal_fraction": self.min_signal_fraction,
            "fl_channels": list(self.fl_channels),
            "background_channels": list(self.background_channels),
            "ctc_library": self.ctc_library,
            "ctc_message": self.ctc_message,
            "per_fov": {str(f): clean(m) for f, m in self.per_fov.items()},
            "overall": clean(self.overall),
        }


def _truth_channels(truth_fov: Path) -> list[int]:
    """Fluorescence channels of the truth traces CSV (``true_total_ch_{c}``)."""
    path = truth_fov / "traces.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"truth traces {str(path)!r} is missing; regenerate the truth."
        )
    header = pd.read_csv(path, nrows=0).columns
    return sorted(int(m.group(1)) for h in header if (m := _TRUE_TOTAL_RE.fullmatch(h)))


def evaluate_run(
    truth_dir: str | Path,
    out_dir: str | Path,
    *,
    iou_threshold: float = 0.5,
    min_signal_fraction: float = 0.05,
    fovs: Sequence[int] | None = None,
    ctc: bool = True,
) -> Evaluation:
    """Measure a run's accuracy against the generator's ground truth.

    Parameters
    ----------
    truth_dir : str or Path
        The ``<name>_truth`` directory (``truth.json`` and ``fov_NNN/``).
    out_dir : str or Path
        The run's output directory (holding ``processing_results.yaml``).
    iou_threshold : float, optional
        Smallest mask IoU of a match, in (0, 1]; algorithms.md §8.1 uses 0.5.
    min_signal_fraction : float, optional
        Trace-error pairs with ``true_total`` at or below this fraction of the
        FOV's 95th percentile of ``true_total`` are excluded, in [0, 1].
    fovs : sequence of int, optional
        FOVs to evaluate; default every FOV of the truth.
    ctc : bool, optional
        Also compute the Cell Tracking Challenge measures (``ctc_*`` keys)
        with py-ctcmetrics. Without the library they are left out and
        ``Evaluation.ctc_message`` says how to install it.

    Returns
    -------
    Evaluation
        Per-FOV and pooled metrics (see the module docstring for the keys).

    Raises
    ------
    FileNotFoundError
        If ``truth.json``, the manifest, or a file either lists is missing.
    ValueError
        If a FOV of the truth (or of `fovs`) is not in the run or not
        finished, a stack's shape differs from the truth, a CSV lacks a
        column, or an option is out of range.
    TypeError
        If an option has the wrong type.

    Notes
    -----
    Memory: one true and one predicted frame at a time (one background frame
    and up to two run frames in the background pass), plus the per-(cell,
    frame) tables of one FOV. The CTC measures export one FOV's truth and run
    at a time to a temporary folder (``tempfile``, so ``TMPDIR`` applies; two
    FOV stacks as uint16/uint32 TIFFs) and keep py-ctcmetrics' per-frame
    match lists of that FOV.
    """
    iou_threshold = check_fraction("iou_threshold", iou_threshold, allow_zero=False)
    min_signal_fraction = check_fraction(
        "min_signal_fraction", min_signal_fraction, allow_zero=True
    )
    truth_path, out_path = Path(truth_dir), Path(out_dir)
    truth, listed_channels = _load_truth(truth_path)
    manifest = _load_manifest(out_path)
    if fovs is None:
        selected = sorted(truth)
    else:
        selected = sorted({int(f) for f in fovs})
        unknown = [f for f in selected if f not in truth]
        if unknown or not selected:
            raise ValueError(
                f"fovs={list(fovs)!r} is invalid: the truth has FOVs "
                f"{sorted(truth)!r}; pick a non-empty subset of them."
            )
    runs = {f: _run_fov(manifest, out_path, f) for f in selected}
    run_channels = {
        int(ch["channel"])
        for ch in (manifest.get("channels") or {}).get("fl", []) or []
    }
    truth_channels = (
        listed_channels
        if listed_channels is not None
        else _truth_channels(truth_path / f"fov_{selected[0]:03d}")
    )
    fl_channels = tuple(c for c in truth_channels if c in run_channels)
    params = manifest.get("params") or {}
    weight = float((params.get("background") or {}).get("weight", 1.0))

    tallies: dict[int, _Tally] = {}
    for f in selected:
        tallies[f] = _evaluate_fov(
            f,
            truth[f],
            truth_path / f"fov_{f:03d}",
            runs[f],
            fl_channels,
            weight,
            iou_threshold=iou_threshold,
            min_signal_fraction=min_signal_fraction,
        )
    bg_channels = tuple(sorted({c for t in tallies.values() for c in t.background}))
    per_fov = {
        f: _metrics(t, fl_channels, bg_channels) for f, t in sorted(tallies.items())
    }
    overall = _metrics(_pool(list(tallies.values())), fl_channels, bg_channels)
    ctc_library = _ctc_library() if ctc else None
    ctc_message = CTC_INSTALL_HINT if ctc and ctc_library is None else None
    if ctc_library is not None:
        ctc_per_fov, ctc_overall, ctc_message = _ctc_measures(truth_path, runs)
        for f, values in ctc_per_fov.items():
            per_fov[f].update(values)
        overall.update(ctc_overall)
    return Evaluation(
        per_fov=per_fov,
        overall=overall,
        fl_channels=fl_channels,
        background_channels=bg_channels,
        iou_threshold=iou_threshold,
        min_signal_fraction=min_signal_fraction,
        ctc_library=ctc_library,
        ctc_message=ctc_message,
    )
