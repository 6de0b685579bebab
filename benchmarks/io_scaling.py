"""Time ``PlaneReader.plane`` against the number of planes in the file.

Usage::

    python benchmarks/io_scaling.py             # every case -> io_scaling.md
    python benchmarks/io_scaling.py --only czi  # one format

Each case is a file of 4 scenes x 2 channels x T frames (``T`` = planes / 8),
uint16, uncompressed, generated once into ``benchmarks/cache/io_scaling/``
(git-ignored). The files hold noise, not simulated cells: the project's
generator (``pyama_steps.synth_io.write_dataset``) simulates every frame and
needs minutes for 32,000 planes, so the same layouts are written directly
(OME-TIFF with tifffile: one OME Image per scene, TCYX pages; CZI with
pylibCZIrw: one scene per FOV at its own stage column, with the scene list the
generator adds).

Per case the table gives the time to open the file and build the readers of
the two scenes timed (``open_image`` + ``PlaneReader`` + each reader's first
plane, which a reader also reads through bioio to check its direct path), then
ms per plane and MB/s over planes
spread over the file (first, last and evenly spaced frames of the first and
the last scene, channel 0), read from the page cache (the file is read once
before timing); the median of 5 passes over those planes. The ``ms/plane``
of the 64² rows is what the scaling target compares (32,000 planes within
1.3x of 320); the 512² rows give the MB/s.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "benchmarks" / "cache" / "io_scaling"
N_SCENES = 4
N_CHANNELS = 2
#: passes over the sample; the table gives the median pass (a direct read of a
#: 64² plane takes ~10 µs, where one pass is noisy)
PASSES = 5


@dataclass(frozen=True)
class Case:
    fmt: str
    planes: int
    size: int
    #: planes timed (spread over the first and the last scene)
    sample: int = 64

    @property
    def n_t(self) -> int:
        return self.planes // (N_SCENES * N_CHANNELS)

    @property
    def path(self) -> Path:
        suffix = "czi" if self.fmt == "czi" else "ome.tiff"
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
]


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
    # as pyama_steps.synth_io: readers list the scenes from this block
    with pyczi.edit_czi(str(tmp)) as editor:
        builder = editor.create_metadata_builder()
        xml = builder.get_xml()
        scenes = "".join(f'<Scene Index="{s}" Name="P{s + 1}"/>' for s in range(4))
        xml = xml.replace(
            "</Channels>", f"</Channels><S><Scenes>{scenes}</Scenes></S>", 1
        )
        builder.set_xml(xml)
        builder.commit()


def _data(case: Case) -> Path:
    if case.path.exists():
        return case.path
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = case.path.with_name(f"tmp-{case.path.name}")
    tmp.unlink(missing_ok=True)
    (_write_czi if case.fmt == "czi" else _write_ome_tiff)(case, tmp)
    os.replace(tmp, case.path)
    return case.path


def _warm(path: Path) -> None:
    with open(path, "rb") as fh:
        while fh.read(1 << 24):
            pass


def _sample(case: Case) -> list[tuple[int, int]]:
    """(scene, t) pairs: first, last and evenly spaced frames of two scenes."""
    per_scene = case.sample // 2
    ts = np.unique(np.linspace(0, case.n_t - 1, per_scene).round().astype(int))
    return [(s, int(t)) for s in (0, N_SCENES - 1) for t in ts]


def _time(case: Case) -> dict[str, float]:
    from pyama_steps.io import PlaneReader, open_image

    path = _data(case)
    _warm(path)
    pairs = _sample(case)
    t0 = time.perf_counter()
    img = open_image(path)
    readers = {s: PlaneReader(img, s, 0) for s in sorted({s for s, _ in pairs})}
    for reader in readers.values():
        # a reader's first plane is also read through bioio to check the
        # direct path (PlaneReader): a cost per reader, counted with opening
        reader.plane(0, 0)
    open_s = time.perf_counter() - t0
    passes = []
    for _ in range(PASSES):
        t0 = time.perf_counter()
        nbytes = 0
        for s, t in pairs:
            nbytes += readers[s].plane(t, 0).nbytes
        passes.append(time.perf_counter() - t0)
    read_s = float(np.median(passes))
    for reader in readers.values():
        reader.close()
    return {
        "open_ms": open_s * 1e3,
        "ms_plane": read_s * 1e3 / len(pairs),
        "mb_s": nbytes / read_s / 1e6,
        "n": len(pairs),
    }


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

    names = ("bioio", "bioio-czi", "bioio-ome-tiff", "tifffile", "pylibCZIrw")
    return ", ".join(f"{n} {metadata.version(n)}" for n in names)


def main() -> int:
    """Run the cases, print the table and write ``io_scaling.md``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="formats to run (comma-separated)")
    parser.add_argument("--out", default=str(Path(__file__).with_name("io_scaling.md")))
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    header = "format | planes | frame | open + reader (ms) | ms/plane | MB/s | timed"
    rows = [f"| {header} |", "|---|---:|---:|---:|---:|---:|---:|"]
    print("\n".join(rows), flush=True)
    for case in CASES:
        if only is not None and case.fmt not in only:
            continue
        r = _time(case)
        row = (
            f"| {case.fmt} | {case.planes:,} | {case.size}² | {r['open_ms']:.0f} | "
            f"{r['ms_plane']:.3f} | {r['mb_s']:.0f} | {r['n']:.0f} |"
        )
        rows.append(row)
        print(row, flush=True)
    head = (
        f"# I/O scaling: `PlaneReader.plane` vs planes per file\n\n"
        f"Run {datetime.date.today().isoformat()} on {_machine()}; {_versions()}.\n"
        "Generated by `python benchmarks/io_scaling.py` (see its docstring).\n\n"
    )
    Path(args.out).write_text(head + "\n".join(rows) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
