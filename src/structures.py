"""Atomic structures <-> arrays: a model's atoms in a map's frame, and a moved copy with one
coordinate set per frame (so `coordset` plays the motion beside `vseries play`)."""

import numpy as np


def atoms_in_frame_of(structure, model):
    """The structure's atom centres, x, y, z in Å, in the coordinates of another model (a map),
    where they sit in the scene."""
    return model.scene_position.inverse() * structure.atoms.scene_coords


def bonded_pairs(structure):
    """The structure's bonds as pairs of atom indices (i, j) into structure.atoms."""
    a, b = structure.bonds.atoms
    return np.stack([structure.atoms.indices(a), structure.atoms.indices(b)], 1).astype(np.int64)


def moved_copy(session, structure, frames_xyz, model, name):
    """A copy of the structure whose coordinate sets 1…M+1 are frames_xyz ((M+1, N, 3) in Å, in `model`'s
    coordinates), shown at the last (the moved model), added to the session beside the original."""
    copy = structure.copy(name)
    to_copy = copy.scene_position.inverse() * model.scene_position
    sets = np.stack([to_copy * xyz for xyz in frames_xyz]).astype(np.float64)
    copy.add_coordsets(sets, replace=True)
    copy.active_coordset_id = len(sets)
    session.models.add([copy])
    return copy
