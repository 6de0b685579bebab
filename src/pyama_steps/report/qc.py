"""Quality-control writers: the figures and the run summary for Snakemake's report.

The writers read only the frames they show, one at a time (algorithms.md
§7.4), and save PNGs atomically with no timestamp or software version in their
metadata, so the same inputs give the same bytes. Per FOV,
:func:`write_fov_qc` draws the three figures of
:mod:`pyama_steps.report.figures`; per run, :func:`write_summary` writes the
table of :mod:`pyama_steps.report.summary` (algorithms.md §6.2). This module
re-exports the builders, so ``pyama_steps.report.qc`` is the one name to import.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from pyama_steps.background import CorrectedReader
from pyama_steps.io import NpyFrameReader, atomic_output, atomic_write_text
from pyama_steps.report.figures import (
    _DPI,
    background_figure,
    overlay_figure,
    pick_frames,
    traces_figure,
)
from pyama_steps.report.summary import (
    SUMMARY_COLUMNS,
    _totals,
    summary_html,
    summary_table,
)

__all__ = [
    "SUMMARY_COLUMNS",
    "background_figure",
    "overlay_figure",
    "pick_frames",
    "save_png",
    "summary_html",
    "summary_table",
    "traces_figure",
    "write_fov_qc",
    "write_summary",
]


log = logging.getLogger(__name__)


def save_png(fig: Any, path: str | Path) -> None:
    """Save ``fig`` as a PNG atomically, without timestamp or software metadata.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    path : str or Path
        Output file.
    """
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI, metadata={"Software": None})


def _channel_label(channel: int, names: Mapping[int, str]) -> str:
    name = names.get(channel, "")
    return f"ch {channel} ({name})" if name else f"ch {channel}"


def _check_stack(reader: NpyFrameReader, shape: tuple[int, int, int]) -> None:
    if reader.shape != shape:
        raise ValueError(
            f"{reader.path.name} has shape {reader.shape!r}, expected the phase "
            f"stack's {shape!r}"
        )


def write_fov_qc(
    *,
    pc: str,
    labeled: str,
    traces: str,
    fl: Sequence[str],
    model: Sequence[str],
    background_params: Mapping[str, Any],
    fl_channels: Sequence[int],
    channel_names: Mapping[int, str],
    fov: int,
    times_min: Sequence[float],
    overlay_png: str,
    background_png: str,
    traces_png: str,
    n_timepoints: int = 4,
) -> list[int]:
    """Write the three QC figures of one FOV.

    Parameters
    ----------
    pc, labeled : str
        The FOV's phase-contrast and ``seg_labeled`` stacks.
    traces : str
        The FOV's traces CSV.
    fl : sequence of str
        Raw fluorescence stacks, one per channel of ``fl_channels``.
    model : sequence of str
        Their ``fl_background_model`` stacks (§3.6). The background shown is
        ``raw - corrected``: the surface times ``background.weight``, i.e.
        what was subtracted.
    background_params : mapping
        The ``background`` configuration section the models were made with.
    fl_channels : sequence of int
        Fluorescence channel indices.
    channel_names : mapping of int to str
        Channel names for the labels.
    fov : int
        FOV index (titles).
    times_min : sequence of float
        Frame times in minutes.
    overlay_png, background_png, traces_png : str
        Output files.
    n_timepoints : int, optional
        Time points of the image figures.

    Returns
    -------
    list of int
        The frames shown.

    Raises
    ------
    ValueError
        If the stacks differ in shape, ``times_min`` does not match T, or
        the numbers of stacks and channels differ.
    """
    table = pd.read_csv(traces)
    with NpyFrameReader(pc) as pc_r, NpyFrameReader(labeled) as lab_r:
        shape = pc_r.shape
        if shape != lab_r.shape:
            raise ValueError(
                f"phase {pc_r.shape!r} and labels {lab_r.shape!r} differ in (T, Y, X)"
            )
        n_t = len(pc_r)
        if len(times_min) != n_t:
            raise ValueError(f"{len(times_min)} frame times for {n_t} frames")
        frames = pick_frames(n_t, n=n_timepoints)
        times = [float(times_min[t]) for t in frames]
        fig = overlay_figure(
            [pc_r.read(t) for t in frames],
            [lab_r.read(t) for t in frames],
            frames=frames,
            times_min=times,
            cells=table,
            title=f"FOV {fov:03d}: phase contrast, cell outlines and track ids",
        )
    save_png(fig, overlay_png)

    if len(fl) != len(fl_channels):
        raise ValueError(f"{len(fl)} fluorescence stack(s) for channels {fl_channels}")
    if len(model) != len(fl):
        raise ValueError(f"{len(fl)} fluorescence stack(s) but {len(model)} model(s)")
    panels: list[list[npt.NDArray[np.float32]]] = []
    for i in range(len(fl_channels)):
        with CorrectedReader(fl=fl[i], model=model[i], params=background_params) as r:
            _check_stack(r.raw_reader, shape)
            panels.append(
                [r.raw(t).astype(np.float32) - r.corrected(t) for t in frames]
            )
    labels = [_channel_label(c, channel_names) for c in fl_channels]
    source = "raw - corrected"
    save_png(
        background_figure(
            panels,
            frames=frames,
            times_min=times,
            channel_labels=labels,
            title=f"FOV {fov:03d}: background estimate ({source})",
        ),
        background_png,
    )
    n_cells = int(table["cell"].nunique()) if len(table) else 0
    save_png(
        traces_figure(
            table,
            fl_channels=fl_channels,
            channel_labels=labels,
            title=f"FOV {fov:03d}: traces of {n_cells} cells",
        ),
        traces_png,
    )
    log.info("fov %d: QC figures of frames %s", fov, frames)
    return frames


def write_summary(
    *, manifest: str, metadata: str, html_out: str, tsv_out: str
) -> pd.DataFrame:
    """Write the run summary as HTML (for the report) and TSV.

    Parameters
    ----------
    manifest : str
        ``processing_results.yaml``.
    metadata : str
        ``metadata.json``.
    html_out, tsv_out : str
        Output files.

    Returns
    -------
    DataFrame
        The table written (:func:`summary_table`).
    """
    import json

    import yaml

    with open(manifest, encoding="utf-8") as fh:
        man = yaml.safe_load(fh)
    with open(metadata, encoding="utf-8") as fh:
        meta = json.load(fh)
    table = summary_table(man, meta)
    atomic_write_text(html_out, summary_html(table))
    atomic_write_text(tsv_out, table.to_csv(sep="\t", index=False, lineterminator="\n"))
    totals = _totals(table)
    log.info("summary: %s", ", ".join(f"{k} {v}" for k, v in totals.items()))
    return table
