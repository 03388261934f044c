"""The velocity fields and the flow they drive: the method's neural ODE, by forward Euler.

A flow holds one velocity field per region of the initial map (one for the whole box
without a partition).  Particles come sorted by region; each region's are moved by its
own field, block by block, in one autograd node for all of them.
"""

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


def _blocks(sections, rows):
    """(start, end, region) of each block: at most `rows` particles, never across regions."""
    blocks, start = [], 0
    for region, n in enumerate(sections):
        blocks += [(s, min(s + rows, start + n), region) for s in range(start, start + n, rows)]
        start += n
    return blocks


def _path(x, frames, blocks, fields, kept=None):
    """Positions at every frame, block by block, each block by its region's field (params);
    each step's activations into `kept` when given."""
    path = x.new_empty(frames + 1, x.shape[0], 3)
    path[0] = x
    for m in range(frames):
        for s, e, r in blocks:
            here = path[m, s:e]
            acts = _hidden(fields[r], here, None if kept is None else [None] + [a[m, s:e] for a in kept])
            torch.add(here, _velocity(fields[r], here, acts), alpha=1 / frames, out=path[m + 1, s:e])
    return path


def _split(flat, regions):
    """The flat parameter list as each region's [(weight, bias), ...]."""
    per = len(flat) // regions
    return [list(zip(flat[r * per:(r + 1) * per:2], flat[r * per + 1:(r + 1) * per:2])) for r in range(regions)]


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
    over blocks and steps in place, into the field of the block's region.  Positions of
    every frame are kept.  When `keep`, so are the activations of every hidden layer but
    the first, which is recomputed from the positions (a product with 3 inputs costs less
    than reading its output back from memory); else all are recomputed one step at a
    time in the backward pass.
    """

    @staticmethod
    def forward(ctx, x, frames, blocks, keep, regions, *flat):
        fields = _split(flat, regions)
        kept = [x.new_empty(frames, x.shape[0], w.shape[0]) for w, _ in fields[0][1:-1]] if keep else []
        path = _path(x, frames, blocks, fields, kept if keep else None)
        ctx.frames, ctx.blocks, ctx.kept, ctx.regions = frames, blocks, len(kept), regions
        ctx.save_for_backward(path, *kept, *flat)
        return path

    @staticmethod
    def backward(ctx, grad_path):
        frames, blocks = ctx.frames, ctx.blocks
        path, *rest = ctx.saved_tensors
        kept, flat = rest[:ctx.kept], rest[ctx.kept:]
        fields = _split(flat, ctx.regions)
        grads = [torch.zeros_like(t) for t in flat]
        per = len(flat) // len(fields)
        # The first layer as a 3 × width array: its weight gradient xᵀ·g (3 × N by N × width)
        # and g·W (N × width by width × 3, W read transposed) are several times faster on
        # CPUs than the products with the width × 3 weight as nn.Linear stores it.
        weights = [[w for w, _ in params] for params in fields]
        for w in weights:
            w[0] = w[0].t().contiguous().t()
        first_t = [params[0][0].new_zeros(params[0][0].shape[1], params[0][0].shape[0]) for params in fields]
        grad_x = grad_path[frames].clone()
        for s, e, r in blocks:
            params, grad = fields[r], grads[r * per:(r + 1) * per]
            g_here = grad_x[s:e]
            for m in reversed(range(frames)):
                here = path[m, s:e]
                acts = _hidden(params, here, layers=1) + [a[m, s:e] for a in kept] if kept \
                    else _hidden(params, here)
                inputs = [here] + acts
                g = g_here / frames
                for i in reversed(range(len(params))):
                    if i < len(params) - 1:
                        g = torch.ops.aten.leaky_relu_backward(g, acts[i], SLOPE, True)
                    grad[2 * i + 1].add_(g.sum(0))
                    if i == 0:
                        first_t[r].add_(_narrow_t_times(here, g))
                    elif i == len(params) - 1:
                        grad[2 * i].add_(_narrow_t_times(g, inputs[i]))
                    else:
                        grad[2 * i].addmm_(g.t(), inputs[i])
                    g = g @ weights[r][i]
                g_here = g_here + g + grad_path[m, s:e]
            grad_x[s:e] = g_here
        for r in range(len(fields)):
            grads[r * per].copy_(first_t[r].t())
        return (grad_x if ctx.needs_input_grad[0] else None, None, None, None, None, *grads)


class Flow(nn.Module):
    """Moves particles by `frames` forward-Euler steps of their regions' velocity fields over unit time.

    regions: how many velocity fields (one per region of a partition; 1: one for the box).
    recompute: True keeps only the positions of each frame for the backward pass and
    recomputes the velocity field's activations one Euler step at a time (about one
    extra forward pass; the gradients are the same bit for bit); False keeps them (but
    the first hidden layer's, which is cheap to recompute); 'auto' recomputes when
    keeping them would take more than `budget` bytes.
    """

    def __init__(self, depth=3, width=100, frames=10, regions=1, recompute='auto', budget=ACTIVATION_BUDGET):
        super().__init__()
        self.frames = frames
        self.fields = nn.ModuleList(VelocityField(depth, width) for _ in range(regions))
        self.recompute = recompute
        self.budget = budget

    @property
    def regions(self):
        return len(self.fields)

    def forward(self, x, sections=None):
        return self.trajectory(x, sections)[-1]

    def _needs_gradients(self, x):
        """Whether a trajectory from x takes part in a backward pass."""
        return torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in self.parameters()))

    def recomputes(self, x):
        """Whether a trajectory from x will recompute activations in the backward pass."""
        if self.recompute is False or not self._needs_gradients(x):
            return False
        if self.recompute == 'auto':
            return self.frames * self.fields[0].activation_bytes(x.shape[0], x.dtype) > self.budget
        return bool(self.recompute)

    def block_rows(self, x):
        """Particles per block: a cache-sized block on the CPU, all of them on a GPU."""
        if x.device.type != 'cpu':
            return max(1, x.shape[0])
        layers = self.fields[0].layers
        width = max(layer.out_features for layer in layers[:-1]) if len(layers) > 1 else 3
        return max(64, BLOCK_VALUES // width)

    def trajectory(self, x, sections=None):
        """Positions at t = 0, 1/M, ..., 1: the pseudo-trajectory's frames.

        sections: how many of the particles (x sorted by region) each region has, in
        order; None: all are in the first region.
        """
        sections = [x.shape[0]] if sections is None else [int(n) for n in sections]
        if len(sections) != self.regions or sum(sections) != x.shape[0]:
            raise ValueError(f'{len(sections)} sections of {sum(sections)} particles for a flow of '
                             f'{self.regions} regions on {x.shape[0]} particles')
        flat = [t for field in self.fields for t in field.parameter_list()]
        blocks = _blocks(sections, self.block_rows(x))
        if not blocks:
            return [x] * (self.frames + 1)
        if self._needs_gradients(x):
            path = _Euler.apply(x, self.frames, blocks, not self.recomputes(x), self.regions, *flat)
        else:
            path = _path(x, self.frames, blocks, _split(flat, self.regions))
        return list(path.unbind(0))

    def share_first_field(self):
        """Make every region's field a copy of the first (while one field moves them all)."""
        with torch.no_grad():
            for field in self.fields[1:]:
                for a, b in zip(field.parameters(), self.fields[0].parameters()):
                    a.copy_(b)

    def load_state_dict(self, state, strict=True):
        """Also takes a one-field flow saved before flows had regions ('velocity.' keys)."""
        state = {('fields.0.' + k[len('velocity.'):] if k.startswith('velocity.') else k): v
                 for k, v in state.items()}
        return super().load_state_dict(state, strict)
