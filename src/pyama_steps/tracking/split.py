"""Step (0) of pass 1: split components that join established tracks (§4.5).

Cells do not fuse: a component of the new frame that holds most of the last
masks of two or more established tracks is touching cells the segmentation
joined, and is cut between them before linking.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from pyama_steps.tracking.overlap import _pairs
from pyama_steps.tracking.state import _Frame

__all__: list[str] = []

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]

# A joined component more convex than this (pixels / pixels whose centres lie
# in the convex hull of its pixel centres) is
# left whole by the merge split: touching convex cells leave notches in the
# outline, two pieces of one cell do not (chosen on the tuning variants of
# benchmarks/robustness.py, algorithms.md §4.5 step 0).
_SPLIT_MAX_SOLIDITY: Final = 0.96
_NO_CUT: Final = np.zeros(0, dtype=np.int64)
_NO_CUT.setflags(write=False)


_Pairs = tuple[Int64Array, Int64Array, Int64Array, Float64Array]


def _merged_cut(
    prev: _Frame,
    comp: npt.NDArray[np.int32],
    n: int,
    *,
    present: Int64Array,
    merge_min_overlap: float,
    min_frames: int,
    connectivity: int,
) -> tuple[Int64Array, _Pairs | None]:
    """(0) Pixels to clear so that no component joins established tracks.

    A component of this frame that holds at least `merge_min_overlap` of
    the last masks of two or more tracks present (`present`, frames per
    track id) in at least `min_frames` frames is divided between them: each
    pixel goes to the nearest of those masks (inside the component), and the
    pixels of each part that touch a part of an earlier track are cleared.

    Returns
    -------
    cut : (k,) ndarray of int64
        Flat indices of the cleared pixels, ascending (empty if none).
    pairs : tuple of ndarray or None
        The overlaps of `prev` and this frame (:func:`_pairs`), which the
        link step reuses when nothing was cut; None otherwise.
    """
    if prev.n == 0 or n == 0:
        return _NO_CUT, None
    flat = comp.ravel()
    fg = np.flatnonzero(flat)
    ct = flat[fg]
    area = np.bincount(ct, minlength=n + 1).astype(np.int64)
    pairs = _pairs(prev.comp.ravel()[fg], ct, prev.area, area, n)
    rows, cols, inter, _ = pairs
    trk = prev.lut[rows]
    ok = (inter >= merge_min_overlap * prev.area[rows]) & (present[trk] >= min_frames)
    rows, cols, trk = rows[ok], cols[ok], trk[ok]
    comps, counts = np.unique(cols, return_counts=True)
    joined = comps[counts >= 2]
    if joined.size == 0:
        return _NO_CUT, pairs
    cuts = [_NO_CUT]
    width = comp.shape[1]
    for c in joined.tolist():
        sel = cols == c
        at = fg[ct == c]
        if _solidity(at, width) > _SPLIT_MAX_SOLIDITY:
            continue  # convex: pieces of one cell, not touching cells
        seeds = rows[sel][np.argsort(trk[sel], kind="stable")]
        cuts.append(
            _cut_between(
                comp,
                prev.comp,
                label=c,
                seeds=seeds,
                box=(
                    int(at[0] // width),
                    int(at[-1] // width) + 1,
                    int((at % width).min()),
                    int((at % width).max()) + 1,
                ),
                connectivity=connectivity,
            )
        )
    out: Int64Array = np.sort(np.concatenate(cuts))
    # the link step's overlaps, unless a cut changed the components
    return out, (None if out.size else pairs)


def _solidity(at: npt.NDArray[np.intp], width: int) -> float:
    """Pixels of one component (flat indices) over those of its convex hull."""
    from skimage.morphology import convex_hull_image

    ys, xs = np.divmod(at, width)
    y0, x0 = int(ys.min()), int(xs.min())
    crop = np.zeros((int(ys.max()) - y0 + 1, int(xs.max()) - x0 + 1), dtype=bool)
    crop[ys - y0, xs - x0] = True
    # The hull of the pixel centres: a digitally convex set scores 1.
    hull_image = convex_hull_image(crop, offset_coordinates=False)  # type: ignore[no-untyped-call]
    hull = int(np.count_nonzero(hull_image))
    return at.size / max(hull, at.size)


def _cut_between(
    comp: npt.NDArray[np.int32],
    prev_comp: npt.NDArray[np.int32],
    *,
    label: int,
    seeds: Int64Array,
    box: tuple[int, int, int, int],
    connectivity: int,
) -> Int64Array:
    """Flat indices that separate component `label` into one part per seed.

    `seeds` are component labels of the previous frame (in order of their
    tracks' ids); `box` is ``(y0, y1, x0, x1)`` of the component. Each of its
    pixels goes to the nearest seed pixel inside it (Euclidean; ties as
    :func:`scipy.ndimage.distance_transform_edt` resolves them); a pixel with
    a neighbour (under `connectivity`) of a part of a smaller index is cut,
    so that the parts are no longer connected.
    """
    y0, y1, x0, x1 = box
    inside = comp[y0:y1, x0:x1] == label
    before = prev_comp[y0:y1, x0:x1]
    part = np.zeros(inside.shape, dtype=np.int32)
    for i, s in enumerate(seeds.tolist(), start=1):
        part[inside & (before == s)] = i
    _, (iy, ix) = ndimage.distance_transform_edt(part == 0, return_indices=True)
    part = np.where(inside, part[iy, ix], 0)
    # A neighbour of a smaller, non-zero part index makes a pixel a cut pixel.
    big = np.iinfo(np.int32).max
    low = np.where(part > 0, part, big)
    padded = np.pad(low, 1, constant_values=big)
    h, w = part.shape
    shifts = [(0, 1), (2, 1), (1, 0), (1, 2)]
    if connectivity == 8:
        shifts += [(0, 0), (0, 2), (2, 0), (2, 2)]
    smallest = np.full(part.shape, big, dtype=np.int32)
    for dy, dx in shifts:
        np.minimum(smallest, padded[dy : dy + h, dx : dx + w], out=smallest)
    yy, xx = np.nonzero((part > 0) & (smallest < part))
    out: Int64Array = ((yy + y0) * comp.shape[1] + (xx + x0)).astype(np.int64)
    return out
