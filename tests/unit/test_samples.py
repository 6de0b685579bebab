from __future__ import annotations

from pathlib import Path

import pytest

from pyama_steps.run.config import ConfigError
from pyama_steps.run.samples import read_sample_sheet, sample_config, summary_table


def _sheet(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "samples.tsv"
    path.write_text(text)
    return path


def test_read_sheet_with_comments_and_overrides(tmp_path: Path) -> None:
    path = _sheet(
        tmp_path,
        "# comment\nsample\tpath\tpc\tfl\tfovs\n"
        "ctrl\ta.nd2\t\t\t\n"
        "drug\tb.czi\tPhase\tGFP,2\t0-3,7\n"
        "none\tc.czi\t1\t-\t\n",
    )
    rows = read_sample_sheet(path)
    assert [r.sample for r in rows] == ["ctrl", "drug", "none"]
    assert rows[0].pc is None
    assert rows[0].fl is None
    config = {"input": "x", "output_dir": "res/", "channels": {"pc": 0, "fl": None}}
    drug = sample_config(config, rows[1])
    assert drug["input"] == "b.czi"
    assert drug["output_dir"] == "res/drug"
    assert drug["channels"] == {"pc": "Phase", "fl": ["GFP", 2]}
    assert drug["fovs"] == ["0-3", "7"]
    assert "samples" not in drug
    none = sample_config(config, rows[2])
    assert none["channels"] == {"pc": 1, "fl": []}
    assert config["channels"] == {"pc": 0, "fl": None}  # not modified


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name\tpath\nx\ta\n", r"lacks the column\(s\) \['sample'\]"),
        ("sample\tpath\tcolor\nx\ta\tred\n", r"unknown column\(s\) \['color'\]"),
        ("sample\tpath\nx\ta\nx\tb\n", "data line 2: sample name 'x' is used twice"),
        ("sample\tpath\nbad name\ta\n", "sample name 'bad name' must start"),
        ("sample\tpath\nx\t\n", "sample 'x' has no path"),
        ("sample\tpath\n", "has no samples"),
    ],
)
def test_bad_sheets(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        read_sample_sheet(_sheet(tmp_path, text))


def test_missing_sheet(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the sample sheet does not exist"):
        read_sample_sheet(tmp_path / "nope.tsv")


def test_summary_table() -> None:
    manifest = {
        "fov_status": {
            "0": {"status": "ok", "n_cells": 5, "n_good": 2},
            "1": {"status": "failed", "step": "segment"},
        }
    }
    text = summary_table([("a", "a.nd2", manifest), ("b", "b.nd2", None)])
    lines = text.splitlines()
    assert lines[1] == "a\ta.nd2\t2\t1\t1\t0\t5\t2\ta/processing_results.yaml"
    assert lines[2] == "b\tb.nd2\t\t\t\t\t\t\t"
