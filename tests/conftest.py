"""Shared pytest fixtures for pyama-steps: real snakemake runs on real files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "workflow" / "Snakefile"
REAL_DATA = (REPO / ".." / "shared" / "data" / "real").resolve()


def real_data_dir() -> Path:
    """The folder of real ND2/CZI files; tests skip only outside CI when absent."""
    if REAL_DATA.is_dir():
        return REAL_DATA
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but the real data folder {REAL_DATA} is missing")
    pytest.skip(f"real data folder {REAL_DATA} is absent (and CI is unset)")


@pytest.fixture(scope="session")
def real_dir() -> Path:
    return real_data_dir()


def run_snakemake(
    workdir: Path,
    config: dict[str, Any],
    *args: str,
    check: bool = True,
    timeout: float = 600,
    python: str | Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real workflow in ``workdir`` with ``config`` written to a file.

    The command is ``python -m snakemake -s workflow/Snakefile -d workdir
    --configfile workdir/config.yaml --cores 2`` with the repository's default
    workflow profile (as when snakemake runs in the repository) plus ``args``;
    stdout and stderr are merged into ``.stdout``. ``python`` (default: this
    interpreter) and ``env`` (added to the environment) run it elsewhere.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [
        str(python or sys.executable),
        "-m",
        "snakemake",
        "-s",
        str(SNAKEFILE),
        "-d",
        str(workdir),
        "--configfile",
        str(cfg),
        "--cores",
        "2",
        "--workflow-profile",
        str(REPO / "profiles" / "default"),
        *args,
    ]
    proc = subprocess.run(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})},
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({proc.returncode}):\n{proc.stdout[-6000:]}"
        )
    return proc


def jobs_run(stdout: str) -> list[str]:
    """Rule names of the jobs a snakemake run (or dry-run) executed or planned."""
    jobs = []
    for line in stdout.splitlines():
        line = line.strip()
        for prefix in ("rule ", "localrule "):
            if line.startswith(prefix) and line.endswith(":"):
                jobs.append(line[len(prefix) : -1])
    return jobs
