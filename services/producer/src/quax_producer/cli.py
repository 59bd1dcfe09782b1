"""Command line of the producer: ``run`` streams DAQ pairs into Kafka, ``generate`` writes pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.progress import Progress

from quax_producer import app as producer_app
from quax_producer.settings import ProducerSettings, SourceKind, WatchMethod
from quaxspec.daq import DEFAULT_N_SAMPLES, write_pair
from quaxspec.settings import KafkaSettings, LoggingSettings
from quaxspec.synthetic import AxionLine, SyntheticDaq

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@app.callback()
def main() -> None:
    """Stream QUAX DAQ file pairs (real, watched or synthetic)."""


def _about(field: str) -> str:
    """A settings field's description, so that the option and the variable say the same."""
    return ProducerSettings.model_fields[field].description or ""


@app.command()
def run(
    source: Annotated[SourceKind | None, typer.Option(help=_about("source"))] = None,
    directory: Annotated[Path | None, typer.Option(help=_about("directory"))] = None,
    bucket_url: Annotated[str | None, typer.Option(help=_about("bucket_url"))] = None,
    s3_read_ahead: Annotated[int | None, typer.Option(help=_about("s3_read_ahead"))] = None,
    run_id: Annotated[str | None, typer.Option(help=_about("run_id"))] = None,
    shard: Annotated[str | None, typer.Option(help=_about("shard"))] = None,
    f_lo: Annotated[float | None, typer.Option(help=_about("f_lo"))] = None,
    n_fft: Annotated[int | None, typer.Option(help=_about("n_fft"))] = None,
    fs: Annotated[float | None, typer.Option(help=_about("fs"))] = None,
    slices_per_chunk: Annotated[int | None, typer.Option(help=_about("slices_per_chunk"))] = None,
    seconds_per_pair: Annotated[float | None, typer.Option(help=_about("seconds_per_pair"))] = None,
    mb_per_s: Annotated[float | None, typer.Option(help=_about("mb_per_s"))] = None,
    as_fast_as_possible: Annotated[
        bool | None,
        typer.Option("--as-fast-as-possible/--paced", help=_about("as_fast_as_possible")),
    ] = None,
    files: Annotated[int | None, typer.Option(help=_about("files"))] = None,
    first_file: Annotated[int | None, typer.Option(help=_about("first_file"))] = None,
    seed: Annotated[int | None, typer.Option(help=_about("seed"))] = None,
    samples_per_file: Annotated[int | None, typer.Option(help=_about("samples_per_file"))] = None,
    line_frequency_hz: Annotated[
        float | None, typer.Option(help=_about("line_frequency_hz"))
    ] = None,
    line_strength: Annotated[float | None, typer.Option(help=_about("line_strength"))] = None,
    watch_method: Annotated[WatchMethod | None, typer.Option(help=_about("watch_method"))] = None,
    watch_settle_seconds: Annotated[
        float | None, typer.Option(help=_about("watch_settle_seconds"))
    ] = None,
    watch_send_while_written: Annotated[
        bool | None,
        typer.Option(
            "--watch-send-while-written/--watch-send-when-complete",
            help=_about("watch_send_while_written"),
        ),
    ] = None,
    watch_file_samples: Annotated[
        int | None, typer.Option(help=_about("watch_file_samples"))
    ] = None,
    watch_poll_seconds: Annotated[
        float | None, typer.Option(help=_about("watch_poll_seconds"))
    ] = None,
    watch_settle_polls: Annotated[
        int | None, typer.Option(help=_about("watch_settle_polls"))
    ] = None,
    watch_rescan_seconds: Annotated[
        float | None, typer.Option(help=_about("watch_rescan_seconds"))
    ] = None,
    delivery_timeout_seconds: Annotated[
        float | None, typer.Option(help=_about("delivery_timeout_seconds"))
    ] = None,
    max_in_flight: Annotated[int | None, typer.Option(help=_about("max_in_flight"))] = None,
    metrics_port: Annotated[int | None, typer.Option(help=_about("metrics_port"))] = None,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help=_about("progress"))
    ] = None,
    bootstrap_servers: Annotated[
        str | None, typer.Option(help="Kafka bootstrap servers (QUAX_KAFKA_BOOTSTRAP_SERVERS).")
    ] = None,
    topic_prefix: Annotated[
        str | None, typer.Option(help="Prefix of every topic name (QUAX_KAFKA_TOPIC_PREFIX).")
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="DEBUG, INFO, WARNING or ERROR (QUAX_LOG_LEVEL).")
    ] = None,
    log_json: Annotated[
        bool | None,
        typer.Option("--log-json/--log-text", help="JSON log lines (QUAX_LOG_JSON_FORMAT)."),
    ] = None,
) -> None:
    """Stream DAQ pairs into the Kafka raw topic (the container's entry point).

    Options override the QUAX_PRODUCER_* environment variables, which override the defaults.
    The object store of the s3 source is set by QUAX_S3_* or the standard AWS ways.
    """
    given = {name: value for name, value in locals().items() if value is not None}
    kafka = {key: given.pop(key) for key in ("bootstrap_servers", "topic_prefix") if key in given}
    logging = {
        target: given.pop(key)
        for key, target in (("log_level", "level"), ("log_json", "json_format"))
        if key in given
    }
    try:
        # Nested settings are built here so that their own environment variables still apply
        # to the fields no option overrides.
        settings = ProducerSettings(
            **given, kafka=KafkaSettings(**kafka), logging=LoggingSettings(**logging)
        )
    except ValidationError as error:
        typer.echo(f"invalid settings:\n{error}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(producer_app.run(settings))


@app.command()
def generate(
    directory: Annotated[Path, typer.Argument(help="Where to write duck_i/duck_q pairs.")],
    files: Annotated[int, typer.Option(min=1, help="Number of file pairs.")] = 6,
    first: Annotated[int, typer.Option(min=0, help="Number of the first file.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the noise realisation.")] = 0,
    samples: Annotated[int, typer.Option(min=1, help="Samples per file.")] = DEFAULT_N_SAMPLES,
    line_frequency: Annotated[
        float, typer.Option(help="Baseband onset frequency of an injected axion line (Hz).")
    ] = 250e3,
    line_strength: Annotated[
        float, typer.Option(min=0, help="Line power / noise power per bin; 0 for none.")
    ] = 0.0,
) -> None:
    """Write synthetic DAQ file pairs, as the QUAX DAQ would."""
    line = AxionLine(frequency_hz=line_frequency, strength=line_strength) if line_strength else None
    daq = SyntheticDaq(seed=seed, n_samples=samples, line=line)
    directory.mkdir(parents=True, exist_ok=True)
    with Progress(transient=True) as progress:
        task = progress.add_task("writing pairs", total=files)
        for number in range(first, first + files):
            i, q = daq.samples(number)
            write_pair(directory, number, i, q)
            progress.advance(task)
    size = files * 2 * samples * 4 / 1e6
    typer.echo(f"wrote {files} pairs ({size:.0f} MB) to {directory}")
