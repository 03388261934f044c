"""The velocity field and the flow it drives: the method's neural ODE, by forward Euler."""

import torch
from torch import nn

SLOPE = 0.01
# Above this many bytes of kept activations a trajectory that needs gradients is
# recomputed step by step in the backward pass instead of kept (Flow.recompute = 'auto').
ACTIVATION_BUDGET = 1 << 30
# On the CPU particles go through the flow in blocks of about this many activation values
# (2 MB in float32), so that a block's activations stay in a core's cache from one layer to
# the next: measured on a 2-core CPU, a 100 × 100 layer runs at 165 GFLOP/s on blocks of
# 4096 particles and at 65–105 GFLOP/s on all 92 k particles of a 128³ map at once.
# GPUs want the largest products they can get, so there the block is every particle.
BLOCK_VALUES = 1 << 19


class VelocityField(nn.Module):
    """An MLP from unit-box position (x, y, z) to velocity.

    Weights start N(0, 0.01²) (std 0.01, as the public CryoTRANS release does; the
    paper's text says variance 0.01) and biases zero, so the flow starts as nearly
    the identity and the initial map is where training begins.
    """

    def __init__(self, depth=3, width=100):
        super().__init__()
        sizes = [3] + [width] * (depth - 1) + [3]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        for layer in self.layers:
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        """Velocities at positions x (..., 3), through autograd (the flow has its own backward)."""
        params = [(layer.weight, layer.bias) for layer in self.layers]
        rows = x.reshape(-1, 3)
        return _velocity(params, rows, _hidden(params, rows)).reshape(x.shape)

    def parameter_list(self):
        """Weight and bias of each layer in turn, as the flow's autograd node takes them."""
        return [t for layer in self.layers for t in (layer.weight, layer.bias)]

    def activation_bytes(self, particles, dtype=torch.float32):
        """What the flow keeps of one evaluation on this many particles: the activation of
        each hidden layer but the first (recomputed from the positions)."""
        hidden = sum(layer.out_features for layer in self.layers[1:-1])
        return particles * hidden * torch.empty((), dtype=dtype).element_size()


def _hidden(params, x, out=None, layers=None):
    """The hidden layers' activations for positions x (the first `layers` of them; each
    written into out[i] where that is given)."""
    acts, h = [], x
    for i, (weight, bias) in enumerate(params[:-1][:layers]):
        h = torch.addmm(bias, h, weight.t(), out=None if out is None else out[i])
        nn.functional.leaky_relu(h, SLOPE, inplace=True)
        acts.append(h)
    return acts


def _velocity(params, x, acts):
    weight, bias = params[-1]
    return torch.addmm(bias, acts[-1] if acts else x, weight.t())


def _path(x, frames, rows, params, kept=None):
    """Positions at every frame, block by block; each step's activations into `kept` when given."""
    n = x.shape[0]
    path = x.new_empty(frames + 1, n, 3)
    path[0] = x
    for m in range(frames):
        for s in range(0, n, rows):
            here = path[m, s:s + rows]
            acts = _hidden(params, here, None if kept is None else [None] + [a[m, s:s + rows] for a in kept])
            torch.add(here, _velocity(params, here, acts), alpha=1 / frames, out=path[m + 1, s:s + rows])
    return path


def _narrow_t_times(a, b):
    """aᵀ·b for a with 3 columns: as two half products in one batched product, which runs
    on two threads, where a single product with a 3-row result runs on one."""
    half = a.shape[0] // 2
    if half == 0:
        return a.t() @ b
    out = torch.bmm(a[:2 * half].reshape(2, half, -1).transpose(1, 2), b[:2 * half].reshape(2, half, -1)).sum(0)
    return out.addmm_(a[2 * half:].t(), b[2 * half:]) if a.shape[0] % 2 else out


class _Euler(torch.autograd.Function):
    """All M Euler steps of the flow as one autograd node, block by block of particles.

    Its backward pass is written out by hand (the chain rule through each layer, leaky
    ReLU's slope read off the sign of its output) so that a block's activations and their
    gradients are used while they are still in cache, and each weight's gradient is summed
    over blocks and steps in place.  Positions of every frame are kept.  When `keep`, so
    are the activations of every hidden layer but the first, which is recomputed from the
    positions (a product with 3 inputs costs less than reading its output back from
    memory); else all are recomputed one step at a time in the backward pass.
    """

    @staticmethod
    def forward(ctx, x, frames, rows, keep, *flat):
        params = list(zip(flat[0::2], flat[1::2]))
        kept = [x.new_empty(frames, x.shape[0], w.shape[0]) for w, _ in params[1:-1]] if keep else []
        path = _path(x, frames, rows, params, kept if keep else None)
        ctx.frames, ctx.rows, ctx.kept = frames, rows, len(kept)
        ctx.save_for_backward(path, *kept, *flat)
        return path

    @staticmethod
    def backward(ctx, grad_path):
        frames, rows = ctx.frames, ctx.rows
        path, *rest = ctx.saved_tensors
        kept, flat = rest[:ctx.kept], rest[ctx.kept:]
        params = list(zip(flat[0::2], flat[1::2]))
        weights = [w for w, _ in params]
        # The first layer as a 3 × width array: its weight gradient xᵀ·g (3 × N by N × width)
        # and g·W (N × width by width × 3, W read transposed) are several times faster on
        # CPUs than the products with the width × 3 weight as nn.Linear stores it.
        weights[0] = weights[0].t().contiguous().t()
        grads = [torch.zeros_like(t) for t in flat]
        first_t = flat[0].new_zeros(flat[0].shape[1], flat[0].shape[0])
        grad_x = grad_path[frames].clone()
        for s in range(0, path.shape[1], rows):
            g_here = grad_x[s:s + rows]
            for m in reversed(range(frames)):
                here = path[m, s:s + rows]
                acts = _hidden(params, here, layers=1) + [a[m, s:s + rows] for a in kept] if kept \
                    else _hidden(params, here)
                inputs = [here] + acts
                g = g_here / frames
                for i in reversed(range(len(params))):
                    if i < len(params) - 1:
                        g = torch.ops.aten.leaky_relu_backward(g, acts[i], SLOPE, True)
                    grads[2 * i + 1].add_(g.sum(0))
                    if i == 0:
                        first_t.add_(_narrow_t_times(here, g))
                    elif i == len(params) - 1:
                        grads[2 * i].add_(_narrow_t_times(g, inputs[i]))
                    else:
                        grads[2 * i].addmm_(g.t(), inputs[i])
                    g = g @ weights[i]
                g_here = g_here + g + grad_path[m, s:s + rows]
            grad_x[s:s + rows] = g_here
        grads[0].copy_(first_t.t())
        return (grad_x if ctx.needs_input_grad[0] else None, None, None, None, *grads)


class Flow(nn.Module):
    """Moves particles by `frames` forward-Euler steps of the velocity field over unit time.

    recompute: True keeps only the positions of each frame for the backward pass and
    recomputes the velocity field's activations one Euler step at a time (about one
    extra forward pass; the gradients are the same bit for bit); False keeps them (but
    the first hidden layer's, which is cheap to recompute); 'auto' recomputes when
    keeping them would take more than `budget` bytes.
    """

    def __init__(self, depth=3, width=100, frames=10, recompute='auto', budget=ACTIVATION_BUDGET):
        super().__init__()
        self.frames = frames
        self.velocity = VelocityField(depth, width)
        self.recompute = recompute
        self.budget = budget

    def forward(self, x):
        return self.trajectory(x)[-1]

    def _needs_gradients(self, x):
        """Whether a trajectory from x takes part in a backward pass."""
        return torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in self.parameters()))

    def recomputes(self, x):
        """Whether a trajectory from x will recompute activations in the backward pass."""
        if self.recompute is False or not self._needs_gradients(x):
            return False
        if self.recompute == 'auto':
            return self.frames * self.velocity.activation_bytes(x.shape[0], x.dtype) > self.budget
        return bool(self.recompute)

    def block_rows(self, x):
        """Particles per block: a cache-sized block on the CPU, all of them on a GPU."""
        if x.device.type != 'cpu':
            return max(1, x.shape[0])
        width = max(layer.out_features for layer in self.velocity.layers[:-1]) if len(self.velocity.layers) > 1 else 3
        return max(64, BLOCK_VALUES // width)

    def trajectory(self, x):
        """Positions at t = 0, 1/M, ..., 1: the pseudo-trajectory's frames."""
        flat = self.velocity.parameter_list()
        rows = self.block_rows(x)
        if self._needs_gradients(x):
            path = _Euler.apply(x, self.frames, rows, not self.recomputes(x), *flat)
        else:
            path = _path(x, self.frames, rows, list(zip(flat[0::2], flat[1::2])))
        return list(path.unbind(0))
