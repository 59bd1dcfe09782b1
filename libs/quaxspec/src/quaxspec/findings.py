"""What the live analysis is asked and what it finds, as plain data (numpy only).

The analysis (quaxspec.analysis, which needs scipy) fills these; the run message
(quaxspec.spectra) carries them, so that a reader of messages never loads the analysis.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = ["DEFAULT_FWHM_HZ", "AnalysisConfig", "Candidate", "SpectrumAnalysis"]

#: FWHM of the standard-halo line of a 10 GHz axion (⟨v²⟩ = 3/2 · (220 km/s)²;
#: quaxspec.lineshape derives it).
DEFAULT_FWHM_HZ = 4.85e3


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalysisConfig:
    """Parameters of the live analysis."""

    #: Savitzky–Golay window (bins, odd) and polynomial degree of the baseline fit.
    baseline_window: int = 201
    baseline_order: int = 4
    #: Candidate threshold on the matched-filter output, in σ (HAYSTAC-style 95 % threshold).
    threshold_sigma: float = 3.455
    #: Expected line width (Hz): the standard-halo width of a 10 GHz axion.
    line_fwhm_hz: float = DEFAULT_FWHM_HZ

    def __post_init__(self) -> None:
        if self.baseline_window % 2 == 0 or self.baseline_window <= self.baseline_order:
            raise ValueError(
                f"baseline window must be odd and above the degree, got {self.baseline_window}"
            )
        if self.line_fwhm_hz <= 0:
            raise ValueError("line width must be positive")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A group of bins whose matched-filter output exceeds the threshold."""

    #: Bin of the line onset that maximises the filter output.
    bin: int
    #: Frequency of that bin (Hz, absolute: f_LO + baseband).
    frequency_hz: float
    #: Matched-filter significance (σ).
    significance: float
    #: Per-bin normalised excess δ·√N at the line's expected peak bin.
    excess_sigma: float


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SpectrumAnalysis:
    """The analysis of one averaged spectrum."""

    n: int
    baseline: NDArray[np.float64]
    #: δ = P/B − 1 per bin.
    excess: NDArray[np.float64]
    #: δ·√N per bin (σ).
    excess_sigma: NDArray[np.float64]
    #: Matched-filter output per onset bin (σ); NaN where a whole line does not fit.
    matched_sigma: NDArray[np.float64]
    #: std(δ)·√N over the spectrum: ≈ 1 when the noise averages down as expected.
    radiometer_ratio: float
    candidates: list[Candidate] = field(default_factory=list)
