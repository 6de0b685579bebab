"""The render pass: one frame's phase-contrast and fluorescence images and truth."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from pyama_steps.validation.synth.fluorescence import _add_emitted, _expression
from pyama_steps.validation.synth.optics import (
    _NOISE_BLOCK_ROWS,
    _phase_image,
    _splat,
)
from pyama_steps.validation.synth.params import _STREAM_NOISE
from pyama_steps.validation.synth.shapes import (
    _bbox,
    _footprint,
    _rod_axis_fraction,
    _semi_axes,
)
from pyama_steps.validation.synth.state import _SimBase, _Snapshot, _with_rods

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U16 = npt.NDArray[np.uint16]
U32 = npt.NDArray[np.uint32]

# How much thinner (optically) the nucleus looks, and the granules' size.
_NUCLEUS_DIM: Final = 0.22
_GRANULE_SIGMA_PX: Final = 1.0


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


@dataclass
class _Layers:
    """What the cells paint into one frame, before optics and noise.

    ``thick``, ``grains`` and ``conc`` live on the padded canvas; ``labels``
    on the frame; ``emitted_sum`` is the light each truth id emits into the
    field, before the PSF, per channel (excitation profile included; lamp
    gain and bleaching applied later).
    """

    thick: F32
    grains: F32
    conc: F32
    labels: U32
    emitted_sum: F64


class _Render(_SimBase):
    """Rendering frame ``t`` from the geometry pass's snapshot."""

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
        if t in self.dropped_frames:
            return self._dropped_frame(t)
        p = self.params
        layers = self._paint(t)
        noise = np.random.default_rng([p.seed, self.fov, _STREAM_NOISE, t])
        expected, images = self._phase_plane(t, layers, noise)
        signals, backgrounds = self._fluorescence_planes(
            t, layers, noise, expected, images
        )
        return self._truth_frame(t, layers, images, expected, signals, backgrounds)

    def _dropped_frame(self, t: int) -> SynthFrame:
        """Return frame ``t`` as dropped: zero in every channel, no cells."""
        ny, nx = self.shape
        n_fl = self.params.n_fl_channels
        zero_u = np.zeros((ny, nx), dtype=np.uint16)
        zero_f = np.zeros((ny, nx), dtype=np.float32)
        return SynthFrame(
            fov=self.fov,
            frame=t,
            time_min=float(self.times_min[t]),
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

    def _paint(self, t: int) -> _Layers:
        """Paint every cell's body, fluorescence, label and granules, and debris."""
        n_fl = self.params.n_fl_channels
        ny, nx = self.shape
        pad = self._optics.pad
        snap = self._snapshots[t]
        st = self._static
        cy_all = snap.y - self.drift[t, 0]
        cx_all = snap.x - self.drift[t, 1]
        canvas = (ny + 2 * pad, nx + 2 * pad)
        layers = _Layers(
            thick=np.zeros(canvas, dtype=np.float32),
            grains=np.zeros(canvas, dtype=np.float32),
            conc=np.zeros((n_fl, *canvas), dtype=np.float32),
            labels=np.zeros((ny, nx), dtype=np.uint32),
            emitted_sum=np.zeros((n_fl, self.max_id + 1)),
        )
        aspect = np.array([st.aspect[u] for u in snap.uid], dtype=np.float64)
        if snap.rounded:
            aspect[[int(u) in snap.rounded for u in snap.uid]] = 1.0
        a_all, b_all = _semi_axes(snap.area, aspect)
        a_all, b_all, rod_all = _with_rods(st, snap.uid, snap.area, a_all, b_all)
        time_min = float(self.times_min[t])
        for k in range(len(snap.uid)):
            self._paint_cell(
                layers,
                snap,
                k,
                (float(cx_all[k]), float(cy_all[k])),
                (float(a_all[k]), float(b_all[k]), bool(rod_all[k])),
                time_min,
            )
        if len(self._debris):
            dy = self._debris[:, 0] - self.drift[t, 0] + pad
            dx = self._debris[:, 1] - self.drift[t, 1] + pad
            _splat(layers.grains, dy, dx, self._debris[:, 2] * 2.0 * math.pi * 1.5**2)
        return layers

    def _paint_cell(
        self,
        layers: _Layers,
        snap: _Snapshot,
        k: int,
        centre: tuple[float, float],
        axes: tuple[float, float, bool],
        time_min: float,
    ) -> None:
        """Paint cell ``k`` of ``snap`` at ``centre = (cx, cy)`` into ``layers``."""
        st = self._static
        ny, nx = self.shape
        pad = self._optics.pad
        cx, cy = centre
        a, b, rod = axes
        uid = int(snap.uid[k])
        eps, phi = st.eps[uid], st.phi[uid]
        rounded = uid in snap.rounded
        if rounded:
            eps = np.zeros_like(eps)
        rb = a * (1.0 + float(np.abs(eps).sum()))
        y0, y1 = _bbox(cy, rb + 1.0, -pad, ny - 1 + pad)
        x0, x1 = _bbox(cx, rb + 1.0, -pad, nx - 1 + pad)
        if y0 > y1 or x0 > x1:
            return
        ys = np.arange(y0, y1 + 1, dtype=np.float64)
        xs = np.arange(x0, x1 + 1, dtype=np.float64)
        angle = float(snap.angle[k])
        rho, r = _footprint(cx, cy, a, b, angle, eps, phi, ys, xs, rod)
        # Area coverage of each pixel from the distance to the outline.
        cover = np.clip(r - rho + 0.5, 0.0, 1.0)
        if rod:
            s = _rod_axis_fraction(cx, cy, a, b, angle, ys, xs)
        else:
            s = np.minimum(rho / r, 1.0)
        body = self._body(uid, rounded, cover, s, rho, r)
        win = (slice(y0 + pad, y1 + 1 + pad), slice(x0 + pad, x1 + 1 + pad))
        layers.thick[win] += body.astype(np.float32)
        tid = int(snap.tid[k])
        self._paint_fluorescence(layers, uid, tid, cover, win, time_min)
        if tid:
            fy0, fy1 = max(y0, 0), min(y1, ny - 1)
            fx0, fx1 = max(x0, 0), min(x1, nx - 1)
            if fy0 <= fy1 and fx0 <= fx1:
                sub = (rho <= r)[fy0 - y0 : fy1 - y0 + 1, fx0 - x0 : fx1 - x0 + 1]
                lab = layers.labels[fy0 : fy1 + 1, fx0 : fx1 + 1]
                lab[sub] = tid
        # Granules move and turn with the cell and stretch with its axes.
        g = st.granules[uid]
        if len(g):
            gu, gv = g[:, 0] * a, g[:, 1] * b
            ca, sa = math.cos(angle), math.sin(angle)
            gx = cx + gu * ca - gv * sa + pad
            gy = cy + gu * sa + gv * ca + pad
            mass = g[:, 2] * 2.0 * math.pi * _GRANULE_SIGMA_PX**2
            _splat(layers.grains, gy, gx, mass)

    def _body(
        self, uid: int, rounded: bool, cover: F64, s: F64, rho: F64, r: F64
    ) -> F64:
        """Return a cell's optical thickness on its window of the canvas."""
        p = self.params
        if rounded:
            # Mitotic rounding: a thick sphere-like body without a nucleus
            # (the envelope has broken down).
            return np.asarray(cover * (p.mitosis_thickness * np.sqrt(1.0 - s * s)))
        dome = p.edge_thickness + (1.0 - p.edge_thickness) * np.sqrt(1.0 - s * s)
        nuc_r = self._static.nucleus[uid] * r
        in_nuc = np.clip((nuc_r - rho) / 2.0 + 0.5, 0.0, 1.0)
        return np.asarray(cover * dome * (1.0 - _NUCLEUS_DIM * in_nuc))

    def _paint_fluorescence(
        self,
        layers: _Layers,
        uid: int,
        tid: int,
        cover: F64,
        win: tuple[slice, slice],
        time_min: float,
    ) -> None:
        """Add a cell's concentration, and the light it emits into the field."""
        n_fl = self.params.n_fl_channels
        if not n_fl:
            return
        pad = self._optics.pad
        c_k = _expression(self._static.expr[uid][:n_fl], time_min)
        for c in range(n_fl):
            if c_k[c] > 0:
                layers.conc[c][win] += (cover * c_k[c]).astype(np.float32)
        if tid:
            _add_emitted(
                layers.emitted_sum, tid, c_k, cover, self._optics, win, pad, self.shape
            )

    def _phase_plane(
        self, t: int, layers: _Layers, noise: np.random.Generator
    ) -> tuple[list[F32], list[U16]]:
        """Return the phase channel's expected counts and camera image."""
        p = self.params
        opt = self._optics
        ny, nx = self.shape
        pad = opt.pad
        thick = layers.thick
        thick += ndimage.gaussian_filter(
            layers.grains, _GRANULE_SIGMA_PX, mode="constant"
        )
        crop = (slice(pad, pad + ny), slice(pad, pad + nx))
        transmitted = _phase_image(
            thick, p, p.psf_sigma_px * float(opt.focus[t]), opt.halo_kernel
        )[crop]
        del thick
        pc_above = (opt.gain_pc[t] * p.phase_level_adu) * opt.illum_pc * transmitted
        expected = [(opt.offset + pc_above).astype(np.float32)]
        images = [opt.camera(pc_above, noise)]
        return expected, images

    def _fluorescence_planes(
        self,
        t: int,
        layers: _Layers,
        noise: np.random.Generator,
        expected: list[F32],
        images: list[U16],
    ) -> tuple[list[F32], list[F32]]:
        """Append the fluorescence channels; return their signal and background.

        Applies each channel's lamp gain and bleaching to ``emitted_sum``.
        """
        p = self.params
        opt = self._optics
        ny, nx = self.shape
        pad = opt.pad
        crop = (slice(pad, pad + ny), slice(pad, pad + nx))
        time_min = float(self.times_min[t])
        signals: list[F32] = []
        backgrounds: list[F32] = []
        fl_psf = p.psf_sigma_px if p.fl_psf_sigma_px is None else p.fl_psf_sigma_px
        for c in range(p.n_fl_channels):
            bleach = math.exp(-p.bleach_per_frame[c] * t)
            emitted = layers.conc[c] * opt.excite_canvas[c]
            blurred = ndimage.gaussian_filter(emitted, fl_psf, mode="constant")
            del emitted
            gain = float(opt.gain_fl[c, t]) * bleach
            layers.emitted_sum[c] *= gain
            signal = (blurred[crop] * np.float32(gain)).astype(np.float32)
            del blurred
            auto = opt.autofluorescence(c, time_min) * np.float32(opt.gain_fl[c, t])
            above = auto + signal
            expected.append((opt.offset + above).astype(np.float32))
            images.append(opt.camera(above, noise))
            backgrounds.append((opt.offset + auto).astype(np.float32))
            signals.append(signal)
            del above, auto
        return signals, backgrounds

    def _truth_frame(
        self,
        t: int,
        layers: _Layers,
        images: list[U16],
        expected: list[F32],
        signals: list[F32],
        backgrounds: list[F32],
    ) -> SynthFrame:
        """Return frame ``t``: its images and the per-cell truth of its labels."""
        labels = layers.labels
        ny, nx = self.shape
        n_fl = self.params.n_fl_channels
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
            time_min=float(self.times_min[t]),
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
            true_total=layers.emitted_sum[:, ids],
            true_mask_total=mask_totals,
        )
