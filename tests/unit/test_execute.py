"""The worker pool that runs the workflow's jobs (pyama_steps.run.execute)."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pyama_steps.io.job_record import job_record_path, read_job_record
from pyama_steps.run import execute
from pyama_steps.run.steps import STATS_PREFIX, _work_begins

HERE = "tests.unit.test_execute"


# --- step functions run in the workers (importable by "module:function") ---


def _sum_step(*, values: list[int], scale: int) -> int:
    _work_begins()
    big = np.ones((1024, 1024, 8))  # 64 MB: visible in the job's peak RSS
    return int(sum(values) * scale + big.sum() * 0)


class _PickyError(Exception):
    """Like some readers' errors: cannot be rebuilt from its args."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"code {code}: {detail}")
        self.code = code


def _failing_step(*, detail: str) -> None:
    try:
        raise _PickyError(7, "inner")
    except _PickyError as e:
        raise _PickyError(3, detail) from e


def _dying_step() -> None:
    os._exit(9)  # the worker process dies, as when the OOM killer strikes


def _pid_step() -> int:
    return os.getpid()


def _library_threads_step() -> str:
    return os.environ.get("OPENBLAS_NUM_THREADS", "unset")


def _chatty_step(*, name: str, barrier_wait: object) -> None:
    log = logging.getLogger("pyama_steps")
    log.info("%s says hello", name)
    barrier_wait()  # type: ignore[operator]  # both jobs are running now
    log.info("%s says bye", name)


@pytest.fixture
def pool() -> Iterator[None]:
    execute.configure(workers=2)
    yield
    execute.shutdown()
    execute.configure(workers=0)


def _stats(log: Path) -> dict[str, float]:
    record = read_job_record(log)
    assert record is not None
    assert record["status"] == "ok"
    return record["figures"]  # type: ignore[no-any-return]


def test_result_and_job_stats_come_back(pool: None, tmp_path: Path) -> None:
    log = tmp_path / "logs" / "job.log"
    result = execute.run_step(str(log), f"{HERE}:_sum_step", values=[1, 2, 3], scale=10)
    assert result == 60
    stats = _stats(log)
    assert set(stats) == {"work_s", "job_s", "cpu_s", "peak_rss_mb"}
    assert 0 <= stats["work_s"] <= stats["job_s"]
    # the 64 MB array is in this job's peak, on top of the worker's imports
    assert stats["peak_rss_mb"] > 64
    # the log has the same figures, for people
    line = [ln for ln in log.read_text().splitlines() if STATS_PREFIX in ln][-1]
    assert json.loads(line.split(STATS_PREFIX, 1)[1]) == stats
    assert job_record_path(log) == tmp_path / "logs" / "job.json"


def test_jobs_run_in_other_processes_and_reuse_them(pool: None, tmp_path: Path) -> None:
    pids = {
        execute.run_step(str(tmp_path / f"{i}.log"), f"{HERE}:_pid_step")
        for i in range(6)
    }
    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 2  # two warm workers, not a process per job


def test_unpicklable_error_fails_the_job_not_the_pool(
    pool: None, tmp_path: Path
) -> None:
    log = tmp_path / "bad.log"
    with pytest.raises(execute.StepFailed, match=r"^_PickyError: code 3: plane 4$"):
        execute.run_step(str(log), f"{HERE}:_failing_step", detail="plane 4")
    text = log.read_text()
    assert text.splitlines()[-1] == "ERROR _PickyError: code 3: plane 4"
    assert "code 7: inner" in text  # the whole traceback is in the log
    record = read_job_record(log)
    assert record is not None
    assert record["status"] == "failed"
    assert record["error"] == "_PickyError: code 3: plane 4"
    # the pool still works
    assert execute.run_step(str(tmp_path / "ok.log"), f"{HERE}:_sum_step",
                            values=[1], scale=1) == 1  # fmt: skip


def test_dead_worker_fails_its_job_and_the_next_job_runs(
    pool: None, tmp_path: Path
) -> None:
    dead = tmp_path / "dead.log"
    # a record of an earlier run of the job is gone once the job starts
    assert execute.run_step(str(dead), f"{HERE}:_pid_step")
    assert read_job_record(dead) is not None
    with pytest.raises(execute.StepFailed, match=r"worker process .* died"):
        execute.run_step(str(dead), f"{HERE}:_dying_step")
    assert not job_record_path(dead).exists()
    assert execute.run_step(str(tmp_path / "ok.log"), f"{HERE}:_sum_step",
                            values=[2], scale=2) == 4  # fmt: skip


def test_inline_mode_runs_in_the_calling_thread(tmp_path: Path) -> None:
    execute.configure(workers=0)
    assert execute.run_step(str(tmp_path / "a.log"), f"{HERE}:_pid_step") == os.getpid()
    with pytest.raises(_PickyError):  # inline: the step's own exception
        execute.run_step(str(tmp_path / "b.log"), f"{HERE}:_failing_step", detail="x")


def test_concurrent_inline_jobs_keep_their_logs_apart(tmp_path: Path) -> None:
    """Two jobs in threads of one process (a cluster job running a group)."""
    execute.configure(workers=0)
    barrier = threading.Barrier(2)

    def job(i: int) -> None:
        execute.run_step(
            str(tmp_path / f"{i}.log"), f"{HERE}:_chatty_step",
            name=f"job{i}", barrier_wait=barrier.wait,
        )  # fmt: skip

    threads = [threading.Thread(target=job, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        text = (tmp_path / f"{i}.log").read_text()
        assert f"job{i} says" in text
        assert f"job{1 - i} says" not in text


_FAULTS = """
import resource, sys
import numpy as np
from pyama_steps.run.execute import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def frame():  # temporaries of a step on a 1024 x 1024 frame, freed out of order
    a = np.ones((1024, 1024))
    b = np.zeros((1024, 1024), np.int32)
    c = a > 0
    del a
    d = np.empty((1152, 1152), np.int32)
    d[:] = 1
    e = b.astype(np.int64)
    del b, c
    f = np.ones((1024, 1024), np.float32)
    del d, e, f
for _ in range(3):  # warm up: the heap grows to its peak
    frame()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    frame()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="Linux only")
def test_keep_freed_memory_avoids_page_faults_per_frame() -> None:
    import subprocess
    import sys

    def faults(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", _FAULTS, mode],
            check=True,
            capture_output=True,
            text=True,
        )
        return int(out.stdout.strip())

    default, kept = faults("default"), faults("keep")
    # by default freed blocks go back to the system and the next frame faults
    # its pages in again (~2000 per frame here); kept, the pages are reused
    assert default > 20 * 500
    assert kept < 200


def test_workers_start_with_one_library_thread(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice is kept
    execute.configure(workers=1)
    try:
        # set for every process started from now on, the fork server included
        assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
        assert os.environ["OMP_NUM_THREADS"] == "3"
        log = tmp_path / "job.log"
        assert execute.run_step(str(log), f"{HERE}:_library_threads_step") == "1"
    finally:
        execute.shutdown()
        execute.configure(workers=0)
