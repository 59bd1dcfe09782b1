"""What a source yields: a DAQ record to send, or a bad pair to log, count and skip."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from quaxspec.daq import DaqFileError, DaqRecord, FilePair, read_pair

__all__ = ["BadPair", "BadPairReason", "SourceItem", "read_item"]

#: Why a pair was skipped, as a metric label (few values, so the label stays cheap): a file
#: without its partner, files that cannot be read or do not match, or less than one slice.
BadPairReason = Literal["unpaired", "invalid", "no_slices"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BadPair:
    """A pair that cannot be sent; the error names the file and the reason."""

    error: DaqFileError
    reason: BadPairReason


SourceItem = DaqRecord | BadPair


def read_item(pair: FilePair) -> SourceItem:
    """Memory-map a pair, or say why it cannot be used."""
    try:
        return read_pair(pair)
    except DaqFileError as error:
        return BadPair(error=error, reason="invalid")
    except OSError as error:  # vanished or locked between the checks and the mapping
        return BadPair(error=DaqFileError(pair.i_path, str(error)), reason="invalid")
