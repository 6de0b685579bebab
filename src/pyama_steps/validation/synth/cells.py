"""Blob cells: the constants of a new cell, and the seeding of the first frame."""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from pyama_steps.validation.synth.contacts import _overlaps
from pyama_steps.validation.synth.fluorescence import (
    _KIND_CONSTANT,
    _KIND_NONE,
    _KIND_TRANSFECTION,
)
from pyama_steps.validation.synth.shapes import _ORDERS
from pyama_steps.validation.synth.state import (
    _empty_state,
    _Geometry,
    _lone_cell,
    _SimBase,
    _State,
)

F64 = npt.NDArray[np.float64]

_NUCLEUS_SCALE: Final = (0.38, 0.55)


class _Cells(_SimBase):
    """Creating blob cells (constants, expression) and seeding frame 0."""

    def _new_entity(
        self,
        rng: np.random.Generator,
        *,
        area_birth: float,
        aspect_hi: float,
        c_lo: float,
        c_hi: float,
        t: int,
        mother: int = -1,
        expr: F64 | None = None,
    ) -> int:
        """Draw the constants of a new entity and return its uid."""
        p = self.params
        st = self._static
        aspect = 1.0 + rng.random() * (max(aspect_hi, 1.0) - 1.0)
        raw = rng.uniform(-1.0, 1.0, _ORDERS)
        total = float(np.abs(raw).sum())
        eps = raw / total * p.shape_irregularity * rng.uniform(0.3, 1.0)
        phi = rng.uniform(0.0, 2.0 * math.pi, _ORDERS)
        noise = math.exp(rng.normal(0.0, p.division_size_cv))
        a_div = min(
            c_hi / aspect, max(1.7 * area_birth, 2.0 * c_lo, 2.0 * area_birth * noise)
        )
        td_h = p.doubling_time_h * math.exp(rng.normal(0.0, p.doubling_time_cv))
        if expr is None:
            expr = self._draw_expression(rng)
        area_max = a_div
        n_gran = rng.poisson(p.granule_density * area_max)
        # Granules spread evenly over the inner 85 % of the cell's radius.
        rad = 0.85 * np.sqrt(rng.random(n_gran))
        ang = rng.uniform(0.0, 2.0 * math.pi, n_gran)
        peak = rng.normal(0.35, 0.12, n_gran) * np.where(
            rng.random(n_gran) < 0.2, -1.0, 1.0
        )
        nucleus = float(rng.uniform(*_NUCLEUS_SCALE))
        n_nucleoli = int(rng.integers(1, 4))
        nrad = nucleus * 0.5 * np.sqrt(rng.random(n_nucleoli))
        nang = rng.uniform(0.0, 2.0 * math.pi, n_nucleoli)
        gran = np.column_stack(
            [
                np.concatenate([rad * np.cos(ang), nrad * np.cos(nang)]),
                np.concatenate([rad * np.sin(ang), nrad * np.sin(nang)]),
                np.concatenate([peak, np.full(n_nucleoli, 0.6)]),
            ]
        )
        st.aspect.append(aspect)
        st.eps.append(eps)
        st.phi.append(phi)
        st.a_div.append(a_div)
        st.td_h.append(td_h)
        st.expr.append(expr)
        st.granules.append(gran)
        st.nucleus.append(nucleus)
        st.mother.append(mother)
        st.birth_frame.append(t)
        st.width.append(0.0)
        return len(st) - 1

    def _draw_expression(self, rng: np.random.Generator) -> F64:
        p = self.params
        duration = p.interval_min * max(p.n_frames - 1, 1)
        out = np.zeros((max(p.n_fl_channels, 1), 5))
        out[:, 3:] = 1.0  # harmless rates for unused rows
        out[:, 4] = 0.5
        for c in range(p.n_fl_channels):
            u = rng.random()
            amp = p.fl_peak_adu * math.exp(rng.normal(0.0, p.fl_peak_spread))
            t0 = rng.uniform(*p.onset_window) * duration
            delta = rng.uniform(*p.mrna_decay_per_h) / 60.0
            beta = rng.uniform(*p.protein_decay_per_h) / 60.0
            if u < p.fraction_nonexpressing:
                kind = _KIND_NONE
            elif u < p.fraction_nonexpressing + p.fraction_constant:
                kind = _KIND_CONSTANT
            else:
                kind = _KIND_TRANSFECTION
            out[c] = (kind, amp, t0, delta, beta)
        return out

    def _random_cell(
        self,
        rng: np.random.Generator,
        c_lo: float,
        c_hi: float,
        t: int,
    ) -> tuple[int, float]:
        """Create a cell at a random point of its cycle; return ``(uid, area)``."""
        p = self.params
        aspect_hi = p.max_aspect
        aspect = 1.0 + rng.random() * (aspect_hi - 1.0)
        lo, hi = c_lo * aspect, c_hi / aspect / 2.0
        area_birth = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        # _new_entity draws its own aspect in [1, aspect]; the birth area fits it.
        uid = self._new_entity(
            rng, area_birth=area_birth, aspect_hi=aspect, c_lo=c_lo, c_hi=c_hi, t=t
        )
        a_div = self._static.a_div[uid]
        area = area_birth * (a_div / area_birth) ** rng.random()
        return uid, float(min(area, a_div * 0.999))

    def _fits(
        self, state: _State, cand: _State, others_tree: cKDTree | None, rb_max: float
    ) -> bool:
        """Whether ``cand`` (one cell) keeps the gap to every cell in ``state``."""
        if others_tree is None or len(state) == 0:
            return True
        gap = self.params.contact_gap_px
        geo_c = _Geometry(self._static, cand.uid, cand.area)
        near = others_tree.query_ball_point(
            [cand.x[0], cand.y[0]], r=float(geo_c.rb[0]) + rb_max + gap
        )
        if not near:
            return True
        sub = _State.concat(
            [cand, state.take(np.sort(np.asarray(near, dtype=np.int64)))]
        )
        pairs, _ = _overlaps(sub, self._static, gap)
        return not bool(np.any(pairs[:, 0] == 0))

    def _seed_cells(
        self,
        rng: np.random.Generator,
        world: tuple[float, float, float, float],
        world_area: float,
        c_lo: float,
        c_hi: float,
    ) -> _State:
        p = self.params
        y_lo, y_hi, x_lo, x_hi = world
        target = p.coverage * world_area
        mean_area = 0.75 * (c_lo * p.max_aspect + c_hi / p.max_aspect / 2.0)
        n_expected = max(1, round(target / mean_area))
        n_clusters = max(1, round(n_expected * p.cluster_fraction / 10.0))
        centres = np.column_stack(
            [rng.uniform(y_lo, y_hi, n_clusters), rng.uniform(x_lo, x_hi, n_clusters)]
        )
        state = _empty_state()
        covered = 0.0
        attempts = 0
        tree: cKDTree | None = None
        rb_max = 0.0
        while covered < target and attempts < 40 * n_expected + 200:
            attempts += 1
            if rng.random() < p.cluster_fraction:
                cy, cx = centres[rng.integers(n_clusters)] + rng.normal(
                    0.0, p.cluster_radius_px, 2
                )
            else:
                cy, cx = rng.uniform(y_lo, y_hi), rng.uniform(x_lo, x_hi)
            n_before = len(self._static)
            uid, area = self._random_cell(rng, c_lo, c_hi, 0)
            speed = p.motility_px / math.sqrt(2.0)
            cand = _lone_cell(rng, uid, cx, cy, area, speed)
            inside = y_lo <= cy <= y_hi and x_lo <= cx <= x_hi
            ok = inside and self._fits(state, cand, tree, rb_max)
            state, tree, rb_max = self._place_one(
                state, cand, n_before, tree, rb_max, ok
            )
            if ok:
                covered += area
        return state

    def _place_one(
        self,
        state: _State,
        cand: _State,
        n_before: int,
        tree: cKDTree | None,
        rb_max: float,
        ok: bool,
    ) -> tuple[_State, cKDTree | None, float]:
        """Add ``cand`` to ``state`` when ``ok``, else forget its constants.

        Returns the state, its search tree of centres and its largest
        bounding radius.
        """
        if not ok:
            self._discard_last(n_before)
            return state, tree, rb_max
        state = _State.concat([state, cand])
        geo = _Geometry(self._static, state.uid, state.area)
        return state, cKDTree(np.column_stack([state.x, state.y])), float(geo.rb.max())

    def _discard_last(self, n_keep: int) -> None:
        st = self._static
        for lst in (
            st.aspect,
            st.eps,
            st.phi,
            st.a_div,
            st.td_h,
            st.expr,
            st.granules,
            st.nucleus,
            st.mother,
            st.birth_frame,
            st.width,
        ):
            del lst[n_keep:]
