"""The largest message each stage can produce for a configuration, against Kafka's limit.

A configuration whose messages cannot fit is refused when the producer starts (one clear
error), not discovered record by record downstream. The bounds are upper bounds of the
encoded sizes (tested against worst-case values): binary messages are exact; JSON numbers
are at most 24 characters (``-2.2250738585072014e-308``) plus a separator.
"""

from __future__ import annotations

from dataclasses import dataclass

from quaxspec.messages import Partial, RawChunk

__all__ = [
    "MAX_LISTED_CANDIDATES",
    "MessageSizes",
    "MessageTooLargeError",
    "check_fits",
    "ensure_fits",
    "largest_n_fft",
]

#: Candidates a run-spectrum message lists at most (the strongest; the count says how many).
MAX_LISTED_CANDIDATES = 1000

#: A run id padded to 8 bytes (at most 255 bytes).
_RUN_ID = 256
#: Bytes of one JSON number (or null) with its separator, at most.
_JSON_NUMBER = 25
#: Bytes of one listed candidate, at most (four numbers and their names).
_JSON_CANDIDATE = 4 * _JSON_NUMBER + 64
#: Everything in a spectrum document that is not an array (names, scalars, run id, units).
_JSON_FIXED = 4096


class MessageTooLargeError(ValueError):
    """A message that is larger than the Kafka message limit."""


@dataclass(frozen=True, slots=True)
class MessageSizes:
    """Upper bounds of the encoded sizes, in bytes, for one configuration."""

    raw_chunk: int
    partial: int
    file_spectrum: int
    run_spectrum: int

    @classmethod
    def of(cls, *, n_fft: int, slices_per_chunk: int) -> MessageSizes:
        """The bounds for FFTs of ``n_fft`` and chunks of ``slices_per_chunk`` slices."""
        return cls(
            raw_chunk=RawChunk.HEADER_BYTES + _RUN_ID + 2 * 4 * n_fft * slices_per_chunk,
            partial=Partial.HEADER_BYTES + _RUN_ID + 2 * 8 * n_fft,
            # frequency, mean, std, spectral kurtosis
            file_spectrum=_JSON_FIXED + 4 * _JSON_NUMBER * n_fft,
            # frequency, mean, sem, baseline, excess, matched filter; listed candidates
            run_spectrum=_JSON_FIXED
            + 6 * _JSON_NUMBER * n_fft
            + MAX_LISTED_CANDIDATES * _JSON_CANDIDATE,
        )


def check_fits(*, n_fft: int, slices_per_chunk: int, limit: int) -> None:
    """Raise :class:`MessageTooLargeError` naming every message that may not fit ``limit``."""
    sizes = MessageSizes.of(n_fft=n_fft, slices_per_chunk=slices_per_chunk)
    too_large = [
        f"{name} of up to {size} bytes"
        for name, size in (
            ("raw chunks", sizes.raw_chunk),
            ("partials", sizes.partial),
            ("file spectra", sizes.file_spectrum),
            ("run spectra", sizes.run_spectrum),
        )
        if size > limit
    ]
    if too_large:
        advice = f"the largest n_fft whose partials and spectra fit is {largest_n_fft(limit)}"
        if sizes.raw_chunk > limit:
            fitting = (limit - RawChunk.HEADER_BYTES - _RUN_ID) // (8 * n_fft)
            advice += f"; chunks of n_fft {n_fft} fit up to {fitting} slices"
        raise MessageTooLargeError(
            f"n_fft {n_fft} with {slices_per_chunk} slices per chunk gives "
            f"{', '.join(too_large)}, more than the Kafka message limit of {limit} bytes "
            f"({advice})"
        )


def largest_n_fft(limit: int) -> int:
    """The largest n_fft whose partials and spectra fit ``limit`` (chunks of one slice)."""
    spectra = (limit - _JSON_FIXED - MAX_LISTED_CANDIDATES * _JSON_CANDIDATE) // (6 * _JSON_NUMBER)
    partial = (limit - Partial.HEADER_BYTES - _RUN_ID) // 16
    return max(0, min(spectra, partial))


def ensure_fits(data: bytes, *, limit: int, what: str) -> bytes:
    """Return ``data``, or raise :class:`MessageTooLargeError` if it exceeds ``limit``."""
    if len(data) > limit:
        raise MessageTooLargeError(
            f"{what} of {len(data)} bytes exceeds the Kafka message limit of {limit} bytes"
        )
    return data
