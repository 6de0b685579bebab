"""The job records (pyama_steps.io.job_record) and how a step writes them."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from pyama_steps.io.job_record import (
    error_line,
    job_record_path,
    mark_job_failed,
    read_job_record,
    write_job_record,
)
from pyama_steps.run.steps import _stats, run_logged


def _figures_step(*, n: int) -> int:
    _stats(clipped_px=n, nan_px=0)
    logging.getLogger("pyama_steps").info("done")
    return n


def _failing_step() -> None:
    _stats(n_cells=3)
    raise ValueError("frame 4 is empty\nsecond line")


def test_record_path_is_beside_the_log() -> None:
    assert job_record_path("out/logs/x/fov_000_pc_c0.log") == Path(
        "out/logs/x/fov_000_pc_c0.json"
    )


def test_ok_record_holds_the_step_figures(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "copy" / "fov_000.log"
    assert run_logged(log, _figures_step, n=5) == 5
    text = job_record_path(log).read_text()
    record = json.loads(text)
    assert list(record) == ["version", "status", "figures"]
    assert record["status"] == "ok"
    figures = record["figures"]
    assert list(figures) == sorted(figures)
    assert figures["clipped_px"] == 5
    assert figures["nan_px"] == 0
    assert figures["work_s"] >= 0
    assert read_job_record(log) == record
    # the log keeps its lines for people
    assert 'STATS {"clipped_px": 5, "nan_px": 0}' in log.read_text()
    # no temporary file is left beside it
    assert sorted(p.name for p in log.parent.iterdir()) == [
        "fov_000.json",
        "fov_000.log",
    ]


def test_failed_record_holds_the_error(tmp_path: Path) -> None:
    log = tmp_path / "fov_001.log"
    run_logged(log, _figures_step, n=1)  # an earlier, successful run
    with pytest.raises(ValueError, match="frame 4"):
        run_logged(log, _failing_step)
    record = read_job_record(log)
    assert record == {
        "version": 1,
        "status": "failed",
        "error": "ValueError: frame 4 is empty",
        "figures": {"n_cells": 3},
    }
    assert log.read_text().splitlines()[-1] == "ERROR ValueError: frame 4 is empty"


def test_mark_job_failed_keeps_the_figures(tmp_path: Path) -> None:
    log = tmp_path / "fov_002.log"
    write_job_record(log, figures={"b": 2, "a": 1})
    mark_job_failed(log, error="OSError: [Errno 28] no space")
    assert read_job_record(log) == {
        "version": 1,
        "status": "failed",
        "error": "OSError: [Errno 28] no space",
        "figures": {"a": 1, "b": 2},
    }


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[]",
        '{"status": "ok"}',
        '{"status": "done", "figures": {}}',
        '{"status": "failed", "figures": {}}',
    ],
)
def test_a_broken_record_is_no_record(tmp_path: Path, text: str) -> None:
    log = tmp_path / "fov_003.log"
    job_record_path(log).write_text(text)
    assert read_job_record(log) is None
    assert read_job_record(tmp_path / "absent.log") is None


def test_error_line_is_the_type_and_first_line() -> None:
    assert error_line(KeyError("x")) == "KeyError: 'x'"
    assert error_line(RuntimeError("")) == "RuntimeError: "
    assert error_line(ValueError("a\nb")) == "ValueError: a"
