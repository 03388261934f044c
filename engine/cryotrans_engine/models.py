"""Atomic models (PDB or mmCIF) in and out, through gemmi: the atoms a flow carries.

gemmi is imported only here, so the engine's other uses do not need it.
"""

import os
import tempfile

import numpy as np

from .errors import CryoTransError
from .maps import follow_umask


class ModelError(CryoTransError):
    """An atomic model file that cannot be read or written."""


def _gemmi():
    try:
        import gemmi
    except ImportError as e:
        raise ModelError('moving atomic models needs gemmi: pip install gemmi') from e
    return gemmi


def read_model(path):
    """(structure, xyz): a PDB or mmCIF file as gemmi reads it, and its atoms' x, y, z in Å, (N, 3)."""
    gemmi = _gemmi()
    if not os.path.exists(path):
        raise ModelError(f'{path}: no such file')
    try:
        structure = gemmi.read_structure(str(path))
    except Exception as e:
        raise ModelError(f'{path}: cannot be read as a PDB or mmCIF model ({e})') from e
    xyz = np.array([atom.pos.tolist() for atom in _atoms(structure)], np.float64).reshape(-1, 3)
    if not len(xyz):
        raise ModelError(f'{path}: holds no atoms')
    return structure, xyz


def _atoms(structure):
    for model in structure:
        for chain in model:
            for residue in chain:
                yield from residue


def hydrogens(structure):
    """Which atoms are hydrogens (N,): by element, or by name where the file gives no element column."""
    return np.array([atom.element.name == 'H' or (atom.element.name in ('X', 'Hg', 'He', 'Hf', 'Ho')
                                                   and atom.name.lstrip('0123456789').startswith('H'))
                     for atom in _atoms(structure)], bool)


def write_model(path, structure, frames):
    """Write a model whose atoms sit at frames[-1] (N, 3), or at each frame as models 1…M+1 when frames
    holds several, as PDB or mmCIF by the file's suffix; whole or not at all."""
    gemmi = _gemmi()
    frames = [np.asarray(f, np.float64) for f in frames]
    out = gemmi.Structure()
    out.name, out.cell, out.spacegroup_hm = structure.name, structure.cell, structure.spacegroup_hm
    for k, xyz in enumerate(frames):
        moved = structure.clone()
        for atom, (x, y, z) in zip(_atoms(moved), xyz):
            atom.pos = gemmi.Position(x, y, z)
        for model in moved:
            model.num = k + 1 if len(frames) > 1 else model.num
            out.add_model(model)
    out.setup_entities()
    cif = str(path).lower().endswith(('.cif', '.mmcif'))
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.model-', suffix='.part', dir=folder)
    os.close(fd)
    try:
        if cif:
            out.make_mmcif_document().write_file(tmp)
        else:
            out.write_pdb(tmp)
        follow_umask(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        os.unlink(tmp)
        if isinstance(e, OSError):
            raise ModelError(f'writing {path} failed ({e.strerror or e}): free space or choose another file') from e
        raise
