"""The producer's main loop: records from a source, cut into chunks, sent to quax.raw, recorded.

For each pair: decide whether it belongs to the run (:mod:`quax_producer.runs`), send its
chunks (paced for a replay; for a watched folder at once, and while the DAQ writes it),
and, once Kafka has acknowledged every chunk, record the file in the run's progress
(quax.progress), from which a restarted producer resumes. A failed delivery sends the
unacknowledged chunks again once Kafka answers (:mod:`quax_producer.delivery`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import structlog
from aiokafka.errors import KafkaError

from quax_producer.chunking import ChunkPlan, NoSlicesError
from quax_producer.delivering import FileDelivery, Slices
from quax_producer.delivery import KafkaLink, MissingTopicError, StopRequestedError
from quax_producer.items import BadPair, GrowingPair
from quax_producer.metrics import Metrics
from quax_producer.pacing import Pacer
from quax_producer.runs import RunLedger, RunRefusedError, check_shards, choose_run, new_run_id
from quax_producer.settings import ProducerSettings
from quax_producer.shutdown import until_stopped
from quax_producer.sources import Source, open_source
from quaxspec.daq import SAMPLE_DTYPE, DaqRecord, FilePair, PairDigest
from quaxspec.progress import FileMark, RunProgress

__all__ = ["MissingTopicError", "RunRefusedError", "stream"]

_log = structlog.get_logger(__name__)

#: Pairs being sent while written, at most (a DAQ writes one at a time; more means some
#: were abandoned half-written, and the oldest are let go).
_WRITING = 4


async def stream(
    settings: ProducerSettings, *, metrics: Metrics, stop: asyncio.Event | None = None
) -> None:
    """Send every record of the configured source, until it ends or ``stop`` is set.

    Raises :class:`MissingTopicError` and :class:`RunRefusedError`; waits for Kafka rather
    than failing when it is away.
    """
    stop = stop or asyncio.Event()
    link = KafkaLink(settings, metrics=metrics, stop=stop)
    # Every line logged while streaming says which source (and, once chosen, which run).
    with structlog.contextvars.bound_contextvars(source=settings.source):
        try:
            await link.connect()
            await _Stream(settings, metrics=metrics, link=link, stop=stop).run()
        except StopRequestedError:
            _log.warning(
                "Stopped while Kafka was unavailable; the file being sent is sent again "
                "at the next start."
            )
        finally:
            await link.close()


@dataclass(slots=True)
class _Written:
    """A pair being sent while the DAQ writes it."""

    delivery: FileDelivery
    #: The fingerprint of what was sent so far, in order.
    digest: PairDigest
    expected_samples: int
    started: float


class _Stream:
    """One producer run: the current run's ledger, the deliveries and the progress record."""

    def __init__(
        self, settings: ProducerSettings, *, metrics: Metrics, link: KafkaLink, stop: asyncio.Event
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._link = link
        self._stop = stop
        self._source: Source = open_source(settings, on_retry=metrics.source_retries.inc)
        self._known: dict[str, RunProgress] = {}
        self._ledger: RunLedger | None = None
        self._pacer: Pacer | None = None
        #: Samples per file of the DAQ, once known: what a pair being written will have.
        self._file_samples = settings.watch_file_samples
        self._writing: dict[int, _Written] = {}
        self.delivered = 0

    @property
    def ledger(self) -> RunLedger:
        if self._ledger is None:
            raise RuntimeError("no run chosen yet")
        return self._ledger

    async def run(self) -> None:
        settings, source = self._settings, self._source
        shard = settings.shard_of_run
        records = await self._link.read_progress()
        # A shard resumes from its own record, a whole-run producer from whole runs' ones.
        self._known = {p.run_id: p for p in records if p.shard == shard}
        check_shards(
            shard, settings.run_config, [p for p in records if p.run_id == settings.run_id]
        )
        progress, why = await asyncio.to_thread(
            functools.partial(
                choose_run,
                run_id=settings.run_id,
                source=settings.source_identity,
                base=settings.run_base,
                config=settings.run_config,
                known=self._known,
                fingerprint_of=source.fingerprint_of,
                first_time=source.first_time,
                now=time.time(),
            )
        )
        await self._begin(dataclasses.replace(progress, shard=shard), why)
        growing = source.live and settings.watch_send_while_written
        items = source.items(
            skip=lambda number: (
                self.ledger.delivered_before(number) or not (shard is None or shard.takes(number))
            ),
            growth_step=settings.slices_per_chunk * settings.n_fft if growing else None,
            on_look=self._metrics.watch_seconds.observe,
        )
        async with contextlib.aclosing(items):
            async for item in until_stopped(items, self._stop):
                if isinstance(item, BadPair):
                    await self._bad(item)
                elif isinstance(item, GrowingPair):
                    await self._grow(item)
                else:
                    self.delivered += await self._take(item)
                if source.live and settings.files is not None and self.delivered >= settings.files:
                    break
            else:
                if not self._stop.is_set() and not source.live:
                    await self._publish(self.ledger.ended(now=time.time()))
                    _log.info("The replay has ended.", files=len(self.ledger.progress.files))
        for written in self._writing.values():  # what was sent of unfinished pairs
            await written.delivery.flush()
        _log.info("Every chunk sent has been acknowledged.", files=self.delivered)

    async def _begin(self, progress: RunProgress, why: str) -> None:
        """Deliver into ``progress``'s run from now on."""
        self._ledger = RunLedger(progress, live=self._source.live)
        if self._file_samples is None and progress.last is not None:
            self._file_samples = progress.last.samples  # the run's files, before a restart
        self._known[progress.run_id] = progress
        structlog.contextvars.bind_contextvars(run_id=progress.run_id)
        self._metrics.running(progress.run_id)
        _log.info(
            "Delivering into a run.",
            why=why,
            shard=None if progress.shard is None else str(progress.shard),
            configuration=progress.config.describe(),
            delivered_before=len(progress.files),
        )
        await self._publish(progress)

    async def _grow(self, growing: GrowingPair) -> None:
        """Send what is on disk of a pair the DAQ is writing (in whole chunks)."""
        settings, number = self._settings, growing.number
        written = self._writing.get(number)
        if written is None:
            expected = self._file_samples
            first = self.ledger.progress.first
            if (
                expected is None
                or expected < settings.n_fft
                or self.ledger.delivered_before(number)  # written again: decided once complete
                or (first is not None and number < first.number)
            ):
                return
            digest = PairDigest()
            written = _Written(
                delivery=self._delivery(
                    number,
                    total_slices=expected // settings.n_fft,
                    read=_reader(growing.pair, settings.n_fft),
                    digest=digest,
                ),
                digest=digest,
                expected_samples=expected,
                started=time.monotonic(),
            )
            self._writing[number] = written
            while len(self._writing) > _WRITING:
                oldest = min(self._writing)
                _log.warning("A pair was left half-written by the DAQ.", file_number=oldest)
                await self._writing.pop(oldest).delivery.flush()
        available = min(growing.samples, written.expected_samples) // settings.n_fft
        await written.delivery.send_available(available)

    async def _take(self, record: DaqRecord) -> int:
        """Decide about one complete pair and send it if it belongs; 1 if it was delivered."""
        # The fingerprint is computed beside the send; it is awaited first only when the
        # decision needs it (a pair whose number the run already holds).
        fingerprinting = asyncio.ensure_future(asyncio.to_thread(record.fingerprint))
        try:
            written = self._writing.pop(record.number, None)
            if written is not None:
                await self._finish_written(record, written, fingerprinting)
                return 1
            before = self.ledger.delivered_before(record.number)
            decision = self.ledger.decide(
                record.number, record.daq_time, await fingerprinting if before else None
            )
            if decision.verdict == "new_acquisition":
                await self._new_acquisition(record, decision.reason)
            elif decision.verdict != "send":
                self._metrics.skipped_files.labels(reason=decision.verdict).inc()
                _log.info("Did not send a pair.", file=record.source, reason=decision.reason)
                return 0
            return await self._send_complete(record, fingerprinting)
        finally:
            if not fingerprinting.done():
                await asyncio.gather(fingerprinting, return_exceptions=True)

    async def _send_complete(self, record: DaqRecord, fingerprinting: asyncio.Future[str]) -> int:
        settings = self._settings
        layout = record.layout(settings.n_fft)
        try:
            self._plan().total_slices(record)
        except NoSlicesError as error:
            self._skip_bad(BadPair(error=error, reason="no_slices", number=record.number))
            return 0
        pacer = self._pacing(2 * SAMPLE_DTYPE.itemsize * settings.n_fft * layout.n_slices)
        if settings.source == "synthetic":
            # The synthetic DAQ acquires a file during its slot of the schedule and streams it
            # as it goes; the file is complete when its last chunk is due, so that downstream
            # latencies measure the pipeline, not the pacing or the generator's head start.
            spc = settings.slices_per_chunk
            last = layout.n_slices % spc or spc
            before_last = pacer.duration(
                2 * SAMPLE_DTYPE.itemsize * settings.n_fft * (layout.n_slices - last)
            )
            record = dataclasses.replace(record, daq_time=time.time() + pacer.delay() + before_last)
        started = time.monotonic()

        def read(first: int, count: int) -> Slices:
            i, q = record.slices(settings.n_fft, first, first + count)
            return Slices(i=i, q=q, daq_time=record.daq_time)

        delivery = self._delivery(
            record.number, total_slices=layout.n_slices, read=read, pacer=pacer
        )
        await delivery.finish()
        await self._delivered(
            record, await fingerprinting, remainder=layout.remainder, started=started
        )
        return 1

    async def _finish_written(
        self, record: DaqRecord, written: _Written, fingerprinting: asyncio.Future[str]
    ) -> None:
        """A pair sent while written is complete: send its last chunks and check it."""
        n_fft, delivery = self._settings.n_fft, written.delivery
        slices = record.n_samples // n_fft
        dropped = record.n_samples % n_fft
        if record.n_samples == written.expected_samples:
            await delivery.finish()
        else:
            await delivery.send_available(min(slices, delivery.total_slices))
            await delivery.flush()
            if record.n_samples < written.expected_samples:
                _log.warning(
                    "A pair sent while written ended short of the run's file length: the "
                    "aggregator closes it incomplete once its timeout has passed.",
                    file=record.source,
                    samples=record.n_samples,
                    expected=written.expected_samples,
                )
            else:
                dropped = record.n_samples - delivery.total_slices * n_fft
                _log.error(
                    "A pair sent while written grew past the run's file length: its samples "
                    "after that length were not analysed.",
                    file=record.source,
                    samples=record.n_samples,
                    expected=written.expected_samples,
                )
        tail = delivery.sent_slices * n_fft
        written.digest.update(record.i[tail:], record.q[tail:])
        fingerprint = await fingerprinting
        if written.digest.hexdigest() != fingerprint:
            self._metrics.changed_while_sent.inc()
            _log.error(
                "A pair changed after parts of it were sent while it was written: its "
                "spectrum does not match the file. This DAQ rewrites its files: set "
                "QUAX_PRODUCER_WATCH_SEND_WHILE_WRITTEN=false.",
                file=record.source,
            )
        await self._delivered(record, fingerprint, remainder=dropped, started=written.started)

    async def _delivered(
        self, record: DaqRecord, fingerprint: str, *, remainder: int, started: float
    ) -> None:
        """Every chunk of ``record`` is acknowledged: count it and record it in the run."""
        metrics = self._metrics
        metrics.files.inc()
        metrics.dropped_samples.inc(remainder)
        if self._settings.watch_file_samples is None:
            self._file_samples = record.n_samples
        mark = FileMark(
            number=record.number,
            fingerprint=fingerprint,
            daq_time=record.daq_time,
            samples=record.n_samples,
        )
        await self._publish(self.ledger.delivered(mark, now=time.time()))
        metrics.delivery_delay.observe(max(0.0, time.time() - record.daq_time))
        _log.info(
            "Sent a file.",
            file=record.source,
            file_number=record.number,
            slices=record.n_samples // self._settings.n_fft,
            dropped_samples=remainder,
            seconds=round(time.monotonic() - started, 3),
            lag_seconds=round(self._pacer.lag, 3) if self._pacer else 0.0,
        )

    async def _bad(self, bad: BadPair) -> None:
        written = self._writing.pop(bad.number, None) if bad.number is not None else None
        if written is not None:  # what was sent stays; the aggregator closes it incomplete
            await written.delivery.flush()
        self._skip_bad(bad)

    def _skip_bad(self, bad: BadPair) -> None:
        """Log and count a pair that cannot be sent."""
        self._metrics.bad_pairs.labels(reason=bad.reason).inc()
        _log.warning(
            "Skipped a bad pair.",
            file=str(bad.error.path),
            reason=bad.error.reason,
            kind=bad.reason,
        )

    async def _new_acquisition(self, record: DaqRecord, reason: str) -> None:
        """The DAQ started another acquisition: end the run and start one for it."""
        old = self.ledger.progress
        if self._settings.run_id is not None:
            raise RunRefusedError(
                f"{reason}: a new acquisition, which run {old.run_id} (named by the settings) "
                "cannot take. Give it another run id, or leave the run id unset for one run "
                "per acquisition."
            )
        self._metrics.new_acquisitions.inc()
        # Pairs of the old run left half-written: what was sent of them stays in that run
        # (closed incomplete by the aggregator's timeout); their numbers start afresh.
        for number, written in sorted(self._writing.items()):
            _log.warning("A pair was left half-written by the DAQ.", file_number=number)
            await written.delivery.flush()
        self._writing.clear()
        await self._publish(self.ledger.ended(now=time.time()))
        run_id = new_run_id(self._settings.run_base, record.daq_time, self._known)
        now = time.time()
        fresh = RunProgress(
            run_id=run_id, source=old.source, config=old.config, started_time=now, updated_time=now
        )
        _log.warning("A new acquisition has begun.", reason=reason, previous_run=old.run_id)
        await self._begin(fresh, f"a new acquisition after run {old.run_id}")

    async def _publish(self, progress: RunProgress) -> None:
        while True:
            try:
                await self._link.publish(progress)
                return
            except KafkaError as error:
                await self._link.recover(error)

    def _plan(self) -> ChunkPlan:
        settings = self._settings
        return ChunkPlan(
            run_id=self.ledger.progress.run_id,
            n_fft=settings.n_fft,
            slices_per_chunk=settings.slices_per_chunk,
            fs=settings.fs,
            f_lo=settings.f_lo,
        )

    def _delivery(
        self,
        number: int,
        *,
        total_slices: int,
        read: Callable[[int, int], Slices],
        pacer: Pacer | None = None,
        digest: PairDigest | None = None,
    ) -> FileDelivery:
        return FileDelivery(
            link=self._link,
            metrics=self._metrics,
            plan=self._plan(),
            number=number,
            total_slices=total_slices,
            read=read,
            max_in_flight=self._settings.max_in_flight,
            pacer=pacer,
            digest=digest,
        )

    def _pacing(self, pair_bytes: int) -> Pacer:
        """The schedule of every file (fixed by the first): replays are paced, a watch is not."""
        if self._pacer is None:
            settings = self._settings
            rate: float | None
            if settings.as_fast_as_possible or settings.source == "watch":
                rate = None  # a watched folder is not paced: the DAQ is the clock
            elif settings.mb_per_s is not None:
                rate = settings.mb_per_s * 1e6
            else:
                rate = pair_bytes / settings.seconds_per_pair
            self._pacer = Pacer(
                bytes_per_second=rate,
                warn_after_seconds=pair_bytes / rate if rate else float("inf"),
                on_lag=self._metrics.schedule_lag.set,
            )
        return self._pacer


def _reader(pair: FilePair, n_fft: int) -> Callable[[int, int], Slices]:
    """Reads slices of a pair being written (what is below its current size is final)."""

    def read(first: int, count: int) -> Slices:
        # Stat first: the data read next was on disk by then, at the latest.
        daq_time = max(pair.i_path.stat().st_mtime, pair.q_path.stat().st_mtime)
        offset, n = first * n_fft * SAMPLE_DTYPE.itemsize, count * n_fft
        i = np.fromfile(pair.i_path, dtype=SAMPLE_DTYPE, count=n, offset=offset)
        q = np.fromfile(pair.q_path, dtype=SAMPLE_DTYPE, count=n, offset=offset)
        if i.size != n or q.size != n:
            raise OSError(f"{pair.i_path}: slices {first}+{count} are not on disk yet")
        return Slices(i=i.reshape(count, n_fft), q=q.reshape(count, n_fft), daq_time=daq_time)

    return read
