"""Inspect the input and resolve the configuration into a run plan.

:func:`plan_run` performs steps 1-5 of algorithms.md §1.3 while the workflow is
parsed: it opens the file with bioio (metadata only), resolves FOVs and
channels, checks that every selected FOV agrees, and reads frame times. Every
problem raises one readable error before any job runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pyama_steps.io import (
    InputError,
    SceneInfo,
    TimestampError,
    nominal_interval_min,
    open_image,
    reader_name,
    reader_version,
    scene_infos,
    scene_timestamps,
)
from pyama_steps.io.paths import base_name
from pyama_steps.run.config import ConfigError, parse_fovs, resolve_channels

__all__ = ["FovPlan", "RunPlan", "plan_run", "plan_run_cached", "z_mode_for"]


@dataclass(frozen=True)
class FovPlan:
    """One selected FOV: its scene's metadata and its frame times."""

    fov: int
    scene: str
    shape_tczyx: tuple[int, int, int, int, int]
    samples: int
    dtype: str
    pixel_size_um: tuple[float | None, float | None, float | None]
    time_source: str
    times_min: tuple[float, ...]

    @property
    def n_frames(self) -> int:
        """Number of frames T."""
        return self.shape_tczyx[0]

    @property
    def frame_shape(self) -> tuple[int, int]:
        """``(Y, X)``."""
        return self.shape_tczyx[3], self.shape_tczyx[4]


@dataclass(frozen=True)
class RunPlan:
    """Everything the workflow needs to know about the input before any job."""

    input: str
    base: str
    reader: str
    reader_version: str | None
    n_scenes: int
    channel_names: tuple[str, ...]
    pc: int
    fl: tuple[int, ...]
    fovs: tuple[FovPlan, ...]
    time_origin: str
    warnings: tuple[str, ...] = field(default=())

    @property
    def fov_ids(self) -> list[int]:
        """Selected FOV indices, ascending."""
        return [f.fov for f in self.fovs]

    def fov(self, fov: int) -> FovPlan:
        """Return the plan of FOV ``fov``."""
        for f in self.fovs:
            if f.fov == fov:
                return f
        raise KeyError(fov)

    def to_metadata(self) -> dict[str, Any]:
        """Return the JSON-ready content of ``metadata.json`` without input identity."""
        first = self.fovs[0].pixel_size_um if self.fovs else (None, None, None)
        return {
            "reader": self.reader,
            "reader_version": self.reader_version,
            "base_name": self.base,
            "n_scenes": self.n_scenes,
            "channel_names": list(self.channel_names),
            "channels": {
                "pc": {"channel": self.pc, "name": self.channel_names[self.pc]},
                "fl": [{"channel": c, "name": self.channel_names[c]} for c in self.fl],
            },
            "pixel_size_um": {"z": first[0], "y": first[1], "x": first[2]},
            "time_origin": self.time_origin,
            "warnings": list(self.warnings),
            "fovs": {
                str(f.fov): {
                    "scene": f.scene,
                    "shape_tczyx": list(f.shape_tczyx),
                    "rgb_samples": f.samples,
                    "dtype": f.dtype,
                    "pixel_size_um": list(f.pixel_size_um),
                    "time_source": f.time_source,
                    "times_min": list(f.times_min),
                }
                for f in self.fovs
            },
        }


def z_mode_for(ingest: Mapping[str, Any], role: str) -> str:
    """Return the Z mode of a channel role (``pc`` or ``fl``)."""
    mode = ingest.get("z_mode", "plane")
    if isinstance(mode, Mapping):
        return str(mode[role])
    return str(mode)


def _valid_times(values: np.ndarray | None, n_t: int) -> str | None:
    """Return why ``values`` are not usable timestamps, or None if they are."""
    if values is None or len(values) != n_t:
        return "no timestamps"
    if not np.all(np.isfinite(values)):
        return f"{int((~np.isfinite(values)).sum())} frame(s) without a timestamp"
    if n_t > 1 and np.any(np.diff(values) < 0):
        return "timestamps decrease"
    if n_t > 1 and not values[-1] > values[0]:
        return "all timestamps are equal"
    return None


def plan_run(config: Mapping[str, Any]) -> RunPlan:
    """Inspect the input file and resolve a validated configuration.

    Parameters
    ----------
    config : mapping
        A configuration already passed through
        :func:`pyama_steps.run.config.validate_config` (defaults filled).

    Returns
    -------
    RunPlan
        FOVs, channels, shapes, dtypes and frame times.

    Raises
    ------
    InputError
        If the file cannot be opened or its metadata cannot be read.
    ConfigError
        If the configuration does not fit the file (channel, FOV, Z plane,
        RGB, frame interval).
    """
    path = str(config["input"])
    ingest = config["ingest"]
    img = open_image(path)
    n_scenes = len(img.scenes)
    if n_scenes == 0:
        raise InputError(f"input file {path!r} contains no image (0 scenes).")
    fov_ids = parse_fovs(config.get("fovs", "all"), n_scenes)
    try:
        scenes = scene_infos(img, path)
    except InputError as e:
        raise InputError(f"{path}: {e}") from e.__cause__

    names = _shared_channel_names(path, scenes, fov_ids)
    channels = config["channels"]
    pc, fl = resolve_channels(channels["pc"], channels["fl"], names)

    z_plane = int(ingest["z_plane"])
    _check_fovs(path, scenes, fov_ids, ingest, z_plane=z_plane)
    warnings = _input_warnings(scenes, fov_ids, ingest, z_plane=z_plane)

    times, time_source, why = _frame_times(img, path, scenes, fov_ids, pc, ingest)
    if why:
        warnings.append(why)

    fovs = tuple(
        FovPlan(
            fov=f,
            scene=scenes[f].name,
            shape_tczyx=scenes[f].shape_tczyx,
            samples=scenes[f].samples,
            dtype=scenes[f].dtype,
            pixel_size_um=scenes[f].pixel_size_um,
            time_source=time_source,
            times_min=tuple(float(v) for v in times[f]),
        )
        for f in fov_ids
    )
    return RunPlan(
        input=path,
        base=base_name(path, ingest.get("base_name")),
        reader=reader_name(img),
        reader_version=reader_version(img),
        n_scenes=n_scenes,
        channel_names=tuple(names),
        pc=pc,
        fl=tuple(fl),
        fovs=fovs,
        time_origin=str(ingest["time_origin"]),
        warnings=tuple(warnings),
    )


def _shared_channel_names(
    path: str, scenes: dict[int, SceneInfo], fov_ids: list[int]
) -> tuple[str, ...]:
    """Return the selected FOVs' channel names; raise unless they share them."""
    names = scenes[fov_ids[0]].channel_names
    differ = [f for f in fov_ids if scenes[f].channel_names != names]
    if differ:
        raise InputError(
            f"{path}: the selected FOVs do not share one channel set; FOV(s) "
            f"{differ} differ from FOV {fov_ids[0]} ({list(names)}). Select FOVs "
            "with the same channels using 'fovs'."
        )
    return names


def _check_fovs(
    path: str,
    scenes: dict[int, SceneInfo],
    fov_ids: list[int],
    ingest: Mapping[str, Any],
    *,
    z_plane: int,
) -> None:
    """Raise if a selected FOV is empty, a mask, unwanted RGB or lacks the Z plane."""
    for f in fov_ids:
        info = scenes[f]
        n_t, _, n_z, n_y, n_x = info.shape_tczyx
        if min(n_t, n_y, n_x) < 1:
            raise InputError(
                f"{path}: FOV {f} has an empty dimension "
                f"(T, Y, X = {n_t}, {n_y}, {n_x})."
            )
        if info.dtype == "bool":
            raise InputError(
                f"{path}: FOV {f} holds boolean pixels (a mask, not a microscope "
                "channel); pyama-steps needs intensity images."
            )
        if info.samples > 1 and ingest["rgb"] == "error":
            raise ConfigError(
                f"{path}: FOV {f} is RGB ({info.samples} samples per pixel); set "
                "ingest.rgb: mean to average the samples, or export a grayscale file."
            )
        uses_plane = "plane" in {z_mode_for(ingest, "pc"), z_mode_for(ingest, "fl")}
        if n_z > 1 and uses_plane and not -n_z <= z_plane < n_z:
            raise ConfigError(
                f"config key 'ingest.z_plane' = {z_plane} is outside the Z-stack of "
                f"FOV {f} ({n_z} planes; valid {-n_z}..{n_z - 1})."
            )


def _input_warnings(
    scenes: dict[int, SceneInfo],
    fov_ids: list[int],
    ingest: Mapping[str, Any],
    *,
    z_plane: int,
) -> list[str]:
    """Return the warnings about Z-stacks and pixel dtypes of the selected FOVs."""
    warnings: list[str] = []
    z_sizes = sorted({scenes[f].shape_tczyx[2] for f in fov_ids})
    if z_sizes[-1] > 1:
        modes = {role: z_mode_for(ingest, role) for role in ("pc", "fl")}
        used = ", ".join(
            f"{role}: " + (f"plane {z_plane}" if m == "plane" else f"{m} projection")
            for role, m in modes.items()
        )
        warnings.append(
            f"the input has Z-stacks ({z_sizes[-1]} planes): using {used}; set "
            "ingest.z_mode / ingest.z_plane to choose another"
        )
    dtypes = sorted({scenes[f].dtype for f in fov_ids})
    odd = [d for d in dtypes if d not in {"uint8", "uint16"}]
    if odd and ingest["dtype_policy"] == "strict":
        warnings.append(
            f"pixel dtype {', '.join(odd)} is not uint8/uint16: every frame is checked "
            "and the copy fails on values uint16 cannot hold (ingest.dtype_policy)"
        )
    return warnings


def _frame_times(
    img: Any,
    path: str,
    scenes: dict[int, SceneInfo],
    fov_ids: list[int],
    pc: int,
    ingest: Mapping[str, Any],
) -> tuple[dict[int, np.ndarray], str, str | None]:
    """Return per-FOV times in minutes, the time source and a warning (§1.4)."""
    z_mode = z_mode_for(ingest, "pc")
    z_plane = int(ingest["z_plane"])
    why: str | None = None
    unreadable: str | None = None
    if ingest["time_source"] == "auto":
        try:
            stamps = scene_timestamps(
                img, path, list(scenes.values()), pc=pc, z_mode=z_mode, z_plane=z_plane
            )
        except TimestampError as e:
            stamps, unreadable = {}, str(e)
        problems = {
            f: _valid_times(stamps.get(f), scenes[f].shape_tczyx[0]) for f in fov_ids
        }
        bad = {f: p for f, p in problems.items() if p is not None}
        if not bad:
            if ingest["time_origin"] == "experiment":
                finite = [v[np.isfinite(v)] for v in stamps.values()]
                origin = min(float(v.min()) for v in finite if v.size)
                times = {f: stamps[f] - origin for f in fov_ids}
            else:
                times = {f: stamps[f] - stamps[f][0] for f in fov_ids}
            return times, "timestamps", None
        f0, reason = next(iter(bad.items()))
        all_missing = all(p == "no timestamps" for p in bad.values())
        if not (all_missing and not stamps):
            why = (
                f"frame timestamps are not usable (FOV {f0}: {reason}); every FOV "
                "uses time = frame x interval"
            )
    times = {}
    for f in fov_ids:
        n_t = scenes[f].shape_tczyx[0]
        if n_t == 1:
            times[f] = np.zeros(1)
            continue
        interval = ingest.get("frame_interval_min") or nominal_interval_min(img, fov=f)
        if interval is None:
            damaged = (
                f" ({unreadable}; the file may be truncated or corrupt)"
                if unreadable
                else ""
            )
            raise ConfigError(
                f"{path}: FOV {f} has no frame timestamps{damaged} and no interval: "
                "set ingest.frame_interval_min (minutes between frames)."
            )
        times[f] = np.arange(n_t, dtype=np.float64) * float(interval)
    if unreadable:
        why = f"{unreadable}; time = frame x interval"
    elif why is None and ingest["time_source"] == "auto":
        why = "the file has no frame timestamps; time = frame x interval"
    return times, "interval", why


def _plan_to_json(plan: RunPlan) -> dict[str, Any]:
    data = dataclasses.asdict(plan)
    data["fovs"] = [dataclasses.asdict(f) for f in plan.fovs]
    return data


def _plan_from_json(data: Mapping[str, Any]) -> RunPlan:
    fovs = tuple(
        FovPlan(
            fov=int(f["fov"]),
            scene=str(f["scene"]),
            shape_tczyx=tuple(f["shape_tczyx"]),
            samples=int(f["samples"]),
            dtype=str(f["dtype"]),
            pixel_size_um=tuple(f["pixel_size_um"]),
            time_source=str(f["time_source"]),
            times_min=tuple(float(v) for v in f["times_min"]),
        )
        for f in data["fovs"]
    )
    return RunPlan(
        input=str(data["input"]),
        base=str(data["base"]),
        reader=str(data["reader"]),
        reader_version=data["reader_version"],
        n_scenes=int(data["n_scenes"]),
        channel_names=tuple(data["channel_names"]),
        pc=int(data["pc"]),
        fl=tuple(int(c) for c in data["fl"]),
        fovs=fovs,
        time_origin=str(data["time_origin"]),
        warnings=tuple(data["warnings"]),
    )


@functools.cache
def _versions() -> tuple[str | None, ...]:
    """Versions of this package and the readers, looked up once per process.

    ``importlib.metadata.version`` scans ``sys.path`` on every call (~1.5 ms
    each); a sample sheet of 100 files asked 500 times.
    """
    from importlib import metadata

    versions: list[str | None] = []
    for name in ("pyama-steps", "bioio", "bioio-nd2", "bioio-czi", "bioio-ome-tiff"):
        try:
            versions.append(metadata.version(name))
        except metadata.PackageNotFoundError:
            versions.append(None)
    return tuple(versions)


def _cache_key(config: Mapping[str, Any]) -> str | None:
    try:
        st = os.stat(config["input"])
    except OSError:
        return None
    versions = list(_versions())
    key = {
        "input": str(config["input"]),
        "abs": os.path.abspath(config["input"]),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "fovs": config.get("fovs"),
        "channels": config["channels"],
        "ingest": config["ingest"],
        "versions": versions,
    }
    text = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def plan_run_cached(config: Mapping[str, Any], cache_dir: str | Path) -> RunPlan:
    """:func:`plan_run`, reusing a plan cached for the same input and settings.

    The key is the input's path, size and modification time, the FOV, channel
    and ingest settings and the reader versions, so any change re-inspects the
    file. Every Snakemake invocation parses the workflow (cluster jobs too);
    the cache spares each of them opening the file with bioio.

    Parameters
    ----------
    config : mapping
        Validated configuration.
    cache_dir : str or Path
        Folder of the cache files (created when needed).

    Returns
    -------
    RunPlan
        The plan.
    """
    key = _cache_key(config)
    path = Path(cache_dir) / f"plan-{key}.json" if key else None
    if path is not None and path.is_file():
        try:
            plan = _plan_from_json(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError):
            plan = None
        if plan is not None:
            return plan
    plan = plan_run(config)
    if path is not None:
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
            tmp.write_text(json.dumps(_plan_to_json(plan)), encoding="utf-8")
            os.replace(tmp, path)
    return plan
