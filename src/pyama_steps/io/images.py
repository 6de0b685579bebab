"""Opening the input with bioio: the reader, its failures and its loggers.

:func:`open_image` is the one way the package opens a microscopy file; every
failure becomes an :class:`InputError` that names the file and the fix.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "InputError",
    "TimestampError",
    "open_image",
    "quiet_readers",
    "reader_name",
    "reader_version",
]

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
