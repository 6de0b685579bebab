"""Pass 1's working state: the per-track table and the held label frames."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from pyama_steps._typing import BoolArray

__all__: list[str] = []

# Fate codes of the track table; index into ``_FATE_NAMES``.
_OPEN, _DIVIDED, _MERGED, _LOST, _END = range(5)
_FATE_NAMES: Final = ("", "divided", "merged", "lost", "end")

Int64Array = npt.NDArray[np.int64]

_NO_BOXES: Final = np.zeros((0, 4), dtype=np.int64)
_NO_BOXES.setflags(write=False)
_NO_INDEX: Final = np.zeros(0, dtype=np.intp)
_NO_INDEX.setflags(write=False)
_NO_LABELS: Final = np.zeros(0, dtype=np.int32)
_NO_LABELS.setflags(write=False)
_NO_COMP: Final = np.zeros((0, 0), dtype=np.int32)
_NO_COMP.setflags(write=False)


@dataclass(frozen=True)
class _Frame:
    """One label frame of the ring buffer."""

    t: int
    comp: npt.NDArray[np.int32]
    n: int
    area: Int64Array
    lut: Int64Array
    boxes: Int64Array
    fg: npt.NDArray[np.intp]
    fg_labels: npt.NDArray[np.int32]


class _TrackTable:
    """Growable per-track state; index = track id, row 0 unused."""

    def __init__(self) -> None:
        self.count = 0
        self._cap = 0
        self.parent = np.zeros(0, dtype=np.int64)
        self.first = np.zeros(0, dtype=np.int64)
        self.last = np.zeros(0, dtype=np.int64)
        self.present = np.zeros(0, dtype=np.int64)
        self.merged_in = np.zeros(0, dtype=np.int64)
        self.marked = np.zeros(0, dtype=bool)
        self.fate = np.zeros(0, dtype=np.int8)
        self._grow(64)

    def _grow(self, need: int) -> None:
        cap = max(need, 2 * self._cap)
        for name in ("parent", "first", "last", "present", "merged_in", "marked"):
            old = getattr(self, name)
            new = np.zeros(cap, dtype=old.dtype)
            new[: old.size] = old
            setattr(self, name, new)
        fate = np.zeros(cap, dtype=np.int8)
        fate[: self.fate.size] = self.fate
        self.fate = fate
        self._cap = cap

    def new(self, parents: Int64Array, t: int) -> Int64Array:
        """Create ``len(parents)`` tracks first seen at frame `t`."""
        k = parents.size
        if self.count + k + 1 > self._cap:
            self._grow(self.count + k + 1)
        ids = np.arange(self.count + 1, self.count + k + 1, dtype=np.int64)
        self.parent[ids] = parents
        self.first[ids] = t
        self.last[ids] = t
        self.present[ids] = 1
        self.count += k
        return ids

    def see(self, ids: Int64Array, t: int) -> None:
        """Record that tracks `ids` are present at frame `t`."""
        self.last[ids] = t
        self.present[ids] += 1

    def ids(self) -> Int64Array:
        return np.arange(1, self.count + 1, dtype=np.int64)

    def is_open(self, ids: Int64Array) -> BoolArray:
        out: BoolArray = self.fate[ids] == _OPEN
        return out
