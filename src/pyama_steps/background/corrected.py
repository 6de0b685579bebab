"""The corrected fluorescence of a job: raw frames minus the background model.

``correct_background`` writes, per FOV and fluorescence channel, the per-frame
*model* of the background surface (``fl_background_model``: a few kB per frame,
docs/algorithms.md §3.6). Every later step (traces, QC figures, exports, the
evaluation) gets the background and the corrected fluorescence from that model
and the raw stack through :class:`CorrectedReader`, the one place that decides
where corrected frames come from. The values are bit for bit those the
background step computed: the surface is a deterministic function of the model
(:func:`~pyama_steps.background.background_surface`), and the subtraction is
:func:`~pyama_steps.background.correct_frame`.

May import: the background modules and ``io``'s stack reader. Holds no
Snakemake or configuration logic.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from pyama_steps.background.estimate import background_surface, correct_frame
from pyama_steps.background.grids import spline_axis, tile_grid
from pyama_steps.io import NpyFrameReader

__all__ = ["CorrectedReader"]


class CorrectedReader:
    """Background and corrected frames of one fluorescence stack.

    Parameters
    ----------
    fl : str or Path
        Raw fluorescence stack (T, Y, X), ``.npy``.
    model : str or Path
        Its ``fl_background_model`` stack (T, a, b) of float64.
    params : mapping
        The ``background`` configuration section the model was estimated with
        (``method``, ``knot_spacing_px``, ``tile_size``, ``tile_overlap``,
        ``spline_degree``, ``weight``).

    Raises
    ------
    ValueError
        If the stacks' frame counts differ or the model does not fit the
        options and frame size.

    Notes
    -----
    Memory: one raw frame and one surface at a time; frames may be read in any
    order (each frame's model is complete on its own).
    """

    def __init__(
        self, *, fl: str | Path, model: str | Path, params: Mapping[str, Any]
    ) -> None:
        self.raw_reader = NpyFrameReader(fl)
        try:
            self.model_reader = NpyFrameReader(model)
            self.shape = self.raw_reader.shape
            self.weight = float(params["weight"])
            self._options: dict[str, Any] = {
                "shape": self.shape[1:],
                "method": params["method"],
                "knot_spacing_px": float(params["knot_spacing_px"]),
                "tile_size": int(params["tile_size"]),
                "tile_overlap": float(params["tile_overlap"]),
                "spline_degree": int(params["spline_degree"]),
            }
            if self.model_reader.shape[0] != self.shape[0]:
                raise ValueError(
                    f"{self.model_reader.path.name} has {self.model_reader.shape[0]} "
                    f"frames, {self.raw_reader.path.name} {self.shape[0]}: rerun "
                    "the background step of this FOV"
                )
            y, x = self.shape[1:]
            spacing = self._options["knot_spacing_px"]
            if self._options["method"] == "fit":
                self._options["axis_y"] = spline_axis(y, knot_spacing_px=spacing)
                self._options["axis_x"] = spline_axis(x, knot_spacing_px=spacing)
            else:
                size, overlap = (
                    self._options["tile_size"],
                    self._options["tile_overlap"],
                )
                self._options["grid_y"] = tile_grid(
                    y, tile_size=size, tile_overlap=overlap
                )
                self._options["grid_x"] = tile_grid(
                    x, tile_size=size, tile_overlap=overlap
                )
        except BaseException:
            self.close()
            raise

    def __len__(self) -> int:
        return self.shape[0]

    def raw(self, t: int) -> npt.NDArray[Any]:
        """Return raw frame ``t``."""
        return self.raw_reader.read(t)

    def background(self, t: int) -> npt.NDArray[np.float32]:
        """Return the background surface of frame ``t`` (float32)."""
        return background_surface(self.model_reader.read(t), **self._options)

    def corrected(
        self, t: int, raw: npt.NDArray[Any] | None = None
    ) -> npt.NDArray[np.float32]:
        """Return corrected frame ``t``; pass `raw` when it is already read."""
        frame = self.raw(t) if raw is None else raw
        return correct_frame(frame, self.background(t), weight=self.weight)

    def close(self) -> None:
        """Close both stacks."""
        for name in ("raw_reader", "model_reader"):
            reader = getattr(self, name, None)
            if reader is not None:
                reader.close()

    def __enter__(self) -> CorrectedReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
