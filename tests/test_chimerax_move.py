"""`cryotrans move` on AdK in real headless ChimeraX: the open model carried along the open → closed flow
lands near the true closed structure (docs/benchmarks.md has the full-length figures)."""

import os

import numpy as np

from helpers import logged, run

ADK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'data', 'adk')


def ca_coords(structure):
    atoms = structure.atoms
    return atoms.scene_coords[atoms.names == 'CA']


def test_the_open_model_moved_along_a_short_adk_run_comes_most_of_the_way_to_the_closed_structure(session):
    for name in ('adk_open_3A.mrc', 'adk_closed_7A.mrc', 'adk_open.pdb', 'adk_closed.pdb'):
        run(session, f'open {os.path.join(ADK, name)}')
    series, _ = logged(session, 'cryotrans morph #1 to #2 resolution 7 steps 300 refine 150')
    moved, text = logged(session, f'cryotrans move #3 flow #{series.id_string}')
    closed = session.models.list(model_id=(4,))[0]
    rmsd = lambda a, b: float(np.sqrt(((a - b) ** 2).sum(1).mean()))
    before = rmsd(ca_coords(session.models.list(model_id=(3,))[0]), ca_coords(closed))
    after = rmsd(ca_coords(moved), ca_coords(closed))
    assert before > 7.5 and after < 2.5, (before, after)        # 7.66 → 1.45 Å here
    assert f'3341 atoms of #3 moved along cryotrans adk_open_3A.mrc to adk_closed_7A.mrc as #{moved.id_string}' in text
    assert 'bonds kept at their lengths, and its angles' in text
    a, b = moved.bonds.atoms
    i, j = moved.atoms.indices(a), moved.atoms.indices(b)        # copies: the same atoms in the same order
    fitted = session.models.list(model_id=(3,))[0]
    length = lambda s: np.linalg.norm(s.atoms.scene_coords[i] - s.atoms.scene_coords[j], axis=1)
    kept = np.abs(length(moved) - length(fitted))                   # the restraint pass keeps the chemistry
    loose, _ = logged(session, f'cryotrans move #3 flow #{series.id_string} restrain false')
    stretched = np.abs(length(loose) - length(fitted))
    assert (kept > 0.2).sum() <= 5 and (stretched > 0.2).sum() > 50, ((kept > 0.2).sum(), (stretched > 0.2).sum())
