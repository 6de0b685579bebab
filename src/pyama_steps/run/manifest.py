"""The run manifest ``processing_results.yaml`` and the all-FOV ``traces.csv``.

The manifest is rebuilt from scratch from what is on disk: the configuration,
``metadata.json`` (or the in-memory run plan when that is missing), each FOV's
outputs and the job records (:mod:`pyama_steps.io.job_record`; algorithms.md
§6). It is written by the ``aggregate_results`` rule once every FOV is done,
and by the Snakefile's ``onerror`` hook when a job failed, so failed FOVs are
listed with the step and the error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from pyama_steps import __version__
from pyama_steps.io import atomic_output, atomic_write_text
from pyama_steps.io.integrity import config_hash, read_records, stale_files
from pyama_steps.io.job_record import read_job_record
from pyama_steps.io.paths import (
    LEAN_TEMPORARY_KINDS,
    MANIFEST,
    METADATA,
    TRACES_ALL,
    fov_dir,
    fov_file,
    fov_json,
    stack_file,
    stack_kind,
)
from pyama_steps.run.config import ALGORITHM_SECTIONS
from pyama_steps.segmentation.checks import Finding, check_segmentation
from pyama_steps.segmentation.stats import (
    CELL_STATS_FIELDS,
    SEG_STATS_FIELDS,
    read_stats_json,
)

__all__ = [
    "RULE_STEPS",
    "build_manifest",
    "expected_outputs",
    "fov_status",
    "log_path",
    "segmentation_findings",
    "summary_line",
    "warning_lines",
    "write_results",
]

FEATURES_PC = ["area"]
FEATURES_FL = ["intensity_total", "intensity_mean", "intensity_raw_mean"]

#: Workflow rule -> step name used in ``fov_status`` (algorithms.md §0.1).
RULE_STEPS = {
    "copy_channel": "ingest",
    "segment_phase": "segment",
    "correct_background": "background",
    "track_cells": "track",
    "extract_traces": "extract",
}

_SOFTWARE = (
    "bioio",
    "bioio-base",
    "bioio-nd2",
    "bioio-czi",
    "bioio-ome-tiff",
    "numpy",
    "scipy",
    "scikit-image",
    "pandas",
    "snakemake",
)


def log_path(
    rule: str, fov: int, *, kind: str | None = None, channel: int | None = None
) -> str:
    """Return a job's log path relative to the output directory."""
    name = f"fov_{fov:03d}"
    if kind is not None:
        name += f"_{kind}"
    if channel is not None:
        name += f"_c{channel}"
    return f"logs/{rule}/{name}.log"


def expected_outputs(
    meta: Mapping[str, Any], config: Mapping[str, Any], fov: int
) -> dict[str, list[tuple[str, str]]]:
    """List every output of one FOV with the log of the job that writes it.

    Parameters
    ----------
    meta : mapping
        ``metadata.json`` content (``base_name``, ``channels``).
    config : mapping
        The validated configuration.
    fov : int
        The FOV.

    Returns
    -------
    dict
        Rule name -> list of ``(output path, log path)`` relative to the
        output directory, in pipeline order.
    """
    base = meta["base_name"]
    pc = int(meta["channels"]["pc"]["channel"])
    fl = [int(c["channel"]) for c in meta["channels"]["fl"]]
    bg = config["background"]
    out: dict[str, list[tuple[str, str]]] = {
        "copy_channel": [
            (
                stack_file(base, fov, "pc", pc),
                log_path("copy_channel", fov, kind="pc", channel=pc),
            )
        ]
        + [
            (
                stack_file(base, fov, "fl", c),
                log_path("copy_channel", fov, kind="fl", channel=c),
            )
            for c in fl
        ],
        "segment_phase": [
            (stack_file(base, fov, "seg", pc), log_path("segment_phase", fov)),
            (fov_json(base, fov, "seg_stats"), log_path("segment_phase", fov)),
        ],
        "correct_background": [],
        "track_cells": [
            (stack_file(base, fov, "seg_labeled", pc), log_path("track_cells", fov)),
            (fov_file(base, fov, "lineage"), log_path("track_cells", fov)),
            (fov_json(base, fov, "cell_stats"), log_path("track_cells", fov)),
        ],
        "extract_traces": [
            (fov_file(base, fov, "traces"), log_path("extract_traces", fov))
        ],
    }
    for c in fl:
        lg = log_path("correct_background", fov, channel=c)
        out["correct_background"].append(
            (stack_file(base, fov, "fl_background_model", c), lg)
        )
        if bg["write_background"]:
            out["correct_background"].append(
                (stack_file(base, fov, "fl_background", c), lg)
            )
        if bg["write_corrected"]:
            out["correct_background"].append(
                (stack_file(base, fov, "fl_corrected", c), lg)
            )
    return out


def _job_figures(log: Path) -> dict[str, Any]:
    """Return the figures of the job whose log is `log` (empty without a record)."""
    record = read_job_record(log)
    return {} if record is None else dict(record["figures"])


def _count_cells(path: Path) -> tuple[int, int]:
    """Return ``(cells, good cells)`` of a per-FOV traces CSV."""
    cells: set[str] = set()
    good: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split(",")
        i_cell, i_good = header.index("cell"), header.index("good")
        for line in fh:
            parts = line.rstrip("\n").split(",")
            cells.add(parts[i_cell])
            if parts[i_good] == "True":
                good.add(parts[i_cell])
    return len(cells), len(good)


def fov_status(
    out_dir: str | Path,
    meta: Mapping[str, Any],
    config: Mapping[str, Any],
    fov: int,
) -> dict[str, Any]:
    """Return the ``fov_status`` entry of one FOV (algorithms.md §6.2).

    ``ok`` when every expected output exists (with ``outputs: lean``, every
    one that stays: the temporary stacks are removed once used, §0.2);
    ``failed`` when a job whose output is missing has a record of its failure
    (the step and the error are reported); ``pending`` otherwise.
    """
    out = Path(out_dir)
    expected = expected_outputs(meta, config, fov)
    lean = config.get("outputs") == "lean"
    missing = [
        (rule, lg)
        for rule, items in expected.items()
        for path, lg in items
        if not (out / path).exists()
        and not (lean and stack_kind(path) in LEAN_TEMPORARY_KINDS)
    ]
    gone = [
        (rule, lg)
        for rule, items in expected.items()
        for path, lg in items
        if not (out / path).exists()
    ]
    if not missing:
        fmeta = meta["fovs"][str(fov)]
        n_cells, n_good = _count_cells(out / expected["extract_traces"][0][0])
        fallback = 0
        clipped: dict[str, int] = {}
        nan: dict[str, int] = {}
        for rule in ("correct_background", "extract_traces"):
            for lg in sorted({lg for _, lg in expected[rule]}):
                fallback += int(
                    _job_figures(out / lg).get("background_fallback_frames", 0)
                )
        for path, lg in expected["copy_channel"]:
            stats = _job_figures(out / lg)
            channel = path.rsplit("_ch_", 1)[1].removesuffix(".npy")
            if stats.get("clipped_px"):
                clipped[channel] = clipped.get(channel, 0) + int(stats["clipped_px"])
            if stats.get("nan_px"):
                nan[channel] = nan.get(channel, 0) + int(stats["nan_px"])
        entry: dict[str, Any] = {
            "status": "ok",
            "time_source": fmeta["time_source"],
            "n_cells": n_cells,
            "n_good": n_good,
            "background_fallback_frames": fallback,
        }
        if config["ingest"]["dtype_policy"] == "scale":
            entry["clipped_px"] = clipped
            entry["nan_px"] = nan
        findings = segmentation_findings(out, meta, config, fov)
        entry["warnings"] = [f.to_dict() for f in findings if f.level == "warning"]
        entry["notes"] = [f.to_dict() for f in findings if f.level == "note"]
        return entry
    # the failed job: the first whose output is missing, removed temporary
    # files included (their jobs' logs say whether they failed)
    for rule, lg in gone:
        record = read_job_record(out / lg)
        if record is not None and record["status"] == "failed":
            return {
                "status": "failed",
                "step": RULE_STEPS[rule],
                "message": record["error"],
                "log": lg,
            }
    return {"status": "pending"}


def segmentation_findings(
    out_dir: str | Path,
    meta: Mapping[str, Any],
    config: Mapping[str, Any],
    fov: int,
) -> list[Finding]:
    """Run the segmentation checks (algorithms.md §2.8) on one FOV's statistics.

    Reads the ``seg_stats`` and ``cell_stats`` JSON files that the segment and
    track jobs wrote; ``qc`` and ``tracking`` of `config` set the limits.

    Raises
    ------
    ValueError
        If a statistics file is not valid (the message says to delete it and
        rerun, which recomputes it).
    """
    out = Path(out_dir)
    base = meta["base_name"]
    pc = meta["channels"]["pc"]
    seg_path = out / fov_json(base, fov, "seg_stats")
    cell_path = out / fov_json(base, fov, "cell_stats")
    seg = read_stats_json(
        seg_path.read_text(encoding="utf-8"),
        fields=SEG_STATS_FIELDS,
        name=str(seg_path),
    )
    cells = read_stats_json(
        cell_path.read_text(encoding="utf-8"),
        fields=CELL_STATS_FIELDS,
        name=str(cell_path),
    )
    tracking = config["tracking"]
    low, high = config["qc"]["cell_diameter_px"]
    return check_segmentation(
        seg,
        cells,
        fov=fov,
        channel=f"{int(pc['channel'])} ({pc['name']!r})",
        cell_diameter_px=(float(low), float(high)),
        jump_factor=float(config["qc"]["jump_factor"]),
        max_gap=int(tracking["max_gap"]) if tracking["mode"] == "lineage" else 0,
    )


def _versions() -> dict[str, str]:
    versions = {"pyama-steps": __version__}
    for name in _SOFTWARE:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def _entry(out: Path, ok: bool, channel: int, path: str) -> list[Any] | None:
    return [channel, path] if ok and (out / path).exists() else None


def build_manifest(
    out_dir: str | Path,
    meta: Mapping[str, Any],
    config: Mapping[str, Any],
    fovs: Sequence[int],
) -> dict[str, Any]:
    """Build the manifest dictionary, in the key order of algorithms.md §6.2.

    Parameters
    ----------
    out_dir : str or Path
        The output directory (where files are looked up).
    meta : mapping
        ``metadata.json`` content.
    config : mapping
        The validated configuration.
    fovs : sequence of int
        The selected FOVs.

    Returns
    -------
    dict
        The manifest, ready for :func:`yaml.safe_dump`.
    """
    out = Path(out_dir)
    base = meta["base_name"]
    ch = meta["channels"]
    pc = int(ch["pc"]["channel"])
    fl = [int(c["channel"]) for c in ch["fl"]]
    status = {f: fov_status(out, meta, config, f) for f in fovs}
    results: dict[str, Any] = {}
    for f in fovs:
        ok = status[f]["status"] == "ok"

        def many(kind: str, f: int = f, ok: bool = ok) -> list[list[Any]]:
            items = [_entry(out, ok, c, stack_file(base, f, kind, c)) for c in fl]
            return [i for i in items if i is not None]

        traces = fov_file(base, f, "traces")
        lineage = fov_file(base, f, "lineage")
        seg_stats = fov_json(base, f, "seg_stats")
        cell_stats = fov_json(base, f, "cell_stats")
        results[str(f)] = {
            "pc": _entry(out, ok, pc, stack_file(base, f, "pc", pc)),
            "fl": many("fl"),
            "seg": _entry(out, ok, pc, stack_file(base, f, "seg", pc)),
            "seg_labeled": _entry(out, ok, pc, stack_file(base, f, "seg_labeled", pc)),
            "fl_background": many("fl_background"),
            "fl_corrected": many("fl_corrected"),
            "fl_background_model": many("fl_background_model"),
            "traces": traces if ok and (out / traces).exists() else None,
            "lineage": lineage if ok and (out / lineage).exists() else None,
            "seg_stats": seg_stats if ok and (out / seg_stats).exists() else None,
            "cell_stats": cell_stats if ok and (out / cell_stats).exists() else None,
        }
    identity = dict(meta.get("input", {"path": config["input"]}))
    identity["path"] = str(config["input"])
    identity["reader"] = meta["reader"]
    identity["n_scenes"] = meta["n_scenes"]
    settings = {s: config[s] for s in ("fovs", "channels", *ALGORITHM_SECTIONS)}
    # each job's record of its outputs' sizes and checksums, per FOV (§6.5)
    records = read_records(out)
    for f in fovs:
        prefix = f"{fov_dir(f)}/"
        files = {
            k: [v["size_bytes"], v["crc32"]]
            for k, v in records.items()
            if k.startswith(prefix)
        }
        if files:
            status[f]["files"] = files
    stale = stale_files(out_dir=out, base=base, fov_dirs=[fov_dir(f) for f in fovs])
    manifest: dict[str, Any] = {
        "output_dir": str(config["output_dir"]),
        "channels": {
            "pc": {
                "channel": pc,
                "features": list(FEATURES_PC),
                "name": ch["pc"]["name"],
            },
            "fl": [
                {
                    "channel": int(c["channel"]),
                    "features": list(FEATURES_FL),
                    "name": c["name"],
                }
                for c in ch["fl"]
            ],
        },
        "results": results,
        "params": {s: dict(config[s]) for s in ALGORITHM_SECTIONS},
        "time_units": "min",
        "software": _versions(),
        "input": identity,
        "metadata": METADATA,
        "traces_all": TRACES_ALL,
        "fov_status": {str(f): status[f] for f in fovs},
        "config_hash": config_hash(settings),
    }
    if stale:  # files of another base name: listed, never taken as results
        manifest["stale_files"] = stale
    return manifest


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def write_results(
    out_dir: str | Path,
    meta: Mapping[str, Any],
    config: Mapping[str, Any],
    fovs: Sequence[int],
) -> dict[str, Any]:
    """Write ``traces.csv`` (ok FOVs) and ``processing_results.yaml`` atomically.

    Returns
    -------
    dict
        The manifest that was written.
    """
    import yaml

    out = Path(out_dir)
    manifest = build_manifest(out, meta, config, fovs)
    with atomic_output(out / TRACES_ALL) as tmp, open(tmp, "wb") as dst:
        header_written = False
        for f in fovs:
            if manifest["fov_status"][str(f)]["status"] != "ok":
                continue
            with open(out / manifest["results"][str(f)]["traces"], "rb") as src:
                header = src.readline()
                if not header_written:
                    dst.write(header)
                    header_written = True
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
        if not header_written:
            dst.write(b"")
    text = yaml.safe_dump(
        _plain(manifest), sort_keys=False, default_flow_style=None, allow_unicode=False
    )
    atomic_write_text(out / MANIFEST, text)
    return manifest


def write_results_from(
    *,
    out_dir: str | Path,
    metadata: str | Path,
    config: Mapping[str, Any],
    fovs: Sequence[int],
) -> dict[str, Any]:
    """:func:`write_results` with the metadata read from ``metadata.json``."""
    with open(metadata, encoding="utf-8") as fh:
        meta = json.load(fh)
    return write_results(out_dir, meta, config, fovs)


def summary_line(manifest: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    """One line: FOVs ok/failed/pending, cells, good cells and frames."""
    status = manifest["fov_status"]
    counts = {
        s: sum(1 for v in status.values() if v["status"] == s)
        for s in ("ok", "failed", "pending")
    }
    cells = sum(v.get("n_cells", 0) for v in status.values())
    good = sum(v.get("n_good", 0) for v in status.values())
    frames = sum(
        meta["fovs"][f]["shape_tczyx"][0]
        for f, v in status.items()
        if v["status"] == "ok"
    )
    line = (
        f"FOVs: {counts['ok']} ok, {counts['failed']} failed, "
        f"{counts['pending']} pending; "
        f"cells: {cells} ({good} good); frames: {frames}"
    )
    warned = [f for f, v in status.items() if v.get("warnings")]
    if warned:
        n = sum(len(status[f]["warnings"]) for f in warned)
        line += (
            f"; segmentation warnings: {n} in {len(warned)} FOV(s) "
            f"({', '.join(warned[:10])}{', ...' if len(warned) > 10 else ''})"
        )
    return line


def warning_lines(
    manifest: Mapping[str, Any], *, limit: int | None = None, out_dir: str = "OUT"
) -> list[str]:
    """List the segmentation warnings and notes of every FOV, one line each.

    Parameters
    ----------
    manifest : mapping
        The manifest (``fov_status``).
    limit : int, optional
        Keep at most this many lines; a last line then says how many were
        left out and how to see them.
    out_dir : str, optional
        The output directory, for that last line.

    Returns
    -------
    list of str
        ``warning: <message>`` and ``note: <message>`` lines, FOV by FOV,
        each FOV's warnings before its notes.
    """
    lines = [
        f"{level}: {item['message']}"
        for entry in manifest["fov_status"].values()
        for level, key in (("warning", "warnings"), ("note", "notes"))
        for item in entry.get(key, [])
    ]
    if limit is not None and len(lines) > limit:
        more = (
            f"... and {len(lines) - limit} more warning(s) or note(s): "
            f"`pyama-steps status {out_dir}` lists them all"
        )
        lines = [*lines[:limit], more]
    return lines
