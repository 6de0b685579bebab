"""Reading one plane at a time: by the run's plane index, else through bioio."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pyama_steps.io.images import open_image, quiet_readers
from pyama_steps.io.plane_index import IndexedPlanes, open_indexed_planes
from pyama_steps.io.plane_sources import PlaneSource, open_plane_source

__all__ = ["PlaneReader", "open_plane_reader"]

log = logging.getLogger(__name__)


class PlaneReader:
    """Read one channel of one scene plane by plane through bioio's lazy array.

    Parameters
    ----------
    img : bioio.BioImage
        The opened image.
    fov : int
        Scene index.
    channel : int
        Channel index on the C axis.
    direct : bool
        Read OME-TIFF and CZI planes through a handle of the format library
        (below); False reads every plane through bioio's dask array.

    Notes
    -----
    The dask array is built once per reader. A plane is read by evaluating
    only the one dask task (chunk) that holds it, found once from the array's
    chunk layout: computing ``array[t, z]`` through dask's scheduler instead
    rebuilds, optimises and orders a graph for every plane, which cost 5-15 ms
    per plane, several times the read itself (README, "Performance"). When
    the array's layout does not allow it (Y or X split into several chunks, a
    dask version without the needed functions) or evaluating the task fails,
    the plane is computed with dask's synchronous scheduler as before; both
    give the same values. The chunk is found and evaluated with dask's
    documented custom-graph interface only (the collection's
    ``__dask_graph__``, ``dask.optimization.cull`` and the synchronous
    scheduler ``get_sync``, i.e. ``dask.get``). Memory is one chunk (usually
    one plane) and reads happen in a fixed order (algorithms.md §1.6, §7.4).

    A copy job reads here only when the run's plane index does not describe
    its FOV (compressed ND2 planes, mosaics, readers other than ND2, CZI and
    OME-TIFF, a file changed since its index); the index's and the direct
    sources' first-plane checks read one or a few planes here too. On a
    53-plane ND2 the one-task read took 0.4-0.6 ms per plane against 4.9 ms
    through the scheduler, a gap that grows with the file's graph (issue 15).

    For OME-TIFF and CZI, bioio's chunk task re-opens the file and re-parses
    its page list or subblock directory, a cost that grows with the number of
    planes in the file (issue 16). There a plane is read instead through a
    handle opened once (:func:`pyama_steps.io.plane_sources.open_plane_source`).
    The first plane read that way is compared with bioio's own value, and any
    mismatch in values, shape or dtype, or a failure, drops the handle for
    good: bioio's path then reads every plane. Call :meth:`close` (or use the
    reader as a context manager) to release the handle.
    """

    def __init__(
        self, img: Any, fov: int, channel: int, *, direct: bool = True
    ) -> None:
        with quiet_readers():
            img.set_scene(fov)
            order = "TZYXS" if "S" in img.dims.order else "TZYX"
            self._data = img.get_image_dask_data(order, C=channel)
        self.n_t = int(self._data.shape[0])
        self.n_z = int(self._data.shape[1])
        self.has_samples = order.endswith("S")
        self._graph: dict[Any, Any] | None = None
        self._cached: tuple[Any, npt.NDArray[Any]] | None = None
        self._source: PlaneSource | None = None
        self._source_checked = False
        try:
            if all(len(c) == 1 for c in self._data.chunks[2:]):
                graph = dict(self._data.__dask_graph__())
                if self._chunk_key(0, 0)[0] in graph:
                    self._graph = graph
        except Exception:  # any surprise: use the dask scheduler
            self._graph = None
        if direct and self._graph is not None:  # one chunk per plane: not a mosaic
            self._source = open_plane_source(img, fov=fov, channel=channel)

    def close(self) -> None:
        """Release the file handle of the direct plane source, if any."""
        if self._source is not None:
            self._source.close()
            self._source = None

    def __enter__(self) -> PlaneReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _plane_from_source(self, t: int, z: int) -> npt.NDArray[Any] | None:
        """Return plane ``(t, z)`` from the direct source; None to use bioio."""
        if self._source is None:
            return None
        try:
            out = self._source.read(t, z)
            ok = out.shape == self._data.shape[2:] and out.dtype == self._data.dtype
            if ok and not self._source_checked:
                # the first plane is also read through bioio: a source must
                # give bioio's values or it is not used (issue 16)
                want = self._plane_from_bioio(t, z)
                ok = np.array_equal(out, want, equal_nan=out.dtype.kind in "fc")
                self._source_checked = ok
                if not ok:
                    log.warning("direct plane read differs from bioio; not used")
        except Exception:  # bioio's path reads it, and raises if it fails too
            ok = False
        if ok:
            return out
        self.close()
        return None

    def _chunk_key(self, t: int, z: int) -> tuple[tuple[Any, ...], int, int]:
        """Return the key of the chunk holding plane ``(t, z)``, and its place."""
        bt, it = _block_of(self._data.chunks[0], t)
        bz, iz = _block_of(self._data.chunks[1], z)
        key = (self._data.name, bt, bz) + (0,) * (self._data.ndim - 2)
        return key, it, iz

    def _plane_from_task(self, t: int, z: int) -> npt.NDArray[Any]:
        # dask's documented custom-graph interface (its docs "Optimization" and
        # "Scheduler Overview"): cull the array's graph to the one chunk, then
        # run it with the synchronous scheduler (``dask.get``)
        from dask.local import get_sync
        from dask.optimization import cull

        key, it, iz = self._chunk_key(t, z)
        if self._cached is not None and self._cached[0] == key:
            return np.array(self._cached[1][it, iz])
        self._cached = None
        graph, _ = cull(self._graph, [key])  # type: ignore[no-untyped-call]
        chunk = np.asarray(get_sync(graph, [key])[0])
        if chunk.shape[:2] == (1, 1):
            plane: npt.NDArray[Any] = chunk[0, 0]
            return plane
        # a chunk of several planes (e.g. a whole Z-stack): kept for the next call
        self._cached = (key, chunk)
        return np.array(chunk[it, iz])

    def plane(self, t: int, z: int) -> npt.NDArray[Any]:
        """Return plane ``(t, z)`` as a numpy array in the native dtype."""
        direct = self._plane_from_source(t, z)
        if direct is not None:
            return direct
        return self._plane_from_bioio(t, z)

    def _plane_from_bioio(self, t: int, z: int) -> npt.NDArray[Any]:
        """Return plane ``(t, z)`` through bioio's dask array."""
        if self._graph is not None:
            try:
                out = self._plane_from_task(t, z)
                if out.shape == self._data.shape[2:] and out.dtype == self._data.dtype:
                    return out
            except Exception:  # retried below, which raises
                pass
            # never again for this reader: the scheduler path decides
            self._graph = None
            self._cached = None
        out = np.asarray(self._data[t, z].compute(scheduler="synchronous"))
        return out


def open_plane_reader(
    path: str | Path, fov: int, channel: int, *, plane_index: str | None = None
) -> PlaneReader | IndexedPlanes:
    """Open the planes of one FOV and channel: by the run's index, else by bioio.

    Parameters
    ----------
    path : str or Path
        The input file.
    fov : int
        Scene index.
    channel : int
        Channel index.
    plane_index : str, optional
        The run's plane index (:mod:`pyama_steps.io.plane_index`). When it lists
        this FOV and the input is the file it was built for, planes are read
        at its offsets and bioio is not opened: the cost of opening does not
        grow with the file. Otherwise, and without one, bioio opens the file.

    Returns
    -------
    PlaneReader or IndexedPlanes
        ``n_t``, ``n_z``, ``has_samples``, ``plane(t, z)`` and ``close()``.

    Raises
    ------
    InputError
        If bioio cannot open the file.
    """
    if plane_index is not None:
        planes = open_indexed_planes(plane_index, str(path), fov=fov, channel=channel)
        if planes is not None:
            return planes
    img = open_image(path, scene=fov)
    return PlaneReader(img, fov, channel)


def _block_of(chunks: tuple[int, ...], index: int) -> tuple[int, int]:
    """Return (block number, position in the block) of `index` on one axis."""
    start = 0
    for block, size in enumerate(chunks):
        if index < start + size:
            return block, index - start
        start += size
    raise IndexError(f"index {index} is outside the axis of {start} elements")
