"""The run summary: one row per FOV from the manifest, as a table and HTML.

:func:`summary_table` lists every FOV's status, cells, good cells, frames and
checks from the manifest (algorithms.md §6.2); :func:`summary_html` renders it
for Snakemake's report. No file I/O here; :func:`pyama_steps.report.qc.write_summary`
writes it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any, Final

import pandas as pd

__all__ = ["SUMMARY_COLUMNS", "summary_html", "summary_table"]

#: Columns of :func:`summary_table`, in order.
SUMMARY_COLUMNS: Final = (
    "fov",
    "status",
    "cells",
    "good_cells",
    "frames",
    "warnings",
    "step",
    "message",
    "log",
    "checks",
)


def summary_table(manifest: Mapping[str, Any], meta: Mapping[str, Any]) -> pd.DataFrame:
    """One row per FOV of the run: status, cells, good cells, frames, failure.

    Parameters
    ----------
    manifest : mapping
        The parsed ``processing_results.yaml`` (algorithms.md §6.2).
    meta : mapping
        The parsed ``metadata.json`` (frame counts).

    Returns
    -------
    DataFrame
        Columns :data:`SUMMARY_COLUMNS` in FOV order; ``step``, ``message``
        and ``log`` (the failed job's log, relative to the output directory)
        are empty strings unless the FOV failed. ``warnings`` counts the
        segmentation checks' warnings (algorithms.md §2.8) and ``checks``
        holds them and the notes, ``warning: <message>`` / ``note:
        <message>``, joined by ``" | "``.
    """
    rows = []
    for key, status in sorted(
        manifest["fov_status"].items(), key=lambda kv: int(kv[0])
    ):
        fov_meta = meta.get("fovs", {}).get(str(key), {})
        shape = fov_meta.get("shape_tczyx")
        rows.append(
            {
                "fov": int(key),
                "status": str(status["status"]),
                "cells": int(status.get("n_cells", 0)),
                "good_cells": int(status.get("n_good", 0)),
                "frames": int(shape[0]) if shape else 0,
                "warnings": len(status.get("warnings", [])),
                "step": str(status.get("step", "")),
                "message": str(status.get("message", "")),
                "log": str(status.get("log", "")),
                "checks": " | ".join(_check_lines(status)),
            }
        )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _check_lines(status: Mapping[str, Any]) -> list[str]:
    return [
        f"{level}: {item['message']}"
        for level, key in (("warning", "warnings"), ("note", "notes"))
        for item in status.get(key, [])
    ]


def _totals(table: pd.DataFrame) -> dict[str, int]:
    ok = table["status"] == "ok"
    return {
        "FOVs": len(table),
        "ok": int(ok.sum()),
        "failed": int((table["status"] == "failed").sum()),
        "pending": int((table["status"] == "pending").sum()),
        "cells": int(table["cells"].sum()),
        "good cells": int(table["good_cells"].sum()),
        # as in the run's closing line: frames of the FOVs that are done
        "frames": int(table.loc[ok, "frames"].sum()),
        "warnings": int(table["warnings"].sum()),
    }


_CSS: Final = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif;
       margin: 1.5rem; color: #1f2933; }
h1 { font-size: 1.3rem; margin: 0 0 .3rem 0; }
h2 { font-size: 1.1rem; margin: 0 0 .3rem 0; }
p.source { color: #52606d; font-size: .85rem; margin: 0 0 1rem 0; }
table { border-collapse: collapse; margin-bottom: 1.5rem; font-size: .9rem; }
th, td { border: 1px solid #cbd2d9; padding: .3rem .7rem; text-align: right; }
th { background: #f0f4f8; white-space: nowrap; }
.text { text-align: left; }
tr.failed td { background: #ffe3e3; }
tr.pending td { background: #fff3c4; }
tr.warned td { background: #fff3c4; }
ul.checks { font-size: .9rem; max-width: 70rem; }
ul.checks li { margin-bottom: .4rem; }
"""


def summary_html(table: pd.DataFrame, *, title: str = "pyama-steps run summary") -> str:
    """Render :func:`summary_table` as a small standalone HTML page.

    Parameters
    ----------
    table : DataFrame
        The output of :func:`summary_table`.
    title : str, optional
        Page heading.

    Returns
    -------
    str
        HTML with a totals table (FOVs, ok/failed/pending, cells, good cells,
        frames, warnings), the per-FOV table and the segmentation checks'
        warnings and notes; failed FOVs are highlighted with their step,
        error line and log file, FOVs with warnings in yellow. Text is
        HTML-escaped.
    """
    totals = _totals(table)
    head = "".join(f"<th>{html.escape(k)}</th>" for k in totals)
    vals = "".join(f"<td>{v}</td>" for v in totals.values())
    names = {
        "fov": "FOV",
        "status": "status",
        "cells": "cells",
        "good_cells": "good cells",
        "frames": "frames",
        "warnings": "warnings",
        "step": "failed step",
        "message": "error",
        "log": "log",
    }
    text_cols = {"status", "step", "message", "log"}
    shown = [c for c in SUMMARY_COLUMNS if c in names]
    rows = []
    for rec in table.to_dict("records"):
        cells = "".join(
            f'<td class="text">{html.escape(str(rec[c]))}</td>'
            if c in text_cols
            else f"<td>{html.escape(str(rec[c]))}</td>"
            for c in shown
        )
        css = "warned" if rec["status"] == "ok" and rec["warnings"] else rec["status"]
        rows.append(f'<tr class="{html.escape(str(css))}">{cells}</tr>')
    fov_head = "".join(
        f'<th class="text">{names[c]}</th>'
        if c in text_cols
        else f"<th>{names[c]}</th>"
        for c in shown
    )
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n"
        "</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        '<p class="source">From processing_results.yaml (fov_status) and '
        "metadata.json; frames count the FOVs that are ok.</p>\n"
        f"<table>\n<tr>{head}</tr>\n<tr>{vals}</tr>\n</table>\n"
        f"<table>\n<tr>{fov_head}</tr>\n"
        + "\n".join(rows)
        + "\n</table>\n"
        + _checks_html(table)
        + "</body>\n</html>\n"
    )


def _checks_html(table: pd.DataFrame) -> str:
    """Render the segmentation checks' warnings and notes, FOV by FOV (§2.8)."""
    items = [
        f'<li><span class="text">{html.escape(line)}</span></li>'
        for text in table["checks"]
        if text
        for line in str(text).split(" | ")
    ]
    if not items:
        return (
            "<h2>Segmentation checks</h2>\n<p>No warning: every FOV's "
            "segmentation passed the checks of algorithms.md §2.8.</p>\n"
        )
    return (
        "<h2>Segmentation checks</h2>\n"
        "<p>Warnings and notes of the checks of algorithms.md §2.8 (the FOVs "
        "stay ok); each names the frames and the likely fix.</p>\n"
        '<ul class="checks">\n' + "\n".join(items) + "\n</ul>\n"
    )
