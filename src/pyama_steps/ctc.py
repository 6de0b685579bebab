"""Cell Tracking Challenge (CTC) export of a run's tracks and of the generator's truth.

The CTC format ("Naming and file content conventions" of
celltrackingchallenge.net) stores a tracked sequence as one 16-bit label
image per frame and a text file of tracks::

    <RES>/maskTTT.tif              uint16 (Y, X), 0 = background
    <RES>/res_track.txt            one line "L B E P" per track
    <GT>/TRA/man_trackTTT.tif      the same for the reference (ground truth)
    <GT>/TRA/man_track.txt

``TTT`` is the frame index zero-padded to three digits, or to more when the
sequence has over 1000 frames. In a track line, ``L`` is the label, ``B`` and
``E`` the first and last frame (inclusive, 0-based) and ``P`` the parent
label, 0 for none. Such a folder can be scored by any CTC tool
(py-ctcmetrics, traccuracy, the CTC's own executables) and opened in napari.

A CTC track must be present in every frame from ``B`` to ``E``, while a
pyama-steps track may skip frames (gap closing, algorithms.md §4.5). Every
gap-free *segment* of a track therefore becomes one CTC label:

* the first segment of a cell takes as parent the **last** segment of the
  cell's ``parent`` (a division: the mother's id ends, the daughters start);
* every later segment of a cell takes as parent the segment before it. A
  parent with a single child is how CTC files write a cell that was missed for
  some frames; CTC tools read it as one cell (py-ctcmetrics merges such
  chains into one trajectory for CHOTA, and AOGM matches the link to the
  reference's own gap link).

Labels are numbered from 1 in the order (cell id, first frame), so the result
depends only on the label stack and the lineage. Conversion streams: the
label stack is read twice, one frame at a time (algorithms.md §7.4), and each
output folder is written under a temporary name and renamed when complete
(§7.2). The TIFF files carry no time stamp or varying metadata, so the same
input gives byte-identical files.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from glob import escape as glob_escape
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from pyama_steps._typing import LabelArray
from pyama_steps.io import NpyFrameReader
from pyama_steps.io.paths import MANIFEST, fov_dir, parse_fov_list

__all__ = [
    "CTC_COLUMNS",
    "CTC_MAX_LABEL",
    "RESULT_TRACK_FILE",
    "TRUTH_TRACK_FILE",
    "ctc_track_table",
    "export_run",
    "export_truth",
    "format_track_file",
    "main_export_ctc",
    "mask_name",
    "relabel_frame_ctc",
    "to_ctc",
    "write_ctc_result",
    "write_ctc_truth",
]

#: Columns of a CTC track table: the four fields of a track line and the
#: pyama-steps cell id the segment comes from.
CTC_COLUMNS: Final = ("label", "begin", "end", "parent", "cell")
#: Largest CTC label: masks are 16-bit and ``L`` is a 16-bit value.
CTC_MAX_LABEL: Final = 65535
RESULT_TRACK_FILE: Final = "res_track.txt"
TRUTH_TRACK_FILE: Final = "man_track.txt"

Int64Array = npt.NDArray[np.int64]

log = logging.getLogger(__name__)

#: Frames whose largest id is below this are mapped through a dense look-up
#: table (one ``bincount``/indexing pass); sparse huge uint32 ids use
#: ``numpy.unique`` instead, which sorts the frame.
_DENSE_LIMIT: Final = 1 << 22
_MASK_DTYPES: Final = (np.dtype(np.uint16), np.dtype(np.uint32))


# --------------------------------------------------------------------------
# Pure conversion
# --------------------------------------------------------------------------


def mask_name(t: int, n_frames: int, *, prefix: str = "mask") -> str:
    """Return the CTC file name of frame `t`, e.g. ``mask007.tif``.

    Parameters
    ----------
    t : int
        Frame index, in ``[0, n_frames)``.
    n_frames : int
        Frames of the sequence (>= 1); it fixes the zero padding: three
        digits up to 1000 frames, and as many as the last index needs beyond.
    prefix : str, optional
        ``mask`` for results, ``man_track`` for the reference.

    Returns
    -------
    str
        ``f"{prefix}{t:0{digits}d}.tif"``.

    Raises
    ------
    IndexError
        If `t` is outside ``[0, n_frames)``.
    """
    if not 0 <= t < n_frames:
        raise IndexError(f"frame {t} out of range for {n_frames} frames")
    digits = max(3, len(str(n_frames - 1)))
    return f"{prefix}{t:0{digits}d}.tif"


def _empty_table() -> pd.DataFrame:
    return pd.DataFrame({name: np.zeros(0, dtype=np.int64) for name in CTC_COLUMNS})


def _parent_map(lineage: pd.DataFrame) -> tuple[Int64Array, Int64Array]:
    """Sorted unique cell ids and their parents from a ``cell``/``parent`` table."""
    missing = [c for c in ("cell", "parent") if c not in lineage.columns]
    if missing:
        raise ValueError(
            f"lineage lacks the column(s) {missing!r} (has "
            f"{list(lineage.columns)!r}); pass the lineage CSV of the run or the "
            "truth (columns cell, parent)."
        )
    try:
        cells = lineage["cell"].to_numpy(dtype=np.int64)
        parents = lineage["parent"].to_numpy(dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"lineage columns cell and parent must hold integers: {e}"
        ) from e
    if cells.size and (cells.min() < 1 or parents.min() < 0):
        raise ValueError(
            "lineage cell ids must be >= 1 and parents >= 0 (0 = no parent), got "
            f"cells in [{cells.min()}, {cells.max()}] and parents in "
            f"[{parents.min()}, {parents.max()}]"
        )
    order = np.lexsort((parents, cells))
    cells, parents = cells[order], parents[order]
    keep = np.r_[True, (cells[1:] != cells[:-1]) | (parents[1:] != parents[:-1])]
    cells, parents = cells[keep], parents[keep]
    clash = np.flatnonzero(cells[1:] == cells[:-1])
    if clash.size:
        cell = int(cells[clash[0]])
        raise ValueError(
            f"lineage lists cell {cell} twice with different parents; the lineage "
            "CSV is corrupt, rerun the step that wrote it."
        )
    return cells, parents


def ctc_track_table(
    frames: npt.ArrayLike,
    cells: npt.ArrayLike,
    lineage: pd.DataFrame,
    *,
    strict: bool = True,
) -> pd.DataFrame:
    """Split tracks into gap-free CTC segments and link them by parent labels.

    Parameters
    ----------
    frames : (N,) array_like of int
        Frame of each observation (a cell id present in a frame).
    cells : (N,) array_like of int
        Cell id (>= 1) of each observation; each (cell, frame) at most once.
    lineage : pandas.DataFrame
        Columns ``cell`` and ``parent`` (0 = none), one row per cell; more
        columns and rows of cells that never appear are ignored.
    strict : bool, optional
        If True (default) an inconsistent lineage raises. If False a cell
        that `lineage` does not list gets no parent, and a link that CTC
        cannot express (a parent that never appears, the cell itself, or a
        parent still present when the child begins) is dropped, which makes
        the child a root; for scoring runs whose parent table comes from a
        traces CSV.

    Returns
    -------
    pandas.DataFrame
        One row per segment, sorted by ``label``, int64 columns
        :data:`CTC_COLUMNS`: ``label`` (1..n in the order of cell id, then
        first frame), ``begin``/``end`` (first and last frame, inclusive),
        ``parent`` (CTC label, 0 = none) and ``cell`` (the source id).

    Raises
    ------
    ValueError
        If the arrays are not 1-D of one length, hold negative frames or ids
        < 1, repeat a (cell, frame) pair, or there are more than
        :data:`CTC_MAX_LABEL` segments; with `strict`, also if a cell is
        missing from `lineage` or its parent never appears, is the cell
        itself or does not end before the child begins.

    Notes
    -----
    A cell's first segment takes the last segment of its parent as parent
    (division); each later segment takes the segment before it (the CTC way
    of writing a gap, see the module docstring).

    Examples
    --------
    Cell 1 is present in frames 0-1 and 3 (a gap at frame 2) and divides into
    cells 2 and 3 at frame 4:

    >>> lineage = pd.DataFrame({"cell": [1, 2, 3], "parent": [0, 1, 1]})
    >>> table = ctc_track_table([0, 1, 3, 4, 4], [1, 1, 1, 2, 3], lineage)
    >>> print(format_track_file(table), end="")
    1 0 1 0
    2 3 3 1
    3 4 4 2
    4 4 4 2
    """
    t = np.asarray(frames, dtype=np.int64)
    c = np.asarray(cells, dtype=np.int64)
    if not (t.ndim == c.ndim == 1 and t.shape == c.shape):
        raise ValueError(
            f"frames and cells must be 1-D of one length, got shapes {t.shape!r} "
            f"and {c.shape!r}"
        )
    if t.size == 0:
        return _empty_table()
    if t.min() < 0 or c.min() < 1:
        raise ValueError(
            f"frames must be >= 0 and cells >= 1, got frames in [{t.min()}, "
            f"{t.max()}] and cells in [{c.min()}, {c.max()}]"
        )
    order = np.lexsort((t, c))
    t, c = t[order], c[order]
    same_cell = c[1:] == c[:-1]
    if np.any(same_cell & (t[1:] == t[:-1])):
        raise ValueError("cells must list each (cell, frame) pair at most once")
    starts = np.flatnonzero(np.r_[True, ~same_cell | (t[1:] != t[:-1] + 1)])
    ends = np.r_[starts[1:] - 1, t.size - 1]
    n = int(starts.size)
    if n > CTC_MAX_LABEL:
        raise ValueError(
            f"the tracks need {n} CTC labels (one per gap-free segment of a track) "
            f"but CTC masks are 16-bit and hold at most {CTC_MAX_LABEL}; export a "
            "shorter movie or fewer FOV frames, or track with fewer gaps."
        )
    seg_cell = c[starts]
    begin = t[starts]
    end = t[ends]
    label = np.arange(1, n + 1, dtype=np.int64)
    first = np.r_[True, seg_cell[1:] != seg_cell[:-1]]
    last = np.r_[seg_cell[1:] != seg_cell[:-1], True]
    parent = np.zeros(n, dtype=np.int64)
    # Gap closing: a later segment continues the one before it.
    later = np.flatnonzero(~first)
    parent[later] = label[later - 1]

    # Divisions: a cell's first segment hangs off its parent's last segment.
    ids = seg_cell[first]
    child_first = np.flatnonzero(first)
    mother_last_of = np.flatnonzero(last)  # aligned with ids
    known, known_parent = _parent_map(lineage)
    pos = np.minimum(np.searchsorted(known, ids), max(known.size - 1, 0))
    listed = known[pos] == ids if known.size else np.zeros(ids.size, dtype=bool)
    if strict and not listed.all():
        absent = ids[~listed][:5].tolist()
        raise ValueError(
            f"the label stack holds cell ids {absent!r} that the lineage does not "
            "list; the lineage belongs to another run, rerun the tracking step."
        )
    p = np.where(listed, known_parent[pos] if known.size else 0, 0)
    mother = np.minimum(np.searchsorted(ids, p), ids.size - 1)
    linked = p > 0
    own = linked & (p == ids)
    found = linked & ~own & (ids[mother] == p)
    late = found & (end[mother_last_of[mother]] >= begin[child_first])
    missing = np.flatnonzero(linked & ~found)
    if strict and missing.size:
        k = int(missing[0])
        if own[k]:
            raise ValueError(f"lineage gives cell {int(ids[k])} itself as parent")
        raise ValueError(
            f"cell {int(ids[k])} has parent {int(p[k])}, which has no pixel in any "
            "frame; the lineage does not match the label stack."
        )
    overlap = np.flatnonzero(late)
    if strict and overlap.size:
        k = int(overlap[0])
        raise ValueError(
            f"cell {int(ids[k])} begins in frame {int(begin[child_first[k]])} but "
            f"its parent {int(p[k])} is still present in frame "
            f"{int(end[mother_last_of[mother[k]]])}; a CTC parent must end before "
            "its child begins."
        )
    keep = np.flatnonzero(found & ~late)
    parent[child_first[keep]] = label[mother_last_of[mother[keep]]]
    return pd.DataFrame(
        {
            "label": label,
            "begin": begin,
            "end": end,
            "parent": parent,
            "cell": seg_cell,
        }
    )


def _check_labels(labels: object, name: str, ndim: int) -> LabelArray:
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(labels).__name__!r}")
    if labels.ndim != ndim:
        shape = "(Y, X)" if ndim == 2 else "(T, Y, X)"
        raise ValueError(f"{name} must be a {shape} array, got shape {labels.shape!r}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"{name} must have an integer dtype, got {labels.dtype!r}")
    if labels.size and np.issubdtype(labels.dtype, np.signedinteger):
        lo = int(labels.min())
        if lo < 0:
            raise ValueError(
                f"{name} must hold non-negative ids (0 = background), got {lo}"
            )
    return labels


def _check_mask_dtype(dtype: npt.DTypeLike) -> np.dtype[Any]:
    out = np.dtype(dtype)
    if out not in _MASK_DTYPES:
        raise TypeError(
            f"dtype must be uint16 (the CTC format) or uint32, got {out.name!r}"
        )
    return out


def _present_ids(frame: LabelArray) -> Int64Array:
    """Ids > 0 present in one label frame, ascending."""
    top = int(frame.max()) if frame.size else 0
    if top == 0:  # an empty frame (or no pixels): no cell
        return np.zeros(0, dtype=np.int64)
    if top < _DENSE_LIMIT:
        counts = np.bincount(frame.ravel().astype(np.intp, copy=False))
        ids = np.flatnonzero(counts)
    else:
        ids = np.unique(frame)
    return ids[ids > 0].astype(np.int64)


def _active(table: pd.DataFrame, t: int) -> tuple[Int64Array, Int64Array]:
    """Cell ids (ascending) with a segment covering frame `t`, and its label."""
    begin = table["begin"].to_numpy(dtype=np.int64)
    end = table["end"].to_numpy(dtype=np.int64)
    on = (begin <= t) & (end >= t)
    cells = table["cell"].to_numpy(dtype=np.int64)[on]
    labels = table["label"].to_numpy(dtype=np.int64)[on]
    order = np.argsort(cells, kind="stable")
    return cells[order], labels[order]


def _relabel(
    frame: LabelArray,
    t: int,
    cells: Int64Array,
    labels: Int64Array,
    dtype: np.dtype[Any],
) -> npt.NDArray[np.unsignedinteger[Any]]:
    top = int(frame.max()) if frame.size else 0
    if top < _DENSE_LIMIT:
        lut = np.zeros(top + 1, dtype=dtype)
        fits = cells <= top
        lut[cells[fits]] = labels[fits]
        out: npt.NDArray[np.unsignedinteger[Any]] = lut[frame]
    else:
        ids, inverse = np.unique(frame, return_inverse=True)
        pos = np.minimum(np.searchsorted(cells, ids), max(cells.size - 1, 0))
        hit = cells[pos] == ids if cells.size else np.zeros(ids.size, dtype=bool)
        mapped = np.where(hit, labels[pos] if cells.size else 0, 0).astype(dtype)
        out = mapped[inverse.reshape(frame.shape)]
    lost = (out == 0) & (frame != 0)
    if lost.any():
        cell = int(frame[lost].flat[0])
        raise ValueError(
            f"frame {t} holds cell {cell}, which no CTC segment covers; the track "
            "table was not made from this label stack."
        )
    return out


def relabel_frame_ctc(
    labels: LabelArray,
    t: int,
    table: pd.DataFrame,
    *,
    dtype: npt.DTypeLike = np.uint16,
) -> npt.NDArray[np.unsignedinteger[Any]]:
    """Replace the cell ids of frame `t` by their CTC segment labels.

    Parameters
    ----------
    labels : (Y, X) ndarray of int
        Cell ids of frame `t`, 0 for background (not modified).
    t : int
        Frame index.
    table : pandas.DataFrame
        From :func:`ctc_track_table` for the whole stack.
    dtype : {uint16, uint32}, optional
        Output dtype; the CTC format is uint16.

    Returns
    -------
    (Y, X) ndarray of `dtype`
        CTC labels, 0 for background.

    Raises
    ------
    TypeError
        If `labels` is not an integer array or `dtype` is not allowed.
    ValueError
        If `labels` is not 2-D, holds negative ids, or an id has no segment
        covering frame `t`.
    """
    frame = _check_labels(labels, "labels", 2)
    out_dtype = _check_mask_dtype(dtype)
    cells, segs = _active(table, int(t))
    return _relabel(frame, int(t), cells, segs, out_dtype)


def to_ctc(
    labels: LabelArray,
    lineage: pd.DataFrame,
    *,
    strict: bool = True,
) -> tuple[npt.NDArray[np.uint16], pd.DataFrame]:
    """Convert a whole label stack in memory (for small data and tests).

    Parameters
    ----------
    labels : (T, Y, X) ndarray of int
        Cell ids, 0 for background (not modified).
    lineage : pandas.DataFrame
        Columns ``cell`` and ``parent``.
    strict : bool, optional
        See :func:`ctc_track_table`.

    Returns
    -------
    masks : (T, Y, X) ndarray of uint16
        CTC labels.
    table : pandas.DataFrame
        The track table (:func:`ctc_track_table`).

    Raises
    ------
    TypeError, ValueError
        As :func:`ctc_track_table` and :func:`relabel_frame_ctc`.

    Notes
    -----
    The file writers (:func:`write_ctc_result`) do the same one frame at a
    time; this function holds the whole stack.
    """
    stack = _check_labels(labels, "labels", 3)
    frames, cells = _scan(stack[t] for t in range(stack.shape[0]))
    table = ctc_track_table(frames, cells, lineage, strict=strict)
    masks = np.zeros(stack.shape, dtype=np.uint16)
    for t in range(stack.shape[0]):
        cells_t, segs_t = _active(table, t)
        masks[t] = _relabel(stack[t], t, cells_t, segs_t, np.dtype(np.uint16))
    return masks, table


def format_track_file(table: pd.DataFrame) -> str:
    r"""Render a track table as a CTC track file (``res_track.txt``).

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``label``, ``begin``, ``end``, ``parent``.

    Returns
    -------
    str
        One ``"L B E P\n"`` line per track, sorted by ``L``; empty without
        tracks.
    """
    rows = table.sort_values("label", kind="stable")
    cols = [
        rows[c].to_numpy(dtype=np.int64) for c in ("label", "begin", "end", "parent")
    ]
    return "".join(f"{lab} {b} {e} {p}\n" for lab, b, e, p in zip(*cols, strict=True))


def _scan(frames: Iterable[LabelArray]) -> tuple[Int64Array, Int64Array]:
    """Pass 1: (frame, cell id) of every cell present in every frame."""
    ts: list[Int64Array] = []
    ids: list[Int64Array] = []
    for t, frame in enumerate(frames):
        present = _present_ids(_check_labels(frame, f"frame {t}", 2))
        ts.append(np.full(present.size, t, dtype=np.int64))
        ids.append(present)
    if not ts:
        z = np.zeros(0, dtype=np.int64)
        return z, z.copy()
    return np.concatenate(ts), np.concatenate(ids)


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


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
    import yaml

    path = out / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"no {MANIFEST} in {str(out)!r}: OUTPUT_DIR must be the output_dir of a "
            "run whose aggregate step has written the manifest."
        )
    manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    results = manifest.get("results") if isinstance(manifest, Mapping) else None
    if not isinstance(results, Mapping):
        raise ValueError(
            f"{str(path)!r} has no 'results' mapping; it is not a pyama-steps "
            "manifest (algorithms.md §6.2). Rerun the aggregate step."
        )
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
        files = []
        for rel, what in ((str(seg[1]), "seg_labeled"), (str(lineage), "lineage")):
            p = Path(rel) if Path(rel).is_absolute() else out / rel
            if not p.is_file():
                raise FileNotFoundError(
                    f"{what} {str(p)!r} is listed in {MANIFEST} but missing; rerun "
                    "the workflow so that it is written again."
                )
            files.append(p)
        inputs[f] = (files[0], files[1])
    return inputs


def _truth_inputs(
    root: Path, fovs: Iterable[int] | None
) -> dict[int, tuple[Path, Path]]:
    """FOV -> (labels.npy, lineage.csv) of a generator truth, all checked to exist."""
    meta_path = root / "truth.json"
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"no truth.json in {str(root)!r}: TRUTH_DIR must be the '<name>_truth' "
            "directory written by 'pyama-steps generate'."
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        available = [int(e["fov"]) for e in meta["fovs"]]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise ValueError(
            f"{str(meta_path)!r} is not a generator truth file (expected a 'fovs' "
            f"list of {{'fov', ...}} entries): {type(e).__name__}: {e}"
        ) from e
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


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def main_export_ctc(argv: Sequence[str] | None = None) -> int:
    """Run ``pyama-steps export-ctc``: write a run's tracks as CTC folders.

    Parameters
    ----------
    argv : sequence of str, optional
        ``OUTPUT_DIR DEST [--fovs 0,2] [--truth TRUTH_DIR]`` (default:
        ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 when the inputs are missing or inconsistent (the
        message goes to stderr); argparse exits with 2 on bad arguments.
    """
    parser = argparse.ArgumentParser(
        prog="pyama-steps export-ctc",
        description=(
            "Write a run's tracks as Cell Tracking Challenge result folders "
            "(DEST/fov_NNN/maskTTT.tif + res_track.txt), e.g. to score them "
            "with any CTC tool or open them in napari."
        ),
    )
    parser.add_argument("output_dir", type=Path, help="the run's output_dir")
    parser.add_argument("dest", type=Path, help="folder to write fov_NNN/ into")
    parser.add_argument(
        "--fovs", type=parse_fov_list, default=None, help="FOVs to export, e.g. 0,2"
    )
    parser.add_argument(
        "--truth",
        type=Path,
        default=None,
        metavar="TRUTH_DIR",
        help="also write the generator's truth as DEST/fov_NNN_GT/TRA/",
    )
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        # Check both sides before writing anything.
        _run_inputs(args.output_dir, args.fovs)
        if args.truth is not None:
            _truth_inputs(args.truth, args.fovs)
        folders = export_run(args.output_dir, args.dest, fovs=args.fovs)
        truths = (
            export_truth(args.truth, args.dest, fovs=args.fovs)
            if args.truth is not None
            else []
        )
    except (FileNotFoundError, ValueError, TypeError) as e:
        print(f"pyama-steps export-ctc: error: {e}", file=sys.stderr)
        return 2
    for folder in [*folders, *truths]:
        print(f"wrote {folder}")
    if truths:
        print(
            "score one FOV with py-ctcmetrics: ctc_evaluate "
            f"--res {folders[0]} --gt {truths[0]}"
        )
    return 0
