"""What a run will need before it starts: memory on its device, and the time still to come.

Memory is counted, not guessed: the bytes a training step holds at its peak, per
particle and per voxel, read off the code (what the flow keeps for its backward pass,
splatting's corners, the Sinkhorn arrays in float64, the frames made at the end).
`make bench` prints the estimate beside the measured peak (docs/benchmarks.md).
Before training, a run that would not fit the memory free on its device is refused
with the estimate, what is free, and the settings that would fit (check_memory):
first, without asking, the flow's activations are recomputed in the backward pass
rather than kept (the same gradients bit for bit, about one forward pass more);
then a coarser `bin`, and `refine 0` (refinement runs on the full grid).

Time left counts the stages still to come: the coarse grids first are cheap, so
seconds per step so far times steps left would say too little.  Each stage's cost
per step is modelled (the MLP per particle, the loss per voxel) and scaled by what
the steps of the stage in force have been measured to take.
"""

import math
from dataclasses import dataclass

import numpy as np

from .errors import DeviceError
from .schedule import fewest_steps

GB = 1 << 30
# Bytes per particle and per voxel, counted from the code of a step (float32 unless said):
PARTICLE = 24              # particles.py: mass, positions, voxel index (int64)
PATH = 2 * 3 * 4           # each frame's positions (flow.py), and their gradient
SPLAT = 350                # splat.py: 8 corners' index (int64), weight and value, kept for backward, and their cat
W2_VOXEL = 9 * 8 + 6 * 4   # wasserstein.py: ~9 float64 maps at Sinkhorn's peak; density, its gradient, target, φ0 φ1
L2_VOXEL = 6 * 4
REFINE_VOXEL = 14 * 4      # refinement.py: rfftn/irfftn (complex, half the voxels) forward and backward
RIGID_PER_FRAME = 160      # rigidity.py deformation form: the moved stack, neighbour gathers, F and FᵀF per frame
BLOCK_LAYERS = 4           # a block's activations and gradients at once (hidden layers + the backward's)


@dataclass(frozen=True)
class StageSize:
    """A stage's grid and particles."""
    particles: int
    voxels: int
    longest: int     # the grid's longest edge, in voxels


def stage_sizes(pair, plan):
    """(particles, voxels, longest edge) of each stage of a plan, from the initial map binned as the stage bins it."""
    from .schedule import occupied
    filled = pair.initial > 0
    grids = {f: occupied(filled, f) for f in {g for stage in plan for g in (stage.bin, stage.particles_from)}}
    return [StageSize(grids[stage.particles_from][0], *grids[stage.bin][1:]) for stage in plan]


def kept_activations(size, settings):
    """Bytes of activations the flow keeps for its backward pass: every hidden layer's but the
    first, at every Euler step (flow.VelocityField.activation_bytes, times the frames)."""
    return settings.frames * size.particles * settings.width * max(0, settings.depth - 2) * 4


def recomputes(size, settings, recompute, activation_budget):
    """Whether the flow recomputes its activations for a stage (its setting True, False or 'auto',
    as Flow.recomputes decides it)."""
    return recompute if recompute != 'auto' else kept_activations(size, settings) > activation_budget


def step_bytes(size, stage, settings, device_type, recompute, regions=1, activation_budget=None):
    """Peak bytes one step of a stage adds to what is held before it.

    recompute: the flow's setting (True, False or 'auto' with activation_budget).
    """
    from .flow import BLOCK_VALUES
    n, v, frames, width = size.particles, size.voxels, settings.frames, settings.width
    hidden = settings.depth - 1
    kept = 0 if recomputes(size, settings, recompute, activation_budget) else kept_activations(size, settings)
    rows = n if device_type != 'cpu' else min(n, max(64, BLOCK_VALUES // width))
    total = (PARTICLE + (frames + 1) * PATH + SPLAT) * n + kept
    total += (hidden + BLOCK_LAYERS) * rows * width * 4
    total += {'w2': W2_VOXEL, 'l2': L2_VOXEL, 'refine': REFINE_VOXEL}[stage.loss] * v
    if regions > 1 and not stage.shared and any(settings.rigidity or ()) and settings.rigidity_form == 'deformation':
        total += RIGID_PER_FRAME * frames * n
    return total


def weight_bytes(settings, regions=1):
    """The velocity networks' weights with their gradients and Adam's two moments (4 copies, float32):
    nothing beside the particles' for the default width, but a very wide network is its weights."""
    w, d = settings.width, settings.depth
    per_field = (3 * w + w) + (d - 2) * (w * w + w) + (w * 3 + 3)
    return 4 * 4 * per_field * regions


def check_weights(device, settings, regions, free=None):
    """Refuse in words a network whose weights alone cannot fit, before it is made (else the allocator's
    traceback asks for terabytes)."""
    need = weight_bytes(settings, regions)
    free, where = free_memory(device) if free is None else free
    if free is not None and need > free:
        raise DeviceError(f'a velocity network {settings.width} wide and {settings.depth} deep needs {gb(need)} '
                          f'for its weights, their gradients and Adam\'s moments ({regions} region'
                          f'{"s" if regions > 1 else ""}), and {gb(free)} is {where}: use a smaller width '
                          f'(the default is 100)')


def frames_bytes(size, settings):
    """The frames made at the end (and at each refresh): every frame on the full grid, and the paths."""
    return (settings.frames + 1) * (size.voxels * 4 + size.particles * 3 * 4) + SPLAT * size.particles


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run needs at its peak, and the parts of it."""
    step: int          # the largest step of any stage
    frames: int        # the frames, held while a step runs (ChimeraX's series) and made again at the end
    recompute: bool    # whether the flow recomputes its activations in the backward pass

    @property
    def total(self):
        return self.step + 2 * self.frames


def full_grid(pair):
    """The StageSize of the initial map's own grid (where the frames are made)."""
    return StageSize(int(np.count_nonzero(pair.initial)), int(pair.initial.size), max(pair.initial.shape))


def estimate(pair, settings, plan, device_type, recompute='auto', activation_budget=None, sizes=None):
    """MemoryEstimate of a run (a plan of stages from training.py) on a device type;
    sizes: the plan's stage_sizes, when already known."""
    from .flow import ACTIVATION_BUDGET
    budget = ACTIVATION_BUDGET if activation_budget is None else activation_budget
    sizes = stage_sizes(pair, plan) if sizes is None else sizes
    steps = [step_bytes(size, stage, settings, device_type, recompute, pair.region_count, budget)
             for size, stage in zip(sizes, plan)]
    return MemoryEstimate(max(steps) + weight_bytes(settings, pair.region_count),
                          frames_bytes(full_grid(pair), settings),
                          all(recomputes(size, settings, recompute, budget) for size in sizes))


def free_memory(device):
    """(bytes, where) the run may still take on a device: None where it cannot be told.

    CPU: the least of what the system has available, this process's address-space
    limit (ulimit -v) and its cgroup's memory limit (a cluster job's or container's).
    CUDA: what the driver reports free, and what PyTorch's cache holds for reuse.
    """
    import torch
    kind = getattr(device, 'type', device)
    if kind == 'cuda':
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return free + cached, f'free on {torch.cuda.get_device_name(device)}'
    if kind == 'mps':
        limit = getattr(torch.mps, 'recommended_max_memory', None)
        used = getattr(torch.mps, 'driver_allocated_memory', None)
        if limit is not None and used is not None:
            return limit() - used(), 'free for Metal (MPS) on this Mac'
        return _system_available()
    found = [f for f in (_system_available(), _address_space_left(), _cgroup_left()) if f is not None]
    return min(found, key=lambda f: f[0]) if found else (None, '')


def _system_available():
    """What the system could give this run without swapping, as psutil reads it on Linux, macOS and
    Windows (ChimeraX ships psutil); None, so no check, where it cannot tell."""
    try:
        import psutil
        return psutil.virtual_memory().available, 'available on this machine'
    except (ImportError, OSError, RuntimeError):
        return None


def _address_space_left():
    """What this process's address-space limit (ulimit -v, Unix) leaves it; None where there is none."""
    try:
        import psutil
        import resource
        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY:
            return None
        size = psutil.Process().memory_info().vms
        return max(0, limit - size), f'left under this process\'s address-space limit (ulimit -v {limit // 1024})'
    except (ImportError, OSError, ValueError):
        return None


def _cgroup_left():
    for limit_file, usage_file in (('/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory.current'),
                                   ('/sys/fs/cgroup/memory/memory.limit_in_bytes',
                                    '/sys/fs/cgroup/memory/memory.usage_in_bytes')):
        try:
            with open(limit_file) as f:
                text = f.read().strip()
            if text == 'max' or int(text) >= 1 << 60:
                return None
            with open(usage_file) as f:
                return max(0, int(text) - int(f.read())), 'left under this job\'s memory limit (cgroup)'
        except (OSError, ValueError):
            continue
    return None


def gb(n):
    """Bytes as a user reads them: 180 MB, 1.1 GB, 24 GB."""
    if n < GB:
        return f'{max(n, 0) / (1 << 20):.0f} MB'
    return f'{n / GB:.2g} GB' if n < 10 * GB else f'{n / GB:.0f} GB'


def check_memory(training, free=None):
    """Make a run fit its device's memory before it starts, or refuse it in words.

    Returns the MemoryEstimate it will run with; sets the flow to recompute its
    activations when only that makes it fit.  free: (bytes, where), else free_memory.
    """
    from dataclasses import replace
    from .schedule import plan as plan_of
    free, where = free_memory(training.device) if free is None else free
    kind, s, pair, flow = training.device.type, training.settings, training.pair, training.flow
    sizes = training.stage_sizes
    need = estimate(pair, s, training.plan, kind, flow.recompute, flow.budget, sizes)
    if free is None or need.total <= free:
        return need
    if flow.recompute == 'auto':
        recomputing = estimate(pair, s, training.plan, kind, True, sizes=sizes)
        if recomputing.total <= free:
            flow.recompute = True
            return recomputing
    fits = None
    for k in (2, 4, 8):
        for refine in ((s.refine, 0) if s.refine else (0,)):
            plan = plan_of(pair.initial, pair.grid.voxel_size, replace(s, bin=k, refine=refine), pair.region_count)
            if estimate(pair, s, plan, kind, True).total <= free:
                fits = f'bin {k}' + (' refine 0' if s.refine and not refine else '')
                break
        if fits:
            break
    full = full_grid(pair)
    here = (f'this run needs about {gb(need.total)} of memory on {kind} (a training step {gb(need.step)}, '
            f'its {s.frames + 1} frames {gb(need.frames)} each time they are made, for {full.particles} particles '
            f'on a {"×".join(map(str, pair.initial.shape[::-1]))} grid), and {gb(free)} is {where}')
    if fits:
        raise DeviceError(f'{here}: with {fits} it needs less; add {fits} (the CLI: '
                       f'{" ".join("--" + w if i % 2 == 0 else w for i, w in enumerate(fits.split()))}), '
                       f'or free memory, or run on a machine with more')
    raise DeviceError(f'{here}, and no coarser bin fits (the frames alone are on the full grid): make the map '
                   f'smaller (in ChimeraX: volume resample #N spacing S, coarser, or volume copy #N subregion ... '
                   f'to crop it to the molecule), or run on a machine with more memory')


def step_cost(size, stage, settings):
    """Relative seconds of one step of a stage: the flow per particle, the loss per voxel.

    From make bench on a 2-core CPU (docs/benchmarks.md): the flow (forward and backward)
    about 1.1 µs per particle and Euler step at width 100, depth 3; Sinkhorn about 0.6 ns
    per voxel and voxel of the longest edge, for the default 5 iterations; refinement's
    FFTs about 18 ns per voxel; splatting about 0.5 µs per particle.
    """
    layers = (settings.depth - 1) * (settings.width / 100) ** 2 / 2
    flow = 1.1e-6 * settings.frames * size.particles * layers + 0.5e-6 * size.particles
    if stage.loss == 'w2':
        return flow + 0.6e-9 * size.voxels * 3 * size.longest * settings.sinkhorn_iterations / 5
    return flow + (18e-9 if stage.loss == 'refine' else 2e-9) * size.voxels


class StepClock:
    """The seconds each step of a run took, by stage, and the time left they foretell: the stages to come
    counted at their own cost (step_cost), scaled by what a step costs on this machine."""

    def __init__(self, costs):
        self.costs = costs        # step_cost of each stage
        self.times = {}           # {stage index: [seconds of each step measured in this process]}

    def record(self, index, seconds):
        self.times.setdefault(index, []).append(seconds)

    def step_seconds(self):
        """{stage index: median seconds of its steps timed in this process}, for the stages run here; a
        stage's first step (which prepares its grid and particles) is left out when it has others.  What a
        step costs on this machine: benchmarks give it beside a run's time, as machines' speeds differ."""
        return {index: float(np.median(times[1:] or times)) for index, times in sorted(self.times.items())}

    def seconds_left(self, plan, done, soonest=False):
        """Seconds of training still to come after `done` steps of a schedule.Plan; nan before a step has been
        timed.  soonest: if every stage that may end early (Plan.may_end_early) ends at its first chance."""
        rate = None
        for index in sorted(self.times, reverse=True):       # the latest stage with steps past its first
            recent = self.times[index][1:][-20:]             # (a stage's first step prepares its data)
            if recent:
                rate = (index, sorted(recent)[len(recent) // 2])
                break
            if rate is None:
                rate = (index, self.times[index][0])
        steps = [stage.steps for stage in plan]
        if soonest:
            start = 0
            for i, n in enumerate(steps):            # stages past keep their steps, as do those that cannot end early
                if done < start + n and plan.may_end_early(i):
                    steps[i] = fewest_steps(max(0, done - start), n)
                start += n
        return seconds_left(self.costs, steps, done, rate)

    def time_left_text(self, plan, done, duration=lambda seconds: f'{seconds:.0f} s'):
        """'4–7 min left' while stages to come may end early, '7 min left' when they cannot,
        '' before a step has been timed; duration writes a number of seconds."""
        return time_left_text(self.seconds_left(plan, done, soonest=True), self.seconds_left(plan, done), duration)


def seconds_left(costs, steps, done, rate):
    """Seconds still to come: `costs` and `steps` per stage, `done` steps of the run so far,
    and `rate` (stage index, measured seconds per step in it)."""
    if rate is None or not math.isfinite(rate[1]):
        return math.nan
    index, seconds = rate
    scale = seconds / costs[index]
    left, start = 0.0, 0
    for cost, n in zip(costs, steps):
        left += max(0, min(n, start + n - done)) * cost * scale
        start += n
    return left


def time_left_text(soonest, latest, duration):
    """The time left in words: a range while stages may end early and that makes a difference."""
    if not math.isfinite(latest):
        return ''
    low, high = duration(soonest), duration(latest)
    if soonest < 0.9 * latest and low != high:
        number, _, unit = low.rpartition(' ')
        same = unit and high.endswith(' ' + unit)
        return f'{number if same else low}–{high} left'       # '4–7 min left', '90 s–3 min left'
    return f'{high} left'
