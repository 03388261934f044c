"""`cryotrans partition` and partitioned morphs in real ChimeraX 1.7.1 (headless), by command lines."""

import os
import re

import numpy as np
import pytest

from cryotrans_engine import Grid, write_map
from helpers import blob, logged, open_blobs_moving_apart, run

GRID = Grid((20, 20, 20), (2.0, 2.0, 2.0), (10.0, -20.0, 30.0))
RUN = 'cryotrans initial.mrc to target.mrc'     # a run's name: the series', after its two maps
LEFT, RIGHT = (22.0, 0.0, 50.0), (38.0, 0.0, 50.0)     # xyz Å of the two blobs



@pytest.fixture
def scene(tmp_path, session):
    """#1 two blobs; #2 the blobs moved apart; #3 a model with residues 1-3 on the left blob, 4-6 on the right."""
    atoms = [(1 + k, (LEFT[0] + d, 0.0, 50.0)) for k, d in enumerate((-2, 0, 2))] + \
            [(4 + k, (RIGHT[0] + d, 0.0, 50.0)) for k, d in enumerate((-2, 0, 2))]
    open_blobs_moving_apart(session, tmp_path, GRID, LEFT, RIGHT, atoms)
    return tmp_path


def model(session, *model_id):
    return session.models.list(model_id=model_id)[0]


def labels_of(session, *model_id):
    return np.rint(model(session, *model_id).full_matrix()).astype(int)


def test_regions_from_atoms_are_added_one_call_at_a_time_and_colour_the_map(session, scene):
    region_map, text = logged(session, 'cryotrans partition #1 atoms #3:1-3 range 4')
    assert region_map.id == (4,) and not region_map.display
    assert 'region 1 ' in text and 'partition #4' in text
    run(session, 'cryotrans partition #1 atoms #3:4-6 range 4')
    assert len(session.models.list(model_id=(5,))) == 0                 # the same region map, extended
    labels = labels_of(session, 4)
    assert labels.shape == (20, 20, 20) and set(np.unique(labels)) == {0, 1, 2}
    # voxel [10, 10, i] is at x = 10 + 2 i: the left blob's atoms at x 20-24, the right's at 36-40
    assert labels[10, 10, 6] == 1 and labels[10, 10, 14] == 2 and labels[10, 10, 0] == 0
    colours = {tuple(c) for s in model(session, 1).surfaces for c in s.vertex_colors}
    assert len(colours) >= 2                                             # coloured by region


def test_regions_from_masks_an_index_map_and_a_plane(session, scene):
    left = np.zeros(GRID.shape, np.float32)
    left[:, :, :10] = 1
    write_map(scene / 'left.mrc', left, GRID)
    write_map(scene / 'right.mrc', 1 - left, GRID)
    run(session, f'open {scene / "left.mrc"}')          # 4
    run(session, f'open {scene / "right.mrc"}')         # 5
    run(session, 'cryotrans partition #1 masks #4,5')
    labels = labels_of(session, 6)
    assert (labels[:, :, :10] == 1).all() and (labels[:, :, 10:] == 2).all()
    coarse = Grid((10, 10, 10), (4.0, 4.0, 4.0), GRID.origin)           # an index map on another grid,
    index = np.ones(coarse.shape, np.float32)                            # as segger exportmask writes one
    index[:, :, 5:] = 2
    write_map(scene / 'segments.mrc', index, coarse)
    run(session, f'open {scene / "segments.mrc"}')      # 7
    run(session, 'cryotrans partition #1 indexMap #7 new true')
    labels = labels_of(session, 8)
    assert set(np.unique(labels)) == {1, 2} and labels[10, 10, 3] == 1 and labels[10, 10, 16] == 2
    run(session, 'cryotrans partition #1 plane 30,0,50 normal 1,0,0 regionMap #8')
    labels = labels_of(session, 8)
    assert (labels[:, :, :10] == 1).all() and (labels[:, :, 10:] == 2).all()


def test_regions_drawn_with_markers_go_to_the_nearest_marker_and_follow_them(session, scene):
    from chimerax.cryotrans.region_mouse import place_region_marker
    _, text = logged(session, 'cryotrans partition #1 draw 1')
    assert 'drawing region 1 of #1 into marker set #4' in text and 'marker #4 position' in text
    run(session, 'marker #4 position 22,0,50')
    run(session, 'cryotrans partition #1 draw new')                      # region 2: set #5
    volume = model(session, 1)
    place_region_marker(session, volume, 2, np.array([38.0, 0.0, 50.0]))   # what a click does
    labels = labels_of(session, 6)                                         # made by that click
    assert labels[10, 10, 5] == 1 and labels[10, 10, 15] == 2
    run(session, 'marker change #5:1 position 30,0,50')                    # move region 2's marker left
    run(session, 'cryotrans partition #1 markers #4,5')
    moved = labels_of(session, 6)
    assert moved[10, 10, 9] == 2 and labels[10, 10, 9] == 1              # x = 28 Å: now nearer region 2


@pytest.mark.parametrize('command, message', [
    ('cryotrans partition #1', 'give one source of regions'),
    ('cryotrans partition #1 atoms #3:1-3 plane 0,0,0 normal 0,0,1', 'got atoms, plane'),
    ('cryotrans partition #1 atoms #3:99', 'no atoms given'),
    ('cryotrans partition #1 plane 500,0,0 normal 1,0,0', 'does not cut the box'),
    ('cryotrans partition #1 plane 30,0,50', 'needs its normal'),
    ('cryotrans partition #1 plane 11,0,50 normal 1,0,0', 'region 1 holds no density'),
    ('cryotrans partition #1 draw 3', 'draw regions in order'),
])
def test_bad_region_definitions_get_one_clear_error_and_open_nothing(session, scene, command, message):
    from chimerax.core.errors import UserError
    before = len(session.models.list())
    with pytest.raises(UserError, match=message):
        run(session, command)
    assert len(session.models.list()) == before


def test_overlapping_masks_and_markers_outside_the_map_are_refused(session, scene):
    from chimerax.core.errors import UserError
    half = np.zeros(GRID.shape, np.float32)
    half[:, :, :12] = 1
    write_map(scene / 'a.mrc', half, GRID)
    write_map(scene / 'b.mrc', half[:, :, ::-1].copy(), GRID)
    run(session, f'open {scene / "a.mrc"}')
    run(session, f'open {scene / "b.mrc"}')
    with pytest.raises(UserError, match='masks #4 and #5 overlap in'):
        run(session, 'cryotrans partition #1 masks #4,5')
    run(session, 'marker #6 position 22,0,50')
    run(session, 'marker #7 position 900,0,50')
    with pytest.raises(UserError, match='1 marker\\(s\\) of #7 lie outside the box of #1'):
        run(session, 'cryotrans partition #1 markers #6,7')
    far = Grid(GRID.shape, GRID.voxel_size, (900.0, 0.0, 0.0))
    write_map(scene / 'far.mrc', np.ones(GRID.shape, np.float32), far)
    run(session, f'open {scene / "far.mrc"}')
    with pytest.raises(UserError, match='does not overlap'):
        run(session, 'cryotrans partition #1 indexMap #8')


def test_a_partitioned_morph_moves_each_region_its_own_way_and_logs_them(session, scene):
    run(session, 'cryotrans partition #1 plane 30,0,50 normal 1,0,0')     # #4
    series, text = logged(session, 'cryotrans morph #1 to #2 partition #4 rigidity 0.5,1 steps 150 bin 1 '
                                   'frames 4 reportEvery 50')
    assert '2 regions of ' in text and 'rigidity 0.5, 1 (deformation) from #4' in text
    assert 'region 1: rotation' in text and 'region 2: rotation' in text
    last = series.maps[-1].full_matrix()
    first = series.maps[0].full_matrix()
    x = GRID.origin[0] + GRID.voxel_size[0] * np.arange(20)
    left, right = slice(0, 10), slice(10, 20)
    centre = lambda v, part: (v[:, :, part].sum((0, 1)) * x[part]).sum() / v[:, :, part].sum()
    assert centre(last, left) < centre(first, left) - 1.5                # the left blob moved left
    assert centre(last, right) > centre(first, right) + 1.5              # the right blob moved right
    frame = series.maps[-1]
    frame.display = True
    frame.update_drawings()
    colours = {tuple(c) for s in frame.surfaces for c in s.vertex_colors}
    assert len(colours) >= 2                                             # each frame coloured by region



def test_a_model_moved_along_a_partitioned_flow_follows_each_region_with_a_coordset_per_frame(session, scene):
    run(session, 'cryotrans partition #1 atoms #3:1-3')
    run(session, 'cryotrans partition #1 atoms #3:4-6')              # #4
    series, _ = logged(session, 'cryotrans morph #1 to #2 partition #4 steps 150 bin 1 frames 4')
    before = model(session, 3).atoms.scene_coords.copy()
    moved, text = logged(session, f'cryotrans move #3 flow #{series.id_string}')
    assert moved.id_string == '6' and moved.num_coordsets == 5 and moved.active_coordset_id == 5
    assert f'6 atoms of #3 moved along {RUN} as #6 (region 1: 3, region 2: 3 atoms)' in text
    after = moved.atoms.scene_coords
    assert (after[:3, 0] - before[:3, 0]).mean() < -1.5 and (after[3:, 0] - before[3:, 0]).mean() > 1.5
    assert np.allclose(after[:, 1:], before[:, 1:], atol=1.0)
    run(session, 'coordset #6 1')
    assert np.allclose(moved.atoms.scene_coords, before, atol=1e-4)     # frame 0: where the model was
    assert np.allclose(model(session, 3).atoms.scene_coords, before)    # the input is not changed


def test_moving_a_model_is_refused_while_its_run_trains_or_without_a_run(session, scene):
    from chimerax.core.errors import UserError
    with pytest.raises(UserError, match='no cryotrans run in this session'):
        run(session, 'cryotrans move #3')
    with pytest.raises(UserError, match='#1 is not a cryotrans series'):
        run(session, 'cryotrans move #3 flow #1')
    series, _ = logged(session, 'cryotrans morph #1 to #2 steps 100000 wait false')
    try:
        with pytest.raises(UserError, match='still training: wait for it to end, or cryotrans stop'):
            run(session, f'cryotrans move #3 flow #{series.id_string}')
    finally:
        run(session, 'cryotrans stop')
    moved, _ = logged(session, 'cryotrans move #3')        # the only run: its flow as it was stopped
    assert moved.num_coordsets == 11

def test_partitioned_morph_input_errors(session, scene):
    from chimerax.core.errors import UserError
    run(session, 'cryotrans partition #1 plane 30,0,50 normal 1,0,0')     # #4
    with pytest.raises(UserError, match='3 rigidity values for 2 regions'):
        run(session, 'cryotrans morph #1 to #2 partition #4 rigidity 1,2,3 steps 2')
    with pytest.raises(UserError, match='is one of the maps being morphed'):
        run(session, 'cryotrans morph #1 to #2 partition #2 steps 2')
    run(session, f'open {scene / "target.mrc"}')                          # #5: a map, not labels
    with pytest.raises(UserError, match='#5 is not a region map'):
        run(session, 'cryotrans morph #1 to #2 partition #5 steps 2')
    from chimerax.map_series import MapSeries
    assert not session.models.list(type=MapSeries)


def test_a_region_map_is_saved_and_restored_with_the_session(session, scene):
    run(session, 'cryotrans partition #1 atoms #3:1-3 range 4')
    before = labels_of(session, 4)
    run(session, f'save {scene / "regions.cxs"}')
    run(session, 'close session')
    run(session, f'open {scene / "regions.cxs"}')
    assert np.array_equal(labels_of(session, 4), before)
    from chimerax.cryotrans.regions import region_map_of
    assert region_map_of(session, model(session, 1)) is model(session, 4)
    run(session, 'cryotrans partition #1 atoms #3:4-6 range 4')            # extends the restored map
    assert len(session.models.list(model_id=(5,))) == 0 and labels_of(session, 4).max() == 2


def test_a_partitioned_run_in_the_background_stops_keeping_its_frames_and_a_checkpoint_with_the_regions(
        session, scene):
    import time
    from cryotrans_engine import load_checkpoint
    from chimerax.cryotrans.run import runs
    run(session, 'cryotrans partition #1 plane 30,0,50 normal 1,0,0')     # #4
    series, _ = logged(session, f'cryotrans morph #1 to #2 partition #4 steps 100000 frames 3 wait false '
                                f'reportEvery 5 directory {scene / "out"}')
    (job,) = [r for r in runs(session) if r.series is series]
    end = time.monotonic() + 60
    while job.training.step < 12:
        assert job.worker.is_alive() and time.monotonic() < end
        time.sleep(0.002)
    _, text = logged(session, 'cryotrans list')
    assert 'running, step' in text
    _, text = logged(session, 'cryotrans stop')
    assert not job.worker.is_alive() and 'stopped (cryotrans stop)' in text and 'region 2: rotation' in text
    state = load_checkpoint(scene / 'out' / 'flow.pt')
    assert state['regions'].max() == 2 and state['step'] == job.training.step
    assert sorted(p.name for p in (scene / 'out').iterdir()) == (['flow.pt'] + [f'frame_{i:02d}.mrc' for i in range(4)]
                                                                 + ['loss.log', 'open_in_chimerax.py'])


def test_the_mouse_mode_places_markers_where_a_click_meets_the_maps_surface(session, scene):
    from chimerax.cryotrans.region_mouse import RegionMouseMode, picked_map_point
    from chimerax.mouse_modes.mousemodes import MouseEvent
    run(session, 'view')
    volume = model(session, 1)
    volume.update_drawings()
    mode = RegionMouseMode(session)
    before = len(session.models.list())
    mode.mouse_down(MouseEvent(position=(0, 0)))              # before any draw: nothing placed
    assert len(session.models.list()) == before
    w, h = session.main_view.window_size
    hits = [x for x in range(0, w, 4) if picked_map_point(session, x, h // 2)[0] is volume]
    assert hits
    run(session, 'cryotrans partition #1 draw 1')             # marker set #4
    mode.mouse_down(MouseEvent(position=(hits[0], h // 2)))   # the leftmost blob, seen from +z
    run(session, 'cryotrans partition #1 draw new')           # #5
    mode.mouse_down(MouseEvent(position=(hits[-1], h // 2)))  # the rightmost: the region map #6 is made
    first, second = (model(session, i).atoms.scene_coords[0] for i in (4, 5))
    assert first[0] < 30 < second[0]
    labels = labels_of(session, 6)
    assert labels[10, 10, 5] == 1 and labels[10, 10, 15] == 2


def test_two_regions_either_side_of_the_near_clip_plane(session, scene):
    view = session.main_view
    run(session, 'turn y 90')                                  # look along x: the blobs one behind the other
    view.clip_planes.set_clip_position('near', np.array([30.0, 0.0, 50.0]), view)
    run(session, 'cryotrans partition #1 plane clip')
    labels = labels_of(session, 4)
    assert labels[10, 10, 5] != labels[10, 10, 15] and set(np.unique(labels)) == {1, 2}


def test_drawing_with_a_gui_binds_the_bundles_own_mouse_mode_to_the_right_button():
    from chimerax.cryotrans.partition_command import DRAW_BINDING
    from chimerax.cryotrans.region_mouse import RegionMouseMode
    assert DRAW_BINDING == f'mousemode rightMode "{RegionMouseMode.name}"' == 'mousemode rightMode "cryotrans region"'


REAL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'data', 'real')


@pytest.mark.skipif(not os.path.exists(os.path.join(REAL, 'emd_3488.mrc')), reason='make realdata first')
def test_regions_from_atoms_on_a_real_map_with_dust_train_in_bounded_time(session):
    """The real EMD-3488 map at its automatic level has density no atom's region reaches (dust): the
    partition's growth once looped for ever on it; every voxel above level must get a region."""
    for name in ('emd_3488.mrc', 'hb_moved_7A_noise.mrc', '5me2.pdb'):
        run(session, f'open {os.path.join(REAL, name)}')
    run(session, 'cryotrans partition #1 atoms #3/A,B')
    run(session, 'cryotrans partition #1 atoms #3/C,D')
    series, text = logged(session, 'cryotrans morph #1 to #2 resolution 7 partition #4 steps 3 refine 2 frames 2')
    counts = re.search(r'2 regions of (\d+), (\d+) particles', text)
    assert counts and min(int(n) for n in counts.groups()) > 1000, text
    assert len(series.maps) == 3 and 'region 2: rotation' in text


def test_partition_auto_finds_the_two_blobs_moving_apart_shows_them_and_logs_each_body(session, scene):
    region_map, text = logged(session, 'cryotrans partition #1 auto to #2')
    assert region_map.id == (4,) and 'partition auto: 2 bodies' in text
    assert 'body 1: ' in text and 'body 2: ' in text and 'of the mass' in text and 'rotation' in text
    labels = labels_of(session, 4)
    assert labels[10, 10, 6] != labels[10, 10, 14] and set(np.unique(labels)) == {1, 2}   # left blob, right blob
    colours = {tuple(c) for s in model(session, 1).surfaces for c in s.vertex_colors}
    assert len(colours) >= 2
    run(session, 'cryotrans partition #1 auto to #2 count 1 new true')
    assert set(np.unique(labels_of(session, 5))) == {1}


def _partition_run(session):
    from chimerax.cryotrans.partition_run import PartitionRun
    from chimerax.cryotrans.run import background
    found = [t for t in background(session) if isinstance(t, PartitionRun)]
    return found[0] if found else None


def test_partition_auto_in_the_background_shows_the_region_map_a_waiting_one_makes_when_found(session, scene):
    import threading
    found, text = logged(session, 'cryotrans partition #1 auto to #2 wait false')
    task = _partition_run(session)
    assert found is None and task.running and task.worker is not threading.current_thread()
    assert 'the first 625 steps of a morph onto #2' in text and 'cryotrans stop stops it' in text
    _, listed = logged(session, 'cryotrans list')
    assert 'looking for bodies, step ' in listed and '/625' in listed
    assert len(session.models.list(model_id=(4,))) == 0      # nothing shown until the bodies are found
    from chimerax.core.logger import StringPlainTextLog
    with StringPlainTextLog(session.logger) as log:
        task.pump(until_done=True)                            # as a command pumps, or ChimeraX's event loop
    text = log.getvalue()
    assert 'partition auto: 2 bodies' in text and 'body 2: ' in text and '#4 initial.mrc regions: 2 regions' in text
    assert task.region_map is model(session, 4) and _partition_run(session) is None and str(task.state) == 'finished'
    waited, _ = logged(session, 'cryotrans partition #1 auto to #2 wait true new true')
    assert waited.id == (5,) and np.array_equal(labels_of(session, 4), labels_of(session, 5))
    assert labels_of(session, 4)[10, 10, 6] != labels_of(session, 4)[10, 10, 14]


def test_stopping_partition_auto_makes_no_region_map_and_says_so(session, scene):
    import time
    from chimerax.core.logger import StringPlainTextLog
    run(session, 'cryotrans partition #1 auto to #2 wait false')
    task = _partition_run(session)
    end = time.monotonic() + 60
    while task.job.training.step < 3:
        assert task.worker.is_alive() and time.monotonic() < end
        time.sleep(0.002)
    models = len(session.models.list())
    _, text = logged(session, 'cryotrans stop #1')
    assert not task.worker.is_alive() and not task.running and task.region_map is None
    assert 'stopped (cryotrans stop) after ' in text and 'of 625 steps; no region map made' in text
    assert 'no bodies looked for' in text and len(session.models.list()) == models
    _, listed = logged(session, 'cryotrans list')
    assert 'no runs' in listed
    run(session, 'cryotrans partition #1 auto to #2 wait false')
    task = _partition_run(session)
    _, text = logged(session, 'close #2')
    with StringPlainTextLog(session.logger) as log:
        task.pump(until_done=True)
    assert 'stopped (#2 closed) after ' in log.getvalue() and task.region_map is None
    assert not any(m.name == 'initial.mrc regions' for m in session.models.list())


def test_a_morph_with_partition_auto_shows_its_bodies_when_found_mid_run_with_a_steady_total(session, scene):
    from chimerax.cryotrans.run import add_run_handler
    seen = []
    handler = add_run_handler(session, lambda _, e: seen.append(
        (e.kind, e.step, e.total, any(m.name == 'initial.mrc regions' for m in session.models.list()))))
    try:
        series, text = logged(session, 'cryotrans morph #1 to #2 partition auto steps 150 bin 1 frames 3 '
                                        'reportEvery 25')
    finally:
        session.triggers.remove_handler(handler)
    shown = [step for kind, step, _, there in seen if there]
    assert 75 <= shown[0] < 150 and seen[-1][0] == 'ended'                   # shown when found, not at the end
    assert {total for _, _, total, _ in seen} == {150}
    assert ('stage', 75, 150, True) in seen                                  # the regions go on alone
    assert text.index('partition auto: 2 bodies') < text.index('the regions found are #5') < text.index('150 steps in')


def test_a_morph_with_partition_auto_trains_on_the_bodies_it_found_and_shows_them(session, scene):
    series, text = logged(session, 'cryotrans morph #1 to #2 partition auto steps 150 bin 1 frames 4 reportEvery 50')
    assert 'partition auto: 2 bodies' in text and 'region 1: rotation' in text and 'region 2: rotation' in text
    found = [m for m in session.models.list() if m.name == 'initial.mrc regions']
    assert len(found) == 1 and set(np.unique(np.rint(found[0].full_matrix()))) <= {0, 1, 2}
    x = GRID.origin[0] + GRID.voxel_size[0] * np.arange(20)
    last, first = series.maps[-1].full_matrix(), series.maps[0].full_matrix()
    centre = lambda v, part: (v[:, :, part].sum((0, 1)) * x[part]).sum() / v[:, :, part].sum()
    assert centre(last, slice(0, 10)) < centre(first, slice(0, 10)) - 1.5
    assert centre(last, slice(10, 20)) > centre(first, slice(10, 20)) + 1.5


@pytest.mark.parametrize('command, message', [
    ('cryotrans partition #1 auto', 'auto to #N'),
    ('cryotrans partition #1 plane 30,0,50 normal 1,0,0 count 2', 'go with auto'),
    ('cryotrans morph #1 to #2 count 2', 'give partition auto too'),
])
def test_partition_auto_without_its_target_or_count_without_auto_is_refused(session, scene, command, message):
    from chimerax.core.errors import UserError
    with pytest.raises(UserError, match=message):
        run(session, command)
