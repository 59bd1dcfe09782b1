"""The spectra's convention: the frequency of each bin and the scale of |FFT|² to V²/Hz.

Pure numpy, so that services that read or merge spectra (aggregator, API) do not load the
FFT kernel's libraries (pyFFTW, numba: ~100 MB of resident memory).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["frequency_axis", "psd_scale"]


def frequency_axis(n_fft: int, fs: float, f_lo: float = 0.0) -> NDArray[np.float64]:
    """Absolute frequency (Hz) of each fftshifted bin: f_LO + fftshift(fftfreq(n_fft, 1/fs))."""
    return f_lo + np.fft.fftshift(np.fft.fftfreq(n_fft, d=1.0 / fs))


def psd_scale(n_fft: int, fs: float) -> float:
    """Factor from |FFT|² to two-sided power spectral density (V²/Hz), boxcar window."""
    return 1.0 / (fs * n_fft)
