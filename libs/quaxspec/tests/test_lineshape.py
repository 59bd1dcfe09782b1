import numpy as np
from scipy.constants import c

from quaxspec.findings import DEFAULT_FWHM_HZ
from quaxspec.lineshape import FWHM_PER_THETA, maxwellian_density


def test_the_default_line_width_is_the_standard_halo_width_at_10_ghz():
    """θ = ν_a⟨v²⟩/(3c²) with ⟨v²⟩ = 3/2·(220 km/s)², and FWHM = 1.7954 θ = 4834 Hz, which
    the default rounds to 4.85 kHz (0.3 %)."""
    theta = 10e9 * 1.5 * 220e3**2 / (3 * c**2)
    assert abs(DEFAULT_FWHM_HZ / (FWHM_PER_THETA * theta) - 1) < 0.004


def test_the_density_has_the_width_it_is_given():
    frequency = np.linspace(0.0, 40e3, 400_001)
    density = maxwellian_density(frequency, onset_hz=0.0, fwhm_hz=DEFAULT_FWHM_HZ)
    above = frequency[density >= density.max() / 2]
    assert abs((above[-1] - above[0]) / DEFAULT_FWHM_HZ - 1) < 1e-3
    assert abs(np.trapezoid(density, frequency) - 1) < 1e-4
