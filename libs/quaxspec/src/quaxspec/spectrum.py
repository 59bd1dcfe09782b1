"""The spectrum kernel: I/Q slices → batched FFT → power spectral density → per-bin moments.

For a slice z = I + iQ of n_fft samples taken at fs, the two-sided power spectral density
with a boxcar window is

    P_k = |FFT(z)_k|² / (fs · n_fft)   (V²/Hz),

reordered with fftshift so that index n_fft/2 is DC and frequencies run from −fs/2 up.
The mean of P over the slices of a file equals ``scipy.signal.welch`` with
``window='boxcar', nperseg=n_fft, noverlap=0, detrend=False, return_onesided=False,
scaling='density'`` (followed by fftshift). There is no extra √2: the previous
implementation divided by one, which has no physical meaning.

The FFT runs in complex64 through a pyFFTW plan made once per batch shape. Everything
around it is fused into two compiled loops (numba): one that interleaves the I and Q
blocks into the plan's aligned buffer, one that turns the spectra into power and
accumulates shifted float64 sums (shifted by the first slice's power, so that M2 = Σd² −
(Σd)²/k keeps full precision even for a bin holding a steady tone).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

import numba
import numpy as np
import pyfftw
from numpy.typing import NDArray

from quaxspec.daq import DaqRecord
from quaxspec.moments import Moments
from quaxspec.psd import psd_scale

__all__ = ["NonFiniteSamplesError", "SpectrumKernel"]

#: Slices per FFT batch when a whole file is processed in one process.
DEFAULT_BATCH = 64


class NonFiniteSamplesError(ValueError):
    """The samples of a batch contain NaN or ±Inf, so its spectrum is meaningless."""


class SpectrumKernel:
    """Computes per-bin moments of the power spectral density of batches of I/Q slices.

    One instance per process and n_fft: plans are cached per batch size and reused. Not
    safe for concurrent use from several threads (calls are serialised by a lock).
    """

    def __init__(
        self, *, n_fft: int, fs: float, threads: int = 1, planner_effort: str = "FFTW_MEASURE"
    ) -> None:
        if n_fft < 2:
            raise ValueError(f"n_fft must be at least 2, got {n_fft}")
        if not fs > 0:
            raise ValueError(f"fs must be positive, got {fs}")
        self.n_fft = n_fft
        self.fs = fs
        self._scale = psd_scale(n_fft, fs)
        self._threads = threads
        self._effort = planner_effort
        self._plans: dict[int, pyfftw.FFTW] = {}
        self._lock = threading.Lock()

    def moments(self, i: NDArray[np.float32], q: NDArray[np.float32]) -> Moments:
        """Moments of the PSD (V²/Hz, fftshifted) over the slices of the I and Q blocks.

        ``i`` and ``q`` hold k·n_fft samples each (flat or shaped (k, n_fft)).
        """
        i2, q2 = self._as_slices(i), self._as_slices(q)
        k = i2.shape[0]
        mean = np.empty(self.n_fft)
        m2 = np.empty(self.n_fft)
        with self._lock:
            plan = self.plan(k)
            _interleave(i2, q2, plan.input_array)
            plan.execute()
            finite = _moments(plan.output_array, self._scale, mean, m2)
        if not finite:
            raise NonFiniteSamplesError(f"a chunk of {k} slices holds NaN or infinite samples")
        return Moments(np.int64(k), mean, m2)

    def warm(self, batches: Iterable[int]) -> None:
        """Make the plans for these batch sizes and compile the loops now, not on first data.

        The first batch of a size costs ~0.3–0.8 s (FFTW measures its plan; numba loads or
        compiles its loops): paid at start, it does not delay the first file.
        """
        for k in batches:
            zeros = np.zeros((k, self.n_fft), dtype=np.float32)
            self.moments(zeros, zeros)

    def record_moments(self, record: DaqRecord, *, batch: int = DEFAULT_BATCH) -> Moments:
        """Moments over all complete slices of one DAQ record (the remainder is dropped)."""
        if record.layout(self.n_fft).n_slices == 0:
            return Moments.empty(self.n_fft)
        return Moments.merge_all(self.iter_batches(record, batch=batch))

    def iter_batches(self, record: DaqRecord, *, batch: int = DEFAULT_BATCH) -> Iterator[Moments]:
        """Moments of consecutive batches of ``batch`` slices of a record."""
        n_slices = record.layout(self.n_fft).n_slices
        for start in range(0, n_slices, batch):
            i, q = record.slices(self.n_fft, start, min(start + batch, n_slices))
            yield self.moments(i, q)

    def _as_slices(self, samples: NDArray[np.float32]) -> NDArray[np.float32]:
        array = np.asarray(samples)
        if array.dtype != np.float32:
            raise TypeError(f"samples must be float32, got {array.dtype}")
        if array.size == 0 or array.size % self.n_fft:
            raise ValueError(f"{array.size} samples is not a whole number (≥ 1) of {self.n_fft}")
        return array.reshape(-1, self.n_fft)

    def plan(self, k: int) -> pyfftw.FFTW:
        """The in-place FFT plan for batches of ``k`` slices (made on first use, then reused)."""
        plan = self._plans.get(k)
        if plan is None:
            buffer = pyfftw.empty_aligned((k, self.n_fft), dtype=np.complex64)
            plan = pyfftw.FFTW(
                buffer,
                buffer,
                axes=(1,),
                direction="FFTW_FORWARD",
                flags=(self._effort,),
                threads=self._threads,
            )
            self._plans[k] = plan
        return plan


@numba.njit(cache=True, nogil=True)
def _interleave(
    i: NDArray[np.float32], q: NDArray[np.float32], out: NDArray[np.complex64]
) -> None:  # pragma: no cover - compiled
    k, n = i.shape
    for row in range(k):
        for col in range(n):
            out[row, col] = complex(i[row, col], q[row, col])


# No fast-math "nnan/ninf": a NaN sample must reach the sums, where it is detected.
@numba.njit(cache=True, nogil=True, fastmath={"contract", "arcp", "nsz"})
def _moments(
    spectra: NDArray[np.complex64],
    scale: float,
    mean: NDArray[np.float64],
    m2: NDArray[np.float64],
) -> bool:  # pragma: no cover - compiled
    """Fill fftshifted mean and M2 of scale·|spectra|² over the rows; False if not finite."""
    k, n = spectra.shape
    shift = np.empty(n)
    sums = np.zeros(n)
    squares = np.zeros(n)
    for col in range(n):
        v = spectra[0, col]
        shift[col] = np.float64(v.real) * v.real + np.float64(v.imag) * v.imag
    for row in range(k):
        for col in range(n):
            v = spectra[row, col]
            d = np.float64(v.real) * v.real + np.float64(v.imag) * v.imag - shift[col]
            sums[col] += d
            squares[col] += d * d
    finite = True
    half = n // 2
    for col in range(n):
        out = (col + half) % n  # fftshift: DC moves to index n // 2
        centre = shift[col] + sums[col] / k
        finite &= np.isfinite(centre)
        mean[out] = centre * scale
        m2[out] = max(squares[col] - sums[col] * sums[col] / k, 0.0) * scale * scale
    return finite
