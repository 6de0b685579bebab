"""Synthetic phase-contrast + fluorescence time-lapses with exact ground truth.

The simulator produces multi-FOV movies that look like widefield microscope data
(phase contrast with halo and granular texture, fluorescence with autofluorescence,
photobleaching, a 16-bit camera with shot and read noise) together with the truth
that algorithms.md §8 measures against: an instance label per pixel, the lineage,
the noise-free background-free fluorescence per cell and the true background.

Generation is split in two passes per FOV:

1. :func:`simulate_fov` runs the *geometry* pass: cells grow, divide, move, are
   pushed apart, enter and leave the field, and truth ids are assigned. Only
   per-cell state is kept (a few numbers per cell and frame).
2. :meth:`FovSimulation.frames` *renders* one frame at a time from that state,
   holding a fixed number of frame-sized arrays, so a movie of any length streams
   in O(frame) memory.

Everything is seeded: FOV ``f`` uses ``numpy.random.default_rng([seed, f, k])``
streams, so a FOV's content does not depend on how many FOVs are generated, and
frame ``t``'s camera noise is drawn from its own stream ``[seed, f, 3, t]``.

Cells are smooth blobs around ellipses, or with ``cell_shape='rod'`` rod-shaped
bacteria (spherocylinders of fixed width that grow in length, divide end to end
and pack side by side in colonies; preset ``rods``).

Ground-truth definitions (binding for the evaluator)
----------------------------------------------------
* **Labels.** Pixel ``(y, x)`` carries the truth id of the cell whose undistorted,
  unblurred shape contains the pixel centre; 0 is background. Shapes never overlap
  (they are kept at least ``contact_gap_px`` apart), so a pixel belongs to at most
  one cell. A truth id lives from the cell's birth or first appearance in the field
  to its division, its disappearance from the field, or the last frame; a cell that
  leaves and comes back gets a new id with parent 0. With
  ``division_model='round'`` the frames in which a mother has rounded up before
  the split belong to the mother's id (her label is the rounded disk).
* **Lineage.** ``parent`` is the mother's id when the mother had pixels in the frame
  before the division and the daughter has pixels in the division frame; otherwise
  0. ``first_frame``/``last_frame`` are the first/last frame with at least one
  pixel of the cell, counting dropped frames as if they had been imaged.
* **Fluorescence.** For channel ``c`` the noise-free image is
  ``background_c + signal_c``, where ``signal_c`` is the cells' fluorescence after
  excitation profile, PSF blur, photobleaching and lamp gain, and ``background_c``
  is camera offset (hot pixels included) plus gain-modulated autofluorescence.
  ``true_total_ch_c`` is the light the cell emits into the field: its
  concentration times its area coverage of each pixel (the exact shape, not the
  label), times the excitation profile, lamp gain and bleaching, summed over
  the pixels of the frame in float64, *before* the PSF (the blur moves light
  across the outline, it does not remove it). ``true_mask_total_ch_c`` is the
  sum of ``signal_c`` (after the PSF; float32 values summed in float64 in raster
  order) over the cell's label pixels, and ``true_mean_ch_c`` that sum divided
  by the pixel count: the mean a perfect mask measures.
* **Dropped frames** are all zero in every channel; their labels, signal and
  background are zero and they have no per-cell rows, but ids continue across them.
"""

from __future__ import annotations

from pyama_steps.validation.synth.params import (
    CELL_SHAPES,
    DIVISION_MODELS,
    FL_CHANNEL_NAMES,
    GENERATOR_NAME,
    GENERATOR_VERSION,
    HALO_KERNELS,
    PHASE_CHANNEL_NAME,
    PHASE_MODELS,
    SynthParams,
)
from pyama_steps.validation.synth.presets import (
    PRESETS,
    channel_names,
    fov_shape,
    frame_times,
    frame_times_s,
    preset,
)
from pyama_steps.validation.synth.render import SynthFrame
from pyama_steps.validation.synth.simulation import FovSimulation, simulate_fov

__all__ = [
    "CELL_SHAPES",
    "DIVISION_MODELS",
    "FL_CHANNEL_NAMES",
    "GENERATOR_NAME",
    "GENERATOR_VERSION",
    "HALO_KERNELS",
    "PHASE_CHANNEL_NAME",
    "PHASE_MODELS",
    "PRESETS",
    "FovSimulation",
    "SynthFrame",
    "SynthParams",
    "channel_names",
    "fov_shape",
    "frame_times",
    "frame_times_s",
    "preset",
    "simulate_fov",
]
