"""A directory watched while the DAQ writes into it: a pair is taken once both files have settled.

The watcher polls (a scan and a stat per pending pair) rather than using inotify: polling
works the same on local disks, NFS and container volumes, and "settled" has to be
decided from sizes over time anyway, since nothing tells us that the DAQ closed a file.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from pathlib import Path

from quax_producer.items import BadPair, SourceItem, read_item
from quaxspec.daq import SAMPLE_DTYPE, DaqFileError, FilePair, scan_directory

__all__ = ["PairLook", "Settler", "watch_source"]


@dataclass(frozen=True, slots=True)
class PairLook:
    """What one poll saw of a pair: sizes and modification times of both files."""

    pair: FilePair
    i_size: int
    q_size: int
    i_mtime_ns: int
    q_mtime_ns: int

    @classmethod
    def of(cls, pair: FilePair) -> PairLook | None:
        """Stat both files; None if one of them is (momentarily) missing."""
        try:
            i, q = pair.i_path.stat(), pair.q_path.stat()
        except OSError:
            return None
        return cls(pair, i.st_size, q.st_size, i.st_mtime_ns, q.st_mtime_ns)

    @property
    def signature(self) -> tuple[int, int, int, int]:
        """What must stay the same between polls (mtimes too, for a DAQ that preallocates)."""
        return self.i_size, self.q_size, self.i_mtime_ns, self.q_mtime_ns

    def problem(self) -> str | None:
        """Why a settled pair cannot be used, if it cannot."""
        if self.i_size != self.q_size:
            return f"settled with {self.i_size} bytes of I but {self.q_size} of Q"
        if self.i_size % SAMPLE_DTYPE.itemsize:
            return f"settled at {self.i_size} bytes, not a whole number of float32 samples"
        return None


class Settler:
    """Decides, poll after poll, which pairs have settled; each file number is settled once."""

    def __init__(self, *, settle_polls: int) -> None:
        if settle_polls < 1:
            raise ValueError(f"settle polls must be at least 1, got {settle_polls}")
        self._settle_polls = settle_polls
        # Per pending file number: the last signature seen and in how many polls in a row.
        self._seen: dict[int, tuple[tuple[int, int, int, int], int]] = {}
        self._done: set[int] = set()

    def pending(self, numbers: Iterable[int]) -> list[int]:
        """The numbers (of pairs now present) not settled yet; forgets pairs that are gone."""
        present = set(numbers)
        # Forgetting removed pairs keeps memory bounded over a run of weeks.
        self._done &= present
        for number in self._seen.keys() - present:
            del self._seen[number]
        return sorted(present - self._done)

    def observe(self, looks: Iterable[PairLook]) -> list[PairLook]:
        """Record one poll; return the pairs settled by it, in file-number order."""
        settled = []
        for look in sorted(looks, key=lambda look: look.pair.number):
            number = look.pair.number
            if number in self._done:
                continue
            previous, count = self._seen.get(number, (None, 0))
            count = count + 1 if look.signature == previous else 1
            self._seen[number] = (look.signature, count)
            # An empty file is one the DAQ has created but not yet written: wait for it.
            if count >= self._settle_polls and look.i_size > 0 and look.q_size > 0:
                settled.append(look)
                self._done.add(number)
                del self._seen[number]
        return settled


def _poll(directory: Path, settler: Settler, first_file: int) -> list[PairLook]:
    pairs = {p.number: p for p in scan_directory(directory).pairs if p.number >= first_file}
    looks = (PairLook.of(pairs[number]) for number in settler.pending(pairs))
    return settler.observe(look for look in looks if look is not None)


async def watch_source(
    directory: Path,
    *,
    poll_seconds: float,
    settle_polls: int,
    first_file: int = 0,
    limit: int | None = None,
) -> AsyncGenerator[SourceItem, None]:
    """Pairs as the DAQ finishes them, forever (or until ``limit`` records)."""
    settler = Settler(settle_polls=settle_polls)
    taken = 0
    while True:
        # Scanning a large directory is blocking I/O: keep it off the event loop.
        for look in await asyncio.to_thread(_poll, directory, settler, first_file):
            problem = look.problem()
            item = (
                read_item(look.pair)
                if problem is None
                else BadPair(error=DaqFileError(look.pair.i_path, problem), reason="invalid")
            )
            yield item
            taken += not isinstance(item, BadPair)
            if limit is not None and taken >= limit:
                return
        await asyncio.sleep(poll_seconds)
