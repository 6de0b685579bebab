"""Time a copy job's start-up and plane reads against the planes in the file.

Usage::

    python benchmarks/io_scaling.py             # every case -> io_scaling.md
    python benchmarks/io_scaling.py --only czi  # one format (czi, ome-tiff, nd2)

Each generated OME-TIFF and CZI case is a file of 4 scenes x 2 channels x T
frames (``T`` = planes / 8), uint16, uncompressed, generated once into
``benchmarks/cache/io_scaling/`` (git-ignored). The files hold noise, not
simulated cells: the project's generator
(``pyama_steps.validation.synth_io.write_dataset``)
simulates every frame and needs minutes for 32,000 planes, so the same layouts
are written directly (OME-TIFF with tifffile: one OME Image per scene, TCYX
pages; CZI with pylibCZIrw: one scene per FOV at its own stage column, with
the scene list the generator adds). No library writes ND2 files: an ND2 case
is a time-lapse of one position and channel (T = planes, 64², uint16) made
from the chunks of the real ``example-timelapse.nd2`` of
``../shared/data/real/`` (read in place, never copied into the repository),
with its time loop and frame count set to T and one noise frame per chunk
(``_write_nd2``). Three real ND2 files are timed as they are, too.

Per case the table gives:

* ``index (s)``: building the run's plane index once, before the first job
  (``plane_index.write_plane_index``: the page list or subblock directory,
  then bioio opens the file to compare sample planes of the first and the
  last scene);
* ``job start`` (ms): what a copy job pays before its loop, for the first and
  the last scene (median over ``REPEATS`` rounds, ``REPEATS_INDEX`` with the
  index, then the mean of the two scenes): **bioio** is the path of every job
  before the index (``open_image`` + ``PlaneReader`` + its first plane, which
  the reader also reads through bioio to check its direct path), **index**
  the path with the index (``open_plane_reader``: the input's identity, the
  FOV's offsets, the first plane);
* ``ms/plane`` and ``MB/s``: planes spread over the file (first, last and
  evenly spaced frames of the first and the last scene, channel 0) from the
  page cache (the file is read once before timing), the median of ``PASSES``
  passes: **bioio** through ``PlaneReader`` (a copy job without an index:
  bioio's dask array, or for OME-TIFF and CZI the format library's handle of
  ``plane_sources``), **index** through the index (a copy job now).

The 64² rows are what the scaling targets compare (32,000 planes within 1.3x
of 320 for ms/plane and for the job start); the 512² rows give the MB/s. One
open and one plane of each format are read before timing, so that one-time
costs of a process (bioio's plugin lookup, dask importing ``distributed``)
are not counted in the first case.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "benchmarks" / "cache" / "io_scaling"
N_SCENES = 4
N_CHANNELS = 2
#: passes over the sample; the table gives the median pass (a direct read of a
#: 64² plane takes ~10 µs, where one pass is noisy)
PASSES = 5
#: rounds of job starts per scene, through bioio and through the index (a
#: fraction of a millisecond); the table gives the median
REPEATS = 3
REPEATS_INDEX = 30
#: real ND2 files (no ND2 writer exists): read in place, never copied
REAL = (REPO / ".." / "shared" / "data" / "real").resolve()
ND2_FILES = ("example-timelapse.nd2", "cluster.nd2", "synthetic-objects-timelapse.nd2")


@dataclass(frozen=True)
class Case:
    fmt: str
    planes: int
    size: int
    #: planes timed (spread over the first and the last scene)
    sample: int = 64

    @property
    def scenes(self) -> int:
        # the ND2 files are time-lapses of one position and channel
        return 1 if self.fmt == "nd2" else N_SCENES

    @property
    def n_t(self) -> int:
        channels = 1 if self.fmt == "nd2" else N_CHANNELS
        return self.planes // (self.scenes * channels)

    @property
    def path(self) -> Path:
        suffix = {"czi": "czi", "nd2": "nd2"}.get(self.fmt, "ome.tiff")
        return CACHE / f"{self.fmt}-p{self.planes}-s{self.size}.{suffix}"


CASES = [
    Case(fmt, planes, size, sample)
    for fmt in ("ome-tiff", "czi")
    for planes, size, sample in (
        (320, 64, 64),
        (3200, 64, 64),
        (32000, 64, 64),
        (320, 512, 40),
        (3200, 512, 40),
    )
] + [Case("nd2", planes, 64, 64) for planes in (320, 3200, 32000)]


def _frames(case: Case, rng: np.random.Generator) -> np.ndarray:
    """Return one scene's (T, C, Y, X) noise in uint16."""
    shape = (case.n_t, N_CHANNELS, case.size, case.size)
    return rng.integers(0, 4096, size=shape, dtype=np.uint16)


def _write_ome_tiff(case: Case, tmp: Path) -> None:
    import tifffile

    rng = np.random.default_rng(0)
    with tifffile.TiffWriter(tmp, ome=True) as tif:
        for s in range(N_SCENES):
            tif.write(
                _frames(case, rng),
                photometric="minisblack",
                metadata={"axes": "TCYX", "Name": f"FOV {s:03d}"},
            )


def _write_czi(case: Case, tmp: Path) -> None:
    from pylibCZIrw import czi as pyczi

    rng = np.random.default_rng(0)
    with pyczi.create_czi(str(tmp), exist_ok=True) as w:
        for s in range(N_SCENES):
            data = _frames(case, rng)
            for t in range(case.n_t):
                for c in range(N_CHANNELS):
                    w.write(
                        data[t, c],
                        plane={"T": t, "C": c, "Z": 0},
                        scene=s,
                        location=(s * (case.size + 64), 0),
                    )
        w.write_metadata(document_name="bench", channel_names={0: "pc", 1: "fl"})
    # as pyama_steps.validation.synth_io: readers list the scenes from this block
    with pyczi.edit_czi(str(tmp)) as editor:
        builder = editor.create_metadata_builder()
        xml = builder.get_xml()
        scenes = "".join(f'<Scene Index="{s}" Name="P{s + 1}"/>' for s in range(4))
        xml = xml.replace(
            "</Channels>", f"</Channels><S><Scenes>{scenes}</Scenes></S>", 1
        )
        builder.set_xml(xml)
        builder.commit()


#: the real ND2 file the synthetic ND2 cases are made from (T x 64², uint16)
ND2_TEMPLATE = "example-timelapse.nd2"
_CHUNK = struct.Struct("<IIQ")  # magic, name length, data length


def _nd2_chunk(
    name: bytes, name_length: int, data: bytes, *, pad: bool = True
) -> bytes:
    """One ND2 chunk, padded to the 4096-byte grid the files use."""
    head = _CHUNK.pack(0x0ABECEDA, name_length, len(data))
    raw = head + name.ljust(name_length, b"\0") + data
    return raw + b"\0" * (-len(raw) % 4096 if pad else 0)


def _patch_uint32(data: bytes, name: str, old: int, new: int) -> bytes:
    """Set CLX-lite uint32 items called ``name`` holding ``old`` to ``new``."""
    key = b"\x03" + bytes([len(name) + 1]) + (name + "\0").encode("utf-16-le")
    out = bytearray(data)
    at = out.find(key)
    while at >= 0:
        value = at + len(key)
        if struct.unpack_from("<I", out, value)[0] == old:
            struct.pack_into("<I", out, value, new)
        at = out.find(key, at + 1)
    return bytes(out)


def _write_nd2(case: Case, tmp: Path) -> None:
    """A time-lapse of ``case.planes`` frames made from the real template file.

    No library writes ND2 files. The template's chunks are copied with its
    time loop and frame count set to ``case.planes``, the frame time caches
    extended, one image chunk per frame (noise), and a new chunk map.
    """
    import nd2

    n = case.planes
    template = REAL / ND2_TEMPLATE
    with nd2.ND2File(template) as f:
        chunks = dict(f._rdr.chunkmap)
        count = f.attributes.sequenceCount
    raw = template.read_bytes()
    rng = np.random.default_rng(0)
    times = np.arange(n, dtype="<f8") * 500.0
    replace = {
        b"CustomData|AcqTimesCache!": times.tobytes(),
        b"CustomData|AcqTimes2Cache!": np.zeros(n, "<f8").tobytes(),
        b"CustomData|AcqFramesCache!": np.zeros(n, "<u4").tobytes(),
    }
    out = bytearray(raw[:4096])  # the file signature chunk
    entries: list[tuple[bytes, int, int]] = []

    def add(name: bytes, name_length: int, data: bytes) -> None:
        entries.append((name, len(out), len(data)))
        out.extend(_nd2_chunk(name, name_length, data))

    for name, (offset, _) in sorted(chunks.items(), key=lambda kv: kv[1][0]):
        if offset == 0 or name.startswith(b"ImageDataSeq|"):
            continue
        _, name_length, size = _CHUNK.unpack_from(raw, offset)
        start = offset + _CHUNK.size + name_length
        data = replace.get(name, raw[start : start + size])
        data = _patch_uint32(data, "uiCount", count, n)
        data = _patch_uint32(data, "uiSequenceCount", count, n)
        if name == b"ImageMetadataSeqLV|0!":
            for i in range(n):
                frame = (
                    times[i : i + 1].tobytes()
                    + rng.integers(0, 4096, size=64 * 64, dtype="<u2").tobytes()
                )
                add(f"ImageDataSeq|{i}!".encode(), 4072, frame)
        add(name, name_length, data)
    where = len(out)
    table = b"".join(name + struct.pack("<QQ", o, size) for name, o, size in entries)
    tail = b"ND2 CHUNK MAP SIGNATURE 0000001!" + struct.pack("<Q", where)
    # last in the file: its final 40 bytes give the chunk map's place
    name = b"ND2 FILEMAP SIGNATURE NAME 0001!"
    out.extend(_nd2_chunk(name, 32, table + tail, pad=False))
    tmp.write_bytes(bytes(out))


def _data(case: Case) -> Path:
    if case.path.exists():
        return case.path
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = case.path.with_name(f"tmp-{case.path.name}")
    tmp.unlink(missing_ok=True)
    writers = {"czi": _write_czi, "ome-tiff": _write_ome_tiff, "nd2": _write_nd2}
    writers[case.fmt](case, tmp)
    os.replace(tmp, case.path)
    return case.path


def _warm(path: Path) -> None:
    with open(path, "rb") as fh:
        while fh.read(1 << 24):
            pass


def _sample(case: Case) -> list[tuple[int, int]]:
    """(scene, t) pairs: first, last and evenly spaced frames of two scenes."""
    per_scene = case.sample // min(2, case.scenes)
    ts = np.unique(np.linspace(0, case.n_t - 1, per_scene).round().astype(int))
    return [(s, int(t)) for s in sorted({0, case.scenes - 1}) for t in ts]


def _fovs(img: Any) -> dict[str, dict[str, Any]]:
    """The run plan's FOV metadata, as ``metadata.json`` holds it."""
    from pyama_steps.io import scene_info

    out: dict[str, dict[str, Any]] = {}
    for f in range(len(img.scenes)):
        info = scene_info(img, f)
        out[str(f)] = {
            "shape_tczyx": list(info.shape_tczyx),
            "rgb_samples": info.samples,
            "dtype": info.dtype,
        }
    return out


def _index(path: Path) -> tuple[Path, float]:
    """Build the plane index of ``path``; return it and the seconds it took."""
    from pyama_steps.io import open_image, reader_name
    from pyama_steps.io.plane_index import write_plane_index

    img = open_image(path)
    fovs = _fovs(img)  # the run plan's part: not timed
    out = CACHE / f"{path.name}.planes.json"
    t0 = time.perf_counter()
    write_plane_index(
        input_path=str(path), output=str(out), reader=reader_name(img), fovs=fovs
    )
    return out, time.perf_counter() - t0


def _job_start(path: Path, scene: int, index: Path | None) -> float:
    """Seconds a copy job takes to its first plane (bioio's path without index)."""
    from pyama_steps.io import PlaneReader, open_image, open_plane_reader

    t0 = time.perf_counter()
    if index is None:  # every copy job before the plane index
        img = open_image(path)
        reader: Any = PlaneReader(img, scene, 0)
    else:
        reader = open_plane_reader(path, scene, 0, plane_index=str(index))
    reader.plane(0, 0)
    elapsed = time.perf_counter() - t0
    reader.close()
    return elapsed


def _starts(path: Path, scenes: list[int], index: Path | None) -> float:
    """Mean over ``scenes`` of the median job start over the rounds."""
    rounds = REPEATS if index is None else REPEATS_INDEX
    times = {s: [_job_start(path, s, index) for _ in range(rounds)] for s in scenes}
    return float(np.mean([np.median(t) for t in times.values()]))


def _reads(
    path: Path, pairs: list[tuple[int, int]], index: Path | None
) -> dict[str, float]:
    """Median pass over ``pairs``: through the index, or bioio's PlaneReader."""
    from pyama_steps.io import PlaneReader, open_image, open_plane_reader

    readers: dict[int, Any] = {}
    for s in sorted({s for s, _ in pairs}):
        if index is None:  # a copy job without an index
            readers[s] = PlaneReader(open_image(path, scene=s), s, 0)
        else:
            readers[s] = open_plane_reader(path, s, 0, plane_index=str(index))
    for reader in readers.values():
        reader.plane(0, 0)
    passes = []
    nbytes = 0
    for _ in range(PASSES):
        t0 = time.perf_counter()
        nbytes = 0
        for s, t in pairs:
            nbytes += readers[s].plane(t, 0).nbytes
        passes.append(time.perf_counter() - t0)
    for reader in readers.values():
        reader.close()
    read_s = float(np.median(passes))
    return {"ms_plane": read_s * 1e3 / len(pairs), "mb_s": nbytes / read_s / 1e6}


def _measure(path: Path, pairs: list[tuple[int, int]]) -> dict[str, float]:
    scenes = sorted({s for s, _ in pairs})
    index, index_s = _index(path)
    bioio = _reads(path, pairs, None)
    return {
        "index_s": index_s,
        "start_bioio_ms": _starts(path, scenes, None) * 1e3,
        "start_index_ms": _starts(path, scenes, index) * 1e3,
        "ms_plane_bioio": bioio["ms_plane"],
        **_reads(path, pairs, index),
        "n": len(pairs),
    }


def _time(case: Case) -> dict[str, float]:
    path = _data(case)
    _warm(path)
    return _measure(path, _sample(case))


def _time_nd2(name: str) -> tuple[int, str, dict[str, float]]:
    """A real ND2 file read in place: its planes, frame and figures."""
    from pyama_steps.io import open_image, scene_info

    path = REAL / name
    img = open_image(path)
    info = scene_info(img, 0)
    n_t, n_c, n_z, n_y, n_x = info.shape_tczyx
    planes = len(img.scenes) * n_t * n_c * n_z
    ts = np.unique(np.linspace(0, n_t - 1, min(n_t, 32)).round().astype(int))
    return planes, f"{n_y}x{n_x}", _measure(path, [(0, int(t)) for t in ts])


def _warm_up() -> None:
    """Pay the one-time costs of a process (plugin lookup, imports) untimed."""
    small = [c for c in CASES if c.planes == 320 and c.size == 64]
    for case in small:
        path = _data(case)
        index, _ = _index(path)
        _job_start(path, 0, None)
        _job_start(path, 0, index)
    if REAL.is_dir():
        _job_start(REAL / ND2_FILES[0], 0, None)


def _row(fmt: str, planes: str, frame: str, r: dict[str, float]) -> str:
    return (
        f"| {fmt} | {planes} | {frame} | {r['index_s']:.2f} | "
        f"{r['start_bioio_ms']:.0f} | {r['start_index_ms']:.2f} | "
        f"{r['ms_plane_bioio']:.3f} | {r['ms_plane']:.3f} | {r['mb_s']:.0f} | "
        f"{r['n']:.0f} |"
    )


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _versions() -> str:
    from importlib import metadata

    names = (
        "bioio",
        "bioio-czi",
        "bioio-ome-tiff",
        "bioio-nd2",
        "nd2",
        "tifffile",
        "pylibCZIrw",
    )
    return ", ".join(f"{n} {metadata.version(n)}" for n in names)


def main() -> int:
    """Run the cases, print the table and write ``io_scaling.md``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="formats to run (comma-separated)")
    parser.add_argument("--out", default=str(Path(__file__).with_name("io_scaling.md")))
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    header = (
        "format | planes | frame | index (s, once) | job start, bioio (ms) | "
        "job start, index (ms) | ms/plane, bioio | ms/plane, index | MB/s, index "
        "| timed"
    )
    rows = [f"| {header} |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    print("\n".join(rows), flush=True)
    _warm_up()
    for case in CASES:
        if only is not None and case.fmt not in only:
            continue
        r = _time(case)
        rows.append(_row(case.fmt, f"{case.planes:,}", f"{case.size}²", r))
        print(rows[-1], flush=True)
    if (only is None or "nd2" in only) and REAL.is_dir():
        for name in ND2_FILES:
            planes, frame, r = _time_nd2(name)
            rows.append(_row(f"nd2 `{name}`", f"{planes:,}", frame, r))
            print(rows[-1], flush=True)
    head = (
        "# I/O scaling: a copy job's start-up and plane reads vs planes per file\n\n"
        f"Run {datetime.date.today().isoformat()} on {_machine()}; {_versions()}.\n"
        "Generated by `python benchmarks/io_scaling.py` (see its docstring).\n\n"
    )
    Path(args.out).write_text(head + "\n".join(rows) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
