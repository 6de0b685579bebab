"""Score the real workflow on a generated rendering (issue 13's robustness tests)."""

from __future__ import annotations

from typing import Any

import pytest

from pyama_steps.validation import synth
from pyama_steps.validation.evaluate import Evaluation, evaluate_run
from pyama_steps.validation.synth_io import write_dataset
from tests.conftest import run_snakemake


def score(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    preset: str,
    *,
    configs: tuple[dict[str, Any], ...] = ({},),
    **over: Any,
) -> Evaluation:
    """Generate ``preset`` with ``over`` (seed 3), run each config, evaluate.

    One config gives its Evaluation, several a list in the same order.
    """
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
