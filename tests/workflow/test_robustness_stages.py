"""What single stages of the pipeline change on renderings (issue 13).

Each fixture runs the real workflow twice or three times on one generated
rendering, with a stage on and off, and the tests compare the scores
(``pyama_steps.validation.evaluate``). The renderings and their sizes are
those of ``test_robustness.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.workflow.scoring import score as _score

pytestmark = [pytest.mark.workflow, pytest.mark.slow]


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
