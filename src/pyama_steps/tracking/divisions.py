"""Divisions: the split step of pass 1 and the check that daughters live (§4.5).

:func:`_divide` is step (2) of a frame: a linked track whose last mask also
holds an unlinked component divides. :func:`_confirm_divisions` is step (7),
run when pass 1 finishes: a division that a daughter did not survive was a
segmentation flicker and is undone.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from pyama_steps.tracking.state import _DIVIDED, _LOST, _MERGED, _TrackTable

__all__: list[str] = []

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]


def _divide(
    tracks: _TrackTable,
    t: int,
    trk: Int64Array,
    cols: Int64Array,
    inter: Int64Array,
    iou: Float64Array,
    mother_area: Int64Array,
    link_trk: Int64Array,
    link_comp: Int64Array,
    lut: Int64Array,
    area: Int64Array,
    *,
    share: float,
    min_iou: float,
    claim: bool,
) -> None:
    """(2) Split linked tracks whose last mask holds an unlinked component too.

    Every array before `link_trk` has one entry per overlapping pair (track
    of the earlier frame, component of frame `t`); `mother_area` is the
    track's area in the earlier frame; `share` is the tracker's
    ``division_min_overlap``. The divisions are written into `tracks` and
    `lut`. With `claim`, a component linked to another track can be a
    daughter too (algorithms.md §4.5).
    """
    # Overlap pairs are sorted by (component of the earlier frame,
    # component of t), not by track id: look pairs up by an explicit key.
    key = trk * lut.size + cols
    key_order = np.argsort(key, kind="stable")
    sorted_key = key[key_order]

    def pair_of(a: Int64Array, b: Int64Array) -> npt.NDArray[np.intp]:
        return key_order[np.searchsorted(sorted_key, a * lut.size + b)]

    # A daughter must hold `share` of the smaller of her own area and half
    # the mother's: daughters of a mother that rounded up before the split
    # are each larger than half of her last mask (algorithms.md §4.5).
    half = 0.5 * mother_area
    is_linked = np.zeros(tracks.count + 1, dtype=bool)
    is_linked[link_trk] = True
    owner = lut[cols]
    free = owner == 0
    if claim:
        # A small track next to the mother (a fragment, a bright pocket
        # between cells) can win a daughter in the assignment with a low
        # IoU; she is the mother's when she lies more inside the mother.
        held = owner > 0
        owner_inter = np.zeros(owner.size, dtype=np.int64)
        owner_inter[held] = inter[pair_of(owner[held], cols[held])]
        free |= held & (owner != trk) & (inter > owner_inter)
    cand = (
        is_linked[trk]
        & free
        & (iou >= min_iou)
        & (inter >= share * np.minimum(area[cols], half))
    )
    if claim and np.any(cand):
        # Never take a component from a track that may divide itself.
        may_divide = np.zeros(tracks.count + 1, dtype=bool)
        may_divide[trk[cand]] = True
        cand &= (owner == 0) | ~may_divide[owner]
    if not np.any(cand):
        return
    m, k, i_mk = trk[cand], cols[cand], inter[cand]
    # Each unlinked component k goes to the candidate mother holding the
    # most of it; ties go to the smaller id.
    order = np.lexsort((m, -i_mk, k))
    m, k = m[order], k[order]
    first = np.r_[True, k[1:] != k[:-1]]
    m, k = m[first], k[first]
    mothers = np.unique(m)
    # Each mother's own link j must lie inside the mother as well.
    link_of = np.zeros(tracks.count + 1, dtype=np.int64)
    link_of[link_trk] = link_comp
    j = link_of[mothers]
    pair = pair_of(mothers, j)
    divides = inter[pair] >= share * np.minimum(area[j], half[pair])
    mothers, j = mothers[divides], j[divides]
    if mothers.size == 0:
        return
    daughter_mother = np.concatenate([mothers, m[np.isin(m, mothers)]])
    daughter_comp = np.concatenate([j, k[np.isin(m, mothers)]])
    order = np.lexsort((daughter_comp, daughter_mother))
    daughter_mother, daughter_comp = daughter_mother[order], daughter_comp[order]
    tracks.fate[mothers] = _DIVIDED
    lut[daughter_comp] = tracks.new(daughter_mother, t)


@dataclass(frozen=True)
class _Lineage:
    """Per-track arrays indexed by track id; row 0 unused."""

    parent: Int64Array
    first: Int64Array
    last: Int64Array
    present: Int64Array
    merged_in: Int64Array
    fate: npt.NDArray[np.int8]


def _read_only(array: Int64Array) -> Int64Array:
    array.setflags(write=False)
    return array


def _confirm_divisions(
    table: _Lineage, *, min_frames: int
) -> tuple[_Lineage, Int64Array]:
    """Undo divisions that a daughter does not survive (algorithms.md §4.5, (7)).

    A daughter is *short* when her track ends (fate lost or merged) less than
    `min_frames` frames after it began (``last - first + 1 < min_frames``):
    segmentation flicker that split a cell for a frame or two. Short daughters
    lose their parent. A mother left with fewer than two daughters did not
    divide: her longest-lived remaining daughter (else the short one seen
    last; then the one present in most frames; then the smaller id) becomes
    the rest of the mother's track, and the other daughters lose their parent.

    Returns the new table, ids renumbered ``1..n`` in the old order, and
    ``new_id`` (old id -> new id, ``new_id[0] == 0``) for the look-up tables.
    """
    parent = table.parent.copy()
    size = parent.size
    ids = np.arange(size, dtype=np.int64)
    span = table.last - table.first + 1
    ended = (table.fate == _LOST) | (table.fate == _MERGED)
    short = ended & (span < min_frames)
    short[0] = False
    heir_of = ids.copy()  # heir id -> the mother whose track it continues
    kids = np.flatnonzero(parent > 0)
    kids = kids[np.lexsort((kids, parent[kids]))]
    bounds = np.flatnonzero(np.r_[True, parent[kids][1:] != parent[kids][:-1], True])
    for lo, hi in itertools.pairwise(bounds if kids.size else ()):
        daughters = kids[lo:hi]
        mother = parent[daughters[0]]
        gone = daughters[short[daughters]]
        if gone.size == 0:
            continue
        kept = daughters[~short[daughters]]
        if kept.size >= 2:
            parent[gone] = 0
            continue
        if kept.size:
            heir = kept[0]
        else:
            pick = np.lexsort((gone, -table.present[gone], -table.last[gone]))
            heir = gone[pick[0]]
        parent[daughters] = 0
        heir_of[heir] = mother
    if np.all(heir_of == ids):
        return replace(table, parent=parent), ids
    root = heir_of.copy()
    # An heir's mother can be an heir herself; ids only grow along a chain.
    for x in range(size):
        root[x] = root[root[x]]
    last, present = table.last.copy(), table.present.copy()
    merged_in, fate = table.merged_in.copy(), table.fate.copy()
    # Ascending ids follow each chain in time: the last heir sets the end.
    for x in np.flatnonzero(root != ids).tolist():
        r = root[x]
        last[r], fate[r] = last[x], fate[x]
        present[r] += present[x]
        merged_in[r] += merged_in[x]
    parent = root[parent]
    keep = root == ids
    new_id = np.cumsum(keep).astype(np.int64) - 1
    new_id = new_id[root]
    out = _Lineage(
        parent=new_id[parent[keep]],
        first=table.first[keep],
        last=last[keep],
        present=present[keep],
        merged_in=merged_in[keep],
        fate=fate[keep],
    )
    return out, new_id
