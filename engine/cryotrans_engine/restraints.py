"""Keeping a moved model's chemistry: the flow is a motion of space, not a force field.

An atomic model carried along the flow follows the density, but each atom moves on its own, so
bonds stretch and squeeze (on AdK about one bond in ten by more than 0.2 Å).  A short restraint
pass puts the atoms back near where the flow took them while every distance between atoms one or
two bonds apart (bond lengths and, through the 1-3 distances, bond angles) is what it was in the
model as fitted: a least-squares problem solved with L-BFGS.  It does not replace real-space
refinement (ISOLDE, phenix.real_space_refine); it hands them a model with sane local geometry.
"""

import numpy as np
import torch

BOND = 1.9          # Å: atoms closer than this in the fitted model are bonded (heavy atoms)
BOND_H = 1.3        # Å: the same with a hydrogen
FOLLOW = 0.1        # weight of staying where the flow put each atom, against 1 for each kept distance


def bonds_by_distance(xyz, hydrogen, cell=2.0):
    """Bonded pairs (i < j) of a model without bond records: atoms closer than BOND (BOND_H with a
    hydrogen), found cell by cell so that it stays linear in the atoms."""
    xyz = np.asarray(xyz, np.float64)
    hydrogen = np.asarray(hydrogen, bool)
    keys = np.floor(xyz / cell).astype(np.int64)
    cells = {}
    for i, key in enumerate(map(tuple, keys)):
        cells.setdefault(key, []).append(i)
    pairs = []
    offsets = [(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)]
    for key, members in cells.items():
        here = np.array(members)
        near = np.array([j for o in offsets for j in cells.get((key[0] + o[0], key[1] + o[1], key[2] + o[2]), ())])
        d = np.linalg.norm(xyz[here][:, None] - xyz[near][None], axis=-1)
        limit = np.where(hydrogen[here][:, None] | hydrogen[near][None], BOND_H, BOND)
        i, j = np.nonzero((d < limit) & (here[:, None] < near[None]))
        pairs.append(np.stack([here[i], near[j]], 1))
    return np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)


def local_pairs(bonds):
    """Pairs one or two bonds apart (i < j): the bonds and the pairs sharing a bonded neighbour."""
    partners = {}
    for i, j in np.asarray(bonds, np.int64):
        partners.setdefault(int(i), set()).add(int(j))
        partners.setdefault(int(j), set()).add(int(i))
    pairs = {(min(i, j), max(i, j)) for i, j in np.asarray(bonds, np.int64)}
    for near in partners.values():
        near = sorted(near)
        pairs.update((a, b) for k, a in enumerate(near) for b in near[k + 1:])
    return np.array(sorted(pairs), np.int64).reshape(-1, 2)


def keep_geometry(fitted, moved, bonds, iterations=200):
    """Atoms near `moved` (N, 3 Å) whose distances one or two bonds apart are those of `fitted`."""
    pairs = torch.from_numpy(local_pairs(bonds))
    start = torch.from_numpy(np.asarray(fitted, np.float64))
    goal = torch.from_numpy(np.asarray(moved, np.float64))
    if not len(pairs):
        return goal.numpy().copy()
    length = (start[pairs[:, 0]] - start[pairs[:, 1]]).norm(dim=1)
    x = goal.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([x], max_iter=iterations, line_search_fn='strong_wolfe')

    def energy():
        optimizer.zero_grad()
        stretch = (x[pairs[:, 0]] - x[pairs[:, 1]]).norm(dim=1) - length
        e = (stretch ** 2).sum() + FOLLOW * ((x - goal) ** 2).sum()
        e.backward()
        return e
    optimizer.step(energy)
    return x.detach().numpy()
