"""Direct plane sources give bioio's pixels, plane by plane (issue 16)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from pyama_steps.io import PlaneReader, open_image
from pyama_steps.io.plane_sources import open_plane_source

N_SCENES, N_T, N_C, N_Z, NY, NX = 3, 4, 2, 3, 24, 32


def _stack(rng: np.random.Generator, dtype: str) -> np.ndarray:
    shape = (N_T, N_C, N_Z, NY, NX)
    if np.dtype(dtype).kind == "f":
        return rng.normal(size=shape).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype)


def _write_ome_tiff(path: Path, dtype: str, axes: str = "TCZYX") -> None:
    rng = np.random.default_rng(1)
    with tifffile.TiffWriter(path, ome=True) as tif:
        for _ in range(N_SCENES):
            data = _stack(rng, dtype)
            if axes == "TZCYX":
                data = data.transpose(0, 2, 1, 3, 4)
            tif.write(data, photometric="minisblack", metadata={"axes": axes})


def _write_czi(path: Path, dtype: str, compression: str | None = None) -> None:
    from pylibCZIrw import czi as pyczi

    rng = np.random.default_rng(2)
    with pyczi.create_czi(
        str(path), exist_ok=True, compression_options=compression
    ) as w:
        for s in range(N_SCENES):
            data = _stack(rng, dtype)
            for t in range(N_T):
                for c in range(N_C):
                    for z in range(N_Z):
                        w.write(
                            data[t, c, z],
                            plane={"T": t, "C": c, "Z": z},
                            scene=s,
                            location=(s * (NX + 10), 0),
                        )
        w.write_metadata(document_name="t", channel_names={0: "a", 1: "b"})
    with pyczi.edit_czi(str(path)) as editor:
        builder = editor.create_metadata_builder()
        scenes = "".join(f'<Scene Index="{s}" Name="P{s}"/>' for s in range(N_SCENES))
        xml = builder.get_xml().replace(
            "</Channels>", f"</Channels><S><Scenes>{scenes}</Scenes></S>", 1
        )
        builder.set_xml(xml)
        builder.commit()


def _bioio_plane(img: Any, scene: int, channel: int, t: int, z: int) -> np.ndarray:
    """The plain bioio path: the scene's dask array, computed for one plane."""
    img.set_scene(scene)
    order = "TZYXS" if "S" in img.dims.order else "TZYX"
    data = img.get_image_dask_data(order, C=channel)
    return np.asarray(data[t, z].compute(scheduler="synchronous"))


def _assert_all_planes_equal(path: Path, *, kind: str) -> None:
    img = open_image(path)
    for scene in range(len(img.scenes)):
        for channel in range(N_C):
            with PlaneReader(img, scene, channel) as reader:
                assert type(reader._source).__name__ == kind
                order = [(t, z) for t in range(reader.n_t) for z in range(reader.n_z)]
                got = {(t, z): reader.plane(t, z) for t, z in order[::-1]}
                assert type(reader._source).__name__ == kind  # never dropped
            for (t, z), plane in got.items():
                want = _bioio_plane(img, scene, channel, t, z)
                assert plane.dtype == want.dtype
                assert plane.shape == want.shape
                np.testing.assert_array_equal(plane, want)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
@pytest.mark.parametrize("axes", ["TCZYX", "TZCYX"])
def test_ome_tiff_planes_equal_bioio(tmp_path: Path, dtype: str, axes: str) -> None:
    path = tmp_path / "x.ome.tiff"
    _write_ome_tiff(path, dtype, axes)
    _assert_all_planes_equal(path, kind="_TiffPlanes")


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
@pytest.mark.parametrize("compression", [None, "zstd1:ExplicitLevel=1"])
def test_czi_planes_equal_bioio(
    tmp_path: Path, dtype: str, compression: str | None
) -> None:
    path = tmp_path / "x.czi"
    _write_czi(path, dtype, compression)
    img = open_image(path)
    with PlaneReader(img, 2, 1) as reader:
        # uncompressed: every plane from the subblock directory read once;
        # compressed: every plane composed by libCZI
        index = reader._source._index  # type: ignore[union-attr]
        assert len(index) == (0 if compression else N_T * N_Z)
    _assert_all_planes_equal(path, kind="_CziPlanes")


def test_rgb_ome_tiff_planes_equal_bioio(tmp_path: Path) -> None:
    path = tmp_path / "rgb.ome.tiff"
    rng = np.random.default_rng(3)
    data = rng.integers(0, 255, size=(N_T, NY, NX, 3), dtype=np.uint8)
    tifffile.imwrite(path, data, photometric="rgb", metadata={"axes": "TYXS"})
    img = open_image(path)
    with PlaneReader(img, 0, 0) as reader:
        assert reader.has_samples
        for t in range(N_T):
            got = reader.plane(t, 0)
            want = _bioio_plane(img, 0, 0, t, 0)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)


def test_other_readers_have_no_source(real_dir: Path) -> None:
    img = open_image(real_dir / "example-timelapse.nd2")
    assert open_plane_source(img, fov=0, channel=0) is None


class _Shifted:
    """A real source whose values are off by one: it must not be used."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.closed = False

    def read(self, t: int, z: int) -> np.ndarray:
        return self.inner.read(t, z) + 1

    def close(self) -> None:
        self.closed = True
        self.inner.close()


def test_a_source_with_other_values_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "x.ome.tiff"
    _write_ome_tiff(path, "uint16")
    img = open_image(path)
    reader = PlaneReader(img, 1, 1)
    shifted = _Shifted(reader._source)
    reader._source = shifted
    for t in range(N_T):
        np.testing.assert_array_equal(reader.plane(t, 2), _bioio_plane(img, 1, 1, t, 2))
    assert reader._source is None
    assert shifted.closed


def test_close_releases_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.ome.tiff"
    _write_ome_tiff(path, "uint16")
    reader = PlaneReader(open_image(path), 0, 0)
    source = reader._source
    assert source is not None
    reader.close()
    assert reader._source is None
    assert source._tif.filehandle.closed  # type: ignore[attr-defined]
    reader.close()  # twice is fine


REAL = [
    ("CellDivision_T3_Z5_CH2_X240_Y170.czi", 0, "_CziPlanes"),
    ("CellDivision_T3_Z6_CH1_X300_Y200_DCV_ZSTD.czi", 0, "_CziPlanes"),  # zstd
    ("Airyscan.czi", 0, "_CziPlanes"),
    ("LLS7_small.czi", 0, "_CziPlanes"),
    ("WellD6-7_S2.czi", 1, "_CziPlanes"),
    ("S3_1Pos_2Mosaic_T2Z3_CH2_sm.czi", 1, "_CziPlanes"),
    ("S3_1Pos_2Mosaic_T2Z3_CH2_sm.czi", 0, "NoneType"),  # mosaic: bioio's path
    ("tiles_time_z.czi", 0, "NoneType"),
    ("example-zstack.nd2", 0, "NoneType"),
]


@pytest.mark.parametrize(("name", "scene", "kind"), REAL)
def test_real_file_planes_equal_bioio(
    real_dir: Path, name: str, scene: int, kind: str
) -> None:
    img = open_image(real_dir / name)
    with PlaneReader(img, scene, 0) as reader:
        assert type(reader._source).__name__ == kind
        for t in range(reader.n_t):
            for z in range(reader.n_z):
                got = reader.plane(t, z)
                want = _bioio_plane(img, scene, 0, t, z)
                assert got.dtype == want.dtype
                np.testing.assert_array_equal(got, want)
        assert type(reader._source).__name__ == kind
