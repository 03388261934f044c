import numpy as np
import pytest

from cryotrans_engine import correlation, fsc_curve, fsc_resolution


def lowpass(values, voxel, res):
    f = np.fft.fftn(values)
    k = np.sqrt(sum(np.meshgrid(*[np.fft.fftfreq(n, voxel) ** 2 for n in values.shape], indexing='ij')))
    return np.fft.ifftn(np.where(k <= 1 / res, f, 0)).real


def test_identical_maps_reach_nyquist():
    a = np.random.default_rng(0).standard_normal((32, 32, 32))
    freq, curve = fsc_curve(a, a, (1.5, 1.5, 1.5))
    assert np.allclose(curve, 1)
    assert fsc_resolution(a, a, (1.5, 1.5, 1.5)) == pytest.approx(3.0)


@pytest.mark.parametrize('res', [4.0, 6.0, 9.0])
def test_a_map_against_its_own_low_pass_crosses_at_the_cutoff(res):
    voxel = 1.5
    a = np.random.default_rng(1).standard_normal((48, 48, 48))
    shell = 1 / (48 * voxel)
    found = fsc_resolution(a, lowpass(a, voxel, res), (voxel,) * 3)
    assert abs(1 / found - 1 / res) <= shell


def test_independent_noise_has_no_correlation_past_the_first_shells():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2, 40, 40, 40))
    freq, curve = fsc_curve(a, b, (1.0, 1.0, 1.0))
    assert np.abs(curve[5:]).max() < 0.15
    assert fsc_resolution(a, b, (1.0,) * 3) > 10


def test_correlation_known_values():
    a = np.random.default_rng(3).random((5, 6, 7))
    assert correlation(a, 2 * a + 1) == pytest.approx(1)
    assert correlation(a, -a) == pytest.approx(-1)
