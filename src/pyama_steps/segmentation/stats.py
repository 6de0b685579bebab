"""Per-frame figures of the segmentation checks and their JSON files (§2.8).

The segment job records a few figures per frame (:func:`phase_statistics`,
the threshold, the foreground share) and the track job the number of objects
and their median area per frame (:func:`object_statistics`); both are small
JSON files (:func:`stats_json`, read back by :func:`read_stats_json`), which
:mod:`pyama_steps.segmentation.checks` turns into findings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from pyama_steps._typing import BoolArray, IntArray, RealArray

__all__ = [
    "CELL_STATS_FIELDS",
    "SEG_STATS_FIELDS",
    "STATS_VERSION",
    "PhaseStatistics",
    "object_statistics",
    "phase_statistics",
    "read_stats_json",
    "stats_json",
]

#: Per-frame fields of the segment job's JSON, in file order.
SEG_STATS_FIELDS: Final = (
    "minimum",
    "maximum",
    "threshold",
    "foreground_fraction",
    "noise",
    "bright_fraction",
)
#: Per-frame fields of the track job's JSON, in file order.
CELL_STATS_FIELDS: Final = ("n_objects", "median_area_px", "pixel_median_area_px")
#: Fields a statistics file written before them may lack (read as NaN).
_OPTIONAL_FIELDS: Final = frozenset({"pixel_median_area_px"})
#: Version of both JSON layouts.
STATS_VERSION: Final = 1

# The sample of phase_statistics: every s-th row and column with s chosen so
# that about this many pixels are read (all of them in frames up to 128²),
# which bounds the cost per frame whatever the frame size.
_SAMPLE_PX: Final = 16384
# An object pixel is "bright" when it exceeds the background median by this
# many noise sigma; a frame whose objects are mostly bright looks like
# fluorescence. Phase contrast measured 0.01-0.04 (generator), DIC and bright
# field 0.06-0.33 (real ND2 files, with and without the halo trim),
# fluorescence 0.6-1.0 (generator and 8 real channels).
_BRIGHT_K: Final = 3.0


@dataclass(frozen=True)
class PhaseStatistics:
    """Figures of one phase-contrast frame and its mask.

    Attributes
    ----------
    minimum, maximum : float
        Smallest and largest pixel value; equal in a blank (constant) frame.
    bright_fraction : float
        Share of the sampled mask pixels brighter than the median of the
        sampled background pixels by more than ``3 * noise``; NaN when the
        sample has no mask pixel or no background pixel, or `noise` is not
        finite.
    """

    minimum: float
    maximum: float
    bright_fraction: float


def phase_statistics(
    frame: RealArray, mask: BoolArray, *, noise: float
) -> PhaseStatistics:
    """Measure what the segmentation checks need from one frame (§2.8).

    Parameters
    ----------
    frame : (Y, X) ndarray
        The phase-contrast frame, any real dtype. Not modified.
    mask : (Y, X) ndarray of bool
        Its segmentation.
    noise : float
        The background's pixel noise, ``exp(mode)`` of the log-STD histogram
        (:class:`~pyama_steps.segmentation.SegmentationFrame`); NaN when the
        frame had no threshold.

    Returns
    -------
    PhaseStatistics
        Minimum, maximum and the bright share of the mask.

    Raises
    ------
    TypeError
        If `frame` is not real or `mask` is not bool.
    ValueError
        If the shapes differ or are not 2-D and non-empty.

    Notes
    -----
    The bright share is computed on every ``s``-th row and column, ``s =
    max(1, floor(sqrt(Y·X / 16384)))``, so its cost is bounded (about 0.3 ms
    for a 1024² frame); the minimum and maximum use every pixel.

    Examples
    --------
    >>> import numpy as np
    >>> frame = np.full((64, 64), 100, dtype=np.uint16)
    >>> frame[20:40, 20:40] = 1000  # a bright object on a dark background
    >>> mask = frame > 500
    >>> phase_statistics(frame, mask, noise=10.0).bright_fraction
    1.0
    """
    image = np.asarray(frame)
    if image.dtype.kind not in "iuf":
        raise TypeError(f"frame must have a real dtype; got dtype {image.dtype!r}")
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
        raise TypeError(
            "mask must be a bool ndarray; got "
            f"{getattr(mask, 'dtype', type(mask).__name__)!r}"
        )
    if image.ndim != 2 or image.size == 0 or mask.shape != image.shape:
        raise ValueError(
            "frame and mask must be non-empty 2-D arrays of the same shape; got "
            f"{image.shape!r} and {mask.shape!r}"
        )
    minimum = float(image.min())
    maximum = float(image.max())
    bright = math.nan
    if math.isfinite(noise) and maximum > minimum:
        step = max(1, math.isqrt(image.size // _SAMPLE_PX))
        values = image[::step, ::step]
        inside = mask[::step, ::step]
        objects = values[inside]
        background = values[~inside]
        if objects.size and background.size:
            level = float(np.median(background)) + _BRIGHT_K * noise
            bright = float(np.count_nonzero(objects > level)) / objects.size
    return PhaseStatistics(minimum=minimum, maximum=maximum, bright_fraction=bright)


def object_statistics(areas: IntArray) -> tuple[int, float, float]:
    """Return the number, median area and pixel-median area of a frame's objects.

    Parameters
    ----------
    areas : (n,) ndarray of int
        Pixel counts of the frame's connected components.

    Returns
    -------
    n : int
        ``len(areas)``.
    median : float
        Median area in px; NaN without objects.
    pixel_median : float
        The area of the object that holds the median foreground pixel (the
        median of the areas weighted by themselves: half of the foreground lies
        in objects at least this large); NaN without objects. A few colonies
        segmented as single objects leave the median small but make this
        large.
    """
    values = np.asarray(areas)
    if values.ndim != 1:
        raise ValueError(f"areas must be 1-D; got shape {values.shape!r}")
    if values.size == 0:
        return 0, math.nan, math.nan
    ordered = np.sort(values.astype(np.int64))
    cumulative = np.cumsum(ordered)
    # The first object whose cumulative area reaches half of the foreground.
    half = np.searchsorted(cumulative, cumulative[-1] / 2.0)
    return int(values.size), float(np.median(values)), float(ordered[half])


# --------------------------------------------------------------------------
# JSON files
# --------------------------------------------------------------------------


def _json_number(value: Any) -> Any:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    number = float(value)
    if not math.isfinite(number):
        return None
    # six significant digits: plenty for the checks, and short
    return float(f"{number:.6g}")


def stats_json(columns: Mapping[str, Sequence[Any]], *, fields: Sequence[str]) -> str:
    """Serialise per-frame statistics as the JSON text of one job (§2.8).

    Parameters
    ----------
    columns : mapping
        Field name -> one value per frame; every field of `fields` must be
        present, with the same length.
    fields : sequence of str
        :data:`SEG_STATS_FIELDS` or :data:`CELL_STATS_FIELDS`.

    Returns
    -------
    str
        ``{"version": 1, "n_frames": T, <field>: [...], ...}`` with NaN
        written as ``null`` and floats to six significant digits, in the
        format of algorithms.md §7.1, ending with a newline.
    """
    lengths = {len(columns[f]) for f in fields}
    if len(lengths) > 1:
        raise ValueError(f"statistics have different lengths: {sorted(lengths)!r}")
    content: dict[str, Any] = {
        "version": STATS_VERSION,
        "n_frames": lengths.pop() if lengths else 0,
    }
    for f in fields:
        content[f] = [_json_number(v) for v in columns[f]]
    return json.dumps(content, indent=1, ensure_ascii=True) + "\n"


def read_stats_json(text: str, *, fields: Sequence[str], name: str) -> dict[str, Any]:
    """Parse :func:`stats_json` output back into float64 arrays.

    Parameters
    ----------
    text : str
        The file's content.
    fields : sequence of str
        The fields expected.
    name : str
        The file, for the error message.

    Returns
    -------
    dict
        ``n_frames`` and one float64 array per field (``null`` -> NaN).

    Raises
    ------
    ValueError
        If the text is not such a file.
    """
    try:
        content = json.loads(text)
        n = int(content["n_frames"])
        out: dict[str, Any] = {"n_frames": n}
        for f in fields:
            if f in _OPTIONAL_FIELDS and f not in content:
                out[f] = np.full(n, math.nan)
                continue
            values = [math.nan if v is None else float(v) for v in content[f]]
            if len(values) != n:
                raise ValueError(f"{f} has {len(values)} values for {n} frames")
            out[f] = np.array(values, dtype=np.float64)
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"{name} is not a valid statistics file ({type(e).__name__}: {e}); "
            "delete it and rerun the same command to recompute it"
        ) from e
    return out
