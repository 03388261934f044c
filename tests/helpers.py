"""Small synthetic maps for tests: Gaussian blobs on chosen grids."""

import numpy as np

from chimerax.cryotrans.engine import Grid


def blob(grid, centre, sigma=4.0):
    """A Gaussian blob (peak 1) centred at xyz Å on a grid."""
    nz, ny, nx = grid.shape
    axes = [o + s * np.arange(n) for o, s, n in zip(grid.origin, grid.voxel_size, (nx, ny, nz))]
    z, y, x = np.meshgrid(axes[2], axes[1], axes[0], indexing='ij')
    r2 = (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2
    return np.exp(-r2 / (2 * sigma ** 2)).astype(np.float32)


def centroid(values, grid):
    """Centre of mass (xyz Å) of a map."""
    nz, ny, nx = grid.shape
    axes = [o + s * np.arange(n) for o, s, n in zip(grid.origin, grid.voxel_size, (nx, ny, nz))]
    z, y, x = np.meshgrid(axes[2], axes[1], axes[0], indexing='ij')
    m = values.sum()
    return np.array([(values * x).sum() / m, (values * y).sum() / m, (values * z).sum() / m])
