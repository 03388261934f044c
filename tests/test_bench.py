"""`make bench` on a tiny box: every table runs and reports numbers (timings are not asserted)."""

import math

import numpy as np
import pytest
import torch

import bench
from cryotrans_engine import Grid, write_map
from helpers import blob


def test_every_bench_table_runs_on_a_tiny_box(capsys):
    assert bench.main(['--sizes', '20', '--repeat', '1', '--sections', 'speed,split,memory,partition']) == 0
    speed, split, memory, partition = [line.split() for line in capsys.readouterr().out.splitlines()
                                       if line.strip().startswith('20³')]
    times = speed[2:4] + speed[6:8] + split[3:7] + split[8:] + memory[2:3]     # split[7]: the rest, ± noise
    assert len(times) == 10 and all(float(t) >= 0 for t in times) and float(split[3]) > 0
    assert all(math.isfinite(float(x)) for x in speed[4:6] + speed[8:] + split[7:8])
    assert split[2] in ('yes', 'no') and len(split) == 9
    assert len(partition) == 9 and all(float(t) > 0 for t in partition[2:])


def stand_in_pair(folder, edge, voxel, x):
    """Small stand-ins for TRiC named as tools/realsize_maps.py names its files: a blob at x moved
    4 Å, its mask; returns the initial map."""
    g = Grid((edge,) * 3, (voxel,) * 3, (0.0, 0.0, 0.0))
    c = edge * voxel / 2
    initial, moved = blob(g, (x, c, c), 5.0), blob(g, (x + 4, c, c), 5.0)
    for name, values in (('initial', initial), ('target_7.6A', moved), ('truth', moved),
                         ('moved_mask', np.clip(moved / 0.25, 0, 1))):
        write_map(folder / f'tric_160_{name}.mrc', values.astype(np.float32), g)
    return initial


def test_the_real_size_table_runs_a_pair_from_its_files_and_judges_it_in_the_moved_part(tmp_path, capsys):
    initial = stand_in_pair(tmp_path, 40, 1.5, 28)
    bench.real_size_table(torch.device('cpu'), 1, str(tmp_path), ('tric_160',), ['--steps', '30', '--refine', '5'],
                          small=())
    (row,) = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip().startswith('tric_160')]
    assert 1000 < int(row[1]) < initial.size                  # the particles above the rule's level
    prepare, train, frames, total, peak = (float(v) for v in row[2:7])
    assert 0 < prepare + train + frames <= total and 0 < peak < 24
    fsc_prediction, fsc_initial = float(row[7]), float(row[8])
    assert fsc_prediction < fsc_initial         # moving it helped where it moved
    assert [float(v) > 0 for v in row[10].split('/')] == [True, True]     # what a step of each stage cost
    assert row[11:] == ['1:30:w2', '1:5:refine', '(planned', '1:30:w2', '1:5:refine)']   # no coarser grid


def test_the_full_grid_comparison_run_refines_on_the_full_grid_too(tmp_path, capsys):
    """real_size.py --bin-all (issue #14's comparison): on 1 Å voxels a 7.6 Å target refines on bin 2
    by default; the comparison puts every stage, refinement's too, on the full grid, every particle."""
    import real_size
    stand_in_pair(tmp_path, 48, 1.0, 22)
    plans = {}
    for extra in ([], ['--bin-all']):
        assert real_size.main(['--pair', 'tric_160', '--data', str(tmp_path), '--steps', '2', '--refine', '2',
                               '--particles', '100'] + extra) == 0
        plans[bool(extra)] = [line.split()[1:] for line in capsys.readouterr().out.splitlines()
                              if line.startswith('plan ')][0]
    assert plans[False][-1].startswith('2/') and plans[False][-1].endswith(':2:refine')   # capped particles
    assert plans[True] == ['1:2:w2', '1:2:refine']


def test_stage_steps_times_a_step_of_each_stage_of_the_plan(tmp_path, capsys):
    import stage_steps
    stand_in_pair(tmp_path, 48, 1.0, 22)
    assert stage_steps.main(['--pair', 'tric_160', '--data', str(tmp_path), '--repeat', '1']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(' s a step: ')[1] for line in lines] == ['w2 on bin 2, 1250 steps', 'refine on bin 2, 600 steps']
    assert all(float(line.split()[0]) > 0 for line in lines)


def test_a_reference_run_stops_with_its_checkpoint_and_goes_on_from_it(tmp_path, capsys):
    """real_size.py --checkpoint --stop-after: a run longer than a session stops, keeps its state and
    says its scores are of a run not finished; the next call goes on from that step to the end."""
    import real_size
    stand_in_pair(tmp_path, 40, 1.5, 28)
    ckpt = tmp_path / 'reference.pt'
    run = ['--pair', 'tric_160', '--data', str(tmp_path), '--steps', '20', '--refine', '4', '--checkpoint', str(ckpt)]
    assert real_size.main(run + ['--stop-after', '0.001']) == 0
    first = capsys.readouterr().out
    assert 'stopped at step 1 of 24: not finished' in first and 'start_to_prediction_s' not in first
    assert ckpt.exists()
    assert real_size.main(run) == 0
    second = capsys.readouterr().out
    assert 'resumed' in second and 'at step 1 of 24' in second and 'stopped' not in second
    assert 'trained_s_all_sessions' in second and 'start_to_prediction_s' not in second
    assert math.isfinite(float(second.split('fsc_prediction_masked_A ')[1].split()[0]))
    with pytest.raises(SystemExit, match='cannot go on from .*reference.pt: the checkpoint was trained with other settings'):
        real_size.main(run + ['--refine', '5'])             # other settings than the checkpoint's: one line says so


def test_the_published_method_table_runs_every_step_and_scores_against_the_truth(capsys):
    """The check issue #29 asked for: the published method's rows say how many of their steps ran (a stage
    ending early without resolution is flagged REGRESSION) and how they compare with the target's own."""
    bench.published([0], steps=60, pairs=bench.PUBLISHED[1:])
    out = capsys.readouterr().out
    name = bench.PUBLISHED[1][0]
    target, run = [line[len(name):].split() for line in out.splitlines() if line.startswith(name)]
    assert target[0] == 'target' and run[:2] == ['0', '60/60']
    assert 0 < float(run[4]) < 1 and float(target[3]) == pytest.approx(0.749, abs=0.001)
    assert 'REGRESSION' not in out and 'median correlation' in out


def test_a_run_s_profile_has_a_row_per_stage_with_its_step_split(capsys):
    """#32's profile: each stage's whole step as the run takes it, and its parts, on a small pair."""
    from cryotrans_engine import Settings
    pair = bench.adk_pair(48)
    rows = bench.run_profile(pair, Settings(steps=20, resolution=7.0, refine=6), torch.device('cpu'), 2)
    assert [r[0] for r in rows] == ['w2 on bin 2', 'refine on the full grid']
    assert [r[2] for r in rows] == [20, 6] and all(r[1] > 0 for r in rows)
    for words, particles, steps, whole, flow, spl, loss, rest in rows:
        assert whole > 0 and flow > 0 and spl > 0 and loss > 0 and flow + spl + loss < 2 * whole


def test_the_growth_exponent_is_the_slope_of_time_against_particles_on_log_scales():
    assert bench.growth_exponent([(1000, 2.0), (10000, 20.0), (100000, 200.0)]) == pytest.approx(1.0)
    assert bench.growth_exponent([(1000, 5.0), (8000, 10.0)]) == pytest.approx(1 / 3)
