"""One run from start to prediction on a real-size box, timed, with FSC against the truth.

    python tools/real_size.py --size 256 [--device cuda] [--w2-steps 2000] [--out DIR]

The pair is the bench's (tools/bench.py adk_pair): AdK open 3 Å → closed 7 Å resampled onto an
n³ box of the same physical size, so it is a small protein at needlessly fine voxels, not yet
the real-size complex issue #14 asks for; the truth is the closed map at 3 Å on the same box.
Prints one line per measurement, `key value`, for tools/gpu_check.sh's table.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--size', type=int, default=256)
    p.add_argument('--device', default='auto')
    p.add_argument('--resolution', type=float, default=7.0)
    p.add_argument('--steps', type=int, default=None, help='W2 steps (default the engine\'s)')
    p.add_argument('--w2-steps', type=int, default=0,
                   help='instead, time this many full-grid W2 steps alone (the public release\'s log: 2000 at 160³)')
    args = p.parse_args(argv)
    import torch
    from bench import DATA, adk_pair, sync
    from chimerax.cryotrans.engine import Settings, Training, read_map, resample
    from chimerax.cryotrans.engine.fsc import fsc_resolution
    from chimerax.cryotrans.engine.training import choose_device
    device = choose_device(args.device)
    start = time.perf_counter()
    pair = adk_pair(args.size)
    truth, gt = read_map(os.path.join(DATA, 'adk_closed_3A.mrc'))
    truth = resample(truth, gt, pair.grid)
    print(f'pair {args.size} {int((pair.initial > 0).sum())} particles, {pair.grid.voxel_size[0]:.3g} A voxels',
          flush=True)
    if args.w2_steps:
        w2 = Training(pair, Settings(device=device.type, steps=args.w2_steps, bin=1))
        sync(device)
        t0 = time.perf_counter()
        w2.run()
        sync(device)
        print(f'w2_steps_{args.w2_steps}_s {time.perf_counter() - t0:.1f}')
        return 0
    settings = Settings(device=device.type, resolution=args.resolution)
    if args.steps:
        settings.steps = args.steps
    t0 = time.perf_counter()
    training = Training(pair, settings)
    print(f'memory_estimate_gb {training.memory.total / 2**30:.2f}', flush=True)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    training.run()
    frames = training.frames()
    sync(device)
    done = time.perf_counter()
    print(f'train_and_frames_s {done - t0:.1f}')
    print(f'start_to_prediction_s {done - start:.1f}')
    if device.type == 'cuda':
        print(f'cuda_peak_gb {torch.cuda.max_memory_allocated(device) / 2**30:.2f}')
    vs = pair.grid.voxel_size
    print(f'fsc_prediction_A {fsc_resolution(frames[-1], truth, vs):.2f}')
    print(f'fsc_target_A {fsc_resolution(pair.target, truth, vs):.2f}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
