"""The archive's rows: exact round trips, latest revisions, and a run rebuilt from its files.

The rebuilt run is checked against numpy over every slice at once, not against the
library's own merge.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from quaxspec.archive import (
    ArchiveReader,
    file_rows_table,
    file_spectra_of_rows,
    file_spectrum_of_row,
    latest_revisions,
    run_moments,
    run_row_table,
    run_state_path,
    spectra_dir,
    utc_date,
)
from quaxspec.spectra import FileSpectrum, RunSpectrum

N_FFT = 16
FS = 2.0e6


def _spectrum(
    run_id: str, number: int, per_slice: np.ndarray, *, revision: int = 0, expected: int = 0
) -> FileSpectrum:
    count = per_slice.shape[0]
    std = per_slice.std(axis=0, ddof=1) if count > 1 else np.full(N_FFT, np.nan)
    return FileSpectrum(
        run_id=run_id, file_number=number, n_fft=N_FFT, fs=FS, f_lo=9.0e9, count=count,
        expected_count=expected or count, duplicates=0, revision=revision, late_chunks=revision,
        daq_time=1.7e9 + 4.2 * number, emitted_time=1.7e9 + 4.2 * number + 0.5 + revision,
        mean=per_slice.mean(axis=0), std=std, spectral_kurtosis=np.full(N_FFT, 1.0),
    )  # fmt: skip


def test_a_row_gives_back_the_file_spectrum_exactly() -> None:
    rng = np.random.default_rng(1)
    spectra = [
        _spectrum('µ-run/é "q"', 0, rng.exponential(size=(7, N_FFT))),
        _spectrum("r", 4_294_967_295, rng.exponential(size=(1, N_FFT))),  # std all NaN
    ]
    table = file_rows_table((s, 3, 100 + k) for k, s in enumerate(spectra))

    assert table.schema.field("mean").type == pa.list_(pa.float64())
    for row, spectrum in zip(table.to_pylist(), spectra, strict=True):
        assert file_spectrum_of_row(row).to_bytes() == spectrum.to_bytes()
        assert (row["kafka_partition"], row["complete"]) == (3, True)
    assert table.column("kafka_offset").to_pylist() == [100, 101]


def test_rows_of_a_sliced_many_chunk_table_give_back_their_spectra_exactly() -> None:
    rng = np.random.default_rng(5)
    spectra = [_spectrum("r", k, rng.exponential(size=(3 + k, N_FFT))) for k in range(7)]
    first = file_rows_table((s, 0, k) for k, s in enumerate(spectra[:4]))
    second = file_rows_table((s, 1, k) for k, s in enumerate(spectra[4:]))
    table = pa.concat_tables([first, second]).slice(1, 5)  # two chunks, an offset into one
    assert table.column("mean").num_chunks == 2

    got = file_spectra_of_rows(table)

    assert [s.to_bytes() for s in got] == [s.to_bytes() for s in spectra[1:6]]
    # Copies, not views: a kept spectrum does not hold the whole Arrow buffer alive.
    assert all(a.flags.owndata for s in got for a in (s.mean, s.std, s.spectral_kurtosis))


def test_latest_revisions_keep_the_highest_revision_of_each_file() -> None:
    rng = np.random.default_rng(2)
    data = rng.exponential(size=(10, N_FFT))
    rows = [
        (_spectrum("a", 0, data[:4], expected=10), 0, 1),
        (_spectrum("a", 0, data, revision=1), 0, 5),
        (_spectrum("a", 0, data, revision=1), 0, 9),  # redelivered: same content
        (_spectrum("a", 1, data[:3]), 1, 2),
        (_spectrum("b", 0, data[:2]), 2, 3),
    ]
    latest = latest_revisions(file_rows_table(rows)).to_pylist()

    assert [(r["run_id"], r["file_number"], r["revision"]) for r in latest] == [
        ("a", 0, 1), ("a", 1, 0), ("b", 0, 0),
    ]  # fmt: skip
    assert latest[0]["count"] == 10


@pytest.mark.parametrize("seed", [3, 4])
def test_a_run_rebuilt_from_its_file_rows_equals_numpy_over_every_slice(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scale = rng.uniform(1e-12, 1e-9, N_FFT)  # V²/Hz: small numbers, as the DAQ gives
    per_file = [rng.exponential(scale, size=(int(rng.integers(1, 40)), N_FFT)) for _ in range(9)]
    rows = [(_spectrum("run", n, data), 0, n) for n, data in enumerate(per_file) if n != 1]
    # file 1 first emitted incomplete, then with every slice (its late chunk merged)
    rows.append((_spectrum("run", 1, per_file[1][:1], expected=len(per_file[1])), 1, 99))
    rows.append((_spectrum("run", 1, per_file[1], revision=1), 1, 100))

    moments = run_moments(file_rows_table(rows))

    every = np.concatenate(per_file)
    assert moments.n == every.shape[0]
    np.testing.assert_allclose(moments.mean, every.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(
        moments.sem, every.std(axis=0, ddof=1) / np.sqrt(len(every)), rtol=1e-12
    )


def test_a_run_without_any_slice_cannot_be_rebuilt() -> None:
    empty = replace(_spectrum("run", 0, np.ones((1, N_FFT))), count=0)
    with pytest.raises(ValueError, match="no file of the run has a slice"):
        run_moments(file_rows_table([(empty, 0, 0)]))


def test_the_reader_sees_committed_files_only_and_decodes_run_states(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    spectra = [_spectrum("run/1", n, rng.exponential(size=(3, N_FFT))) for n in range(3)]
    directory = spectra_dir(tmp_path, "run/1", utc_date(spectra[0].daq_time))
    directory.mkdir(parents=True)
    pq.write_table(
        file_rows_table((s, 0, n) for n, s in enumerate(spectra[:2])), directory / "a.parquet"
    )
    pq.write_table(file_rows_table([(spectra[2], 0, 2)]), directory / ".b.parquet.tmp")
    run = _run_state("run/1")
    state = run_state_path(tmp_path, "run/1")
    state.parent.mkdir(parents=True)
    pq.write_table(run_row_table(run, run.to_bytes(), 1, 7), state)

    reader = ArchiveReader(tmp_path)

    assert reader.run_ids() == ["run/1"]
    assert sorted(reader.files("run/1")) == [0, 1]  # the hidden file is not read
    assert reader.files("run/1")[1].to_bytes() == spectra[1].to_bytes()
    archived = reader.run("run/1")
    assert archived is not None
    assert archived.to_bytes() == run.to_bytes()
    assert reader.run("other") is None
    assert reader.files("other") == {}
    assert "run=run%2F1" in str(state)


def _run_state(run_id: str) -> RunSpectrum:
    values = np.linspace(1e-12, 2e-12, N_FFT)
    return RunSpectrum(
        run_id=run_id, n_fft=N_FFT, fs=FS, f_lo=9.0e9, files=3, incomplete_files=0,
        duplicates=0, late_chunks=0, dropped_late_chunks=0, awaiting_files=0,
        forgotten_files=0, slices=9, first_daq_time=1.7e9, last_daq_time=1.7e9 + 8.4,
        last_file=2, emitted_time=1.7e9 + 9, mean=values, sem=values / 3, baseline=values,
        excess_sigma=np.zeros(N_FFT), matched_sigma=np.zeros(N_FFT), radiometer_ratio=1.0,
    )  # fmt: skip
