"""Where DAQ records come from: a directory of finished pairs, a watched one, or the synthetic DAQ.

Every source is an async iterator of :data:`SourceItem`: a record to send, or a
:class:`BadPair` to log, count and skip; a bad pair never stops the stream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import AsyncGenerator
from pathlib import Path

from quax_producer.items import BadPair, SourceItem, read_item
from quax_producer.settings import ProducerSettings
from quax_producer.watch import watch_source
from quaxspec.daq import DaqRecord, scan_directory
from quaxspec.synthetic import AxionLine, SyntheticDaq

__all__ = ["directory_source", "open_source", "synthetic_source"]


async def directory_source(
    directory: Path, *, first_file: int = 0, limit: int | None = None
) -> AsyncGenerator[SourceItem, None]:
    """The pairs of a finished directory in file-number order, then nothing more."""
    scan = await asyncio.to_thread(scan_directory, directory)
    for problem in scan.problems:
        yield BadPair(error=problem, reason="unpaired")
    taken = 0
    for pair in scan.pairs:
        if pair.number < first_file:
            continue
        if limit is not None and taken >= limit:
            return
        item = read_item(pair)
        taken += not isinstance(item, BadPair)
        yield item


async def synthetic_source(
    daq: SyntheticDaq, *, first_file: int = 0, limit: int | None = None
) -> AsyncGenerator[SourceItem, None]:
    """Synthetic records, generated in a worker thread one file ahead of the stream.

    A record's DAQ time is the wall-clock time at which it was generated; the stream
    replaces it with the time the file is scheduled (see :mod:`quax_producer.stream`).
    """
    numbers = (
        itertools.count(first_file) if limit is None else range(first_file, first_file + limit)
    )

    def generate(number: int) -> DaqRecord:
        return dataclasses.replace(daq.record(number), daq_time=time.time())

    # One file is generated ahead, while the previous one is being sent: generation (one
    # large inverse FFT) then overlaps with sending instead of adding to it.
    ahead: asyncio.Future[DaqRecord] | None = None
    try:
        for number in numbers:
            current, ahead = ahead, asyncio.ensure_future(asyncio.to_thread(generate, number))
            if current is not None:
                yield await current
        if ahead is not None:
            current, ahead = ahead, None
            yield await current
    finally:
        if ahead is not None:
            ahead.cancel()


def open_source(settings: ProducerSettings) -> AsyncGenerator[SourceItem, None]:
    """The source the settings ask for."""
    if settings.source == "synthetic":
        line = (
            AxionLine(frequency_hz=settings.line_frequency_hz, strength=settings.line_strength)
            if settings.line_strength > 0
            else None
        )
        daq = SyntheticDaq(
            seed=settings.seed,
            fs=settings.fs,
            n_samples=settings.samples_per_file,
            n_fft=settings.n_fft,
            line=line,
        )
        return synthetic_source(daq, first_file=settings.first_file, limit=settings.files)
    assert settings.directory is not None  # the settings validator requires it
    if settings.source == "directory":
        return directory_source(
            settings.directory, first_file=settings.first_file, limit=settings.files
        )
    return watch_source(
        settings.directory,
        poll_seconds=settings.watch_poll_seconds,
        settle_polls=settings.watch_settle_polls,
        first_file=settings.first_file,
        limit=settings.files,
    )
