"""Contact resolution: overlap tests between outlines and pushing cells apart."""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from pyama_steps.validation.synth.shapes import _ORDERS, _radius
from pyama_steps.validation.synth.state import _Geometry, _State, _Static

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

# Boundary samples per cell for the overlap test. A real overlap of two shapes
# whose gap is tested with margin g flags an arc of length ~2*sqrt(2*R*g) (about
# 7 px for R = 25, g = 0.25), far longer than the 2*pi*27/72 ~ 2.4 px sample
# spacing, so no overlap is missed.
_BOUNDARY_SAMPLES: Final = 72
_MAX_RESOLVE_ITER: Final = 40


def _pair_depth(
    geo: _Geometry, x: F64, y: F64, angle: F64, i: I64, j: I64, gap: float
) -> F64:
    """Return the deepest penetration of outline ``i`` into ``j`` grown by ``gap``.

    Radial, in px; positive means the pair is too close.
    """
    k = np.arange(_BOUNDARY_SAMPLES, dtype=np.float64)
    theta = 2.0 * math.pi * k / _BOUNDARY_SAMPLES
    ct, st = np.cos(theta)[None, :], np.sin(theta)[None, :]
    ri = _radius(
        ct,
        st,
        geo.a[i, None],
        geo.b[i, None],
        [geo.eps[i, n, None] for n in range(_ORDERS)],
        [geo.phi[i, n, None] for n in range(_ORDERS)],
        geo.rod[i, None],
    )
    ca, sa = np.cos(angle[i])[:, None], np.sin(angle[i])[:, None]
    px = x[i, None] + ri * (ct * ca - st * sa)
    py = y[i, None] + ri * (ct * sa + st * ca)
    dx, dy = px - x[j, None], py - y[j, None]
    cb, sb = np.cos(angle[j])[:, None], np.sin(angle[j])[:, None]
    u = dx * cb + dy * sb
    v = -dx * sb + dy * cb
    rho = np.sqrt(u * u + v * v)
    safe = np.where(rho > 0, rho, 1.0)
    cos_t = np.where(rho > 0, u / safe, 1.0)
    sin_t = np.where(rho > 0, v / safe, 0.0)
    rj = _radius(
        cos_t,
        sin_t,
        geo.a[j, None],
        geo.b[j, None],
        [geo.eps[j, n, None] for n in range(_ORDERS)],
        [geo.phi[j, n, None] for n in range(_ORDERS)],
        geo.rod[j, None],
    )
    return np.asarray((rj + gap - rho).max(axis=1), dtype=np.float64)


def _capsule_depth(
    geo: _Geometry, x: F64, y: F64, angle: F64, i: I64, j: I64, gap: float
) -> F64:
    """Return how far rods ``i`` and ``j`` overlap when grown by ``gap`` (px).

    Exact for capsules: the distance between the two axis segments against the
    sum of the radii (rods carry no shape perturbation).
    """
    return _capsule_contacts(geo, x, y, angle, i, j, gap)[0]


def _capsule_contacts(
    geo: _Geometry, x: F64, y: F64, angle: F64, i: I64, j: I64, gap: float
) -> tuple[F64, F64, F64]:
    """Overlap depth, closest axis points on ``i`` and on ``j`` of rod pairs.

    Returns ``(depth, ci, cj)`` with ``ci``, ``cj`` of shape (n, 2) as
    ``(x, y)``. Crossing axes get the closest points of their centres (the
    push then acts along the centre line).
    """
    h = geo.a - geo.b
    ux, uy = np.cos(angle) * h, np.sin(angle) * h
    p1 = np.stack([x[i] - ux[i], y[i] - uy[i]], axis=1)
    q1 = np.stack([x[i] + ux[i], y[i] + uy[i]], axis=1)
    p2 = np.stack([x[j] - ux[j], y[j] - uy[j]], axis=1)
    q2 = np.stack([x[j] + ux[j], y[j] + uy[j]], axis=1)
    cands = [
        (p1, _closest_on_segment(p1, p2, q2)),
        (q1, _closest_on_segment(q1, p2, q2)),
        (_closest_on_segment(p2, p1, q1), p2),
        (_closest_on_segment(q2, p1, q1), q2),
    ]
    dists = np.stack([np.hypot(*(b - a).T) for a, b in cands])
    best = np.argmin(dists, axis=0)
    rows = np.arange(len(i))
    ci = np.stack([c[0] for c in cands])[best, rows]
    cj = np.stack([c[1] for c in cands])[best, rows]
    dist = dists[best, rows]
    crossing = (_cross(p1, q1, p2) * _cross(p1, q1, q2) < 0) & (
        _cross(p2, q2, p1) * _cross(p2, q2, q1) < 0
    )
    dist = np.where(crossing, 0.0, dist)
    centre_i = np.stack([x[i], y[i]], axis=1)
    centre_j = np.stack([x[j], y[j]], axis=1)
    ci = np.where(crossing[:, None], centre_i, ci)
    cj = np.where(crossing[:, None], centre_j, cj)
    depth = np.asarray(geo.b[i] + geo.b[j] + gap - dist, dtype=np.float64)
    return depth, ci, cj


def _closest_on_segment(pt: F64, p: F64, q: F64) -> F64:
    """Closest point to each of ``pt`` on the segments ``p``-``q`` ((n, 2) rows)."""
    d = q - p
    len2 = np.sum(d * d, axis=1)
    s = np.sum((pt - p) * d, axis=1) / np.where(len2 > 0, len2, 1.0)
    s = np.clip(s, 0.0, 1.0)
    return np.asarray(p + s[:, None] * d, dtype=np.float64)


def _cross(p: F64, q: F64, r: F64) -> F64:
    """Return the z of ``(q - p) x (r - p)`` per row (the side of ``r``)."""
    return np.asarray(
        (q[:, 0] - p[:, 0]) * (r[:, 1] - p[:, 1])
        - (q[:, 1] - p[:, 1]) * (r[:, 0] - p[:, 0]),
        dtype=np.float64,
    )


def _resolve_rods(
    state: _State,
    static: _Static,
    frozen: B,
    gap: float,
    *,
    pull: F64 | None = None,
    rounds: int = _MAX_RESOLVE_ITER,
) -> I64:
    """Push overlapping rods apart in place, turning them; return pairs left.

    Each overlapping pair is pushed apart along its contact normal (the line
    between the closest points of the two axes) by the overlap plus 0.02 px,
    split between the two rods (a frozen rod does not move), and each rod
    turns by the torque of that push about its centre, so rods pushed at one
    end swing into line with their neighbours. With ``pull`` ((n, 2) target
    points as ``(x, y)``), every free rod first moves 0.5 px towards its
    target in each round (compaction of a colony).
    """
    geo = _Geometry(static, state.uid, state.area)
    n = len(state)
    for _ in range(rounds):
        if pull is not None:
            dx = pull[:, 0] - state.x
            dy = pull[:, 1] - state.y
            dist = np.hypot(dx, dy)
            step = np.where(frozen, 0.0, np.minimum(dist, 0.5))
            safe = np.where(dist > 0, dist, 1.0)
            state.x += step * dx / safe
            state.y += step * dy / safe
        pairs, _ = _overlaps(state, static, gap, geo=geo)
        if len(pairs) == 0:
            if pull is None:
                return pairs
            continue
        i, j = pairs[:, 0], pairs[:, 1]
        depth, ci, cj = _capsule_contacts(geo, state.x, state.y, state.angle, i, j, gap)
        normal = cj - ci
        norm = np.hypot(normal[:, 0], normal[:, 1])
        ok = norm > 1e-9
        normal = np.where(ok[:, None], normal / np.where(ok, norm, 1.0)[:, None], 0.0)
        # Coincident closest points: push along the centre line instead.
        cl = np.stack([state.x[j] - state.x[i], state.y[j] - state.y[i]], axis=1)
        cl_norm = np.maximum(np.hypot(cl[:, 0], cl[:, 1]), 1e-9)
        normal = np.where(ok[:, None], normal, cl / cl_norm[:, None])
        push = np.maximum(depth, 0.0) + 0.02
        fi, fj = frozen[i], frozen[j]
        wi = np.where(fi, 0.0, np.where(fj, 1.0, 0.5))
        wj = np.where(fj, 0.0, np.where(fi, 1.0, 0.5))
        sx, sy, turn = np.zeros(n), np.zeros(n), np.zeros(n)
        for idx, w, c, sign in ((i, wi, ci, -1.0), (j, wj, cj, 1.0)):
            fx = sign * w * push * normal[:, 0]
            fy = sign * w * push * normal[:, 1]
            np.add.at(sx, idx, fx)
            np.add.at(sy, idx, fy)
            # Torque of the push about the rod's centre over its moment of
            # inertia (a thin rod: half-length² / 3).
            rx, ry = c[:, 0] - state.x[idx], c[:, 1] - state.y[idx]
            inertia = np.maximum(geo.a[idx] ** 2 / 3.0, 1.0)
            np.add.at(turn, idx, (rx * fy - ry * fx) / inertia)
        mag = np.hypot(sx, sy)
        scale = np.where(mag > 3.0, 3.0 / np.where(mag > 0, mag, 1.0), 1.0)
        state.x += sx * scale
        state.y += sy * scale
        state.angle += np.clip(turn, -0.03, 0.03)
    pairs, _ = _overlaps(state, static, gap, geo=geo)
    return pairs


def _close_pairs(x: F64, y: F64, rb: F64, gap: float) -> I64:
    """Return the pairs ``(i, j)``, ``i < j``, of bounding circles within ``gap``.

    Sorted lexicographically, so the order is deterministic.
    """
    n = len(x)
    if n < 2:
        return np.zeros((0, 2), dtype=np.int64)
    tree = cKDTree(np.column_stack([x, y]))
    pairs = tree.query_pairs(r=2.0 * float(rb.max()) + gap, output_type="ndarray")
    if len(pairs) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.sort(pairs.astype(np.int64), axis=1)
    i, j = pairs[:, 0], pairs[:, 1]
    d2 = (x[i] - x[j]) ** 2 + (y[i] - y[j]) ** 2
    keep = d2 < (rb[i] + rb[j] + gap) ** 2
    pairs = pairs[keep]
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    return np.asarray(pairs[order], dtype=np.int64)


def _overlaps(
    state: _State,
    static: _Static,
    gap: float,
    *,
    geo: _Geometry | None = None,
    moved: B | None = None,
) -> tuple[I64, F64]:
    """Pairs of cells closer than ``gap`` and their penetration depth (px).

    With ``moved``, only pairs with at least one moved cell are tested: the others
    were tested before and have not changed.
    """
    if geo is None:
        geo = _Geometry(static, state.uid, state.area)
    pairs = _close_pairs(state.x, state.y, geo.rb, gap)
    if moved is not None and len(pairs):
        pairs = pairs[moved[pairs[:, 0]] | moved[pairs[:, 1]]]
    if len(pairs) == 0:
        return pairs, np.zeros(0)
    i, j = pairs[:, 0], pairs[:, 1]
    if geo.rod.all():
        depth = _capsule_depth(geo, state.x, state.y, state.angle, i, j, gap)
    else:
        depth = np.maximum(
            _pair_depth(geo, state.x, state.y, state.angle, i, j, gap),
            _pair_depth(geo, state.x, state.y, state.angle, j, i, gap),
        )
    bad = depth > 0
    return pairs[bad], depth[bad]


def _resolve(state: _State, static: _Static, frozen: B, gap: float) -> I64:
    """Push overlapping cells apart in place; return the pairs still overlapping.

    Frozen cells do not move; their partner takes the whole push.
    """
    geo = _Geometry(static, state.uid, state.area)
    moved: B | None = None
    for _ in range(_MAX_RESOLVE_ITER):
        pairs, depth = _overlaps(state, static, gap, geo=geo, moved=moved)
        if len(pairs) == 0:
            return pairs
        i, j = pairs[:, 0], pairs[:, 1]
        dx = state.x[j] - state.x[i]
        dy = state.y[j] - state.y[i]
        dist = np.sqrt(dx * dx + dy * dy)
        ok = dist > 1e-9
        ux = np.where(ok, dx / np.where(ok, dist, 1.0), 1.0)
        uy = np.where(ok, dy / np.where(ok, dist, 1.0), 0.0)
        # A little over-relaxation: crowded clusters settle in fewer passes.
        push = 1.2 * depth + 0.05
        fi, fj = frozen[i], frozen[j]
        wi = np.where(fi, 0.0, np.where(fj, 1.0, 0.5))
        wj = np.where(fj, 0.0, np.where(fi, 1.0, 0.5))
        sx = np.zeros(len(state))
        sy = np.zeros(len(state))
        np.add.at(sx, i, -wi * push * ux)
        np.add.at(sy, i, -wi * push * uy)
        np.add.at(sx, j, wj * push * ux)
        np.add.at(sy, j, wj * push * uy)
        # Several contacts can add up; a cell never jumps more than 3 px per pass.
        mag = np.sqrt(sx * sx + sy * sy)
        scale = np.where(mag > 3.0, 3.0 / np.where(mag > 0, mag, 1.0), 1.0)
        state.x += sx * scale
        state.y += sy * scale
        moved = mag > 0
    pairs, _ = _overlaps(state, static, gap, geo=geo)
    return pairs
