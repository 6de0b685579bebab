"""The evaluation as plain-text or markdown tables."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from pyama_steps.validation.evaluate.ctc_scores import (
    CTC_BC_TOLERANCE,
)
from pyama_steps.validation.evaluate.evaluation import (
    Evaluation,
)


def _fmt(value: float, kind: str) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    if kind == "int":
        return f"{int(value):d}"
    if kind == "sci":
        return f"{value:.1e}"
    if kind == "pct":
        return f"{value:.2f}"
    return f"{value:.4f}"


def _render(
    headers: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool
) -> str:
    if markdown:
        lines = ["| " + " | ".join(headers) + " |"]
        lines.append("|" + "|".join("---:" for _ in headers) + "|")
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in rows
    ]
    return "\n".join(lines)


_MAIN_COLUMNS: Final = (
    ("frames", "n_frames", "int"),
    ("Dice", "dice", "frac"),
    ("P", "precision", "frac"),
    ("R", "recall", "frac"),
    ("F1", "f1", "frac"),
    ("area", "area_ratio_median", "frac"),
    ("complete", "complete_fraction", "frac"),
    ("tracks", "n_eligible_tracks", "int"),
    ("IDsw/100", "id_switches_per_100_cells", "pct"),
    ("traced", "traced_fraction", "frac"),
    ("div R", "division_recall", "frac"),
    ("div P", "division_precision", "frac"),
    ("div F1", "division_f1", "frac"),
    ("time err", "time_max_abs_err_min", "sci"),
)

_CTC_COLUMNS: Final = (
    ("DET", "ctc_det", "frac"),
    ("TRA", "ctc_tra", "frac"),
    ("CT", "ctc_ct", "frac"),
    ("TF", "ctc_tf", "frac"),
    (f"BC({CTC_BC_TOLERANCE})", "ctc_bc", "frac"),
    ("CHOTA", "ctc_chota", "frac"),
)

_CHANNEL_COLUMNS: Final = (
    ("tot med", "trace_total_rel_err_median", "frac"),
    ("tot p90", "trace_total_rel_err_p90", "frac"),
    ("mean med", "trace_mean_rel_err_median", "frac"),
    ("mean p90", "trace_mean_rel_err_p90", "frac"),
    ("r", "trace_pearson_r", "frac"),
    ("used", "trace_pairs_used", "int"),
    ("excl", "trace_pairs_excluded", "int"),
    ("unmeas", "trace_pairs_unmeasured", "int"),
    ("bg err %", "background_error_pct", "pct"),
)


def format_table(evaluation: Evaluation, *, markdown: bool = False) -> str:
    """Render an evaluation as text: one row per FOV and one for all FOVs.

    Parameters
    ----------
    evaluation : Evaluation
        The result of :func:`evaluate_run`.
    markdown : bool, optional
        Markdown tables instead of fixed-width columns.

    Returns
    -------
    str
        A segmentation/tracking table, then a trace-error table with one row
        per FOV and channel (when fluorescence channels were evaluated), then
        the CTC measures (or why they are missing). Fractions have 4
        decimals, undefined values read ``n/a``.
    """
    named = [(str(f), m) for f, m in evaluation.per_fov.items()]
    named.append(("all", evaluation.overall))
    rows = [
        [name] + [_fmt(m.get(key, math.nan), kind) for _, key, kind in _MAIN_COLUMNS]
        for name, m in named
    ]
    parts = [_render(["FOV"] + [h for h, _, _ in _MAIN_COLUMNS], rows, markdown)]
    if evaluation.fl_channels:
        ch_rows = [
            [name, str(c)]
            + [
                _fmt(m.get(f"{key}_ch_{c}", math.nan), kind)
                for _, key, kind in _CHANNEL_COLUMNS
            ]
            for name, m in named
            for c in evaluation.fl_channels
        ]
        headers = ["FOV", "ch"] + [h for h, _, _ in _CHANNEL_COLUMNS]
        parts.append(_render(headers, ch_rows, markdown))
    if evaluation.ctc_library is not None:
        ctc_rows = [
            [name] + [_fmt(m.get(key, math.nan), kind) for _, key, kind in _CTC_COLUMNS]
            for name, m in named
        ]
        caption = (
            f"Cell Tracking Challenge measures ({evaluation.ctc_library}; 'all' "
            "weights FOVs by true cell-frames, BC pools the divisions):"
        )
        table = _render(["FOV"] + [h for h, _, _ in _CTC_COLUMNS], ctc_rows, markdown)
        note = "" if evaluation.ctc_message is None else f"\n{evaluation.ctc_message}."
        parts.append(f"{caption}\n{table}{note}")
    elif evaluation.ctc_message is not None:
        parts.append(
            f"Cell Tracking Challenge measures not computed: {evaluation.ctc_message}."
        )
    return "\n\n".join(parts) + "\n"
