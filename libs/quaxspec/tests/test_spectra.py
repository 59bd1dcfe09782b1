"""Tests for quaxspec.spectra: the JSON file and run spectra are strict, exact and validated."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from quaxspec.aggregation import FileAccumulator, file_spectrum
from quaxspec.findings import AnalysisConfig, Candidate
from quaxspec.messages import MessageDecodeError, Partial
from quaxspec.moments import Moments
from quaxspec.spectra import FileSpectrum, RunSpectrum

N_FFT = 16
FS = 2.0e6
F_LO = 10.353e9

#: Values a lossy float printer would change.
AWKWARD = [0.1, 1 / 3, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -0.0, 1e-17]


def _strict_json(data: bytes) -> dict[str, Any]:
    """Parse as standard JSON: NaN, Infinity and -Infinity are not JSON."""

    def reject(token: str) -> None:
        raise AssertionError(f"non-standard JSON constant {token}")

    document = json.loads(data.decode("utf-8"), parse_constant=reject)
    assert isinstance(document, dict)
    return document


def _axis(n_fft: int, fs: float, f_lo: float) -> NDArray[np.float64]:
    return f_lo + np.fft.fftshift(np.fft.fftfreq(n_fft, 1.0 / fs))


def _values(rng: np.random.Generator, nan_at: tuple[int, ...] = ()) -> NDArray[np.float64]:
    values = rng.random(N_FFT) * 10.0 ** rng.integers(-20, 20, N_FFT)
    values[: len(AWKWARD)] = AWKWARD
    values[list(nan_at)] = math.nan
    return values


def _bits_equal(a: NDArray[np.float64], b: NDArray[np.float64]) -> bool:
    """Equal bit for bit where finite, NaN exactly where NaN."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    nan = np.isnan(a)
    if a.shape != b.shape or not np.array_equal(nan, np.isnan(b)):
        return False
    return a[~nan].tobytes() == b[~nan].tobytes()


def _file_spectrum(**overrides: Any) -> FileSpectrum:
    rng = np.random.default_rng(1)
    fields: dict[str, Any] = {
        "run_id": 'µ-run/é "quoted" 🛰',
        "file_number": 4_294_967_295,
        "n_fft": N_FFT,
        "fs": FS,
        "f_lo": F_LO,
        "count": 2729,
        "expected_count": 2730,
        "duplicates": 3,
        "revision": 2,
        "late_chunks": 5,
        "daq_time": 1_717_200_000.123456789,
        "emitted_time": 1_717_200_004.987654321,
        "mean": _values(rng),
        "std": _values(rng, nan_at=(9,)),
        "spectral_kurtosis": _values(rng, nan_at=(0, 15)),
    }
    fields.update(overrides)
    return FileSpectrum(**fields)


def _run_spectrum(**overrides: Any) -> RunSpectrum:
    rng = np.random.default_rng(2)
    fields: dict[str, Any] = {
        "run_id": "run-2024-06-01",
        "n_fft": N_FFT,
        "fs": FS,
        "f_lo": -0.0,
        "files": 1234,
        "incomplete_files": 5,
        "duplicates": 17,
        "late_chunks": 40,
        "dropped_late_chunks": 2,
        "awaiting_files": 3,
        "forgotten_files": 1,
        "slices": 3_368_820,
        "first_daq_time": 1_717_200_000.25,
        "last_daq_time": 1_717_205_182.75,
        "last_file": 1240,
        "emitted_time": 1_717_205_183.5,
        "mean": _values(rng),
        "sem": _values(rng),
        "baseline": _values(rng),
        "excess_sigma": -_values(rng),
        "matched_sigma": _values(rng, nan_at=(0, 1, 13, 14, 15)),
        "radiometer_ratio": 1.0123456789012345,
        "config": AnalysisConfig(baseline_window=7, baseline_order=3, threshold_sigma=4.5),
        "candidates": [
            Candidate(bin=3, frequency_hz=F_LO + 0.1, significance=5.25, excess_sigma=1 / 3),
            Candidate(bin=11, frequency_hz=-0.0, significance=1e300, excess_sigma=-2.5),
        ],
    }
    fields.update(overrides)
    return RunSpectrum(**fields)


FILE_ARRAYS = ("mean", "std", "spectral_kurtosis")
RUN_ARRAYS = ("mean", "sem", "baseline", "excess_sigma", "matched_sigma")


# --- encoding ----------------------------------------------------------------------------------


def test_file_spectrum_json_document() -> None:
    spectrum = _file_spectrum()
    doc = _strict_json(spectrum.to_bytes())

    assert doc["schema"] == "quax.file-spectrum/1"
    assert doc["run_id"] == spectrum.run_id
    assert (doc["file_number"], doc["count"], doc["expected_count"]) == (4_294_967_295, 2729, 2730)
    assert doc["complete"] is False
    assert doc["duplicates"] == 3
    assert doc["daq_time"] == 1_717_200_000.123456789
    assert doc["emitted_time"] == 1_717_200_004.987654321
    assert doc["units"] == "V^2/Hz"
    axis = doc["axis"]
    assert (axis["n_fft"], axis["fs_hz"], axis["f_lo_hz"]) == (N_FFT, FS, F_LO)
    assert axis["bin_width_hz"] == FS / N_FFT
    assert axis["frequency_hz"] == _axis(N_FFT, FS, F_LO).tolist()
    assert doc["std"][9] is None
    assert doc["spectral_kurtosis"][0] is None
    assert doc["spectral_kurtosis"][15] is None
    for name in FILE_ARRAYS:
        listed = np.array([math.nan if v is None else v for v in doc[name]], dtype=np.float64)
        assert _bits_equal(listed, getattr(spectrum, name)), name
    assert math.copysign(1.0, doc["mean"][5]) == -1.0  # -0.0 stays negative


def test_complete_flag_follows_the_counts() -> None:
    assert _strict_json(_file_spectrum(count=2730).to_bytes())["complete"] is True
    assert _file_spectrum(count=2730).complete
    assert not _file_spectrum(count=0).complete


def test_run_spectrum_json_document() -> None:
    spectrum = _run_spectrum()
    doc = _strict_json(spectrum.to_bytes())

    assert doc["schema"] == "quax.run-spectrum/1"
    assert (doc["files"], doc["incomplete_files"], doc["duplicates"]) == (1234, 5, 17)
    assert (doc["slices"], doc["last_file"]) == (3_368_820, 1240)
    assert (doc["first_daq_time"], doc["last_daq_time"]) == (1_717_200_000.25, 1_717_205_182.75)
    assert doc["emitted_time"] == 1_717_205_183.5
    assert doc["units"] == "V^2/Hz"
    axis = doc["axis"]
    assert axis["frequency_hz"] == _axis(N_FFT, FS, 0.0).tolist()
    assert math.copysign(1.0, axis["f_lo_hz"]) == -1.0
    analysis = doc["analysis"]
    assert analysis["radiometer_ratio"] == 1.0123456789012345
    assert (analysis["baseline_window"], analysis["baseline_order"]) == (7, 3)
    assert analysis["threshold_sigma"] == 4.5
    assert analysis["line_fwhm_hz"] == AnalysisConfig().line_fwhm_hz
    assert analysis["matched_sigma"][:2] == [None, None]
    assert analysis["candidates"] == [
        {"bin": 3, "frequency_hz": F_LO + 0.1, "significance": 5.25, "excess_sigma": 1 / 3},
        {"bin": 11, "frequency_hz": -0.0, "significance": 1e300, "excess_sigma": -2.5},
    ]
    for name in ("mean", "sem"):
        assert _bits_equal(np.array(doc[name], dtype=np.float64), getattr(spectrum, name))
    for name in ("baseline", "excess_sigma"):
        assert _bits_equal(np.array(analysis[name], dtype=np.float64), getattr(spectrum, name))


@pytest.mark.parametrize(
    ("n_fft", "fs", "f_lo"),
    [(16, 2.0e6, 0.0), (15, 2.0e6, 10.353e9), (3072, 2.0e6, 10.353e9), (2, 1.0, -5.5)],
)
def test_frequency_axis_in_the_json(n_fft: int, fs: float, f_lo: float) -> None:
    ones = np.ones(n_fft)
    spectrum = _file_spectrum(
        n_fft=n_fft, fs=fs, f_lo=f_lo, mean=ones, std=ones, spectral_kurtosis=ones
    )
    axis = _strict_json(spectrum.to_bytes())["axis"]
    assert axis["frequency_hz"] == _axis(n_fft, fs, f_lo).tolist()
    assert len(axis["frequency_hz"]) == n_fft
    # DC (f_LO) sits at index n_fft // 2, as the design says.
    assert axis["frequency_hz"][n_fft // 2] == f_lo
    decoded = FileSpectrum.from_bytes(spectrum.to_bytes())
    np.testing.assert_array_equal(decoded.frequency_hz, _axis(n_fft, fs, f_lo))


def test_non_finite_values_become_null_and_come_back_as_nan() -> None:
    values = np.array([math.nan, math.inf, -math.inf, 1.0] * (N_FFT // 4))
    spectrum = _file_spectrum(mean=values, std=values, spectral_kurtosis=values)
    doc = _strict_json(spectrum.to_bytes())
    assert doc["mean"][:4] == [None, None, None, 1.0]
    decoded = FileSpectrum.from_bytes(spectrum.to_bytes())
    assert np.isnan(decoded.mean[0::4]).all()
    assert np.isnan(decoded.mean[1::4]).all()
    assert (decoded.mean[3::4] == 1.0).all()

    run = _run_spectrum(radiometer_ratio=math.nan, excess_sigma=values)
    doc = _strict_json(run.to_bytes())
    assert doc["analysis"]["radiometer_ratio"] is None
    assert math.isnan(RunSpectrum.from_bytes(run.to_bytes()).radiometer_ratio)


@pytest.mark.parametrize("field", ["daq_time", "emitted_time", "fs"])
def test_a_non_finite_single_field_is_refused_not_written_as_null(field: str) -> None:
    """Only array elements may be missing; a NaN time or rate is a bug to stop at."""
    with pytest.raises(ValueError, match="non-finite"):
        _file_spectrum(**{field: math.nan}).to_bytes()


def test_arrays_of_any_layout_are_written_in_order() -> None:
    """A strided view (a column of a 2-D array) is written as its values, in order."""
    block = np.random.default_rng(4).exponential(size=(N_FFT, 3))
    spectrum = _file_spectrum(mean=block[:, 1], std=block[:, 2].astype(np.float32))
    decoded = FileSpectrum.from_bytes(spectrum.to_bytes())
    assert decoded.mean.tobytes() == np.ascontiguousarray(block[:, 1]).tobytes()
    np.testing.assert_array_equal(decoded.std, block[:, 2].astype(np.float32))


def test_file_spectrum_of_an_accumulator() -> None:
    rng = np.random.default_rng(3)
    data = rng.exponential(size=(7, N_FFT))
    partial = Partial(
        run_id="r", file_number=12, chunk_id=0, total_slices=9, n_fft=N_FFT, fs=FS, f_lo=F_LO,
        daq_time=100.5, moments=Moments.of(data),
    )  # fmt: skip
    acc = FileAccumulator.open(partial, now=0.0)
    acc.apply(partial, now=0.0)
    acc.apply(partial, now=0.0)  # a duplicate
    spectrum = file_spectrum(acc, emitted_time=104.0)

    assert (spectrum.run_id, spectrum.file_number, spectrum.count) == ("r", 12, 7)
    assert (spectrum.expected_count, spectrum.duplicates, spectrum.complete) == (9, 1, False)
    assert (spectrum.daq_time, spectrum.emitted_time) == (100.5, 104.0)
    np.testing.assert_allclose(spectrum.mean, data.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(spectrum.std, data.std(axis=0, ddof=1), rtol=1e-12)
    doc = _strict_json(spectrum.to_bytes())
    assert doc["axis"]["frequency_hz"] == _axis(N_FFT, FS, F_LO).tolist()


def test_file_spectrum_of_a_single_slice_has_null_std() -> None:
    partial = Partial(
        run_id="r", file_number=1, chunk_id=0, total_slices=1, n_fft=N_FFT, fs=FS, f_lo=0.0,
        daq_time=0.0, moments=Moments.of(np.arange(1.0, N_FFT + 1.0)[None, :]),
    )  # fmt: skip
    acc = FileAccumulator.open(partial, now=0.0)
    acc.apply(partial, now=0.0)
    doc = _strict_json(file_spectrum(acc, emitted_time=1.0).to_bytes())
    assert doc["mean"] == list(np.arange(1.0, N_FFT + 1.0))
    assert doc["std"] == [None] * N_FFT
    assert doc["spectral_kurtosis"] == [None] * N_FFT


# --- decoding ----------------------------------------------------------------------------------


def _assert_same_file(decoded: FileSpectrum, expected: FileSpectrum) -> None:
    assert type(decoded) is FileSpectrum
    for name in ("run_id", "file_number", "n_fft", "count", "expected_count", "duplicates"):
        assert getattr(decoded, name) == getattr(expected, name), name
    for name in ("fs", "f_lo", "daq_time", "emitted_time"):
        assert struct.pack("<d", getattr(decoded, name)) == struct.pack(
            "<d", getattr(expected, name)
        ), name
    for name in FILE_ARRAYS:
        assert _bits_equal(getattr(decoded, name), getattr(expected, name)), name


def _assert_same_run(decoded: RunSpectrum, expected: RunSpectrum) -> None:
    assert type(decoded) is RunSpectrum
    for name in (
        "run_id", "n_fft", "files", "incomplete_files", "duplicates", "slices", "last_file",
        "config", "candidates",
    ):  # fmt: skip
        assert getattr(decoded, name) == getattr(expected, name), name
    for name in ("fs", "f_lo", "first_daq_time", "last_daq_time", "emitted_time"):
        assert struct.pack("<d", getattr(decoded, name)) == struct.pack(
            "<d", getattr(expected, name)
        ), name
    assert _bits_equal(np.array([decoded.radiometer_ratio]), np.array([expected.radiometer_ratio]))
    for name in RUN_ARRAYS:
        assert _bits_equal(getattr(decoded, name), getattr(expected, name)), name
    for a, b in zip(decoded.candidates, expected.candidates, strict=True):
        assert struct.pack("<d", a.frequency_hz) == struct.pack("<d", b.frequency_hz)


def test_file_spectrum_round_trips_exactly() -> None:
    spectrum = _file_spectrum()
    data = spectrum.to_bytes()
    decoded = FileSpectrum.from_bytes(data)
    _assert_same_file(decoded, spectrum)
    assert decoded.to_bytes() == data
    assert FileSpectrum.from_bytes(bytearray(data)).to_bytes() == data


@pytest.mark.parametrize("candidates", [0, 2])
def test_run_spectrum_round_trips_exactly(candidates: int) -> None:
    spectrum = _run_spectrum()
    spectrum = _run_spectrum(candidates=spectrum.candidates[:candidates])
    data = spectrum.to_bytes()
    decoded = RunSpectrum.from_bytes(data)
    _assert_same_run(decoded, spectrum)
    assert decoded.to_bytes() == data


def _file_bytes() -> bytes:
    return _file_spectrum().to_bytes()


def _run_bytes() -> bytes:
    return _run_spectrum().to_bytes()


@pytest.mark.parametrize(
    ("cls", "encode"), [(FileSpectrum, _file_bytes), (RunSpectrum, _run_bytes)], ids=["file", "run"]
)
def test_truncated_json_is_rejected_at_every_length(cls: Any, encode: Any) -> None:
    data = encode()
    for cut in range(len(data)):
        with pytest.raises(MessageDecodeError):
            cls.from_bytes(data[:cut])


@pytest.mark.parametrize(
    ("cls", "data"),
    [
        (FileSpectrum, _run_bytes),
        (RunSpectrum, _file_bytes),
        (
            FileSpectrum,
            lambda: _file_bytes().replace(b"quax.file-spectrum/1", b"quax.file-spectrum/2"),
        ),
        (
            RunSpectrum,
            lambda: _run_bytes().replace(b"quax.run-spectrum/1", b"quax.run-spectrum/10"),
        ),
        (FileSpectrum, lambda: _file_bytes().replace(b'"schema"', b'"Schema"')),
        (FileSpectrum, b"[]"),
        (FileSpectrum, b'"quax.file-spectrum/1"'),
        (RunSpectrum, b"null"),
        (RunSpectrum, b"42"),
        (FileSpectrum, b""),
        (FileSpectrum, b"\xff\xfe{}"),
        (RunSpectrum, b"{"),
    ],
    ids=[
        "run-as-file",
        "file-as-run",
        "file-v2",
        "run-v10",
        "no-schema",
        "array",
        "string",
        "null",
        "number",
        "empty",
        "not-utf8",
        "brace",
    ],
)
def test_wrong_schema_or_not_a_document_is_rejected(cls: Any, data: Any) -> None:
    with pytest.raises(MessageDecodeError):
        cls.from_bytes(data() if callable(data) else data)


#: Fields that decoding needs (the rest — complete, units, bin width, frequencies — derive).
FILE_FIELDS = [
    ("run_id",), ("file_number",), ("count",), ("expected_count",), ("duplicates",),
    ("daq_time",), ("emitted_time",), ("axis",), ("axis", "n_fft"), ("axis", "fs_hz"),
    ("axis", "f_lo_hz"), ("mean",), ("std",), ("spectral_kurtosis",),
]  # fmt: skip
RUN_FIELDS = [
    ("run_id",), ("files",), ("incomplete_files",), ("duplicates",), ("slices",),
    ("first_daq_time",), ("last_daq_time",), ("last_file",), ("emitted_time",), ("axis",),
    ("axis", "n_fft"), ("axis", "fs_hz"), ("axis", "f_lo_hz"), ("mean",), ("sem",),
    ("analysis",), *(("analysis", name) for name in (
        "baseline", "excess_sigma", "matched_sigma", "radiometer_ratio", "threshold_sigma",
        "baseline_window", "baseline_order", "line_fwhm_hz", "candidates",
    )),
]  # fmt: skip


def _edited(
    data: bytes, path: tuple[str, ...], value: Any = None, *, delete: bool = False
) -> bytes:
    doc = json.loads(data)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize("path", FILE_FIELDS, ids=".".join)
def test_file_spectrum_with_a_missing_field_is_rejected(path: tuple[str, ...]) -> None:
    with pytest.raises(MessageDecodeError, match="field"):
        FileSpectrum.from_bytes(_edited(_file_bytes(), path, delete=True))


@pytest.mark.parametrize("path", RUN_FIELDS, ids=".".join)
def test_run_spectrum_with_a_missing_field_is_rejected(path: tuple[str, ...]) -> None:
    with pytest.raises(MessageDecodeError, match="field"):
        RunSpectrum.from_bytes(_edited(_run_bytes(), path, delete=True))


@pytest.mark.parametrize("change", [-1, 1, -N_FFT])
@pytest.mark.parametrize(
    ("cls", "encode", "path"),
    [(FileSpectrum, _file_bytes, (name,)) for name in FILE_ARRAYS]
    + [(RunSpectrum, _run_bytes, ("mean",)), (RunSpectrum, _run_bytes, ("sem",))]
    + [
        (RunSpectrum, _run_bytes, ("analysis", name))
        for name in ("baseline", "excess_sigma", "matched_sigma")
    ],
    ids=lambda v: ".".join(v) if isinstance(v, tuple) else getattr(v, "__name__", None),
)
def test_array_of_the_wrong_length_is_rejected(
    cls: Any, encode: Any, path: tuple[str, ...], change: int
) -> None:
    data = encode()
    doc = json.loads(data)
    values = doc[path[0]] if len(path) == 1 else doc[path[0]][path[1]]
    resized = values[:change] if change < 0 else values + [1.0] * change
    with pytest.raises(MessageDecodeError, match="n_fft"):
        cls.from_bytes(_edited(data, path, resized))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("mean",), "abc"),
        (("mean",), None),
        (("mean",), 3.0),
        (("std",), [[1.0]] * N_FFT),
        (("std",), ["x"] * N_FFT),
        (("axis", "n_fft"), "sixteen"),
        (("axis", "n_fft"), None),
        (("axis",), [1, 2]),
        (("count",), "many"),
        (("daq_time",), {"t": 1}),
    ],
)
def test_file_spectrum_with_a_bad_value_is_rejected(path: tuple[str, ...], value: Any) -> None:
    with pytest.raises(MessageDecodeError):
        FileSpectrum.from_bytes(_edited(_file_bytes(), path, value))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("analysis", "baseline_window"), 8),  # even: not a valid configuration
        (("analysis", "line_fwhm_hz"), 0.0),
        (("analysis", "candidates"), [{"bin": 1}]),
        (("analysis", "candidates"), 5),
        (("analysis", "radiometer_ratio"), "one"),
    ],
)
def test_run_spectrum_with_a_bad_value_is_rejected(path: tuple[str, ...], value: Any) -> None:
    with pytest.raises(MessageDecodeError):
        RunSpectrum.from_bytes(_edited(_run_bytes(), path, value))


GARBAGE_NUMBERS = [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999", b"9" * 5000]


@pytest.mark.parametrize("number", GARBAGE_NUMBERS, ids=lambda n: n[:12].decode())
@pytest.mark.parametrize(
    ("cls", "encode", "field"),
    [
        (FileSpectrum, _file_bytes, b'"count":'),
        (FileSpectrum, _file_bytes, b'"daq_time":'),
        (FileSpectrum, _file_bytes, b'"mean":['),
        (RunSpectrum, _run_bytes, b'"files":'),
        (RunSpectrum, _run_bytes, b'"slices":'),
        (RunSpectrum, _run_bytes, b'"sem":['),
    ],
    ids=lambda v: v.decode() if isinstance(v, bytes) else getattr(v, "__name__", None),
)
def test_numbers_json_would_let_through_are_decode_errors(
    cls: Any, encode: Any, field: bytes, number: bytes
) -> None:
    data = encode()
    start = data.index(field) + len(field)
    stop = min(data.index(c, start) for c in (b",", b"]", b"}") if c in data[start:])
    with pytest.raises(MessageDecodeError, match="not strict UTF-8 JSON"):
        cls.from_bytes(data[:start] + number + data[stop:])


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
@pytest.mark.parametrize("cls", [FileSpectrum, RunSpectrum])
def test_a_valid_document_in_another_encoding_is_a_decode_error(cls: Any, encoding: str) -> None:
    data = (_file_bytes if cls is FileSpectrum else _run_bytes)()
    with pytest.raises(MessageDecodeError, match="not strict UTF-8 JSON"):
        cls.from_bytes(data.decode().encode(encoding))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
@pytest.mark.parametrize("cls", [FileSpectrum, RunSpectrum])
def test_random_bytes_are_only_ever_decode_errors(cls: Any, data: bytes) -> None:
    with pytest.raises(MessageDecodeError):
        cls.from_bytes(data)
