"""What is in a microscopy file, and a starting configuration for it.

``pyama-steps inspect FILE`` prints :func:`describe_file`; ``pyama-steps init
FILE -o config/my.yaml`` writes :func:`render_config`. Both read metadata;
``init`` also reads the first and the last phase plane of the first FOV
(:func:`check_phase_planes`, never the whole file) to tell a dense field of
rod-shaped bacteria, which needs ``segmentation.method: rods``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "check_phase_planes",
    "describe_file",
    "format_description",
    "guess_channels",
    "looks_like_phase",
    "render_config",
]

#: Words (case-insensitive, optionally followed by digits: ``Phase2``, ``PH3``)
#: that usually mean a transmitted-light (phase) channel.
_PHASE_WORD = re.compile(
    r"(?:phase|phc|pc|bf|brightfield|dic|trans|transmitted|tl|mono)\d*|ph[123]?",
    re.IGNORECASE,
)
#: Two-word names of transmitted-light channels.
_PHASE_PHRASES = (("bright", "field"), ("t", "pmt"))


def looks_like_phase(name: str) -> bool:
    """Tell whether a channel name names a transmitted-light (phase) channel.

    The name is split into words at every character that is not a letter or a
    digit, and one whole word must be a phase word (``Phase``, ``Ph1``-``Ph3``,
    ``PH``, ``PhC``, ``PC``, ``BF``, ``Brightfield``, ``DIC``, ``Trans``,
    ``Transmitted``, ``TL``, ``Mono``, optionally followed by digits) or two
    words ``Bright Field`` / ``T PMT``. A word inside another word does not
    count (``PhotoConversion``, ``BFP``), and ``pH`` written as the acidity
    (lower-case p, upper-case H: ``5-FAM/pH 9.0``) is not phase.

    Parameters
    ----------
    name : str
        One channel name.

    Returns
    -------
    bool
        True if the name looks like phase contrast, bright field or DIC.

    Examples
    --------
    >>> [looks_like_phase(n) for n in ("Phase", "PH3", "TL BF", "5-FAM/pH 9.0")]
    [True, True, True, False]
    """
    words = re.findall(r"[A-Za-z0-9]+", name or "")
    for i, word in enumerate(words):
        if word == "pH":  # the acidity of a dye's buffer, as in '5-FAM/pH 9.0'
            continue
        if _PHASE_WORD.fullmatch(word):
            return True
        pair = tuple(w.lower() for w in words[i : i + 2])
        if pair in _PHASE_PHRASES:
            return True
    return False


def guess_channels(names: Sequence[str]) -> tuple[int, list[int], str]:
    """Guess the phase-contrast channel from channel names.

    Parameters
    ----------
    names : sequence of str
        Channel names in C order.

    Returns
    -------
    pc : int
        The first channel whose name looks like transmitted light
        (:func:`looks_like_phase`: Phase, PC, BF, DIC, Trans, ... as whole
        words), else 0.
    fl : list of int
        Every other channel.
    reason : str
        Why ``pc`` was chosen, for the comment in the generated config.
    """
    for i, name in enumerate(names):
        if looks_like_phase(name):
            return i, [c for c in range(len(names)) if c != i], f"name {name!r}"
    return 0, list(range(1, len(names))), "no phase-like name: channel 0"


def describe_file(path: str | Path) -> dict[str, Any]:
    """Describe a file's scenes without reading pixels.

    Parameters
    ----------
    path : str or Path
        A file bioio can open.

    Returns
    -------
    dict
        ``reader``, ``n_scenes`` and per scene its name, ``T, C, Z, Y, X``,
        RGB samples, dtype, channel names, pixel size (µm), the frame interval
        (min) and whether real per-plane timestamps exist.

    Raises
    ------
    pyama_steps.io.InputError
        If the file cannot be opened or its metadata read.
    """
    from pyama_steps.io import (
        InputError,
        nominal_interval_min,
        open_image,
        reader_name,
        reader_version,
        scene_info,
        scene_timestamps,
    )

    img = open_image(path)
    scenes = []
    try:
        infos = [scene_info(img, f) for f in range(len(img.scenes))]
    except InputError as e:
        raise InputError(f"{path}: {e}") from e.__cause__
    names = infos[0].channel_names if infos else ()
    pc, _, _ = guess_channels(names)
    stamps = scene_timestamps(img, path, infos, pc=pc, z_mode="plane", z_plane=0)
    for info in infos:
        interval = nominal_interval_min(img, fov=info.index)
        t = info.shape_tczyx[0]
        times = stamps.get(info.index)
        real = (
            times is not None
            and len(times) == t
            and bool(np.all(np.isfinite(times)))
            and (t == 1 or bool(times[-1] > times[0]))
        )
        step = (
            float(np.median(np.diff(times)))
            if real and times is not None and t > 1
            else None
        )
        scenes.append(
            {
                "fov": info.index,
                "scene": info.name,
                "T": t,
                "C": info.shape_tczyx[1],
                "Z": info.shape_tczyx[2],
                "Y": info.shape_tczyx[3],
                "X": info.shape_tczyx[4],
                "rgb_samples": info.samples,
                "dtype": info.dtype,
                "channel_names": list(info.channel_names),
                "pixel_size_um": list(info.pixel_size_um),
                "timestamps": real,
                "frame_interval_min": step if step is not None else interval,
            }
        )
    return {
        "path": str(path),
        "reader": reader_name(img),
        "reader_version": reader_version(img),
        "n_scenes": len(infos),
        "scenes": scenes,
    }


def format_description(desc: dict[str, Any]) -> str:
    """Render :func:`describe_file`'s result as a readable table."""
    lines = [
        f"{desc['path']}: {desc['n_scenes']} scene(s) (FOVs), read by "
        f"{desc['reader']} {desc['reader_version'] or ''}".rstrip()
    ]
    names = desc["scenes"][0]["channel_names"] if desc["scenes"] else []
    pc, _, reason = guess_channels(names)
    lines.append(
        "channels: "
        + ", ".join(f"{i}: {n!r}" for i, n in enumerate(names))
        + f"   (phase guess: {pc}, {reason})"
    )
    lines.append(
        f"{'FOV':>4} {'scene':<16} {'T':>5} {'C':>2} {'Z':>3} {'Y':>6} {'X':>6} "
        f"{'S':>2} {'dtype':<8} {'px (µm)':>8} {'interval':>10} timestamps"
    )
    for s in desc["scenes"]:
        px = s["pixel_size_um"][2]
        iv = s["frame_interval_min"]
        stamps = "yes" if s["timestamps"] else "no"
        lines.append(
            f"{s['fov']:>4} {s['scene'][:16]:<16} {s['T']:>5} {s['C']:>2} {s['Z']:>3} "
            f"{s['Y']:>6} {s['X']:>6} {s['rgb_samples']:>2} {s['dtype']:<8} "
            f"{(f'{px:.4g}' if px else '-'):>8} "
            f"{(f'{iv:.4g} min' if iv else '-'):>10} {stamps}"
        )
    return "\n".join(lines)


_DIC_NAME = re.compile(r"dic|bright|(^|[^a-z])bf([^a-z]|$)", re.IGNORECASE)


def check_phase_planes(path: str | Path, desc: dict[str, Any]) -> dict[str, Any] | None:
    """Check the first and last phase plane of FOV 0 for dense rod-shaped cells.

    Parameters
    ----------
    path : str or Path
        The file :func:`describe_file` described.
    desc : dict
        Its description (channels, T, RGB samples).

    Returns
    -------
    dict or None
        ``None`` when the file has no scene or frame, or its phase channel
        (guessed from the names) looks like DIC or bright field. Otherwise
        ``dense_rods`` (bool: any plane is a dense field of elongated dark
        objects, :func:`pyama_steps.segmentation.rods.check_dense_rods`) and, for
        the deciding plane (the last when none is), ``frame``, ``n_cells``,
        ``median_aspect`` and ``touching_fraction``.

    Notes
    -----
    Reads at most two planes (Z index 0; RGB samples averaged), one at a time.
    """
    from pyama_steps.io import PlaneReader, open_image
    from pyama_steps.segmentation.rods import check_dense_rods

    scenes = desc["scenes"]
    if not scenes or scenes[0]["T"] < 1:
        return None
    names = scenes[0]["channel_names"]
    pc, _, _ = guess_channels(names)
    if names and _DIC_NAME.search(names[pc] or ""):
        return None  # no dark bodies with a bright halo in DIC or bright field
    result: dict[str, Any] = {}
    with PlaneReader(open_image(path), 0, pc) as reader:
        for t in sorted({0, scenes[0]["T"] - 1}):
            plane = np.asarray(reader.plane(t, 0), dtype=np.float64)
            if plane.ndim == 3:
                plane = plane.mean(axis=-1)
            check = check_dense_rods(plane)
            result = {
                "dense_rods": check.dense_rods,
                "frame": t,
                "n_cells": check.n_cells,
                "median_aspect": check.median_aspect,
                "touching_fraction": check.touching_fraction,
            }
            if check.dense_rods:
                break
    return result


def _quoted(value: Any) -> str:
    """Quote a YAML scalar in JSON syntax, keeping non-ASCII characters readable."""
    return json.dumps(value, ensure_ascii=False)


def render_config(
    desc: dict[str, Any],
    *,
    output_dir: str = "results",
    phase_check: dict[str, Any] | None = None,
) -> str:
    """Write a commented starting configuration for a described file.

    Every guess is marked ``# CHECK:`` so that the user can confirm it. Keys
    not written keep their defaults (``config/config.yaml``). With
    `phase_check` (:func:`check_phase_planes`) saying ``dense_rods``, the
    configuration selects ``segmentation.method: rods`` and says why.
    """
    scenes = desc["scenes"]
    names = scenes[0]["channel_names"] if scenes else []
    pc, fl, reason = guess_channels(names)
    listing = ", ".join(f"{i}: {n!r}" for i, n in enumerate(names))

    def name_or_index(c: int) -> Any:
        n = names[c]
        return n if n and names.count(n) == 1 else c

    lines = [
        f"# pyama-steps configuration for {Path(desc['path']).name}",
        (
            f"# written by `pyama-steps init`; {desc['n_scenes']} FOV(s), "
            f"channels {listing}."
        ),
        "# Keys not listed keep their defaults (see config/config.yaml).",
        "# Run: snakemake --cores 8 --configfile <this file>",
        "# Targets go first: snakemake qc --cores 8 --configfile <this file>",
        "",
        f"input: {_quoted(desc['path'])}",
        f"output_dir: {_quoted(output_dir)}",
        "fovs: all",
        "",
        "channels:",
        f"  # CHECK: phase-contrast channel guessed from {reason}",
        f"  pc: {_quoted(name_or_index(pc))}",
        "  # CHECK: fluorescence channels = every other channel",
        f"  fl: {_quoted([name_or_index(c) for c in fl])}",
    ]
    ingest = _ingest_lines(scenes)
    if ingest:
        lines += ["", "ingest:", *ingest]
    lines += _segmentation_lines(names, pc, phase_check)
    return "\n".join(lines) + "\n"


def _ingest_lines(scenes: list[dict[str, Any]]) -> list[str]:
    """Return the ``ingest:`` entries :func:`render_config` writes (none if empty)."""
    ingest: list[str] = []
    if any(s["Z"] > 1 for s in scenes):
        ingest += [
            "  # CHECK: the file has Z-stacks; plane 0 is used. Other choices:",
            "  # z_mode: max / mean (projection) or z_plane: <index>",
            "  z_mode: plane",
            "  z_plane: 0",
        ]
    if any(s["rgb_samples"] > 1 for s in scenes):
        ingest += ["  # CHECK: RGB data; the samples are averaged", "  rgb: mean"]
    if any(s["T"] > 1 and not s["timestamps"] for s in scenes):
        iv = next(
            (s["frame_interval_min"] for s in scenes if s["frame_interval_min"]), None
        )
        value = iv if iv else "null  # SET: minutes between frames"
        ingest += [
            "  # CHECK: no per-frame timestamps in the file; time = frame x interval",
            f"  frame_interval_min: {value}",
        ]
    if any(s["dtype"] not in {"uint8", "uint16"} for s in scenes):
        ingest += [
            "  # CHECK: pixels are not uint8/uint16; values that uint16 cannot",
            "  # hold fail the copy. Use dtype_policy: scale with scale_factor.",
            "  dtype_policy: strict",
        ]
    return ingest


def _segmentation_lines(
    names: Sequence[str | None], pc: int, phase_check: dict[str, Any] | None
) -> list[str]:
    """Return the ``segmentation:`` block :func:`render_config` writes, if any."""
    if phase_check is not None and phase_check["dense_rods"]:
        c = phase_check
        aspect, touching = c["median_aspect"], 100 * c["touching_fraction"]
        return [
            "",
            "segmentation:",
            f"  # CHECK: frame {c['frame']} of FOV 0 is a dense field of dark rods",
            f"  # ({c['n_cells']} objects, median length/width {aspect:.1f},",
            f"  # {touching:.0f} % with a neighbour within 2 px): rod-shaped bacteria",
            "  # packed in colonies, which log-STD would merge into one object per",
            "  # colony. Use method logstd for other cells.",
            "  method: rods",
        ]
    if names and _DIC_NAME.search(names[pc] or ""):
        # DIC and bright-field show no dark body with a bright phase halo
        return [
            "",
            "segmentation:",
            f"  # CHECK: {names[pc]!r} looks like DIC / bright field, not phase",
            "  # contrast: no halo to trim, so the window's spread is eroded instead",
            "  halo_trim: false",
            "  shrink_px: 1",
        ]
    return []
