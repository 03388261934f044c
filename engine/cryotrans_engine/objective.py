"""Training stages and how their loss terms combine.

A run is a list of stages, coarsest grid first: each trains on maps binned by some
factor with one loss ('w2', 'l2', or 'refine': refinement at the target's
resolution, refinement.py).  What a stage trains on (grids, particles, target,
rigidity) is prepared once when it begins (StageData).

With a partition, the first stage is `shared`: one velocity field moves every region
(the published method), so the large motion is learnt as one smooth flow; each
region then starts the next stage from a copy of it and goes on alone, held rigid.
Measured on AdK's three domains (docs/benchmarks.md): regions trained apart from the
start learn each domain's shift but hardly its turn, and end worse than one field.

The objective of a step is the stage's loss L plus the rigidity penalty
(rigidity.py) on the scale of that loss:  L + L₀·Σ_r λ_r E_r, where L₀ is |L| at
the first step of the run that used this kind of loss (how far apart the maps were
when W2 began, or how poor the correlation was when refinement began).  So λ is
relative, and means the same in W2 and in refinement whatever their units:
λ = 0.1 asks that a region's rigidity energy E_r = 1 (a stretch of about 50 %)
cost as much as 10 % of the loss the run started from.  The penalty applies in
every stage where regions have their own fields (not in a shared stage).  (The loss itself is no scale: W2's entropic value goes through 0.)
"""

from dataclasses import dataclass
from typing import NamedTuple

import torch

from .particles import Particles
from .refinement import Reference
from .rigidity import Rigidity
from .wasserstein import l2_loss, w2_loss


class Stage(NamedTuple):
    """One part of the schedule: every step of it on maps binned by `bin`, with one loss;
    shared: one field moves every region (a partition's first stage); particle_bin: the
    particles come from the initial map binned by this factor (≥ bin; 0: by bin), so that a
    large map's step moves fewer of them while its loss is still measured on the finer grid."""
    bin: int
    steps: int
    loss: str
    shared: bool = False
    particle_bin: int = 0

    @property
    def particles_from(self):
        """The binning factor of the stage's particles."""
        return self.particle_bin or self.bin


def partitioned_plan(plan):
    """A plan for a partition: its first stage shared (split in two halves if it is the only one)."""
    if len(plan) == 1:
        first = plan[0]._replace(steps=plan[0].steps // 2)
        plan = [first, plan[0]._replace(steps=plan[0].steps - first.steps)]
    return [plan[0]._replace(shared=True)] + plan[1:]


@dataclass
class StageData:
    """What a stage trains on: its grid, particles, target (refinement: as a Reference) and rigidity penalty."""
    stage: Stage
    shape: tuple
    step_unit: tuple
    particles: Particles
    target: torch.Tensor
    reference: Reference = None       # refinement's target at its resolution
    rigidity: Rigidity = None


def stage_loss(data, density, settings):
    """The stage's own loss of a splatted density."""
    if data.stage.loss == 'refine':
        return data.reference(density)
    if data.stage.loss == 'l2':
        return l2_loss(density, data.target)
    return w2_loss(density, data.target, data.step_unit, settings.epsilon, settings.sinkhorn_iterations,
                   kernel=settings.kernel)


def objective(data, density, path, flow, settings, scales, step=0):
    """(what to minimise, the stage's loss, the rigidity penalty Σ λ_r E_r or None).

    scales holds L₀ for each loss kind; the first step of a kind sets it.
    """
    loss = stage_loss(data, density, settings)
    if data.rigidity is None:
        return loss, loss, None
    scale = scales.setdefault(data.stage.loss, abs(loss.item()))
    penalty = data.rigidity(path, flow, step)
    return loss + scale * penalty, loss, penalty
