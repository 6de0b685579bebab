"""NpyFrameWriter: atomic, frame-by-frame .npy stacks; nothing left on failure."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from pyama_steps.io import NpyFrameReader, NpyFrameWriter, stacks


def test_frames_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "s.npy"
    stack = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    with NpyFrameWriter(path, stack.shape, np.uint16) as w:
        for t in (2, 0, 1):
            w.write(t, stack[t])
    np.testing.assert_array_equal(np.load(path), stack)
    with NpyFrameReader(path) as r:
        np.testing.assert_array_equal(r.read(1), stack[1])
    assert list(tmp_path.iterdir()) == [path]


def test_a_missing_frame_leaves_nothing(tmp_path: Path) -> None:
    writer = NpyFrameWriter(tmp_path / "s.npy", (2, 3, 3), np.float32)
    with pytest.raises(RuntimeError, match="never written"), writer as w:
        w.write(0, np.zeros((3, 3)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("failing", ["write", "ftruncate"])
def test_full_disk_while_opening_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(stacks.os, failing, full)
    with pytest.raises(OSError, match="No space left"):
        NpyFrameWriter(tmp_path / "s.npy", (2, 3, 3), np.uint16)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
