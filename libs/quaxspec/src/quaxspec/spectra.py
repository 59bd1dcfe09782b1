"""Output messages: per-file spectra (quax.spectra) and per-run spectra with analysis (quax.runs).

They are JSON documents, so that any client reads them without this library; arrays
are lists of numbers (float64 printed to round-trip exactly) and a missing value (an
undefined std of a single slice, a matched-filter bin where no whole line fits) is
null. docs/messages.md describes every field; the ``schema`` field names the type and
version.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import orjson
from numpy.typing import NDArray

from quaxspec import strictjson
from quaxspec.findings import AnalysisConfig, Candidate
from quaxspec.messages import MessageDecodeError
from quaxspec.psd import frequency_axis

__all__ = ["FILE_SCHEMA", "RUN_SCHEMA", "FileSpectrum", "RunSpectrum"]

FILE_SCHEMA = "quax.file-spectrum/1"
RUN_SCHEMA = "quax.run-spectrum/1"
UNITS = "V^2/Hz"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class _Axis:
    n_fft: int
    fs: float
    f_lo: float

    @property
    def frequency_hz(self) -> NDArray[np.float64]:
        """Absolute frequency of every bin (Hz)."""
        return frequency_axis(self.n_fft, self.fs, self.f_lo)

    def _axis_json(self) -> dict[str, Any]:
        return {
            "n_fft": self.n_fft,
            "fs_hz": self.fs,
            "f_lo_hz": self.f_lo,
            "bin_width_hz": self.fs / self.n_fft,
            "frequency_hz": _array(self.frequency_hz),
        }


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class FileSpectrum(_Axis):
    """The averaged spectrum of one DAQ file."""

    run_id: str
    file_number: int
    #: Slices averaged, and the slices the file has (equal unless it was closed incomplete).
    count: int
    expected_count: int
    #: Redelivered chunks that were recognised and not counted again.
    duplicates: int
    #: 0 for the first emission; each late chunk merged afterwards emits the next revision.
    revision: int
    #: Chunks merged after the file was first emitted.
    late_chunks: int
    daq_time: float
    emitted_time: float
    mean: NDArray[np.float64]
    std: NDArray[np.float64]
    spectral_kurtosis: NDArray[np.float64]

    @property
    def complete(self) -> bool:
        """Whether every slice of the file is in the spectrum."""
        return self.count == self.expected_count

    def to_bytes(self) -> bytes:
        """Encode as UTF-8 JSON."""
        document = {
            "schema": FILE_SCHEMA,
            "run_id": self.run_id,
            "file_number": self.file_number,
            "complete": self.complete,
            "count": self.count,
            "expected_count": self.expected_count,
            "duplicates": self.duplicates,
            "revision": self.revision,
            "late_chunks": self.late_chunks,
            "daq_time": self.daq_time,
            "emitted_time": self.emitted_time,
            "units": UNITS,
            "axis": self._axis_json(),
            "mean": _array(self.mean),
            "std": _array(self.std),
            "spectral_kurtosis": _array(self.spectral_kurtosis),
        }
        return _dumps(document)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode and validate."""
        doc = _load(data, FILE_SCHEMA)
        try:
            axis = doc["axis"]
            n_fft = int(axis["n_fft"])
            return cls(
                run_id=str(doc["run_id"]), file_number=int(doc["file_number"]),
                n_fft=n_fft, fs=float(axis["fs_hz"]), f_lo=float(axis["f_lo_hz"]),
                count=int(doc["count"]), expected_count=int(doc["expected_count"]),
                duplicates=int(doc["duplicates"]), revision=int(doc.get("revision", 0)),
                late_chunks=int(doc.get("late_chunks", 0)), daq_time=float(doc["daq_time"]),
                emitted_time=float(doc["emitted_time"]), mean=_from_list(doc["mean"], n_fft),
                std=_from_list(doc["std"], n_fft),
                spectral_kurtosis=_from_list(doc["spectral_kurtosis"], n_fft),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError, OverflowError) as error:
            raise MessageDecodeError(f"file spectrum: bad or missing field: {error}") from None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class RunSpectrum(_Axis):
    """The cumulative spectrum of a run and its live analysis."""

    run_id: str
    files: int
    incomplete_files: int
    duplicates: int
    #: Chunks merged into files after they were closed.
    late_chunks: int
    #: Chunks that came for closed files no longer kept: slices lost.
    dropped_late_chunks: int
    #: Files closed unfinished that still take late chunks, and those forgotten.
    awaiting_files: int
    forgotten_files: int
    slices: int
    first_daq_time: float
    last_daq_time: float
    last_file: int
    emitted_time: float
    mean: NDArray[np.float64]
    sem: NDArray[np.float64]
    baseline: NDArray[np.float64]
    excess_sigma: NDArray[np.float64]
    matched_sigma: NDArray[np.float64]
    radiometer_ratio: float
    config: AnalysisConfig = field(default_factory=AnalysisConfig)
    #: The strongest candidates (at most MAX_LISTED_CANDIDATES), in bin order.
    candidates: list[Candidate] = field(default_factory=list)
    #: Candidates found, listed or not (-1: as many as listed).
    candidate_count: int = -1

    def __post_init__(self) -> None:
        if self.candidate_count < 0:
            object.__setattr__(self, "candidate_count", len(self.candidates))

    def to_bytes(self) -> bytes:
        """Encode as UTF-8 JSON."""
        config = self.config
        document = {
            "schema": RUN_SCHEMA,
            "run_id": self.run_id,
            "files": self.files,
            "incomplete_files": self.incomplete_files,
            "duplicates": self.duplicates,
            "late_chunks": self.late_chunks,
            "dropped_late_chunks": self.dropped_late_chunks,
            "awaiting_files": self.awaiting_files,
            "forgotten_files": self.forgotten_files,
            "slices": self.slices,
            "first_daq_time": self.first_daq_time,
            "last_daq_time": self.last_daq_time,
            "last_file": self.last_file,
            "emitted_time": self.emitted_time,
            "units": UNITS,
            "axis": self._axis_json(),
            "mean": _array(self.mean),
            "sem": _array(self.sem),
            "analysis": {
                "baseline": _array(self.baseline),
                "excess_sigma": _array(self.excess_sigma),
                "matched_sigma": _array(self.matched_sigma),
                "radiometer_ratio": _number(self.radiometer_ratio),
                "threshold_sigma": config.threshold_sigma,
                "baseline_window": config.baseline_window,
                "baseline_order": config.baseline_order,
                "line_fwhm_hz": config.line_fwhm_hz,
                "candidate_count": self.candidate_count,
                "candidates": [
                    {
                        "bin": c.bin,
                        "frequency_hz": c.frequency_hz,
                        "significance": c.significance,
                        "excess_sigma": c.excess_sigma,
                    }
                    for c in self.candidates
                ],
            },
        }
        return _dumps(document)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode and validate."""
        doc = _load(data, RUN_SCHEMA)
        try:
            axis, analysis = doc["axis"], doc["analysis"]
            n_fft = int(axis["n_fft"])
            config = AnalysisConfig(
                baseline_window=int(analysis["baseline_window"]),
                baseline_order=int(analysis["baseline_order"]),
                threshold_sigma=float(analysis["threshold_sigma"]),
                line_fwhm_hz=float(analysis["line_fwhm_hz"]),
            )
            candidates = [
                Candidate(
                    bin=int(c["bin"]),
                    frequency_hz=float(c["frequency_hz"]),
                    significance=float(c["significance"]),
                    excess_sigma=float(c["excess_sigma"]),
                )
                for c in analysis["candidates"]
            ]
            ratio = analysis["radiometer_ratio"]
            return cls(
                run_id=str(doc["run_id"]), n_fft=n_fft, fs=float(axis["fs_hz"]),
                f_lo=float(axis["f_lo_hz"]), files=int(doc["files"]),
                incomplete_files=int(doc["incomplete_files"]),
                duplicates=int(doc["duplicates"]),
                late_chunks=int(doc.get("late_chunks", 0)),
                dropped_late_chunks=int(doc.get("dropped_late_chunks", 0)),
                awaiting_files=int(doc.get("awaiting_files", 0)),
                forgotten_files=int(doc.get("forgotten_files", 0)), slices=int(doc["slices"]),
                first_daq_time=float(doc["first_daq_time"]),
                last_daq_time=float(doc["last_daq_time"]), last_file=int(doc["last_file"]),
                emitted_time=float(doc["emitted_time"]), mean=_from_list(doc["mean"], n_fft),
                sem=_from_list(doc["sem"], n_fft), baseline=_from_list(analysis["baseline"], n_fft),
                excess_sigma=_from_list(analysis["excess_sigma"], n_fft),
                matched_sigma=_from_list(analysis["matched_sigma"], n_fft),
                radiometer_ratio=math.nan if ratio is None else float(ratio),
                config=config, candidates=candidates,
                candidate_count=int(analysis.get("candidate_count", len(candidates))),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError, OverflowError) as error:
            raise MessageDecodeError(f"run spectrum: bad or missing field: {error}") from None


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _array(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """An array as orjson writes it: float64 in C order (a non-finite value becomes null)."""
    return np.ascontiguousarray(values, dtype=np.float64)


def _dumps(document: dict[str, Any]) -> bytes:
    """``document`` as compact UTF-8 JSON; a non-finite number outside the arrays is an error.

    orjson (C speed, ~35× Python's json for these documents) writes float64 to round-trip
    exactly and NaN in arrays as null, as the format says; a NaN or infinity in a single
    field would also become null, which no field allows, so it is refused here.
    """
    _check_finite(document)
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)


def _check_finite(value: object) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"a non-finite number ({value}) outside an array")
    if isinstance(value, dict):
        for item in value.values():
            _check_finite(item)
    elif isinstance(value, list):
        for item in value:
            _check_finite(item)


def _from_list(values: Sequence[float | None], n_fft: int) -> NDArray[np.float64]:
    array = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    if array.shape != (n_fft,):
        raise ValueError(f"array of {array.size} values where n_fft is {n_fft}")
    return array


def _load(data: bytes, schema: str) -> dict[str, Any]:
    doc = strictjson.loads(data, what=schema)
    if not isinstance(doc, dict) or doc.get("schema") != schema:
        found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise MessageDecodeError(f"expected schema {schema!r}, got {found!r}")
    return doc
