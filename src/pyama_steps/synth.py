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

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import ndimage, signal, special
from scipy.spatial import cKDTree

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

GENERATOR_NAME: Final = "pyama_steps.synth"
GENERATOR_VERSION: Final = "2"
PHASE_CHANNEL_NAME: Final = "Phase"
FL_CHANNEL_NAMES: Final = ("GFP", "mCherry", "Cy5")

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U16 = npt.NDArray[np.uint16]
U32 = npt.NDArray[np.uint32]
B = npt.NDArray[np.bool_]

# Random streams: the third entry of every seed sequence ``[seed, fov, stream]``.
_STREAM_TIMES: Final = 0
_STREAM_GEOMETRY: Final = 1
_STREAM_OPTICS: Final = 2
_STREAM_NOISE: Final = 3

# Fourier orders of the smooth shape perturbation (order 1 would only shift the
# shape, so it starts at 2).
_ORDERS: Final = 3
# Boundary samples per cell for the overlap test. A real overlap of two shapes
# whose gap is tested with margin g flags an arc of length ~2*sqrt(2*R*g) (about
# 7 px for R = 25, g = 0.25), far longer than the 2*pi*27/72 ~ 2.4 px sample
# spacing, so no overlap is missed.
_BOUNDARY_SAMPLES: Final = 72
_MAX_RESOLVE_ITER: Final = 40
# Cell outlines: a smooth blob around an ellipse, or a rod (spherocylinder).
CELL_SHAPES: Final = ("blob", "rod")
# Phase-contrast image models and shapes of the halo's low-pass kernel.
PHASE_MODELS: Final = ("linear", "zernike")
HALO_KERNELS: Final = ("gaussian", "exponential", "airy")
# Inner radius of the phase ring relative to its outer radius (the 'airy' kernel).
_J1_FIRST_ZERO: Final = 3.8317059702075125
# The 'zernike' model's phase per unit thickness relative to the small-phase
# scaling: real cells shift the phase by ~1 rad, well beyond the linear regime.
_ZERNIKE_PHASE_GAIN: Final = 3.0
# Nucleus: relative size range and how much thinner (optically) it looks.
_NUCLEUS_SCALE: Final = (0.38, 0.55)
_NUCLEUS_DIM: Final = 0.22
_GRANULE_SIGMA_PX: Final = 1.0
_POISSON_EXACT_E: Final = 1000.0
_NOISE_BLOCK_ROWS: Final = 128
_KIND_NONE: Final = 0
_KIND_CONSTANT: Final = 1
_KIND_TRANSFECTION: Final = 2
# Division models: "default" splits a cell the frame it reaches its division
# area; "round" first rounds it up (mitosis) and keeps the daughters together.
DIVISION_MODELS: Final = ("default", "round")


# --------------------------------------------------------------------------- params
@dataclass(frozen=True)
class SynthParams:
    """All parameters of the synthetic time-lapse (frozen, hashable, JSON-able).

    Lengths are in pixels (px), intensities in camera counts (ADU), times in
    minutes unless a name says otherwise. The defaults equal the ``demo`` preset.

    Parameters
    ----------
    preset : str
        Name of the preset these values came from (``"custom"`` otherwise);
        informational, written to ``truth.json``.
    seed : int
        Seed of every random stream (non-negative).
    n_fov : int
        Number of fields of view (scenes in the image file).
    n_frames : int
        Frames per FOV (T).
    frame_sizes : tuple of (int, int)
        Frame size ``(Y, X)`` in px per FOV; FOV ``f`` uses
        ``frame_sizes[f % len(frame_sizes)]``. Each side at least 16 px.
    n_fl_channels : int
        Number of fluorescence channels, 0 to 3. The image file holds the phase
        channel at index 0 and fluorescence channel ``k`` at index ``k``.
    pixel_size_um : float
        Physical pixel size in µm (0.65 µm is a 10x objective on a 6.5 µm-pixel
        sCMOS camera); metadata only.
    interval_min : float
        Nominal frame interval in minutes.
    interval_jitter_min : float
        Each frame's acquisition starts late by a uniform ``[0, jitter)`` delay in
        minutes (autofocus, stage settling). Must be below ``interval_min / 2`` so
        that times stay strictly increasing.
    fov_delay_min : float
        Delay between consecutive FOVs within one acquisition cycle, in minutes
        (the stage visits positions one after another).
    channel_delay_s : float
        Delay between consecutive channels of one FOV and frame, in seconds
        (filter/illumination switching). ``times_min`` are the phase planes'.
    dropped_frames : tuple of (int, int)
        ``(fov, frame)`` pairs acquired as all-zero planes in every channel.
    cell_diameter_px : (float, float)
        ``(d_min, d_max)``: every cell's smallest width is at least ``d_min`` and
        its largest length at most ``d_max`` px, at every frame (sizes at birth and
        division are drawn so that growth stays inside the range).
    max_aspect : float
        Largest major/minor axis ratio of the underlying ellipse (>= 1).
    shape_irregularity : float
        Sum of the relative amplitudes of the 2nd-4th Fourier modes that turn the
        ellipse into a smooth blob (0 gives pure ellipses; below 0.2).
    cell_shape : {'blob', 'rod'}
        ``'blob'``: the perturbed ellipses above, whose width and length grow
        together and which divide into two daughters lying side by side across
        the mother's long axis. ``'rod'``: spherocylinders (capsules: a
        rectangle with two half-disc caps), as rod-shaped bacteria: the width is
        fixed per lineage and only the length grows; a rod divides across its
        long axis into two daughters lying end to end; colonies are seeded as
        dense patches of rods packed side by side (see Notes). Rods use
        `rod_width_px` and `rod_length_px` instead of `cell_diameter_px` and
        `max_aspect`, and their optical thickness follows the distance to the
        rod's axis (see `edge_thickness`).
    rod_width_px : (float, float)
        ``(w_min, w_max)``: range of the rod diameters (``cell_shape='rod'``),
        px; each founder draws its width uniformly, daughters inherit it.
    rod_length_px : (float, float)
        ``(l_min, l_max)``: every rod is at least ``l_min`` and at most
        ``l_max`` px long, tip to tip, at every frame (``cell_shape='rod'``);
        ``l_min >= w_max`` and ``2 l_min - w_min (1 - pi/4) <= l_max`` (a
        division length exists whose daughters are long enough).
    rod_domain_px : float
        Radius of the aligned domains of a rod colony, px: rods in one domain
        share an orientation (``cell_shape='rod'``).
    coverage : float
        Fraction of the area covered by cells at the start (0-0.6).
    cluster_fraction : float
        Fraction of the initial cells seeded around colony centres (0-1); the rest
        are uniform. Clustered cells touch their neighbours.
    cluster_radius_px : float
        Standard deviation of a colony's cell positions around its centre, px.
    doubling_time_h : float
        Median cell-cycle (area doubling) time in hours.
    doubling_time_cv : float
        Log-normal spread (sigma of the log) of the per-cell doubling time.
    division_size_cv : float
        Log-normal spread of the division area around twice the birth area.
    division_model : {'default', 'round'}
        ``'default'``: a cell splits in the frame it reaches its division area.
        ``'round'`` (nucleus-like cells, mitotic rounding): the cell first rounds
        up for ``mitosis_frames`` frames (a disk of ``mitosis_area_factor``
        times its area, ``mitosis_thickness`` times as thick, with a spherical
        profile and no nucleus: compact and phase-dense, with a strong halo),
        then splits into two daughters of half its area before the rounding,
        which are held in contact for ``sister_contact_frames`` frames before
        they move independently.
    mitosis_frames : (int, int)
        ``'round'`` only: inclusive range of the number of frames a mother
        stays rounded up before she splits (drawn per cell; each frame the
        split is blocked by crowding adds one).
    mitosis_area_factor : float
        ``'round'`` only: footprint of the rounded mother relative to her area
        when she started to round up, in (0, 1].
    mitosis_thickness : float
        ``'round'`` only: optical thickness at the centre of the rounded mother
        relative to an interphase cell (>= 1).
    sister_contact_frames : (int, int)
        ``'round'`` only: inclusive range of the number of frames after the
        split during which the two daughters move together and are pulled back
        into contact (drawn per division; 0 lets them part at once).
    motility_px : float
        RMS displacement of a cell per frame from its own motion, px/frame.
    persistence : float
        Velocity autocorrelation between consecutive frames, in [0, 1).
    rotation_deg : float
        Standard deviation of the per-frame change of orientation, degrees.
    contact_gap_px : float
        Smallest distance kept between two cell outlines, px (touching cells sit
        this far apart, which leaves them 4-adjacent in the label image).
    drift_px : float
        Mean stage drift speed, px/frame (random direction per FOV).
    drift_jitter_px : float
        Standard deviation of the per-frame random stage jitter, px.
    psf_sigma_px : float
        Standard deviation of the Gaussian point-spread function, px.
    focus_jitter : float
        Log-normal per-frame relative spread of the phase PSF width (focus
        breathing).
    halo_sigma_px : float
        Width (standard deviation, px) of the low-pass part of the phase-contrast
        transfer that produces the bright halo and the shade-off.
    phase_level_adu : float
        Phase-contrast background level above the camera offset, ADU.
    phase_contrast : float
        Darkening of the thickest part of a cell relative to the background
        (fraction, 0-0.8; in the small-phase limit for ``phase_model='zernike'``).
    phase_model : {'linear', 'zernike'}
        ``'linear'``: the image is the background minus the optical path
        difference with its low-pass part removed (Yin et al. 2012), so the
        darkening is proportional to the thickness. ``'zernike'``: the complex
        field ``exp(i phi)`` through a phase ring that shifts the low-pass part
        by -pi/2 and attenuates it to ``ring_transmission`` (intensity); the
        intensity is ``|E|²``, which saturates and reverses for thick cells.
    halo_kernel : {'gaussian', 'exponential', 'airy'}
        Shape of the low-pass part of the transfer that makes the halo and the
        shade-off: a Gaussian, an exponential ``exp(-r / lambda)`` (a long tail;
        same RMS radius), or the transform of a phase ring (a difference of two
        jinc functions: a central lobe with ringing side lobes, first zero near
        ``2 * halo_sigma_px``).
    halo_strength : float
        Share of the low-pass part that the ring captures (0-1]: 1 gives the
        full halo and shade-off, smaller values a weaker halo and a darker
        interior.
    ring_transmission : float
        Intensity transmission of the phase ring (``'zernike'`` only), in
        (0, 1]; typical rings pass 15-30 %.
    edge_thickness : float
        Optical thickness of a cell at its outline relative to its centre (the
        profile rises as a dome from there), in [0, 1]: 1 is a flat slab (a
        bacterium seen from above), small values a cell that thins out towards
        its edge. For rods the dome runs across the width (the distance to the
        rod's axis), so the body is flat along its length.
    fl_psf_sigma_px : float or None
        Standard deviation of the fluorescence point-spread function, px;
        ``None`` uses ``psf_sigma_px``.
    granule_density : float
        Granules (organelles, vesicles) per px² of cell area.
    vignetting : float
        Relative illumination fall-off at the frame corners (0-0.9); the
        fluorescence excitation falls off 1.3 times as much.
    illumination_mottle : float
        Relative amplitude of the smooth, fixed illumination mottle (dust on the
        condenser).
    flicker_pc : float
        Relative standard deviation of the per-frame transmitted-lamp gain.
    flicker_fl : float
        Relative standard deviation of the per-frame excitation gain.
    debris_per_mpx : float
        Debris particles stuck to the glass per million px of field.
    camera_offset_adu : float
        Camera dark offset, ADU.
    camera_gain_adu_per_e : float
        Camera conversion gain, ADU per photo-electron.
    read_noise_adu : float
        RMS read noise, ADU.
    hot_pixel_fraction : float
        Fraction of camera pixels with an elevated fixed offset (hot pixels).
    autofluorescence_adu : (float, float, float)
        Mean autofluorescence of the medium per fluorescence channel, ADU above
        offset at the illumination centre.
    fl_background_variation : float
        Relative amplitude of the smooth spatial unevenness of the
        autofluorescence.
    fl_background_drift : float
        Relative amplitude of the slow change of that pattern over the movie.
    fl_peak_adu : float
        Median peak cellular fluorescence (concentration in ADU per px before
        blur, bleaching and illumination fall-off).
    fl_peak_spread : float
        Log-normal spread of the per-cell peak fluorescence.
    fraction_nonexpressing : float
        Fraction of cells with no fluorescence (per channel).
    fraction_constant : float
        Fraction of cells with constant fluorescence (per channel); the rest
        follow the mRNA-transfection model (see Notes).
    onset_window : (float, float)
        Range of transfection onset times as fractions of the movie duration
        (negative: expression started before the movie).
    mrna_decay_per_h : (float, float)
        Range of mRNA degradation rates delta, 1/h.
    protein_decay_per_h : (float, float)
        Range of protein degradation rates beta, 1/h (all below the mRNA range).
    bleach_per_frame : (float, float, float)
        Photobleaching rate per exposure of each fluorescence channel.
    write_background : bool
        Whether :func:`pyama_steps.synth_io.write_dataset` writes the true
        background stacks (:func:`preset` turns it off for data sets whose
        stacks would exceed 256 MiB).

    Notes
    -----
    The transfection model is PyAMA's two-step expression model: after the onset
    ``t0`` the protein follows ``A (exp(-beta tau) - exp(-delta tau)) / norm`` with
    ``tau = t - t0`` and ``norm`` the curve's maximum, so ``A`` is the peak
    concentration. Daughters inherit the mother's expression parameters, so the
    concentration is continuous across a division while the total halves.

    Rods (``cell_shape='rod'``) of width ``w`` and length ``L`` have the area
    ``pi w²/4 + w (L - w)``. A rod divides when it reaches its division length
    (drawn uniformly per rod between the smallest length whose daughters are
    at least ``l_min`` long and ``l_max``); each daughter gets half the area,
    hence the length ``L/2 + (w/2)(1 - pi/4)``. Colonies (``cluster_fraction``
    of the covered area) are discs of radius about ``cluster_radius_px``,
    split into domains of radius about `rod_domain_px`; each domain is filled
    with rows of rods packed side by side along its own orientation (a few
    degrees of jitter), and rods that would overlap a neighbour are left out.
    The other rods are placed uniformly, like blobs.
    """

    preset: str = "custom"
    seed: int = 0
    n_fov: int = 3
    n_frames: int = 24
    frame_sizes: tuple[tuple[int, int], ...] = ((512, 512), (576, 640), (384, 448))
    n_fl_channels: int = 1
    pixel_size_um: float = 0.65
    interval_min: float = 10.0
    interval_jitter_min: float = 0.2
    fov_delay_min: float = 0.25
    channel_delay_s: float = 0.5
    dropped_frames: tuple[tuple[int, int], ...] = ((0, 12),)
    cell_diameter_px: tuple[float, float] = (15.0, 50.0)
    max_aspect: float = 1.6
    shape_irregularity: float = 0.06
    cell_shape: str = "blob"
    rod_width_px: tuple[float, float] = (15.0, 25.0)
    rod_length_px: tuple[float, float] = (40.0, 90.0)
    rod_domain_px: float = 60.0
    coverage: float = 0.12
    cluster_fraction: float = 0.25
    cluster_radius_px: float = 35.0
    doubling_time_h: float = 20.0
    doubling_time_cv: float = 0.15
    division_size_cv: float = 0.08
    division_model: str = "default"
    mitosis_frames: tuple[int, int] = (1, 3)
    mitosis_area_factor: float = 0.65
    mitosis_thickness: float = 2.0
    sister_contact_frames: tuple[int, int] = (3, 6)
    motility_px: float = 1.0
    persistence: float = 0.7
    rotation_deg: float = 3.0
    contact_gap_px: float = 0.25
    drift_px: float = 0.4
    drift_jitter_px: float = 0.1
    psf_sigma_px: float = 1.2
    focus_jitter: float = 0.08
    halo_sigma_px: float = 5.0
    phase_level_adu: float = 10000.0
    phase_contrast: float = 0.6
    phase_model: str = "linear"
    halo_kernel: str = "gaussian"
    halo_strength: float = 1.0
    ring_transmission: float = 0.25
    edge_thickness: float = 0.45
    fl_psf_sigma_px: float | None = None
    granule_density: float = 0.015
    vignetting: float = 0.2
    illumination_mottle: float = 0.015
    flicker_pc: float = 0.02
    flicker_fl: float = 0.01
    debris_per_mpx: float = 40.0
    camera_offset_adu: float = 100.0
    camera_gain_adu_per_e: float = 2.0
    read_noise_adu: float = 3.0
    hot_pixel_fraction: float = 2e-5
    autofluorescence_adu: tuple[float, float, float] = (250.0, 180.0, 120.0)
    fl_background_variation: float = 0.15
    fl_background_drift: float = 0.05
    fl_peak_adu: float = 800.0
    fl_peak_spread: float = 0.5
    fraction_nonexpressing: float = 0.25
    fraction_constant: float = 0.15
    onset_window: tuple[float, float] = (-0.3, 0.5)
    mrna_decay_per_h: tuple[float, float] = (0.15, 0.5)
    protein_decay_per_h: tuple[float, float] = (0.02, 0.08)
    bleach_per_frame: tuple[float, float, float] = (0.004, 0.006, 0.008)
    write_background: bool = True

    def __post_init__(self) -> None:
        _validate(self)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict (tuples become lists).

        Returns
        -------
        dict
            Field name to value, in declaration order.
        """
        return {
            f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _size_constants(p: SynthParams) -> tuple[float, float]:
    """Return the area limits ``(c_lo, c_hi)`` of the diameter range.

    ``A >= c_lo r`` keeps the width >= d_min and ``A <= c_hi / r`` keeps the
    length <= d_max, for aspect ratio ``r`` and the worst-case shape perturbation.
    """
    d_min, d_max = p.cell_diameter_px
    eps = p.shape_irregularity
    c_lo = math.pi * (d_min / (2.0 * (1.0 - eps))) ** 2
    c_hi = math.pi * (d_max / (2.0 * (1.0 + eps))) ** 2
    return c_lo, c_hi


def _fail(name: str, value: Any, valid: str) -> ValueError:
    return ValueError(f"SynthParams.{name}={value!r} is invalid: expected {valid}.")


def _validate(p: SynthParams) -> None:
    if not isinstance(p.seed, int) or p.seed < 0:
        raise _fail("seed", p.seed, "a non-negative int")
    if p.n_fov < 1:
        raise _fail("n_fov", p.n_fov, "an int >= 1")
    if p.n_frames < 1:
        raise _fail("n_frames", p.n_frames, "an int >= 1")
    if len(p.frame_sizes) == 0 or any(
        len(s) != 2 or min(s) < 16 for s in p.frame_sizes
    ):
        raise _fail("frame_sizes", p.frame_sizes, "(Y, X) pairs with sides >= 16")
    if not 0 <= p.n_fl_channels <= len(FL_CHANNEL_NAMES):
        raise _fail("n_fl_channels", p.n_fl_channels, "an int in [0, 3]")
    if p.interval_min <= 0:
        raise _fail("interval_min", p.interval_min, "a positive number of minutes")
    if not 0 <= p.interval_jitter_min < p.interval_min / 2:
        raise _fail(
            "interval_jitter_min", p.interval_jitter_min, "0 <= jitter < interval/2"
        )
    if p.fov_delay_min < 0 or p.channel_delay_s < 0:
        raise _fail(
            "fov_delay_min/channel_delay_s",
            (p.fov_delay_min, p.channel_delay_s),
            "non-negative delays",
        )
    for fov, frame in p.dropped_frames:
        if not (0 <= fov < p.n_fov and 0 <= frame < p.n_frames):
            raise _fail(
                "dropped_frames",
                p.dropped_frames,
                f"(fov, frame) pairs with fov in [0, {p.n_fov}) and frame in "
                f"[0, {p.n_frames})",
            )
    d_min, d_max = p.cell_diameter_px
    if not 0 < d_min < d_max:
        raise _fail("cell_diameter_px", p.cell_diameter_px, "0 < d_min < d_max")
    if not 0 <= p.shape_irregularity < 0.2:
        raise _fail("shape_irregularity", p.shape_irregularity, "a value in [0, 0.2)")
    c_lo, c_hi = _size_constants(p)
    # A cell of aspect r fits the range with areas in [c_lo r, c_hi / r]; it must
    # be able to double its area: c_lo r <= c_hi / (2 r).
    r_limit = math.sqrt(c_hi / (2.0 * c_lo))
    if not 1.0 <= p.max_aspect <= r_limit:
        raise _fail(
            "max_aspect",
            p.max_aspect,
            f"1 <= max_aspect <= {r_limit:.3f}: a cell must be able to double its "
            "area between the diameter limits; widen cell_diameter_px or lower "
            "max_aspect",
        )
    _validate_rods(p)
    _validate_division_model(p)
    if p.phase_model not in PHASE_MODELS:
        raise _fail("phase_model", p.phase_model, f"one of {PHASE_MODELS}")
    if p.halo_kernel not in HALO_KERNELS:
        raise _fail("halo_kernel", p.halo_kernel, f"one of {HALO_KERNELS}")
    if not 0.0 < p.halo_strength <= 1.0:
        raise _fail("halo_strength", p.halo_strength, "a value in (0, 1]")
    if not 0.0 < p.ring_transmission <= 1.0:
        raise _fail("ring_transmission", p.ring_transmission, "a value in (0, 1]")
    if p.fl_psf_sigma_px is not None and not p.fl_psf_sigma_px > 0:
        raise _fail("fl_psf_sigma_px", p.fl_psf_sigma_px, "None or a positive number")
    checks: list[tuple[str, float, float, float]] = [
        ("edge_thickness", p.edge_thickness, 0.0, 1.0),
        ("coverage", p.coverage, 0.0, 0.6),
        ("cluster_fraction", p.cluster_fraction, 0.0, 1.0),
        ("persistence", p.persistence, 0.0, 0.999),
        ("phase_contrast", p.phase_contrast, 0.0, 0.8),
        ("vignetting", p.vignetting, 0.0, 0.9),
        ("fraction_nonexpressing", p.fraction_nonexpressing, 0.0, 1.0),
        ("fraction_constant", p.fraction_constant, 0.0, 1.0),
        ("hot_pixel_fraction", p.hot_pixel_fraction, 0.0, 0.01),
    ]
    for name, value, lo, hi in checks:
        if not lo <= value <= hi:
            raise _fail(name, value, f"a value in [{lo}, {hi}]")
    if p.fraction_nonexpressing + p.fraction_constant > 1.0:
        raise _fail(
            "fraction_nonexpressing + fraction_constant",
            p.fraction_nonexpressing + p.fraction_constant,
            "a sum <= 1",
        )
    positive = {
        "cluster_radius_px": p.cluster_radius_px,
        "doubling_time_h": p.doubling_time_h,
        "psf_sigma_px": p.psf_sigma_px,
        "halo_sigma_px": p.halo_sigma_px,
        "phase_level_adu": p.phase_level_adu,
        "camera_gain_adu_per_e": p.camera_gain_adu_per_e,
        "pixel_size_um": p.pixel_size_um,
        "fl_peak_adu": p.fl_peak_adu,
    }
    for name, value in positive.items():
        if not value > 0:
            raise _fail(name, value, "a positive number")
    non_negative = {
        "doubling_time_cv": p.doubling_time_cv,
        "division_size_cv": p.division_size_cv,
        "motility_px": p.motility_px,
        "rotation_deg": p.rotation_deg,
        "contact_gap_px": p.contact_gap_px,
        "drift_px": p.drift_px,
        "drift_jitter_px": p.drift_jitter_px,
        "focus_jitter": p.focus_jitter,
        "granule_density": p.granule_density,
        "illumination_mottle": p.illumination_mottle,
        "flicker_pc": p.flicker_pc,
        "flicker_fl": p.flicker_fl,
        "debris_per_mpx": p.debris_per_mpx,
        "camera_offset_adu": p.camera_offset_adu,
        "read_noise_adu": p.read_noise_adu,
        "fl_background_variation": p.fl_background_variation,
        "fl_background_drift": p.fl_background_drift,
        "fl_peak_spread": p.fl_peak_spread,
    }
    for name, value in non_negative.items():
        if not value >= 0:
            raise _fail(name, value, "a non-negative number")
    if len(p.autofluorescence_adu) != 3 or min(p.autofluorescence_adu) < 0:
        raise _fail(
            "autofluorescence_adu", p.autofluorescence_adu, "3 non-negative values"
        )
    if len(p.bleach_per_frame) != 3 or min(p.bleach_per_frame) < 0:
        raise _fail("bleach_per_frame", p.bleach_per_frame, "3 non-negative rates")
    lo_d, hi_d = p.mrna_decay_per_h
    lo_b, hi_b = p.protein_decay_per_h
    if not (0 < lo_b <= hi_b < lo_d <= hi_d):
        raise _fail(
            "mrna_decay_per_h/protein_decay_per_h",
            (p.mrna_decay_per_h, p.protein_decay_per_h),
            "0 < protein ranges < mRNA ranges (the model needs delta != beta)",
        )
    if p.onset_window[0] > p.onset_window[1]:
        raise _fail("onset_window", p.onset_window, "(low, high) with low <= high")


def _validate_rods(p: SynthParams) -> None:
    if p.cell_shape not in CELL_SHAPES:
        raise _fail("cell_shape", p.cell_shape, f"one of {CELL_SHAPES}")
    w_lo, w_hi = p.rod_width_px
    if not 0 < w_lo <= w_hi:
        raise _fail("rod_width_px", p.rod_width_px, "0 < w_min <= w_max")
    l_lo, l_hi = p.rod_length_px
    if not w_hi <= l_lo < l_hi:
        raise _fail(
            "rod_length_px",
            p.rod_length_px,
            f"w_max = {w_hi} <= l_min < l_max (a rod is longer than it is wide)",
        )
    if _rod_division_min(l_lo, w_lo) > l_hi:
        raise _fail(
            "rod_length_px",
            p.rod_length_px,
            f"l_max >= {_rod_division_min(l_lo, w_lo):.3f}: a rod must be able to "
            "grow to a length whose two daughters are at least l_min long; raise "
            "l_max or lower l_min",
        )
    if not p.rod_domain_px > 0:
        raise _fail("rod_domain_px", p.rod_domain_px, "a positive number")


def _validate_division_model(p: SynthParams) -> None:
    if p.division_model not in DIVISION_MODELS:
        raise _fail("division_model", p.division_model, f"one of {DIVISION_MODELS}")
    for name, lo_min in (("mitosis_frames", 1), ("sister_contact_frames", 0)):
        value = getattr(p, name)
        if (
            len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or not lo_min <= value[0] <= value[1]
        ):
            raise _fail(name, value, f"(low, high) ints with {lo_min} <= low <= high")
    if not 0.0 < p.mitosis_area_factor <= 1.0:
        raise _fail("mitosis_area_factor", p.mitosis_area_factor, "a value in (0, 1]")
    if not p.mitosis_thickness >= 1.0:
        raise _fail("mitosis_thickness", p.mitosis_thickness, "a number >= 1")


# -------------------------------------------------------------------------- presets
_PRESET_VALUES: Final[dict[str, dict[str, Any]]] = {
    # Tiny movie for unit tests: two small FOVs of different shapes, accelerated
    # growth (4 h doubling) so that 8 frames contain divisions.
    "easy": {
        "n_fov": 2,
        "n_frames": 8,
        "frame_sizes": ((128, 160), (144, 128)),
        "cell_diameter_px": (15.0, 36.0),
        "max_aspect": 1.4,
        "coverage": 0.15,
        "cluster_fraction": 0.2,
        "cluster_radius_px": 20.0,
        "doubling_time_h": 4.0,
        "motility_px": 1.0,
        "drift_px": 0.5,
        "debris_per_mpx": 0.0,
        "hot_pixel_fraction": 0.0,
    },
    # Demonstration data: 3 FOVs (one <= 512 px, one > 512 px, one non-square),
    # sparse cells 15-50 px with a few colonies, a 20 h cell cycle (about a fifth
    # of the cells divide in 4 h), drift, one dropped frame.
    "demo": {},
    # Benchmark difficulty (algorithms.md §8.2 "standard"): 4 FOVs x 60 frames x
    # 512², crowded colonies with many touching cells, 10 h of growth, faster
    # cells, stronger drift and the full noise model.
    "standard": {
        "n_fov": 4,
        "n_frames": 60,
        "frame_sizes": ((512, 512),),
        "coverage": 0.3,
        "cluster_fraction": 0.6,
        "cluster_radius_px": 45.0,
        "doubling_time_h": 18.0,
        "motility_px": 1.5,
        "drift_px": 0.5,
    },
    # Small cells (issue 13): semi-axes 6-13 px (12-26 px across) in 1024²
    # frames, about 80 cells per FOV at the start, the standard optics,
    # motion and growth.
    "small": {
        "n_fov": 2,
        "n_frames": 40,
        "frame_sizes": ((1024, 1024),),
        "cell_diameter_px": (12.0, 26.0),
        "max_aspect": 1.3,
        "coverage": 0.018,
        "cluster_fraction": 0.3,
        "cluster_radius_px": 25.0,
        "doubling_time_h": 18.0,
        "motility_px": 1.5,
        "drift_px": 0.5,
    },
    # Dense rod-shaped bacteria (E. coli-like): capsules 15-25 px wide and
    # 40-90 px long, packed side by side in large colonies with aligned domains,
    # dividing end to end every ~2 h at 5 min per frame; dark, nearly flat
    # bodies (edge_thickness 0.6) with a bright halo and a weaker shade-off
    # (halo_strength 0.7) than the blob presets, little texture.
    "rods": {
        "n_fov": 2,
        "n_frames": 20,
        "frame_sizes": ((512, 512), (448, 576)),
        "interval_min": 5.0,
        "cell_shape": "rod",
        "cell_diameter_px": (15.0, 90.0),
        "shape_irregularity": 0.0,
        "coverage": 0.5,
        "cluster_fraction": 0.95,
        "cluster_radius_px": 110.0,
        "doubling_time_h": 2.0,
        "motility_px": 0.3,
        "persistence": 0.5,
        "rotation_deg": 0.5,
        "drift_px": 0.3,
        "edge_thickness": 0.6,
        "halo_sigma_px": 6.0,
        "halo_strength": 0.7,
        "granule_density": 0.004,
        "debris_per_mpx": 10.0,
    },
    # Nucleus-like round cells (algorithms.md §4.8): 4 FOVs x 40 frames x 512²,
    # mothers ~50 px across that round up for 1-3 frames before they split into
    # two round daughters held in contact for 3-6 frames, 10 h doubling.
    "round": {
        "n_fov": 4,
        "n_frames": 40,
        "frame_sizes": ((512, 512),),
        "cell_diameter_px": (30.0, 56.0),
        "max_aspect": 1.2,
        "shape_irregularity": 0.04,
        "coverage": 0.25,
        "cluster_fraction": 0.5,
        "cluster_radius_px": 50.0,
        "doubling_time_h": 10.0,
        "motility_px": 1.0,
        "division_model": "round",
    },
}
PRESETS: Final = tuple(_PRESET_VALUES)
_BACKGROUND_AUTO_BYTES: Final = 256 * 2**20


def _default_dropped(
    name: str, n_fov: int, n_frames: int
) -> tuple[tuple[int, int], ...]:
    if n_frames < 3:
        return ()
    if name == "standard" and n_fov > 1:
        return ((1, n_frames // 3),)
    return ((0, n_frames // 2),)


def preset(name: str, **overrides: Any) -> SynthParams:
    """Return the parameters of a named difficulty preset.

    Parameters
    ----------
    name : {'easy', 'demo', 'standard', 'small', 'rods', 'round'}
        Preset name (see Notes).
    **overrides
        Field values replacing the preset's (any :class:`SynthParams` field). When
        ``dropped_frames`` is not given it is derived from the final ``n_fov`` and
        ``n_frames`` (frame ``T // 2`` of FOV 0; FOV 1, frame ``T // 3`` for
        ``standard``; none when ``T < 3``). When ``write_background`` is not given
        it is true only if the float32 background stacks of all FOVs and
        channels take at most 256 MiB (so benchmark-sized data skip them).

    Returns
    -------
    SynthParams
        The validated parameters, with ``preset`` set to ``name``.

    Raises
    ------
    ValueError
        If ``name`` is unknown, an override names no field, or a value is invalid.

    Notes
    -----
    ``easy``: 2 FOVs (128x160, 144x128) x 8 frames, cells 15-36 px, 4 h doubling.
    ``demo``: 3 FOVs (512², 576x640, 384x448) x 24 frames at 10 min, cells 15-50
    px at 12 % coverage, 20 h doubling, 0.4 px/frame drift, one dropped frame.
    ``standard``: 4 FOVs x 60 frames x 512², 30 % coverage in colonies, 18 h
    doubling, 1.5 px/frame motility, 0.5 px/frame drift. ``small``: 2 FOVs x
    40 frames x 1024², cells 12-26 px across (semi-axes 6-13 px), about 80
    per FOV at the start, otherwise as ``standard``.
    ``rods``: dense rod-shaped bacteria (``cell_shape='rod'``): 2 FOVs (512²,
    448x576) x 20 frames at 5 min, rods 15-25 px wide and 40-90 px long, 50 %
    coverage, 95 % of it in colonies of radius ~110 px made of aligned domains
    of rods packed side by side, 2 h doubling with division end to end, little
    motion (0.3 px/frame), phase contrast with flat dark bodies
    (``edge_thickness`` 0.6), a 6-px halo at 0.7 strength and bright lines
    between touching rods; one dropped frame (FOV 0, frame 10).
    ``round``: nucleus-like cells, 4 FOVs x 40 frames x 512², round cells 30-56
    px across (aspect <= 1.2) at 25 % coverage, half in colonies, 10 h
    doubling, with ``division_model='round'``: a mother ~50 px across rounds
    up for 1-3 frames (a disk of 65 % of her area, twice as thick: darker,
    with a stronger halo), then splits into two round daughters that stay in
    contact for 3-6 frames.
    """
    if name not in _PRESET_VALUES:
        raise ValueError(
            f"preset name={name!r} is unknown: choose one of {', '.join(PRESETS)}."
        )
    valid = {f.name for f in dataclasses.fields(SynthParams)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ValueError(
            f"preset overrides {unknown!r} are not SynthParams fields: valid fields "
            f"are {', '.join(sorted(valid))}."
        )
    values: dict[str, Any] = {**_PRESET_VALUES[name], **overrides, "preset": name}
    n_fov = int(values.get("n_fov", SynthParams.n_fov))
    n_frames = int(values.get("n_frames", SynthParams.n_frames))
    if "dropped_frames" not in overrides:
        values["dropped_frames"] = _default_dropped(name, n_fov, n_frames)
    if "write_background" not in overrides:
        sizes = values.get("frame_sizes", SynthParams.frame_sizes)
        n_fl = int(values.get("n_fl_channels", SynthParams.n_fl_channels))
        nbytes = sum(
            4
            * n_fl
            * n_frames
            * int(sizes[f % len(sizes)][0])
            * int(sizes[f % len(sizes)][1])
            for f in range(n_fov)
        )
        values["write_background"] = nbytes <= _BACKGROUND_AUTO_BYTES
    return SynthParams(**values)


# ------------------------------------------------------------------ simple queries
def channel_names(params: SynthParams) -> list[str]:
    """Return the channel names in file order: phase first, then fluorescence.

    Parameters
    ----------
    params : SynthParams
        Generator parameters.

    Returns
    -------
    list of str
        ``["Phase", "GFP", ...]`` with ``1 + n_fl_channels`` entries.
    """
    return [PHASE_CHANNEL_NAME, *FL_CHANNEL_NAMES[: params.n_fl_channels]]


def fov_shape(params: SynthParams, fov: int) -> tuple[int, int]:
    """Return the frame size ``(Y, X)`` in px of one FOV.

    Parameters
    ----------
    params : SynthParams
        Generator parameters.
    fov : int
        FOV index in ``[0, n_fov)``.

    Returns
    -------
    (int, int)
        Rows and columns.

    Raises
    ------
    IndexError
        If ``fov`` is out of range.
    """
    _check_fov(params, fov)
    y, x = params.frame_sizes[fov % len(params.frame_sizes)]
    return int(y), int(x)


def _check_fov(params: SynthParams, fov: int) -> None:
    if not 0 <= fov < params.n_fov:
        raise IndexError(
            f"fov={fov!r} is out of range: only {params.n_fov} FOVs (0 to "
            f"{params.n_fov - 1}) are generated."
        )


def frame_times(params: SynthParams, fov: int, *, channel: int = 0) -> F64:
    """Return the acquisition time of every frame of one FOV and channel.

    Parameters
    ----------
    params : SynthParams
        Generator parameters.
    fov : int
        FOV index.
    channel : int, optional
        Channel index in the file (0 = phase). Channel ``c`` is acquired
        ``c * channel_delay_s`` seconds after the phase plane.

    Returns
    -------
    (T,) ndarray of float64
        Minutes since the start of the acquisition, strictly increasing. Each value
        is a whole number of milliseconds divided by 60, so that it survives a
        round trip through OME ``DeltaT`` seconds written with 3 decimals.

    Raises
    ------
    IndexError
        If ``fov`` or ``channel`` is out of range.
    """
    _check_fov(params, fov)
    if not 0 <= channel <= params.n_fl_channels:
        raise IndexError(
            f"channel={channel!r} is out of range: the file has "
            f"{params.n_fl_channels + 1} channels."
        )
    seconds = frame_times_s(params, fov, channel=channel)
    return seconds / 60.0


def frame_times_s(params: SynthParams, fov: int, *, channel: int = 0) -> F64:
    """Return the plane times of :func:`frame_times` in seconds (ms resolution).

    Parameters
    ----------
    params : SynthParams
        Generator parameters.
    fov : int
        FOV index.
    channel : int, optional
        Channel index in the file (0 = phase).

    Returns
    -------
    (T,) ndarray of float64
        Seconds since the start, rounded to milliseconds.
    """
    rng = np.random.default_rng([params.seed, fov, _STREAM_TIMES])
    k = np.arange(params.n_frames, dtype=np.float64)
    jitter = rng.uniform(0.0, params.interval_jitter_min, params.n_frames)
    if fov == 0:
        # The experiment starts with FOV 0's first phase plane, so that the
        # truth is on the pipeline's clock (earliest PC plane = 0, §1.4).
        jitter[0] = 0.0
    minutes = k * params.interval_min + fov * params.fov_delay_min + jitter
    seconds = minutes * 60.0 + channel * params.channel_delay_s
    return np.round(seconds, 3)


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


# ------------------------------------------------------------------ expression
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


# -------------------------------------------------------------------- frame output
@dataclass(frozen=True)
class SynthFrame:
    """One rendered frame of one FOV with its truth.

    Parameters
    ----------
    fov : int
        FOV index.
    frame : int
        Frame index.
    time_min : float
        Time of the phase plane, minutes.
    dropped : bool
        Whether the frame is a dropped (all-zero) frame.
    images : tuple of (Y, X) ndarray of uint16
        Camera images in file channel order (phase, then fluorescence).
    expected : tuple of (Y, X) ndarray of float32
        Noise-free expected counts of each channel (the Poisson mean plus offset).
    fl_signal : tuple of (Y, X) ndarray of float32
        Noise-free, background-free fluorescence of each fluorescence channel.
    fl_background : tuple of (Y, X) ndarray of float32
        True background (offset + autofluorescence, gain applied) of each
        fluorescence channel.
    labels : (Y, X) ndarray of uint32
        Truth instance labels.
    cell : (n,) ndarray of int64
        Ids present in ``labels``, ascending.
    area : (n,) ndarray of int64
        Pixel count of each present cell.
    position_x, position_y : (n,) ndarray of float64
        Centroid column and row of each present cell, px.
    true_total : (n_fl, n) ndarray of float64
        Light each cell emits into the field: its fluorescence concentration
        times its area coverage of each pixel, times the excitation profile,
        lamp gain and bleaching, summed over the pixels of the frame, before
        the PSF (the blur moves this light, it does not remove it).
    true_mask_total : (n_fl, n) ndarray of float64
        Sum of ``fl_signal`` (after the PSF) over each cell's label pixels.
    """

    fov: int
    frame: int
    time_min: float
    dropped: bool
    images: tuple[U16, ...]
    expected: tuple[F32, ...]
    fl_signal: tuple[F32, ...]
    fl_background: tuple[F32, ...]
    labels: U32
    cell: I64
    area: I64
    position_x: F64
    position_y: F64
    true_total: F64
    true_mask_total: F64


# ------------------------------------------------------------------ the simulation
class FovSimulation:
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
        # 'round' division model: uid -> (area before rounding up, frames left
        # rounded), and smaller sister uid -> [other sister, contact frames left].
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
        ny, nx = self.shape
        t_count = self.n_frames
        d_max = p.cell_diameter_px[1]
        if p.cell_shape == "rod":
            d_max = max(d_max, p.rod_length_px[1])
        c_lo, c_hi = _size_constants(p)

        # Stage drift: a constant velocity in a random direction plus jitter.
        heading = rng.uniform(0.0, 2.0 * math.pi)
        step = np.zeros((t_count, 2))
        if t_count > 1:
            step[1:] = p.drift_px * np.array([math.sin(heading), math.cos(heading)])
            step[1:] += rng.normal(0.0, p.drift_jitter_px, (t_count - 1, 2))
        self.drift = np.cumsum(step, axis=0)

        # The simulated world: every position the field visits, plus a margin in
        # which cells wait to wander in.
        margin = 1.2 * d_max + 10.0
        y_lo = float(self.drift[:, 0].min()) - margin
        y_hi = float(self.drift[:, 0].max()) + ny - 1 + margin
        x_lo = float(self.drift[:, 1].min()) - margin
        x_hi = float(self.drift[:, 1].max()) + nx - 1 + margin
        world = (y_lo, y_hi, x_lo, x_hi)
        inner = (y_lo + margin, y_hi - margin, x_lo + margin, x_hi - margin)
        world_area = (y_hi - y_lo) * (x_hi - x_lo)

        n_debris = rng.poisson(p.debris_per_mpx * world_area / 1e6)
        amp = rng.uniform(0.4, 1.2, n_debris) * np.where(
            rng.random(n_debris) < 0.3, -1.0, 1.0
        )
        self._debris = np.column_stack(
            [rng.uniform(y_lo, y_hi, n_debris), rng.uniform(x_lo, x_hi, n_debris), amp]
        )

        if p.cell_shape == "rod":
            state = self._seed_rods(rng, world, world_area)
        else:
            state = self._seed_cells(rng, world, world_area, c_lo, c_hi)
        tid_of: dict[int, int] = {}
        rows: dict[int, list[int]] = {}  # tid -> [parent, first, last]
        next_tid = 1

        for t in range(t_count):
            if t > 0:
                state, visible = self._step(rng, state, t, world, inner, c_lo, c_hi)
            else:
                # Seeding keeps the geometric gap, so no pixel is claimed twice;
                # should it happen, the later cell is not placed.
                clash, visible = self._raster_check(state, t)
                while clash.any():
                    state = state.take(
                        np.arange(len(state)) != np.flatnonzero(clash)[-1]
                    )
                    clash, visible = self._raster_check(state, t)
            prev_tid = tid_of
            tid_of = {}
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
        ids = np.arange(1, next_tid, dtype=np.int64)
        table = np.array([rows[int(i)] for i in ids], dtype=np.int64).reshape(-1, 3)
        self.lineage = pd.DataFrame(
            {
                "cell": ids,
                "parent": table[:, 0],
                "first_frame": table[:, 1],
                "last_frame": table[:, 2],
            }
        )

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
            cand = _State(
                np.array([uid]),
                np.array([cx]),
                np.array([cy]),
                np.array([area]),
                np.array([rng.uniform(0.0, 2.0 * math.pi)]),
                np.array([rng.normal(0.0, speed)]),
                np.array([rng.normal(0.0, speed)]),
            )
            inside = y_lo <= cy <= y_hi and x_lo <= cx <= x_hi
            if inside and self._fits(state, cand, tree, rb_max):
                state = _State.concat([state, cand])
                covered += area
                geo = _Geometry(self._static, state.uid, state.area)
                rb_max = float(geo.rb.max())
                tree = cKDTree(np.column_stack([state.x, state.y]))
            else:
                self._discard_last(n_before)
        return state

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

    # ------------------------------------------------------------------- rods
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
        uids, xs, ys, angs = [], [], [], []
        for sign in (1.0, -1.0):
            uids.append(
                self._new_rod(
                    rng,
                    width=width,
                    t=t,
                    mother=mother,
                    expr=st.expr[mother].copy(),
                )
            )
            xs.append(float(cur.x[k]) + sign * off * ux)
            ys.append(float(cur.y[k]) + sign * off * uy)
            angs.append(axis + rng.normal(0.0, 0.02))
        return _State(
            np.array(uids, dtype=np.int64),
            np.array(xs),
            np.array(ys),
            np.array([area_d, area_d]),
            np.array(angs),
            np.full(2, cur.vx[k]),
            np.full(2, cur.vy[k]),
        )

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
            cand = _State(
                np.array([uid]),
                np.array([cx]),
                np.array([cy]),
                np.array([area]),
                np.array([rng.uniform(0.0, 2.0 * math.pi)]),
                np.array([rng.normal(0.0, speed)]),
                np.array([rng.normal(0.0, speed)]),
            )
            if self._fits(state, cand, tree, rb_max):
                state = _State.concat([state, cand])
                covered += area
                geo = _Geometry(self._static, state.uid, state.area)
                rb_max = float(geo.rb.max())
                tree = cKDTree(np.column_stack([state.x, state.y]))
            else:
                self._discard_last(n_before)
        return state

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
        p = self.params
        st = self._static
        gap = p.contact_gap_px
        dt_h = float(self.times_min[t] - self.times_min[t - 1]) / 60.0
        y_lo, y_hi, x_lo, x_hi = world

        # Leaving the simulated world (far outside the field): the cell is gone.
        keep = (prev.y >= y_lo) & (prev.y <= y_hi) & (prev.x >= x_lo) & (prev.x <= x_hi)
        n_gone = int((~keep).sum())
        prev = prev.take(keep)

        cur = prev.copy()
        td = np.array([st.td_h[u] for u in cur.uid])
        cur.area = cur.area * np.exp2(dt_h / td)
        a_div = np.array([st.a_div[u] for u in cur.uid])
        dividing = cur.area >= a_div
        round_model = p.division_model == "round"
        if round_model:
            prev_mitosis = dict(self._mitosis)
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

        # Division along the major axis: two touching daughters of half the area.
        origin = np.arange(len(cur))  # index into prev (-1 for spawned cells)
        parts = [cur.take(~dividing)]
        part_origin = [origin[~dividing]]
        for k in np.flatnonzero(dividing):
            if p.cell_shape == "rod":
                parts.append(self._divide_rod(rng, cur, int(k), t))
                part_origin.append(np.full(2, k))
                continue
            mother = int(cur.uid[k])
            area_d = float(cur.area[k]) / 2.0
            if round_model:
                # Half the area the mother had before she rounded up.
                area_d = self._mitosis[mother][0] / 2.0
            axis = float(cur.angle[k]) + rng.normal(0.0, 0.15)
            ux, uy = math.cos(axis), math.sin(axis)
            aspect_hi = min(p.max_aspect, area_d / c_lo, c_hi / (1.7 * area_d))
            uids = []
            for _ in range(2):
                uids.append(
                    self._new_entity(
                        rng,
                        area_birth=area_d,
                        aspect_hi=aspect_hi,
                        c_lo=c_lo,
                        c_hi=c_hi,
                        t=t,
                        mother=mother,
                        expr=st.expr[mother].copy(),
                    )
                )
            xs, ys, angs = [], [], []
            for sign, uid in zip((1.0, -1.0), uids, strict=True):
                ang = axis + math.pi / 2.0 + rng.normal(0.0, 0.2)
                a_, b_ = _semi_axes(area_d, st.aspect[uid])
                # Radius of the daughter towards its sister.
                rel = math.atan2(-sign * uy, -sign * ux) - ang
                r_in = float(
                    _radius(
                        np.array([math.cos(rel)]),
                        np.array([math.sin(rel)]),
                        a_,
                        b_,
                        list(st.eps[uid]),
                        list(st.phi[uid]),
                    )[0]
                )
                off = r_in + gap / 2.0 + 0.05
                xs.append(float(cur.x[k]) + sign * off * ux)
                ys.append(float(cur.y[k]) + sign * off * uy)
                angs.append(ang)
            parts.append(
                _State(
                    np.array(uids, dtype=np.int64),
                    np.array(xs),
                    np.array(ys),
                    np.array([area_d, area_d]),
                    np.array(angs),
                    np.full(2, cur.vx[k]),
                    np.full(2, cur.vy[k]),
                )
            )
            part_origin.append(np.full(2, k))
            if round_model:
                lo, hi = p.sister_contact_frames
                self._sisters[min(uids)] = [max(uids), int(rng.integers(lo, hi + 1))]

        # Influx: every cell that left the world is replaced by one entering from
        # the margin band, outside every position of the field.
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
                    parts.append(
                        _State(
                            np.array([uid]),
                            np.array([cx]),
                            np.array([cy]),
                            np.array([area]),
                            np.array([rng.uniform(0.0, 2.0 * math.pi)]),
                            np.array([rng.normal(0.0, speed)]),
                            np.array([rng.normal(0.0, speed)]),
                        )
                    )
                    part_origin.append(np.array([-1]))
                    break
                self._discard_last(n_before)

        new = _State.concat(parts)
        org = np.concatenate(part_origin)
        frozen = np.zeros(len(new), dtype=bool)
        if round_model:
            self._pull_sisters(new)
        # Resolve contacts; cells that cannot be placed keep their previous state
        # (contact inhibition: no move, no growth, division postponed). Reverting
        # only ever grows the frozen set, and the previous frame was valid, so the
        # loop ends with a valid configuration.
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

    def _advance_mitosis(
        self, rng: np.random.Generator, prev: _State, cur: _State, ripe: B
    ) -> B:
        """Advance the mitotic rounding ('round' model); return who splits now.

        ``cur`` is ``prev`` grown by one frame (same order). A cell that has
        reached its division area (``ripe``) rounds up: its footprint shrinks to
        ``mitosis_area_factor`` of its area and it stays so for a drawn number of
        frames, without growing; then it splits.
        """
        p = self.params
        lo, hi = p.mitosis_frames
        splits = np.zeros(len(cur), dtype=bool)
        for k in range(len(cur)):
            uid = int(cur.uid[k])
            entry = self._mitosis.get(uid)
            if entry is not None:
                cur.area[k] = prev.area[k]
                if entry[1] == 0:
                    splits[k] = True
                else:
                    self._mitosis[uid] = (entry[0], entry[1] - 1)
            elif ripe[k]:
                n = int(rng.integers(lo, hi + 1))
                self._mitosis[uid] = (float(cur.area[k]), n - 1)
                cur.area[k] = cur.area[k] * p.mitosis_area_factor
        self._static.rounded = set(self._mitosis)
        return splits

    def _sister_pairs(self, state: _State) -> list[tuple[int, int, list[int]]]:
        """Index pairs ``(i, j, entry)`` of sisters still held in contact."""
        if not self._sisters:
            return []
        pos = {int(u): k for k, u in enumerate(state.uid)}
        out = []
        for u, entry in sorted(self._sisters.items()):
            i, j = pos.get(u), pos.get(entry[0])
            if i is not None and j is not None and entry[1] > 0:
                out.append((i, j, entry))
        return out

    def _move_sisters_together(self, cur: _State) -> None:
        """Give sisters held in contact their mean velocity ('round' model)."""
        for i, j, _ in self._sister_pairs(cur):
            vx = 0.5 * (cur.vx[i] + cur.vx[j])
            vy = 0.5 * (cur.vy[i] + cur.vy[j])
            cur.vx[i] = cur.vx[j] = vx
            cur.vy[i] = cur.vy[j] = vy

    def _pull_sisters(self, new: _State) -> None:
        """Move sisters held in contact back to touching distance ('round' model).

        Each pair closes the gap between its outlines along the line through
        the centres beyond ``contact_gap_px``, half each; the contact
        resolution that follows removes any overlap. Counts down the contact.
        """
        pairs = self._sister_pairs(new)
        if not pairs:
            return
        gap = self.params.contact_gap_px
        geo = _Geometry(self._static, new.uid, new.area)
        for i, j, entry in pairs:
            entry[1] -= 1
            dx, dy = new.x[j] - new.x[i], new.y[j] - new.y[i]
            dist = math.hypot(dx, dy)
            if dist < 1e-9:
                continue
            ux, uy = dx / dist, dy / dist
            reach = 0.0
            for k, (vx, vy) in ((i, (ux, uy)), (j, (-ux, -uy))):
                rel = math.atan2(vy, vx) - float(new.angle[k])
                reach += float(
                    _radius(
                        np.array([math.cos(rel)]),
                        np.array([math.sin(rel)]),
                        geo.a[k],
                        geo.b[k],
                        list(geo.eps[k]),
                        list(geo.phi[k]),
                    )[0]
                )
            surplus = dist - reach - gap - 0.05
            if surplus > 0:
                new.x[i] += 0.5 * surplus * ux
                new.y[i] += 0.5 * surplus * uy
                new.x[j] -= 0.5 * surplus * ux
                new.y[j] -= 0.5 * surplus * uy

    def _restore_mitosis(self, uids: I64, before: dict[int, tuple[float, int]]) -> None:
        """Give cells restored to their previous state their previous mitosis."""
        for uid in uids.tolist():
            if uid in before:
                self._mitosis[uid] = before[uid]
            else:
                self._mitosis.pop(uid, None)
        self._static.rounded = set(self._mitosis)

    def _prune_mitosis(self, alive: I64) -> None:
        """Forget the mitosis and contact records of cells no longer simulated."""
        live = set(alive.tolist())
        self._mitosis = {u: e for u, e in self._mitosis.items() if u in live}
        self._sisters = {
            u: e
            for u, e in self._sisters.items()
            if u in live and e[0] in live and e[1] > 0
        }
        self._static.rounded = set(self._mitosis)

    def _revert(
        self, new: _State, org: I64, frozen: B, bad: B, prev: _State
    ) -> tuple[_State, I64, B]:
        """Return the state with the ``bad`` cells restored from ``prev``."""
        st = self._static
        drop = np.zeros(len(new), dtype=bool)
        restore: list[int] = []
        for k in np.flatnonzero(bad):
            o = int(org[k])
            if o < 0:
                drop[k] = True  # a newcomer that does not fit: it never came
                continue
            if st.birth_frame[int(new.uid[k])] == self._current_t and st.mother[
                int(new.uid[k])
            ] == int(prev.uid[o]):
                # A daughter: cancel the division, drop both daughters.
                drop |= org == o
                restore.append(o)
            else:
                new.x[k], new.y[k] = prev.x[o], prev.y[o]
                new.area[k], new.angle[k] = prev.area[o], prev.angle[o]
                new.vx[k] = new.vy[k] = 0.0
                frozen[k] = True
        keep = ~drop
        parts = [new.take(keep)]
        origins = [org[keep]]
        frz = [frozen[keep]]
        for o in sorted(set(restore)):
            m = prev.take(np.array([o]))
            m.vx[:] = 0.0
            m.vy[:] = 0.0
            parts.append(m)
            origins.append(np.array([o]))
            frz.append(np.array([True]))
        return _State.concat(parts), np.concatenate(origins), np.concatenate(frz)

    @property
    def _current_t(self) -> int:
        return len(self._snapshots)

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

    # ------------------------------------------------------------ render pass
    def frames(self) -> Iterator[SynthFrame]:
        """Render the frames in order, one at a time.

        Yields
        ------
        SynthFrame
            Frame ``t`` for ``t = 0 .. T-1``.
        """
        for t in range(self.n_frames):
            yield self.render(t)

    def render(self, t: int) -> SynthFrame:
        """Render frame ``t`` (images, noise-free parts and truth).

        Parameters
        ----------
        t : int
            Frame index in ``[0, T)``.

        Returns
        -------
        SynthFrame
            The rendered frame.

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
        p = self.params
        opt = self._optics
        ny, nx = self.shape
        n_fl = p.n_fl_channels
        time_min = float(self.times_min[t])
        if t in self.dropped_frames:
            zero_u = np.zeros((ny, nx), dtype=np.uint16)
            zero_f = np.zeros((ny, nx), dtype=np.float32)
            return SynthFrame(
                fov=self.fov,
                frame=t,
                time_min=time_min,
                dropped=True,
                images=tuple(zero_u.copy() for _ in range(n_fl + 1)),
                expected=tuple(zero_f.copy() for _ in range(n_fl + 1)),
                fl_signal=tuple(zero_f.copy() for _ in range(n_fl)),
                fl_background=tuple(zero_f.copy() for _ in range(n_fl)),
                labels=np.zeros((ny, nx), dtype=np.uint32),
                cell=np.zeros(0, dtype=np.int64),
                area=np.zeros(0, dtype=np.int64),
                position_x=np.zeros(0),
                position_y=np.zeros(0),
                true_total=np.zeros((n_fl, 0)),
                true_mask_total=np.zeros((n_fl, 0)),
            )

        snap = self._snapshots[t]
        st = self._static
        pad = opt.pad
        cy_all = snap.y - self.drift[t, 0]
        cx_all = snap.x - self.drift[t, 1]
        canvas = (ny + 2 * pad, nx + 2 * pad)
        thick = np.zeros(canvas, dtype=np.float32)
        grains = np.zeros(canvas, dtype=np.float32)
        conc = np.zeros((n_fl, *canvas), dtype=np.float32)
        labels = np.zeros((ny, nx), dtype=np.uint32)
        # Light each cell emits into the field, before the PSF, per channel
        # (excitation profile included; lamp gain and bleaching applied below).
        emitted_sum = np.zeros((n_fl, self.max_id + 1))
        aspect = np.array([st.aspect[u] for u in snap.uid], dtype=np.float64)
        if snap.rounded:
            aspect[[int(u) in snap.rounded for u in snap.uid]] = 1.0
        a_all, b_all = _semi_axes(snap.area, aspect)
        a_all, b_all, rod_all = _with_rods(st, snap.uid, snap.area, a_all, b_all)
        for k in range(len(snap.uid)):
            uid = int(snap.uid[k])
            eps, phi = st.eps[uid], st.phi[uid]
            rounded = uid in snap.rounded
            if rounded:
                eps = np.zeros_like(eps)
            a, b = float(a_all[k]), float(b_all[k])
            rb = a * (1.0 + float(np.abs(eps).sum()))
            cx, cy = float(cx_all[k]), float(cy_all[k])
            y0, y1 = _bbox(cy, rb + 1.0, -pad, ny - 1 + pad)
            x0, x1 = _bbox(cx, rb + 1.0, -pad, nx - 1 + pad)
            if y0 > y1 or x0 > x1:
                continue
            ys = np.arange(y0, y1 + 1, dtype=np.float64)
            xs = np.arange(x0, x1 + 1, dtype=np.float64)
            angle = float(snap.angle[k])
            rod = bool(rod_all[k])
            rho, r = _footprint(cx, cy, a, b, angle, eps, phi, ys, xs, rod)
            # Area coverage of each pixel from the distance to the outline.
            cover = np.clip(r - rho + 0.5, 0.0, 1.0)
            if rod:
                s = _rod_axis_fraction(cx, cy, a, b, angle, ys, xs)
            else:
                s = np.minimum(rho / r, 1.0)
            if rounded:
                # Mitotic rounding: a thick sphere-like body without a nucleus
                # (the envelope has broken down).
                body = cover * (p.mitosis_thickness * np.sqrt(1.0 - s * s))
            else:
                dome = p.edge_thickness + (1.0 - p.edge_thickness) * np.sqrt(
                    1.0 - s * s
                )
                nuc_r = st.nucleus[uid] * r
                in_nuc = np.clip((nuc_r - rho) / 2.0 + 0.5, 0.0, 1.0)
                body = cover * dome * (1.0 - _NUCLEUS_DIM * in_nuc)
            win = (slice(y0 + pad, y1 + 1 + pad), slice(x0 + pad, x1 + 1 + pad))
            thick[win] += body.astype(np.float32)
            tid = int(snap.tid[k])
            if n_fl:
                c_k = _expression(st.expr[uid][:n_fl], time_min)
                for c in range(n_fl):
                    if c_k[c] > 0:
                        conc[c][win] += (cover * c_k[c]).astype(np.float32)
                if tid:
                    _add_emitted(emitted_sum, tid, c_k, cover, opt, win, pad, (ny, nx))
            if tid:
                fy0, fy1 = max(y0, 0), min(y1, ny - 1)
                fx0, fx1 = max(x0, 0), min(x1, nx - 1)
                if fy0 <= fy1 and fx0 <= fx1:
                    sub = (rho <= r)[fy0 - y0 : fy1 - y0 + 1, fx0 - x0 : fx1 - x0 + 1]
                    lab = labels[fy0 : fy1 + 1, fx0 : fx1 + 1]
                    lab[sub] = tid
            # Granules move and turn with the cell and stretch with its axes.
            g = st.granules[uid]
            if len(g):
                gu, gv = g[:, 0] * a, g[:, 1] * b
                ca, sa = math.cos(angle), math.sin(angle)
                gx = cx + gu * ca - gv * sa + pad
                gy = cy + gu * sa + gv * ca + pad
                _splat(grains, gy, gx, g[:, 2] * 2.0 * math.pi * _GRANULE_SIGMA_PX**2)
        if len(self._debris):
            dy = self._debris[:, 0] - self.drift[t, 0] + pad
            dx = self._debris[:, 1] - self.drift[t, 1] + pad
            _splat(grains, dy, dx, self._debris[:, 2] * 2.0 * math.pi * 1.5**2)

        thick += ndimage.gaussian_filter(grains, _GRANULE_SIGMA_PX, mode="constant")
        del grains
        crop = (slice(pad, pad + ny), slice(pad, pad + nx))
        transmitted = _phase_image(
            thick, p, p.psf_sigma_px * float(opt.focus[t]), opt.halo_kernel
        )[crop]
        del thick
        pc_above = (opt.gain_pc[t] * p.phase_level_adu) * opt.illum_pc * transmitted
        noise = np.random.default_rng([p.seed, self.fov, _STREAM_NOISE, t])
        expected = [(opt.offset + pc_above).astype(np.float32)]
        images = [opt.camera(pc_above, noise)]
        del pc_above, transmitted

        signals: list[F32] = []
        backgrounds: list[F32] = []
        fl_psf = p.psf_sigma_px if p.fl_psf_sigma_px is None else p.fl_psf_sigma_px
        for c in range(n_fl):
            bleach = math.exp(-p.bleach_per_frame[c] * t)
            emitted = conc[c] * opt.excite_canvas[c]
            blurred = ndimage.gaussian_filter(emitted, fl_psf, mode="constant")
            del emitted
            gain = float(opt.gain_fl[c, t]) * bleach
            emitted_sum[c] *= gain
            signal = (blurred[crop] * np.float32(gain)).astype(np.float32)
            del blurred
            auto = opt.autofluorescence(c, time_min) * np.float32(opt.gain_fl[c, t])
            above = auto + signal
            expected.append((opt.offset + above).astype(np.float32))
            images.append(opt.camera(above, noise))
            backgrounds.append((opt.offset + auto).astype(np.float32))
            signals.append(signal)
            del above, auto
        del conc

        flat = labels.ravel()
        n_bins = self.max_id + 1
        cnt = np.bincount(flat, minlength=n_bins)
        ids = np.flatnonzero(cnt[1:]) + 1
        area = cnt[ids].astype(np.int64)
        # Centroid sums by blocks of rows: the sums are whole numbers, exact in
        # float64 in any order, and the index arrays stay small.
        sy = np.zeros(n_bins)
        sx = np.zeros(n_bins)
        col_idx = np.arange(nx, dtype=np.float64)
        for r0 in range(0, ny, _NOISE_BLOCK_ROWS):
            block = labels[r0 : r0 + _NOISE_BLOCK_ROWS]
            rr = np.arange(r0, r0 + block.shape[0], dtype=np.float64)
            lab_b = block.ravel()
            sy += np.bincount(lab_b, weights=np.repeat(rr, nx), minlength=n_bins)
            sx += np.bincount(
                lab_b, weights=np.tile(col_idx, block.shape[0]), minlength=n_bins
            )
        sy, sx = sy[ids], sx[ids]
        mask_totals = np.zeros((n_fl, len(ids)))
        for c in range(n_fl):
            w = signals[c].ravel().astype(np.float64)
            mask_totals[c] = np.bincount(flat, weights=w, minlength=n_bins)[ids]
        return SynthFrame(
            fov=self.fov,
            frame=t,
            time_min=time_min,
            dropped=False,
            images=tuple(images),
            expected=tuple(expected),
            fl_signal=tuple(signals),
            fl_background=tuple(backgrounds),
            labels=labels,
            cell=ids.astype(np.int64),
            area=area,
            position_x=sx / area,
            position_y=sy / area,
            true_total=emitted_sum[:, ids],
            true_mask_total=mask_totals,
        )

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


def _empty_state() -> _State:
    z = np.zeros(0)
    return _State(
        np.zeros(0, dtype=np.int64), z, z.copy(), z.copy(), z.copy(), z.copy(), z.copy()
    )


def _splat(canvas: F32, y: F64, x: F64, mass: F64) -> None:
    """Add point masses at sub-pixel positions with bilinear weights."""
    ny, nx = canvas.shape
    y0 = np.floor(y).astype(np.int64)
    x0 = np.floor(x).astype(np.int64)
    fy, fx = y - y0, x - x0
    flat = canvas.reshape(-1)
    for oy, ox, w in (
        (0, 0, (1 - fy) * (1 - fx)),
        (0, 1, (1 - fy) * fx),
        (1, 0, fy * (1 - fx)),
        (1, 1, fy * fx),
    ):
        yy, xx = y0 + oy, x0 + ox
        ok = (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx)
        np.add.at(flat, yy[ok] * nx + xx[ok], (mass[ok] * w[ok]).astype(np.float32))


class _Optics:
    """Per-FOV fixed optics and camera: illumination fields, offsets, gains."""

    def __init__(self, params: SynthParams, fov: int, shape: tuple[int, int]) -> None:
        p = params
        rng = np.random.default_rng([p.seed, fov, _STREAM_OPTICS])
        ny, nx = shape
        t_count = p.n_frames
        self.p = p
        self.shape = shape
        # The canvas margin holds the tails of the halo and PSF kernels of cells
        # just outside the field (gaussian_filter truncates at 4 sigma).
        self.halo_kernel = _halo_kernel(p.halo_kernel, p.halo_sigma_px)
        reach = _halo_reach(p.halo_kernel, p.halo_sigma_px)
        fl_psf = p.psf_sigma_px if p.fl_psf_sigma_px is None else p.fl_psf_sigma_px
        self.pad = math.ceil(reach + 6.0 * max(p.psf_sigma_px, fl_psf)) + 2
        pad = self.pad
        # Lamp gains per frame (flicker) and focus breathing of the phase PSF.
        self.gain_pc = np.clip(1.0 + p.flicker_pc * rng.normal(size=t_count), 0.5, 1.5)
        self.gain_fl = np.clip(
            1.0 + p.flicker_fl * rng.normal(size=(3, t_count)), 0.5, 1.5
        )
        self.focus = np.exp(p.focus_jitter * rng.normal(size=t_count))
        # Vignetting: quadratic fall-off about a slightly off-centre optical axis.
        off = rng.uniform(-0.1, 0.1, 2) * np.array([ny, nx])
        mottle = _smooth_field(rng, ny, nx, 8)
        self.illum_pc = (
            _vignette(ny, nx, 0, off, p.vignetting)
            * (1.0 + np.float32(p.illumination_mottle) * mottle)
        ).astype(np.float32)
        # Camera offset with hot pixels (fixed pattern, part of the background).
        offset = np.full((ny, nx), p.camera_offset_adu, dtype=np.float32)
        n_hot = int(rng.binomial(ny * nx, p.hot_pixel_fraction))
        if n_hot:
            where = rng.choice(ny * nx, size=n_hot, replace=False)
            offset.reshape(-1)[where] += rng.exponential(300.0, n_hot).astype(
                np.float32
            )
        self.offset = offset
        # Fluorescence excitation profile on the padded canvas (cells just outside
        # the field are excited too). Autofluorescence above offset is
        # ``auto0 + (t / duration) * auto1``: a fixed uneven pattern plus a slow,
        # spatially smooth change over the movie.
        self.excite_canvas: list[F32] = []
        self._auto0: list[F32] = []
        self._auto1: list[F32] = []
        crop = (slice(pad, pad + ny), slice(pad, pad + nx))
        for c in range(p.n_fl_channels):
            off_c = off + rng.normal(0.0, 0.03, 2) * np.array([ny, nx])
            excite = _vignette(ny, nx, pad, off_c, min(0.95, 1.3 * p.vignetting))
            self.excite_canvas.append(excite)
            level = np.float32(p.autofluorescence_adu[c]) * excite[crop]
            s0 = _smooth_field(rng, ny, nx, 6)
            s1 = _smooth_field(rng, ny, nx, 6)
            base = level * (1.0 + np.float32(p.fl_background_variation) * s0)
            self._auto0.append(base.astype(np.float32))
            self._auto1.append(
                (level * np.float32(p.fl_background_drift) * s1).astype(np.float32)
            )
        self._duration = max(p.interval_min * (t_count - 1), 1.0)

    def autofluorescence(self, c: int, time_min: float) -> F32:
        """Autofluorescence above offset of channel ``c``, before the lamp gain."""
        frac = np.float32(min(max(time_min / self._duration, 0.0), 1.5))
        out = self._auto0[c] + frac * self._auto1[c]
        return np.maximum(out, np.float32(0.0)).astype(np.float32)

    def camera(self, above: F32, rng: np.random.Generator) -> U16:
        """Shot noise on photo-electrons, read noise, offset, 16-bit clipping.

        Processed in fixed blocks of rows so that the float64 temporaries stay
        small; the block size is a constant, so the draws are reproducible.
        """
        p = self.p
        gain = p.camera_gain_adu_per_e
        out = np.empty(above.shape, dtype=np.uint16)
        for r0 in range(0, above.shape[0], _NOISE_BLOCK_ROWS):
            rows = slice(r0, r0 + _NOISE_BLOCK_ROWS)
            lam = np.maximum(above[rows], 0.0).astype(np.float64) / gain
            # Exact Poisson below _POISSON_EXACT_E electrons; above, a Gaussian
            # with the Poisson variance, rounded to whole electrons (skewness
            # < 0.03), which is three times faster on bright phase frames.
            low = lam < _POISSON_EXACT_E
            electrons = np.empty_like(lam)
            electrons[low] = rng.poisson(lam[low])
            high = ~low
            n_high = int(high.sum())
            if n_high:
                lh = lam[high]
                electrons[high] = np.maximum(
                    np.rint(lh + np.sqrt(lh) * rng.standard_normal(n_high)), 0.0
                )
            adu = self.offset[rows] + gain * electrons
            adu += rng.normal(0.0, p.read_noise_adu, adu.shape)
            out[rows] = np.clip(np.rint(adu), 0, 65535)
        return out


def _halo_reach(kind: str, sigma: float) -> float:
    """Radius in px beyond which the halo kernel ``kind`` is treated as zero."""
    return 4.0 * sigma if kind == "gaussian" else 8.0 * sigma


def _halo_kernel(kind: str, sigma: float) -> F32 | None:
    """Return the unit-sum low-pass kernel of the halo (``None``: Gaussian).

    ``'exponential'`` is ``exp(-r / lambda)`` with ``lambda = sigma / sqrt(3)``
    (the RMS radius of a Gaussian of standard deviation ``sigma``);
    ``'airy'`` is ``2 J1(x) / x`` with ``x = 3.8317 r / (2 sigma)``, the
    transform of a sharp-edged pupil, whose first zero lies at ``2 sigma``.
    Both are sampled at pixel centres up to :func:`_halo_reach` and normalised
    to unit sum.
    """
    if kind == "gaussian":
        return None
    reach = _halo_reach(kind, sigma)
    half = math.ceil(reach)
    axis = np.arange(-half, half + 1, dtype=np.float64)
    r = np.hypot(axis[:, None], axis[None, :])
    if kind == "exponential":
        kernel = np.exp(-r * math.sqrt(3.0) / sigma)
    else:
        x = r * _J1_FIRST_ZERO / (2.0 * sigma)
        safe = np.where(x > 0, x, 1.0)
        kernel = np.where(x > 0, 2.0 * special.j1(safe) / safe, 1.0)
    kernel = np.where(r <= reach, kernel, 0.0)
    return np.asarray(kernel / kernel.sum(), dtype=np.float32)


def _phase_image(
    thick: F32, p: SynthParams, psf_sigma: float, kernel: F32 | None
) -> F32:
    """Return the phase-contrast transmission (1 = background) of a thickness map.

    ``thick`` is the optical thickness on the padded canvas (0 outside cells);
    pixels outside the canvas count as 0.
    """

    def low_pass(image: F32) -> F32:
        if kernel is None:
            return np.asarray(
                ndimage.gaussian_filter(image, p.halo_sigma_px, mode="constant")
            )
        out = signal.fftconvolve(image, kernel, mode="same")
        return np.asarray(out, dtype=np.float32)

    if p.phase_model == "linear":
        # Yin et al. 2012: the background minus the optical path difference with
        # its low-pass part removed, which darkens the cell, brightens a halo
        # outside its edge and flattens large interiors.
        low = low_pass(thick)
        if p.halo_strength != 1.0:
            low = low * np.float32(p.halo_strength)
        hp = ndimage.gaussian_filter(thick - low, psf_sigma, mode="constant")
        return np.asarray(np.maximum(1.0 - p.phase_contrast * hp, 0.02))
    # Zernike phase contrast: the field exp(i phi) minus the share of its
    # low-pass part that falls on the ring, which passes it shifted by -pi/2 and
    # attenuated to amplitude a; coherent blur by the objective; intensity |E|².
    # In the small-phase limit the darkening is 2 phi / a, so phi is scaled to
    # give phase_contrast there.
    amp = math.sqrt(p.ring_transmission)
    phi = thick * np.float32(p.phase_contrast * amp / 2.0 * _ZERNIKE_PHASE_GAIN)
    re, im = np.cos(phi), np.sin(phi)
    ring = complex(1.0, 0.0) - amp * complex(0.0, -1.0)  # 1 - a e^{-i pi/2}
    s_re, s_im = p.halo_strength * ring.real, p.halo_strength * ring.imag
    li = low_pass(im)
    # E = U - s (1 - a e^{-i pi / 2}) U_L; outside the canvas U = 1, U_L = 1,
    # which the constant-mode filters would treat as 0, so filter U - 1.
    lr1 = low_pass(re - np.float32(1.0)) + np.float32(1.0)
    e_re = re - (s_re * lr1 - s_im * li)
    e_im = im - (s_re * li + s_im * lr1)
    bg_re, bg_im = 1.0 - s_re, -s_im
    e_re = ndimage.gaussian_filter(e_re - np.float32(bg_re), psf_sigma, mode="constant")
    e_im = ndimage.gaussian_filter(e_im - np.float32(bg_im), psf_sigma, mode="constant")
    e_re += np.float32(bg_re)
    e_im += np.float32(bg_im)
    intensity = (e_re * e_re + e_im * e_im) / np.float32(bg_re**2 + bg_im**2)
    return np.asarray(np.maximum(intensity, 0.02), dtype=np.float32)


def _vignette(ny: int, nx: int, pad: int, off: F64, strength: float) -> F32:
    """Return the illumination ``1 - strength * (r / r_corner)^2``.

    On the frame grid padded by ``pad`` px, about an optical axis ``off`` px
    from the frame centre.
    """
    yy = np.arange(-pad, ny + pad, dtype=np.float64) - ((ny - 1) / 2 + off[0])
    xx = np.arange(-pad, nx + pad, dtype=np.float64) - ((nx - 1) / 2 + off[1])
    r2c = ((ny - 1) / 2) ** 2 + ((nx - 1) / 2) ** 2
    field = 1.0 - strength * (yy[:, None] ** 2 + xx[None, :] ** 2) / r2c
    return np.asarray(np.maximum(field, 0.05), dtype=np.float32)


def _smooth_field(rng: np.random.Generator, ny: int, nx: int, n: int) -> F32:
    """Return a smooth random field of unit RMS.

    A sum of ``n`` plane waves with wavelengths of 0.6-2 frame sizes, evaluated
    as separable outer products.
    """
    size = float(max(ny, nx))
    wavelength = size * rng.uniform(0.6, 2.0, n)
    direction = rng.uniform(0.0, 2.0 * math.pi, n)
    ky = 2.0 * math.pi / wavelength * np.sin(direction)
    kx = 2.0 * math.pi / wavelength * np.cos(direction)
    phase = rng.uniform(0.0, 2.0 * math.pi, n)
    amp = rng.normal(0.0, 1.0, n)
    amp *= math.sqrt(2.0 / max(float(np.sum(amp * amp)), 1e-12))
    y = np.arange(ny, dtype=np.float64)
    x = np.arange(nx, dtype=np.float64)
    out = np.zeros((ny, nx), dtype=np.float64)
    for m in range(n):
        ay = ky[m] * y
        ax = kx[m] * x + phase[m]
        # cos(ay + ax) = cos(ay) cos(ax) - sin(ay) sin(ax)
        out += amp[m] * (
            np.outer(np.cos(ay), np.cos(ax)) - np.outer(np.sin(ay), np.sin(ax))
        )
    return out.astype(np.float32)


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
