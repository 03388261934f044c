"""The end-of-run verdict: prediction against the initial map unmoved, both vs the target."""

import pytest

from cryotrans_engine import Grid
from cryotrans_engine.verdict import judge
from helpers import blob

G = Grid((24, 24, 24), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))


def test_a_prediction_on_the_target_beats_the_initial_map_and_one_off_it_does_not():
    initial, target = blob(G, (18, 24, 24), 3), blob(G, (30, 24, 24), 5)
    good = judge(blob(G, (30, 24, 24), 3), initial, target, G.voxel_size, resolution=8)
    assert good.better and good.prediction > good.initial and 'POOR' not in good.summary()
    poor = judge(blob(G, (16, 24, 24), 3), initial, target, G.voxel_size, resolution=8)
    assert not poor.better and 'POOR RESULT' in poor.summary() and 'both at 8 Å' in poor.summary()


def test_with_the_resolution_both_are_blurred_first():
    initial, target = blob(G, (22, 24, 24), 1.5), blob(G, (26, 24, 24), 5)
    sharp = judge(initial, initial, target, G.voxel_size)
    blurred = judge(initial, initial, target, G.voxel_size, resolution=10)
    assert blurred.initial > sharp.initial + 0.05          # a sharp map fits a blurry one worse
    assert 'as they are' in sharp.summary() and sharp.resolution is None
    assert sharp.prediction == pytest.approx(sharp.initial) and not sharp.better


def test_particles_that_were_not_the_molecule_make_a_poor_result_however_well_they_fit():
    initial, target = blob(G, (18, 24, 24), 3), blob(G, (30, 24, 24), 5)
    fit = judge(blob(G, (30, 24, 24), 3), initial, target, G.voxel_size, resolution=8, coverage=0.15)
    assert fit.prediction > fit.initial and not fit.better
    assert 'encloses 0.15 × the volume' in fit.summary() and 'level0 auto' in fit.summary()
    assert judge(blob(G, (30, 24, 24), 3), initial, target, G.voxel_size, 8, coverage=1.3).better
