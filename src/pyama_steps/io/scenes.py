"""What one scene (FOV) of the input holds: sizes, dtype, channels, pixel size."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from pyama_steps.io.images import InputError, quiet_readers

__all__ = ["SceneInfo", "scene_info", "scene_infos"]


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
    from pyama_steps.io.plane_index import build_plane_index

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
