"""The archiver catching up on a backlog, and the API serving a run from the archive.

A backlog of file spectra (n_fft 3072, as the pipeline emits them, with a run update after
each file) is written to quax.spectra and quax.runs first; then the archiver starts with
its default settings and reads it all. Measured: the time from its start to the archive
holding every record (so the rate at which it catches up after an outage), its CPU, its
peak resident memory, the archive's bytes per file; then an API whose topics are empty
serves one of the runs from the archive: the first and a repeated request of the run
spectrum, the file list and the waterfall, an old file read alone, and its memory.

Run with `make bench-archive`; the result is recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import httpx
import numpy as np
import typer
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import recording
from localkafka import LocalKafka, free_port
from pipeline import Pipeline

from quaxspec.spectra import FileSpectrum, RunSpectrum
from quaxspec.topics import MAX_MESSAGE_BYTES, RUNS, SPECTRA

N_FFT = 3072
RUN_IDS = ("bench-a", "bench-b")
ROLL_SECONDS = 5

app = typer.Typer(add_completion=False)


def _spectra(files: int) -> list[tuple[bytes, bytes, bytes]]:
    """(key, file spectrum, run update) of each file: the two runs interleaved."""
    rng = np.random.default_rng(7)
    records = []
    for number in range(files):
        run_id = RUN_IDS[number % 2]
        mean = rng.exponential(1e-12, N_FFT)
        file = FileSpectrum(
            run_id=run_id, file_number=number // 2, n_fft=N_FFT, fs=2e6, f_lo=9.5e9,
            count=2730, expected_count=2730, duplicates=0, revision=0, late_chunks=0,
            daq_time=1.7e9 + 4.2 * number, emitted_time=1.7e9 + 4.2 * number + 0.2,
            mean=mean, std=mean * rng.uniform(0.9, 1.1, N_FFT),
            spectral_kurtosis=rng.normal(1, 0.04, N_FFT),
        )  # fmt: skip
        run = RunSpectrum(
            run_id=run_id, n_fft=N_FFT, fs=2e6, f_lo=9.5e9, files=number // 2 + 1,
            incomplete_files=0, duplicates=0, late_chunks=0, dropped_late_chunks=0,
            awaiting_files=0, forgotten_files=0, slices=2730 * (number // 2 + 1),
            first_daq_time=1.7e9, last_daq_time=file.daq_time, last_file=number // 2,
            emitted_time=file.emitted_time, mean=mean, sem=mean / 50, baseline=mean,
            excess_sigma=rng.normal(0, 1, N_FFT), matched_sigma=rng.normal(0, 1, N_FFT),
            radiometer_ratio=1.0,
        )  # fmt: skip
        records.append((run_id.encode(), file.to_bytes(), run.to_bytes()))
    return records


async def _fill(kafka: LocalKafka, prefix: str, records: list[tuple[bytes, bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(
        **kafka.client_options, max_request_size=MAX_MESSAGE_BYTES, linger_ms=20
    )
    await producer.start()
    try:
        for key, file, run in records:
            await producer.send(prefix + SPECTRA.name, file, key=key)
            await producer.send(prefix + RUNS.name, run, key=key)
        await producer.flush()
    finally:
        await producer.stop()


def _archived(directory: Path, prefix: str, ends: dict[str, int]) -> bool:
    stored = directory / "_positions.json"
    if not stored.exists():
        return False
    positions = json.loads(stored.read_text())
    return all(
        sum(positions.get(prefix + topic, {}).values()) >= total for topic, total in ends.items()
    )


def _timed_get(url: str) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = httpx.get(url, timeout=120)
    assert response.status_code == 200, (url, response.text[:300])
    return time.perf_counter() - started, response


def measure(root: Path, files: int) -> dict[str, object]:
    kafka = LocalKafka.fresh(root / "kafka")
    kafka.run("start")
    try:
        pipe = Pipeline(kafka, root / "pipe")
        records = _spectra(files)
        json_bytes = sum(len(file) for _, file, _ in records)
        asyncio.run(_fill(kafka, pipe.prefix, records))
        del records

        directory = root / "pipe" / "archive"
        started = time.monotonic()
        # Flushes of a backlog are triggered by size; the roll time only decides when the
        # tail is written. 5 s instead of 300 s, so that the time measured is the archiver's.
        archiver = pipe.start_archiver(QUAX_ARCHIVER_ROLL_SECONDS=str(ROLL_SECONDS))
        peak = 0.0
        while not _archived(directory, pipe.prefix, {SPECTRA.name: files, RUNS.name: files}):
            assert archiver.poll() is None, pipe.log("archiver")
            assert time.monotonic() - started < 1800, "not archived in 30 min"
            peak = max(peak, recording.rss_mib(archiver.pid))
            time.sleep(0.2)
        seconds = time.monotonic() - started
        cpu = recording.process_cpu(archiver.pid)
        log = (root / "pipe" / "archiver.log").read_text()
        flushes = log.count('"event": "Flushed to the archive."')
        pipe.stop("archiver")
        parquet = sum(p.stat().st_size for p in (directory / "spectra").rglob("*.parquet"))
        parts = len(list((directory / "spectra").rglob("*.parquet")))

        # An API with empty topics: every run it serves comes from the archive.
        empty = Pipeline(kafka, root / "api")
        port = free_port()
        api = empty.start_api(port=port, QUAX_API_ARCHIVE_DIRECTORY=str(directory))
        base = f"http://127.0.0.1:{port}/api/v1/runs"
        rss_before = recording.rss_mib(api.pid)
        run_id = RUN_IDS[0]
        first_run, _ = _timed_get(f"{base}/{run_id}")
        again_run, _ = _timed_get(f"{base}/{run_id}")
        listing, listed = _timed_get(f"{base}/{run_id}/files")
        waterfall, _ = _timed_get(f"{base}/{run_id}/waterfall?last=60&decimate=4")
        old_file, _ = _timed_get(f"{base}/{run_id}/files/0")
        rss_after = recording.rss_mib(api.pid)
        empty.close()
        pipe.close()
    finally:
        kafka.run("stop")
    return {
        "files": files,
        "json_mb": round(json_bytes / 1e6, 1),
        "catch_up_seconds": round(seconds, 1),
        "files_per_second": round(files / seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "cpu_ms_per_file": round(1000 * cpu / files, 2),
        "peak_rss_mib": round(peak, 1),
        "flushes": flushes,
        "parquet_files": parts,
        "parquet_mb": round(parquet / 1e6, 1),
        "parquet_kb_per_file": round(parquet / files / 1e3, 1),
        "api_run_first_s": round(first_run, 3),
        "api_run_again_s": round(again_run, 4),
        "api_files_s": round(listing, 4),
        "api_files_listed": len(listed.json()),
        "api_waterfall_s": round(waterfall, 4),
        "api_old_file_s": round(old_file, 3),
        "api_rss_mib": [round(rss_before, 1), round(rss_after, 1)],
    }


@app.command()
def main(
    files: Annotated[int, typer.Option(help="File spectra in the backlog (two runs).")] = 3000,
    record: Annotated[bool, typer.Option(help="Record in docs/benchmarks.md.")] = True,
) -> None:
    """Measure and print (and record) the archive table."""
    with tempfile.TemporaryDirectory(prefix="quax-bench-archive-") as scratch:
        r = measure(Path(scratch), files)
    days = r["files"] * 4.2 / 86400  # type: ignore[operator]
    lines = [
        f"Machine: {recording.machine()}; broker, archiver and API on it.",
        "",
        f"A backlog of {r['files']:,} file spectra of {N_FFT} bins ({days:.2f} days of the DAQ, "
        f"{r['json_mb']} MB of JSON) and as many run updates, read by an archiver started "
        f"with its default settings (a flush at 64 MB of arrays) but a roll time of "
        f"{ROLL_SECONDS} s (the backlog's tail is written then, not after 300 s):",
        "",
        "| catch-up | files/s | CPU ms per file | peak RSS | flushes | Parquet files | "
        "Parquet per file |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {r['catch_up_seconds']} s | {r['files_per_second']} | {r['cpu_ms_per_file']} | "
        f"{r['peak_rss_mib']} MiB | {r['flushes']} | {r['parquet_files']} | "
        f"{r['parquet_kb_per_file']} kB |",
        "",
        "An API whose topics are empty, serving one of the two runs from the archive "
        f"({r['api_files_listed']} newest files kept of it):",
        "",
        "| run spectrum, first | again (cached) | file list | waterfall 60 × 768 | "
        "one old file | API RSS before → after |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {r['api_run_first_s']} s | {r['api_run_again_s']} s | {r['api_files_s']} s | "
        f"{r['api_waterfall_s']} s | {r['api_old_file_s']} s | "
        f"{r['api_rss_mib'][0]} → {r['api_rss_mib'][1]} MiB |",  # type: ignore[index]
    ]
    table = "\n".join(lines)
    typer.echo(table)
    if record:
        recording.record("archive", "The archive (`make bench-archive`)", table, r)


if __name__ == "__main__":
    app()
