"""A synthetic two-body hinge: two rigid arms that turn differently about a shared hinge.

The test case for partitions with a known answer.  Each arm is a row of Gaussian
blobs of different sizes (so that a turn about its own length shows); arm A lies
along +x from the hinge, arm B along +y.  In the other state A turns by +ANGLE_A
and B by ANGLE_B about the z axis through the hinge, so the wedge between them
closes: one smooth field must squeeze the wedge, two rigid fields need not.
The target is the moved state blurred as a map at RESOLUTION is (refinement.py's
molmap filter); the truth is the moved state as sharp as the initial map.
"""

import math

import numpy as np
import torch

from cryotrans_engine import Grid
from cryotrans_engine.refinement import at_resolution, resolution_filter

GRID = Grid((36, 36, 36), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
HINGE = np.array([26.0, 26.0, 35.0])
ANGLE_A, ANGLE_B = 30.0, -30.0
RESOLUTION = 10.0
SIGMA = 2.2
# blob centres (along the arm, sideways, up) in Å from the hinge, and heights
ARM = [((5, 0, 0), 1.0), ((10, 0, 0), 0.8), ((15, 1.5, 0), 1.0), ((20, 0, 2), 0.7),
       ((25, -1.5, 0), 0.9), ((30, 0, -1.5), 1.0), ((25, 4, 0), 0.6)]


def _rotation_z(degrees):
    a = math.radians(degrees)
    return np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])


def _arm_centres(direction, turn):
    """Blob centres (Å) of an arm along x (direction 0) or y (1), turned by `turn`° about the hinge."""
    lay = np.eye(3) if direction == 0 else np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])
    local = np.array([c for c, _ in ARM], dtype=np.float64)
    return (local @ lay.T) @ _rotation_z(turn).T + HINGE


def _density(centres, heights, grid=GRID, sigma=SIGMA):
    nz, ny, nx = grid.shape
    axes = [o + s * np.arange(n) for o, s, n in zip(grid.origin, grid.voxel_size, (nx, ny, nz))]
    z, y, x = np.meshgrid(axes[2], axes[1], axes[0], indexing='ij')
    out = np.zeros(grid.shape)
    for (cx, cy, cz), h in zip(centres, heights):
        out += h * np.exp(-((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) / (2 * sigma ** 2))
    return out.astype(np.float32)


def arms(turn_a=0.0, turn_b=0.0):
    """The two arms' densities, each on GRID."""
    heights = [h for _, h in ARM]
    return _density(_arm_centres(0, turn_a), heights), _density(_arm_centres(1, turn_b), heights)


def hinge_maps():
    """(initial, target, truth, labels): labels are 1 where arm A is denser, 2 where arm B is."""
    a0, b0 = arms()
    a1, b1 = arms(ANGLE_A, ANGLE_B)
    truth = a1 + b1
    t = torch.from_numpy(truth)
    target = at_resolution(t, resolution_filter(t.shape, GRID.voxel_size, RESOLUTION)).numpy()
    labels = np.where(a0 >= b0, 1, 2).astype(np.int32)
    return a0 + b0, target.astype(np.float32), truth, labels


def body_of_particles(particles, grid=GRID):
    """Which arm (1 or 2) each particle of the initial map belongs to, by where it started."""
    a0, b0 = arms()
    which = np.where(a0 >= b0, 1, 2).ravel()
    return which[particles.voxels.cpu().numpy()]
