"""Parameters of the synthetic time-lapse: :class:`SynthParams` and its checks.

Imports only :mod:`.shapes` (the rod length rule) from the generator.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Final

from pyama_steps.validation.synth.shapes import _rod_division_min

# The module name before the validation package; truth.json records it, so it
# stays (the generator's output is unchanged by the move).
GENERATOR_NAME: Final = "pyama_steps.synth"
GENERATOR_VERSION: Final = "2"
PHASE_CHANNEL_NAME: Final = "Phase"
FL_CHANNEL_NAMES: Final = ("GFP", "mCherry", "Cy5")


# Random streams: the third entry of every seed sequence ``[seed, fov, stream]``.
_STREAM_TIMES: Final = 0
_STREAM_GEOMETRY: Final = 1
_STREAM_OPTICS: Final = 2
_STREAM_NOISE: Final = 3

# Cell outlines: a smooth blob around an ellipse, or a rod (spherocylinder).
CELL_SHAPES: Final = ("blob", "rod")
# Phase-contrast image models and shapes of the halo's low-pass kernel.
PHASE_MODELS: Final = ("linear", "zernike")
HALO_KERNELS: Final = ("gaussian", "exponential", "airy")
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
        Whether :func:`pyama_steps.validation.synth_io.write_dataset` writes the true
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
    """Raise ValueError naming the first invalid field of ``p``."""
    _validate_counts(p)
    _validate_sizes(p)
    _validate_rods(p)
    _validate_division_model(p)
    _validate_optics(p)
    _validate_ranges(p)
    _validate_expression(p)


def _validate_counts(p: SynthParams) -> None:
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


def _validate_sizes(p: SynthParams) -> None:
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


def _validate_optics(p: SynthParams) -> None:
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


def _validate_ranges(p: SynthParams) -> None:
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


def _validate_expression(p: SynthParams) -> None:
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
