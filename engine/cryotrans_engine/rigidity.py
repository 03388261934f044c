"""The rigidity penalty: each region should move as one rigid body.

Two measures of how far a region's motion is from rigid, both 0 exactly for a rigid
motion and dimensionless in the method's unit box and unit time (the whole flow):

`deformation`: mean over frames t = 1/M … 1 and the region's voxels of ‖FᵀF − I‖²
(squared Frobenius norm), F the flow map's Jacobian ∂Φ_t/∂x.  F comes from finite
differences between a particle and its +x, +y, +z neighbours on the grid (voxels of
the same region that are all above level), measured against the same edges at rest
(coarse particles sit off the lattice, at their blocks' centres of mass), so it costs
a gather of positions the flow has already computed.  A uniform stretch by s gives ≈ 4 s² per stretched axis
(1 % → 4·10⁻⁴; 10 % → 0.044).

`killing`: mean over Euler steps and a random sample of the region's particles
(1/M of them at each of the M steps, at most KILLING_SAMPLE) of
‖∇V + ∇Vᵀ‖², the Killing energy of the velocity field (zero exactly when V is a
rigid motion's velocity); ∇V is carried through the MLP exactly (forward mode).
A steady stretch by s over the flow gives ≈ 4 s² too.  Its gradient reaches the
field's weights only, at the sampled positions.

Both are combined with the stage's own loss in objective.py.
"""

import torch

from .settings import FORMS

KILLING_SAMPLE = 1024   # at most this many particles per region and Euler step for the Killing energy


def neighbours(particles, regions):
    """Per region: rows (particle, its +x, +y, +z neighbours) where all four are in that region."""
    nz, ny, nx = particles.shape
    index = torch.full((nz * ny * nx,), -1, dtype=torch.long, device=particles.voxels.device)
    index[particles.voxels] = torch.arange(particles.voxels.numel(), device=index.device)
    v = particles.voxels
    coords = (v % nx, (v // nx) % ny, v // (nx * ny))
    region = torch.repeat_interleave(torch.arange(regions, device=v.device),
                                     torch.tensor(particles.sections, device=v.device))
    rows = [torch.arange(v.numel(), device=v.device)]
    valid = torch.ones(v.numel(), dtype=torch.bool, device=v.device)
    for c, n, stride in zip(coords, (nx, ny, nz), (1, nx, nx * ny)):
        inside = c + 1 < n
        nb = torch.where(inside, index[torch.where(inside, v + stride, v)], -1)
        valid &= (nb >= 0) & (region[nb.clamp(min=0)] == region)
        rows.append(nb)
    rows = torch.stack(rows, 1)[valid]
    return [rows[region[rows[:, 0]] == r] for r in range(regions)]


def deformation_energy(path, rows, step):
    """Mean ‖(DᵀD − D₀ᵀD₀) / (h hᵀ)‖² over frames 1… of a path (list of (N, 3)) at the given rows.

    D are the edges from a particle to its +x, +y, +z neighbours (columns) in a frame, D₀ the
    same edges at rest (frame 0), h the grid step.  On a lattice of voxel centres D₀ = diag(h)
    and this is ‖FᵀF − I‖² with F = D/h, the flow map's Jacobian; coarse particles sit at their
    blocks' centres of mass, off the lattice, and comparing with D₀ (not with diag(h)) keeps the
    energy 0 for every rigid motion there too, so the penalty never pulls them onto the lattice.
    """
    if rows.shape[0] == 0:
        return path[0].new_zeros(())
    h = torch.as_tensor(step, dtype=path[0].dtype, device=path[0].device)
    scale = h[:, None] * h[None, :]

    def gram(frames):                                   # (…, n, 3, 3): DᵀD of each row's edges
        centre = frames[..., rows[:, 0], :]
        D = torch.stack([frames[..., rows[:, 1 + a], :] - centre for a in range(3)], -1)
        return D.transpose(-1, -2) @ D

    rest = gram(path[0].detach())
    C = (gram(torch.stack(path[1:])) - rest) / scale    # (M, n, 3, 3)
    return (C * C).sum((-1, -2)).mean()


def velocity_jacobian(field, x):
    """∂V_a/∂x_b of a velocity field at positions x (n, 3), as (n, 3, 3), by forward mode."""
    layers = field.layers
    h, tangent = x, None
    for i, layer in enumerate(layers):
        h = torch.addmm(layer.bias, h, layer.weight.t())
        tangent = layer.weight.expand(x.shape[0], -1, -1) if tangent is None else \
            torch.matmul(layer.weight, tangent)
        if i < len(layers) - 1:
            slope = torch.where(h > 0, 1.0, 0.01).to(h.dtype)
            tangent = tangent * slope[:, :, None]
            h = torch.nn.functional.leaky_relu(h, 0.01)
    return tangent


def killing_energy(field, points):
    """Mean ‖J + Jᵀ‖² of a field's velocity Jacobian J at points (n, 3)."""
    if points.shape[0] == 0:
        return points.new_zeros(())
    J = velocity_jacobian(field, points)
    S = J + J.transpose(-1, -2)
    return (S * S).sum((-1, -2)).mean()


class Rigidity:
    """The penalty Σ_r λ_r E_r of one stage's particles, E_r one of the FORMS above."""

    def __init__(self, particles, step, weights, form='deformation', seed=0):
        if form not in FORMS:
            raise ValueError(f'rigidity form must be one of {", ".join(FORMS)}')
        self.form = form
        self.step = step
        self.weights = [float(w) for w in weights]
        self.sections = particles.sections
        self.seed = seed
        self.rows = neighbours(particles, len(self.sections)) if form == 'deformation' else None

    def energies(self, path, flow, step_number=0):
        """Each region's E_r (a 0-d tensor, 0 where λ_r is 0) for a path of the stage's particles."""
        out, start = [], 0
        if self.form == 'killing':
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step_number)
        for r, (n, w) in enumerate(zip(self.sections, self.weights)):
            if w == 0 or n == 0:
                out.append(path[0].new_zeros(()))
            elif self.form == 'deformation':
                out.append(deformation_energy(path, self.rows[r], self.step))
            else:
                steps = len(path) - 1
                pick = torch.randint(n, (steps, max(1, min(n // steps, KILLING_SAMPLE))), generator=generator)
                pick = (pick + start).to(path[0].device)
                points = torch.stack([p.detach()[i] for p, i in zip(path[:-1], pick)]).reshape(-1, 3)
                out.append(killing_energy(flow.fields[r], points))
            start += n
        return out

    def __call__(self, path, flow, step_number=0):
        return sum(w * e for w, e in zip(self.weights, self.energies(path, flow, step_number)))
