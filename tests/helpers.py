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


def pdb_lines(atoms):
    """ATOM records for (residue number, xyz) pairs, one CA each, blank chain as the AdK files have."""
    return ''.join(f'ATOM  {i + 1:5d}  CA  ALA  {res:4d}    {x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00           C\n'
                   for i, (res, (x, y, z)) in enumerate(atoms)) + 'END\n'


def open_blobs_moving_apart(session, folder, grid, left, right, atoms, peak=1.0, levels=(0.1, 0.1)):
    """Open in ChimeraX #1 two blobs (sigma 3 Å, at xyz left and right, peak × 1), #2 the blobs 3 Å further
    apart along x, #3 a model of CA atoms (residue, xyz); #1 and #2 shown at `levels`."""
    from cryotrans_engine import write_map
    write_map(folder / 'initial.mrc', peak * (blob(grid, left, 3.0) + blob(grid, right, 3.0)), grid)
    write_map(folder / 'target.mrc', blob(grid, (left[0] - 3, *left[1:]), 3.0)
              + blob(grid, (right[0] + 3, *right[1:]), 3.0), grid)
    (folder / 'model.pdb').write_text(pdb_lines(atoms))
    for name in ('initial.mrc', 'target.mrc', 'model.pdb'):
        run(session, f'open {folder / name}')
    run(session, f'volume #1 level {levels[0]}')
    run(session, f'volume #2 level {levels[1]}')


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
