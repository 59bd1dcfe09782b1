"""What the aggregator does with one message: update file and run state, decide what to emit.

Pure functions of (message, current state) → :class:`Step`; the Faust agent only reads the
tables, calls one of them, writes the tables back and sends what the step says. Every
function is idempotent: a message applied twice leaves the state as applying it once.
"""

from __future__ import annotations

from dataclasses import dataclass

from quaxspec.aggregation import FileAccumulator, RunAccumulator
from quaxspec.analysis import AnalysisConfig, analyse
from quaxspec.messages import CloseFile, Partial, SkippedChunk
from quaxspec.spectra import FileSpectrum, RunSpectrum

__all__ = ["Step", "apply_close", "apply_partial"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """The outcome of one message."""

    #: The file's new state; None when the file is closed (its table entry is deleted).
    file: FileAccumulator | None
    #: The run's new state; None when the message did not change it.
    run: RunAccumulator | None
    #: Messages to emit when a file was closed.
    file_spectrum: FileSpectrum | None = None
    run_spectrum: RunSpectrum | None = None
    #: The message repeated something already counted (a redelivery).
    duplicate: bool = False


def apply_partial(
    message: Partial | SkippedChunk,
    *,
    file: FileAccumulator | None,
    run: RunAccumulator | None,
    now: float,
    config: AnalysisConfig,
) -> Step:
    """Account for a chunk in its file; close the file (merge it into its run) once finished.

    A file is finished when all its slices are merged or skipped; it is then emitted,
    flagged incomplete if any were skipped. A chunk of a file already merged into its run
    is a late redelivery: a duplicate. A chunk that contradicts its file raises
    ValueError (the caller dead-letters it).
    """
    if run is not None and message.file_number in run.files:
        run.duplicates += 1
        return Step(file=None, run=run, duplicate=True)
    file = file if file is not None else FileAccumulator.open(message, now=now)
    new = file.apply(message, now=now)
    if not file.finished:
        return Step(file=file, run=None, duplicate=not new)
    return _close(file, run, now=now, config=config, duplicate=not new)


def apply_close(
    request: CloseFile,
    *,
    file: FileAccumulator | None,
    run: RunAccumulator | None,
    now: float,
    config: AnalysisConfig,
) -> Step:
    """Close a stalled file as incomplete: emit what it has and merge it into its run.

    A request for a file that is no longer open (it completed, or was closed before) does
    nothing.
    """
    if file is None or (run is not None and request.file_number in run.files):
        return Step(file=None, run=None)
    return _close(file, run, now=now, config=config)


def _close(
    file: FileAccumulator,
    run: RunAccumulator | None,
    *,
    now: float,
    config: AnalysisConfig,
    duplicate: bool = False,
) -> Step:
    run = run if run is not None else RunAccumulator.start(file)
    run.merge_file(file)
    spectrum = FileSpectrum.of(file, emitted_time=now)
    run_spectrum = None
    if run.moments.n > 0:  # a run whose files were all skipped has nothing to analyse yet
        analysis = analyse(
            run.moments.mean, int(run.moments.n), frequency=spectrum.frequency_hz, config=config
        )
        run_spectrum = RunSpectrum.of(run, analysis, config=config, emitted_time=now)
    return Step(
        file=None,
        run=run,
        file_spectrum=spectrum,
        run_spectrum=run_spectrum,
        duplicate=duplicate,
    )
