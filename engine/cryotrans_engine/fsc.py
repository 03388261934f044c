"""How alike two maps are: Fourier shell correlation and real-space correlation."""

import numpy as np


def fsc_curve(a, b, voxel_size):
    """FSC of two maps on one grid, per Fourier shell one frequency step wide.

    Returns (frequency in 1/Å at each shell's centre, FSC); shells reach Nyquist.
    """
    if a.shape != b.shape:
        raise ValueError(f'maps differ in shape: {a.shape} vs {b.shape}')
    fa, fb = np.fft.rfftn(a), np.fft.rfftn(b)
    vx, vy, vz = np.broadcast_to(np.asarray(voxel_size, float), 3)
    nz, ny, nx = a.shape
    kz = np.fft.fftfreq(nz, vz)[:, None, None]
    ky = np.fft.fftfreq(ny, vy)[None, :, None]
    kx = np.fft.rfftfreq(nx, vx)[None, None, :]
    k = np.sqrt(kx ** 2 + ky ** 2 + kz ** 2)
    dk = 1.0 / (max(a.shape) * max(vx, vy, vz))
    nyquist = 0.5 / max(vx, vy, vz)
    shell = np.floor(k / dk + 0.5).astype(int).ravel()
    count = int(nyquist / dk) + 1
    keep = shell < count
    shell = shell[keep]

    def total(x):
        return np.bincount(shell, x.ravel()[keep], minlength=count)

    cross = total((fa * np.conj(fb)).real)
    pa, pb = total(np.abs(fa) ** 2), total(np.abs(fb) ** 2)
    denom = np.sqrt(pa * pb)
    curve = np.where(denom > 0, cross / np.where(denom > 0, denom, 1), 0.0)
    return np.arange(count) * dk, curve


def resolution(freq, curve, cutoff=0.5):
    """Resolution (Å) where the FSC first falls below cutoff, interpolated between shells.

    Returns the Nyquist resolution when the curve never falls below it.
    """
    below = np.nonzero(curve[1:] < cutoff)[0]
    if len(below) == 0:
        return 1.0 / freq[-1]
    i = below[0] + 1
    f = freq[i - 1] + (freq[i] - freq[i - 1]) * (curve[i - 1] - cutoff) / (curve[i - 1] - curve[i])
    return 1.0 / f


def fsc_resolution(a, b, voxel_size, cutoff=0.5, mask=None):
    """Map-to-map FSC resolution (Å) at one cutoff (0.5 or 0.143, say); mask (0..1, same grid):
    both maps multiplied by it first, to judge one part (where a motion is) alone."""
    if mask is not None:
        a, b = a * mask, b * mask
    return resolution(*fsc_curve(a, b, voxel_size), cutoff)


def correlation(a, b):
    """Real-space (Pearson) correlation of two maps over the whole box."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    d = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / d) if d > 0 else 0.0
