"""The plane index gives bioio's pixels without opening bioio (issue 16)."""

from __future__ import annotations

import logging
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from pyama_steps.io import (
    InputError,
    PlaneReader,
    open_image,
    open_plane_reader,
    reader_name,
    scene_info,
    scene_infos,
)
from pyama_steps.io import plane_index as pi
from pyama_steps.io.plane_index import (
    IndexedPlanes,
    index_is_current,
    open_indexed_planes,
    write_plane_index,
)
from pyama_steps.run.steps import copy_channel
from tests.unit.test_plane_sources import (
    N_C,
    N_SCENES,
    N_T,
    N_Z,
    _write_czi,
    _write_ome_tiff,
)


def _fovs(img: Any) -> dict[str, dict[str, Any]]:
    """The run plan's FOV metadata, as ``metadata.json`` holds it."""
    out = {}
    for f in range(len(img.scenes)):
        info = scene_info(img, f)
        out[str(f)] = {
            "shape_tczyx": list(info.shape_tczyx),
            "rgb_samples": info.samples,
            "dtype": info.dtype,
        }
    return out


def _index(path: Path, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    img = open_image(path)
    index = tmp_path / "planes.json"
    done = write_plane_index(
        input_path=str(path),
        output=str(index),
        reader=reader_name(img),
        fovs=_fovs(img),
    )
    return index, done


def _assert_every_plane_is_bioios(path: Path, index: Path) -> int:
    """Compare every plane of every scene and channel; return the planes read."""
    img = open_image(path)
    n = 0
    for fov in range(len(img.scenes)):
        n_c = scene_info(img, fov).shape_tczyx[1]
        for channel in range(n_c):
            planes = open_indexed_planes(index, str(path), fov=fov, channel=channel)
            assert isinstance(planes, IndexedPlanes)
            with planes, PlaneReader(img, fov, channel, direct=False) as bioio:
                assert (planes.n_t, planes.n_z) == (bioio.n_t, bioio.n_z)
                assert planes.has_samples == bioio.has_samples
                for t in range(planes.n_t):
                    for z in range(planes.n_z):
                        got, want = planes.plane(t, z), bioio.plane(t, z)
                        assert got.dtype == want.dtype
                        assert got.shape == want.shape
                        np.testing.assert_array_equal(got, want)
                        n += 1
    return n


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
@pytest.mark.parametrize("axes", ["TCZYX", "TZCYX"])
def test_ome_tiff_index_gives_bioios_planes(
    tmp_path: Path, dtype: str, axes: str
) -> None:
    path = tmp_path / "x.ome.tiff"
    _write_ome_tiff(path, dtype, axes)
    index, done = _index(path, tmp_path)
    assert done == {"fovs": list(range(N_SCENES)), "reason": None, "warning": None}
    n = _assert_every_plane_is_bioios(path, index)
    assert n == N_SCENES * N_C * N_T * N_Z


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_czi_index_gives_bioios_planes(tmp_path: Path, dtype: str) -> None:
    path = tmp_path / "x.czi"
    _write_czi(path, dtype)
    index, done = _index(path, tmp_path)
    assert done == {"fovs": list(range(N_SCENES)), "reason": None, "warning": None}
    n = _assert_every_plane_is_bioios(path, index)
    assert n == N_SCENES * N_C * N_T * N_Z


def test_big_endian_ome_tiff_is_read_in_native_order(tmp_path: Path) -> None:
    path = tmp_path / "be.ome.tiff"
    rng = np.random.default_rng(5)
    data = rng.integers(0, 60000, size=(N_T, N_C, 16, 24), dtype=np.uint16)
    tifffile.imwrite(path, data, byteorder=">", metadata={"axes": "TCYX"})
    index, done = _index(path, tmp_path)
    assert done["fovs"] == [0]
    _assert_every_plane_is_bioios(path, index)
    with open_indexed_planes(index, str(path), fov=0, channel=1) as planes:  # type: ignore[union-attr]
        plane = planes.plane(2, 0)
    assert plane.dtype == np.dtype("=u2")
    np.testing.assert_array_equal(plane, data[2, 1])


def test_rgb_ome_tiff_index_gives_bioios_planes(tmp_path: Path) -> None:
    path = tmp_path / "rgb.ome.tiff"
    rng = np.random.default_rng(3)
    data = rng.integers(0, 255, size=(N_T, 20, 28, 3), dtype=np.uint8)
    tifffile.imwrite(path, data, photometric="rgb", metadata={"axes": "TYXS"})
    index, done = _index(path, tmp_path)
    assert done["fovs"] == [0]
    _assert_every_plane_is_bioios(path, index)


def test_compressed_planes_are_left_to_bioio(tmp_path: Path) -> None:
    path = tmp_path / "z.czi"
    _write_czi(path, "uint16", "zstd1:ExplicitLevel=1")
    index, done = _index(path, tmp_path)
    assert done["fovs"] == []
    assert done["reason"].startswith("no scene is stored as one uncompressed block")
    assert open_indexed_planes(index, str(path), fov=0, channel=0) is None
    reader = open_plane_reader(path, 0, 0, plane_index=str(index))
    assert isinstance(reader, PlaneReader)
    reader.close()


ND2 = [
    "cluster.nd2",  # T x Z, two channels interleaved in each frame
    "example-timelapse.nd2",
    "example-multichannel.nd2",  # four channels
    "example-cerevisiae.nd2",
    "example-zstack.nd2",
    "synthetic-objects-timelapse.nd2",  # uint8
    "GA3_Children_node_example.nd2",  # RGB
]


@pytest.mark.parametrize("name", ND2)
def test_nd2_index_gives_bioios_planes(
    real_dir: Path, tmp_path: Path, name: str
) -> None:
    path = real_dir / name
    index, done = _index(path, tmp_path)
    assert done == {"fovs": [0], "reason": None, "warning": None}
    assert _assert_every_plane_is_bioios(path, index) > 0


def test_other_readers_have_no_index(tmp_path: Path) -> None:
    path = tmp_path / "x.ome.tiff"
    _write_ome_tiff(path, "uint16")
    index = tmp_path / "planes.json"
    img = open_image(path)
    done = write_plane_index(
        input_path=str(path), output=str(index), reader="bioio_lif", fovs=_fovs(img)
    )
    assert done == {
        "fovs": [],
        "reason": "bioio_lif files have no plane index",
        "warning": None,
    }
    assert open_indexed_planes(index, str(path), fov=0, channel=0) is None


def test_a_builder_that_fails_leaves_the_file_to_bioio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x.ome.tiff"
    _write_ome_tiff(path, "uint16")

    def broken(path: Path) -> dict[int, Any]:
        raise struct.error("unpack requires a buffer of 8 bytes")

    monkeypatch.setitem(pi._BUILDERS, "bioio_ome_tiff", broken)
    _, done = _index(path, tmp_path)
    why = "the index could not be built (error: unpack requires a buffer of 8 bytes)"
    assert done == {"fovs": [], "reason": why, "warning": why}


def test_a_fov_bioio_sees_otherwise_is_left_out(tmp_path: Path) -> None:
    path = tmp_path / "x.ome.tiff"
    _write_ome_tiff(path, "uint16")
    img = open_image(path)
    fovs = _fovs(img)
    fovs["1"]["dtype"] = "uint8"
    index = tmp_path / "planes.json"
    done = write_plane_index(
        input_path=str(path), output=str(index), reader=reader_name(img), fovs=fovs
    )
    assert done["fovs"] == [0, 2]
    assert "FOV 1: the index has" in done["reason"]
    assert open_indexed_planes(index, str(path), fov=1, channel=0) is None
    assert open_indexed_planes(index, str(path), fov=2, channel=0) is not None


def test_an_index_that_differs_from_bioio_is_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x.czi"
    _write_czi(path, "uint16")
    real = pi._read_plane

    def shifted(*args: Any) -> np.ndarray:
        return real(*args) + 1

    monkeypatch.setattr(pi, "_read_plane", shifted)
    index, done = _index(path, tmp_path)
    assert done["fovs"] == []
    assert done["reason"].startswith("differs from bioio at FOV 2, channel")
    assert done["warning"] == done["reason"]
    assert open_indexed_planes(index, str(path), fov=0, channel=0) is None


def test_index_is_current_until_the_input_changes(tmp_path: Path) -> None:
    path = tmp_path / "x.ome.tiff"
    _write_ome_tiff(path, "uint16")
    index, _ = _index(path, tmp_path)
    assert index_is_current(index, input_path=str(path), fovs=[0, 1, 2])
    assert not index_is_current(index, input_path=str(path), fovs=[0, 1])
    assert not index_is_current(index, input_path=str(path) + "x", fovs=[0, 1, 2])
    assert not index_is_current(tmp_path / "none.json", input_path=str(path), fovs=[0])
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert not index_is_current(index, input_path=str(path), fovs=[0, 1, 2])


def test_a_changed_input_is_read_through_bioio(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "x.ome.tiff"
    _write_ome_tiff(path, "uint16")
    index, _ = _index(path, tmp_path)
    # same size and modification time, other pixels in the last plane
    last = pi.build_plane_index(path, reader="bioio_ome_tiff")[N_SCENES - 1]
    st = path.stat()
    with open(path, "r+b") as fh:
        fh.seek(int(last.offsets.max()))
        fh.write(b"\xff\xff\xff\xff")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with caplog.at_level(logging.INFO, logger="pyama_steps.io.plane_index"):
        assert open_indexed_planes(index, str(path), fov=0, channel=0) is None
    assert "is not the file it was built for" in caplog.text
    with open_plane_reader(path, 0, 0, plane_index=str(index)) as reader:
        assert isinstance(reader, PlaneReader)


def test_an_unreadable_index_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "x.ome.tiff"
    _write_ome_tiff(path, "uint16")
    bad = tmp_path / "planes.json"
    bad.write_bytes(b"not JSON")
    with caplog.at_level(logging.INFO, logger="pyama_steps.io.plane_index"):
        assert open_indexed_planes(bad, str(path), fov=0, channel=0) is None
        assert (
            open_indexed_planes(tmp_path / "none.json", str(path), fov=0, channel=0)
            is None
        )
    assert "cannot be read (JSONDecodeError" in caplog.text
    assert "cannot be read (FileNotFoundError" in caplog.text


def test_offsets_of_another_index_are_not_used(tmp_path: Path) -> None:
    path = tmp_path / "x.ome.tiff"
    _write_ome_tiff(path, "uint16")
    index, _ = _index(path, tmp_path)
    planes = open_indexed_planes(index, str(path), fov=2, channel=1)
    assert planes is not None
    # the offsets are mapped, not read: opening does not grow with the FOV
    assert isinstance(planes._offsets, np.memmap)
    planes.close()
    other = tmp_path / "other"
    other.mkdir()
    _index(path, other)
    (other / "planes.npy").replace(tmp_path / "planes.npy")
    assert open_indexed_planes(index, str(path), fov=2, channel=1) is None
    assert not index_is_current(tmp_path / "none.json", input_path=str(path), fovs=[0])


def test_channel_and_plane_out_of_range(tmp_path: Path) -> None:
    path = tmp_path / "x.ome.tiff"
    _write_ome_tiff(path, "uint16")
    index, _ = _index(path, tmp_path)
    assert open_indexed_planes(index, str(path), fov=0, channel=N_C) is None
    planes = open_indexed_planes(index, str(path), fov=0, channel=0)
    assert planes is not None
    with pytest.raises(IndexError, match=r"plane \(t=4, z=0\) is outside T=4, Z=3"):
        planes.plane(N_T, 0)
    planes.close()
    with pytest.raises(ValueError, match="the reader is closed"):
        planes.plane(0, 0)
    planes.close()  # twice is fine


def test_a_short_read_says_the_file_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "x.ome.tiff"
    _write_ome_tiff(path, "uint16")
    scene = pi.build_plane_index(path, reader="bioio_ome_tiff")[0]
    with open(path, "r+b") as fh:
        fh.truncate(int(scene.offsets[0, 1, 0]) + 10)
    planes = IndexedPlanes(path, scene, 0)
    np.testing.assert_array_equal(planes.plane(0, 0), planes.plane(0, 0))
    with pytest.raises(OSError, match=r"read 10 of 1536 bytes .* \(truncated\?\)"):
        planes.plane(1, 0)
    planes.close()


def test_a_truncated_file_is_not_indexed_and_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "x.czi"
    _write_czi(path, "uint16")
    index, _ = _index(path, tmp_path)
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)
    # the index no longer describes the file: bioio reads it, and fails
    with pytest.raises(InputError, match="probably truncated, corrupt"):
        _copy(path, tmp_path / "out.npy", fov=2, channel=1, plane_index=index)
    assert not (tmp_path / "out.npy").exists()
    # an index built on the truncated file leaves out what is not in it
    assert pi.build_plane_index(path, reader="bioio_czi") == {}


def _copy(path: Path, out: Path, *, fov: int, channel: int, **kw: Any) -> None:
    copy_channel(
        input_path=str(path),
        output=str(out),
        fov=fov,
        channel=channel,
        z_mode="max",
        z_plane=0,
        rgb="error",
        dtype_policy="strict",
        scale_factor=None,
        scale_offset=0.0,
        **{k: (str(v) if isinstance(v, Path) else v) for k, v in kw.items()},
    )


@pytest.mark.parametrize(
    ("suffix", "write"), [(".czi", _write_czi), (".ome.tiff", _write_ome_tiff)]
)
def test_copy_channel_writes_the_same_bytes_with_the_index(
    tmp_path: Path, suffix: str, write: Any
) -> None:
    path = tmp_path / f"x{suffix}"
    write(path, "uint16")
    index, _ = _index(path, tmp_path)
    for fov in range(N_SCENES):
        for channel in range(N_C):
            _copy(path, tmp_path / "a.npy", fov=fov, channel=channel, plane_index=index)
            _copy(path, tmp_path / "b.npy", fov=fov, channel=channel)
            assert (tmp_path / "a.npy").read_bytes() == (
                tmp_path / "b.npy"
            ).read_bytes()


REAL = [
    # (file, FOVs indexed): the others are tiles or compressed
    ("CellDivision_T3_Z5_CH2_X240_Y170.czi", [0]),
    ("CellDivision_T3_Z6_CH1_X300_Y200_DCV_ZSTD.czi", []),  # zstd
    ("Airyscan.czi", [0]),
    ("LLS7_small.czi", [0]),
    ("WellD6-7_S2.czi", [0, 1]),  # each scene with a pyramid level
    ("S3_1Pos_2Mosaic_T2Z3_CH2_sm.czi", [1]),
    ("tiles_time_z.czi", []),
]


@pytest.mark.parametrize(("name", "indexed"), REAL)
def test_real_czi_index_gives_bioios_planes(
    real_dir: Path, tmp_path: Path, name: str, indexed: list[int]
) -> None:
    path = real_dir / name
    index, done = _index(path, tmp_path)
    assert done["fovs"] == indexed
    img = open_image(path)
    for fov in indexed:
        for channel in range(scene_info(img, fov).shape_tczyx[1]):
            planes = open_indexed_planes(index, str(path), fov=fov, channel=channel)
            assert planes is not None
            with planes, PlaneReader(img, fov, channel, direct=False) as bioio:
                for t in range(planes.n_t):
                    for z in range(planes.n_z):
                        want = bioio.plane(t, z)
                        got = planes.plane(t, z)
                        assert got.dtype == want.dtype
                        np.testing.assert_array_equal(got, want.reshape(got.shape))


# --------------------------------------------------------------------------
# Planning: every scene's metadata without asking bioio per scene (CZI)
# --------------------------------------------------------------------------


def _per_scene(path: Path) -> dict[int, Any]:
    img = open_image(path)
    return {f: scene_info(img, f) for f in range(len(img.scenes))}


@pytest.mark.parametrize(
    ("suffix", "write"), [(".czi", _write_czi), (".ome.tiff", _write_ome_tiff)]
)
def test_scene_infos_equal_bioios_answer_for_each_scene(
    tmp_path: Path, suffix: str, write: Any
) -> None:
    path = tmp_path / f"x{suffix}"
    write(path, "uint16")
    infos = scene_infos(open_image(path), path)
    assert len(infos) == N_SCENES
    assert infos == _per_scene(path)


@pytest.mark.parametrize("name", [name for name, _ in REAL])
def test_real_scene_infos_equal_bioios_answer_for_each_scene(
    real_dir: Path, name: str
) -> None:
    # Mosaic and pyramid scenes are not in the directory pass; their sizes
    # come from bioio, the others' from the subblock directory.
    path = real_dir / name
    assert scene_infos(open_image(path), path) == _per_scene(path)
