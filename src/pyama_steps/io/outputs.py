"""Atomic outputs: written under a temporary name, renamed when complete (§7.2)."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from glob import escape as glob_escape
from pathlib import Path

__all__ = ["DISK_FULL", "atomic_output", "atomic_write_text", "disk_full_error"]

#: "No space left on device" and "disk quota exceeded".
DISK_FULL: frozenset[int] = frozenset({errno.ENOSPC, errno.EDQUOT})


def disk_full_error(error: OSError, *, log_path: str | Path) -> OSError:
    """Restate a full-disk `error` of a job: which device, and what to do.

    Parameters
    ----------
    error : OSError
        The error, with ``errno`` in :data:`DISK_FULL`.
    log_path : str or Path
        The job's log, ``<output_dir>/logs/<rule>/<job>.log``.

    Returns
    -------
    OSError
        The same ``errno`` with the message the manifest and the run quote.
    """
    return OSError(
        error.errno,
        f"no space left on the device of {Path(log_path).parent.parent.parent}"
        f" ({error.strerror}): free space or choose another output_dir, then "
        "rerun the same command",
    )


def _tmp_name(path: Path) -> Path:
    """Return this process's temporary name for ``path``, removing stale ones.

    A killed job leaves ``<name>.tmp-<pid>`` behind; Snakemake runs at most one
    job per output at a time, so any other temporary file of the same output
    is such a leftover and is removed when the output is written again.
    """
    own = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    for stale in path.parent.glob(f"{glob_escape(path.name)}.tmp-*"):
        if stale != own:
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
    return own


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path that is renamed to ``path`` if the block succeeds.

    On an exception the temporary file is removed and the exception re-raised,
    so an output that exists is always complete (algorithms.md §7.2).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8, LF line endings) to ``path`` atomically."""
    with (
        atomic_output(path) as tmp,
        open(tmp, "w", encoding="utf-8", newline="\n") as fh,
    ):
        fh.write(text)
