"""The files the validation kit reads: a run's manifest and outputs, the truth.

Shared by the evaluation and the CTC export, which both start from the
``processing_results.yaml`` of a run's ``output_dir`` and from the
``truth.json`` of a generator truth. Imports only ``io.paths``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from pyama_steps.io.paths import MANIFEST

__all__: list[str] = []

TRUTH_JSON: Final = "truth.json"


def _load_manifest(out_dir: Path) -> dict[str, Any]:
    """Read a finished run's manifest; raise unless it has a ``results`` mapping."""
    import yaml

    path = out_dir / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"no {MANIFEST} in {str(out_dir)!r}: OUTPUT_DIR must be the output_dir of "
            "a finished run (run snakemake until the aggregate step has written it)."
        )
    manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(manifest, dict) or not isinstance(manifest.get("results"), dict):
        raise ValueError(
            f"{str(path)!r} has no 'results' mapping; it is not a pyama-steps "
            "manifest (algorithms.md §6.2). Rerun the aggregate step."
        )
    return manifest


def _resolve(out_dir: Path, rel: str, what: str) -> Path:
    """Return the file `rel` listed in the manifest, checked to exist.

    A relative `rel` is relative to `out_dir`; `what` names the file in the
    message.
    """
    path = Path(rel)
    path = path if path.is_absolute() else out_dir / path
    if not path.is_file():
        raise FileNotFoundError(
            f"{what} {str(path)!r} is listed in {MANIFEST} but missing; rerun the "
            "workflow so that it is written again."
        )
    return path


def _load_truth_json(
    truth_dir: Path,
) -> tuple[Path, dict[str, Any], dict[int, dict[str, Any]]]:
    """Read a generator truth's ``truth.json``: its path, content and FOV entries."""
    path = truth_dir / TRUTH_JSON
    if not path.is_file():
        raise FileNotFoundError(
            f"no {TRUTH_JSON} in {str(truth_dir)!r}: TRUTH_DIR must be the "
            "'<name>_truth' directory written by 'pyama-steps generate'."
        )
    try:
        truth = json.loads(path.read_text(encoding="utf-8"))
        fovs = {int(e["fov"]): dict(e) for e in truth["fovs"]}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise ValueError(
            f"{str(path)!r} is not a generator truth file (expected a 'fovs' list of "
            f"{{'fov', 'shape', 'times_min', ...}} entries): {type(e).__name__}: {e}"
        ) from e
    return path, truth, fovs
