"""The spectrum kernel against scipy.signal.welch and spectrogram (docs/physics.md)."""

from pathlib import Path

import numpy as np
import pytest
import scipy.signal

from quaxspec.daq import read_pair, write_pair
from quaxspec.psd import frequency_axis
from quaxspec.spectrum import NonFiniteSamplesError, SpectrumKernel
from quaxspec.synthetic import AxionLine, SyntheticDaq

FS = 2.0e6
WELCH = {
    "window": "boxcar",
    "noverlap": 0,
    "detrend": False,
    "return_onesided": False,
    "scaling": "density",
}


def _file(tmp_path: Path, n_fft: int, n_samples: int, seed: int = 3):
    daq = SyntheticDaq(
        seed=seed, n_samples=n_samples, n_fft=n_fft, line=AxionLine(frequency_hz=1.5e5, strength=3)
    )
    i, q = daq.samples(0)
    return read_pair(write_pair(tmp_path, 0, i, q))


@pytest.mark.parametrize(
    ("n_fft", "n_samples"),
    [(3072, 3072 * 300), (2048, 2048 * 400), (3072, 3072 * 250 + 2048)],
    ids=["3072", "2048", "3072-with-remainder"],
)
def test_file_mean_equals_welch_and_std_equals_per_slice_std(tmp_path, n_fft, n_samples):
    record = _file(tmp_path, n_fft, n_samples)
    kernel = SpectrumKernel(n_fft=n_fft, fs=FS)

    moments = kernel.record_moments(record, batch=64)

    n_slices = n_samples // n_fft
    z = record.i.astype(np.complex128) + 1j * record.q.astype(np.complex128)
    z = z[: n_slices * n_fft]  # welch would also drop the remainder; make it explicit
    _, welch = scipy.signal.welch(z, FS, nperseg=n_fft, average="mean", **WELCH)
    np.testing.assert_allclose(moments.mean, np.fft.fftshift(welch), rtol=1e-5)
    _, _, per_slice = scipy.signal.spectrogram(z, FS, nperseg=n_fft, mode="psd", **WELCH)
    assert per_slice.shape[1] == n_slices == moments.n
    np.testing.assert_allclose(
        moments.std, np.fft.fftshift(per_slice, axes=0).std(axis=1, ddof=1), rtol=1e-5
    )
    assert moments.mean.dtype == np.float64
    assert moments.m2.dtype == np.float64
    assert isinstance(moments.n, np.int64)


def test_result_does_not_depend_on_batching(tmp_path):
    record = _file(tmp_path, 3072, 3072 * 100)
    kernel = SpectrumKernel(n_fft=3072, fs=FS)
    whole = kernel.record_moments(record, batch=100)
    for batch in (1, 7, 33):
        split = kernel.record_moments(record, batch=batch)
        np.testing.assert_allclose(split.mean, whole.mean, rtol=1e-6)
        np.testing.assert_allclose(split.m2, whole.m2, rtol=1e-5)


def test_dc_is_the_middle_bin_and_a_positive_tone_lands_at_a_positive_frequency():
    n_fft = 3072
    bin_width = FS / n_fft
    t = np.arange(n_fft * 8) / FS
    tone = 0.5 * np.exp(2j * np.pi * (100 * bin_width) * t) + 0.2  # +65.1 kHz tone and a DC offset
    kernel = SpectrumKernel(n_fft=n_fft, fs=FS)

    power = kernel.moments(tone.real.astype(np.float32), tone.imag.astype(np.float32)).mean
    freq = frequency_axis(n_fft, FS)

    assert freq[n_fft // 2] == 0.0
    top_two = np.argsort(power)[-2:]
    assert set(top_two) == {n_fft // 2, n_fft // 2 + 100}
    assert freq[np.argmax(power)] == pytest.approx(100 * bin_width)
    # Parseval: a tone of amplitude a carries a² of power, i.e. a²/bin-width of density.
    assert power[n_fft // 2 + 100] == pytest.approx(0.25 / bin_width, rel=1e-5)


def test_frequency_axis_is_centred_on_the_local_oscillator():
    freq = frequency_axis(3072, FS, f_lo=9.5e9)
    assert freq[1536] == 9.5e9
    assert freq[0] == pytest.approx(9.5e9 - 1e6)
    assert np.diff(freq) == pytest.approx(np.full(3071, FS / 3072))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("row", [0, 2])
def test_non_finite_samples_are_reported_not_averaged(bad, row):
    kernel = SpectrumKernel(n_fft=64, fs=FS)
    i = np.zeros((4, 64), np.float32)
    q = np.zeros((4, 64), np.float32)
    q[row, 10] = bad
    with pytest.raises(NonFiniteSamplesError, match="NaN"):
        kernel.moments(i, q)
    i[row, 10] = q[row, 10] = 0.0  # the kernel is usable again after a bad batch
    assert kernel.moments(i, q).mean.sum() == 0.0


@pytest.mark.parametrize("bad", [np.zeros(100, np.float32), np.zeros(128, np.float64)])
def test_sample_blocks_must_be_whole_float32_slices(bad):
    kernel = SpectrumKernel(n_fft=64, fs=FS)
    with pytest.raises((ValueError, TypeError)):
        kernel.moments(bad, bad)


def test_warming_makes_the_plans_of_the_given_batches_and_leaves_results_unchanged():
    kernel = SpectrumKernel(n_fft=64, fs=1e3, planner_effort="FFTW_ESTIMATE")
    kernel.warm([3, 5])
    assert sorted(kernel._plans) == [3, 5]
    rng = np.random.default_rng(0)
    i, q = rng.standard_normal((2, 3, 64), dtype=np.float32)
    cold = SpectrumKernel(n_fft=64, fs=1e3, planner_effort="FFTW_ESTIMATE").moments(i, q)
    warm = kernel.moments(i, q)
    np.testing.assert_array_equal(warm.mean, cold.mean)
    np.testing.assert_array_equal(warm.m2, cold.m2)
