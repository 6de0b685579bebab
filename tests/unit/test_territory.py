import math

import numpy as np
import pytest
from scipy import ndimage

from pyama_steps.traces import frame_features
from pyama_steps.traces.territory import grow_territories

EDGE = ((-1, 0), (1, 0), (0, -1), (0, 1))
ALL = (*EDGE, (-1, -1), (-1, 1), (1, -1), (1, 1))


def slow_territories(labels, reach):
    """Pixel-by-pixel breadth-first growth: {pixel: {label: share}}."""
    h, w = labels.shape
    owner = {(y, x): int(labels[y, x]) for y in range(h) for x in range(w)}
    taken = {p for p, v in owner.items() if v}
    front = {p: owner[p] for p in taken}
    out = {}
    for step in range(1, reach + 1):
        offsets = EDGE if step % 2 else ALL
        claims = {}
        for (y, x), lab in front.items():
            for dy, dx in offsets:
                q = (y + dy, x + dx)
                if 0 <= q[0] < h and 0 <= q[1] < w and q not in taken:
                    claims.setdefault(q, set()).add(lab)
        front = {}
        for q, labs in claims.items():
            out[q] = {lab: 1.0 / len(labs) for lab in labs}
            if len(labs) == 1:
                front[q] = next(iter(labs))
        taken |= set(claims)
    return out


def as_dict(t, width):
    out = {}
    for i, lab, wgt in zip(
        t.index.tolist(), t.label.tolist(), t.weight.tolist(), strict=True
    ):
        out.setdefault(divmod(i, width), {})[lab] = wgt
    return out


def random_labels(rng, shape, n):
    lab = np.zeros(shape, dtype=np.int64)
    for k in range(1, n + 1):
        y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        r = rng.integers(1, 4)
        lab[max(y - r, 0) : y + r, max(x - r, 0) : x + r] = k
    return lab


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("reach", [1, 2, 3, 5])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.int64])
def test_grow_territories_oracle(seed, reach, dtype):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 24)), int(rng.integers(1, 24)))
    labels = random_labels(rng, shape, int(rng.integers(0, 6))).astype(dtype)
    before = labels.copy()
    t = grow_territories(labels, reach_px=reach)
    np.testing.assert_array_equal(labels, before)  # input not modified
    assert as_dict(t, shape[1]) == slow_territories(labels, reach)
    # Every added pixel is background and is shared out exactly once.
    assert not labels.ravel()[t.index].any()
    np.testing.assert_allclose(
        np.bincount(t.index, weights=t.weight)[np.unique(t.index)], 1.0
    )


def test_hand_worked_example():
    lab = np.zeros((1, 7), dtype=np.uint8)
    lab[0, 1], lab[0, 5] = 1, 2
    t = as_dict(grow_territories(lab, reach_px=2), 7)
    assert t == {
        (0, 0): {1: 1.0},
        (0, 2): {1: 1.0},
        (0, 3): {1: 0.5, 2: 0.5},
        (0, 4): {2: 1.0},
        (0, 6): {2: 1.0},
    }


def test_octagon_shape_and_no_growth_past_a_neighbour():
    lab = np.zeros((21, 21), dtype=np.uint16)
    lab[10, 10] = 7
    t = grow_territories(lab, reach_px=4)
    grown = np.zeros_like(lab)
    grown.ravel()[t.index] = t.label
    rows = np.flatnonzero(grown[10])
    assert (rows.min(), rows.max()) == (6, 14)  # 4 px along the axes
    diag = [int(grown[10 + k, 10 + k]) for k in range(1, 5)]
    assert diag == [7, 7, 7, 0]  # (3, 3): 4.2 px, an octagon, not a square
    # A wall of another cell stops the growth; nothing is taken from it.
    lab[:, 12] = 3
    t = as_dict(grow_territories(lab, reach_px=6), 21)
    assert all(x < 12 or 3 in labs for (y, x), labs in t.items())
    assert not any(x == 12 for (y, x) in t)


def test_degenerate_inputs():
    empty = grow_territories(np.zeros((4, 5), dtype=np.uint16), reach_px=3)
    assert empty.index.size == empty.label.size == empty.weight.size == 0
    full = grow_territories(np.ones((4, 5), dtype=np.uint16), reach_px=3)
    assert full.index.size == 0
    zero = grow_territories(np.eye(5, dtype=np.uint8), reach_px=0)
    assert zero.index.size == 0
    assert (
        grow_territories(np.zeros((0, 3), dtype=np.uint8), reach_px=2).index.size == 0
    )


def test_errors():
    lab = np.zeros((3, 3), dtype=np.int32)
    with pytest.raises(ValueError, match="reach_px must be an integer >= 0"):
        grow_territories(lab, reach_px=-1)
    with pytest.raises(TypeError, match="reach_px must be an integer"):
        grow_territories(lab, reach_px=1.5)
    with pytest.raises(TypeError, match="reach_px must be an integer"):
        grow_territories(lab, reach_px=True)
    with pytest.raises(TypeError, match="integer dtype"):
        grow_territories(lab.astype(float), reach_px=1)
    with pytest.raises(ValueError, match="must be a \\(Y, X\\) array"):
        grow_territories(lab[None], reach_px=1)
    with pytest.raises(
        ValueError, match=r"labels must hold non-negative values .*, got -1"
    ):
        grow_territories(lab - 1, reach_px=1)
    with pytest.raises(TypeError, match="numpy array"):
        grow_territories([[0, 1]], reach_px=1)


def test_deterministic():
    rng = np.random.default_rng(3)
    lab = random_labels(rng, (64, 80), 25)
    a = grow_territories(lab, reach_px=4)
    b = grow_territories(lab.copy(), reach_px=4)
    for name in ("index", "label", "weight"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


# --------------------------------------------- the total does not depend on the edge
def _blurred_cells(rng, sigma, *, shape=(160, 200), noise=0.0):
    """Disks of known emitted light, blurred by a Gaussian PSF, plus noise.

    Returns the corrected image (zero background) and the true labels.
    """
    labels = np.zeros(shape, dtype=np.uint16)
    emitted = np.zeros(shape)
    yy, xx = np.indices(shape)
    centres = [(40, 45, 14), (40, 80, 12), (110, 60, 10), (100, 150, 16), (45, 150, 7)]
    totals = {}
    for k, (cy, cx, r) in enumerate(centres, start=1):
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        brightness = float(rng.uniform(200, 2000))
        labels[inside] = k
        emitted[inside] = brightness
        totals[k] = brightness * inside.sum()
    image = ndimage.gaussian_filter(emitted, sigma, mode="constant")
    if noise:
        image = image + rng.normal(0.0, noise, shape)
    return image.astype(np.float32), labels, totals


def _shrink(labels, k):
    size = 2 * k + 1
    # Background counts in both filters: 0 in the minimum, 65535 in the maximum.
    lo = ndimage.minimum_filter(labels, size, mode="nearest")
    hi = ndimage.maximum_filter(
        np.where(labels > 0, labels, 65535), size, mode="nearest"
    )
    return np.where((lo == labels) & (hi == labels), labels, 0).astype(labels.dtype)


def _grow(labels, k):
    t = grow_territories(labels, reach_px=k)
    out = labels.copy().ravel()
    one = t.weight == 1
    out[t.index[one]] = t.label[one]
    return out.reshape(labels.shape)


def _totals(labels, image, reach):
    f = frame_features(labels, fl_raw=[image], fl_corrected=[image], reach_px=reach)
    return dict(zip(f.ids.tolist(), f.intensity_total[0].tolist(), strict=True))


@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.0])
def test_total_collects_the_emitted_light_whatever_the_edge(sigma):
    # Oracle: the emitted light of each disk. Masks shrunk, grown or shifted
    # by up to 2 px give the same total within 1 %, while the mask-only sum
    # misses the light the PSF spreads across the outline.
    rng = np.random.default_rng(int(sigma * 10))
    image, labels, truth = _blurred_cells(rng, sigma, noise=2.0)
    reach = 6
    masks = {
        "true": labels,
        "shrunk 1": _shrink(labels, 1),
        "shrunk 2": _shrink(labels, 2),
        "grown 1": _grow(labels, 1),
        "grown 2": _grow(labels, 2),
        "shifted 1": np.roll(labels, 1, axis=1),
        "shifted 2": np.roll(labels, (1, 1), axis=(0, 1)),
    }
    for name, lab in masks.items():
        got = _totals(lab, image, reach)
        for k, expected in truth.items():
            assert got[k] == pytest.approx(expected, rel=0.01), (name, k)
    mask_only = _totals(labels, image, 0)
    assert all(mask_only[k] < 0.97 * truth[k] for k in truth)


def test_total_noise_cost_matches_the_territory_size():
    # The noise of the total grows with the square root of the pixels summed.
    rng = np.random.default_rng(11)
    clean, labels, _ = _blurred_cells(rng, 1.2)
    sd = 5.0
    runs = []
    for _ in range(200):
        noisy = clean + rng.normal(0.0, sd, clean.shape).astype(np.float32)
        runs.append(_totals(labels, noisy, 4))
    k = 3  # the isolated disk of radius 10
    spread = np.std([r[k] for r in runs])
    t = grow_territories(labels, reach_px=4)
    n_px = (labels == k).sum() + t.weight[t.label == k].sum()
    assert spread == pytest.approx(sd * math.sqrt(n_px), rel=0.15)
