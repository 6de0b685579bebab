"""Tests for pyama_steps.tracking (algorithms.md §4)."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from pyama_steps.tracking import (
    FATES,
    LINEAGE_COLUMNS,
    LineageTracker,
    Track,
    TrackingResult,
    assign,
    label_components,
    lineage_table,
    overlap_pairs,
    relabel_frame,
    track_masks,
    write_lineage_csv,
)

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def frame(shape: tuple[int, int], *rects: tuple[int, int, int, int]) -> np.ndarray:
    """Bool mask with the rectangles (y0, y1, x0, x1), ends exclusive."""
    mask = np.zeros(shape, dtype=bool)
    for y0, y1, x0, x1 in rects:
        mask[y0:y1, x0:x1] = True
    return mask


def by_cell(result: TrackingResult) -> dict[int, Track]:
    return {tr.cell: tr for tr in result.tracks}


def relabel_all(result: TrackingResult, masks: list[np.ndarray]) -> np.ndarray:
    return np.stack(
        [
            relabel_frame(
                m,
                result.luts[t],
                connectivity=result.connectivity,
                dtype=result.label_dtype,
                cut=result.cuts[t] if result.cuts else None,
            )
            for t, m in enumerate(masks)
        ]
    )


def random_masks(
    rng: np.random.Generator, t: int = 8, shape: tuple[int, int] = (64, 80)
) -> list[np.ndarray]:
    """Moving discs that appear, vanish and touch, plus pixel noise."""
    n = 9
    cy = rng.uniform(5, shape[0] - 5, n)
    cx = rng.uniform(5, shape[1] - 5, n)
    r = rng.uniform(2.5, 7.0, n)
    v = rng.normal(0, 1.5, (n, 2))
    born = rng.integers(0, t, n)
    dies = born + rng.integers(1, t + 1, n)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    masks = []
    for k in range(t):
        m = np.zeros(shape, dtype=bool)
        for i in range(n):
            if born[i] <= k < dies[i] and rng.random() > 0.1:
                y, x = cy[i] + v[i, 0] * k, cx[i] + v[i, 1] * k
                m |= (yy - y) ** 2 + (xx - x) ** 2 <= r[i] ** 2
        m |= rng.random(shape) > 0.995
        masks.append(m)
    return masks


def check_lineage_consistent(
    result: TrackingResult,
    labels: np.ndarray,
    masks: list[np.ndarray],
    max_gap: int = 2,
) -> None:
    """Invariants every lineage-mode result must satisfy."""
    n_t = len(masks)
    for t, m in enumerate(masks):
        np.testing.assert_array_equal(labels[t] > 0, m)
        n = label_components(m, connectivity=result.connectivity)[1]
        # each component carries exactly one id and ids are unique per frame
        lut = result.luts[t]
        assert lut[0] == 0
        assert np.all(lut[1:] > 0)
        assert np.unique(lut[1:]).size == n
    tracks = by_cell(result)
    assert list(tracks) == list(range(1, result.max_id + 1))
    for cell, tr in tracks.items():
        present = [t for t in range(n_t) if np.any(labels[t] == cell)]
        assert present, cell
        assert tr.first_frame == present[0]
        assert tr.last_frame == present[-1]
        assert tr.n_frames == len(present)
        assert tr.n_gap_frames == tr.last_frame - tr.first_frame + 1 - tr.n_frames
        assert tr.fate in FATES
        assert (tr.fate == "end") == (tr.last_frame == n_t - 1)
        assert 0 <= tr.parent < cell
        if tr.parent:
            mother = tracks[tr.parent]
            assert mother.fate == "divided"
            # Next frame, or after a bridged gap of at most max_gap frames.
            assert 1 <= tr.first_frame - mother.last_frame <= 1 + max_gap
    for cell, tr in tracks.items():
        if tr.fate == "divided":
            assert sum(d.parent == cell for d in tracks.values()) >= 2


# --------------------------------------------------------------------------
# label_components
# --------------------------------------------------------------------------


def test_label_components_raster_order_and_dtype():
    mask = frame((6, 6), (3, 5, 0, 2), (0, 2, 4, 6))
    labels, n = label_components(mask)
    assert n == 2
    assert labels.dtype == np.int32
    # the top-right blob has the first pixel in raster order
    assert labels[0, 4] == 1
    assert labels[3, 0] == 2
    np.testing.assert_array_equal(labels > 0, mask)


@pytest.mark.parametrize(("connectivity", "expected"), [(4, 2), (8, 1)])
def test_label_components_connectivity(connectivity, expected):
    mask = np.array([[1, 0], [0, 1]], dtype=bool)
    assert label_components(mask, connectivity=connectivity)[1] == expected


def test_label_components_empty_and_does_not_modify_input():
    mask = np.zeros((4, 5), dtype=bool)
    labels, n = label_components(mask)
    assert n == 0
    assert not labels.any()
    mask2 = frame((4, 5), (1, 3, 1, 3))
    before = mask2.copy()
    label_components(mask2)
    np.testing.assert_array_equal(mask2, before)


@pytest.mark.parametrize("connectivity", [6, 0, True, 4.5, "4"])
def test_label_components_bad_connectivity(connectivity):
    with pytest.raises(ValueError, match="connectivity must be 4 or 8"):
        label_components(np.zeros((3, 3), bool), connectivity=connectivity)


def test_label_components_bad_mask():
    with pytest.raises(TypeError, match="mask must have dtype bool"):
        label_components(np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match=r"mask must be a \(Y, X\) array"):
        label_components(np.zeros((2, 3, 3), bool))
    with pytest.raises(TypeError, match="mask must be a numpy array"):
        label_components([[True]])  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# overlap_pairs
# --------------------------------------------------------------------------


def test_overlap_pairs_hand_computed():
    u = np.array([[1, 1, 0, 2], [1, 1, 0, 2]], dtype=np.int32)
    t = np.array([[0, 1, 1, 1], [0, 1, 1, 0]], dtype=np.int32)
    rows, cols, inter, iou = overlap_pairs(u, 2, t, 1)
    np.testing.assert_array_equal(rows, [1, 2])
    np.testing.assert_array_equal(cols, [1, 1])
    np.testing.assert_array_equal(inter, [2, 1])
    # A_u = [4, 2], A_t = [5]
    np.testing.assert_allclose(iou, [2 / (4 + 5 - 2), 1 / (2 + 5 - 1)])
    assert rows.dtype == cols.dtype == inter.dtype == np.int64
    assert iou.dtype == np.float64


def test_overlap_pairs_no_overlap():
    u = np.array([[1, 0]], dtype=np.int32)
    t = np.array([[0, 1]], dtype=np.int32)
    rows, cols, inter, iou = overlap_pairs(u, 1, t, 1)
    assert rows.size == cols.size == inter.size == iou.size == 0


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("dtype", [np.int32, np.uint16, np.int64])
def test_overlap_pairs_oracle(seed, dtype):
    rng = np.random.default_rng(seed)
    comp_u, n_u = ndimage.label(rng.random((23, 31)) > 0.55)
    comp_t, n_t = ndimage.label(rng.random((23, 31)) > 0.5)
    comp_u, comp_t = comp_u.astype(dtype), comp_t.astype(dtype)
    rows, cols, inter, iou = overlap_pairs(comp_u, n_u, comp_t, n_t)
    expected = []
    for i in range(1, n_u + 1):
        for j in range(1, n_t + 1):
            a, b = comp_u == i, comp_t == j
            shared = int(np.sum(a & b))
            if shared:
                expected.append((i, j, shared, shared / np.sum(a | b)))
    assert list(zip(rows.tolist(), cols.tolist(), strict=True)) == [
        (i, j) for i, j, _, _ in expected
    ]
    np.testing.assert_array_equal(inter, [e[2] for e in expected])
    np.testing.assert_allclose(iou, [e[3] for e in expected], rtol=1e-15)


def test_overlap_pairs_errors():
    a = np.zeros((3, 3), np.int32)
    with pytest.raises(ValueError, match="must have the same shape"):
        overlap_pairs(a, 0, np.zeros((3, 4), np.int32), 0)
    with pytest.raises(ValueError, match=r"comp_u must hold labels in \[0, 0\]"):
        overlap_pairs(np.ones((3, 3), np.int32), 0, a, 0)
    with pytest.raises(ValueError, match=r"comp_t must hold labels in \[0, 1\]"):
        overlap_pairs(a, 0, np.full((3, 3), -1, np.int32), 1)
    with pytest.raises(TypeError, match="comp_t must have an integer dtype"):
        overlap_pairs(a, 0, a.astype(float), 0)
    with pytest.raises(ValueError, match=r"comp_u must be a \(Y, X\) array"):
        overlap_pairs(a[None], 0, a, 0)
    with pytest.raises(ValueError, match="n for comp_u must be an integer >= 0"):
        overlap_pairs(a, -1, a, 0)


# --------------------------------------------------------------------------
# assign
# --------------------------------------------------------------------------


def brute_force_total(rows, cols, iou, threshold):
    pairs = {
        (r, c): w
        for r, c, w in zip(rows.tolist(), cols.tolist(), iou.tolist(), strict=True)
        if w >= threshold and w > 0
    }
    row_ids = sorted({r for r, _ in pairs})
    col_ids = sorted({c for _, c in pairs})
    best = 0.0
    slots = [*col_ids, *([None] * len(row_ids))]
    for perm in itertools.permutations(slots, len(row_ids)):
        total = sum(
            pairs.get((r, c), 0.0) for r, c in zip(row_ids, perm, strict=True) if c
        )
        best = max(best, total)
    return best


def test_assign_prefers_total_iou_over_greedy():
    rows = np.array([1, 1, 2])
    cols = np.array([1, 2, 1])
    iou = np.array([0.6, 0.5, 0.55])
    r, c = assign(rows, cols, iou, threshold=0.1)
    np.testing.assert_array_equal(r, [1, 2])
    np.testing.assert_array_equal(c, [2, 1])


def test_assign_threshold_and_blocks():
    rows = np.array([7, 3, 3, 9])
    cols = np.array([1, 2, 4, 5])
    iou = np.array([0.05, 0.8, 0.3, 0.1])
    r, c = assign(rows, cols, iou, threshold=0.1)
    # 7-1 falls below the threshold; 9-5 is exactly at it and is kept
    np.testing.assert_array_equal(r, [3, 9])
    np.testing.assert_array_equal(c, [2, 5])
    assert r.dtype == c.dtype == np.int64


def test_assign_empty():
    empty = np.zeros(0, np.int64)
    r, c = assign(empty, empty, np.zeros(0), threshold=0.5)
    assert r.size == c.size == 0


@pytest.mark.parametrize("seed", range(40))
def test_assign_oracle(seed):
    rng = np.random.default_rng(seed)
    n_r, n_c = rng.integers(1, 6, 2)
    grid = [(r, c) for r in range(n_r) for c in range(n_c)]
    k = int(rng.integers(1, len(grid) + 1))
    chosen = rng.choice(len(grid), size=k, replace=False)
    rows = np.array([grid[i][0] for i in chosen]) * 3 + 1
    cols = np.array([grid[i][1] for i in chosen]) * 2 + 5
    iou = np.round(rng.random(k), 2)
    threshold = float(rng.choice([0.0, 0.1, 0.3]))
    r, c = assign(rows, cols, iou, threshold=threshold)
    pairs = zip(rows.tolist(), cols.tolist(), strict=True)
    lookup = dict(zip(pairs, iou.tolist(), strict=True))
    assert np.unique(r).size == r.size
    assert np.unique(c).size == c.size
    assert np.all(np.diff(r) > 0)
    got = [lookup[(a, b)] for a, b in zip(r.tolist(), c.tolist(), strict=True)]
    assert all(w >= threshold and w > 0 for w in got)
    assert sum(got) == pytest.approx(brute_force_total(rows, cols, iou, threshold))


def test_assign_does_not_modify_inputs():
    rows, cols, iou = np.array([2, 1]), np.array([1, 1]), np.array([0.5, 0.7])
    copies = rows.copy(), cols.copy(), iou.copy()
    assign(rows, cols, iou, threshold=0.1)
    for a, b in zip((rows, cols, iou), copies, strict=True):
        np.testing.assert_array_equal(a, b)


def test_assign_errors():
    ok_i, ok_f = np.array([1, 2]), np.array([0.5, 0.5])
    with pytest.raises(ValueError, match="must have the same length"):
        assign(ok_i, np.array([1]), ok_f, threshold=0.1)
    with pytest.raises(
        ValueError, match=r"threshold must be a finite number in \[0.0, 1.0\]"
    ):
        assign(ok_i, ok_i, ok_f, threshold=1.5)
    with pytest.raises(TypeError, match="threshold must be a real number"):
        assign(ok_i, ok_i, ok_f, threshold="0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"iou must lie in \[0, 1\]"):
        assign(ok_i, ok_i, np.array([0.5, np.nan]), threshold=0.1)
    with pytest.raises(TypeError, match="rows must have an integer dtype"):
        assign(ok_f, ok_i, ok_f, threshold=0.1)
    with pytest.raises(TypeError, match="iou must have a float dtype"):
        assign(ok_i, ok_i, ok_i, threshold=0.1)
    with pytest.raises(ValueError, match="rows must be 1-D"):
        assign(ok_i[None], ok_i, ok_f, threshold=0.1)
    with pytest.raises(ValueError, match=r"must not repeat a \(row, col\) pair"):
        assign(np.array([1, 1]), np.array([2, 2]), ok_f, threshold=0.1)
    with pytest.raises(TypeError, match="cols must be a numpy array"):
        assign(ok_i, [1, 2], ok_f, threshold=0.1)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# lineage mode: hand-built scenarios
# --------------------------------------------------------------------------

SHAPE = (24, 64)


def test_cell_moving():
    masks = [frame(SHAPE, (4, 12, 4 + t, 14 + t)) for t in range(5)]
    result = track_masks(masks)
    assert [lut.tolist() for lut in result.luts] == [[0, 1]] * 5
    assert result.tracks == (Track(1, 0, 0, 4, 5, 0, 0, "end"),)
    assert result.max_id == 1
    assert result.label_dtype == np.uint16
    assert result.shape == (5, *SHAPE)
    labels = relabel_all(result, masks)
    np.testing.assert_array_equal(labels, np.stack(masks).astype(np.uint16))


def test_cell_appearing_gets_next_ids_in_label_order():
    a = (4, 12, 30, 40)
    masks = [
        frame(SHAPE, a),
        frame(SHAPE, a),
        # two cells appear; the one further right starts higher (raster first)
        frame(SHAPE, a, (15, 20, 2, 8), (14, 20, 50, 60)),
        frame(SHAPE, a, (15, 20, 2, 8), (14, 20, 50, 60)),
    ]
    result = track_masks(masks)
    assert result.luts[2].tolist() == [0, 1, 2, 3]
    tracks = by_cell(result)
    assert tracks[2] == Track(2, 0, 2, 3, 2, 0, 0, "end")
    assert tracks[3] == Track(3, 0, 2, 3, 2, 0, 0, "end")
    assert tracks[1].fate == "end"
    labels = relabel_all(result, masks)
    assert labels[2, 14, 50] == 2
    assert labels[2, 15, 2] == 3


def test_gap_of_one_frame_is_bridged():
    cell = (4, 12, 4, 14)
    other = (4, 12, 40, 50)
    masks = [
        frame(SHAPE, cell, other),
        frame(SHAPE, cell, other),
        frame(SHAPE, other),
        frame(SHAPE, cell, other),
        frame(SHAPE, cell, other),
    ]
    result = track_masks(masks, max_gap=2)
    tracks = by_cell(result)
    assert tracks[1] == Track(1, 0, 0, 4, 4, 1, 0, "end")
    assert tracks[2] == Track(2, 0, 0, 4, 5, 0, 0, "end")
    assert result.max_id == 2
    labels = relabel_all(result, masks)
    assert not np.any(labels[2] == 1)
    assert np.all(labels[3][masks[3] & ~masks[2]] == 1)


def test_gap_not_bridged_with_max_gap_0():
    cell = (4, 12, 4, 14)
    masks = [frame(SHAPE, cell), frame(SHAPE, cell), frame(SHAPE), frame(SHAPE, cell)]
    result = track_masks(masks, max_gap=0)
    assert result.tracks == (
        Track(1, 0, 0, 1, 2, 0, 0, "lost"),
        Track(2, 0, 3, 3, 1, 0, 0, "end"),
    )
    assert result.luts[3].tolist() == [0, 2]


def test_gap_longer_than_max_gap_is_not_bridged():
    cell = (4, 12, 4, 14)
    masks = [frame(SHAPE, cell), frame(SHAPE), frame(SHAPE), frame(SHAPE, cell)]
    assert len(track_masks(masks, max_gap=1).tracks) == 2
    bridged = track_masks(masks, max_gap=2)
    assert bridged.tracks == (Track(1, 0, 0, 3, 2, 2, 0, "end"),)


def test_gap_min_iou_applies_to_bridges():
    masks = [frame(SHAPE, (4, 12, 4, 14)), frame(SHAPE), frame(SHAPE, (4, 12, 11, 21))]
    # IoU = 24 / 136 ~ 0.18
    assert len(track_masks(masks, gap_min_iou=0.1).tracks) == 1
    assert len(track_masks(masks, gap_min_iou=0.2).tracks) == 2


def test_cell_lost_for_good():
    masks = [frame(SHAPE, (4, 12, 4, 14))] + [frame(SHAPE)] * 4
    result = track_masks(masks)
    assert result.tracks == (Track(1, 0, 0, 0, 1, 0, 0, "lost"),)
    # lost before the gap ran out: still "lost" at the end of the movie
    short = track_masks(masks[:2])
    assert short.tracks == (Track(1, 0, 0, 0, 1, 0, 0, "lost"),)


def test_division():
    masks = [
        frame(SHAPE, (4, 14, 10, 30)),
        frame(SHAPE, (4, 14, 10, 30)),
        frame(SHAPE, (4, 14, 10, 19), (4, 14, 21, 30)),
        frame(SHAPE, (4, 14, 9, 18), (4, 14, 22, 31)),
    ]
    result = track_masks(masks)
    assert result.tracks == (
        Track(1, 0, 0, 1, 2, 0, 0, "divided"),
        Track(2, 1, 2, 3, 2, 0, 0, "end"),
        Track(3, 1, 2, 3, 2, 0, 0, "end"),
    )
    # daughters get ids in component label order (left one first)
    assert result.luts[2].tolist() == [0, 2, 3]
    assert result.luts[3].tolist() == [0, 2, 3]


def test_division_off():
    masks = [
        frame(SHAPE, (4, 14, 10, 30)),
        frame(SHAPE, (4, 14, 10, 19), (4, 14, 21, 30)),
    ]
    result = track_masks(masks, divisions=False)
    tracks = by_cell(result)
    assert tracks[1].fate == "end"
    assert tracks[2] == Track(2, 0, 1, 1, 1, 0, 0, "end")


def test_division_needs_overlap_share():
    # the second part lies mostly outside the mother: no division
    masks = [
        frame(SHAPE, (4, 14, 10, 30)),
        frame(SHAPE, (4, 14, 10, 28), (4, 14, 29, 50)),
    ]
    result = track_masks(masks)
    tracks = by_cell(result)
    assert tracks[1].fate == "end"
    assert tracks[2].parent == 0


def test_division_ids_by_mother_then_label_then_births():
    # mother A (id 1) starts higher than B (id 2), but at frame 1 B's daughters
    # come first in raster order; a newborn cell is raster-first of all.
    masks = [
        frame((32, 80), (2, 12, 40, 60), (3, 13, 2, 22)),
        frame(
            (32, 80),
            (0, 1, 70, 80),
            (1, 11, 2, 11),
            (1, 11, 13, 22),
            (4, 14, 40, 49),
            (4, 14, 51, 60),
        ),
    ]
    result = track_masks(masks)
    # labels at frame 1: newborn 1, B's daughters 2 and 3, A's daughters 4, 5
    assert result.luts[1].tolist() == [0, 7, 5, 6, 3, 4]
    tracks = by_cell(result)
    assert tracks[1].fate == tracks[2].fate == "divided"
    assert [tracks[i].parent for i in range(3, 8)] == [1, 1, 2, 2, 0]


def test_division_of_a_mother_that_rounded_up():
    # The mother shrinks to a compact blob before the split; the daughters,
    # touching (a 1-px line between them), are each larger than half of that
    # last mask: 24 and 18 of their 100 and 90 px lie inside the 48-px mother,
    # a fifth of their area but more than division_min_overlap (0.4) of half
    # the mother (9.6 px).
    mother = (4, 14, 10, 30)
    masks = [
        frame(SHAPE, mother),
        frame(SHAPE, mother),
        frame(SHAPE, (6, 12, 16, 24)),
        *[frame(SHAPE, (4, 14, 10, 20), (4, 14, 21, 30))] * 3,
    ]
    result = track_masks(masks)
    assert result.tracks == (
        Track(1, 0, 0, 2, 3, 0, 0, "divided"),
        Track(2, 1, 3, 5, 3, 0, 0, "end"),
        Track(3, 1, 3, 5, 3, 0, 0, "end"),
    )
    # A stricter share than the overlap the daughters have: no division.
    strict = by_cell(track_masks(masks, division_min_overlap=0.9))
    assert strict[1].fate == "end"
    assert all(tr.parent == 0 for tr in strict.values())


def test_daughter_won_by_a_fragment_track_is_claimed_by_her_mother():
    # A small fragment track next to the mother overlaps the right daughter
    # (IoU 20/130 ~ 0.15), so the assignment gives it that daughter and the
    # mother the left one (0.45 + 0.15 > 0.39). The daughter lies more inside
    # the mother (90 px) than inside the fragment (20 px): she is a daughter.
    mother = (4, 14, 10, 30)
    fragment = (4, 14, 31, 34)
    masks = [
        frame(SHAPE, mother),
        frame(SHAPE, mother, fragment),
        *[frame(SHAPE, (4, 14, 10, 19), (4, 14, 21, 33))] * 4,
    ]
    result = track_masks(masks)
    assert result.tracks == (
        Track(1, 0, 0, 1, 2, 0, 0, "divided"),
        Track(2, 0, 1, 1, 1, 0, 0, "merged"),
        Track(3, 1, 2, 5, 4, 0, 0, "end"),
        Track(4, 1, 2, 5, 4, 0, 1, "end"),
    )
    check_lineage_consistent(result, relabel_all(result, masks), masks)


def test_division_across_a_gap():
    # The mother is not segmented in the frame before the split (a dropped
    # frame); two touching daughters appear inside her last mask.
    masks = [
        frame(SHAPE, (4, 14, 10, 30)),
        frame(SHAPE, (4, 14, 10, 30)),
        frame(SHAPE),
        *[frame(SHAPE, (4, 14, 9, 20), (4, 14, 21, 31))] * 3,
    ]
    result = track_masks(masks)
    assert result.tracks == (
        Track(1, 0, 0, 1, 2, 0, 0, "divided"),
        Track(2, 1, 3, 5, 3, 0, 0, "end"),
        Track(3, 1, 3, 5, 3, 0, 0, "end"),
    )
    # Without gap closing the daughters are newborn cells.
    closed = by_cell(track_masks(masks, max_gap=0))
    assert closed[1].fate == "lost"
    assert all(tr.parent == 0 for tr in closed.values())


def test_flicker_split_is_not_a_division():
    # A cell split by the segmentation for one frame: the two parts join
    # again, so one of the "daughters" ends (merged) after a single frame.
    whole = (4, 14, 10, 30)
    masks = [
        frame(SHAPE, whole),
        frame(SHAPE, whole),
        frame(SHAPE, (4, 14, 10, 19), (4, 14, 21, 30)),
        *[frame(SHAPE, whole)] * 3,
    ]
    result = track_masks(masks)
    # The cell keeps its id; the other part is a one-frame track merged into it.
    assert result.tracks == (
        Track(1, 0, 0, 5, 6, 0, 1, "end"),
        Track(2, 0, 2, 2, 1, 0, 0, "merged"),
    )
    assert [lut.tolist() for lut in result.luts] == [[0, 1], [0, 1], [0, 1, 2]] + [
        [0, 1]
    ] * 3
    labels = relabel_all(result, masks)
    check_lineage_consistent(result, labels, masks)
    # division_min_frames 0 (or 1) keeps every division.
    kept = track_masks(masks, division_min_frames=0)
    assert kept.tracks == (
        Track(1, 0, 0, 1, 2, 0, 0, "divided"),
        Track(2, 1, 2, 5, 4, 0, 1, "end"),
        Track(3, 1, 2, 2, 1, 0, 0, "merged"),
    )
    assert track_masks(masks, division_min_frames=1).tracks == kept.tracks


def test_division_near_the_end_of_the_movie_is_kept():
    # Daughters present in the last frame(s) end with fate "end", not "lost".
    masks = [
        frame(SHAPE, (4, 14, 10, 30)),
        frame(SHAPE, (4, 14, 10, 30)),
        frame(SHAPE, (4, 14, 10, 19), (4, 14, 21, 30)),
    ]
    tracks = by_cell(track_masks(masks, division_min_frames=5))
    assert tracks[1].fate == "divided"
    assert tracks[2].parent == tracks[3].parent == 1


def test_short_fragment_loses_its_parent_but_the_division_stays():
    # The mother splits into two daughters and a fragment; the fragment joins
    # the second daughter in the next frame.
    masks = [
        frame(SHAPE, (4, 14, 10, 40)),
        frame(SHAPE, (4, 14, 10, 19), (4, 14, 20, 35), (4, 14, 36, 40)),
        *[frame(SHAPE, (4, 14, 10, 19), (4, 14, 20, 40))] * 3,
    ]
    result = track_masks(masks)
    assert result.tracks == (
        Track(1, 0, 0, 0, 1, 0, 0, "divided"),
        Track(2, 1, 1, 4, 4, 0, 0, "end"),
        Track(3, 1, 1, 4, 4, 0, 1, "end"),
        Track(4, 0, 1, 1, 1, 0, 0, "merged"),
    )
    labels = relabel_all(result, masks)
    check_lineage_consistent(result, labels, masks)


def test_undone_divisions_chain():
    # Two flicker splits in a row: the cell keeps its id through both, and the
    # ids of the remaining one-frame parts are renumbered 2 and 3.
    whole = (4, 14, 10, 30)
    split = frame(SHAPE, (4, 14, 10, 19), (4, 14, 21, 30))
    masks = [frame(SHAPE, whole), split, frame(SHAPE, whole), split]
    masks += [frame(SHAPE, whole)] * 3
    result = track_masks(masks)
    tracks = by_cell(result)
    assert tracks[1] == Track(1, 0, 0, 6, 7, 0, 2, "end")
    assert tracks[2] == Track(2, 0, 1, 1, 1, 0, 0, "merged")
    assert tracks[3] == Track(3, 0, 3, 3, 1, 0, 0, "merged")
    assert result.max_id == 3
    check_lineage_consistent(result, relabel_all(result, masks), masks)


def test_merge():
    big = (2, 12, 2, 22)
    small = (2, 8, 23, 30)
    union = (2, 12, 2, 30)
    masks = [frame(SHAPE, big, small)] * 2 + [frame(SHAPE, union)] * 4
    result = track_masks(masks)
    assert result.tracks == (
        Track(1, 0, 0, 5, 6, 0, 1, "end"),
        Track(2, 0, 0, 1, 2, 0, 0, "merged"),
    )
    # still dormant at the end of a shorter movie: fate from the mark
    assert by_cell(track_masks(masks[:3]))[2].fate == "merged"
    # below the share: lost, not merged
    strict = track_masks(masks, merge_min_overlap=1.0)
    assert by_cell(strict)[2].fate == "merged"
    moved = [frame(SHAPE, big, small)] * 2 + [frame(SHAPE, (2, 12, 2, 26))] * 4
    assert by_cell(track_masks(moved))[2].fate == "lost"
    assert by_cell(track_masks(moved))[1].n_merged == 0


def test_bridge_clears_merge_mark_but_keeps_count():
    big = (2, 12, 2, 22)
    small = (2, 8, 23, 30)
    masks = [
        frame(SHAPE, big, small),
        frame(SHAPE, big, small),
        frame(SHAPE, (2, 12, 2, 30)),
        frame(SHAPE, big, small),
    ]
    result = track_masks(masks, divisions=False)
    assert result.tracks == (
        Track(1, 0, 0, 3, 4, 0, 1, "end"),
        Track(2, 0, 0, 3, 3, 1, 0, "end"),
    )


def test_empty_frame_tracks_resume():
    cells = ((2, 10, 2, 12), (12, 20, 30, 40))
    masks = [frame(SHAPE, *cells), frame(SHAPE), frame(SHAPE, *cells)]
    result = track_masks(masks)
    assert result.luts[1].tolist() == [0]
    assert result.luts[2].tolist() == [0, 1, 2]
    assert all(tr.n_gap_frames == 1 and tr.fate == "end" for tr in result.tracks)


def test_no_cells_at_all():
    masks = [frame(SHAPE)] * 3
    result = track_masks(masks)
    assert result.tracks == ()
    assert result.max_id == 0
    assert result.label_dtype == np.uint16
    assert [lut.tolist() for lut in result.luts] == [[0]] * 3
    assert not relabel_all(result, masks).any()
    table = lineage_table(result, fov=0)
    assert list(table.columns) == list(LINEAGE_COLUMNS)
    assert len(table) == 0
    fh = io.StringIO()
    write_lineage_csv(table, fh)
    assert fh.getvalue() == ",".join(LINEAGE_COLUMNS) + "\n"


def test_no_frames():
    result = track_masks([])
    assert result.luts == ()
    assert result.tracks == ()
    assert result.shape == (0, 0, 0)


def test_single_frame():
    masks = [frame(SHAPE, (2, 10, 2, 12), (12, 20, 30, 40))]
    result = track_masks(masks)
    assert result.tracks == (
        Track(1, 0, 0, 0, 1, 0, 0, "end"),
        Track(2, 0, 0, 0, 1, 0, 0, "end"),
    )


def test_uint32_when_ids_exceed_uint16():
    # 4-connected checkerboard: every foreground pixel is its own component
    yy, xx = np.mgrid[:364, :364]
    mask = (yy + xx) % 2 == 0
    result = track_masks([mask])
    assert result.max_id == 364 * 364 // 2 > 65535
    assert result.label_dtype == np.uint32
    labels = relabel_frame(mask, result.luts[0], dtype=result.label_dtype)
    assert labels.dtype == np.uint32
    assert int(labels.max()) == result.max_id
    np.testing.assert_array_equal(labels > 0, mask)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"max_gap": 0},
        {"divisions": False, "connectivity": 8},
        {"min_iou": 0.3, "gap_min_iou": 0.5, "max_gap": 3},
        {"division_min_frames": 0},
        {"division_min_frames": 5, "division_min_overlap": 0.2},
    ],
)
def test_lineage_invariants_random(seed, params):
    rng = np.random.default_rng(seed)
    masks = random_masks(rng)
    result = track_masks(masks, **params)
    labels = relabel_all(result, masks)
    check_lineage_consistent(result, labels, masks, params.get("max_gap", 2))


@pytest.mark.parametrize("min_frames", [0, 3])
def test_tracker_streaming_equals_track_masks_and_finish_is_a_snapshot(min_frames):
    rng = np.random.default_rng(7)
    masks = random_masks(rng)
    tracker = LineageTracker(division_min_frames=min_frames)
    luts = [tracker.push(m) for m in masks[:4]]
    half = tracker.finish()
    luts += [tracker.push(m) for m in masks[4:]]
    full = tracker.finish()
    reference = track_masks(masks, division_min_frames=min_frames)
    assert tracker.n_frames == len(masks)
    assert full.tracks == reference.tracks
    assert all(
        np.array_equal(a, b) for a, b in zip(full.luts, reference.luts, strict=True)
    )
    # push returns the frame's decisions; finish may still undo a division
    # that a daughter did not survive, which renumbers ids.
    same = all(np.array_equal(a, b) for a, b in zip(luts, full.luts, strict=True))
    assert same == (min_frames == 0)
    assert half.shape[0] == 4
    with pytest.raises(ValueError, match="read-only"):
        full.luts[0][0] = 5


def test_track_masks_accepts_a_stack_and_does_not_modify_it():
    rng = np.random.default_rng(3)
    stack = np.stack(random_masks(rng))
    before = stack.copy()
    a = track_masks(stack)
    b = track_masks(list(stack))
    np.testing.assert_array_equal(stack, before)
    assert a.tracks == b.tracks


def test_deterministic():
    rng = np.random.default_rng(11)
    masks = random_masks(rng, t=10)
    texts = []
    for _ in range(2):
        result = track_masks(masks)
        fh = io.StringIO()
        write_lineage_csv(lineage_table(result, fov=2), fh)
        texts.append((fh.getvalue(), relabel_all(result, masks).tobytes()))
    assert texts[0] == texts[1]


# --------------------------------------------------------------------------
# upstream mode
# --------------------------------------------------------------------------


def upstream_reference(masks, min_iou=0.1):
    """Slow reference for mode='upstream': Python loops over all pairs."""
    luts, alive = [], {}  # alive: track id -> bbox in previous frame
    next_id = 1
    for t, m in enumerate(masks):
        comp, n = ndimage.label(m)
        boxes = []
        for k in range(1, n + 1):
            ys, xs = np.nonzero(comp == k)
            boxes.append((ys.min(), xs.min(), ys.max() + 1, xs.max() + 1))
        lut = [0] * (n + 1)
        if t == 0:
            for k in range(n):
                alive[next_id] = boxes[k]
                lut[k + 1] = next_id
                next_id += 1
        else:
            ids = sorted(alive)
            cost = np.ones((len(ids), n))
            valid = np.zeros((len(ids), n), bool)
            for i, tid in enumerate(ids):
                a = alive[tid]
                for k, b in enumerate(boxes):
                    iy = max(0, min(a[2], b[2]) - max(a[0], b[0]))
                    ix = max(0, min(a[3], b[3]) - max(a[1], b[1]))
                    inter = iy * ix
                    union = (
                        (a[2] - a[0]) * (a[3] - a[1])
                        + (b[2] - b[0]) * (b[3] - b[1])
                        - inter
                    )
                    iou = inter / union
                    if iou >= min_iou and iou > 0:
                        cost[i, k], valid[i, k] = 1 - iou, True
            new_alive = {}
            if ids and n:
                for i, k in zip(*linear_sum_assignment(cost), strict=True):
                    if valid[i, k]:
                        lut[k + 1] = ids[i]
                        new_alive[ids[i]] = boxes[k]
            alive = new_alive
        luts.append(lut)
    return luts


def test_upstream_frame0_seeds_only():
    masks = [
        frame(SHAPE, (4, 12, 4, 14)),
        frame(SHAPE, (4, 12, 5, 15), (14, 20, 40, 50)),
        frame(SHAPE, (4, 12, 6, 16), (14, 20, 40, 50)),
    ]
    result = track_masks(masks, mode="upstream")
    assert [lut.tolist() for lut in result.luts] == [[0, 1], [0, 1, 0], [0, 1, 0]]
    assert result.tracks == (Track(1, 0, 0, 2, 3, 0, 0, "end"),)
    labels = relabel_all(result, masks)
    assert not np.array_equal(labels > 0, np.stack(masks))
    assert labels[1, 15, 45] == 0


def test_upstream_uses_bbox_iou():
    # two L shapes with no shared pixel but overlapping boxes (IoU 64/98)
    first = np.zeros(SHAPE, bool)
    first[1:10, 0] = True
    first[9, 0:9] = True
    second = np.zeros(SHAPE, bool)
    second[0, 1:10] = True
    second[0:9, 9] = True
    assert not np.any(first & second)
    upstream = track_masks([first, second], mode="upstream")
    assert upstream.luts[1].tolist() == [0, 1]
    lineage = track_masks([first, second])
    assert lineage.luts[1].tolist() == [0, 2]
    assert track_masks([first, second], mode="upstream", min_iou=0.7).luts[
        1
    ].tolist() == [0, 0]


def test_upstream_unlinked_track_ends_for_good():
    cell = (4, 12, 4, 14)
    masks = [frame(SHAPE, cell), frame(SHAPE), frame(SHAPE, cell)]
    result = track_masks(masks, mode="upstream", max_gap=5)
    assert result.tracks == (Track(1, 0, 0, 0, 1, 0, 0, "lost"),)
    assert result.luts[2].tolist() == [0, 0]


def test_upstream_division_has_no_parent():
    masks = [
        frame(SHAPE, (4, 14, 10, 30)),
        frame(SHAPE, (4, 14, 10, 21), (4, 14, 23, 30)),
    ]
    result = track_masks(masks, mode="upstream")
    assert result.luts[1].tolist() == [0, 1, 0]
    assert all(tr.parent == 0 for tr in result.tracks)


@pytest.mark.parametrize("seed", range(6))
def test_upstream_oracle(seed):
    rng = np.random.default_rng(100 + seed)
    masks = random_masks(rng)
    result = track_masks(masks, mode="upstream")
    assert [lut.tolist() for lut in result.luts] == upstream_reference(masks)


# --------------------------------------------------------------------------
# lineage table and CSV
# --------------------------------------------------------------------------


def test_lineage_table_and_csv_text():
    masks = [
        frame(SHAPE, (4, 14, 10, 30)),
        frame(SHAPE, (4, 14, 10, 30)),
        frame(SHAPE, (4, 14, 10, 19), (4, 14, 21, 30)),
    ]
    table = lineage_table(track_masks(masks), fov=3)
    assert list(table.columns) == list(LINEAGE_COLUMNS)
    assert all(table[c].dtype == np.int64 for c in LINEAGE_COLUMNS[:-1])
    fh = io.StringIO()
    write_lineage_csv(table, fh)
    assert fh.getvalue() == (
        "fov,cell,parent,first_frame,last_frame,n_frames,n_gap_frames,n_merged,fate\n"
        "3,1,0,0,1,2,0,0,divided\n"
        "3,2,1,2,2,1,0,0,end\n"
        "3,3,1,2,2,1,0,0,end\n"
    )
    # a table read back from CSV writes the same bytes
    again = io.StringIO()
    write_lineage_csv(pd.read_csv(io.StringIO(fh.getvalue())), again)
    assert again.getvalue() == fh.getvalue()


def test_lineage_errors():
    result = track_masks([frame(SHAPE, (1, 3, 1, 3))])
    with pytest.raises(ValueError, match="fov must be an integer >= 0"):
        lineage_table(result, fov=-1)
    with pytest.raises(TypeError, match="fov must be an integer"):
        lineage_table(result, fov="0")  # type: ignore[arg-type]
    table = lineage_table(result, fov=0)
    with pytest.raises(ValueError, match="df must have the columns"):
        write_lineage_csv(table.drop(columns="fate"), io.StringIO())
    bad = table.astype({"cell": float})
    bad.loc[0, "cell"] = 1.5
    with pytest.raises(ValueError, match="column 'cell' must hold integers"):
        write_lineage_csv(bad, io.StringIO())


# --------------------------------------------------------------------------
# parameter and push errors
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"mode": "btrack"},
            ValueError,
            r"mode must be one of \('lineage', 'upstream'\)",
        ),
        ({"connectivity": 6}, ValueError, "connectivity must be 4 or 8"),
        (
            {"min_iou": 1.2},
            ValueError,
            r"min_iou must be a finite number in \[0.0, 1.0\]",
        ),
        (
            {"gap_min_iou": -0.1},
            ValueError,
            r"gap_min_iou must be a finite number in \[0.0, 1.0\]",
        ),
        ({"max_gap": -1}, ValueError, "max_gap must be an integer >= 0"),
        ({"max_gap": 1.5}, TypeError, "max_gap must be an integer"),
        ({"divisions": "yes"}, TypeError, "divisions must be True or False"),
        (
            {"division_min_overlap": 2},
            ValueError,
            "division_min_overlap must be a finite number in",
        ),
        (
            {"division_min_frames": -1},
            ValueError,
            "division_min_frames must be an integer >= 0",
        ),
        ({"division_min_frames": 2.0}, TypeError, "division_min_frames must be an"),
        ({"merge_min_overlap": None}, TypeError, "merge_min_overlap must be a real"),
    ],
)
def test_tracker_parameter_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        LineageTracker(**kwargs)
    with pytest.raises(error, match=match):
        track_masks([], **kwargs)


def test_push_errors():
    tracker = LineageTracker()
    tracker.push(np.zeros((4, 5), bool))
    with pytest.raises(ValueError, match=r"mask of frame 1 has shape \(5, 4\)"):
        tracker.push(np.zeros((5, 4), bool))
    with pytest.raises(TypeError, match="mask must have dtype bool"):
        tracker.push(np.zeros((4, 5), np.uint8))


def test_relabel_frame_errors():
    mask = frame((6, 6), (1, 3, 1, 3), (4, 6, 4, 6))
    lut = np.array([0, 1, 2])
    np.testing.assert_array_equal(
        relabel_frame(mask, lut, dtype=np.uint16),
        label_components(mask)[0].astype(np.uint16),
    )
    with pytest.raises(ValueError, match="lut has length 2 but the mask has 2"):
        relabel_frame(mask, lut[:2], dtype=np.uint16)
    with pytest.raises(ValueError, match="lut has length 3 but the mask has 1"):
        relabel_frame(
            mask | np.eye(6, dtype=bool), lut, connectivity=8, dtype=np.uint16
        )
    with pytest.raises(ValueError, match="cannot represent"):
        relabel_frame(mask, np.array([0, 1, 70000]), dtype=np.uint16)
    with pytest.raises(TypeError, match="dtype must be uint16 or uint32"):
        relabel_frame(mask, lut, dtype=np.int32)
    with pytest.raises(TypeError, match="lut must have an integer dtype"):
        relabel_frame(mask, lut.astype(float), dtype=np.uint16)
    with pytest.raises(ValueError, match="lut must be a 1-D array"):
        relabel_frame(mask, lut[None], dtype=np.uint16)


# --------------------------------------------------------------------------
# Merge split (§4.5 step 0)
# --------------------------------------------------------------------------


def disks(shape: tuple[int, int], *centres: tuple[float, float], r: float = 8.0):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, dtype=bool)
    for cy, cx in centres:
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    return mask


def two_cells_touching(apart_frames: int) -> list[np.ndarray]:
    """Two round cells apart for `apart_frames` frames, then pressed together."""
    apart = disks((40, 64), (20, 20), (20, 42))
    joined = disks((40, 64), (20, 23), (20, 39))  # overlap: one component
    assert label_components(joined)[1] == 1
    return [apart] * apart_frames + [joined] * 4


@pytest.mark.parametrize("connectivity", [4, 8])
def test_merge_split_keeps_touching_cells_apart(connectivity):
    masks = two_cells_touching(2)
    result = track_masks(masks, connectivity=connectivity)
    # both cells live through every frame, nobody merged
    assert [
        (t.first_frame, t.last_frame, t.n_merged, t.fate) for t in result.tracks
    ] == [
        (0, 5, 0, "end"),
        (0, 5, 0, "end"),
    ]
    labels = relabel_all(result, masks)
    for t in range(2, 6):
        frame_t = labels[t]
        assert set(np.unique(frame_t).tolist()) == {0, 1, 2}
        # each cell on its own side; the cut is a thin line in the middle
        assert np.nonzero(frame_t == 1)[1].max() <= 34
        assert np.nonzero(frame_t == 2)[1].min() >= 28
        cut = masks[t] & (frame_t == 0)
        assert 0 < cut.sum() <= 2 * 16
        np.testing.assert_array_equal(np.flatnonzero(cut), result.cuts[t])
        # the parts are separate components under the tracker's connectivity
        assert label_components(frame_t > 0, connectivity=connectivity)[1] == 2
    assert [c.size for c in result.cuts[:2]] == [0, 0]


def test_merge_split_off_merges_the_tracks():
    masks = two_cells_touching(2)
    result = track_masks(masks, split_merged_min_frames=0)
    fates = sorted((t.fate, t.n_merged) for t in result.tracks)
    assert fates == [("end", 1), ("merged", 0)]
    assert all(c.size == 0 for c in result.cuts)
    labels = relabel_all(result, masks)
    np.testing.assert_array_equal(labels > 0, np.stack(masks))


@pytest.mark.parametrize(("min_frames", "split"), [(1, True), (2, False)])
def test_merge_split_needs_tracks_seen_long_enough(min_frames, split):
    masks = two_cells_touching(1)  # apart in frame 0 only
    result = track_masks(masks, split_merged_min_frames=min_frames)
    assert (sum(c.size for c in result.cuts) > 0) is split
    assert len([t for t in result.tracks if t.fate == "end"]) == (2 if split else 1)


def test_merge_split_leaves_a_convex_rejoined_cell_whole():
    # one round cell cut in two by the segmentation for two frames, then whole:
    # the whole cell is convex, so the pieces were not two cells
    whole = disks((40, 64), (20, 30), r=10)
    halves = whole.copy()
    halves[:, 30] = False
    masks = [halves, halves, whole, whole]
    result = track_masks(masks)
    assert all(c.size == 0 for c in result.cuts)
    assert len([t for t in result.tracks if t.fate == "end"]) == 1


def test_merge_split_three_cells_and_pass2_invariant():
    apart = disks((48, 96), (24, 20), (24, 40), (24, 60), r=9)
    joined = disks((48, 96), (24, 23), (24, 40), (24, 57), r=9)
    assert label_components(joined)[1] == 1
    masks = [apart, apart, joined, joined, apart]
    result = track_masks(masks)
    assert [t.fate for t in result.tracks] == ["end"] * 3
    labels = relabel_all(result, masks)
    stack = np.stack(masks)
    assert not np.any((labels > 0) & ~stack)
    for t in (2, 3):
        assert set(np.unique(labels[t]).tolist()) == {0, 1, 2, 3}
        np.testing.assert_array_equal(
            np.flatnonzero(stack[t] & (labels[t] == 0)), result.cuts[t]
        )
    # cell 2 (the middle one) keeps the middle
    assert labels[3, 24, 40] == 2


def test_relabel_frame_cut_must_be_applied():
    masks = two_cells_touching(2)
    result = track_masks(masks)
    with pytest.raises(ValueError, match="components"):
        relabel_frame(masks[2], result.luts[2], dtype=result.label_dtype)


def test_merge_split_rejects_bad_parameter():
    with pytest.raises(ValueError, match="split_merged_min_frames"):
        LineageTracker(split_merged_min_frames=-1)
