"""Hungarian assignment of the links between two frames (algorithms.md §4.4)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

from pyama_steps._typing import IntArray
from pyama_steps._validate import check_fraction

__all__ = ["assign"]

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]


def assign(
    rows: IntArray,
    cols: IntArray,
    iou: npt.NDArray[np.floating[Any]],
    *,
    threshold: float,
) -> tuple[Int64Array, Int64Array]:
    """One-to-one links that maximise the total IoU (algorithms.md §4.4).

    Parameters
    ----------
    rows : (K,) ndarray of int
        Row id of each candidate pair (a track id or a component label).
    cols : (K,) ndarray of int
        Column id of each pair (a component label).
    iou : (K,) ndarray of float
        IoU of each pair, in [0, 1]. Each (row, col) pair appears once.
    threshold : float
        Smallest IoU a link may have, in [0, 1].

    Returns
    -------
    rows : (L,) ndarray of int64
        Linked row ids, ascending.
    cols : (L,) ndarray of int64
        The column linked to each row.

    Raises
    ------
    TypeError
        If `rows`/`cols` are not integer arrays or `threshold` is not a number.
    ValueError
        If the arrays are not 1-D of one length, an IoU lies outside [0, 1],
        a pair appears twice, or `threshold` lies outside [0, 1].

    Notes
    -----
    Pairs with ``IoU >= threshold`` (and ``IoU > 0``; a zero-overlap pair
    adds nothing to the sum) form a bipartite graph, split into connected
    blocks with ``scipy.sparse.csgraph.connected_components``. Blocks are
    solved in order of their smallest row id; within a block rows and
    columns are sorted ascending, absent pairs cost 1.0 and present ones
    ``1 - IoU``, and ``scipy.optimize.linear_sum_assignment`` solves the
    dense block. Assignments on absent pairs are dropped. A block of a
    single pair is that pair's link.
    """
    threshold = check_fraction("threshold", threshold)
    weights = _checked_weights(rows, cols, iou)
    keep = (weights >= threshold) & (weights > 0.0)
    r = rows[keep].astype(np.int64)
    c = cols[keep].astype(np.int64)
    w = weights[keep]
    empty = np.zeros(0, dtype=np.int64)
    if r.size == 0:
        return empty, empty.copy()

    row_ids, ri = np.unique(r, return_inverse=True)
    col_ids, ci = np.unique(c, return_inverse=True)
    n_r, n_c = row_ids.size, col_ids.size
    pair_key = ri.astype(np.int64) * n_c + ci
    if np.unique(pair_key).size != pair_key.size:
        raise ValueError("rows and cols must not repeat a (row, col) pair")

    pair_rank = _block_rank(ri, ci, n_r, n_c)
    order = np.lexsort((ci, ri, pair_rank))
    pair_rank, ri, ci, w = pair_rank[order], ri[order], ci[order], w[order]
    link_ri, link_ci = _solve_blocks(pair_rank, ri, ci, w)
    by_row = np.argsort(link_ri, kind="stable")
    return (
        row_ids[link_ri[by_row]].astype(np.int64),
        col_ids[link_ci[by_row]].astype(np.int64),
    )


def _checked_weights(
    rows: IntArray, cols: IntArray, iou: npt.NDArray[np.floating[Any]]
) -> Float64Array:
    """Validate the candidate pairs of :func:`assign`; return the IoU as float64."""
    arrays = {"rows": rows, "cols": cols, "iou": iou}
    for name, arr in arrays.items():
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{name} must be a numpy array, got {type(arr).__name__!r}")
        if arr.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {arr.shape!r}")
    if not (rows.shape == cols.shape == iou.shape):
        raise ValueError(
            "rows, cols and iou must have the same length, got "
            f"{rows.shape[0]!r}, {cols.shape[0]!r} and {iou.shape[0]!r}"
        )
    for name in ("rows", "cols"):
        if not np.issubdtype(arrays[name].dtype, np.integer):
            raise TypeError(
                f"{name} must have an integer dtype, got {arrays[name].dtype!r}"
            )
    if not np.issubdtype(iou.dtype, np.floating):
        raise TypeError(f"iou must have a float dtype, got {iou.dtype!r}")
    weights = iou.astype(np.float64)
    if weights.size and not (
        np.all(np.isfinite(weights)) and weights.min() >= 0.0 and weights.max() <= 1.0
    ):
        raise ValueError(
            f"iou must lie in [0, 1], got values in [{weights.min()!r}, "
            f"{weights.max()!r}]"
        )
    return weights


def _block_rank(
    ri: npt.NDArray[np.intp], ci: npt.NDArray[np.intp], n_r: int, n_c: int
) -> Int64Array:
    """Rank of each pair's connected block, in order of its smallest row."""
    graph = coo_array(
        (np.ones(ri.size, dtype=np.int8), (ri, n_r + ci)),
        shape=(n_r + n_c, n_r + n_c),
    ).tocsr()
    n_blocks, node_block = connected_components(graph, directed=False)
    pair_block = node_block[ri]
    # Every block holds at least one row (each pair joins a row and a col),
    # so ordering by the smallest row index orders by the smallest row id.
    first_row = np.full(n_blocks, n_r, dtype=np.int64)
    np.minimum.at(first_row, pair_block, ri)
    rank = np.empty(n_blocks, dtype=np.int64)
    rank[np.argsort(first_row, kind="stable")] = np.arange(n_blocks)
    pair_rank: Int64Array = rank[pair_block]
    return pair_rank


def _solve_blocks(
    pair_rank: Int64Array,
    ri: npt.NDArray[np.intp],
    ci: npt.NDArray[np.intp],
    w: Float64Array,
) -> tuple[Int64Array, Int64Array]:
    """Links (row index, column index) of the blocks, pairs sorted by block."""
    starts = np.flatnonzero(np.r_[True, pair_rank[1:] != pair_rank[:-1]])
    sizes = np.diff(np.r_[starts, pair_rank.size])

    out_r: list[Int64Array] = []
    out_c: list[Int64Array] = []
    single = starts[sizes == 1]
    out_r.append(ri[single].astype(np.int64))
    out_c.append(ci[single].astype(np.int64))
    for start, size in zip(starts[sizes > 1], sizes[sizes > 1], strict=True):
        block = slice(int(start), int(start + size))
        b_rows, b_ri = np.unique(ri[block], return_inverse=True)
        b_cols, b_ci = np.unique(ci[block], return_inverse=True)
        cost = np.ones((b_rows.size, b_cols.size), dtype=np.float64)
        present = np.zeros(cost.shape, dtype=bool)
        cost[b_ri, b_ci] = 1.0 - w[block]
        present[b_ri, b_ci] = True
        sel_r, sel_c = linear_sum_assignment(cost)
        ok = present[sel_r, sel_c]
        out_r.append(b_rows[sel_r[ok]].astype(np.int64))
        out_c.append(b_cols[sel_c[ok]].astype(np.int64))
    return np.concatenate(out_r), np.concatenate(out_c)
