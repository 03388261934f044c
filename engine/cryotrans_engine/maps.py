"""Density maps on regular grids: read, write, choose a level, resample.

Arrays are indexed [z, y, x] as ChimeraX and mrcfile do; voxel size and
origin are (x, y, z) in Å, the origin being the centre of voxel [0, 0, 0].
"""

import os
import socket
import tempfile
import warnings
from dataclasses import dataclass

import mrcfile
import numpy as np
import torch

from .errors import MapError, OutputError


@dataclass(frozen=True)
class Grid:
    """Where a map's voxels sit in space."""
    shape: tuple          # (nz, ny, nx)
    voxel_size: tuple     # (x, y, z) Å
    origin: tuple         # (x, y, z) Å of voxel [0, 0, 0]'s centre

    def __post_init__(self):
        object.__setattr__(self, 'shape', tuple(int(n) for n in self.shape))
        object.__setattr__(self, 'voxel_size', tuple(float(v) for v in self.voxel_size))
        object.__setattr__(self, 'origin', tuple(float(v) for v in self.origin))

    @property
    def extent(self):
        """Edge lengths (x, y, z) in Å of the box the voxels fill."""
        return tuple(n * s for n, s in zip(self.shape[::-1], self.voxel_size))

    @property
    def corner(self):
        """xyz (Å) of the box's lowest corner: half a voxel before voxel [0, 0, 0]'s centre."""
        return tuple(o - 0.5 * s for o, s in zip(self.origin, self.voxel_size))

    def box_text(self):
        """'(x, y, z) to (x, y, z) Å': the box the voxels fill, for messages."""
        far = [c + e for c, e in zip(self.corner, self.extent)]
        return ' to '.join('(' + ', '.join(f'{c:.1f}' for c in xyz) + ')' for xyz in (self.corner, far)) + ' Å'

    @property
    def unit_step(self):
        """Voxel size (x, y, z) in the unit box whose longest edge is 1: the method's length scale."""
        longest = max(self.extent)
        return tuple(s / longest for s in self.voxel_size)

    def binned(self, factor):
        """The grid of this map binned by an integer factor (padded at the far edges)."""
        shape = tuple(-(-n // factor) for n in self.shape)
        origin = tuple(o + 0.5 * (factor - 1) * s for o, s in zip(self.origin, self.voxel_size))
        return Grid(shape, tuple(s * factor for s in self.voxel_size), origin)


def output_folder(path):
    """Make sure results can go into a folder (made if need be) before any work is done.

    Raises OutputError, naming the folder, for a path that is a file, cannot be made, or
    cannot be written (checked by writing and removing a small file there).
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputError(f'{path} is a file, not a folder: give a folder for the results')
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix='.cryotrans-', dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputError(f'results cannot be written to {path} ({e.strerror or e}): choose another folder') from e
    return path


CLAIM = '.cryotrans-run'     # in a results folder while a run writes there: "pid host what"
_claimed = set()             # the folders this process's runs hold (real paths)


class FolderClaim:
    """A results folder held by one run while it writes its frames and flow.pt there, so that a
    second run (in this process or another: two terminals, a terminal and ChimeraX) is told to
    choose another folder instead of interleaving its files with the first's.  A claim left by a
    process that has died is taken over; release() (or the with block's end) gives it up."""

    def __init__(self, path, what):
        self.folder = os.path.realpath(path)
        self.path = os.path.join(self.folder, CLAIM)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _holder(self.path, self.folder)
                if holder is not None:
                    raise OutputError(f'{path} is in use: {holder} is writing its frames and flow.pt there; choose '
                                   f'another folder, or wait for that run to end (if it is not running any more, '
                                   f'delete {self.path})') from None
                try:
                    os.unlink(self.path)          # left by a run that died: take it over
                except FileNotFoundError:
                    pass
                continue
            except OSError as e:
                raise OutputError(f'results cannot be written to {path} ({e.strerror or e}): choose another '
                               f'folder') from e
            with os.fdopen(fd, 'w') as f:
                f.write(f'{os.getpid()} {socket.gethostname()} {what}\n')
            _claimed.add(self.folder)
            return
        raise OutputError(f'{path}: another run took the folder while this one was starting; choose another folder')

    def release(self):
        if self.folder in _claimed:
            _claimed.discard(self.folder)
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _holder(path, folder):
    """Who holds a claim file, in words, or None when the process that wrote it is gone."""
    try:
        with open(path) as f:
            pid, host, what = (f.read().strip().split(' ', 2) + ['', '', ''])[:3]
        pid = int(pid)
    except (OSError, ValueError):
        return 'another run'                  # being written this instant, or not ours to judge
    who = what or 'a cryotrans run'
    if pid == os.getpid() and host == socket.gethostname():
        return f'{who} of this session' if folder in _claimed else None
    if host == socket.gethostname():          # (another machine's cannot be told from here: held)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass                              # alive, another user's
    return f'{who} (process {pid} on {host})'


def claim_folder(path, what='a cryotrans run'):
    """Hold a results folder for one run (FolderClaim); OutputError, naming the holder, if another has it."""
    return FolderClaim(path, what)


def read_map(path):
    """Read an MRC/CCP4 map as float32 [z, y, x] values and its Grid, in any axis order."""
    try:
        with warnings.catch_warnings(record=True) as caught:      # mrcfile warns, then reads what it can
            warnings.simplefilter('always')
            mrc = mrcfile.open(path, permissive=True)
        with mrc:
            said = ' '.join(str(w.message) for w in caught)
            if 'bytes in data block' in said:
                raise MapError(f'{path} is truncated: its header promises more data than the file holds '
                               f'({said.strip()}); the file is incomplete: copy or save it again')
            if mrc.data is None:
                raise MapError(f'{path} is not an MRC/CCP4 map: its header is not one ({said.strip() or "no data"})')
            h = mrc.header
            if mrc.data.size == 0:
                raise MapError(f'{path} holds no map: its header gives {int(h.nx)}×{int(h.ny)}×{int(h.nz)} voxels '
                               f'(a file of zeros, or one not written whole): copy or save it again')
            if mrc.data.ndim != 3:
                raise MapError(f'{path} holds a {mrc.data.ndim}D image, not a 3D density map')
            axes = (int(h.maps), int(h.mapr), int(h.mapc))   # file axes 0, 1, 2 hold these of x=1, y=2, z=3
            if sorted(axes) != [1, 2, 3]:
                axes = (3, 2, 1)
            values = np.array(mrc.data.transpose(np.argsort([3 - a for a in axes])), dtype=np.float32, order='C')
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')       # a cell of 0 over 0 voxels: nan, refused below in words
                vs = mrc.voxel_size
            voxel = (float(vs.x), float(vs.y), float(vs.z))
            origin = (float(h.origin.x), float(h.origin.y), float(h.origin.z))
            if not all(np.isfinite(voxel + origin)) or max(map(abs, voxel + origin)) > 1e7:
                raise MapError(f'{path}\'s header places it nowhere sensible (voxel size {voxel}, origin {origin} Å): '
                               f'fix the header (in ChimeraX: volume #N voxelSize S origin X,Y,Z, then save it)')
            angles = tuple(float(a) for a in (h.cellb.alpha, h.cellb.beta, h.cellb.gamma))
            if any(a != 0 for a in angles) and any(abs(a - 90) > 0.01 for a in angles):
                raise MapError(f'{path} is on a skewed grid (cell angles {", ".join(f"{a:g}" for a in angles)}°, '
                               f'not 90°): cryotrans needs a rectangular grid; resample the map onto one (in '
                               f'ChimeraX: volume resample #N onGrid <a map with 90° angles>, then save it)')
            if min(voxel) <= 0:          # as ChimeraX reads a header without a cell: 1 Å voxels
                voxel = (1.0, 1.0, 1.0)
            if origin == (0.0, 0.0, 0.0):
                start = [0, 0, 0]
                for file_axis, n in zip((int(h.mapc), int(h.mapr), int(h.maps)),
                                        (int(h.nxstart), int(h.nystart), int(h.nzstart))):
                    if 1 <= file_axis <= 3:
                        start[file_axis - 1] = n
                origin = tuple(n * s for n, s in zip(start, voxel))
    except (OSError, ValueError) as e:
        if isinstance(e, MapError):
            raise
        raise MapError(f'{path}: cannot be read as an MRC/CCP4 map ({e})') from e
    return values, Grid(values.shape, voxel, origin)


def write_map(path, values, grid):
    """Write float32 values on grid as MRC, atomically: a reader never sees half a file."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    if values.shape != grid.shape:
        raise MapError(f'map shape {values.shape} does not match grid {grid.shape}')
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(suffix='.mrc', dir=folder)
    os.close(fd)
    try:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(values)
            mrc.voxel_size = grid.voxel_size
            mrc.header.origin = grid.origin
            _header_statistics(mrc.header, values)
        follow_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _header_statistics(header, values):
    """Minimum, maximum, mean and RMS deviation in the header, summed in double precision so that they
    stay finite for huge values (float32 sums overflow), as the MRC 2014 format defines them."""
    v = values.astype(np.float64)
    top = float(np.finfo(np.float32).max)
    mean = float(v.mean()) if v.size else 0.0
    rms = float(np.sqrt(((v - mean) ** 2).mean())) if v.size else 0.0
    header.dmin, header.dmax = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    header.dmean, header.rms = mean, min(rms, top)


_UMASK = os.umask(0)
os.umask(_UMASK)


def follow_umask(path):
    """A file made by mkstemp (0600) given the permissions of any file the user writes (0666 less the umask)."""
    os.chmod(path, 0o666 & ~_UMASK)


def normalise_pair(initial, target):
    """Scale the initial map to peak 1 and the target to the same mass, as the method does.

    Both maps must hold some density (prepare_pair checks, naming the level to lower).
    Returns both arrays and the initial map's peak, to turn frames back into its units.
    """
    peak = float(initial.max())
    f0 = initial / peak
    f1 = target * (float(f0.sum(dtype=np.float64)) / float(target.sum(dtype=np.float64)))
    return f0.astype(np.float32), f1.astype(np.float32), peak


def resample(values, grid, onto, transform=None):
    """Trilinear values of a map at the voxel centres of another grid, zero outside.

    transform (3x4, optional) takes xyz in onto's frame to xyz in grid's frame:
    how a map moved in a scene is read where it sits.
    """
    nz, ny, nx = onto.shape
    idx = [torch.arange(n, dtype=torch.float64) for n in (nx, ny, nz)]
    pts = torch.stack(torch.meshgrid(idx[2], idx[1], idx[0], indexing='ij')[::-1], -1)
    xyz = pts * torch.tensor(onto.voxel_size, dtype=torch.float64) + torch.tensor(onto.origin, dtype=torch.float64)
    if transform is not None:
        t = torch.as_tensor(np.asarray(transform, dtype=np.float64))
        xyz = xyz @ t[:, :3].T + t[:, 3]
    ijk = (xyz - torch.tensor(grid.origin, dtype=torch.float64)) / torch.tensor(grid.voxel_size, dtype=torch.float64)
    size = torch.tensor(grid.shape[::-1], dtype=torch.float64)
    norm = torch.where(size > 1, 2 * ijk / (size - 1).clamp(min=1) - 1, ijk)
    src = torch.as_tensor(np.ascontiguousarray(values, dtype=np.float32))[None, None]
    out = torch.nn.functional.grid_sample(src, norm[None].float(), mode='bilinear',
                                          padding_mode='zeros', align_corners=True)
    return out[0, 0].numpy()


def same_grid(a, b, tol=1e-4):
    """True when two grids put voxels at the same places."""
    return (a.shape == b.shape
            and np.allclose(a.voxel_size, b.voxel_size, rtol=tol)
            and np.allclose(a.origin, b.origin, atol=tol * max(a.voxel_size)))
