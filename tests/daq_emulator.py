"""A DAQ that writes pairs into a folder as QUAX's does: in pieces, I and Q together, on its clock.

The time at which each pair is complete on disk (its last byte written and both files
closed) is recorded by the wall clock, so that a test can measure what a user sees: the
delay from there to the pair's spectrum on the WebSocket. The content of each file is one
of a few synthetic records (distinct seeds), cycled: generating 2²³ samples takes about
a second, which would compete with the pipeline for the same two cores.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from quaxspec.daq import pair_paths
from quaxspec.synthetic import SyntheticDaq


@dataclass
class DaqEmulator:
    """Writes ``count`` pairs from ``first`` on, one every ``period`` seconds (drift free)."""

    directory: Path
    samples: int
    period: float = 4.2
    #: Each pair is written in this many pieces per file, spread over this share of the period.
    pieces: int = 16
    writing_share: float = 0.5
    #: Distinct contents to cycle through (seeds ``seed`` … ``seed + variety − 1``).
    seed: int = 0
    variety: int = 4
    #: Keep at most this many pairs on disk, deleting the oldest (the DAQ's housekeeping).
    keep: int | None = None
    completed: dict[int, float] = field(default_factory=dict)
    #: The pair being written and the share of it on disk (for a test to act mid-file).
    writing: tuple[int, float] | None = None

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._contents = [
            SyntheticDaq(seed=self.seed + k, n_samples=self.samples).samples(0)
            for k in range(self.variety)
        ]
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.failure: BaseException | None = None

    def content(self, number: int) -> tuple[np.ndarray, np.ndarray]:
        """The I and Q samples written as file ``number``."""
        return self._contents[number % self.variety]

    def write(self, number: int) -> float:
        """Write one pair in pieces; return the wall time once it is complete on disk."""
        i, q = self.content(number)
        i_path, q_path = pair_paths(self.directory, number)
        i_bytes, q_bytes = i.tobytes(), q.tobytes()
        piece = -(-len(i_bytes) // self.pieces)
        pause = self.period * self.writing_share / self.pieces
        with i_path.open("wb") as i_file, q_path.open("wb") as q_file:
            for start in range(0, len(i_bytes), piece):
                i_file.write(i_bytes[start : start + piece])
                q_file.write(q_bytes[start : start + piece])
                i_file.flush()
                q_file.flush()
                self.writing = (number, min(1.0, (start + piece) / len(i_bytes)))
                if start + piece < len(i_bytes):
                    time.sleep(pause)
        self.writing = None
        return time.time()

    def start(self, count: int, *, first: int = 0) -> None:
        """Write in a thread of its own."""
        self._thread = threading.Thread(target=self._run, args=(count, first), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the pair being written."""
        self._stop.set()
        self.join()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
        if self.failure is not None:
            raise self.failure

    def _run(self, count: int, first: int) -> None:
        try:
            began = time.monotonic()
            for k, number in enumerate(range(first, first + count)):
                due = began + k * self.period
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    return
                self.completed[number] = self.write(number)
                if self.keep is not None and number - self.keep >= first:
                    for path in pair_paths(self.directory, number - self.keep):
                        path.unlink(missing_ok=True)
        except BaseException as error:  # seen by join()
            self.failure = error
