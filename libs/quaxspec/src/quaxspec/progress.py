"""What a producer has delivered of a run (topic quax.progress): the record it resumes from.

One JSON document per run, keyed by run id on a compacted topic, rewritten after every
file whose chunks Kafka has all acknowledged; a run fed by several producers, each taking
a shard of the file numbers, has one document per shard. It holds the run's
configuration (fixed by its first file), the acknowledged file numbers as ranges, and the
fingerprints of the run's lowest and highest files, by which a restarted producer tells
the same acquisition from a new one. docs/messages.md describes every field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any, Self

from quaxspec import strictjson
from quaxspec.messages import MessageDecodeError
from quaxspec.ranges import Ranges

__all__ = ["PROGRESS_SCHEMA", "FileMark", "RunConfig", "RunProgress", "Shard"]

PROGRESS_SCHEMA = "quax.run-progress/1"
_MAX_FILE = 2**32 - 1
_MAX_RANGES = 100_000
_MAX_SHARDS = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class RunConfig:
    """The settings every file of a run is cut and analysed with."""

    n_fft: int
    fs: float
    f_lo: float
    slices_per_chunk: int
    #: Samples per file when the source is synthetic (a setting); None for files on disk,
    #: whose length is theirs to say.
    samples_per_file: int | None = None

    def differences(self, other: RunConfig) -> list[str]:
        """What differs from ``other``, as "name: mine ≠ theirs" phrases (empty if nothing)."""
        return [
            f"{name} {mine} ≠ {theirs}"
            for name in ("n_fft", "fs", "f_lo", "slices_per_chunk", "samples_per_file")
            if (mine := getattr(self, name)) != (theirs := getattr(other, name))
        ]

    def describe(self) -> str:
        """One line for logs and errors."""
        text = (
            f"n_fft {self.n_fft}, fs {self.fs:g} Hz, f_LO {self.f_lo:g} Hz, "
            f"{self.slices_per_chunk} slices per chunk"
        )
        if self.samples_per_file is not None:
            text += f", {self.samples_per_file} samples per file"
        return text


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based): the file numbers n with n mod count = index − 1.

    Several producers feed one run by taking one shard each; together they take every file.
    """

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count <= _MAX_SHARDS:
            raise ValueError(
                f"shard {self.index}/{self.count}: it must be K/N with 1 ≤ K ≤ N ≤ {_MAX_SHARDS}"
            )

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"K/N"``, e.g. ``"2/3"``; ValueError with the reason otherwise."""
        index, slash, count = text.strip().partition("/")
        if not slash or not index.isdigit() or not count.isdigit():
            raise ValueError(f"shard {text!r} is not of the form K/N (e.g. 1/2)")
        return cls(int(index), int(count))

    def takes(self, number: int) -> bool:
        """Whether file ``number`` belongs to this shard."""
        return number % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True, slots=True, kw_only=True)
class FileMark:
    """One delivered file: its number, content fingerprint, DAQ time and length."""

    number: int
    fingerprint: str
    daq_time: float
    #: Samples per channel (what the next files of the run are expected to have).
    samples: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RunProgress:
    """A run as its producer delivered it so far."""

    run_id: str
    #: Where the run's files come from, e.g. "watch:/daq/out", "synthetic:seed=3".
    source: str
    config: RunConfig
    started_time: float
    updated_time: float
    #: File numbers whose every chunk Kafka acknowledged.
    files: Ranges = field(default_factory=Ranges)
    #: The lowest and the highest file number delivered.
    first: FileMark | None = None
    last: FileMark | None = None
    #: The source ended (a replay that reached its last file); more files reopen the run.
    finished: bool = False
    #: The file numbers this producer takes, when several feed the run; None: all of them.
    shard: Shard | None = None

    @property
    def key(self) -> bytes:
        """The record's key on quax.progress: the run id, and the shard if there is one."""
        if self.shard is None:
            return self.run_id.encode()
        return f"{self.run_id}\x00shard {self.shard}".encode()

    def delivered(self, mark: FileMark, *, now: float) -> RunProgress:
        """The progress once ``mark``'s file is delivered."""
        files = Ranges(list(self.files.starts), list(self.files.stops))
        files.add(mark.number)
        first = mark if self.first is None or mark.number <= self.first.number else self.first
        last = mark if self.last is None or mark.number >= self.last.number else self.last
        return replace(self, files=files, first=first, last=last, updated_time=now, finished=False)

    def ended(self, *, now: float) -> RunProgress:
        """The progress once the source has ended."""
        return replace(self, finished=True, updated_time=now)

    def to_bytes(self) -> bytes:
        """Encode as UTF-8 JSON."""
        config = self.config
        document = {
            "schema": PROGRESS_SCHEMA,
            "run_id": self.run_id,
            "source": self.source,
            "config": {
                "n_fft": config.n_fft,
                "fs_hz": config.fs,
                "f_lo_hz": config.f_lo,
                "slices_per_chunk": config.slices_per_chunk,
                "samples_per_file": config.samples_per_file,
            },
            "started_time": self.started_time,
            "updated_time": self.updated_time,
            "finished": self.finished,
            "shard": None if self.shard is None else str(self.shard),
            "file_count": len(self.files),
            "files": [list(pair) for pair in self.files.ranges],
            "first": _mark_json(self.first),
            "last": _mark_json(self.last),
        }
        return json.dumps(document, allow_nan=False, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes | None) -> Self:
        """Decode and validate; anything malformed is a :class:`MessageDecodeError`."""
        if not isinstance(data, bytes | bytearray):
            raise MessageDecodeError(f"run progress: expected bytes, got {type(data).__name__}")
        doc = strictjson.loads(data, what="run progress")
        try:
            return cls._of_document(doc)
        except (KeyError, TypeError, ValueError) as error:
            raise MessageDecodeError(f"run progress: bad or missing field: {error}") from None

    @classmethod
    def _of_document(cls, doc: Any) -> Self:
        if not isinstance(doc, dict) or doc.get("schema") != PROGRESS_SCHEMA:
            found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
            raise ValueError(f"expected schema {PROGRESS_SCHEMA!r}, got {found!r}")
        config = doc["config"]
        samples = config["samples_per_file"]
        ranges = doc["files"]
        if not isinstance(ranges, list) or len(ranges) > _MAX_RANGES:
            raise ValueError("files must be a list of at most 100000 [start, stop] ranges")
        files = Ranges.of_ranges(
            (_int(pair[0], 0, _MAX_FILE), _int(pair[1], 1, _MAX_FILE + 1))
            for pair in ranges
            if isinstance(pair, list) and len(pair) == 2
        )
        if len(files.starts) != len(ranges) or files.ranges != [tuple(p) for p in ranges]:
            raise ValueError("files must be sorted, disjoint [start, stop] ranges")
        return cls(
            run_id=_text(doc["run_id"], 255),
            source=_text(doc["source"], 4096),
            config=RunConfig(
                n_fft=_int(config["n_fft"], 2, 2**20),
                fs=_positive(config["fs_hz"]),
                f_lo=_finite(config["f_lo_hz"]),
                slices_per_chunk=_int(config["slices_per_chunk"], 1, 2**20),
                samples_per_file=None if samples is None else _int(samples, 1, 2**40),
            ),
            started_time=_finite(doc["started_time"]),
            updated_time=_finite(doc["updated_time"]),
            finished=_bool(doc["finished"]),
            shard=None if doc.get("shard") is None else Shard.parse(_text(doc["shard"], 16)),
            files=files,
            first=_mark(doc["first"]),
            last=_mark(doc["last"]),
        )


def _mark_json(mark: FileMark | None) -> dict[str, Any] | None:
    if mark is None:
        return None
    return {
        "number": mark.number,
        "fingerprint": mark.fingerprint,
        "daq_time": mark.daq_time,
        "samples": mark.samples,
    }


def _mark(value: Any) -> FileMark | None:
    if value is None:
        return None
    fingerprint = _text(value["fingerprint"], 128)
    if not all(c in "0123456789abcdef" for c in fingerprint):
        raise ValueError(f"fingerprint {fingerprint!r} is not lower-case hex")
    return FileMark(
        number=_int(value["number"], 0, _MAX_FILE),
        fingerprint=fingerprint,
        daq_time=_finite(value["daq_time"]),
        samples=_int(value["samples"], 1, 2**40),
    )


def _int(value: Any, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"{value!r} is not an integer in {low} … {high}")
    return value


def _finite(value: Any) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    return float(value)


def _positive(value: Any) -> float:
    number = _finite(value)
    if number <= 0:
        raise ValueError(f"{value!r} is not positive")
    return number


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise ValueError(f"{value!r} is not true or false")
    return value


def _text(value: Any, limit: int) -> str:
    if not isinstance(value, str) or not 1 <= len(value.encode()) <= limit:
        raise ValueError(f"{value!r} is not a string of 1–{limit} bytes")
    return value
