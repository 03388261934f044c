"""Runs in ChimeraX session files, `cryotrans apply`, and the frames' ChimeraX script, in real headless ChimeraX.

A session round trip is `save s.cxs`, `close session`, `open s.cxs`: the run comes back beside its
series, listed as it was, with its flow (no directory needed), and a run saved while it trained comes
back unfinished at the step its frames show.
"""

import time

import numpy as np
import pytest

from cryotrans_engine import Grid, Settings, morph_files, write_map
from helpers import blob, logged, open_blobs_moving_apart, run

GRID = Grid((16, 16, 16), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
RUN = 'cryotrans initial.mrc to target.mrc'     # a run's name: the series', after its two maps
LEFT, RIGHT = (9.0, 15.0, 15.0), (21.0, 15.0, 15.0)      # xyz Å of two blobs



@pytest.fixture
def scene(session, tmp_path):
    """#1 two blobs, #2 the blobs moved apart (levels 0.3, 0.1); #3 a model, residues 1-2 on the left blob,
    3-4 on the right."""
    atoms = [(1, (LEFT[0] - 1, 15, 15)), (2, (LEFT[0] + 1, 15, 15)),
             (3, (RIGHT[0] - 1, 15, 15)), (4, (RIGHT[0] + 1, 15, 15))]
    open_blobs_moving_apart(session, tmp_path, GRID, LEFT, RIGHT, atoms, peak=3, levels=(0.3, 0.1))
    yield tmp_path
    run(session, 'cryotrans stop')         # a failed test leaves no worker training


def model(session, *model_id):
    return session.models.list(model_id=model_id)[0]


def run_of(session, series):
    from chimerax.cryotrans.run import runs
    r, = [r for r in runs(session) if r.series is series]
    return r


def round_trip(session, path):
    """Save the session, close it, open it again; returns what the opening logged."""
    run(session, f'save {path}')
    run(session, 'close session')
    return logged(session, f'open {path}')[1]


def frames_of(series):
    return [m.full_matrix().copy() for m in series.maps]


def test_a_finished_run_comes_back_listed_with_its_flow_which_moves_models_and_trains_on(session, scene):
    import torch
    series = run(session, 'cryotrans morph #1 to #2 steps 6 frames 3 bin 1 seed 3')          # #4, no directory
    listed = logged(session, 'cryotrans list')[1].strip()
    moved = run(session, 'cryotrans move #3 flow #4').atoms.scene_coords.copy()               # #5
    frames = frames_of(series)
    further = run(session, 'cryotrans morph #1 to #2 resume #4 more 2')                       # #6
    weights = run_of(session, further).flow.state['flow']
    text = round_trip(session, scene / 's.cxs')
    assert listed.startswith(f'#4 {RUN}: finished, 6 steps, loss')
    assert f'{listed}; its flow is restored with #4' in text
    assert listed in logged(session, 'cryotrans list')[1].splitlines()
    restored = model(session, 4)
    assert all(np.array_equal(a, b) for a, b in zip(frames_of(restored), frames))
    again = run(session, 'cryotrans move #3 flow #4')                                         # #7
    assert np.allclose(again.atoms.scene_coords, moved, atol=1e-5)
    kept = run_of(session, restored).flow.to_bytes()
    _, text = logged(session, 'cryotrans morph #1 to #2 resume #4 more 2')                    # #8
    assert f'and 2 more, going on from step 6 of {RUN} (#4)' in text
    resumed = run_of(session, model(session, 8)).flow
    assert resumed.steps_trained == 8 and resumed.settings['seed'] == 3 and resumed.frame_count == 3
    assert all(torch.equal(resumed.state['flow'][k], w) for k, w in weights.items())   # as from the live run
    assert run_of(session, restored).flow.to_bytes() == kept     # the restored run's flow is left as it was


def test_a_partitioned_run_comes_back_with_its_regions(session, scene):
    run(session, 'cryotrans partition #1 plane 15,15,15 normal 1,0,0')                    # #4
    series = run(session, 'cryotrans morph #1 to #2 partition #4 steps 20 bin 1 frames 2')  # #5
    regions = run_of(session, series).flow.regions.copy()
    round_trip(session, scene / 's.cxs')
    round_trip(session, scene / 'again.cxs')                  # a restored run is saved again as it came
    flow = run_of(session, model(session, 5)).flow
    assert flow.region_count == 2 and np.array_equal(flow.regions, regions)
    _, text = logged(session, 'cryotrans move #3 flow #5')
    assert f'4 atoms of #3 moved along {RUN} as #6 (region 1: 2, region 2: 2 atoms)' in text


def test_a_run_saved_while_it_trained_comes_back_unfinished_at_the_step_its_frames_show(session, scene):
    series = run(session, 'cryotrans morph #1 to #2 steps 100000 frames 3 bin 1 reportEvery 3 wait false')
    job = run_of(session, series)
    end = time.monotonic() + 60
    while job.training.step < 7:
        assert job.worker.is_alive() and time.monotonic() < end
        time.sleep(0.002)
    run(session, f'save {scene / "s.cxs"}')              # pumps first: the latest refresh is in the file
    step = job.shown_step
    frames = frames_of(series)
    run(session, 'cryotrans stop')
    run(session, 'close session')
    _, text = logged(session, f'open {scene / "s.cxs"}')
    said = f'#4 {RUN}: stopped at step {step} of 100000 when the session was saved: unfinished'
    assert step >= 3 and step % 3 == 0
    assert said in text and 'resume #4' in text
    listed = logged(session, 'cryotrans list')[1]
    assert said in listed and 'finished,' not in listed
    restored = model(session, 4)
    assert all(np.array_equal(a, b) for a, b in zip(frames_of(restored), frames))
    saved = run_of(session, restored)
    assert saved.flow.steps_trained == step and not saved.running
    initial = model(session, 1)
    again = saved.flow.frames(initial.full_matrix(), GRID, 0.3)      # the flow is the one the frames were made by
    assert np.allclose(again[-1], frames[-1], atol=1e-4)
    _, text = logged(session, 'cryotrans move #3 flow #4')
    assert 'its flow is unfinished' in text
    _, text = logged(session, 'cryotrans morph #1 to #2 resume #4 wait false')
    assert f'going on from step {step} of {RUN} (#4)' in text
    run(session, 'cryotrans stop')


def test_apply_moves_another_map_on_the_same_grid_along_a_series_flow_or_a_flow_pt(session, scene):
    out = scene / 'out'
    series = run(session, f'cryotrans morph #1 to #2 steps 6 frames 3 bin 1 directory {out}')       # #4
    frames = frames_of(series)
    level = run_of(session, series).flow.level0
    write_map(scene / 'sharper.mrc', 2 * model(session, 1).full_matrix(), GRID)   # the same map in other units
    run(session, f'open {scene / "sharper.mrc"}')             # #5
    applied, text = logged(session, f'cryotrans apply #4 to #5 level {2 * level}')
    assert f'#5 above level {2 * level:.4g} moved along {RUN} (#4): 4 frames as #6' in text
    assert applied.name == f'{RUN} applied to sharper.mrc'
    assert all(np.allclose(a, 2 * b, atol=1e-4) for a, b in zip(frames_of(applied), frames))
    assert [s.level for s in applied.maps[0].surfaces] == [pytest.approx(2 * level)]
    from_file = run(session, f'cryotrans apply {out / "flow.pt"} to #1 level {level}')
    assert all(np.allclose(a, b, atol=1e-4) for a, b in zip(frames_of(from_file), frames))


def test_apply_refuses_a_map_on_another_grid_unless_asked_to_resample_it(session, scene):
    from chimerax.core.errors import UserError
    run(session, 'cryotrans morph #1 to #2 steps 4 frames 2 bin 1')                 # #4
    coarse = Grid((10, 10, 10), (4.0, 4.0, 4.0), (-4.0, -4.0, -4.0))               # a larger box
    write_map(scene / 'coarse.mrc', 3 * (blob(coarse, LEFT, 3.0) + blob(coarse, RIGHT, 3.0)), coarse)
    run(session, f'open {scene / "coarse.mrc"}')                                    # #5
    with pytest.raises(UserError, match=rf'#5 is not on the grid {RUN} \(#4\) was trained on .*'
                                        r'give resample true'):
        run(session, 'cryotrans apply #4 to #5 level 0.3')
    applied, text = logged(session, 'cryotrans apply #4 to #5 level 0.3 resample true')
    assert '#5 resampled onto the flow\'s grid first: (16, 16, 16) voxels of 2 Å' in text
    first = applied.maps[0]
    assert tuple(first.data.size) == (16, 16, 16) and tuple(first.data.step) == (2.0, 2.0, 2.0)
    assert tuple(first.data.origin) == (0.0, 0.0, 0.0)
    with pytest.raises(UserError, match='#1 is not a cryotrans series of this session'):
        run(session, 'cryotrans apply #1 to #5')


def test_a_folder_held_by_a_run_whose_series_was_closed_names_it(session, scene):
    from chimerax.core.errors import UserError
    out = scene / 'out'
    series = run(session, f'cryotrans morph #1 to #2 steps 100000 bin 1 wait false directory {out}')
    job = run_of(session, series)
    run(session, 'close #4')            # stops the run; its end is applied when a command pumps
    with pytest.raises(UserError, match=rf'is where {RUN} \(closed #4\), still training, writes its '
                                        r'frames and flow.pt: choose another directory, or cryotrans stop first'):
        run(session, f'cryotrans morph #1 to #2 steps 2 directory {out}')
    run(session, 'cryotrans stop')
    assert not job.worker.is_alive()


def test_the_frames_folder_has_a_script_that_opens_them_as_one_series_at_the_runs_level(session, tmp_path):
    from chimerax.map_series import MapSeries
    write_map(tmp_path / 'a.mrc', 3 * blob(GRID, LEFT, 3.0), GRID)
    write_map(tmp_path / 'b.mrc', blob(GRID, (LEFT[0] + 4, *LEFT[1:]), 3.0), GRID)
    out = tmp_path / 'morph out'
    result = morph_files(tmp_path / 'a.mrc', tmp_path / 'b.mrc', Settings(steps=4, bin=1, frames=2), out,
                         level0=0.45, level1=0.1, log=lambda *_: None)
    assert str(out / 'open_in_chimerax.py') in result.files
    run(session, f'open {tmp_path / "a.mrc"}')                  # #1: the series is not the first model
    run(session, 'volume #1 level 0.2')
    run(session, f'open "{out / "open_in_chimerax.py"}"')
    series, = session.models.list(type=MapSeries)
    assert series.id_string == '2' and len(series.maps) == len(result.frames)
    for m, values in zip(series.maps, result.frames):
        assert np.allclose(m.full_matrix(), values)
    assert all([s.level for s in m.surfaces] == [0.45] for m in series.maps)
    assert [s.level for s in model(session, 1).surfaces] == [0.2]
