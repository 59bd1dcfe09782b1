"""The archive: every file spectrum and each run's latest state as Parquet, and reading it back.

Layout under the archive's root (Hive-style partitions, which pyarrow, DuckDB and pandas
read as columns; a run id is percent-encoded in its directory name)::

    spectra/run=<run>/date=<YYYY-MM-DD>/part-<topic partition>-<first>-<last>.parquet
    runs/run=<run>/state.parquet

A spectra row is one record of quax.spectra, with the Kafka partition and offset it came
from: a file emitted twice (a redelivery, or a new revision after a late chunk) has a row
for each, and a reader keeps the highest revision of each ``(run_id, file_number)``
(:func:`latest_revisions`). The date is the UTC day of the file's ``daq_time``. A run's
state is its latest quax.runs record: the message itself (``message``, which decodes to
exactly what was served live) and its main columns.

Means and stds are float64, as the accumulators; an undefined std (one slice) is NaN.
Names starting with ``.`` or ``_`` (files being written, the writer's journal) are
skipped by pyarrow's dataset discovery, so readers never see a half-written file.

The writer is the archiver service's (quax_archiver); this module is what every reader
shares: the row format, the paths, and the per-file moments a run is rebuilt from.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from numpy.typing import NDArray

from quaxspec.moments import Moments
from quaxspec.settings import S3Location, S3Settings
from quaxspec.spectra import FileSpectrum, RunSpectrum

__all__ = [
    "FILE_COLUMNS",
    "RUN_COLUMNS",
    "SPECTRA_DIR",
    "RUNS_DIR",
    "ArchiveLocation",
    "ArchiveReader",
    "file_moments",
    "file_rows_table",
    "file_spectra_of_rows",
    "file_spectrum_of_row",
    "latest_revisions",
    "open_archive",
    "run_moments",
    "run_row_table",
    "run_state_path",
    "spectra_dir",
]

SPECTRA_DIR = "spectra"
RUNS_DIR = "runs"
STATE_FILE = "state.parquet"

_F8_LIST = pa.list_(pa.float64())

#: One row per record of quax.spectra.
FILE_COLUMNS = pa.schema(
    [
        ("run_id", pa.string()),
        ("file_number", pa.int64()),
        ("revision", pa.int32()),
        ("complete", pa.bool_()),
        ("count", pa.int64()),
        ("expected_count", pa.int64()),
        ("duplicates", pa.int64()),
        ("late_chunks", pa.int64()),
        ("daq_time", pa.float64()),
        ("emitted_time", pa.float64()),
        ("n_fft", pa.int32()),
        ("fs_hz", pa.float64()),
        ("f_lo_hz", pa.float64()),
        ("mean", _F8_LIST),
        ("std", _F8_LIST),
        ("spectral_kurtosis", _F8_LIST),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
    ]
)

#: The list columns of a file row, in FileSpectrum's order.
_ARRAY_COLUMNS = ("mean", "std", "spectral_kurtosis")

#: One row per run: its latest update.
RUN_COLUMNS = pa.schema(
    [
        ("run_id", pa.string()),
        ("files", pa.int64()),
        ("incomplete_files", pa.int64()),
        ("slices", pa.int64()),
        ("first_daq_time", pa.float64()),
        ("last_daq_time", pa.float64()),
        ("emitted_time", pa.float64()),
        ("n_fft", pa.int32()),
        ("fs_hz", pa.float64()),
        ("f_lo_hz", pa.float64()),
        ("mean", _F8_LIST),
        ("sem", _F8_LIST),
        ("candidate_count", pa.int64()),
        ("message", pa.binary()),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
    ]
)


def _run_segment(run_id: str) -> str:
    return "run=" + quote(run_id, safe="")


def utc_date(unix_seconds: float) -> str:
    """The UTC day of a Unix time, as the ``date`` partition names it."""
    return dt.datetime.fromtimestamp(unix_seconds, dt.UTC).date().isoformat()


def spectra_dir(root: Path, run_id: str, date: str) -> Path:
    """The directory of a run's file spectra of one day."""
    return root / SPECTRA_DIR / _run_segment(run_id) / f"date={date}"


def run_state_path(root: Path, run_id: str) -> Path:
    """The file holding a run's latest state."""
    return root / RUNS_DIR / _run_segment(run_id) / STATE_FILE


def file_rows_table(rows: Iterable[tuple[FileSpectrum, int, int]]) -> pa.Table:
    """The rows of ``(spectrum, kafka partition, kafka offset)`` records as a table."""
    columns: dict[str, list[Any]] = {name: [] for name in FILE_COLUMNS.names}
    for s, partition, offset in rows:
        values = (
            s.run_id, s.file_number, s.revision, s.complete, s.count, s.expected_count,
            s.duplicates, s.late_chunks, s.daq_time, s.emitted_time, s.n_fft, s.fs, s.f_lo,
            s.mean, s.std, s.spectral_kurtosis, partition, offset,
        )  # fmt: skip
        for name, value in zip(FILE_COLUMNS.names, values, strict=True):
            columns[name].append(value)
    return pa.table(columns, schema=FILE_COLUMNS)


def run_row_table(run: RunSpectrum, message: bytes, partition: int, offset: int) -> pa.Table:
    """A run's state as a one-row table (``message`` is the record it was decoded from)."""
    values = (
        run.run_id, run.files, run.incomplete_files, run.slices, run.first_daq_time,
        run.last_daq_time, run.emitted_time, run.n_fft, run.fs, run.f_lo, run.mean, run.sem,
        run.candidate_count, message, partition, offset,
    )  # fmt: skip
    return pa.table(
        {name: [value] for name, value in zip(RUN_COLUMNS.names, values, strict=True)},
        schema=RUN_COLUMNS,
    )


def file_spectrum_of_row(row: Mapping[str, Any]) -> FileSpectrum:
    """The file spectrum a row was made from (every field and array exactly)."""
    return _file_spectrum(
        row, _floats(row["mean"]), _floats(row["std"]), _floats(row["spectral_kurtosis"])
    )


def file_spectra_of_rows(table: pa.Table) -> list[FileSpectrum]:
    """The file spectra of a table's rows, in order; arrays go from Arrow to numpy directly.

    (``to_pylist`` would make a Python float object of every bin: four times the memory.)
    """
    scalars = table.drop_columns(list(_ARRAY_COLUMNS)).to_pylist()
    arrays = [_list_rows(table.column(name)) for name in _ARRAY_COLUMNS]
    return [
        _file_spectrum(row, mean.copy(), std.copy(), kurtosis.copy())
        for row, mean, std, kurtosis in zip(scalars, *arrays, strict=True)
    ]


def _file_spectrum(
    row: Mapping[str, Any],
    mean: NDArray[np.float64],
    std: NDArray[np.float64],
    kurtosis: NDArray[np.float64],
) -> FileSpectrum:
    return FileSpectrum(
        run_id=row["run_id"], file_number=int(row["file_number"]), n_fft=int(row["n_fft"]),
        fs=float(row["fs_hz"]), f_lo=float(row["f_lo_hz"]), count=int(row["count"]),
        expected_count=int(row["expected_count"]), duplicates=int(row["duplicates"]),
        revision=int(row["revision"]), late_chunks=int(row["late_chunks"]),
        daq_time=float(row["daq_time"]), emitted_time=float(row["emitted_time"]),
        mean=mean, std=std, spectral_kurtosis=kurtosis,
    )  # fmt: skip


def _list_rows(column: pa.ChunkedArray) -> Iterator[NDArray[np.float64]]:
    """Each row of a list<double> column as a numpy view of Arrow's buffer (no copy)."""
    for chunk in column.chunks:
        offsets = chunk.offsets.to_numpy()  # absolute positions in chunk.values
        values = chunk.values.to_numpy()
        for k in range(len(chunk)):
            yield values[offsets[k] : offsets[k + 1]]


def _floats(values: Any) -> NDArray[np.float64]:
    return np.asarray(values, dtype=np.float64)


def latest_revisions(table: pa.Table) -> pa.Table:
    """One row per ``(run_id, file_number)``: its highest revision, then its latest emission."""
    if table.num_rows == 0:
        return table
    order = table.sort_by(
        [("run_id", "ascending"), ("file_number", "ascending"), ("revision", "descending"),
         ("emitted_time", "descending")]
    )  # fmt: skip
    runs = order.column("run_id").to_pylist()
    numbers = order.column("file_number").to_pylist()
    keep = [
        k == 0 or (runs[k], numbers[k]) != (runs[k - 1], numbers[k - 1]) for k in range(len(runs))
    ]
    return order.filter(pa.array(keep))


def file_moments(count: int, mean: NDArray[np.float64], std: NDArray[np.float64]) -> Moments:
    """A file's count, mean and M2 from its row: M2 = std²·(count − 1) (0 for one slice)."""
    m2 = std * std * float(count - 1) if count > 1 else np.zeros_like(mean)
    return Moments(np.int64(count), np.asarray(mean, np.float64), np.asarray(m2, np.float64))


def run_moments(files: pa.Table) -> Moments:
    """The statistics of every slice of a run, from its files' latest revisions (Chan's merge)."""
    latest = latest_revisions(files)
    counts = latest.column("count").to_numpy()
    means, stds = _list_rows(latest.column("mean")), _list_rows(latest.column("std"))
    parts = (
        file_moments(int(count), mean, std)
        for count, mean, std in zip(counts, means, stds, strict=True)
        if count > 0
    )  # merged one by one: no list of every file's arrays
    if not np.any(counts > 0):
        raise ValueError("no file of the run has a slice")
    return Moments.merge_all(parts)


def open_archive(location: str | Path, s3: S3Settings | None = None) -> ArchiveLocation:
    """An archive in a local folder, or under ``s3://bucket/prefix`` (reached as ``s3`` says).

    The object store goes through pyarrow's own S3 client (the AWS SDK for C++): the same
    credential chain as boto3 when ``s3`` names none (``AWS_*`` variables, ``~/.aws``, a
    pod role).
    """
    if isinstance(location, str) and location.startswith("s3://"):
        where = S3Location.parse(location)
        s3 = s3 or S3Settings()
        secret = s3.secret_access_key
        endpoint = urlsplit(s3.endpoint_url) if s3.endpoint_url else None
        filesystem = pafs.S3FileSystem(
            access_key=s3.access_key_id,
            secret_key=None if secret is None else secret.get_secret_value(),
            region=s3.region,
            endpoint_override=endpoint.netloc if endpoint else None,
            scheme=endpoint.scheme if endpoint else "https",
            force_virtual_addressing=s3.addressing_style == "virtual",
            connect_timeout=s3.connect_timeout_seconds,
            request_timeout=s3.read_timeout_seconds,
            retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=s3.max_attempts),
            allow_bucket_creation=False,
            allow_bucket_deletion=False,
        )
        return ArchiveLocation(filesystem, (where.bucket + "/" + where.prefix).rstrip("/"))
    return ArchiveLocation(pafs.LocalFileSystem(), str(Path(location).absolute()))


@dataclass(frozen=True, slots=True)
class ArchiveLocation:
    """A filesystem (local or S3, pyarrow's) and the archive's root in it."""

    filesystem: pafs.FileSystem
    root: str

    def path(self, *parts: str) -> str:
        """A path under the root (``/``-separated, as pyarrow's filesystems take them)."""
        return "/".join((self.root, *parts))

    def info(self, path: str) -> pafs.FileInfo:
        """What is at ``path`` (type ``NotFound`` if nothing)."""
        info: pafs.FileInfo = self.filesystem.get_file_info(path)
        return info

    def below(self, path: str) -> list[pafs.FileInfo]:
        """Every file under ``path`` (none if there is no such folder)."""
        selector = pafs.FileSelector(path, recursive=True, allow_not_found=True)
        return [i for i in self.filesystem.get_file_info(selector) if i.type == pafs.FileType.File]


class ArchiveReader:
    """Read an archive: its runs, a run's latest state and its file spectra.

    ``root``: a folder, or an :class:`ArchiveLocation` (e.g. in S3, :func:`open_archive`).
    """

    def __init__(self, root: Path | str | ArchiveLocation) -> None:
        self.location = root if isinstance(root, ArchiveLocation) else open_archive(Path(root))

    def run_ids(self) -> list[str]:
        """The runs whose state is archived."""
        found = []
        for info in self.location.below(self.location.path(RUNS_DIR)):
            parent, _, name = info.path.rpartition("/")
            segment = parent.rpartition("/")[2]
            if name == STATE_FILE and segment.startswith("run="):
                found.append(unquote(segment[4:]))
        return sorted(found)

    def run(self, run_id: str) -> RunSpectrum | None:
        """A run's latest archived update, exactly as it was emitted (None if not archived)."""
        path = self._state_path(run_id)
        if self.location.info(path).type != pafs.FileType.File:
            return None
        table = pq.read_table(path, columns=["message"], filesystem=self.location.filesystem)
        return RunSpectrum.from_bytes(table.column("message")[0].as_py())

    def state_version(self, run_id: str) -> int | None:
        """When a run's state was last written (ns; None if not archived): a cache's key."""
        info = self.location.info(self._state_path(run_id))
        return None if info.type != pafs.FileType.File else int(info.mtime_ns or 0)

    def file_rows(self, run_id: str, numbers: Iterable[int] | None = None) -> pa.Table:
        """Archived records of a run's file spectra (all revisions), in Kafka order.

        ``numbers``: only the rows of these file numbers (read with a filter, not whole).
        """
        dataset = self._spectra(run_id)
        if dataset is None:
            return FILE_COLUMNS.empty_table()
        where = None if numbers is None else pc.field("file_number").isin(list(numbers))
        table = dataset.to_table(filter=where)
        return table.sort_by([("kafka_partition", "ascending"), ("kafka_offset", "ascending")])

    def file_numbers(self, run_id: str) -> list[int]:
        """The file numbers archived of a run, in order (one column read)."""
        dataset = self._spectra(run_id)
        if dataset is None:
            return []
        numbers = dataset.to_table(columns=["file_number"]).column("file_number")
        return sorted(int(n) for n in pc.unique(numbers).to_pylist())

    def files(self, run_id: str, numbers: Iterable[int] | None = None) -> dict[int, FileSpectrum]:
        """A run's file spectra (or those of ``numbers``), the highest revision of each."""
        latest = latest_revisions(self.file_rows(run_id, numbers))
        return {spectrum.file_number: spectrum for spectrum in file_spectra_of_rows(latest)}

    def _state_path(self, run_id: str) -> str:
        return self.location.path(RUNS_DIR, _run_segment(run_id), STATE_FILE)

    def _spectra(self, run_id: str) -> ds.Dataset | None:
        """The run's Parquet parts as one dataset, from one listing; None if it has none."""
        directory = self.location.path(SPECTRA_DIR, _run_segment(run_id))
        parts = sorted(
            i.path
            for i in self.location.below(directory)
            if i.path.endswith(".parquet") and not i.base_name.startswith((".", "_"))
        )
        if not parts:
            return None
        return ds.dataset(
            parts, schema=FILE_COLUMNS, format="parquet", filesystem=self.location.filesystem
        )
