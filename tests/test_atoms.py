"""tools/atoms.py: the map generators' atoms, read by gemmi in the file's order, and moved records written back."""

import os

import numpy as np
import pytest

from atoms import atomic_numbers, pdb_text_atoms, read_atoms, weights, with_coordinates

ADK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'data', 'adk')


def record(serial, name, resname, chain, resseq, xyz, element, altloc=' ', kind='ATOM  '):
    """One PDB ATOM/HETATM line, laid out by the format's columns."""
    return (f'{kind}{serial:5d} {name:<4}{altloc}{resname:>3} {chain}{resseq:4d}    '
            f'{xyz[0]:8.3f}{xyz[1]:8.3f}{xyz[2]:8.3f}  1.00  0.00          {element:>2}\n')


# Two chains, then a ligand of chain A listed after both (as haemoglobin's haem groups are), a
# water, a hydrogen, and an atom in two conformations.
LINES = [record(1, 'N', 'GLY', 'A', 1, (0, 0, 0), 'N'),
         record(2, 'CA', 'GLY', 'A', 1, (1.5, 0, 0), 'C'),
         record(3, 'H', 'GLY', 'A', 1, (1.5, 1, 0), 'H'),
         'TER       4      GLY A   1\n',
         record(5, 'N', 'ALA', 'B', 1, (10, 0, 0), 'N'),
         record(6, 'CB', 'ALA', 'B', 1, (11, 1, 0), 'C', altloc='A'),
         record(7, 'CB', 'ALA', 'B', 1, (11, -1, 0), 'C', altloc='B'),
         'TER       8      ALA B   1\n',
         record(9, 'FE', 'HEM', 'A', 201, (5, 5, 5), 'FE', kind='HETATM'),
         record(10, 'O', 'HOH', 'A', 301, (9, 9, 9), 'O', kind='HETATM'),
         'END\n']


def test_the_atoms_come_in_the_file_s_order_without_waters_hydrogens_or_second_conformations():
    atoms = pdb_text_atoms(''.join(LINES))
    assert atoms.serial.tolist() == [1, 2, 5, 6, 9]
    assert atoms.chain.tolist() == ['A', 'A', 'B', 'B', 'A']
    assert atoms.name.tolist() == ['N', 'CA', 'N', 'CB', 'FE']
    assert atoms.resseq.tolist() == [1, 1, 1, 1, 201]
    assert atomic_numbers(atoms.element).tolist() == [7, 6, 7, 6, 26]
    assert atoms.xyz[3].tolist() == [11, 1, 0]
    assert pdb_text_atoms(''.join(LINES), hydrogens=True).serial.tolist() == [1, 2, 3, 5, 6, 9]


def test_a_file_is_read_as_its_text_is(tmp_path):
    """A file read from disk (merge_chain_parts off) keeps the ligand at the end, as its text does."""
    path = tmp_path / 'two_chains.pdb'
    path.write_text(''.join(LINES))
    from_file, from_text = read_atoms(path), pdb_text_atoms(''.join(LINES))
    for a, b in zip(from_file, from_text):
        assert np.array_equal(a, b)


def test_moved_coordinates_replace_columns_31_to_54_and_keep_the_rest_of_each_record():
    text = open(os.path.join(ADK, 'adk_open.pdb')).read()
    atoms = pdb_text_atoms(text, hydrogens=True)
    assert len(atoms.xyz) == 3341
    lines = text.splitlines(keepends=True)
    moved = atoms.xyz + (1.25, -2.5, 0.0005)
    out = with_coordinates(lines, moved, atoms.serial)
    assert [a[:30] + a[54:] for a in out] == [b[:30] + b[54:] for b in lines]
    again = pdb_text_atoms(''.join(out), hydrogens=True)
    assert np.abs(again.xyz - moved).max() <= 0.0005 + 1e-9
    assert with_coordinates(lines, atoms.xyz, atoms.serial) == lines     # unmoved: the same bytes


def test_records_that_are_not_the_atoms_read_are_refused():
    atoms = pdb_text_atoms(''.join(LINES), hydrogens=True)
    records = [line for line in LINES if line.startswith(('ATOM  ', 'HETATM'))]
    with pytest.raises(ValueError, match='atom records for'):
        with_coordinates(records, atoms.xyz, atoms.serial)                 # the water is a record too
    with pytest.raises(ValueError, match="not in the file's order"):
        with_coordinates(records[:6], atoms.xyz, atoms.serial[::-1])


def test_an_element_gemmi_does_not_know_is_refused_not_weighed_as_nothing():
    assert weights(['C', 'Mg']).tolist() == pytest.approx([12.011, 24.305], abs=1e-3)
    with pytest.raises(ValueError, match='unknown element symbol'):
        atomic_numbers(['C', 'X'])
