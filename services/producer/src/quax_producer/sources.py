"""Where DAQ records come from: finished pairs (a folder, a bucket), a watched folder, or synthetic.

Every source yields :data:`SourceItem` s: a record to send, or a :class:`BadPair` to log,
count and skip; a bad pair never stops the stream. A source also says what it needs to
resume a run: which file numbers to skip (delivered before), the fingerprint of a given
file as it has it now, and the time of its first file (for the name of a new run).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path

from quax_producer.bucket import Bucket, bucket_source
from quax_producer.items import BadPair, SourceItem, read_item
from quax_producer.settings import ProducerSettings
from quax_producer.watch import watch_source
from quaxspec.daq import DaqFileError, DaqRecord, FilePair, pair_paths, read_pair, scan_directory
from quaxspec.settings import S3Location
from quaxspec.synthetic import AxionLine, SyntheticDaq

__all__ = ["Source", "directory_source", "open_source", "synthetic_source"]

Skip = Callable[[int], bool]


def _never(number: int) -> bool:
    return False


async def directory_source(
    directory: Path, *, first_file: int = 0, limit: int | None = None, skip: Skip = _never
) -> AsyncGenerator[SourceItem, None]:
    """The pairs of a finished directory in file-number order, then nothing more.

    ``limit`` counts good pairs from ``first_file`` on, the skipped ones included, so that a
    resumed replay ends where the first one would have.
    """
    scan = await asyncio.to_thread(scan_directory, directory)
    for problem in scan.problems:
        yield BadPair(error=problem, reason="unpaired")
    taken = 0
    for pair in scan.pairs:
        if pair.number < first_file:
            continue
        if limit is not None and taken >= limit:
            return
        if skip(pair.number):
            taken += 1
            continue
        item = read_item(pair)
        taken += not isinstance(item, BadPair)
        yield item


async def synthetic_source(
    daq: SyntheticDaq, *, first_file: int = 0, limit: int | None = None, skip: Skip = _never
) -> AsyncGenerator[SourceItem, None]:
    """Synthetic records, generated in a worker thread one file ahead of the stream.

    A record's DAQ time is the wall-clock time at which it was generated; the stream
    replaces it with the time the file is scheduled (see :mod:`quax_producer.stream`).
    """
    every = itertools.count(first_file) if limit is None else range(first_file, first_file + limit)
    numbers = (n for n in every if not skip(n))

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


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """A configured source and what resuming a run from it needs."""

    settings: ProducerSettings
    #: The bucket of the s3 source (None for the others).
    bucket: Bucket | None = None
    #: Called at each retry of a transient error of the object store (s3 source).
    on_retry: Callable[[], None] = lambda: None

    @property
    def live(self) -> bool:
        """Whether the DAQ writes while the source is read (a watched folder)."""
        return self.settings.source == "watch"

    def items(
        self,
        *,
        skip: Skip,
        growth_step: int | None = None,
        on_look: Callable[[float], None] | None = None,
    ) -> AsyncGenerator[SourceItem, None]:
        """The records to send, without the file numbers ``skip`` names.

        For a watched folder, ``growth_step`` asks for pairs being written too, each time
        another step of samples is on disk (:class:`GrowingPair`), and ``on_look`` receives
        the seconds each batch of folder events or poll took.
        """
        settings = self.settings
        if settings.source == "synthetic":
            return synthetic_source(
                self._daq(), first_file=settings.first_file, limit=settings.files, skip=skip
            )
        if self.bucket is not None:
            return bucket_source(
                self.bucket,
                first_file=settings.first_file,
                limit=settings.files,
                skip=skip,
                read_ahead=settings.s3_read_ahead,
                on_retry=self.on_retry,
            )
        directory = self._directory()
        if settings.source == "directory":
            return directory_source(
                directory, first_file=settings.first_file, limit=settings.files, skip=skip
            )
        return watch_source(
            directory,
            method=settings.watch_method,
            settle_seconds=settings.watch_settle_seconds,
            poll_seconds=settings.watch_poll_seconds,
            settle_polls=settings.watch_settle_polls,
            rescan_seconds=settings.watch_rescan_seconds,
            first_file=settings.first_file,
            skip=skip,
            growth_step=growth_step,
            on_look=on_look,
        )

    def fingerprint_of(self, number: int) -> str | None:
        """The fingerprint of file ``number`` as the source has it now; None if it has none.

        Blocking (it reads or generates the whole pair): call it in a thread.
        """
        if self.settings.source == "synthetic":
            return self._daq().record(number).fingerprint()
        if self.bucket is not None:
            return self.bucket.fingerprint_of(number)
        pair = FilePair(number, *pair_paths(self._directory(), number))
        try:
            return read_pair(pair).fingerprint()
        except (DaqFileError, OSError, ValueError):
            return None

    def first_time(self) -> float:
        """When the source's first file was written (now for the synthetic DAQ or no file)."""
        if self.settings.source == "synthetic":
            return time.time()
        if self.bucket is not None:
            found = self.bucket.first_time(self.settings.first_file)
            return time.time() if found is None else found
        pairs = [
            p
            for p in scan_directory(self._directory()).pairs
            if p.number >= self.settings.first_file
        ]
        try:
            return max(path.stat().st_mtime for path in (pairs[0].i_path, pairs[0].q_path))
        except (IndexError, OSError):
            return time.time()

    def _daq(self) -> SyntheticDaq:
        settings = self.settings
        line = (
            AxionLine(frequency_hz=settings.line_frequency_hz, strength=settings.line_strength)
            if settings.line_strength > 0
            else None
        )
        return SyntheticDaq(
            seed=settings.seed,
            fs=settings.fs,
            n_samples=settings.samples_per_file,
            n_fft=settings.n_fft,
            line=line,
        )

    def _directory(self) -> Path:
        if self.settings.directory is None:  # the settings validator requires one
            raise DaqFileError(Path("."), f"the {self.settings.source} source needs a directory")
        return self.settings.directory


def open_source(
    settings: ProducerSettings, *, on_retry: Callable[[], None] = lambda: None
) -> Source:
    """The source the settings ask for; ``on_retry`` counts the object store's retries."""
    if settings.source != "s3" or settings.bucket_url is None:
        return Source(settings=settings)
    bucket = Bucket(S3Location.parse(settings.bucket_url), settings.s3)
    return Source(settings=settings, bucket=bucket, on_retry=on_retry)
