"""Sets of file numbers kept as ranges, so that a run of weeks (~430 000 files) stays small."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Self

__all__ = ["FileRanges"]


@dataclass(slots=True)
class FileRanges:
    """A set of file numbers stored as sorted, disjoint half-open ranges [start, stop)."""

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
        """Add one file number (a no-op if present), joining neighbouring ranges."""
        if number in self:
            return
        index = bisect.bisect_right(self.starts, number)
        joins_left = index > 0 and self.stops[index - 1] == number
        joins_right = index < len(self.starts) and self.starts[index] == number + 1
        if joins_left and joins_right:
            self.stops[index - 1] = self.stops.pop(index)
            self.starts.pop(index)
        elif joins_left:
            self.stops[index - 1] = number + 1
        elif joins_right:
            self.starts[index] = number
        else:
            self.starts.insert(index, number)
            self.stops.insert(index, number + 1)

    @property
    def ranges(self) -> list[tuple[int, int]]:
        """The ranges as (start, stop) pairs."""
        return list(zip(self.starts, self.stops, strict=True))

    @property
    def last(self) -> int | None:
        """The highest number in the set, if any."""
        return self.stops[-1] - 1 if self.stops else None
