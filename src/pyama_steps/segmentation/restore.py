"""The outline and junction restores after the halo trim (algorithms.md §2.4).

Both grow the final components back by a pixel or a few, into pixels that the
halo trim's level allows, without ever letting two components touch.
Package-internal: called by :mod:`pyama_steps.segmentation.log_std`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from pyama_steps._typing import BoolArray, RealArray
from pyama_steps.morphology import run_reduce as _run_reduce
from pyama_steps.segmentation.masks import _label_compact

__all__: list[str] = []

# City-block offsets 1 and 2 px away: a pixel joins a component only when no
# other component lies within 2 px, so two pixels added to different components
# are never 4-adjacent.
_OUTLINE_OFFSETS: Final = tuple(
    (dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if 0 < abs(dy) + abs(dx) <= 2
)


def _restore_outline(
    mask: BoolArray, allowed: BoolArray | Callable[[npt.NDArray[np.intp]], BoolArray]
) -> BoolArray:
    """Grow each 4-component of `mask` by one pixel into `allowed` (§2.4).

    A pixel is added when it is in `allowed`, not in `mask`, 4-adjacent to
    `mask`, and every `mask` pixel within city-block distance 2 belongs to one
    and the same 4-component. Pixels outside the frame are background. The
    result keeps the components of `mask` 4-separated and adds no component.
    `allowed` is a bool image, or a function that takes the flat indices of
    the candidate pixels and returns whether each is allowed (so that the test
    is computed for the few pixels along the outlines only).
    """
    return _restore_outline_labelled(mask, allowed)[0]


def _restore_outline_labelled(
    mask: BoolArray, allowed: BoolArray | Callable[[npt.NDArray[np.intp]], BoolArray]
) -> tuple[BoolArray, npt.NDArray[np.integer[Any]] | None, int]:
    """`_restore_outline`, also returning the 4-component labels of the result.

    The labels are those of `_label_compact` on `mask`, with each added pixel
    given its component's label (the added pixels join exactly one component
    and components stay 4-separated, so this labels the result's
    4-components). ``None`` (and count 0) when nothing is added.
    """
    cols = mask.shape[1]
    near = np.zeros_like(mask)
    near[1:] |= mask[:-1]
    near[:-1] |= mask[1:]
    near[:, 1:] |= mask[:, :-1]
    near[:, :-1] |= mask[:, 1:]
    near &= ~mask
    at = np.flatnonzero(near)
    if at.size:
        at = at[allowed(at) if callable(allowed) else allowed.ravel()[at]]
    if at.size == 0:
        return mask, None, 0
    labels, count = _label_compact(mask)
    rows = mask.shape[0]
    y = at // cols
    x = at - y * cols
    big = count + 1
    low = np.full(at.size, big, dtype=np.int64)
    high = np.zeros(at.size, dtype=np.int64)
    for dy, dx in _OUTLINE_OFFSETS:
        # neighbours outside the frame are background (label 0)
        yy, xx = y + dy, x + dx
        inside = (yy >= 0) & (yy < rows) & (xx >= 0) & (xx < cols)
        v = np.zeros(at.size, dtype=np.int64)
        v[inside] = labels[yy[inside], xx[inside]]
        np.maximum(high, v, out=high)
        np.minimum(low, np.where(v > 0, v, big), out=low)
    out = mask.copy()
    chosen = low == high
    out.ravel()[at[chosen]] = True
    labels.ravel()[at[chosen]] = low[chosen]
    return out, labels, count


def _restore_junctions(
    mask: BoolArray,
    allowed: BoolArray | Callable[[npt.NDArray[np.intp]], BoolArray],
    image: RealArray,
    reach: int,
    labelled: tuple[npt.NDArray[np.integer[Any]], int] | None = None,
) -> BoolArray:
    """Fill the gaps between components up to a 1-px separating line (§2.4).

    Gap pixels are the pixels outside `mask` whose ``(2·reach + 1)``² square
    (outside the frame: background) holds pixels of at least two 4-components
    of `mask`, and that `allowed` accepts: a bool image or, as in
    `_restore_outline`, a function of the flat indices of the candidates. In
    `reach` steps all components grow together: a gap pixel not yet taken
    whose labelled 4-neighbours all carry one label claims it; of two
    4-adjacent claims of different labels the one at the brighter pixel of
    `image` is dropped (equal values: the larger label's). Claims are decided
    on the labels before each step, so different labels never become
    4-adjacent and no component merges or appears. `labelled`, if given, is
    the 4-component labelling of `mask` and its count.
    """
    labels, count = _label_compact(mask) if labelled is None else labelled
    if count < 2:
        return mask
    cols = mask.shape[1]
    width = 2 * reach + 1
    padded = np.pad(labels, reach)
    if padded.dtype != np.uint16:
        padded = padded.astype(np.uint32)
    high = _run_reduce(_run_reduce(padded, width, 0, np.maximum), width, 1, np.maximum)
    # Labels minus 1, wrapping background to the largest value: their minimum
    # is the lowest label minus 1, or that value when the square holds none.
    padded -= padded.dtype.type(1)
    low = _run_reduce(_run_reduce(padded, width, 0, np.minimum), width, 1, np.minimum)
    del padded
    # Two labels in the square: lowest + 1 != highest (no label: 0 == 0).
    low += low.dtype.type(1)
    gap = low != high
    gap &= ~mask
    del high, low
    if not callable(allowed):
        gap &= allowed
    at = np.flatnonzero(gap)
    del gap
    if at.size and callable(allowed):
        at = at[allowed(at)]
    if at.size == 0:
        return mask
    stride = cols + 2
    # The gap pixels in the frame padded by 1 px, and their values; `pos` and
    # `value` keep the pixels not yet taken.
    pos = at + 2 * (at // cols) + stride + 1
    grown = np.pad(labels, 1).ravel()
    value = image.ravel()[at]
    steps = (-stride, stride, -1, 1)
    claim = np.zeros(grown.size, dtype=np.int32)
    taken = []
    for _ in range(reach):
        near = [grown[pos + step] for step in steps]
        most = np.maximum.reduce(near)
        single = most > 0
        for v in near:
            single &= (v == most) | (v == 0)
        index = np.flatnonzero(single)
        if index.size == 0:
            break
        own = most[index]
        where = pos[index]
        mine = value[index]
        claim[where] = np.arange(1, index.size + 1, dtype=np.int32)
        keep = np.ones(index.size, dtype=np.bool_)
        for step in steps:
            other = claim[where + step]
            clash = np.flatnonzero(other)
            if clash.size == 0:
                continue
            other = other[clash] - 1
            theirs = own[other]
            their_value = mine[other]
            lose = (theirs != own[clash]) & (
                (mine[clash] > their_value)
                | ((mine[clash] == their_value) & (own[clash] > theirs))
            )
            keep[clash[lose]] = False
        claim[where] = 0
        index = index[keep]
        grown[pos[index]] = own[keep]
        taken.append(pos[index])
        left = np.ones(pos.size, dtype=np.bool_)
        left[index] = False
        pos = pos[left]
        value = value[left]
    if not taken:
        return mask
    added = np.concatenate(taken)
    added -= stride + 1
    added -= 2 * (added // stride)
    out = mask.copy()
    out.ravel()[added] = True
    return out
