"""One step of the geometry pass: growth, motion, division, influx, contacts."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from pyama_steps.validation.synth.contacts import _resolve, _resolve_rods
from pyama_steps.validation.synth.divisions import _Divisions
from pyama_steps.validation.synth.shapes import (
    _bbox,
    _footprint,
    _rod_axes,
    _semi_axes,
)
from pyama_steps.validation.synth.state import _Geometry, _lone_cell, _State

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


class _Motion(_Divisions):
    """The step from frame ``t - 1`` to ``t``, and the raster check."""

    def _step(
        self,
        rng: np.random.Generator,
        prev: _State,
        t: int,
        world: tuple[float, float, float, float],
        inner: tuple[float, float, float, float],
        c_lo: float,
        c_hi: float,
    ) -> tuple[_State, B]:
        y_lo, y_hi, x_lo, x_hi = world

        # Leaving the simulated world (far outside the field): the cell is gone.
        keep = (prev.y >= y_lo) & (prev.y <= y_hi) & (prev.x >= x_lo) & (prev.x <= x_hi)
        n_gone = int((~keep).sum())
        prev = prev.take(keep)

        prev_mitosis = dict(self._mitosis)
        cur, dividing = self._grow_and_move(rng, prev, t)
        parts, part_origin = self._divide_all(rng, cur, dividing, t, c_lo, c_hi)
        self._influx(rng, n_gone, t, world, inner, c_lo, c_hi, parts, part_origin)
        new = _State.concat(parts)
        org = np.concatenate(part_origin)
        return self._settle(new, org, prev, t, prev_mitosis)

    def _grow_and_move(
        self, rng: np.random.Generator, prev: _State, t: int
    ) -> tuple[_State, B]:
        """Grow, round up ('round' model) and move the cells; return who divides."""
        p = self.params
        st = self._static
        dt_h = float(self.times_min[t] - self.times_min[t - 1]) / 60.0
        cur = prev.copy()
        td = np.array([st.td_h[u] for u in cur.uid])
        cur.area = cur.area * np.exp2(dt_h / td)
        a_div = np.array([st.a_div[u] for u in cur.uid])
        dividing = cur.area >= a_div
        round_model = p.division_model == "round"
        if round_model:
            dividing = self._advance_mitosis(rng, prev, cur, dividing)

        # Motion: persistent random walk and slow rotation.
        sigma = p.motility_px / math.sqrt(2.0)
        kick = math.sqrt(1.0 - p.persistence**2) * sigma
        cur.vx = p.persistence * cur.vx + kick * rng.normal(size=len(cur))
        cur.vy = p.persistence * cur.vy + kick * rng.normal(size=len(cur))
        if round_model:
            self._move_sisters_together(cur)
        cur.x = cur.x + cur.vx
        cur.y = cur.y + cur.vy
        cur.angle = cur.angle + np.deg2rad(p.rotation_deg) * rng.normal(size=len(cur))
        return cur, dividing

    def _divide_all(
        self,
        rng: np.random.Generator,
        cur: _State,
        dividing: B,
        t: int,
        c_lo: float,
        c_hi: float,
    ) -> tuple[list[_State], list[I64]]:
        """Split the dividing cells; return the parts and their rows in ``cur``.

        Division along the major axis: two touching daughters of half the area.
        The origin of a part's rows is its index in ``cur`` (-1 for spawned
        cells, added by :meth:`_influx`).
        """
        origin = np.arange(len(cur))
        parts = [cur.take(~dividing)]
        part_origin = [origin[~dividing]]
        for k in np.flatnonzero(dividing):
            if self.params.cell_shape == "rod":
                parts.append(self._divide_rod(rng, cur, int(k), t))
            else:
                parts.append(self._divide_blob(rng, cur, int(k), t, c_lo, c_hi))
            part_origin.append(np.full(2, k))
        return parts, part_origin

    def _influx(
        self,
        rng: np.random.Generator,
        n_gone: int,
        t: int,
        world: tuple[float, float, float, float],
        inner: tuple[float, float, float, float],
        c_lo: float,
        c_hi: float,
        parts: list[_State],
        part_origin: list[I64],
    ) -> None:
        """Append to ``parts`` one cell entering from the margin per cell gone.

        Every cell that left the world is replaced by one entering from the
        margin band, outside every position of the field.
        """
        p = self.params
        st = self._static
        y_lo, y_hi, x_lo, x_hi = world
        for _ in range(n_gone):
            for _try in range(30):
                cy, cx = rng.uniform(y_lo, y_hi), rng.uniform(x_lo, x_hi)
                n_before = len(st)
                if p.cell_shape == "rod":
                    uid, area = self._random_rod(rng, t)
                    rb = float(_rod_axes(area, st.width[uid])[0]) * (
                        1.0 + float(np.abs(st.eps[uid]).sum())
                    )
                else:
                    uid, area = self._random_cell(rng, c_lo, c_hi, t)
                    rb = _semi_axes(area, st.aspect[uid])[0] * (
                        1.0 + float(np.abs(st.eps[uid]).sum())
                    )
                in_band = not (
                    inner[0] - rb - 2 < cy < inner[1] + rb + 2
                    and inner[2] - rb - 2 < cx < inner[3] + rb + 2
                )
                if in_band:
                    speed = p.motility_px / math.sqrt(2.0)
                    parts.append(_lone_cell(rng, uid, cx, cy, area, speed))
                    part_origin.append(np.array([-1]))
                    break
                self._discard_last(n_before)

    def _settle(
        self,
        new: _State,
        org: I64,
        prev: _State,
        t: int,
        prev_mitosis: dict[int, tuple[float, int]],
    ) -> tuple[_State, B]:
        """Resolve contacts; return the placed state and who is visible.

        Cells that cannot be placed keep their previous state (contact
        inhibition: no move, no growth, division postponed). Reverting only
        ever grows the frozen set, and the previous frame was valid, so the
        loop ends with a valid configuration.
        """
        p = self.params
        st = self._static
        gap = p.contact_gap_px
        round_model = p.division_model == "round"
        frozen = np.zeros(len(new), dtype=bool)
        if round_model:
            self._pull_sisters(new)
        while True:
            if p.cell_shape == "rod":
                pairs = _resolve_rods(new, st, frozen, gap)
            else:
                pairs = _resolve(new, st, frozen, gap)
            bad = np.zeros(len(new), dtype=bool)
            if len(pairs):
                bad[pairs.ravel()] = True
            clash, visible = self._raster_check(new, t)
            bad |= clash
            bad &= ~frozen
            if not bad.any():
                break
            new, org, frozen = self._revert(new, org, frozen, bad, prev)
            if round_model:
                self._restore_mitosis(new.uid[frozen], prev_mitosis)
        if round_model:
            self._prune_mitosis(new.uid)
        return new, visible

    def _cells_in_frame(
        self, state: _State, t: int, rounded: frozenset[int] | None = None
    ) -> tuple[I64, _Geometry, F64, F64]:
        geo = _Geometry(self._static, state.uid, state.area, rounded)
        ny, nx = self.shape
        cx = state.x - self.drift[t, 1]
        cy = state.y - self.drift[t, 0]
        hit = (
            (cx + geo.rb >= 0)
            & (cx - geo.rb <= nx - 1)
            & (cy + geo.rb >= 0)
            & (cy - geo.rb <= ny - 1)
        )
        return np.flatnonzero(hit), geo, cx, cy

    def _rasterize_inside(
        self, state: _State, geo: _Geometry, cx: F64, cy: F64, k: int
    ) -> tuple[int, int, int, int, B] | None:
        ny, nx = self.shape
        y0, y1 = _bbox(float(cy[k]), float(geo.rb[k]), 0, ny - 1)
        x0, x1 = _bbox(float(cx[k]), float(geo.rb[k]), 0, nx - 1)
        if y0 > y1 or x0 > x1:
            return None
        rho, r = _footprint(
            float(cx[k]),
            float(cy[k]),
            float(geo.a[k]),
            float(geo.b[k]),
            float(state.angle[k]),
            geo.eps[k],
            geo.phi[k],
            np.arange(y0, y1 + 1, dtype=np.float64),
            np.arange(x0, x1 + 1, dtype=np.float64),
            bool(geo.rod[k]),
        )
        return y0, y1, x0, x1, rho <= r

    def _raster_check(self, state: _State, t: int) -> tuple[B, B]:
        """Rasterise the cells in the field: ``(conflict, visible)`` per cell.

        ``conflict`` marks cells claiming a pixel centre that another cell claims.
        The geometric gap makes that impossible in practice; the check makes the
        "one cell per pixel" guarantee exact rather than probabilistic.
        ``visible`` marks cells with at least one pixel centre in the field.
        """
        ny, nx = self.shape
        occ = np.zeros((ny, nx), dtype=np.int32)
        bad = np.zeros(len(state), dtype=bool)
        vis = np.zeros(len(state), dtype=bool)
        idx, geo, cx, cy = self._cells_in_frame(state, t)
        for k in idx:
            res = self._rasterize_inside(state, geo, cx, cy, int(k))
            if res is None:
                continue
            y0, y1, x0, x1, inside = res
            if not inside.any():
                continue
            vis[k] = True
            win = occ[y0 : y1 + 1, x0 : x1 + 1]
            clash = inside & (win > 0)
            if clash.any():
                bad[k] = True
                bad[np.unique(win[clash]) - 1] = True
            win[inside & (win == 0)] = k + 1
        return bad, vis
