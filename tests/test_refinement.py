"""Refinement against the target at its resolution: the filter, the loss, and the stage in training."""

import math

import pytest
import torch

from cryotrans_engine import Grid, SettingsError, Settings, Training, load_checkpoint, prepare_pair, schedule
from cryotrans_engine.objective import Stage
from cryotrans_engine.refinement import Reference, at_resolution, correlation_loss, resolution_filter
from cryotrans_engine.settings import REFINE_STEPS
from helpers import blob, centroid

GRID = Grid((20, 20, 20), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
QUIET = dict(log=lambda message: None)


def test_the_filter_is_molmaps_gaussian_cut_at_the_resolution_along_each_axis():
    shape, voxel, resolution = (10, 12, 16), (1.0, 2.0, 3.0), 7.0     # voxel (x, y, z), shape (z, y, x)
    h = resolution_filter(shape, voxel, resolution).double()
    assert h.shape == (10, 12, 9)
    sigma = 0.225 * resolution

    def expected(k):
        return math.exp(-2 * math.pi ** 2 * sigma ** 2 * k ** 2) if k <= 1 / resolution else 0.0
    assert h[0, 0, 0] == 1
    assert [float(h[0, 0, j]) for j in range(9)] == pytest.approx([expected(j / 16) for j in range(9)], abs=1e-7)
    assert [float(h[0, i, 0]) for i in range(7)] == pytest.approx([expected(i / 24) for i in range(7)], abs=1e-7)
    assert [float(h[i, 0, 0]) for i in range(6)] == pytest.approx([expected(i / 30) for i in range(6)], abs=1e-7)
    assert float(h[9, 0, 0]) == pytest.approx(expected(1 / 30), abs=1e-7)       # negative frequency


def test_blurring_keeps_the_mass_and_leaves_nothing_past_the_resolution():
    values = torch.rand(16, 16, 16, dtype=torch.float64)
    blurred = at_resolution(values, resolution_filter(values.shape, (1.5,) * 3, 6.5).double())
    assert float(blurred.sum()) == pytest.approx(float(values.sum()), rel=1e-12)
    k = torch.fft.fftfreq(16, 1.5, dtype=torch.float64)
    k2 = k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2
    spectrum = torch.fft.fftn(blurred).abs()
    assert float(spectrum[k2 > 1 / 6.5 ** 2].max()) < 1e-10 * float(spectrum.max())
    assert float(spectrum[(k2 > 0) & (k2 < 1 / 50)].min()) > 0


def test_the_correlation_loss_has_the_right_gradient_and_ignores_scale():
    gen = torch.Generator().manual_seed(1)
    prediction = torch.rand(8, 8, 8, dtype=torch.float64, generator=gen, requires_grad=True)
    target = torch.rand(8, 8, 8, dtype=torch.float64, generator=gen)
    transfer = resolution_filter(prediction.shape, (2.0,) * 3, 5.0).double()
    assert torch.autograd.gradcheck(lambda p: correlation_loss(p, target, transfer), (prediction,))
    loss = correlation_loss(prediction, target, transfer).detach()
    sharp = prediction.detach()
    assert float(correlation_loss(3 * sharp + 1, 2 * target - 5, transfer)) == pytest.approx(float(loss))
    assert float(correlation_loss(sharp, at_resolution(sharp, transfer), transfer)) == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize('shape', [(8, 8, 8), (7, 9, 6), (6, 5, 9)])
def test_the_reference_gives_the_correlation_of_the_blurred_prediction_without_blurring_it(shape):
    """Refinement's loss by the target's side blurred once and Parseval equals blurring the
    prediction and correlating, value and gradient, on even and odd grids."""
    gen = torch.Generator().manual_seed(2)
    prediction = torch.rand(shape, dtype=torch.float64, generator=gen) * (torch.rand(shape, generator=gen) > 0.6)
    target = torch.rand(shape, dtype=torch.float64, generator=gen)
    transfer = resolution_filter(shape, (1.5, 1.2, 2.0), 4.5).double()

    def direct(p):
        a = at_resolution(p, transfer)
        a, b = a - a.mean(), target - target.mean()
        return 1 - (a * b).sum() / torch.sqrt((a * a).sum() * (b * b).sum())

    p1, p2 = prediction.clone().requires_grad_(), prediction.clone().requires_grad_()
    want, got = direct(p1), Reference(target, transfer)(p2)
    want.backward()
    got.backward()
    assert got.item() == pytest.approx(want.item(), rel=1e-12)
    assert torch.allclose(p2.grad, p1.grad, rtol=1e-9, atol=1e-14)


def blurred_pair(shift=6.0):
    """A sharp blob, and the target: the same blob moved along x and blurred to 8 Å."""
    sharp = blob(GRID, (16 + shift, 20, 20), sigma=2.0)
    target = at_resolution(torch.from_numpy(sharp), resolution_filter(GRID.shape, GRID.voxel_size, 8.0)).numpy()
    return prepare_pair(blob(GRID, (16, 20, 20), sigma=2.0), GRID, target, GRID, 0.05, 0.05, **QUIET)


def test_refinement_moves_the_sharp_map_onto_a_blurred_target_and_keeps_it_sharp():
    pair = blurred_pair()
    assert pair.target_map.min() < 0       # the target as it is: the cut's ringing is kept
    training = Training(pair, Settings(steps=1, bin=1, resolution=8.0, refine=150))
    assert training.plan == [Stage(1, 1, 'w2'), Stage(1, 150, 'refine')]
    assert training.run()
    assert len(training.losses) == 151
    assert training.losses[-1] < 0.2 * training.losses[1]
    first, last = (f / pair.peak for f in (training.frames()[0], training.frames()[-1]))
    assert centroid(last, GRID)[0] == pytest.approx(22, abs=0.5)
    assert last.max() > 0.6 * first.max()
    assert pair.target.max() < 0.4 * first.max()      # while the target's peak, at the same mass, is low


def test_refinement_fits_a_target_on_another_grid_where_it_lies():
    g1 = Grid((27, 33, 30), (1.5, 1.3, 1.4), (-3.0, 2.0, -1.0))      # other box, voxel size, origin
    sharp = blob(g1, (22, 20, 20), sigma=2.0)
    target = at_resolution(torch.from_numpy(sharp), resolution_filter(g1.shape, g1.voxel_size, 8.0)).numpy()
    pair = prepare_pair(blob(GRID, (16, 20, 20), sigma=2.0), GRID, target, g1, 0.05, 0.05, **QUIET)
    training = Training(pair, Settings(steps=1, bin=1, resolution=8.0, refine=150))
    training.run()
    assert centroid(training.frames()[-1], GRID)[0] == pytest.approx(22, abs=0.5)


def test_refinement_takes_the_full_grid_and_the_loss_keeps_the_coarsest_one():
    assert schedule((64, 64, 64), 500, refine=True) == [(2, 500)]
    assert schedule((128, 100, 128), 600, refine=True) == [(4, 600)]
    assert schedule((256, 256, 256), 1250, refine=True) == [(8, 1250)]
    assert schedule((32, 32, 32), 100, refine=True) == [(1, 100)]
    g = Grid((48, 48, 48), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
    pair = prepare_pair(blob(g, (40, 48, 48)), g, blob(g, (46, 48, 48)), g, 0.05, 0.05, **QUIET)
    assert Training(pair, Settings(steps=10, resolution=6.0)).plan == [Stage(2, 10, 'w2'), Stage(1, REFINE_STEPS, 'refine')]
    assert Training(pair, Settings(steps=10, bin=3, resolution=6.0, refine=5)).plan == [Stage(3, 10, 'w2'), Stage(1, 5, 'refine')]
    assert Training(pair, Settings(steps=10)).plan == [Stage(2, 8, 'w2'), Stage(1, 2, 'w2')]


@pytest.mark.parametrize('stop_at', [3, 5, 8])      # in the first stage, at its end, in refinement
def test_resuming_across_refinement_is_bit_for_bit_the_same(tmp_path, stop_at):
    pair = blurred_pair()
    settings = Settings(steps=5, resolution=8.0, refine=6, seed=2)
    straight = Training(pair, settings)
    straight.run()
    first = Training(pair, settings)
    first.run(stop=lambda: first.step >= stop_at, checkpoint_path=tmp_path / 'flow.pt')
    resumed = Training(pair, settings, load_checkpoint(tmp_path / 'flow.pt'))
    assert resumed.run()
    assert resumed.losses == straight.losses and len(resumed.losses) == 11
    for a, b in zip(resumed.flow.state_dict().values(), straight.flow.state_dict().values()):
        assert torch.equal(a, b)


def test_a_checkpoint_from_before_refinement_existed_still_resumes(tmp_path):
    pair = blurred_pair()
    first = Training(pair, Settings(steps=4))
    first.run(stop=lambda: first.step >= 2, checkpoint_path=tmp_path / 'flow.pt')
    state = load_checkpoint(tmp_path / 'flow.pt')
    for name in ('resolution', 'refine'):
        del state['settings'][name]
    resumed = Training(pair, Settings(steps=4), state)
    assert resumed.run() and resumed.step == 4


def test_refinement_settings_are_checked():
    assert Settings(resolution=5.0).resolved().refine == REFINE_STEPS
    assert Settings().resolved().refine == 0
    assert Settings(resolution=5.0, refine=0).resolved().refine == 0
    with pytest.raises(SettingsError, match='resolution'):
        Settings(refine=10).resolved()
    with pytest.raises(SettingsError, match='resolution'):
        Settings(resolution=-2.0).resolved()
    with pytest.raises(SettingsError, match='refine'):
        Settings(resolution=5.0, refine=-1).resolved()
