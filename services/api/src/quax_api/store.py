"""What the API knows: the latest spectrum and recent file spectra of the newest runs, in memory.

Updates come from quax.runs (compacted: the latest per run) and quax.spectra. Both are
at-least-once, so a file spectrum may arrive twice (same content) and run updates can
be replayed: the store keeps the highest revision of each file (a file closed incomplete
is emitted again as each late chunk merges) and, per run, the update with the most slices.

Memory is bounded for a weeks-long deployment: the ``max_runs`` runs updated most recently
are kept whole (~18 MB each with 240 files of 3072 bins); of older runs only a
:class:`RunHeadline` (their figures, no arrays) is kept, so they are still listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from quaxspec.spectra import FileSpectrum, RunSpectrum

__all__ = ["RunHeadline", "RunState", "SpectrumStore"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunHeadline:
    """The figures of a run's latest update, without its arrays (what a run list shows)."""

    run_id: str
    files: int
    incomplete_files: int
    slices: int
    duplicates: int
    late_chunks: int
    dropped_late_chunks: int
    awaiting_files: int
    first_daq_time: float
    last_daq_time: float
    last_file: int
    emitted_time: float
    radiometer_ratio: float
    candidate_count: int
    f_lo: float
    n_fft: int

    @classmethod
    def of(cls, run: RunSpectrum) -> RunHeadline:
        """The headline of a run update."""
        return cls(
            run_id=run.run_id, files=run.files, incomplete_files=run.incomplete_files,
            slices=run.slices, duplicates=run.duplicates, late_chunks=run.late_chunks,
            dropped_late_chunks=run.dropped_late_chunks, awaiting_files=run.awaiting_files,
            first_daq_time=run.first_daq_time, last_daq_time=run.last_daq_time,
            last_file=run.last_file, emitted_time=run.emitted_time,
            radiometer_ratio=run.radiometer_ratio, candidate_count=run.candidate_count,
            f_lo=run.f_lo, n_fft=run.n_fft,
        )  # fmt: skip


@dataclass(slots=True)
class RunState:
    """One run: its latest cumulative spectrum and its most recent file spectra."""

    run: RunSpectrum | None = None
    #: File spectra by file number (the newest ``recent_files`` numbers).
    files: dict[int, FileSpectrum] = field(default_factory=dict)

    def file_numbers(self) -> list[int]:
        """The kept file numbers, in order."""
        return sorted(self.files)

    @property
    def updated(self) -> float:
        """Emission time of the newest update kept (run or file)."""
        times = [s.emitted_time for s in self.files.values()]
        if self.run is not None:
            times.append(self.run.emitted_time)
        return max(times, default=float("-inf"))


class SpectrumStore:
    """The newest runs by id, each with a bounded window of file spectra; headlines of the rest."""

    def __init__(self, *, recent_files: int, max_runs: int = 8) -> None:
        self._recent = recent_files
        self._max_runs = max_runs
        self._runs: dict[str, RunState] = {}
        self._headlines: dict[str, RunHeadline] = {}
        self._rejects: dict[str, int] = {}

    def add_reject(self, key: bytes | None) -> None:
        """Count a dead letter for the run its Kafka key names ("run" or "run/file")."""
        run_id = (key or b"").decode(errors="replace").split("/", 1)[0]
        self._rejects[run_id] = self._rejects.get(run_id, 0) + 1

    def rejects(self, run_id: str) -> int:
        """Dead letters whose key names ``run_id``."""
        return self._rejects.get(run_id, 0)

    def add_run(self, spectrum: RunSpectrum) -> bool:
        """Keep the update if it is newer (more slices); return whether it was."""
        headline = self._headlines.get(spectrum.run_id)
        if headline is not None and spectrum.slices <= headline.slices:
            return False  # an old update of a run kept as a headline only
        state = self._state_of(spectrum.run_id)
        if state.run is not None and spectrum.slices <= state.run.slices:
            return False
        state.run = spectrum
        self._bound()
        return True

    def add_file(self, spectrum: FileSpectrum) -> bool:
        """Keep a file spectrum unless this revision or a later one is known; return whether new."""
        headline = self._headlines.get(spectrum.run_id)
        if headline is not None and spectrum.emitted_time <= headline.emitted_time:
            return False  # an old file of a run kept as a headline only
        try:
            return self._add_file(spectrum)
        finally:
            self._bound()

    def _add_file(self, spectrum: FileSpectrum) -> bool:
        state = self._state_of(spectrum.run_id)
        known = state.files.get(spectrum.file_number)
        if known is not None:
            if spectrum.revision <= known.revision:
                return False
            state.files[spectrum.file_number] = spectrum
            return True
        if len(state.files) >= self._recent and spectrum.file_number < min(state.files):
            return False  # older than everything kept
        state.files[spectrum.file_number] = spectrum
        if len(state.files) > self._recent:
            del state.files[min(state.files)]
        return True

    def run_ids(self) -> list[str]:
        """The runs kept whole, sorted."""
        return sorted(self._runs)

    def state(self, run_id: str) -> RunState | None:
        """A run's state, if it is kept whole."""
        return self._runs.get(run_id)

    def headlines(self) -> list[RunHeadline]:
        """Every run's latest figures: of the runs kept whole and of the older ones."""
        kept = [RunHeadline.of(s.run) for s in self._runs.values() if s.run is not None]
        return kept + list(self._headlines.values())

    def is_headline_only(self, run_id: str) -> bool:
        """Whether only the figures of this (older) run are kept."""
        return run_id in self._headlines

    def _state_of(self, run_id: str) -> RunState:
        state = self._runs.get(run_id)
        if state is None:
            state = self._runs[run_id] = RunState()
            self._headlines.pop(run_id, None)  # an older run updated again is kept whole
        return state

    def _bound(self) -> None:
        while len(self._runs) > self._max_runs:
            oldest = min(self._runs, key=lambda run_id: self._runs[run_id].updated)
            state = self._runs.pop(oldest)
            if state.run is not None:
                self._headlines[oldest] = RunHeadline.of(state.run)
