"""The schedule: which grids a run trains on, for how many steps, with how many particles.

Coarse grids first (multi-scale), because the large motion is learnt there at a
fraction of the cost.  Two rules keep a real-size map (256³ and more, a million
particles) from costing hours, and leave small maps as they were:

- **The resolution grid.**  A target at resolution R holds nothing a grid of R/3
  voxels cannot show (real maps are sampled so), so refinement runs on the coarsest
  binning of the initial map's grid whose voxels are at most R/3, and the loss's
  stages on the grids coarser than that.  A 7 Å target on 1.1 Å voxels refines on
  2.2 Å voxels, an eighth of the full grid's; the AdK demo (1.5 Å voxels) keeps
  the full grid.
- **At most `particles` particles a step.**  A step's cost grows with the particles it
  moves (the flow, forward and backward, is most of it), so a stage whose grid has
  more takes its particles from a coarser binning of the initial map, one per block
  holding its mass, while its loss is still measured on its own grid.  The flow is
  smooth, so the frames, made at the end from every particle of the full grid, move
  as the coarser particles taught it.
- **Refinement's particles by the resolution.**  Before its polish, refinement also moves
  particles from blocks at most R/1.6 across (refinement_particle_bin): a target at resolution R
  does not show how such a block is filled, and each coarse particle sits at its block's centre
  of mass (particles.py).  On the 64³ AdK demo (5561 particles, 1.5 Å voxels) refinement then
  moves bin 2's 1360 and the run takes half the time, FSC within the seeds' spread (issue #32);
  never fewer than 1000 particles (a small map moves all of its own); not with a partition.
- **A finer-particle polish.**  Coarse particles teach the flow its motion, but they
  limit how closely it fits: the last sixth of refinement's steps moves particles from
  the finest binning with at most four times as many (on the 256³ ribosome: bin 3's
  102,000 instead of bin 5's 25,000, 3.22 → 3.17 Å inside the moved part, what the old
  schedule's refinement with every particle of the full grid had reached when last
  measured).  More coarse steps did not do it.

A stage before refinement ends early when its loss has stopped improving (`plateaued`): the
coarse grids learn the large motion within their first few hundred steps and then
polish what refinement redoes anyway; refinement before its polish may end early too.
Without refinement (no `resolution`: the published method) every stage runs its steps: the
loss's stages make the prediction there, and a coarse grid ended at its first flat window left
it worse than the target (issue #29: AdK closed 3 Å → open 6 Å, FSC(0.5) 7.63 Å against 6.31 Å
with its steps, correlation 0.65 against 0.74).  The last stage (the polish, refinement, or
the finest grid's loss) always runs its steps: it makes the result, and `more` adds to it.
"""

import math

import numpy as np

from .objective import Stage, partitioned_plan

COARSEST_EDGE = 24      # a coarse grid's longest edge stays at least this many voxels
VOXELS_PER_RESOLUTION = 3.0
WINDOW = 50             # a stage's loss is judged over windows of this many steps ...
PLATEAU = 0.02          # ... and it has stopped improving when its last window gained less than this
                        # share of what the stage has gained since its first window
POLISH_SHARE = 6        # the last 1/6 of refinement's steps ...
POLISH_PARTICLES = 4    # ... moves up to this many times `particles` particles
SPACING_PER_RESOLUTION = 1 / 1.6   # refinement's particles (before its polish) are at most R/1.6 apart ...
FEWEST_PARTICLES = 1000            # ... and no fewer than this many (else every particle)


def schedule(shape, steps, bin=0, refine=False):
    """(binning factor, steps) of the loss's stages, coarsest first.

    Automatic: halve the grid while its longest edge stays ≥ 24 voxels; the full
    grid gets a fifth of the steps, the coarser grids share the rest.  Measured on
    the AdK demo (64³): the full grid's gain comes within its first 100-200 steps,
    and a coarser start (16³) made the prediction worse.  When refinement follows
    (refine=True), it does the finer grids' work and the loss trains on the coarsest
    grid alone: measured on AdK, the same FSC in 40 % less time than with the full
    grid's stage; on the 256³ ribosome (issue #32, seed 1, the same code), 3.18 Å inside
    the moved part in 189 s without its bin-4 stage against 3.16 Å in 254 s with it (that
    stage ran 500 steps at 0.28 s; refinement on bin 2 takes 0.20 s a step).
    """
    if bin:
        return [(bin, steps)]
    factors = [1]
    while max(shape) / (factors[-1] * 2) >= COARSEST_EDGE:
        factors.append(factors[-1] * 2)
    if len(factors) == 1 or steps < 2 * len(factors):
        return [(1, steps)]
    if refine:
        coarse = [factors[-1]]
        fine = 0
    else:
        coarse = factors[:0:-1]
        fine = max(1, steps // 5)
    share = [(steps - fine) // len(coarse)] * len(coarse)
    share[0] += steps - fine - sum(share)
    return list(zip(coarse, share)) + ([(1, fine)] if fine else [])


def resolution_bin(shape, voxel_size, resolution):
    """The binning of the grid whose voxels are at most resolution / 3 (1 when none is coarser,
    or without a resolution), keeping its longest edge at least COARSEST_EDGE voxels."""
    if not resolution:
        return 1
    by_resolution = int(math.floor(resolution / (VOXELS_PER_RESOLUTION * max(voxel_size)) + 1e-9))
    return max(1, min(by_resolution, max(shape) // COARSEST_EDGE))


def occupied(filled, factor):
    """(blocks of factor³ voxels holding any filled voxel, all blocks, the binned grid's longest edge)."""
    if factor == 1:
        return int(np.count_nonzero(filled)), int(filled.size), max(filled.shape)
    pad = [(0, (-n) % factor) for n in filled.shape]
    v = np.pad(filled, pad)
    nz, ny, nx = v.shape
    binned = v.reshape(nz // factor, factor, ny // factor, factor, nx // factor, factor).any((1, 3, 5))
    return int(np.count_nonzero(binned)), int(binned.size), max(binned.shape)


def particle_bin(filled, factor, most):
    """The finest binning, from `factor` up, of a mask of the initial map's voxels with at most
    `most` particles (0: no limit); 0 when the stage's own grid has few enough."""
    if not most:
        return 0
    p = factor
    while occupied(filled, p)[0] > most and max(filled.shape) / (p + 1) >= 4:
        p += 1
    return 0 if p == factor else p


class Plan(list):
    """A run's stages (objective.Stage) in order, as they are run: a stage that ends early is
    shortened in place, steps added with `more` lengthen the last.  Asked by step (0-based:
    the step about to run) which stage is in force and what changes when."""

    @property
    def total_steps(self):
        return sum(stage.steps for stage in self)

    def start_of(self, index):
        """The step at which stage `index` begins."""
        return sum(stage.steps for stage in self[:index])

    def stage_index(self, step):
        """Which stage is in force at a step (the last one past the end)."""
        done = 0
        for index, stage in enumerate(self):
            done += stage.steps
            if step < done:
                return index
        return len(self) - 1

    def stage_at(self, step):
        return self[self.stage_index(step)]

    def regions_split_at(self, step):
        """Whether the regions get fields of their own at this step (a shared stage has ended)."""
        done = 0
        for before, stage in zip(self, self[1:]):
            done += before.steps
            if step == done and before.shared and not stage.shared:
                return True
        return False

    def refinement_starts_after(self, step):
        """Whether refinement begins after this step, so that the loss changes meaning."""
        return (0 < step < self.total_steps and self.stage_at(step).loss == 'refine'
                and self.stage_at(step - 1).loss != 'refine')

    def polish_starts_after(self, step):
        """Whether refinement's polish (polished: the same grid, finer particles) begins after this step."""
        if not 0 < step < self.total_steps:
            return False
        stage, before = self.stage_at(step), self.stage_at(step - 1)
        return stage.loss == before.loss == 'refine' and stage.particles_from != before.particles_from

    def lengthen_last(self, steps):
        self[-1] = self[-1]._replace(steps=self[-1].steps + steps)

    def may_end_early(self, index):
        """Whether stage `index` may end when its loss stops improving: only before refinement,
        which redoes the fine work (the module's docstring says why)."""
        return any(stage.loss == 'refine' for stage in self[index + 1:])

    def end_early(self, index, steps):
        """Stage `index` ends after `steps` of its own (its loss stopped improving: plateaued)."""
        self[index] = self[index]._replace(steps=steps)


def plan(initial, voxel_size, settings, regions=1):
    """The run's Plan of stages (objective.Stage), from the initial map as prepared (pair.initial) and
    settings resolved (Settings.resolved): the loss's stages, refinement on the resolution grid, each
    stage's particles within settings.particles, the first stage shared with a partition."""
    refine = settings.refine
    finest = resolution_bin(initial.shape, voxel_size, settings.resolution) if refine else 1
    stages = [Stage(f, n, settings.loss) for f, n in
              schedule(initial.shape, settings.steps, settings.bin, refine > 0)]
    if refine:
        stages.append(Stage(finest, refine, 'refine'))
    if regions > 1:
        stages = partitioned_plan(stages)
    filled = initial > 0
    bins = {}
    for i, stage in enumerate(stages):
        if stage.bin not in bins:
            bins[stage.bin] = particle_bin(filled, stage.bin, settings.particles)
        particles_from = bins[stage.bin]
        if stage.loss == 'refine' and regions == 1:
            particles_from = refinement_particle_bin(filled, stage.bin, particles_from, voxel_size,
                                                     settings.resolution, settings.particles)
        stages[i] = stage._replace(particle_bin=particles_from)
    if refine:
        stages[-1:] = polished(stages[-1], filled, settings.particles)
    return Plan(stages)


def refinement_particle_bin(filled, factor, particle_bin, voxel_size, resolution, most):
    """Refinement's particles: from the coarser of the binning `particle_bin` (within `particles`) and
    the coarsest whose blocks are at most R/1.6 across (SPACING_PER_RESOLUTION); 0 when that is the
    stage's own grid, or when every particle is asked for in every step (most = 0).

    A target at resolution R shows nothing of how a block of that size is filled, and coarse
    particles sit at their blocks' centres of mass (particles.py), so refinement learns the motion
    on them at a fraction of a step's cost; its polish (`polished`) then moves the finer particles.
    R/1.6, measured on the AdK demo (1.5 Å voxels): bin 2 (3 Å blocks) keeps the 5 Å and 7 Å targets'
    FSC within their seeds' spread; bin 3 (4.5 Å) for the 7 Å target lost 0.13 Å on one seed of two.
    A small map keeps at least FEWEST_PARTICLES: the 36³ hinge's 822 particles would be 40 at bin 3, and
    its FSC(0.5) went from 4.43 to 5.48 Å with them.  A partition's refinement keeps its particles (plan):
    its rigidity is read on them, and AdK's three true regions lost 0.04 Å over three seeds with bin 2's."""
    if not most or not resolution:
        return particle_bin
    by_resolution = int(math.floor(SPACING_PER_RESOLUTION * resolution / max(voxel_size) + 1e-9))
    while by_resolution > factor and (max(filled.shape) / by_resolution < 4
                                      or occupied(filled, by_resolution)[0] < FEWEST_PARTICLES):
        by_resolution -= 1
    coarsest = max(particle_bin or factor, by_resolution)
    return 0 if coarsest <= factor else coarsest


def polished(refinement, filled, most):
    """Refinement as one stage, or two: the same grid, its last 1/POLISH_SHARE of steps with
    particles from the finest binning holding at most POLISH_PARTICLES × `most` of them, when
    that binning is finer than the stage's own particles' (a large map; a small one has all
    its particles already)."""
    polish = refinement.steps // POLISH_SHARE
    if not refinement.particle_bin or not polish:
        return [refinement]
    finer = particle_bin(filled, refinement.bin, POLISH_PARTICLES * most)
    if finer == refinement.particle_bin:
        return [refinement]
    return [refinement._replace(steps=refinement.steps - polish), refinement._replace(steps=polish, particle_bin=finer)]


def plateaued(losses, window=WINDOW, share=PLATEAU):
    """Whether a stage's losses so far (its own steps, in order) have stopped improving: judged at
    every window-th step from the third window on, when the mean loss of the last window is lower
    than the window's before by less than `share` of how far it has come down since the first
    window (or not lower than the first at all).  Scale-free, so it means the same for W2 (whose
    entropic value may be negative) and refinement's 1 - correlation; on the 256³ ribosome the
    bin-8 stage ends at 200 of its 1250 steps (docs/benchmarks.md, Real size)."""
    n = len(losses)
    if n < 3 * window or n % window:
        return False
    first = sum(losses[:window]) / window
    before = sum(losses[-2 * window:-window]) / window
    last = sum(losses[-window:]) / window
    return before - last <= share * (first - last)


def fewest_steps(done, planned, window=WINDOW):
    """The fewest steps a stage that may end early (not the last) can run in all, having run
    `done` without ending: it is judged first at its third window, then at every window."""
    if planned <= 3 * window:
        return planned
    return min(planned, max(3 * window, (done // window + 1) * window))


def grid_text(stage):
    """Where a stage trains, in words: 'the full grid' or 'bin 4'."""
    return 'the full grid' if stage.bin == 1 else f'bin {stage.bin}'


def stage_text(stage):
    """A stage in words, for logs: 'w2 on bin 4 (particles from bin 5), 625 steps'."""
    grid = grid_text(stage)
    particles = f' (particles from bin {stage.particle_bin})' if stage.particle_bin else ''
    shared = ', one field for all regions' if stage.shared else ''
    return f'{stage.loss} on {grid}{particles}{shared}, {stage.steps} steps'
