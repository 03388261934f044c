"""The schedule (engine/schedule.py): the resolution grid, and at most `particles` particles a step."""

import numpy as np
import pytest
import torch

from cryotrans_engine import Grid, Settings, Training, prepare_pair
from cryotrans_engine.objective import Stage
from cryotrans_engine.schedule import Plan, occupied, particle_bin, plan, resolution_bin
from cryotrans_engine.checkpoint import load_checkpoint, save_checkpoint
from cryotrans_engine.stage_notes import polish_note, stage_ended_note
from helpers import blob, centroid

QUIET = dict(log=lambda message: None)


def test_the_resolution_grid_has_voxels_a_third_of_the_resolution_and_24_voxels_across_at_least():
    assert resolution_bin((256,) * 3, (1.1,) * 3, 7.0) == 2        # the real-size ribosome: 2.2 Å voxels
    assert resolution_bin((64,) * 3, (1.5,) * 3, 7.0) == 1         # the AdK demo keeps its full grid
    assert resolution_bin((64,) * 3, (1.5,) * 3, 9.0) == 2         # 9 Å is held by 3 Å voxels exactly
    assert resolution_bin((64,) * 3, (1.5,) * 3, 8.9) == 1
    assert resolution_bin((48,) * 3, (1.0,) * 3, 30.0) == 2        # not below 24 voxels across
    assert resolution_bin((256,) * 3, (1.1,) * 3, 0) == 1           # no resolution: the full grid


def test_particles_come_from_the_finest_binning_that_keeps_within_the_most_a_step_moves():
    filled = np.zeros((40, 40, 40), bool)
    filled[5:35, 8:30, 10:32] = True                 # 30 × 22 × 22 = 14520 voxels
    assert particle_bin(filled, 1, 0) == 0            # no limit
    assert particle_bin(filled, 1, 20000) == 0        # the grid's own are few enough
    p = particle_bin(filled, 1, 2000)
    assert occupied(filled, p)[0] <= 2000 < occupied(filled, p - 1)[0]
    assert particle_bin(filled, p, 2000) == 0         # a stage on that grid moves its own
    assert particle_bin(filled, 1, 500) > p
    count, voxels, longest = occupied(filled, 3)      # 3 does not divide 40: the far blocks are padded
    assert (voxels, longest) == (14 ** 3, 14) and count == 11 * 8 * 8     # z 5-34: blocks 1-11


def _pair(n=48, voxel=1.5, shift=6.0, sigma=5.0):
    g = Grid((n, n, n), (voxel,) * 3, (0.0, 0.0, 0.0))
    c = n * voxel / 2
    return prepare_pair(blob(g, (c - shift / 2, c, c), sigma), g, blob(g, (c + shift / 2, c, c), sigma), g,
                        0.05, 0.05, **QUIET), g


def test_a_plan_refines_on_the_resolution_grid_with_the_loss_on_the_coarser_ones_and_particles_capped():
    pair, _ = _pair(96, 1.0)
    full = int((pair.initial > 0).sum())
    stages = plan(pair.initial, pair.grid.voxel_size, Settings(resolution=7.0, particles=full // 10).resolved())
    assert [(s.bin, s.loss) for s in stages] == [(4, 'w2'), (2, 'refine'), (2, 'refine')]   # 96³: bins 2 and 4 only
    stages = stages[:2]                                # (the polish, with finer particles: the test below)
    for s in stages:
        moved = occupied(pair.initial > 0, s.particles_from)[0]
        assert moved <= full // 10 and s.particles_from >= s.bin
    every = plan(pair.initial, pair.grid.voxel_size, Settings(resolution=7.0, particles=0).resolved())
    assert [s.bin for s in every] == [s.bin for s in stages] and all(s.particle_bin == 0 for s in every)


def test_a_stage_with_coarser_particles_carries_the_map_and_its_frames_are_on_the_full_grid():
    pair, g = _pair()
    full = int((pair.initial > 0).sum())
    training = Training(pair, Settings(steps=120, bin=1, particles=full // 6, lr=3e-3))
    (stage,) = training.plan
    assert stage.particle_bin >= 2
    training.run()
    data = training.stage_data(0)
    assert data.particles.mass.numel() <= full // 6 and data.shape == pair.initial.shape
    assert float(data.particles.mass.sum()) == pytest.approx(float(pair.initial.sum()), rel=1e-5)
    frames = training.frames()
    assert frames[-1].shape == pair.initial.shape
    assert training.losses[-1] < 0.5 * training.losses[0]
    x0, x1 = centroid(frames[0], g)[0], centroid(frames[-1], g)[0]
    assert x1 - x0 == pytest.approx(6.0, abs=1.5)


def test_a_checkpoint_goes_on_with_the_stages_it_was_trained_on(tmp_path):
    """An older checkpoint (its stages without particle bins, refinement on the full grid) resumes on
    its own schedule, not on the one today's rules would choose."""
    pair, _ = _pair(48, 1.0)
    first = Training(pair, Settings(steps=6, resolution=7.0, refine=4))
    first.run(stop=lambda: first.step >= 3)
    state = first.checkpoint()
    state['schedule'] = [[4, 6, 'w2', False], [1, 4, 'refine', False]]
    save_checkpoint(tmp_path / 'flow.pt', state)
    again = Training(pair, Settings(steps=6, resolution=7.0, refine=4), load_checkpoint(tmp_path / 'flow.pt'), more=2)
    assert again.plan == [Stage(4, 6, 'w2'), Stage(1, 6, 'refine')]
    assert all(torch.equal(a, b) for a, b in zip(again.flow.parameters(), first.flow.parameters()))


def test_a_loss_has_plateaued_when_its_last_window_gains_under_2_percent_of_the_stage_s_gain():
    from cryotrans_engine.schedule import PLATEAU, WINDOW, plateaued
    assert (WINDOW, PLATEAU) == (50, 0.02)
    decay = [100 * np.exp(-i / 30) + 5 for i in range(400)]       # falls, then flattens
    ends = [n for n in range(1, 401) if plateaued(decay[:n])]
    assert ends and ends[0] % WINDOW == 0 and 150 <= ends[0] <= 300
    n = ends[0]
    gain = np.mean(decay[n - 2 * WINDOW:n - WINDOW]) - np.mean(decay[n - WINDOW:n])
    assert gain <= PLATEAU * (np.mean(decay[:WINDOW]) - np.mean(decay[n - WINDOW:n]))
    line = [100 - 0.1 * i for i in range(400)]                   # still falling at a steady rate
    assert not any(plateaued(line[:n]) for n in range(1, 401))
    assert plateaued([3.0] * 150) and not plateaued([3.0] * 149) and not plateaued([3.0] * 100)
    assert plateaued([-80.0 + 0.001 * i for i in range(150)])    # W2's entropic loss may be negative: rising
    shifted = [v - 200 for v in decay]                             # scale- and offset-free
    assert [n for n in range(1, 401) if plateaued(shifted[:n])][0] == ends[0]


def test_without_refinement_every_stage_runs_its_steps_however_flat_its_loss(tmp_path):
    """The published method (no resolution): the loss's stages make the prediction, so none ends early
    (issue #29: ending the coarse grid at its first flat window left AdK closed → open worse than its target)."""
    from cryotrans_engine.schedule import Plan
    stages = [Stage(2, 300, 'w2'), Stage(1, 100, 'w2')]
    assert not any(Plan(stages).may_end_early(i) for i in range(2))
    assert [Plan(stages + [Stage(1, 60, 'refine')]).may_end_early(i) for i in range(3)] == [True, True, False]
    pair, g = _pair(64, 1.5, 6.0, 4.0)
    training = Training(pair, Settings(steps=250, seed=1))
    assert [(s.bin, s.steps, s.loss) for s in training.plan] == [(2, 200, 'w2'), (1, 50, 'w2')]
    training.losses = [1.0] * 150          # a loss that is flat from the start
    training.step = 150
    training._end_stage_if_plateaued(0)
    assert training.ended_early == [] and training.plan[0].steps == 200


def test_a_coarse_stage_whose_loss_stopped_improving_ends_early_and_the_last_stage_runs_its_steps(tmp_path):
    pair, g = _pair(64, 1.5, 6.0, 4.0)
    settings = dict(steps=1000, resolution=9.0, refine=160, seed=1, particles=0)   # refinement: one stage, every particle
    training = Training(pair, Settings(**settings))
    assert [(s.bin, s.steps, s.loss) for s in training.plan] == [(2, 1000, 'w2'), (2, 160, 'refine')]
    notes, resets = [], []
    real = training._new_optimizer
    training._new_optimizer = lambda: resets.append(training.step) or real()

    def progress(step, total, loss, elapsed):
        if stage_ended_note(training, step):
            notes.append((step, total, stage_ended_note(training, step)))
    training.run(progress, checkpoint_path=str(tmp_path / 'flow.pt'), checkpoint_every=50)
    ((index, ran, planned),) = training.ended_early
    assert index == 0 and planned == 1000 and 150 <= ran < 1000 and ran % 50 == 0
    assert training.plan[0].steps == ran and training.plan[1].steps == 160 and training.total_steps == ran + 160
    assert notes == [(ran, ran + 160, f'w2 on bin 2 ended after {ran} of its 1000 steps: its loss had stopped '
                                      f'improving')]
    assert resets == [ran]                 # refinement's fresh optimiser, where it now begins
    assert len(training.losses) == ran + 160 and training.finished
    again = Training(pair, Settings(**settings), load_checkpoint(tmp_path / 'flow.pt'))
    assert again.plan == training.plan and again.finished      # the checkpoint keeps the shortened plan
    # resumed from mid-way through the coarse stage, the run ends that stage where the straight run did
    state = training.checkpoint()
    half = Training(pair, Settings(**settings))
    half.run(stop=lambda: half.step >= 100)
    save_checkpoint(tmp_path / 'half.pt', half.checkpoint())
    rest = Training(pair, Settings(**settings), load_checkpoint(tmp_path / 'half.pt'))
    rest.run()
    assert rest.plan == training.plan
    assert all(torch.equal(a, b) for a, b in zip(rest.flow.state_dict().values(), state['flow'].values()))


def test_refinement_ends_with_a_polish_moving_finer_particles_when_its_own_are_coarse():
    """The last sixth of refinement moves up to 4 × `particles` particles: the coarse ones limit
    the fit (docs/benchmarks.md, Real size); Adam's moments go on across it."""
    pair, _ = _pair(96, 1.0)
    filled = pair.initial > 0
    most = int(filled.sum()) // 40
    stages = plan(pair.initial, pair.grid.voxel_size, Settings(resolution=7.0, particles=most, refine=60).resolved())
    w2, coarse, polish = stages
    assert (coarse.bin, coarse.steps, coarse.loss) == (2, 50, 'refine') == (polish.bin, 50, polish.loss)
    assert polish.steps == 10 and polish.particles_from < coarse.particles_from
    assert occupied(filled, coarse.particles_from)[0] <= most < occupied(filled, polish.particles_from)[0] <= 4 * most
    assert occupied(filled, polish.particles_from - 1)[0] > 4 * most or polish.particle_bin == 0
    for settings in (Settings(resolution=7.0, particles=0), Settings(resolution=7.0, particles=most, refine=5),
                     Settings(particles=most)):
        assert [s.loss for s in plan(pair.initial, pair.grid.voxel_size, settings.resolved())].count('refine') <= 1
    # a cap no stage reaches: the resolution would allow blocks of 4 Å (bin 4), but refinement's grid (bin 2) has
    # 1151 particles and coarser blocks would hold fewer than 1000: its own particles, no polish
    assert [occupied(filled, p)[0] for p in (2, 3)] == [1151, 396]
    *_, refinement = plan(pair.initial, pair.grid.voxel_size, Settings(resolution=7.0, particles=10 ** 6).resolved())
    assert (refinement.bin, refinement.steps, refinement.particle_bin) == (2, 600, 0)
    training = Training(pair, Settings(steps=12, resolution=7.0, particles=most, refine=12, seed=2))
    assert [s.steps for s in training.plan] == [12, 10, 2]
    resets = []
    real = training._new_optimizer
    training._new_optimizer = lambda: resets.append(training.step) or real()
    assert training.run()
    assert resets == [12] and len(training.losses) == 24
    assert [step for step in range(25) if training.plan.polish_starts_after(step)] == [22]
    seconds = training.clock.step_seconds()             # what a step of each stage cost here
    assert sorted(seconds) == [0, 1, 2] and all(0 < v < 60 for v in seconds.values())
    polish = training.stage_sizes[2].particles
    source = f'bin {training.plan[2].particle_bin}' if training.plan[2].particle_bin else 'bin 2'
    assert polish_note(training, 22) == f'2 steps polishing with finer particles ({polish:,} a step, from {source})'
    assert training.stage_data(23).particles.mass.numel() > training.stage_data(12).particles.mass.numel()
    assert float(training.stage_data(23).particles.mass.sum()) == pytest.approx(float(pair.initial.sum()), rel=1e-5)


def test_refinement_moves_particles_at_most_a_fraction_of_the_resolution_apart_then_polishes_with_every_one():
    """Refinement's particles (before its polish) come from blocks at most R/1.6 across, however few the
    map's particles (issue #32: the 64³ demo's refinement moved all 5561 of its particles in every step), but
    never fewer than 1000 of them."""
    from cryotrans_engine.schedule import refinement_particle_bin
    pair, _ = _pair(64, 1.5, 6.0, 8.0)
    filled = pair.initial > 0
    assert [occupied(filled, p)[0] for p in (1, 2, 3)] == [9315, 1379, 477]
    # 1.5 Å voxels: R/1.6 = 4.4, 3.1, 2.8 Å; 9 Å allows 5.6 Å blocks (bin 3), but they would be 477 particles
    for resolution, coarse in ((7.0, 2), (5.0, 2), (4.5, 0), (9.0, 2)):
        assert refinement_particle_bin(filled, 1, 0, (1.5,) * 3, resolution, 32768) == coarse
    small, _ = _pair(64, 1.5, 6.0, 4.0)                     # 1189 particles: bin 2's 205 are too few
    assert refinement_particle_bin(small.initial > 0, 1, 0, (1.5,) * 3, 7.0, 32768) == 0
    stages = plan(pair.initial, pair.grid.voxel_size, Settings(resolution=7.0, steps=100).resolved())
    assert [(s.bin, s.steps, s.loss, s.particle_bin) for s in stages] == [
        (2, 100, 'w2', 0), (1, 500, 'refine', 2), (1, 100, 'refine', 0)]
    assert Plan(stages).may_end_early(1) and not Plan(stages).may_end_early(2)
    # a partition's refinement moves every particle (its rigidity is read on them)
    parted = plan(pair.initial, pair.grid.voxel_size, Settings(resolution=7.0, steps=100).resolved(2), 2)
    assert [(s.loss, s.steps, s.particle_bin) for s in parted][-1:] == [('refine', 600, 0)]
    # every particle in every step when asked (particles 0), and a cap coarser than the rule wins
    every = plan(pair.initial, pair.grid.voxel_size, Settings(resolution=7.0, steps=100, particles=0).resolved())
    assert [(s.bin, s.steps, s.particle_bin) for s in every][1:] == [(1, 600, 0)]
    assert refinement_particle_bin(filled, 1, 4, (1.5,) * 3, 7.0, 100) == 4
    assert refinement_particle_bin(filled, 2, 0, (1.5,) * 3, 7.0, 32768) == 0      # a 3 Å grid's own particles


@pytest.mark.parametrize('settings', [Settings(steps=150), Settings(steps=3, bin=2), Settings(steps=1250, resolution=8),
                                      Settings(steps=400, resolution=6, refine=90, particles=500)])
def test_a_partitioned_plan_keeps_every_step_of_the_one_field_plan(settings):
    """partition auto trains the one-field plan until its bodies are found, then the partitioned one: the
    total it reports from the start is the partitioned plan's because the two have the same steps (a lone
    stage is halved, else the first stage is shared), and the search ends where the shared stage does."""
    for n in (20, 64, 100):
        filled = np.zeros((n, n, n), np.float32)
        filled[n // 4:3 * n // 4, n // 3:2 * n // 3, n // 5:4 * n // 5] = 1
        one, two = (plan(filled, (2.0, 2.0, 2.0), settings.resolved(regions), regions) for regions in (1, 2))
        assert one.total_steps == two.total_steps, (n, one, two)
        assert two[0].shared and two[0].steps <= one[0].steps and two[0].bin == one[0].bin
