"""What a source yields: a record to send, a bad pair to log and skip, or a pair being written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from quaxspec.daq import DaqFileError, DaqRecord, FilePair, read_pair

__all__ = ["BadPair", "BadPairReason", "GrowingPair", "SourceItem", "read_item"]

#: Why a pair was skipped, as a metric label (few values, so the label stays cheap): a file
#: without its partner, files that cannot be read or do not match, or less than one slice.
BadPairReason = Literal["unpaired", "invalid", "no_slices"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BadPair:
    """A pair that cannot be sent; the error names the file and the reason."""

    error: DaqFileError
    reason: BadPairReason
    #: The pair's file number, when the pair is known (not for a lone file).
    number: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GrowingPair:
    """A pair the DAQ is writing, and how many samples of both files are on disk now."""

    pair: FilePair
    samples: int

    @property
    def number(self) -> int:
        """The pair's file number."""
        return self.pair.number


SourceItem = DaqRecord | BadPair | GrowingPair


def read_item(pair: FilePair) -> SourceItem:
    """Memory-map a pair, or say why it cannot be used."""
    try:
        return read_pair(pair)
    except DaqFileError as error:
        return BadPair(error=error, reason="invalid", number=pair.number)
    except OSError as error:  # vanished or locked between the checks and the mapping
        return BadPair(
            error=DaqFileError(pair.i_path, str(error)), reason="invalid", number=pair.number
        )
