"""The automatic level rule (levels.py) on maps whose molecule volume is known."""

import numpy as np
import pytest

from cryotrans_engine import Grid, MapError, placed_target, prepare_pair
from cryotrans_engine.levels import (LevelSpec, choose_levels, components, enclosed_volume, half_height_level,
                                     level_enclosing, level_from, noise_floor, sd_level, without_dust)

VOXEL = (1.0, 1.0, 1.0)


def ball(shape, centre, radius):
    z, y, x = np.indices(shape)
    return (((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2) <= radius ** 2).astype(np.float32)


def blurred(values, sigma):
    """A Gaussian blur in Fourier space (periodic; the test maps have wide empty margins)."""
    k = [np.fft.fftfreq(n) for n in values.shape]
    kz, ky, kx = np.meshgrid(*k, indexing='ij')
    g = np.exp(-2 * (np.pi * sigma) ** 2 * (kx ** 2 + ky ** 2 + kz ** 2))
    return np.fft.ifftn(np.fft.fftn(values) * g).real.astype(np.float32)


def test_components_are_face_connected_pieces():
    m = np.zeros((6, 6, 6), bool)
    m[1, 1, 1:4] = True            # a rod
    m[4, 4, 4] = True              # a point
    m[2, 2, 4] = True              # touches the rod only at an edge: its own piece
    labels, count = components(m)
    assert count == 3
    assert len(set(labels[1, 1, 1:4])) == 1
    assert labels[4, 4, 4] != labels[1, 1, 1] != labels[2, 2, 4]
    assert (labels[~m] == 0).all()


def test_components_follow_a_winding_path():
    m = np.zeros((3, 10, 10), bool)
    m[1, 1, 1:9] = m[1, 1:9, 8] = m[1, 8, 1:9] = m[1, 3:9, 1] = True    # a spiral-ish path
    _, count = components(m)
    assert count == 1


def test_dust_is_left_out_but_the_molecule_kept():
    values = 2 * ball((40, 40, 40), (15, 20, 20), 8)
    values[35, 35, 35] = values[35, 35, 36] = 2.0          # a 2 Å blob: dust at ChimeraX's 5 Å
    kept = without_dust(values > 1, VOXEL)
    assert not kept[35, 35, 35]
    assert kept.sum() == (ball((40, 40, 40), (15, 20, 20), 8) > 0).sum()
    lone = np.zeros((10, 10, 10), bool)
    lone[5, 5, 5] = True
    assert without_dust(lone, VOXEL).sum() == 1             # the largest piece stays, however small


def test_half_height_encloses_a_blurred_ball_s_volume_and_noise_does_not_raise_it():
    truth = ball((64, 64, 64), (32, 32, 32), 12)
    volume = truth.sum()
    target = blurred(truth, 2.5)                          # about a 7 Å map of a 12 Å ball
    level = half_height_level(target, VOXEL)
    assert enclosed_volume(target, level, VOXEL) == pytest.approx(volume, rel=0.08)
    noisy = target + 0.1 * np.random.default_rng(0).standard_normal(target.shape).astype(np.float32)
    noisy_level = half_height_level(noisy, VOXEL)
    assert noisy_level == pytest.approx(level, rel=0.1)
    assert enclosed_volume(noisy, noisy_level, VOXEL) == pytest.approx(volume, rel=0.1)


def test_half_height_stops_at_once_when_its_start_is_above_the_fixed_point(monkeypatch):
    """A noisy map whose 3 σ start already lies above half height (the real-size ribosome's 7 Å
    target): the level stays at the start, found in one pass of dust removal, not 50."""
    from cryotrans_engine import levels
    target = blurred(ball((48, 48, 48), (24, 24, 24), 10), 2.0)
    noisy = target + 0.25 * float(target.max()) * np.random.default_rng(1).standard_normal(target.shape).astype(
        np.float32)
    passes = []
    real = levels.molecule
    monkeypatch.setattr(levels, 'molecule', lambda *a, **k: passes.append(1) or real(*a, **k))
    base, noise = levels.solvent(noisy)
    start = base + max(3 * noise, 0.02 * (float(noisy.max()) - base))
    assert half_height_level(noisy, VOXEL) == pytest.approx(start)
    assert len(passes) == 1
    # the log says where the level came from: not "half way", which it is not here
    assert levels.half_height(noisy, VOXEL)[1].startswith('3 σ above its solvent noise: half way')
    assert levels.half_height(target, VOXEL)[1] == 'half way from solvent to the density it encloses'


def test_half_height_is_read_above_the_solvent():
    target = blurred(ball((48, 48, 48), (24, 24, 24), 10), 2.0)
    assert half_height_level(target + 3.0, VOXEL) == pytest.approx(half_height_level(target, VOXEL) + 3.0, rel=1e-3)


def test_a_flat_map_is_refused_with_its_reason():
    with pytest.raises(MapError, match='flat'):
        half_height_level(np.full((16, 16, 16), 0.5, np.float32), VOXEL)


def test_level_enclosing_a_volume_leaves_dust_out():
    values = blurred(ball((48, 48, 48), (20, 24, 24), 9), 1.0)
    values[40:42, 40:42, 40:42] = 1.0                    # 8 Å³ of dust at full height
    level = level_enclosing(values, 2000.0, VOXEL)
    assert enclosed_volume(values, level, VOXEL) == pytest.approx(2000, abs=60)
    assert (values >= level).sum() > 2000                # the dust is above the level, not counted


def test_initial_level_encloses_what_the_target_encloses_on_another_grid():
    rough = ball((64, 64, 64), (30, 32, 32), 12) * (1 + 0.5 * np.random.default_rng(1).random((64, 64, 64)))
    sharp = blurred(rough, 0.7)                                           # a 2 Å map of it
    target = blurred(ball((32, 32, 32), (16, 16, 16), 6), 1.2)           # same ball, 2 Å voxels
    g0, g1 = Grid(sharp.shape, VOXEL, (0, 0, 0)), Grid(target.shape, (2.0, 2.0, 2.0), (0, 0, 0))
    a = choose_levels(sharp, VOXEL, target, g1.voxel_size, placed_target(target, g1, g0))
    assert a.volume0 == pytest.approx(a.volume1, rel=0.02)
    assert a.volume1 == pytest.approx(4 / 3 * np.pi * 12 ** 3, rel=0.1)


def test_sd_level_means_what_chimerax_sdlevel_means():
    v = np.random.default_rng(2).standard_normal((10, 10, 10)).astype(np.float32) + 5
    assert sd_level(v, 3) == pytest.approx(3 * float(v.std()))          # from zero, not from the mean
    assert level_from(LevelSpec('sd', 3), v, VOXEL) == sd_level(v, 3)
    assert level_from(LevelSpec('value', 0.7), v, VOXEL) == 0.7


def test_prepare_pair_logs_each_level_and_its_volume_and_drops_dust():
    g = Grid((48, 48, 48), VOXEL, (0, 0, 0))
    initial = ball(g.shape, (24, 24, 24), 9)
    initial[2:4, 2:4, 2:4] = 1.0
    target = blurred(ball(g.shape, (26, 24, 24), 9), 2.0)
    lines = []
    pair = prepare_pair(initial, g, target, g, None, LevelSpec('volume', 3000.0), log=lines.append)
    assert pair.initial[2:4, 2:4, 2:4].max() == 0                         # dust makes no particles
    assert any(l.startswith('level1') and 'encloseVolume 3000' in l and 'Å³' in l for l in lines)
    assert any(l.startswith('level0') and "target's volume" in l for l in lines)
    assert (pair.initial > 0).sum() == pytest.approx(3000, rel=0.05)


def test_asking_more_than_the_map_holds_stays_on_the_molecule():
    values = ball((32, 32, 32), (16, 16, 16), 6)          # flat zero solvent
    level = level_enclosing(values, 10 * values.sum(), VOXEL)
    assert level > 0
    assert enclosed_volume(values, level, VOXEL) == values.sum()


@pytest.mark.parametrize('values, words', [
    (np.zeros((12, 12, 12), np.float32), 'constant'),
    (-ball((12, 12, 12), (6, 6, 6), 3), 'no positive density'),
])
def test_a_map_no_level_can_help_says_what_is_wrong_with_it(values, words):
    g = Grid((12, 12, 12), VOXEL, (0, 0, 0))
    good = blurred(ball(g.shape, (6, 6, 6), 3), 1.0)
    with pytest.raises(MapError, match=words):
        prepare_pair(values, g, good, g, log=lambda m: None)
    with pytest.raises(MapError, match=words):
        prepare_pair(good, g, values, g, log=lambda m: None)


def test_a_level_above_the_maximum_names_the_maximum():
    g = Grid((12, 12, 12), VOXEL, (0, 0, 0))
    good = blurred(ball(g.shape, (6, 6, 6), 3), 1.0)
    with pytest.raises(MapError, match=r'no density above level0 5 \(its maximum is 0\.\d+\); lower level0, or use level0 auto'):
        prepare_pair(good, g, good, g, 5.0, None, log=lambda m: None)


def noisy_pair():
    """(grid, a sharp map of a ball with noise σ 0.15, the target: the ball moved 1 Å and blurred, the
    sharp map without noise): a pair where the noise floor decides the initial map's level."""
    g = Grid((48, 48, 48), VOXEL, (0, 0, 0))
    rng = np.random.default_rng(4)
    molecule_map = blurred(ball(g.shape, (24, 24, 24), 9), 0.8)
    noise = blurred(rng.standard_normal(g.shape).astype(np.float32), 0.8)
    noisy = molecule_map + 0.15 * noise / noise.std()
    return g, noisy, blurred(ball(g.shape, (25, 24, 24), 9), 2.5), molecule_map


def test_on_a_noisy_initial_map_the_level_keeps_out_of_the_noise():
    g, noisy, target, molecule_map = noisy_pair()
    lines = []
    pair = prepare_pair(noisy, g, target, g, log=lines.append)
    assert pair.level0 == pytest.approx(2 * 0.15, rel=0.15)          # 2 σ of the noise above its median
    assert any("σ above the initial map's solvent noise" in l for l in lines)
    quiet = prepare_pair(molecule_map, g, target, g, log=lambda m: None)   # no noise: the volume rule as it was
    assert quiet.level0 < pair.level0


def test_the_rule_is_chosen_once_and_its_record_is_what_the_pair_trains_at(monkeypatch):
    """choose_levels is the rule (noise floor and all) and says how each level was chosen; given the
    levels it chose, prepare_pair chooses nothing again and trains and logs at them."""
    from cryotrans_engine import levels
    g, noisy, target, _ = noisy_pair()
    chosen = choose_levels(noisy, VOXEL, target, VOXEL, target)
    assert [m.kind for m in chosen] == ['rule', 'rule']
    assert chosen.initial.how.startswith("2 σ above the initial map's solvent noise; the target's volume (")
    assert chosen.level0 > level_enclosing(noisy, chosen.volume1, VOXEL)     # the floor decided, not the volume
    assert chosen.volume0 == enclosed_volume(noisy, chosen.level0, VOXEL)
    assert chosen.coverage == chosen.volume0 / chosen.volume1
    assert prepare_pair(noisy, g, target, g, log=lambda m: None).levels == chosen
    for rule in ('target_rule', 'initial_rule', 'given_level'):
        monkeypatch.setattr(levels, rule, lambda *a, **k: pytest.fail('a level chosen twice'))
    lines = []
    pair = prepare_pair(noisy, g, target, g, *chosen, log=lines.append)
    assert pair.levels == chosen and (pair.level0, pair.level1) == (chosen.level0, chosen.level1)
    assert lines == [f'level0 {chosen.words(0)}', f'level1 {chosen.words(1)}']
    assert lines[0].startswith(f"level0 {chosen.level0:.4g} (2 σ above the initial map's solvent noise")


def test_a_level_asked_for_says_so_and_the_initial_rule_follows_it():
    g, noisy, target, _ = noisy_pair()
    chosen = choose_levels(noisy, VOXEL, target, VOXEL, target, None, LevelSpec('volume', 2000.0))
    assert chosen.target.kind == 'given' and chosen.target.how == 'encloseVolume 2000'
    assert chosen.volume1 == pytest.approx(2000, rel=0.02)
    assert chosen.initial.kind == 'rule'
    assert chosen.level0 == max(level_enclosing(noisy, chosen.volume1, VOXEL),
                                noise_floor(noisy, VOXEL, target, chosen.level1))


def test_molecule_masks_are_found_once_while_kept_and_maps_are_told_apart_by_identity(monkeypatch):
    """Choosing the levels and thresholding ask for the same masks several times (a second each
    on a 256³ map): within masks_kept each is found once, and nothing outside it is changed."""
    from cryotrans_engine import levels
    target = blurred(ball((40, 40, 40), (20, 20, 20), 8), 2.0)
    passes = []
    real = levels.without_dust
    monkeypatch.setattr(levels, 'without_dust', lambda *a, **k: passes.append(1) or real(*a, **k))
    with levels.masks_kept():
        a = levels.molecule(target, 0.3, VOXEL)
        assert levels.molecule(target, 0.3, VOXEL) is a and len(passes) == 1
        assert not a.flags.writeable                    # shared: nobody may change it
        levels.molecule(target, 0.4, VOXEL)
        levels.molecule(target.copy(), 0.3, VOXEL)      # the same values, another map
        with levels.masks_kept():                       # nested: the outer block's masks
            assert levels.molecule(target, 0.4, VOXEL) is not None
        assert len(passes) == 3
    fresh = levels.molecule(target, 0.3, VOXEL)
    assert len(passes) == 4 and fresh.flags.writeable and np.array_equal(fresh, a)
    g = Grid(target.shape, VOXEL, (0.0,) * 3)
    pair = prepare_pair(target, g, np.roll(target, 3, axis=2), g, log=lambda m: None)
    alone = levels.above_level(target, pair.level0, g.voxel_size)
    assert np.count_nonzero(pair.initial) == np.count_nonzero(alone)
    assert np.allclose(pair.initial * pair.peak, alone, rtol=1e-6, atol=0)
