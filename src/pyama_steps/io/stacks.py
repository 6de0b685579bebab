"""Frame-wise ``.npy`` stacks: written and read one (Y, X) frame at a time.

Frames are read and written at their offset in the file, so the resident
memory of a job stays flat in T (algorithms.md §7.4).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pyama_steps.io.outputs import _tmp_name

__all__ = ["NpyFrameReader", "NpyFrameWriter"]


def _header_bytes(shape: tuple[int, ...], dtype: np.dtype[Any]) -> bytes:
    import io as _io

    buf = _io.BytesIO()
    header = {
        "descr": np.lib.format.dtype_to_descr(dtype),
        "fortran_order": False,
        "shape": shape,
    }
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


class NpyFrameWriter:
    """Write a (T, Y, X) ``.npy`` stack one frame at a time, atomically.

    Parameters
    ----------
    path : str or Path
        Final path. Frames go to ``<path>.tmp-<pid>`` until :meth:`close`
        renames it.
    shape : tuple of int
        ``(T, Y, X)``.
    dtype : numpy dtype
        Little-endian dtype of the stack.

    Notes
    -----
    The header is NPY format 1.0, identical to what ``open_memmap`` writes, so
    it depends only on dtype and shape. Frames are written with ``pwrite`` at
    their offset instead of through a memory map, so no page of the stack
    stays in the process's resident memory. Use as a context manager: an
    exception removes the temporary file.
    """

    def __init__(
        self, path: str | Path, shape: tuple[int, ...], dtype: npt.DTypeLike
    ) -> None:
        self.path = Path(path)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = (
            np.dtype(dtype).newbyteorder("<")
            if np.dtype(dtype).itemsize > 1
            else np.dtype(dtype)
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = _tmp_name(self.path)
        header = _header_bytes(self.shape, self.dtype)
        self._offset = len(header)
        self._frame_bytes = (
            int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        )
        self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._written = np.zeros(self.shape[0], dtype=bool)
        try:
            os.write(self._fd, header)
            os.ftruncate(self._fd, self._offset + self._frame_bytes * self.shape[0])
        except BaseException:
            # e.g. a full disk: no writer exists for `with` to abort
            self.abort()
            raise

    def write(self, t: int, frame: npt.NDArray[Any]) -> None:
        """Write frame ``t`` (shape ``(Y, X)``, cast to the stack's dtype)."""
        if frame.shape != self.shape[1:]:
            raise ValueError(
                f"frame {t} has shape {frame.shape!r}, expected {self.shape[1:]!r}"
            )
        data = np.ascontiguousarray(frame, dtype=self.dtype)
        os.pwrite(self._fd, data.tobytes(), self._offset + t * self._frame_bytes)
        self._written[t] = True

    def close(self) -> None:
        """Check every frame was written, close and rename to the final path."""
        os.close(self._fd)
        self._fd = -1
        missing = np.flatnonzero(~self._written)
        if missing.size:
            self.abort()
            raise RuntimeError(
                f"{self.path.name}: frames {missing.tolist()[:5]} were never written"
            )
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Close and remove the temporary file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()

    def __enter__(self) -> NpyFrameWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class NpyFrameReader:
    """Read frames of a (T, Y, X) ``.npy`` stack with explicit reads.

    Parameters
    ----------
    path : str or Path
        A C-order ``.npy`` file.

    Notes
    -----
    Reading with ``pread`` instead of a memory map keeps the process's resident
    memory at one frame whatever T is (algorithms.md §7.4).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            self._offset = fh.tell()
        if fortran or len(shape) != 3:
            raise ValueError(
                f"{self.path}: expected a C-order (T, Y, X) stack, got shape "
                f"{shape!r} (fortran_order={fortran})"
            )
        self.shape: tuple[int, int, int] = tuple(int(s) for s in shape)  # type: ignore[assignment]
        self.dtype = np.dtype(dtype)
        self._frame_bytes = self.shape[1] * self.shape[2] * self.dtype.itemsize
        self._fd = os.open(self.path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, t: int) -> npt.NDArray[Any]:
        """Return frame ``t`` as a new ``(Y, X)`` array."""
        if not 0 <= t < self.shape[0]:
            raise IndexError(f"frame {t} out of range for {self.shape[0]} frames")
        out = np.empty(self.shape[1:], dtype=self.dtype)
        # numpy's stubs do not declare the buffer protocol for ndarray yet.
        view = memoryview(out.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
        n = os.preadv(self._fd, [view], self._offset + t * self._frame_bytes)
        if n != self._frame_bytes:
            raise OSError(
                f"{self.path}: frame {t} is truncated "
                f"({n} of {self._frame_bytes} bytes)"
            )
        return out

    def __iter__(self) -> Iterator[npt.NDArray[Any]]:
        for t in range(self.shape[0]):
            yield self.read(t)

    def close(self) -> None:
        """Close the file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> NpyFrameReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
