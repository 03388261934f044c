"""Which levels `cryotrans morph` uses in real headless ChimeraX: typed, shown, or the rule."""

import numpy as np
import pytest

from chimerax.core.errors import UserError
from cryotrans_engine import Grid, write_map
from cryotrans_engine.levels import choose_levels, enclosed_volume, level_enclosing
from helpers import Said, logged, run
from test_levels import ball, blurred, noisy_pair

GRID = Grid((40, 40, 40), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
QUICK = 'steps 2 frames 2 bin 1 wait true'


@pytest.fixture
def pair(tmp_path, session):
    """A 2 Å-ish map of a 14 Å ball and a 7 Å-ish map of it moved 6 Å, opened as #1 and #2."""
    rough = ball(GRID.shape, (17, 20, 20), 7) * (1 + 0.5 * np.random.default_rng(0).random(GRID.shape))
    write_map(tmp_path / 'initial.mrc', blurred(rough, 0.5), GRID)
    write_map(tmp_path / 'target.mrc', blurred(ball(GRID.shape, (20, 20, 20), 7), 1.5), GRID)
    run(session, f'open {tmp_path / "initial.mrc"}')
    run(session, f'open {tmp_path / "target.mrc"}')
    maps = [session.models.list(model_id=(i,))[0] for i in (1, 2)]
    values = [np.array(m.full_matrix(), np.float32) for m in maps]
    return maps, values, choose_levels(values[0], GRID.voxel_size, values[1], GRID.voxel_size, values[1])


def test_chimerax_s_untouched_level_is_replaced_by_the_rule_and_the_log_says_so(session, pair):
    maps, values, rule = pair
    shown = maps[0].minimum_surface_level                   # ChimeraX's 1 % of the box
    assert enclosed_volume(values[0], shown, GRID.voxel_size) < rule.volume0 / 2
    _, log = logged(session, f'cryotrans morph #1 to #2 {QUICK}')
    assert f"#1's shown level {shown:.4g} encloses" in log and 'too far off' in log
    assert f'type level0 {shown:.4g} to keep the shown one' in log
    assert f'level0 {rule.level0:.4g} (enclosing the target\'s volume): encloses' in log
    assert "× the initial map's" in log and "× the target's" in log


def test_a_sensible_shown_level_is_used(session, pair):
    maps, values, rule = pair
    run(session, f'volume #1 level {rule.level0 * 1.05:.6g}')
    run(session, f'volume #2 level {rule.level1:.6g}')
    _, log = logged(session, f'cryotrans morph #1 to #2 {QUICK}')
    assert 'too far off' not in log
    assert f'level0 {rule.level0 * 1.05:.4g} (shown in ChimeraX)' in log
    assert 'level1' in log and '(shown in ChimeraX)' in log


def test_a_typed_level_is_never_overridden_only_warned_about(session, pair):
    maps, values, rule = pair
    high = level_enclosing(values[0], rule.volume0 / 3, GRID.voxel_size)
    _, log = logged(session, f'cryotrans morph #1 to #2 level0 {high:.6g} level1 auto {QUICK}')
    assert f"#1's typed level {high:.4g}" in log and 'used as typed' in log
    assert f'level0 {high:.4g} (given)' in log
    assert f'level1 {rule.level1:.4g} (half way' in log


def test_levels_by_enclosed_volume_and_by_sd(session, pair):
    maps, values, rule = pair
    _, log = logged(session, f'cryotrans morph #1 to #2 encloseVolume0 12000 sdLevel1 2 {QUICK}')
    assert '(encloseVolume 12000): encloses 12,' in log
    assert f'level1 {2 * float(values[1].std()):.4g} (sdLevel 2)' in log
    _, log = logged(session, f'cryotrans morph #1 to #2 level0 auto level1 auto {QUICK}')
    assert f'level0 {rule.level0:.4g}' in log and f'level1 {rule.level1:.4g}' in log


def test_two_ways_of_giving_one_level_is_one_clear_error(session, pair):
    with pytest.raises(UserError, match='give one of level0, encloseVolume0 or sdLevel0, not level0 and sdLevel0'):
        run(session, f'cryotrans morph #1 to #2 level0 0.1 sdLevel0 3 {QUICK}')


def test_the_end_of_a_run_and_cryotrans_list_compare_it_with_the_initial_map(session, pair):
    maps, values, rule = pair
    _, log = logged(session, 'cryotrans morph #1 to #2 steps 3 frames 2 bin 1 lr 1e-9 resolution 8 refine 2 '
                             'wait true')
    assert 'correlation with the target: prediction' in log and 'both at 8 Å' in log
    assert 'POOR RESULT' in log                         # nothing learnt at lr 1e-9: no better than unmoved
    _, listed = logged(session, 'cryotrans list')
    assert 'finished' in listed and 'POOR RESULT' in listed


def test_a_run_from_a_sliver_of_the_molecule_is_called_poor(session, pair):
    maps, values, rule = pair
    high = level_enclosing(values[0], rule.volume0 / 4, GRID.voxel_size)
    _, log = logged(session, f'cryotrans morph #1 to #2 level0 {high:.6g} {QUICK}')
    assert 'POOR RESULT' in log and 'so the particles were not the molecule' in log


@pytest.fixture
def noisy(tmp_path, session):
    """test_levels' noisy pair, where the noise floor decides the initial map's level, as #1 and #2."""
    g, initial, target, _ = noisy_pair()
    for name, values in (('initial', initial), ('target', target)):
        write_map(tmp_path / f'{name}.mrc', values, g)
        run(session, f'open {tmp_path / name}.mrc')
    return [session.models.list(model_id=(i,))[0] for i in (1, 2)], (initial, target)


def test_on_a_noisy_map_the_warning_quotes_the_level_training_uses(session, noisy):
    """The rule's level a warning quotes is the one trained at (a second copy of the rule, without
    the noise floor, once quoted another), and morph trains at the levels chosen for the warnings."""
    from chimerax.cryotrans.map_levels import level_choices, morph_pair
    from chimerax.cryotrans.volumes import scene_pair
    maps, _ = noisy
    choices = level_choices(maps, scene_pair(*maps), (None, None))
    initial = choices.levels.initial
    assert initial.kind == 'rule' and initial.how.startswith("2 σ above the initial map's solvent noise")
    assert "#1's shown level" in choices.warnings[0] and 'too far off' in choices.warnings[0]
    assert f"what the rule's level {initial.level:.4g} encloses ({initial.volume:,.0f} Å³)" in choices.warnings[0]
    said = Said()
    assert morph_pair(said, *maps, (None, None)).levels == choices.levels
    assert said.warnings == [w for w in choices.warnings if w]
    _, log = logged(session, f'cryotrans morph #1 to #2 {QUICK}')
    assert choices.warnings[0] in log and f'level0 {choices.levels.words(0)}' in log


def test_the_initial_map_s_rule_follows_the_target_level_used(session, pair):
    """With the target shown at a sensible level other than the rule's, the initial map's rule
    encloses what that level encloses, and that is the level a warning about #1 quotes."""
    from chimerax.cryotrans.map_levels import level_choices
    from chimerax.cryotrans.volumes import scene_pair
    maps, values, rule = pair
    run(session, f'volume #2 level {level_enclosing(values[1], 1.6 * rule.volume1, GRID.voxel_size):.6g}')
    choices = level_choices(maps, scene_pair(*maps), (None, None))       # #1 at ChimeraX's 1 %: off
    assert choices.levels.target.kind == 'shown' and not choices.warnings[1]
    assert choices.levels == choose_levels(values[0], GRID.voxel_size, values[1], GRID.voxel_size, values[1],
                                           None, choices.levels.target)
    assert choices.levels.volume0 == pytest.approx(1.6 * rule.volume0, rel=0.05)
    assert f"the rule's level {choices.levels.level0:.4g} encloses" in choices.warnings[0]
    _, log = logged(session, f'cryotrans morph #1 to #2 {QUICK}')
    assert choices.warnings[0] in log and f'level0 {choices.levels.words(0)}' in log

