"""Seconds one training step of each stage of a real-size pair's default plan takes, to compare machines.

    python tools/stage_steps.py [--pair ribosome_256|tric_160] [--repeat 10] [--device cpu]

A run's time is its stages' steps times their cost; on a shared virtual machine the cost moves
between days, so docs/benchmarks.md (Real size) gives these beside a run's time.  Each stage's
step is timed at its first step (its particles and grid made once), median of `repeat` after 2.
"""

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def main(argv=None):
    from real_size import PAIRS, ROOT, pair_files
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--pair', default='ribosome_256', choices=sorted(PAIRS))
    p.add_argument('--data', default=os.path.join(ROOT, 'data', 'realsize'))
    p.add_argument('--repeat', type=int, default=10)
    p.add_argument('--device', default='auto')
    args = p.parse_args(argv)
    (initial, target, _, _), resolution = pair_files(args.data, args.pair)
    from bench import sync
    from cryotrans_engine import Settings, Training, prepare_pair, read_map
    from cryotrans_engine.schedule import stage_text
    from cryotrans_engine.training import choose_device
    device = choose_device(args.device)
    pair = prepare_pair(*read_map(initial), *read_map(target), log=lambda m: None)
    training = Training(pair, Settings(device=device.type, resolution=resolution))
    start = 0
    for stage in list(training.plan):
        times = []
        for _ in range(args.repeat + 2):
            training.step = start
            sync(device)
            t0 = time.perf_counter()
            training._train_step(None)
            sync(device)
            times.append(time.perf_counter() - t0)
        print(f'{statistics.median(times[2:]):7.3f} s a step: {stage_text(stage)}', flush=True)
        start += stage.steps
    return 0


if __name__ == '__main__':
    sys.exit(main())
