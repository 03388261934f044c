"""The velocity field and the flow it drives: the method's neural ODE, by forward Euler."""

import torch
from torch import nn


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
        for layer in self.layers[:-1]:
            x = nn.functional.leaky_relu(layer(x), 0.01)
        return self.layers[-1](x)


class Flow(nn.Module):
    """Moves particles by `frames` forward-Euler steps of the velocity field over unit time."""

    def __init__(self, depth=3, width=100, frames=10):
        super().__init__()
        self.frames = frames
        self.velocity = VelocityField(depth, width)

    def forward(self, x):
        return self.trajectory(x)[-1]

    def trajectory(self, x):
        """Positions at t = 0, 1/M, ..., 1: the pseudo-trajectory's frames."""
        out = [x]
        for _ in range(self.frames):
            x = x + self.velocity(x) / self.frames
            out.append(x)
        return out
