"""Per-cell traces: features per frame, territories, the table and its CSV (§5).

:func:`frame_features` measures every cell of one track-labelled frame in a
single O(P) pass; :func:`build_traces` joins the frames with the lineage
table into the long-format traces table and sets the ``good`` flag;
:func:`write_traces_csv` writes that table in the fixed CSV format of §5.4.

Modules
-------
territory
    :func:`~pyama_steps.traces.territory.grow_territories`: each cell's mask
    grown into the background around it, the pixels its total sums over.
features
    :class:`FrameFeatures` and :func:`frame_features` (§5.3).
table
    :func:`build_traces` and :func:`trace_columns` (§5.2, §5.4).
writer
    :func:`write_traces_csv` (§5.4).

Imports: numpy, scipy, pandas and, from the package, only ``_typing``,
``_validate`` and ``_arrays``; nothing here reads or writes files by path (the
CSV writer takes an open handle).
"""

from __future__ import annotations

from pyama_steps.traces.features import FrameFeatures, frame_features
from pyama_steps.traces.table import (
    BASE_COLUMNS,
    FEATURES_FL,
    FEATURES_PC,
    build_traces,
    trace_columns,
)
from pyama_steps.traces.writer import write_traces_csv

__all__ = [
    "BASE_COLUMNS",
    "FEATURES_FL",
    "FEATURES_PC",
    "FrameFeatures",
    "build_traces",
    "frame_features",
    "trace_columns",
    "write_traces_csv",
]
