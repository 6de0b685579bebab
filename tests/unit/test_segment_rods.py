"""Tests of the dense-rod segmentation (algorithms.md §2.8)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from pyama_steps.segmentation.rods import (
    RodSegmentation,
    check_dense_rods,
    segment_rods,
)
from pyama_steps.validation import synth
from pyama_steps.validation.evaluate.matching import _match_frame


# ------------------------------------------------------------------ helpers
def _capsule(
    shape: tuple[int, int],
    centre: tuple[float, float],
    length: float,
    width: float,
    angle_deg: float = 0.0,
) -> np.ndarray:
    """Pixels whose centre lies within width/2 of the rod's axis segment."""
    yy, xx = np.indices(shape, dtype=np.float64)
    a = math.radians(angle_deg)
    ux, uy = math.cos(a), math.sin(a)
    dx, dy = xx - centre[1], yy - centre[0]
    along = dx * ux + dy * uy
    across = -dx * uy + dy * ux
    half = (length - width) / 2.0
    beyond = np.maximum(np.abs(along) - half, 0.0)
    return np.hypot(beyond, across) <= width / 2.0


def _phase(
    rods: list[np.ndarray],
    *,
    background: float = 1000.0,
    body: float = 700.0,
    seed: int = 0,
    noise: bool = True,
) -> np.ndarray:
    """Dark rods on a bright background, blurred like a microscope, with noise.

    Rods drawn touching are given a one-pixel bright junction line (their
    outlines are cleared where they meet), as phase contrast shows it.
    """
    shape = rods[0].shape
    count = np.sum(rods, axis=0)
    grown = [ndimage.binary_dilation(r) for r in rods]
    touching = np.sum(grown, axis=0) > 1
    cells = (count > 0) & ~touching
    image = np.where(cells, body, background).astype(np.float64)
    image = ndimage.gaussian_filter(image, 1.0)
    if noise:
        rng = np.random.default_rng(seed)
        image = rng.poisson(image).astype(np.float64)
    return image.reshape(shape)


def _n_objects(mask: np.ndarray) -> int:
    return int(ndimage.label(mask)[1])  # 4-connectivity, as the tracker labels


def _best_iou(mask: np.ndarray, truth: np.ndarray) -> float:
    labels, n = ndimage.label(mask)
    best = 0.0
    for k in range(1, n + 1):
        obj = labels == k
        best = max(best, (obj & truth).sum() / (obj | truth).sum())
    return best


# ------------------------------------------------------------ hand-built frames
def test_two_rods_side_by_side_are_split():
    shape = (96, 128)
    a = _capsule(shape, (38.5, 64), 70, 18)
    b = _capsule(shape, (57.5, 64), 70, 18)
    result = segment_rods(_phase([a, b]))
    assert isinstance(result, RodSegmentation)
    assert result.mask.dtype == np.bool_
    assert result.mask.shape == shape
    assert _n_objects(result.mask) == 2
    assert result.n_cells == 2
    assert _best_iou(result.mask, a) > 0.75
    assert _best_iou(result.mask, b) > 0.75


def test_two_rods_end_to_end_are_split():
    shape = (80, 160)
    a = _capsule(shape, (40, 46.5), 60, 18, angle_deg=0.0)
    b = _capsule(shape, (40, 106.5), 60, 18, angle_deg=0.0)
    result = segment_rods(_phase([a, b]))
    assert _n_objects(result.mask) == 2
    assert _best_iou(result.mask, a) > 0.75
    assert _best_iou(result.mask, b) > 0.75


def test_a_pack_of_tilted_rods_is_split_into_each_rod():
    shape = (160, 160)
    rods = [
        _capsule(shape, (80 + k * 19.0 * math.cos(math.radians(30)),
                         80 - k * 19.0 * math.sin(math.radians(30))), 80, 18, 30.0)
        for k in (-2, -1, 0, 1, 2)
    ]  # fmt: skip
    result = segment_rods(_phase(rods))
    assert _n_objects(result.mask) == 5
    for rod in rods:
        assert _best_iou(result.mask, rod) > 0.7


@pytest.mark.parametrize("angle", [0.0, 37.0, 90.0])
def test_a_lone_rod_stays_whole(angle):
    shape = (128, 128)
    rod = _capsule(shape, (64, 64), 80, 16, angle_deg=angle)
    result = segment_rods(_phase([rod]))
    assert _n_objects(result.mask) == 1
    assert _best_iou(result.mask, rod) > 0.8


def test_a_rod_cut_by_the_frame_edge_is_kept():
    shape = (96, 96)
    edge_rod = _capsule(shape, (48, -14), 60, 16, angle_deg=0.0)  # mostly outside
    rod = _capsule(shape, (48, 60), 50, 16)
    result = segment_rods(_phase([edge_rod, rod]), min_area_px=400)
    assert _n_objects(result.mask) == 2
    assert result.mask[48, 0]
    dropped = segment_rods(
        _phase([edge_rod, rod]), min_area_px=400, min_area_keep_edge=False
    )
    assert _n_objects(dropped.mask) == 1
    assert not dropped.mask[48, 0]


@pytest.mark.parametrize("value", [0, 1, 1000])
def test_constant_frame_gives_an_empty_mask(value):
    result = segment_rods(np.full((64, 80), value, dtype=np.uint16))
    assert not result.mask.any()
    assert result.n_cells == 0
    assert result.foreground_fraction == 0.0
    assert math.isnan(result.dark_level)
    assert math.isnan(result.body_threshold)


@pytest.mark.parametrize("level", [50, 1000, 20000])
def test_noise_only_gives_an_empty_mask(level):
    rng = np.random.default_rng(level)
    frame = rng.poisson(level, (256, 256)).astype(np.uint16)
    result = segment_rods(frame)
    assert result.foreground_fraction < 0.001


def test_vignetting_is_flattened():
    # Uneven illumination (15 % fall-off to the corners) changes nothing.
    shape = (128, 160)
    rods = [_capsule(shape, (40, 60), 70, 18), _capsule(shape, (90, 100), 70, 18, 20)]
    even = _phase(rods, noise=False)
    yy, xx = np.indices(shape)
    r2 = ((yy - 64) / 64.0) ** 2 + ((xx - 80) / 80.0) ** 2
    uneven = even * (1.0 - 0.075 * r2)
    a = segment_rods(even).mask
    b = segment_rods(uneven).mask
    assert (a ^ b).sum() < 0.02 * a.sum()
    assert _n_objects(b) == 2


@pytest.mark.parametrize(
    "dtype", [np.uint8, np.uint16, np.int32, np.float32, np.float64]
)
def test_dtypes_give_the_same_mask(dtype):
    shape = (96, 128)
    rods = [_capsule(shape, (38.5, 64), 70, 18), _capsule(shape, (57.5, 64), 70, 18)]
    # Values that every dtype holds exactly: 0-255.
    frame = np.clip(np.rint(_phase(rods, background=230.0, body=160.0, seed=3)), 0, 255)
    reference = segment_rods(frame.astype(np.float64)).mask
    result = segment_rods(frame.astype(dtype))
    np.testing.assert_array_equal(result.mask, reference)
    assert _n_objects(result.mask) == 2


def test_input_not_modified_and_deterministic():
    shape = (96, 128)
    frame = _phase([_capsule(shape, (48, 64), 70, 18)]).astype(np.uint16)
    before = frame.copy()
    first = segment_rods(frame)
    second = segment_rods(frame)
    np.testing.assert_array_equal(frame, before)
    np.testing.assert_array_equal(first.mask, second.mask)
    assert first.dark_level == second.dark_level


def test_ridge_strength_matches_the_eigenvalues():
    # Oracle: numpy's symmetric eigen-solver on every 2 x 2 Hessian of the same
    # central differences; the outermost rows and columns repeat their neighbours.
    from pyama_steps.segmentation.rods import _ridge_strength

    rng = np.random.default_rng(0)
    s = ndimage.gaussian_filter(rng.normal(size=(40, 50)), 1.5).astype(np.float32)
    hyy = np.zeros_like(s, dtype=np.float64)
    hxx = np.zeros_like(hyy)
    hxy = np.zeros_like(hyy)
    d = s.astype(np.float64)
    hyy[1:-1] = d[2:] - 2 * d[1:-1] + d[:-2]
    hxx[:, 1:-1] = d[:, 2:] - 2 * d[:, 1:-1] + d[:, :-2]
    hxy[1:-1, 1:-1] = (d[2:, 2:] - d[2:, :-2] - d[:-2, 2:] + d[:-2, :-2]) / 4
    hessian = np.stack([np.stack([hyy, hxy], -1), np.stack([hxy, hxx], -1)], -2)
    expected = -np.linalg.eigvalsh(hessian)[..., 0]
    ridge = _ridge_strength(s)
    np.testing.assert_allclose(ridge[1:-1, 1:-1], expected[1:-1, 1:-1], atol=1e-6)
    np.testing.assert_array_equal(ridge[0], ridge[1])
    np.testing.assert_array_equal(ridge[-1], ridge[-2])
    np.testing.assert_array_equal(ridge[:, 0], ridge[:, 1])
    np.testing.assert_array_equal(ridge[:, -1], ridge[:, -2])
    assert not _ridge_strength(np.ones((2, 9), dtype=np.float32)).any()


# -------------------------------------------------------------- generated data
@pytest.fixture(scope="module")
def rods_frames() -> list[tuple[np.ndarray, np.ndarray]]:
    params = synth.preset(
        "rods", seed=5, n_fov=1, n_frames=6, frame_sizes=((320, 352),)
    )
    sim = synth.simulate_fov(params, 0)
    frames = []
    for t in (0, 5):
        frame = sim.render(t)
        frames.append((frame.images[0], frame.labels.astype(np.int64)))
    return frames


def test_accuracy_on_generated_dense_rods(rods_frames):
    matched = n_true = n_pred = 0
    for image, truth in rods_frames:
        result = segment_rods(image)
        labels, n = ndimage.label(result.mask)
        assert n == result.n_cells
        true_ids, _, _ = _match_frame(truth, labels)
        matched += len(true_ids)
        n_true += len(np.unique(truth)) - 1
        n_pred += n
    assert n_true > 100
    assert matched / n_pred >= 0.9  # precision at IoU >= 0.5
    assert matched / n_true >= 0.9  # recall


def test_touching_cells_are_4_separated(rods_frames):
    # True cells that touch a neighbour (4-adjacent labels) still come out as
    # their own 4-connected component.
    touching = matched = 0
    for image, truth in rods_frames:
        labels, _ = ndimage.label(segment_rods(image).mask)
        true_ids, _, _ = _match_frame(truth, labels)
        pairs = set()
        for a, b in ((truth[:, :-1], truth[:, 1:]), (truth[:-1], truth[1:])):
            contact = (a > 0) & (b > 0) & (a != b)
            pairs |= set(a[contact].tolist()) | set(b[contact].tolist())
        touching += len(pairs)
        matched += len(pairs & set(true_ids.tolist()))
    assert touching > 50
    assert matched / touching >= 0.9


# ------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("frame", "error", "match"),
    [
        (np.zeros((4, 4, 4)), ValueError, r"frame must be a 2-D \(Y, X\) array"),
        (np.zeros((0, 4)), ValueError, r"at least one row and one column"),
        (np.zeros((4, 4), dtype=complex), TypeError, r"real integer or floating"),
        (np.full((4, 4), np.nan), ValueError, r"frame must be finite"),
    ],
)
def test_bad_frames(frame, error, match):
    with pytest.raises(error, match=match):
        segment_rods(frame)


@pytest.mark.parametrize(
    ("option", "value", "error", "match"),
    [
        ("smooth_sigma_px", 0.0, ValueError, r"smooth_sigma_px must be a finite"),
        ("smooth_sigma_px", "1", TypeError, r"smooth_sigma_px must be a real number"),
        ("background_px", 4, ValueError, r"background_px must be an integer >= 8"),
        ("background_px", 48.0, TypeError, r"background_px must be an int"),
        (
            "body_level",
            1.5,
            ValueError,
            r"body_level must be a finite number in \(0\.0, 1\.0\]",
        ),
        (
            "core_level",
            0.0,
            ValueError,
            r"core_level must be a finite number in \(0\.0, 1\.0\]",
        ),
        ("core_level", 0.9, ValueError, r"core_level must not exceed body_level"),
        ("ridge_threshold", -1.0, ValueError, r"ridge_threshold must be a finite"),
        ("ridge_threshold", math.inf, ValueError, r"ridge_threshold must be a finite"),
        ("grow_px", True, TypeError, r"grow_px must be an int"),
        ("grow_px", -1, ValueError, r"grow_px must be an integer >= 0"),
        ("min_core_px", 0, ValueError, r"min_core_px must be an integer >= 1"),
        ("min_area_px", -5, ValueError, r"min_area_px must be an integer >= 0"),
        ("min_area_keep_edge", 1, TypeError, r"min_area_keep_edge must be True"),
    ],
)
def test_bad_options(option, value, error, match):
    with pytest.raises(error, match=match):
        segment_rods(np.zeros((16, 16), dtype=np.uint16), **{option: value})


# ------------------------------------------------------------ dense-rods check
@pytest.mark.parametrize(
    ("preset", "expected"),
    [("rods", True), ("demo", False), ("standard", False), ("easy", False)],
)
def test_check_dense_rods_on_generated_fields(preset, expected):
    params = synth.preset(preset, n_fov=1, n_frames=3, seed=1)
    frame = synth.simulate_fov(params, 0).render(2).images[0]
    check = check_dense_rods(frame)
    assert check.dense_rods is expected
    if expected:
        assert check.median_aspect > 2.2
        assert check.touching_fraction > 0.5
    else:
        assert check.median_aspect < 1.7


def test_check_dense_rods_needs_all_three_signs():
    # Sparse rods (no neighbours) and a pack of short, wide cells are no
    # dense-rod field; an empty frame has no objects.
    shape = (256, 256)
    sparse = [
        _capsule(shape, (40 + 60 * (k // 3), 40 + 80 * (k % 3)), 60, 16)
        for k in range(9)
    ]
    sparse += [_capsule(shape, (230, 60 + 70 * k), 60, 16) for k in range(3)]
    check = check_dense_rods(_phase(sparse))
    assert check.n_cells == 12
    assert check.median_aspect > 3.0
    assert check.touching_fraction < 0.1
    assert not check.dense_rods
    packed = [
        _capsule(shape, (30 + 27 * r, 30 + 27 * c), 26, 26) for r in range(8)
        for c in range(8)
    ]  # fmt: skip
    check = check_dense_rods(_phase(packed))
    assert check.touching_fraction > 0.8
    assert check.median_aspect < 1.3
    assert not check.dense_rods
    empty = check_dense_rods(np.full(shape, 500, dtype=np.uint16))
    assert empty.n_cells == 0
    assert math.isnan(empty.median_aspect)
    assert not empty.dense_rods


def test_check_dense_rods_errors():
    with pytest.raises(
        ValueError, match=r"min_touching must be a finite number in \[0\.0, 1\.0\]"
    ):
        check_dense_rods(np.zeros((8, 8)), min_touching=2.0)
    with pytest.raises(ValueError, match=r"min_aspect must be a finite number >= 1"):
        check_dense_rods(np.zeros((8, 8)), min_aspect=0.5)


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (17, 30), (64, 64)])
def test_upsample_is_linear_interpolation_of_block_centres(shape):
    # Oracle: numpy.interp between the block centres, constant beyond them.
    from pyama_steps.segmentation.rods import _BLOCK, _upsample

    rng = np.random.default_rng(1)
    small = rng.random(shape).astype(np.float32)
    for axis, n in ((0, shape[0] * _BLOCK - 2), (1, shape[1] * _BLOCK)):
        out = _upsample(small, n, axis=axis)
        centres = np.arange(shape[axis], dtype=np.float64)
        pos = (np.arange(n) + 0.5) / _BLOCK - 0.5
        lines = small if axis == 1 else small.T
        ref = np.array([np.interp(pos, centres, line) for line in lines])
        ref = ref if axis == 1 else ref.T
        np.testing.assert_allclose(out, ref, atol=1e-6)
