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
    "TEMPLATE_LEAD",
    "maxwellian_density",
    "maxwellian_bin_fractions",
]

#: FWHM of the Gamma(3/2) lineshape in units of its scale θ.
FWHM_PER_THETA = 1.795403048897774

#: Bins before the onset bin that a template covers (leakage of the boxcar window).
TEMPLATE_LEAD = 2

_SHAPE = 1.5
#: Sub-bin step of the lineshape integration (bins).
_STEP = 0.01
#: Fraction of the line power a template keeps (the rest is a negligible tail).
_TEMPLATE_COVERAGE = 0.999


def maxwellian_density(
    frequency: NDArray[np.float64], *, onset_hz: float, fwhm_hz: float
) -> NDArray[np.float64]:
    """Lineshape density g(ν) in 1/Hz (integrates to 1) for a line starting at ``onset_hz``."""
    theta = fwhm_hz / FWHM_PER_THETA
    x = np.clip((np.asarray(frequency, dtype=np.float64) - onset_hz) / theta, 0.0, None)
    density = 2.0 / np.sqrt(np.pi) * np.sqrt(x) * np.exp(-x) / theta
    return np.asarray(density, dtype=np.float64)


def maxwellian_bin_fractions(fwhm_bins: float, *, onset_offset: float = 0.0) -> NDArray[np.float64]:
    """Fraction of the line power that each FFT bin sees, bins −TEMPLATE_LEAD … end of the line.

    The line starts ``onset_offset`` bins above the centre of bin 0 (−0.5 … 0.5); widths
    are in bins. A bin of a boxcar-windowed FFT sees the spectrum through the Fejér kernel
    sinc²(f/Δf − k), so part of the line leaks into neighbouring bins: with this, a
    7.45-bin line puts at most 0.11 of its power in one bin and |fractions| ≈ 0.267. The
    fractions cover 99.9 % of the line and are not renormalised, so an injected strength
    maps to its expected excess exactly.
    """
    if fwhm_bins <= 0:
        raise ValueError(f"line width must be positive, got {fwhm_bins} bins")
    if not -0.5 <= onset_offset < 0.5:
        raise ValueError(f"onset offset must lie in [-0.5, 0.5), got {onset_offset}")
    theta = fwhm_bins / FWHM_PER_THETA
    span = float(gammaincinv(_SHAPE, _TEMPLATE_COVERAGE)) * theta
    # Exact line power in fine sub-bins, each seen by bin k through sinc²(x − k).
    edges = np.linspace(0.0, span, int(np.ceil(span / _STEP)) + 1)
    mass = np.diff(gammainc(_SHAPE, edges / theta))
    centres = 0.5 * (edges[1:] + edges[:-1]) + onset_offset
    bins = np.arange(-TEMPLATE_LEAD, int(np.ceil(span + onset_offset)) + TEMPLATE_LEAD + 1)
    response = np.sinc(centres[None, :] - bins[:, None]) ** 2
    return np.asarray(response @ mass, dtype=np.float64)
