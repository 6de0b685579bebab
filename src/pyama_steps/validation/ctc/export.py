"""CTC result and truth folders: files, whole runs, truth folders."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from glob import escape as glob_escape
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from pyama_steps.io import NpyFrameReader
from pyama_steps.io.paths import MANIFEST, fov_dir
from pyama_steps.validation._run_files import (
    _load_manifest,
    _load_truth_json,
    _resolve,
)
from pyama_steps.validation.ctc.convert import (
    RESULT_TRACK_FILE,
    TRUTH_TRACK_FILE,
    _active,
    _check_mask_dtype,
    _relabel,
    _scan,
    ctc_track_table,
    format_track_file,
    mask_name,
)

log = logging.getLogger(__name__)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def _atomic_dir(final: Path) -> Iterator[Path]:
    """Yield an empty temporary folder that replaces `final` if the block succeeds.

    A killed job leaves ``.<name>.tmp-<pid>`` (or ``.old-<pid>``) behind;
    such leftovers of other processes are removed when the folder is written
    again, as :func:`pyama_steps.io.atomic_output` does for files.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    pid = os.getpid()
    tmp = final.with_name(f".{final.name}.tmp-{pid}")
    old = final.with_name(f".{final.name}.old-{pid}")
    for pattern in (".tmp-*", ".old-*"):
        for stale in final.parent.glob(f".{glob_escape(final.name)}{pattern}"):
            _remove(stale)
    tmp.mkdir()
    try:
        yield tmp
        if final.exists() or final.is_symlink():
            # rename() cannot replace a non-empty folder: move the old one
            # aside first, so that `final` is missing only between two renames.
            os.rename(final, old)
            os.rename(tmp, final)
            _remove(old)
        else:
            os.rename(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            _remove(tmp)
        raise


def _read_lineage(lineage: str | Path | pd.DataFrame) -> pd.DataFrame:
    if isinstance(lineage, pd.DataFrame):
        return lineage
    path = Path(lineage)
    if not path.is_file():
        raise FileNotFoundError(f"lineage CSV {str(path)!r} does not exist")
    header = pd.read_csv(path, nrows=0).columns.tolist()
    missing = [c for c in ("cell", "parent") if c not in header]
    if missing:
        raise ValueError(
            f"lineage CSV {str(path)!r} lacks the column(s) {missing!r} (has "
            f"{header!r}); pass a pyama-steps or generator lineage CSV."
        )
    return pd.read_csv(path, usecols=["cell", "parent"])


def _write_tiff(path: Path, frame: npt.NDArray[Any]) -> None:
    import tifffile

    # No ImageDescription JSON, no Software tag, no DateTime: the bytes
    # depend only on the pixels (algorithms.md §7.1).
    tifffile.imwrite(
        path, frame, photometric="minisblack", metadata=None, software=False
    )


def _write_ctc(
    labels: str | Path,
    lineage: str | Path | pd.DataFrame,
    folder: Path,
    *,
    prefix: str,
    track_file: str,
    dtype: np.dtype[Any],
    strict: bool,
    name: str,
) -> pd.DataFrame:
    table_source = _read_lineage(lineage)
    with NpyFrameReader(labels) as reader:
        n_t = len(reader)
        if n_t == 0:
            raise ValueError(
                f"{str(reader.path)!r} has no frames; a CTC sequence needs at least one"
            )
        if not np.issubdtype(reader.dtype, np.integer):
            raise TypeError(
                f"{str(reader.path)!r} has dtype {reader.dtype!r}; expected a label "
                "stack of integers (seg_labeled or the truth labels.npy)"
            )
        frames, cells = _scan(reader.read(t) for t in range(n_t))
        table = ctc_track_table(frames, cells, table_source, strict=strict)
        for t in range(n_t):
            cells_t, segs_t = _active(table, t)
            mask = _relabel(reader.read(t), t, cells_t, segs_t, dtype)
            _write_tiff(folder / mask_name(t, n_t, prefix=prefix), mask)
    with open(folder / track_file, "w", encoding="ascii", newline="\n") as fh:
        fh.write(format_track_file(table))
    log.info(
        "%s: %d frames, %d cell(s) as %d CTC track(s)",
        name,
        n_t,
        table["cell"].nunique(),
        len(table),
    )
    return table


def write_ctc_result(
    labels: str | Path,
    lineage: str | Path | pd.DataFrame,
    dest: str | Path,
    *,
    dtype: npt.DTypeLike = np.uint16,
    strict: bool = True,
) -> pd.DataFrame:
    """Write one FOV's tracks as a CTC result folder, atomically.

    Parameters
    ----------
    labels : str or Path
        A (T, Y, X) ``.npy`` label stack (``seg_labeled``), read frame by frame.
    lineage : str, Path or pandas.DataFrame
        The lineage CSV (or table) with columns ``cell`` and ``parent``.
    dest : str or Path
        The folder to write (``maskTTT.tif`` and ``res_track.txt``); an
        existing folder is replaced once the new one is complete.
    dtype : {uint16, uint32}, optional
        Mask dtype; the CTC format is uint16.
    strict : bool, optional
        See :func:`ctc_track_table`.

    Returns
    -------
    pandas.DataFrame
        The track table that was written (:func:`ctc_track_table`).

    Raises
    ------
    FileNotFoundError
        If the stack or the lineage CSV is missing.
    TypeError, ValueError
        If the stack is not an integer (T, Y, X) stack with >= 1 frame, or as
        :func:`ctc_track_table`.
    """
    out_dtype = _check_mask_dtype(dtype)
    final = Path(dest)
    with _atomic_dir(final) as tmp:
        return _write_ctc(
            labels,
            lineage,
            tmp,
            prefix="mask",
            track_file=RESULT_TRACK_FILE,
            dtype=out_dtype,
            strict=strict,
            name=str(final),
        )


def write_ctc_truth(
    labels: str | Path,
    lineage: str | Path | pd.DataFrame,
    dest: str | Path,
    *,
    dtype: npt.DTypeLike = np.uint16,
) -> pd.DataFrame:
    """Write one FOV of ground truth as a CTC reference folder, atomically.

    Parameters
    ----------
    labels : str or Path
        The generator's ``fov_NNN/labels.npy`` (T, Y, X), read frame by frame.
    lineage : str, Path or pandas.DataFrame
        The generator's ``fov_NNN/lineage.csv`` (``cell``, ``parent``, ...).
    dest : str or Path
        The ``..._GT`` folder to write; it receives ``TRA/man_trackTTT.tif``
        and ``TRA/man_track.txt`` (full masks, so they serve as tracking
        markers too). An existing folder is replaced once the new one is
        complete.
    dtype : {uint16, uint32}, optional
        Mask dtype; the CTC format is uint16.

    Returns
    -------
    pandas.DataFrame
        The track table that was written.

    Raises
    ------
    FileNotFoundError, TypeError, ValueError
        As :func:`write_ctc_result`; every id of the stack must be in the
        lineage.
    """
    out_dtype = _check_mask_dtype(dtype)
    final = Path(dest)
    with _atomic_dir(final) as tmp:
        tra = tmp / "TRA"
        tra.mkdir()
        return _write_ctc(
            labels,
            lineage,
            tra,
            prefix="man_track",
            track_file=TRUTH_TRACK_FILE,
            dtype=out_dtype,
            strict=True,
            name=str(final),
        )


# --------------------------------------------------------------------------
# Whole runs and truth folders
# --------------------------------------------------------------------------


def _select(
    available: Sequence[int], fovs: Iterable[int] | None, what: str
) -> list[int]:
    if fovs is None:
        return sorted(available)
    wanted = sorted({int(f) for f in fovs})
    unknown = [f for f in wanted if f not in available]
    if unknown or not wanted:
        raise ValueError(
            f"fovs={list(fovs)!r} is invalid: {what} has FOVs {sorted(available)!r}; "
            "pick a non-empty subset of them."
        )
    return wanted


def _run_inputs(out: Path, fovs: Iterable[int] | None) -> dict[int, tuple[Path, Path]]:
    """FOV -> (seg_labeled, lineage CSV) of a finished run, all checked to exist."""
    manifest = _load_manifest(out)
    results = manifest["results"]
    status = manifest.get("fov_status") or {}
    selected = _select([int(k) for k in results], fovs, MANIFEST)
    inputs: dict[int, tuple[Path, Path]] = {}
    for f in selected:
        entry = results[str(f)] or {}
        state = (status.get(str(f)) or {}).get("status", "unknown")
        seg = entry.get("seg_labeled")
        lineage = entry.get("lineage")
        if not seg or not lineage:
            raise ValueError(
                f"FOV {f} has no tracks in {MANIFEST} (status {state!r}); rerun the "
                "workflow until the FOV is ok, or leave it out with --fovs."
            )
        files = [
            _resolve(out, rel, what)
            for rel, what in ((str(seg[1]), "seg_labeled"), (str(lineage), "lineage"))
        ]
        inputs[f] = (files[0], files[1])
    return inputs


def _truth_inputs(
    root: Path, fovs: Iterable[int] | None
) -> dict[int, tuple[Path, Path]]:
    """FOV -> (labels.npy, lineage.csv) of a generator truth, all checked to exist."""
    available = list(_load_truth_json(root)[2])
    inputs: dict[int, tuple[Path, Path]] = {}
    for f in _select(available, fovs, "the truth"):
        files = [root / fov_dir(f) / name for name in ("labels.npy", "lineage.csv")]
        for p in files:
            if not p.is_file():
                raise FileNotFoundError(
                    f"truth file {str(p)!r} is missing; regenerate the truth."
                )
        inputs[f] = (files[0], files[1])
    return inputs


def export_run(
    out_dir: str | Path, dest: str | Path, *, fovs: Iterable[int] | None = None
) -> list[Path]:
    """Write every FOV of a finished run as a CTC result folder.

    Parameters
    ----------
    out_dir : str or Path
        The run's output directory (with ``processing_results.yaml``).
    dest : str or Path
        Where to write ``fov_NNN/`` (``maskTTT.tif`` + ``res_track.txt``),
        one folder per FOV, each replaced atomically.
    fovs : iterable of int, optional
        FOVs to export; default every FOV of the manifest.

    Returns
    -------
    list of Path
        The folders written, in FOV order.

    Raises
    ------
    FileNotFoundError
        If the manifest, or a stack or lineage CSV it lists, is missing.
    ValueError
        If a selected FOV is unknown or has no tracks, or as
        :func:`write_ctc_result`.

    Notes
    -----
    Every input is checked before the first folder is written. Score a
    folder with py-ctcmetrics: ``ctc_evaluate --res DEST/fov_000 --gt
    GT_DIR`` (see :func:`export_truth`).
    """
    inputs = _run_inputs(Path(out_dir), fovs)
    written = []
    for f, (labels, lineage) in inputs.items():
        folder = Path(dest) / fov_dir(f)
        write_ctc_result(labels, lineage, folder)
        written.append(folder)
    return written


def export_truth(
    truth_dir: str | Path, dest: str | Path, *, fovs: Iterable[int] | None = None
) -> list[Path]:
    """Write the generator's ground truth as CTC reference folders.

    Parameters
    ----------
    truth_dir : str or Path
        The ``<name>_truth`` directory of ``pyama-steps generate``.
    dest : str or Path
        Where to write ``fov_NNN_GT/TRA/`` per FOV.
    fovs : iterable of int, optional
        FOVs to export; default every FOV of ``truth.json``.

    Returns
    -------
    list of Path
        The ``fov_NNN_GT`` folders written, in FOV order.

    Raises
    ------
    FileNotFoundError
        If ``truth.json`` or a FOV's ``labels.npy``/``lineage.csv`` is missing.
    ValueError
        If ``truth.json`` is not a generator truth file, a selected FOV is
        unknown, or as :func:`write_ctc_truth`.
    """
    inputs = _truth_inputs(Path(truth_dir), fovs)
    written = []
    for f, (labels, lineage) in inputs.items():
        folder = Path(dest) / f"{fov_dir(f)}_GT"
        write_ctc_truth(labels, lineage, folder)
        written.append(folder)
    return written


def check_export_inputs(
    output_dir: str | Path,
    *,
    fovs: Iterable[int] | None = None,
    truth: str | Path | None = None,
) -> None:
    """Check a run's (and a truth folder's) inputs of an export, writing nothing.

    Parameters
    ----------
    output_dir : str or Path
        The run's ``output_dir``.
    fovs : iterable of int, optional
        FOVs to export (default: all of the run's).
    truth : str or Path, optional
        The generator's ``<name>_truth`` folder, when its truth is exported too.

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`export_run` and :func:`export_truth` would, before they write.
    """
    _run_inputs(Path(output_dir), fovs)
    if truth is not None:
        _truth_inputs(Path(truth), fovs)
