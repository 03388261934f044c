"""A partition of the initial map into regions, each moved by its own velocity field.

Regions come as a label map on the initial map's grid: 0 is no region, 1…N are the
regions.  Every particle needs a field, so a voxel above level with label 0 follows
the nearest region: labels grow out from the regions one voxel at a time (over the
26 neighbours; where regions meet, the one with most neighbours, then the lower
label) until every voxel above level has one.  On coarse grids a binned voxel takes
the label most of its voxels above level have (a majority vote: labels are names,
summing them would make new ones).
"""

import numpy as np
import torch

from .maps import MapError


def region_labels(labels, occupied):
    """Check a label map against the voxels above level (occupied) and fill their gaps.

    Returns int32 labels, 1…N on every occupied voxel and 0 elsewhere.  Raises MapError
    for labels that are not whole numbers ≥ 0, for no region at all, and for a region
    that is missing from the numbering or holds no voxel above level.
    """
    labels = np.asarray(labels)
    if labels.shape != occupied.shape:
        raise MapError(f'the region map is {labels.shape[::-1]} voxels, the initial map '
                       f'{occupied.shape[::-1]}: give it on the initial map\'s grid')
    if not np.isfinite(labels).all() or (labels < 0).any() or (labels != np.round(labels)).any():
        raise MapError('the region map must hold whole numbers: 0 for no region, 1, 2, … for regions')
    labels = labels.astype(np.int32)
    count = int(labels.max())
    if count == 0:
        raise MapError('the region map has no region (every voxel is 0)')
    present = np.bincount(labels.ravel(), minlength=count + 1)
    empty = [r for r in range(1, count + 1) if present[r] == 0]
    if empty:
        raise MapError(f'region {", ".join(map(str, empty))} of 1–{count} has no voxels: number regions 1, 2, … '
                       'without gaps')
    held = np.bincount(labels[occupied].ravel(), minlength=count + 1)
    bare = [r for r in range(1, count + 1) if held[r] == 0]
    if bare:
        raise MapError(f'region {", ".join(map(str, bare))} holds no density above the initial map\'s level: '
                       'draw it over the molecule, or lower level0')
    return grow_labels(labels, occupied, count)


def grow_labels(labels, occupied, count):
    """Give every occupied voxel without a label the label of the nearest region (see above).

    Labels grow through the density first, so density joined to a region follows it.  A piece
    of density that touches no region (dust, which real maps have at useful levels) is reached
    through the empty space between: the region nearest to it takes it.  Every step labels a
    voxel or carries the regions one voxel further through space, so it ends within the box's size.
    """
    t = torch.from_numpy(labels).long()
    todo = torch.from_numpy(occupied) & (t == 0)
    space = t                           # the regions carried through empty space, to reach dust
    while todo.any():
        best, near = _neighbours(t, count)
        reached = todo & near
        if not reached.any():
            while not (todo & (space > 0)).any():
                best, near = _neighbours(space, count)
                space = torch.where((space == 0) & near, best, space)
            reached = todo & (space > 0)
            best = space
        t = torch.where(reached, best, t)
        todo &= ~reached
    return torch.where(torch.from_numpy(occupied), t, 0).to(torch.int32).numpy()


def _neighbours(t, count):
    """For each voxel, the region most of its 26 neighbours (and itself) are in, the lower label of
    a tie; and whether any of them is in a region."""
    onehot = torch.nn.functional.one_hot(t, count + 1)[..., 1:].permute(3, 0, 1, 2).float()
    near = torch.nn.functional.conv3d(onehot[None], torch.ones(count, 1, 3, 3, 3), padding=1, groups=count)[0]
    return near.argmax(0) + 1, near.amax(0) > 0       # argmax takes the first (lower label) of ties


def labels_on_grid(labels, grid, onto, transform=None):
    """A label map on another grid, by nearest neighbour (labels are names, not values)."""
    nz, ny, nx = onto.shape
    idx = np.stack(np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing='ij')[::-1], -1)
    xyz = idx * np.array(onto.voxel_size) + np.array(onto.origin)
    if transform is not None:
        t = np.asarray(transform, dtype=np.float64)
        xyz = xyz @ t[:, :3].T + t[:, 3]
    f = (xyz - np.array(grid.origin)) / np.array(grid.voxel_size)
    size = np.array(grid.shape[::-1])
    inside = ((f >= -0.5) & (f <= size - 0.5)).all(-1)     # a voxel reaches half a step past its centre
    ijk = np.clip(np.floor(f + 0.5).astype(np.int64), 0, size - 1)
    out = np.asarray(labels)[ijk[..., 2], ijk[..., 1], ijk[..., 0]]
    if not (inside & (out > 0)).any():
        raise MapError('the region map does not overlap the initial map\'s box; '
                       'make it on the initial map (cryotrans partition) or place it over it')
    return np.where(inside, out, 0)


def bin_labels(labels, occupied, factor, count):
    """Labels on a grid binned by factor: each block's majority among its occupied voxels."""
    if factor == 1:
        return labels
    onehot = torch.nn.functional.one_hot(labels.long(), count + 1)[..., 1:] * occupied[..., None]
    v = onehot.permute(3, 0, 1, 2).float()
    pad = [(-n) % factor for n in labels.shape]
    v = torch.nn.functional.pad(v, (0, pad[2], 0, pad[1], 0, pad[0]))
    _, nz, ny, nx = v.shape
    votes = v.reshape(count, nz // factor, factor, ny // factor, factor, nx // factor, factor).sum((2, 4, 6))
    return torch.where(votes.amax(0) > 0, votes.argmax(0) + 1, 0).to(labels.dtype)



def region_summary(pair, settings):
    """Particles per region and their rigidity, for logs ('' without a partition)."""
    if pair.regions is None:
        return ''
    counts = np.bincount(pair.regions.ravel(), minlength=pair.region_count + 1)[1:]
    return (f'{pair.region_count} regions of {", ".join(str(int(n)) for n in counts)} particles, '
            f'rigidity {", ".join(f"{v:g}" for v in settings.rigidity)} ({settings.rigidity_form})')
