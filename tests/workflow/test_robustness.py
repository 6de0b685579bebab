"""Accuracy on renderings the defaults were not chosen on (issue 13).

The real workflow runs on generator variants with other optics and cell sizes
and ``pyama_steps.validation.evaluate`` scores it against the truth. Thresholds are the
issue's targets: for held-out variants (benchmarks/robustness.py) the area
ratio 0.95-1.05, total trace error median <= 2 % and p90 <= 6 %, recall >=
0.96 and complete tracks >= 0.93; for small cells recall >= 0.97, complete
tracks >= 0.95, traced >= 0.97 and total p90 <= 10 %. The data sets are
smaller than the benchmark's (one FOV) so that each runs in well under a
minute.
"""

from __future__ import annotations

from typing import Any

import pytest

from pyama_steps.validation import synth
from pyama_steps.validation.evaluate import Evaluation, evaluate_run
from pyama_steps.validation.synth_io import write_dataset
from tests.conftest import run_snakemake

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


def _score(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    preset: str,
    *,
    configs: tuple[dict[str, Any], ...] = ({},),
    **over: Any,
) -> Evaluation:
    data = tmp_path_factory.mktemp(name)
    params = synth.preset(preset, seed=3, write_background=False, **over)
    image = write_dataset(data, params, name=name)
    scores = []
    for i, extra in enumerate(configs):
        work = data / f"run{i}"
        config = {"input": str(image), "output_dir": "out", **extra}
        run_snakemake(work, config, timeout=600)
        scores.append(evaluate_run(data / f"{name}_truth", work / "out", ctc=False))
    return scores[0] if len(scores) == 1 else scores  # type: ignore[return-value]


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


@pytest.fixture(scope="module")
def crowded_weak(tmp_path_factory: pytest.TempPathFactory) -> Any:
    # 50 % cover, 80 % of it in colonies, weak halo: touching cells often
    # join in the segmentation. Second run: the merge split turned off.
    return _score(
        tmp_path_factory,
        "crowd",
        "standard",
        configs=({}, {"tracking": {"split_merged_min_frames": 0}}),
        n_fov=1,
        n_frames=20,
        coverage=0.5,
        cluster_fraction=0.8,
        halo_strength=0.5,
    )


def test_merge_split_keeps_touching_cells_tracked(crowded_weak: Any) -> None:
    # Cells do not fuse: a segment joining cells tracked apart is divided
    # between them (algorithms.md §4.5 step 0). Measured: complete tracks
    # 0.885 with it, 0.652 without; ID switches 8 vs 35 per 100 cells.
    split, off = (e.overall for e in crowded_weak)
    assert split["n_eligible_tracks"] >= 200
    assert split["complete_fraction"] >= 0.85
    assert off["complete_fraction"] <= split["complete_fraction"] - 0.15
    assert split["id_switches_per_100_cells"] <= 0.5 * off["id_switches_per_100_cells"]
    assert split["recall"] >= off["recall"]
    assert split["precision"] >= 0.97


@pytest.fixture(scope="module")
def holed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    # Tuning rendering: flat cells with a 3-px halo, whose phase-bright
    # centres the halo trim removes. Second run: fill_trim_holes off.
    return _score(
        tmp_path_factory,
        "slab",
        "standard",
        configs=({}, {"segmentation": {"fill_trim_holes": False}}),
        n_fov=1,
        n_frames=20,
        edge_thickness=1.0,
        halo_sigma_px=3.0,
    )


def test_cells_whose_centre_the_trim_removed_stay_whole(holed: Any) -> None:
    # Where the opening cut the thin ring around a trimmed centre, the convex
    # cell of the opening with the trim's holes filled is added (algorithms.md
    # §2.4); otherwise the cell is a crescent or in pieces. Measured: complete
    # tracks 0.944 vs 0.903, precision 0.962 vs 0.939, recall 0.974 vs 0.968
    # (0.889 vs 0.722 and 0.952 vs 0.909 before the trim's background level
    # followed the illumination's trend where cells crowd).
    whole, opened = (e.overall for e in holed)
    assert whole["n_eligible_tracks"] >= 40
    assert whole["complete_fraction"] >= opened["complete_fraction"] + 0.03
    assert whole["precision"] >= opened["precision"] + 0.015
    assert whole["recall"] >= opened["recall"]


@pytest.fixture(scope="module")
def ringing(tmp_path_factory: pytest.TempPathFactory) -> Any:
    # Held out: Zernike optics with a ring (airy) kernel and a 15 % ring. In
    # some frames the cells' textured interiors outnumber the background in the
    # log-STD histogram. Second run: the fullest bin as the mode, without the
    # mode guard; third run: the fullest bin with the guard.
    fullest = {"mode_peak_fraction": 1.0}
    return _score(
        tmp_path_factory,
        "ringing",
        "standard",
        configs=(
            {},
            {"segmentation": {**fullest, "mode_guard_k": None}},
            {"segmentation": fullest},
        ),
        n_fov=1,
        n_frames=16,
        phase_model="zernike",
        halo_kernel="airy",
        halo_sigma_px=4.0,
        ring_transmission=0.15,
    )


def test_the_mode_is_the_background_peak_with_or_without_the_guard(
    ringing: Any,
) -> None:
    # The mode is the lowest separate peak of the log-STD histogram (the
    # background), not the fullest bin (there the cells' texture), so the
    # threshold does not jump into the cells in the frames where they
    # outnumber the background (algorithms.md §2.3). The mode guard (the
    # FOV's background level, §2.3) catches the same frames on its own.
    # Measured: complete tracks 0.441 / 0.140 / 0.441, recall 0.871 / 0.830 /
    # 0.871 (default / fullest bin unguarded / fullest bin guarded).
    peak, fullest, guarded = (e.overall for e in ringing)
    assert peak["n_eligible_tracks"] >= 100
    assert peak["complete_fraction"] >= fullest["complete_fraction"] + 0.2
    assert peak["recall"] >= fullest["recall"] + 0.02
    assert guarded["complete_fraction"] >= fullest["complete_fraction"] + 0.2
    assert guarded["recall"] >= fullest["recall"] + 0.02


@pytest.fixture(scope="module")
def pockets(tmp_path_factory: pytest.TempPathFactory) -> Any:
    # Tuning rendering: 50 % cover, 80 % of the cells in colonies; the hole
    # filling closes background pockets between them. Second run: no edge test.
    return _score(
        tmp_path_factory,
        "pockets",
        "standard",
        configs=({}, {"segmentation": {"min_edge_fraction": 0.0}}),
        n_fov=1,
        n_frames=12,
        coverage=0.5,
        cluster_fraction=0.8,
    )


def test_objects_without_an_edge_are_dropped(pockets: Any) -> None:
    # Background pockets have no textured outline of their own; cells do
    # (algorithms.md §2.4). Measured: precision 0.998 vs 0.975, recall and
    # complete tracks unchanged (0.980, 0.986).
    edge, no_edge = (e.overall for e in pockets)
    assert edge["n_eligible_tracks"] >= 40
    assert edge["precision"] >= no_edge["precision"] + 0.015
    assert edge["recall"] >= no_edge["recall"] - 0.002
    assert edge["complete_fraction"] >= no_edge["complete_fraction"] - 0.005
