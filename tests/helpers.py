"""For tests: small synthetic maps (Gaussian blobs on chosen grids), and ChimeraX command lines."""

import numpy as np


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


def run(session, command):
    """Run a ChimeraX command line (unlogged) and return its result."""
    from chimerax.core.commands import run as cx_run
    return cx_run(session, command, log=False)


def logged(session, command):
    """Run a ChimeraX command line; return its result and what it logged."""
    from chimerax.core.logger import StringPlainTextLog
    with StringPlainTextLog(session.logger) as log:
        result = run(session, command)
    return result, log.getvalue()


class Said:
    """A logger that keeps what it is told (a ChimeraX logger's info and warning)."""

    def __init__(self):
        self.lines, self.warnings = [], []

    def info(self, text):
        self.lines.append(text)

    def warning(self, text):
        self.warnings.append(text)
