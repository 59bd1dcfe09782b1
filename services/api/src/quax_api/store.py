"""What the API knows: the latest spectrum of every run and its recent file spectra, in memory.

Updates come from quax.runs (compacted: the latest per run) and quax.spectra. Both are
at-least-once, so a file spectrum may arrive twice (same content) and run updates can
be replayed: the store keeps the highest revision of each file (a file closed incomplete
is emitted again as each late chunk merges) and, per run, the update with the most slices.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from quaxspec.spectra import FileSpectrum, RunSpectrum

__all__ = ["RunState", "SpectrumStore"]


@dataclass(slots=True)
class RunState:
    """One run: its latest cumulative spectrum and its most recent file spectra."""

    run: RunSpectrum | None = None
    #: File spectra by file number (the newest ``recent_files`` numbers).
    files: dict[int, FileSpectrum] = field(default_factory=dict)

    def file_numbers(self) -> list[int]:
        """The kept file numbers, in order."""
        return sorted(self.files)


class SpectrumStore:
    """Runs by id, each with a bounded window of file spectra (newest file numbers kept)."""

    def __init__(self, *, recent_files: int) -> None:
        self._recent = recent_files
        self._runs: dict[str, RunState] = {}
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
        state = self._runs.setdefault(spectrum.run_id, RunState())
        if state.run is not None and spectrum.slices <= state.run.slices:
            return False
        state.run = spectrum
        return True

    def add_file(self, spectrum: FileSpectrum) -> bool:
        """Keep a file spectrum unless this revision or a later one is known; return whether new."""
        state = self._runs.setdefault(spectrum.run_id, RunState())
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
        """Every run known, sorted."""
        return sorted(self._runs)

    def state(self, run_id: str) -> RunState | None:
        """A run's state, if known."""
        return self._runs.get(run_id)
