"""Accuracy of the default workflow against the generator's ground truth.

Thresholds, not snapshots (algorithms.md §8.2, "first target" column): the
real workflow runs on generated data with cells 15-50 px across, one frame
size <= 512 px and one > 512 px, divisions, cells entering and leaving, drift,
a dropped frame and uneven timestamps; ``pyama_steps.evaluate`` scores it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pyama_steps import synth
from pyama_steps.evaluate import Evaluation, evaluate_run
from pyama_steps.synth_io import write_dataset
from tests.conftest import run_snakemake

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Evaluation:
    data = tmp_path_factory.mktemp("accuracy")
    params = synth.preset(
        "demo",
        seed=11,
        n_fov=2,
        n_frames=16,
        frame_sizes=((384, 448), (576, 640)),
        dropped_frames=((1, 9),),
    )
    image = write_dataset(data, params, name="acc")
    work = data / "run"
    run_snakemake(work, {"input": str(image), "output_dir": "out"})
    return evaluate_run(data / "acc_truth", work / "out")


def test_foreground_dice(scored: Evaluation) -> None:
    assert scored.overall["dice"] >= 0.85


def test_object_recall_and_precision(scored: Evaluation) -> None:
    assert scored.overall["recall"] >= 0.90
    assert scored.overall["precision"] >= 0.80


def test_complete_tracks(scored: Evaluation) -> None:
    assert scored.overall["n_eligible_tracks"] >= 50
    assert scored.overall["complete_fraction"] >= 0.95


def test_trace_error(scored: Evaluation) -> None:
    assert scored.overall["trace_total_rel_err_median_ch_1"] <= 0.05
    assert scored.overall["trace_mean_rel_err_median_ch_1"] <= 0.05
    assert scored.overall["trace_pairs_used_ch_1"] >= 200


def test_times_equal_the_acquisition_timestamps(scored: Evaluation) -> None:
    assert scored.overall["time_max_abs_err_min"] <= 1e-6
