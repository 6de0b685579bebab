"""Cell outlines: blob and rod (capsule) radii, footprints on the pixel grid.

Pure functions of the shape parameters; imports nothing from the generator.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

# shape, so it starts at 2).
_ORDERS: Final = 3


# ------------------------------------------------------------------ cell geometry
def _semi_axes(area: Any, aspect: Any) -> tuple[Any, Any]:
    a = np.sqrt(area * aspect / math.pi)
    b = np.sqrt(area / (aspect * math.pi))
    return a, b


def _rod_area(length: Any, width: Any) -> Any:
    """Area of a spherocylinder of total ``length`` and ``width`` (px²)."""
    return math.pi * width * width / 4.0 + width * (length - width)


def _rod_axes(area: Any, width: Any) -> tuple[Any, Any]:
    """Half-length (tip to centre) and radius of a rod of ``area`` and ``width``."""
    b = width / 2.0
    half_straight = np.maximum((area - math.pi * b * b) / (4.0 * b), 0.0)
    return half_straight + b, b


def _rod_division_min(l_min: float, width: float) -> float:
    """Shortest division length whose daughters are at least ``l_min`` long.

    A daughter of a rod of length ``L`` gets half its area, hence the length
    ``L/2 + (w/2)(1 - pi/4)``.
    """
    return 2.0 * l_min - width * (1.0 - math.pi / 4.0)


def _capsule_radius(cos_t: Any, sin_t: Any, a: Any, b: Any) -> F64:
    """Boundary radius of a capsule (half-length ``a``, radius ``b``).

    The ray leaves through the flat side at ``b / |sin|`` when that point lies
    on the straight part, otherwise through the cap, at the root of
    ``(rho cos - h)² + (rho sin)² = b²`` with ``h = a - b``. Only +, -, *, /
    and sqrt are used, as in :func:`_radius`.
    """
    h = a - b
    ac = np.abs(cos_t)
    asn = np.abs(sin_t)
    on_side = b * ac <= h * asn
    side = b / np.where(on_side, asn, 1.0)
    cap = h * ac + np.sqrt(np.maximum(b * b - h * h * asn * asn, 0.0))
    return np.asarray(np.where(on_side, side, cap), dtype=np.float64)


def _radius(
    cos_t: F64,
    sin_t: F64,
    a: Any,
    b: Any,
    eps: Any,
    phi: Any,
    rod: Any = False,
) -> F64:
    """Boundary radius of a blob in the direction ``theta`` (cell frame).

    ``eps`` and ``phi`` are sequences of ``_ORDERS`` arrays broadcastable against
    ``cos_t``. Only +, -, *, / and sqrt are used (all correctly rounded), so the
    same pixel gets the same answer whatever the array it is computed in.
    Where ``rod`` is true the base outline is a capsule (:func:`_capsule_radius`)
    instead of the ellipse.
    """
    bc = b * cos_t
    asn = a * sin_t
    r = a * b / np.sqrt(bc * bc + asn * asn)
    if np.any(rod):
        if np.all(rod) and not any(np.any(e) for e in eps):
            # Exact capsules (every rod): the perturbation below would be 1.
            return _capsule_radius(cos_t, sin_t, a, b)
        r = np.where(rod, _capsule_radius(cos_t, sin_t, a, b), r)
    ck, sk = cos_t, sin_t
    pert = np.ones_like(r)
    for k in range(_ORDERS):
        # cos((k+2) t), sin((k+2) t) by the angle-addition recurrence
        ck, sk = ck * cos_t - sk * sin_t, sk * cos_t + ck * sin_t
        pert = pert + eps[k] * (ck * np.cos(phi[k]) - sk * np.sin(phi[k]))
    return np.asarray(r * pert, dtype=np.float64)


def _footprint(
    cx: float,
    cy: float,
    a: float,
    b: float,
    angle: float,
    eps: F64,
    phi: F64,
    ys: F64,
    xs: F64,
    rod: bool = False,
) -> tuple[F64, F64]:
    """Return ``(rho, R)`` of a cell on the pixel grid ``ys x xs``.

    ``rho`` is the distance of each pixel centre from the cell centre and ``R`` the
    boundary radius in that direction; the centre is inside when ``rho <= R``.
    """
    dy = ys[:, None] - cy
    dx = xs[None, :] - cx
    ca, sa = math.cos(angle), math.sin(angle)
    u = dx * ca + dy * sa
    v = dy * ca - dx * sa
    rho = np.sqrt(u * u + v * v)
    safe = np.where(rho > 0, rho, 1.0)
    cos_t = np.where(rho > 0, u / safe, 1.0)
    sin_t = np.where(rho > 0, v / safe, 0.0)
    r = _radius(cos_t, sin_t, a, b, list(eps), list(phi), rod)
    return rho, r


def _rod_axis_fraction(
    cx: float, cy: float, a: float, b: float, angle: float, ys: F64, xs: F64
) -> F64:
    """Distance of each pixel centre from a rod's axis segment, over its radius.

    Clipped to 1; the optical thickness of a rod is a dome across its width
    (a cylinder lying flat), flat along its length.
    """
    dy = ys[:, None] - cy
    dx = xs[None, :] - cx
    ca, sa = math.cos(angle), math.sin(angle)
    u = np.abs(dx * ca + dy * sa)
    v = dy * ca - dx * sa
    beyond = np.maximum(u - (a - b), 0.0)
    return np.asarray(np.minimum(np.sqrt(beyond * beyond + v * v) / b, 1.0))


def _bbox(c: float, r: float, lo: int, hi: int) -> tuple[int, int]:
    """Inclusive integer range of pixel centres within ``c +- r``, clipped."""
    return max(lo, math.ceil(c - r)), min(hi, math.floor(c + r))
