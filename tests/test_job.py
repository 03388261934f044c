"""The engine's public surface: a morph as one job (job.py) and the trained flow it leaves (trained.py)."""

import os

import numpy as np
import pytest

from cryotrans_engine import (Grid, MapError, MorphJob, Settings, TrainedFlow, morph, morph_files, prepare_pair,
                              write_map)
from helpers import blob, centroid

GRID = Grid((20, 22, 24), (2.0, 2.0, 2.0), (3.0, -5.0, 1.0))
QUIET = dict(log=lambda message: None)


def two_blobs(grid=GRID):
    """An initial map of two blobs, and a target where the left one moved +x and the right one -y."""
    initial = blob(grid, (16, 14, 20), 3.5) + blob(grid, (36, 30, 20), 3.5)
    target = blob(grid, (22, 14, 20), 3.5) + blob(grid, (36, 24, 20), 3.5)
    return initial, target


def halves(grid=GRID):
    """A region map: region 1 for x < 29 Å, region 2 beyond."""
    x = grid.origin[0] + np.arange(grid.shape[2]) * grid.voxel_size[0]
    return np.broadcast_to(np.where(x < 29, 1, 2), grid.shape).astype(np.float32).copy()


def test_a_job_gives_frames_flow_losses_levels_and_verdict(tmp_path):
    initial, target = two_blobs()
    told = []
    result = morph(initial, GRID, target, GRID, Settings(steps=40, bin=1, frames=4), 0.05, 0.05,
                   progress=told.append, out=str(tmp_path), checkpoint_every=10, **QUIET)
    assert result.finished and result.steps == result.total_steps == 40 == len(result.losses)
    assert [p.step for p in told] == list(range(1, 41)) and told[-1].total == 40 and told[0].stage == 'w2'
    assert len(result.frames) == 5 and result.frames[0].shape == GRID.shape
    assert result.levels.level0 == result.levels.level1 == 0.05
    voxel = np.prod(GRID.voxel_size)
    assert result.levels.volume0 == pytest.approx(np.count_nonzero(initial >= 0.05) * voxel)
    assert result.levels.coverage == pytest.approx(result.levels.volume0 / result.levels.volume1, rel=0.05)
    assert result.verdict.prediction > result.verdict.initial
    names = sorted(os.path.basename(f) for f in result.files)
    assert names == ['flow.pt', 'frame_00.mrc', 'frame_01.mrc', 'frame_02.mrc', 'frame_03.mrc', 'frame_04.mrc',
                     'loss.log', 'open_in_chimerax.py']
    assert result.motions == [] and result.paths is None and result.step_seconds


def test_a_stopped_job_is_not_finished_and_keeps_its_frames():
    initial, target = two_blobs()
    calls = []
    result = morph(initial, GRID, target, GRID, Settings(steps=50, bin=1, frames=3), 0.05, 0.05,
                   stop=lambda: len(calls) >= 7, progress=lambda p: calls.append(p), **QUIET)
    assert not result.finished and result.steps == 7 < result.total_steps and len(result.frames) == 4


def test_the_trained_flow_saved_and_loaded_makes_the_same_frames(tmp_path):
    initial, target = two_blobs()
    result = morph(initial, GRID, target, GRID, Settings(steps=30, bin=1, frames=4), 0.05, 0.05,
                   out=str(tmp_path), **QUIET)
    loaded = TrainedFlow.load(tmp_path / 'flow.pt')
    assert loaded.grid == GRID and loaded.level0 == 0.05 and loaded.frame_count == 4 and loaded.steps_trained == 30
    for a, b in zip(loaded.frames(initial, GRID), result.frames):
        assert np.allclose(a, b, atol=1e-5)
    result.flow.save(tmp_path / 'again.pt')
    assert TrainedFlow.load(tmp_path / 'again.pt').settings == loaded.settings


def test_points_moved_along_the_flow_follow_the_particles_and_step_linearly_between_frames():
    initial, target = two_blobs()
    pair = prepare_pair(initial, GRID, target, GRID, 0.05, 0.05, regions=halves(), **QUIET)
    result = MorphJob(pair, Settings(steps=60, bin=1, frames=4)).run(paths=True)
    moving, path = result.paths
    start = path[0].numpy()
    flow = result.flow
    assert np.allclose(flow.move(start, 0.0), start)
    for k in range(5):
        assert np.allclose(flow.move(start, k / 4), path[k].numpy(), atol=1e-3)
    halfway = flow.move(start, 0.375)                 # half way from frame 1 to frame 2
    assert np.allclose(halfway, (path[1].numpy() + path[2].numpy()) / 2, atol=1e-3)
    regions = flow.point_regions(start)
    assert list(np.bincount(regions)[1:]) == list(moving.sections)
    # each blob follows its own region's field: the left one +x, the right one -y
    left, right = regions == 1, regions == 2
    moved = flow.move(start, 1.0)
    assert (moved[left, 0] - start[left, 0]).mean() > 3 and abs((moved[left, 1] - start[left, 1]).mean()) < 1.5
    assert (moved[right, 1] - start[right, 1]).mean() < -3 and abs((moved[right, 0] - start[right, 0]).mean()) < 1.5
    assert len(result.motions) == 2 and result.motion_lines[0].startswith('region 1: rotation')


def test_a_point_off_every_region_takes_the_nearest_regions_field():
    initial, target = two_blobs()
    pair = prepare_pair(initial, GRID, target, GRID, 0.05, 0.05, regions=halves(), **QUIET)
    flow = MorphJob(pair, Settings(steps=2, bin=1, frames=2)).run().flow
    corner = np.array(GRID.origin)
    far_left = corner + (0.0, 20.0, 20.0)               # in no region (below level), nearest region 1
    far_right = corner + (46.0, 20.0, 20.0)
    assert list(flow.point_regions([far_left, far_right])) == [1, 2]
    with pytest.raises(ValueError, match='time t runs from 0'):
        flow.move([far_left], 1.5)


def test_frames_of_a_map_on_another_grid_are_refused_unless_resampled():
    initial, target = two_blobs()
    flow = morph(initial, GRID, target, GRID, Settings(steps=10, bin=1, frames=2), 0.05, 0.05, **QUIET).flow
    other = Grid((20, 22, 24), (2.0, 2.0, 2.0), (13.0, -5.0, 1.0))
    with pytest.raises(MapError, match='fills another'):
        flow.frames(initial, other)
    frames = flow.frames(initial, other, resample=True)
    assert frames[0].shape == GRID.shape and centroid(frames[0], GRID)[0] > centroid(initial, GRID)[0] + 5


def test_morph_files_reads_maps_holds_the_folder_and_resumes(tmp_path):
    initial, target = two_blobs()
    write_map(tmp_path / 'a.mrc', initial, GRID)
    write_map(tmp_path / 'b.mrc', target, GRID)
    out = str(tmp_path / 'run')
    first = morph_files(tmp_path / 'a.mrc', tmp_path / 'b.mrc', Settings(steps=12, bin=1, frames=3), out,
                        level0=0.05, level1=0.05, **QUIET)
    assert first.finished and not os.path.exists(os.path.join(out, '.cryotrans-run'))
    more = morph_files(tmp_path / 'a.mrc', tmp_path / 'b.mrc', None, out, level0=0.05, level1=0.05,
                       resume=os.path.join(out, 'flow.pt'), more=5, **QUIET)
    assert more.steps == 17 and more.losses[:12] == first.losses


def _apart(grid=GRID):
    """Two blobs, and the target where they moved 3 Å apart along x."""
    left, right = (17.0, 15.0, 20.0), (33.0, 15.0, 20.0)
    initial = blob(grid, left, 3.0) + blob(grid, right, 3.0)
    target = blob(grid, (left[0] - 3, *left[1:]), 3.0) + blob(grid, (right[0] + 3, *right[1:]), 3.0)
    return prepare_pair(initial, grid, target, grid, 0.1, 0.1, **QUIET)


@pytest.mark.parametrize('settings', [Settings(steps=150, frames=4),                    # one stage, halved
                                      Settings(steps=400, resolution=8.0, refine=100, frames=4)])   # ends early
def test_partition_auto_tells_its_bodies_when_found_and_its_total_never_grows(settings):
    told = []
    job = MorphJob(_apart(), settings, auto=True)
    result = job.run(told.append)
    assert [p.step for p in told] == list(range(1, result.steps + 1))       # each step told once
    found = [p for p in told if p.found]
    assert len(found) == 1 and found[0].found == tuple(result.body_lines)
    assert 'partition auto: 2 bodies' in found[0].found[0] and found[0].step < result.steps
    assert found[0].new_stage                                               # the regions go on alone
    for before, after in zip(told, told[1:]):
        assert after.total <= before.total and (after.total == before.total or after.ended), (before, after)
    assert told[-1].total == result.total_steps == result.steps
