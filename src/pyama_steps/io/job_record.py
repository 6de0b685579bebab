"""The record of one job: its figures and, when it failed, its error.

Every step job writes ``<log>.json`` beside its log (``logs/<rule>/<job>.log``
-> ``logs/<rule>/<job>.json``): a small JSON object, written atomically,
that the manifest reads (algorithms.md §6.2)::

    {"version": 1, "status": "ok", "figures": {"cpu_s": 1.9, "work_s": 1.8, ...}}
    {"version": 1, "status": "failed", "error": "ValueError: ...", "figures": {...}}

``figures`` holds the numbers the step reported (``clipped_px``, ``nan_px``,
``background_fallback_frames``, ``n_cells``, ...) and those of the job itself
(``work_s``; in a worker also ``job_s``, ``cpu_s`` and ``peak_rss_mb``);
``error`` is ``<ExceptionType>: <first line of the message>``. The record is
removed when the job starts, so a job that is running, or was killed, has
none: only a job that ended has a record, and a failed one says so. The log
keeps the same figures and error as human-readable lines; nothing parses
them. (Not to be confused with the output records of
:mod:`pyama_steps.io.integrity`, ``records/<rule>/<job>.json``: the sizes and
checksums of a job's outputs, for ``pyama-steps verify``.)

Imports only :mod:`pyama_steps.io` (atomic writes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pyama_steps.io.outputs import atomic_write_text

__all__ = [
    "RECORD_VERSION",
    "clear_job_record",
    "error_line",
    "job_record_path",
    "mark_job_failed",
    "read_job_record",
    "write_job_record",
]

#: Version of the record's layout.
RECORD_VERSION = 1


def error_line(e: BaseException) -> str:
    """``<ExceptionType>: <first line of the message>``: a failed job's error."""
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"


def job_record_path(log_path: str | Path) -> Path:
    """Return the record of the job whose log is `log_path` (``.log`` -> ``.json``)."""
    return Path(log_path).with_suffix(".json")


def clear_job_record(log_path: str | Path) -> None:
    """Remove a job's record (called when the job starts)."""
    job_record_path(log_path).unlink(missing_ok=True)


def write_job_record(
    log_path: str | Path,
    *,
    figures: Mapping[str, Any],
    error: str | None = None,
) -> None:
    """Write a job's record atomically.

    Parameters
    ----------
    log_path : str or Path
        The job's log; the record goes beside it.
    figures : mapping
        The job's figures (JSON numbers), written with sorted keys.
    error : str, optional
        ``<ExceptionType>: <message>`` of a failed job; without it the job
        is recorded as ``ok``.
    """
    record: dict[str, Any] = {
        "version": RECORD_VERSION,
        "status": "ok" if error is None else "failed",
    }
    if error is not None:
        record["error"] = error
    record["figures"] = dict(sorted(figures.items()))
    atomic_write_text(job_record_path(log_path), json.dumps(record) + "\n")


def mark_job_failed(log_path: str | Path, *, error: str) -> None:
    """Record a job as failed after its step ended, keeping its figures.

    For a failure after the step itself, e.g. when the job's output record
    (:func:`pyama_steps.io.integrity.record_outputs`) cannot be written.
    """
    record = read_job_record(log_path)
    figures = record["figures"] if record is not None else {}
    write_job_record(log_path, figures=figures, error=error)


def read_job_record(log_path: str | Path) -> dict[str, Any] | None:
    """Read a job's record.

    Parameters
    ----------
    log_path : str or Path
        The job's log (the record is beside it).

    Returns
    -------
    dict or None
        ``{'version', 'status', 'figures'[, 'error']}``; None when the job
        has no record (it never ran, is running, or was killed) or the record
        is not one (its job reruns and writes it again).
    """
    try:
        text = job_record_path(log_path).read_text(encoding="utf-8")
        record = json.loads(text)
    except (OSError, ValueError):
        return None
    if (
        not isinstance(record, dict)
        or record.get("status") not in ("ok", "failed")
        or not isinstance(record.get("figures"), dict)
        or (record["status"] == "failed" and not isinstance(record.get("error"), str))
    ):
        return None
    return record
