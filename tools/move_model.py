"""An atomic model carried along the flow, scored: AdK's open model moved open → closed.

    python tools/move_model.py [--steps N] [--cases plain,resolution,partition]

For each case a morph of data/adk (open 3 Å → closed 7 Å) is trained, the open model
(data/adk/adk_open.pdb) is moved along its flow (TrainedFlow.move, each atom by its region's
field), and the table gives the CA RMSD to the true closed structure (data/adk/adk_closed.pdb,
superposed as the maps are) before and after, and what the flow did to the model's geometry:
bonds stretched or squeezed by more than 0.2 Å, and new clashes (non-bonded heavy atoms closer
than 2.2 Å that were not before).
"""

import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADK = os.path.join(ROOT, 'data', 'adk')
CASES = {
    'plain': dict(),
    'resolution': dict(resolution=7.0),
    'partition': dict(resolution=7.0, partition='adk_open_domains.mrc'),
}
BOND = 1.9          # Å: atoms of the open model closer than this (heavy atoms; 1.3 with a hydrogen) are bonded
CLASH = 2.2         # Å: non-bonded heavy atoms closer than this clash
BOND_OFF = 0.2      # Å: a bond whose length changed by more than this is an outlier


def pairs_within(xyz, cutoff, block=512):
    """(i, j) with i < j of atoms closer than cutoff (numpy, in blocks)."""
    out = []
    for start in range(0, len(xyz), block):
        d = np.linalg.norm(xyz[start:start + block, None, :] - xyz[None, :, :], axis=-1)
        i, j = np.nonzero(d < cutoff)
        i = i + start
        keep = i < j
        out.append(np.stack([i[keep], j[keep]], 1))
    return np.concatenate(out)


def geometry(xyz, heavy):
    """The model's bonds (from the open model's distances) and its heavy-atom pairs that may clash."""
    near = pairs_within(xyz, BOND)
    both_heavy = heavy[near[:, 0]] & heavy[near[:, 1]]
    length = np.linalg.norm(xyz[near[:, 0]] - xyz[near[:, 1]], axis=1)
    bonds = near[both_heavy | (length < 1.3)]
    return bonds


def near_in_chemistry(bonds):
    """Pairs of atoms one or two bonds apart (bonded, or sharing a bonded neighbour): never clashes."""
    partners = {}
    for i, j in bonds:
        partners.setdefault(int(i), set()).add(int(j))
        partners.setdefault(int(j), set()).add(int(i))
    pairs = {(min(i, j), max(i, j)) for i, j in bonds}
    for atom, near in partners.items():
        near = sorted(near)
        pairs.update((a, b) for k, a in enumerate(near) for b in near[k + 1:])
    return pairs


def clashes(xyz, heavy, bonded):
    close = pairs_within(xyz[heavy], CLASH)
    index = np.nonzero(heavy)[0]
    pairs = {(int(index[i]), int(index[j])) for i, j in close}
    return pairs - bonded


def main(argv=None):
    from cryotrans_engine import Settings, morph_files
    from cryotrans_engine.models import read_model
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--steps', type=int, default=None, help='training steps (default: the engine\'s)')
    p.add_argument('--cases', default=','.join(CASES))
    p.add_argument('--out', default=os.path.join(ROOT, 'move_out'))
    args = p.parse_args(argv)
    structure, start = read_model(os.path.join(ADK, 'adk_open.pdb'))
    _, truth = read_model(os.path.join(ADK, 'adk_closed.pdb'))
    names = [a.name for m in structure for c in m for r in c for a in r]
    ca = np.array([n == 'CA' for n in names])
    heavy = np.array([not n.lstrip('0123456789').startswith('H') for n in names])   # the files have no element column
    bonds = geometry(start, heavy)
    bonded = near_in_chemistry(bonds)
    rms = lambda a, b: float(np.sqrt(((a[ca] - b[ca]) ** 2).sum(1).mean()))
    length = lambda xyz: np.linalg.norm(xyz[bonds[:, 0]] - xyz[bonds[:, 1]], axis=1)
    before_clashes = clashes(start, heavy, bonded)
    print(f'{ca.sum()} CA atoms; CA RMSD open vs closed {rms(start, truth):.2f} Å; {len(bonds)} bonds; '
          f'{len(before_clashes)} clashes in the open model')
    print('case        steps  train_s  CA_RMSD_before  CA_RMSD_after  bonds_off>0.2Å  worst_bond_Å  new_clashes')
    for case in args.cases.split(','):
        given = dict(CASES[case])
        partition = given.pop('partition', None)
        if args.steps:
            given['steps'] = args.steps
        began = time.perf_counter()
        result = morph_files(os.path.join(ADK, 'adk_open_3A.mrc'), os.path.join(ADK, 'adk_closed_7A.mrc'),
                             Settings(**given), os.path.join(args.out, case),
                             partition=partition and os.path.join(ADK, partition), log=lambda line: None)
        seconds = time.perf_counter() - began
        moved = result.flow.move(start, 1.0)
        off = np.abs(length(moved) - length(start))
        new = clashes(moved, heavy, bonded) - before_clashes
        print(f'{case:<11} {result.steps:5d}  {seconds:7.0f}  {rms(start, truth):14.2f}  {rms(moved, truth):13.2f}  '
              f'{int((off > BOND_OFF).sum()):14d}  {off.max():12.2f}  {len(new):11d}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
