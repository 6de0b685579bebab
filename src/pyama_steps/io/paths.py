"""Output file names, relative to the output directory (algorithms.md §0.1).

The Snakefile builds its patterns from these functions and the manifest lists
the same names, so the two cannot drift apart.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Final

__all__ = [
    "MANIFEST",
    "METADATA",
    "TRACES_ALL",
    "base_name",
    "check_writable",
    "fov_dir",
    "fov_file",
    "fov_json",
    "parse_fov_list",
    "stack_file",
]

METADATA = "metadata.json"
MANIFEST = "processing_results.yaml"
TRACES_ALL = "traces.csv"

_DOUBLE_SUFFIXES = (".ome.tiff", ".ome.tif", ".ome.zarr")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def base_name(input_path: str | Path, override: str | None = None) -> str:
    """Return ``{base}``: the input file name without its extension, made safe.

    Parameters
    ----------
    input_path : str or Path
        The input file.
    override : str, optional
        ``ingest.base_name``; returned unchanged when given.

    Returns
    -------
    str
        The base name; ``.ome.tif``, ``.ome.tiff`` and ``.ome.zarr`` count as
        one extension and characters outside ``[A-Za-z0-9._-]`` become ``_``.
    """
    if override:
        return override
    name = Path(str(input_path).rstrip("/")).name
    lower = name.lower()
    for suffix in _DOUBLE_SUFFIXES:
        if lower.endswith(suffix):
            name = name[: -len(suffix)]
            break
    else:
        stem = Path(name).stem
        name = stem if stem else name
    return _UNSAFE.sub("_", name)


def fov_dir(fov: int | str) -> str:
    """Return ``fov_NNN`` for a FOV index.

    A string that is not a number (a Snakemake wildcard such as ``"{fov}"``) is
    inserted as is, so the workflow's path patterns come from these functions.
    """
    if isinstance(fov, str) and not fov.isdigit():
        return f"fov_{fov}"
    return f"fov_{int(fov):03d}"


def stack_file(base: str, fov: int | str, kind: str, channel: int | str) -> str:
    """Return ``fov_NNN/{base}_fov_NNN_{kind}_ch_{c}.npy``."""
    d = fov_dir(fov)
    return f"{d}/{base}_{d}_{kind}_ch_{channel}.npy"


#: Stack kinds that ``outputs: lean`` writes as temporary files, removed once
#: the traces exist (algorithms.md §0.2): the raw copies (``pc``, ``fl``), the
#: mask and every background stack. Labels, traces, lineage, the statistics
#: and the manifest stay. ``{kind}`` is the copy rule's pattern (pc or fl).
LEAN_TEMPORARY_KINDS: Final = frozenset(
    {
        "pc",
        "fl",
        "seg",
        "fl_background_model",
        "fl_corrected",
        "fl_background",
        "{kind}",
    }
)

_STACK_NAME = re.compile(r"^.*_fov_[^_/]+_([a-z_{}]+)_ch_[^_/]+\.npy$")


def stack_kind(path: str | Path) -> str | None:
    """Return the kind of a per-FOV stack path (``pc``, ``seg``, ...), else None.

    Examples
    --------
    >>> stack_kind("out/fov_003/exp_fov_003_fl_background_model_ch_1.npy")
    'fl_background_model'
    >>> stack_kind("out/fov_003/exp_fov_003_traces.csv") is None
    True
    """
    match = _STACK_NAME.match(Path(path).name)
    return match.group(1) if match else None


def fov_file(base: str, fov: int | str, kind: str) -> str:
    """Return ``fov_NNN/{base}_fov_NNN_{kind}.csv`` (``traces``, ``lineage``)."""
    d = fov_dir(fov)
    return f"{d}/{base}_{d}_{kind}.csv"


def fov_json(base: str, fov: int | str, kind: str) -> str:
    """Return ``fov_NNN/{base}_fov_NNN_{kind}.json`` (``seg_stats``, ``cell_stats``)."""
    d = fov_dir(fov)
    return f"{d}/{base}_{d}_{kind}.json"


def check_writable(output_dir: str | Path) -> None:
    """Raise a readable error when ``output_dir`` cannot be written.

    The nearest existing folder of ``output_dir`` must allow creating files
    (``os.access``, which also reports read-only file systems for root).

    Raises
    ------
    PermissionError
        Naming the folder and the fix.
    """
    import os

    target = Path(output_dir).absolute()
    probe = target
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise NotADirectoryError(
            f"output_dir {str(output_dir)!r}: {str(probe)!r} is a file, not a "
            "folder; choose another output_dir."
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(
            f"output_dir {str(output_dir)!r} is not writable ({str(probe)!r} is "
            "read-only or not yours); choose another output_dir or fix its "
            "permissions."
        )


def parse_fov_list(text: str) -> list[int]:
    """Parse a command-line ``--fovs 0,2`` value into FOV indices."""
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"--fovs {text!r} is invalid: give comma-separated FOV indices, e.g. 0,2"
        ) from e
