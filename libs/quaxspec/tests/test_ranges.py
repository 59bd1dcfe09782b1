"""Number sets kept as ranges: they behave like a set of ints, with the fewest ranges."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quaxspec.ranges import Ranges

file_numbers = st.one_of(st.integers(0, 40), st.integers(2**32 - 20, 2**32 - 1))


@settings(max_examples=200, deadline=None)
@given(st.lists(file_numbers, max_size=80))
def test_file_ranges_behave_like_a_set(numbers: list[int]) -> None:
    ranges, reference = Ranges(), set[int]()
    probes = sorted(set(range(-2, 43)) | set(range(2**32 - 22, 2**32 + 1)))
    for number in numbers:
        ranges.add(number)
        reference.add(number)
        assert len(ranges) == len(reference)
        assert number in ranges
    assert [p for p in probes if p in ranges] == [p for p in probes if p in reference]
    pairs = ranges.ranges
    assert len(ranges.starts) == len(ranges.stops) == len(pairs)
    assert all(start < stop for start, stop in pairs)
    # Sorted, disjoint and not adjacent (adjacent ranges must have been joined).
    assert all(a_stop < b_start for (_, a_stop), (b_start, _) in itertools.pairwise(pairs))
    assert {n for start, stop in pairs for n in range(start, stop)} == reference
    # The fewest ranges: one per maximal run of consecutive numbers.
    assert len(pairs) == sum(1 for n in reference if n - 1 not in reference)


@pytest.mark.parametrize(
    ("numbers", "expected"),
    [
        ([], []),
        ([5], [(5, 6)]),
        ([1, 3, 2], [(1, 4)]),
        ([3, 1, 5, 4, 2, 2, 3], [(1, 6)]),
        ([10, 0, 20, 11, 19], [(0, 1), (10, 12), (19, 21)]),
        ([7, 9, 8, 8], [(7, 10)]),
    ],
)
def test_file_ranges_examples(numbers: list[int], expected: list[tuple[int, int]]) -> None:
    ranges = Ranges()
    for number in numbers:
        ranges.add(number)
    assert ranges.ranges == expected
    assert len(ranges) == len(set(numbers))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(1, 8)), max_size=12))
def test_ranges_given_as_pairs_are_their_union(pairs: list[tuple[int, int]]) -> None:
    ranges = Ranges.of_ranges((start, start + length) for start, length in pairs)
    reference = {n for start, length in pairs for n in range(start, start + length)}
    assert {n for start, stop in ranges.ranges for n in range(start, stop)} == reference
    added = Ranges()
    for number in sorted(reference):
        added.add(number)
    assert ranges.ranges == added.ranges  # the same canonical form as adding one by one
    assert ranges.last == (max(reference) if reference else None)


@pytest.mark.parametrize("bad", [(3, 3), (5, 2), (-1, 4)])
def test_empty_or_negative_ranges_are_refused(bad: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="empty or negative"):
        Ranges.of_ranges([bad])


operations = st.lists(
    st.tuples(st.sampled_from(["add_range", "discard"]), st.integers(0, 50), st.integers(1, 9)),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(operations, st.lists(st.tuples(st.integers(0, 60), st.integers(1, 9)), max_size=10))
def test_ranges_added_and_discarded_behave_like_a_set(ops, queries) -> None:
    ranges, reference = Ranges(), set[int]()
    for op, start, length in ops:
        if op == "add_range":
            ranges.add_range(start, start + length)
            reference.update(range(start, start + length))
        else:
            ranges.discard(start)
            reference.discard(start)
        pairs = ranges.ranges
        assert {n for a, b in pairs for n in range(a, b)} == reference
        assert all(a_stop < b_start for (_, a_stop), (b_start, _) in itertools.pairwise(pairs))
        assert len(pairs) == sum(1 for n in reference if n - 1 not in reference)
    for start, length in queries:
        span = set(range(start, start + length))
        assert ranges.overlaps(start, start + length) == bool(span & reference)
        assert ranges.covers(start, start + length) == (span <= reference)
