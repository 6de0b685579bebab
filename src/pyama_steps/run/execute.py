"""Run the workflow's jobs in warm worker processes.

Every step rule of ``workflow/rules`` ends in a ``run:`` block that calls
:func:`run_step`. Snakemake runs ``run:`` blocks in threads of its own process
(``--force-use-threads``, which ``profiles/default`` sets),
and :func:`run_step` hands the work to a pool of ``--cores`` worker processes
that live as long as the Snakemake process. A worker imports numpy, scipy and
bioio once, not once per job: on the reference benchmark a separate Python
process per job spent more time starting and importing than computing
(README, "Performance"). The workers are forked from a fork server that
imports the heavy modules while Snakemake is still building its DAG.

Nothing else changes: one rule per step, file targets, ``log:``, resources and
job groups are as before; the outputs are written atomically by the step
functions, so a worker that dies leaves no output that looks complete, and
Snakemake marks that job failed. A cluster job (SLURM), or a job Snakemake
started as its own process, runs its step in that process without a pool.

Only Snakemake's public interface is used: ``run:`` blocks, threads, resources
and the ``onstart``/``onsuccess``/``onerror`` hooks. So the ``benchmark:`` file
of a job run by a worker is Snakemake's own record of a ``run:`` block: the
job's wall time (``s``), and the CPU seconds and memory of the Snakemake
process with all its children (the fork server and every worker), sampled by
Snakemake. The job's own CPU seconds and peak RSS, measured in its worker,
are in its record (``cpu_s``, ``peak_rss_mb``; :mod:`pyama_steps.io.job_record`).
"""

from __future__ import annotations

import importlib
import multiprocessing
import multiprocessing.forkserver
import os
import resource
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

__all__ = [
    "StepFailed",
    "configure",
    "defer_garbage_collection",
    "die_with_parent",
    "keep_freed_memory",
    "limit_library_threads",
    "resume_garbage_collection",
    "run_step",
    "shutdown",
    "skip_final_collection",
]

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_workers = 0
_inline_ready = False

#: What the workers import before their first job: the step modules, numpy,
#: scipy, pandas, bioio and its readers (~1.9 s, ~200 MB). A fork server
#: imports them once, while Snakemake is still parsing and building its DAG,
#: and every worker is a fork of it; a missing module is skipped.
PRELOAD = [
    "pyama_steps.run.steps",
    "pyama_steps.io",
    "pyama_steps.io.ingest",
    "pyama_steps.segmentation.log_std",
    "pyama_steps.segmentation.rods",
    "pyama_steps.background",
    "pyama_steps.tracking",
    "pyama_steps.traces",
    "pyama_steps.run.manifest",
    "scipy.ndimage",
    "pandas",
    "bioio",
    "bioio_czi",
    "bioio_nd2",
    "bioio_ome_tiff",
    # last: freezes what the imports above created (see its docstring)
    "pyama_steps.run._preloaded",
]


class StepFailed(RuntimeError):
    """A step raised in its worker; the message is ``<Type>: <message>``."""


def configure(*, workers: int) -> None:
    """Set the number of worker processes (Snakemake's ``--cores``).

    Parameters
    ----------
    workers : int
        Pool size, started with the first job; 0 runs every job in the
        calling thread instead (for a process that runs a single job, such as
        a cluster job).
    """
    global _workers
    _workers = max(0, int(workers))
    if _workers:
        # Start the fork server now: it imports PRELOAD in the background (a
        # dry run that never uses it does not wait for it).
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        limit_library_threads()
        multiprocessing.forkserver.ensure_running()


#: Thread-pool sizes of the numerical libraries (OpenBLAS, OpenMP, MKL).
_LIBRARY_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def limit_library_threads() -> None:
    """Give every process started from now on one BLAS/OpenMP thread.

    Sets `_LIBRARY_THREADS` to 1 in this process's environment, except those
    the user set. The variables are read when a library loads, so this acts
    on processes started afterwards: the Snakemake process calls it before it
    starts the fork server, so the workers, and the processes of
    ``script:``/``shell:`` jobs and of cluster jobs (``sbatch`` exports the
    environment by default), start their numerical libraries with one thread.
    Every job is given one core (``threads: 1``), so a BLAS thread pool per
    worker only makes the workers compete for the same cores (a 361 x 361
    solve of the background fit then varied from 2 to 180 ms with two
    workers on two cores).
    """
    for name in _LIBRARY_THREADS:
        os.environ.setdefault(name, "1")


def shutdown() -> None:
    """Stop the worker processes (called when the workflow ends)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def skip_final_collection() -> None:
    """Keep the objects that exist now out of the garbage collections at exit.

    When Python exits, it runs a full garbage collection over every object
    still alive; for the Snakemake process of a run (its DAG, jobs, plugin
    modules) that took 0.65-0.75 s after the last line of output (measured
    with py-spy: all of it in ``gc_collect_main``). ``gc.freeze()`` moves the
    objects to the permanent generation, which those collections skip; they
    are still freed by reference counting at exit. Call when the workflow has
    ended (``onsuccess`` / ``onerror``; :func:`defer_garbage_collection` also
    registers it with ``atexit``, for a dry run, which calls neither).
    """
    import gc

    gc.freeze()


def defer_garbage_collection() -> None:
    """Switch the garbage collector off while Snakemake builds its DAG.

    Snakemake builds its DAG as a graph of ~25 kB of Python objects per job
    (1.3 GB for 50,000 jobs), of which almost nothing becomes garbage before
    the run ends. Python's collector, with its default thresholds, traverses
    that growing graph again and again, and once more when the process exits:
    on a dry run of 100 samples x 50 FOVs (50,201 jobs) a fifth of the CPU time
    (78 -> 61 CPU s with this; benchmarks/results.md, "DAG scaling"). Call in
    the Snakemake process of a run while the workflow is parsed;
    :func:`resume_garbage_collection` (from ``onstart``, which a dry run never
    reaches) switches it on again before the first job, and a dry run, which
    only prints the DAG, exits without it.
    Reference counting still frees everything that is not cyclic. (Snakemake's
    ``--no-hooks`` skips ``onstart`` too: the collector then stays off.)

    Python's own full collection when the process exits runs even with the
    collector off (7 s after the last line of that dry run): it is skipped
    by :func:`skip_final_collection`, registered here with ``atexit``.
    """
    import atexit
    import gc

    gc.disable()
    atexit.register(skip_final_collection)


def resume_garbage_collection() -> None:
    """Switch the garbage collector on again, without the DAG built meanwhile.

    ``gc.freeze()`` first moves the objects that exist now (the DAG, built
    with the collector off by :func:`defer_garbage_collection`) to the
    permanent generation, which collections skip; otherwise the first
    collection would traverse all of them. Call from ``onstart``.
    """
    import gc

    gc.freeze()
    gc.enable()


def _get_pool() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            # forked from the fork server (not from the Snakemake process,
            # which has threads running), so with PRELOAD imported
            context = multiprocessing.get_context("forkserver")
            _pool = ProcessPoolExecutor(
                _workers, mp_context=context, initializer=_start_worker
            )
        return _pool


def die_with_parent() -> bool:
    """Have the kernel kill this process (SIGKILL) when its parent dies.

    The fork server (a child of the Snakemake process) and the workers (its
    children) call this: after ``kill -9`` of Snakemake they would otherwise
    wait forever (a worker holds both ends of its job queue's pipe, so it
    never sees the end of it), keeping ~650 MB; multiprocessing's resource
    tracker then exits by itself once the last of them has closed its pipe.
    Linux ``prctl(PR_SET_PDEATHSIG)``; elsewhere a no-op.

    Returns
    -------
    bool
        Whether the setting was applied.

    Notes
    -----
    The signal follows the death of the parent *thread*: the Snakemake process
    starts the fork server from its main thread (:func:`configure`), and the
    fork server is single-threaded. A parent that died before the call is
    seen as a changed parent process id, and the process exits at once.
    """
    import signal

    parent = os.getppid()
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    pr_set_pdeathsig = 1
    if prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:  # the parent died before the call
        os._exit(1)
    return True


def _start_worker() -> None:
    """Prepare a new worker process (the pool's initializer)."""
    die_with_parent()
    keep_freed_memory()


def keep_freed_memory() -> bool:
    """Let this process reuse the memory of freed frame-sized arrays.

    glibc's malloc serves large blocks (from 128 kB up, raised up to 32 MB as
    blocks are freed) with ``mmap`` and returns them to the system when freed,
    so a step that allocates a few frame-sized temporaries per frame faults
    in fresh pages every frame: ~3700 page faults per 1024² frame in the
    segmentation. Serving them from the heap, and not trimming it, lets the
    next frame reuse the same pages. The process's peak memory does not
    change (the pages are in use at the peak anyway); its resident memory
    stays at that peak until it exits. Called in every worker process (and
    once by a process that runs its job inline); a no-op without glibc.

    Returns
    -------
    bool
        Whether the setting was applied.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    # 32 MiB is glibc's largest mmap threshold on 64-bit systems
    ok = mallopt(m_mmap_threshold, 32 << 20) == 1
    ok &= mallopt(m_trim_threshold, 1 << 30) == 1
    ok &= mallopt(m_top_pad, 64 << 20) == 1
    return bool(ok)


def _discard(pool: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=True)


def run_step(log_path: str, target: str, /, **kwargs: Any) -> Any:
    """Run one job's step function in a worker process and wait for it.

    Parameters
    ----------
    log_path : str
        The job's log file (``log[0]`` of the rule).
    target : str
        ``"module:function"``, e.g. ``"pyama_steps.run.steps:segment_phase"``.
    **kwargs
        The function's keyword arguments: plain, picklable values.

    Returns
    -------
    object
        What the function returns.

    Raises
    ------
    StepFailed
        When the step raised (its record says so, and its log ends with the
        ``ERROR`` line) or its worker process died (the job has no record).
    """
    global _inline_ready
    if _workers == 0:
        from pyama_steps.run.steps import run_logged

        if not _inline_ready:
            _inline_ready = True
            keep_freed_memory()
        return run_logged(log_path, _resolve(target), **kwargs)
    pool = _get_pool()
    try:
        return pool.submit(_in_worker, log_path, target, kwargs).result()
    except BrokenProcessPool as e:
        _discard(pool)
        raise StepFailed(
            "the worker process running this job died (killed, or out of "
            "memory?); rerun the same command to redo the job"
        ) from e


def _resolve(target: str) -> Any:
    """Import and return the function named by ``"module:function"``."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _peak_rss_reset() -> None:
    try:  # Linux >= 4.0: "5" resets the peak RSS (VmHWM) of this process
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _in_worker(log_path: str, target: str, kwargs: dict[str, Any]) -> Any:
    from pyama_steps.run import steps

    func = _resolve(target)
    _peak_rss_reset()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    wall0 = time.perf_counter()

    def job_stats() -> dict[str, float]:
        now = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "job_s": round(time.perf_counter() - wall0, 4),
            "cpu_s": round(now.ru_utime + now.ru_stime - cpu0, 4),
            "peak_rss_mb": round(_peak_rss_mb(), 1),
        }

    try:
        return steps.run_logged(log_path, func, _job_stats=job_stats, **kwargs)
    except BaseException as e:
        failure = steps.error_line(e)
    # Raised outside the except block, so that it carries no chained
    # exception: the readers' exception types do not all survive pickling
    # (tblib, which a dependency installs, pickles the whole chain), and one
    # that fails to unpickle would break the pool. The log has the traceback.
    raise StepFailed(failure)
