"""Issue 14.7: `pytest -m "not slurm and not browser"` is the fast developer loop.

The full suite starts a local SLURM (+ MariaDB) and installs Chromium; the
tests that do are marked so that the documented fast loop leaves them out.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def _collected(*args: str) -> set[str]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/workflow/test_slurm.py",
            "tests/workflow/test_report.py",
            *args,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode in (0, 5), proc.stdout + proc.stderr
    return {line.split("[")[0] for line in proc.stdout.splitlines() if "::" in line}


def test_fast_loop_leaves_out_slurm_and_browser_tests() -> None:
    everything = _collected()
    fast = _collected("-m", "not slurm and not browser")
    slurm = _collected("-m", "slurm")
    browser = _collected("-m", "browser")
    prefix = "tests/workflow/"
    assert slurm == {
        prefix + "test_slurm.py::test_fovs_run_in_grouped_slurm_jobs_of_the_group_size",
        prefix + "test_slurm.py::test_failed_fov_is_rerun_alone_through_slurm",
        prefix + "test_slurm.py::test_sample_sheet_batches_pack_all_samples",
    }
    assert prefix + "test_report.py::test_report_renders_in_headless_chromium" in (
        browser
    )
    assert all("test_report.py" in name for name in browser)
    assert fast == everything - slurm - browser
    # the profile check needs no SLURM and stays in the fast loop
    assert (
        prefix + "test_slurm.py::test_profiles_leave_partition_and_account_to_the_user"
        in fast
    )
