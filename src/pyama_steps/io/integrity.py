"""Trusting an output folder: which input it holds, and whether its files changed.

One output folder holds one experiment (algorithms.md §6.4): ``metadata.json``
records the input's identity (path, size, modification time and a BLAKE2b hash
of its first and last 2 MiB), and a run whose input is another file stops
before any job (:func:`input_mismatch`). Files of another base name beside the
run's own are listed (:func:`stale_files`), never taken into the manifest.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import mmap
import os
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pyama_steps.io.outputs import DISK_FULL, atomic_write_text, disk_full_error

__all__ = [
    "RECORDS",
    "SAMPLE_BYTES",
    "config_hash",
    "file_digest",
    "file_identity",
    "input_fingerprint",
    "input_mismatch",
    "read_records",
    "record_outputs",
    "record_path",
    "stale_files",
    "verify_files",
    "write_record",
]

#: Bytes hashed at each end of the input for its fingerprint (2 MiB + 2 MiB).
SAMPLE_BYTES = 2 << 20


def _sample_digest(path: Path, size: int, *, sample_bytes: int) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(str(size).encode())
    with open(path, "rb") as fh:
        digest.update(fh.read(sample_bytes))
        if size > sample_bytes:
            fh.seek(max(sample_bytes, size - sample_bytes))
            digest.update(fh.read(sample_bytes))
    return digest.hexdigest()


def input_fingerprint(
    path: str | Path, *, sample_bytes: int = SAMPLE_BYTES
) -> dict[str, Any]:
    """Identify an input file cheaply: size, mtime and a hash of both ends.

    Parameters
    ----------
    path : str or Path
        The input file (a folder, e.g. OME-Zarr: every file's relative name
        and size, and the first file's ends).
    sample_bytes : int
        Bytes hashed at the start and at the end of the file.

    Returns
    -------
    dict
        ``size_bytes``, ``mtime_ns`` and ``sample_blake2b`` (32 hex digits:
        BLAKE2b-128 of the size, the first and the last ``sample_bytes``).
    """
    p = Path(path)
    st = p.stat()
    if not p.is_dir():
        digest = _sample_digest(p, st.st_size, sample_bytes=sample_bytes)
        return {
            "size_bytes": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "sample_blake2b": digest,
        }
    h = hashlib.blake2b(digest_size=16)
    total = 0
    for f in sorted(q for q in p.rglob("*") if q.is_file()):
        size = f.stat().st_size
        total += size
        h.update(f"{f.relative_to(p)}\0{size}\n".encode())
    return {
        "size_bytes": total,
        "mtime_ns": st.st_mtime_ns,
        "sample_blake2b": h.hexdigest(),
    }


def file_identity(path: str | Path, *, method: str = "sha256") -> dict[str, Any]:
    """Identify the input file by size and SHA-256 or modification time.

    Parameters
    ----------
    path : str or Path
        The input file.
    method : {'sha256', 'stat'}
        ``sha256`` hashes the content in 1 MiB chunks; ``stat`` records
        ``mtime_ns``.

    Returns
    -------
    dict
        ``{'size_bytes': ..., 'sha256': ...}`` or ``{'size_bytes': ...,
        'mtime_ns': ...}``.
    """
    p = Path(path)
    st = p.stat()
    if method == "stat":
        return {"size_bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
    if method != "sha256":
        raise ValueError(f"method must be 'sha256' or 'stat', got {method!r}")
    digest = hashlib.sha256()
    if p.is_dir():
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            digest.update(str(f.relative_to(p)).encode())
            with open(f, "rb") as fh:
                for chunk in iter(functools.partial(fh.read, 1 << 20), b""):
                    digest.update(chunk)
    else:
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return {"size_bytes": st.st_size, "sha256": digest.hexdigest()}


def config_hash(config: Mapping[str, Any]) -> str:
    """Hash a configuration (BLAKE2b-128 of its sorted JSON).

    Parameters
    ----------
    config : mapping
        The validated configuration, or the part of it to identify.

    Returns
    -------
    str
        32 hex digits; equal configurations give equal hashes.
    """
    text = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def input_mismatch(
    *,
    recorded: Mapping[str, Any],
    current: Mapping[str, Any],
    current_path: str,
    output_dir: str,
    base: str,
) -> str | None:
    """Say why an output folder's recorded input is not the current input.

    Parameters
    ----------
    recorded : mapping
        ``metadata.json``'s ``input`` entry (``path``, ``size_bytes`` and,
        when written by this version, ``sample_blake2b``).
    current : mapping
        :func:`input_fingerprint` of the current input.
    current_path : str
        The current input as configured.
    output_dir : str
        The output folder (named in the message).
    base : str
        The current input's base name (the proposed folder).

    Returns
    -------
    str or None
        The message (without the ``pyama-steps:`` prefix) when the folder
        holds another input's results, else None. The same content under
        another path or with another modification time is the same input.
    """
    same_size = recorded.get("size_bytes") == current["size_bytes"]
    sample = recorded.get("sample_blake2b")
    same = same_size and (sample is None or sample == current["sample_blake2b"])
    if same:
        return None
    old = recorded.get("path", "?")
    return (
        f"output_dir {output_dir!r} holds the results of {old!r} "
        f"({recorded.get('size_bytes', '?')} bytes), not of the input "
        f"{current_path!r} ({current['size_bytes']} bytes): one output folder holds "
        f"one experiment. Choose another output_dir (e.g. --config "
        f"output_dir=results/{base}), or delete {output_dir!r} to process the new "
        "input there."
    )


def stale_files(
    *, out_dir: str | Path, base: str, fov_dirs: Iterable[str]
) -> list[str]:
    """List the files of another base name in the run's FOV folders.

    Parameters
    ----------
    out_dir : str or Path
        The output folder.
    base : str
        The run's base name: its files are ``fov_NNN/{base}_fov_NNN_*``.
    fov_dirs : iterable of str
        The run's FOV folder names (``fov_000``, ...).

    Returns
    -------
    list of str
        Paths relative to ``out_dir``, sorted; empty when there are none.
        Temporary files of an interrupted write (``.tmp-``) are not listed.
    """
    out = Path(out_dir)
    found: list[str] = []
    for name in fov_dirs:
        folder = out / name
        if not folder.is_dir():
            continue
        own = f"{base}_{name}_"
        for f in folder.iterdir():
            if f.is_file() and not f.name.startswith(own) and ".tmp-" not in f.name:
                found.append(f"{name}/{f.name}")
    return sorted(found)


# --------------------------------------------------------------------------
# Output records and verification (algorithms.md §6.5)
# --------------------------------------------------------------------------

#: Folder of the per-job records, beside logs/ and benchmarks/.
RECORDS = "records"
_CHUNK = 1 << 26


def file_digest(path: str | Path) -> dict[str, Any]:
    """Return the size and CRC-32 of a file, mapped and read in 64 MiB chunks.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    dict
        ``{'size_bytes': n, 'crc32': '<8 hex digits>'}``.

    Notes
    -----
    CRC-32 (zlib's, as in gzip and PNG) runs at ~3.5 GB/s on one core here,
    5x BLAKE2b and 2.5x SHA-256 with SHA instructions: the outputs of a run are
    hashed after every job, so the hash must cost little next to writing
    them. It detects truncation, lost blocks and edits; it is no protection
    against deliberate forgery.
    """
    crc = 0
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size:
            # A read-only map: the CRC reads the page cache in place, without
            # copying the file into Python buffers first.
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                view = memoryview(mm)
                try:
                    for start in range(0, size, _CHUNK):
                        crc = zlib.crc32(view[start : start + _CHUNK], crc)
                finally:
                    view.release()
    return {"size_bytes": size, "crc32": f"{crc:08x}"}


def record_path(*, out_dir: str | Path, log_path: str | Path) -> Path:
    """Return the record file of the job whose log is ``log_path``.

    ``OUT/logs/<rule>/<job>.log`` has its record at
    ``OUT/records/<rule>/<job>.json``.
    """
    rel = Path(os.path.relpath(log_path, Path(out_dir) / "logs"))
    return Path(out_dir) / RECORDS / rel.with_suffix(".json")


def write_record(
    *, out_dir: str | Path, log_path: str | Path, files: Iterable[str | Path]
) -> dict[str, dict[str, Any]]:
    """Hash a finished job's outputs and write its record.

    Parameters
    ----------
    out_dir : str or Path
        The run's output folder; the record's paths are relative to it.
    log_path : str or Path
        The job's log (names the record, :func:`record_path`).
    files : iterable of str or Path
        The job's output files.

    Returns
    -------
    dict
        ``{relative path: {'size_bytes': n, 'crc32': h}}``, as written (sorted
        JSON, no timestamps: identical runs write identical records).
    """
    out = Path(out_dir)
    entries = {
        Path(os.path.relpath(f, out)).as_posix(): file_digest(f)
        for f in sorted(map(str, files))
    }
    target = record_path(out_dir=out, log_path=log_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, json.dumps(entries, indent=1, sort_keys=True) + "\n")
    return entries


def record_outputs(*, log_path: str, files: Iterable[str | Path]) -> None:
    """:func:`write_record` for a rule's job: the run folder is the log's.

    Parameters
    ----------
    log_path : str
        The job's log, ``<output_dir>/logs/<rule>/<job>.log``.
    files : iterable of str or Path
        The job's output files.
    """
    head, sep, _ = str(log_path).rpartition("logs/")
    out_dir = (head.rstrip("/") or ".") if sep else "."
    try:
        write_record(out_dir=out_dir, log_path=log_path, files=files)
    except OSError as e:
        if e.errno not in DISK_FULL:
            raise
        # As a step's own failure (steps.run_logged): the job's record says
        # it failed, its log ends with the ERROR line, and the run says which
        # device is full.
        from pyama_steps.io.job_record import error_line, mark_job_failed

        full = disk_full_error(e, log_path=log_path)
        try:  # best effort: on a full disk the line may not fit either
            with open(log_path, "a", encoding="utf-8") as fh:
                fh.write(f"ERROR {error_line(full)}\n")
        except OSError:
            pass
        with contextlib.suppress(OSError):
            mark_job_failed(log_path, error=error_line(full))
        raise full from e


def read_records(out_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Gather every job record of a run folder.

    Parameters
    ----------
    out_dir : str or Path
        The run's output folder.

    Returns
    -------
    dict
        ``{relative path: {'size_bytes', 'crc32'}}`` over all records, sorted
        by path. An unreadable record is skipped (its job reruns when its
        output fails :func:`verify_files`).
    """
    merged: dict[str, dict[str, Any]] = {}
    root = Path(out_dir) / RECORDS
    for rec in sorted(root.glob("*/*.json")):
        try:
            merged.update(json.loads(rec.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return dict(sorted(merged.items()))


def verify_files(
    *, out_dir: str | Path, records: Mapping[str, Mapping[str, Any]]
) -> list[tuple[str, str]]:
    """Re-hash recorded files; say which are missing, truncated or edited.

    Parameters
    ----------
    out_dir : str or Path
        The run's output folder.
    records : mapping
        ``{relative path: {'size_bytes', 'crc32'}}`` (:func:`read_records`).

    Returns
    -------
    list of (str, str)
        ``(relative path, problem)`` for each file that fails, in path order;
        the problem is ``missing``, ``truncated (n of m bytes)``, ``size
        changed (n, recorded m bytes)`` or ``edited (checksum differs)``.
    """
    out = Path(out_dir)
    problems: list[tuple[str, str]] = []
    for rel, rec in records.items():
        path = out / rel
        if not path.is_file():
            problems.append((rel, "missing"))
            continue
        size, want = path.stat().st_size, int(rec["size_bytes"])
        if size < want:
            problems.append((rel, f"truncated ({size} of {want} bytes)"))
        elif size != want:
            problems.append((rel, f"size changed ({size}, recorded {want} bytes)"))
        elif file_digest(path)["crc32"] != rec["crc32"]:
            problems.append((rel, "edited (checksum differs)"))
    return problems
