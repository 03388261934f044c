"""One run from the map files to the prediction on a real-size pair, timed, judged against the truth.

    python tools/real_size.py [--pair ribosome_256|tric_160] [--device cuda] [--particles N]
                              [--bin-all] [--w2-steps 2000] [--out DIR] [--data data/realsize]

The pairs are tools/realsize_maps.py's (make realsize): an 80S ribosome on 256³ (1.1 Å voxels,
its small subunit turned 8°, target 7 Å) and TRiC on 160³.  The clock runs from reading the two
map files to the frames in memory (and written, with --out), as `cryotrans morph` would do them,
with the target's resolution given.  FSC(0.5) against the truth is read inside the moved part's
soft mask (whole-map FSC cannot tell: most of the ribosome does not move) and over the box.
--bin-all: every step on the full grid, refinement's too, with every particle (the comparison
issue #14 asks for).
--checkpoint PATH [--stop-after S]: for reference runs longer than a session (hours on 2 cores):
write the run's checkpoint every 25 steps and at the end, go on from it when it exists, and stop
after S seconds of training; a stopped run's prediction is scored as of its last step and says so.
Prints one line per measurement, `key value`, for tools/gpu_check.sh's and make bench's tables.
"""

import argparse
import contextlib
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
PAIRS = {'ribosome_256': ('ribosome_256_target_7A.mrc', 7.0), 'tric_160': ('tric_160_target_7.6A.mrc', 7.6)}


def pair_files(data, name):
    """(initial, target, truth, mask) paths of a pair, and the target's resolution; SystemExit if absent."""
    target, resolution = PAIRS[name]
    paths = [os.path.join(data, f) for f in (f'{name}_initial.mrc', target, f'{name}_truth.mrc',
                                             f'{name}_moved_mask.mrc')]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise SystemExit(f'{", ".join(missing)} missing: make them with `make realsize` '
                         f'(python tools/realsize_maps.py --out {data})')
    return paths, resolution


def plan_text(plan):
    """Stages as 'bin[/particle bin]:steps:loss', space-separated."""
    return ' '.join(f'{s.bin}{"/" + str(s.particle_bin) if s.particle_bin else ""}:{s.steps}:{s.loss}' for s in plan)


def full_grid_refinement(on):
    """While on, plans refine on the full grid instead of the resolution grid (schedule.resolution_bin):
    no setting asks for that, as no user needs it; only the comparison run does."""
    import importlib
    from unittest import mock
    schedule = importlib.import_module('cryotrans_engine.schedule')     # the module, not its function
    return mock.patch.object(schedule, 'resolution_bin', lambda *args: 1) if on else contextlib.nullcontext()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--pair', default='ribosome_256', choices=sorted(PAIRS))
    p.add_argument('--data', default=os.path.join(ROOT, 'data', 'realsize'))
    p.add_argument('--device', default='auto')
    p.add_argument('--particles', type=int, default=None, help='most particles a step moves (default the engine\'s)')
    p.add_argument('--steps', type=int, default=None, help='W2 steps (default the engine\'s)')
    p.add_argument('--refine', type=int, default=None, help='refinement steps (default the engine\'s)')
    p.add_argument('--bin-all', action='store_true', help='every step on the full grid with every particle')
    p.add_argument('--w2-steps', type=int, default=0,
                   help='instead, time this many full-grid W2 steps alone (the public release\'s log: 2000 at 160³)')
    p.add_argument('--out', default=None, help='write the frames here as MRC files, as the CLI does')
    p.add_argument('--checkpoint', default=None,
                   help='write the run\'s checkpoint here every 25 steps and at the end; go on from it if it exists')
    p.add_argument('--stop-after', type=float, default=0, help='stop after this many seconds of training')
    args = p.parse_args(argv)
    (initial, target, truth, mask), resolution = pair_files(args.data, args.pair)
    import torch
    from bench import sync
    from cryotrans_engine import CryoTransError, Settings, Training, prepare_pair, read_map
    from cryotrans_engine.fsc import fsc_resolution
    from cryotrans_engine.checkpoint import load_checkpoint
    from cryotrans_engine.training import choose_device
    device = choose_device(args.device)
    start = time.perf_counter()
    f0, g0 = read_map(initial)
    f1, g1 = read_map(target)
    pair = prepare_pair(f0, g0, f1, g1, log=lambda m: None)
    prepared = time.perf_counter()
    print(f'pair {args.pair} {int((pair.initial > 0).sum())} particles, {g0.voxel_size[0]:.3g} A voxels, '
          f'{"x".join(map(str, g0.shape))}', flush=True)
    print(f'prepare_s {prepared - start:.1f}', flush=True)
    if args.w2_steps:
        particles = Settings.particles if args.particles is None else args.particles
        w2 = Training(pair, Settings(device=device.type, steps=args.w2_steps, bin=1, particles=particles))
        print(f'w2_particles_per_step {w2.stage_sizes[0].particles}', flush=True)
        sync(device)
        t0 = time.perf_counter()
        w2.run()
        sync(device)
        print(f'w2_steps_{args.w2_steps}_s {time.perf_counter() - t0:.1f}')
        return 0
    given = {k: v for k, v in (('particles', args.particles), ('steps', args.steps), ('refine', args.refine))
             if v is not None}
    if args.bin_all:
        given.update(bin=1, particles=0)
    settings = Settings(device=device.type, resolution=resolution, **given)
    resuming = args.checkpoint and os.path.exists(args.checkpoint)
    try:        # a checkpoint of other maps or settings: say so, in one line
        resumed = load_checkpoint(args.checkpoint) if resuming else None
        with full_grid_refinement(args.bin_all):
            training = Training(pair, settings, checkpoint=resumed)
    except CryoTransError as e:
        raise SystemExit(f'cannot go on from {args.checkpoint}: {e}' if resuming else str(e)) from e
    if resumed is not None:
        print(f'resumed {args.checkpoint} at step {training.step} of {training.total_steps}, '
              f'{training.elapsed:.0f} s trained before', flush=True)
    print(f'plan {plan_text(training.plan)}', flush=True)
    print(f'memory_estimate_gb {training.memory.total / 2**30:.2f}', flush=True)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    began = time.perf_counter()
    stop = (lambda: time.perf_counter() - began > args.stop_after) if args.stop_after else None
    finished = training.run(stop=stop, checkpoint_path=args.checkpoint, checkpoint_every=25 if args.checkpoint else 0)
    trained = time.perf_counter()
    print(f'ran {plan_text(training.plan)}', flush=True)      # the stages as run: some may have ended early
    if not finished:
        print(f'stopped at step {training.step} of {training.total_steps}: not finished; '
              f'the scores below are of step {training.step}\'s flow', flush=True)
    print('step_s ' + ' '.join(f'{v:.3f}' for v in training.clock.step_seconds().values()), flush=True)   # a step's cost
    frames = training.frames()
    if args.out:
        from cryotrans_engine.files import write_frames
        os.makedirs(args.out, exist_ok=True)
        write_frames(args.out, frames, pair.grid)
    sync(device)
    done = time.perf_counter()
    print(f'train_s {trained - prepared:.1f}')
    print(f'frames_s {done - trained:.1f}')
    if resumed is not None or not finished:     # the clock did not see the whole run
        print(f'trained_s_all_sessions {training.elapsed:.1f}')
    else:
        print(f'start_to_prediction_s {done - start:.1f}')
    if device.type == 'cuda':
        print(f'cuda_peak_gb {torch.cuda.max_memory_allocated(device) / 2**30:.2f}')
    else:
        print(f'peak_rss_gb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f}')
    t, gt = read_map(truth)
    m, _ = read_map(mask)
    vs = pair.grid.voxel_size
    for name, values in (('prediction', frames[-1]), ('initial', frames[0]), ('target', pair.target_map)):
        print(f'fsc_{name}_masked_A {fsc_resolution(values, t, vs, mask=m):.2f}')
    print(f'fsc_prediction_whole_A {fsc_resolution(frames[-1], t, vs):.2f}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
