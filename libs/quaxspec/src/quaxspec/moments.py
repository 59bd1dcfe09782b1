"""Per-bin running statistics of power spectra: count, mean and M2, merged with Chan's formula.

Any subset of slices gives a partial (n, mean, M2); two partials merge exactly, in any
order (Chan, Golub & LeVeque 1979):

    n = n_a + n_b,   δ = mean_b − mean_a,
    mean = mean_a + δ·n_b/n,   M2 = M2_a + M2_b + δ²·n_a·n_b/n.

Means and M2 are float64 and counts int64: a three-week run averages ~10⁹ spectra, and
float32 sums would drift by more than the noise being measured.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import reduce

import numpy as np
from numpy.typing import NDArray

__all__ = ["Moments"]


@dataclass(frozen=True, slots=True, eq=False)
class Moments:
    """Count, mean and sum of squared deviations (M2) of every frequency bin."""

    n: np.int64
    mean: NDArray[np.float64]
    m2: NDArray[np.float64]

    def __post_init__(self) -> None:
        if self.mean.dtype != np.float64 or self.m2.dtype != np.float64:
            raise TypeError("mean and M2 must be float64")
        if self.mean.shape != self.m2.shape or self.mean.ndim != 1:
            raise ValueError(f"mean {self.mean.shape} and M2 {self.m2.shape} must be equal 1-D")
        if self.n < 0:
            raise ValueError(f"count must be ≥ 0, got {self.n}")

    @classmethod
    def empty(cls, n_bins: int) -> Moments:
        """The statistics of no slices (the identity of :meth:`merge`)."""
        return cls(np.int64(0), np.zeros(n_bins), np.zeros(n_bins))

    @classmethod
    def of(cls, samples: NDArray[np.floating]) -> Moments:
        """Statistics of a (slices, bins) array, computed in float64 with two passes."""
        data = np.asarray(samples, dtype=np.float64)
        mean = data.mean(axis=0)
        return cls(np.int64(data.shape[0]), mean, ((data - mean) ** 2).sum(axis=0))

    @classmethod
    def merge_all(cls, parts: Iterable[Moments]) -> Moments:
        """Merge any number of partials (at least one)."""
        return reduce(cls.merge, parts)

    @property
    def n_bins(self) -> int:
        """Number of frequency bins."""
        return int(self.mean.shape[0])

    def merge(self, other: Moments) -> Moments:
        """The statistics of the union of both sets of slices."""
        if other.n_bins != self.n_bins:
            raise ValueError(f"cannot merge {self.n_bins} bins with {other.n_bins} bins")
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        weight = float(other.n) / float(n)
        mean = self.mean + delta * weight
        m2 = self.m2 + other.m2 + delta * delta * (float(self.n) * weight)
        return Moments(np.int64(n), mean, m2)

    @property
    def variance(self) -> NDArray[np.float64]:
        """Unbiased per-bin variance M2/(n−1) (NaN for fewer than two slices)."""
        if self.n < 2:
            return np.full(self.n_bins, np.nan)
        return self.m2 / float(self.n - 1)

    @property
    def std(self) -> NDArray[np.float64]:
        """Per-bin standard deviation of the single-slice spectra."""
        return np.sqrt(self.variance)

    @property
    def sem(self) -> NDArray[np.float64]:
        """Standard error of the mean spectrum, std/√n."""
        return self.std / np.sqrt(float(self.n)) if self.n else np.full(self.n_bins, np.nan)

    @property
    def spectral_kurtosis(self) -> NDArray[np.float64]:
        """Spectral kurtosis (Nita & Gary 2010) from the same moments: 1 for Gaussian noise.

        With S1 = Σp = n·mean and S2 = Σp² = M2 + n·mean², the unbiased estimator
        (n+1)/(n−1)·(n·S2/S1² − 1) reduces to (n+1)/(n−1)·M2/(n·mean²). A steady tone
        pushes it below 1, intermittent interference above 1; its spread is ≈ 2/√n.
        """
        n = float(self.n)
        if n < 2:
            return np.full(self.n_bins, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (n + 1.0) / (n - 1.0) * self.m2 / (n * self.mean * self.mean)
