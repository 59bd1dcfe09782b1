"""Which run the producer delivers into, and what becomes of a pair the DAQ wrote again.

Pure decisions; reading and writing quax.progress is in :mod:`quax_producer.delivery`.

A run is one acquisition with one configuration. At start the producer resumes the run
its settings name (``run_id``), or else the newest run of the same source, if the files
of that run that are still there have the content they had when delivered (their
fingerprints); otherwise it starts a new run, named after the source and the time of its
first file. While watching, a pair whose number was already delivered is a repeat when its
content is the one delivered, and a new acquisition otherwise; so is a pair numbered below
the run's first file but written after it (the DAQ numbering from the start again).
"""

from __future__ import annotations

import collections
import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from quaxspec.progress import FileMark, RunConfig, RunProgress, Shard

__all__ = ["RunLedger", "RunRefusedError", "Verdict", "check_shards", "choose_run", "new_run_id"]

Verdict = Literal["send", "repeat", "predates", "new_acquisition"]

#: Fingerprints of this many recently delivered files are kept in memory, so that a pair
#: written again unchanged is recognised as a repeat.
_RECENT = 4096


class RunRefusedError(Exception):
    """The named run cannot take this producer's files (another configuration or content)."""


def new_run_id(base: str, first_time: float, taken: Mapping[str, object]) -> str:
    """``<base>-<UTC time of the first file>``, unique among ``taken``."""
    stamp = datetime.datetime.fromtimestamp(first_time, datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id, n = f"{base[:200]}-{stamp}", 1
    while run_id in taken:
        n += 1
        run_id = f"{base[:200]}-{stamp}-{n}"
    return run_id


def choose_run(
    *,
    run_id: str | None,
    source: str,
    base: str,
    config: RunConfig,
    known: Mapping[str, RunProgress],
    fingerprint_of: Callable[[int], str | None],
    first_time: Callable[[], float],
    now: float,
) -> tuple[RunProgress, str]:
    """The run to deliver into, and a sentence that says why (for the log).

    ``fingerprint_of(n)`` is the fingerprint of file ``n`` as the source has it now (None
    when it has no such file); ``first_time()``, the time of the source's first file, names
    a new run. Raises :class:`RunRefusedError` when ``run_id`` names a run of another
    configuration or another acquisition.
    """
    if run_id is not None:
        existing = known.get(run_id)
        if existing is None:
            return _start(run_id, source, config, now), f"run {run_id} is new"
        differences = config.differences(existing.config)
        if differences:
            raise RunRefusedError(
                f"run {run_id} was started with {existing.config.describe()}; this producer "
                f"has {config.describe()} ({'; '.join(differences)}). A run keeps the "
                "configuration of its first file: give this one another run id."
            )
        conflict = _conflict(existing, fingerprint_of)
        if conflict is not None:
            raise RunRefusedError(
                f"run {run_id} holds {conflict}: these files are another acquisition. Give "
                "them another run id, or leave the run id unset for one run per acquisition."
            )
        return existing, f"resuming run {run_id} after {len(existing.files)} delivered files"
    same_source = sorted(
        (p for p in known.values() if p.source == source), key=lambda p: p.started_time
    )
    if same_source:
        latest = same_source[-1]
        differences = config.differences(latest.config)
        conflict = None if differences else _conflict(latest, fingerprint_of)
        if not differences and conflict is None:
            return latest, (
                f"resuming run {latest.run_id} of this source after "
                f"{len(latest.files)} delivered files"
            )
        why = "; ".join(differences) if differences else f"it holds {conflict}"
        fresh = _start(new_run_id(base, first_time(), known), source, config, now)
        return fresh, (
            f"run {fresh.run_id} is new: the last run of this source ({latest.run_id}) "
            f"differs: {why}"
        )
    fresh = _start(new_run_id(base, first_time(), known), source, config, now)
    return fresh, f"run {fresh.run_id} is new: no run of this source yet"


def check_shards(shard: Shard | None, config: RunConfig, records: list[RunProgress]) -> None:
    """Refuse to feed a named run that other producers feed in another way.

    ``records`` are the run's progress records; ``shard`` and ``config`` this producer's.
    Shards of one run must cut the file numbers the same way (the same N) and share its
    configuration; a whole-run producer and shards would each send the files the other had
    sent. Raises :class:`RunRefusedError` with the reason.
    """
    for other in records:
        if other.shard == shard:
            continue
        theirs = "the whole run" if other.shard is None else f"shard {other.shard}"
        mine = "the whole run" if shard is None else f"shard {shard}"
        if shard is None or other.shard is None or other.shard.count != shard.count:
            raise RunRefusedError(
                f"run {other.run_id} is fed as {theirs}; this producer would feed {mine}. "
                "Use the same number of shards as the run's other producers, or another run id."
            )
        differences = config.differences(other.config)
        if differences:
            raise RunRefusedError(
                f"run {other.run_id} was started by its shard {other.shard} with "
                f"{other.config.describe()}; this shard has {config.describe()} "
                f"({'; '.join(differences)}). Every shard of a run needs the same settings."
            )


def _start(run_id: str, source: str, config: RunConfig, now: float) -> RunProgress:
    return RunProgress(
        run_id=run_id, source=source, config=config, started_time=now, updated_time=now
    )


def _conflict(progress: RunProgress, fingerprint_of: Callable[[int], str | None]) -> str | None:
    """A delivered file whose content is not the delivered one, described; else None.

    The run's first and last files are compared: an acquisition that overwrote the folder
    changed its first file, and one that continued it left its last one as it was. Files
    no longer there cannot be compared and do not count against the run.
    """
    for mark in (progress.first, progress.last):
        if mark is None:
            continue
        found = fingerprint_of(mark.number)
        if found is not None and found != mark.fingerprint:
            return (
                f"file {mark.number} with other content (delivered {mark.fingerprint}, now {found})"
            )
    return None


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a pair: its verdict and, for the log, why."""

    verdict: Verdict
    reason: str


class RunLedger:
    """The run being delivered: its progress, and the fingerprints of recently delivered files.

    ``live`` is for a watched folder, where the DAQ writes files in number order: a pair
    delivered before with other content, or numbered below the run's first but written
    after it, is a new acquisition; a pair numbered above the run's first but written
    before it is left over from an older one.
    """

    def __init__(self, progress: RunProgress, *, live: bool) -> None:
        self.progress = progress
        self._live = live
        self._recent: collections.OrderedDict[int, str] = collections.OrderedDict()
        for mark in (progress.first, progress.last):
            if mark is not None:
                self._remember(mark.number, mark.fingerprint)

    def delivered_before(self, number: int) -> bool:
        """Whether the run already holds file ``number``."""
        return number in self.progress.files

    def decide(self, number: int, daq_time: float, fingerprint: str | None) -> Decision:
        """The verdict on a pair; ``fingerprint`` is needed only if it was delivered before."""
        if self.delivered_before(number):
            known = self._recent.get(number)
            if known is not None and fingerprint == known:
                return Decision(
                    "repeat", f"file {number} was written again with the content delivered"
                )
            if not self._live:
                return Decision("repeat", f"file {number} was delivered before")
            what = "other content" if known is not None else "content not compared"
            return Decision(
                "new_acquisition",
                f"file {number} was delivered before and is written again with {what}",
            )
        first = self.progress.first
        if self._live and first is not None:
            # Within one acquisition, numbers and times go up together. A pair numbered
            # above the run's lowest file but written before it is left over from an older
            # acquisition; one numbered below it but written after it starts a new one.
            if number > first.number and daq_time < first.daq_time:
                return Decision(
                    "predates",
                    f"file {number} was written before the run's first file {first.number}",
                )
            if number < first.number and daq_time >= first.daq_time:
                return Decision(
                    "new_acquisition",
                    f"file {number} is numbered below the run's first file {first.number} "
                    "but was written after it",
                )
        return Decision("send", "")

    def delivered(self, mark: FileMark, *, now: float) -> RunProgress:
        """Record a file whose every chunk Kafka acknowledged; return the new progress."""
        self.progress = self.progress.delivered(mark, now=now)
        self._remember(mark.number, mark.fingerprint)
        return self.progress

    def ended(self, *, now: float) -> RunProgress:
        """Record that the source has ended; return the new progress."""
        self.progress = self.progress.ended(now=now)
        return self.progress

    def _remember(self, number: int, fingerprint: str) -> None:
        self._recent[number] = fingerprint
        self._recent.move_to_end(number)
        while len(self._recent) > _RECENT:
            self._recent.popitem(last=False)
