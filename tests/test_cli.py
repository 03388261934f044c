import os
import subprocess
import sys

import numpy as np
import pytest

from cryotrans_engine import Grid, read_map, write_map
from cryotrans_engine.cli import main
from cryotrans_engine.checkpoint import load_checkpoint
from helpers import blob, centroid

G0 = Grid((16, 18, 20), (2.0, 2.0, 2.0), (10.0, -4.0, 6.0))
G1 = Grid((24, 24, 24), (1.7, 1.7, 1.7), (8.0, -6.0, 4.0))


@pytest.fixture
def maps(tmp_path):
    write_map(tmp_path / 'initial.mrc', 4 * blob(G0, (28, 14, 22)), G0)
    write_map(tmp_path / 'target.mrc', blob(G1, (34, 14, 22)), G1)
    return tmp_path


def test_morph_writes_frames_on_the_initial_grid_a_checkpoint_and_a_loss_log(maps, capsys):
    out = maps / 'out'
    code = main(['morph', str(maps / 'initial.mrc'), str(maps / 'target.mrc'), '--out', str(out),
                 '--level0', '0.2', '--level1', '0.05', '--steps', '40', '--frames', '4', '--bin', '1',
                 '--report-every', '20', '--truth', str(maps / 'target.mrc')])
    assert code == 0
    names = sorted(os.listdir(out))
    assert names == ['flow.pt', 'frame_00.mrc', 'frame_01.mrc', 'frame_02.mrc', 'frame_03.mrc', 'frame_04.mrc',
                     'loss.log', 'open_in_chimerax.py']
    frames = [read_map(out / f'frame_{i:02d}.mrc') for i in range(5)]
    assert all(g == G0 for _, g in frames)
    first, last = frames[0][0], frames[-1][0]
    assert first.max() == pytest.approx(4.0, rel=1e-4)            # the initial map's own units
    assert centroid(last, G0)[0] > centroid(first, G0)[0] + 2      # moved towards the target
    assert len(open(out / 'loss.log').read().split('\n')) == 42
    text = capsys.readouterr().out
    assert 'step 20/40' in text and 'step 40/40' in text
    (line,) = [line for line in text.splitlines() if line.startswith('FSC(0.5) vs truth')]
    assert main(['fsc', str(out / 'frame_04.mrc'), str(maps / 'target.mrc')]) == 0    # the same definition
    generated = capsys.readouterr().out.split(',')[0].removeprefix('FSC(0.5) ')
    assert line == (f'FSC(0.5) vs truth, as cryotrans fsc MAP TRUTH gives it: generated {generated}, target 3.40 Å '
                    f'(Nyquist: above 0.5 at every shell), initial ' + line.split('initial ')[1])
    assert 'correlation with the target: prediction' in text and 'POOR RESULT' not in text   # a good run
    assert 'both as they are: give the resolution' in text


def test_a_run_whose_refinement_moves_coarse_particles_says_when_it_polishes_with_finer_ones(maps, capsys):
    code = main(['morph', str(maps / 'initial.mrc'), str(maps / 'target.mrc'), '--out', str(maps / 'out'),
                 '--level0', '0.2', '--level1', '0.05', '--steps', '6', '--resolution', '8', '--refine', '12',
                 '--particles', '60'])
    assert code == 0
    text = capsys.readouterr().out
    assert 'refine on the full grid (particles from bin' in text and ', 10 steps; refine on the full grid' in text
    (line,) = [line for line in text.splitlines() if 'polishing' in line]
    assert line.startswith('16 steps done, loss ') and 'now 2 steps polishing with finer particles (' in line
    assert len(open(maps / 'out' / 'loss.log').read().split('\n')) == 20


def test_a_run_that_learns_nothing_says_it_is_poor_and_what_to_change(maps, capsys):
    code = main(['morph', str(maps / 'initial.mrc'), str(maps / 'target.mrc'), '--out', str(maps / 'out'),
                 '--level0', '0.2', '--level1', '0.05', '--steps', '6', '--lr', '1e-9', '--resolution', '8',
                 '--refine', '2', '--bin', '1'])
    assert code == 0
    text = capsys.readouterr().out
    assert 'POOR RESULT: the prediction fits the target no better than the initial map does' in text
    assert 'both at 8 Å' in text and 'level0 auto' in text


def test_morph_with_the_targets_resolution_refines_after_the_loss(maps, capsys):
    out = maps / 'out'
    code = main(['morph', str(maps / 'initial.mrc'), str(maps / 'target.mrc'), '--out', str(out),
                 '--level0', '0.2', '--level1', '0.05', '--steps', '6', '--resolution', '8', '--refine', '4'])
    assert code == 0
    assert len(open(out / 'loss.log').read().split('\n')) == 12
    text = capsys.readouterr().out
    assert 'refine on the full grid, 4 steps' in text and 'now 4 steps refining at 8 Å' in text and 'step 10/10' in text
    assert main(['morph', str(maps / 'initial.mrc'), str(maps / 'target.mrc'), '--out', str(maps / 'no'),
                 '--refine', '4']) == 2
    assert 'resolution' in capsys.readouterr().err and not (maps / 'no').exists()


def test_frames_from_a_saved_flow_match_the_trained_ones(maps):
    out = maps / 'out'
    main(['morph', str(maps / 'initial.mrc'), str(maps / 'target.mrc'), '--out', str(out),
          '--level0', '0.2', '--level1', '0.05', '--steps', '5', '--frames', '3'])
    assert main(['frames', str(out / 'flow.pt'), str(maps / 'initial.mrc'), '--out', str(maps / 'again')]) == 0
    for i in range(4):
        a, _ = read_map(out / f'frame_{i:02d}.mrc')
        b, _ = read_map(maps / 'again' / f'frame_{i:02d}.mrc')
        assert np.allclose(a, b, atol=1e-5)


def test_bad_input_is_one_clear_message_and_writes_nothing(maps, capsys):
    (maps / 'notamap.mrc').write_text('hello')
    out = maps / 'out'
    assert main(['morph', str(maps / 'initial.mrc'), str(maps / 'notamap.mrc'), '--out', str(out)]) == 2
    assert 'notamap.mrc' in capsys.readouterr().err
    assert main(['morph', str(maps / 'initial.mrc'), str(maps / 'target.mrc'), '--out', str(out),
                 '--level1', '100']) == 2
    assert 'level1' in capsys.readouterr().err
    assert main(['morph', str(maps / 'initial.mrc'), str(maps / 'target.mrc'), '--out', str(out),
                 '--frames', '0']) == 2
    assert not out.exists()


def test_installed_command_runs_fsc(maps):
    command = os.path.join(os.path.dirname(sys.executable), 'cryotrans')
    result = subprocess.run([command, 'fsc', str(maps / 'initial.mrc'), str(maps / 'initial.mrc')],
                            capture_output=True, encoding='utf-8', check=True)
    assert 'FSC(0.5) 4.00 Å' in result.stdout and 'correlation 1.0000' in result.stdout


def test_fsc_within_a_mask_on_another_grid_and_its_curve_as_csv(maps, capsys):
    """Two maps alike at one blob and not at another: within a soft mask of the first blob (on the
    target's grid, read at the first map's voxels) they are one map."""
    write_map(maps / 'a.mrc', 4 * blob(G0, (20, 14, 22)) + blob(G0, (38, 14, 22)), G0)
    write_map(maps / 'b.mrc', 4 * blob(G0, (20, 14, 22)) + blob(G0, (36, 18, 20)), G0)
    write_map(maps / 'mask.mrc', np.clip(blob(G1, (20, 14, 22)) / 0.3, 0, 1), G1)    # 1 out to 6 Å, then soft
    pair = [str(maps / 'a.mrc'), str(maps / 'b.mrc')]
    assert main(['fsc', *pair]) == 0
    whole = capsys.readouterr().out
    assert main(['fsc', *pair, '--mask', str(maps / 'mask.mrc'), '--csv', str(maps / 'curve.csv')]) == 0
    masked = capsys.readouterr().out
    assert masked.endswith(f'(within the mask); curve in {maps / "curve.csv"}\n')
    assert float(masked.split('correlation ')[1].split()[0]) > 0.999 > float(whole.split('correlation ')[1].split()[0])
    rows = (maps / 'curve.csv').read_text().splitlines()
    assert rows[0] == 'shell,frequency_per_A,resolution_A,fsc'
    cells = [r.split(',') for r in rows[1:]]
    assert [int(c[0]) for c in cells] == list(range(len(cells))) and len(cells) == 11   # 1/(20 × 2 Å) steps to 1/4 Å
    assert cells[0][1:3] == ['0', 'inf'] and float(cells[-1][2]) == pytest.approx(4.0)
    assert all(float(c[1]) * float(c[2]) == pytest.approx(1, rel=1e-5) for c in cells[1:])
    assert all(-1 <= float(c[3]) <= 1 for c in cells)
    before = (maps / 'mask.mrc').read_bytes()
    assert main(['fsc', *pair, '--mask', str(maps / 'mask.mrc'), '--csv', str(maps / 'mask.mrc')]) == 2
    assert 'mask.mrc is the mask: write the result to another file' in capsys.readouterr().err
    assert (maps / 'mask.mrc').read_bytes() == before and not (maps / 'mask.mrc.tmp').exists()


def test_a_truth_that_cannot_be_compared_is_refused_before_training(maps, capsys):
    far = Grid(G1.shape, G1.voxel_size, (400.0, -6.0, 4.0))
    write_map(maps / 'far.mrc', blob(far, (430, 14, 22)), far)
    assert main(['morph', str(maps / 'initial.mrc'), str(maps / 'target.mrc'), '--out', str(maps / 'out'),
                 '--truth', str(maps / 'far.mrc')]) == 2
    assert f'{maps / "far.mrc"} does not overlap {maps / "target.mrc"} where they sit' in capsys.readouterr().err
    assert not (maps / 'out').exists()


@pytest.mark.parametrize('make, said', [
    (lambda d: write_map(d / 'b.mrc', blob(Grid(G0.shape, G0.voxel_size, (300.0, 0.0, 0.0)), (328, 14, 22)),
                         Grid(G0.shape, G0.voxel_size, (300.0, 0.0, 0.0))),
     'b.mrc does not overlap'),
    (lambda d: write_map(d / 'b.mrc', np.zeros(G0.shape, np.float32), G0), 'b.mrc is all zero'),
    (lambda d: write_map(d / 'mask.mrc', 3 * blob(G0, (28, 14, 22)), G0), 'mask.mrc runs from'),
    (lambda d: os.mkdir(d / 'curve.csv'), 'the FSC curve cannot be written to')])
def test_fsc_refuses_what_cannot_be_compared_in_one_line_and_exit_2(maps, make, said):
    write_map(maps / 'b.mrc', blob(G0, (28, 14, 22)), G0)
    write_map(maps / 'mask.mrc', blob(G0, (28, 14, 22)), G0)
    make(maps)
    command = os.path.join(os.path.dirname(sys.executable), 'cryotrans')
    result = subprocess.run([command, 'fsc', str(maps / 'initial.mrc'), str(maps / 'b.mrc'), '--mask',
                             str(maps / 'mask.mrc'), '--csv', str(maps / 'curve.csv')],
                            capture_output=True, encoding='utf-8')
    assert result.returncode == 2 and result.stdout == ''
    (line,) = result.stderr.splitlines()
    assert line.startswith('cryotrans: error: ') and said in line


def test_a_partitioned_morph_logs_each_region_and_its_frames_come_back_from_its_flow(maps, capsys):
    labels = np.ones(G0.shape, np.float32)
    labels[:, :, 9:] = 2                                   # two regions either side of x = 28 Å
    write_map(maps / 'regions.mrc', labels, G0)
    out = maps / 'out'
    code = main(['morph', str(maps / 'initial.mrc'), str(maps / 'target.mrc'), '--out', str(out),
                 '--level0', '0.2', '--level1', '0.05', '--steps', '8', '--frames', '3',
                 '--partition', str(maps / 'regions.mrc'), '--rigidity', '0.2,0.4'])
    assert code == 0
    text = capsys.readouterr().out
    assert '2 regions of ' in text and 'rigidity 0.2, 0.4 (deformation)' in text
    assert 'region 1: rotation ' in text and 'region 2: rotation ' in text and 'RMS off rigid' in text
    assert main(['frames', str(out / 'flow.pt'), str(maps / 'initial.mrc'), '--out', str(maps / 'again')]) == 0
    for i in range(4):
        a, _ = read_map(out / f'frame_{i:02d}.mrc')
        b, _ = read_map(maps / 'again' / f'frame_{i:02d}.mrc')
        assert np.allclose(a, b, atol=1e-5)
    other = Grid((8, 9, 10), (4.0, 4.0, 4.0), (10.0, -4.0, 6.0))
    write_map(maps / 'coarse.mrc', 4 * blob(other, (28, 14, 22)), other)
    assert main(['frames', str(out / 'flow.pt'), str(maps / 'coarse.mrc'), '--out', str(maps / 'x')]) == 2
    assert 'trained with regions on a (20, 18, 16) grid' in capsys.readouterr().err


def test_partition_auto_prints_its_bodies_as_soon_as_found_and_its_total_holds(tmp_path, capsys):
    import re
    grid = Grid((20, 20, 20), (2.0, 2.0, 2.0), (10.0, -20.0, 30.0))
    write_map(tmp_path / 'initial.mrc', blob(grid, (22, 0, 50), 3.0) + blob(grid, (38, 0, 50), 3.0), grid)
    write_map(tmp_path / 'target.mrc', blob(grid, (19, 0, 50), 3.0) + blob(grid, (41, 0, 50), 3.0), grid)
    out = tmp_path / 'out'
    assert main(['morph', str(tmp_path / 'initial.mrc'), str(tmp_path / 'target.mrc'), '--out', str(out),
                 '--level0', '0.1', '--level1', '0.1', '--steps', '150', '--bin', '1', '--frames', '3',
                 '--report-every', '25', '--partition', 'auto']) == 0
    lines = capsys.readouterr().out.splitlines()
    found = next(i for i, line in enumerate(lines) if line.startswith('partition auto: 2 bodies'))
    steps = [(i, int(k), int(n)) for i, line in enumerate(lines) if (m := re.match(r'step (\d+)/(\d+) ', line))
             for k, n in [m.groups()]]
    assert {n for _, _, n in steps} == {150}                               # the total from the start
    assert [k for i, k, _ in steps if i < found] == [25, 50]               # found at step 75, mid-run:
    assert [k for i, k, _ in steps if i > found] == [75, 100, 125, 150]    # printed then, not at the end
    assert lines[found + 1].startswith('body 1: ') and lines[found + 2].startswith('body 2: ')
    summary = next(i for i, line in enumerate(lines) if line.startswith('finished 4 frames'))
    assert found < summary and sum(line.startswith('partition auto: 2 bodies') for line in lines) == 1
    assert set(np.unique(read_map(out / 'regions.mrc')[0])) == {0, 1, 2}


def test_bad_partitions_are_one_clear_message_and_write_nothing(maps, capsys):
    out = maps / 'out'
    labels = np.ones(G0.shape, np.float32)
    labels[:, :, 9:] = 2
    write_map(maps / 'regions.mrc', labels, G0)
    base = ['morph', str(maps / 'initial.mrc'), str(maps / 'target.mrc'), '--out', str(out),
            '--level0', '0.2', '--level1', '0.05', '--partition', str(maps / 'regions.mrc')]
    assert main(base + ['--rigidity', '1,2,3']) == 2
    assert '3 rigidity values for 2 regions' in capsys.readouterr().err
    write_map(maps / 'regions.mrc', np.where(labels == 2, 3, labels), G0)
    assert main(base) == 2
    assert 'region 2 of 1–3 has no voxels' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(base + ['--rigidity', 'stiff'])
    assert 'rigidity must be a number' in capsys.readouterr().err
    assert not out.exists()


def test_a_diverging_run_stops_at_once_says_what_to_change_and_keeps_the_last_good_checkpoint(maps, capsys):
    base = ['morph', str(maps / 'initial.mrc'), str(maps / 'target.mrc'), '--level0', '0.2', '--level1', '0.05',
            '--steps', '40', '--bin', '1']
    assert main(base + ['--out', str(maps / 'a'), '--lr', '1e5']) == 2
    err = capsys.readouterr().err
    assert 'training diverged at step 2' in err and 'lower lr (now 100000; the default is 0.001)' in err
    assert sorted(os.listdir(maps / 'a')) == ['loss.log']                       # no frames that look whole
    assert main(base + ['--out', str(maps / 'b'), '--lr', '0.05', '--report-every', '1']) == 2
    err = capsys.readouterr().err
    assert 'most of the density out of the box' in err and 'flow.pt keeps step' in err
    assert main(['frames', str(maps / 'b' / 'flow.pt'), str(maps / 'initial.mrc'), '--out', str(maps / 'c')]) == 0
    frame, _ = read_map(maps / 'c' / 'frame_10.mrc')
    first, _ = read_map(maps / 'c' / 'frame_00.mrc')
    assert frame.sum() > 0.5 * first.sum()                                     # the kept flow is a good one
    for bad in ('nan', 'inf', '-1'):
        assert main(base + ['--out', str(maps / 'd'), '--lr', bad]) == 2
        assert 'lr must be a positive number' in capsys.readouterr().err
    assert main(base + ['--out', str(maps / 'd'), '--resolution', 'inf']) == 2
    assert not (maps / 'd').exists()


def test_frames_refuse_a_flow_whose_weights_are_not_finite(maps, capsys):
    from cryotrans_engine import load_checkpoint, save_checkpoint
    out = maps / 'out'
    main(['morph', str(maps / 'initial.mrc'), str(maps / 'target.mrc'), '--out', str(out), '--level0', '0.2',
          '--level1', '0.05', '--steps', '2'])
    state = load_checkpoint(out / 'flow.pt')
    next(iter(state['flow'].values())).fill_(float('nan'))
    save_checkpoint(out / 'nan.pt', state)
    capsys.readouterr()
    assert main(['frames', str(out / 'nan.pt'), str(maps / 'initial.mrc'), '--out', str(maps / 'f')]) == 2
    assert 'diverged flow' in capsys.readouterr().err and not (maps / 'f').exists()


def test_checkpoints_that_are_not_ours_or_do_not_fit_get_one_clear_message(maps, capsys):
    import torch
    out = maps / 'out'
    base = ['morph', str(maps / 'initial.mrc'), str(maps / 'target.mrc'), '--level0', '0.2', '--level1', '0.05']
    assert main(base + ['--out', str(out), '--steps', '3']) == 0
    (maps / 'noise.pt').write_bytes(os.urandom(2000))
    torch.save({'format': 1}, maps / 'bare.pt')
    cases = [(['frames', str(maps / 'noise.pt'), str(maps / 'initial.mrc'), '--out', str(maps / 'x')],
              'not a CryoTRANS checkpoint'),
             (['frames', str(maps / 'bare.pt'), str(maps / 'initial.mrc'), '--out', str(maps / 'x')],
              'an incomplete CryoTRANS checkpoint (no settings, flow, step, grid, level0)'),
             (['frames', str(maps / 'none.pt'), str(maps / 'initial.mrc'), '--out', str(maps / 'x')],
              'no such checkpoint'),
             (['frames', str(out / 'flow.pt'), str(maps / 'target.mrc'), '--out', str(maps / 'x')],
              'the flow was trained on a box from (9.0, -5.0, 5.0) to (49.0, 31.0, 37.0) Å'),
             (base + ['--out', str(maps / 'x'), '--steps', '4', '--resume', str(out / 'flow.pt')],
              'other settings: steps 3 (here 4)')]
    capsys.readouterr()
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and 'weights_only' not in err and 'Traceback' not in err
    assert not (maps / 'x').exists()


def test_a_run_goes_on_from_its_checkpoint_with_its_own_settings_and_more_steps(maps, capsys):
    out = maps / 'out'
    base = ['morph', str(maps / 'initial.mrc'), str(maps / 'target.mrc'), '--out', str(out)]
    assert main(base + ['--level0', '0.2', '--level1', '0.05', '--steps', '3', '--seed', '2']) == 0
    capsys.readouterr()
    assert main(base + ['--resume', str(out / 'flow.pt'), '--more', '2']) == 0     # no settings, no levels typed
    text = capsys.readouterr().out
    assert 'level0 0.2 (the checkpoint\'s)' in text and 'resuming at step 3 of 5' in text and 'step 5/5' in text
    state = load_checkpoint(out / 'flow.pt')
    assert state['step'] == 5 and state['more'] == 2 and state['settings']['seed'] == 2
    assert len(open(out / 'loss.log').read().splitlines()) == 1 + 5
    assert main(base + ['--more', '2']) == 2
    assert '--more adds steps to a run from its checkpoint: give --resume' in capsys.readouterr().err


def test_where_results_go_is_checked_before_training(maps, capsys):
    (maps / 'taken').write_text('not a folder')
    base = ['morph', str(maps / 'initial.mrc'), str(maps / 'target.mrc'), '--level0', '0.2', '--level1', '0.05',
            '--steps', '3']
    assert main(base + ['--out', str(maps / 'taken')]) == 2
    assert 'taken is a file, not a folder' in capsys.readouterr().err
    assert main(base + ['--out', str(maps / 'taken' / 'inside')]) == 2
    err = capsys.readouterr().err
    assert 'results cannot be written to' in err and 'choose another folder' in err and 'step 1' not in err
    assert (maps / 'taken').read_text() == 'not a folder'


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists('/usr/bin/unshare'),
                    reason='a read-only mount needs root and unshare (as CI has)')
def test_a_read_only_out_folder_is_refused_before_training(maps):
    """Root writes through chmod, so a real read-only tmpfs in a private mount namespace."""
    mount = maps / 'ro'
    mount.mkdir()
    command = os.path.join(os.path.dirname(sys.executable), 'cryotrans')
    script = (f'mount -t tmpfs -o ro tmpfs {mount} && {command} morph {maps / "initial.mrc"} {maps / "target.mrc"} '
              f'--level0 0.2 --level1 0.05 --steps 3 --out {mount / "out"}')
    result = subprocess.run(['unshare', '-m', 'sh', '-c', script], capture_output=True, encoding='utf-8')
    assert result.returncode == 2, result.stderr
    assert 'results cannot be written to' in result.stderr and 'Read-only file system' in result.stderr
    assert 'Traceback' not in result.stderr and 'step 1' not in result.stdout


def test_files_that_are_not_whole_maps_say_what_is_wrong(maps, capsys):
    whole = open(maps / 'initial.mrc', 'rb').read()
    (maps / 'cut.mrc').write_bytes(whole[:len(whole) // 2])
    (maps / 'text.mrc').write_text('not a map\n' * 200)
    for name, words in (('cut.mrc', 'is truncated: its header promises more data than the file holds'),
                        ('text.mrc', 'not an MRC/CCP4 map')):
        assert main(['morph', str(maps / name), str(maps / 'target.mrc'), '--out', str(maps / 'o')]) == 2
        err = capsys.readouterr().err
        assert words in err and 'Warning' not in err, err
    assert not (maps / 'o').exists()


def test_the_same_file_twice_a_bad_truth_and_impossible_resolutions_fail_before_training(maps, capsys):
    i, t = str(maps / 'initial.mrc'), str(maps / 'target.mrc')
    assert main(['morph', i, i, '--out', str(maps / 'o')]) == 2
    assert 'is both the initial and the target map' in capsys.readouterr().err
    (maps / 'bad.mrc').write_text('x')
    assert main(['morph', i, t, '--out', str(maps / 'o'), '--truth', str(maps / 'bad.mrc')]) == 2
    assert 'bad.mrc' in capsys.readouterr().err
    for res, words in (('1', 'finer than the initial map\'s grid can show (2 × its 2 Å voxels = 4 Å)'),
                       ('500', 'larger than the box')):
        assert main(['morph', i, t, '--out', str(maps / 'o'), '--resolution', res]) == 2
        assert words in capsys.readouterr().err
    assert not (maps / 'o').exists()


def _limited_morph(folder, limit):
    """The CLI on a 48³ pair in a child process whose files may not grow past limit bytes (RLIMIT_FSIZE)."""
    import resource
    g = Grid((48, 48, 48), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))       # a frame: 48³ x 4 + 1024 = 443,392 bytes
    write_map(folder / 'big0.mrc', 4 * blob(g, (44, 48, 48), 6), g)
    write_map(folder / 'big1.mrc', blob(g, (52, 48, 48), 6), g)
    code = 'import sys; from cryotrans_engine.cli import main; sys.exit(main(sys.argv[1:]))'
    argv = ['morph', str(folder / 'big0.mrc'), str(folder / 'big1.mrc'), '--out', str(folder / 'out'),
            '--level0', '0.2', '--level1', '0.05', '--steps', '3', '--frames', '3', '--bin', '1']
    return subprocess.run([sys.executable, '-c', code] + argv, capture_output=True, encoding='utf-8',
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))


def test_a_file_size_limit_on_the_frames_leaves_no_partial_set_and_keeps_the_checkpoint(tmp_path):
    result = _limited_morph(tmp_path, 300_000)           # the checkpoint (~140 kB) fits, a frame does not
    assert result.returncode == 2, result.stderr
    assert 'writing the frames to' in result.stderr and 'none of this set was written' in result.stderr
    assert 'keeps the trained flow: cryotrans frames' in result.stderr and 'Traceback' not in result.stderr
    names = sorted(os.listdir(tmp_path / 'out'))
    assert not any(n.startswith(('frame_', '.frame-', 'tmp')) for n in names), names
    assert 'flow.pt' in names


def test_a_file_size_limit_on_the_checkpoint_is_said_in_words_and_leaves_nothing_half_written(tmp_path):
    result = _limited_morph(tmp_path, 50_000)
    assert result.returncode == 2, result.stderr
    assert 'writing the checkpoint' in result.stderr and 'could not be written whole' in result.stderr
    assert 'Traceback' not in result.stderr and 'unexpected pos' in result.stderr   # torch's words, explained
    assert sorted(os.listdir(tmp_path / 'out')) in ([], ['loss.log'])


def test_a_folder_holding_an_older_runs_frames_ends_with_only_the_new_set(maps):
    out = maps / 'out'
    base = ['morph', str(maps / 'initial.mrc'), str(maps / 'target.mrc'), '--out', str(out),
            '--level0', '0.2', '--level1', '0.05', '--steps', '2', '--bin', '1']
    assert main(base + ['--frames', '6']) == 0
    assert main(base + ['--frames', '3']) == 0
    assert sorted(n for n in os.listdir(out) if n.startswith('frame_')) == [f'frame_0{i}.mrc' for i in range(4)]


def test_a_full_disk_while_the_frames_are_written_leaves_no_partial_set(tmp_path):
    """A real full disk: a 700 kB tmpfs in a private mount namespace holds the checkpoint and one frame."""
    _limited_morph(tmp_path, 10 ** 9)                    # writes the 48³ pair (and a run we do not need)
    mount = tmp_path / 'small'
    mount.mkdir()
    command = os.path.join(os.path.dirname(sys.executable), 'cryotrans')
    script = (f'mount -t tmpfs -o size=700k tmpfs {mount} && {command} morph {tmp_path / "big0.mrc"} '
              f'{tmp_path / "big1.mrc"} --level0 0.2 --level1 0.05 --steps 3 --frames 3 --bin 1 '
              f'--out {mount / "out"}; echo "rc=$?"; ls -a {mount / "out"}')
    result = subprocess.run(['unshare', '-m', 'sh', '-c', script], capture_output=True, encoding='utf-8')
    assert 'rc=2' in result.stdout, result.stdout + result.stderr
    assert 'No space left on device' in result.stderr and 'none of this set was written' in result.stderr
    listing = result.stdout.split('rc=2')[1].split()
    assert 'flow.pt' in listing and not any(n.startswith(('frame_', '.frame-', 'tmp')) for n in listing), listing


def test_particles_limits_what_a_step_moves_and_a_negative_limit_is_refused(maps, capsys):
    base = ['morph', str(maps / 'initial.mrc'), str(maps / 'target.mrc'), '--level0', '0.2', '--level1', '0.05',
            '--steps', '4']
    assert main(base + ['--out', str(maps / 'few'), '--particles', '40']) == 0
    text = capsys.readouterr().out
    assert '461 particles' in text and 'schedule: w2 on the full grid (particles from bin 3), 4 steps' in text
    assert load_checkpoint(maps / 'few' / 'flow.pt')['settings']['particles'] == 40
    assert len(os.listdir(maps / 'few')) == 14         # 11 frames, flow.pt, loss.log, open_in_chimerax.py
    assert main(base + ['--out', str(maps / 'bad'), '--particles', '-1']) == 2
    assert 'particles must be 0 (every particle in every step) or the most a step may move' in capsys.readouterr().err
    assert not os.path.exists(maps / 'bad')


def test_a_second_run_into_a_folder_another_run_is_writing_to_is_refused_and_writes_nothing(maps, capsys):
    """Two terminals, one --out: the second is told who holds the folder and leaves the first's files alone;
    once the first has ended (Ctrl-C here: it keeps its frames), the folder is free again."""
    import signal
    import time
    out = maps / 'out'
    command = os.path.join(os.path.dirname(sys.executable), 'cryotrans')
    base = ['morph', str(maps / 'initial.mrc'), str(maps / 'target.mrc'), '--out', str(out),
            '--level0', '0.2', '--level1', '0.05', '--bin', '1', '--report-every', '5']
    first = subprocess.Popen([command] + base + ['--steps', '100000'], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, encoding='utf-8')
    try:
        deadline = time.monotonic() + 120
        while not (out / 'flow.pt').exists():             # the first run holds the folder and has checkpointed
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.2)
        before = {n: os.path.getmtime(out / n) for n in os.listdir(out) if n != 'flow.pt'}
        assert main(base + ['--steps', '2']) == 2
        err = capsys.readouterr().err
        assert f'{out} is in use: cryotrans morph initial.mrc (process {first.pid} on ' in err
        assert 'choose another folder, or wait for that run to end' in err
        assert not any(n.startswith('frame_') for n in os.listdir(out))
        assert {n: os.path.getmtime(out / n) for n in os.listdir(out) if n != 'flow.pt'} == before
    finally:
        first.send_signal(signal.SIGINT)                  # stops after its step and writes its frames
        stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 130, stderr
    assert 'stopped at step' in stdout
    assert '.cryotrans-run' not in os.listdir(out)       # given up at the end
    assert main(base + ['--steps', '2']) == 0


def test_a_claim_left_by_a_run_that_died_is_taken_over(maps, capsys):
    out = maps / 'out'
    out.mkdir()
    gone = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True,
                          encoding='utf-8', check=True)
    import socket
    (out / '.cryotrans-run').write_text(f'{int(gone.stdout)} {socket.gethostname()} cryotrans morph killed.mrc\n')
    assert main(['morph', str(maps / 'initial.mrc'), str(maps / 'target.mrc'), '--out', str(out),
                 '--level0', '0.2', '--level1', '0.05', '--steps', '2', '--bin', '1']) == 0
    assert '.cryotrans-run' not in os.listdir(out) and (out / 'frame_10.mrc').exists()


def test_move_carries_a_model_along_a_saved_flow_into_pdb_and_mmcif(tmp_path, capsys):
    """The flow of a run that moved a blob +8 Å in x carries atoms sitting on the blob about as far."""
    from cryotrans_engine.models import read_model
    g = Grid((20, 20, 20), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
    write_map(tmp_path / 'a.mrc', blob(g, (16, 20, 20)), g)
    write_map(tmp_path / 'b.mrc', blob(g, (24, 20, 20)), g)
    assert main(['morph', str(tmp_path / 'a.mrc'), str(tmp_path / 'b.mrc'), '--out', str(tmp_path / 'run'),
                 '--level0', '0.05', '--level1', '0.05', '--steps', '120', '--bin', '1', '--frames', '4']) == 0
    atoms = ''.join(f'ATOM  {i + 1:5d}  CA  ALA A{i + 1:4d}    {x:8.3f}{20.0:8.3f}{20.0:8.3f}  1.00  0.00           C\n'
                    for i, x in enumerate((14.0, 16.0, 18.0)))
    (tmp_path / 'model.pdb').write_text(atoms + 'END\n')
    capsys.readouterr()
    flow = str(tmp_path / 'run' / 'flow.pt')
    assert main(['move', str(tmp_path / 'model.pdb'), flow, '--out', str(tmp_path / 'moved.pdb')]) == 0
    assert '3 atoms of' in capsys.readouterr().out
    _, before = read_model(tmp_path / 'model.pdb')
    _, after = read_model(tmp_path / 'moved.pdb')
    assert np.allclose(after[:, 0] - before[:, 0], 8, atol=1.0) and np.allclose(after[:, 1:], before[:, 1:], atol=1.0)
    assert main(['move', str(tmp_path / 'model.pdb'), flow, '--out', str(tmp_path / 'moved.cif'), '--frames']) == 0
    structure, every = read_model(tmp_path / 'moved.cif')
    assert len(structure) == 5 and np.allclose(every[:3], before, atol=1e-3)
    assert np.allclose(every[-3:], after, atol=1e-3)
    assert main(['move', str(tmp_path / 'model.pdb'), flow, '--out', str(tmp_path / 'model.pdb')]) == 2
    assert 'is the model being moved' in capsys.readouterr().err
    assert main(['move', str(tmp_path / 'model.pdb'), flow, '--out', flow]) == 2
    assert 'flow.pt is the flow moving it' in capsys.readouterr().err and load_checkpoint(flow)['step'] == 120
    assert main(['move', str(tmp_path / 'nothing.pdb'), flow, '--out', str(tmp_path / 'x.pdb')]) == 2
    assert 'nothing.pdb: no such file' in capsys.readouterr().err


def _pair_files(folder, n=24):
    g = Grid((n, n, n), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
    write_map(folder / 'a.mrc', blob(g, (20, 24, 24)), g)
    write_map(folder / 'b.mrc', blob(g, (28, 24, 24)), g)
    return [str(folder / 'a.mrc'), str(folder / 'b.mrc'), '--level0', '0.05', '--level1', '0.05', '--bin', '1']


def _left_behind(folder):
    """Partial or temporary files, or a folder claim, left in a results folder."""
    return [n for n in os.listdir(folder) if n.startswith(('.', 'tmp')) or n.endswith(('.part', '.tmp'))]


def _cli_process(argv):
    code = 'import sys; from cryotrans_engine.cli import main; sys.exit(main(sys.argv[1:]))'
    return subprocess.Popen([sys.executable, '-u', '-c', code] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            encoding='utf-8', env={**os.environ, 'OMP_NUM_THREADS': '1'})


def _wait_for(process, words):
    seen = []
    for line in process.stdout:
        seen.append(line)
        if words in line:
            return seen
    raise AssertionError(f'{words!r} never printed: {"".join(seen)} {process.stderr.read()}')


def test_sigterm_mid_run_writes_frames_and_a_resumable_checkpoint_and_exits_143(tmp_path):
    """What a cluster scheduler sends at its time limit: the run stops after its step, keeps everything."""
    import signal
    out = tmp_path / 'out'
    argv = ['morph', *_pair_files(tmp_path), '--out', str(out), '--steps', '300', '--frames', '4', '--report-every', '10']
    process = _cli_process(argv)
    _wait_for(process, 'step 20/300')
    process.send_signal(signal.SIGTERM)
    rest, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert 'SIGTERM: stopping after this step' in rest and 'stopped by SIGTERM at step' in rest, rest
    assert 'Traceback' not in err and err == ''
    step = load_checkpoint(out / 'flow.pt')['step']
    assert 20 <= step < 300 and f'at step {step} of 300' in rest
    assert sorted(n for n in os.listdir(out) if n.startswith('frame_')) == [f'frame_{i:02d}.mrc' for i in range(5)]
    assert len((out / 'loss.log').read_text().splitlines()) == step + 1 and _left_behind(out) == []
    resumed = subprocess.run([sys.executable, '-c', 'import sys; from cryotrans_engine.cli import main; '
                              'sys.exit(main(sys.argv[1:]))'] + argv + ['--resume', str(out / 'flow.pt')],
                             capture_output=True, encoding='utf-8')
    assert resumed.returncode == 0 and f'resuming at step {step} of 300' in resumed.stdout, resumed.stderr


def test_a_second_ctrl_c_stops_at_once_with_one_line_leaving_no_partial_files(tmp_path):
    import signal
    out = tmp_path / 'out'
    process = _cli_process(['morph', *_pair_files(tmp_path, 32), '--out', str(out), '--steps', '100000',
                            '--report-every', '5', '--sinkhorn-iterations', '400'])      # slow steps: the second
    _wait_for(process, 'step 10/')                                                      # signal comes mid-step
    process.send_signal(signal.SIGINT)
    _wait_for(process, 'stopping after this step')
    process.send_signal(signal.SIGINT)
    rest, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert err.count('\n') == 1 and err.startswith('cryotrans: stopped by Ctrl-C (SIGINT); ') and 'Traceback' not in err
    assert 'flow.pt holds step' in err and load_checkpoint(out / 'flow.pt')['step'] >= 5
    frames = [n for n in os.listdir(out) if n.startswith('frame_')]
    assert len(frames) in (0, 11) and _left_behind(out) == []


def test_a_signal_while_starting_or_writing_frames_ends_at_once_with_nothing_half_written(tmp_path, monkeypatch,
                                                                                          capsys):
    """Real signals, at chosen moments: while the maps are prepared (nothing written), and half way through
    the frames (none of them left, the checkpoint whole)."""
    import signal
    import cryotrans_engine.files as files
    import cryotrans_engine.pair as pair
    argv = ['morph', *_pair_files(tmp_path), '--steps', '12', '--frames', '4']
    before = signal.getsignal(signal.SIGINT)     # Python's own, or SIG_IGN where a shell started it in the background
    prepare = pair.prepare_pair
    monkeypatch.setattr(pair, 'prepare_pair', lambda *a, **k: signal.raise_signal(signal.SIGINT) or prepare(*a, **k))
    assert main(argv + ['--out', str(tmp_path / 'first')]) == 130
    assert capsys.readouterr().err == 'cryotrans: stopped by Ctrl-C (SIGINT); nothing was written\n'
    assert not (tmp_path / 'first').exists()
    monkeypatch.setattr(pair, 'prepare_pair', prepare)
    write, written = files.write_map, []

    def third_frame_interrupted(path, values, grid):
        written.append(path)
        if len(written) == 3:
            signal.raise_signal(signal.SIGTERM)
        write(path, values, grid)
    monkeypatch.setattr(files, 'write_map', third_frame_interrupted)
    out = tmp_path / 'second'
    assert main(argv + ['--out', str(out)]) == 143
    err = capsys.readouterr().err
    assert err == f'cryotrans: stopped by SIGTERM; {out / "flow.pt"} holds step 12: go on with the same command ' \
                  f'and --resume {out / "flow.pt"}\n'
    assert sorted(os.listdir(out)) == ['flow.pt', 'loss.log']
    assert signal.getsignal(signal.SIGINT) is before       # handlers given back


def test_no_command_writes_over_or_removes_its_own_inputs(tmp_path, capsys):
    """Inputs inside the results folder, named like its outputs: refused before anything is written."""
    argv = _pair_files(tmp_path)
    run = tmp_path / 'run'
    assert main(['morph', *argv, '--out', str(run), '--steps', '6', '--frames', '10']) == 0
    before = {n: os.path.getmtime(run / n) for n in os.listdir(run)}
    capsys.readouterr()
    again = ['morph', str(run / 'frame_10.mrc'), argv[1], *argv[2:], '--steps', '6']
    assert main(again + ['--out', str(run)]) == 2                       # frame_10.mrc would be written over
    assert 'frame_10.mrc is one of this command\'s inputs' in capsys.readouterr().err
    assert main(again[:1] + [str(run / 'frame_05.mrc')] + again[2:] + ['--frames', '2', '--out', str(run)]) == 2
    assert 'frame_05.mrc is one of' in capsys.readouterr().err          # frame_05.mrc would be removed
    assert main(['frames', str(run / 'flow.pt'), str(run / 'frame_10.mrc'), '--out', str(run)]) == 2
    assert 'choose another folder for the results' in capsys.readouterr().err
    assert {n: os.path.getmtime(run / n) for n in os.listdir(run)} == before
    assert main(['morph', *argv, '--out', str(run), '--resume', str(run / 'flow.pt'), '--more', '2']) == 0
