"""Tests for pyama_steps.background.corrected: corrected frames from the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pyama_steps.background import CorrectedReader
from pyama_steps.io import NpyFrameWriter
from pyama_steps.run import steps


def _write(path: Path, frames: np.ndarray) -> str:
    with NpyFrameWriter(path, frames.shape, frames.dtype) as w:
        for t, frame in enumerate(frames):
            w.write(t, frame)
    return str(path)


def _params(method: str) -> dict[str, object]:
    return {
        "method": method,
        "mask_dilation_px": 3,
        "block_px": 8,
        "knot_spacing_px": 32.0,
        "smoothing": 1e-3,
        "tile_size": 48,
        "tile_overlap": 0.5,
        "min_background_px": 50,
        "spline_degree": 3,
        "exclude_zero": False,
        "fallback_percentile": 5.0,
        "weight": 0.75,
    }


@pytest.mark.parametrize("method", ["fit", "tiles"])
def test_corrected_frames_are_those_the_background_step_wrote(
    tmp_path: Path, method: str
) -> None:
    rng = np.random.default_rng(4)
    n_t, y, x = 6, 96, 130
    yy, xx = np.mgrid[0:y, 0:x]
    raw = np.stack(
        [
            (300 + 0.8 * xx + 0.3 * yy * (1 + 0.1 * t) + rng.normal(0, 9, (y, x)))
            for t in range(n_t)
        ]
    ).astype(np.uint16)
    cells = np.zeros((n_t, y, x), bool)
    cells[:, 20:50, 30:70] = True
    cells[2] = True  # a frame without background: fallback rule 2
    fl = _write(tmp_path / "fl.npy", raw)
    seg = _write(tmp_path / "seg.npy", cells)
    params = _params(method)
    fallback = steps.correct_background(
        fl=fl,
        seg=seg,
        model=str(tmp_path / "model.npy"),
        corrected=str(tmp_path / "corr.npy"),
        background=str(tmp_path / "bg.npy"),
        params=params,
    )
    assert fallback == 1
    corrected = np.load(tmp_path / "corr.npy")
    background = np.load(tmp_path / "bg.npy")
    assert np.load(tmp_path / "model.npy").nbytes < background.nbytes / 50
    with CorrectedReader(fl=fl, model=tmp_path / "model.npy", params=params) as r:
        assert len(r) == n_t
        for t in reversed(range(n_t)):  # any order: each frame's model is whole
            assert r.background(t).tobytes() == background[t].tobytes()
            assert r.corrected(t).tobytes() == corrected[t].tobytes()


def test_a_model_of_another_stack_is_refused(tmp_path: Path) -> None:
    fl = _write(tmp_path / "fl.npy", np.zeros((3, 40, 40), np.uint16))
    model = _write(tmp_path / "model.npy", np.zeros((2, 5, 4)))
    with pytest.raises(ValueError, match=r"has 2 frames, fl\.npy 3"):
        CorrectedReader(fl=fl, model=model, params=_params("fit"))
    model = _write(tmp_path / "model2.npy", np.zeros((3, 5, 5)))
    with (
        CorrectedReader(fl=fl, model=model, params=_params("fit")) as r,
        pytest.raises(ValueError, match="model must have shape"),
    ):
        r.corrected(0)
