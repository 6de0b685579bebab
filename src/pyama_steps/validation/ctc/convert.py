"""Pure conversion of a label stack and lineage to the CTC format."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from pyama_steps._arrays import check_label_array, check_no_negative_ids
from pyama_steps._typing import LabelArray

Int64Array = npt.NDArray[np.int64]

#: Columns of a CTC track table: the four fields of a track line and the
#: pyama-steps cell id the segment comes from.
CTC_COLUMNS: Final = ("label", "begin", "end", "parent", "cell")
#: Largest CTC label: masks are 16-bit and ``L`` is a 16-bit value.
CTC_MAX_LABEL: Final = 65535
RESULT_TRACK_FILE: Final = "res_track.txt"
TRUTH_TRACK_FILE: Final = "man_track.txt"


#: Frames whose largest id is below this are mapped through a dense look-up
#: table (one ``bincount``/indexing pass); sparse huge uint32 ids use
#: ``numpy.unique`` instead, which sorts the frame.
_DENSE_LIMIT: Final = 1 << 22
_MASK_DTYPES: Final = (np.dtype(np.uint16), np.dtype(np.uint32))


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
    t, c, starts, ends = _segments(t, c)
    n = int(starts.size)
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
    mother, found, late = _link_divisions(
        ids, lineage, begin, end, child_first, mother_last_of, strict=strict
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


def _segments(t: Int64Array, c: Int64Array) -> tuple[Int64Array, ...]:
    """Sort ``(t, c)`` by cell and frame; return them and the segments' rows.

    A segment is a gap-free run of frames of one cell; ``starts`` and
    ``ends`` are the rows of its first and last frame.
    """
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
    return t, c, starts, ends


def _link_divisions(
    ids: Int64Array,
    lineage: pd.DataFrame,
    begin: Int64Array,
    end: Int64Array,
    child_first: Int64Array,
    mother_last_of: Int64Array,
    *,
    strict: bool,
) -> tuple[Int64Array, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Find each cell's mother among ``ids``; return ``(mother, found, late)``.

    ``mother`` indexes ``ids``; ``found`` marks cells whose listed parent is
    another cell with pixels, ``late`` those whose parent is still present
    when they begin. With ``strict``, a missing parent or a late one raises.
    """
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
    return mother, found, late


def _check_labels(labels: object, name: str, ndim: int) -> LabelArray:
    checked = check_label_array(labels, name, ndim=ndim)
    check_no_negative_ids(checked, name, what="ids")
    return checked


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
