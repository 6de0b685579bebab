"""Write synthetic time-lapses and their ground truth to disk.

:func:`write_dataset` streams the frames of :mod:`pyama_steps.validation.synth` into one
multi-scene image file (OME-TIFF, or CZI) and writes the truth next to it::

    <out_dir>/<name>.ome.tiff              one scene per FOV, TCYX, uint16
    <out_dir>/<name>_truth/truth.json      parameters, channels, per-FOV times
    <out_dir>/<name>_truth/fov_NNN/
        labels.npy                         (T, Y, X) uint16 (uint32 above 65535 ids)
        lineage.csv                        cell,parent,first_frame,last_frame
        traces.csv                         one row per (cell, frame) with truth
        background_ch_{c}.npy              (T, Y, X) float32 true background

Every file is written through a temporary name and renamed when complete, one
frame at a time, so memory stays O(frame). For the same parameters the OME-TIFF and
all truth files are byte-identical (no clock, host or random UUID is recorded).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import tifffile

from pyama_steps import __version__
from pyama_steps.io.outputs import atomic_output
from pyama_steps.validation.synth import (
    GENERATOR_NAME,
    GENERATOR_VERSION,
    FovSimulation,
    SynthFrame,
    SynthParams,
    channel_names,
    fov_shape,
    frame_times_s,
    simulate_fov,
)

__all__ = ["FORMATS", "write_dataset"]

FORMATS: Final = ("ome-tiff", "czi")
_NAME_RE: Final = re.compile(r"^[A-Za-z0-9._-]+$")
# Gap between scenes on the CZI stage canvas, px.
_CZI_SCENE_GAP: Final = 64


# ------------------------------------------------------------------ file helpers
def _tmp_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def _atomic(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open ``path`` through a temporary file renamed on success."""
    with atomic_output(path) as tmp:
        if "b" in mode:
            fh: IO[Any] = open(tmp, mode)  # noqa: SIM115 - closed below
        else:
            fh = open(tmp, mode, encoding="utf-8", newline="\n")  # noqa: SIM115
        with fh:
            yield fh


class _NpyStream:
    """Write a ``.npy`` file frame by frame (NPY 1.0, C order).

    The header is the one ``numpy.lib.format.open_memmap`` writes, but frames are
    appended with plain writes: a memory map would keep every touched page in the
    process's RSS (algorithms.md §7.4), growing with T.
    """

    def __init__(
        self, path: Path, shape: tuple[int, ...], dtype: npt.DTypeLike
    ) -> None:
        self.path = path
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.shape = shape
        self._written = 0
        self._tmp = _tmp_path(path)
        self._fh: IO[bytes] | None = open(self._tmp, "wb")  # noqa: SIM115 - closed in close()
        header = {
            "descr": np.lib.format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": shape,
        }
        np.lib.format.write_array_header_1_0(self._fh, header)

    def write(self, frame: npt.NDArray[Any]) -> None:
        if self._fh is None:
            raise ValueError(f"{self.path} is already closed.")
        if frame.shape != self.shape[1:]:
            raise ValueError(
                f"frame shape {frame.shape!r} does not match {self.path.name} frames "
                f"of shape {self.shape[1:]!r}."
            )
        self._fh.write(np.ascontiguousarray(frame, dtype=self.dtype).tobytes())
        self._written += 1

    def close(self) -> None:
        if self._fh is None:
            return
        self._fh.close()
        self._fh = None
        if self._written != self.shape[0]:
            self._tmp.unlink(missing_ok=True)
            raise ValueError(
                f"{self.path.name}: {self._written} frames written, "
                f"{self.shape[0]} expected."
            )
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._tmp.unlink(missing_ok=True)


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    with _atomic(path) as fh:
        frame.to_csv(fh, index=False, float_format="%.6f", lineterminator="\n")


# ------------------------------------------------------------------ truth per FOV
class _FovTruthWriter:
    """Collects one FOV's truth while its frames stream past."""

    def __init__(self, truth_dir: Path, sim: FovSimulation) -> None:
        p = sim.params
        self.sim = sim
        self.dir = truth_dir / f"fov_{sim.fov:03d}"
        self.dir.mkdir(parents=True, exist_ok=True)
        ny, nx = sim.shape
        shape = (sim.n_frames, ny, nx)
        self.label_dtype = np.dtype(np.uint16 if sim.max_id <= 65535 else np.uint32)
        self._streams: list[_NpyStream] = []
        self.labels = self._open(self.dir / "labels.npy", shape, self.label_dtype)
        self.backgrounds = [
            self._open(self.dir / f"background_ch_{c}.npy", shape, np.float32)
            for c in range(1, p.n_fl_channels + 1)
            if p.write_background
        ]
        self._blocks: list[npt.NDArray[np.float64]] = []

    def _open(self, path: Path, shape: tuple[int, ...], dtype: Any) -> _NpyStream:
        stream = _NpyStream(path, shape, dtype)
        self._streams.append(stream)
        return stream

    def add(self, frame: SynthFrame) -> None:
        self.labels.write(frame.labels)
        # Without background truth the list of streams is empty.
        for stream, bg in zip(self.backgrounds, frame.fl_background, strict=False):
            stream.write(bg)
        if frame.dropped or len(frame.cell) == 0:
            return
        cols: list[npt.NDArray[Any]] = [
            frame.cell,
            np.full(len(frame.cell), frame.frame),
            frame.area,
            frame.position_x,
            frame.position_y,
        ]
        for total, mask_total in zip(
            frame.true_total, frame.true_mask_total, strict=True
        ):
            cols += [total, mask_total / frame.area, mask_total]
        self._blocks.append(np.column_stack(cols).astype(np.float64))

    def finish(self) -> None:
        for stream in self._streams:
            stream.close()
        n_fl = self.sim.params.n_fl_channels
        names = ["cell", "frame", "area", "position_x", "position_y"]
        for c in range(1, n_fl + 1):
            names += [
                f"true_total_ch_{c}",
                f"true_mean_ch_{c}",
                f"true_mask_total_ch_{c}",
            ]
        data = (
            np.concatenate(self._blocks)
            if self._blocks
            else np.zeros((0, len(names)), dtype=np.float64)
        )
        data = data[np.lexsort((data[:, 1], data[:, 0]))]
        traces = pd.DataFrame(data, columns=names)
        for col in ("cell", "frame", "area"):
            traces[col] = traces[col].astype(np.int64)
        _write_csv(self.dir / "traces.csv", traces)
        _write_csv(self.dir / "lineage.csv", self.sim.lineage)

    def abort(self) -> None:
        for stream in self._streams:
            stream.abort()


@contextlib.contextmanager
def _fov_truth(truth_dir: Path, sim: FovSimulation) -> Iterator[_FovTruthWriter]:
    """Open one FOV's truth files; complete them on success, remove them on error."""
    writer = _FovTruthWriter(truth_dir, sim)
    try:
        yield writer
        writer.finish()
    except BaseException:
        writer.abort()
        raise


def _planes(
    sim: FovSimulation, writer: _FovTruthWriter
) -> Iterator[npt.NDArray[np.uint16]]:
    """Yield the FOV's planes in TC order, passing every frame to ``writer``.

    The consumer may close the generator after the last plane (tifffile does when
    compressing), so completing the truth files is left to :func:`_fov_truth`.
    """
    for t in range(sim.n_frames):
        frame = sim.render(t)
        writer.add(frame)
        images = frame.images
        # Drop the frame's float arrays before the next frame is rendered.
        del frame
        yield from images
        del images


def _fov_info(sim: FovSimulation) -> dict[str, Any]:
    """Return the FOV's entry of ``truth.json``."""
    return {
        "fov": sim.fov,
        "shape": [sim.n_frames, *sim.shape],
        "times_min": [float(v) for v in sim.times_min],
        "dropped_frames": list(sim.dropped_frames),
        "label_dtype": "uint16" if sim.max_id <= 65535 else "uint32",
        "counts": sim.summary(),
    }


# ------------------------------------------------------------------ image writers
def _document_uuid(params: SynthParams, name: str) -> str:
    """Return a UUID derived from the content, so the file bytes are reproducible."""
    text = json.dumps({"name": name, "params": params.to_dict()}, sort_keys=True)
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"pyama-steps-synth:{text}"))


def _ome_metadata(
    params: SynthParams, fov: int, sim: FovSimulation, name: str
) -> dict[str, Any]:
    n_ch = params.n_fl_channels + 1
    times = [frame_times_s(params, fov, channel=c) for c in range(n_ch)]
    # OME planes are listed with C varying fastest, the order tifffile writes
    # TCYX pages in; DeltaT is in seconds with millisecond resolution.
    delta_t = [
        float(round(float(times[c][t]), 3))
        for t in range(sim.n_frames)
        for c in range(n_ch)
    ]
    md: dict[str, Any] = {
        "axes": "TCYX",
        "Name": f"FOV {fov:03d}",
        "PhysicalSizeX": params.pixel_size_um,
        "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": params.pixel_size_um,
        "PhysicalSizeYUnit": "µm",
        "Channel": {"Name": channel_names(params)},
        "Plane": {"DeltaT": delta_t, "DeltaTUnit": ["s"] * len(delta_t)},
    }
    if fov == 0:
        md["UUID"] = f"urn:uuid:{_document_uuid(params, name)}"
        md["Creator"] = (
            f"pyama-steps {__version__} ({GENERATOR_NAME} {GENERATOR_VERSION})"
        )
    return md


def _write_ome_fov(
    tif: tifffile.TiffWriter,
    params: SynthParams,
    fov: int,
    truth_dir: Path,
    name: str,
    compress: bool,
) -> dict[str, Any]:
    """Write one FOV as the next OME Image; return its ``truth.json`` entry.

    A function of its own so that the simulation and its frame-sized maps are
    released before the next FOV starts.
    """
    sim = simulate_fov(params, fov)
    ny, nx = sim.shape
    with _fov_truth(truth_dir, sim) as writer:
        tif.write(
            _planes(sim, writer),
            shape=(sim.n_frames, params.n_fl_channels + 1, ny, nx),
            dtype=np.uint16,
            photometric="minisblack",
            compression="zlib" if compress else None,
            metadata=_ome_metadata(params, fov, sim, name),
        )
    return _fov_info(sim)


def _write_ome_tiff(
    path: Path, params: SynthParams, truth_dir: Path, name: str, compress: bool
) -> list[dict[str, Any]]:
    n_ch = params.n_fl_channels + 1
    fovs: list[dict[str, Any]] = []
    total = sum(
        params.n_frames * n_ch * y * x * 2
        for y, x in (
            params.frame_sizes[f % len(params.frame_sizes)] for f in range(params.n_fov)
        )
    )
    # Classic TIFF addresses 4 GiB; keep a margin for tags and the OME-XML.
    bigtiff = total > 2**32 - 2**27
    with (
        atomic_output(path) as tmp,
        tifffile.TiffWriter(tmp, bigtiff=bigtiff, ome=True) as tif,
    ):
        for fov in range(params.n_fov):
            fovs.append(_write_ome_fov(tif, params, fov, truth_dir, name, compress))
    return fovs


def _write_czi_fov(
    w: Any, params: SynthParams, fov: int, truth_dir: Path, x_off: int
) -> dict[str, Any]:
    """Write one FOV as CZI scene ``fov`` at stage column ``x_off``."""
    sim = simulate_fov(params, fov)
    n_ch = params.n_fl_channels + 1
    with _fov_truth(truth_dir, sim) as writer:
        for i, image in enumerate(_planes(sim, writer)):
            w.write(
                image,
                plane={"T": i // n_ch, "C": i % n_ch, "Z": 0},
                scene=fov,
                location=(x_off, 0),
            )
    return _fov_info(sim)


def _write_czi(
    path: Path, params: SynthParams, truth_dir: Path, name: str, compress: bool
) -> list[dict[str, Any]]:
    try:
        from pylibCZIrw import czi as pyczi
    except ImportError as e:  # pragma: no cover - installed with bioio-czi
        raise ValueError(
            "fmt='czi' needs pylibCZIrw: install bioio-czi (which brings it) or "
            "use fmt='ome-tiff'."
        ) from e
    names = channel_names(params)
    fovs: list[dict[str, Any]] = []
    options = "zstd1:ExplicitLevel=1" if compress else None
    with atomic_output(path) as tmp:
        with pyczi.create_czi(
            str(tmp), exist_ok=True, compression_options=options
        ) as w:
            x_off = 0
            for fov in range(params.n_fov):
                fovs.append(_write_czi_fov(w, params, fov, truth_dir, x_off))
                x_off += fov_shape(params, fov)[1] + _CZI_SCENE_GAP
            # CZI stores the scaling in metres.
            w.write_metadata(
                document_name=name,
                channel_names=dict(enumerate(names)),
                scale_x=params.pixel_size_um * 1e-6,
                scale_y=params.pixel_size_um * 1e-6,
            )
        # pylibCZIrw does not describe the scenes; readers list them from
        # Information/Image/Dimensions/S/Scenes, so add that block.
        with pyczi.edit_czi(str(tmp)) as editor:
            builder = editor.create_metadata_builder()
            xml = builder.get_xml()
            scenes = "".join(
                f'<Scene Index="{f}" Name="P{f + 1}"/>' for f in range(params.n_fov)
            )
            marker = "</Channels>"
            if marker not in xml:
                raise ValueError(
                    "pylibCZIrw wrote CZI metadata without a Channels block; cannot "
                    "add the scene list. Use fmt='ome-tiff'."
                )
            xml = xml.replace(marker, f"{marker}<S><Scenes>{scenes}</Scenes></S>", 1)
            builder.set_xml(xml)
            builder.commit()
    return fovs


# ------------------------------------------------------------------ public API
def write_dataset(
    out_dir: str | os.PathLike[str],
    params: SynthParams,
    *,
    name: str = "demo",
    fmt: str = "ome-tiff",
    compress: bool = False,
) -> Path:
    """Generate a synthetic time-lapse and write the image file and its truth.

    Parameters
    ----------
    out_dir : str or path-like
        Output directory (created if missing).
    params : SynthParams
        Generator parameters (see :func:`pyama_steps.validation.synth.preset`).
    name : str, optional
        Base name of the image file and the ``<name>_truth`` directory; letters,
        digits, ``.``, ``_`` and ``-`` only.
    fmt : {'ome-tiff', 'czi'}, optional
        Image format. ``'ome-tiff'`` writes ``<name>.ome.tiff``: one OME Image per
        FOV (TCYX uint16, channel names, pixel size, per-plane ``DeltaT`` in s).
        ``'czi'`` writes ``<name>.czi`` with pylibCZIrw: one scene per FOV, channel
        names and pixel size, but no plane timestamps (pylibCZIrw cannot write
        subblock metadata) and a random sub-block GUID, so it is not
        byte-reproducible; see Notes.
    compress : bool, optional
        Compress the pixels (zlib/deflate for OME-TIFF, zstd for CZI). Default
        uncompressed.

    Returns
    -------
    pathlib.Path
        Path of the image file.

    Raises
    ------
    ValueError
        If ``name`` or ``fmt`` is invalid.

    Notes
    -----
    With bioio-czi 3.0's default reader (aicspylibczi), reading the pixels of a
    CZI scene with more pixels than scene 0 crashes the process (heap corruption,
    SIGABRT/SIGSEGV) on files written here; give CZI data sets frame sizes that do
    not grow with the FOV index, or read with
    ``BioImage(path, use_aicspylibczi=False)`` (deprecated, it warns).
    """
    if not _NAME_RE.match(name):
        raise ValueError(
            f"name={name!r} is invalid: use letters, digits, '.', '_' and '-' only."
        )
    if fmt not in FORMATS:
        raise ValueError(f"fmt={fmt!r} is invalid: choose one of {', '.join(FORMATS)}.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    truth_dir = out / f"{name}_truth"
    truth_dir.mkdir(exist_ok=True)
    if fmt == "ome-tiff":
        image_path = out / f"{name}.ome.tiff"
        fovs = _write_ome_tiff(image_path, params, truth_dir, name, compress)
    else:
        image_path = out / f"{name}.czi"
        fovs = _write_czi(image_path, params, truth_dir, name, compress)
    truth = {
        "generator": {
            "name": GENERATOR_NAME,
            "version": GENERATOR_VERSION,
            "package_version": __version__,
        },
        "preset": params.preset,
        "seed": params.seed,
        "params": params.to_dict(),
        "image_file": image_path.name,
        "format": fmt,
        "channel_names": channel_names(params),
        "phase_channel": 0,
        "fl_channels": list(range(1, params.n_fl_channels + 1)),
        "pixel_size_um": params.pixel_size_um,
        "fovs": fovs,
    }
    with _atomic(truth_dir / "truth.json") as fh:
        fh.write(json.dumps(truth, indent=1, sort_keys=False, ensure_ascii=True))
        fh.write("\n")
    return image_path
