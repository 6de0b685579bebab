"""Cell Tracking Challenge (CTC) export of a run's tracks and of the generator's truth.

The CTC format ("Naming and file content conventions" of
celltrackingchallenge.net) stores a tracked sequence as one 16-bit label
image per frame and a text file of tracks::

    <RES>/maskTTT.tif              uint16 (Y, X), 0 = background
    <RES>/res_track.txt            one line "L B E P" per track
    <GT>/TRA/man_trackTTT.tif      the same for the reference (ground truth)
    <GT>/TRA/man_track.txt

``TTT`` is the frame index zero-padded to three digits, or to more when the
sequence has over 1000 frames. In a track line, ``L`` is the label, ``B`` and
``E`` the first and last frame (inclusive, 0-based) and ``P`` the parent
label, 0 for none. Such a folder can be scored by any CTC tool
(py-ctcmetrics, traccuracy, the CTC's own executables) and opened in napari.

A CTC track must be present in every frame from ``B`` to ``E``, while a
pyama-steps track may skip frames (gap closing, algorithms.md §4.5). Every
gap-free *segment* of a track therefore becomes one CTC label:

* the first segment of a cell takes as parent the **last** segment of the
  cell's ``parent`` (a division: the mother's id ends, the daughters start);
* every later segment of a cell takes as parent the segment before it. A
  parent with a single child is how CTC files write a cell that was missed for
  some frames; CTC tools read it as one cell (py-ctcmetrics merges such
  chains into one trajectory for CHOTA, and AOGM matches the link to the
  reference's own gap link).

Labels are numbered from 1 in the order (cell id, first frame), so the result
depends only on the label stack and the lineage. Conversion streams: the
label stack is read twice, one frame at a time (algorithms.md §7.4), and each
output folder is written under a temporary name and renamed when complete
(§7.2). The TIFF files carry no time stamp or varying metadata, so the same
input gives byte-identical files.

Modules: ``convert`` (the pure conversion: track table, relabelled frames,
track file) and ``export`` (the result and truth folders of whole runs).
``pyama-steps export-ctc`` (:mod:`pyama_steps.cli`) is the command line.
Imports ``io`` and ``paths``, never the run modules.
"""

from __future__ import annotations

from pyama_steps.validation.ctc.convert import (
    CTC_COLUMNS,
    CTC_MAX_LABEL,
    RESULT_TRACK_FILE,
    TRUTH_TRACK_FILE,
    ctc_track_table,
    format_track_file,
    mask_name,
    relabel_frame_ctc,
    to_ctc,
)
from pyama_steps.validation.ctc.export import (
    check_export_inputs,
    export_run,
    export_truth,
    write_ctc_result,
    write_ctc_truth,
)

__all__ = [
    "CTC_COLUMNS",
    "CTC_MAX_LABEL",
    "RESULT_TRACK_FILE",
    "TRUTH_TRACK_FILE",
    "check_export_inputs",
    "ctc_track_table",
    "export_run",
    "export_truth",
    "format_track_file",
    "mask_name",
    "relabel_frame_ctc",
    "to_ctc",
    "write_ctc_result",
    "write_ctc_truth",
]
