"""Runs served from the Parquet archive (quaxspec.archive): those Kafka no longer holds.

A run leaves the API's memory when newer runs push it out (``max_runs``) and leaves Kafka
when its records pass their retention; the archiver has kept every record. An archived
run is read on demand, off the event loop: its latest state and the newest
``recent_files`` of its file spectra (a weeks-long run has ~10⁵ files; the rest are read
one by one when asked for). The last few runs read are cached, each until the archiver
writes its state again. pyarrow is imported only when an archive is configured (an API
without one does not carry its ~40 MB).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from fastapi.concurrency import run_in_threadpool

from quax_api.store import RunHeadline, RunState
from quaxspec.settings import S3Settings
from quaxspec.spectra import FileSpectrum

__all__ = ["ArchivedRuns"]


class ArchivedRuns:
    """Read-only access to the archive's runs, with a small cache."""

    def __init__(
        self, root: Path | str, *, s3: S3Settings | None = None, recent_files: int, cached_runs: int
    ) -> None:
        """``root``: the archive's folder, or its ``s3://bucket/prefix`` (reached via ``s3``)."""
        import pyarrow as pa

        from quaxspec.archive import ArchiveReader, open_archive

        # Arrow's allocator keeps freed pages for reuse; a read of a run leaves them idle
        # for minutes, so they are given back after each read.
        self._release = pa.default_memory_pool().release_unused

        self._reader = ArchiveReader(open_archive(root, s3))
        self._recent = recent_files
        self._cached_runs = cached_runs
        self._states: OrderedDict[str, tuple[int, RunState]] = OrderedDict()
        self._headlines: dict[str, tuple[int, RunHeadline]] = {}
        self._lock = threading.Lock()  # reads run in the thread pool, the caches are shared

    async def headlines(self) -> list[RunHeadline]:
        """The figures of every archived run."""
        return await run_in_threadpool(self._read_headlines)

    async def state(self, run_id: str) -> RunState | None:
        """An archived run's state and its newest file spectra (None if not archived)."""
        return await run_in_threadpool(self._read_state, run_id)

    async def file(self, run_id: str, file_number: int) -> FileSpectrum | None:
        """One archived file spectrum (its highest revision)."""
        files = await run_in_threadpool(self._reader.files, run_id, [file_number])
        return files.get(file_number)

    def _version(self, run_id: str) -> int | None:
        return self._reader.state_version(run_id)

    def _read_headlines(self) -> list[RunHeadline]:
        with self._lock:
            return self._read_headlines_locked()

    def _read_headlines_locked(self) -> list[RunHeadline]:
        headlines = []
        for run_id in self._reader.run_ids():
            version = self._version(run_id)
            cached = self._headlines.get(run_id)
            if cached is None or cached[0] != version:
                run = self._reader.run(run_id)
                if run is None or version is None:
                    continue
                cached = self._headlines[run_id] = (version, RunHeadline.of(run))
            headlines.append(cached[1])
        return headlines

    def _read_state(self, run_id: str) -> RunState | None:
        with self._lock:
            try:
                return self._read_state_locked(run_id)
            finally:
                self._release()

    def _read_state_locked(self, run_id: str) -> RunState | None:
        version = self._version(run_id)
        if version is None:
            return None
        cached = self._states.get(run_id)
        if cached is not None and cached[0] == version:
            self._states.move_to_end(run_id)
            return cached[1]
        run = self._reader.run(run_id)
        if run is None:
            return None
        numbers = self._reader.file_numbers(run_id)[-self._recent :]
        state = RunState(run=run, files=self._reader.files(run_id, numbers))
        self._states[run_id] = (version, state)
        while len(self._states) > self._cached_runs:
            self._states.popitem(last=False)
        return state
