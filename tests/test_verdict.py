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


def test_a_stopped_run_is_called_unfinished_and_advice_never_asks_for_what_is_in_use():
    from cryotrans_engine.verdict import Verdict
    stopped = Verdict(0.50, 0.60, 7.0, 1.0, (1, 1250)).summary()
    assert '(both at 7 Å). Stopped after 1 of 1250 steps: the flow is unfinished, train it further' in stopped
    assert 'POOR RESULT' not in stopped
    by_rule = Verdict(0.50, 0.60, 7.0, 1.0, None, True).summary()
    assert 'POOR RESULT' in by_rule and 'level0 auto' not in by_rule and "the rule's level0 is in use" in by_rule
    assert 'level0 auto' in Verdict(0.50, 0.60, 7.0, 1.0).summary()
    off = Verdict(0.9, 0.6, 7.0, 0.2, (5, 100)).summary()       # the particles not the molecule: said even stopped
    assert 'POOR RESULT' in off and 'were not the molecule' in off
