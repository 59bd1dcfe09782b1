"""Sets of numbers kept as ranges: the files of a run of weeks (~430 000), the slices of a file."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Self

__all__ = ["Ranges"]


@dataclass(slots=True)
class Ranges:
    """A set of non-negative integers stored as sorted, disjoint half-open ranges [start, stop)."""

    starts: list[int] = field(default_factory=list)
    stops: list[int] = field(default_factory=list)

    @classmethod
    def of_ranges(cls, ranges: Iterable[tuple[int, int]]) -> Self:
        """The set of the given (start, stop) ranges, which may overlap or touch."""
        numbers = cls()
        for start, stop in sorted(ranges):
            if not 0 <= start < stop:
                raise ValueError(f"range [{start}, {stop}) is empty or negative")
            if numbers.stops and start <= numbers.stops[-1]:
                numbers.stops[-1] = max(numbers.stops[-1], stop)
            else:
                numbers.starts.append(start)
                numbers.stops.append(stop)
        return numbers

    def __contains__(self, number: int) -> bool:
        index = bisect.bisect_right(self.starts, number) - 1
        return index >= 0 and number < self.stops[index]

    def __len__(self) -> int:
        return sum(stop - start for start, stop in zip(self.starts, self.stops, strict=True))

    def add(self, number: int) -> None:
        """Add one number (a no-op if present)."""
        self.add_range(number, number + 1)

    def add_range(self, start: int, stop: int) -> None:
        """Add every number of [start, stop), joining the ranges it touches or overlaps."""
        if not 0 <= start < stop:
            raise ValueError(f"range [{start}, {stop}) is empty or negative")
        # Ranges from ``first`` to ``last`` (exclusive) touch or overlap the new one.
        first = bisect.bisect_left(self.stops, start)
        last = bisect.bisect_right(self.starts, stop)
        if first < last:
            start = min(start, self.starts[first])
            stop = max(stop, self.stops[last - 1])
        self.starts[first:last] = [start]
        self.stops[first:last] = [stop]

    def discard(self, number: int) -> None:
        """Remove one number (a no-op if absent), splitting its range."""
        if number not in self:
            return
        index = bisect.bisect_right(self.starts, number) - 1
        start, stop = self.starts[index], self.stops[index]
        pieces = [(a, b) for a, b in ((start, number), (number + 1, stop)) if a < b]
        self.starts[index : index + 1] = [a for a, _ in pieces]
        self.stops[index : index + 1] = [b for _, b in pieces]

    def overlaps(self, start: int, stop: int) -> bool:
        """Whether any number of [start, stop) is in the set."""
        index = bisect.bisect_right(self.stops, start)
        return index < len(self.starts) and self.starts[index] < stop

    def covers(self, start: int, stop: int) -> bool:
        """Whether every number of [start, stop) is in the set."""
        index = bisect.bisect_right(self.starts, start) - 1
        return index >= 0 and stop <= self.stops[index]

    @property
    def ranges(self) -> list[tuple[int, int]]:
        """The ranges as (start, stop) pairs."""
        return list(zip(self.starts, self.stops, strict=True))

    @property
    def last(self) -> int | None:
        """The highest number in the set, if any."""
        return self.stops[-1] - 1 if self.stops else None
