"""Refinement against the target at its own resolution: the last stage, when the user gives it.

W2 compares the sharp prediction with the blurred target as they are, so it cannot tell
blur from misplacement.  Refinement first blurs the prediction the way the target map was
blurred, then asks for the best correlation with the target, the comparison `fitmap`
makes.  The blur is what `molmap` uses to simulate a map at resolution R (a Gaussian of
σ = 0.225·R), cut off past 1/R, as a map at resolution R has no signal past it.
Correlation ignores scale and offset, so the target is used as it is: no level, no
normalisation; noise past 1/R cannot correlate with the blurred prediction.  Measured
on the AdK demo, FSC(0.5) against the truth: 7 Å target 4.07 → 3.62 Å, 5 Å target
3.77 → 3.49 Å (docs/benchmarks.md).
"""

import math

import torch

SIGMA_PER_RESOLUTION = 0.225   # molmap's Gaussian width per Å of resolution


def resolution_filter(shape, voxel_size, resolution, device='cpu'):
    """The Fourier transfer function (for rfftn of a [z, y, x] map) of blurring to a resolution in Å.

    voxel_size is (x, y, z) Å.  The Gaussian keeps the mass (its value at zero frequency is 1).
    """
    nz, ny, nx = shape
    fz = torch.fft.fftfreq(nz, voxel_size[2], dtype=torch.float64)
    fy = torch.fft.fftfreq(ny, voxel_size[1], dtype=torch.float64)
    fx = torch.fft.rfftfreq(nx, voxel_size[0], dtype=torch.float64)
    k2 = fz[:, None, None] ** 2 + fy[None, :, None] ** 2 + fx[None, None, :] ** 2
    sigma = SIGMA_PER_RESOLUTION * resolution
    transfer = torch.exp(-2 * math.pi ** 2 * sigma ** 2 * k2) * (k2 <= 1 / resolution ** 2)
    return transfer.to(torch.float32).to(device)     # float64 never reaches the device (MPS has none)


def at_resolution(values, transfer):
    """A map blurred by a transfer function from resolution_filter."""
    return torch.fft.irfftn(torch.fft.rfftn(values) * transfer, s=values.shape)


class Reference:
    """The target as refinement compares with it, prepared once for a stage's every step.

    1 − correlation of T·p (the prediction p at the target's resolution) with the target b,
    both about their means, without blurring p in the step: T is a real, even filter, so
    Σ (T·p)(b − b̄) = Σ p · T(b − b̄), with T(b − b̄) computed here once; and Σ (T·p − mean)²
    is Parseval's sum of |T̂ p̂|² over every frequency but zero.  A step takes one FFT of p
    (and one in its backward pass) where blurring it took two (and two), and half the
    full-grid arithmetic: the demo's loss 6.9 → 4.0 ms a step, the same value and gradient.
    """

    def __init__(self, target, transfer):
        centred = target - target.mean()
        self.blurred = at_resolution(centred, transfer)
        self.norm = torch.sqrt((centred * centred).sum())
        nx = target.shape[-1]
        weight = torch.full((nx // 2 + 1,), 2.0, dtype=transfer.dtype, device=transfer.device)
        weight[0] = 1                       # rfftn holds each frequency of the last axis but 0 (and
        if nx % 2 == 0:                     # the Nyquist one) with its mirror image
            weight[-1] = 1
        power = transfer * transfer * weight / target.numel()
        power[0, 0, 0] = 0                  # zero frequency: the mean
        self.power = power

    def __call__(self, prediction):
        """1 − correlation (about the means) of the prediction at the target's resolution with the target."""
        spectrum = torch.fft.rfftn(prediction)
        spread = (spectrum.real.square() + spectrum.imag.square()).mul(self.power).sum()
        return 1 - (prediction * self.blurred).sum() / (torch.sqrt(spread) * self.norm)


def correlation_loss(prediction, target, transfer):
    """1 - correlation (about the means) of the prediction at the target's resolution with the target."""
    return Reference(target, transfer)(prediction)
