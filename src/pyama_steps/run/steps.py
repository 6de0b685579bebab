"""Step runners: the file-level side of each workflow rule.

Each function opens its inputs frame by frame, calls the pure algorithms, and
writes its outputs atomically. The rules' ``run:`` blocks pass their inputs,
outputs and params to these functions through :func:`pyama_steps.run.execute.run_step`
and :func:`run_logged`, which sends logging to the job's log file and writes the
job's record (:mod:`pyama_steps.io.job_record`): its figures and, when it failed,
``<ExceptionType>: <message>``, which the manifest reads (algorithms.md §6.2).

Heavy imports (bioio, pandas, scikit-image) happen inside the functions that
need them, so a job only pays for what it uses.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from pyama_steps.io import (
    DISK_FULL,
    NpyFrameReader,
    NpyFrameWriter,
    atomic_write_text,
    disk_full_error,
)
from pyama_steps.io.job_record import clear_job_record, error_line, write_job_record

if TYPE_CHECKING:
    from pyama_steps.segmentation import FrameSegmentation

__all__ = [
    "copy_channel",
    "correct_background",
    "error_line",
    "extract_traces",
    "run_logged",
    "segment_phase",
    "track_cells",
    "write_metadata",
]

log = logging.getLogger("pyama_steps")

T = TypeVar("T")

#: Prefix of the log line with a step's figures (for people: the manifest
#: reads the job's record, :mod:`pyama_steps.io.job_record`).
STATS_PREFIX = "STATS "


def run_logged(
    log_path: str | Path,
    func: Callable[..., T],
    /,
    _job_stats: Callable[[], Mapping[str, float]] | None = None,
    **kwargs: Any,
) -> T:
    """Run one step with logging sent to ``log_path``.

    Parameters
    ----------
    log_path : str or Path
        The job's log file (``snakemake.log[0]``); it is overwritten.
    func : callable
        The step function.
    _job_stats : callable, optional
        Returns further figures of the job (the worker pool of
        :mod:`pyama_steps.run.execute` adds CPU seconds and peak RSS).
    **kwargs
        Its keyword arguments.

    Returns
    -------
    object
        What ``func`` returns.

    Notes
    -----
    The job's record (``<log>.json``, :mod:`pyama_steps.io.job_record`) is
    removed when the job starts and written when it ends: its figures (what
    the step passed to ``_stats``, and ``work_s`` plus those of `_job_stats`)
    and, on an exception, ``<ExceptionType>: <message>`` (first line of the
    message), which the manifest quotes in ``fov_status``. The log has the
    same as lines for people: ``STATS {...}``, or the traceback and
    ``ERROR <ExceptionType>: <message>``. The exception is then re-raised so
    that Snakemake marks the job failed and removes its outputs.
    """
    path = Path(log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clear_job_record(path)
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    )
    # Jobs may run in threads of one process (a cluster job running a group):
    # each log takes only its own thread's records.
    thread = threading.get_ident()
    handler.addFilter(lambda record: record.thread == thread)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    called = time.perf_counter()
    _work.start = None
    figures: dict[str, Any] = {}
    _work.figures = figures
    try:
        result = func(**kwargs)
        end = time.perf_counter()
        work = end - (_work.start if _work.start is not None else called)
        _stats(work_s=round(work, 4), **(_job_stats() if _job_stats else {}))
        write_job_record(path, figures=figures)
        return result
    except BaseException as e:
        if isinstance(e, OSError) and e.errno in DISK_FULL:
            e = disk_full_error(e, log_path=log_path)
        try:  # best effort: on a full disk the log line may not fit either
            stream = handler.stream
            if stream is not None:
                stream.write(traceback.format_exc())
                stream.write(f"ERROR {error_line(e)}\n")
            handler.flush()
        except OSError:
            pass
        # best effort too: without a record the FOV is shown as pending
        with contextlib.suppress(OSError):
            write_job_record(path, figures=figures, error=error_line(e))
        raise
    finally:
        _work.figures = None
        root.removeHandler(handler)
        handler.close()


#: When the running step's work began (per thread), set by _work_begins.
_work = threading.local()


def _work_begins() -> None:
    """Mark the end of a step's imports: what follows counts as its work."""
    _work.start = time.perf_counter()


class _Progress:
    """Log ``frames done / T`` and elapsed time about ten times per job."""

    def __init__(self, label: str, n_frames: int) -> None:
        self.label = label
        self.n = n_frames
        self.start = time.perf_counter()
        self.every = max(1, n_frames // 10)

    def __call__(self, t: int) -> None:
        done = t + 1
        if done % self.every == 0 or done == self.n:
            log.info(
                "%s: %d/%d frames, %.1f s",
                self.label,
                done,
                self.n,
                time.perf_counter() - self.start,
            )


def _stats(**values: Any) -> None:
    """Add figures to the running job's record, and log them as a STATS line."""
    figures = getattr(_work, "figures", None)
    if figures is not None:
        figures.update(values)
    log.info("%s%s", STATS_PREFIX, json.dumps(values, sort_keys=True))


# --------------------------------------------------------------------------
# ingest
# --------------------------------------------------------------------------


def write_metadata(
    *, input_path: str, output: str, metadata: Mapping[str, Any], checksum: str
) -> None:
    """Write ``metadata.json``: the run plan plus the input's identity (§1.3)."""
    from pyama_steps.io import file_identity
    from pyama_steps.io.integrity import input_fingerprint

    log.info("identifying %s (%s)", input_path, checksum)
    identity = {
        "path": input_path,
        **file_identity(input_path, method=checksum),
        **input_fingerprint(input_path),
    }
    content = {"input": identity, **metadata}
    atomic_write_text(output, json.dumps(content, indent=1, ensure_ascii=True) + "\n")


def copy_channel(
    *,
    input_path: str,
    output: str,
    fov: int,
    channel: int,
    z_mode: str,
    z_plane: int,
    rgb: str,
    dtype_policy: str,
    scale_factor: float | None,
    scale_offset: float,
    plane_index: str | None = None,
) -> dict[str, int]:
    """Copy one FOV x channel to a uint16 (T, Y, X) ``.npy`` stack (§1.6).

    ``plane_index`` is the run's index of plane offsets
    (:mod:`pyama_steps.io.plane_index`); without a usable one the planes are
    read through bioio.

    Returns
    -------
    dict
        ``{'clipped_px': n, 'nan_px': n}`` summed over frames.
    """
    from pyama_steps.io import open_plane_reader
    from pyama_steps.io.ingest import ZAccumulator, rgb_to_gray, to_uint16

    _work_begins()
    reader = open_plane_reader(input_path, fov, channel, plane_index=plane_index)
    n_t, n_z = reader.n_t, reader.n_z
    z_index = z_plane % n_z if z_mode == "plane" else None
    if z_mode == "plane" and not -n_z <= z_plane < n_z:
        raise ValueError(f"ingest.z_plane = {z_plane} is outside [-{n_z}, {n_z})")
    clipped = nan = 0
    writer: NpyFrameWriter | None = None
    progress = _Progress(f"copy fov {fov} channel {channel}", n_t)
    try:
        for t in range(n_t):
            acc = ZAccumulator("plane" if z_index is not None else z_mode)
            for z in [z_index] if z_index is not None else range(n_z):
                try:
                    plane = reader.plane(t, z)
                except Exception as e:
                    raise OSError(
                        f"cannot read FOV {fov}, channel {channel}, frame {t} of "
                        f"{input_path}: {type(e).__name__}: {str(e).rstrip('.')}. "
                        "The file is "
                        "probably truncated or corrupt at this plane."
                    ) from e
                if reader.has_samples:
                    plane = (
                        plane[..., 0] if plane.shape[-1] == 1 else rgb_to_gray(plane)
                    )
                acc.add(plane)
            try:
                converted = to_uint16(
                    acc.result(),
                    policy=dtype_policy,
                    scale_factor=scale_factor,
                    scale_offset=scale_offset,
                )
            except (TypeError, ValueError) as e:
                raise type(e)(f"FOV {fov}, channel {channel}, frame {t}: {e}") from e
            if writer is None:
                writer = NpyFrameWriter(
                    output, (n_t, *converted.pixels.shape), np.uint16
                )
            writer.write(t, converted.pixels)
            clipped += converted.clipped
            nan += converted.nan
            progress(t)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        reader.close()
    if writer is None:  # T = 0 is rejected at inspect; keep the invariant anyway
        raise ValueError(f"FOV {fov} has no frames")
    writer.close()
    if clipped or nan:
        log.warning("clipped %d pixel(s), %d NaN pixel(s) set to 0", clipped, nan)
    _stats(clipped_px=clipped, nan_px=nan)
    return {"clipped_px": clipped, "nan_px": nan}


# --------------------------------------------------------------------------
# segment
# --------------------------------------------------------------------------


def segment_phase(
    *, pc: str, output: str, params: Mapping[str, Any], stats: str | None = None
) -> None:
    """Segment a phase-contrast stack frame by frame with ``segmentation.method``.

    The method (:func:`pyama_steps.segmentation.get_method`) builds its
    options from `params` (the ``segmentation`` section), may prepare them
    from a few frames of the FOV (``window: auto``, §2.10), and gives each
    frame's mask and log line. With `stats`, also write the per-frame figures
    of the segmentation checks (§2.8) there as JSON, after the mask stack is
    complete.
    """
    from pyama_steps.segmentation import get_method
    from pyama_steps.segmentation.stats import SEG_STATS_FIELDS, stats_json

    _work_begins()
    method = get_method(params["method"])
    options = method.options(params)
    columns: dict[str, list[float]] = {f: [] for f in SEG_STATS_FIELDS}
    with (
        NpyFrameReader(pc) as reader,
        NpyFrameWriter(output, reader.shape, np.bool_) as out,
    ):
        if method.prepare is not None:
            options, lines = method.prepare(options, len(reader), reader.read)
            for line in lines:
                log.info("%s", line)
        progress = _Progress(f"segment {Path(pc).name}", len(reader))
        for t in range(len(reader)):
            frame = reader.read(t)
            result = method.segment(frame, options)
            out.write(t, result.mask)
            log.info("frame %d %s", t, result.log_line)
            if stats is not None:
                for name, value in _segment_figures(frame, result).items():
                    columns[name].append(value)
            progress(t)
    if stats is not None:
        atomic_write_text(stats, stats_json(columns, fields=SEG_STATS_FIELDS))


def _segment_figures(frame: np.ndarray, result: FrameSegmentation) -> dict[str, float]:
    """One frame's figures for the segmentation checks (§2.8)."""
    from pyama_steps.segmentation.stats import phase_statistics

    stats = phase_statistics(frame, result.mask, noise=result.noise)
    return {
        "minimum": stats.minimum,
        "maximum": stats.maximum,
        "threshold": result.threshold,
        "foreground_fraction": result.foreground_fraction,
        "noise": result.noise,
        "bright_fraction": stats.bright_fraction,
    }


# --------------------------------------------------------------------------
# background
# --------------------------------------------------------------------------

_BG_KEYS = (
    "method",
    "mask_dilation_px",
    "tile_size",
    "tile_overlap",
    "min_background_px",
    "spline_degree",
    "block_px",
    "knot_spacing_px",
    "smoothing",
    "exclude_zero",
    "fallback_percentile",
)


def _check_shapes(**readers: NpyFrameReader) -> None:
    shapes = {name: r.shape for name, r in readers.items()}
    if len(set(shapes.values())) > 1:
        listing = ", ".join(f"{readers[n].path.name} {s}" for n, s in shapes.items())
        raise ValueError(f"stacks differ in (T, Y, X): {listing}")


class _BackgroundStream:
    """Background estimates of one channel, frame after frame (§3.4)."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        from pyama_steps import background

        self._bg = background
        self.options = {k: params[k] for k in _BG_KEYS}
        self.weight = float(params["weight"])
        self.previous: np.ndarray | None = None
        self.fallback_frames = 0

    def frame(self, raw: np.ndarray, mask: np.ndarray) -> tuple[Any, np.ndarray]:
        """Return ``(estimate, corrected)`` of one frame (a ``BackgroundFrame``)."""
        result = self._bg.estimate_background(
            raw, mask, previous_values=self.previous, **self.options
        )
        if result.fallback:
            self.fallback_frames += 1
        # Only a frame with usable background may be reused by a later frame
        # (rule 4.2 of algorithms.md §3.4): carry_values is the latest such.
        self.previous = result.carry_values
        corrected = self._bg.correct_frame(raw, result.background, weight=self.weight)
        return result, corrected


def correct_background(
    *,
    fl: str,
    seg: str,
    model: str,
    corrected: str | None,
    background: str | None,
    params: Mapping[str, Any],
) -> int:
    """Estimate the background of one fluorescence stack and write its model (§3).

    `model` gets each frame's background model (``fl_background_model``, §3.6),
    from which later steps compute the corrected frames
    (``corrected.CorrectedReader``); `corrected` and `background`, when given,
    get the float32 stacks as well.

    Returns
    -------
    int
        Frames that used a fallback rule (§3.4 step 4).
    """
    from pyama_steps.background import model_shape

    stream = _BackgroundStream(params)
    _work_begins()
    with NpyFrameReader(fl) as raw, NpyFrameReader(seg) as masks:
        _check_shapes(fl=raw, seg=masks)
        n_t, y, x = raw.shape
        a, b = model_shape(
            (y, x),
            method=params["method"],
            knot_spacing_px=float(params["knot_spacing_px"]),
            tile_size=int(params["tile_size"]),
            tile_overlap=float(params["tile_overlap"]),
        )
        writers = {"model": NpyFrameWriter(model, (n_t, a, b), np.float64)}
        writers.update(
            (name, NpyFrameWriter(path, raw.shape, np.float32))
            for name, path in (("background", background), ("corrected", corrected))
            if path
        )
        try:
            progress = _Progress(f"background {Path(fl).name}", len(raw))
            for t in range(len(raw)):
                est, corr = stream.frame(raw.read(t), masks.read(t))
                writers["model"].write(t, est.model)
                if "background" in writers:
                    writers["background"].write(t, est.background)
                if "corrected" in writers:
                    writers["corrected"].write(t, corr)
                progress(t)
        except BaseException:
            for w in writers.values():
                w.abort()
            raise
        for w in writers.values():
            w.close()
    if stream.fallback_frames:
        log.warning("%d frame(s) used a background fallback", stream.fallback_frames)
    _stats(background_fallback_frames=stream.fallback_frames)
    return stream.fallback_frames


# --------------------------------------------------------------------------
# track
# --------------------------------------------------------------------------


def track_cells(
    *,
    seg: str,
    labeled: str,
    lineage: str,
    fov: int,
    params: Mapping[str, Any],
    stats: str | None = None,
) -> None:
    """Track cells through a mask stack and write labels and lineage (§4).

    With `stats`, also write each frame's number of objects and median object
    area (the figures of the segmentation checks, §2.8) there as JSON.
    """
    from pyama_steps.io import atomic_output
    from pyama_steps.segmentation.stats import (
        CELL_STATS_FIELDS,
        object_statistics,
        stats_json,
    )
    from pyama_steps.tracking import (
        LineageTracker,
        lineage_table,
        relabel_frame,
        write_lineage_csv,
    )

    _work_begins()
    tracker = LineageTracker(**params)
    columns: dict[str, list[float]] = {f: [] for f in CELL_STATS_FIELDS}
    with NpyFrameReader(seg) as masks:
        progress = _Progress(f"track fov {fov} (pass 1)", len(masks))
        for t in range(len(masks)):
            tracker.push(masks.read(t))
            n_objects, median_area, pixel_median = object_statistics(tracker.last_areas)
            columns["n_objects"].append(n_objects)
            columns["median_area_px"].append(median_area)
            columns["pixel_median_area_px"].append(pixel_median)
            progress(t)
        result = tracker.finish()
        log.info("%d track(s), max id %d", len(result.tracks), result.max_id)
        with NpyFrameWriter(labeled, masks.shape, result.label_dtype) as out:
            for t in range(len(masks)):
                out.write(
                    t,
                    relabel_frame(
                        masks.read(t),
                        result.luts[t],
                        connectivity=params["connectivity"],
                        dtype=result.label_dtype,
                        cut=result.cuts[t],
                    ),
                )
    table = lineage_table(result, fov=fov)
    with (
        atomic_output(lineage) as tmp,
        open(tmp, "w", encoding="utf-8", newline="\n") as fh,
    ):
        write_lineage_csv(table, fh)
    if stats is not None:
        atomic_write_text(stats, stats_json(columns, fields=CELL_STATS_FIELDS))


# --------------------------------------------------------------------------
# extract
# --------------------------------------------------------------------------


def extract_traces(
    *,
    labeled: str,
    lineage: str,
    output: str,
    fov: int,
    pc_channel: int,
    fl_channels: Sequence[int],
    fl: Sequence[str],
    model: Sequence[str],
    times_min: Sequence[float],
    params: Mapping[str, Any],
    background_params: Mapping[str, Any],
) -> int:
    """Extract per-cell, per-frame features of one FOV to its traces CSV (§5).

    The corrected fluorescence is the raw stack minus the surface of its
    background model (``corrected.CorrectedReader``, §3.6): bit for bit what
    the background step computed, whether or not it wrote corrected stacks.

    Returns
    -------
    int
        Number of cells (tracks) with at least one row.
    """
    import pandas as pd

    from pyama_steps.background import CorrectedReader
    from pyama_steps.io import atomic_output
    from pyama_steps.traces import build_traces, frame_features, write_traces_csv

    _work_begins()
    if len(model) != len(fl):
        raise ValueError(f"{len(fl)} fluorescence stack(s) but {len(model)} model(s)")
    readers: dict[str, NpyFrameReader] = {"labels": NpyFrameReader(labeled)}
    channels: list[CorrectedReader] = []
    try:
        for i, path in enumerate(fl):
            channels.append(
                CorrectedReader(fl=path, model=model[i], params=background_params)
            )
            readers[f"fl{i}"] = channels[-1].raw_reader
        _check_shapes(**readers)
        n_t = readers["labels"].shape[0]
        if len(times_min) != n_t:
            raise ValueError(
                f"{len(times_min)} frame times for a stack of {n_t} frames"
            )
        features = []
        progress = _Progress(f"extract fov {fov}", n_t)
        for t in range(n_t):
            raw = [c.raw(t) for c in channels]
            corr = [c.corrected(t, raw[i]) for i, c in enumerate(channels)]
            features.append(
                frame_features(
                    readers["labels"].read(t),
                    fl_raw=raw,
                    fl_corrected=corr,
                    erosion_px=int(params["erosion_px"]),
                    reach_px=int(params["total_reach_px"]),
                )
            )
            progress(t)
        shape = readers["labels"].shape
    finally:
        readers["labels"].close()
        for c in channels:
            c.close()
    table = pd.read_csv(lineage)
    df = build_traces(
        features,
        fov=fov,
        frames=list(range(n_t)),
        times_min=list(times_min),
        lineage=table,
        shape=shape,
        pc_channel=pc_channel,
        fl_channels=list(fl_channels),
        min_frames=int(params["min_frames"]),
        border_px=int(params["border_px"]),
        exclude_merged=bool(params["exclude_merged"]),
    )
    with (
        atomic_output(output) as tmp,
        open(tmp, "w", encoding="utf-8", newline="\n") as fh,
    ):
        write_traces_csv(df, fh)
    n_cells = int(df["cell"].nunique()) if len(df) else 0
    n_good = int(df.loc[df["good"], "cell"].nunique()) if len(df) else 0
    log.info("fov %d: %d cell(s), %d good, %d row(s)", fov, n_cells, n_good, len(df))
    _stats(n_cells=n_cells, n_good=n_good)
    return n_cells
