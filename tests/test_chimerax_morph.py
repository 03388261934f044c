"""`cryotrans morph` in real ChimeraX 1.7.1 (headless), driven by command lines.

The bundle is the wheel built by ChimeraX's bundle builder and pip-installed by the
Makefile, found by the toolshed at session start as in the application.
"""

import glob
import os
import subprocess
import sys
import sysconfig
import zipfile

import numpy as np
import pytest

from cryotrans_engine import Grid, read_map, write_map
from helpers import blob, centroid, logged, run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRID = Grid((20, 20, 20), (2.0, 2.0, 2.0), (10.0, -20.0, 30.0))
CENTRE = (30.0, 0.0, 50.0)           # xyz Å: the middle of GRID


@pytest.fixture
def maps(tmp_path):
    """initial.mrc: a blob in the middle; target.mrc: the same blob 6 Å further along x."""
    write_map(tmp_path / 'initial.mrc', 3 * blob(GRID, (CENTRE[0] - 3, *CENTRE[1:])), GRID)
    write_map(tmp_path / 'target.mrc', blob(GRID, (CENTRE[0] + 3, *CENTRE[1:])), GRID)
    write_map(tmp_path / 'same.mrc', 3 * blob(GRID, (CENTRE[0] - 3, *CENTRE[1:])), GRID)
    return tmp_path


def open_pair(session, maps, target='target.mrc'):
    run(session, f'open {maps / "initial.mrc"}')
    run(session, f'open {maps / target}')
    run(session, 'volume #1 level 0.6')
    run(session, 'volume #2 level 0.2')
    return [session.models.list(model_id=(i,))[0] for i in (1, 2)]


def test_the_installed_bundle_brings_its_command_and_help_page(session):
    from chimerax import cryotrans
    from chimerax.core.toolshed import get_help_directories
    assert os.path.dirname(cryotrans.__file__) == os.path.join(
        sysconfig.get_paths()['purelib'], 'chimerax', 'cryotrans')
    bi = session.toolshed.find_bundle('ChimeraX-CryoTRANS', session.logger)
    assert [c.name for c in bi.commands] == ['cryotrans morph', 'cryotrans partition', 'cryotrans move',
                                            'cryotrans apply', 'cryotrans fsc', 'cryotrans stop', 'cryotrans list',
                                            'cryotrans install']
    assert bi.get_path('docs') in get_help_directories()
    for page in ('commands/cryotrans.html', 'cryotrans_method.html', 'tools/cryotrans.html'):
        assert os.path.isfile(os.path.join(bi.get_path('docs'), 'user', page)), page
    wheel, = glob.glob(os.path.join(ROOT, 'dist', 'chimerax_cryotrans-*.whl'))
    assert 'chimerax/cryotrans/docs/user/commands/cryotrans.html' in zipfile.ZipFile(wheel).namelist()


def test_the_engine_imports_without_chimerax_core():
    code = 'import sys, cryotrans_engine; sys.exit("chimerax.core" in sys.modules)'
    subprocess.run([sys.executable, '-c', code], check=True)


def test_morph_opens_the_trajectory_as_a_map_series(session, maps):
    from chimerax.map_series import MapSeries
    v1, v2 = open_pair(session, maps)
    series, log = logged(session, 'cryotrans morph #1 to #2 steps 30 frames 4 wait true')
    assert isinstance(series, MapSeries) and series.id_string == '3'
    assert series.name == 'cryotrans initial.mrc to target.mrc'          # the maps' names: no model number
    assert [m.id_string for m in series.maps] == ['3.1', '3.2', '3.3', '3.4', '3.5']
    assert [m.name for m in series.maps] == ['t=0', 't=0.25', 't=0.5', 't=0.75', 't=1 (prediction)']
    for m in series.maps:
        assert tuple(m.data.size) == (20, 20, 20)
        assert np.allclose(m.data.origin, GRID.origin) and np.allclose(m.data.step, GRID.voxel_size)
        assert [s.level for s in m.surfaces] == [0.6]
    frames = [m.full_matrix() for m in series.maps]
    initial = v1.full_matrix()
    assert np.allclose(frames[0], np.where(initial >= 0.6, initial, 0), atol=1e-4)
    start, end = centroid(frames[0], GRID), centroid(frames[-1], GRID)
    assert end[0] > start[0] + 2 and abs(end[1] - start[1]) < 1
    assert not v1.display and v2.display and series.display
    assert '30 steps' in log and 'final loss' in log and 'correlation with the target: prediction' in log


def test_morph_with_the_targets_resolution_ends_with_refinement(session, maps):
    open_pair(session, maps)
    series, log = logged(session, 'cryotrans morph #1 to #2 steps 4 resolution 8 refine 3 frames 2 wait true')
    assert '4 steps, then 3 steps refining at 8 Å (loss: 1 - correlation) against #2' in log
    assert '7 steps in' in log
    assert '4 steps done' in log and 'now 3 steps refining at 8 Å' in log
    assert 'finished, 7 steps' in logged(session, 'cryotrans list')[1]


def test_frames_play_save_and_come_back_from_a_session_file(session, maps, tmp_path):
    from chimerax.map_series import MapSeries
    open_pair(session, maps)
    series = run(session, f'cryotrans morph #1 to #2 steps 2 frames 3 directory {tmp_path / "out"}')
    assert sorted(os.listdir(tmp_path / 'out')) == (['flow.pt'] + [f'frame_{i:02d}.mrc' for i in range(4)]
                                                    + ['loss.log', 'open_in_chimerax.py'])
    frames = [m.full_matrix().copy() for m in series.maps]
    run(session, 'vseries play #3')
    shown = []
    for _ in range(3):   # headless, nothing redraws: fire the frame trigger by hand
        session.triggers.activate_trigger('new frame', None)
        shown.append([m.display for m in series.maps].index(True))
    run(session, 'vseries stop #3')
    assert shown == [0, 1, 2]
    run(session, f'save {tmp_path / "f.mrc"} models #3.2')
    values, grid = read_map(tmp_path / 'f.mrc')
    assert grid == GRID and np.allclose(values, frames[1])
    run(session, f'save {tmp_path / "s.cxs"}')
    run(session, 'close session')
    run(session, f'open {tmp_path / "s.cxs"}')
    restored, = session.models.list(type=MapSeries)
    assert restored.id_string == '3' and len(restored.maps) == 4
    assert np.allclose(restored.maps[3].full_matrix(), frames[3])


def test_vseries_save_writes_the_whole_trajectory_to_one_file(session, maps, tmp_path):
    open_pair(session, maps)
    series = run(session, 'cryotrans morph #1 to #2 steps 3 frames 3')
    frames = [m.full_matrix().copy() for m in series.maps]
    run(session, f'vseries save #3 {tmp_path / "trajectory.cmap"}')
    run(session, 'close session')
    run(session, f'open {tmp_path / "trajectory.cmap"}')
    maps = sorted((m for m in session.models.list() if hasattr(m, 'full_matrix')), key=lambda m: m.id)
    assert len(maps) == 4
    for m, f in zip(maps, frames):
        assert np.allclose(m.full_matrix(), f)
        assert tuple(m.data.origin) == GRID.origin and tuple(m.data.step) == GRID.voxel_size


def test_a_moved_target_is_morphed_where_it_is_seen(session, maps):
    open_pair(session, maps, target='same.mrc')
    run(session, 'view matrix models #2,1,0,0,8,0,1,0,0,0,0,1,0')
    series = run(session, 'cryotrans morph #1 to #2 steps 30 frames 2 level1 0.6')
    start, end = (centroid(m.full_matrix(), GRID) for m in (series.maps[0], series.maps[-1]))
    assert end[0] > start[0] + 2 and abs(end[1] - start[1]) < 1


def test_the_series_sits_where_the_initial_map_is(session, maps):
    open_pair(session, maps)
    for i in (1, 2):
        run(session, f'view matrix models #{i},1,0,0,5,0,1,0,0,0,0,1,0')
    series = run(session, 'cryotrans morph #1 to #2 steps 1 frames 1 modelId 7')
    assert series.id_string == '7'
    assert np.allclose(series.scene_position.matrix[:, 3], (5, 0, 0))


@pytest.mark.parametrize('command, message', [
    ('cryotrans morph #1 to #1', 'same map'),
    ('cryotrans morph #1 to #2 level0 10', 'lower level0'),
    ('cryotrans morph #1 to #5', 'one map'),
    ('cryotrans morph #1 to #1.1', 'one map'),      # #1.1 is the surface of map #1
    ('cryotrans morph #1', 'to'),
    ('cryotrans morph #1 to #2 frames 0', 'frames'),
    ('cryotrans morph #1 to #2 loss l1', 'loss'),
    ('cryotrans morph #1 to #2 refine 5', 'resolution'),
    ('cryotrans morph #1 to #2 modelId 2', 'already exists'),
    ('cryotrans morph #1 to #2 resolution 1', 'finer than the initial map'),
    ('cryotrans morph #1 to #2 resolution 500', 'larger than the box'),
    ('cryotrans morph #1 to #2 level0 0.1 encloseVolume0 900', 'give one of level0, encloseVolume0 or sdLevel0'),
])
def test_bad_input_is_a_user_error_and_opens_nothing(session, maps, command, message):
    from chimerax.core.errors import UserError
    open_pair(session, maps)
    with pytest.raises(UserError, match=message):
        run(session, command)
    assert [m.id_string for m in session.models.list() if m.parent is session.models.scene_root_model] \
        == ['1', '2']


def test_a_target_outside_the_initial_box_is_a_user_error(session, maps):
    from chimerax.core.errors import UserError
    open_pair(session, maps)
    run(session, 'view matrix models #2,1,0,0,500,0,1,0,0,0,0,1,0')
    with pytest.raises(UserError, match='overlap'):
        run(session, 'cryotrans morph #1 to #2')


def test_the_headless_launcher_runs_commands_and_scripts_and_fails_on_errors(maps):
    launcher = os.path.join(ROOT, 'tools', 'chimerax_run.py')
    (maps / 'stats.cxc').write_text('measure mapstats #1\n')
    ok = subprocess.run([sys.executable, launcher, '--cmd', f'open {maps / "initial.mrc"}', str(maps / 'stats.cxc')],
                        capture_output=True, encoding='utf-8')
    assert ok.returncode == 0 and 'maximum 2.9' in ok.stdout
    bad = subprocess.run([sys.executable, launcher, '--cmd', f'open {maps / "initial.mrc"}',
                          '--cmd', 'cryotrans morph #1 to #1'], capture_output=True, encoding='utf-8')
    assert bad.returncode == 1 and 'same map' in bad.stdout


def test_a_diverging_run_fails_the_command_keeps_its_series_and_is_listed_as_failed(session, maps):
    from chimerax.core.errors import UserError
    open_pair(session, maps)
    with pytest.raises(UserError, match=r'failed after 1 of 20 steps: training diverged at step 2 .*lower lr') as e:
        run(session, 'cryotrans morph #1 to #2 steps 20 lr 1e5 bin 1')
    assert 'no frames written' not in str(e.value) and '#3 keeps the frames of step' in str(e.value)   # no directory
    _, text = logged(session, 'cryotrans list')
    assert '#3 cryotrans initial.mrc to target.mrc: failed after 1/20 steps: training diverged' in text
    with pytest.raises(UserError, match='lr must be a positive number'):
        run(session, 'cryotrans morph #1 to #2 lr inf')


def test_a_script_whose_run_fails_exits_with_an_error(maps):
    launcher = os.path.join(ROOT, 'tools', 'chimerax_run.py')
    result = subprocess.run([sys.executable, launcher, '--cmd', f'open {maps / "initial.mrc"}',
                             '--cmd', f'open {maps / "target.mrc"}', '--cmd', 'volume #1 level 0.6',
                             '--cmd', 'cryotrans morph #1 to #2 steps 20 lr 1e5 bin 1'],
                            capture_output=True, encoding='utf-8')
    assert result.returncode == 1 and 'training diverged' in result.stdout + result.stderr


def test_the_output_folder_is_given_once_by_directory_or_by_saveDir_its_old_name(session, maps, tmp_path):
    from chimerax.core.errors import UserError
    open_pair(session, maps)
    with pytest.raises(UserError, match=r'give the output folder once: directory \(saveDir is its old name\)'):
        run(session, f'cryotrans morph #1 to #2 steps 2 directory {tmp_path / "a"} saveDir {tmp_path / "b"}')
    assert len(session.models.list()) == 2 + 2 and not (tmp_path / 'a').exists() and not (tmp_path / 'b').exists()
    run(session, f'cryotrans morph #1 to #2 steps 2 frames 2 saveDir {tmp_path / "old"}')
    assert 'flow.pt' in os.listdir(tmp_path / 'old')


def test_a_save_dir_that_cannot_hold_results_is_refused_before_anything_opens(session, maps):
    from chimerax.core.errors import UserError
    open_pair(session, maps)
    (maps / 'taken').write_text('x')
    with pytest.raises(UserError, match='is a file, not a folder'):
        run(session, f'cryotrans morph #1 to #2 steps 2 directory {maps / "taken"}')
    assert len([m for m in session.models.list() if m.parent is session.models.scene_root_model]) == 2



def test_a_save_dir_holding_an_input_map_named_like_a_frame_is_refused(session, maps):
    """directory would write over (or remove, as an older run's frame) the file a map was opened from."""
    from chimerax.core.errors import UserError
    import shutil
    out = maps / 'out'
    out.mkdir()
    shutil.copy(maps / 'initial.mrc', out / 'frame_07.mrc')
    run(session, f'open {out / "frame_07.mrc"}')
    run(session, f'open {maps / "target.mrc"}')
    with pytest.raises(UserError, match=r'cryotrans morph: .*frame_07.mrc is one of this command\'s inputs'):
        run(session, f'cryotrans morph #1 to #2 steps 2 frames 3 directory {out}')
    assert sorted(os.listdir(out)) == ['frame_07.mrc']

def test_a_run_goes_on_from_its_checkpoint_with_more_steps(session, maps, tmp_path):
    from chimerax.core.errors import UserError
    from cryotrans_engine.checkpoint import load_checkpoint
    open_pair(session, maps)
    out = tmp_path / 'out'
    run(session, f'cryotrans morph #1 to #2 steps 3 frames 3 seed 4 directory {out}')
    _, text = logged(session, f'cryotrans morph #1 to #2 resume {out / "flow.pt"} more 2 directory {out}')
    assert f'and 2 more, going on from step 3 of {out / "flow.pt"}' in text and 'memory about' in text
    state = load_checkpoint(out / 'flow.pt')
    assert state['step'] == 5 and state['settings']['seed'] == 4 and state['settings']['frames'] == 3
    _, text = logged(session, 'cryotrans list')
    assert '#4 cryotrans initial.mrc to target.mrc: finished, 5 steps' in text
    with pytest.raises(UserError, match=r'more adds steps to a run from its flow: give resume #N \(its series\)'):
        run(session, 'cryotrans morph #1 to #2 more 2')
    with pytest.raises(UserError, match='not a CryoTRANS checkpoint'):
        run(session, f'cryotrans morph #1 to #2 resume {maps / "initial.mrc"}')


def test_a_large_map_moves_fewer_particles_a_step_and_a_coarse_stage_ends_when_it_stops_improving(session,
                                                                                                 tmp_path):
    from chimerax.cryotrans.run import runs
    g = Grid((48, 48, 48), (1.5, 1.5, 1.5), (0.0, 0.0, 0.0))
    write_map(tmp_path / 'a.mrc', blob(g, (33, 36, 36), 5.0), g)
    write_map(tmp_path / 'b.mrc', blob(g, (39, 36, 36), 5.0), g)
    run(session, f'open {tmp_path / "a.mrc"}')
    run(session, f'open {tmp_path / "b.mrc"}')
    run(session, 'volume #1 level 0.05')
    run(session, 'volume #2 level 0.05')
    series, log = logged(session, 'cryotrans morph #1 to #2 steps 500 resolution 6 refine 20 particles 300 frames 2 wait true')
    training = [r for r in runs(session) if r.series is series][0].training
    assert 'at most 300 particles a step' in log
    *stages, polish = training.stage_sizes               # refinement's polish moves up to 4 × as many
    assert all(size.particles <= 300 for size in stages) and polish.particles <= 4 * 300
    assert int((training.pair.initial > 0).sum()) > 300
    ((index, ran, planned),) = training.ended_early
    assert f'w2 on bin 2 ended after {ran} of its {planned} steps: its loss had stopped improving' in log
    assert tuple(series.maps[-1].data.size) == (48, 48, 48)
    x0, x1 = centroid(series.maps[0].full_matrix(), g)[0], centroid(series.maps[-1].full_matrix(), g)[0]
    assert x1 - x0 > 3


def test_two_maps_without_to_say_what_to_type(session, maps):
    from chimerax.core.errors import UserError
    open_pair(session, maps)
    with pytest.raises(UserError, match=r'give the target map after "to": cryotrans morph #1 to #2$'):
        run(session, 'cryotrans morph #1 #2')
    with pytest.raises(UserError, match=r'give the target map after "to": cryotrans morph #1 to #N'):
        run(session, 'cryotrans morph #1')
    with pytest.raises(UserError, match=r'give one initial map, not 2 \(#1 #2\): cryotrans morph #N to #2'):
        run(session, 'cryotrans morph #1,2 to #2')
