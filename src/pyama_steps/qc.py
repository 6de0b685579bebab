"""Quality-control figures and the run summary for Snakemake's HTML report.

The figure builders take arrays and DataFrames and return a matplotlib
:class:`~matplotlib.figure.Figure` drawn with the Agg canvas (no pyplot, no
global backend state). The writers read only the frames they show, one at a
time (algorithms.md §7.4), and save PNGs atomically with no timestamp or
software version in their metadata, so the same inputs give the same bytes.

Per FOV there are three figures: the phase-contrast frame at a few time points
with cell outlines and track ids (:func:`overlay_figure`), the background that
was subtracted from each fluorescence channel at the same time points
(:func:`background_figure`) and the traces of all and of the good cells
(:func:`traces_figure`). Per run, :func:`summary_table` lists every FOV's
status, cells, good cells and frames from the manifest (algorithms.md §6.2).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from pyama_steps.background import CorrectedReader
from pyama_steps.io import NpyFrameReader, atomic_output, atomic_write_text

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

#: Columns of :func:`summary_table`, in order.
SUMMARY_COLUMNS: Final = (
    "fov",
    "status",
    "cells",
    "good_cells",
    "frames",
    "warnings",
    "step",
    "message",
    "log",
    "checks",
)

_DPI: Final = 100
#: Width of one image panel in inches; two panels side by side and a colour
#: bar stay under ~1000 px, so a figure fits the report's content pane.
_PANEL_IN: Final = 4.0
_GOOD_COLOUR: Final = "#ffd23f"
_ID_COLOUR: Final = "#ffffff"
_N_OUTLINE_COLOURS: Final = 20


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def pick_frames(n_frames: int, *, n: int = 4) -> list[int]:
    """Return up to ``n`` frame indices evenly spread from first to last.

    Parameters
    ----------
    n_frames : int
        Frames in the stack, at least 1.
    n : int, optional
        How many time points to show, at least 1.

    Returns
    -------
    list of int
        Sorted, unique indices; always contains 0 and ``n_frames - 1``
        when ``n >= 2``.

    Raises
    ------
    ValueError
        If ``n_frames`` or ``n`` is below 1.

    Examples
    --------
    >>> pick_frames(24)
    [0, 8, 15, 23]
    >>> pick_frames(2)
    [0, 1]
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be at least 1, got {n_frames!r}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n!r}")
    if n == 1:
        return [0]
    picks = np.rint(np.linspace(0, n_frames - 1, n)).astype(int)
    return sorted({int(t) for t in picks})


def _new_figure(width_in: float, height_in: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _display_range(
    values: npt.NDArray[Any], lo: float, hi: float
) -> tuple[float, float]:
    """Percentile display range of the finite values; a constant image gets ±1."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    vmin, vmax = (float(v) for v in np.percentile(finite, [lo, hi]))
    if vmax <= vmin:  # a constant frame: any non-empty range shows it
        return vmin - 1.0, vmin + 1.0
    return vmin, vmax


def _outline_colours() -> npt.NDArray[np.float32]:
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return np.asarray(
        [cmap(i % cmap.N) for i in range(_N_OUTLINE_COLOURS)], dtype=np.float32
    )


def _outline_rgba(
    labels: npt.NDArray[np.integer[Any]], *, thickness: int
) -> npt.NDArray[np.float32]:
    """RGBA image of each cell's inner boundary, coloured by track id."""
    from scipy import ndimage
    from skimage.segmentation import find_boundaries

    edge = find_boundaries(labels, mode="inner")  # type: ignore[no-untyped-call]
    ids = np.where(edge, labels, 0)
    if thickness > 1:
        # Frames larger than the panel are shown downsampled; a 1-px outline
        # would drop out, so the outline is widened to ~1 screen pixel.
        ids = ndimage.grey_dilation(ids, size=(thickness, thickness))
    rgba = np.zeros((*labels.shape, 4), dtype=np.float32)
    mask = ids > 0
    rgba[mask] = _outline_colours()[ids[mask].astype(np.int64) % _N_OUTLINE_COLOURS]
    return rgba


def _grid(n: int) -> tuple[int, int]:
    """Rows and columns of ``n`` image panels: two columns from four panels on."""
    cols = n if n <= 3 else 2
    return -(-n // cols), cols


def _panel_size(shape: tuple[int, int]) -> tuple[float, float]:
    """Width and height in inches of one image panel of a ``(Y, X)`` frame."""
    y, x = shape
    return _PANEL_IN, _PANEL_IN * y / x


# --------------------------------------------------------------------------
# figure builders
# --------------------------------------------------------------------------


def overlay_figure(
    phase: Sequence[npt.NDArray[Any]],
    labels: Sequence[npt.NDArray[np.integer[Any]]],
    *,
    frames: Sequence[int],
    times_min: Sequence[float],
    cells: pd.DataFrame,
    title: str = "",
) -> Any:
    """Draw phase-contrast frames with cell outlines and track ids.

    Parameters
    ----------
    phase : sequence of (Y, X) ndarray
        Phase-contrast frames, any real dtype.
    labels : sequence of (Y, X) ndarray of int
        The track-labelled frames (``seg_labeled``), same length and shapes.
    frames : sequence of int
        Frame index of each panel.
    times_min : sequence of float
        Time of each panel in minutes.
    cells : DataFrame
        Rows of the traces CSV (algorithms.md §5.4) with at least ``frame``,
        ``cell``, ``good``, ``position_x`` and ``position_y``; the ids are
        written at the centroids of the rows of each panel's frame.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per frame; outlines are coloured by track id (a 20-colour
        cycle), ids of good cells are yellow, the others white.

    Raises
    ------
    ValueError
        If the sequences differ in length or a labels frame does not match
        its phase frame.
    """
    n = len(phase)
    if not n or not len(labels) == len(frames) == len(times_min) == n:
        raise ValueError(
            f"phase, labels, frames and times_min must have the same non-zero "
            f"length, got {n}, {len(labels)}, {len(frames)}, {len(times_min)}"
        )
    shape = phase[0].shape
    for t, (p, lab) in enumerate(zip(phase, labels, strict=True)):
        if p.shape != shape or lab.shape != shape:
            raise ValueError(
                f"panel {t}: phase {p.shape!r} and labels {lab.shape!r} must both "
                f"have the shape {shape!r} of the first phase frame"
            )
    from matplotlib import patheffects

    rows, cols = _grid(n)
    pw, ph = _panel_size(shape)
    fig = _new_figure(cols * pw, rows * (ph + 0.35) + (0.4 if title else 0.0))
    axes = fig.subplots(rows, cols, squeeze=False)
    # One screen pixel of the panel covers `zoom` frame pixels.
    zoom = max(shape) / (_PANEL_IN * _DPI)
    thickness = max(1, int(np.ceil(zoom)))
    stroke = [patheffects.withStroke(linewidth=1.6, foreground="black")]
    by_frame = {int(f): g for f, g in cells.groupby("frame", sort=True)}
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        vmin, vmax = _display_range(np.asarray(phase[i], dtype=np.float64), 0.5, 99.5)
        ax.imshow(phase[i], cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.imshow(
            _outline_rgba(labels[i], thickness=thickness), interpolation="nearest"
        )
        rows_t = by_frame.get(int(frames[i]), cells.iloc[0:0])
        for cell, x, y, good in zip(
            rows_t["cell"],
            rows_t["position_x"],
            rows_t["position_y"],
            rows_t["good"],
            strict=True,
        ):
            ax.text(
                float(x),
                float(y),
                str(int(cell)),
                color=_GOOD_COLOUR if bool(good) else _ID_COLOUR,
                fontsize=6.5,
                fontweight="bold" if bool(good) else "normal",
                ha="center",
                va="center",
                path_effects=stroke,
                clip_on=True,
            )
        ax.set_title(
            f"frame {int(frames[i])} · {float(times_min[i]):.1f} min · "
            f"{len(rows_t)} cells",
            fontsize=9,
        )
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def background_figure(
    backgrounds: Sequence[Sequence[npt.NDArray[Any]]],
    *,
    frames: Sequence[int],
    times_min: Sequence[float],
    channel_labels: Sequence[str],
    title: str = "",
) -> Any:
    """Draw the background estimate of each fluorescence channel at a few frames.

    Parameters
    ----------
    backgrounds : sequence of sequence of (Y, X) ndarray
        ``backgrounds[c][i]`` is the background of channel ``c`` at panel
        ``i`` (float, counts). An empty sequence draws a note instead.
    frames : sequence of int
        Frame index of each column.
    times_min : sequence of float
        Time of each column in minutes.
    channel_labels : sequence of str
        Row label of each channel, e.g. ``"ch 1 (GFP)"``.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        One row per channel with a shared colour scale (1st-99th percentile
        of the shown frames) and a colour bar in counts.

    Raises
    ------
    ValueError
        If the numbers of channels, labels, frames and panels disagree.
    """
    if len(backgrounds) != len(channel_labels):
        raise ValueError(
            f"{len(backgrounds)} background channel(s) for "
            f"{len(channel_labels)} channel label(s)"
        )
    n = len(frames)
    if len(times_min) != n or any(len(b) != n for b in backgrounds):
        raise ValueError(
            f"every channel needs one frame per column: {n} frame(s), "
            f"{len(times_min)} time(s), panels {[len(b) for b in backgrounds]}"
        )
    if not backgrounds:
        fig = _new_figure(6.0, 1.2)
        fig.text(0.5, 0.5, "no fluorescence channel", ha="center", va="center")
        return fig
    shape = backgrounds[0][0].shape
    pw, ph = _panel_size(shape)
    # Columns are narrower than the overlay's so that all time points of a
    # channel fit in one row.
    scale = min(1.0, 2.1 / max(n, 1))
    fig = _new_figure(
        n * pw * scale + 0.9,
        len(backgrounds) * (ph * scale + 0.45) + (0.4 if title else 0.0),
    )
    axes = fig.subplots(len(backgrounds), n, squeeze=False)
    for c, (panels, label) in enumerate(zip(backgrounds, channel_labels, strict=True)):
        stacked = np.concatenate(
            [np.asarray(p, dtype=np.float64).ravel() for p in panels]
        )
        vmin, vmax = _display_range(stacked, 1.0, 99.0)
        image = None
        for i, ax in enumerate(axes[c]):
            image = ax.imshow(
                panels[i], cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest"
            )
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(
                f"frame {int(frames[i])} · {float(times_min[i]):.1f} min", fontsize=8
            )
            if i == 0:
                ax.set_ylabel(label, fontsize=9)
        bar = fig.colorbar(image, ax=list(axes[c]), shrink=0.9, pad=0.02)
        bar.set_label("background (counts)", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def _trace_segments(
    df: pd.DataFrame, column: str
) -> tuple[list[npt.NDArray[np.float64]], list[int]]:
    segments: list[npt.NDArray[np.float64]] = []
    ids: list[int] = []
    for cell, g in df.groupby("cell", sort=True):
        g = g.sort_values("frame", kind="stable")
        segments.append(
            np.column_stack(
                [g["time"].to_numpy(np.float64), g[column].to_numpy(np.float64)]
            )
        )
        ids.append(int(cell))
    return segments, ids


def traces_figure(
    traces: pd.DataFrame,
    *,
    fl_channels: Sequence[int],
    channel_labels: Sequence[str],
    title: str = "",
) -> Any:
    """Plot every cell's mean fluorescence against time: all and good cells.

    Parameters
    ----------
    traces : DataFrame
        The traces of one FOV (algorithms.md §5.4): ``cell``, ``frame``,
        ``time``, ``good`` and ``intensity_mean_ch_{c}`` for each channel.
    fl_channels : sequence of int
        Fluorescence channels, one row of panels each.
    channel_labels : sequence of str
        Label of each channel, e.g. ``"ch 1 (GFP)"``.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Per channel, two panels with a shared y axis: all cells and the cells
        flagged ``good``, one thin line per cell.

    Raises
    ------
    ValueError
        If a channel's ``intensity_mean`` column is missing.
    """
    from matplotlib import colormaps
    from matplotlib.collections import LineCollection

    if len(fl_channels) != len(channel_labels):
        raise ValueError(
            f"{len(fl_channels)} channel(s) for {len(channel_labels)} label(s)"
        )
    if not fl_channels:
        fig = _new_figure(6.0, 1.2)
        fig.text(0.5, 0.5, "no fluorescence channel", ha="center", va="center")
        return fig
    missing = [
        f"intensity_mean_ch_{c}"
        for c in fl_channels
        if f"intensity_mean_ch_{c}" not in traces.columns
    ]
    if missing:
        raise ValueError(f"traces table has no column(s) {missing}")
    cmap = colormaps["tab10"]
    fig = _new_figure(9.4, 3.3 * len(fl_channels) + (0.4 if title else 0.0))
    axes = fig.subplots(len(fl_channels), 2, squeeze=False, sharey="row")
    good = traces["good"].astype(bool) if len(traces) else traces["good"]
    for row, (c, label) in enumerate(zip(fl_channels, channel_labels, strict=True)):
        column = f"intensity_mean_ch_{c}"
        for col, (subset, name) in enumerate(
            ((traces, "all cells"), (traces[good], "good cells"))
        ):
            ax = axes[row, col]
            segments, ids = _trace_segments(subset, column)
            if segments:
                lines = LineCollection(
                    segments,
                    colors=[cmap(i % cmap.N) for i in ids],
                    linewidths=0.7,
                    alpha=0.75,
                )
                ax.add_collection(lines)
                ax.autoscale_view()
            else:
                ax.text(
                    0.5,
                    0.5,
                    f"no {name}",
                    transform=ax.transAxes,
                    ha="center",
                    va="center",
                    color="0.4",
                )
            ax.set_title(f"{label}: {name} (n = {len(segments)})", fontsize=9)
            ax.set_xlabel("time (min)", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(True, linewidth=0.3, alpha=0.5)
            if col == 0:
                ax.set_ylabel("mean intensity, corrected (counts)", fontsize=8)
        if len(traces):
            t = traces["time"].to_numpy(np.float64)
            span = (float(np.nanmin(t)), float(np.nanmax(t)))
            if span[1] > span[0]:
                for ax in axes[row]:
                    ax.set_xlim(*span)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


# --------------------------------------------------------------------------
# run summary
# --------------------------------------------------------------------------


def summary_table(manifest: Mapping[str, Any], meta: Mapping[str, Any]) -> pd.DataFrame:
    """One row per FOV of the run: status, cells, good cells, frames, failure.

    Parameters
    ----------
    manifest : mapping
        The parsed ``processing_results.yaml`` (algorithms.md §6.2).
    meta : mapping
        The parsed ``metadata.json`` (frame counts).

    Returns
    -------
    DataFrame
        Columns :data:`SUMMARY_COLUMNS` in FOV order; ``step``, ``message``
        and ``log`` (the failed job's log, relative to the output directory)
        are empty strings unless the FOV failed. ``warnings`` counts the
        segmentation checks' warnings (algorithms.md §2.8) and ``checks``
        holds them and the notes, ``warning: <message>`` / ``note:
        <message>``, joined by ``" | "``.
    """
    rows = []
    for key, status in sorted(
        manifest["fov_status"].items(), key=lambda kv: int(kv[0])
    ):
        fov_meta = meta.get("fovs", {}).get(str(key), {})
        shape = fov_meta.get("shape_tczyx")
        rows.append(
            {
                "fov": int(key),
                "status": str(status["status"]),
                "cells": int(status.get("n_cells", 0)),
                "good_cells": int(status.get("n_good", 0)),
                "frames": int(shape[0]) if shape else 0,
                "warnings": len(status.get("warnings", [])),
                "step": str(status.get("step", "")),
                "message": str(status.get("message", "")),
                "log": str(status.get("log", "")),
                "checks": " | ".join(_check_lines(status)),
            }
        )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _check_lines(status: Mapping[str, Any]) -> list[str]:
    return [
        f"{level}: {item['message']}"
        for level, key in (("warning", "warnings"), ("note", "notes"))
        for item in status.get(key, [])
    ]


def _totals(table: pd.DataFrame) -> dict[str, int]:
    ok = table["status"] == "ok"
    return {
        "FOVs": len(table),
        "ok": int(ok.sum()),
        "failed": int((table["status"] == "failed").sum()),
        "pending": int((table["status"] == "pending").sum()),
        "cells": int(table["cells"].sum()),
        "good cells": int(table["good_cells"].sum()),
        # as in the run's closing line: frames of the FOVs that are done
        "frames": int(table.loc[ok, "frames"].sum()),
        "warnings": int(table["warnings"].sum()),
    }


_CSS: Final = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif;
       margin: 1.5rem; color: #1f2933; }
h1 { font-size: 1.3rem; margin: 0 0 .3rem 0; }
h2 { font-size: 1.1rem; margin: 0 0 .3rem 0; }
p.source { color: #52606d; font-size: .85rem; margin: 0 0 1rem 0; }
table { border-collapse: collapse; margin-bottom: 1.5rem; font-size: .9rem; }
th, td { border: 1px solid #cbd2d9; padding: .3rem .7rem; text-align: right; }
th { background: #f0f4f8; white-space: nowrap; }
.text { text-align: left; }
tr.failed td { background: #ffe3e3; }
tr.pending td { background: #fff3c4; }
tr.warned td { background: #fff3c4; }
ul.checks { font-size: .9rem; max-width: 70rem; }
ul.checks li { margin-bottom: .4rem; }
"""


def summary_html(table: pd.DataFrame, *, title: str = "pyama-steps run summary") -> str:
    """Render :func:`summary_table` as a small standalone HTML page.

    Parameters
    ----------
    table : DataFrame
        The output of :func:`summary_table`.
    title : str, optional
        Page heading.

    Returns
    -------
    str
        HTML with a totals table (FOVs, ok/failed/pending, cells, good cells,
        frames, warnings), the per-FOV table and the segmentation checks'
        warnings and notes; failed FOVs are highlighted with their step,
        error line and log file, FOVs with warnings in yellow. Text is
        HTML-escaped.
    """
    totals = _totals(table)
    head = "".join(f"<th>{html.escape(k)}</th>" for k in totals)
    vals = "".join(f"<td>{v}</td>" for v in totals.values())
    names = {
        "fov": "FOV",
        "status": "status",
        "cells": "cells",
        "good_cells": "good cells",
        "frames": "frames",
        "warnings": "warnings",
        "step": "failed step",
        "message": "error",
        "log": "log",
    }
    text_cols = {"status", "step", "message", "log"}
    shown = [c for c in SUMMARY_COLUMNS if c in names]
    rows = []
    for rec in table.to_dict("records"):
        cells = "".join(
            f'<td class="text">{html.escape(str(rec[c]))}</td>'
            if c in text_cols
            else f"<td>{html.escape(str(rec[c]))}</td>"
            for c in shown
        )
        css = "warned" if rec["status"] == "ok" and rec["warnings"] else rec["status"]
        rows.append(f'<tr class="{html.escape(str(css))}">{cells}</tr>')
    fov_head = "".join(
        f'<th class="text">{names[c]}</th>'
        if c in text_cols
        else f"<th>{names[c]}</th>"
        for c in shown
    )
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n"
        "</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        '<p class="source">From processing_results.yaml (fov_status) and '
        "metadata.json; frames count the FOVs that are ok.</p>\n"
        f"<table>\n<tr>{head}</tr>\n<tr>{vals}</tr>\n</table>\n"
        f"<table>\n<tr>{fov_head}</tr>\n"
        + "\n".join(rows)
        + "\n</table>\n"
        + _checks_html(table)
        + "</body>\n</html>\n"
    )


def _checks_html(table: pd.DataFrame) -> str:
    """Render the segmentation checks' warnings and notes, FOV by FOV (§2.8)."""
    items = [
        f'<li><span class="text">{html.escape(line)}</span></li>'
        for text in table["checks"]
        if text
        for line in str(text).split(" | ")
    ]
    if not items:
        return (
            "<h2>Segmentation checks</h2>\n<p>No warning: every FOV's "
            "segmentation passed the checks of algorithms.md §2.8.</p>\n"
        )
    return (
        "<h2>Segmentation checks</h2>\n"
        "<p>Warnings and notes of the checks of algorithms.md §2.8 (the FOVs "
        "stay ok); each names the frames and the likely fix.</p>\n"
        '<ul class="checks">\n' + "\n".join(items) + "\n</ul>\n"
    )


# --------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------


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
