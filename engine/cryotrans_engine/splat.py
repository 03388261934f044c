"""Trilinear splatting: particles back onto the grid, differentiable in their positions."""

import torch


def splat(mass, positions, shape, step):
    """Density on a [z, y, x] grid of the given shape from particles at unit-box positions.

    Each particle's mass is shared among its 8 nearest voxel centres with trilinear
    weights, so the total is kept for particles inside the box; mass that leaves the
    box is dropped.  Gradients flow to mass and positions through the weights.
    """
    h = torch.as_tensor(step, dtype=positions.dtype, device=positions.device)
    g = positions / h - 0.5
    base = torch.floor(g)
    frac = g - base
    base = base.long()
    size = torch.tensor(shape[::-1], device=positions.device)
    nz, ny, nx = shape
    index, value = [], []
    for corner in range(8):
        offset = torch.tensor([(corner >> a) & 1 for a in range(3)], device=positions.device)
        ijk = base + offset
        w = torch.where(offset.bool(), frac, 1 - frac).prod(-1)
        inside = ((ijk >= 0) & (ijk < size)).all(-1)
        ijk = torch.where(inside[:, None], ijk, 0)
        index.append((ijk[:, 2] * ny + ijk[:, 1]) * nx + ijk[:, 0])
        value.append(torch.where(inside, w * mass, 0))
    flat = torch.zeros(nz * ny * nx, dtype=mass.dtype, device=mass.device)
    return flat.index_add(0, torch.cat(index), torch.cat(value)).reshape(shape)
