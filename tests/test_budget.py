"""Memory estimated before training, and the time left counting the stages to come (engine/budget.py)."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from cryotrans_engine import CryoTransError, DeviceError, Grid, Settings, Training, prepare_pair, write_map
from cryotrans_engine.budget import GB, estimate, seconds_left, stage_sizes, step_cost
from cryotrans_engine.checkpoint import load_checkpoint
from cryotrans_engine.training import OutOfMemory

from helpers import blob

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'tools'))


def big_pair(n=96, sigma=14):
    g = Grid((n, n, n), (1.5, 1.5, 1.5), (0.0, 0.0, 0.0))
    c = 0.75 * n        # the centre in Å: the middle of the box
    return prepare_pair(blob(g, (c - 4, c, c), sigma), g, blob(g, (c + 4, c, c), sigma), g, 0.05, 0.05,
                        log=lambda m: None), g


def test_the_estimate_is_within_a_factor_1_5_of_the_measured_peak_of_a_step():
    """The measured peak is the bench's: a fresh process's peak resident size over one full-grid step."""
    import bench
    import torch
    peak, how, guess = bench.step_memory(64, torch.device('cpu'))
    assert how == 'peak RSS' and peak > 20e6
    assert 1 / 1.5 <= guess / peak <= 1.5, (guess, peak)


def test_a_run_that_does_not_fit_first_recomputes_then_is_refused_with_a_bin_that_fits():
    """The free memory is given at the boundary where the device would be asked (budget.free_memory)."""
    pair, _ = big_pair()
    s = Settings(particles=0, steps=10, bin=1)
    need = estimate(pair, s, Training(pair, Settings(particles=0, steps=10, bin=1)).plan, 'cpu')
    recomputing = estimate(pair, s, Training(pair, Settings(particles=0, steps=10, bin=1)).plan, 'cpu', True)
    assert not need.recompute and recomputing.recompute and recomputing.total < 0.7 * need.total
    fits = Training(pair, Settings(particles=0, steps=10, bin=1), free_memory=(need.total + 1, 'test'))
    assert fits.flow.recompute == 'auto'
    tight = Training(pair, Settings(particles=0, steps=10, bin=1), free_memory=((need.total + recomputing.total) // 2, 'test'))
    assert tight.flow.recompute is True and tight.memory.recompute
    with pytest.raises(DeviceError) as e:
        Training(pair, Settings(particles=0, steps=10, bin=1), free_memory=(int(recomputing.total * 0.8), 'free in the test'))
    text = str(e.value)
    assert 'this run needs about' in text and 'free in the test' in text
    assert 'add bin 2 (the CLI: --bin 2)' in text, text
    binned = Training(pair, Settings(particles=0, steps=10, bin=2), free_memory=(int(recomputing.total * 0.8), 'test'))
    assert binned.memory.total <= recomputing.total * 0.8
    with pytest.raises(DeviceError, match=r'no coarser bin fits .*volume resample'):
        Training(pair, Settings(particles=0, steps=10, bin=1), free_memory=(10 ** 6, 'test'))


def test_refinement_on_the_full_grid_is_said_when_only_refine_0_fits():
    from cryotrans_engine.objective import Stage
    pair, _ = big_pair()
    s = Settings(particles=0, steps=10, bin=1, resolution=7.0, refine=5).resolved()
    binned = estimate(pair, s, [Stage(2, 10, 'w2'), Stage(1, 5, 'refine')], 'cpu', True).total
    binned_no_refine = estimate(pair, s, [Stage(2, 10, 'w2')], 'cpu', True).total
    assert binned_no_refine < binned
    with pytest.raises(DeviceError, match=r'add bin 2 refine 0 \(the CLI: --bin 2 --refine 0\)'):
        Training(pair, Settings(particles=0, steps=10, bin=1, resolution=7.0, refine=5),
                 free_memory=((binned + binned_no_refine) // 2, 'test'))


CPU_ONLY = pytest.mark.skipif(__import__('torch').cuda.is_available(),
                              reason='a limit on this process\'s memory: with a GPU the run trains there')


@CPU_ONLY
def test_a_real_address_space_limit_refuses_the_run_before_training_and_makes_no_folder(tmp_path):
    """ulimit -v (RLIMIT_AS) set in the child just before the CLI runs, 300 MB above what it holds."""
    pair, g = big_pair(128, 20)
    write_map(tmp_path / 'a.mrc', pair.initial, g)
    write_map(tmp_path / 'b.mrc', pair.target, g)
    code = ('import resource, sys\n'
            'from cryotrans_engine.cli import main\n'
            'import cryotrans_engine.job\n'           # the engine (PyTorch) loaded, as the command will
            'size = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:"))\n'
            'resource.setrlimit(resource.RLIMIT_AS, (size + 300 * 2**20, resource.RLIM_INFINITY))\n'
            'sys.exit(main(sys.argv[1:]))\n')
    out = tmp_path / 'out'
    result = subprocess.run([sys.executable, '-c', code, 'morph', str(tmp_path / 'a.mrc'), str(tmp_path / 'b.mrc'),
                             '--out', str(out), '--level0', '0.05', '--level1', '0.05', '--steps', '5'],
                            capture_output=True, encoding='utf-8')
    assert result.returncode == 2, result.stderr
    assert 'this run needs about' in result.stderr and 'address-space limit (ulimit -v' in result.stderr
    assert 'Traceback' not in result.stderr and not out.exists()


@CPU_ONLY
def test_running_out_of_memory_mid_run_stops_in_words_and_keeps_the_last_checkpoint(tmp_path):
    """A real allocation failure: the address-space limit is lowered after the run was checked and
    had written a checkpoint, so the next full-grid step cannot get its memory."""
    code = f'''
import resource, sys
sys.path.insert(0, {HERE!r})
from test_budget import big_pair
from cryotrans_engine import Settings, Training
from cryotrans_engine.training import OutOfMemory
pair, g = big_pair(128, 20)
t = Training(pair, Settings(particles=0, steps=40, bin=0))
path = {str(tmp_path / 'flow.pt')!r}
t.run(stop=lambda: t.step >= 30, checkpoint_path=path)       # the coarse stage, and a checkpoint
size = next(int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmSize:'))
resource.setrlimit(resource.RLIMIT_AS, (size + 40 * 2**20, resource.RLIM_INFINITY))
try:
    t.run(checkpoint_path=path)
except OutOfMemory as e:
    print('STOPPED', e.step, e)
'''
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, encoding='utf-8')
    assert 'STOPPED' in result.stdout, result.stdout + result.stderr
    assert 'ran out of memory at step' in result.stdout and 'bin 2' in result.stdout
    assert load_checkpoint(tmp_path / 'flow.pt')['step'] == 30
    assert not [n for n in os.listdir(tmp_path) if n != 'flow.pt']


def test_out_of_memory_is_told_from_other_errors():
    from cryotrans_engine.training import out_of_memory
    assert out_of_memory(MemoryError())
    assert out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 bytes"))
    assert out_of_memory(RuntimeError('CUDA out of memory. Tried to allocate 2.00 GiB'))
    assert not out_of_memory(RuntimeError('shape mismatch')) and not out_of_memory(ValueError('out of memory'))
    import torch
    if hasattr(torch, 'OutOfMemoryError'):       # what CUDA raises: made here at that boundary
        assert out_of_memory(torch.OutOfMemoryError('CUDA out of memory'))
    assert isinstance(OutOfMemory(3, 'cpu', MemoryError(), estimate_of_nothing()), CryoTransError)


def estimate_of_nothing():
    from cryotrans_engine.budget import MemoryEstimate
    return MemoryEstimate(0, 0, False)


def test_time_left_counts_the_dearer_stages_to_come():
    pair, _ = big_pair(64, 8)
    t = Training(pair, Settings(particles=0, steps=50))
    assert [(s.bin, s.steps) for s in t.plan] == [(2, 40), (1, 10)]
    sizes = stage_sizes(pair, t.plan)
    assert sizes[1].voxels == 8 * sizes[0].voxels and sizes[1].particles > 4 * sizes[0].particles
    costs = [step_cost(size, stage, t.settings) for size, stage in zip(sizes, t.plan)]
    assert 4 < costs[1] / costs[0] < 16
    # after 20 coarse steps at 0.1 s each: 20 more at 0.1 s and 10 at the full grid's cost
    left = seconds_left(costs, [40, 10], 20, (0, 0.1))
    assert left == pytest.approx(20 * 0.1 + 10 * 0.1 * costs[1] / costs[0])
    assert left > 1.5 * (0.1 * 30)          # what seconds per step so far times steps left would say
    assert seconds_left(costs, [40, 10], 45, (1, 0.5)) == pytest.approx(2.5)
    assert math.isnan(seconds_left(costs, [40, 10], 0, None))


def test_a_run_tells_its_time_left_from_its_own_steps():
    pair, _ = big_pair(64, 8)
    t = Training(pair, Settings(particles=0, steps=12))
    assert math.isnan(t.clock.seconds_left(t.plan, t.step))
    seen = []
    t.run(progress=lambda step, total, loss, elapsed: seen.append(t.clock.seconds_left(t.plan, t.step)))
    assert all(x > 0 and math.isfinite(x) for x in seen[:-1]) and seen[-1] == 0


def test_frames_sizes_of_a_stage_count_the_binned_map():
    values = np.zeros((8, 8, 8), np.float32)
    values[0, 0, 0] = values[7, 7, 7] = values[0, 0, 1] = 1
    g = Grid((8, 8, 8), (10.0,) * 3, (0.0,) * 3)        # 10 Å voxels: no piece is dust
    from cryotrans_engine.objective import Stage
    pair = prepare_pair(values, g, values, g, 0.5, 0.5, log=lambda m: None)
    assert [s.particles for s in stage_sizes(pair, [Stage(1, 1, 'w2'), Stage(2, 1, 'w2')])] == [3, 2]
    assert GB == 2 ** 30


def test_a_gpu_step_is_estimated_with_every_particle_in_one_block():
    """On CUDA and MPS the flow runs all particles as one block (flow.block_rows): its layers' activations
    for all of them are held at once, where the CPU holds a cache-sized block."""
    from cryotrans_engine.budget import step_bytes
    pair, _ = big_pair()
    t = Training(pair, Settings(particles=0, steps=10, bin=1))
    size, stage = stage_sizes(pair, t.plan)[0], t.plan[0]
    cpu = step_bytes(size, stage, t.settings, 'cpu', True)
    gpu = step_bytes(size, stage, t.settings, 'cuda', True)
    assert gpu - cpu == pytest.approx((2 + 4) * 100 * 4 * (size.particles - 5242), rel=1e-6)


def test_time_left_is_a_range_while_coarse_stages_may_end_early():
    """A stage before refinement may end at its 150th step and every 50th after (schedule.plateaued):
    the time left runs from all of them ending at their first chance to all running as planned.
    Without refinement (the published method) no stage ends early: one number."""
    from cryotrans_engine.schedule import fewest_steps
    assert [fewest_steps(done, 400) for done in (0, 149, 150, 199, 351, 399)] == [150, 150, 200, 200, 400, 400]
    assert fewest_steps(10, 120) == 120            # too short to be judged: runs its steps
    pair, _ = big_pair(64, 8)
    t = Training(pair, Settings(particles=0, steps=400, resolution=4.5, refine=80))
    assert [(s.bin, s.steps, s.loss) for s in t.plan] == [(2, 400, 'w2'), (1, 80, 'refine')]
    assert t.time_left_text() == ''                 # nothing timed yet
    t.run(stop=lambda: t.step >= 10)
    rate = sorted(t.clock.times[0][1:])[len(t.clock.times[0][1:]) // 2]
    costs = t.clock.costs
    assert t.clock.seconds_left(t.plan, t.step) == pytest.approx(390 * rate + 80 * rate * costs[1] / costs[0])
    assert t.clock.seconds_left(t.plan, t.step, soonest=True) == pytest.approx(140 * rate + 80 * rate * costs[1] / costs[0])
    text = t.time_left_text()
    low, high = (float(x) for x in text.removesuffix(' s left').split('–'))
    assert low == round(t.clock.seconds_left(t.plan, t.step, soonest=True)) and high == round(t.clock.seconds_left(t.plan, t.step))
    published = Training(pair, Settings(particles=0, steps=400))
    assert [(s.bin, s.steps, s.loss) for s in published.plan] == [(2, 320, 'w2'), (1, 80, 'w2')]
    published.run(stop=lambda: published.step >= 10)
    assert published.clock.seconds_left(published.plan, 10, soonest=True) == published.clock.seconds_left(published.plan, 10)
    assert '–' not in published.time_left_text()


def test_time_left_in_words():
    from cryotrans_engine.budget import time_left_text
    seconds = lambda s: f'{s:.0f} s'                          # noqa: E731
    assert time_left_text(100, 300, seconds) == '100–300 s left'
    assert time_left_text(295, 300, seconds) == '300 s left'     # within a tenth: one number
    assert time_left_text(0, 0, seconds) == '0 s left'
    assert time_left_text(math.nan, math.nan, seconds) == ''
    minutes = lambda s: f'{s / 60:.0f} min' if s >= 120 else f'{s:.0f} s'      # noqa: E731 (the panel's)
    assert time_left_text(90, 420, minutes) == '90 s–7 min left'
    assert time_left_text(240, 420, minutes) == '4–7 min left'


def test_a_network_too_wide_for_memory_is_refused_in_words_before_it_is_made():
    pair, _ = big_pair(32, 6)
    with pytest.raises(DeviceError, match=r'a velocity network 100000 wide and 3 deep needs 149 GB for its weights, '
                                          r'their gradients and Adam\'s moments \(1 region\), and 8 GB is free: '
                                          r'use a smaller width'):
        Training(pair, Settings(width=100000), free_memory=(8 * GB, 'free'))
    small = Training(pair, Settings(), free_memory=(8 * GB, 'free'))
    assert small.memory.step > 4 * 4 * 10_600


def test_the_memory_available_is_read_from_the_system_and_is_at_most_its_physical_memory():
    """psutil reads it (budget._system_available), on every system; the CPU's free memory is at most that."""
    from cryotrans_engine.budget import _system_available, free_memory
    available, where = _system_available()
    physical = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
    assert 0 < available <= physical and where == 'available on this machine'
    assert 0 < free_memory('cpu')[0] <= physical


def test_an_address_space_limit_counts_what_the_process_has_mapped_already():
    """Under ulimit -v (set in a fresh process, at what it has mapped plus 1 GB) about 1 GB is left."""
    script = ('import resource, psutil\n'
              'from cryotrans_engine.budget import _address_space_left\n'
              'limit = psutil.Process().memory_info().vms + (1 << 30)\n'
              'resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))\n'
              'left, where = _address_space_left()\n'
              'print(left, where)\n')
    out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, check=True).stdout
    left, where = out.split(' ', 1)
    assert 0.9 * GB < int(left) <= GB
    assert where.startswith("left under this process's address-space limit (ulimit -v ")
