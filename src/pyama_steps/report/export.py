"""Standard exports: OME-Zarr images with cell labels, and the traces as Parquet.

:func:`write_ome_zarr` writes one FOV as an OME-Zarr (NGFF 0.4) that napari
(napari-ome-zarr) and bioio (bioio-ome-zarr) open: the phase contrast and the
background-corrected fluorescence channels as one multiscale ``(t, c, y, x)``
float32 image, and the tracked cells (``seg_labeled``) as a ``(t, y, x)``
multiscale label image under ``labels/cells`` whose values are the track ids.
The writer is ome-zarr-py, the OME reference implementation (docs/exports.md
says why). Pixels are streamed: every stack is read one frame at a time
through a dask array whose chunks are single frames, computed with the
synchronous scheduler, so memory stays at a few frames whatever T is
(algorithms.md §7.4).

:func:`write_traces_parquet` converts the all-FOV ``traces.csv`` to Parquet
when ``pyarrow`` is installed (it is not a dependency).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from glob import escape as glob_escape
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from pyama_steps.io import NpyFrameReader, atomic_output

__all__ = [
    "LABELS_NAME",
    "NGFF_VERSION",
    "export_fov_zarr",
    "have_pyarrow",
    "pyramid_factors",
    "write_ome_zarr",
    "write_traces_parquet",
]

log = logging.getLogger(__name__)

#: OME-NGFF version written: 0.4 (Zarr v2), read by napari-ome-zarr, bioio-ome-zarr
#: and Fiji's MoBIE; 0.5 (Zarr v3) support is still arriving in some readers.
NGFF_VERSION: Final = "0.4"
#: Name of the label image, ``<fov>.ome.zarr/labels/cells``.
LABELS_NAME: Final = "cells"
#: Largest chunk edge in pixels; one chunk never spans more than one frame.
_CHUNK_PX: Final = 1024
#: Display colours of the channels in the ``omero`` block: phase, then FL.
_COLOURS: Final = ("FFFFFF", "00FF00", "FF00FF", "00FFFF", "FF0000", "0000FF")


def have_pyarrow() -> bool:
    """Return whether ``pyarrow`` can be imported (Parquet export)."""
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def pyramid_factors(
    shape: tuple[int, int], *, min_size: int = 256, max_levels: int = 5
) -> list[int]:
    """Downsampling factors of the pyramid levels below full resolution.

    Parameters
    ----------
    shape : tuple of int
        ``(Y, X)`` of a frame.
    min_size : int, optional
        A level is added while its shorter side stays at least this large.
    max_levels : int, optional
        Most levels in total, full resolution included.

    Returns
    -------
    list of int
        ``[2, 4, ...]``; empty for a frame whose shorter side is below
        ``2 * min_size``.

    Examples
    --------
    >>> pyramid_factors((512, 640))
    [2]
    >>> pyramid_factors((2048, 2048))
    [2, 4, 8]
    """
    factors: list[int] = []
    size = min(shape)
    while len(factors) + 1 < max_levels and size // 2 >= min_size:
        size //= 2
        factors.append(2 ** (len(factors) + 1))
    return factors


class _FrameSource:
    """A ``(T, Y, X)`` array-like whose slices are read frame by frame.

    ``dask.array.from_array`` slices it one chunk (one frame) at a time, so a
    stack is never read whole; ``read(t)`` returns frame ``t``.
    """

    def __init__(
        self,
        shape: tuple[int, int, int],
        dtype: npt.DTypeLike,
        read: Callable[[int], npt.NDArray[Any]],
    ) -> None:
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.ndim = 3
        self._read = read

    def __getitem__(self, key: tuple[slice, slice, slice]) -> npt.NDArray[Any]:
        ts, ys, xs = key
        frames = range(*ts.indices(self.shape[0]))
        out = np.empty(
            (len(frames), *np.empty(self.shape[1:], dtype=bool)[ys, xs].shape),
            dtype=self.dtype,
        )
        for i, t in enumerate(frames):
            out[i] = self._read(t)[ys, xs]
        return out


def _dask_stack(source: _FrameSource) -> Any:
    import dask.array as da

    # name=False: a random graph key instead of hashing the reader object
    return da.from_array(  # type: ignore[no-untyped-call]
        source,
        chunks=(1, *source.shape[1:]),
        name=False,
        lock=False,
        meta=np.empty((0, 0, 0), dtype=source.dtype),
    )


def _level_shapes(
    shape: tuple[int, int], factors: Sequence[int]
) -> list[tuple[int, int]]:
    # ome-zarr halves each level from the previous one with floor division
    shapes = [shape]
    for _ in factors:
        y, x = shapes[-1]
        shapes.append((max(1, y // 2), max(1, x // 2)))
    return shapes


def _storage_options(
    shape: tuple[int, int], factors: Sequence[int], *, leading: int
) -> list[dict[str, Any]]:
    """Chunks of each level: one frame (``leading`` axes of 1), at most 1024 px."""
    return [
        {"chunks": (*(1,) * leading, min(y, _CHUNK_PX), min(x, _CHUNK_PX))}
        for y, x in _level_shapes(shape, factors)
    ]


def _window(source: _FrameSource, n: int = 5) -> dict[str, float]:
    """Display window from a few frames: 0.5-99.5th percentile, min and max."""
    picks = sorted({int(t) for t in np.linspace(0, source.shape[0] - 1, n).round()})
    values = np.concatenate([source[t : t + 1, :, :].ravel() for t in picks])
    values = values[np.isfinite(values)].astype(np.float64)
    if values.size == 0:  # an all-NaN channel: any valid window
        return {"min": 0.0, "max": 1.0, "start": 0.0, "end": 1.0}
    lo, hi = (float(v) for v in np.percentile(values, [0.5, 99.5]))
    vmin, vmax = float(values.min()), float(values.max())
    if hi <= lo:  # a constant channel
        hi = lo + 1.0
    return {"min": vmin, "max": max(vmax, hi), "start": lo, "end": hi}


@contextlib.contextmanager
def _atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` if the block succeeds.

    The directory counterpart of :func:`pyama_steps.io.atomic_output`: an
    OME-Zarr that exists is complete (algorithms.md §7.2).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    for stale in final.parent.glob(f"{glob_escape(final.name)}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_ome_zarr(
    output: str | Path,
    *,
    channels: Sequence[tuple[str, _FrameSource]],
    labels: _FrameSource,
    pixel_size_um: tuple[float | None, float | None] = (None, None),
    frame_interval_min: float | None = None,
    label_properties: Sequence[Mapping[str, Any]] | None = None,
) -> None:
    """Write one FOV's channels and labels as an OME-Zarr (:data:`NGFF_VERSION`).

    Parameters
    ----------
    output : str or Path
        The ``.ome.zarr`` directory; replaced atomically.
    channels : sequence of (str, frame source)
        Name and ``(T, Y, X)`` frames of each channel, written as float32 in
        this order on the ``c`` axis.
    labels : frame source
        ``(T, Y, X)`` integer labels (track ids), written under
        ``labels/cells`` as a ``(t, y, x)`` image with the same scales and
        pyramid levels (nearest neighbour).
    pixel_size_um : tuple of (float or None)
        ``(y, x)`` pixel size in µm; unknown sizes are written as 1 with no
        unit.
    frame_interval_min : float, optional
        Scale of the ``t`` axis in minutes.
    label_properties : sequence of mapping, optional
        ``image-label`` properties, one mapping with a ``label-value`` per
        cell (napari shows them under the cursor).

    Raises
    ------
    ValueError
        If there is no channel or the shapes differ.
    """
    import dask
    import dask.array as da
    import zarr

    with warnings.catch_warnings():
        # ome-zarr's writer module builds a deprecated Scaler as a default
        # argument at import; the Scaler is not used here.
        warnings.filterwarnings(
            "ignore",
            message="Call to deprecated class Scaler",
            category=DeprecationWarning,
        )
        from ome_zarr.format import FormatV04, FormatV05
        from ome_zarr.scale import Methods
        from ome_zarr.writer import write_image, write_labels

    shape = _common_shape(channels, labels)
    frame = (shape[1], shape[2])
    factors = pyramid_factors(frame)
    fmt = FormatV04() if NGFF_VERSION == "0.4" else FormatV05()
    scale, units = _axis_scales(pixel_size_um, frame_interval_min)
    omero = _omero(channels)
    image = da.stack(  # type: ignore[no-untyped-call]
        [_dask_stack(source).astype(np.float32) for _, source in channels],
        axis=1,
    )
    cells = _dask_stack(labels)
    label_metadata: dict[str, Any] = {"source": {"image": "../../"}}
    if label_properties is not None:
        label_metadata["properties"] = [dict(p) for p in label_properties]
    with _atomic_dir(output) as tmp, dask.config.set(scheduler="synchronous"):
        root = zarr.open_group(str(tmp), mode="w", zarr_format=fmt.zarr_format)
        write_image(
            image,
            root,
            scale_factors=factors,
            method=Methods.LOCAL_MEAN,
            fmt=fmt,
            axes="tcyx",
            scale=scale,
            axes_units=units or None,
            storage_options=_storage_options(frame, factors, leading=2),
            name="image",
            omero=omero,
        )
        write_labels(
            cells,
            root,
            name=LABELS_NAME,
            scaler=None,
            scale_factors=factors,
            method=Methods.NEAREST,
            fmt=fmt,
            # no channel axis: napari aligns layers on their trailing axes,
            # and the image's channels become separate (t, y, x) layers
            axes="tyx",
            scale={k: v for k, v in scale.items() if k != "c"},
            axes_units=units or None,
            storage_options=_storage_options(frame, factors, leading=1),
            label_metadata=label_metadata,
        )


def _common_shape(
    channels: Sequence[tuple[str, _FrameSource]], labels: _FrameSource
) -> tuple[int, ...]:
    """Return the labels' shape; raise if there is no channel or a shape differs."""
    if not channels:
        raise ValueError("channels is empty; at least the phase channel is needed")
    shape = labels.shape
    for name, source in channels:
        if source.shape != shape:
            raise ValueError(
                f"channel {name!r} has shape {source.shape!r}, the labels {shape!r}"
            )
    return shape


def _axis_scales(
    pixel_size_um: tuple[float | None, float | None],
    frame_interval_min: float | None,
) -> tuple[dict[str, float], dict[str, str]]:
    """Return the ``tcyx`` scales and the units of the axes whose size is known."""
    py, px = pixel_size_um
    scale = {"t": 1.0, "c": 1.0, "y": py or 1.0, "x": px or 1.0}
    units: dict[str, str] = {}
    if py and px:
        units.update(y="micrometer", x="micrometer")
    if frame_interval_min and np.isfinite(frame_interval_min):
        scale["t"] = float(frame_interval_min)
        units["t"] = "minute"
    return scale, units


def _omero(channels: Sequence[tuple[str, _FrameSource]]) -> dict[str, Any]:
    """Return the ``omero`` rendering metadata: a colour and window per channel."""
    return {
        "channels": [
            {
                "label": name,
                "color": _COLOURS[i % len(_COLOURS)],
                "window": _window(source),
                "active": True,
            }
            for i, (name, source) in enumerate(channels)
        ],
        "rdefs": {"model": "color"},
    }


def _label_properties(traces: str) -> list[dict[str, Any]]:
    import pandas as pd

    table = pd.read_csv(traces, usecols=["cell", "parent", "frame", "good"])
    props = []
    for cell, g in table.groupby("cell", sort=True):
        props.append(
            {
                "label-value": int(cell),
                "parent": int(g["parent"].iloc[0]),
                "good": bool(g["good"].iloc[0]),
                "first_frame": int(g["frame"].min()),
                "last_frame": int(g["frame"].max()),
            }
        )
    return props


def export_fov_zarr(
    *,
    pc: str,
    labeled: str,
    traces: str,
    output: str,
    fl_channels: Sequence[int],
    fl: Sequence[str],
    model: Sequence[str],
    background_params: Mapping[str, Any],
    channel_names: Mapping[int, str],
    pc_channel: int,
    pixel_size_um: tuple[float | None, float | None] = (None, None),
    times_min: Sequence[float] = (),
) -> None:
    """Export one FOV's phase, corrected fluorescence and labels to OME-Zarr.

    Parameters
    ----------
    pc, labeled : str
        The FOV's phase-contrast and ``seg_labeled`` stacks.
    traces : str
        The FOV's traces CSV (label properties: parent, good, frames).
    output : str
        ``<OUT>/zarr/fov_NNN.ome.zarr``.
    fl_channels : sequence of int
        Fluorescence channels, in ``c`` order after the phase channel.
    fl, model : sequence of str
        Raw stacks and their ``fl_background_model`` stacks, one per channel:
        the corrected frames are computed from them (§3.6).
    background_params : mapping
        The ``background`` configuration section the models were made with.
    channel_names : mapping of int to str
        Channel names of the input file.
    pc_channel : int
        The phase-contrast channel.
    pixel_size_um : tuple of (float or None)
        ``(y, x)`` pixel size in µm.
    times_min : sequence of float
        Frame times; their median step is the ``t`` scale.

    Raises
    ------
    ValueError
        If the numbers of stacks and channels differ.
    """
    from pyama_steps.background import CorrectedReader

    readers: list[NpyFrameReader | CorrectedReader] = []

    def open_stack(path: str) -> NpyFrameReader:
        reader = NpyFrameReader(path)
        readers.append(reader)
        return reader

    def name(c: int, suffix: str = "") -> str:
        base = channel_names.get(c) or f"ch {c}"
        return f"{base}{suffix}"

    try:
        pc_r = open_stack(pc)
        lab_r = open_stack(labeled)
        channels: list[tuple[str, _FrameSource]] = [
            (name(pc_channel), _FrameSource(pc_r.shape, pc_r.dtype, pc_r.read))
        ]
        if not len(fl) == len(model) == len(fl_channels):
            raise ValueError(
                f"{len(fl_channels)} channel(s), {len(fl)} fluorescence stack(s) "
                f"and {len(model)} model(s)"
            )
        for i, c in enumerate(fl_channels):
            r = CorrectedReader(fl=fl[i], model=model[i], params=background_params)
            readers.append(r)
            source = _FrameSource(r.shape, np.float32, r.corrected)
            channels.append((name(c, " corrected"), source))
        steps = np.diff(np.asarray(times_min, dtype=np.float64))
        steps = steps[np.isfinite(steps) & (steps > 0)]
        write_ome_zarr(
            output,
            channels=channels,
            labels=_FrameSource(lab_r.shape, lab_r.dtype, lab_r.read),
            pixel_size_um=pixel_size_um,
            frame_interval_min=float(np.median(steps)) if steps.size else None,
            label_properties=_label_properties(traces),
        )
    finally:
        for reader in readers:
            reader.close()
    log.info(
        "wrote %s: %d channel(s), %d frame(s) of %dx%d, pyramid factors %s",
        output,
        len(channels),
        pc_r.shape[0],
        pc_r.shape[1],
        pc_r.shape[2],
        pyramid_factors((pc_r.shape[1], pc_r.shape[2])),
    )


def _parquet_schema(columns: Sequence[str]) -> Any:
    import pyarrow as pa

    ints = {
        "fov",
        "cell",
        "parent",
        "frame",
        "bbox_x0",
        "bbox_y0",
        "bbox_x1",
        "bbox_y1",
    }
    fields = []
    for col in columns:
        if col in ints or col.startswith("area_ch_"):
            fields.append(pa.field(col, pa.int64()))
        elif col == "good":
            fields.append(pa.field(col, pa.bool_()))
        else:
            fields.append(pa.field(col, pa.float64()))
    return pa.schema(fields)


def write_traces_parquet(csv: str, output: str) -> int:
    """Convert the all-FOV ``traces.csv`` to Parquet, streaming by blocks.

    Parameters
    ----------
    csv : str
        ``traces.csv`` (algorithms.md §5.4).
    output : str
        ``traces.parquet``; written atomically.

    Returns
    -------
    int
        Rows written.

    Notes
    -----
    Column types follow §5.4 (ints as int64, ``good`` as bool, the rest
    float64); ``NaN`` in the CSV (a cell eroded away) becomes a Parquet null,
    which pandas reads back as NaN. Requires ``pyarrow``.
    """
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    with open(csv, encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split(",")
    schema = _parquet_schema(header)
    convert = pacsv.ConvertOptions(column_types=schema)
    rows = 0
    with atomic_output(output) as tmp:
        reader = pacsv.open_csv(csv, convert_options=convert)
        with pq.ParquetWriter(str(tmp), schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
    log.info("wrote %s: %d row(s)", output, rows)
    return rows
