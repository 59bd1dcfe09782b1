"""Live analysis: baseline efficiency, matched-filter significance and false-candidate rate."""

import numpy as np
import pytest
from scipy.stats import norm

from quaxspec.analysis import analyse, baseline_efficiency, expected_significance
from quaxspec.findings import AnalysisConfig
from quaxspec.lineshape import maxwellian_bin_fractions
from quaxspec.moments import Moments
from quaxspec.psd import frequency_axis
from quaxspec.spectrum import SpectrumKernel
from quaxspec.synthetic import AxionLine, Baseline, SyntheticDaq

N_FFT = 3072
FS = 2e6
BIN = FS / N_FFT
FILES = 24
FWHM_BINS = 4850 / BIN


@pytest.mark.parametrize(("window", "design"), [(101, 0.77), (201, 0.89), (501, 0.96)])
def test_baseline_efficiency_matches_the_design_figures(window, design):
    eta = baseline_efficiency(AnalysisConfig(baseline_window=window), bin_width_hz=BIN)
    assert eta == pytest.approx(design, abs=0.015)


def test_lineshape_fractions_match_the_design_figures():
    fractions = maxwellian_bin_fractions(FWHM_BINS)
    assert np.linalg.norm(fractions) == pytest.approx(0.267, abs=0.002)
    assert fractions.max() == pytest.approx(0.115, abs=0.006)
    assert fractions.sum() == pytest.approx(1.0, abs=0.015)


def _run(line: AxionLine | None) -> Moments:
    daq = SyntheticDaq(seed=11, line=line)
    kernel = SpectrumKernel(n_fft=N_FFT, fs=FS)
    return Moments.merge_all(kernel.record_moments(record) for record in daq.records(FILES))


@pytest.mark.slow
def test_injected_line_is_a_candidate_at_its_bin_with_the_expected_significance():
    freq = frequency_axis(N_FFT, FS)
    onset_bin = N_FFT // 2 + 412
    onset = freq[onset_bin] + 0.3 * BIN
    run = _run(AxionLine(frequency_hz=onset, strength=0.1))

    result = analyse(run.mean, int(run.n), frequency=freq)

    assert run.n == FILES * 2730
    expected = expected_significance(0.1, int(run.n), bin_width_hz=BIN, onset_offset=0.3)
    # The design's figure for the same statistic: 0.267·η·s·√N.
    assert expected == pytest.approx(0.267 * 0.884 * 0.1 * np.sqrt(run.n), rel=0.02)
    best = max(result.candidates, key=lambda c: c.significance)
    assert abs(best.bin - onset_bin) <= 1
    assert best.frequency_hz == pytest.approx(onset, abs=1.5 * BIN)
    assert abs(best.significance - expected) < 3.0
    assert len(result.candidates) <= 3  # the line, and at most a chance fluctuation or two


@pytest.mark.slow
def test_pure_noise_averages_down_and_gives_no_more_candidates_than_expected():
    freq = frequency_axis(N_FFT, FS)
    run = _run(None)

    result = analyse(run.mean, int(run.n), frequency=freq)

    assert result.radiometer_ratio == pytest.approx(1.0, abs=0.05)
    # The filter output is correlated over ~a line width, so the expected number of
    # candidates is below (bins × one-sided tail); 6 is above its 99.9 % Poisson quantile.
    assert len(result.candidates) <= 6
    assert abs(np.nanmean(result.matched_sigma)) < 0.2


def test_matched_filter_noise_has_unit_sigma_and_a_gaussian_tail():
    # Many cheap noise-only run spectra: a bin averaging N exponential powers is Gamma(N, 1/N)
    # distributed around the receiver baseline.
    rng = np.random.default_rng(3)
    freq = frequency_axis(N_FFT, FS)
    shape = Baseline().gain(freq)
    n = 50_000
    outputs, per_bin, above = [], [], 0
    for _ in range(150):
        spectrum = shape * rng.gamma(n, 1.0 / n, N_FFT)
        result = analyse(spectrum, n, frequency=freq)
        valid = result.matched_sigma[np.isfinite(result.matched_sigma)]
        outputs.append(valid)
        per_bin.append(result.excess_sigma)
        above += len(result.candidates)
    matched = np.concatenate(outputs)
    assert matched.std() == pytest.approx(1.0, abs=0.03)
    assert np.concatenate(per_bin).std() == pytest.approx(1.0, abs=0.02)
    tail = norm.sf(3.455)
    # The fraction of bins above threshold follows the Gaussian tail (within 3 Poisson σ of
    # the bins' worth, counting a line width as one independent trial).
    observed = np.mean(matched >= 3.455)
    width = 8
    assert abs(observed - tail) < 3 * np.sqrt(tail * width / matched.size)
    assert above / 150 <= N_FFT * tail


def test_analysis_rejects_unusable_input():
    freq = frequency_axis(N_FFT, FS)
    with pytest.raises(ValueError, match="too few"):
        analyse(np.ones(4), 10, frequency=freq[:4])
    with pytest.raises(ValueError, match="at least one"):
        analyse(np.ones(N_FFT), 0, frequency=freq)
    with pytest.raises(ValueError, match="odd"):
        AnalysisConfig(baseline_window=200)
