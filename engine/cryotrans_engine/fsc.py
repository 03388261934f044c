"""How alike two maps are: one Fourier shell correlation for every caller (`cryotrans fsc` in
ChimeraX and on the command line, `morph --truth`, the tools), and real-space correlation.

The definition.  Both maps on one grid, the first map's: the second is read at its voxels where
it sits (trilinear, zero outside its box).  With a mask, both are multiplied by it first: a
weight per voxel from 0 (left out) to 1 (kept), a soft edge between, as RELION's and ChimeraX's
soft masks are.  Fourier shells are one frequency step wide (1 / the box's longest edge), centred
on its multiples, out to the Nyquist frequency of the coarsest axis; a shell's FSC is
Re Σ F₁F₂* / √(Σ|F₁|² Σ|F₂|²) over all its Fourier components.  The resolution at a cutoff
(0.5; 0.143) is where the curve first falls below it past the origin, interpolated linearly in
frequency between the two shells.  A curve that never falls below it gives the Nyquist
resolution, and one below it from the first shell the box's edge: bounds, and said to be.  The
correlation is Pearson's over the voxels, each weighted by the mask.  Maps that cannot be
compared (not overlapping, all zero, constant) are refused with a MapError, never given a number.
"""

from dataclasses import dataclass

import numpy as np

from .errors import MapError, OutputError
from .pair import placed_target

NAMES = ('the first map', 'the second map', 'the mask')


@dataclass(frozen=True)
class FSC:
    """Two maps compared: the curve, shell by shell, and what it says."""
    frequency: np.ndarray     # 1/Å at each shell's centre: 0, one step, …, Nyquist
    curve: np.ndarray         # the FSC of each shell
    correlation: float        # real-space, weighted by the mask when there is one
    masked: bool = False

    @property
    def shell_resolution(self):
        """Å of each shell (1 / frequency; infinite at the origin)."""
        with np.errstate(divide='ignore'):
            return 1.0 / self.frequency

    def resolution(self, cutoff=0.5):
        """Å where the curve falls below cutoff (a bound at Nyquist or the box: see text)."""
        return self._crossing(cutoff)[0]

    def text(self, cutoff=0.5):
        """'3.62 Å', or a bound with what it means."""
        angstrom, bound = self._crossing(cutoff)
        if bound == 'nyquist':
            return f'{angstrom:.2f} Å (Nyquist: above {cutoff:g} at every shell)'
        if bound == 'box':
            return f'> {angstrom:.1f} Å (below {cutoff:g} from the first shell)'
        return f'{angstrom:.2f} Å'

    def summary(self):
        """One line: resolution at 0.5 and 0.143, and the correlation."""
        return (f'FSC(0.5) {self.text(0.5)}, FSC(0.143) {self.text(0.143)}; correlation {self.correlation:.4f}'
                + (' (within the mask)' if self.masked else ''))

    def _crossing(self, cutoff):
        """(Å, None) where the curve crosses cutoff; (Å, 'nyquist') or (Å, 'box') for the bounds."""
        below = np.nonzero(self.curve[1:] < cutoff)[0]
        if len(below) == 0:
            return 1.0 / float(self.frequency[-1]), 'nyquist'
        i = int(below[0]) + 1
        if i == 1:
            return 1.0 / float(self.frequency[1]), 'box'
        (f0, f1), (c0, c1) = self.frequency[i - 1:i + 1], self.curve[i - 1:i + 1]
        return 1.0 / float(f0 + (f1 - f0) * (c0 - cutoff) / (c0 - c1)), None

    def save_csv(self, path):
        """The curve as CSV: shell, frequency (1/Å), resolution (Å), FSC; one row per shell."""
        from .files import write_text
        try:
            write_text(str(path), 'shell,frequency_per_A,resolution_A,fsc\n' + ''.join(
                f'{i},{k:.6g},{r:.6g},{c:.6f}\n'
                for i, (k, r, c) in enumerate(zip(self.frequency, self.shell_resolution, self.curve))))
        except OSError as e:
            raise OutputError(f'the FSC curve cannot be written to {path} ({e.strerror or e}): '
                              f'choose another file') from e


def compare_maps(a, grid_a, b, grid_b, transform=None, mask=None, names=NAMES):
    """The FSC of two maps where they sit: b read at a's voxels.

    transform (3x4): xyz in a's frame to xyz in b's, for maps placed apart (None: one frame).
    mask: (values, grid, transform to its frame, or None), read at a's voxels the same way.
    names: the maps and the mask as the user knows them, for messages.
    """
    _check_map(b, names[1])
    on_a = _placed(b, grid_b, grid_a, transform, names[1], names[0])
    if mask is not None:
        values, grid, to_mask = mask
        mask = _placed(values, grid, grid_a, to_mask, names[2], names[0])
    return map_fsc(a, on_a, grid_a.voxel_size, mask, names)


def map_fsc(a, b, voxel_size, mask=None, names=NAMES):
    """The FSC of two maps on one grid (voxel_size x, y, z in Å), optionally masked (0..1, same grid)."""
    a, b = _check_map(a, names[0]), _check_map(b, names[1])
    if a.shape != b.shape:
        raise MapError(f'{names[0]} ({_size(a.shape)} voxels) and {names[1]} ({_size(b.shape)}) lie on different '
                       f'grids: read one at the other\'s voxels first (compare_maps does)')
    if mask is not None:
        mask = _check_mask(mask, a.shape, names[2])
        _check_map(a, names[0], mask)
        _check_map(b, names[1], mask)
    frequency, curve = _shells(a, b, voxel_size) if mask is None else _shells(a * mask, b * mask, voxel_size)
    return FSC(frequency, curve, correlation(a, b, mask), mask is not None)


def fsc_resolution(a, b, voxel_size, cutoff=0.5, mask=None):
    """Resolution (Å) at one cutoff of map_fsc: for scripts that need the one number."""
    return map_fsc(a, b, voxel_size, mask).resolution(cutoff)


def correlation(a, b, mask=None):
    """Real-space (Pearson) correlation of two maps, each voxel weighted by the mask (0..1) if given."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    w = np.ones_like(a) if mask is None else np.asarray(mask, np.float64).ravel()
    total = w.sum()
    if total <= 0:
        return 0.0
    a, b = a - (w * a).sum() / total, b - (w * b).sum() / total
    d = np.sqrt((w * a * a).sum() * (w * b * b).sum())
    return float((w * a * b).sum() / d) if d > 0 else 0.0


def _shells(a, b, voxel_size):
    """(frequency at each shell's centre, FSC per shell), shells out to Nyquist.  Sums run over every
    Fourier component of a shell: the half that rfftn leaves out mirrors the half it keeps, so each
    kept component with x frequency past 0 (and short of an even axis's Nyquist) counts twice."""
    fa, fb = np.fft.rfftn(a), np.fft.rfftn(b)
    vx, vy, vz = np.broadcast_to(np.asarray(voxel_size, float), 3)
    nz, ny, nx = a.shape
    kz = np.fft.fftfreq(nz, vz)[:, None, None]
    ky = np.fft.fftfreq(ny, vy)[None, :, None]
    kx = np.fft.rfftfreq(nx, vx)[None, None, :]
    k = np.sqrt(kx ** 2 + ky ** 2 + kz ** 2)
    step = 1.0 / (max(a.shape) * max(vx, vy, vz))
    count = max(a.shape) // 2 + 1                   # the last at Nyquist, 0.5 / max(voxel size)
    shell = np.floor(k / step + 0.5).astype(int).ravel()
    keep = shell < count
    shell = shell[keep]
    mirrored = np.full(kx.shape, 2.0)
    mirrored[..., 0] = 1
    if nx % 2 == 0:
        mirrored[..., -1] = 1

    def total(x):
        return np.bincount(shell, (mirrored * x).ravel()[keep], minlength=count)

    cross = total((fa * np.conj(fb)).real)
    denom = np.sqrt(total(np.abs(fa) ** 2) * total(np.abs(fb) ** 2))
    return np.arange(count) * step, np.where(denom > 0, cross / np.where(denom > 0, denom, 1), 0.0)


def _check_map(values, name, mask=None):
    """values as an array, or MapError: not a 3D grid, NaN, or nothing to correlate (where the mask is)."""
    values = np.asarray(values)
    if values.ndim != 3 or min(values.shape) < 2:
        raise MapError(f'{name} must be a 3D grid at least 2 voxels on each side, not {_size(values.shape)}')
    if not np.isfinite(values).all():
        raise MapError(f'{name} has NaN or infinite values: an FSC needs finite densities; check the map')
    inside = values if mask is None else values[mask > 0]
    low, high = float(inside.min()), float(inside.max())
    if low == high:
        where = ' where the mask is' if mask is not None else ''
        what = 'all zero' if high == 0 else f'constant (every voxel {high:.4g})'
        raise MapError(f'{name} is {what}{where}: it shows nothing to correlate; check the map'
                       + (' and the mask' if mask is not None else ''))
    return values


def _check_mask(mask, shape, name):
    """The mask as float32, or MapError: another grid, NaN, weights outside 0..1, or empty."""
    mask = np.asarray(mask, np.float32)
    if mask.shape != shape:
        raise MapError(f'{name} ({_size(mask.shape)} voxels) is not on the maps\' grid ({_size(shape)}): read it '
                       f'at their voxels first (compare_maps does)')
    if not np.isfinite(mask).all():
        raise MapError(f'{name} has NaN or infinite values: a mask holds weights from 0 to 1')
    low, high = float(mask.min()), float(mask.max())
    if low < -1e-3 or high > 1 + 1e-3:
        low, high = (round(v, 6) + 0.0 for v in (low, high))
        raise MapError(f'{name} runs from {low:.4g} to {high:.4g}, but a mask holds weights from 0 (left out) '
                       f'to 1 (kept), a soft edge between: make one that does (in ChimeraX: volume scale with '
                       f'factor 1/{high:.4g} for a soft one, volume threshold for a 0/1 one)')
    if high <= 0:
        raise MapError(f'{name} is zero everywhere on the first map\'s grid: it keeps nothing to compare; '
                       f'check that it covers the maps')
    return np.clip(mask, 0, 1)


def _placed(values, grid, onto, transform, name, onto_name):
    """values read at onto's voxels; MapError when none of their density lands in onto's box."""
    placed = placed_target(values, grid, onto, transform)
    if not placed.any() and np.asarray(values).any():
        raise MapError(f'{name} does not overlap {onto_name} where they sit: none of its density falls in '
                       f'{onto_name}\'s box ({onto.box_text()}); place one on the other first (in ChimeraX: '
                       f'fitmap), or check the origins in their headers')
    return placed


def _size(shape):
    """'nx×ny×nz' of a [z, y, x] shape, for messages."""
    return '×'.join(str(n) for n in shape[::-1])
