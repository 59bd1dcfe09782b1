"""The synthetic DAQ: reproducible, with the spectrum and line power it promises."""

import numpy as np
import pytest

from quaxspec.lineshape import TEMPLATE_LEAD, maxwellian_bin_fractions
from quaxspec.psd import frequency_axis
from quaxspec.spectrum import SpectrumKernel
from quaxspec.synthetic import AxionLine, Baseline, SyntheticDaq

N_FFT = 3072
FS = 2e6


def test_seeded_files_are_reproducible_and_independent():
    daq = SyntheticDaq(seed=5, n_samples=N_FFT * 10)
    a1, _ = daq.samples(1)
    a2, _ = daq.samples(1)
    b, _ = daq.samples(2)
    assert a1.dtype == np.float32
    assert a1.shape == (N_FFT * 10,)
    np.testing.assert_array_equal(a1, a2)
    assert abs(np.corrcoef(a1, b)[0, 1]) < 0.05
    assert not np.array_equal(SyntheticDaq(seed=6, n_samples=N_FFT * 10).samples(1)[0], a1)


def test_mean_spectrum_follows_the_promised_psd():
    daq = SyntheticDaq(seed=2, n_samples=N_FFT * 2000)
    kernel = SpectrumKernel(n_fft=N_FFT, fs=FS)
    moments = kernel.record_moments(daq.record(0))
    expected = daq.psd(frequency_axis(N_FFT, FS))
    ratio = moments.mean / expected
    band = slice(100, -100)  # the steep anti-alias skirt is smeared by the bin's leakage
    # Each bin averages 2000 exponential powers: ratio − 1 scatters by 1/sqrt(2000).
    assert np.std(ratio[band] - 1) == pytest.approx(1 / np.sqrt(2000), rel=0.1)
    assert abs(np.mean(ratio[band]) - 1) < 5 / np.sqrt(2000 * ratio[band].size)


def test_injected_line_carries_strength_times_the_noise_of_one_bin():
    bin_width = FS / N_FFT
    onset = 200 * bin_width
    strength = 5.0
    line = SyntheticDaq(
        seed=4, n_samples=N_FFT * 2000, baseline=Baseline.flat(),
        line=AxionLine(frequency_hz=onset, strength=strength),
    )  # fmt: skip
    kernel = SpectrumKernel(n_fft=N_FFT, fs=FS)
    mean = kernel.record_moments(line.record(0)).mean
    floor = line.noise_psd
    start = N_FFT // 2 + 200 - TEMPLATE_LEAD  # the onset is the centre of bin +200
    fractions = maxwellian_bin_fractions(line.line.fwhm_hz / bin_width)
    excess = mean[start : start + fractions.size] / floor - 1
    # Bin by bin the excess is strength × the fraction of the line that the bin sees
    # (noise 1/sqrt(2000) per bin); in all, the line's power is strength × one bin's noise.
    np.testing.assert_allclose(excess, strength * fractions, atol=4 / np.sqrt(2000))
    assert excess.sum() == pytest.approx(strength, rel=0.05)
