"""Services that only read or merge spectra do not load the FFT kernel's libraries.

pyFFTW and numba together hold ~100 MB of resident memory once imported; the aggregator
and the API never transform samples, and the goal is at most 250 MB per service.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

KERNEL_LIBRARIES = ("numba", "pyfftw", "llvmlite")


@pytest.mark.parametrize("module", ["quax_aggregator.main", "quax_api.main", "quax_archiver.cli"])
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
