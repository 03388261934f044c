"""Atoms of a PDB or mmCIF model as arrays, for the map generators (adk_maps, haemoglobin_maps,
realsize_maps).

gemmi reads the files, as the engine reads models (cryotrans_engine.models): no tool parses PDB
columns or CIF loops by hand.  What is simulated is one model's atoms without waters, with the first
of alternative conformations; hydrogens only where a generator asks for them (AdK's maps count them).
"""

from typing import NamedTuple

import gemmi
import numpy as np


class Atoms(NamedTuple):
    """One model's atoms, in the file's order."""
    chain: np.ndarray      # chain ids: auth_asym_id in mmCIF, up to two letters in PDB columns 21-22
    resseq: np.ndarray     # residue numbers
    name: np.ndarray       # atom names
    element: np.ndarray    # element symbols as gemmi reads them ('C', 'Mg'; 'X' where it cannot tell)
    serial: np.ndarray     # atom serial numbers (hybrid-36 ones read)
    xyz: np.ndarray        # (N, 3) x, y, z in Å


def read_atoms(path, hydrogens=False):
    """The first model's atoms of a PDB or mmCIF file, in its order: waters and, unless hydrogens,
    hydrogens left out; of alternative conformations, the first.

    Chain parts are not merged (gemmi would put the haem groups listed after all four chains of
    haemoglobin with their chains): the file's order is the order of the sums that make the maps,
    and of the records that with_coordinates rewrites.
    """
    return _atoms(gemmi.read_structure(str(path), merge_chain_parts=False), hydrogens)


def pdb_text_atoms(text, hydrogens=False):
    """read_atoms for a PDB file's text (AdK's come out of a tarball)."""
    return _atoms(gemmi.read_pdb_string(text), hydrogens)


def _atoms(structure, hydrogens):
    model = structure[0]
    model.remove_waters()
    model.remove_alternative_conformations()
    if not hydrogens:
        model.remove_hydrogens()
    rows = [(c.chain.name, c.residue.seqid.num, c.atom.name, c.atom.element.name, c.atom.serial, c.atom.pos.tolist())
            for c in model.all()]
    if not rows:
        raise ValueError(f'{structure.name}: no atoms to simulate')
    chain, resseq, name, element, serial, xyz = zip(*rows)
    return Atoms(np.array(chain), np.array(resseq), np.array(name), np.array(element), np.array(serial),
                 np.array(xyz, float))


def atomic_numbers(elements):
    """Atomic numbers of element symbols (float: map weights); ValueError for one gemmi does not know."""
    return _per_element(elements, 'atomic_number')


def weights(elements):
    """Standard atomic weights (Da) of element symbols; ValueError for one gemmi does not know."""
    return _per_element(elements, 'weight')


def _per_element(elements, what):
    """gemmi's number `what` of each element symbol, looked up once per symbol."""
    known = {e: getattr(gemmi.Element(e), what) for e in np.unique(elements)}
    unknown = sorted(e for e in known if gemmi.Element(e).atomic_number == 0)
    if unknown:
        raise ValueError(f'unknown element symbol(s) {", ".join(unknown)}')
    return np.array([known[e] for e in elements], float)


def with_coordinates(lines, xyz, serial):
    """PDB lines with each ATOM/HETATM record's x, y, z (columns 31-54) replaced by a row of xyz and
    the rest kept byte for byte: a structure moved, written as it was given.  The records must be
    the atoms xyz holds, in the file's order: read_atoms keeps it where the serial numbers increase,
    and anything else is refused rather than written with atoms swapped."""
    records = [i for i, line in enumerate(lines) if line.startswith(('ATOM  ', 'HETATM'))]
    if len(records) != len(xyz) or (np.diff(serial) <= 0).any():
        raise ValueError(f'{len(records)} atom records for {len(xyz)} atoms, or not in the file\'s order')
    out = list(lines)
    for i, (x, y, z) in zip(records, xyz):
        out[i] = f'{lines[i][:30]}{x:8.3f}{y:8.3f}{z:8.3f}{lines[i][54:]}'
    return out
