"""One FOV's simulation: the geometry pass (:class:`FovSimulation`) and its truth."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pandas as pd

from pyama_steps.validation.synth.motion import _Motion
from pyama_steps.validation.synth.optics import _Optics
from pyama_steps.validation.synth.params import (
    _STREAM_GEOMETRY,
    SynthParams,
    _size_constants,
)
from pyama_steps.validation.synth.presets import _check_fov, fov_shape, frame_times
from pyama_steps.validation.synth.render import _Render
from pyama_steps.validation.synth.state import _Snapshot, _State, _Static

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


class FovSimulation(_Motion, _Render):
    """Geometry and truth of one FOV; renders frames on demand.

    Create with :func:`simulate_fov`. Attributes are read-only by convention.

    Attributes
    ----------
    params : SynthParams
        Generator parameters.
    fov : int
        FOV index.
    shape : (int, int)
        Frame size ``(Y, X)``.
    n_frames : int
        Number of frames T.
    times_min : (T,) ndarray of float64
        Phase-plane times in minutes.
    dropped_frames : tuple of int
        Frames of this FOV acquired as zeros.
    drift : (T, 2) ndarray of float64
        Stage position ``(y, x)`` in px: the world point seen at pixel ``(0, 0)``.
    lineage : pandas.DataFrame
        Columns ``cell, parent, first_frame, last_frame`` (int64), sorted by cell.
    max_id : int
        Largest truth id (0 if no cell is ever visible).
    """

    def __init__(self, params: SynthParams, fov: int) -> None:
        _check_fov(params, fov)
        self.params = params
        self.fov = fov
        self.shape = fov_shape(params, fov)
        self.n_frames = params.n_frames
        self.times_min = frame_times(params, fov)
        self.dropped_frames = tuple(
            sorted({t for f, t in params.dropped_frames if f == fov})
        )
        self._static = _Static.empty()
        self._snapshots: list[_Snapshot] = []
        self._mitosis: dict[int, tuple[float, int]] = {}
        self._sisters: dict[int, list[int]] = {}
        self._debris = np.zeros((0, 3))
        self.drift = np.zeros((self.n_frames, 2))
        self.lineage = pd.DataFrame()
        self.max_id = 0
        self._run_geometry()
        self._optics = _Optics(params, fov, self.shape)

    # ----------------------------------------------------------- geometry pass
    def _run_geometry(self) -> None:
        p = self.params
        rng = np.random.default_rng([p.seed, self.fov, _STREAM_GEOMETRY])
        c_lo, c_hi = _size_constants(p)
        self.drift = self._draw_drift(rng)
        world, inner, world_area = self._world()
        self._debris = self._draw_debris(rng, world, world_area)
        if p.cell_shape == "rod":
            state = self._seed_rods(rng, world, world_area)
        else:
            state = self._seed_cells(rng, world, world_area, c_lo, c_hi)
        tid_of: dict[int, int] = {}
        rows: dict[int, list[int]] = {}  # tid -> [parent, first, last]
        next_tid = 1

        for t in range(self.n_frames):
            if t > 0:
                state, visible = self._step(rng, state, t, world, inner, c_lo, c_hi)
            else:
                state, visible = self._place_first_frame(state)
            tid_of, tid, next_tid = self._assign_ids(
                state, visible, t, tid_of, rows, next_tid
            )
            self._snapshots.append(
                _Snapshot(
                    state.uid.copy(),
                    state.x.copy(),
                    state.y.copy(),
                    state.area.copy(),
                    state.angle.copy(),
                    tid,
                    frozenset(self._static.rounded),
                )
            )
        self.max_id = next_tid - 1
        self.lineage = _lineage_table(rows, next_tid)

    def _draw_drift(self, rng: np.random.Generator) -> F64:
        """Stage drift: a constant velocity in a random direction plus jitter."""
        p = self.params
        t_count = self.n_frames
        heading = rng.uniform(0.0, 2.0 * math.pi)
        step = np.zeros((t_count, 2))
        if t_count > 1:
            step[1:] = p.drift_px * np.array([math.sin(heading), math.cos(heading)])
            step[1:] += rng.normal(0.0, p.drift_jitter_px, (t_count - 1, 2))
        return np.cumsum(step, axis=0)

    def _world(
        self,
    ) -> tuple[
        tuple[float, float, float, float], tuple[float, float, float, float], float
    ]:
        """Return the simulated world, the field's extent within it, and its area.

        The world is every position the field visits, plus a margin in which
        cells wait to wander in.
        """
        p = self.params
        ny, nx = self.shape
        d_max = p.cell_diameter_px[1]
        if p.cell_shape == "rod":
            d_max = max(d_max, p.rod_length_px[1])
        margin = 1.2 * d_max + 10.0
        y_lo = float(self.drift[:, 0].min()) - margin
        y_hi = float(self.drift[:, 0].max()) + ny - 1 + margin
        x_lo = float(self.drift[:, 1].min()) - margin
        x_hi = float(self.drift[:, 1].max()) + nx - 1 + margin
        world = (y_lo, y_hi, x_lo, x_hi)
        inner = (y_lo + margin, y_hi - margin, x_lo + margin, x_hi - margin)
        world_area = (y_hi - y_lo) * (x_hi - x_lo)
        return world, inner, world_area

    def _draw_debris(
        self,
        rng: np.random.Generator,
        world: tuple[float, float, float, float],
        world_area: float,
    ) -> F64:
        """Debris particles ``(y, x, amplitude)`` fixed in the world."""
        p = self.params
        y_lo, y_hi, x_lo, x_hi = world
        n_debris = rng.poisson(p.debris_per_mpx * world_area / 1e6)
        amp = rng.uniform(0.4, 1.2, n_debris) * np.where(
            rng.random(n_debris) < 0.3, -1.0, 1.0
        )
        return np.column_stack(
            [rng.uniform(y_lo, y_hi, n_debris), rng.uniform(x_lo, x_hi, n_debris), amp]
        )

    def _place_first_frame(self, state: _State) -> tuple[_State, B]:
        """Drop seeded cells claiming a pixel twice; return ``(state, visible)``.

        Seeding keeps the geometric gap, so no pixel is claimed twice; should
        it happen, the later cell is not placed.
        """
        clash, visible = self._raster_check(state, 0)
        while clash.any():
            state = state.take(np.arange(len(state)) != np.flatnonzero(clash)[-1])
            clash, visible = self._raster_check(state, 0)
        return state, visible

    def _assign_ids(
        self,
        state: _State,
        visible: B,
        t: int,
        prev_tid: dict[int, int],
        rows: dict[int, list[int]],
        next_tid: int,
    ) -> tuple[dict[int, int], I64, int]:
        """Give the visible cells of frame ``t`` their truth ids; extend ``rows``.

        Returns the uid -> truth id map of frame ``t``, the truth id of each
        cell of ``state`` (0: not visible) and the next unused truth id.
        """
        tid_of: dict[int, int] = {}
        tid = np.zeros(len(state), dtype=np.int64)
        for k in np.argsort(state.uid, kind="stable"):
            uid = int(state.uid[k])
            if not visible[k]:
                continue
            if prev_tid.get(uid, 0) > 0:
                cur = prev_tid[uid]
                rows[cur][2] = t
            else:
                cur = next_tid
                next_tid += 1
                parent = 0
                mother = self._static.mother[uid]
                if self._static.birth_frame[uid] == t and mother >= 0:
                    parent = prev_tid.get(mother, 0)
                rows[cur] = [parent, t, t]
            tid_of[uid] = cur
            tid[k] = cur
        return tid_of, tid, next_tid

    def cell_masks(self, t: int) -> Iterator[tuple[int, tuple[slice, slice], B]]:
        """Yield each visible cell's own truth mask in frame ``t``.

        Every cell is rasterised on its own, independently of its neighbours, so
        the masks can be checked for overlap. Dropped frames yield the masks the
        frame would have had.

        Parameters
        ----------
        t : int
            Frame index in ``[0, T)``.

        Yields
        ------
        cell : int
            Truth id.
        window : (slice, slice)
            Rows and columns of the frame covered by ``mask``.
        mask : (h, w) ndarray of bool
            Pixel centres inside the cell's shape.

        Raises
        ------
        IndexError
            If ``t`` is out of range.
        """
        if not 0 <= t < self.n_frames:
            raise IndexError(
                f"frame t={t!r} is out of range: FOV {self.fov} has {self.n_frames} "
                "frames."
            )
        snap = self._snapshots[t]
        state = _State(
            snap.uid, snap.x, snap.y, snap.area, snap.angle, snap.x * 0, snap.x * 0
        )
        idx, geo, cx, cy = self._cells_in_frame(state, t, snap.rounded)
        for k in idx:
            tid = int(snap.tid[k])
            res = self._rasterize_inside(state, geo, cx, cy, int(k))
            if tid == 0 or res is None:
                continue
            y0, y1, x0, x1, inside = res
            yield tid, (slice(y0, y1 + 1), slice(x0, x1 + 1)), inside

    # --------------------------------------------------------------- summaries
    def summary(self) -> dict[str, int]:
        """Return counts of the truth events of this FOV.

        Returns
        -------
        dict
            ``cells`` (truth ids), ``divisions`` (ids that are a parent),
            ``entering`` (parent 0, first frame > 0), ``leaving`` (last frame
            < T-1 and no daughter), ``max_id``.
        """
        lin = self.lineage
        parents = set(lin["parent"][lin["parent"] > 0].tolist())
        entering = int(((lin["parent"] == 0) & (lin["first_frame"] > 0)).sum())
        leaving = int(
            ((lin["last_frame"] < self.n_frames - 1) & ~lin["cell"].isin(parents)).sum()
        )
        return {
            "cells": len(lin),
            "divisions": len(parents),
            "entering": entering,
            "leaving": leaving,
            "max_id": self.max_id,
        }


def _lineage_table(rows: dict[int, list[int]], next_tid: int) -> pd.DataFrame:
    """Return the lineage table of truth ids ``1 .. next_tid - 1`` from their rows."""
    ids = np.arange(1, next_tid, dtype=np.int64)
    table = np.array([rows[int(i)] for i in ids], dtype=np.int64).reshape(-1, 3)
    return pd.DataFrame(
        {
            "cell": ids,
            "parent": table[:, 0],
            "first_frame": table[:, 1],
            "last_frame": table[:, 2],
        }
    )


def simulate_fov(params: SynthParams, fov: int) -> FovSimulation:
    """Run the geometry pass of one FOV and return a frame renderer.

    Parameters
    ----------
    params : SynthParams
        Generator parameters.
    fov : int
        FOV index in ``[0, n_fov)``.

    Returns
    -------
    FovSimulation
        Lineage, times and drift are available immediately; call
        :meth:`FovSimulation.frames` to stream the rendered frames.

    Raises
    ------
    IndexError
        If ``fov`` is out of range.

    Examples
    --------
    >>> sim = simulate_fov(preset("easy"), 0)
    >>> frame = next(sim.frames())
    >>> frame.images[0].dtype
    dtype('uint16')
    """
    return FovSimulation(params, fov)
