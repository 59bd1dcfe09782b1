"""The standard-halo (Maxwellian) axion lineshape, as a density in Hz and as bin fractions.

In the galactic rest frame the axion speeds follow a Maxwell distribution, so the
kinetic-energy excess ν − ν_a of the converted photons follows a Gamma distribution of
shape 3/2 and scale θ = ν_a⟨v²⟩/(3c²):

    g(ν) = 2/√π · √(ν − ν_a) / θ^{3/2} · exp(−(ν − ν_a)/θ),   ν ≥ ν_a.

Its full width at half maximum is 1.7954 θ; for ν_a = 10 GHz that is ≈ 4.85 kHz. Down-
conversion to baseband keeps widths in Hz, so the line keeps its width around f_LO.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.special import gammainc, gammaincinv

__all__ = [
    "FWHM_PER_THETA",
    "DEFAULT_FWHM_HZ",
    "maxwellian_density",
    "maxwellian_bin_fractions",
]

#: FWHM of the Gamma(3/2) lineshape in units of its scale θ.
FWHM_PER_THETA = 1.795403048897774

#: FWHM of the standard-halo line of a 10 GHz axion (⟨v²⟩ = 3/2 · (220 km/s)²).
DEFAULT_FWHM_HZ = 4.85e3

_SHAPE = 1.5
#: Fraction of the line power a template keeps (the rest is a negligible tail).
_TEMPLATE_COVERAGE = 0.999


def maxwellian_density(
    frequency: NDArray[np.float64], *, onset_hz: float, fwhm_hz: float
) -> NDArray[np.float64]:
    """Lineshape density g(ν) in 1/Hz (integrates to 1) for a line starting at ``onset_hz``."""
    theta = fwhm_hz / FWHM_PER_THETA
    x = np.clip((np.asarray(frequency, dtype=np.float64) - onset_hz) / theta, 0.0, None)
    return 2.0 / np.sqrt(np.pi) * np.sqrt(x) * np.exp(-x) / theta


def maxwellian_bin_fractions(fwhm_bins: float, *, onset_offset: float = 0.0) -> NDArray[np.float64]:
    """Fraction of the line power in each bin, for a line starting ``onset_offset`` into bin 0.

    Widths are in bins; the returned template covers 99.9 % of the power and sums to
    that coverage (not renormalised, so an injected strength maps to its excess exactly).
    """
    if fwhm_bins <= 0:
        raise ValueError(f"line width must be positive, got {fwhm_bins} bins")
    if not 0.0 <= onset_offset < 1.0:
        raise ValueError(f"onset offset must lie in [0, 1), got {onset_offset}")
    theta = fwhm_bins / FWHM_PER_THETA
    span = float(gammaincinv(_SHAPE, _TEMPLATE_COVERAGE)) * theta + onset_offset
    edges = np.arange(int(np.ceil(span)) + 1, dtype=np.float64) - onset_offset
    cdf = gammainc(_SHAPE, np.clip(edges, 0.0, None) / theta)
    return np.asarray(np.diff(cdf), dtype=np.float64)

