"""The producer's main loop: records from a source, cut into chunks, sent to quax.raw, recorded.

For each pair: decide whether it belongs to the run (:mod:`quax_producer.runs`), send its
chunks (paced for a replay, at once for a watched folder), and, once Kafka has
acknowledged every chunk, record the file in the run's progress (quax.progress), from
which a restarted producer resumes. A failed delivery sends the unacknowledged chunks
again once Kafka answers (:mod:`quax_producer.delivery`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import time

import structlog
from aiokafka.errors import KafkaError

from quax_producer.chunking import ChunkPlan, NoSlicesError, chunk_record, partition_for
from quax_producer.delivery import KafkaLink, MissingTopicError, StopRequestedError
from quax_producer.items import BadPair
from quax_producer.metrics import Metrics
from quax_producer.pacing import Pacer
from quax_producer.runs import RunLedger, RunRefusedError, choose_run, new_run_id
from quax_producer.sending import ChunkSender
from quax_producer.settings import ProducerSettings
from quax_producer.shutdown import until_stopped
from quax_producer.sources import Source, open_source
from quaxspec.daq import DaqRecord
from quaxspec.progress import FileMark, RunProgress

__all__ = ["MissingTopicError", "RunRefusedError", "stream"]

_log = structlog.get_logger(__name__)


async def stream(
    settings: ProducerSettings, *, metrics: Metrics, stop: asyncio.Event | None = None
) -> None:
    """Send every record of the configured source, until it ends or ``stop`` is set.

    Raises :class:`MissingTopicError` and :class:`RunRefusedError`; waits for Kafka rather than
    failing when it is away.
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
                "StopRequestedError while Kafka was unavailable; the file being sent is sent again "
                "at the next start."
            )
        finally:
            await link.close()


class _Stream:
    """One producer run: the current run's ledger, the file sender and the progress record."""

    def __init__(
        self, settings: ProducerSettings, *, metrics: Metrics, link: KafkaLink, stop: asyncio.Event
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._link = link
        self._stop = stop
        self._source: Source = open_source(settings)
        self._files = _FileSender(settings=settings, metrics=metrics, link=link)
        self._known: dict[str, RunProgress] = {}
        self._ledger: RunLedger | None = None

    @property
    def ledger(self) -> RunLedger:
        if self._ledger is None:
            raise RuntimeError("no run chosen yet")
        return self._ledger

    async def run(self) -> None:
        settings, source = self._settings, self._source
        self._known = await self._link.read_progress()
        first_time = await asyncio.to_thread(source.first_time)
        progress, why = await asyncio.to_thread(
            functools.partial(
                choose_run,
                run_id=settings.run_id,
                source=settings.source_identity,
                base=settings.run_base,
                config=settings.run_config,
                known=self._known,
                fingerprint_of=source.fingerprint_of,
                first_time=first_time,
                now=time.time(),
            )
        )
        await self._begin(progress, why)
        delivered = 0
        items = source.items(
            skip=lambda number: self.ledger.delivered_before(number),
            on_look=self._metrics.watch_seconds.observe,
        )
        async with contextlib.aclosing(items):
            async for item in until_stopped(items, self._stop):
                if isinstance(item, BadPair):
                    self._files.skip(item)
                    continue
                delivered += await self._take(item)
                if source.live and settings.files is not None and delivered >= settings.files:
                    break
            else:
                if not self._stop.is_set() and not source.live:
                    await self._publish(self.ledger.ended(now=time.time()))
                    _log.info("The replay has ended.", files=len(self.ledger.progress.files))
        _log.info("Every chunk sent has been acknowledged.", files=self._files.handed)

    async def _begin(self, progress: RunProgress, why: str) -> None:
        """Deliver into ``progress``'s run from now on."""
        self._ledger = RunLedger(progress, live=self._source.live)
        self._known[progress.run_id] = progress
        structlog.contextvars.bind_contextvars(run_id=progress.run_id)
        self._metrics.running(progress.run_id)
        _log.info(
            "Delivering into a run.",
            why=why,
            configuration=progress.config.describe(),
            delivered_before=len(progress.files),
        )
        await self._publish(progress)

    async def _take(self, record: DaqRecord) -> int:
        """Decide about one complete pair and send it if it belongs; 1 if it was delivered."""
        # The fingerprint is computed beside the send; it is awaited first only when the
        # decision needs it (a pair whose number the run already holds).
        fingerprinting = asyncio.ensure_future(asyncio.to_thread(record.fingerprint))
        try:
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
            sent = await self._files.send(record, run_id=self.ledger.progress.run_id)
            if sent is None:
                return 0
            mark = FileMark(
                number=sent.number, fingerprint=await fingerprinting, daq_time=sent.daq_time
            )
            await self._publish(self.ledger.delivered(mark, now=time.time()))
            self._metrics.delivery_delay.observe(max(0.0, time.time() - sent.daq_time))
            return 1
        finally:
            if not fingerprinting.done():
                await asyncio.gather(fingerprinting, return_exceptions=True)

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
        await self._publish(self.ledger.ended(now=time.time()))
        run_id = new_run_id(self._settings.run_base, record.daq_time, self._known)
        fresh = RunProgress(
            run_id=run_id,
            source=old.source,
            config=old.config,
            started_time=time.time(),
            updated_time=time.time(),
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


class _FileSender:
    """Sends one record after another on one schedule, counting what Kafka acknowledged."""

    def __init__(self, *, settings: ProducerSettings, metrics: Metrics, link: KafkaLink) -> None:
        self._settings = settings
        self._metrics = metrics
        self._link = link
        self._pacer: Pacer | None = None
        self.handed = 0

    def skip(self, bad: BadPair) -> None:
        """Log and count a pair that cannot be sent."""
        self._metrics.bad_pairs.labels(reason=bad.reason).inc()
        _log.warning(
            "Skipped a bad pair.",
            file=str(bad.error.path),
            reason=bad.error.reason,
            kind=bad.reason,
        )

    async def send(self, record: DaqRecord, *, run_id: str) -> DaqRecord | None:
        """Cut, pace and send one record until Kafka has acknowledged all of it.

        Returns the record as sent (a synthetic one gets its DAQ time here), or None when
        it has no complete slice (reported as a bad pair). A failed delivery waits for
        Kafka and sends the chunks not yet acknowledged again.
        """
        settings, metrics = self._settings, self._metrics
        plan = ChunkPlan(
            run_id=run_id,
            n_fft=settings.n_fft,
            slices_per_chunk=settings.slices_per_chunk,
            fs=settings.fs,
            f_lo=settings.f_lo,
        )
        try:
            n_chunks = plan.n_chunks(record)
        except NoSlicesError as error:
            self.skip(BadPair(error=error, reason="no_slices"))
            return None
        layout = record.layout(plan.n_fft)
        pacer = self._pacer or self._start_pacing(plan.chunk_bytes(layout.n_slices))
        if settings.source == "synthetic":
            # The synthetic DAQ acquires a file during its slot of the schedule and streams it
            # as it goes; the file is complete when its last chunk is due, so that downstream
            # latencies measure the pipeline, not the pacing or the generator's head start.
            last = layout.n_slices % plan.slices_per_chunk or plan.slices_per_chunk
            before_last = pacer.duration(plan.chunk_bytes(layout.n_slices - last))
            record = dataclasses.replace(record, daq_time=time.time() + pacer.delay() + before_last)
        key = f"{run_id}/{record.number:05d}".encode()
        unacknowledged = set(range(n_chunks))
        started = time.monotonic()

        def delivered(index: int, nbytes: int, n_slices: int) -> None:
            unacknowledged.discard(index)
            metrics.chunks.inc()
            metrics.bytes.inc(nbytes)
            metrics.slices.inc(n_slices)
            if not unacknowledged:
                metrics.files.inc()
                metrics.dropped_samples.inc(layout.remainder)

        first_attempt = True
        while unacknowledged:
            sender = ChunkSender(
                producer=self._link.producer,
                topic=self._link.raw_topic,
                max_in_flight=settings.max_in_flight,
                send_seconds=metrics.send_seconds,
            )
            try:
                for index, chunk in enumerate(chunk_record(record, plan)):
                    if index not in unacknowledged:
                        continue
                    nbytes = plan.chunk_bytes(chunk.n_slices)
                    if first_attempt:
                        await pacer.pace(nbytes)
                    spread = partition_for(
                        file_number=record.number,
                        chunk_index=index,
                        partitions=len(self._link.partitions),
                    )
                    await sender.send(
                        chunk.to_bytes(),
                        key=key,
                        partition=self._link.partitions[spread],
                        on_delivered=functools.partial(delivered, index, nbytes, chunk.n_slices),
                    )
                await sender.flush()
            except KafkaError as error:
                sender.abandon()
                first_attempt = False
                await self._link.recover(error)
        self._link.delivered()
        self.handed += 1
        _log.info(
            "Sent a file.",
            file=record.source,
            file_number=record.number,
            slices=layout.n_slices,
            dropped_samples=layout.remainder,
            seconds=round(time.monotonic() - started, 3),
            lag_seconds=round(pacer.lag, 3),
        )
        return record

    def _start_pacing(self, pair_bytes: int) -> Pacer:
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
