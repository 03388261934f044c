"""partition auto (domains.py): rigid bodies found from a flow's motion, and the runs that use them."""

import math

import numpy as np
import pytest
import torch

import hinge
from cryotrans_engine import Settings, prepare_pair, read_map, write_map
from cryotrans_engine.cli import main
from cryotrans_engine.domains import agreement, find_bodies
from cryotrans_engine.job import MorphJob
from cryotrans_engine.refinement import at_resolution, resolution_filter

HINGE_SETTINGS = Settings(steps=120, refine=150, resolution=hinge.RESOLUTION)


def _turn(points, degrees, about):
    a = math.radians(degrees)
    r = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    return (points - about) @ r.T + about


def _slab_particles(shape=(6, 10, 30)):
    """Particles on every voxel of a slab (1 Å voxels): positions, voxels, shape, and left/right halves."""
    z, y, x = np.meshgrid(*[np.arange(n) for n in shape], indexing='ij')
    xyz = np.stack([x.ravel(), y.ravel(), z.ravel()], 1).astype(float)
    return xyz, np.arange(xyz.shape[0]), shape, np.where(xyz[:, 0] < shape[2] // 2, 1, 2)


def test_two_bodies_each_moved_rigidly_are_found_exactly_and_one_rigid_motion_is_one_body():
    xyz, voxels, shape, halves = _slab_particles()
    mass = np.ones(len(xyz))
    moved = np.where((halves == 1)[:, None], _turn(xyz, 15, np.array([15.0, 5, 3])),
                     _turn(xyz, -15, np.array([15.0, 5, 3])) + [0, 0, 1.0])
    two = find_bodies(xyz, moved, mass, voxels, shape)
    assert two.count == 2 and two.rms < 1e-6 and agreement(two.labels, halves) == 1.0
    assert sorted(round(m.axis_angle_shift()[2]) for m in two.motions) == [15, 15]
    rigid = find_bodies(xyz, _turn(xyz, 20, np.array([3.0, 4, 5])), mass, voxels, shape)
    assert rigid.count == 1 and 'one body' in rigid.why
    forced = find_bodies(xyz, _turn(xyz, 20, np.array([3.0, 4, 5])), mass, voxels, shape, count=2)
    assert forced.count == 2 and min(forced.shares) > 0.08


def test_agreement_matches_bodies_one_to_one_whatever_their_numbers():
    truth = np.array([1, 1, 1, 2, 2, 2])
    assert agreement(np.array([2, 2, 2, 1, 1, 1]), truth) == 1.0
    assert agreement(np.array([1, 1, 1, 1, 1, 1]), truth) == 0.5             # one body for two: half right
    assert agreement(np.array([1, 1, 2, 3, 3, 3]), truth) == pytest.approx(5 / 6)


def _hinge_pair(target=None):
    initial, blurred, _, labels = hinge.hinge_maps()
    target = blurred if target is None else target
    return prepare_pair(initial, hinge.GRID, target, hinge.GRID, 0.05, 0.1 * target.max(), log=lambda m: None), labels


def test_the_hinge_arms_are_found_from_a_short_one_field_run_and_the_run_goes_on_with_them():
    pair, labels = _hinge_pair()
    job = MorphJob(pair, HINGE_SETTINGS, auto=True)
    job.find_regions()
    occupied = pair.initial > 0
    assert job.bodies.count == 2 and job.training.step == 120 and job.training.flow.regions == 2
    assert agreement(job.regions[occupied], labels[occupied], pair.initial[occupied]) >= 0.9
    assert 'partition auto: 2 bodies' in job.body_lines[0] and job.body_lines[1].startswith('body 1: ')
    assert 'rotation' in job.body_lines[1] and 'of the mass' in job.body_lines[2]
    # the partitioned run goes on from the one field: its first regions' step starts from it
    one = job.training.flow.fields
    assert all(torch.equal(a, b) for a, b in zip(one[0].parameters(), one[1].parameters()))


def test_a_molecule_turned_as_one_body_keeps_one_field_unless_a_count_is_given():
    a, b = hinge.arms(20.0, 20.0)
    t = torch.from_numpy(a + b)
    target = at_resolution(t, resolution_filter(t.shape, hinge.GRID.voxel_size, hinge.RESOLUTION)).numpy()
    pair, _ = _hinge_pair(target.astype(np.float32))
    job = MorphJob(pair, HINGE_SETTINGS, auto=True)
    job.find_regions()
    assert job.bodies.count == 1 and job.regions is None and job.training.flow.regions == 1
    forced = MorphJob(pair, HINGE_SETTINGS, auto=True, count=2)
    forced.find_regions()
    assert forced.bodies.count == 2 and int(forced.regions.max()) == 2


def test_partition_auto_from_the_command_line_writes_the_regions_beside_the_frames(tmp_path, capsys):
    initial, target, _, labels = hinge.hinge_maps()
    write_map(tmp_path / 'initial.mrc', initial, hinge.GRID)
    write_map(tmp_path / 'target.mrc', target, hinge.GRID)
    out = tmp_path / 'out'
    args = [str(tmp_path / 'initial.mrc'), str(tmp_path / 'target.mrc'), '--level0', '0.05', '--level1',
            str(0.1 * target.max()), '--steps', '120', '--frames', '4']
    assert main(['morph', *args, '--out', str(out), '--partition', 'auto']) == 0
    said = capsys.readouterr().out
    regions, grid = read_map(out / 'regions.mrc')
    assert grid.shape == hinge.GRID.shape and set(np.unique(regions)) == {0, 1, 2}
    kept = regions > 0
    assert agreement(regions[kept].astype(int), labels[kept]) >= 0.9
    assert 'partition auto: 2 bodies' in said and 'body 2: ' in said and 'region 2: rotation' in said
    assert main(['morph', *args, '--out', str(tmp_path / 'again'), '--partition', str(out / 'regions.mrc'),
                 '--steps', '2']) == 0                                         # reused as a drawn partition
    assert main(['morph', *args, '--out', str(tmp_path / 'no'), '--count', '2']) == 2
    assert '--count is how many bodies --partition auto finds' in capsys.readouterr().err
