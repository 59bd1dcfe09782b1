"""A synthetic QUAX DAQ: seeded baseband noise with a realistic baseline and an optional axion line.

The power spectral density of the generated signal is

    S(f) = S₀ · B(f) + s · S₀ · B(f_a) · Δf · g(f − f_a)

where S₀ is the white-noise level (V²/Hz), B the receiver baseline (cavity Lorentzian,
gain ripple, anti-alias roll-off), Δf = fs/n_fft the analysis bin width, g the Maxwellian
lineshape and s the line strength: total line power over the noise power in one bin.
Every component is a Gaussian process (the line too, as a real axion signal is), drawn
directly in the frequency domain and brought to the time domain with one inverse FFT.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import scipy.fft
from numpy.typing import NDArray

from quaxspec.daq import DEFAULT_FS, DEFAULT_N_FFT, DEFAULT_N_SAMPLES, DaqRecord
from quaxspec.findings import DEFAULT_FWHM_HZ
from quaxspec.lineshape import maxwellian_density

__all__ = ["AxionLine", "Baseline", "SyntheticDaq"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AxionLine:
    """An axion-like line injected as extra power spectral density."""

    #: Baseband frequency of the line onset ν_a − f_LO (Hz); the peak lies 0.28 FWHM above it.
    frequency_hz: float
    #: Total line power over the noise power in one analysis bin.
    strength: float
    #: Full width at half maximum of the Maxwellian lineshape (Hz).
    fwhm_hz: float = DEFAULT_FWHM_HZ

    def __post_init__(self) -> None:
        if self.strength < 0 or self.fwhm_hz <= 0:
            raise ValueError("line strength must be ≥ 0 and its width > 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class Baseline:
    """Relative gain of the receiver chain versus baseband frequency (1 = flat)."""

    #: Extra power of the cavity resonance at its peak, relative to the floor.
    cavity_amplitude: float = 0.25
    cavity_center_hz: float = 120e3
    cavity_fwhm_hz: float = 450e3
    #: Peak-to-mean amplitude and period of the gain ripple of the amplifier chain.
    ripple_amplitude: float = 0.02
    ripple_period_hz: float = 900e3
    #: Corner and order of the anti-alias filter (power response 1/(1+(f/fc)^(2·order))).
    rolloff_corner_hz: float = 1.1e6
    rolloff_order: int = 4

    def gain(self, frequency: NDArray[np.float64]) -> NDArray[np.float64]:
        """Relative power gain at the given baseband frequencies."""
        f = np.asarray(frequency, dtype=np.float64)
        half = 0.5 * self.cavity_fwhm_hz
        cavity = 1.0 + self.cavity_amplitude / (1.0 + ((f - self.cavity_center_hz) / half) ** 2)
        ripple = 1.0 + self.ripple_amplitude * np.cos(2.0 * np.pi * f / self.ripple_period_hz)
        rolloff = 1.0 / (1.0 + (f / self.rolloff_corner_hz) ** (2 * self.rolloff_order))
        return np.asarray(cavity * ripple * rolloff, dtype=np.float64)

    @classmethod
    def flat(cls) -> Baseline:
        """A perfectly flat receiver (white noise)."""
        return cls(cavity_amplitude=0.0, ripple_amplitude=0.0, rolloff_corner_hz=np.inf)


@dataclass(frozen=True, slots=True, kw_only=True)
class SyntheticDaq:
    """Generates I/Q sample pairs, one independent seeded realisation per file number."""

    seed: int = 0
    fs: float = DEFAULT_FS
    n_samples: int = DEFAULT_N_SAMPLES
    #: Analysis FFT length that the line strength refers to (bin width fs/n_fft).
    n_fft: int = DEFAULT_N_FFT
    #: White-noise power spectral density S₀ of the complex signal (V²/Hz).
    noise_psd: float = 1e-8
    baseline: Baseline = field(default_factory=Baseline)
    line: AxionLine | None = None
    #: DAQ time (Unix s) at which the run starts; file n is complete n_samples/fs later
    #: than file n − 1 (:meth:`file_time`).
    start_time: float = 1.7e9

    def psd(self, frequency: NDArray[np.float64]) -> NDArray[np.float64]:
        """Expected two-sided power spectral density (V²/Hz) at baseband frequencies."""
        f = np.asarray(frequency, dtype=np.float64)
        s = self.noise_psd * self.baseline.gain(f)
        if self.line is not None and self.line.strength > 0:
            line = self.line
            floor = self.noise_psd * float(self.baseline.gain(np.array([line.frequency_hz]))[0])
            bin_width = self.fs / self.n_fft
            density = maxwellian_density(f, onset_hz=line.frequency_hz, fwhm_hz=line.fwhm_hz)
            s = s + line.strength * floor * bin_width * density
        return np.asarray(s, dtype=np.float64)

    def file_time(self, number: int) -> float:
        """DAQ time (Unix seconds) at which file ``number`` is complete."""
        return self.start_time + (number + 1) * self.n_samples / self.fs

    def samples(self, number: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """The I and Q samples of file ``number`` (float32, n_samples each)."""
        length = scipy.fft.next_fast_len(self.n_samples)
        rng = np.random.default_rng([self.seed, number])
        freq = np.asarray(np.fft.fftfreq(length, d=1.0 / self.fs), dtype=np.float64)
        # A complex Gaussian spectrum with E|Z_k|² = L·fs·S(f_k) gives, after ifft (which
        # divides by L), a time series whose two-sided PSD is S(f).
        amplitude = np.sqrt(self.psd(freq) * self.fs * length / 2.0).astype(np.float32)
        spectrum = rng.standard_normal(2 * length, dtype=np.float32).view(np.complex64)
        spectrum *= amplitude
        z = scipy.fft.ifft(spectrum, overwrite_x=True, workers=-1)[: self.n_samples]
        return np.ascontiguousarray(z.real), np.ascontiguousarray(z.imag)

    def record(self, number: int) -> DaqRecord:
        """File ``number`` as an in-memory DAQ record."""
        i, q = self.samples(number)
        return DaqRecord(
            number=number, i=i, q=q, daq_time=self.file_time(number), source="synthetic"
        )

    def records(self, count: int, *, first: int = 0) -> Iterator[DaqRecord]:
        """``count`` consecutive files starting at ``first``."""
        for number in range(first, first + count):
            yield self.record(number)
