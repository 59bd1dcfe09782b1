"""What the aggregator does with each record and on each timer tick, without Faust.

:class:`PartialHandler` takes one record of the partials topic (a partial, a worker's
skip notice or a close request), applies the library's step to the tables and sends what
the step emits; :class:`StalledFiles` finds the open files whose chunks stopped coming and
asks for them to be closed. Both get their tables, their outputs (coroutines that send a
record), their metrics and their clock passed in: the Faust agent and timers only feed them
(quax_aggregator.agents), and the tests run them on dictionaries and lists.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from quax_aggregator.metrics import AggregatorMetrics, RunSeries
from quax_aggregator.tables import Tables, file_key
from quaxspec.deadletter import Rejecter, Send, Source
from quaxspec.findings import AnalysisConfig
from quaxspec.limits import MessageTooLargeError, ensure_fits
from quaxspec.merging import Step, apply_close, apply_partial
from quaxspec.messages import (
    CloseFile,
    MessageDecodeError,
    Partial,
    SkippedChunk,
    decode_partials_topic,
)
from quaxspec.spectra import FileSpectrum, RunSpectrum
from quaxspec.timeouts import SilenceClock

__all__ = ["Outputs", "PartialHandler", "StalledFiles"]

log = structlog.get_logger("quax.aggregator")


@dataclass(frozen=True, slots=True)
class Outputs:
    """The topics the aggregator writes."""

    spectra: Send
    runs: Send
    partials: Send  # close requests go through the partials topic
    dead: Send


class PartialHandler:
    """Merge one record of the partials topic into the tables and emit what it completes."""

    def __init__(
        self,
        *,
        tables: Tables,
        outputs: Outputs,
        metrics: AggregatorMetrics,
        run_series: RunSeries,
        config: AnalysisConfig,
        late_files: int,
        max_message_bytes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tables = tables
        self._outputs = outputs
        self._metrics = metrics
        # MessageTooLargeError is a ValueError: it is named first.
        self._reject = Rejecter(
            send=outputs.dead,
            service="aggregator",
            known=[
                (MessageDecodeError, "undecodable"),
                (MessageTooLargeError, "too-large"),
                (ValueError, "inconsistent"),
            ],
            counter=metrics.rejects,
            unforeseen="A partial could not be merged.",
        )
        self._run_series = run_series
        self._config = config
        self._late_files = late_files
        self._max_bytes = max_message_bytes
        self._clock = clock

    async def handle(self, key: bytes | None, value: bytes | None, source: Source) -> None:
        """Merge one partial (or apply one close request) and emit what it completes.

        Whatever goes wrong with one record before anything is written or sent (it does
        not decode, contradicts its file, would make a message too large, or anything
        unforeseen) sends it to the dead-letter topic once, leaves the tables as they were
        and the stream goes on; sending to Kafka is not guarded.
        """
        tables = self._tables
        try:
            if value is None:
                raise MessageDecodeError("a record without a value")
            message = decode_partials_topic(value)
            file = tables.file(message.run_id, message.file_number)
            run = tables.run(message.run_id)
            started = time.perf_counter()
            now = self._clock()
            if isinstance(message, CloseFile):
                step = apply_close(
                    message, file=file, run=run, now=now, config=self._config,
                    late_files=self._late_files,
                )  # fmt: skip
            else:
                step = apply_partial(
                    message, file=file, run=run, now=now, config=self._config,
                    late_files=self._late_files,
                )  # fmt: skip
            file_message, run_message = self._encode(step)
        except Exception as error:
            await self._reject(key=key, value=value, source=source, error=error)
            return
        await self._emit(step, file_message, run_message)
        self._store(step, message.run_id, message.file_number)
        if step.file_spectrum is not None:
            self._metrics.analysis_seconds.observe(time.perf_counter() - started)
        self._count(step, message)

    def _encode(self, step: Step) -> tuple[bytes | None, bytes | None]:
        """The step's spectra as messages; MessageTooLargeError if one cannot be sent."""
        file, run = step.file_spectrum, step.run_spectrum
        limit = self._max_bytes
        file_message = run_message = None
        if file is not None:
            file_message = ensure_fits(file.to_bytes(), limit=limit, what="a file spectrum")
        if run is not None:
            run_message = ensure_fits(run.to_bytes(), limit=limit, what="a run spectrum")
        return file_message, run_message

    def _store(self, step: Step, run_id: str, file_number: int) -> None:
        files = self._tables.files
        key = file_key(run_id, file_number)
        if step.file is None:
            if key in files:
                del files[key]
        else:
            files[key] = step.file.to_bytes()
        for number in step.forget:  # closed files the run no longer keeps for late chunks
            forgotten = file_key(run_id, number)
            if forgotten in files:
                del files[forgotten]
        if step.run is not None:
            self._tables.runs[run_id.encode()] = step.run.to_bytes()

    async def _emit(
        self, step: Step, file_message: bytes | None, run_message: bytes | None
    ) -> None:
        spectrum, run = step.file_spectrum, step.run_spectrum
        if spectrum is None or file_message is None:
            return
        key = spectrum.run_id.encode()
        await self._outputs.spectra(key=key, value=file_message)
        if run is not None and run_message is not None:
            await self._outputs.runs(key=key, value=run_message)
        self._observe(spectrum, run)

    def _observe(self, spectrum: FileSpectrum, run: RunSpectrum | None) -> None:
        metrics = self._metrics
        latency = max(spectrum.emitted_time - spectrum.daq_time, 0.0)
        if spectrum.revision == 0:
            metrics.files.labels(complete=str(spectrum.complete).lower()).inc()
            metrics.latency.observe(latency)
        best = max(run.candidates, key=lambda c: c.significance, default=None) if run else None
        if run is not None:
            self._run_series.set(
                run.run_id,
                best_sigma=best.significance if best else 0.0,
                radiometer=run.radiometer_ratio,
                files=run.files,
                now=time.monotonic(),
            )
        if spectrum.revision:
            what = "Revised a file with a late chunk."
        elif spectrum.complete:
            what = "Emitted a file spectrum."
        else:
            what = "Closed an incomplete file."
        log.info(
            what,
            run_id=spectrum.run_id,
            file=spectrum.file_number,
            revision=spectrum.revision,
            slices=spectrum.count,
            expected=spectrum.expected_count,
            latency_s=round(latency, 3),
            run_files=run.files if run else 0,
            run_slices=run.slices if run else 0,
            radiometer=round(run.radiometer_ratio, 3) if run else None,
            best_candidate_khz=None
            if best is None
            else round((best.frequency_hz - spectrum.f_lo) / 1e3, 2),
            best_sigma=round(best.significance, 2) if best else None,
        )

    def _count(self, step: Step, message: Partial | SkippedChunk | CloseFile) -> None:
        metrics = self._metrics
        if step.duplicate:
            metrics.duplicates.inc()
            log.info(
                "Ignored a redelivered partial.", run_id=message.run_id, file=message.file_number
            )
            return
        if step.dropped:
            metrics.dropped_late_chunks.inc()
            log.warning(
                "Dropped a late chunk: its file was closed and is no longer kept.",
                run_id=message.run_id,
                file=message.file_number,
                late_files=self._late_files,
            )
            return
        if step.late:
            metrics.late_chunks.inc()
        if isinstance(message, Partial):
            metrics.partials.inc()
            metrics.slices.inc(int(message.moments.n))


class StalledFiles:
    """Ask for the open files whose chunks stopped coming to be closed.

    Only silence counts: time during which the file's chunks could have come. While the
    FFT workers or this aggregator are behind, or Kafka cannot be asked, the chunks may be
    on their way (quaxspec.timeouts). Requests go through the partials topic, keyed by
    run, so they are applied in order after every partial already there; the clock
    restarts when this process starts.
    """

    def __init__(
        self,
        *,
        tables: Tables,
        outputs: Outputs,
        timeout: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tables = tables
        self._outputs = outputs
        self._silence: SilenceClock[bytes] = SilenceClock(timeout=timeout)
        self._clock = clock

    async def tick(self, *, upstream_idle: bool) -> list[CloseFile]:
        """Send a close request for each open file silent for the timeout; return them."""
        files = {file_key(f.run_id, f.file_number): f for f in self._tables.open_files()}
        due = self._silence.tick(
            self._clock(),
            upstream_idle=upstream_idle,
            files=[(k, f.updated) for k, f in files.items()],
        )
        requests = []
        for key in due:
            file = files[key]
            log.warning(
                "Closing a file that stopped receiving chunks.",
                run_id=file.run_id,
                file=file.file_number,
                slices=int(file.moments.n),
                expected=file.total_slices,
                silent_s=round(self._silence.silence(key), 1),
            )
            request = CloseFile(run_id=file.run_id, file_number=file.file_number)
            await self._outputs.partials(key=file.run_id.encode(), value=request.to_bytes())
            requests.append(request)
        return requests
