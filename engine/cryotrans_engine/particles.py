"""Mass particles: one per voxel above level, sorted by region.

On the map's own grid a particle sits at its voxel's centre.  A particle of a coarser
binning (a large map's stage, refinement's steps before its polish) holds a block of
factor³ voxels and sits at the block's centre of mass, not its geometric centre: the
coarse particles then place the mass where the map has it, and a loss measured on a finer
grid sees the map as it is, not as a lattice of block centres.  Measured on the AdK demo,
refinement moving bin 2's particles (one a 2³ block, with the last sixth of its steps on every
particle): at block centres FSC(0.5) 3.56 Å against the 5 Å target's truth, at centres of mass
3.50 Å, the same as every particle in every step (3.47 Å); docs/benchmarks.md, "Time".
"""

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


def block_centres(fine, factor, step):
    """Unit-box (x, y, z) centre of mass of each factor³ block of a map (fine: a [z, y, x] tensor whose
    voxels above 0 are mass, on a grid of `step`), flat in raster order over the binned grid (the grid
    training.bin_map makes; the far blocks padded).  Blocks without mass get 0."""
    shape = [-(-n // factor) for n in fine.shape]
    index = torch.nonzero(fine > 0)                                   # (N, 3) z, y, x
    mass = fine[index[:, 0], index[:, 1], index[:, 2]]
    h = torch.tensor(step[::-1], dtype=fine.dtype, device=fine.device)
    where = (index.to(fine.dtype) + 0.5) * h                         # z, y, x
    block = index // factor
    flat = (block[:, 0] * shape[1] + block[:, 1]) * shape[2] + block[:, 2]
    blocks = shape[0] * shape[1] * shape[2]
    total = torch.zeros(blocks, dtype=fine.dtype, device=fine.device).index_add_(0, flat, mass)
    moment = torch.zeros(blocks, 3, dtype=fine.dtype, device=fine.device).index_add_(0, flat, where * mass[:, None])
    return (moment / torch.where(total > 0, total, 1)[:, None]).flip(-1)


def particles(density, step, labels=None, regions=1, centres=None):
    """The non-empty voxels of a map (a torch tensor) as particles.

    labels (optional, same shape, 1..regions on every non-empty voxel) puts each
    particle in its region; without them all are in one.  centres (block_centres, when the
    map is a binning of a finer one): where each voxel's mass sits, instead of its centre.
    """
    mask = density > 0
    voxels = torch.nonzero(mask.flatten()).flatten()
    mass = density.flatten()[voxels]
    if centres is None:
        positions = voxel_positions(density.shape, step, density.device, density.dtype).reshape(-1, 3)[voxels]
    else:
        positions = centres[voxels].to(density.dtype)
    if labels is None or regions == 1:
        return Particles(mass, positions, [int(voxels.numel())], voxels, tuple(density.shape))
    region = labels.flatten()[voxels].long()
    order = torch.argsort(region, stable=True)
    sections = torch.bincount(region, minlength=regions + 1)[1:].tolist()
    return Particles(mass[order], positions[order], sections, voxels[order], tuple(density.shape))
