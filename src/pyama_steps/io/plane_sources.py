"""Per-file plane sources: read one plane through a handle opened once.

bioio's plugins open the file again for every dask chunk they compute, and
what they rebuild there grows with the file: bioio-ome-tiff re-parses every
TIFF page and the OME series (``tifffile.imread(..., series=scene)``),
bioio-czi's aicspylibczi reader re-reads the subblock directory and the
dimension table. On a 3,200-plane file that is 150 ms (OME-TIFF) and 5 ms
(CZI) per plane, ten times the cost at 320 planes, so copying a file is
quadratic in its size (issue 16).

A source here keeps the format library's own handle for the life of a
:class:`pyama_steps.io.PlaneReader` and reads a plane with it: the TIFF page of
the plane (tifffile, the library bioio-ome-tiff reads with) or the CZI plane
(pylibCZIrw, the library of bioio-czi's second reader, LGPL-3.0; for
uncompressed single-tile planes, straight from the subblock directory read
once, since libCZI scans the directory on every read). bioio still
opens the file and gives the metadata and the dask array; a source is only a
faster way to the same pixels, and :func:`open_plane_source` returns ``None``
for any layout it does not recognise, leaving the reader to bioio's own path.
"""

from __future__ import annotations

import contextlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["PlaneSource", "open_plane_source"]


class PlaneSource(Protocol):
    """A format-specific reader of the planes of one scene and channel."""

    def read(self, t: int, z: int) -> npt.NDArray[Any]:
        """Return plane ``(t, z)`` in the file's native dtype."""
        ...

    def close(self) -> None:
        """Release the file handle."""
        ...


class _TiffPlanes:
    """Planes of one OME-TIFF series, found by page index in a TiffFile."""

    def __init__(self, path: Path, *, scene: int, channel: int) -> None:
        import tifffile

        # the options bioio-ome-tiff reads pixels with (Reader._get_image_data)
        self._tif = tifffile.TiffFile(path, is_mmstack=False)
        try:
            series = self._tif.series[scene]
            axes = str(series.get_axes(False))
            shape = tuple(int(n) for n in series.get_shape(False))
            plane_axes = "YXS" if axes.endswith("YXS") else "YX"
            if not axes.endswith(plane_axes):
                raise ValueError(f"series axes {axes!r} do not end in YX")
            lead = axes[: len(axes) - len(plane_axes)]
            fixed = {"C": channel}
            for ax, n in zip(lead, shape, strict=False):
                if ax not in "TZC" and n != 1:
                    raise ValueError(f"axis {ax!r} of size {n} is not T, C or Z")
            if int(np.prod(shape[: len(lead)])) != len(series.pages):
                raise ValueError("the series has missing or extra pages")
        except Exception:
            self._tif.close()
            raise
        self._pages = series.pages
        self._lead = lead
        self._lead_shape = shape[: len(lead)]
        self._fixed = fixed

    def read(self, t: int, z: int) -> npt.NDArray[Any]:
        where = {**self._fixed, "T": t, "Z": z}
        index = tuple(where.get(ax, 0) for ax in self._lead)
        page = self._pages[int(np.ravel_multi_index(index, self._lead_shape))]
        if page is None:
            raise IndexError(f"page of plane (t={t}, z={z}) is missing")
        return np.asarray(page.asarray())

    def close(self) -> None:
        self._tif.close()


class _CziPlanes:
    """Planes of one CZI scene, read through one open pylibCZIrw document."""

    _GRAY = frozenset({"Gray8", "Gray16", "Gray32Float"})

    def __init__(self, path: Path, *, scene: int, channel: int) -> None:
        from pylibCZIrw import czi as pyczi

        self._ctx = pyczi.open_czi(str(path))
        self._doc = self._ctx.__enter__()
        try:
            box = dict(self._doc.total_bounding_box)
            # other dimensions (B, H, R, I, V) must have one index, so that a
            # (T, C, Z) plane is one image; libCZI ignores dimensions of size 1
            extra = sorted(
                ax for ax, (_, n) in box.items() if ax not in "TCZXY" and n != 1
            )
            if extra:
                raise ValueError(f"dimensions {extra} are not T, C or Z")
            self._start = {ax: int(box[ax][0]) for ax in "TCZ" if ax in box}
            c = self._start.get("C", 0) + channel
            pixel = str(self._doc.get_channel_pixel_type(c))
            if pixel not in self._GRAY:
                raise ValueError(f"pixel type {pixel!r} is not a gray type")
            rects = self._doc.scenes_bounding_rectangle
            if rects:
                self._scene: int | None = sorted(rects)[scene]
                self._roi = rects[self._scene]
            elif scene == 0:
                self._scene = None
                self._roi = self._doc.total_bounding_rectangle
            else:
                raise IndexError(f"scene {scene} of a file without scenes")
            roi = self._roi
            self._index = _czi_plane_index(
                path,
                scene=self._scene,
                channel=c,
                roi=(int(roi.x), int(roi.y), int(roi.w), int(roi.h)),
            )
            self._fd = os.open(path, os.O_RDONLY) if self._index else -1
        except Exception:
            self.close()
            raise
        self._channel = c

    def read(self, t: int, z: int) -> npt.NDArray[Any]:
        plane = {
            "T": self._start.get("T", 0) + t,
            "C": self._channel,
            "Z": self._start.get("Z", 0) + z,
        }
        block = self._index.get((plane["T"], plane["Z"]))
        if block is not None:
            offset, dtype = block
            out = np.empty((int(self._roi.h), int(self._roi.w)), dtype=dtype)
            if os.preadv(self._fd, [out.data.cast("B")], offset) != out.nbytes:
                raise OSError(f"short read of the subblock at byte {offset}")
            return out.astype(dtype.newbyteorder("="), copy=False)
        data = self._doc.read(roi=self._roi, plane=plane, scene=self._scene)
        return np.ascontiguousarray(data[..., 0])

    def close(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            os.close(self._fd)
            self._fd = -1
        with contextlib.suppress(Exception):
            self._ctx.__exit__(None, None, None)


#: CZI DirectoryEntryDV pixel types read directly (ZISRAW spec) -> dtype
_CZI_DTYPES: dict[int, np.dtype[Any]] = {
    0: np.dtype("<u1"),
    1: np.dtype("<u2"),
    2: np.dtype("<f4"),
}


@dataclass(frozen=True)
class _CziEntry:
    """One entry of a CZI subblock directory (DirectoryEntryDV)."""

    #: dimension -> (start, size, stored size)
    dims: dict[str, tuple[int, int, int]]
    #: file position of the subblock segment
    position: int
    pixel_type: int
    compression: int
    pyramid: int
    #: bytes of the entry (32 + 20 per dimension)
    size: int

    def start(self, dim: str) -> int:
        """Start index on ``dim`` (0 where the entry has no such dimension)."""
        return self.dims.get(dim, (0, 1, 1))[0]


def _read_czi_directory(fh: BinaryIO) -> list[_CziEntry] | None:
    """Return the subblock directory of an open CZI file, None if not a CZI.

    Notes
    -----
    Layout from the ZISRAW specification: the file header holds the directory
    position at byte 84; a directory segment holds its entry count and, from
    byte 160, the entries (32 bytes and 20 per dimension).
    """
    fh.seek(0)
    head = fh.read(96)
    if head[:10] != b"ZISRAWFILE":
        return None
    (dir_pos,) = struct.unpack_from("<q", head, 84)
    fh.seek(dir_pos)
    seg = fh.read(160)
    if seg[:15] != b"ZISRAWDIRECTORY":
        return None
    (used,) = struct.unpack_from("<q", seg, 24)
    (count,) = struct.unpack_from("<i", seg, 32)
    data = fh.read(max(0, used - 128))
    entries = []
    pos = 0
    for _ in range(count):
        ptype, fpos, _part, comp, pyramid = struct.unpack_from("<iqiiB", data, pos + 2)
        (ndim,) = struct.unpack_from("<i", data, pos + 28)
        dims: dict[str, tuple[int, int, int]] = {}
        for k in range(ndim):
            name, start, size, _coord, stored = struct.unpack_from(
                "<4siifi", data, pos + 32 + 20 * k
            )
            dims[name.rstrip(b"\0").decode("ascii")] = (start, size, stored)
        entries.append(_CziEntry(dims, fpos, ptype, comp, pyramid, 32 + 20 * ndim))
        pos += 32 + 20 * ndim
    return entries


def _czi_pixels_at(
    fh: BinaryIO, entry: _CziEntry, *, nbytes: int
) -> tuple[int, np.dtype[Any]] | None:
    """Return the file offset and dtype of an entry's pixels, if read directly.

    The subblock must be uncompressed, unscaled, at full resolution, of a gray
    pixel type and hold exactly ``nbytes`` of pixels; else None. A subblock's
    pixels start ``max(256, 16 + entry size) + metadata size`` bytes after its
    32-byte segment header (ZISRAW specification).
    """
    x, y = entry.dims.get("X", (0, 0, 0)), entry.dims.get("Y", (0, 0, 0))
    dtype = _CZI_DTYPES.get(entry.pixel_type)
    if (
        entry.compression != 0
        or entry.pyramid != 0
        or dtype is None
        or (x[2], y[2]) != (x[1], y[1])
        or any(v[1] != 1 for k, v in entry.dims.items() if k not in "XYM")
    ):
        return None
    fh.seek(entry.position)
    sub = fh.read(48)
    if sub[:14] != b"ZISRAWSUBBLOCK":
        return None
    meta, _att, size = struct.unpack_from("<iiq", sub, 32)
    if size != nbytes:
        return None
    return entry.position + 32 + max(256, 16 + entry.size) + meta, dtype


def _czi_plane_index(
    path: Path, *, scene: int | None, channel: int, roi: tuple[int, int, int, int]
) -> dict[tuple[int, int], tuple[int, np.dtype[Any]]]:
    """Map ``(T, Z)`` to the file offset of its uncompressed subblock's pixels.

    Parameters
    ----------
    path : Path
        The CZI file.
    scene : int or None
        The ``S`` index of the scene; None for a file without scenes.
    channel : int
        The absolute ``C`` index.
    roi : tuple of int
        ``(x, y, w, h)`` of the scene: a subblock is used only if it covers
        exactly this rectangle at full resolution.

    Returns
    -------
    dict
        ``(T, Z) -> (offset, dtype)`` for every plane of the scene and
        channel, or an empty dict when any of them is not exactly one
        uncompressed, unscaled gray subblock covering ``roi`` (libCZI then
        composes the planes).

    Notes
    -----
    libCZI (and aicspylibczi) find a plane's subblocks by scanning the whole
    subblock directory on every read, a cost that grows with the file
    (issue 16); the directory is read here once.
    """
    with open(path, "rb") as fh:
        entries = _read_czi_directory(fh)
        if entries is None:
            return {}
        found: dict[tuple[int, int], list[_CziEntry]] = {}
        for e in entries:
            if e.start("C") != channel or (
                scene is not None and e.dims.get("S", (scene,))[0] != scene
            ):
                continue
            x, y = e.dims.get("X", (0, 0, 0)), e.dims.get("Y", (0, 0, 0))
            if (x[0], y[0], x[1], y[1]) != roi:
                return {}
            found.setdefault((e.start("T"), e.start("Z")), []).append(e)
        index: dict[tuple[int, int], tuple[int, np.dtype[Any]]] = {}
        for key, blocks in found.items():
            if len(blocks) != 1:
                return {}  # several tiles (M) of one plane
            dtype = _CZI_DTYPES.get(blocks[0].pixel_type)
            if dtype is None:
                return {}
            at = _czi_pixels_at(fh, blocks[0], nbytes=roi[2] * roi[3] * dtype.itemsize)
            if at is None:
                return {}
            index[key] = at
    return index


def _local_path(img: Any) -> Path | None:
    """Return the local path bioio opened ``img`` from, if it is one."""
    reader = img.reader
    path = getattr(reader, "_path", None)
    fs = getattr(reader, "_fs", None)
    if path is None or type(fs).__name__ != "LocalFileSystem":
        return None
    p = Path(str(path))
    return p if p.is_file() else None


def open_plane_source(img: Any, *, fov: int, channel: int) -> PlaneSource | None:
    """Open a direct plane source for one scene and channel, when one applies.

    Parameters
    ----------
    img : bioio.BioImage
        The opened image (bioio chose the reader and parsed the metadata).
    fov : int
        Scene index in ``img.scenes``.
    channel : int
        Channel index on the C axis.

    Returns
    -------
    PlaneSource or None
        A source whose ``read(t, z)`` returns what bioio's dask array holds at
        ``[t, z]`` for this scene and channel, or ``None`` when the reader is
        not bioio-ome-tiff or bioio-czi, the file is not local, or its layout
        is one the source does not handle (the caller then reads through
        bioio). The caller checks each plane's shape and dtype against bioio's
        array and closes the source.

    Notes
    -----
    Only the opening is decided here; a source that later fails to read a
    plane is dropped by :class:`pyama_steps.io.PlaneReader`, which reads that
    plane and the rest through bioio.
    """
    module = type(img.reader).__module__.split(".")[0]
    path = _local_path(img)
    if path is None:
        return None
    kinds: dict[str, type[_TiffPlanes] | type[_CziPlanes]] = {
        "bioio_ome_tiff": _TiffPlanes,
        "bioio_czi": _CziPlanes,
    }
    kind = kinds.get(module)
    if kind is None:
        return None
    try:
        return kind(path, scene=fov, channel=channel)
    except Exception:  # an unrecognised layout: bioio's own path reads it
        return None
