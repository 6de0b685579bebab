from __future__ import annotations

import numpy as np
import pytest

from pyama_steps.io.ingest import ZAccumulator, rgb_to_gray, to_uint16


def test_uint16_is_kept_and_uint8_widened_unchanged() -> None:
    a = np.array([[0, 65535], [7, 300]], dtype=np.uint16)
    assert to_uint16(a).pixels is a or np.array_equal(to_uint16(a).pixels, a)
    b = np.array([[0, 255], [3, 128]], dtype=np.uint8)
    out = to_uint16(b)
    assert out.pixels.dtype == np.uint16
    np.testing.assert_array_equal(out.pixels, b)  # no x257 stretch


@pytest.mark.parametrize(
    ("dtype", "top"),
    [(np.int16, 32767), (np.int32, 65535), (np.uint32, 65535), (np.int64, 65535)],
)
def test_strict_integers_in_range_pass(dtype: type, top: int) -> None:
    a = np.array([[0, top], [1, 2]], dtype=dtype)
    np.testing.assert_array_equal(to_uint16(a).pixels, a.astype(np.uint16))


@pytest.mark.parametrize(
    ("values", "dtype", "message"),
    [
        ([-1, 5], np.int16, r"values range from -1 to 5 \(int16\), outside uint16"),
        ([0, 70000], np.uint32, r"values range from 0 to 70000 \(uint32\)"),
        ([0.5, 2.0], np.float32, "not whole numbers"),
        ([1.0, 70000.0], np.float64, r"outside \[0, 65535\]"),
        ([np.nan, 1.0], np.float32, "NaN or infinite"),
    ],
)
def test_strict_refuses_with_the_fix(values: list, dtype: type, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        to_uint16(np.array([values], dtype=dtype))
    assert "dtype_policy" in str(info.value)


def test_bool_is_rejected() -> None:
    with pytest.raises(TypeError, match="masks, not a microscope channel"):
        to_uint16(np.zeros((2, 2), bool))


def test_scale_policy_maps_clips_and_counts() -> None:
    a = np.array([[-10.0, 0.25, np.nan, 1e9]], dtype=np.float64)
    out = to_uint16(a, policy="scale", scale_factor=4.0, scale_offset=0.0)
    np.testing.assert_array_equal(out.pixels, [[0, 1, 0, 65535]])
    assert out.clipped == 2  # -40 and 4e9
    assert out.nan == 1
    with pytest.raises(ValueError, match="scale_factor must be > 0"):
        to_uint16(a, policy="scale", scale_factor=None)


def test_rgb_mean_rounds_half_to_even() -> None:
    plane = np.array([[[1, 2, 2], [0, 0, 1]]], dtype=np.uint8)  # means 5/3, 1/3
    np.testing.assert_array_equal(rgb_to_gray(plane), [[2.0, 0.0]])
    np.testing.assert_array_equal(rgb_to_gray(np.array([[[1, 2]]])), [[2.0]])  # 1.5


@pytest.mark.parametrize(("mode", "expected"), [("max", [[9, 4]]), ("mean", [[6, 2]])])
def test_z_projection_one_plane_at_a_time(mode: str, expected: list) -> None:
    acc = ZAccumulator(mode)
    for plane in ([[3, 1]], [[9, 1]], [[6, 4]]):
        acc.add(np.array(plane, dtype=np.uint16))
    np.testing.assert_array_equal(acc.result(), expected)  # mean 6, 2


def test_z_accumulator_errors() -> None:
    with pytest.raises(ValueError, match="z_mode must be one of"):
        ZAccumulator("median")
    acc = ZAccumulator("plane")
    with pytest.raises(ValueError, match="no Z plane was added"):
        acc.result()
    acc.add(np.zeros((1, 1)))
    with pytest.raises(ValueError, match="takes exactly one plane"):
        acc.add(np.zeros((1, 1)))
