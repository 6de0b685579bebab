"""Accuracy on renderings the defaults were not chosen on (issue 13).

The real workflow runs on generator variants with other optics and cell sizes
and ``pyama_steps.validation.evaluate`` scores it against the truth. Thresholds are the
issue's targets: for held-out variants (benchmarks/robustness.py) the area
ratio 0.95-1.05, total trace error median <= 2 % and p90 <= 6 %, recall >=
0.96 and complete tracks >= 0.93; for small cells recall >= 0.97, complete
tracks >= 0.95, traced >= 0.97 and total p90 <= 10 %. The data sets are
smaller than the benchmark's (one FOV) so that each runs in well under a
minute. What single stages change on such renderings is tested in
``test_robustness_stages.py`` (a separate file, so that pytest-xdist's
``--dist loadfile`` can run the two on different workers).
"""

from __future__ import annotations

from typing import Any

import pytest

from pyama_steps.validation.evaluate import Evaluation
from tests.workflow.scoring import score as _score

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

HELD_OUT: dict[str, dict[str, Any]] = {
    # PSF 1.7 px with focus breathing, a wider fluorescence PSF, 6-px halo.
    "blurry": {
        "psf_sigma_px": 1.7,
        "focus_jitter": 0.2,
        "fl_psf_sigma_px": 1.9,
        "halo_sigma_px": 6.0,
    },
    # Cells thinning towards their edge, a narrow halo, 40 % cover.
    "thin-dense": {
        "edge_thickness": 0.3,
        "halo_sigma_px": 4.0,
        "coverage": 0.4,
        "cluster_fraction": 0.7,
    },
}


@pytest.fixture(scope="module", params=sorted(HELD_OUT))
def held_out(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Evaluation:
    return _score(
        tmp_path_factory,
        request.param,
        "standard",
        n_fov=1,
        n_frames=30,
        **HELD_OUT[request.param],
    )


def test_held_out_variant_meets_the_targets(held_out: Evaluation) -> None:
    m = held_out.overall
    assert m["n_eligible_tracks"] >= 40
    assert 0.95 <= m["area_ratio_median"] <= 1.05
    assert m["trace_total_rel_err_median_ch_1"] <= 0.02
    assert m["trace_total_rel_err_p90_ch_1"] <= 0.06
    assert m["recall"] >= 0.96
    assert m["complete_fraction"] >= 0.93


@pytest.fixture(scope="module")
def dim(tmp_path_factory: pytest.TempPathFactory) -> Any:
    # Held out: low contrast at low light (contrast 0.35, 3000 ADU, read noise
    # 5). Second run: the 3-px window, fixed.
    return _score(
        tmp_path_factory,
        "dim",
        "standard",
        configs=({}, {"segmentation": {"window": 3}}),
        n_fov=1,
        n_frames=20,
        phase_contrast=0.35,
        phase_level_adu=3000.0,
        read_noise_adu=5.0,
    )


def test_dim_low_contrast_takes_a_wider_window_and_meets_the_targets(
    dim: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # With 3 px the outlines break up in the noise and cells are lost (in the
    # benchmark: recall 0.57, complete tracks 0.06); window auto takes 5 px
    # (algorithms.md §2.10) and says so in the segment log. Measured: recall
    # 0.983 vs 0.624, complete tracks 0.979 vs 0.118, total p90 2.2 % vs 43 %.
    auto, narrow = (e.overall for e in dim)
    assert auto["n_eligible_tracks"] >= 40
    assert auto["recall"] >= 0.96
    assert 0.95 <= auto["area_ratio_median"] <= 1.05
    assert auto["trace_total_rel_err_median_ch_1"] <= 0.02
    assert auto["trace_total_rel_err_p90_ch_1"] <= 0.06
    assert auto["complete_fraction"] >= 0.93
    assert narrow["recall"] <= auto["recall"] - 0.2
    logs = sorted(
        tmp_path_factory.getbasetemp().glob("dim*/run0/out/logs/segment_phase/*.log")
    )
    assert logs
    assert all("window=5 (auto;" in log.read_text() for log in logs)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Evaluation:
    return _score(tmp_path_factory, "small", "small", n_fov=1, n_frames=40)


def test_small_cells_meet_the_targets(small: Evaluation) -> None:
    m = small.overall
    assert m["n_eligible_tracks"] >= 60
    assert m["recall"] >= 0.97
    assert m["complete_fraction"] >= 0.95
    assert m["traced_fraction"] >= 0.97
    assert m["trace_total_rel_err_p90_ch_1"] <= 0.10


@pytest.fixture(scope="module")
def weak_halo(tmp_path_factory: pytest.TempPathFactory) -> Evaluation:
    return _score(
        tmp_path_factory, "weak", "standard", n_fov=1, n_frames=20, halo_strength=0.5
    )


def test_outlines_follow_a_weak_halo(weak_halo: Evaluation) -> None:
    # With the trim at a noise margin above the background, masks were 24 %
    # too large and touching cells merged through the halo (recall 0.81); the
    # edge level places the outlines at the cells' edges (algorithms.md §2.4).
    m = weak_halo.overall
    assert 0.95 <= m["area_ratio_median"] <= 1.05
    assert m["recall"] >= 0.93
    assert m["trace_total_rel_err_median_ch_1"] <= 0.02
