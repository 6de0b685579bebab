"""PlaneReader: the one-task fast path gives what dask's scheduler gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pyama_steps.io import PlaneReader, open_image
from pyama_steps.io.planes import _block_of

# time-lapse, Z-stack in one chunk of several planes, multi-position, mosaic
FILES = [
    ("example-timelapse.nd2", 0, True),
    ("cluster.nd2", 0, True),
    ("CellDivision_T3_Z5_CH2_X240_Y170.czi", 0, True),
    ("S3_1Pos_2Mosaic_T2Z3_CH2_sm.czi", 1, True),
    ("S3_1Pos_2Mosaic_T2Z3_CH2_sm.czi", 0, False),  # mosaic: Y/X in several chunks
    ("tiles_time_z.czi", 0, False),
]


@pytest.mark.parametrize(("name", "scene", "fast"), FILES)
def test_planes_equal_the_dask_scheduler(
    real_dir: Path, name: str, scene: int, fast: bool
) -> None:
    img = open_image(real_dir / name)
    reader = PlaneReader(img, scene, 0)
    assert (reader._graph is not None) is fast
    # out of order, and the same plane twice, to exercise the chunk cache
    order = [(t, z) for t in range(reader.n_t) for z in range(reader.n_z)]
    order = order[::-1] + order[:2]
    for t, z in order:
        got = reader.plane(t, z)
        want = np.asarray(reader._data[t, z].compute(scheduler="synchronous"))
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert (reader._graph is not None) is fast  # never fell back


def test_a_failing_task_falls_back_to_the_scheduler(real_dir: Path) -> None:
    reader = PlaneReader(open_image(real_dir / "example-timelapse.nd2"), 0, 0)
    want = np.asarray(reader._data[3, 0].compute(scheduler="synchronous"))
    reader._graph = {}  # the chunk's task is missing: evaluating it fails
    np.testing.assert_array_equal(reader.plane(3, 0), want)
    assert reader._graph is None


def test_block_of() -> None:
    assert _block_of((1, 1, 1), 2) == (2, 0)
    assert _block_of((5, 3), 6) == (1, 1)
    with pytest.raises(IndexError):
        _block_of((2, 2), 4)
