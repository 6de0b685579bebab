"""Per-entity constants, per-frame state and the broadcastable shape arrays.

``_SimBase`` declares the attributes that the simulation's parts
(:mod:`.cells`, :mod:`.rods`, :mod:`.divisions`, :mod:`.motion`,
:mod:`.render`) share; :class:`~.simulation.FovSimulation` sets them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from pyama_steps.validation.synth.optics import _Optics
from pyama_steps.validation.synth.params import SynthParams
from pyama_steps.validation.synth.shapes import _ORDERS, _rod_axes, _semi_axes

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


@dataclass
class _Static:
    """Per-entity constants, appended as entities are created (index = uid)."""

    aspect: list[float]
    eps: list[F64]
    phi: list[F64]
    a_div: list[float]
    td_h: list[float]
    expr: list[F64]  # (n_fl, 5): kind, amplitude, t0_min, delta_per_min, beta_per_min
    granules: list[F64]  # (n, 3): u, v in units of the semi-axes, peak amplitude
    nucleus: list[float]  # relative nucleus size
    mother: list[int]
    birth_frame: list[int]
    # Rod diameter (px) of rods, 0 for blobs.
    width: list[float] = dataclasses.field(default_factory=list)
    # Uids rounded up for mitosis in the frame being simulated ('round' model);
    # _Geometry draws them as disks. Empty in the 'default' model.
    rounded: set[int] = dataclasses.field(default_factory=set)

    @classmethod
    def empty(cls) -> _Static:
        return cls([], [], [], [], [], [], [], [], [], [])

    def __len__(self) -> int:
        return len(self.aspect)


@dataclass
class _State:
    """Dynamic state of the live entities at one frame (arrays of equal length)."""

    uid: I64
    x: F64
    y: F64
    area: F64
    angle: F64
    vx: F64
    vy: F64

    def take(self, idx: Any) -> _State:
        return _State(
            self.uid[idx],
            self.x[idx],
            self.y[idx],
            self.area[idx],
            self.angle[idx],
            self.vx[idx],
            self.vy[idx],
        )

    def copy(self) -> _State:
        return self.take(slice(None))

    @staticmethod
    def concat(parts: list[_State]) -> _State:
        fields = ("uid", "x", "y", "area", "angle", "vx", "vy")
        return _State(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))

    def __len__(self) -> int:
        return len(self.uid)

    def daughters(
        self,
        k: int,
        uids: list[int],
        offsets: list[float],
        angles: list[float],
        *,
        area: float,
        ux: float,
        uy: float,
    ) -> _State:
        """Return the two daughters of entity ``k``, each of area `area`.

        The first lies ``offsets[0]`` along ``(ux, uy)`` from the mother's
        centre, the second ``offsets[1]`` the other way; both keep her velocity.
        """
        xs, ys = [], []
        for sign, off in zip((1.0, -1.0), offsets, strict=True):
            xs.append(float(self.x[k]) + sign * off * ux)
            ys.append(float(self.y[k]) + sign * off * uy)
        return _State(
            np.array(uids, dtype=np.int64),
            np.array(xs),
            np.array(ys),
            np.array([area, area]),
            np.array(angles),
            np.full(2, self.vx[k]),
            np.full(2, self.vy[k]),
        )


@dataclass(frozen=True)
class _Snapshot:
    """Final state of one frame: what the renderer needs."""

    uid: I64
    x: F64
    y: F64
    area: F64
    angle: F64
    tid: I64
    rounded: frozenset[int] = frozenset()


class _Geometry:
    """Arrays of shape parameters for a set of entities, ready for broadcasting.

    Entities in ``rounded`` (default: ``static.rounded``) are disks.
    """

    def __init__(
        self,
        static: _Static,
        uid: I64,
        area: F64,
        rounded: set[int] | frozenset[int] | None = None,
    ) -> None:
        aspect = np.array([static.aspect[u] for u in uid], dtype=np.float64)
        eps = np.array([static.eps[u] for u in uid], dtype=np.float64).reshape(
            -1, _ORDERS
        )
        disks = static.rounded if rounded is None else rounded
        if disks:
            is_disk = np.array([int(u) in disks for u in uid], dtype=bool)
            aspect[is_disk] = 1.0
            eps[is_disk] = 0.0
        self.a, self.b = _semi_axes(area, aspect)
        self.a, self.b, self.rod = _with_rods(static, uid, area, self.a, self.b)
        self.eps = eps
        self.phi = np.array([static.phi[u] for u in uid], dtype=np.float64).reshape(
            -1, _ORDERS
        )
        self.rb = self.a * (1.0 + np.abs(self.eps).sum(axis=1))


def _with_rods(
    static: _Static, uid: I64, area: F64, a: F64, b: F64
) -> tuple[F64, F64, B]:
    """Replace the ellipse axes of the rods among ``uid`` by their rod axes."""
    width = np.array([static.width[u] for u in uid], dtype=np.float64)
    rod = width > 0
    if rod.any():
        ra, rb = _rod_axes(area, np.where(rod, width, 1.0))
        a = np.where(rod, ra, a)
        b = np.where(rod, rb, b)
    return a, b, rod


def _empty_state() -> _State:
    z = np.zeros(0)
    return _State(
        np.zeros(0, dtype=np.int64), z, z.copy(), z.copy(), z.copy(), z.copy(), z.copy()
    )


class _SimBase:
    """The attributes of one FOV's simulation, shared by its parts.

    :class:`~pyama_steps.validation.synth.simulation.FovSimulation` sets them;
    see its docstring.
    """

    params: SynthParams
    fov: int
    shape: tuple[int, int]
    n_frames: int
    times_min: F64
    dropped_frames: tuple[int, ...]
    drift: F64
    lineage: pd.DataFrame
    max_id: int
    _static: _Static
    _snapshots: list[_Snapshot]
    # 'round' division model: uid -> (area before rounding up, frames left
    # rounded), and smaller sister uid -> [other sister, contact frames left].
    _mitosis: dict[int, tuple[float, int]]
    _sisters: dict[int, list[int]]
    _debris: F64
    _optics: _Optics


def _lone_cell(
    rng: np.random.Generator, uid: int, cx: Any, cy: Any, area: Any, speed: float
) -> _State:
    """Return one new cell at ``(cx, cy)`` with a random angle and velocity.

    Draws the angle, then the two velocity components, in that order.
    """
    return _State(
        np.array([uid]),
        np.array([cx]),
        np.array([cy]),
        np.array([area]),
        np.array([rng.uniform(0.0, 2.0 * math.pi)]),
        np.array([rng.normal(0.0, speed)]),
        np.array([rng.normal(0.0, speed)]),
    )
