"""File I/O: the input through bioio, the outputs on disk, and nothing that computes.

What lives here, by module:

* :mod:`~pyama_steps.io.images`: opening the input with bioio
  (:func:`open_image`, :class:`InputError`), the reader's name and version.
* :mod:`~pyama_steps.io.scenes`: what each scene (FOV) holds
  (:class:`SceneInfo`, :func:`scene_info`, :func:`scene_infos`).
* :mod:`~pyama_steps.io.timestamps`: frame timestamps and the nominal
  interval (algorithms.md §1.4).
* :mod:`~pyama_steps.io.planes`: one plane at a time (:class:`PlaneReader`,
  :func:`open_plane_reader`), through the run's plane index
  (:mod:`~pyama_steps.io.plane_index`, issue 16) or bioio, with the
  format-specific handles of :mod:`~pyama_steps.io.plane_sources`.
* :mod:`~pyama_steps.io.ingest`: the pixel conversions of the copy step (RGB to
  gray, Z projection, uint16).
* :mod:`~pyama_steps.io.stacks`: ``.npy`` stacks written and read one frame
  at a time (:class:`NpyFrameWriter`, :class:`NpyFrameReader`, §7.4).
* :mod:`~pyama_steps.io.outputs`: atomic outputs (§7.2) and full-disk errors.
* :mod:`~pyama_steps.io.paths`: output file names (§0.1).
* :mod:`~pyama_steps.io.integrity`: which input an output folder holds and
  whether its files changed (the per-job records, the input's identity).
* :mod:`~pyama_steps.io.job_record`: each job's JSON record beside its log:
  status, figures, error (what the manifest reads, §6.2).

May import: numpy, the standard library, bioio and the format libraries (lazily,
inside functions), and ``pyama_steps._typing``; no algorithm package (the
segmentation, background, tracking and traces packages read and write through
this one, never the reverse) and nothing of the run.
"""

from __future__ import annotations

from pyama_steps.io.images import (
    InputError,
    TimestampError,
    open_image,
    quiet_readers,
    reader_name,
    reader_version,
)
from pyama_steps.io.integrity import file_identity
from pyama_steps.io.outputs import (
    DISK_FULL,
    atomic_output,
    atomic_write_text,
    disk_full_error,
)
from pyama_steps.io.planes import PlaneReader, open_plane_reader
from pyama_steps.io.scenes import SceneInfo, scene_info, scene_infos
from pyama_steps.io.stacks import NpyFrameReader, NpyFrameWriter
from pyama_steps.io.timestamps import nominal_interval_min, scene_timestamps

__all__ = [
    "DISK_FULL",
    "InputError",
    "NpyFrameReader",
    "NpyFrameWriter",
    "PlaneReader",
    "SceneInfo",
    "TimestampError",
    "atomic_output",
    "atomic_write_text",
    "disk_full_error",
    "file_identity",
    "nominal_interval_min",
    "open_image",
    "open_plane_reader",
    "quiet_readers",
    "reader_name",
    "reader_version",
    "scene_info",
    "scene_infos",
    "scene_timestamps",
]
