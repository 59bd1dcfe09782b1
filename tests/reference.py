"""Outside references for the pipeline's output: scipy's welch and spectrogram, numpy over slices.

Computed from the same samples the DAQ wrote, never from the pipeline's own code.
"""

from __future__ import annotations

import numpy as np
import scipy.signal

from quaxspec.spectra import FileSpectrum, RunSpectrum

FS = 2.0e6


def _welch_arguments(n_fft: int) -> dict[str, object]:
    return {
        "window": "boxcar",
        "nperseg": n_fft,
        "noverlap": 0,
        "detrend": False,
        "return_onesided": False,
        "scaling": "density",
    }


def slice_spectra(i: np.ndarray, q: np.ndarray, n_fft: int, fs: float = FS) -> np.ndarray:
    """Per-slice PSD (slices, bins), fftshifted: spectrogram as docs/physics.md says."""
    z = i.astype(np.complex128) + 1j * q.astype(np.complex128)
    _, _, per_slice = scipy.signal.spectrogram(z, fs, mode="psd", **_welch_arguments(n_fft))
    return np.fft.fftshift(per_slice, axes=0).T


def welch(i: np.ndarray, q: np.ndarray, n_fft: int, fs: float = FS) -> np.ndarray:
    """The file's mean PSD: scipy's welch with docs/physics.md's arguments, fftshifted."""
    z = i.astype(np.complex128) + 1j * q.astype(np.complex128)
    _, power = scipy.signal.welch(z, fs, average="mean", **_welch_arguments(n_fft))
    return np.fft.fftshift(power)


def check_file(
    spectrum: FileSpectrum, i: np.ndarray, q: np.ndarray, n_fft: int, fs: float = FS
) -> np.ndarray:
    """The file spectrum is complete and equals welch and the per-slice std; the slice PSDs."""
    per_slice = slice_spectra(i, q, n_fft, fs)
    where = (spectrum.run_id, spectrum.file_number)
    assert spectrum.complete, (*where, spectrum.count, spectrum.expected_count)
    assert spectrum.count == spectrum.expected_count == per_slice.shape[0] == i.size // n_fft
    np.testing.assert_allclose(spectrum.mean, welch(i, q, n_fft, fs), rtol=1e-5, err_msg=str(where))
    np.testing.assert_allclose(spectrum.std, per_slice.std(axis=0, ddof=1), rtol=1e-5)
    np.testing.assert_allclose(
        spectrum.frequency_hz, spectrum.f_lo + np.fft.fftshift(np.fft.fftfreq(n_fft, 1 / fs))
    )
    return per_slice


class SliceSums:
    """Σx and Σx² over every slice of a run, per bin, in float64: numpy's mean and std of them all.

    Summing keeps memory flat for runs of many files (a file met k times adds k times its
    sums); the mean and sample variance follow exactly as from the concatenated slices.
    """

    def __init__(self) -> None:
        self.n = 0
        self.total: np.ndarray | float = 0.0
        self.squares: np.ndarray | float = 0.0

    def add(self, per_slice: np.ndarray, times: int = 1) -> None:
        self.n += times * per_slice.shape[0]
        self.total = self.total + times * per_slice.sum(axis=0)
        self.squares = self.squares + times * (per_slice**2).sum(axis=0)

    def check(self, run: RunSpectrum) -> None:
        """The run spectrum is the mean of every slice, its sem their std/√N."""
        assert run.slices == self.n
        mean = self.total / self.n
        variance = (self.squares - self.n * mean**2) / (self.n - 1)
        np.testing.assert_allclose(run.mean, mean, rtol=1e-5)
        np.testing.assert_allclose(run.sem, np.sqrt(variance / self.n), rtol=1e-4)
