"""What the aggregator does with one message: update file and run state, decide what to emit.

Functions of (message, current state) → :class:`Step`; they update the accumulators they
are given and touch nothing else. The Faust agent only reads the tables, calls one of
them, writes the tables back and sends what the step says. Every function is idempotent:
a message applied twice leaves the state as applying it once.

A file is emitted when it finishes (every slice merged or skipped) or when the aggregator
closes it after its chunks stopped coming. A file closed before it finished stays in the
table, marked closed, so that its late chunks still merge into it and into the run, each
once; every late chunk emits the file again as a new revision, with the run. The run keeps
at most ``late_files`` such files and forgets the oldest beyond.
"""

from __future__ import annotations

from dataclasses import dataclass

from quaxspec.aggregation import FileAccumulator, RunAccumulator, file_spectrum, run_spectrum
from quaxspec.analysis import analyse
from quaxspec.findings import AnalysisConfig
from quaxspec.messages import CloseFile, Partial, SkippedChunk
from quaxspec.spectra import FileSpectrum, RunSpectrum

__all__ = ["Step", "apply_close", "apply_partial"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """The outcome of one message."""

    #: The file's new state; None when nothing is kept of it (its table entry is deleted).
    file: FileAccumulator | None
    #: The run's new state; None when the message did not change it.
    run: RunAccumulator | None
    #: Messages to emit when a file was closed.
    file_spectrum: FileSpectrum | None = None
    run_spectrum: RunSpectrum | None = None
    #: The message repeated something already counted (a redelivery).
    duplicate: bool = False
    #: The chunk came after its file was closed and was merged.
    late: bool = False
    #: The chunk came after its file was closed and forgotten: it is lost.
    dropped: bool = False
    #: Other files of the run no longer kept for late chunks (their entries are deleted).
    forget: tuple[int, ...] = ()


def apply_partial(
    message: Partial | SkippedChunk,
    *,
    file: FileAccumulator | None,
    run: RunAccumulator | None,
    now: float,
    config: AnalysisConfig,
    late_files: int,
) -> Step:
    """Account for a chunk in its file; close the file (merge it into its run) once finished.

    A file is finished when all its slices are merged or skipped; it is then emitted,
    flagged incomplete if any were skipped. A chunk of a file already closed is late: it
    merges into the file and the run if the file is still kept, is a duplicate if the
    file was complete, and is dropped (counted) if the file was forgotten. A chunk that
    contradicts its file raises ValueError (the caller dead-letters it).
    """
    number = message.file_number
    if run is not None and number in run.files:
        if file is not None and file.closed:
            return _late(message, file, run, now=now, config=config)
        if number in run.incomplete:
            run.dropped_late_chunks += 1
            return Step(file=None, run=run, dropped=True)
        run.duplicates += 1
        return Step(file=None, run=run, duplicate=True)
    file = file if file is not None else FileAccumulator.open(message, now=now)
    new = file.apply(message, now=now)
    if not file.finished:
        return Step(file=file, run=None, duplicate=not new)
    return _close(file, run, now=now, config=config, late_files=late_files, duplicate=not new)


def apply_close(
    request: CloseFile,
    *,
    file: FileAccumulator | None,
    run: RunAccumulator | None,
    now: float,
    config: AnalysisConfig,
    late_files: int,
) -> Step:
    """Close a stalled file: emit what it has, merge it into its run, keep it for late chunks.

    A request for a file that is not open (it finished, or was closed before) does nothing.
    """
    if file is None or file.closed:
        return Step(file=file, run=None)
    return _close(file, run, now=now, config=config, late_files=late_files)


def _late(
    message: Partial | SkippedChunk,
    file: FileAccumulator,
    run: RunAccumulator,
    *,
    now: float,
    config: AnalysisConfig,
) -> Step:
    if not file.apply(message, now=now):
        run.duplicates += 1
        return Step(file=file, run=run, duplicate=True)
    run.merge_late(message, file)
    kept = None if file.finished else file
    if isinstance(message, SkippedChunk):
        return Step(file=kept, run=run, late=True)  # the spectrum is unchanged
    return _emitting(file, run, kept=kept, now=now, config=config, late=True)


def _close(
    file: FileAccumulator,
    run: RunAccumulator | None,
    *,
    now: float,
    config: AnalysisConfig,
    late_files: int,
    duplicate: bool = False,
) -> Step:
    run = run if run is not None else RunAccumulator.start(file)
    run.merge_file(file)
    kept: FileAccumulator | None = None
    forget: tuple[int, ...] = ()
    if not file.finished:
        file.closed = True
        forget = tuple(run.await_late(file.file_number, keep=late_files))
        kept = None if file.file_number in forget else file
    return _emitting(
        file,
        run,
        kept=kept,
        now=now,
        config=config,
        duplicate=duplicate,
        forget=tuple(n for n in forget if n != file.file_number),
    )


def _emitting(
    file: FileAccumulator,
    run: RunAccumulator,
    *,
    kept: FileAccumulator | None,
    now: float,
    config: AnalysisConfig,
    duplicate: bool = False,
    late: bool = False,
    forget: tuple[int, ...] = (),
) -> Step:
    """The step that emits ``file`` (as its next revision) and the run it changed."""
    file_message = file_spectrum(file, emitted_time=now)
    run_message = None
    if run.moments.n > 0:  # a run whose files were all skipped has nothing to analyse yet
        analysis = analyse(
            run.moments.mean,
            int(run.moments.n),
            frequency=file_message.frequency_hz,
            config=config,
        )
        run_message = run_spectrum(run, analysis, config=config, emitted_time=now)
    file.revision += 1
    return Step(
        file=kept,
        run=run,
        file_spectrum=file_message,
        run_spectrum=run_message,
        duplicate=duplicate,
        late=late,
        forget=forget,
    )
