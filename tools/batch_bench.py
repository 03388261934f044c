"""Time one batch (2 AdK targets × 2 seeds = 4 tasks) on local clusters of 1 and 2 workers, and show how
its tasks spread: which worker ran which task when (what the dashboard's task stream draws) and each
worker's peak memory.  docs/benchmarks.md, "Batch runs", gives what it printed.

    .venv/bin/python tools/batch_bench.py [--layouts 1x1,2x1,1x2] [--steps 400] [--out batch_bench_out]
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADK = os.path.join(ROOT, 'data', 'adk')


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def imported_rss_mb():
    """What a worker holds before its first task: Python, PyTorch and the engine imported."""
    code = ('import resource, torch, cryotrans_engine.job, distributed; '
            'print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)')
    return float(subprocess.run([sys.executable, '-c', code], capture_output=True, encoding='utf-8',
                                check=True).stdout)


def one_layout(workers, threads, steps, out):
    from distributed import Client, LocalCluster, get_task_stream
    from cryotrans_engine import Settings
    from cryotrans_engine.batch import morph_batch
    began = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as client:
        started = time.perf_counter() - began
        with get_task_stream(client) as stream:
            t0, epoch = time.perf_counter(), time.time()      # the task stream's times are the clock's
            morph_batch(os.path.join(ADK, 'adk_open_3A.mrc'),
                        [os.path.join(ADK, 'adk_closed_7A.mrc'), os.path.join(ADK, 'adk_closed_5A.mrc')], out,
                        Settings(steps=steps, resolution=7, refine=100), seeds=2, level0=0.1, level1=0.3,
                        scheduler=cluster.scheduler_address, threads=threads, say=lambda text: None)
            wall = time.perf_counter() - t0
        peaks = client.run(peak_rss_mb)
        names = {w: f'worker {i + 1}' for i, w in enumerate(sorted(peaks))}
    print(f'\n{workers} worker{"s" if workers > 1 else ""} × {threads} PyTorch thread{"s" if threads > 1 else ""}: '
          f'4 tasks in {wall:.1f} s (cluster start {started:.1f} s); worker peak memory '
          + ', '.join(f'{peaks[w]:.0f} MB' for w in sorted(peaks)), flush=True)
    for task in sorted(stream.data, key=lambda t: t['startstops'][0]['start']):
        compute = [s for s in task['startstops'] if s['action'] == 'compute'][0]
        name = '-'.join(task['key'].split('-')[1:3])
        print(f'  {names.get(task["worker"], task["worker"])}: {name:<24} {compute["start"] - epoch:6.1f} → '
              f'{compute["stop"] - epoch:6.1f} s', flush=True)
    return wall


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--steps', type=int, default=400)
    p.add_argument('--out', default='batch_bench_out')
    p.add_argument('--layouts', default='1x1,2x1,1x2', help='WORKERSxTHREADS (PyTorch threads a task), comma separated')
    args = p.parse_args()
    print(f'load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; a worker before its first task '
          f'(Python, PyTorch, the engine): {imported_rss_mb():.0f} MB', flush=True)
    for layout in args.layouts.split(','):
        workers, threads = (int(n) for n in layout.split('x'))
        out = os.path.join(args.out, layout)
        shutil.rmtree(out, ignore_errors=True)
        one_layout(workers, threads, args.steps, out)
    print(f'\nload average after: {os.getloadavg()[0]:.1f}')


if __name__ == '__main__':
    main()
