"""Partitions: one velocity field per region, labels on every grid, rigidity, rigid motions."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from cryotrans_engine import (CheckpointError, Grid, MapError, SettingsError, Settings, Training, flow_from_checkpoint,
                              load_checkpoint, prepare_pair)
from cryotrans_engine.flow import Flow, VelocityField
from cryotrans_engine.motion import rigid_fit
from cryotrans_engine.objective import Stage
from cryotrans_engine.partition import bin_labels, grow_labels, labels_on_grid
from cryotrans_engine.particles import particles, voxel_positions
from cryotrans_engine.training import binned_particles
from cryotrans_engine.rigidity import deformation_energy, killing_energy, neighbours, velocity_jacobian
from helpers import blob

GRID = Grid((20, 20, 20), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
QUIET = dict(log=lambda message: None)


def two_blobs(shift=4.0):
    """Two blobs side by side (x = 12 and 28 Å) that move apart; labels split the box at x = 20 Å."""
    initial = blob(GRID, (12, 20, 20), 3.0) + blob(GRID, (28, 20, 20), 3.0)
    target = blob(GRID, (12 - shift, 20, 20), 3.0) + blob(GRID, (28 + shift, 20, 20), 3.0)
    labels = np.ones(GRID.shape, np.int32)
    labels[:, :, 10:] = 2
    return initial, target, labels


def test_one_region_without_rigidity_is_exactly_the_single_field_method():
    initial, target, _ = two_blobs()
    everywhere = np.ones(GRID.shape, np.int32)
    runs = []
    for regions in (None, everywhere):
        pair = prepare_pair(initial, GRID, target, GRID, 0.05, 0.05, regions=regions, **QUIET)
        t = Training(pair, Settings(steps=12, seed=4, resolution=8.0, refine=3))
        t.run()
        runs.append((t.losses, t.frames()))
    assert runs[0][0] == runs[1][0]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def test_each_region_is_moved_by_its_own_field_in_one_pass_with_exact_gradients():
    torch.manual_seed(0)
    flow = Flow(depth=3, width=8, frames=3, regions=3).double()
    for p in flow.parameters():
        torch.nn.init.normal_(p, std=0.5)
    x = torch.rand(50, 3, dtype=torch.float64)
    sections = [20, 0, 30]                                  # an empty region too
    region = torch.repeat_interleave(torch.arange(3), torch.tensor(sections))
    seeds = [torch.randn(50, 3, dtype=torch.float64) for _ in range(4)]

    def by_autograd():
        out = [x]
        for _ in range(3):
            v = torch.stack([flow.fields[r](p[None])[0] for p, r in zip(out[-1], region.tolist())])
            out.append(out[-1] + v / 3)
        return out
    results = []
    for rows in (None, 7, 1000):                             # autograd; blocks that split regions; one block a region
        for p in flow.parameters():
            p.grad = torch.zeros_like(p)
        if rows is None:
            path = by_autograd()
        else:
            flow.block_rows = lambda x, rows=rows: rows
            path = flow.trajectory(x, sections)
        sum((p * s).sum() for p, s in zip(path, seeds)).backward()
        results.append([torch.stack(path).detach()] + [p.grad.clone() for p in flow.parameters()])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)
    assert all((p.grad == 0).all() for p in flow.fields[1].parameters())   # no particles, no gradient
    with pytest.raises(ValueError):
        flow.trajectory(x, [50, 0])


def test_unlabelled_voxels_above_level_follow_the_nearest_region():
    labels = np.zeros((1, 1, 9), np.int32)
    labels[0, 0, 0], labels[0, 0, 8] = 1, 2
    occupied = np.ones((1, 1, 9), bool)
    occupied[0, 0, 4] = False
    grown = grow_labels(labels, occupied, 2)
    assert grown.tolist() == [[[1, 1, 1, 1, 0, 2, 2, 2, 2]]]


def test_labels_go_onto_coarse_grids_by_majority_vote_of_voxels_above_level():
    labels = torch.zeros(4, 4, 4, dtype=torch.int32)
    occupied = torch.zeros(4, 4, 4, dtype=torch.bool)
    block = (slice(0, 2), slice(0, 2), slice(0, 2))
    labels[block] = 1
    labels[0, 0, 0] = labels[0, 0, 1] = labels[0, 1, 0] = labels[1, 0, 0] = 2
    occupied[block] = True
    occupied[1, 1, 1] = False          # 3 occupied 1s and 4 occupied 2s: 2 wins
    labels[2:, 2:, 2:] = 3             # a block of 3s with nothing above level: no label
    binned = bin_labels(labels, occupied, 2, 3)
    assert binned.shape == (2, 2, 2)
    assert binned[0, 0, 0] == 2 and binned[1, 1, 1] == 0
    assert set(binned.flatten().tolist()) <= {0, 1, 2, 3}


def test_a_label_map_on_another_grid_is_read_by_nearest_neighbour():
    coarse = Grid((10, 10, 10), (4.0, 4.0, 4.0), (0.0, 0.0, 0.0))
    labels = np.ones(coarse.shape, np.int32)
    labels[:, :, 5:] = 2
    on = labels_on_grid(labels, coarse, GRID)
    assert set(np.unique(on)) == {1, 2}                       # never a blend such as 1.5
    assert (on[:, :, :9] == 1).all() and (on[:, :, 10:] == 2).all()   # 18 Å is a tie
    far = Grid((10, 10, 10), (4.0, 4.0, 4.0), (500.0, 0.0, 0.0))
    with pytest.raises(MapError, match='does not overlap'):
        labels_on_grid(labels, far, GRID)


@pytest.mark.parametrize('change, message', [
    (lambda l: np.where(l == 2, 3, l), 'region 2 of 1–3 has no voxels'),
    (lambda l: np.where(l == 2, 0, l) * 1.5, 'whole numbers'),
    (lambda l: np.zeros_like(l), 'no region'),
    (lambda l: np.where(np.arange(20)[None, None, :] >= 19, 3, l), 'region 3 holds no density'),
])
def test_bad_region_maps_get_one_clear_error(change, message):
    initial, target, labels = two_blobs()
    with pytest.raises(MapError, match=message):
        prepare_pair(initial, GRID, target, GRID, 0.05, 0.05, regions=change(labels), **QUIET)


def test_rigidity_takes_one_value_or_one_per_region():
    initial, target, labels = two_blobs()
    pair = prepare_pair(initial, GRID, target, GRID, 0.05, 0.05, regions=labels, **QUIET)
    assert Training(pair, Settings(steps=1)).settings.rigidity == (1.0, 1.0)       # the default
    assert Training(pair, Settings(steps=1, rigidity=0.5)).settings.rigidity == (0.5, 0.5)
    assert Training(pair, Settings(steps=1, rigidity=(0, 2))).settings.rigidity == (0.0, 2.0)
    with pytest.raises(SettingsError, match='3 rigidity values for 2 regions'):
        Training(pair, Settings(steps=1, rigidity=(1, 2, 3)))
    with pytest.raises(SettingsError, match='rigidity must be'):
        Training(pair, Settings(steps=1, rigidity=-1))
    single = prepare_pair(initial, GRID, target, GRID, 0.05, 0.05, **QUIET)
    assert Training(single, Settings(steps=1)).settings.rigidity == (0.0,)        # the published method


def test_the_deformation_energy_is_zero_for_rigid_motions_and_4s2_for_a_stretch():
    density = torch.zeros(6, 6, 6)
    density[1:5, 1:5, 1:5] = 1
    step = (0.1, 0.1, 0.1)
    moving = particles(density, step)
    (rows,) = neighbours(moving, 1)
    assert rows.shape[0] == 27                              # the 3³ voxels whose +x, +y, +z are all inside
    x = moving.positions.double()
    a = math.radians(30)
    turn = torch.tensor([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]],
                        dtype=torch.float64)
    rigid = [x, x @ turn.T + 0.2]
    assert deformation_energy(rigid, rows, step).item() == pytest.approx(0, abs=1e-10)
    stretched = [x, x * torch.tensor([1.01, 1, 1], dtype=torch.float64)]
    assert deformation_energy(stretched, rows, step).item() == pytest.approx(4 * 0.01 ** 2, rel=0.02)


def test_the_deformation_energy_is_zero_for_rigid_motions_of_coarse_particles_off_the_lattice():
    """Binned particles sit at their blocks' centres of mass: at rest, and moved rigidly, they
    cost nothing (measured against the grid's lattice they cost ~0.1, and a λ 1 penalty pulled
    the ribosome's bin-5 particles onto the lattice: 4.33 Å against 3.06 Å at λ 0)."""
    generator = torch.Generator().manual_seed(0)
    fine = torch.rand(24, 24, 24, generator=generator)
    fine[fine < 0.5] = 0                                    # dust-like: blocks' mass off their centres
    step = (0.02, 0.02, 0.02)
    moving = binned_particles(fine, 4, step)
    (rows,) = neighbours(moving, 1)
    assert rows.shape[0] == 125                             # the 5³ blocks whose +x, +y, +z are all inside
    x = moving.positions.double()
    lattice = voxel_positions((6, 6, 6), (0.08,) * 3, dtype=torch.float64).reshape(-1, 3)[moving.voxels]
    assert (x - lattice).abs().max() > 0.002                # off the lattice
    assert deformation_energy([x, x], rows, (0.08,) * 3).item() == pytest.approx(0, abs=1e-12)
    a = math.radians(20)
    turn = torch.tensor([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]],
                        dtype=torch.float64)
    assert deformation_energy([x, x @ turn.T - 0.1], rows, (0.08,) * 3).item() == pytest.approx(0, abs=1e-12)
    stretched = x * torch.tensor([1.01, 1, 1], dtype=torch.float64)
    assert deformation_energy([x, stretched], rows, (0.08,) * 3).item() == pytest.approx(4 * 0.01 ** 2, rel=0.5)


def test_the_killing_energy_is_zero_for_a_rotations_velocity_and_its_jacobian_is_exact():
    field = VelocityField(depth=3, width=5).double()
    a = torch.tensor([[0, -1.0, 2], [1, 0, -3], [-2, 3, 0]], dtype=torch.float64)   # antisymmetric
    with torch.no_grad():
        field.layers[0].weight.copy_(torch.cat([torch.eye(3), torch.zeros(2, 3)]))
        field.layers[0].bias.fill_(10)                      # every pre-activation positive: linear
        field.layers[1].weight.copy_(torch.eye(5))
        field.layers[2].weight.copy_(torch.cat([a, torch.zeros(3, 2)], 1))
    x = torch.rand(40, 3, dtype=torch.float64)
    assert killing_energy(field, x).item() == pytest.approx(0, abs=1e-20)
    for p in field.parameters():
        torch.nn.init.normal_(p, std=0.7)
    expected = torch.stack([torch.autograd.functional.jacobian(field, p[None])[0, :, 0] for p in x])
    assert torch.allclose(velocity_jacobian(field, x), expected, atol=1e-12)
    assert killing_energy(field, x).item() > 0


def test_a_rigid_fit_recovers_a_rotation_about_an_axis_and_a_shift_along_it():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(200, 3)) * 10
    a = math.radians(25)
    turn = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    centre = np.array([5.0, -2.0, 3.0])
    moved = (points - centre) @ turn.T + centre + [1.5, 0, 0]
    fit = rigid_fit(points, moved)
    axis, point, angle, shift = fit.axis_angle_shift(near=centre)
    assert angle == pytest.approx(25, abs=1e-6) and shift == pytest.approx(1.5, abs=1e-6)
    assert abs(axis @ [1, 0, 0]) == pytest.approx(1, abs=1e-9)
    assert point[1:] == pytest.approx(centre[1:], abs=1e-6) and fit.rms == pytest.approx(0, abs=1e-9)
    wobbly = moved + rng.normal(size=moved.shape) * 0.3
    assert rigid_fit(points, wobbly).rms == pytest.approx(0.3 * math.sqrt(3), rel=0.15)


def test_a_partitioned_rigid_run_resumes_bit_for_bit_and_its_checkpoint_holds_the_regions(tmp_path):
    initial, target, labels = two_blobs()
    pair = prepare_pair(initial, GRID, target, GRID, 0.05, 0.05, regions=labels, **QUIET)
    for form in ('deformation', 'killing'):
        settings = Settings(steps=10, seed=2, rigidity=(0.5, 1.0), rigidity_form=form, resolution=8.0, refine=4)
        straight = Training(pair, settings)
        straight.run()
        first = Training(pair, settings)
        first.run(stop=lambda: first.step >= 6, checkpoint_path=tmp_path / 'flow.pt')
        state = load_checkpoint(tmp_path / 'flow.pt')
        assert np.array_equal(state['regions'].numpy(), pair.regions)
        resumed = Training(pair, settings, state)
        resumed.run()
        assert resumed.losses == straight.losses and resumed.penalties == straight.penalties
        assert len(straight.penalties) == 4 and all(p > 0 for p in straight.penalties)   # not while shared
        assert all(torch.equal(a, b) for a, b in zip(resumed.flow.parameters(), straight.flow.parameters()))
    other = prepare_pair(initial, GRID, target, GRID, 0.05, 0.05, regions=3 - labels, **QUIET)
    with pytest.raises(CheckpointError, match='other maps or levels than these: the region map differs'):
        Training(other, settings, state)
    alone = prepare_pair(initial, GRID, target, GRID, 0.05, 0.05, **QUIET)
    with pytest.raises(CheckpointError, match=r'trained with a partition into 2 regions: resume with the same region '
                                              r'map \(partition, in the CLI --partition\)'):
        Training(alone, dataclasses.replace(settings, rigidity=None), state)
    edited = dict(state, settings=dict(state['settings'], width=50))
    with pytest.raises(CheckpointError, match=r'the checkpoint\'s weights do not fit its own settings \(width 50, '
                                              r'depth 3, 2 regions\): the file was changed or damaged'):
        flow_from_checkpoint(edited)


def test_two_regions_moving_apart_are_each_carried_their_own_way():
    initial, target, labels = two_blobs(shift=4.0)
    pair = prepare_pair(initial, GRID, target, GRID, 0.05, 0.05, regions=labels, **QUIET)
    t = Training(pair, Settings(steps=150, bin=1, seed=0))
    t.run()
    moving, path = t.paths()
    first, second = moving.sections
    shift = (path[-1] - path[0]).numpy()
    assert shift[:first, 0].mean() == pytest.approx(-4, abs=0.8)
    assert shift[first:, 0].mean() == pytest.approx(4, abs=0.8)


def test_a_partitions_first_stage_moves_every_region_by_one_field_then_each_region_goes_alone():
    initial, target, labels = two_blobs()
    pair = prepare_pair(initial, GRID, target, GRID, 0.05, 0.05, regions=labels, **QUIET)
    t = Training(pair, Settings(steps=6, bin=1, resolution=8.0, refine=4))
    assert t.plan == [Stage(1, 6, 'w2', True), Stage(1, 4, 'refine')]
    assert Training(pair, Settings(steps=9, bin=1)).plan == [Stage(1, 4, 'w2', True), Stage(1, 5, 'w2')]

    def same_fields():
        a, b = t.flow.fields
        return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert same_fields()
    t.run(stop=lambda: t.step >= 6)
    assert same_fields() and t.penalties == []            # shared: no rigidity yet
    t.run()
    assert not same_fields() and len(t.penalties) == 4


def test_a_flow_saved_before_flows_had_regions_still_loads():
    old = Flow(depth=3, width=6, frames=2)
    state = {k.replace('fields.0.', 'velocity.'): v for k, v in old.state_dict().items()}
    assert all(k.startswith('velocity.') for k in state)
    new = Flow(depth=3, width=6, frames=2)
    new.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(old.parameters(), new.parameters()))


def test_density_that_touches_no_region_takes_the_nearest_region_and_growing_ends():
    """Real maps have dust above a useful level: pieces of density no region touches (the growth
    through density alone never reached them and looped for ever)."""
    occupied = np.zeros((9, 9, 30), bool)
    occupied[3:6, 3:6, 2:8] = True           # region 1's density
    occupied[3:6, 3:6, 20:26] = True         # region 2's
    occupied[4, 4, 11] = True                # dust, nearer region 1
    occupied[0, 0, 29] = True                # dust in a corner, nearer region 2
    labels = np.zeros(occupied.shape, np.int32)
    labels[3:6, 3:6, 2:5] = 1
    labels[3:6, 3:6, 23:26] = 2
    grown = grow_labels(labels, occupied, 2)
    assert grown[4, 4, 11] == 1 and grown[0, 0, 29] == 2
    assert (grown[3:6, 3:6, 2:8] == 1).all() and (grown[3:6, 3:6, 20:26] == 2).all()
    assert ((grown > 0) == occupied).all()
