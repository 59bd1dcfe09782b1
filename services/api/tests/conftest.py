"""An API application filled with spectra built from known inputs (no Kafka)."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi import FastAPI

from quax_api.main import create_app
from quax_api.settings import ApiSettings
from quaxspec.findings import AnalysisConfig
from quaxspec.merging import apply_partial
from quaxspec.messages import Partial
from quaxspec.moments import Moments
from quaxspec.spectra import FileSpectrum, RunSpectrum

N_FFT = 256
FS = 2.0e6
F_LO = 9.5e9


def build_run(run_id: str, files: int, *, seed: int = 0) -> tuple[list[FileSpectrum], RunSpectrum]:
    """File and run spectra of exponential 'power' data, through the aggregator's own steps."""
    rng = np.random.default_rng(seed)
    config = AnalysisConfig(baseline_window=31, baseline_order=2)
    run, spectra, last = None, [], None
    for number in range(files):
        data = rng.exponential(1e-8, (40, N_FFT))
        partial = Partial(
            run_id=run_id, file_number=number, chunk_id=0, total_slices=40, n_fft=N_FFT,
            fs=FS, f_lo=F_LO, daq_time=1.7e9 + 4.2 * number, moments=Moments.of(data),
        )  # fmt: skip
        step = apply_partial(
            partial,
            file=None,
            run=run,
            now=1.7e9 + 4.2 * number + 0.01,
            config=config,
            late_files=8,
        )
        run = step.run
        assert step.file_spectrum is not None
        assert step.run_spectrum is not None
        spectra.append(step.file_spectrum)
        last = step.run_spectrum
    assert last is not None
    return spectra, last


@pytest.fixture
def builder():
    """The function that builds a run's spectra, for expected values."""
    return build_run


@pytest.fixture
def app() -> FastAPI:
    application = create_app(ApiSettings(recent_files=5), kafka=False)
    store = application.state.store
    for run_id, files in (("run-a", 7), ("run-b", 2)):
        spectra, run = build_run(run_id, files, seed=len(run_id) + files)
        for spectrum in spectra:
            store.add_file(spectrum)
        store.add_run(run)
    application.state.ready.set()
    return application
