"""Live analysis of an averaged spectrum: baseline, normalised excess, radiometer check, candidates.

For a spectrum that averages N slices, each bin's mean power P scatters around the
receiver baseline B with relative width 1/√N (the power of complex Gaussian noise is
exponentially distributed, so its standard deviation equals its mean). Hence

- the baseline B is a Savitzky–Golay fit of the spectrum (wide enough to ignore a
  line of a few bins, narrow enough to follow the cavity and the ripple);
- the normalised excess δ = P/B − 1 is expressed in σ as δ·√N;
- the radiometer ratio std(δ)·√N is ≈ 1 when the noise averages down as it should;
- candidates come from δ·√N correlated with the expected lineshape (a matched filter
  normalised so that pure noise keeps σ = 1): an axion line spreads over several bins and
  a single-bin statistic throws most of its power away. The filter output at bin k tests
  a line whose onset ν_a lies in bin k.

Expected significance of a line of strength s (line power over noise power per bin):
the per-bin excess is δ_j = s·f_j, with f_j the fraction of the line in bin j, and the
filter with unit template w = f/|f| returns s·√N·|f| for a line aligned with it. The
baseline is a linear smoother S of the data, so it absorbs a part ε = w·Sw of the line's
response and removes some noise as well: the filtered noise has variance
g² = |(1 − Sᵀ)w|² ≈ 1 − ε (a Savitzky–Golay smoother is a local projection, |Sw|² ≈ w·Sw).
The filter output is divided by g so that noise keeps σ = 1, and a line then scores

    Z ≈ η · |f| · s · √N,   η = (1 − ε)/g ≈ √(1 − ε),

with |f| ≈ 0.267 for a 7.45-bin-wide Maxwellian line seen through the boxcar window's
bin response (lineshape.maxwellian_bin_fractions) and η ≈ 0.77, 0.88, 0.95 for 101-,
201- and 501-bin degree-4 windows. In the best single bin, Z₁ ≈ max_j f_j · s · √N ≈
0.11 · s · √N (0.115 without the window's leakage).
:func:`expected_significance` evaluates Z for the configuration in use.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from scipy.signal import savgol_filter

from quaxspec.findings import AnalysisConfig, Candidate, SpectrumAnalysis
from quaxspec.lineshape import TEMPLATE_LEAD, maxwellian_bin_fractions

__all__ = [
    "analyse",
    "baseline_efficiency",
    "expected_significance",
    "line_template",
]


def line_template(fwhm_bins: float) -> NDArray[np.float64]:
    """Matched-filter weights: the lineshape's bin fractions normalised to unit length."""
    fractions = maxwellian_bin_fractions(fwhm_bins)
    return fractions / np.linalg.norm(fractions)


def analyse(
    mean: NDArray[np.float64],
    n: int,
    *,
    frequency: NDArray[np.float64],
    config: AnalysisConfig | None = None,
) -> SpectrumAnalysis:
    """Baseline, excess, radiometer ratio and candidates of a spectrum averaging ``n`` slices."""
    config = config or AnalysisConfig()
    power = np.asarray(mean, dtype=np.float64)
    if power.ndim != 1 or power.shape != frequency.shape:
        raise ValueError("mean and frequency must be 1-D arrays of equal length")
    if n < 1:
        raise ValueError("the spectrum must average at least one slice")
    # A spectrum narrower than the window gets the widest odd window that fits.
    window = min(config.baseline_window, power.size - 1 - power.size % 2)
    if window <= config.baseline_order:
        raise ValueError(f"{power.size} bins is too few for a degree-{config.baseline_order} fit")
    config = replace(config, baseline_window=window)
    baseline = savgol_filter(power, window, config.baseline_order, mode="interp")
    excess = power / baseline - 1.0
    root_n = np.sqrt(float(n))
    excess_sigma = excess * root_n
    response = _FilterResponse.of(config, bin_width_hz=_bin_width(frequency))
    template = response.template
    # matched[k] tests a line whose onset lies in bin k; the template starts TEMPLATE_LEAD
    # bins before the onset (window leakage).
    matched = np.full(power.size, np.nan)
    if template.size <= power.size:  # else no whole line fits: no matched-filter output
        valid = np.correlate(excess_sigma, template, mode="valid") / response.noise_gain
        matched[TEMPLATE_LEAD : TEMPLATE_LEAD + valid.size] = valid
    peak_offset = int(np.argmax(template)) - TEMPLATE_LEAD
    candidates = [
        Candidate(
            bin=k,
            frequency_hz=float(frequency[k]),
            significance=float(matched[k]),
            excess_sigma=float(excess_sigma[min(k + peak_offset, power.size - 1)]),
        )
        for k in _peaks_above(matched, config.threshold_sigma)
    ]
    return SpectrumAnalysis(
        n=int(n),
        baseline=baseline,
        excess=excess,
        excess_sigma=excess_sigma,
        matched_sigma=matched,
        radiometer_ratio=float(np.std(excess) * root_n),
        candidates=candidates,
    )


def baseline_efficiency(config: AnalysisConfig, *, bin_width_hz: float) -> float:
    """η: the share of a line's matched-filter significance that survives the baseline fit."""
    response = _FilterResponse.of(config, bin_width_hz=bin_width_hz)
    return (1.0 - response.absorbed) / response.noise_gain


def expected_significance(
    strength: float,
    n: int,
    *,
    config: AnalysisConfig | None = None,
    bin_width_hz: float,
    onset_offset: float = 0.0,
) -> float:
    """Expected matched-filter significance of a line of ``strength`` averaged over ``n`` slices.

    ``onset_offset`` is where the line starts relative to the centre of its bin (−0.5 … 0.5);
    the template assumes 0, and the mismatch costs well under 1 %.
    """
    config = config or AnalysisConfig()
    fwhm_bins = config.line_fwhm_hz / bin_width_hz
    template = line_template(fwhm_bins)
    fractions = maxwellian_bin_fractions(fwhm_bins, onset_offset=onset_offset)
    padded = np.concatenate([np.zeros(template.size), fractions, np.zeros(template.size)])
    overlap = float(np.max(np.correlate(padded, template, mode="valid")))
    eta = baseline_efficiency(config, bin_width_hz=bin_width_hz)
    return eta * overlap * strength * float(np.sqrt(n))


@dataclass(frozen=True, slots=True)
class _FilterResponse:
    """The matched-filter template and what the baseline smoother does to it."""

    template: NDArray[np.float64]
    #: ε = w·Sw: the part of a line's filter response that the baseline absorbs.
    absorbed: float
    #: g = |(1 − Sᵀ)w|: the standard deviation of filtered white noise of unit σ.
    noise_gain: float

    @classmethod
    @lru_cache(maxsize=32)
    def of(cls, config: AnalysisConfig, *, bin_width_hz: float) -> _FilterResponse:
        """The response for a configuration (cached: it is the same for every spectrum)."""
        template = line_template(config.line_fwhm_hz / bin_width_hz)
        # The smoother is shift-invariant and symmetric away from the edges: apply it to the
        # template placed in the middle of a long enough stretch of zeros.
        size = 4 * config.baseline_window + template.size
        start = (size - template.size) // 2
        embedded = np.zeros(size)
        embedded[start : start + template.size] = template
        smoothed = savgol_filter(
            embedded, config.baseline_window, config.baseline_order, mode="interp"
        )
        absorbed = float(smoothed[start : start + template.size] @ template)
        noise_gain = float(np.linalg.norm(embedded - smoothed))
        return cls(template, absorbed, noise_gain)


def _bin_width(frequency: NDArray[np.float64]) -> float:
    return float(frequency[1] - frequency[0])


def _peaks_above(values: NDArray[np.float64], threshold: float) -> list[int]:
    """Index of the maximum of every run of consecutive values at or above the threshold."""
    above = np.nan_to_num(values, nan=-np.inf) >= threshold
    if not above.any():
        return []
    edges = np.flatnonzero(np.diff(np.concatenate([[False], above, [False]]).astype(np.int8)))
    return [
        int(start + np.argmax(values[start:stop]))
        for start, stop in zip(edges[::2], edges[1::2], strict=True)
    ]
