"""Tracking pass 1: :class:`LineageTracker` and :func:`track_masks` (§4.2, §4.5)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from pyama_steps._typing import BoolArray
from pyama_steps._validate import check_bool, check_choice, check_fraction, check_int
from pyama_steps.tracking.assignment import assign
from pyama_steps.tracking.divisions import (
    _confirm_divisions,
    _divide,
    _Lineage,
    _read_only,
)
from pyama_steps.tracking.lineage import Track, TrackingResult
from pyama_steps.tracking.overlap import (
    _bbox_iou,
    _bboxes,
    _check_connectivity,
    _check_mask,
    _pairs,
    label_components,
)
from pyama_steps.tracking.split import _NO_CUT, _merged_cut
from pyama_steps.tracking.state import (
    _END,
    _FATE_NAMES,
    _LOST,
    _MERGED,
    _NO_BOXES,
    _NO_COMP,
    _NO_INDEX,
    _NO_LABELS,
    _OPEN,
    _Frame,
    _TrackTable,
)

__all__ = ["MODES", "LineageTracker", "track_masks"]

MODES: Final = ("lineage", "upstream")
_UINT16_MAX: Final = 65535

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]


class LineageTracker:
    """Streaming pass 1 of the tracker: push one mask per frame, then finish.

    Parameters
    ----------
    mode : {'lineage', 'upstream'}, optional
        ``lineage``: mask IoU with births, gaps, divisions and merges
        (algorithms.md §4.5). ``upstream``: PyAMA's tracker (§4.2).
    connectivity : {4, 8}, optional
        Connectivity of the per-frame components.
    min_iou : float, optional
        Smallest IoU for a link between consecutive frames (mask IoU in
        ``lineage`` mode, bounding-box IoU in ``upstream`` mode).
    max_gap : int, optional
        Consecutive missing frames a track may bridge (``lineage`` only).
    gap_min_iou : float, optional
        Smallest mask IoU for a gap-closing link (``lineage`` only).
    divisions : bool, optional
        Detect divisions (``lineage`` only).
    division_min_overlap : float, optional
        Share of each daughter's area, or of half the mother's last area if
        that is smaller, that must lie inside the mother's last mask
        (``lineage`` only).
    division_min_frames : int, optional
        A daughter whose track ends (lost or merged) after fewer frames than
        this was a part of a cell split by the segmentation, not a daughter:
        she loses her parent, and a mother left with one daughter continues
        in her (applied by :meth:`finish`; ``lineage`` only). 0 or 1 keeps
        every division.
    merge_min_overlap : float, optional
        Share of a lost track's last mask that must lie inside another
        track's current component for it to count as merged (``lineage``
        only).
    split_merged_min_frames : int, optional
        A component that holds `merge_min_overlap` of the last masks of two
        or more tracks, each present in at least this many frames, is split
        between them before linking (cells do not fuse; the segmentation
        joined touching cells). 0 disables it (``lineage`` only).

    Raises
    ------
    TypeError
        If a parameter has the wrong type.
    ValueError
        If a parameter is out of range.

    Notes
    -----
    Holds at most ``max_gap + 2`` label frames (``lineage``) or one frame's
    bounding boxes (``upstream``) plus per-track tables, independent of the
    number of frames (algorithms.md §7.4).

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((4, 4), dtype=bool)
    >>> mask[1:3, 1:3] = True
    >>> tracker = LineageTracker()
    >>> [tracker.push(mask).tolist() for _ in range(2)]
    [[0, 1], [0, 1]]
    >>> tracker.finish().tracks[0].fate
    'end'
    """

    def __init__(
        self,
        *,
        mode: str = "lineage",
        connectivity: int = 4,
        min_iou: float = 0.1,
        max_gap: int = 2,
        gap_min_iou: float = 0.1,
        divisions: bool = True,
        division_min_overlap: float = 0.4,
        division_min_frames: int = 4,
        merge_min_overlap: float = 0.5,
        split_merged_min_frames: int = 2,
    ) -> None:
        self._mode = check_choice("mode", mode, MODES)
        self._connectivity = _check_connectivity(connectivity)
        self._min_iou = check_fraction("min_iou", min_iou)
        self._max_gap = check_int("max_gap", max_gap, minimum=0)
        self._gap_min_iou = check_fraction("gap_min_iou", gap_min_iou)
        self._divisions = check_bool("divisions", divisions)
        self._division_min_overlap = check_fraction(
            "division_min_overlap", division_min_overlap
        )
        self._division_min_frames = check_int(
            "division_min_frames", division_min_frames, minimum=0
        )
        self._merge_min_overlap = check_fraction("merge_min_overlap", merge_min_overlap)
        self._split_min_frames = check_int(
            "split_merged_min_frames", split_merged_min_frames, minimum=0
        )
        # With the current frame held apart, max_gap + 1 past frames make the
        # max_gap + 2 label frames of algorithms.md §4.5.
        keep = self._max_gap + 1 if self._mode == "lineage" else 1
        self._frames: deque[_Frame] = deque(maxlen=keep)
        self._luts: list[Int64Array] = []
        self._cuts: list[Int64Array] = []
        self._prev_pairs: (
            tuple[Int64Array, Int64Array, Int64Array, Float64Array] | None
        ) = None
        self._tracks = _TrackTable()
        self._frame_shape: tuple[int, int] | None = None

    @property
    def n_frames(self) -> int:
        """Number of frames pushed so far."""
        return len(self._luts)

    @property
    def last_areas(self) -> Int64Array:
        """Areas (px) of the components of the frame pushed last.

        ``(n,)`` int64 in label order, empty before the first push; read-only.
        Pass 1 counts them anyway, so the segmentation checks (algorithms.md
        §2.8) get each frame's objects without another pass over the pixels.
        """
        if not self._frames:
            return np.zeros(0, dtype=np.int64)
        areas = self._frames[-1].area[1:]
        areas.setflags(write=False)
        return areas

    def push(self, mask: BoolArray) -> Int64Array:
        """Track the next frame.

        Parameters
        ----------
        mask : (Y, X) ndarray of bool
            Segmentation of the next frame; every frame must have the same
            shape.

        Returns
        -------
        (n_t + 1,) ndarray of int64
            Read-only look-up table: component label -> track id, with
            ``lut[0] == 0``. These are the frame's decisions; :meth:`finish`
            may still undo a division (`division_min_frames`), which
            renumbers ids, so use its look-up tables for the output.

        Raises
        ------
        TypeError
            If `mask` is not a bool array.
        ValueError
            If `mask` is not 2-D or its shape differs from the first frame's.
        """
        _check_mask(mask)
        shape = (int(mask.shape[0]), int(mask.shape[1]))
        if self._frame_shape is None:
            self._frame_shape = shape
        elif shape != self._frame_shape:
            raise ValueError(
                f"mask of frame {self.n_frames} has shape {mask.shape!r}, but "
                f"frame 0 had {self._frame_shape!r}; every frame must match"
            )
        comp, n = label_components(mask, connectivity=self._connectivity)
        t = self.n_frames
        cut = _NO_CUT
        self._prev_pairs = None
        if self._mode == "lineage" and self._split_min_frames and self._frames:
            cut, self._prev_pairs = _merged_cut(
                self._frames[-1],
                comp,
                n,
                present=self._tracks.present,
                merge_min_overlap=self._merge_min_overlap,
                min_frames=self._split_min_frames,
                connectivity=self._connectivity,
            )
            if cut.size:
                mask = mask.copy()
                mask.ravel()[cut] = False
                comp, n = label_components(mask, connectivity=self._connectivity)
        self._cuts.append(cut)
        fg = np.flatnonzero(mask)
        if self._mode == "lineage":
            frame = self._push_lineage(t, comp, n, fg)
        else:
            frame = self._push_upstream(t, comp, n, fg)
        frame.lut.setflags(write=False)
        self._frames.append(frame)
        self._luts.append(frame.lut)
        return frame.lut

    # -- lineage mode (§4.5) -------------------------------------------------

    def _push_lineage(
        self, t: int, comp: npt.NDArray[np.int32], n: int, fg: npt.NDArray[np.intp]
    ) -> _Frame:
        tracks = self._tracks
        # fg: foreground pixel indices in raster order. Every per-frame count
        # below only needs these pixels and their labels.
        fg_labels = comp.ravel()[fg]
        area = np.bincount(fg_labels, minlength=n + 1).astype(np.int64)
        lut = np.zeros(n + 1, dtype=np.int64)
        frame = _Frame(
            t=t,
            comp=comp,
            n=n,
            area=area,
            lut=lut,
            boxes=_NO_BOXES,
            fg=fg,
            fg_labels=fg_labels,
        )
        prev = self._frames[-1] if self._frames else None
        if prev is not None and prev.n and n:
            self._link_divide_merge(prev, frame)
        self._bridge(frame)
        # (5) birth: components still unlinked, in label order.
        unlinked = np.flatnonzero(lut[1:] == 0) + 1
        if unlinked.size:
            lut[unlinked] = tracks.new(np.zeros(unlinked.size, dtype=np.int64), t)
        # (6) retire: tracks that have had their last bridging chance.
        ids = tracks.ids()
        gone = ids[tracks.is_open(ids) & (tracks.last[ids] <= t - self._max_gap - 1)]
        tracks.fate[gone] = np.where(tracks.marked[gone], _MERGED, _LOST)
        # Past frames keep only what later overlaps need.
        return _Frame(
            t=t,
            comp=comp,
            n=n,
            area=area,
            lut=lut,
            boxes=_NO_BOXES,
            fg=_NO_INDEX,
            fg_labels=_NO_LABELS,
        )

    def _overlap(
        self, old: _Frame, cur: _Frame
    ) -> tuple[Int64Array, Int64Array, Int64Array, Float64Array]:
        cu = old.comp.ravel()[cur.fg]
        return _pairs(cu, cur.fg_labels, old.area, cur.area, cur.n)

    def _link_divide_merge(self, prev: _Frame, cur: _Frame) -> None:
        tracks = self._tracks
        t, lut, area = cur.t, cur.lut, cur.area
        if self._prev_pairs is not None:
            p_rows, cols, inter, iou = self._prev_pairs
        else:
            p_rows, cols, inter, iou = self._overlap(prev, cur)
        trk = prev.lut[p_rows]
        # Rows are track ids (as in upstream mode); every component of t-1
        # belongs to a track, so these are exactly the tracks with last == t-1.
        link_trk, link_comp = assign(trk, cols, iou, threshold=self._min_iou)
        lut[link_comp] = link_trk

        if self._divisions and link_trk.size:
            _divide(
                tracks,
                t,
                trk,
                cols,
                inter,
                iou,
                prev.area[p_rows],
                link_trk,
                link_comp,
                lut,
                area,
                share=self._division_min_overlap,
                min_iou=self._min_iou,
                claim=True,
            )

        # Links that survived the division step.
        linked = lut[link_comp] == link_trk
        tracks.see(link_trk[linked], t)

        # (3) merge: previous tracks left unlinked (and not ended by dividing).
        prev_trk = prev.lut[1:]
        lost = prev_trk[tracks.is_open(prev_trk) & (tracks.last[prev_trk] == t - 1)]
        if lost.size == 0:
            return
        is_lost = np.zeros(tracks.count + 1, dtype=bool)
        is_lost[lost] = True
        owner = lut[cols]
        cand = (
            is_lost[trk]
            & (owner > 0)
            & (inter >= self._merge_min_overlap * prev.area[p_rows])
        )
        c_trk, c_comp, c_inter = trk[cand], cols[cand], inter[cand]
        if c_trk.size == 0:
            return
        # Per lost track: the component holding most of it, ties smaller label.
        order = np.lexsort((c_comp, -c_inter, c_trk))
        c_trk, c_comp = c_trk[order], c_comp[order]
        first = np.r_[True, c_trk[1:] != c_trk[:-1]]
        merged, into = c_trk[first], lut[c_comp[first]]
        tracks.marked[merged] = True
        np.add.at(tracks.merged_in, into, 1)

    def _bridge(self, cur: _Frame) -> None:
        """(4) Link dormant tracks to unlinked components, shortest gap first."""
        tracks = self._tracks
        t, lut = cur.t, cur.lut
        past = {f.t: f for f in self._frames}
        for g in range(2, self._max_gap + 2):
            old = past.get(t - g)
            if old is None or old.n == 0:
                continue
            if cur.n == 0 or not np.any(lut[1:] == 0):
                return
            old_trk = old.lut[1:]
            dormant = tracks.is_open(old_trk) & (tracks.last[old_trk] == old.t)
            if not np.any(dormant):
                continue
            rows, cols, inter, iou = self._overlap(old, cur)
            trk = old.lut[rows]
            sel = tracks.is_open(trk) & (tracks.last[trk] == old.t) & (lut[cols] == 0)
            trk, cols, inter, iou = trk[sel], cols[sel], inter[sel], iou[sel]
            b_trk, b_comp = assign(trk, cols, iou, threshold=self._gap_min_iou)
            lut[b_comp] = b_trk
            if self._divisions and b_trk.size:
                # A mother not segmented in the frames before her split (a
                # dropped frame, or rounded up beyond recognition).
                _divide(
                    tracks,
                    t,
                    trk,
                    cols,
                    inter,
                    iou,
                    old.area[rows[sel]],
                    b_trk,
                    b_comp,
                    lut,
                    cur.area,
                    share=self._division_min_overlap,
                    min_iou=self._gap_min_iou,
                    claim=False,
                )
            bridged = b_trk[lut[b_comp] == b_trk]
            tracks.see(bridged, t)
            tracks.marked[bridged] = False

    # -- upstream mode (§4.2) ------------------------------------------------

    def _push_upstream(
        self, t: int, comp: npt.NDArray[np.int32], n: int, fg: npt.NDArray[np.intp]
    ) -> _Frame:
        tracks = self._tracks
        lut = np.zeros(n + 1, dtype=np.int64)
        boxes = _bboxes(comp, n)
        # Only for last_areas: this mode's linking uses the boxes alone.
        area = np.bincount(comp.ravel()[fg], minlength=n + 1).astype(np.int64)
        # The past frame only needs its boxes and lut, not its label image.
        frame = _Frame(
            t=t,
            comp=_NO_COMP,
            n=n,
            area=area,
            lut=lut,
            boxes=boxes,
            fg=_NO_INDEX,
            fg_labels=_NO_LABELS,
        )
        if t == 0:
            # Only frame 0 starts tracks.
            if n:
                lut[1:] = tracks.new(np.zeros(n, dtype=np.int64), 0)
            return frame
        prev = self._frames[-1]
        alive = np.flatnonzero(prev.lut)
        if alive.size == 0:
            return frame
        order = np.argsort(prev.lut[alive], kind="stable")
        row_comp = alive[order]
        row_trk = prev.lut[row_comp]
        linked_trk = np.zeros(0, dtype=np.int64)
        if n:
            iou = _bbox_iou(prev.boxes[row_comp - 1], boxes)
            valid = (iou >= self._min_iou) & (iou > 0.0)
            cost = np.where(valid, 1.0 - iou, 1.0)
            sel_r, sel_c = linear_sum_assignment(cost)
            ok = valid[sel_r, sel_c]
            linked_trk = row_trk[sel_r[ok]]
            lut[sel_c[ok] + 1] = linked_trk
            tracks.see(linked_trk, t)
        # A track left unlinked ends for good.
        ended = row_trk[~np.isin(row_trk, linked_trk)]
        tracks.fate[ended] = _LOST
        return frame

    # -- result ----------------------------------------------------------------

    def finish(self) -> TrackingResult:
        """Return the decisions for the frames pushed so far.

        Returns
        -------
        TrackingResult
            Look-up tables, lineage records, ``max_id`` and label dtype.
            Tracks still open get fate ``end`` if present in the last frame,
            otherwise ``merged`` if marked as merged, else ``lost``.

        Notes
        -----
        With ``division_min_frames > 1`` divisions that a daughter did not
        survive are undone here (algorithms.md §4.5, step 7), and ids are
        renumbered ``1..max_id`` in order of creation. The tracker's state is
        not changed; pushing more frames and calling `finish` again is
        allowed.
        """
        tracks = self._tracks
        n_t = self.n_frames
        ids = tracks.ids()
        fate = tracks.fate[: ids.size + 1].copy()
        still = fate == _OPEN
        still[0] = False
        fate[still] = np.where(
            tracks.last[: ids.size + 1][still] == n_t - 1,
            _END,
            np.where(tracks.marked[: ids.size + 1][still], _MERGED, _LOST),
        )
        table = _Lineage(
            parent=tracks.parent[: ids.size + 1].copy(),
            first=tracks.first[: ids.size + 1].copy(),
            last=tracks.last[: ids.size + 1].copy(),
            present=tracks.present[: ids.size + 1].copy(),
            merged_in=tracks.merged_in[: ids.size + 1].copy(),
            fate=fate,
        )
        luts = tuple(self._luts)
        if self._mode == "lineage" and self._division_min_frames > 1:
            table, new_id = _confirm_divisions(
                table, min_frames=self._division_min_frames
            )
            if new_id.size != ids.size + 1 or np.any(new_id != np.arange(new_id.size)):
                luts = tuple(_read_only(new_id[lut]) for lut in luts)
        ids = np.arange(1, table.parent.size, dtype=np.int64)
        parent, first, last = table.parent[1:], table.first[1:], table.last[1:]
        present, merged_in, fate = (
            table.present[1:],
            table.merged_in[1:],
            table.fate[1:],
        )
        records = tuple(
            Track(
                cell=int(cell),
                parent=int(p),
                first_frame=int(f0),
                last_frame=int(f1),
                n_frames=int(nf),
                n_gap_frames=int(f1 - f0 + 1 - nf),
                n_merged=int(nm),
                fate=_FATE_NAMES[int(code)],
            )
            for cell, p, f0, f1, nf, nm, code in zip(
                ids.tolist(),
                parent.tolist(),
                first.tolist(),
                last.tolist(),
                present.tolist(),
                merged_in.tolist(),
                fate.tolist(),
                strict=True,
            )
        )
        max_id = int(ids.size)
        dtype: np.dtype[np.unsignedinteger[Any]] = (
            np.dtype(np.uint16) if max_id <= _UINT16_MAX else np.dtype(np.uint32)
        )
        y, x = self._frame_shape if self._frame_shape is not None else (0, 0)
        return TrackingResult(
            luts=luts,
            tracks=records,
            max_id=max_id,
            label_dtype=dtype,
            shape=(n_t, y, x),
            mode=self._mode,
            connectivity=self._connectivity,
            cuts=tuple(self._cuts),
        )


def track_masks(masks: Iterable[BoolArray], **options: Any) -> TrackingResult:
    """Run tracking pass 1 over a sequence of segmentation frames.

    Parameters
    ----------
    masks : iterable of (Y, X) ndarray of bool
        Segmentation frames in frame order; a (T, Y, X) array works too. The
        iterable is consumed one frame at a time.
    **options
        The keyword options of :class:`LineageTracker` (``mode``,
        ``connectivity``, ``min_iou``, ...), with its defaults; they are
        stated once, there.

    Returns
    -------
    TrackingResult
        Per-frame look-up tables and lineage records.

    Raises
    ------
    TypeError, ValueError
        As for :class:`LineageTracker` and :meth:`LineageTracker.push`.
    """
    tracker = LineageTracker(**options)
    for mask in masks:
        tracker.push(mask)
    return tracker.finish()
