"""Mass particles: one per voxel above level, at the voxel centre, sorted by region."""

from typing import NamedTuple

import torch


class Particles(NamedTuple):
    """The particles of a map on one grid, sorted by region (each region's in raster order)."""
    mass: torch.Tensor        # (N,)
    positions: torch.Tensor   # (N, 3) unit-box x, y, z
    sections: list            # particles per region, in region order; they sum to N
    voxels: torch.Tensor      # (N,) flat [z, y, x] index of each particle's voxel
    shape: tuple              # the grid's (nz, ny, nx)


def voxel_positions(shape, step, device=None, dtype=torch.float32):
    """Unit-box (x, y, z) of every voxel centre, voxel [i] at (i + 0.5) * step, in [z, y, x] order."""
    axes = [(torch.arange(n, device=device, dtype=dtype) + 0.5) * h for n, h in zip(shape, step[::-1])]
    z, y, x = torch.meshgrid(*axes, indexing='ij')
    return torch.stack((x, y, z), -1)


def particles(density, step, labels=None, regions=1):
    """The non-empty voxels of a map (a torch tensor) as particles.

    labels (optional, same shape, 1..regions on every non-empty voxel) puts each
    particle in its region; without them all are in one.
    """
    mask = density > 0
    voxels = torch.nonzero(mask.flatten()).flatten()
    mass = density.flatten()[voxels]
    positions = voxel_positions(density.shape, step, density.device, density.dtype).reshape(-1, 3)[voxels]
    if labels is None or regions == 1:
        return Particles(mass, positions, [int(voxels.numel())], voxels, tuple(density.shape))
    region = labels.flatten()[voxels].long()
    order = torch.argsort(region, stable=True)
    sections = torch.bincount(region, minlength=regions + 1)[1:].tolist()
    return Particles(mass[order], positions[order], sections, voxels[order], tuple(density.shape))
