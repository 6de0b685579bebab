"""Quality-control figures: matplotlib figures built from arrays and tables.

The builders take arrays and DataFrames and return a matplotlib
:class:`~matplotlib.figure.Figure` drawn with the Agg canvas (no pyplot, no
global backend state): the phase-contrast frame at a few time points with cell
outlines and track ids (:func:`overlay_figure`), the background subtracted
from a fluorescence channel (:func:`background_figure`) and the traces of all
and of the good cells (:func:`traces_figure`). No file I/O here; the writers
are in :mod:`pyama_steps.report.qc`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "background_figure",
    "overlay_figure",
    "pick_frames",
    "traces_figure",
]

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
