"""Strict JSON for the pipeline's documents: what Python's json module lets through, refused.

``json.loads`` accepts bytes in UTF-16 or UTF-32, the non-standard constants NaN and
Infinity, numbers that overflow to infinity (``1e999``) and integers of thousands of
digits (which then fail later, far from the input, with an error no caller expects).
:func:`loads` accepts only UTF-8 RFC 8259 JSON with finite numbers and integers of at
most 20 digits, and raises :class:`~quaxspec.messages.MessageDecodeError` for anything else.
"""

from __future__ import annotations

import json
import math
from typing import Any

from quaxspec.messages import MessageDecodeError

__all__ = ["loads"]

#: Longest integer literal accepted (2⁶⁴ has 20 digits).
MAX_INT_DIGITS = 20


def loads(data: bytes | bytearray | memoryview, *, what: str) -> Any:
    """Parse ``data``; ``what`` names the document in the error message."""
    try:
        text = bytes(data).decode("utf-8")
        return json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_short_int,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise MessageDecodeError(f"{what}: not strict UTF-8 JSON: {error}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} overflows a double")
    return value


def _short_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits")
    return int(text)
