"""The mode guard (algorithms.md §2.3): a crowded frame keeps the FOV's background.

In a frame that cells cover more than about half of, the background's log-STD
peak can shrink to a shoulder of the cells' texture peak, and the histogram
mode lands on the cells: the threshold then rises above most cell pixels. The
FOV's background texture (the median mode of a few frames) does not move with
the cover, so the guard takes the histogram's peak near it instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from pyama_steps.run.config import load_schema, validate_config
from pyama_steps.segmentation import get_method
from pyama_steps.segmentation.log_std import segment_log_std
from pyama_steps.segmentation.threshold import (
    BINS,
    GUARD_SIGMA_RATIO,
    MODE_PEAK_FRACTION,
    MODE_SMOOTH_BINS,
    BackgroundReference,
    _histogram_mode,
    _sample_statistics,
)
from pyama_steps.segmentation.window import REFERENCE_FRAMES, background_reference

_SCHEMA = load_schema(
    Path(__file__).parents[2] / "workflow" / "schemas" / "config.schema.yaml"
)
_HIST = {"bins": BINS, "smooth": MODE_SMOOTH_BINS, "peak_fraction": MODE_PEAK_FRACTION}
_REF = {
    "window": 3,
    "bins": BINS,
    "mode_smooth_bins": MODE_SMOOTH_BINS,
    "mode_peak_fraction": MODE_PEAK_FRACTION,
    "sigma_estimator": "lower_std",
}


def _values(
    background: float, cells: float, cover: float, seed: int = 0
) -> npt.NDArray[np.float64]:
    """Log-STD samples: a background peak and a broader cells' peak."""
    rng = np.random.default_rng(seed)
    n = 40_000
    k = int(cover * n)
    return np.concatenate(
        [rng.normal(background, 0.25, n - k), rng.normal(cells, 0.5, k)]
    )


def _mode(
    values: npt.NDArray[np.float64],
    reference: BackgroundReference,
    guard_k: float | None,
) -> tuple[float, float, bool]:
    stats = _sample_statistics(
        values, estimator="lower_std", reference=reference, guard_k=guard_k, **_HIST
    )
    assert stats is not None
    assert stats.mode is not None
    return stats.mode, stats.sigma, stats.guarded


def _frame(
    cover: float, seed: int
) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.bool_]]:
    """A 256² frame of discs (r = 10 px) whose texture is ~1.8x the background's.

    `cover` is the share of the grid's 100 sites that hold a disc; at 1 the
    discs cover 54 % of the frame and their texture peak is the histogram's
    fullest, with the background's only a shoulder beside it.
    """
    rng = np.random.default_rng(seed)
    image = rng.normal(1000.0, 30.0, (256, 256))
    yy, xx = np.mgrid[:256, :256]
    truth = np.zeros((256, 256), dtype=np.bool_)
    for cy in range(14, 256, 24):
        for cx in range(14, 256, 24):
            if rng.random() < cover:
                truth |= (yy - cy) ** 2 + (xx - cx) ** 2 <= 100
    image[truth] = rng.normal(900.0, 55.0, int(truth.sum()))
    return np.clip(image, 0, 65535).astype(np.uint16), truth


def _iou(a: npt.NDArray[np.bool_], b: npt.NDArray[np.bool_]) -> float:
    return float((a & b).sum() / max(int((a | b).sum()), 1))


def test_guard_takes_the_background_peak_when_the_cells_peak_is_fullest() -> None:
    # 80 % cells whose texture lies 1 log unit above the background: the
    # background is a shoulder and the unguarded mode is the cells' peak.
    values = _values(5.3, 6.3, 0.8)
    unguarded = _histogram_mode(values, BINS, values.min(), values.max(), 11, 0.25)
    assert unguarded is not None
    assert unguarded > 6.0
    plain = _sample_statistics(values, estimator="lower_std", **_HIST)
    assert plain is not None
    # Below the cells' mode lies the whole background: a wide lower sigma.
    assert plain.sigma > GUARD_SIGMA_RATIO * 0.25
    reference = BackgroundReference(level=5.3, sigma=0.25)
    mode, sigma, guarded = _mode(values, reference, 1.5)
    assert guarded
    assert not plain.guarded
    assert abs(mode - 5.3) <= 0.25
    # The sigma follows the guarded mode: the background's, not the mixture's.
    assert sigma < 0.3 < plain.sigma


def test_guard_needs_a_wide_lower_sigma() -> None:
    # A background that sits 2 sigma higher in one frame (a brighter lamp,
    # say) keeps its own spread below its mode: not the cells' texture, so
    # the guard leaves it, whatever the level.
    values = _values(5.8, 6.8, 0.2)
    plain = _sample_statistics(values, estimator="lower_std", **_HIST)
    assert plain is not None
    assert plain.mode is not None
    assert plain.mode > 5.3 + 1.5 * 0.25
    assert plain.sigma < GUARD_SIGMA_RATIO * 0.25
    reference = BackgroundReference(level=5.3, sigma=0.25)
    assert _mode(values, reference, 1.5) == (plain.mode, plain.sigma, False)


@pytest.mark.parametrize(
    ("level", "guard_k"),
    [
        (5.3, None),  # guard off
        (5.3 + 0.25, 1.5),  # the mode lies below the level: never moved up
        (5.3 - 0.25, 1.5),  # 1 sigma above the level: within the guard
        (5.3 - 0.5, 3.0),  # 2 sigma above, guard at 3
    ],
)
def test_guard_leaves_an_ordinary_mode_alone(
    level: float, guard_k: float | None
) -> None:
    values = _values(5.3, 6.3, 0.3)
    plain = _sample_statistics(values, estimator="lower_std", **_HIST)
    assert plain is not None
    reference = BackgroundReference(level=level, sigma=0.25)
    assert _mode(values, reference, guard_k) == (plain.mode, plain.sigma, False)


def test_guard_keeps_the_mode_without_a_bin_near_the_level() -> None:
    # A reference far below every value (say, of another channel): no bin
    # within one sigma of it, so the frame's own mode stays.
    values = _values(5.3, 6.3, 0.8)
    plain = _sample_statistics(values, estimator="lower_std", **_HIST)
    assert plain is not None
    reference = BackgroundReference(level=1.0, sigma=0.25)
    assert _mode(values, reference, 1.5) == (plain.mode, plain.sigma, False)


def test_background_reference_is_robust_to_two_crowded_frames() -> None:
    sparse = [_frame(0.2, seed)[0] for seed in range(3)]
    crowded = _frame(1.0, 7)[0]
    frames = [sparse[0], sparse[1], sparse[2], sparse[0], sparse[1]]
    alone, _ = background_reference(len(frames), frames.__getitem__, **_REF)
    frames = [sparse[0], crowded, sparse[1], crowded, sparse[2]]
    assert len(frames) == REFERENCE_FRAMES
    mixed, line = background_reference(len(frames), frames.__getitem__, **_REF)
    assert alone is not None
    assert mixed is not None
    assert mixed.level == pytest.approx(alone.level, abs=0.5 * alone.sigma)
    assert line.startswith(f"background log-STD {mixed.level:.6g} (sigma ")
    assert line.endswith("median of frames 0,1,2,3,4)")
    # frames measured: 5 spread from the first to the last
    seen: list[int] = []
    background_reference(41, lambda t: seen.append(t) or sparse[0], **_REF)
    assert seen == [0, 10, 20, 30, 40]


def test_background_reference_needs_three_frames_with_texture() -> None:
    flat = np.full((64, 64), 7, dtype=np.uint16)
    sparse = [_frame(0.2, seed)[0] for seed in range(3)]
    # Two frames without texture (dropped) of five: the other three suffice.
    frames = [sparse[0], flat, sparse[1], flat, sparse[2]]
    reference, _ = background_reference(5, frames.__getitem__, **_REF)
    assert reference is not None
    frames = [sparse[0], flat, sparse[1], flat, flat]
    reference, line = background_reference(5, frames.__getitem__, **_REF)
    assert reference is None
    assert line.endswith("2 of frames 0,1,2,3,4 with texture, 3 needed; mode guard off")
    # Two frames: their median would be their mean, which neither holds.
    frames = [_frame(0.2, 0)[0], _frame(1.0, 7)[0]]
    reference, line = background_reference(2, frames.__getitem__, **_REF)
    assert reference is None
    assert "2 of frames 0,1 with texture" in line


def test_crowded_frame_is_segmented_with_the_fovs_background() -> None:
    sparse = [_frame(0.2, seed)[0] for seed in range(REFERENCE_FRAMES)]
    reference, _ = background_reference(len(sparse), sparse.__getitem__, **_REF)
    frame, truth = _frame(1.0, 11)
    plain = segment_log_std(frame)
    guarded = segment_log_std(frame, background=reference)
    assert not plain.guarded
    assert guarded.guarded
    # Unguarded, the threshold sits above the cells' own texture.
    assert _iou(plain.mask, truth) < 0.3
    assert _iou(guarded.mask, truth) > 0.8
    # A sparse frame of the same FOV is not touched by the guard.
    frame, truth = _frame(0.2, 12)
    alone = segment_log_std(frame)
    with_reference = segment_log_std(frame, background=reference)
    assert not with_reference.guarded
    np.testing.assert_array_equal(alone.mask, with_reference.mask)
    assert _iou(alone.mask, truth) > 0.8


def test_method_prepare_measures_the_background_once_per_fov() -> None:
    method = get_method("logstd")
    assert method.prepare is not None
    frames = [_frame(0.2, seed)[0] for seed in range(4)] + [_frame(1.0, 11)[0]]
    section = _section(window=3)
    options, lines = method.prepare(
        method.options(section), len(frames), frames.__getitem__
    )
    assert options.background is not None
    assert lines[-1].startswith("background log-STD ")
    result = method.segment(frames[-1], options)
    assert result.log_line.endswith(" mode_guarded=1")
    off, lines = method.prepare(
        method.options(_section(window=3, mode_guard_k=None)),
        len(frames),
        frames.__getitem__,
    )
    assert off.background is None
    assert not any(line.startswith("background") for line in lines)
    assert "mode_guarded" not in method.segment(frames[-1], off).log_line


def _section(**changes: Any) -> dict[str, Any]:
    config = validate_config({"input": "x.nd2", "segmentation": changes}, _SCHEMA)
    section: dict[str, Any] = config["segmentation"]
    return section


def test_segment_step_guards_the_crowded_frames_of_a_stack(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The segment step (the rule's function) prepares the method once per
    # FOV and segments frame by frame: the crowded frames of a stack whose
    # other frames are sparse get the FOV's background.
    from pyama_steps.run.steps import segment_phase

    cover = [0.2, 0.2, 1.0, 0.2, 0.2, 1.0, 0.2]
    made = [_frame(c, seed) for seed, c in enumerate(cover)]
    pc = tmp_path / "pc.npy"
    np.save(pc, np.stack([f for f, _ in made]))
    out = tmp_path / "seg.npy"
    caplog.set_level("INFO", logger="pyama_steps")
    segment_phase(pc=str(pc), output=str(out), params=_section(window=3))
    masks = np.load(out)
    for t, (_, truth) in enumerate(made):
        assert _iou(masks[t], truth) > 0.75, t  # unguarded: ~0 on the crowded ones
    frame_lines = [r.getMessage() for r in caplog.records if "lo=" in r.getMessage()]
    guarded = [line.split()[1] for line in frame_lines if "mode_guarded=1" in line]
    assert guarded == ["2", "5"]
    assert any(r.getMessage().startswith("background log-STD") for r in caplog.records)
