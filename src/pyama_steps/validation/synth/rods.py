"""Rod-shaped cells: new rods, their division end to end and colony seeding."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from pyama_steps.validation.synth.cells import _NUCLEUS_SCALE, _Cells
from pyama_steps.validation.synth.contacts import _resolve_rods
from pyama_steps.validation.synth.shapes import (
    _ORDERS,
    _rod_area,
    _rod_axes,
    _rod_division_min,
)
from pyama_steps.validation.synth.state import (
    _empty_state,
    _Geometry,
    _lone_cell,
    _State,
)

F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]


class _Rods(_Cells):
    """Creating, dividing and seeding rods (``cell_shape='rod'``)."""

    def _draw_rod_division(self, rng: np.random.Generator, width: float) -> float:
        """Draw a rod's division length (tip to tip, px) for its ``width``."""
        l_lo, l_hi = self.params.rod_length_px
        lo = min(max(_rod_division_min(l_lo, width), l_lo), l_hi)
        return float(rng.uniform(lo, l_hi))

    def _new_rod(
        self,
        rng: np.random.Generator,
        *,
        width: float,
        t: int,
        l_div: float | None = None,
        mother: int = -1,
        expr: F64 | None = None,
    ) -> int:
        """Draw the constants of a new rod and return its uid.

        Rods are exact capsules (no Fourier perturbation), so the length limits
        hold exactly; granules and the nucleoid scale with the rod's axes as a
        blob's do.
        """
        p = self.params
        st = self._static
        if l_div is None:
            l_div = self._draw_rod_division(rng, width)
        a_div = float(_rod_area(l_div, width))
        td_h = p.doubling_time_h * math.exp(rng.normal(0.0, p.doubling_time_cv))
        if expr is None:
            expr = self._draw_expression(rng)
        n_gran = rng.poisson(p.granule_density * a_div)
        rad = 0.85 * np.sqrt(rng.random(n_gran))
        ang = rng.uniform(0.0, 2.0 * math.pi, n_gran)
        peak = rng.normal(0.35, 0.12, n_gran) * np.where(
            rng.random(n_gran) < 0.2, -1.0, 1.0
        )
        st.aspect.append(l_div / width)
        st.eps.append(np.zeros(_ORDERS))
        st.phi.append(np.zeros(_ORDERS))
        st.a_div.append(a_div)
        st.td_h.append(td_h)
        st.expr.append(expr)
        st.granules.append(
            np.column_stack([rad * np.cos(ang), rad * np.sin(ang), peak])
        )
        st.nucleus.append(float(rng.uniform(*_NUCLEUS_SCALE)))
        st.mother.append(mother)
        st.birth_frame.append(t)
        st.width.append(float(width))
        return len(st) - 1

    def _random_rod(self, rng: np.random.Generator, t: int) -> tuple[int, float]:
        """Create a rod at a random point of its cycle; return ``(uid, area)``."""
        width = float(rng.uniform(*self.params.rod_width_px))
        uid = self._new_rod(rng, width=width, t=t)
        a_div = self._static.a_div[uid]
        area = a_div / 2.0 * 2.0 ** rng.random()
        return uid, float(min(area, a_div * 0.999))

    def _divide_rod(
        self, rng: np.random.Generator, cur: _State, k: int, t: int
    ) -> _State:
        """Split rod ``k`` across its long axis into two daughters end to end."""
        st = self._static
        gap = self.params.contact_gap_px
        mother = int(cur.uid[k])
        width = st.width[mother]
        area_d = float(cur.area[k]) / 2.0
        axis = float(cur.angle[k]) + rng.normal(0.0, 0.03)
        ux, uy = math.cos(axis), math.sin(axis)
        # The daughters' inner tips meet at the mother's centre.
        off = float(_rod_axes(area_d, width)[0]) + gap / 2.0 + 0.05
        uids, angs = [], []
        for _ in range(2):
            uids.append(
                self._new_rod(
                    rng,
                    width=width,
                    t=t,
                    mother=mother,
                    expr=st.expr[mother].copy(),
                )
            )
            angs.append(axis + rng.normal(0.0, 0.02))
        return cur.daughters(k, uids, [off, off], angs, area=area_d, ux=ux, uy=uy)

    def _rod_colony(
        self, rng: np.random.Generator, cy: float, cx: float, radius: float
    ) -> _State:
        """Create the rods of one colony: aligned domains of side-by-side rows.

        The colony is the disc of ``radius`` around ``(cy, cx)``, split between
        domains (nearest domain centre) of radius about ``rod_domain_px``. Each
        domain is tiled with rows of rods along its orientation; every rod has
        the colony's width up to 4 % and a random point of its cycle. The rods
        may overlap their neighbours by the orientation jitter and across
        domain borders; :meth:`_place_rods` resolves that.
        """
        p = self.params
        gap = p.contact_gap_px
        w_lo, w_hi = p.rod_width_px
        n_dom = max(1, round((radius / p.rod_domain_px) ** 2))
        seed_r = radius * np.sqrt(rng.random(n_dom))
        seed_a = rng.uniform(0.0, 2.0 * math.pi, n_dom)
        seeds = np.column_stack(
            [cy + seed_r * np.sin(seed_a), cx + seed_r * np.cos(seed_a)]
        )
        orient = rng.uniform(0.0, math.pi, n_dom)
        width_c = float(rng.uniform(w_lo, w_hi))
        uids: list[int] = []
        rows: list[tuple[float, float, float, float]] = []  # x, y, area, angle
        for d in range(n_dom):
            ex, ey = math.cos(orient[d]), math.sin(orient[d])
            off_n = -radius
            while off_n < radius:
                row: list[tuple[float, float, float, float]] = []
                s_pos = -radius - float(rng.uniform(0.0, p.rod_length_px[1]))
                while s_pos < radius:
                    w = min(max(width_c * math.exp(rng.normal(0.0, 0.04)), w_lo), w_hi)
                    l_div = self._draw_rod_division(rng, w)
                    area = float(_rod_area(l_div, w)) / 2.0 * 2.0 ** rng.random()
                    area = min(area, float(_rod_area(l_div, w)) * 0.999)
                    length = 2.0 * float(_rod_axes(area, w)[0])
                    row.append((w, l_div, area, s_pos + length / 2.0))
                    s_pos += length + gap + float(rng.exponential(0.5))
                row_w = max(r[0] for r in row)
                centre_n = off_n + row_w / 2.0
                for w, l_div, area, s_c in row:
                    x = cx + s_c * ex - centre_n * ey
                    y = cy + s_c * ey + centre_n * ex
                    ang = float(orient[d] + rng.normal(0.0, math.radians(1.0)))
                    near = np.argmin((seeds[:, 0] - y) ** 2 + (seeds[:, 1] - x) ** 2)
                    if (x - cx) ** 2 + (y - cy) ** 2 > radius**2 or near != d:
                        continue
                    uids.append(self._new_rod(rng, width=w, t=0, l_div=l_div))
                    rows.append((x, y, area, ang))
                off_n += row_w + gap + float(rng.exponential(0.1))
        speed = p.motility_px / math.sqrt(2.0)
        n = len(uids)
        table = np.array(rows, dtype=np.float64).reshape(n, 4)
        return _State(
            np.array(uids, dtype=np.int64),
            table[:, 0],
            table[:, 1],
            table[:, 2],
            table[:, 3],
            rng.normal(0.0, speed, n),
            rng.normal(0.0, speed, n),
        )

    def _place_rods(self, state: _State, cand: _State) -> tuple[_State, B]:
        """Add the candidate rods that fit to ``state`` (which does not move).

        The candidates are first pushed apart (:func:`_resolve_rods`); of every
        pair still too close, the later candidate is left out. Returns the new
        state and which rows of ``state`` + ``cand`` it kept.
        """
        both = _State.concat([state, cand])
        frozen = np.arange(len(both)) < len(state)
        drop = np.zeros(len(both), dtype=bool)
        if len(cand):
            pairs = _resolve_rods(
                both, self._static, frozen, self.params.contact_gap_px
            )
            if len(pairs):
                drop[pairs.max(axis=1)] = True
        return both.take(~drop), ~drop

    def _seed_rods(
        self,
        rng: np.random.Generator,
        world: tuple[float, float, float, float],
        world_area: float,
    ) -> _State:
        """Seed rod colonies (``cluster_fraction`` of the cover), then lone rods."""
        p = self.params
        y_lo, y_hi, x_lo, x_hi = world
        target = p.coverage * world_area
        state = _empty_state()
        centres = np.zeros((0, 2))
        covered = 0.0
        for _ in range(200):
            if covered >= p.cluster_fraction * target:
                break
            radius = p.cluster_radius_px * float(rng.uniform(0.7, 1.3))
            cy, cx = rng.uniform(y_lo, y_hi), rng.uniform(x_lo, x_hi)
            colony = self._rod_colony(rng, float(cy), float(cx), radius)
            inside = (
                (colony.y >= y_lo)
                & (colony.y <= y_hi)
                & (colony.x >= x_lo)
                & (colony.x <= x_hi)
            )
            colony = colony.take(inside)
            state, kept = self._place_rods(state, colony)
            centres = np.concatenate([centres, np.tile([cx, cy], (len(colony), 1))])
            centres = centres[kept]
            covered = float(state.area.sum())
        if len(state):
            # Compaction: every colony contracts towards its centre, pushing its
            # rods together side by side, then settles; rods still overlapping
            # a neighbour are left out.
            free = np.zeros(len(state), dtype=bool)
            gap = p.contact_gap_px
            _resolve_rods(state, self._static, free, gap, pull=centres, rounds=30)
            pairs = _resolve_rods(state, self._static, free, gap)
            drop = np.zeros(len(state), dtype=bool)
            if len(pairs):
                drop[pairs.max(axis=1)] = True
            state = state.take(~drop)
            covered = float(state.area.sum())
        speed = p.motility_px / math.sqrt(2.0)
        tree = cKDTree(np.column_stack([state.x, state.y])) if len(state) else None
        rb_max = float(_Geometry(self._static, state.uid, state.area).rb.max(initial=0))
        attempts = 0
        while covered < target and attempts < 2000:
            attempts += 1
            cy, cx = rng.uniform(y_lo, y_hi), rng.uniform(x_lo, x_hi)
            n_before = len(self._static)
            uid, area = self._random_rod(rng, 0)
            cand = _lone_cell(rng, uid, cx, cy, area, speed)
            ok = self._fits(state, cand, tree, rb_max)
            state, tree, rb_max = self._place_one(
                state, cand, n_before, tree, rb_max, ok
            )
            if ok:
                covered += area
        return state
