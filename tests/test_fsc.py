import numpy as np
import pytest

from cryotrans_engine import FSC, Grid, MapError, compare_maps, correlation, fsc_resolution, map_fsc
from helpers import blob


def lowpass(values, voxel, res):
    f = np.fft.fftn(values)
    k = np.sqrt(sum(np.meshgrid(*[np.fft.fftfreq(n, voxel) ** 2 for n in values.shape], indexing='ij')))
    return np.fft.ifftn(np.where(k <= 1 / res, f, 0)).real


def gaussian_blur(values, voxel, sigma):
    """values blurred by a Gaussian of sigma Å: each Fourier component times exp(-2π²σ²k²)."""
    k2 = sum(np.meshgrid(*[np.fft.fftfreq(n, voxel) ** 2 for n in values.shape], indexing='ij'))
    return np.fft.ifftn(np.fft.fftn(values) * np.exp(-2 * np.pi ** 2 * sigma ** 2 * k2)).real


def test_identical_maps_reach_nyquist_and_say_it_is_a_bound():
    a = np.random.default_rng(0).standard_normal((32, 32, 32))
    fsc = map_fsc(a, a, (1.5, 1.5, 1.5))
    assert np.allclose(fsc.curve, 1) and fsc.correlation == pytest.approx(1)
    assert fsc.resolution(0.5) == pytest.approx(3.0) and fsc.resolution(0.143) == pytest.approx(3.0)
    assert fsc.text(0.5) == '3.00 Å (Nyquist: above 0.5 at every shell)'
    assert fsc_resolution(a, a, (1.5, 1.5, 1.5)) == pytest.approx(3.0)


def test_the_curve_is_data_frequency_resolution_and_fsc_per_shell():
    a = np.random.default_rng(0).standard_normal((20, 24, 32))
    fsc = map_fsc(a, lowpass(a, 2.0, 8.0), (2.0, 2.0, 2.0))
    step = 1 / (32 * 2.0)
    assert np.allclose(fsc.frequency, step * np.arange(len(fsc.frequency)))
    assert fsc.frequency[-1] == pytest.approx(0.25)                     # out to Nyquist
    assert fsc.shell_resolution[0] == np.inf and fsc.shell_resolution[-1] == pytest.approx(4.0)
    assert len(fsc.curve) == len(fsc.frequency)


@pytest.mark.parametrize('shape', [(12, 14, 16), (11, 13, 15)])
def test_each_shell_sums_every_fourier_component_of_it(shape):
    """The same sums over the full transform (fftn), shell by shell, for even and odd boxes."""
    rng = np.random.default_rng(13)
    a, b = rng.standard_normal((2, *shape))
    voxel = (1.2, 1.0, 1.1)
    fa, fb = np.fft.fftn(a), np.fft.fftn(b)
    k = np.sqrt(sum(np.meshgrid(*[np.fft.fftfreq(n, v) ** 2 for n, v in zip(shape, voxel[::-1])],
                                indexing='ij')))
    fsc = map_fsc(a, b, voxel)
    shell = np.floor(k / fsc.frequency[1] + 0.5)
    for i, value in enumerate(fsc.curve):
        on = shell == i
        expected = (fa[on] * fb[on].conj()).real.sum() / np.sqrt((abs(fa[on]) ** 2).sum() * (abs(fb[on]) ** 2).sum())
        assert value == pytest.approx(expected, abs=1e-9), i


@pytest.mark.parametrize('res', [4.0, 6.0, 9.0])
def test_a_map_against_its_own_low_pass_crosses_at_the_cutoff(res):
    voxel = 1.5
    a = np.random.default_rng(1).standard_normal((48, 48, 48))
    shell = 1 / (48 * voxel)
    found = fsc_resolution(a, lowpass(a, voxel, res), (voxel,) * 3)
    assert abs(1 / found - 1 / res) <= shell


@pytest.mark.parametrize('sigma', [1.5, 2.5])
def test_a_map_against_a_blurred_noisy_copy_crosses_where_theory_puts_it(sigma):
    """White signal a, copy b = a blurred by g(k) = exp(-2π²σ²k²) plus white noise of σ_n: FSC(k) =
    g / √(g² + σ_n²), which is 0.5 where g = σ_n/√3 and 0.143 where g = 0.143 σ_n/√(1 − 0.143²)."""
    rng = np.random.default_rng(4)
    voxel, noise = 1.0, 0.05
    a = rng.standard_normal((64, 64, 64))
    b = gaussian_blur(a, voxel, sigma) + noise * rng.standard_normal(a.shape)
    fsc = map_fsc(a, b, (voxel,) * 3)
    shell = 1 / (64 * voxel)
    for cutoff in (0.5, 0.143):
        g = noise * cutoff / np.sqrt(1 - cutoff ** 2)
        expected = np.sqrt(np.log(1 / g) / (2 * np.pi ** 2 * sigma ** 2))
        assert abs(1 / fsc.resolution(cutoff) - expected) <= shell, cutoff


def test_a_mask_judges_only_where_it_weighs():
    """b is a where x < 32 and independent noise beyond: within a soft mask of that half, the maps are
    one map; over the whole box, half of it disagrees."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((48, 48, 64))
    b = np.where(np.arange(64) < 32, a, rng.standard_normal(a.shape))
    x = np.arange(64)
    edge = np.clip((28 - x) / 6, 0, 1)               # 1 up to x = 22, soft down to 0 at x = 28
    mask = np.broadcast_to(0.5 - 0.5 * np.cos(np.pi * edge), a.shape)
    whole, inside = map_fsc(a, b, (1.0,) * 3), map_fsc(a, b, (1.0,) * 3, mask)
    assert inside.masked and not whole.masked
    assert inside.resolution(0.5) == pytest.approx(2.0) and inside.correlation == pytest.approx(1)
    assert whole.correlation == pytest.approx(0.5, abs=0.05) and whole.resolution(0.5) > 2.0
    assert 'within the mask' in inside.summary()


def test_the_correlation_weighs_each_voxel_by_the_mask():
    a = np.random.default_rng(3).random((5, 6, 7))
    assert correlation(a, 2 * a + 1) == pytest.approx(1)
    assert correlation(a, -a) == pytest.approx(-1)
    b = a.copy()
    b[0] = np.random.default_rng(6).random(b[0].shape)
    mask = np.ones(a.shape)
    mask[0] = 0
    assert correlation(a, b) < 0.99 and correlation(a, b, mask) == pytest.approx(1)
    soft = np.random.default_rng(12).random(a.shape)              # the FSC's correlation: the maps as they
    assert map_fsc(a, b, (1.0,) * 3, soft).correlation == pytest.approx(correlation(a, b, soft))   # are, weighed


def test_a_curve_below_the_cutoff_from_the_first_shell_gives_the_box_as_a_bound():
    a = np.random.default_rng(7).standard_normal((16, 16, 16))
    fsc = map_fsc(a, -a, (2.0,) * 3)
    assert fsc.resolution(0.5) == pytest.approx(32.0)            # the box: 1 / the first shell's frequency
    assert fsc.text(0.5) == '> 32.0 Å (below 0.5 from the first shell)'
    assert np.isfinite(fsc.curve).all()


def test_maps_are_compared_where_they_sit():
    """The same blob on two grids of other boxes and origins, whole voxels apart: one map."""
    ga = Grid((20, 20, 20), (2.0,) * 3, (0.0, 0.0, 0.0))
    gb = Grid((30, 26, 24), (2.0,) * 3, (-8.0, -4.0, -6.0))
    a, b = blob(ga, (19, 20, 21)), blob(gb, (19, 20, 21))
    fsc = compare_maps(a, ga, b, gb)
    assert fsc.resolution(0.5) == pytest.approx(4.0) and fsc.correlation == pytest.approx(1, abs=1e-5)
    moved = compare_maps(a, ga, b, gb, transform=[[1, 0, 0, 6], [0, 1, 0, 0], [0, 0, 1, 0]])
    assert moved.correlation < 0.9                    # read 6 Å away: not the same place any more


def test_maps_that_do_not_overlap_are_refused():
    ga = Grid((16, 16, 16), (2.0,) * 3, (0.0, 0.0, 0.0))
    gb = Grid((16, 16, 16), (2.0,) * 3, (100.0, 0.0, 0.0))
    with pytest.raises(MapError, match='b.mrc does not overlap a.mrc where they sit: .*fitmap'):
        compare_maps(blob(ga, (16, 16, 16)), ga, blob(gb, (116, 16, 16)), gb, names=('a.mrc', 'b.mrc', None))


@pytest.mark.parametrize('values, said', [(np.zeros((8, 8, 8)), 'is all zero'),
                                          (np.full((8, 8, 8), 2.5), r'is constant \(every voxel 2.5\)'),
                                          (np.full((8, 8, 1), 1.0), 'must be a 3D grid at least 2 voxels on each side, not 1×8×8'),
                                          (np.pad(np.ones((7, 8, 8)), ((1, 0), (0, 0), (0, 0)),
                                                  constant_values=np.nan), 'has NaN')])
def test_maps_with_nothing_to_correlate_are_refused(values, said):
    a = np.random.default_rng(8).standard_normal((8, 8, 8))
    with pytest.raises(MapError, match=f'the second map {said}'):
        map_fsc(a, values, (1.0,) * 3)


def test_maps_on_different_grids_are_refused_by_map_fsc():
    a, b = np.random.default_rng(11).standard_normal((2, 8, 8, 9))
    with pytest.raises(MapError, match=r'the first map \(9×8×8 voxels\) and the second map \(8×8×9\) lie on '
                                       'different grids: read one at the other'):
        map_fsc(a, b.T, (1.0,) * 3)


@pytest.mark.parametrize('mask, said', [(np.full((8, 8, 8), 2.0), 'runs from 2 to 2, but a mask holds weights'),
                                        (np.zeros((8, 8, 8)), 'is zero everywhere'),
                                        (np.ones((4, 4, 5)), r'\(5×4×4 voxels\) is not on the maps\' grid \(8×8×8\)')])
def test_bad_masks_are_refused(mask, said):
    a, b = np.random.default_rng(9).standard_normal((2, 8, 8, 8))
    with pytest.raises(MapError, match=f'the mask {said}'):
        map_fsc(a, b, (1.0,) * 3, mask)


def test_a_map_constant_where_the_mask_weighs_is_refused():
    a = np.random.default_rng(10).standard_normal((8, 8, 8))
    b = a.copy()
    b[:4] = 1.0
    mask = np.zeros(a.shape)
    mask[:4] = 1
    with pytest.raises(MapError, match='the second map is constant .* where the mask is'):
        map_fsc(a, b, (1.0,) * 3, mask)


def test_the_curve_is_saved_as_csv(tmp_path):
    fsc = FSC(np.array([0.0, 0.1, 0.2]), np.array([1.0, 0.7, 0.2]), 0.9)
    fsc.save_csv(tmp_path / 'c.csv')
    assert (tmp_path / 'c.csv').read_text().splitlines() == [
        'shell,frequency_per_A,resolution_A,fsc', '0,0,inf,1.000000', '1,0.1,10,0.700000', '2,0.2,5,0.200000']
