"""Thin I/O: bioio input, frame-wise .npy stacks, atomic outputs.

Nothing here computes on pixels beyond what reading needs. Stacks are read and
written one frame at a time at the frame's offset in the ``.npy`` file, so the
resident memory of a job stays flat in T (algorithms.md §7.4); every output is
written under a temporary name and renamed when complete (§7.2).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from glob import escape as glob_escape
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pyama_steps.plane_index import IndexedPlanes, open_indexed_planes
from pyama_steps.plane_sources import PlaneSource, open_plane_source

__all__ = [
    "InputError",
    "NpyFrameReader",
    "NpyFrameWriter",
    "PlaneReader",
    "SceneInfo",
    "TimestampError",
    "atomic_output",
    "atomic_write_text",
    "file_identity",
    "open_image",
    "open_plane_reader",
    "reader_name",
    "reader_version",
    "scene_info",
    "scene_timestamps",
]

log = logging.getLogger(__name__)

#: Suffix -> bioio plugin that reads it, for "install this plugin" messages.
_PLUGINS = {
    ".nd2": "bioio-nd2",
    ".czi": "bioio-czi",
    ".ome.tif": "bioio-ome-tiff",
    ".ome.tiff": "bioio-ome-tiff",
    ".tif": "bioio-ome-tiff or bioio-tifffile",
    ".tiff": "bioio-ome-tiff or bioio-tifffile",
    ".lif": "bioio-lif",
    ".ome.zarr": "bioio-ome-zarr",
    ".zarr": "bioio-ome-zarr",
    ".dv": "bioio-dv",
    ".sldy": "bioio-sldy",
}

#: bioio plugins log full tracebacks while computing optional metadata (for
#: example bioio-czi's position index parsed from scene names); we never use
#: those fields, so their loggers are muted while we read metadata.
_NOISY_LOGGERS = ("bioio", "bioio_base", "bioio_czi", "bioio_nd2", "bioio_ome_tiff")


#: "No space left on device" and "disk quota exceeded".
DISK_FULL: frozenset[int] = frozenset({errno.ENOSPC, errno.EDQUOT})


def disk_full_error(error: OSError, *, log_path: str | Path) -> OSError:
    """Restate a full-disk `error` of a job: which device, and what to do.

    Parameters
    ----------
    error : OSError
        The error, with ``errno`` in :data:`DISK_FULL`.
    log_path : str or Path
        The job's log, ``<output_dir>/logs/<rule>/<job>.log``.

    Returns
    -------
    OSError
        The same ``errno`` with the message the manifest and the run quote.
    """
    return OSError(
        error.errno,
        f"no space left on the device of {Path(log_path).parent.parent.parent}"
        f" ({error.strerror}): free space or choose another output_dir, then "
        "rerun the same command",
    )


class InputError(ValueError):
    """The input file cannot be used; the message names it and the fix."""


class TimestampError(InputError):
    """The file's per-plane timestamps exist but cannot be read."""


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for double in (".ome.tiff", ".ome.tif", ".ome.zarr"):
        if name.endswith(double):
            return double
    return path.suffix.lower()


@contextlib.contextmanager
def quiet_readers() -> Iterator[None]:
    """Mute the bioio plugins' loggers for the duration of the block."""
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def open_image(path: str | Path, *, scene: int = 0) -> Any:
    """Open a microscopy file with bioio, translating failures into one message.

    Parameters
    ----------
    path : str or Path
        The input file.
    scene : int
        Scene to select before the reader parses the file's structure: a
        caller that reads one scene spares building another's dask graph,
        whose cost grows with the scene (issue 16).

    Returns
    -------
    bioio.BioImage
        The opened image (lazy; no pixels are read).

    Raises
    ------
    InputError
        If the path is missing, is a directory that no plugin reads, or no
        installed plugin can read it. The message names the file, quotes the
        reader's error and names the plugin to install where the suffix is
        known.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(
            f"input file {str(path)!r} does not exist; check the 'input' key "
            "(relative paths are relative to the directory you run snakemake in)."
        )
    suffix = _suffix(p)
    if p.is_dir() and suffix not in {".zarr", ".ome.zarr"}:
        raise InputError(
            f"input {str(path)!r} is a directory; 'input' must name one microscopy "
            "file (ND2, CZI, OME-TIFF, ...)."
        )
    try:
        from bioio import BioImage
    except ImportError as e:  # pragma: no cover - a broken install
        raise InputError(f"bioio is not installed: {e}") from e
    try:
        with quiet_readers():
            img = BioImage(p)
            if scene:
                img.set_scene(scene)
            _ = img.dims  # forces the reader to parse the file's structure
            _ = img.scenes
    except Exception as e:
        plugin = _PLUGINS.get(suffix)
        reason = f"{type(e).__name__}: {e}".strip()
        reason = reason.splitlines()[0] if reason else type(e).__name__
        if type(e).__name__ == "UnsupportedFileFormatError":
            if plugin is None:
                what = suffix or "files without a suffix"
                hint = (
                    f"no installed bioio plugin reads {what!r}; convert the file "
                    "to OME-TIFF or install the bioio plugin for its format"
                )
            else:
                hint = (
                    f"files ending in {suffix!r} are read by {plugin}, which is "
                    "installed but rejected this file: it is probably truncated, "
                    "corrupt or not a real "
                    f"{suffix.lstrip('.').upper()} file"
                )
            raise InputError(f"cannot read {str(path)!r}: {hint}.") from e
        raise InputError(
            f"cannot read {str(path)!r}: the reader failed with {reason!r}. The file "
            "may be truncated or corrupt; check that it opens in the microscope "
            "software or in Fiji."
        ) from e
    return img


def reader_name(img: Any) -> str:
    """Return the bioio plugin (module) that reads ``img``, e.g. ``bioio_nd2``."""
    return str(type(img.reader).__module__.split(".")[0])


def reader_version(img: Any) -> str | None:
    """Return the installed version of the plugin that reads ``img``."""
    from importlib import metadata

    name = reader_name(img).replace("_", "-")
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class SceneInfo:
    """What inspection records of one scene (FOV).

    Attributes
    ----------
    index : int
        Position in ``BioImage.scenes``.
    name : str
        Scene name.
    shape_tczyx : tuple of int
        ``(T, C, Z, Y, X)``.
    samples : int
        Size of the RGB ``S`` axis, 1 when absent.
    dtype : str
        Native dtype.
    channel_names : tuple of str
        Channel names in C order (empty strings when the file has none).
    pixel_size_um : tuple of (float or None)
        ``(z, y, x)`` in µm; ``None`` where unknown or 0.
    """

    index: int
    name: str
    shape_tczyx: tuple[int, int, int, int, int]
    samples: int
    dtype: str
    channel_names: tuple[str, ...]
    pixel_size_um: tuple[float | None, float | None, float | None]


def _size(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) and value > 0 else None


def scene_info(img: Any, fov: int) -> SceneInfo:
    """Inspect one scene: sizes, dtype, channel names and pixel size.

    Parameters
    ----------
    img : bioio.BioImage
        An opened image.
    fov : int
        Scene index.

    Returns
    -------
    SceneInfo
        The scene's metadata; no pixels are read.

    Raises
    ------
    InputError
        If the reader fails on the scene's metadata.
    """
    shape, samples = _scene_dims(img, fov)
    try:
        with quiet_readers():
            names = tuple(str(n) if n is not None else "" for n in img.channel_names)
            sizes = img.physical_pixel_sizes
            pixel = (_size(sizes.Z), _size(sizes.Y), _size(sizes.X))
            dtype = str(np.dtype(img.dtype))
    except Exception as e:
        raise _metadata_error(img, fov, e) from e
    if len(names) != shape[1]:
        names = tuple("" for _ in range(shape[1]))
    return SceneInfo(
        index=fov,
        name=str(img.scenes[fov]),
        shape_tczyx=shape,
        samples=samples,
        dtype=dtype,
        channel_names=names,
        pixel_size_um=pixel,
    )


def _metadata_error(img: Any, fov: int, e: Exception) -> InputError:
    return InputError(
        f"cannot read the metadata of FOV {fov} (scene {img.scenes[fov]!r}): the "
        f"reader failed with '{type(e).__name__}: {e}'. The file's metadata is "
        "not understood by the installed bioio plugin."
    )


def scene_infos(img: Any, path: str | Path) -> dict[int, SceneInfo]:
    """Inspect every scene of an opened image (:func:`scene_info` for each).

    In a CZI file the channels, the scaling and the pixel type are defined
    once for the whole file (one ``Image/Dimensions/Channels`` element). Asking
    bioio-czi for a scene's channel names or pixel size builds the dask graph
    of all that scene's planes, and each size query reopens the file and
    reparses its subblock directory, which grows with the file: ~0.9 s per
    scene of a 20,000-plane file, so planning grew with FOVs x planes. There
    the names, pixel size and dtype of the first scene serve every scene with
    as many channels, and the sizes of all scenes come from one pass over the
    subblock directory (the plane index's, :func:`build_plane_index`), used
    only when it gives the first scene the sizes bioio gives it; otherwise
    bioio is asked for each scene's sizes.

    Raises
    ------
    InputError
        If the reader fails on a scene's metadata.
    """
    n_scenes = len(img.scenes)
    first = scene_info(img, 0)
    out = {0: first}
    if n_scenes == 1 or not _file_wide_channels(img):
        out.update({f: scene_info(img, f) for f in range(1, n_scenes)})
        return out
    shapes = _directory_shapes(path, first)
    for f in range(1, n_scenes):
        sizes = (shapes[f], 1) if f in shapes else _scene_dims(img, f)
        if sizes[0][1] != first.shape_tczyx[1]:
            out[f] = scene_info(img, f)
            continue
        # the file-wide names, pixel size and dtype of the first scene
        out[f] = replace(
            first,
            index=f,
            name=str(img.scenes[f]),
            shape_tczyx=sizes[0],
            samples=sizes[1],
        )
    return out


def _directory_shapes(
    path: str | Path, first: SceneInfo
) -> dict[int, tuple[int, int, int, int, int]]:
    """Return (T, C, Z, Y, X) of each plainly stored CZI scene.

    Empty unless scene 0 has the sizes (and one sample per pixel) that bioio
    gives it.
    """
    from pyama_steps.plane_index import build_plane_index

    try:
        scenes = build_plane_index(path, reader="bioio_czi")
    except (OSError, ValueError):
        return {}
    zero = scenes.get(0)
    if zero is None or zero.shape_tczyx != first.shape_tczyx or first.samples != 1:
        return {}
    return {f: s.shape_tczyx for f, s in scenes.items() if s.samples == 1}


def _file_wide_channels(img: Any) -> bool:
    """Whether the current scene's reader is bioio-czi with one channel set."""
    if not type(img.reader).__module__.startswith("bioio_czi."):
        return False
    try:
        with quiet_readers():
            xml = img.metadata
        return len(xml.findall(".//Image/Dimensions/Channels")) == 1
    except Exception:  # any doubt: inspect each scene fully
        return False


def _scene_dims(img: Any, fov: int) -> tuple[tuple[int, int, int, int, int], int]:
    """Return a scene's ``(T, C, Z, Y, X)`` and samples per pixel, from bioio."""
    try:
        with quiet_readers():
            img.set_scene(fov)
            dims = img.dims
            t, c, z, y, x = (int(getattr(dims, ax)) for ax in "TCZYX")
            samples = int(dims.S) if "S" in dims.order else 1
    except Exception as e:
        raise _metadata_error(img, fov, e) from e
    return (t, c, z, y, x), samples


# --------------------------------------------------------------------------
# Frame timestamps (algorithms.md §1.4)
# --------------------------------------------------------------------------

_ACQ_TIME = re.compile(r"<AcquisitionTime>\s*([^<\s]+)\s*</AcquisitionTime>")
_ISO = re.compile(
    r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$"
)
_DELTA_T_UNITS = {
    "s": 1.0 / 60.0,
    "ms": 1.0 / 60000.0,
    "µs": 1.0 / 6.0e7,
    "us": 1.0 / 6.0e7,
    "ns": 1.0 / 6.0e10,
    "min": 1.0,
    "h": 60.0,
    "d": 1440.0,
}


def _parse_iso_us(text: str) -> int | None:
    """Parse an ISO-8601 time to integer microseconds since the Unix epoch."""
    match = _ISO.match(text.strip())
    if match is None:
        return None
    stamp, frac, zone = match.groups()
    # Digits beyond six are dropped, not rounded (algorithms.md §1.4).
    micro = (frac or "")[:6].ljust(6, "0")
    zone = "+00:00" if zone in (None, "Z") else zone
    if len(zone) == 5:  # +HHMM
        zone = zone[:3] + ":" + zone[3:]
    try:
        dt = datetime.fromisoformat(f"{stamp}.{micro}{zone}")
    except ValueError:
        return None
    return int(dt.timestamp()) * 1_000_000 + dt.microsecond


def _z_indices(z_mode: str, z_plane: int, n_z: int) -> list[int]:
    if z_mode == "plane":
        return [z_plane % n_z if -n_z <= z_plane < n_z else 0]
    return list(range(n_z))


def _nd2_times(
    path: Path, scenes: list[SceneInfo], pc: int, z_mode: str, z_plane: int
) -> dict[int, npt.NDArray[np.float64]]:
    import nd2

    times: dict[int, npt.NDArray[np.float64]] = {}
    with nd2.ND2File(path) as fh:
        n_frames = len(fh.loop_indices)
        if n_frames == 0:
            return times
        table: dict[tuple[int, int, int], float] = {}
        for seq, idx in enumerate(fh.loop_indices):
            meta: Any = fh.frame_metadata(seq)  # FrameMetadata (or a dict: never here)
            channels = meta.channels
            channel = channels[pc] if pc < len(channels) else channels[0]
            table[(idx.get("P", 0), idx.get("T", 0), idx.get("Z", 0))] = float(
                channel.time.relativeTimeMs
            )
    for info in scenes:
        n_t, _, n_z = info.shape_tczyx[:3]
        zs = _z_indices(z_mode, z_plane, n_z)
        values = np.full(n_t, np.nan)
        for t in range(n_t):
            found = [
                table[(info.index, t, z)] for z in zs if (info.index, t, z) in table
            ]
            if found:
                values[t] = min(found) / 60000.0
        times[info.index] = values
    return times


def _czi_times(
    path: Path, scenes: list[SceneInfo], pc: int, z_mode: str, z_plane: int
) -> dict[int, npt.NDArray[np.float64]]:
    import aicspylibczi

    with open(path, "rb") as fh:  # CziFile(path) would leave its handle open
        blocks = aicspylibczi.CziFile(fh).read_subblock_metadata(unified_xml=False)
    scene_values = sorted({int(d.get("S", 0)) for d, _ in blocks})
    stamps: dict[tuple[int, int, int], int] = {}
    for dims, xml in blocks:
        if int(dims.get("C", 0)) != pc:
            continue
        match = _ACQ_TIME.search(xml or "")
        if match is None:
            continue
        micro = _parse_iso_us(match.group(1))
        if micro is None:
            continue
        key = (int(dims.get("S", 0)), int(dims.get("T", 0)), int(dims.get("Z", 0)))
        # Mosaic tiles of one plane: the earliest tile (algorithms.md §1.4).
        stamps[key] = min(stamps.get(key, micro), micro)
    if not stamps:
        return {}
    zero = min(stamps.values())
    times: dict[int, npt.NDArray[np.float64]] = {}
    for info in scenes:
        if info.index >= len(scene_values):
            continue
        s = scene_values[info.index]
        n_t, _, n_z = info.shape_tczyx[:3]
        zs = _z_indices(z_mode, z_plane, n_z)
        values = np.full(n_t, np.nan)
        for t in range(n_t):
            found = [stamps[(s, t, z)] for z in zs if (s, t, z) in stamps]
            if found:
                values[t] = (min(found) - zero) / 60_000_000.0
        times[info.index] = values
    return times


def _ome_times(
    img: Any, scenes: list[SceneInfo], pc: int, z_mode: str, z_plane: int
) -> dict[int, npt.NDArray[np.float64]]:
    with quiet_readers():
        ome = img.ome_metadata
    times: dict[int, npt.NDArray[np.float64]] = {}
    for info in scenes:
        if info.index >= len(ome.images):
            continue
        planes = ome.images[info.index].pixels.planes
        n_t, _, n_z = info.shape_tczyx[:3]
        zs = set(_z_indices(z_mode, z_plane, n_z))
        values = np.full(n_t, np.nan)
        for plane in planes:
            if plane.the_c != pc or plane.the_z not in zs or plane.delta_t is None:
                continue
            unit = getattr(plane.delta_t_unit, "value", plane.delta_t_unit) or "s"
            factor = _DELTA_T_UNITS.get(str(unit))
            if factor is None or not 0 <= plane.the_t < n_t:
                continue
            value = float(plane.delta_t) * factor
            current = values[plane.the_t]
            values[plane.the_t] = value if np.isnan(current) else min(current, value)
        times[info.index] = values
    return times


def scene_timestamps(
    img: Any,
    path: str | Path,
    scenes: list[SceneInfo],
    *,
    pc: int,
    z_mode: str,
    z_plane: int,
) -> dict[int, npt.NDArray[np.float64]]:
    """Read per-plane acquisition times of the phase-contrast channel.

    Parameters
    ----------
    img : bioio.BioImage
        The opened image.
    path : str or Path
        Its path (ND2 and CZI times come from the format's own metadata).
    scenes : list of SceneInfo
        Scenes to read times for (every scene of the file, so that the
        experiment origin does not depend on the selection).
    pc : int
        Phase-contrast channel.
    z_mode : {'plane', 'max', 'mean'}
        How the PC Z-stack becomes one plane; projections use the earliest plane.
    z_plane : int
        Plane of ``plane`` mode.

    Returns
    -------
    dict of int to (T,) ndarray of float64
        Minutes from a reference common to the file; NaN where a plane has no
        time. Empty when the reader exposes no timestamps at all.

    Notes
    -----
    ND2 times come from the ``nd2`` package's frame metadata (bioio's own T
    coordinate is evenly spaced); CZI times from subblock ``AcquisitionTime``;
    other readers from OME ``Plane/@DeltaT`` (algorithms.md §1.4).
    """
    reader = reader_name(img)
    p = Path(path)
    try:
        if reader == "bioio_nd2":
            return _nd2_times(p, scenes, pc, z_mode, z_plane)
        if reader == "bioio_czi":
            return _czi_times(p, scenes, pc, z_mode, z_plane)
        return _ome_times(img, scenes, pc, z_mode, z_plane)
    except Exception as e:
        # Timestamps are optional (the caller falls back to an interval), but a
        # failure here often means a damaged file: keep the reason.
        raise TimestampError(
            f"the frame timestamps could not be read ({type(e).__name__}: {e})"
        ) from e


def _ome_time_increment_min(img: Any, fov: int) -> float | None:
    """Return OME ``Pixels/@TimeIncrement`` of scene ``fov`` in minutes, if any.

    tifffile and many converters write the frame interval there and no
    per-plane ``DeltaT``; bioio's ``standard_metadata`` does not expose it.
    """
    if reader_name(img) in {"bioio_nd2", "bioio_czi"}:
        return None  # their own metadata holds the times (scene_timestamps)
    try:
        with quiet_readers():
            images = img.ome_metadata.images
        pixels = images[fov if 0 <= fov < len(images) else 0].pixels
    except Exception:
        return None
    value = getattr(pixels, "time_increment", None)
    if value is None:
        return None
    unit = getattr(pixels, "time_increment_unit", None)
    unit = getattr(unit, "value", unit) or "s"
    factor = _DELTA_T_UNITS.get(str(unit))
    return None if factor is None else float(value) * factor


def nominal_interval_min(img: Any, *, fov: int = 0) -> float | None:
    """Return the file's nominal frame interval in minutes, if > 0.

    Parameters
    ----------
    img : bioio.BioImage
        The opened image.
    fov : int
        Scene whose OME ``Pixels/@TimeIncrement`` is read when the reader's
        ``standard_metadata`` has no interval.

    Returns
    -------
    float or None
        Minutes between frames: bioio's ``timelapse_interval``, else OME
        ``Pixels/@TimeIncrement`` in its ``TimeIncrementUnit`` (default s);
        None when neither is there or the value is not positive.
    """
    try:
        with quiet_readers():
            interval = img.standard_metadata.timelapse_interval
    except Exception:
        interval = None
    if interval is None:
        minutes = _ome_time_increment_min(img, fov)
    else:
        seconds = (
            interval.total_seconds() if hasattr(interval, "total_seconds") else interval
        )
        try:
            minutes = float(seconds) / 60.0
        except (TypeError, ValueError):
            minutes = None
    if minutes is None:
        return None
    return minutes if np.isfinite(minutes) and minutes > 0 else None


# --------------------------------------------------------------------------
# Plane reading
# --------------------------------------------------------------------------


class PlaneReader:
    """Read one channel of one scene plane by plane through bioio's lazy array.

    Parameters
    ----------
    img : bioio.BioImage
        The opened image.
    fov : int
        Scene index.
    channel : int
        Channel index on the C axis.
    direct : bool
        Read OME-TIFF and CZI planes through a handle of the format library
        (below); False reads every plane through bioio's dask array.

    Notes
    -----
    The dask array is built once per reader. A plane is read by evaluating
    only the one dask task (chunk) that holds it, found once from the array's
    chunk layout: computing ``array[t, z]`` through dask's scheduler instead
    rebuilds, optimises and orders a graph for every plane, which cost 5-15 ms
    per plane, several times the read itself (README, "Performance"). When
    the array's layout does not allow it (Y or X split into several chunks, a
    dask version without the needed functions) or evaluating the task fails,
    the plane is computed with dask's synchronous scheduler as before; both
    give the same values. Memory is one chunk (usually one plane) and reads
    happen in a fixed order (algorithms.md §1.6, §7.4).

    For OME-TIFF and CZI, bioio's chunk task re-opens the file and re-parses
    its page list or subblock directory, a cost that grows with the number of
    planes in the file (issue 16). There a plane is read instead through a
    handle opened once (:func:`pyama_steps.plane_sources.open_plane_source`).
    The first plane read that way is compared with bioio's own value, and any
    mismatch in values, shape or dtype, or a failure, drops the handle for
    good: bioio's path then reads every plane. Call :meth:`close` (or use the
    reader as a context manager) to release the handle.
    """

    def __init__(
        self, img: Any, fov: int, channel: int, *, direct: bool = True
    ) -> None:
        with quiet_readers():
            img.set_scene(fov)
            order = "TZYXS" if "S" in img.dims.order else "TZYX"
            self._data = img.get_image_dask_data(order, C=channel)
        self.n_t = int(self._data.shape[0])
        self.n_z = int(self._data.shape[1])
        self.has_samples = order.endswith("S")
        self._graph: dict[Any, Any] | None = None
        self._cached: tuple[Any, npt.NDArray[Any]] | None = None
        self._source: PlaneSource | None = None
        self._source_checked = False
        try:
            if all(len(c) == 1 for c in self._data.chunks[2:]):
                graph = dict(self._data.__dask_graph__())
                if self._chunk_key(0, 0)[0] in graph:
                    self._graph = graph
        except Exception:  # any surprise: use the dask scheduler
            self._graph = None
        if direct and self._graph is not None:  # one chunk per plane: not a mosaic
            self._source = open_plane_source(img, fov=fov, channel=channel)

    def close(self) -> None:
        """Release the file handle of the direct plane source, if any."""
        if self._source is not None:
            self._source.close()
            self._source = None

    def __enter__(self) -> PlaneReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _plane_from_source(self, t: int, z: int) -> npt.NDArray[Any] | None:
        """Return plane ``(t, z)`` from the direct source; None to use bioio."""
        if self._source is None:
            return None
        try:
            out = self._source.read(t, z)
            ok = out.shape == self._data.shape[2:] and out.dtype == self._data.dtype
            if ok and not self._source_checked:
                # the first plane is also read through bioio: a source must
                # give bioio's values or it is not used (issue 16)
                want = self._plane_from_bioio(t, z)
                ok = np.array_equal(out, want, equal_nan=out.dtype.kind in "fc")
                self._source_checked = ok
                if not ok:
                    log.warning("direct plane read differs from bioio; not used")
        except Exception:  # bioio's path reads it, and raises if it fails too
            ok = False
        if ok:
            return out
        self.close()
        return None

    def _chunk_key(self, t: int, z: int) -> tuple[tuple[Any, ...], int, int]:
        """Return the key of the chunk holding plane ``(t, z)``, and its place."""
        bt, it = _block_of(self._data.chunks[0], t)
        bz, iz = _block_of(self._data.chunks[1], z)
        key = (self._data.name, bt, bz) + (0,) * (self._data.ndim - 2)
        return key, it, iz

    def _plane_from_task(self, t: int, z: int) -> npt.NDArray[Any]:
        from dask.core import get
        from dask.optimization import cull

        key, it, iz = self._chunk_key(t, z)
        if self._cached is not None and self._cached[0] == key:
            return np.array(self._cached[1][it, iz])
        self._cached = None
        graph, _ = cull(self._graph, [key])  # type: ignore[no-untyped-call]
        chunk = np.asarray(get(graph, [key])[0])
        if chunk.shape[:2] == (1, 1):
            plane: npt.NDArray[Any] = chunk[0, 0]
            return plane
        # a chunk of several planes (e.g. a whole Z-stack): kept for the next call
        self._cached = (key, chunk)
        return np.array(chunk[it, iz])

    def plane(self, t: int, z: int) -> npt.NDArray[Any]:
        """Return plane ``(t, z)`` as a numpy array in the native dtype."""
        direct = self._plane_from_source(t, z)
        if direct is not None:
            return direct
        return self._plane_from_bioio(t, z)

    def _plane_from_bioio(self, t: int, z: int) -> npt.NDArray[Any]:
        """Return plane ``(t, z)`` through bioio's dask array."""
        if self._graph is not None:
            try:
                out = self._plane_from_task(t, z)
                if out.shape == self._data.shape[2:] and out.dtype == self._data.dtype:
                    return out
            except Exception:  # retried below, which raises
                pass
            # never again for this reader: the scheduler path decides
            self._graph = None
            self._cached = None
        out = np.asarray(self._data[t, z].compute(scheduler="synchronous"))
        return out


def open_plane_reader(
    path: str | Path, fov: int, channel: int, *, plane_index: str | None = None
) -> PlaneReader | IndexedPlanes:
    """Open the planes of one FOV and channel: by the run's index, else by bioio.

    Parameters
    ----------
    path : str or Path
        The input file.
    fov : int
        Scene index.
    channel : int
        Channel index.
    plane_index : str, optional
        The run's plane index (:mod:`pyama_steps.plane_index`). When it lists
        this FOV and the input is the file it was built for, planes are read
        at its offsets and bioio is not opened: the cost of opening does not
        grow with the file. Otherwise, and without one, bioio opens the file.

    Returns
    -------
    PlaneReader or IndexedPlanes
        ``n_t``, ``n_z``, ``has_samples``, ``plane(t, z)`` and ``close()``.

    Raises
    ------
    InputError
        If bioio cannot open the file.
    """
    if plane_index is not None:
        planes = open_indexed_planes(plane_index, str(path), fov=fov, channel=channel)
        if planes is not None:
            return planes
    img = open_image(path, scene=fov)
    return PlaneReader(img, fov, channel)


def _block_of(chunks: tuple[int, ...], index: int) -> tuple[int, int]:
    """Return (block number, position in the block) of `index` on one axis."""
    start = 0
    for block, size in enumerate(chunks):
        if index < start + size:
            return block, index - start
        start += size
    raise IndexError(f"index {index} is outside the axis of {start} elements")


# --------------------------------------------------------------------------
# .npy stacks, frame by frame
# --------------------------------------------------------------------------


def _tmp_name(path: Path) -> Path:
    """Return this process's temporary name for ``path``, removing stale ones.

    A killed job leaves ``<name>.tmp-<pid>`` behind; Snakemake runs at most one
    job per output at a time, so any other temporary file of the same output
    is such a leftover and is removed when the output is written again.
    """
    own = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    for stale in path.parent.glob(f"{glob_escape(path.name)}.tmp-*"):
        if stale != own:
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
    return own


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path that is renamed to ``path`` if the block succeeds.

    On an exception the temporary file is removed and the exception re-raised,
    so an output that exists is always complete (algorithms.md §7.2).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8, LF line endings) to ``path`` atomically."""
    with (
        atomic_output(path) as tmp,
        open(tmp, "w", encoding="utf-8", newline="\n") as fh,
    ):
        fh.write(text)


def _header_bytes(shape: tuple[int, ...], dtype: np.dtype[Any]) -> bytes:
    import io as _io

    buf = _io.BytesIO()
    header = {
        "descr": np.lib.format.dtype_to_descr(dtype),
        "fortran_order": False,
        "shape": shape,
    }
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


class NpyFrameWriter:
    """Write a (T, Y, X) ``.npy`` stack one frame at a time, atomically.

    Parameters
    ----------
    path : str or Path
        Final path. Frames go to ``<path>.tmp-<pid>`` until :meth:`close`
        renames it.
    shape : tuple of int
        ``(T, Y, X)``.
    dtype : numpy dtype
        Little-endian dtype of the stack.

    Notes
    -----
    The header is NPY format 1.0, identical to what ``open_memmap`` writes, so
    it depends only on dtype and shape. Frames are written with ``pwrite`` at
    their offset instead of through a memory map, so no page of the stack
    stays in the process's resident memory. Use as a context manager: an
    exception removes the temporary file.
    """

    def __init__(
        self, path: str | Path, shape: tuple[int, ...], dtype: npt.DTypeLike
    ) -> None:
        self.path = Path(path)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = (
            np.dtype(dtype).newbyteorder("<")
            if np.dtype(dtype).itemsize > 1
            else np.dtype(dtype)
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = _tmp_name(self.path)
        header = _header_bytes(self.shape, self.dtype)
        self._offset = len(header)
        self._frame_bytes = (
            int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        )
        self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._written = np.zeros(self.shape[0], dtype=bool)
        try:
            os.write(self._fd, header)
            os.ftruncate(self._fd, self._offset + self._frame_bytes * self.shape[0])
        except BaseException:
            # e.g. a full disk: no writer exists for `with` to abort
            self.abort()
            raise

    def write(self, t: int, frame: npt.NDArray[Any]) -> None:
        """Write frame ``t`` (shape ``(Y, X)``, cast to the stack's dtype)."""
        if frame.shape != self.shape[1:]:
            raise ValueError(
                f"frame {t} has shape {frame.shape!r}, expected {self.shape[1:]!r}"
            )
        data = np.ascontiguousarray(frame, dtype=self.dtype)
        os.pwrite(self._fd, data.tobytes(), self._offset + t * self._frame_bytes)
        self._written[t] = True

    def close(self) -> None:
        """Check every frame was written, close and rename to the final path."""
        os.close(self._fd)
        self._fd = -1
        missing = np.flatnonzero(~self._written)
        if missing.size:
            self.abort()
            raise RuntimeError(
                f"{self.path.name}: frames {missing.tolist()[:5]} were never written"
            )
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Close and remove the temporary file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()

    def __enter__(self) -> NpyFrameWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class NpyFrameReader:
    """Read frames of a (T, Y, X) ``.npy`` stack with explicit reads.

    Parameters
    ----------
    path : str or Path
        A C-order ``.npy`` file.

    Notes
    -----
    Reading with ``pread`` instead of a memory map keeps the process's resident
    memory at one frame whatever T is (algorithms.md §7.4).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            self._offset = fh.tell()
        if fortran or len(shape) != 3:
            raise ValueError(
                f"{self.path}: expected a C-order (T, Y, X) stack, got shape "
                f"{shape!r} (fortran_order={fortran})"
            )
        self.shape: tuple[int, int, int] = tuple(int(s) for s in shape)  # type: ignore[assignment]
        self.dtype = np.dtype(dtype)
        self._frame_bytes = self.shape[1] * self.shape[2] * self.dtype.itemsize
        self._fd = os.open(self.path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, t: int) -> npt.NDArray[Any]:
        """Return frame ``t`` as a new ``(Y, X)`` array."""
        if not 0 <= t < self.shape[0]:
            raise IndexError(f"frame {t} out of range for {self.shape[0]} frames")
        out = np.empty(self.shape[1:], dtype=self.dtype)
        # numpy's stubs do not declare the buffer protocol for ndarray yet.
        view = memoryview(out.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
        n = os.preadv(self._fd, [view], self._offset + t * self._frame_bytes)
        if n != self._frame_bytes:
            raise OSError(
                f"{self.path}: frame {t} is truncated "
                f"({n} of {self._frame_bytes} bytes)"
            )
        return out

    def __iter__(self) -> Iterator[npt.NDArray[Any]]:
        for t in range(self.shape[0]):
            yield self.read(t)

    def close(self) -> None:
        """Close the file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> NpyFrameReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def file_identity(path: str | Path, *, method: str = "sha256") -> dict[str, Any]:
    """Identify the input file by size and SHA-256 or modification time.

    Parameters
    ----------
    path : str or Path
        The input file.
    method : {'sha256', 'stat'}
        ``sha256`` hashes the content in 1 MiB chunks; ``stat`` records
        ``mtime_ns``.

    Returns
    -------
    dict
        ``{'size_bytes': ..., 'sha256': ...}`` or ``{'size_bytes': ...,
        'mtime_ns': ...}``.
    """
    p = Path(path)
    st = p.stat()
    if method == "stat":
        return {"size_bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
    if method != "sha256":
        raise ValueError(f"method must be 'sha256' or 'stat', got {method!r}")
    digest = hashlib.sha256()
    if p.is_dir():
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            digest.update(str(f.relative_to(p)).encode())
            with open(f, "rb") as fh:
                for chunk in iter(functools.partial(fh.read, 1 << 20), b""):
                    digest.update(chunk)
    else:
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return {"size_bytes": st.st_size, "sha256": digest.hexdigest()}
