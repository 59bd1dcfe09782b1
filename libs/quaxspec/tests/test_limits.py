"""The message-size bounds are upper bounds of real encodings, and refuse what cannot fit."""

from __future__ import annotations

import numpy as np
import pytest

from quaxspec.aggregation import _strongest
from quaxspec.findings import AnalysisConfig, Candidate
from quaxspec.limits import (
    MAX_LISTED_CANDIDATES,
    MessageSizes,
    MessageTooLargeError,
    check_fits,
    ensure_fits,
    largest_n_fft,
)
from quaxspec.messages import Partial, RawChunk
from quaxspec.moments import Moments
from quaxspec.spectra import FileSpectrum, RunSpectrum
from quaxspec.topics import MAX_MESSAGE_BYTES

#: The longest shortest-repr of a float64.
LONGEST = -2.2250738585072014e-308
RUN_ID = "r" * 255


@pytest.mark.parametrize(("n_fft", "slices"), [(2, 1), (64, 3), (3072, 32)])
def test_bounds_hold_for_the_longest_encodings(n_fft: int, slices: int) -> None:
    bounds = MessageSizes.of(n_fft=n_fft, slices_per_chunk=slices)
    values = np.full(n_fft, LONGEST)
    origin = dict(
        run_id=RUN_ID, file_number=2**32 - 1, total_slices=2**32 - 1, n_fft=n_fft,
        fs=1 / 3, f_lo=-1e-300, daq_time=LONGEST,
    )  # fmt: skip
    samples = np.zeros((slices, n_fft), np.float32)
    raw = RawChunk(first_slice=0, i=samples, q=samples, **origin).to_bytes()
    partial = Partial(chunk_id=0, moments=Moments(np.int64(3), -values, -values), **origin)
    common = dict(
        run_id=RUN_ID, n_fft=n_fft, fs=1 / 3, f_lo=-1e-300, emitted_time=LONGEST,
        daq_time=LONGEST,
    )  # fmt: skip
    file = FileSpectrum(
        file_number=2**32 - 1, count=2**62, expected_count=2**62, duplicates=2**62,
        revision=2**31, late_chunks=2**31, mean=values, std=values,
        spectral_kurtosis=values, **common,
    )  # fmt: skip
    candidates = [
        Candidate(bin=2**31, frequency_hz=LONGEST, significance=LONGEST, excess_sigma=LONGEST)
    ] * MAX_LISTED_CANDIDATES
    run = RunSpectrum(
        files=2**62, incomplete_files=2**62, duplicates=2**62, late_chunks=2**62,
        dropped_late_chunks=2**62, awaiting_files=2**62, forgotten_files=2**62,
        slices=2**62, first_daq_time=LONGEST, last_daq_time=LONGEST, last_file=2**62,
        mean=values, sem=values, baseline=values, excess_sigma=values, matched_sigma=values,
        radiometer_ratio=LONGEST, config=AnalysisConfig(line_fwhm_hz=-LONGEST),
        candidates=candidates, candidate_count=2**62,
        **{k: v for k, v in common.items() if k != "daq_time"},
    )  # fmt: skip

    assert len(raw) <= bounds.raw_chunk
    assert len(partial.to_bytes()) <= bounds.partial
    assert len(file.to_bytes()) <= bounds.file_spectrum
    assert len(run.to_bytes()) <= bounds.run_spectrum


def test_the_largest_n_fft_fits_and_the_next_does_not() -> None:
    largest = largest_n_fft(MAX_MESSAGE_BYTES)
    check_fits(n_fft=largest, slices_per_chunk=1, limit=MAX_MESSAGE_BYTES)
    with pytest.raises(MessageTooLargeError, match=f"n_fft {largest + 1} with 1 slices"):
        check_fits(n_fft=largest + 1, slices_per_chunk=1, limit=MAX_MESSAGE_BYTES)


def test_the_default_configuration_fits() -> None:
    check_fits(n_fft=3072, slices_per_chunk=32, limit=MAX_MESSAGE_BYTES)


def test_a_message_over_the_limit_is_an_error_that_names_it() -> None:
    assert ensure_fits(b"x" * 10, limit=10, what="a run spectrum") == b"x" * 10
    with pytest.raises(MessageTooLargeError, match=r"a run spectrum of 11 bytes exceeds .* 10"):
        ensure_fits(b"x" * 11, limit=10, what="a run spectrum")


def test_only_the_strongest_candidates_are_listed_in_bin_order() -> None:
    rng = np.random.default_rng(1)
    many = [
        Candidate(bin=k, frequency_hz=float(k), significance=float(s), excess_sigma=1.0)
        for k, s in enumerate(rng.permutation(2500) + 4.0)
    ]
    listed = _strongest(many)
    assert len(listed) == MAX_LISTED_CANDIDATES
    assert [c.bin for c in listed] == sorted(c.bin for c in listed)
    assert min(c.significance for c in listed) == 4.0 + 2500 - MAX_LISTED_CANDIDATES
