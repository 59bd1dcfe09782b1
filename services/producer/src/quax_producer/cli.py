"""Command line of the producer: ``quax-producer generate`` writes synthetic DAQ file pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from quaxspec.daq import DEFAULT_N_SAMPLES, write_pair
from quaxspec.synthetic import AxionLine, SyntheticDaq

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@app.callback()
def main() -> None:
    """Stream QUAX DAQ file pairs (real, watched or synthetic)."""


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
