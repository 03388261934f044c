"""Entropic squared Wasserstein distance between two maps on one grid.

Log-domain Sinkhorn with the Gaussian kernel exp(-|x - y|² / ε) on the unit box,
applied separably along each axis.  The loss's gradient with respect to each map
is its dual potential (exact at Sinkhorn convergence), so no graph is kept
through the iterations.

Three ways to apply the kernel, equal to float precision:
`exact` takes the log-sum-exp over the whole line, as published (O(n) exps per voxel);
`fast` works in double precision in the exp domain: the whole map is shifted by its
maximum, exponentiated once, multiplied by the kernel matrix along each axis and
logged once.  When some result is too small for double precision to hold it
exactly (potentials spanning more than about 650), that blur is redone line by
line, each line shifted by its own maximum, and lines that still span too much
fall back to `exact`;
`window` takes the log-sum-exp over the voxels within r of each voxel, with r
chosen per line so that everything left out is below float precision: for
devices without double precision (Apple MPS), where `fast` uses it."""

import math

import torch

from .settings import KERNELS

DOUBLE_RANGE = 650.0   # a line spanning less than this is safe in exp(line - max) in float64
# Terms below exp(-708) lose precision in float64 (and vanish below exp(-745)); a sum of
# three passes over at most n terms each loses under 1e-304 in all, so a result above
# this is exact to double precision.
DOUBLE_SAFE = 1e-288


def _lines(values, axis):
    """The map as rows along one array axis, and how to put them back."""
    moved = values.movedim(axis, -1)
    shape = moved.shape
    return moved.reshape(-1, shape[-1]), lambda rows: rows.reshape(shape).movedim(-1, axis)


def _lse_exact(rows, b):
    """log Σ_j exp(s_j - (i - j)² / b) over whole rows, in chunks that fit in memory."""
    n = rows.shape[1]
    d = torch.arange(n, device=rows.device, dtype=rows.dtype)
    cost = (d[:, None] - d[None, :]) ** 2 / b
    chunk = max(1, (1 << 24) // (n * n))
    return torch.cat([torch.logsumexp(part[:, None, :] - cost, -1) for part in rows.split(chunk)])


def _lse_window(rows, b, r):
    """log Σ_{|i-j|≤r} exp(s_j - (i - j)² / b), stabilised by the largest term."""
    n = rows.shape[1]
    padded = torch.nn.functional.pad(rows, (r, r), value=-math.inf)
    shifted = [padded[:, r + k:r + k + n] - k * k / b for k in range(-r, r + 1)]
    top = shifted[r].clone()
    for term in shifted:
        torch.maximum(top, term, out=top)
    acc = torch.zeros_like(rows)
    for term in shifted:
        acc += torch.exp(term - top)
    return top + torch.log(acc)


def _kernel_matrix(n, b, device):
    """The Gaussian exp(-(i - j)² / b) between the n voxels of a line, in float64."""
    d = torch.arange(n, device=device, dtype=torch.float64)
    return torch.exp(-(d[:, None] - d[None, :]) ** 2 / b)


def _lse_matrix(rows, b):
    """log Σ_j exp(s_j - (i - j)² / b) as exp-domain matrix product in float64, shifted by each line's max."""
    kernel = _kernel_matrix(rows.shape[1], b, rows.device)
    wide = rows.double()
    top = wide.max(1, keepdim=True).values
    return (torch.log(torch.exp(wide - top) @ kernel) + top).to(rows.dtype)


def _radius(spread, b, n, eps):
    """Window radius past which the kernel's terms are below float precision for this spread."""
    need = b * (spread + math.log(n) - math.log(eps) + 4)
    return torch.clamp(torch.ceil(torch.sqrt(need)) - 1, 1, n - 1).long()


def _blur_axis(values, axis, b, kernel):
    rows, back = _lines(values, axis)
    n = rows.shape[1]
    if kernel == 'exact' or n <= 2:
        return back(_lse_exact(rows, b))
    spread = rows.max(1).values - rows.min(1).values
    if kernel == 'fast':
        wide = spread > DOUBLE_RANGE
        if not wide.any():
            return back(_lse_matrix(rows, b))
        out = torch.empty_like(rows)
        out[~wide] = _lse_matrix(rows[~wide], b)
        out[wide] = _lse_exact(rows[wide], b)
        return back(out)
    radius = _radius(spread, b, n, torch.finfo(rows.dtype).eps)
    radius = torch.minimum(radius + (-radius) % 4, torch.tensor(n - 1, device=radius.device))
    out = torch.empty_like(rows)
    for r in torch.unique(radius).tolist():
        sel = radius == r
        part = rows[sel]
        out[sel] = _lse_exact(part, b) if 2 * r + 1 >= n else _lse_window(part, b, r)
    return back(out)


def _blur_whole(values, b):
    """The `fast` blur with one shift for the whole map: None where float64 cannot hold the result."""
    nz, ny, nx = values.shape
    top = values.max()
    e = torch.sub(values.double(), top).exp_()
    e = e.reshape(-1, nx) @ _kernel_matrix(nx, b[0], e.device)
    e = torch.matmul(_kernel_matrix(ny, b[1], e.device), e.reshape(nz, ny, nx))
    e = (_kernel_matrix(nz, b[2], e.device) @ e.reshape(nz, -1)).reshape(nz, ny, nx)
    if e.min() < DOUBLE_SAFE:
        return None
    return e.log_().add_(top).to(values.dtype)


def blur(values, b, kernel='fast'):
    """Log-domain Gaussian blur: log Σ_y exp(values(y) - |x - y|² / ε), b = ε / step² per axis (x, y, z)."""
    if kernel == 'fast':
        whole = _blur_whole(values, b)
        if whole is not None:
            return whole
    for axis, bx in zip((2, 1, 0), b):
        values = _blur_axis(values, axis, bx, kernel)
    return values


def _working(a, kernel):
    """The maps as Sinkhorn works on them: `fast` keeps everything in float64."""
    return a.double() if kernel == 'fast' else a


def sinkhorn(a0, a1, b, iterations, floor=1e-20, kernel='fast'):
    """Log scalings (φ0, φ1), in a0's dtype, after a number of Sinkhorn iterations from φ1 = 0."""
    la0 = torch.log(torch.clamp(_working(a0, kernel), min=floor))
    la1 = torch.log(torch.clamp(_working(a1, kernel), min=floor))
    phi1 = torch.zeros_like(la1)
    for _ in range(iterations):
        phi0 = la0 - blur(phi1, b, kernel)
        phi1 = la1 - blur(phi0, b, kernel)
    return phi0.to(a0.dtype), phi1.to(a0.dtype)


class _W2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a0, a1, b, epsilon, iterations, floor, kernel):
        with torch.no_grad():
            w0, w1 = _working(a0, kernel), _working(a1, kernel)
            phi0, phi1 = sinkhorn(w0, w1, b, iterations, floor, kernel)
            # The plan's mass Σ exp(φ0 + φ1 - c) is Σ exp(φ1 + blur(φ0)), and the last
            # update set φ1 = log a1 - blur(φ0): so it is the floored target's mass.
            plan = torch.clamp(w1, min=floor).sum()
            loss = (epsilon * ((phi0 * w0).sum() + (phi1 * w1).sum() - plan)).to(a0.dtype)
            phi0, phi1 = phi0.to(a0.dtype), phi1.to(a0.dtype)
        ctx.save_for_backward(phi0, phi1)
        ctx.epsilon = epsilon
        return loss

    @staticmethod
    def backward(ctx, grad):
        phi0, phi1 = ctx.saved_tensors
        return grad * ctx.epsilon * phi0, grad * ctx.epsilon * phi1, None, None, None, None, None


def w2_loss(a0, a1, step, epsilon=1e-4, iterations=5, floor=1e-20, kernel='fast'):
    """Entropic W2² between maps a0 and a1 ([z, y, x] tensors) with unit-box voxel size step (x, y, z)."""
    if kernel not in KERNELS:
        raise ValueError(f'kernel must be one of {", ".join(KERNELS)}')
    if kernel == 'fast' and a0.device.type == 'mps':
        kernel = 'window'
    b = tuple(epsilon / (h * h) for h in step)
    return _W2.apply(a0, a1, b, epsilon, iterations, floor, kernel)


def l2_loss(a0, a1):
    """Sum of squared voxel differences: for refining when both maps are sharp."""
    return ((a0 - a1) ** 2).sum()
