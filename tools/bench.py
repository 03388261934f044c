"""Speed figures measured in one run: the W2 loss (exact vs fast kernel) and a training step.

Uses the AdK initial/target pair, binned or padded to each box size.  Every ratio is
of two timings taken here, now, on the same device.
"""

import argparse
import os
import sys
import time

import torch

from chimerax.cryotrans.engine import Grid, Settings, Training, prepare_pair, read_map
from chimerax.cryotrans.engine.maps import resample
from chimerax.cryotrans.engine.training import choose_device
from chimerax.cryotrans.engine.wasserstein import w2_loss

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'data', 'adk')


def adk_pair(n):
    """The AdK pair resampled onto an n³ box of the same physical size."""
    a, g = read_map(os.path.join(DATA, 'adk_open_3A.mrc'))
    b, g1 = read_map(os.path.join(DATA, 'adk_closed_7A.mrc'))
    size = g.shape[0] * g.voxel_size[0]
    grid = Grid((n, n, n), (size / n,) * 3, tuple(o - 0.5 * g.voxel_size[0] + 0.5 * size / n for o in g.origin))
    return prepare_pair(resample(a, g, grid), grid, resample(b, g1, grid), grid, 0.02, 0.02, log=lambda m: None)


def timed(f, repeat):
    f()
    start = time.perf_counter()
    for _ in range(repeat):
        f()
    return (time.perf_counter() - start) / repeat


def loss_time(pair, kernel, device, repeat):
    a0 = torch.from_numpy(pair.initial).to(device).requires_grad_()
    a1 = torch.from_numpy(pair.target).to(device)

    def once():
        w2_loss(a0, a1, pair.grid.unit_step, kernel=kernel).backward()
        if device.type == 'cuda':
            torch.cuda.synchronize()
    return timed(once, repeat)


def step_time(pair, kernel, device, steps):
    training = Training(pair, Settings(steps=steps + 1, bin=1, kernel=kernel, device=device.type))
    training.run(stop=lambda: training.step >= 1)
    start = time.perf_counter()
    training.run()
    return (time.perf_counter() - start) / steps


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--sizes', default='32,48,64')
    p.add_argument('--device', default='auto')
    args = p.parse_args(argv)
    device = choose_device(args.device)
    print(f'device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads')
    print(f'{"box":>6} {"particles":>9} {"loss exact s":>12} {"loss fast s":>13} {"ratio":>6} '
          f'{"step exact s":>12} {"step fast s":>13} {"ratio":>6}')
    for n in (int(s) for s in args.sizes.split(',')):
        pair = adk_pair(n)
        le = loss_time(pair, 'exact', device, 1)
        lw = loss_time(pair, 'fast', device, 3)
        se = step_time(pair, 'exact', device, 1)
        sw = step_time(pair, 'fast', device, 3)
        print(f'{n:>5}³ {int((pair.initial > 0).sum()):>9} {le:>12.3f} {lw:>13.3f} {le / lw:>6.1f} '
              f'{se:>12.3f} {sw:>13.3f} {se / sw:>6.1f}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
