"""The lineage records of tracking pass 1 and the lineage table (§4.7).

:class:`Track` is one row of the lineage table and :class:`TrackingResult`
everything pass 1 decided; :func:`lineage_table` and
:func:`write_lineage_csv` turn the records into the table and its CSV.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from pyama_steps._arrays import integral_int64
from pyama_steps._validate import check_int

__all__ = [
    "FATES",
    "LINEAGE_COLUMNS",
    "Track",
    "TrackingResult",
    "lineage_table",
    "write_lineage_csv",
]

FATES: Final = ("divided", "merged", "lost", "end")
LINEAGE_COLUMNS: Final = (
    "fov",
    "cell",
    "parent",
    "first_frame",
    "last_frame",
    "n_frames",
    "n_gap_frames",
    "n_merged",
    "fate",
)

Int64Array = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Track:
    """One row of the lineage table (algorithms.md §4.7).

    Attributes
    ----------
    cell : int
        Track id, from 1 in order of creation.
    parent : int
        Mother's id, or 0.
    first_frame, last_frame : int
        First and last frame in which the track is present.
    n_frames : int
        Frames present.
    n_gap_frames : int
        ``last_frame - first_frame + 1 - n_frames`` (bridged frames).
    n_merged : int
        Other tracks absorbed into this one.
    fate : {'divided', 'merged', 'lost', 'end'}
        How the track ended.
    """

    cell: int
    parent: int
    first_frame: int
    last_frame: int
    n_frames: int
    n_gap_frames: int
    n_merged: int
    fate: str


@dataclass(frozen=True)
class TrackingResult:
    """Decisions of tracking pass 1.

    Attributes
    ----------
    luts : tuple of (n_t + 1,) ndarray of int64
        Per frame, component label -> track id; ``lut[0] == 0``. In
        ``upstream`` mode unlinked components map to 0 as well. Read-only.
    tracks : tuple of Track
        Lineage records, ascending by ``cell``.
    max_id : int
        Largest track id (0 without tracks).
    label_dtype : numpy.dtype
        uint16 if ``max_id <= 65535``, otherwise uint32 (algorithms.md §4.6).
    shape : tuple of int
        ``(T, Y, X)`` of the tracked stack; ``(0, 0, 0)`` if no frame was
        pushed.
    mode : {'lineage', 'upstream'}
        Tracking mode used.
    connectivity : {4, 8}
        Connectivity used; pass 2 must use the same.
    cuts : tuple of (k_t,) ndarray of int64
        Per frame, the flat indices of the mask pixels that pass 1 cleared to
        split components joining established tracks (``split_merged_min_frames``;
        mostly empty). Pass 2 must clear them too. Read-only.
    """

    luts: tuple[Int64Array, ...]
    tracks: tuple[Track, ...]
    max_id: int
    label_dtype: np.dtype[np.unsignedinteger[Any]]
    shape: tuple[int, int, int]
    mode: str
    connectivity: int
    cuts: tuple[Int64Array, ...] = ()


def lineage_table(result: TrackingResult, *, fov: int) -> pd.DataFrame:
    """Lineage table of one FOV (algorithms.md §4.7).

    Parameters
    ----------
    result : TrackingResult
        Output of pass 1.
    fov : int
        FOV index, written in the ``fov`` column.

    Returns
    -------
    pandas.DataFrame
        Columns ``fov, cell, parent, first_frame, last_frame, n_frames,
        n_gap_frames, n_merged`` (int64) and ``fate`` (str), one row per
        track, sorted by ``cell``. No rows if there are no tracks.

    Raises
    ------
    TypeError, ValueError
        If `fov` is not a non-negative integer.
    """
    fov = check_int("fov", fov, minimum=0)
    tracks = sorted(result.tracks, key=lambda tr: tr.cell)
    n = len(tracks)
    data: dict[str, Any] = {"fov": np.full(n, fov, dtype=np.int64)}
    for name in LINEAGE_COLUMNS[1:-1]:
        data[name] = np.array([getattr(tr, name) for tr in tracks], dtype=np.int64)
    data["fate"] = [tr.fate for tr in tracks]
    return pd.DataFrame(data, columns=list(LINEAGE_COLUMNS))


def write_lineage_csv(df: pd.DataFrame, fh: IO[str]) -> None:
    r"""Write a lineage table as CSV (algorithms.md §4.7).

    Parameters
    ----------
    df : pandas.DataFrame
        A table from :func:`lineage_table`.
    fh : text file
        Open, writable text handle (open files with ``newline=""`` so that
        the ``\n`` line endings are kept on every platform).

    Raises
    ------
    ValueError
        If the columns are not those of :data:`LINEAGE_COLUMNS` in order, or
        an integer column holds non-integral values.

    Notes
    -----
    One header line, comma-separated, ``\n`` line endings, no index,
    integers as ``%d``. The output depends only on the table.
    """
    if list(df.columns) != list(LINEAGE_COLUMNS):
        raise ValueError(
            f"df must have the columns {list(LINEAGE_COLUMNS)!r} in this order, "
            f"got {list(df.columns)!r}"
        )
    out = pd.DataFrame(
        {name: _as_int64(df[name], name) for name in LINEAGE_COLUMNS[:-1]}
    )
    out["fate"] = df["fate"].astype(str).to_numpy()
    out.to_csv(fh, index=False, lineterminator="\n")


def _as_int64(column: pd.Series[Any], name: str) -> Int64Array:
    values: npt.NDArray[Any] = np.asarray(column.to_numpy())
    if values.dtype.kind == "b":
        raise ValueError(f"column {name!r} must hold integers, got bool")
    return integral_int64(values, name)
