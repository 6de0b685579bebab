"""Dense rod-shaped bacteria end to end: ``segmentation.method: rods``.

The real workflow runs on a small data set of the generator's ``rods`` preset
(rods 15-25 x 40-90 px packed side by side in colonies, dividing end to end)
and ``pyama_steps.validation.evaluate`` scores it (algorithms.md §2.8).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pyama_steps.run.config import ConfigError, load_schema, validate_config
from pyama_steps.validation import synth
from pyama_steps.validation.evaluate import Evaluation, evaluate_run
from pyama_steps.validation.synth_io import write_dataset
from tests.conftest import REPO, run_snakemake

pytestmark = pytest.mark.workflow

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Evaluation, Path]:
    data = tmp_path_factory.mktemp("rods")
    params = synth.preset(
        "rods", seed=3, n_fov=1, n_frames=8, frame_sizes=((320, 384),)
    )
    image = write_dataset(data, params, name="rods")
    work = data / "run"
    run_snakemake(
        work,
        {
            "input": str(image),
            "output_dir": "out",
            "segmentation": {"method": "rods"},
        },
    )
    return evaluate_run(data / "rods_truth", work / "out"), work


def test_rods_method_finds_the_cells(scored: tuple[Evaluation, Path]) -> None:
    evaluation, _ = scored
    overall = evaluation.overall
    assert overall["precision"] >= 0.85
    assert overall["recall"] >= 0.85
    assert overall["dice"] >= 0.9


def test_rods_method_is_logged_and_recorded(scored: tuple[Evaluation, Path]) -> None:
    _, work = scored
    log = next((work / "out" / "logs" / "segment_phase").glob("*.log"))
    text = log.read_text()
    assert re.search(r"frame 0 dark=\S+ bright=\S+ body=\S+ core=\S+", text)
    manifest = (work / "out" / "processing_results.yaml").read_text()
    assert "method: rods" in manifest
    assert "ridge_threshold: 0.007" in manifest


def test_rods_defaults_fill_in_and_are_checked() -> None:
    schema = load_schema(SCHEMA)
    config = validate_config({"input": "x.nd2"}, schema)
    assert config["segmentation"]["method"] == "logstd"
    assert config["segmentation"]["rods"]["ridge_threshold"] == 0.007
    rods = validate_config(
        {"input": "x.nd2", "segmentation": {"method": "rods", "rods": {"grow_px": 2}}},
        schema,
    )["segmentation"]["rods"]
    assert rods["grow_px"] == 2
    assert rods["body_level"] == 0.7
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) 'ridge'"):
        validate_config(
            {"input": "x.nd2", "segmentation": {"rods": {"ridge": 0.1}}}, schema
        )
    with pytest.raises(
        ConfigError, match=r"'segmentation.rods.core_level' must not exceed .*got 0\.8"
    ):
        validate_config(
            {"input": "x.nd2", "segmentation": {"rods": {"core_level": 0.8}}}, schema
        )
    with pytest.raises(ConfigError, match=r"'segmentation.method' = 'cellpose'"):
        validate_config(
            {"input": "x.nd2", "segmentation": {"method": "cellpose"}}, schema
        )
