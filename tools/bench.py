"""Speed and memory figures measured in one run: the W2 loss (exact vs fast kernel), a training
step, how a step splits between the MLP, splatting and the loss, its peak memory, and what a
partition into AdK's three domains costs (one field per region, the rigidity term), and the
published method's quality (no resolution, default settings, several seeds) on AdK both ways.

Uses the AdK initial/target pair, binned or padded to each box size.  Every ratio is
of two timings taken here, now, on the same device.  A "step" is one full-grid training
step: every particle above level, default width 100, no binning, forward + backward + Adam.
"""

import argparse
import gc
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from cryotrans_engine import Grid, Settings, Training, prepare_pair, read_map
from cryotrans_engine.allocator import _glibc, freed_memory_kept
from cryotrans_engine.budget import step_bytes
from cryotrans_engine.maps import resample
from cryotrans_engine.objective import stage_loss
from cryotrans_engine.partition import labels_on_grid
from cryotrans_engine.settings import RIGIDITY
from cryotrans_engine.splat import splat
from cryotrans_engine.training import choose_device
from cryotrans_engine.wasserstein import w2_loss

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'data', 'adk')
SECTIONS = ('speed', 'split', 'profile', 'memory', 'partition', 'published', 'realsize')
REAL_SIZE = ('tric_160', 'ribosome_256')   # tools/real_size.py's pairs (make realsize), smaller first
LEVEL = 0.01   # of the peak: 5.4 % of the voxels are particles, as in a real map (~5-10 %)
RECOMPUTE = {'auto': 'auto', 'on': True, 'off': False}
# The published method's pairs (no resolution): name, initial, target, truth (data/adk)
PUBLISHED = (('open 3 Å → closed 7 Å', 'adk_open_3A.mrc', 'adk_closed_7A.mrc', 'adk_closed_3A.mrc'),
             ('closed 3 Å → open 6 Å', 'adk_closed_3A.mrc', 'adk_open_6A_2A.mrc', 'adk_open_3A.mrc'))


def adk_pair(n, domains=False):
    """The AdK pair resampled onto an n³ box of the same physical size (domains: partitioned
    into its three domains, data/adk/adk_open_domains.mrc)."""
    a, g = read_map(os.path.join(DATA, 'adk_open_3A.mrc'))
    b, g1 = read_map(os.path.join(DATA, 'adk_closed_7A.mrc'))
    size = g.shape[0] * g.voxel_size[0]
    grid = Grid((n, n, n), (size / n,) * 3, tuple(o - 0.5 * g.voxel_size[0] + 0.5 * size / n for o in g.origin))
    regions = None
    if domains:
        labels, gl = read_map(os.path.join(DATA, 'adk_open_domains.mrc'))
        regions = labels_on_grid(labels.astype('int32'), gl, grid)
    return prepare_pair(resample(a, g, grid), grid, resample(b, g1, grid), grid, LEVEL, LEVEL, log=lambda m: None,
                        regions=regions)


def sync(device):
    """Wait for the device's queued work, so that wall-clock times are its times."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    elif device.type == 'mps':
        torch.mps.synchronize()


def timed(f, repeat):
    """Seconds per call of f: the median of `repeat` timed calls after one warm-up call (the
    median, because on a shared machine single calls now and then take twice as long)."""
    f()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def loss_time(pair, kernel, device, repeat):
    """Seconds per loss value + gradient, and the value."""
    a0 = torch.from_numpy(pair.initial).to(device).requires_grad_()
    a1 = torch.from_numpy(pair.target).to(device)
    value = []

    def once():
        loss = w2_loss(a0, a1, pair.grid.unit_step, kernel=kernel)
        loss.backward()
        sync(device)
        value[:] = [loss.item()]
    return timed(once, repeat), value[0]


def full_grid_training(pair, device, steps=1, kernel='fast', recompute='auto', rigidity=None):
    training = Training(pair, Settings(steps=steps, bin=1, particles=0, kernel=kernel, device=device.type,
                                       rigidity=rigidity))
    training.flow.recompute = recompute
    return training


def step_time(pair, kernel, device, steps, recompute='auto', rigidity=None):
    """Seconds per full-grid training step: the median of `steps` steps after a warm-up step."""
    training = full_grid_training(pair, device, steps + 1, kernel, recompute, rigidity)
    return _median_step(training, 1, device)


def refine_step_time(pair, device, steps, resolution=7.0):
    """Seconds per full-grid refinement step (after the one loss step and a warm-up refinement step).

    A box too coarse for 7 Å (the tests' tiny one) refines at the finest resolution it holds, 2 voxels.
    """
    resolution = max(resolution, 2 * max(pair.grid.voxel_size))
    training = Training(pair, Settings(steps=1, bin=1, particles=0, device=device.type, resolution=resolution,
                                       refine=steps + 1))
    training.plan[-1] = training.plan[-1]._replace(bin=1)   # the full grid, not the resolution grid (schedule.py)
    return _median_step(training, 2, device)


def partition_step_time(pair, device, steps, rigidity=None):
    """Seconds per full-grid step of a partitioned run once its regions have their own fields
    (past the shared first half of a one-stage plan); rigidity None: its default."""
    training = full_grid_training(pair, device, 2 * (steps + 1), rigidity=rigidity)
    return _median_step(training, steps + 2, device)


def rigidity_time(pair, device, repeat):
    """Seconds of the rigidity term alone (forward + backward) on a full-grid step's trajectory."""
    training = full_grid_training(pair, device, 2)
    data = training.stage_data(1)              # past the shared first half: regions apart, held rigid
    p = data.particles
    path = [x.detach().requires_grad_() for x in training.flow.trajectory(p.positions, p.sections)]

    def once():
        data.rigidity(path, training.flow).backward()
        sync(device)
    return timed(once, repeat)


def _median_step(training, warm, device, until=None):
    """The median time of a run's steps after step `warm` (its steps before run untimed), up to step
    `until` (None: to the end)."""
    training.run(stop=lambda: training.step >= warm)
    times, last = [], [0.0]

    def progress(*_):
        sync(device)
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now
    sync(device)
    last[0] = time.perf_counter()
    training.run(progress=progress, stop=None if until is None else lambda: training.step >= until)
    return statistics.median(times)


def step_split(pair, device, repeat, recompute='auto'):
    """Seconds of a full-grid step's parts, each forward + backward: MLP (the flow), splatting, loss."""
    training = full_grid_training(pair, device, 1, recompute=recompute)
    return stage_split(training, 0, device, repeat), training.flow.recomputes(training.stage_data(0).particles.positions)


def stage_split(training, step, device, repeat):
    """Seconds of a step's parts in the stage in force at `step`, each forward + backward: the flow
    (MLP over the Euler steps), splatting, the stage's loss (Sinkhorn for W2; blur and correlation
    for refinement).

    The parts are cut apart at the splatted density and the moved positions (detached,
    their gradients passed back by hand), so each backward is timed on its own.
    """
    data = training.stage_data(step)
    mass, positions, sections = data.particles.mass, data.particles.positions, data.particles.sections
    flow, parts = training.flow, [0.0, 0.0, 0.0]

    def clock():
        sync(device)
        return time.perf_counter()
    with freed_memory_kept(device, training.largest_tensor()):   # as Training.run has it
        for r in range(repeat + 1):
            flow.zero_grad()
            t0 = clock()
            moved = flow(positions, sections)
            t1 = clock()
            x = moved.detach().requires_grad_()
            density = splat(mass, x, data.shape, data.step_unit)
            t2 = clock()
            d = density.detach().requires_grad_()
            loss = stage_loss(data, d, training.settings)
            loss.backward()
            t3 = clock()
            density.backward(d.grad)
            t4 = clock()
            moved.backward(x.grad)
            t5 = clock()
            if r:   # the first is a warm-up
                for i, dt in enumerate((t1 - t0 + t5 - t4, t2 - t1 + t4 - t3, t3 - t2)):
                    parts[i] += dt / repeat
    return parts


def run_profile(pair, settings, device, repeat):
    """Where a run's time goes, stage by stage: its steps, a whole step's median time (as Training.run
    takes it: checks, Adam and Python included), that step split into flow, splat and loss (the rest:
    Adam, the divergence checks, the loss read back, Python), and the stage's share of the run.
    Returns rows of (stage words, particles, steps, s/step, flow, splat, loss, rest)."""
    from cryotrans_engine.schedule import grid_text
    training = Training(pair, settings)
    rows = []
    for index, stage in enumerate(list(training.plan)):
        start = training.plan.start_of(index)
        training.step = start            # the flow as it is; each stage timed on its own data
        training.losses = training.losses[:start] + [0.0] * (start - len(training.losses))
        whole = _median_step(training, start + 1, device, start + 1 + repeat)   # the stage's first step makes its data
        flow, spl, loss = stage_split(training, start, device, repeat)
        particles = int(training.stage_data(start).particles.mass.numel())
        words = f'{stage.loss} on {grid_text(stage)}' + (f' (particles from bin {stage.particle_bin})'
                                                          if stage.particle_bin else '')
        rows.append((words, particles, stage.steps, whole, flow, spl, loss, whole - flow - spl - loss))
    return rows


def profile_table(device, repeat):
    """The demo's run (AdK open 3 Å → closed 7 Å, its levels, resolution 7, 800 steps) profiled."""
    a, g0 = read_map(os.path.join(DATA, 'adk_open_3A.mrc'))
    b, g1 = read_map(os.path.join(DATA, 'adk_closed_7A.mrc'))
    pair = prepare_pair(a, g0, b, g1, 0.1 * float(a.max()), 0.3 * float(b.max()), log=lambda m: None)
    rows = run_profile(pair, Settings(resolution=7.0, steps=800, device=device.type), device, repeat)
    total = sum(r[2] * r[3] for r in rows)
    print('\nwhere the demo\'s run goes (AdK 7 Å, resolution 7, 800 steps), stage by stage: s/step as the '
          'run takes it, split into the flow, splatting, the loss (Sinkhorn; refinement: blur + correlation) '
          'and the rest (Adam, checks, Python), each forward + backward')
    print(f'{"stage":<48} {"particles":>9} {"steps":>6} {"s/step":>7} {"flow":>7} {"splat":>7} {"loss":>7} '
          f'{"rest":>7} {"stage s":>8} {"share %":>7}')
    for words, particles, steps, whole, flow, spl, loss, rest in rows:
        print(f'{words:<48} {particles:>9} {steps:>6} {whole:>7.4f} {flow:>7.4f} {spl:>7.4f} {loss:>7.4f} '
              f'{rest:>7.4f} {steps * whole:>8.1f} {100 * steps * whole / total:>7.1f}', flush=True)
    print(f'{"training, all stages":<48} {"":>9} {sum(r[2] for r in rows):>6} {"":>7} {"":>7} {"":>7} {"":>7} '
          f'{"":>7} {total:>8.1f}')


def _trim():
    """Hand freed memory back to the system (glibc), so that the step measured cannot reuse
    what the setup happened to leave behind: its peak is then its own, run after run."""
    gc.collect()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def _rss_peak_reset():
    """Reset the kernel's peak-RSS mark (Linux); False where it cannot be."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _rss(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) * 1024
    raise OSError(field)


def step_estimate(training):
    """What budget.py estimates a full-grid step of this training adds (bytes)."""
    return step_bytes(training.stage_sizes[0], training.plan[0], training.settings, training.device.type, training.flow.recompute,
                      training.pair.region_count, training.flow.budget)


def real_size(pair, device, threads=0, data=None, extra=()):
    """tools/real_size.py's measurements of one pair, run in a fresh process (its peak memory its own):
    {key: value}."""
    command = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'real_size.py'),
               '--pair', pair, '--device', device.type] + (['--data', data] if data else []) + list(extra)
    env = dict(os.environ, **({'OMP_NUM_THREADS': str(threads)} if threads else {}))
    out = subprocess.run(command, capture_output=True, text=True, encoding='utf-8', env=env)
    if out.returncode:
        raise SystemExit(f'real_size.py --pair {pair} failed: {(out.stderr or out.stdout).strip()[-2000:]}')
    said = {}
    for line in out.stdout.splitlines():
        key, _, value = line.partition(' ')
        said[key] = value
    return said


# Small pairs of the size table, from their files to the prediction as the real-size ones:
# (name, initial, target, truth, level0 and level1 as fractions of each map's peak (None: automatic),
# resolution).  adk_64_6A is the reverse AdK pair: 64³ closed at 3 Å onto open at 6 Å on another
# grid (50³ of 2 Å), automatic levels, as issue #32's held-back 66³ pair.
SMALL_SIZES = (('adk_64_7A', 'adk_open_3A.mrc', 'adk_closed_7A.mrc', 'adk_closed_3A.mrc', (0.1, 0.3), 7.0),
               ('adk_64_6A', 'adk_closed_3A.mrc', 'adk_open_6A_2A.mrc', 'adk_open_3A.mrc', (None, None), 6.0))


def small_size(name, initial, target, truth, levels, resolution, device):
    """One small pair from its files to the prediction (default settings, the target's resolution):
    (particles, seconds, FSC(0.5) Å of prediction, initial, target against the truth, stages as run)."""
    from cryotrans_engine import MorphJob
    from cryotrans_engine.fsc import compare_maps
    paths = [os.path.join(DATA, f) for f in (initial, target)]
    began = time.perf_counter()
    (f0, g0), (f1, g1) = (read_map(path) for path in paths)
    level0, level1 = (None if v is None else v * float(f.max()) for v, f in zip(levels, (f0, f1)))
    pair = prepare_pair(f0, g0, f1, g1, level0, level1, log=lambda line: None)
    job = MorphJob(pair, Settings(resolution=resolution, device=device.type))
    result = job.run()
    took = time.perf_counter() - began
    truth_map = read_map(os.path.join(DATA, truth))
    fsc = [compare_maps(*truth_map, values, pair.grid).resolution(0.5) for values in (result.frames[-1], result.frames[0])]
    fsc.append(compare_maps(*truth_map, f1, g1).resolution(0.5))
    ran = ' '.join(f'{st.bin}/{st.particles_from}:{st.steps}:{st.loss}' for st in job.training.plan)
    return int(np.count_nonzero(pair.initial)), took, fsc, ran


def growth_exponent(rows):
    """The least-squares slope of log(time) against log(particles) over (particles, seconds) rows."""
    xs, ys = [math.log(n) for n, _ in rows], [math.log(t) for _, t in rows]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def real_size_table(device, threads=0, data=None, pairs=REAL_SIZE, extra=(), small=SMALL_SIZES):
    """The size table: the small pairs (in this process) and the real-size ones (tools/real_size.py),
    each from its map files to the prediction with the target's resolution given and default
    settings; how the time grows with the particles, over all of them (issue #32)."""
    print('\nevery size (issues #14, #32): from reading the maps to the frames, default settings with the target\'s '
          'resolution given; FSC(0.5) against the truth (real-size pairs: inside the moved part\'s mask; make '
          'realsize builds them)')
    print(f'{"pair":>13} {"particles":>9} {"prepare s":>9} {"train s":>8} {"frames s":>8} {"total s":>8} '
          f'{"peak GB":>7} {"FSC pred":>8} {"initial":>7} {"target":>7}  s a step, by stage  '
          f'stages as run (bin/particle bin:steps:loss)')
    sizes = []
    for name, initial, target, truth, levels, resolution in small:
        particles, took, (pred, first, own), ran = small_size(name, initial, target, truth, levels, resolution,
                                                             device)
        sizes.append((particles, took))
        print(f'{name:>13} {particles:>9} {"":>9} {"":>8} {"":>8} {took:>8.1f} {"":>7} {pred:>8.2f} {first:>7.2f} '
              f'{own:>7.2f}  {"":>18}  {ran}', flush=True)
    totals = {}
    for name in pairs:
        r = real_size(name, device, threads, data, extra)
        peak = r.get('peak_rss_gb', r.get('cuda_peak_gb'))
        particles = r['pair'].split()[1]
        totals[name] = (int(r['pair'].split()[0].rsplit('_', 1)[-1]), float(r['start_to_prediction_s']))
        sizes.append((int(particles), float(r['start_to_prediction_s'])))
        print(f'{name:>13} {particles:>9} {float(r["prepare_s"]):>9.1f} {float(r["train_s"]):>8.1f} '
              f'{float(r["frames_s"]):>8.1f} {float(r["start_to_prediction_s"]):>8.1f} {float(peak):>7.2f} '
              f'{r["fsc_prediction_masked_A"]:>8} {r["fsc_initial_masked_A"]:>7} {r["fsc_target_masked_A"]:>7}  '
              f'{r["step_s"].replace(" ", "/"):>18}  {r["ran"]} (planned {r["plan"]})', flush=True)
    if len(totals) == 2:
        (n0, t0), (n1, t1) = sorted(totals.values())
        print(f'time {n1}³ / {n0}³: {t1 / t0:.2f} for {(n1 / n0) ** 3:.2f}× the voxels: time ∝ box edge^'
              f'{math.log(t1 / t0) / math.log(n1 / n0):.2f}')
    if len(sizes) > 1:
        print(f'growth over all {len(sizes)} sizes: time ∝ particles^{growth_exponent(sizes):.2f} '
              f'(least squares on log-log; 1 would be time in proportion to the work)')


def step_memory_here(n, device, recompute='auto'):
    """(peak bytes one full-grid step adds to what is held before it, measured in this process;
    how it was measured; budget.py's estimate of it).

    CUDA: torch.cuda.max_memory_allocated.  Elsewhere the process's peak resident size
    (the step's own peak where Linux lets the mark be reset; else ru_maxrss, which
    counts the setup's peak too when that was higher): run it in a fresh process.
    """
    pair = adk_pair(n)
    training = full_grid_training(pair, device, 1, recompute=recompute)
    estimate = step_estimate(training)
    training.stage_data(0)
    sync(device)
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        training.run()
        sync(device)
        return torch.cuda.max_memory_allocated(device) - base, 'cuda max_memory_allocated', estimate
    _trim()
    if _rss_peak_reset():
        base = _rss('VmRSS')
        training.run()
        sync(device)
        return _rss('VmHWM') - base, 'peak RSS', estimate
    unit = 1 if sys.platform == 'darwin' else 1024
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit
    training.run()
    sync(device)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit - base, 'ru_maxrss growth (a lower bound)',
            estimate)


def step_memory(n, device, recompute='auto'):
    """step_memory_here, in a fresh process off CUDA (a process's peak resident size only grows)."""
    if device.type == 'cuda':
        return step_memory_here(n, device, recompute)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), '--memory-child', str(n),
                          '--device', device.type, '--recompute', recompute_name(recompute),
                          '--threads', str(torch.get_num_threads())],
                         check=True, capture_output=True, text=True).stdout
    return tuple(json.loads(out.strip().splitlines()[-1]))


def recompute_name(value):
    return {v: k for k, v in RECOMPUTE.items()}[value]


def published(seeds, steps=None, pairs=PUBLISHED):
    """The published method alone (no resolution, default settings and levels) on AdK both ways, a
    run per seed: FSC and correlation of the prediction with the true map, beside the target's own.
    Every stage must run its steps (issue #29: a coarse stage ended at one flat window cost the
    closed → open run 1.3 Å); a run that ended one early, or a median correlation under the
    target's, is flagged."""
    from cryotrans_engine import morph_files
    from cryotrans_engine.fsc import compare_maps
    print('\nthe published method (no resolution, defaults), FSC with the true map; "target": the target '
          'map itself')
    print(f'{"pair":<24} {"seed":>5} {"steps":>11} {"FSC 0.5 Å":>9} {"FSC 0.143 Å":>11} {"corr":>6} '
          f'{"final loss":>10} {"time s":>7}')
    for name, initial, target, truth in pairs:
        truth_map = read_map(os.path.join(DATA, truth))
        own = compare_maps(*truth_map, *read_map(os.path.join(DATA, target)))
        print(f'{name:<24} {"target":>5} {"":>11} {own.resolution(0.5):>9.2f} {own.resolution(0.143):>11.2f} '
              f'{own.correlation:>6.3f}')
        correlations = []
        for seed in seeds:
            settings = Settings(seed=seed) if steps is None else Settings(seed=seed, steps=steps)
            began = time.perf_counter()
            result = morph_files(os.path.join(DATA, initial), os.path.join(DATA, target), settings,
                                 log=lambda line: None)
            took = time.perf_counter() - began
            fsc = compare_maps(*truth_map, result.frames[-1], result.flow.grid)
            correlations.append(fsc.correlation)
            ran = f'{result.total_steps}/{settings.steps}'
            print(f'{name:<24} {seed:>5} {ran:>11} {fsc.resolution(0.5):>9.2f} {fsc.resolution(0.143):>11.2f} '
                  f'{fsc.correlation:>6.3f} {result.losses[-1]:>10.4f} {took:>7.1f}', flush=True)
            if result.total_steps != settings.steps:
                print(f'  REGRESSION: seed {seed} ran {result.total_steps} of its {settings.steps} steps: without '
                      f'resolution no stage may end early')
        median = statistics.median(correlations)
        word = 'above' if median >= own.correlation else 'BELOW'
        print(f'  median correlation {median:.3f}, {word} the target\'s {own.correlation:.3f}')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--sizes', default='32,48,64', help='box edges, comma-separated (default 32,48,64)')
    p.add_argument('--device', default='auto')
    p.add_argument('--sections', default=','.join(SECTIONS),
                   help=f'which tables, comma-separated, of {", ".join(SECTIONS)} (default all)')
    p.add_argument('--memory', action='store_true', help='only the memory table (--sections memory)')
    p.add_argument('--recompute', choices=tuple(RECOMPUTE), default='auto',
                   help="the flow's activation recomputation in the split and memory tables (default auto)")
    p.add_argument('--repeat', type=int, default=5, help='timed repeats of the fast loss, step and split (median; split: mean)')
    p.add_argument('--seeds', default='0,1,2', help='seeds of the published-method runs (default 0,1,2)')
    p.add_argument('--published-steps', type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument('--threads', type=int, default=0, help='torch CPU threads (default: torch\'s choice)')
    p.add_argument('--memory-child', type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = choose_device(args.device)
    recompute = RECOMPUTE[args.recompute]
    if args.memory_child:
        print(json.dumps(step_memory_here(args.memory_child, device, recompute)))
        return 0
    sections = ['memory'] if args.memory else [s.strip() for s in args.sections.split(',') if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        p.error(f'unknown sections {", ".join(sorted(unknown))}; known: {", ".join(SECTIONS)}')
    sizes = [int(s) for s in args.sizes.split(',')]
    print(f'device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads', flush=True)
    pairs = {}

    def pair(n):
        if n not in pairs:
            pairs[n] = adk_pair(n)
        return pairs[n]

    def particles(n):
        return int((pair(n).initial > 0).sum())
    if 'speed' in sections:
        print(f'{"box":>6} {"particles":>9} {"loss exact s":>12} {"loss fast s":>13} {"ratio":>6} {"rel diff":>8} '
              f'{"step exact s":>12} {"step fast s":>13} {"ratio":>6}')
        for n in sizes:
            le, ve = loss_time(pair(n), 'exact', device, 1)
            lw, vw = loss_time(pair(n), 'fast', device, args.repeat)
            se = step_time(pair(n), 'exact', device, 1)
            sw = step_time(pair(n), 'fast', device, args.repeat)
            print(f'{n:>5}³ {particles(n):>9} {le:>12.3f} {lw:>13.3f} {le / lw:>6.1f} {abs(vw - ve) / abs(ve):>8.1e} '
                  f'{se:>12.3f} {sw:>13.3f} {se / sw:>6.1f}', flush=True)
    if 'split' in sections:
        print(f'\nfull-grid step (fast loss), recompute {args.recompute}: s/step and its parts, each forward + backward')
        print('(refine s: a step of refinement at the target\'s resolution, which replaces the full-grid loss '
              'steps when a resolution is given)')
        print(f'{"box":>6} {"particles":>9} {"recompute":>9} {"step s":>8} {"MLP s":>8} {"splat s":>8} '
              f'{"loss s":>8} {"rest s":>8} {"refine s":>8}')
        for n in sizes:
            step = step_time(pair(n), 'fast', device, args.repeat, recompute)
            (mlp, spl, loss), recomputed = step_split(pair(n), device, args.repeat, recompute)
            refine = refine_step_time(pair(n), device, args.repeat)
            print(f'{n:>5}³ {particles(n):>9} {"yes" if recomputed else "no":>9} {step:>8.3f} {mlp:>8.3f} '
                  f'{spl:>8.3f} {loss:>8.3f} {step - mlp - spl - loss:>8.3f} {refine:>8.3f}', flush=True)
    if 'profile' in sections:
        profile_table(device, args.repeat)
    if 'memory' in sections:
        print(f'\npeak memory of one full-grid step (forward + backward + Adam), recompute {args.recompute}; '
              f'the estimate a run is checked with before it starts (engine/budget.py), and estimate / peak')
        print(f'{"box":>6} {"particles":>9} {"peak GB":>8} {"estimate GB":>11} {"ratio":>6}  measured as')
        for n in sizes:
            peak, how, guess = step_memory(n, device, recompute)
            print(f'{n:>5}³ {particles(n):>9} {peak / 2**30:>8.3f} {guess / 2**30:>11.3f} '
                  f'{guess / max(peak, 1):>6.2f}  {how}', flush=True)
    if 'published' in sections:
        published([int(x) for x in args.seeds.split(',')], args.published_steps)
    if 'realsize' in sections:
        real_size_table(device, args.threads)
    if 'partition' in sections:
        print('\nfull-grid step with AdK partitioned into its 3 domains (the same particles), s/step: one '
              f'field; 3 fields without rigidity; 3 fields with rigidity λ {RIGIDITY:g} (deformation form); the '
              'rigidity term alone (forward + backward) and its share of that step')
        print(f'{"box":>6} {"particles":>9} {"1 field s":>9} {"3 fields s":>10} {"ratio":>6} {"+rigid s":>8} '
              f'{"ratio":>6} {"rigidity s":>10} {"share %":>8}')
        for n in sizes:
            parted = adk_pair(n, domains=True)
            one = step_time(pair(n), 'fast', device, args.repeat)
            three = partition_step_time(parted, device, args.repeat, rigidity=0.0)
            rigid = partition_step_time(parted, device, args.repeat)
            term = rigidity_time(parted, device, args.repeat)
            print(f'{n:>5}³ {particles(n):>9} {one:>9.3f} {three:>10.3f} {three / one:>6.2f} {rigid:>8.3f} '
                  f'{rigid / one:>6.2f} {term:>10.4f} {100 * term / rigid:>8.1f}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
