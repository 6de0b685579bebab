"""Fluorescence expression over time and the light each cell emits."""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from pyama_steps.validation.synth.optics import _Optics

F64 = npt.NDArray[np.float64]

_KIND_NONE: Final = 0
_KIND_CONSTANT: Final = 1
_KIND_TRANSFECTION: Final = 2


def _expression(expr: F64, t_min: float) -> F64:
    """Concentration (ADU/px before optics) of every channel at time ``t_min``."""
    kind = expr[:, 0]
    amp = expr[:, 1]
    tau = t_min - expr[:, 2]
    delta, beta = expr[:, 3], expr[:, 4]
    t_peak = np.log(delta / beta) / (delta - beta)
    norm = np.exp(-beta * t_peak) - np.exp(-delta * t_peak)
    tp = np.maximum(tau, 0.0)
    curve = (np.exp(-beta * tp) - np.exp(-delta * tp)) / norm
    out = np.where(
        kind == _KIND_CONSTANT,
        amp,
        np.where((kind == _KIND_TRANSFECTION) & (tau > 0), amp * curve, 0.0),
    )
    return np.asarray(out, dtype=np.float64)


def _add_emitted(
    out: F64,
    tid: int,
    conc: F64,
    cover: F64,
    opt: _Optics,
    win: tuple[slice, slice],
    pad: int,
    shape: tuple[int, int],
) -> None:
    """Add one cell's emitted light inside the field to ``out[:, tid]``."""
    ny, nx = shape
    ys, xs = win
    y0, y1 = max(ys.start, pad), min(ys.stop, pad + ny)
    x0, x1 = max(xs.start, pad), min(xs.stop, pad + nx)
    if y0 >= y1 or x0 >= x1:
        return
    part = cover[y0 - ys.start : y1 - ys.start, x0 - xs.start : x1 - xs.start]
    for c in range(out.shape[0]):
        if conc[c] > 0:
            excite = opt.excite_canvas[c][y0:y1, x0:x1].astype(np.float64)
            out[c, tid] += float(np.sum(part * excite)) * float(conc[c])
