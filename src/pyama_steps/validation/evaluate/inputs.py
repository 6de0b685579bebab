"""The evaluation's files: truth, manifest, CSVs, and their checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pyama_steps.io import NpyFrameReader
from pyama_steps.io.paths import MANIFEST
from pyama_steps.validation._run_files import (
    _load_truth_json,
    _resolve,
)


def _load_truth(
    truth_dir: Path,
) -> tuple[dict[int, dict[str, Any]], list[int] | None]:
    """Per-FOV entries of ``truth.json`` and its ``fl_channels`` (if listed)."""
    path, truth, fovs = _load_truth_json(truth_dir)
    for f, entry in fovs.items():
        if "shape" not in entry or "times_min" not in entry:
            raise ValueError(
                f"{str(path)!r}: FOV {f} lacks 'shape' or 'times_min'; regenerate the "
                "truth with 'pyama-steps generate'."
            )
    listed = truth.get("fl_channels")
    channels = None if listed is None else sorted(int(c) for c in listed)
    return fovs, channels


def _channel_paths(out_dir: Path, items: Any, what: str) -> dict[int, Path]:
    out: dict[int, Path] = {}
    for item in items or []:
        c, rel = item
        out[int(c)] = _resolve(out_dir, str(rel), f"{what} of channel {c}")
    return out


@dataclass(frozen=True)
class _RunFov:
    labels: Path
    traces: Path
    lineage: Path | None
    fl: dict[int, Path]
    corrected: dict[int, Path]
    background: dict[int, Path]
    model: dict[int, Path]
    background_params: Mapping[str, Any]


def _run_fov(manifest: Mapping[str, Any], out_dir: Path, fov: int) -> _RunFov:
    results = manifest["results"]
    key = str(fov)
    if key not in results:
        listed = ", ".join(sorted(results, key=lambda k: int(k))) or "none"
        raise ValueError(
            f"FOV {fov} is in the truth but not in the run ({MANIFEST} lists FOVs: "
            f"{listed}); process it (config key 'fovs') or evaluate only the run's "
            "FOVs with fovs=[...] / --fovs."
        )
    entry = results[key]
    status = (manifest.get("fov_status") or {}).get(key, {}).get("status", "unknown")
    for name in ("seg_labeled", "traces"):
        if not entry.get(name):
            raise ValueError(
                f"FOV {fov} has no {name!r} in {MANIFEST} (status {status!r}); rerun "
                "the workflow until the FOV is ok, or leave it out with fovs=[...]."
            )
    return _RunFov(
        labels=_resolve(out_dir, str(entry["seg_labeled"][1]), "seg_labeled"),
        traces=_resolve(out_dir, str(entry["traces"]), "traces CSV"),
        lineage=(
            _resolve(out_dir, str(entry["lineage"]), "lineage CSV")
            if entry.get("lineage")
            else None
        ),
        fl=_channel_paths(out_dir, entry.get("fl"), "fl"),
        corrected=_channel_paths(out_dir, entry.get("fl_corrected"), "fl_corrected"),
        background=_channel_paths(out_dir, entry.get("fl_background"), "fl_background"),
        model=_channel_paths(
            out_dir, entry.get("fl_background_model"), "fl_background_model"
        ),
        background_params=(manifest.get("params") or {}).get("background") or {},
    )


def _read_csv(path: Path, required: Sequence[str], what: str) -> pd.DataFrame:
    header = pd.read_csv(path, nrows=0).columns.tolist()
    missing = [c for c in required if c not in header]
    if missing:
        raise ValueError(
            f"{what} {str(path)!r} lacks the column(s) {missing!r} (has "
            f"{header!r}); regenerate it with this version of pyama-steps."
        )
    df = pd.read_csv(path, usecols=list(required))
    for col in ("cell", "parent", "frame"):
        if col in df.columns:
            df[col] = df[col].astype(np.int64)
    return df


def _check_shape(reader: NpyFrameReader, shape: tuple[int, ...], ref: str) -> None:
    if reader.shape != shape:
        raise ValueError(
            f"{str(reader.path)!r} has shape {reader.shape!r} but {ref} has "
            f"{shape!r}; the run was made from another input than the truth, or "
            "with other frames. Evaluate the run of the generated image file."
        )
