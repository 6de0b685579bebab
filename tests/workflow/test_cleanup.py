"""Issue 14.2: nothing outlives the run.

`kill -9` of the Snakemake process alone (not its process group) must take
its helpers with it: the fork server, the warm workers and multiprocessing's
resource tracker exit within 2 s.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pyama_steps.validation import synth
from pyama_steps.validation.synth_io import write_dataset
from tests.conftest import REPO, SNAKEFILE

pytestmark = pytest.mark.workflow


def _group(pgid: int) -> dict[int, str]:
    """Processes of a process group: pid -> command line."""
    members = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":  # pgrp, not a zombie
            members[int(entry.name)] = cmd[:120]
    return members


def test_helpers_exit_when_snakemake_is_killed(tmp_path: Path) -> None:
    image = write_dataset(
        tmp_path / "data",
        synth.preset("easy", n_frames=40, seed=5),
        name="long",
    )
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"input": str(image), "output_dir": "out"}))
    cmd = [
        sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(tmp_path),
        "--configfile", str(config), "--cores", "2",
        "--workflow-profile", str(REPO / "profiles" / "default"),
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, to find its helpers
    )
    pgid = proc.pid
    try:
        logs = tmp_path / "out" / "logs" / "segment_phase"
        deadline = time.monotonic() + 120
        # wait until jobs run in the workers: fork server, workers, tracker
        while not (logs.is_dir() and any(logs.iterdir())):
            assert proc.poll() is None, "the run ended before the segmentation"
            assert time.monotonic() < deadline, "the segmentation never started"
            time.sleep(0.01)
        helpers = {p: c for p, c in _group(pgid).items() if p != proc.pid}
        assert any("forkserver" in c for c in helpers.values()), helpers
        assert any("resource_tracker" in c for c in helpers.values()), helpers
        assert len(helpers) >= 3, helpers
        os.kill(proc.pid, signal.SIGKILL)  # the Snakemake process only
        proc.wait()
        killed = time.monotonic()
        while _group(pgid) and time.monotonic() - killed < 2.0:
            time.sleep(0.05)
        left = _group(pgid)
        assert left == {}, f"alive 2 s after Snakemake was killed: {left}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
