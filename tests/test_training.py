import numpy as np
import pytest
import torch

from cryotrans_engine import (CheckpointError, DeviceError, Grid, SettingsError, Settings, Training, flow_from_checkpoint, load_checkpoint,
                                       prepare_pair, schedule, trajectory_frames)
from cryotrans_engine.training import choose_device
from helpers import blob, centroid

GRID = Grid((20, 20, 20), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
QUIET = dict(log=lambda message: None)


def shifted_pair(shift=8.0, grid1=GRID):
    return prepare_pair(blob(GRID, (16, 20, 20)), GRID, blob(grid1, (16 + shift, 20, 20)), grid1, 0.05, 0.05, **QUIET)


def test_a_translated_blob_is_carried_the_right_way_and_amount():
    pair = shifted_pair()
    training = Training(pair, Settings(steps=120, bin=1))
    assert training.run()
    frames = training.frames()
    assert len(frames) == 11
    xs = [centroid(f, GRID)[0] for f in frames]
    assert np.all(np.diff(xs) > 0.5)
    assert xs[0] == pytest.approx(16, abs=0.05)
    assert xs[-1] == pytest.approx(24, abs=0.5)
    assert frames[-1].sum() == pytest.approx(frames[0].sum(), rel=1e-3)


def test_frame_zero_is_the_thresholded_initial_map_in_its_own_units():
    initial = 5 * blob(GRID, (20, 20, 20))
    pair = prepare_pair(initial, GRID, blob(GRID, (22, 20, 20)), GRID, 0.5, 0.1, **QUIET)
    frames = Training(pair, Settings(steps=1, frames=3)).frames()
    assert len(frames) == 4
    assert np.allclose(frames[0], np.where(initial >= 0.5, initial, 0), atol=1e-5)


def test_different_grids_are_morphed_on_the_initial_maps_grid():
    g1 = Grid((27, 33, 30), (1.5, 1.3, 1.4), (-3.0, 2.0, -1.0))   # other box, voxel size, origin
    pair = shifted_pair(6.0, g1)
    training = Training(pair, Settings(steps=100, bin=1))
    training.run()
    frames = training.frames()
    assert frames[-1].shape == GRID.shape
    assert centroid(frames[-1], GRID)[0] == pytest.approx(22, abs=0.6)


def test_resuming_from_a_checkpoint_is_bit_for_bit_the_same_as_a_straight_run(tmp_path):
    pair = prepare_pair(blob(GRID, (16, 20, 20)), GRID, blob(GRID, (22, 18, 20)), GRID, 0.05, 0.05, **QUIET)
    settings = Settings(steps=14, bin=0, seed=3)
    straight = Training(pair, settings)
    straight.run()
    steps = []
    first = Training(pair, settings)
    first.run(stop=lambda: first.step >= 5, checkpoint_path=tmp_path / 'flow.pt')
    assert first.step == 5 and not first.finished
    resumed = Training(pair, settings, load_checkpoint(tmp_path / 'flow.pt'))
    assert resumed.run(progress=lambda step, *rest: steps.append(step))
    assert steps == list(range(6, 15))
    assert resumed.losses == straight.losses
    for a, b in zip(resumed.flow.state_dict().values(), straight.flow.state_dict().values()):
        assert torch.equal(a, b)


def test_checkpoint_holds_plain_data_and_makes_the_same_frames(tmp_path):
    pair = shifted_pair()
    training = Training(pair, Settings(steps=6, frames=4))
    training.run(checkpoint_path=tmp_path / 'flow.pt')
    state = torch.load(tmp_path / 'flow.pt', weights_only=True)
    assert state['step'] == 6 and state['settings']['frames'] == 4
    assert set(state['fingerprints']) == {'initial', 'target'}
    assert len(state['losses']) == 6
    again = trajectory_frames(flow_from_checkpoint(state), pair.initial, GRID, pair.peak)
    for a, b in zip(again, training.frames()):
        assert np.allclose(a, b, atol=1e-6)


def test_a_checkpoint_of_other_maps_is_refused(tmp_path):
    training = Training(shifted_pair(), Settings(steps=2))
    training.run(checkpoint_path=tmp_path / 'flow.pt')
    with pytest.raises(CheckpointError, match='other maps or levels than these: the target map \\(or its level1\\) '
                                              'differs; resume with'):
        Training(shifted_pair(4.0), Settings(steps=2), load_checkpoint(tmp_path / 'flow.pt'))


def test_stop_flag_ends_the_run_and_keeps_a_checkpoint(tmp_path):
    training = Training(shifted_pair(), Settings(steps=50))
    calls = []
    done = training.run(progress=lambda *a: calls.append(a), stop=lambda: len(calls) >= 3,
                        checkpoint_path=tmp_path / 'flow.pt')
    assert not done and training.step == 3
    assert load_checkpoint(tmp_path / 'flow.pt')['step'] == 3


def test_l2_refinement_lowers_the_l2_loss():
    training = Training(shifted_pair(2.0), Settings(steps=30, loss='l2', bin=1))
    training.run()
    assert training.losses[-1] < 0.5 * training.losses[0]


def test_multiscale_schedule_starts_coarse_and_ends_on_the_full_grid():
    assert schedule((64, 64, 64), 500) == [(2, 400), (1, 100)]
    plan = schedule((100, 128, 90), 1000)
    assert [f for f, _ in plan] == [4, 2, 1] and sum(n for _, n in plan) == 1000
    assert schedule((32, 32, 32), 100) == [(1, 100)]
    assert schedule((64, 64, 64), 100, bin=2) == [(2, 100)]


def test_bad_settings_are_settings_errors_naming_the_setting():
    with pytest.raises(SettingsError, match='loss'):
        Settings(loss='l1').resolved()
    with pytest.raises(SettingsError, match='steps'):
        Settings(steps=0).resolved()
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match='CUDA'):
            choose_device('cuda')
    assert choose_device('cpu') == torch.device('cpu')


def test_freed_memory_is_kept_only_while_a_large_cpu_run_trains(monkeypatch):
    import sys
    from cryotrans_engine import allocator
    from cryotrans_engine.allocator import freed_memory_kept, kept_now
    pair = prepare_pair(blob(GRID, (16, 20, 20)), GRID, blob(GRID, (20, 20, 20)), GRID, 0.05, 0.05, **QUIET)
    seen = []
    t = Training(pair, Settings(steps=4, bin=1, device='cpu'))
    t.run(progress=lambda *a: seen.append(kept_now()), stop=lambda: t.step >= 2)
    monkeypatch.setattr(allocator, 'LARGE', t.largest_tensor() - 1)    # as if the maps were large
    t.run(progress=lambda *a: seen.append(kept_now()))
    linux = sys.platform.startswith('linux')
    assert seen == [False, False, linux, linux] and not kept_now()
    big = allocator.LARGE + 1
    with freed_memory_kept('cpu', big):          # two runs at once: the first to end leaves it on
        with freed_memory_kept('cpu', big):
            pass
        assert kept_now() == linux
    assert not kept_now()
    with freed_memory_kept('cuda', big):
        assert not kept_now()


def test_a_run_is_extended_from_its_checkpoint_on_its_last_stage_bit_for_bit(tmp_path):
    """more: the same weights whether the extension starts from the finished run or mid-way."""
    pair = prepare_pair(blob(GRID, (16, 20, 20)), GRID, blob(GRID, (22, 18, 20)), GRID, 0.05, 0.05, **QUIET)
    settings = Settings(steps=14, bin=0, seed=3)
    early = Training(pair, settings)
    early.run(stop=lambda: early.step >= 5, checkpoint_path=tmp_path / 'early.pt')
    done = Training(pair, settings)
    done.run(checkpoint_path=tmp_path / 'done.pt')
    last = done.plan[-1]
    a = Training(pair, settings, load_checkpoint(tmp_path / 'done.pt'), more=6)
    b = Training(pair, settings, load_checkpoint(tmp_path / 'early.pt'), more=6)
    assert a.plan[-1] == last._replace(steps=last.steps + 6) and a.total_steps == 20 and not a.finished
    assert a.run(checkpoint_path=tmp_path / 'a.pt') and b.run()
    assert a.losses == b.losses and len(a.losses) == 20 and a.losses[:14] == done.losses
    for x, y in zip(a.flow.state_dict().values(), b.flow.state_dict().values()):
        assert torch.equal(x, y)
    again = Training(pair, settings, load_checkpoint(tmp_path / 'a.pt'))      # the extension is kept
    assert again.total_steps == 20 and again.finished
    with pytest.raises(SettingsError, match='give the checkpoint to resume from too'):
        Training(pair, settings, more=5)
    with pytest.raises(CheckpointError, match=r'steps 14 \(here 20\).*to train further, add more N'):
        Training(pair, Settings(steps=20, bin=0, seed=3), load_checkpoint(tmp_path / 'done.pt'))


def test_settings_that_leave_nothing_to_train_are_refused_before_training():
    from cryotrans_engine import MapError
    pair = shifted_pair()
    with pytest.raises(SettingsError, match=r'bin 40 is coarser than the map: its 20 voxels along the longest edge '
                                            r'would become 1; use bin 5 at most, or 0 \(automatic\)'):
        Training(pair, Settings(bin=40))
    initial = blob(GRID, (16, 20, 20))
    with pytest.raises(MapError, match=r'level0 -1 is below every voxel of the initial map \(its minimum is [0-9.e-]+\): '
                                       r'the whole box would be the molecule; raise level0, or use level0 auto'):
        prepare_pair(initial, GRID, blob(GRID, (24, 20, 20)), GRID, -1.0, 0.05, **QUIET)
