"""Services that only read or merge spectra neither install nor load the FFT kernel.

pyFFTW and numba together hold ~100 MB of resident memory once imported and ~190 MB on
disk; the aggregator, the API and the archiver never transform samples, and the goal is at
most 250 MB per service. The kernel is quaxspec's ``kernel`` extra, which only the FFT
worker asks for; the message formats import numpy only, so the services that just read
messages do not load scipy (the analysis) either.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UV = ROOT / ".tools" / "bin" / "uv"
KERNEL_LIBRARIES = ("numba", "pyfftw", "llvmlite")


@pytest.mark.parametrize("module", ["quax_aggregator.cli", "quax_api.main", "quax_archiver.cli"])
def test_a_service_that_merges_or_serves_spectra_does_not_import_the_fft_kernel(module):
    probe = (
        f"import sys, {module}; "
        f"print(' '.join(m for m in {KERNEL_LIBRARIES!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [], f"{module} imports {done.stdout.strip()}"


def test_an_api_without_an_archive_does_not_import_pyarrow():
    probe = "import sys, quax_api.main; print('pyarrow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("module", ["quax_api.main", "quax_archiver.cli"])
def test_a_service_that_reads_messages_does_not_import_the_analysis(module):
    probe = (
        f"import sys, {module}; "
        "print(' '.join(m for m in ('scipy', 'quaxspec.analysis', 'quaxspec.aggregation')"
        " if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [], f"{module} imports {done.stdout.strip()}"


@pytest.mark.parametrize(
    "package", ["quax-producer", "quax-fft-worker", "quax-aggregator", "quax-api", "quax-archiver"]
)
def test_only_the_fft_worker_installs_the_kernel(package):
    """What uv installs for one service (as its image's ``uv sync --package`` does), read
    from the lock: the kernel's libraries for the FFT worker, for no other."""
    done = subprocess.run(
        [str(UV), "export", "--frozen", "--no-dev", "--no-hashes", "--package", package],
        capture_output=True, text=True, cwd=ROOT,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    installed = {line.split("==")[0] for line in done.stdout.splitlines() if "==" in line}
    assert "numpy" in installed
    kernel = sorted(installed & set(KERNEL_LIBRARIES))
    assert kernel == (sorted(KERNEL_LIBRARIES) if package == "quax-fft-worker" else [])
