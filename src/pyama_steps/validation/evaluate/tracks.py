"""Per-cell tables: complete tracks, id switches, traced cells, divisions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

_TRACK_COLUMNS: Final = (
    "cell",
    "n_frames",
    "first_frame",
    "last_frame",
    "pred_first",
    "pred_last",
    "pred_main",
    "n_matched",
    "switches",
    "edge",
    "eligible",
    "complete",
)


def _empty_track_table() -> pd.DataFrame:
    data: dict[str, Any] = {
        name: np.zeros(0, dtype=np.int64) for name in _TRACK_COLUMNS
    }
    for name in ("edge", "eligible", "complete"):
        data[name] = np.zeros(0, dtype=bool)
    return pd.DataFrame(data)


def _track_table(
    frames: npt.ArrayLike,
    true_ids: npt.ArrayLike,
    pred_ids: npt.ArrayLike,
    *,
    edge_ids: npt.ArrayLike,
) -> pd.DataFrame:
    """Per true cell: lifetime, matched ids, switches and completeness.

    Parameters
    ----------
    frames : (N,) array_like of int
        Frame of each (cell, frame) observation.
    true_ids : (N,) array_like of int
        Truth id of each observation; each (id, frame) at most once.
    pred_ids : (N,) array_like of int
        Predicted id matched to the observation, 0 where unmatched.
    edge_ids : (K,) array_like of int
        Truth ids that touch the frame edge in at least one frame.

    Returns
    -------
    pandas.DataFrame
        One row per truth id, ascending, with columns ``cell``, ``n_frames``
        (frames present), ``first_frame``, ``last_frame`` (first/last present
        frame), ``pred_first``, ``pred_last`` (id matched there, 0 if none),
        ``pred_main`` (id matched in most frames; ties: smaller; 0 if never
        matched), ``n_matched``, ``switches``, ``edge``, ``eligible`` and
        ``complete`` (algorithms.md §8.1).

    Raises
    ------
    ValueError
        If the arrays are not 1-D of one length, or an (id, frame) pair
        repeats.
    """
    t = np.asarray(frames, dtype=np.int64)
    g = np.asarray(true_ids, dtype=np.int64)
    p = np.asarray(pred_ids, dtype=np.int64)
    if not (t.ndim == g.ndim == p.ndim == 1 and t.shape == g.shape == p.shape):
        raise ValueError(
            "frames, true_ids and pred_ids must be 1-D of one length, got shapes "
            f"{t.shape!r}, {g.shape!r} and {p.shape!r}"
        )
    if g.size == 0:
        return _empty_track_table()
    order = np.lexsort((t, g))
    t, g, p = t[order], g[order], p[order]
    if np.any((g[1:] == g[:-1]) & (t[1:] == t[:-1])):
        raise ValueError("true_ids must list each (id, frame) pair at most once")
    cells, start, counts = np.unique(g, return_index=True, return_counts=True)
    n = cells.size
    end = start + counts - 1
    cell_of = np.repeat(np.arange(n), counts)
    matched = p > 0
    n_matched = np.bincount(cell_of[matched], minlength=n).astype(np.int64)
    p_min = np.minimum.reduceat(p, start)
    p_max = np.maximum.reduceat(p, start)

    # How many true cells each predicted id is matched to, over the FOV.
    pm, gm, cm = p[matched], g[matched], cell_of[matched]
    pair_p = np.unique(np.stack((pm, gm)), axis=1)[0] if pm.size else pm
    partner_ids, partners = np.unique(pair_p, return_counts=True)
    exclusive = np.zeros(n, dtype=bool)
    has_id = p_min > 0
    at = np.searchsorted(partner_ids, p_min[has_id])
    exclusive[has_id] = partners[at] == 1

    # Changes of the matched id between consecutive matched frames of a cell.
    change = (cm[1:] == cm[:-1]) & (pm[1:] != pm[:-1])
    switches = np.bincount(cm[1:][change], minlength=n).astype(np.int64)

    # Main predicted id: most matched frames, ties to the smaller id.
    pred_main = np.zeros(n, dtype=np.int64)
    if pm.size:
        uniq, votes = np.unique(np.stack((cm, pm)), axis=1, return_counts=True)
        by = np.lexsort((uniq[1], -votes, uniq[0]))
        uc, up = uniq[0][by], uniq[1][by]
        first = np.r_[True, uc[1:] != uc[:-1]]
        pred_main[uc[first]] = up[first]

    edge = np.isin(cells, np.asarray(edge_ids, dtype=np.int64))
    eligible = ~edge & (counts >= 2)
    complete = eligible & (n_matched == counts) & (p_min == p_max) & exclusive
    return pd.DataFrame(
        {
            "cell": cells.astype(np.int64),
            "n_frames": counts.astype(np.int64),
            "first_frame": t[start],
            "last_frame": t[end],
            "pred_first": p[start],
            "pred_last": p[end],
            "pred_main": pred_main,
            "n_matched": n_matched,
            "switches": switches,
            "edge": edge,
            "eligible": eligible,
            "complete": complete,
        }
    )


def _children(cells: Iterable[int], parents: Iterable[int]) -> dict[int, list[int]]:
    """Mother id -> her children ids (ascending), for parents > 0."""
    out: dict[int, list[int]] = {}
    for cell, parent in sorted(zip(cells, parents, strict=True)):
        if parent > 0:
            out.setdefault(int(parent), []).append(int(cell))
    return out


@dataclass(frozen=True)
class _DivisionCounts:
    n_true: int
    n_pred: int
    n_found: int
    n_pred_true: int


def _division_counts(
    true_cells: npt.ArrayLike,
    true_parents: npt.ArrayLike,
    pred_cells: npt.ArrayLike,
    pred_parents: npt.ArrayLike,
    tracks: pd.DataFrame,
) -> _DivisionCounts:
    """Count true, predicted, found and correctly predicted divisions.

    Parameters
    ----------
    true_cells, true_parents : (N,) array_like of int
        The truth lineage (``parent`` 0 = none).
    pred_cells, pred_parents : (M,) array_like of int
        The run's lineage, one row per id.
    tracks : pandas.DataFrame
        :func:`_track_table` of the FOV (``pred_first``, ``pred_last``).

    Returns
    -------
    _DivisionCounts
        ``n_true`` truth ids with >= 2 children, ``n_pred`` run ids with >= 2
        children, ``n_found`` true divisions whose predicted mother (matched
        to the mother in her last present frame) is the ``parent`` of every
        predicted daughter (matched to each daughter in her first present
        frame; all matched and distinct), ``n_pred_true`` distinct predicted
        mothers of found divisions.
    """
    t_cells = np.asarray(true_cells, dtype=np.int64).tolist()
    t_par = np.asarray(true_parents, dtype=np.int64).tolist()
    p_cells = np.asarray(pred_cells, dtype=np.int64).tolist()
    p_par = np.asarray(pred_parents, dtype=np.int64).tolist()
    true_div = {m: k for m, k in _children(t_cells, t_par).items() if len(k) >= 2}
    pred_div = {m: k for m, k in _children(p_cells, p_par).items() if len(k) >= 2}
    parent_of = dict(zip(p_cells, p_par, strict=True))
    ids = tracks["cell"].to_numpy().tolist()
    last = dict(zip(ids, tracks["pred_last"].to_numpy().tolist(), strict=True))
    first = dict(zip(ids, tracks["pred_first"].to_numpy().tolist(), strict=True))
    found = 0
    right: set[int] = set()
    for mother, daughters in sorted(true_div.items()):
        pm = int(last.get(mother, 0))
        pds = [int(first.get(d, 0)) for d in daughters]
        if (
            pm > 0
            and all(pd > 0 for pd in pds)
            and len(set(pds)) == len(pds)
            and all(parent_of.get(pd, 0) == pm for pd in pds)
        ):
            found += 1
            right.add(pm)
    return _DivisionCounts(
        n_true=len(true_div),
        n_pred=len(pred_div),
        n_found=found,
        n_pred_true=len(right & set(pred_div)),
    )
