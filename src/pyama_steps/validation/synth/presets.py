"""Named presets of :class:`SynthParams` and the per-FOV queries (frame size, times)."""

from __future__ import annotations

import dataclasses
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from pyama_steps.validation.synth.params import (
    _STREAM_TIMES,
    FL_CHANNEL_NAMES,
    PHASE_CHANNEL_NAME,
    SynthParams,
)

F64 = npt.NDArray[np.float64]

# -------------------------------------------------------------------------- presets
_PRESET_VALUES: Final[dict[str, dict[str, Any]]] = {
    # Tiny movie for unit tests: two small FOVs of different shapes, accelerated
    # growth (4 h doubling) so that 8 frames contain divisions.
    "easy": {
        "n_fov": 2,
        "n_frames": 8,
        "frame_sizes": ((128, 160), (144, 128)),
        "cell_diameter_px": (15.0, 36.0),
        "max_aspect": 1.4,
        "coverage": 0.15,
        "cluster_fraction": 0.2,
        "cluster_radius_px": 20.0,
        "doubling_time_h": 4.0,
        "motility_px": 1.0,
        "drift_px": 0.5,
        "debris_per_mpx": 0.0,
        "hot_pixel_fraction": 0.0,
    },
    # Demonstration data: 3 FOVs (one <= 512 px, one > 512 px, one non-square),
    # sparse cells 15-50 px with a few colonies, a 20 h cell cycle (about a fifth
    # of the cells divide in 4 h), drift, one dropped frame.
    "demo": {},
    # Benchmark difficulty (algorithms.md §8.2 "standard"): 4 FOVs x 60 frames x
    # 512², crowded colonies with many touching cells, 10 h of growth, faster
    # cells, stronger drift and the full noise model.
    "standard": {
        "n_fov": 4,
        "n_frames": 60,
        "frame_sizes": ((512, 512),),
        "coverage": 0.3,
        "cluster_fraction": 0.6,
        "cluster_radius_px": 45.0,
        "doubling_time_h": 18.0,
        "motility_px": 1.5,
        "drift_px": 0.5,
    },
    # Small cells (issue 13): semi-axes 6-13 px (12-26 px across) in 1024²
    # frames, about 80 cells per FOV at the start, the standard optics,
    # motion and growth.
    "small": {
        "n_fov": 2,
        "n_frames": 40,
        "frame_sizes": ((1024, 1024),),
        "cell_diameter_px": (12.0, 26.0),
        "max_aspect": 1.3,
        "coverage": 0.018,
        "cluster_fraction": 0.3,
        "cluster_radius_px": 25.0,
        "doubling_time_h": 18.0,
        "motility_px": 1.5,
        "drift_px": 0.5,
    },
    # Dense rod-shaped bacteria (E. coli-like): capsules 15-25 px wide and
    # 40-90 px long, packed side by side in large colonies with aligned domains,
    # dividing end to end every ~2 h at 5 min per frame; dark, nearly flat
    # bodies (edge_thickness 0.6) with a bright halo and a weaker shade-off
    # (halo_strength 0.7) than the blob presets, little texture.
    "rods": {
        "n_fov": 2,
        "n_frames": 20,
        "frame_sizes": ((512, 512), (448, 576)),
        "interval_min": 5.0,
        "cell_shape": "rod",
        "cell_diameter_px": (15.0, 90.0),
        "shape_irregularity": 0.0,
        "coverage": 0.5,
        "cluster_fraction": 0.95,
        "cluster_radius_px": 110.0,
        "doubling_time_h": 2.0,
        "motility_px": 0.3,
        "persistence": 0.5,
        "rotation_deg": 0.5,
        "drift_px": 0.3,
        "edge_thickness": 0.6,
        "halo_sigma_px": 6.0,
        "halo_strength": 0.7,
        "granule_density": 0.004,
        "debris_per_mpx": 10.0,
    },
    # Nucleus-like round cells (algorithms.md §4.8): 4 FOVs x 40 frames x 512²,
    # mothers ~50 px across that round up for 1-3 frames before they split into
    # two round daughters held in contact for 3-6 frames, 10 h doubling.
    "round": {
        "n_fov": 4,
        "n_frames": 40,
        "frame_sizes": ((512, 512),),
        "cell_diameter_px": (30.0, 56.0),
        "max_aspect": 1.2,
        "shape_irregularity": 0.04,
        "coverage": 0.25,
        "cluster_fraction": 0.5,
        "cluster_radius_px": 50.0,
        "doubling_time_h": 10.0,
        "motility_px": 1.0,
        "division_model": "round",
    },
}
PRESETS: Final = tuple(_PRESET_VALUES)
_BACKGROUND_AUTO_BYTES: Final = 256 * 2**20


def _default_dropped(
    name: str, n_fov: int, n_frames: int
) -> tuple[tuple[int, int], ...]:
    if n_frames < 3:
        return ()
    if name == "standard" and n_fov > 1:
        return ((1, n_frames // 3),)
    return ((0, n_frames // 2),)


def preset(name: str, **overrides: Any) -> SynthParams:
    """Return the parameters of a named difficulty preset.

    Parameters
    ----------
    name : {'easy', 'demo', 'standard', 'small', 'rods', 'round'}
        Preset name (see Notes).
    **overrides
        Field values replacing the preset's (any :class:`SynthParams` field). When
        ``dropped_frames`` is not given it is derived from the final ``n_fov`` and
        ``n_frames`` (frame ``T // 2`` of FOV 0; FOV 1, frame ``T // 3`` for
        ``standard``; none when ``T < 3``). When ``write_background`` is not given
        it is true only if the float32 background stacks of all FOVs and
        channels take at most 256 MiB (so benchmark-sized data skip them).

    Returns
    -------
    SynthParams
        The validated parameters, with ``preset`` set to ``name``.

    Raises
    ------
    ValueError
        If ``name`` is unknown, an override names no field, or a value is invalid.

    Notes
    -----
    ``easy``: 2 FOVs (128x160, 144x128) x 8 frames, cells 15-36 px, 4 h doubling.
    ``demo``: 3 FOVs (512², 576x640, 384x448) x 24 frames at 10 min, cells 15-50
    px at 12 % coverage, 20 h doubling, 0.4 px/frame drift, one dropped frame.
    ``standard``: 4 FOVs x 60 frames x 512², 30 % coverage in colonies, 18 h
    doubling, 1.5 px/frame motility, 0.5 px/frame drift. ``small``: 2 FOVs x
    40 frames x 1024², cells 12-26 px across (semi-axes 6-13 px), about 80
    per FOV at the start, otherwise as ``standard``.
    ``rods``: dense rod-shaped bacteria (``cell_shape='rod'``): 2 FOVs (512²,
    448x576) x 20 frames at 5 min, rods 15-25 px wide and 40-90 px long, 50 %
    coverage, 95 % of it in colonies of radius ~110 px made of aligned domains
    of rods packed side by side, 2 h doubling with division end to end, little
    motion (0.3 px/frame), phase contrast with flat dark bodies
    (``edge_thickness`` 0.6), a 6-px halo at 0.7 strength and bright lines
    between touching rods; one dropped frame (FOV 0, frame 10).
    ``round``: nucleus-like cells, 4 FOVs x 40 frames x 512², round cells 30-56
    px across (aspect <= 1.2) at 25 % coverage, half in colonies, 10 h
    doubling, with ``division_model='round'``: a mother ~50 px across rounds
    up for 1-3 frames (a disk of 65 % of her area, twice as thick: darker,
    with a stronger halo), then splits into two round daughters that stay in
    contact for 3-6 frames.
    """
    if name not in _PRESET_VALUES:
        raise ValueError(
            f"preset name={name!r} is unknown: choose one of {', '.join(PRESETS)}."
        )
    valid = {f.name for f in dataclasses.fields(SynthParams)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ValueError(
            f"preset overrides {unknown!r} are not SynthParams fields: valid fields "
            f"are {', '.join(sorted(valid))}."
        )
    values: dict[str, Any] = {**_PRESET_VALUES[name], **overrides, "preset": name}
    n_fov = int(values.get("n_fov", SynthParams.n_fov))
    n_frames = int(values.get("n_frames", SynthParams.n_frames))
    if "dropped_frames" not in overrides:
        values["dropped_frames"] = _default_dropped(name, n_fov, n_frames)
    if "write_background" not in overrides:
        sizes = values.get("frame_sizes", SynthParams.frame_sizes)
        n_fl = int(values.get("n_fl_channels", SynthParams.n_fl_channels))
        nbytes = sum(
            4
            * n_fl
            * n_frames
            * int(sizes[f % len(sizes)][0])
            * int(sizes[f % len(sizes)][1])
            for f in range(n_fov)
        )
        values["write_background"] = nbytes <= _BACKGROUND_AUTO_BYTES
    return SynthParams(**values)


# ------------------------------------------------------------------ simple queries
def channel_names(params: SynthParams) -> list[str]:
    """Return the channel names in file order: phase first, then fluorescence.

    Parameters
    ----------
    params : SynthParams
        Generator parameters.

    Returns
    -------
    list of str
        ``["Phase", "GFP", ...]`` with ``1 + n_fl_channels`` entries.
    """
    return [PHASE_CHANNEL_NAME, *FL_CHANNEL_NAMES[: params.n_fl_channels]]


def fov_shape(params: SynthParams, fov: int) -> tuple[int, int]:
    """Return the frame size ``(Y, X)`` in px of one FOV.

    Parameters
    ----------
    params : SynthParams
        Generator parameters.
    fov : int
        FOV index in ``[0, n_fov)``.

    Returns
    -------
    (int, int)
        Rows and columns.

    Raises
    ------
    IndexError
        If ``fov`` is out of range.
    """
    _check_fov(params, fov)
    y, x = params.frame_sizes[fov % len(params.frame_sizes)]
    return int(y), int(x)


def _check_fov(params: SynthParams, fov: int) -> None:
    if not 0 <= fov < params.n_fov:
        raise IndexError(
            f"fov={fov!r} is out of range: only {params.n_fov} FOVs (0 to "
            f"{params.n_fov - 1}) are generated."
        )


def frame_times(params: SynthParams, fov: int, *, channel: int = 0) -> F64:
    """Return the acquisition time of every frame of one FOV and channel.

    Parameters
    ----------
    params : SynthParams
        Generator parameters.
    fov : int
        FOV index.
    channel : int, optional
        Channel index in the file (0 = phase). Channel ``c`` is acquired
        ``c * channel_delay_s`` seconds after the phase plane.

    Returns
    -------
    (T,) ndarray of float64
        Minutes since the start of the acquisition, strictly increasing. Each value
        is a whole number of milliseconds divided by 60, so that it survives a
        round trip through OME ``DeltaT`` seconds written with 3 decimals.

    Raises
    ------
    IndexError
        If ``fov`` or ``channel`` is out of range.
    """
    _check_fov(params, fov)
    if not 0 <= channel <= params.n_fl_channels:
        raise IndexError(
            f"channel={channel!r} is out of range: the file has "
            f"{params.n_fl_channels + 1} channels."
        )
    seconds = frame_times_s(params, fov, channel=channel)
    return seconds / 60.0


def frame_times_s(params: SynthParams, fov: int, *, channel: int = 0) -> F64:
    """Return the plane times of :func:`frame_times` in seconds (ms resolution).

    Parameters
    ----------
    params : SynthParams
        Generator parameters.
    fov : int
        FOV index.
    channel : int, optional
        Channel index in the file (0 = phase).

    Returns
    -------
    (T,) ndarray of float64
        Seconds since the start, rounded to milliseconds.
    """
    rng = np.random.default_rng([params.seed, fov, _STREAM_TIMES])
    k = np.arange(params.n_frames, dtype=np.float64)
    jitter = rng.uniform(0.0, params.interval_jitter_min, params.n_frames)
    if fov == 0:
        # The experiment starts with FOV 0's first phase plane, so that the
        # truth is on the pipeline's clock (earliest PC plane = 0, §1.4).
        jitter[0] = 0.0
    minutes = k * params.interval_min + fov * params.fov_delay_min + jitter
    seconds = minutes * 60.0 + channel * params.channel_delay_s
    return np.round(seconds, 3)
