"""Cell tracking by mask IoU and Hungarian assignment (algorithms.md §4).

Tracking runs in two passes so that memory stays independent of the movie
length (algorithms.md §7.4):

* **Pass 1** (:class:`LineageTracker`, or :func:`track_masks` for an iterable
  of masks) labels each frame's connected components and decides, frame by
  frame, which track every component belongs to. It keeps at most
  ``max_gap + 2`` label frames and returns one look-up table per frame
  (component label -> track id) plus the lineage records; when it finishes,
  it undoes the divisions that a daughter did not survive (segmentation
  flicker) and renumbers the ids.
* **Pass 2** (:func:`relabel_frame`) labels each frame again with the same
  function and indexes its look-up table, which gives the track-labelled frame
  in the dtype chosen after pass 1.

Two modes exist. ``lineage`` (the default) links components by mask IoU with
births, gap closing, divisions and merges. ``upstream`` reproduces PyAMA's
tracker: frame-0 seeds only and bounding-box IoU.

Modules
-------
overlap
    Connected components of a frame, the mask IoU of overlapping components
    of two frames, bounding boxes and their IoU (§4.3).
assignment
    :func:`assign`: one-to-one links of largest total IoU (§4.4).
state
    Pass 1's per-track table and held label frames (private).
split
    Step (0) of a frame: cut components that join established tracks.
divisions
    Step (2), divisions, and step (7), undoing those a daughter did not
    survive.
tracker
    :class:`LineageTracker` (pass 1) and :func:`track_masks`.
relabel
    :func:`relabel_frame` (pass 2).
lineage
    The records :class:`Track` and :class:`TrackingResult`, the lineage table
    and its CSV (§4.7).

Imports: numpy, scipy, pandas (the lineage table) and, from the package, only
``_typing``, ``_validate`` and ``_arrays``; nothing here reads or writes files by path.
"""

from __future__ import annotations

from pyama_steps.tracking.assignment import assign
from pyama_steps.tracking.lineage import (
    FATES,
    LINEAGE_COLUMNS,
    Track,
    TrackingResult,
    lineage_table,
    write_lineage_csv,
)
from pyama_steps.tracking.overlap import label_components, overlap_pairs
from pyama_steps.tracking.relabel import relabel_frame
from pyama_steps.tracking.tracker import MODES, LineageTracker, track_masks

__all__ = [
    "FATES",
    "LINEAGE_COLUMNS",
    "MODES",
    "LineageTracker",
    "Track",
    "TrackingResult",
    "assign",
    "label_components",
    "lineage_table",
    "overlap_pairs",
    "relabel_frame",
    "track_masks",
    "write_lineage_csv",
]
