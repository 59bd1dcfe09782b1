"""A folder the DAQ writes into: each pair is taken as soon as both of its files are complete.

How completion is known, by the folder's file system (``watch_method="auto"``):
- **events** (local disks: ext4, xfs, btrfs, tmpfs, overlay, …): Linux inotify, through
  asyncinotify. A file is complete when the writer closes it (IN_CLOSE_WRITE) or renames
  it into the folder (IN_MOVED_TO); a pair, when both are, with equal sizes. Nothing is
  scanned after the start: the cost per pair is a few events, however many files the folder
  holds. Pairs already there at the start, which no event will announce, are taken once
  they have had no write for ``settle_seconds``.
- **polling** (NFS, SMB, FUSE, 9p, virtiofs, …, where the kernel does not see writes made
  by another host, so no event would come): a pair is complete when the sizes and mtimes
  of both files have stayed the same for ``settle_polls`` polls. A poll looks only at the
  pairs being written and at the next few file numbers after the newest pair taken (the
  DAQ numbers its files in order), plus the lowest one (to notice that the DAQ started
  numbering again); the whole folder is listed at the start and every ``rescan_seconds``,
  so a stray file is found in the end without a listing per poll.

Either way, each pair is read once per content: a pair whose sizes, mtimes and inodes are
those it had when it was taken is not taken again; a pair written again is (the stream
decides whether that is a repeat or a new acquisition). Pairs the stream already delivered
before a restart (``skip``) are not looked at during the first listing.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import time
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import structlog
from asyncinotify import Inotify, Mask

from quax_producer.items import BadPair, GrowingPair, SourceItem, read_item
from quax_producer.settings import WatchMethod
from quaxspec.daq import SAMPLE_DTYPE, DaqFileError, FilePair, pair_paths, scan_directory

__all__ = [
    "CloseTracker",
    "Frontier",
    "PairLook",
    "Settler",
    "file_system_type",
    "parse_name",
    "resolve_method",
    "watch_source",
]

_log = structlog.get_logger(__name__)

#: File systems on which inotify reports every write, because every write goes through this
#: kernel. On the others (network and user-space file systems) the writer may be elsewhere.
_LOCAL_FILE_SYSTEMS = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "overlay", "zfs", "f2fs", "jfs", "bcachefs"}
)
#: Pairs taken are remembered (by signature) for this many file numbers, so that a pair
#: seen again unchanged is not taken twice; older ones are forgotten (memory stays bounded).
_REMEMBERED = 8192
#: How many file numbers after the newest one taken a poll looks at.
_FRONTIER = 3


def parse_name(name: str) -> tuple[str, int] | None:
    """("i" or "q", file number) of a DAQ file name, or None for any other name."""
    if not (name.startswith("duck_") and name.endswith(".dat") and len(name) >= 16):
        return None
    channel, digits = name[5], name[7:-4]
    if channel not in "iq" or name[6] != "_" or not digits.isdigit() or len(digits) < 5:
        return None
    return channel, int(digits)


@dataclass(frozen=True, slots=True)
class PairLook:
    """What one look saw of a pair: sizes, modification times and inodes of both files."""

    pair: FilePair
    i_size: int
    q_size: int
    i_mtime_ns: int
    q_mtime_ns: int
    i_inode: int = 0
    q_inode: int = 0

    @classmethod
    def of(cls, pair: FilePair) -> PairLook | None:
        """Stat both files; None if one of them is (momentarily) missing."""
        try:
            i, q = pair.i_path.stat(), pair.q_path.stat()
        except OSError:
            return None
        return cls(pair, i.st_size, q.st_size, i.st_mtime_ns, q.st_mtime_ns, i.st_ino, q.st_ino)

    @property
    def signature(self) -> tuple[int, ...]:
        """What says that the pair has not changed (mtimes too, for a DAQ that preallocates)."""
        return (self.i_size, self.q_size, self.i_mtime_ns, self.q_mtime_ns)

    @property
    def identity(self) -> tuple[int, ...]:
        """The signature and the inodes: what a pair taken before must still have to be skipped."""
        return (*self.signature, self.i_inode, self.q_inode)

    def problem(self) -> str | None:
        """Why a complete pair cannot be used, if it cannot."""
        if self.i_size != self.q_size:
            return f"complete with {self.i_size} bytes of I but {self.q_size} of Q"
        if self.i_size % SAMPLE_DTYPE.itemsize:
            return f"complete at {self.i_size} bytes, not a whole number of float32 samples"
        return None


class _Taken:
    """Identities of the pairs taken, for the most recent file numbers (a bounded memory)."""

    def __init__(self, size: int = _REMEMBERED) -> None:
        self._size = size
        self._identities: collections.OrderedDict[int, tuple[int, ...]] = collections.OrderedDict()

    def __contains__(self, number: int) -> bool:
        return number in self._identities

    def unchanged(self, look: PairLook) -> bool:
        """Whether ``look`` is the pair as it was when taken (a pair looked at often stays)."""
        number = look.pair.number
        if self._identities.get(number) != look.identity:
            return False
        self._identities.move_to_end(number)
        return True

    def add(self, look: PairLook) -> None:
        self._identities[look.pair.number] = look.identity
        self._identities.move_to_end(look.pair.number)
        while len(self._identities) > self._size:
            self._identities.popitem(last=False)


#: What the events said of one file: nothing yet, being written, or closed by its writer.
_FileState = Literal["unknown", "writing", "closed"]


@dataclass(slots=True)
class _Pending:
    """A pair on its way: the state of each file, and when the pair last changed."""

    files: dict[str, _FileState] = field(default_factory=lambda: {"i": "unknown", "q": "unknown"})
    changed: float = 0.0


class CloseTracker:
    """Decides from file events when a pair is complete (the events method); pure.

    A file is closed after IN_CLOSE_WRITE or IN_MOVED_TO, and being written after IN_CREATE
    or IN_MODIFY. A file with no event since the watch began was written before it: it
    counts as closed once the pair has had no event for ``settle``. A pair is ready when
    both files are closed, or closed and quiet.
    """

    def __init__(self, *, settle: float) -> None:
        self._settle = settle
        self._pending: dict[int, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def assume(self, number: int, now: float) -> None:
        """A pair found in the folder rather than announced by events."""
        self._pending.setdefault(number, _Pending(changed=now))

    def written(self, channel: str, number: int, now: float) -> None:
        """The file is being written."""
        self._set(channel, number, "writing", now)

    def closed(self, channel: str, number: int, now: float) -> None:
        """The writer closed the file (or renamed it into the folder)."""
        self._set(channel, number, "closed", now)

    def waiting_for(self, channel: str, number: int) -> None:
        """The file does not exist yet: its creation will be announced."""
        state = self._pending.get(number)
        if state is not None:
            state.files[channel] = "writing"

    def gone(self, number: int) -> None:
        """A file of the pair was deleted or moved away."""
        self._pending.pop(number, None)

    def done(self, number: int) -> None:
        """The pair was taken (or reported): forget it until it changes again."""
        self._pending.pop(number, None)

    def ready(self, now: float) -> list[int]:
        """Pairs whose files are both closed (and quiet, if one was written before the watch)."""
        return sorted(
            number
            for number, state in self._pending.items()
            if "writing" not in state.files.values()
            and ("unknown" not in state.files.values() or self.settled(number, now))
        )

    def settled(self, number: int, now: float) -> bool:
        """Whether the pair has had no event for the settle time."""
        state = self._pending.get(number)
        return state is not None and now - state.changed >= self._settle

    def next_deadline(self) -> float:
        """When a pair that is waiting only for time may become ready (inf if none is)."""
        waiting = [
            s.changed + self._settle
            for s in self._pending.values()
            if "writing" not in s.files.values()
        ]
        return min(waiting, default=math.inf)

    def _set(self, channel: str, number: int, file_state: _FileState, now: float) -> None:
        state = self._pending.setdefault(number, _Pending())
        state.files[channel] = file_state
        state.changed = now


class Settler:
    """Decides, poll after poll, which pairs have settled (the polling method); pure.

    A pair has settled when both files are non-empty and their signatures were the same in
    ``settle_polls`` consecutive looks.
    """

    def __init__(self, *, settle_polls: int) -> None:
        if settle_polls < 1:
            raise ValueError(f"settle polls must be at least 1, got {settle_polls}")
        self._settle_polls = settle_polls
        self._seen: dict[int, tuple[tuple[int, ...], int]] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def observe(self, look: PairLook) -> bool:
        """Record one look at a pair; whether it has now settled (then it is forgotten)."""
        number = look.pair.number
        previous, count = self._seen.get(number, (None, 0))
        count = count + 1 if look.signature == previous else 1
        # An empty file is one the DAQ has created but not yet written: wait for it.
        if count >= self._settle_polls and look.i_size > 0 and look.q_size > 0:
            self._seen.pop(number, None)
            return True
        self._seen[number] = (look.signature, count)
        return False

    def forget(self, numbers: Iterable[int]) -> None:
        """Stop following pairs (gone from the folder)."""
        for number in numbers:
            self._seen.pop(number, None)

    @property
    def following(self) -> list[int]:
        """The pairs being followed."""
        return sorted(self._seen)


class Frontier:
    """Which file numbers a poll looks at: the next few after the DAQ's newest pair, and the lowest.

    The DAQ numbers its files in order, so its next pair appears right after the most
    recently written one; a pair written again at the lowest number (the DAQ numbering from
    the start again) is seen too. The newest pair is the one with the latest mtime, so that
    pairs left over from an older acquisition do not lead the look away from the DAQ.
    """

    def __init__(self, *, ahead: int = _FRONTIER) -> None:
        self._ahead = ahead
        self.newest: int | None = None
        self.lowest: int | None = None
        self._newest_mtime_ns = -1

    def took(self, number: int, mtime_ns: int = -1) -> None:
        """A pair was seen complete (``mtime_ns``: its newer file's mtime; -1 if unknown)."""
        if self.lowest is None or number < self.lowest:
            self.lowest = number
        if self.newest is None or mtime_ns >= self._newest_mtime_ns:
            self.newest, self._newest_mtime_ns = number, max(mtime_ns, self._newest_mtime_ns)

    def numbers(self) -> list[int]:
        """The numbers to look at now."""
        if self.newest is None or self.lowest is None:
            return []
        return sorted({*range(self.newest + 1, self.newest + 1 + self._ahead), self.lowest})


def file_system_type(path: Path, *, mountinfo: str | None = None) -> str | None:
    """The type of the file system ``path`` is on (from /proc/self/mountinfo), if known."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return None
    target = str(path.resolve())
    best, best_type = "", None
    for line in mountinfo.splitlines():
        before, _, after = line.partition(" - ")
        fields = before.split()
        if len(fields) < 5 or not after:
            continue
        mount_point = fields[4].replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, after.split()[0]
    return best_type


def resolve_method(
    directory: Path, requested: WatchMethod, *, mountinfo: str | None = None
) -> tuple[Literal["events", "poll"], str]:
    """The method to use and why."""
    if requested != "auto":
        return requested, "as configured"
    kind = file_system_type(directory, mountinfo=mountinfo)
    if kind in _LOCAL_FILE_SYSTEMS:
        return "events", f"{kind} is a local file system"
    return "poll", f"{kind or 'an unknown file system'} may be written by another host"


async def watch_source(
    directory: Path,
    *,
    method: WatchMethod = "auto",
    settle_seconds: float = 1.0,
    poll_seconds: float = 0.25,
    settle_polls: int = 2,
    rescan_seconds: float = 300.0,
    first_file: int = 0,
    skip: Callable[[int], bool] = lambda number: False,
    growth_step: int | None = None,
    on_look: Callable[[float], None] | None = None,
) -> AsyncGenerator[SourceItem, None]:
    """Pairs as the DAQ completes them, forever.

    ``skip`` names file numbers already delivered (they are not looked at when the folder
    is first listed). With ``growth_step``, a pair being written is also reported
    (:class:`GrowingPair`) each time another ``growth_step`` samples of both files are on
    disk. ``on_look`` receives the seconds spent on each batch of events or each poll.
    """
    if not directory.is_dir():
        raise DaqFileError(directory, "not a directory")
    chosen, why = resolve_method(directory, method)
    _log.info("Watching the DAQ folder.", directory=str(directory), method=chosen, reason=why)
    watcher = _EventWatch if chosen == "events" else _PollWatch
    async for item in watcher(
        directory,
        settle_seconds=settle_seconds,
        poll_seconds=poll_seconds,
        settle_polls=settle_polls,
        rescan_seconds=rescan_seconds,
        first_file=first_file,
        skip=skip,
        growth_step=growth_step,
        on_look=on_look or (lambda seconds: None),
    ).items():
        yield item


class _Watch:
    """What both methods share: the first listing, taking a complete pair, remembering it."""

    def __init__(
        self,
        directory: Path,
        *,
        settle_seconds: float,
        poll_seconds: float,
        settle_polls: int,
        rescan_seconds: float,
        first_file: int,
        skip: Callable[[int], bool],
        growth_step: int | None,
        on_look: Callable[[float], None],
    ) -> None:
        self.directory = directory
        self.settle_seconds = settle_seconds
        self.poll_seconds = poll_seconds
        self.settle_polls = settle_polls
        self.rescan_seconds = rescan_seconds
        self.first_file = first_file
        self.skip = skip
        self.growth_step = growth_step
        self.on_look = on_look
        self.taken = _Taken()
        #: Samples of both files last reported of each pair being written.
        self.grown: dict[int, int] = {}
        #: Reported bad pairs, by number: their identity, so each version is reported once.
        self.reported: dict[int, tuple[int, ...]] = {}

    def items(self) -> AsyncGenerator[SourceItem, None]:
        raise NotImplementedError

    async def listing(self) -> tuple[list[int], list[int]]:
        """Every pair number in the folder, and those worth a look: not delivered, not taken.

        Run in a thread: a folder of weeks holds hundreds of thousands of files. Only names
        are read; nothing is stat-ed here.
        """

        def numbers() -> tuple[list[int], list[int]]:
            present = [
                p.number
                for p in scan_directory(self.directory).pairs
                if p.number >= self.first_file
            ]
            fresh = [n for n in present if not self.skip(n) and n not in self.taken]
            return present, fresh

        return await asyncio.to_thread(numbers)

    def growth(self, look: PairLook) -> GrowingPair | None:
        """A report that the pair grew by another step since the last one, if it did."""
        step = self.growth_step
        if step is None or self.taken.unchanged(look):
            return None
        samples = min(look.i_size, look.q_size) // SAMPLE_DTYPE.itemsize
        number = look.pair.number
        if samples // step <= self.grown.get(number, 0) // step:
            return None
        self.grown[number] = samples
        return GrowingPair(pair=look.pair, samples=samples)

    def take(self, look: PairLook) -> SourceItem | None:
        """The item for a complete pair, or None if it is the pair taken before, unchanged."""
        self.grown.pop(look.pair.number, None)
        if self.taken.unchanged(look):
            return None
        problem = look.problem()
        if problem is not None:
            if self.reported.get(look.pair.number) == look.identity:
                return None
            self.reported[look.pair.number] = look.identity
            return BadPair(
                error=DaqFileError(look.pair.i_path, problem),
                reason="invalid",
                number=look.pair.number,
            )
        self.reported.pop(look.pair.number, None)
        self.taken.add(look)
        return read_item(look.pair)

    def look(self, number: int) -> PairLook | None:
        return PairLook.of(FilePair(number, *pair_paths(self.directory, number)))


class _EventWatch(_Watch):
    async def items(self) -> AsyncGenerator[SourceItem, None]:
        tracker = CloseTracker(settle=self.settle_seconds)
        mask = (
            Mask.CREATE
            | Mask.MODIFY
            | Mask.CLOSE_WRITE
            | Mask.MOVED_TO
            | Mask.MOVED_FROM
            | Mask.DELETE
            | Mask.ONLYDIR
        )
        with Inotify() as inotify:
            inotify.add_watch(self.directory, mask)
            # One reader task that is never cancelled while the watch runs: cancelling a
            # pending read could drop the events it had already taken from the kernel.
            events: asyncio.Queue[Mask | tuple[Mask, str]] = asyncio.Queue()
            reader = asyncio.create_task(_read_events(inotify, events))
            try:
                # Listed after the watch is in place, so nothing written meanwhile is missed.
                _, fresh = await self.listing()
                for number in fresh:
                    tracker.assume(number, time.monotonic())
                while True:
                    started = time.perf_counter()
                    for number in tracker.ready(time.monotonic()):
                        item = self._complete(tracker, number)
                        if item is not None:
                            yield item
                    self.on_look(time.perf_counter() - started)
                    wait = tracker.next_deadline() - time.monotonic()
                    try:
                        event = await asyncio.wait_for(
                            events.get(), max(wait, 0.0) if math.isfinite(wait) else None
                        )
                    except TimeoutError:
                        continue
                    started = time.perf_counter()
                    touched: set[int] = set()
                    while True:
                        written = await self._apply(tracker, event)
                        if written is not None:
                            touched.add(written)
                        if events.empty():
                            break
                        event = events.get_nowait()
                    grown = [g for n in sorted(touched) if (g := self._grown(n)) is not None]
                    self.on_look(time.perf_counter() - started)
                    for growing in grown:
                        yield growing
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader

    async def _apply(self, tracker: CloseTracker, event: Mask | tuple[Mask, str]) -> int | None:
        """Apply one event; the number of a pair that was written to, if one was."""
        now = time.monotonic()
        if isinstance(event, Mask):  # the kernel's queue overflowed: events were lost
            _log.warning("The event queue overflowed; listing the folder again.")
            _, fresh = await self.listing()
            for number in fresh:
                tracker.assume(number, now)
            return None
        mask, name = event
        parsed = parse_name(name)
        if parsed is None:
            return None
        channel, number = parsed
        if number < self.first_file:
            return None
        if mask & (Mask.DELETE | Mask.MOVED_FROM):
            tracker.gone(number)
            self.grown.pop(number, None)
            return None
        if mask & (Mask.CLOSE_WRITE | Mask.MOVED_TO):
            tracker.closed(channel, number, now)
            return None
        tracker.written(channel, number, now)
        return number

    def _grown(self, number: int) -> GrowingPair | None:
        if self.growth_step is None:
            return None
        look = self.look(number)
        return None if look is None else self.growth(look)

    def _complete(self, tracker: CloseTracker, number: int) -> SourceItem | None:
        i_path, q_path = pair_paths(self.directory, number)
        look = self.look(number)
        if look is None:
            missing = [c for c, path in (("i", i_path), ("q", q_path)) if not path.exists()]
            if len(missing) == 2:
                tracker.gone(number)
            for channel in missing:  # not created yet: its events will come
                tracker.waiting_for(channel, number)
            return None
        if look.i_size == 0 or look.q_size == 0:
            tracker.done(number)  # created and closed empty: writes will announce themselves
            return None
        if look.problem() is not None and not tracker.settled(number, time.monotonic()):
            return None  # the writer may not be done with it: give it the settle time
        tracker.done(number)
        return self.take(look)


async def _read_events(inotify: Inotify, events: asyncio.Queue[Mask | tuple[Mask, str]]) -> None:
    async for event in inotify:
        if Mask.Q_OVERFLOW in event.mask:
            events.put_nowait(event.mask)
        elif event.name is not None and Mask.ISDIR not in event.mask:
            events.put_nowait((event.mask, event.name.name))


class _PollWatch(_Watch):
    async def items(self) -> AsyncGenerator[SourceItem, None]:
        settler = Settler(settle_polls=self.settle_polls)
        frontier = Frontier()
        present, fresh = await self.listing()
        candidates = set(fresh)
        last_listing = time.monotonic()
        if present:  # where the DAQ's numbering is, delivered pairs included
            frontier.took(min(present))
            frontier.took(max(present))
        while True:
            started = time.perf_counter()
            if frontier.newest is None:  # no pair seen yet: list the (small) folder until one is
                _, fresh = await self.listing()
                candidates.update(fresh)
            numbers = sorted({*candidates, *settler.following, *frontier.numbers()})
            candidates.clear()
            items: list[SourceItem] = []
            for number in numbers:
                look = self.look(number)
                if look is None:
                    settler.forget([number])
                    continue
                if number not in self.taken and self.skip(number):
                    # Delivered before this watch began: as it is now, it was delivered.
                    self.taken.add(look)
                    continue
                if self.taken.unchanged(look):
                    continue
                if not settler.observe(look):
                    growing = self.growth(look)
                    if growing is not None:
                        items.append(growing)
                    continue
                frontier.took(number, max(look.i_mtime_ns, look.q_mtime_ns))
                item = self.take(look)
                if item is not None:
                    items.append(item)
            self.on_look(time.perf_counter() - started)
            for item in items:
                yield item
            if time.monotonic() - last_listing >= self.rescan_seconds:
                _, fresh = await self.listing()
                candidates.update(fresh)
                last_listing = time.monotonic()
            await asyncio.sleep(self.poll_seconds)
