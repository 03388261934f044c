"""Training the flow that carries the initial map onto the target, and the frames it gives.

The loop is plain: move particles, splat, compare with the target, step Adam.
It reports progress through a callback, stops when asked (checked every step),
writes checkpoints that resume bit for bit on the same device, and starts on
coarse grids (multi-scale) because the large-scale motion is learnt there
at a fraction of the cost.  When the target's resolution is given, a refinement
stage follows (refinement.py).  With a partition (partition.py) each region of the
initial map has its own velocity field, held rigid by a penalty (rigidity.py); the
stages and how their terms combine are in objective.py.
"""

import time

import numpy as np
import torch

from .allocator import freed_memory_kept
from .checkpoint import all_finite, restore, save_checkpoint, state_of
from .budget import StepClock, check_memory, check_weights, gb, stage_sizes, step_cost
from .flow import Flow
from .errors import CryoTransError, DeviceError, SettingsError
from .objective import StageData, objective
from .partition import bin_labels
from .particles import block_centres, particles
from .refinement import Reference, resolution_filter
from .rigidity import Rigidity
from .schedule import plan, plateaued
from .settings import Settings
from .splat import splat



class RunFailed(CryoTransError):
    """A run that cannot go on past a step: the step is not kept, the last checkpoint is."""

    def __init__(self, message, step):
        super().__init__(message)
        self.step = step


class TrainingDiverged(RunFailed):
    """The loss, a gradient or a weight stopped being a finite number, or the flow threw the
    density out of the box."""

    def __init__(self, step, what, settings):
        hint = f'lower lr (now {settings.lr:g}; the default is {Settings.lr:g})'
        super().__init__(f'training diverged at step {step} ({what}) and stopped there; {hint}', step)


class OutOfMemory(RunFailed):
    """The device had no memory for a step, although the estimate before training said it would
    (budget.py): other programs took it meanwhile, or the estimate was short."""

    def __init__(self, step, device, error, memory):
        why = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        super().__init__(f'ran out of memory at step {step} on {device} ({why}); before training this run was '
                         f'estimated to need {gb(memory.total)}: free memory (close other programs or maps), or '
                         f'train on coarser grids (bin 2, in the CLI --bin 2)', step)


def out_of_memory(error):
    """Whether an exception is a device or the system saying it has no memory left."""
    if isinstance(error, MemoryError) or type(error).__name__ == 'OutOfMemoryError':
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("can't allocate memory" in text or 'out of memory' in text)


KEPT_MASS = 0.5   # a step whose moved particles keep less of their mass inside the box has diverged


def choose_device(name='auto'):
    """The torch device for a name: auto takes CUDA, then Apple's MPS, then the CPU."""
    if name == 'auto':
        if torch.cuda.is_available():
            return torch.device('cuda')
        mps = getattr(torch.backends, 'mps', None)
        return torch.device('mps' if mps is not None and mps.is_available() else 'cpu')
    if name == 'cuda' and not torch.cuda.is_available():
        raise DeviceError('device cuda was asked for, but this PyTorch sees no CUDA GPU')
    if name == 'mps' and not (getattr(torch.backends, 'mps', None) and torch.backends.mps.is_available()):
        raise DeviceError('device mps was asked for, but this PyTorch has no Apple-silicon (MPS) support')
    return torch.device(name)


def bin_map(values, factor):
    """Sum blocks of factor³ voxels (padding the far edges), keeping the total mass."""
    if factor == 1:
        return values
    pad = [(-n) % factor for n in values.shape]
    v = torch.nn.functional.pad(values, (0, pad[2], 0, pad[1], 0, pad[0]))
    nz, ny, nx = v.shape
    return v.reshape(nz // factor, factor, ny // factor, factor, nx // factor, factor).sum((1, 3, 5))


def binned_particles(fine, factor, step, labels=None, regions=1):
    """The particles of a map (a [z, y, x] tensor on a grid of `step`) binned by `factor`: one a block,
    at the block's centre of mass (particles.block_centres); labels: on the binned grid."""
    centres = block_centres(fine, factor, step) if factor > 1 else None
    return particles(bin_map(fine, factor), tuple(h * factor for h in step), labels, regions, centres)


def new_flow(settings, regions=1):
    """A freshly initialised flow, the same for a given seed on every device."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        return Flow(settings.depth, settings.width, settings.frames, regions)


def _check_resolution(resolution, grid):
    """A resolution the grid can hold: not finer than 2 voxels (Nyquist), not coarser than the box."""
    if not resolution:
        return
    nyquist = 2 * max(grid.voxel_size)
    box = min(n * v for n, v in zip(grid.shape[::-1], grid.voxel_size))
    if resolution < nyquist:
        raise SettingsError(f'resolution {resolution:g} Å is finer than the initial map\'s grid can show '
                       f'(2 × its {max(grid.voxel_size):g} Å voxels = {nyquist:g} Å): give the target map\'s '
                       f'resolution in Å, e.g. 7')
    if resolution > box:
        raise SettingsError(f'resolution {resolution:g} Å is larger than the box ({box:g} Å across): give the target '
                       f'map\'s resolution in Å, e.g. 7')


COARSEST = 4    # a grid binned by `bin` keeps at least this many voxels along its longest edge


def _check_bin(factor, grid):
    """A binning that leaves a grid to train on."""
    most = max(grid.shape) // COARSEST
    if factor > most:
        raise SettingsError(f'bin {factor} is coarser than the map: its {max(grid.shape)} voxels along the longest '
                            f'edge would become {-(-max(grid.shape) // factor)}; use bin {max(1, most)} at most, or '
                            f'0 (automatic)')


class Training:
    """One run: the prepared pair, the flow, its optimiser and how far along the schedule it is."""

    def __init__(self, pair, settings, checkpoint=None, more=0, free_memory=None):
        """checkpoint: a saved state to go on from (load_checkpoint); more: steps to add to
        its last stage, to train a run further than it was planned; free_memory: (bytes, where)
        instead of asking the device (budget.check_memory)."""
        self.pair = pair
        self.settings = settings.resolved(pair.region_count)
        if self.settings.refine and pair.target_map is None:
            raise SettingsError('refinement needs the target map as it is (prepare the pair with prepare_pair)')
        _check_resolution(self.settings.resolution, pair.grid)
        _check_bin(self.settings.bin, pair.grid)
        self.device = choose_device(settings.device)
        self.plan = plan(pair.initial, pair.grid.voxel_size, self.settings, pair.region_count)
        check_weights(self.device, self.settings, pair.region_count, free_memory)
        self.flow = new_flow(settings, pair.region_count).to(self.device)
        if self.plan[0].shared:
            self.flow.share_first_field()
        self.optimizer = self._new_optimizer()
        self.step = 0
        self.losses = []          # the stage's own loss at each step
        self.penalties = []       # the rigidity penalty Σ λ_r E_r at each step (when there is one)
        self.scales = {}          # the penalty's scale for each loss kind (objective.py)
        self.elapsed = 0.0
        self.more = 0             # steps added to the last stage, beyond the settings' own
        self.ended_early = []     # (stage index, steps it ran, steps planned) of stages whose loss stopped improving
        if checkpoint is not None:
            self._restore(checkpoint)
        if more and checkpoint is None:
            raise SettingsError('more adds steps to a run from its checkpoint: give the checkpoint to resume from too')
        if more < 0:
            raise SettingsError('more must be a number of steps to add')
        self._extend(more)
        self._stage = None
        self.stage_sizes = stage_sizes(pair, self.plan)      # (budget.py) particles and voxels of each stage
        self.clock = StepClock([step_cost(size, stage, self.settings)
                                for size, stage in zip(self.stage_sizes, self.plan)])
        self.memory = check_memory(self, free_memory)

    def _extend(self, more):
        """Add steps to the last stage (the full grid's, or refinement's)."""
        self.more += more
        self.plan.lengthen_last(self.more)      # the checkpoint's plan comes without the steps it added

    @property
    def total_steps(self):
        """All steps of the run: the loss's, then refinement's, and any added (more)."""
        return self.plan.total_steps

    def time_left_text(self):
        """The time left in words ('4–7 min left'; '' before a step has been timed): budget.StepClock."""
        return self.clock.time_left_text(self.plan, self.step)

    @property
    def finished(self):
        return self.step >= self.total_steps

    def _new_optimizer(self):
        return torch.optim.Adam(self.flow.parameters(), lr=self.settings.lr)

    def _restore(self, state):
        restore(self, state)

    def stage_data(self, step):
        """What the stage in force at a step trains on (objective.StageData), made when it begins
        (and kept until another stage begins).

        Refinement's target is the map as it is, with its blur's filter.
        """
        stage = self.plan.stage_at(step)
        if self._stage is None or self._stage.stage is not stage:
            dev, pair, s = self.device, self.pair, self.settings
            step_unit = tuple(h * stage.bin for h in pair.grid.unit_step)
            coarse = stage.particles_from
            particle_step = tuple(h * coarse for h in pair.grid.unit_step)
            labels = None
            if pair.regions is not None:
                labels = bin_labels(torch.from_numpy(pair.regions).to(dev),
                                    torch.from_numpy(pair.initial > 0).to(dev), coarse, pair.region_count)
            moving = binned_particles(torch.from_numpy(pair.initial).to(dev), coarse, pair.grid.unit_step, labels,
                                      pair.region_count)
            if stage.shared:        # every region's particles through the first field
                moving = moving._replace(sections=[sum(moving.sections)] + [0] * (pair.region_count - 1))
            reference = None
            if stage.loss == 'refine':
                f1 = bin_map(torch.from_numpy(pair.target_map).to(dev), stage.bin)
                voxel = tuple(v * stage.bin for v in pair.grid.voxel_size)
                reference = Reference(f1, resolution_filter(f1.shape, voxel, s.resolution, dev))
            else:
                f1 = bin_map(torch.from_numpy(pair.target).to(dev), stage.bin)
            rigidity = None
            if any(s.rigidity) and not stage.shared:
                rigidity = Rigidity(moving, particle_step, s.rigidity, s.rigidity_form, s.seed)
            self._stage = StageData(stage, tuple(f1.shape), step_unit, moving, f1, reference, rigidity)
        return self._stage

    def run(self, progress=None, stop=None, checkpoint_path=None, checkpoint_every=0):
        """Train until the last step or until stop() is true; returns True when finished.

        progress(step, total_steps, loss, elapsed) is called after every step.  A checkpoint
        is written every checkpoint_every steps and when the run ends either way, but only
        of weights that have been seen to work: the state after step k is written once the
        next step's checks have passed (or, at the end, a check of its own), so a run that
        diverges (TrainingDiverged) leaves the last good checkpoint on disk.
        """
        start = time.perf_counter() - self.elapsed
        save = None
        if checkpoint_path:
            def save():
                save_checkpoint(checkpoint_path, self.checkpoint())
        with freed_memory_kept(self.device, self.largest_tensor()):
            while not self.finished:
                if stop is not None and stop():
                    break
                due = save is not None and checkpoint_every and self.step and self.step % checkpoint_every == 0
                self._step(start, progress, save if due else None)
            if save is not None:
                self._check_flow_moves()
                save()
        return self.finished

    def largest_tensor(self):
        """Bytes of a full-grid step's largest tensor: an MLP activation or a float64 Sinkhorn array."""
        particles = int(np.count_nonzero(self.pair.initial))
        return max(particles * self.settings.width * 4, self.pair.initial.size * 8)

    def _step(self, start, progress, checked=None):
        """One step; checked() is called once the step's checks have passed, before its update."""
        began = time.perf_counter()
        try:
            self._train_step(checked)
        except Exception as e:
            if out_of_memory(e):
                self._stage = None          # let its tensors go
                raise OutOfMemory(self.step + 1, self.device, e, self.memory) from e
            raise
        index = self.plan.stage_index(self.step)
        self.step += 1
        self.clock.record(index, time.perf_counter() - began)
        self._end_stage_if_plateaued(index)
        self.elapsed = time.perf_counter() - start
        if progress is not None:
            progress(self.step, self.total_steps, self.losses[-1], self.elapsed)

    def _end_stage_if_plateaued(self, index):
        """End a stage before refinement at this step when its loss has stopped improving (schedule.py):
        the plan is shortened, so the next step begins the next stage (and checkpoints keep the plan)."""
        if not self.plan.may_end_early(index):
            return
        start = self.plan.start_of(index)
        done = self.step - start
        if done < self.plan[index].steps and plateaued(self.losses[start:self.step]):
            self.ended_early.append((index, done, self.plan[index].steps))
            self.plan.end_early(index, done)

    def _train_step(self, checked):
        data = self.stage_data(self.step)
        if self.plan.refinement_starts_after(self.step) or self.plan.regions_split_at(self.step):
            # A loss of another kind and scale, or new fields: Adam's moments so far would mislead.
            self.optimizer = self._new_optimizer()
        self.optimizer.zero_grad()
        moving = data.particles
        path = self.flow.trajectory(moving.positions, moving.sections)
        density = splat(moving.mass, path[-1], data.shape, data.step_unit)
        total, loss, penalty = objective(data, density, path, self.flow, self.settings, self.scales, self.step)
        total.backward()
        self._check_step(total, moving, density)
        if checked is not None:
            checked()
        weights = list(self.flow.parameters())
        kept = [w.detach().clone() for w in weights]
        self.optimizer.step()
        if not all_finite(weights):
            with torch.no_grad():               # the weights before this step, as the last checkpoint has them
                for w, k in zip(weights, kept):
                    w.copy_(k)
            raise TrainingDiverged(self.step + 1, 'it made the flow\'s weights infinite or nan', self.settings)
        if data.stage.shared:       # the other regions' fields follow the shared one, so that frames
            self.flow.share_first_field()   # and checkpoints taken now move every region alike
        self.losses.append(loss.item())
        if penalty is not None:
            self.penalties.append(penalty.item())

    def _check_step(self, total, moving, density):
        """Raise TrainingDiverged unless the loss and its gradient are finite and the density stayed
        in the box (one device sync when all is well)."""
        grads = [w.grad for w in self.flow.parameters() if w.grad is not None]
        kept = density.sum() >= KEPT_MASS * moving.mass.sum()
        if all_finite([total] + grads, kept):
            return
        if not all_finite([total]):
            raise TrainingDiverged(self.step + 1, f'its loss is {total.item()}', self.settings)
        if not all_finite(grads):
            raise TrainingDiverged(self.step + 1, 'its gradient is not a finite number', self.settings)
        self._check_mass(moving, density)

    def _check_mass(self, moving, density):
        if moving.mass.numel() and density.sum().item() < KEPT_MASS * moving.mass.sum().item():
            raise TrainingDiverged(self.step + 1, 'the flow moved most of the density out of the box', self.settings)

    def _check_flow_moves(self):
        """The checks of a step on the current weights, without training: for the last checkpoint."""
        if self.step == 0:
            return
        data = self.stage_data(min(self.step, self.total_steps - 1))
        moving = data.particles
        with torch.no_grad():
            path = self.flow.trajectory(moving.positions, moving.sections)
            density = splat(moving.mass, path[-1], data.shape, data.step_unit)
        if not all_finite([density, *self.flow.parameters()]):
            raise TrainingDiverged(self.step, 'the flow\'s weights or the density it gives are not finite numbers',
                                   self.settings)
        self._check_mass(moving, density)

    def checkpoint(self, kept=False):
        """The run's whole state as plain tensors and numbers (checkpoint.py; loads with weights_only=True);
        kept: a copy that stays as it is while training goes on."""
        return state_of(self, kept)

    def verdict(self, frames):
        """How the last frame fits the target compared with the first (the initial map unmoved): verdict.py."""
        from .verdict import judge
        return judge(frames[-1], frames[0], self.pair.target_map, self.pair.grid.voxel_size,
                     self.settings.resolution, self.pair.coverage,
                     None if self.finished else (self.step, self.total_steps),
                     self.pair.levels.initial.kind == 'rule')

    def frames(self):
        """The pseudo-trajectory on the full grid, in the initial map's units: M + 1 arrays."""
        return trajectory_frames(self.flow, self.pair.initial, self.pair.grid, self.pair.peak, self.device,
                                 self.pair.regions)

    def paths(self):
        """The full grid's particles (sorted by region) and their positions at every frame, in Å."""
        return particle_paths(self.flow, self.pair.initial, self.pair.grid, self.device, self.pair.regions)


def _particle_path(flow, initial, grid, device, regions):
    f0 = torch.from_numpy(np.ascontiguousarray(initial, np.float32)).to(device)
    labels = None if regions is None else torch.from_numpy(np.asarray(regions)).to(device)
    moving = particles(f0, grid.unit_step, labels, flow.regions)
    with torch.no_grad():
        return moving, flow.to(device).trajectory(moving.positions, moving.sections)


def trajectory_frames(flow, initial, grid, peak=1.0, device='cpu', regions=None):
    """Splat the particles of a normalised initial map at each Euler step of a flow
    (each region's particles by its own field, given the region labels)."""
    moving, path = _particle_path(flow, initial, grid, device, regions)
    return [(splat(moving.mass, x, moving.shape, grid.unit_step) * peak).cpu().numpy() for x in path]


def particle_paths(flow, initial, grid, device='cpu', regions=None):
    """(particles, [positions (N, 3) in Å of the map's frame at each frame]) of a flow."""
    moving, path = _particle_path(flow, initial, grid, device, regions)
    longest = max(grid.extent)
    corner = torch.tensor(grid.corner, dtype=torch.float64)
    return moving, [x.double().cpu() * longest + corner for x in path]
