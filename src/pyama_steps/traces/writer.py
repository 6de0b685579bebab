"""The traces table as CSV, in the fixed format of algorithms.md §5.4."""

from __future__ import annotations

import itertools
import re
from typing import IO, Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from pyama_steps._arrays import integral_int64
from pyama_steps.traces.table import BASE_COLUMNS, FEATURES_FL

__all__ = ["write_traces_csv"]

_INT_BASE: Final = frozenset(
    {"fov", "cell", "parent", "frame", "bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"}
)
_PC_RE: Final = re.compile(r"area_ch_(\d+)")
_FL_RE: Final = re.compile(
    r"(intensity_total|intensity_mean|intensity_raw_mean)_ch_(\d+)"
)

# Rows formatted at a time by write_traces_csv (bounds the text held in memory).
_CSV_BLOCK: Final = 8192


def _column_kinds(columns: list[str]) -> list[str]:
    """Kind ('i', 'f', 'b') of each traces column; raise if not the §5.4 layout."""
    n_base = len(BASE_COLUMNS)
    bad = (
        len(columns) < n_base + 1
        or (len(columns) - n_base - 1) % len(FEATURES_FL) != 0
        or tuple(columns[:n_base]) != BASE_COLUMNS
        or _PC_RE.fullmatch(columns[n_base]) is None
    )
    fl: list[int] = []
    if not bad:
        for k in range(n_base + 1, len(columns), len(FEATURES_FL)):
            found = [_FL_RE.fullmatch(c) for c in columns[k : k + len(FEATURES_FL)]]
            if any(m is None for m in found):
                bad = True
                break
            names = tuple(m.group(1) for m in found if m is not None)
            chans = {m.group(2) for m in found if m is not None}
            if names != FEATURES_FL or len(chans) != 1:
                bad = True
                break
            fl.append(int(chans.pop()))
    if bad or any(b <= a for a, b in itertools.pairwise(fl)):
        raise ValueError(
            "df must have the traces columns of algorithms.md §5.4 in order "
            "(see trace_columns), got "
            f"{columns!r}"
        )
    kinds = []
    for name in columns:
        if name == "good":
            kinds.append("b")
        elif name in _INT_BASE or _PC_RE.fullmatch(name):
            kinds.append("i")
        else:
            kinds.append("f")
    return kinds


def _column_values(values: npt.NDArray[Any], kind: str, name: str) -> np.ndarray:
    """Validate one column and convert it to bool, int64 or float64."""
    if kind == "b":
        if values.dtype != np.bool_:
            raise ValueError(
                f"column {name!r} must have dtype bool, got {values.dtype!r}"
            )
        return values
    if kind == "i":
        return integral_int64(values, name)
    return values.astype(np.float64)


def _format_column(values: np.ndarray, kind: str) -> list[str]:
    if kind == "b":
        out: list[str] = np.where(values, "True", "False").tolist()
        return out
    if kind == "i":
        return list(map(str, values.tolist()))
    text = list(map("%.6f".__mod__, values.tolist()))
    for i in np.flatnonzero(np.isnan(values)).tolist():
        text[i] = "NaN"
    return text


def write_traces_csv(df: pd.DataFrame, fh: IO[str]) -> None:
    r"""Write a traces table in the CSV format of algorithms.md §5.4.

    Parameters
    ----------
    df : pandas.DataFrame
        A table from :func:`build_traces` (columns :func:`trace_columns`).
    fh : text file
        Open, writable text handle (open files with ``newline=""`` so that
        the ``\n`` line endings are kept on every platform).

    Raises
    ------
    TypeError
        If `df` is not a DataFrame.
    ValueError
        If the columns are not the §5.4 layout, ``good`` is not bool, or an
        integer column holds non-integral values.

    Notes
    -----
    One header line, comma-separated, ``\n`` line endings, no index;
    integers ``%d``, floats ``%.6f``, ``good`` as ``True``/``False``,
    missing values as ``NaN``. A table without rows gives the header only.
    Values are formatted column by column in blocks of rows, so memory stays
    bounded and the bytes depend only on the table.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__!r}")
    columns = [str(c) for c in df.columns]
    kinds = _column_kinds(columns)
    values = [
        _column_values(df[name].to_numpy(), kind, name)
        for name, kind in zip(columns, kinds, strict=True)
    ]
    fh.write(",".join(columns) + "\n")
    for start in range(0, len(df), _CSV_BLOCK):
        text = [
            _format_column(v[start : start + _CSV_BLOCK], kind)
            for v, kind in zip(values, kinds, strict=True)
        ]
        fh.write("\n".join(map(",".join, zip(*text, strict=True))) + "\n")
