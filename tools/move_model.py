"""An atomic model carried along the flow, scored: AdK's open model moved open → closed.

    python tools/move_model.py [--steps N] [--cases plain,resolution,partition]

For each case a morph of data/adk (open 3 Å → closed 7 Å) is trained, the open model
(data/adk/adk_open.pdb) is moved along its flow (TrainedFlow.move, each atom by its region's
field), and the table gives the CA RMSD to the true closed structure (data/adk/adk_closed.pdb,
superposed as the maps are) before and after, and what the flow did to the model's geometry:
bonds stretched or squeezed by more than 0.2 Å, and new clashes (non-bonded heavy atoms closer
than 2.2 Å that were not before), as the flow leaves them and after the restraint pass that keeps
bond lengths and angles (restraints.py, what `cryotrans move` does unless told not to).
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
CLASH = 2.2         # Å: non-bonded heavy atoms closer than this clash
BOND_OFF = 0.2      # Å: a bond whose length changed by more than this is an outlier


def clashes(xyz, heavy, near):
    """Heavy atoms more than two bonds apart (near: the pairs that are not) closer than CLASH."""
    index = np.nonzero(heavy)[0]
    d = np.linalg.norm(xyz[index][:, None] - xyz[index][None], axis=-1)
    i, j = np.nonzero(np.triu(d < CLASH, 1))
    return {(int(index[a]), int(index[b])) for a, b in zip(i, j)} - near


def main(argv=None):
    from cryotrans_engine import Settings, morph_files
    from cryotrans_engine.carry import carry
    from cryotrans_engine.models import hydrogens, read_model
    from cryotrans_engine.restraints import bonds_by_distance, local_pairs
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--steps', type=int, default=None, help='training steps (default: the engine\'s)')
    p.add_argument('--cases', default=','.join(CASES))
    p.add_argument('--out', default=os.path.join(ROOT, 'move_out'))
    args = p.parse_args(argv)
    structure, start = read_model(os.path.join(ADK, 'adk_open.pdb'))
    _, truth = read_model(os.path.join(ADK, 'adk_closed.pdb'))
    ca = np.array([a.name == 'CA' for m in structure for c in m for r in c for a in r])
    heavy = ~hydrogens(structure)
    bonds = bonds_by_distance(start, ~heavy)
    near = {(int(i), int(j)) for i, j in local_pairs(bonds)}
    rms = lambda a, b: float(np.sqrt(((a[ca] - b[ca]) ** 2).sum(1).mean()))
    length = lambda xyz: np.linalg.norm(xyz[bonds[:, 0]] - xyz[bonds[:, 1]], axis=1)
    before_clashes = clashes(start, heavy, near)
    print(f'{ca.sum()} CA atoms; CA RMSD open vs closed {rms(start, truth):.2f} Å; {len(bonds)} bonds; '
          f'{len(before_clashes)} clashes in the open model')
    print('case        restrained  steps  train_s  CA_RMSD_before  CA_RMSD_after  bonds_off>0.2Å  worst_bond_Å  '
          'new_clashes')
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
        for restrained in (False, True):
            (moved,), _ = carry(result.flow, start, bonds if restrained else None, every_frame=False)
            off = np.abs(length(moved) - length(start))
            new = clashes(moved, heavy, near) - before_clashes
            print(f'{case:<11} {"yes" if restrained else "no":>10}  {result.steps:5d}  {seconds:7.0f}  '
                  f'{rms(start, truth):14.2f}  {rms(moved, truth):13.2f}  {int((off > BOND_OFF).sum()):14d}  '
                  f'{off.max():12.2f}  {len(new):11d}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
