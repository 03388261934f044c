"""Mass particles: one per voxel above level, at the voxel centre."""

import torch


def voxel_positions(shape, step, device=None, dtype=torch.float32):
    """Unit-box (x, y, z) of every voxel centre, voxel [i] at (i + 0.5) * step, in [z, y, x] order."""
    axes = [(torch.arange(n, device=device, dtype=dtype) + 0.5) * h for n, h in zip(shape, step[::-1])]
    z, y, x = torch.meshgrid(*axes, indexing='ij')
    return torch.stack((x, y, z), -1)


def particles(density, step):
    """Masses and unit-box positions of the non-empty voxels of a map (a torch tensor)."""
    mask = density > 0
    return density[mask], voxel_positions(density.shape, step, density.device, density.dtype)[mask]
