"""Fluorescence background: a smooth surface fitted to the pixels between cells.

Implements algorithms.md §3. The cell mask is grown and the remaining pixels are
background. Two methods turn them into a smooth full-size surface that is
subtracted from the raw frame:

* ``fit`` (default): the background pixels are averaged in small blocks, and a
  penalised cubic B-spline surface (P-spline) is fitted by weighted least
  squares to the block means *at the blocks' background centroids*, with two
  robust passes that drop outlying blocks.
* ``tiles`` (the existing implementation's): the median of the background pixels
  of overlapping square tiles, tiles without enough background filled from their
  neighbours, and an interpolating spline through the tile centres, flat beyond
  the outer centres.

What lives here, by module:

* :mod:`~pyama_steps.background.estimate`: the entry points
  (:func:`estimate_background`, :func:`background_surface`,
  :func:`correct_frame`, :func:`model_shape`) and their input checks.
* :mod:`~pyama_steps.background.grids`: tile grids and spline bases along an
  axis (:func:`tile_grid`, :func:`spline_axis`).
* :mod:`~pyama_steps.background.model`: a frame's estimate
  (:class:`BackgroundFrame`) and the fallback rules shared by both methods.
* :mod:`~pyama_steps.background.fit` and :mod:`~pyama_steps.background.tiles`:
  the two methods.
* :mod:`~pyama_steps.background.corrected`: :class:`CorrectedReader`, the one
  place later steps get background and corrected frames from (raw stack plus
  the per-frame model, §3.6).

May import: numpy, scipy, ``pyama_steps._typing``, ``pyama_steps._validate``,
``pyama_steps._arrays``, ``pyama_steps.morphology``, and (``corrected`` only)
the ``.npy`` stack reader of ``pyama_steps.io``. Nothing here touches
Snakemake or the configuration.
"""

from __future__ import annotations

from pyama_steps.background.corrected import CorrectedReader
from pyama_steps.background.estimate import (
    BackgroundMethod,
    background_surface,
    correct_frame,
    estimate_background,
    model_shape,
)
from pyama_steps.background.grids import SplineAxis, TileGrid, spline_axis, tile_grid
from pyama_steps.background.model import BackgroundFrame

__all__ = [
    "BackgroundFrame",
    "BackgroundMethod",
    "CorrectedReader",
    "SplineAxis",
    "TileGrid",
    "background_surface",
    "correct_frame",
    "estimate_background",
    "model_shape",
    "spline_axis",
    "tile_grid",
]
