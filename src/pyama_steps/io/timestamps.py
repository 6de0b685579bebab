"""Frame timestamps of the input and its nominal interval (algorithms.md §1.4)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pyama_steps.io.images import TimestampError, quiet_readers, reader_name
from pyama_steps.io.scenes import SceneInfo

__all__ = ["nominal_interval_min", "scene_timestamps"]

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
