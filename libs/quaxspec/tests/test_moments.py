"""Chan merging of per-bin moments against numpy's all-at-once statistics."""

import numpy as np
import pytest

from quaxspec.moments import Moments


def _spectra(rng: np.random.Generator, n_slices: int, n_bins: int = 97) -> np.ndarray:
    # Exponential power (Gaussian noise) on a varying baseline, plus one steady-tone bin
    # (mean 1000 times its spread), the hard case for cancellation.
    baseline = rng.uniform(1e-9, 5e-8, n_bins)
    data = rng.exponential(1.0, (n_slices, n_bins)) * baseline
    data[:, 13] = 1e-3 + 1e-6 * rng.standard_normal(n_slices)
    return data


@pytest.mark.parametrize("seed", range(8))
def test_random_partitions_merged_in_random_order_match_numpy(seed):
    rng = np.random.default_rng(seed)
    data = _spectra(rng, n_slices=int(rng.integers(50, 400)))
    cuts = np.sort(rng.choice(np.arange(1, len(data)), size=rng.integers(1, 12), replace=False))
    parts = [Moments.of(chunk) for chunk in np.split(data, cuts)]
    order = rng.permutation(len(parts))

    merged = Moments.merge_all(parts[k] for k in order)

    assert merged.n == len(data)
    assert merged.n.dtype == np.int64
    assert merged.mean.dtype == np.float64
    np.testing.assert_allclose(merged.mean, data.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(merged.variance, data.var(axis=0, ddof=1), rtol=1e-12)


def test_tree_and_sequential_merges_agree_and_empty_is_the_identity():
    rng = np.random.default_rng(42)
    data = _spectra(rng, 256)
    parts = [Moments.of(chunk) for chunk in np.split(data, 16)]
    while len(parts) > 1:  # pairwise tree, as partials meet in the aggregator
        parts = [a.merge(b) for a, b in zip(parts[::2], parts[1::2], strict=True)]
    sequential = Moments.merge_all(
        [Moments.empty(97), *(Moments.of(c) for c in np.split(data, 16))]
    )
    np.testing.assert_allclose(parts[0].mean, sequential.mean, rtol=1e-13)
    np.testing.assert_allclose(parts[0].m2, sequential.m2, rtol=1e-12)
    assert Moments.empty(97).merge(parts[0]) is parts[0]


def test_std_sem_and_spectral_kurtosis():
    rng = np.random.default_rng(1)
    noise = rng.exponential(2.0, (20_000, 64))
    moments = Moments.of(noise)
    np.testing.assert_allclose(moments.std, noise.std(axis=0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(moments.sem, moments.std / np.sqrt(20_000), rtol=1e-15)
    # Gaussian noise: SK = 1 with spread 2/sqrt(n).
    assert abs(moments.spectral_kurtosis.mean() - 1) < 3 * 2 / np.sqrt(20_000 * 64)
    assert moments.spectral_kurtosis.std() == pytest.approx(2 / np.sqrt(20_000), rel=0.2)
    # A steady tone on top of the noise pulls SK well below 1.
    tone = Moments.of(noise + 50.0)
    assert np.all(tone.spectral_kurtosis < 0.1)


def test_statistics_of_fewer_than_two_slices_are_undefined_not_zero():
    one = Moments.of(np.ones((1, 4)))
    assert np.isnan(one.std).all()
    assert np.isnan(one.sem).all()
    with pytest.raises(ValueError, match="cannot merge"):
        one.merge(Moments.empty(5))
