"""How the levels decide the prediction: a sweep for docs/benchmarks.md ("Levels").

For each test pair, runs `cryotrans morph` (the CLI, as a user would) at:
- ChimeraX's untouched level for both maps (each map's level enclosing 1 % of its box,
  `Volume.initial_surface_levels`),
- the automatic rule (levels.py; no level given),
- the initial map's level at the volume the rule encloses times each sweep factor,
  the target at the rule's level,
and prints one Markdown table: particles, what level0 encloses, FSC(0.5) and
correlation of the prediction with the true map.  Runs two at a time.

    python tools/level_sweep.py --out /tmp/levels [--pairs adk7,adk5] [--factors 0.5,0.7,1,1.4]
"""

import argparse
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor


from cryotrans_engine import read_map
from cryotrans_engine.fsc import correlation, fsc_resolution
from cryotrans_engine.levels import target_rule

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADK = os.path.join(ROOT, 'data', 'adk')
REAL = os.path.join(ROOT, 'data', 'real')      # make realdata (tools/haemoglobin_maps.py)
CRYOTRANS = os.path.join(os.path.dirname(sys.executable), 'cryotrans')
PAIRS = {
    # name: initial, target, truth, target resolution (Å); noise: σ of each map's added noise / its peak
    'adk7': [os.path.join(ADK, f) for f in ('adk_open_3A.mrc', 'adk_closed_7A.mrc', 'adk_closed_3A.mrc')] + [7.0],
    'adk5': [os.path.join(ADK, f) for f in ('adk_open_3A.mrc', 'adk_closed_5A.mrc', 'adk_closed_3A.mrc')] + [5.0],
    'adk7noise': [os.path.join(ADK, f) for f in ('adk_open_3A.mrc', 'adk_closed_7A.mrc', 'adk_closed_3A.mrc')]
                 + [7.0],
    # real EMD-3488 map; target: its model with one αβ dimer turned 12°, at 7 Å with noise
    'hb7': [os.path.join(REAL, f) for f in ('emd_3488.mrc', 'hb_moved_7A_noise.mrc', 'hb_moved_3.2A.mrc')] + [7.0],
}
NOISE = {'adk7noise': (0.05, 0.1)}


def noisy(path, sigma, resolution, out, seed):
    """The map plus Gaussian noise band-limited to its resolution (as a real map's is), σ = sigma × peak."""
    import torch
    from cryotrans_engine import write_map
    from cryotrans_engine.refinement import resolution_filter
    values, grid = read_map(path)
    white = torch.randn(values.shape, generator=torch.Generator().manual_seed(seed))
    keep = (resolution_filter(values.shape, grid.voxel_size, resolution) > 0).float()
    band = torch.fft.irfftn(torch.fft.rfftn(white) * keep, s=values.shape).numpy()
    noisy_values = values + sigma * float(values.max()) * band / band.std()
    name = os.path.join(out, os.path.basename(path).replace('.mrc', f'_noise{sigma:g}.mrc'))
    write_map(name, noisy_values, grid)
    return name


_SESSION = []


def chimerax_level(path):
    """The level ChimeraX shows a newly opened map at (about 1 % of the box enclosed), read from real ChimeraX."""
    if not _SESSION:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from chimerax_run import start_session
        _SESSION.append(start_session())
    from chimerax.core.commands import run as cx_run
    session = _SESSION[0]
    v, = cx_run(session, f'open {path}', log=False)
    level = v.minimum_surface_level
    session.models.close([v])
    return level


def run(name, initial, target, truth, resolution, out, args):
    folder = os.path.join(out, name)
    cmd = [CRYOTRANS, 'morph', initial, target, '--out', folder, '--report-every', '1000'] + args
    if resolution:
        cmd += ['--resolution', str(resolution)]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    log = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if log.returncode:
        return {'error': (log.stderr or log.stdout).strip().splitlines()[-1]}
    text = log.stdout
    pred, grid = read_map(os.path.join(folder, 'frame_10.mrc'))
    true, _ = read_map(truth)
    particles = int(re.search(r'(\d+) particles', text).group(1))
    volume = re.search(r'level0 \S+ \(.*?\): encloses ([\d,]+) Å³', text)
    return {'particles': particles, 'volume0': volume.group(1) if volume else '',
            'fsc': fsc_resolution(pred, true, grid.voxel_size), 'cc': correlation(pred, true)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', required=True)
    p.add_argument('--pairs', default='adk7,adk5,adk7noise')
    p.add_argument('--factors', default='0.5,0.7,1.4')
    p.add_argument('--no-resolution', action='store_true', help='the published method alone')
    p.add_argument('--jobs', type=int, default=2)
    a = p.parse_args()
    jobs = []
    for pair in a.pairs.split(','):
        i, t, truth, res = PAIRS[pair]
        if pair in NOISE:
            os.makedirs(a.out, exist_ok=True)
            i = noisy(i, NOISE[pair][0], 3.0, a.out, 1)
            t = noisy(t, NOISE[pair][1], res, a.out, 2)
        res = None if a.no_resolution else res
        v1, g1 = read_map(t)
        rule = target_rule(v1, g1.voxel_size)
        jobs.append((pair, 'ChimeraX default (1 % of box)', i, t, truth, res,
                     ['--level0', f'{chimerax_level(i):.6g}', '--level1', f'{chimerax_level(t):.6g}']))
        jobs.append((pair, 'auto (new default)', i, t, truth, res, []))
        for f in (float(x) for x in a.factors.split(',')):
            jobs.append((pair, f'level0 at {f:g} × the rule\'s volume', i, t, truth, res,
                         ['--enclose-volume0', f'{f * rule.volume:.0f}', '--level1', f'{rule.level:.6g}']))
    with ThreadPoolExecutor(a.jobs) as pool:
        results = list(pool.map(lambda j: run(f'{j[0]}_{jobs.index(j)}', *j[2:6], a.out, j[6]), jobs))
    print('| pair | level0 | particles | level0 encloses (Å³) | FSC(0.5) vs truth (Å) | correlation vs truth |')
    print('|---|---|---|---|---|---|')
    for (pair, how, *_), r in zip(jobs, results):
        if 'error' in r:
            print(f'| {pair} | {how} | failed: {r["error"]} | | | |')
        else:
            print(f'| {pair} | {how} | {r["particles"]} | {r["volume0"]} | {r["fsc"]:.2f} | {r["cc"]:.3f} |')


if __name__ == '__main__':
    main()
