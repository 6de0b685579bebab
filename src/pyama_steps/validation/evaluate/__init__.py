"""Accuracy of a run against the synthetic generator's ground truth (algorithms.md §8).

:func:`evaluate_run` compares a finished run (its ``processing_results.yaml``
and the files it lists) with the truth written by
:mod:`pyama_steps.validation.synth_io` and returns the §8.1 metrics per FOV and
pooled over every frame and FOV; :func:`format_table` renders them;
``pyama-steps evaluate TRUTH_DIR OUTPUT_DIR`` (:mod:`pyama_steps.cli`) is the
command line.

Everything streams: each FOV's true and predicted label stacks are read one
frame at a time with :class:`~pyama_steps.io.NpyFrameReader`, one label-pair
contingency count per frame gives every IoU
(:func:`~pyama_steps.tracking.overlap_pairs`), and only per-(cell, frame)
tables are kept (algorithms.md §7.4).

Metric definitions
------------------
Every IoU match is one-to-one per frame, at ``IoU >= iou_threshold`` (0.5):
above 0.5 a match is unique by construction, and the exact ties at 0.5 are
resolved by :func:`~pyama_steps.tracking.assign` (largest total IoU).
Objects are ids: a true object is a truth id present in a frame, a predicted
object a track id present in a frame of ``seg_labeled``.

* ``dice``: ``2|S ∩ G| / (|S| + |G|)`` over all pixels of all frames.
* ``precision``/``recall``/``f1``: matched objects over predicted / true
  objects, counted per frame and pooled.
* ``area_ratio_median`` (``_p10``, ``_p90``): over the matched pairs whose
  true cell does not touch the frame edge, the predicted object's pixel count
  over the true cell's; ``area_ratio_pooled`` the ratio of their sums.
* ``complete_fraction``: of the *eligible* true cells (truth ids whose pixels
  never touch the first/last row or column and that are present in >= 2
  frames of the truth labels), the share whose every present frame is matched
  to one and the same predicted id, that id being matched to no other true
  cell in any frame of the FOV.
* ``id_switches``: per true cell, the number of changes of the matched
  predicted id between consecutive *matched* frames (unmatched frames are
  skipped), summed; ``id_switches_per_100_cells`` divides by the number of
  true cells.
* ``traced_fraction``: the share of true cells whose main predicted id (the
  one matched in most frames; ties: smaller id) has rows in the predicted
  traces CSV, ``good`` or not. Never-matched cells are not traced.
* Trace errors per fluorescence channel ``c``, over the (cell, frame) pairs
  of complete tracks: ``|intensity_total - true_total| / true_total`` and the
  same for the means, median and 90th percentile, and Pearson r of
  ``intensity_total`` against ``true_total``. A pair is *excluded* when
  ``true_total <= min_signal_fraction * P95`` (P95: 95th percentile of
  ``true_total`` over that FOV's complete-track pairs) or ``true_total <= 0``;
  it is *unmeasured* when the prediction has no row or a NaN intensity.
* Divisions: a true division is a truth id that is the ``parent`` of >= 2
  truth ids; a predicted division a run id that is the ``parent`` of >= 2 run
  ids (each id's ``parent`` from the lineage CSV when the manifest lists one,
  else from the traces CSV). A true division is found
  when the predicted id matched to the mother in her last present frame is
  the ``parent`` of every predicted id matched to a daughter in the
  daughter's first present frame (all matched, all distinct). A predicted
  division is true when it is the predicted mother of a found division.
* Background: per channel, ``mean |bg - true_bg|`` over the pixels of every
  frame that is not dropped, and that as a percentage of ``mean(true_bg)``.
  ``bg`` is ``fl_background`` when written, else ``(fl - fl_corrected) / w``
  with ``w = params.background.weight > 0``.
* ``time_max_abs_err_min``: the largest ``|time - times_min[frame]|`` over the
  predicted trace rows.
* ``ctc_det``, ``ctc_tra``, ``ctc_ct``, ``ctc_tf``, ``ctc_bc``, ``ctc_chota``:
  the Cell Tracking Challenge measures DET, TRA, CT, TF, BC(2) and CHOTA,
  computed by py-ctcmetrics (docs/ctc.md) on CTC exports of the run and of
  the truth (:mod:`pyama_steps.validation.ctc`); only with ``ctc=True`` and the library
  installed. ``overall`` holds the mean over FOVs weighted by each FOV's
  number of true cell-frames (for DET this is the value of the pooled
  graphs), except BC, the F1 of the pooled division counts. A FOV without
  true cells has NaN and weight 0; a FOV without predicted cells scores DET,
  TRA, CT and CHOTA 0 (their CTC definitions; the library rejects an empty
  result) and TF NaN.

Ratios with a zero denominator are NaN, never 0 or 1.

Modules: ``matching`` (per-frame IoU matching and segmentation counts),
``tracks`` (per-cell track tables, id switches, divisions), ``traces`` (trace
errors), ``tally`` (raw counts per FOV, pooled, and the metrics), ``inputs``
(truth, manifest and CSV files), ``fov`` (one FOV's passes), ``ctc_scores``
(the CTC measures), ``evaluation`` (:func:`evaluate_run`), ``report``
(:func:`format_table`). Imports ``io``, ``paths``, ``tracking`` and
:mod:`pyama_steps.validation.ctc`, never the run modules.
"""

from __future__ import annotations

from pyama_steps.validation.evaluate.ctc_scores import (
    CTC_BC_TOLERANCE,
    CTC_INSTALL_HINT,
)
from pyama_steps.validation.evaluate.evaluation import Evaluation, evaluate_run
from pyama_steps.validation.evaluate.report import format_table

__all__ = [
    "CTC_BC_TOLERANCE",
    "CTC_INSTALL_HINT",
    "Evaluation",
    "evaluate_run",
    "format_table",
]
