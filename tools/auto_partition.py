"""partition auto measured on every pair with a known answer: one field, the true regions, auto.

    python tools/auto_partition.py [--pairs hinge,adk,hb,tric,ribosome] [--modes one,true,auto] [--seed 0]
                                   [--find-only]

Each pair runs three ways with the same settings and seed: one velocity field, the true region
map (what a user who knew the domains would draw), and `partition auto` (MorphJob(auto=True)).
Printed for each: FSC(0.5) against the true moved map (inside the moved part's mask for the
real-size pairs, as tools/real_size.py reads them), the correlation, the agreement of the found
bodies with the true regions (mass-weighted share of the particles in the same body, bodies
matched one to one: domains.agreement) and the time from the prepared pair to the frames.

The pairs and their truth:
- hinge: tools/hinge.py's two arms (36³), its own settings (120 W2 + 150 refinement steps at 10 Å).
- adk: data/adk open 3 Å → closed 7 Å, levels 0.1 / 0.3, 800 steps, resolution 7; truth regions
  adk_open_domains.mrc (CORE, NMP, LID).
- hb: data/real (make realdata) EMD-3488 → the model with dimer C, D turned 12°, at 7 Å with noise;
  resolution 7; truth regions: each voxel the dimer (A, B: 1; C, D: 2) of its nearest atom of 5ME2.
- tric, ribosome: data/realsize (make realsize) with their *_regions.mrc; defaults and the
  target's resolution, as tools/real_size.py runs them (minutes each on 2 cores).
"""

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)


def hinge_pair():
    import hinge
    from cryotrans_engine import Settings
    initial, target, truth, labels = hinge.hinge_maps()
    g = hinge.GRID
    return dict(maps=(initial, g, target, g), levels=(0.05, 0.1 * target.max()), truth=(truth, g), mask=None,
                regions=labels, settings=Settings(steps=120, refine=150, resolution=hinge.RESOLUTION))


def adk_pair():
    from cryotrans_engine import Settings, read_map
    d = os.path.join(ROOT, 'data', 'adk')
    f0, g0 = read_map(os.path.join(d, 'adk_open_3A.mrc'))
    f1, g1 = read_map(os.path.join(d, 'adk_closed_7A.mrc'))
    regions, _ = read_map(os.path.join(d, 'adk_open_domains.mrc'))
    return dict(maps=(f0, g0, f1, g1), levels=(0.1, 0.3), truth=read_map(os.path.join(d, 'adk_closed_3A.mrc')),
                mask=None, regions=np.rint(regions).astype(np.int32), settings=Settings(steps=800, resolution=7.0))


def hb_regions(grid):
    """Each voxel of the grid: 1 nearest an atom of chains A, B (the dimer kept), 2 of C, D (turned)."""
    from atoms import read_atoms
    from scipy.spatial import cKDTree
    atoms = read_atoms(os.path.join(ROOT, 'data', 'real', '5me2.pdb'))
    xyz, chains = atoms.xyz, atoms.chain
    nz, ny, nx = grid.shape
    idx = np.stack(np.meshgrid(np.arange(nx), np.arange(ny), np.arange(nz), indexing='ij'), -1)
    centres = (idx * np.array(grid.voxel_size) + np.array(grid.origin)).transpose(2, 1, 0, 3).reshape(-1, 3)
    nearest = cKDTree(xyz).query(centres)[1]
    return np.where(np.isin(chains[nearest], ['C', 'D']), 2, 1).reshape(grid.shape).astype(np.int32)


def hb_pair():
    from cryotrans_engine import Settings, read_map
    d = os.path.join(ROOT, 'data', 'real')
    f0, g0 = read_map(os.path.join(d, 'emd_3488.mrc'))
    f1, g1 = read_map(os.path.join(d, 'hb_moved_7A_noise.mrc'))
    return dict(maps=(f0, g0, f1, g1), levels=(None, None), truth=read_map(os.path.join(d, 'hb_moved_3.2A.mrc')),
                mask=None, regions=hb_regions(g0), settings=Settings(resolution=7.0))


def realsize_pair(name):
    def make():
        from real_size import PAIRS, pair_files
        from cryotrans_engine import Settings, read_map
        data = os.path.join(ROOT, 'data', 'realsize')
        (initial, target, truth, mask), resolution = pair_files(data, name)
        f0, g0 = read_map(initial)
        f1, g1 = read_map(target)
        regions, _ = read_map(os.path.join(data, f'{name}_regions.mrc'))
        return dict(maps=(f0, g0, f1, g1), levels=(None, None), truth=read_map(truth), mask=read_map(mask)[0],
                    regions=np.rint(regions).astype(np.int32), settings=Settings(resolution=resolution))
    return make


PAIRS = {'hinge': hinge_pair, 'adk': adk_pair, 'hb': hb_pair, 'tric': realsize_pair('tric_160'),
         'ribosome': realsize_pair('ribosome_256')}


def run(pair, mode, seed):
    """One run: (FSC Å, correlation, agreement or None, seconds, bodies' lines)."""
    from dataclasses import replace
    from cryotrans_engine import correlation, fsc_resolution, prepare_pair
    from cryotrans_engine.domains import agreement
    from cryotrans_engine.job import MorphJob
    f0, g0, f1, g1 = pair['maps']
    prepared = prepare_pair(f0, g0, f1, g1, *pair['levels'], log=lambda m: None,
                            regions=pair['regions'] if mode == 'true' else None)
    began = time.perf_counter()
    result = MorphJob(prepared, replace(pair['settings'], seed=seed), auto=mode == 'auto').run()
    seconds = time.perf_counter() - began
    truth, _ = pair['truth']
    prediction = result.frames[-1]
    vs = prepared.grid.voxel_size
    fsc = fsc_resolution(prediction, truth, vs, mask=pair['mask'])
    occupied = prepared.initial > 0
    found = result.regions if result.regions is not None else occupied.astype(np.int32)
    truth_regions = prepare_pair(f0, g0, f1, g1, *pair['levels'], log=lambda m: None,
                                 regions=pair['regions']).regions
    agree = agreement(found[occupied], truth_regions[occupied], prepared.initial[occupied])
    return fsc, correlation(prediction, truth), agree, seconds, result.body_lines


def find_only(pair, seed):
    """partition auto's first stage and search alone: (bodies, agreement, seconds, lines)."""
    from dataclasses import replace
    from cryotrans_engine import prepare_pair
    from cryotrans_engine.domains import agreement
    from cryotrans_engine.job import MorphJob
    f0, g0, f1, g1 = pair['maps']
    prepared = prepare_pair(f0, g0, f1, g1, *pair['levels'], log=lambda m: None)
    began = time.perf_counter()
    job = MorphJob(prepared, replace(pair['settings'], seed=seed), auto=True)
    job.find_regions()
    seconds = time.perf_counter() - began
    occupied = prepared.initial > 0
    found = job.regions if job.regions is not None else occupied.astype(np.int32)
    truth = prepare_pair(f0, g0, f1, g1, *pair['levels'], log=lambda m: None, regions=pair['regions']).regions
    return job.bodies.count, agreement(found[occupied], truth[occupied], prepared.initial[occupied]), seconds, \
        job.body_lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--pairs', default='hinge,adk,hb')
    p.add_argument('--modes', default='one,true,auto')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--find-only', action='store_true',
                   help='only the first stage and the search: bodies, agreement and time (no full runs)')
    args = p.parse_args(argv)
    if args.find_only:
        for name in args.pairs.split(','):
            count, agree, seconds, lines = find_only(PAIRS[name](), args.seed)
            print(f'{name}: {count} bodies, agreement {agree:.2f}, {seconds:.0f} s', flush=True)
            for line in lines:
                print(f'    {line}', flush=True)
        return 0
    print('| pair | fields | FSC(0.5) vs truth, Å | correlation | agreement with the true regions | s |')
    print('|---|---|---|---|---|---|')
    for name in args.pairs.split(','):
        pair = PAIRS[name]()
        for mode in args.modes.split(','):
            fsc, corr, agree, seconds, lines = run(pair, mode, args.seed)
            print(f'| {name} | {mode} | {fsc:.2f} | {corr:.3f} | {agree:.2f} | {seconds:.0f} |', flush=True)
            for line in lines:
                print(f'    {line}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
