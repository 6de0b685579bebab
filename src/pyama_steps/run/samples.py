"""Several input files in one run: the sample sheet.

``config["samples"]`` names a tab-separated sheet, one row per input file::

    sample      path                    pc      fl              fovs
    ctrl        data/ctrl.nd2
    drug_10uM   data/drug10.nd2         Phase   GFP,mCherry     0-19

``sample`` and ``path`` are required; ``pc``, ``fl`` and ``fovs`` override
``channels.pc``, ``channels.fl`` and ``fovs`` of the configuration for that
file (``fl``: a comma-separated list, ``-`` for none). Each sample gets its
own output folder ``<output_dir>/<sample>/`` with the usual layout and
manifest, and the run writes ``<output_dir>/samples_summary.tsv``.
"""

from __future__ import annotations

import copy
import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyama_steps.run.config import ConfigError

__all__ = [
    "SAMPLE_COLUMNS",
    "SampleRow",
    "read_sample_sheet",
    "sample_config",
    "summary_table",
]

#: Columns of the sheet: required first, then optional overrides.
SAMPLE_COLUMNS = ("sample", "path", "pc", "fl", "fovs")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class SampleRow:
    """One row of the sample sheet."""

    sample: str
    path: str
    pc: str | None = None
    fl: str | None = None
    fovs: str | None = None


def read_sample_sheet(path: str | Path) -> list[SampleRow]:
    """Read and check a sample sheet.

    Parameters
    ----------
    path : str or Path
        A tab-separated file with a header line (``#`` lines are comments).

    Returns
    -------
    list of SampleRow
        The rows, in file order.

    Raises
    ------
    ConfigError
        For a missing file, a missing or unknown column, an empty or invalid
        sample name, a repeated name, or a row without a path; the message
        names the line.
    """
    sheet = Path(path)
    if not sheet.is_file():
        raise ConfigError(
            f"config key 'samples' = {str(path)!r}: the sample sheet does not exist."
        )
    with open(sheet, encoding="utf-8", newline="") as fh:
        numbered = [
            (number, ln)
            for number, ln in enumerate(fh, start=1)
            if ln.strip() and not ln.lstrip().startswith("#")
        ]
    for number, line in numbered:
        if "\t" not in line.strip() and re.search(r"[ ,;]", line.strip()):
            raise ConfigError(
                f"sample sheet {str(path)!r}, line {number}: no tab, but spaces or "
                "commas: the columns must be separated by tabs (an editor may have "
                "turned them into spaces; a spreadsheet can save 'Text (tab "
                "delimited)')."
            )
    lines = [ln for _, ln in numbered]
    reader = csv.DictReader(lines, delimiter="\t")
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in ("sample", "path") if c not in header]
    unknown = [c for c in header if c not in SAMPLE_COLUMNS]
    if missing or unknown:
        problem = (
            f"lacks the column(s) {missing}"
            if missing
            else f"has unknown column(s) {unknown}"
        )
        raise ConfigError(
            f"sample sheet {str(path)!r} {problem}; its tab-separated columns are "
            f"{', '.join(SAMPLE_COLUMNS)} (sample and path required)."
        )
    rows: list[SampleRow] = []
    seen: set[str] = set()
    for number, raw in enumerate(reader, start=2):
        values = {k.strip(): (v or "").strip() for k, v in raw.items() if k}
        name = values.get("sample", "")
        where = f"sample sheet {str(path)!r}, data line {number - 1}"
        if not _NAME.match(name):
            raise ConfigError(
                f"{where}: sample name {name!r} must start with a letter or digit and "
                "hold only letters, digits, '.', '_' and '-' (it names a folder)."
            )
        if name in seen:
            raise ConfigError(f"{where}: sample name {name!r} is used twice.")
        seen.add(name)
        if not values.get("path"):
            raise ConfigError(f"{where}: sample {name!r} has no path.")
        rows.append(
            SampleRow(
                sample=name,
                path=values["path"],
                pc=values.get("pc") or None,
                fl=values.get("fl") or None,
                fovs=values.get("fovs") or None,
            )
        )
    if not rows:
        raise ConfigError(f"sample sheet {str(path)!r} has no samples.")
    return rows


def _channel(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def sample_config(config: Mapping[str, Any], row: SampleRow) -> dict[str, Any]:
    """Return the configuration of one sample: the run's, with the row's overrides.

    ``input`` becomes the row's path and ``output_dir`` the run's
    ``output_dir/<sample>``; ``samples`` is removed.
    """
    out = copy.deepcopy(dict(config))
    out.pop("samples", None)
    out["input"] = row.path
    parent = str(config.get("output_dir", "results")).rstrip("/")
    out["output_dir"] = f"{parent}/{row.sample}"
    channels = dict(out.get("channels", {}))
    if row.pc is not None:
        channels["pc"] = _channel(row.pc)
    if row.fl is not None:
        channels["fl"] = (
            [] if row.fl == "-" else [_channel(c.strip()) for c in row.fl.split(",")]
        )
    out["channels"] = channels
    if row.fovs is not None:
        parts = [p.strip() for p in row.fovs.split(",") if p.strip()]
        out["fovs"] = parts[0] if len(parts) == 1 else parts
    return out


def summary_table(
    rows: list[tuple[str, str, Mapping[str, Any] | None]],
) -> str:
    """Build the run-level summary: one line per sample from its manifest.

    Parameters
    ----------
    rows : list of (sample, input path, manifest or None)
        ``None`` when the sample has no manifest yet.

    Returns
    -------
    str
        A TSV with the header ``sample, input, fovs, ok, failed, pending,
        cells, good_cells, manifest``.
    """
    lines = ["sample\tinput\tfovs\tok\tfailed\tpending\tcells\tgood_cells\tmanifest"]
    for sample, path, manifest in rows:
        if manifest is None:
            lines.append(f"{sample}\t{path}\t\t\t\t\t\t\t")
            continue
        status = manifest["fov_status"]
        count = {
            s: sum(1 for v in status.values() if v["status"] == s)
            for s in ("ok", "failed", "pending")
        }
        cells = sum(int(v.get("n_cells", 0)) for v in status.values())
        good = sum(int(v.get("n_good", 0)) for v in status.values())
        lines.append(
            f"{sample}\t{path}\t{len(status)}\t{count['ok']}\t{count['failed']}\t"
            f"{count['pending']}\t{cells}\t{good}\t{sample}/processing_results.yaml"
        )
    return "\n".join(lines) + "\n"
