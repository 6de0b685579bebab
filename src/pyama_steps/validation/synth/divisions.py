"""Divisions: the 'round' model's mitosis, sister contact, and reverting cells.

A division or move that cannot be placed is reverted (contact inhibition).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from pyama_steps.validation.synth.rods import _Rods
from pyama_steps.validation.synth.shapes import _radius, _semi_axes
from pyama_steps.validation.synth.state import _Geometry, _State

I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


class _Divisions(_Rods):
    """Mitotic rounding, sisters held in contact, and reverting cells."""

    def _divide_blob(
        self,
        rng: np.random.Generator,
        cur: _State,
        k: int,
        t: int,
        c_lo: float,
        c_hi: float,
    ) -> _State:
        """Split blob ``k`` into two touching daughters across its major axis.

        In the 'round' model the daughters get half the area the mother had
        before she rounded up, and are held in contact for a drawn number of
        frames.
        """
        p = self.params
        st = self._static
        gap = p.contact_gap_px
        round_model = p.division_model == "round"
        mother = int(cur.uid[k])
        area_d = float(cur.area[k]) / 2.0
        if round_model:
            # Half the area the mother had before she rounded up.
            area_d = self._mitosis[mother][0] / 2.0
        axis = float(cur.angle[k]) + rng.normal(0.0, 0.15)
        ux, uy = math.cos(axis), math.sin(axis)
        aspect_hi = min(p.max_aspect, area_d / c_lo, c_hi / (1.7 * area_d))
        uids = []
        for _ in range(2):
            uids.append(
                self._new_entity(
                    rng,
                    area_birth=area_d,
                    aspect_hi=aspect_hi,
                    c_lo=c_lo,
                    c_hi=c_hi,
                    t=t,
                    mother=mother,
                    expr=st.expr[mother].copy(),
                )
            )
        offs, angs = [], []
        for sign, uid in zip((1.0, -1.0), uids, strict=True):
            ang = axis + math.pi / 2.0 + rng.normal(0.0, 0.2)
            a_, b_ = _semi_axes(area_d, st.aspect[uid])
            # Radius of the daughter towards its sister.
            rel = math.atan2(-sign * uy, -sign * ux) - ang
            r_in = float(
                _radius(
                    np.array([math.cos(rel)]),
                    np.array([math.sin(rel)]),
                    a_,
                    b_,
                    list(st.eps[uid]),
                    list(st.phi[uid]),
                )[0]
            )
            offs.append(r_in + gap / 2.0 + 0.05)
            angs.append(ang)
        daughters = cur.daughters(k, uids, offs, angs, area=area_d, ux=ux, uy=uy)
        if round_model:
            lo, hi = p.sister_contact_frames
            self._sisters[min(uids)] = [max(uids), int(rng.integers(lo, hi + 1))]
        return daughters

    def _advance_mitosis(
        self, rng: np.random.Generator, prev: _State, cur: _State, ripe: B
    ) -> B:
        """Advance the mitotic rounding ('round' model); return who splits now.

        ``cur`` is ``prev`` grown by one frame (same order). A cell that has
        reached its division area (``ripe``) rounds up: its footprint shrinks to
        ``mitosis_area_factor`` of its area and it stays so for a drawn number of
        frames, without growing; then it splits.
        """
        p = self.params
        lo, hi = p.mitosis_frames
        splits = np.zeros(len(cur), dtype=bool)
        for k in range(len(cur)):
            uid = int(cur.uid[k])
            entry = self._mitosis.get(uid)
            if entry is not None:
                cur.area[k] = prev.area[k]
                if entry[1] == 0:
                    splits[k] = True
                else:
                    self._mitosis[uid] = (entry[0], entry[1] - 1)
            elif ripe[k]:
                n = int(rng.integers(lo, hi + 1))
                self._mitosis[uid] = (float(cur.area[k]), n - 1)
                cur.area[k] = cur.area[k] * p.mitosis_area_factor
        self._static.rounded = set(self._mitosis)
        return splits

    def _sister_pairs(self, state: _State) -> list[tuple[int, int, list[int]]]:
        """Index pairs ``(i, j, entry)`` of sisters still held in contact."""
        if not self._sisters:
            return []
        pos = {int(u): k for k, u in enumerate(state.uid)}
        out = []
        for u, entry in sorted(self._sisters.items()):
            i, j = pos.get(u), pos.get(entry[0])
            if i is not None and j is not None and entry[1] > 0:
                out.append((i, j, entry))
        return out

    def _move_sisters_together(self, cur: _State) -> None:
        """Give sisters held in contact their mean velocity ('round' model)."""
        for i, j, _ in self._sister_pairs(cur):
            vx = 0.5 * (cur.vx[i] + cur.vx[j])
            vy = 0.5 * (cur.vy[i] + cur.vy[j])
            cur.vx[i] = cur.vx[j] = vx
            cur.vy[i] = cur.vy[j] = vy

    def _pull_sisters(self, new: _State) -> None:
        """Move sisters held in contact back to touching distance ('round' model).

        Each pair closes the gap between its outlines along the line through
        the centres beyond ``contact_gap_px``, half each; the contact
        resolution that follows removes any overlap. Counts down the contact.
        """
        pairs = self._sister_pairs(new)
        if not pairs:
            return
        gap = self.params.contact_gap_px
        geo = _Geometry(self._static, new.uid, new.area)
        for i, j, entry in pairs:
            entry[1] -= 1
            dx, dy = new.x[j] - new.x[i], new.y[j] - new.y[i]
            dist = math.hypot(dx, dy)
            if dist < 1e-9:
                continue
            ux, uy = dx / dist, dy / dist
            reach = 0.0
            for k, (vx, vy) in ((i, (ux, uy)), (j, (-ux, -uy))):
                rel = math.atan2(vy, vx) - float(new.angle[k])
                reach += float(
                    _radius(
                        np.array([math.cos(rel)]),
                        np.array([math.sin(rel)]),
                        geo.a[k],
                        geo.b[k],
                        list(geo.eps[k]),
                        list(geo.phi[k]),
                    )[0]
                )
            surplus = dist - reach - gap - 0.05
            if surplus > 0:
                new.x[i] += 0.5 * surplus * ux
                new.y[i] += 0.5 * surplus * uy
                new.x[j] -= 0.5 * surplus * ux
                new.y[j] -= 0.5 * surplus * uy

    def _restore_mitosis(self, uids: I64, before: dict[int, tuple[float, int]]) -> None:
        """Give cells restored to their previous state their previous mitosis."""
        for uid in uids.tolist():
            if uid in before:
                self._mitosis[uid] = before[uid]
            else:
                self._mitosis.pop(uid, None)
        self._static.rounded = set(self._mitosis)

    def _prune_mitosis(self, alive: I64) -> None:
        """Forget the mitosis and contact records of cells no longer simulated."""
        live = set(alive.tolist())
        self._mitosis = {u: e for u, e in self._mitosis.items() if u in live}
        self._sisters = {
            u: e
            for u, e in self._sisters.items()
            if u in live and e[0] in live and e[1] > 0
        }
        self._static.rounded = set(self._mitosis)

    def _revert(
        self, new: _State, org: I64, frozen: B, bad: B, prev: _State
    ) -> tuple[_State, I64, B]:
        """Return the state with the ``bad`` cells restored from ``prev``."""
        st = self._static
        drop = np.zeros(len(new), dtype=bool)
        restore: list[int] = []
        for k in np.flatnonzero(bad):
            o = int(org[k])
            if o < 0:
                drop[k] = True  # a newcomer that does not fit: it never came
                continue
            if st.birth_frame[int(new.uid[k])] == self._current_t and st.mother[
                int(new.uid[k])
            ] == int(prev.uid[o]):
                # A daughter: cancel the division, drop both daughters.
                drop |= org == o
                restore.append(o)
            else:
                new.x[k], new.y[k] = prev.x[o], prev.y[o]
                new.area[k], new.angle[k] = prev.area[o], prev.angle[o]
                new.vx[k] = new.vy[k] = 0.0
                frozen[k] = True
        keep = ~drop
        parts = [new.take(keep)]
        origins = [org[keep]]
        frz = [frozen[keep]]
        for o in sorted(set(restore)):
            m = prev.take(np.array([o]))
            m.vx[:] = 0.0
            m.vy[:] = 0.0
            parts.append(m)
            origins.append(np.array([o]))
            frz.append(np.array([True]))
        return _State.concat(parts), np.concatenate(origins), np.concatenate(frz)

    @property
    def _current_t(self) -> int:
        return len(self._snapshots)
