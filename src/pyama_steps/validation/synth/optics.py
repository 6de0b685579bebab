"""Phase-contrast optics and the camera: illumination, halo kernels, noise."""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import ndimage, signal, special

from pyama_steps.validation.synth.params import _STREAM_OPTICS, SynthParams

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
U16 = npt.NDArray[np.uint16]

# Inner radius of the phase ring relative to its outer radius (the 'airy' kernel).
_J1_FIRST_ZERO: Final = 3.8317059702075125
# The 'zernike' model's phase per unit thickness relative to the small-phase
# scaling: real cells shift the phase by ~1 rad, well beyond the linear regime.
_ZERNIKE_PHASE_GAIN: Final = 3.0

_POISSON_EXACT_E: Final = 1000.0
_NOISE_BLOCK_ROWS: Final = 128


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
