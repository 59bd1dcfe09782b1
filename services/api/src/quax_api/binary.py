"""The compact binary form of spectra: a small JSON header, then float32 arrays.

Layout (little-endian): magic ``QXAB``, u8 version (1), 3 reserved bytes, u32 header
length H, H bytes of UTF-8 JSON, then ``len(header["arrays"])`` arrays of
``header["n_fft"]`` float32 each, in the order the header lists them. The frequency axis
is not an array (float32 cannot hold 9.5 GHz to the hertz): it is
``f_lo_hz + (k − n_fft//2) · fs_hz / n_fft`` for bin k, from the header. NaN stands for
a missing value.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["MEDIA_TYPE", "decode", "encode"]

MEDIA_TYPE = "application/vnd.quax.spectrum"
_MAGIC = b"QXAB"
_PREFIX = struct.Struct("<4sB3xI")


def encode(header: dict[str, Any], arrays: dict[str, NDArray[np.float64]]) -> bytes:
    """Header fields plus named arrays (all of the header's ``n_fft`` values)."""
    meta = json.dumps({**header, "arrays": list(arrays)}, allow_nan=False).encode()
    blocks = [np.asarray(values, dtype="<f4").tobytes() for values in arrays.values()]
    return b"".join([_PREFIX.pack(_MAGIC, 1, len(meta)), meta, *blocks])


def decode(data: bytes) -> tuple[dict[str, Any], dict[str, NDArray[np.float32]]]:
    """The inverse of :func:`encode` (for clients written in Python, and for tests)."""
    magic, version, length = _PREFIX.unpack_from(data)
    if magic != _MAGIC or version != 1:
        raise ValueError(f"not a quax binary spectrum (magic {magic!r}, version {version})")
    header = json.loads(data[_PREFIX.size : _PREFIX.size + length])
    n, offset = int(header["n_fft"]), _PREFIX.size + length
    arrays = {}
    for name in header["arrays"]:
        arrays[name] = np.frombuffer(data, "<f4", n, offset)
        offset += 4 * n
    if offset != len(data):
        raise ValueError(f"{len(data) - offset} bytes left after the arrays")
    return header, arrays
