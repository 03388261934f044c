"""The velocity field and the flow it drives: the method's neural ODE, by forward Euler."""

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

# Above this many bytes of saved activations a trajectory that needs gradients is
# recomputed step by step in the backward pass instead of kept (Flow.recompute = 'auto').
ACTIVATION_BUDGET = 1 << 30


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
        first, *hidden, last = self.layers
        if x.dim() == 2:
            # The same product as first(x), with the 3 × width weight laid out row-major: autograd
            # then takes its gradient as xᵀ·g (3 × N by N × width), several times faster on CPUs
            # than the (width × N)·(N × 3) product it takes for nn.Linear's transposed weight.
            x = torch.addmm(first.bias, x, first.weight.t().contiguous())
        else:
            x = first(x)
        # In place: autograd then keeps one tensor per hidden layer (the activation, which
        # the next layer saves anyway and whose sign the leaky ReLU's backward needs), not two.
        x = nn.functional.leaky_relu(x, 0.01, inplace=True)
        for layer in hidden:
            x = nn.functional.leaky_relu(layer(x), 0.01, inplace=True)
        return last(x)

    def activation_bytes(self, particles, dtype=torch.float32):
        """What autograd keeps of one evaluation on this many particles: one tensor per hidden layer."""
        hidden = sum(layer.out_features for layer in self.layers[:-1])
        return particles * hidden * torch.empty((), dtype=dtype).element_size()


class Flow(nn.Module):
    """Moves particles by `frames` forward-Euler steps of the velocity field over unit time.

    recompute: True keeps only the positions of each frame for the backward pass and
    recomputes the velocity field's activations one Euler step at a time (about one
    extra forward pass; the gradients are the same bit for bit); False keeps them all;
    'auto' recomputes when keeping them would take more than `budget` bytes.
    """

    def __init__(self, depth=3, width=100, frames=10, recompute='auto', budget=ACTIVATION_BUDGET):
        super().__init__()
        self.frames = frames
        self.velocity = VelocityField(depth, width)
        self.recompute = recompute
        self.budget = budget

    def forward(self, x):
        return self.trajectory(x)[-1]

    def _step(self, x):
        return x + self.velocity(x) / self.frames

    def recomputes(self, x):
        """Whether a trajectory from x will recompute activations in the backward pass."""
        if not torch.is_grad_enabled() or self.recompute is False:
            return False
        if not (x.requires_grad or any(p.requires_grad for p in self.parameters())):
            return False
        if self.recompute == 'auto':
            return self.frames * self.velocity.activation_bytes(x.shape[0], x.dtype) > self.budget
        return bool(self.recompute)

    def trajectory(self, x):
        """Positions at t = 0, 1/M, ..., 1: the pseudo-trajectory's frames."""
        recompute = self.recomputes(x)
        out = [x]
        for _ in range(self.frames):
            if recompute:
                x = checkpoint(self._step, x, use_reentrant=False, preserve_rng_state=False)
            else:
                x = self._step(x)
            out.append(x)
        return out
