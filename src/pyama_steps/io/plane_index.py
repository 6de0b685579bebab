"""Where every plane of the input is: an index built once per run (issue 16).

Opening the input with bioio costs time that grows with the file: for an
OME-TIFF, bioio-ome-tiff parses every TIFF page and builds a dask graph with a
task per plane of the scene; bioio-czi builds that graph from the subblock
directory; bioio-nd2 builds the OME metadata of every frame and a graph of
every frame of the file. A copy job (one per FOV x channel) paid it again:
9-20 s before its first plane on a 32,000-plane file, 200 times for the 200
copy jobs of a 50-FOV x 4-channel run.

The index is built once per run, before the first job, by the Snakemake
process's ``onstart`` handler in a worker process (a reader that crashes
takes only that worker down). It holds, for each FOV the run copies, the byte
offset of every (channel, T, Z) plane's first pixel, found from the file's own
table of contents (tifffile's page list of an OME-TIFF, the subblock directory
of a CZI, the chunk map of an ND2), and the identity of the input (size,
modification time and a hash of its two ends). A copy job checks that
identity, then reads its planes with one ``pread`` each: its start-up no
longer depends on the size of the file.

bioio stays the entry point: it chose the reader and gave the metadata of the
run plan, and an index is written only when, for every indexed FOV, its
shape, samples and dtype are bioio's and sample planes of the first and the
last FOV read through bioio are equal to the index's. Layouts an index does not
describe (compressed planes, tiles and mosaics, pyramids without a full
level, other readers) are left out and their jobs read through bioio
(:class:`pyama_steps.io.PlaneReader`), as are the jobs of a file that changed
after its index was built.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "IndexedPlanes",
    "SceneIndex",
    "build_plane_index",
    "index_is_current",
    "open_indexed_planes",
    "write_plane_index",
]

log = logging.getLogger(__name__)

#: Layout of the index file; an index of another version is rebuilt.
FORMAT = 1
#: Bytes hashed at each end of the input to identify it (with size and mtime).
_SAMPLE_BYTES = 16 << 10
#: Packages whose versions an index depends on: another version rebuilds it.
_PACKAGES = (
    "pyama-steps",
    "bioio",
    "bioio-czi",
    "bioio-nd2",
    "bioio-ome-tiff",
    "nd2",
    "tifffile",
)


@dataclass(frozen=True)
class SceneIndex:
    """Where the planes of one scene are.

    Attributes
    ----------
    shape_tczyx : tuple of int
        ``(T, C, Z, Y, X)``.
    samples : int
        Samples per pixel (RGB: 3), 1 for gray.
    dtype : numpy dtype
        Pixel type with the byte order of the file.
    offsets : (C, T, Z) ndarray of int64
        File offset of the first pixel of each plane.
    row_bytes, pixel_bytes : int
        Bytes from one row, and from one pixel, to the next; 0 for a plane
        stored in one piece (ND2 frames hold the channels pixel by pixel and
        may pad their rows).
    """

    shape_tczyx: tuple[int, int, int, int, int]
    samples: int
    dtype: np.dtype[Any]
    offsets: npt.NDArray[np.int64]
    row_bytes: int = 0
    pixel_bytes: int = 0

    @property
    def plane_shape(self) -> tuple[int, ...]:
        """``(Y, X)``, or ``(Y, X, S)`` for more than one sample."""
        y, x = self.shape_tczyx[3:]
        return (y, x) if self.samples == 1 else (y, x, self.samples)

    @property
    def span(self) -> int:
        """Bytes from a plane's first pixel to the end of its last."""
        y, x = self.shape_tczyx[3:]
        if not self.row_bytes:
            return y * x * self.samples * self.dtype.itemsize
        return (y - 1) * self.row_bytes + x * self.pixel_bytes


# --------------------------------------------------------------------------
# Building: the format libraries' own view of the file
# --------------------------------------------------------------------------


def _tiff_scenes(path: Path) -> dict[int, SceneIndex]:
    """Index the OME-TIFF series whose pages are stored uncompressed in one piece."""
    import tifffile

    scenes: dict[int, SceneIndex] = {}
    # the options bioio-ome-tiff reads pixels with (Reader._get_image_data)
    with tifffile.TiffFile(path, is_mmstack=False) as tif:
        size = os.fstat(tif.filehandle.fileno()).st_size
        for s, series in enumerate(tif.series):
            with contextlib.suppress(ValueError, IndexError, TypeError):
                scene = _tiff_series(series, tif.byteorder, size)
                if scene is not None:
                    scenes[s] = scene
    return scenes


def _tiff_series(series: Any, byteorder: str, file_size: int) -> SceneIndex | None:
    """Index one series, or None if a page is not stored in final form."""
    axes = str(series.get_axes(False))
    shape = tuple(int(n) for n in series.get_shape(False))
    plane_axes = "YXS" if axes.endswith("YXS") else "YX"
    if not axes.endswith(plane_axes):
        return None
    lead, lead_shape = axes[: -len(plane_axes)], shape[: -len(plane_axes)]
    if any(ax not in "TCZ" and n != 1 for ax, n in zip(lead, lead_shape, strict=True)):
        return None
    sizes = {ax: n for ax, n in zip(lead, lead_shape, strict=True) if ax in "TCZ"}
    n_t, n_c, n_z = (sizes.get(ax, 1) for ax in "TCZ")
    y, x = shape[len(lead)], shape[len(lead) + 1]
    samples = shape[-1] if plane_axes == "YXS" else 1
    pages = series.pages
    if int(np.prod(lead_shape)) != len(pages) or not pages:
        return None
    key = pages[0].keyframe
    if not key.is_final or key.dtype is None or (key.planarconfig == 2 and samples > 1):
        return None
    dtype = np.dtype(key.dtype).newbyteorder(byteorder)
    plane = (y, x) if samples == 1 else (y, x, samples)
    nbytes = int(np.prod(plane)) * dtype.itemsize
    flat = np.empty(len(pages), dtype=np.int64)
    for i, page in enumerate(pages):
        if page is None or tuple(page.shape) != plane:
            return None
        if page.keyframe is not key and not page.keyframe.is_final:
            return None
        offsets, counts = page.dataoffsets, page.databytecounts
        ends = np.add(offsets, counts)
        if (
            sum(counts) != nbytes
            or any(ends[:-1] != offsets[1:])
            or int(ends[-1]) > file_size
        ):
            return None
        flat[i] = offsets[0]
    # pages are in the series' axis order; the index is (C, T, Z)
    order = [ax for ax in lead if ax in "TCZ"]
    full = {ax: sizes.get(ax, 1) for ax in order}
    grid = flat.reshape([full[ax] for ax in order])
    for ax in "TCZ":
        if ax not in order:
            grid = grid[..., np.newaxis]
            order.append(ax)
    offsets = np.ascontiguousarray(grid.transpose([order.index(ax) for ax in "CTZ"]))
    return SceneIndex((n_t, n_c, n_z, y, x), samples, dtype, offsets)


def _czi_scenes(path: Path) -> dict[int, SceneIndex]:
    """Index the CZI scenes whose planes are each one uncompressed subblock."""
    from pyama_steps.io.plane_sources import _read_czi_directory

    with open(path, "rb") as fh:
        entries = _read_czi_directory(fh)
        if not entries:
            return {}
        size = os.fstat(fh.fileno()).st_size
        # bioio's indices count from the file's first T, C and Z (libCZI's
        # total bounding box); its scenes are the S indices in order
        start = {ax: min(e.start(ax) for e in entries) for ax in "TCZ"}
        by_scene: dict[int | None, list[Any]] = {}
        for e in entries:
            x, y = e.dims.get("X", (0, 0, 0)), e.dims.get("Y", (0, 0, 0))
            if (x[2], y[2]) != (x[1], y[1]):
                continue  # a pyramid level: reading at full size skips it
            by_scene.setdefault(e.dims["S"][0] if "S" in e.dims else None, []).append(e)
        scenes: dict[int, SceneIndex] = {}
        for s, key in enumerate(sorted(by_scene, key=lambda k: -1 if k is None else k)):
            scene = _czi_scene(fh, by_scene[key], start, size)
            if scene is not None:
                scenes[s] = scene
    return scenes


def _czi_scene(
    fh: Any, entries: Sequence[Any], start: Mapping[str, int], file_size: int
) -> SceneIndex | None:
    """Index one CZI scene, or None unless each plane is one plain subblock."""
    from pyama_steps.io.plane_sources import _CZI_DTYPES, _czi_pixels_at

    rects = {
        (e.dims["X"][0], e.dims["Y"][0], e.dims["X"][1], e.dims["Y"][1])
        for e in entries
        if "X" in e.dims and "Y" in e.dims
    }
    types = {e.pixel_type for e in entries}
    if len(rects) != 1 or len(types) != 1 or types.pop() not in _CZI_DTYPES:
        return None  # tiles (a mosaic) or mixed pixel types: libCZI composes
    _, _, w, h = rects.pop()
    planes: dict[tuple[int, int, int], int] = {}
    nbytes = 0
    for e in entries:
        dtype = _CZI_DTYPES[e.pixel_type]
        nbytes = w * h * dtype.itemsize
        key = tuple(e.start(ax) - start[ax] for ax in "CTZ")
        at = _czi_pixels_at(fh, e, nbytes=nbytes)
        if at is None or key in planes or at[0] + nbytes > file_size:
            return None
        planes[key] = at[0]
    n_c, n_t, n_z = (max(k[i] for k in planes) + 1 for i in range(3))
    if len(planes) != n_c * n_t * n_z or min(min(k) for k in planes) < 0:
        return None  # a plane is missing
    offsets = np.empty((n_c, n_t, n_z), dtype=np.int64)
    for (c, t, z), offset in planes.items():
        offsets[c, t, z] = offset
    dtype = _CZI_DTYPES[entries[0].pixel_type]
    return SceneIndex((n_t, n_c, n_z, h, w), 1, dtype, offsets)


def _nd2_frames(fh: Any) -> dict[int, tuple[int, int]]:
    """Map frame number to the offset and bytes of its data, from the chunk map.

    Notes
    -----
    The last 40 bytes of an ND2 file (version 3) give the place of its chunk
    map: a chunk of ``name!`` + 8-byte offset + 8-byte size entries; a chunk
    is a 16-byte header (magic, name length, data length), its name and its
    data. An image chunk ``ImageDataSeq|<frame>!`` holds an 8-byte time
    stamp, then the frame (as the ``nd2`` package reads it).
    """
    head = struct.Struct("<IIQ")
    fh.seek(-40, os.SEEK_END)
    tail = fh.read(40)
    if tail[:32] != b"ND2 CHUNK MAP SIGNATURE 0000001!":
        return {}
    (where,) = struct.unpack_from("<Q", tail, 32)
    fh.seek(where)
    magic, name_length, size = head.unpack(fh.read(head.size))
    if magic != 0x0ABECEDA:
        return {}
    fh.seek(name_length, os.SEEK_CUR)
    table = fh.read(size)
    frames: dict[int, tuple[int, int]] = {}
    pos = 0
    while True:
        end = table.index(b"!", pos) + 1
        name = table[pos:end]
        if name == b"ND2 CHUNK MAP SIGNATURE 0000001!":
            break
        offset, _ = struct.unpack_from("<QQ", table, end)
        pos = end + 16
        if name.startswith(b"ImageDataSeq|"):
            fh.seek(offset)
            magic, name_length, size = head.unpack(fh.read(head.size))
            if magic != 0x0ABECEDA or size < 8:
                return {}
            frames[int(name[13:-1])] = (offset + head.size + name_length + 8, size - 8)
    return frames


def _nd2_scenes(path: Path) -> dict[int, SceneIndex]:
    """Index the positions of an uncompressed ND2 file (version 3)."""
    import nd2

    with nd2.ND2File(path) as f:
        if f.is_legacy or f.attributes.compressionType is not None:
            return {}
        attrs = f.attributes
        sizes = dict(f.sizes)
        loops = f.loop_indices
        dtype = np.dtype(f.dtype).newbyteorder("<")
    if set(sizes) - set("PTZCYXS") or not attrs.widthBytes:
        return {}
    with open(path, "rb") as fh:
        frames = _nd2_frames(fh)
        file_size = os.fstat(fh.fileno()).st_size
    n_c = attrs.channelCount or 1
    samples = attrs.componentCount // n_c
    n_p, n_t, n_z = (sizes.get(ax, 1) for ax in "PTZ")
    y, x = int(attrs.heightPx), int(attrs.widthPx or 0)
    scene = SceneIndex(
        (n_t, n_c, n_z, y, x),
        samples,
        dtype,
        np.full((n_p, n_c, n_t, n_z), -1, dtype=np.int64),
        row_bytes=int(attrs.widthBytes),
        pixel_bytes=attrs.componentCount * dtype.itemsize,
    )
    frame_bytes = y * scene.row_bytes
    channel = np.arange(n_c, dtype=np.int64) * samples * dtype.itemsize
    for seq, where in enumerate(loops or ({},)):
        at = frames.get(seq)
        if at is None or at[1] < frame_bytes or at[0] + frame_bytes > file_size:
            return {}  # a missing frame (the nd2 package gives zeros)
        p, t, z = (where.get(ax, 0) for ax in "PTZ")
        scene.offsets[p, :, t, z] = at[0] + channel
    if (scene.offsets < 0).any():
        return {}
    return {
        p: SceneIndex(
            scene.shape_tczyx,
            samples,
            dtype,
            np.ascontiguousarray(scene.offsets[p]),
            row_bytes=scene.row_bytes,
            pixel_bytes=scene.pixel_bytes,
        )
        for p in range(n_p)
    }


def build_plane_index(path: str | Path, *, reader: str) -> dict[int, SceneIndex]:
    """Find the planes of every scene the format library sees stored plainly.

    Parameters
    ----------
    path : str or Path
        The input file.
    reader : str
        The bioio plugin that reads it (:func:`pyama_steps.io.reader_name`).

    Returns
    -------
    dict of int to SceneIndex
        Scene index -> where its planes are; scenes whose planes are
        compressed, tiled or otherwise not one plain block each are absent,
        and so is every scene of a reader without an index (only
        bioio-ome-tiff, bioio-czi and bioio-nd2 files have one).

    Notes
    -----
    Nothing here is checked against bioio; :func:`write_plane_index` does.
    """
    builder = _BUILDERS.get(reader)
    return {} if builder is None else builder(Path(path))


#: bioio plugin -> the builder of its files' index
_BUILDERS = {
    "bioio_ome_tiff": _tiff_scenes,
    "bioio_czi": _czi_scenes,
    "bioio_nd2": _nd2_scenes,
}


# --------------------------------------------------------------------------
# The check against bioio, and the index file
# --------------------------------------------------------------------------


def _identity(path: str | Path) -> dict[str, Any]:
    from pyama_steps.io.integrity import input_fingerprint

    return input_fingerprint(path, sample_bytes=_SAMPLE_BYTES)


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _disagreement(scene: SceneIndex, expected: Mapping[str, Any]) -> str | None:
    """Why an indexed scene is not what bioio reports, or None."""
    got = {
        "shape_tczyx": list(scene.shape_tczyx),
        "rgb_samples": scene.samples,
        "dtype": str(scene.dtype.newbyteorder("=")),
    }
    want = {k: expected[k] for k in got}
    want["shape_tczyx"] = [int(n) for n in want["shape_tczyx"]]
    return None if got == want else f"the index has {got}, bioio {want}"


def _sample_planes(scene: SceneIndex) -> list[tuple[int, int, int]]:
    """(channel, t, z) planes compared with bioio: they tell the axes apart."""
    n_t, n_c, n_z = scene.shape_tczyx[:3]
    return sorted({(n_c - 1, 0, n_z - 1), (0, n_t - 1, 0)})


def _bioio_plane(img: Any, fov: int, c: int, t: int, z: int) -> npt.NDArray[Any]:
    """Plane ``(c, t, z)`` of scene ``fov`` as bioio reads it."""
    from bioio_base.reader import Reader

    from pyama_steps.io.images import quiet_readers
    from pyama_steps.io.planes import PlaneReader

    with quiet_readers():
        img.set_scene(fov)
        if type(img.reader)._read_indexed is not Reader._read_indexed:
            # the plugin reads one plane without building the scene's dask
            # graph (bioio-czi, bioio-nd2): the same pixels, at a fixed cost
            order = "YXS" if "S" in img.reader.dims.order else "YX"
            return np.asarray(img.get_image_data(order, T=t, C=c, Z=z))
    with PlaneReader(img, fov, c, direct=False) as reader:
        return reader.plane(t, z)


def _check_against_bioio(
    path: str | Path, scenes: Mapping[int, SceneIndex], fovs: Sequence[int]
) -> str | None:
    """Compare planes of the first and the last FOV with bioio; why not equal."""
    from pyama_steps.io.images import open_image

    img = open_image(path, scene=fovs[-1])
    # the last FOV first: opening the image has built its dask graph
    for fov in sorted({fovs[0], fovs[-1]}, reverse=True):
        scene = scenes[fov]
        for c, t, z in _sample_planes(scene):
            want = _bioio_plane(img, fov, c, t, z)
            if want.ndim == 3 and want.shape[-1] == 1 and scene.samples == 1:
                want = want[..., 0]
            got = _read_plane(path, scene, c, t, z)
            if got.shape != want.shape or got.dtype != want.dtype:
                return (
                    f"FOV {fov}, channel {c}, frame {t}, z {z}: the index reads "
                    f"{got.shape} {got.dtype}, bioio {want.shape} {want.dtype}"
                )
            if not np.array_equal(got, want, equal_nan=got.dtype.kind == "f"):
                return f"FOV {fov}, channel {c}, frame {t}, z {z}: other pixel values"
    return None


def _read_plane(
    path: str | Path, scene: SceneIndex, c: int, t: int, z: int
) -> npt.NDArray[Any]:
    with open(path, "rb") as fh:
        fd = fh.fileno()
        return _pread_plane(fd, scene, int(scene.offsets[c, t, z]), str(path))


def _pread_plane(
    fd: int, scene: SceneIndex, offset: int, name: str
) -> npt.NDArray[Any]:
    native = scene.dtype.newbyteorder("=")
    if scene.row_bytes:
        buf = np.empty(scene.span, dtype=np.uint8)
    else:
        buf = out = np.empty(scene.plane_shape, dtype=scene.dtype)
    n = os.preadv(fd, [buf.data.cast("B")], offset)
    if n != buf.nbytes:
        raise OSError(
            f"{name}: read {n} of {buf.nbytes} bytes of a plane at byte {offset}; "
            "the file is shorter than its index says (truncated?)"
        )
    if scene.row_bytes:  # the pixels of one channel, spread over the span
        item = scene.dtype.itemsize
        view: npt.NDArray[Any] = np.ndarray(
            (*scene.shape_tczyx[3:], scene.samples),
            dtype=scene.dtype,
            buffer=buf,
            strides=(scene.row_bytes, scene.pixel_bytes, item),
        )
        out = view.reshape(scene.plane_shape)
        return out.astype(native)
    return out.astype(native, copy=False)


def write_plane_index(
    *,
    input_path: str,
    output: str,
    reader: str,
    fovs: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """Build, check and write the plane index of one run.

    Parameters
    ----------
    input_path : str
        The input file.
    output : str
        The index (``.json``), written atomically after the offsets of
        every plane (the ``.npy`` of the same name).
    reader : str
        The bioio plugin of the run plan.
    fovs : mapping
        The run plan's FOVs as in ``metadata.json`` (``{"0": {"shape_tczyx":
        ..., "rgb_samples": ..., "dtype": ...}, ...}``): the FOVs indexed and
        what bioio reports for them.

    Returns
    -------
    dict
        ``{"fovs": [indexed FOVs], "reason": why FOVs were left out or None,
        "warning": None, or what went wrong where nothing should (the index
        differs from bioio, or its builder failed)}``.

    Notes
    -----
    The index lists a FOV only if its shape, samples and dtype are bioio's;
    if the sample planes of the first and the last such FOV differ from
    bioio's, or the file changed while it was read, it lists none. A run
    reads the FOVs it does not list through bioio.
    """
    from pyama_steps.io.outputs import atomic_output, atomic_write_text

    before = _identity(input_path)
    failure = None
    try:
        scenes = build_plane_index(input_path, reader=reader)
    except Exception as e:  # a layout the builder misreads: bioio reads it
        scenes = {}
        failure = f"the index could not be built ({type(e).__name__}: {e})"
    kept: dict[int, SceneIndex] = {}
    left: list[str] = []
    for key, expected in fovs.items():
        fov = int(key)
        scene = scenes.get(fov)
        problem = "not one uncompressed block per plane" if scene is None else None
        if scene is not None:
            problem = _disagreement(scene, expected)
        if problem is None and scene is not None:
            kept[fov] = scene
        else:
            left.append(f"FOV {fov}: {problem}")
    if reader not in _BUILDERS:
        reasons = [f"{reader} files have no plane index"]
    elif failure is not None:
        reasons = [failure]
    elif not scenes:
        reasons = ["no scene is stored as one uncompressed block per plane"]
    else:
        reasons = left
    warning = failure
    if kept:
        differ = _check_against_bioio(input_path, kept, sorted(kept))
        if differ is not None:
            reasons = [f"differs from bioio at {differ}"]
            warning, kept = reasons[0], {}
    if _identity(input_path) != before:
        reasons, kept = ["the input changed while it was indexed"], {}
    # every FOV's (C, T, Z) offsets in one .npy beside the JSON, after a
    # token that ties the two: a job maps it and touches only its own planes
    token = int.from_bytes(os.urandom(7), "little")
    flat = [np.array([token], dtype=np.int64)]
    starts: dict[int, int] = {}
    at = 1
    for fov, scene in sorted(kept.items()):
        starts[fov] = at
        flat.append(scene.offsets.ravel())
        at += scene.offsets.size
    meta = {
        "format": FORMAT,
        "token": token,
        # the file's identity; its path only for the reader (Snakemake may
        # spell a relative path differently from the configuration)
        "input": {"path": input_path, **before},
        "versions": _versions(),
        "reader": reader,
        "requested": sorted(int(f) for f in fovs),
        "reason": "; ".join(reasons) or None,
        "fovs": {
            str(fov): {
                "shape_tczyx": list(s.shape_tczyx),
                "samples": s.samples,
                "dtype": s.dtype.str,
                "row_bytes": s.row_bytes,
                "pixel_bytes": s.pixel_bytes,
                "at": starts[fov],
            }
            for fov, s in sorted(kept.items())
        },
    }
    with atomic_output(_offsets_path(output)) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.concatenate(flat))
    atomic_write_text(output, json.dumps(meta) + "\n")
    return {"fovs": sorted(kept), "reason": meta["reason"], "warning": warning}


def _offsets_path(index_path: str | Path) -> Path:
    """Return the ``.npy`` of offsets beside an index's JSON."""
    return Path(index_path).with_suffix(".npy")


def _same_file(recorded: Any, identity: Mapping[str, Any]) -> bool:
    """Whether an index's recorded input has this identity (size, mtime, hash)."""
    return isinstance(recorded, dict) and all(
        recorded.get(k) == v for k, v in identity.items()
    )


def _read_meta(index_path: str | Path) -> dict[str, Any]:
    meta = json.loads(Path(index_path).read_text(encoding="utf-8"))
    if not isinstance(meta, dict):
        raise ValueError("the index holds no JSON object")
    return meta


def index_is_current(
    index_path: str | Path, *, input_path: str, fovs: Sequence[int]
) -> bool:
    """Whether an index exists for this input, these FOVs and these versions.

    Parameters
    ----------
    index_path : str or Path
        The index file.
    input_path : str
        The input file.
    fovs : sequence of int
        The FOVs of the run.

    Returns
    -------
    bool
        False when the file is missing or unreadable, of another format,
        written by other package versions, for other FOVs or for an input
        whose identity has changed since: the index is then rebuilt.
    """
    try:
        meta = _read_meta(index_path)
        identity = _identity(input_path)
    except (OSError, ValueError):
        return False
    return bool(
        meta.get("format") == FORMAT
        and meta.get("versions") == _versions()
        and meta.get("requested") == sorted(int(f) for f in fovs)
        and _same_file(meta.get("input"), identity)
        and _offsets_path(index_path).is_file()
    )


# --------------------------------------------------------------------------
# Reading: what a copy job does
# --------------------------------------------------------------------------


class IndexedPlanes:
    """Read the planes of one FOV and channel at the offsets of a plane index.

    Opened by :func:`open_indexed_planes`; the interface of
    :class:`pyama_steps.io.PlaneReader`.

    Attributes
    ----------
    n_t, n_z : int
        Frames and Z planes.
    has_samples : bool
        Whether a plane is ``(Y, X, S)`` (RGB) rather than ``(Y, X)``.
    """

    def __init__(self, path: str | Path, scene: SceneIndex, channel: int) -> None:
        self._path = str(path)
        self._scene = scene
        self._offsets = scene.offsets[channel]
        self.n_t = scene.shape_tczyx[0]
        self.n_z = scene.shape_tczyx[2]
        self.has_samples = scene.samples > 1
        self._fd = os.open(path, os.O_RDONLY)

    def plane(self, t: int, z: int) -> npt.NDArray[Any]:
        """Return plane ``(t, z)`` in the native byte order of its dtype."""
        if not (0 <= t < self.n_t and 0 <= z < self.n_z):
            raise IndexError(
                f"plane (t={t}, z={z}) is outside T={self.n_t}, Z={self.n_z}"
            )
        if self._fd < 0:
            raise ValueError("the reader is closed")
        offset = int(self._offsets[t, z])
        return _pread_plane(self._fd, self._scene, offset, self._path)

    def close(self) -> None:
        """Close the file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> IndexedPlanes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_indexed_planes(
    index_path: str | Path, input_path: str, *, fov: int, channel: int
) -> IndexedPlanes | None:
    """Open the planes of one FOV and channel through the run's plane index.

    Parameters
    ----------
    index_path : str or Path
        The index file of the run (:func:`write_plane_index`).
    input_path : str
        The input file.
    fov : int
        Scene index.
    channel : int
        Channel index.

    Returns
    -------
    IndexedPlanes or None
        None, with the reason logged, when there is no index, it does not
        list this FOV or channel, or the input is not the file it was built
        for (size, modification time, first and last 16 KiB): the caller then
        reads through bioio.

    Notes
    -----
    The cost is a ``stat``, 32 KiB hashed, the index's JSON and a memory map
    of its offsets, whatever the size of the file and of the FOV.
    """
    why = None
    try:
        meta = _read_meta(index_path)
        entry = meta["fovs"].get(str(fov))
        if meta.get("format") != FORMAT:
            why = "it is of another format"
        elif not _same_file(meta["input"], _identity(input_path)):
            why = f"{input_path} is not the file it was built for"
        elif entry is None:
            why = f"it does not list FOV {fov} ({meta.get('reason')})"
        elif not 0 <= channel < entry["shape_tczyx"][1]:
            why = f"it does not list channel {channel}"
        else:
            # mapped: opening costs the same whatever the size of the FOV
            flat = np.load(_offsets_path(index_path), mmap_mode="r")
            n_t, n_c, n_z = entry["shape_tczyx"][:3]
            start = int(entry["at"])
            offsets = flat[start : start + n_c * n_t * n_z]
            if int(flat[0]) != meta["token"] or offsets.size != n_c * n_t * n_z:
                why = "its offsets are of another index"
            else:
                offsets = offsets.reshape(n_c, n_t, n_z)
    except (OSError, ValueError, KeyError, TypeError) as e:
        why = f"it cannot be read ({type(e).__name__}: {e})"
    if why is not None:
        log.info("plane index %s not used: %s; reading through bioio", index_path, why)
        return None
    scene = SceneIndex(
        shape_tczyx=tuple(entry["shape_tczyx"]),
        samples=int(entry["samples"]),
        dtype=np.dtype(entry["dtype"]),
        offsets=offsets,
        row_bytes=int(entry["row_bytes"]),
        pixel_bytes=int(entry["pixel_bytes"]),
    )
    log.info(
        "reading FOV %d, channel %d at the offsets of %s", fov, channel, index_path
    )
    return IndexedPlanes(input_path, scene, channel)
