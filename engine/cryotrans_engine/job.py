"""A morph as one job: maps and settings in, a Result out, with progress and stop callbacks.

Every front end runs a morph through this: the command line (cli.py), ChimeraX's
background run (the bundle's run.py) and batch runs.  What happens after training (the
frames, writing them, the verdict, each region's rigid motion) is done here once.
"""

import os
import time
from dataclasses import dataclass, field, replace
from functools import cached_property

from .errors import CryoTransError, OutputError, SettingsError
from .files import CHECKPOINT, LOSS_LOG, REGIONS, check_inputs_kept, write_frames, write_loss_log, write_viewer
from .levels import Levels
from .domains import body_lines, find_bodies, flow_motion, region_map
from .maps import read_map, write_map
from .schedule import Plan, plan
from .motion import motion_lines, region_motions
from .pair import prepare_pair
from .stage_notes import beginning_note, stage_ended_note
from .trained import TrainedFlow
from .checkpoint import load_checkpoint, settings_to_resume
from .settings import Settings
from .training import RunFailed, Training, out_of_memory


@dataclass(frozen=True)
class Progress:
    """What a job tells its progress callback after each step."""
    step: int             # steps done
    total: int            # steps in all (refinement's included)
    loss: float           # the step's loss
    elapsed: float        # seconds of training so far
    stage: str            # the loss in force for the next step: 'w2', 'l2' or 'refine'
    new_stage: bool       # a new stage begins with the next step
    ended: str = ''       # words for a stage that ended early at this step (its loss stopped improving)
    begins: str = ''      # words for what begins after this step that changes the loss's meaning
    found: tuple = ()     # partition auto: what it found (the bodies, in words), told with the step its
                          # first stage ended at, once the run goes on with them


@dataclass
class Result:
    """What a finished or stopped job gives back."""
    frames: list              # M + 1 arrays [z, y, x] on the initial map's grid, in its units
    flow: TrainedFlow
    finished: bool            # every step ran (False: stopped)
    steps: int                # steps done
    total_steps: int
    losses: list
    elapsed: float            # seconds of training
    step_seconds: dict        # {stage index: median seconds a step} as measured in this run
    verdict: object           # verdict.Verdict: the prediction against the initial map unmoved
    levels: Levels            # each map's level, what it encloses and how it was chosen
    motions: list = field(default_factory=list)   # motion.RigidMotion per region (partitioned runs)
    motion_lines: list = field(default_factory=list)   # the same in words, one line per region
    paths: tuple = None       # (particles, positions in Å at each frame) when asked for
    files: list = field(default_factory=list)     # what was written into the folder
    bodies: object = None     # domains.Bodies found by partition auto (None: no search)
    body_lines: list = field(default_factory=list)   # what the search found and cost, in words
    regions: object = None    # the region map trained with (int32 on the initial map's grid), or None


class MorphJob:
    """One morph of a prepared pair (pair.py) with settings; run() trains and returns the Result.

    auto: find the partition from the motion (partition auto, domains.py): the run's first stage
    trains one field, as a partitioned run's shared stage does; the bodies its motion shows become
    the regions, and the run goes on from there with a field per region (one body: one field, the
    same run going on); count: that many bodies.
    """

    def __init__(self, pair, settings=None, checkpoint=None, more=0, free_memory=None, auto=False, count=None):
        """checkpoint: a saved state (load_checkpoint) to go on from; more: steps to add to it."""
        if (auto or count) and (pair.regions is not None or checkpoint is not None):
            raise CryoTransError('partition auto finds the regions itself: give no region map, and resume a run '
                                 'it made with its regions.mrc as the partition')
        self.pair = pair
        self.settings = settings or Settings()
        self.auto = bool(auto or count)
        if count is not None and count < 1:
            raise SettingsError(f'count is how many bodies partition auto finds: 1 or more, not {count}')
        self.count = count
        self.free_memory = free_memory
        self.bodies, self.body_lines = None, []
        self.training = Training(pair, self.settings, checkpoint, more, free_memory)

    @property
    def levels(self):
        return self.pair.levels

    def frames(self):
        """The frames of the flow as it stands (for a view refreshed while training)."""
        return self.training.frames()

    def run(self, progress=None, stop=None, out=None, checkpoint_every=50, paths=False):
        """Train until the end or until stop() is true, then make the frames, judge them and, with
        out (a folder, held by the caller), write frames, flow.pt, loss.log and open_in_chimerax.py there.

        progress(Progress) is called after each step.  paths: also give each particle's path
        (for colouring by region).  A run that fails keeps its last good checkpoint and loss log
        and raises RunFailed saying so; a failure writing the frames raises OutputError.
        """
        if self.auto and self.bodies is None:
            self.find_regions(progress, stop)
        bodies, found = self.bodies, list(self.body_lines)
        t = self.training
        regions = None
        if out is not None and t.pair.regions is not None and self.auto:    # at once: a run that fails later
            regions = os.path.join(out, REGIONS)                              # keeps what its flow.pt needs
            write_map(regions, t.pair.regions, t.pair.grid)
        checkpoint = None if out is None else os.path.join(out, CHECKPOINT)
        log = None if out is None else os.path.join(out, LOSS_LOG)
        tell = None if progress is None else (lambda *a: progress(self._progress(*a)))
        try:
            finished = t.run(tell, stop, checkpoint, checkpoint_every)
        except RunFailed as e:
            if out is None:             # nothing was to be written: the caller says what it keeps
                raise
            write_loss_log(log, t.losses)
            raise RunFailed(f'{e}; no frames written, {_kept(checkpoint)}', e.step) from e
        files = []
        if log is not None:
            write_loss_log(log, t.losses)
            files += [checkpoint, log]
        again = (f'{checkpoint} keeps the trained flow: cryotrans frames {checkpoint} <initial map> --out FOLDER '
                 f'makes them' if checkpoint else 'the flow is kept by TrainedFlow')
        try:
            frames = t.frames()
        except Exception as e:
            if out_of_memory(e):
                raise OutputError(f'making the frames ran out of memory ({e}); {again} where there is more') from e
            raise
        if out is not None:
            try:
                files = write_frames(out, frames, t.pair.grid) + files
            except CryoTransError as e:
                raise OutputError(f'{e}; {again} again') from e
            files.append(write_viewer(out, t.pair.level0))
        if regions is not None:
            files.append(regions)
        want = paths or t.pair.regions is not None
        particle_paths = t.paths() if want else None
        motions = region_motions(*particle_paths) if t.pair.regions is not None else []
        return Result(frames, TrainedFlow.from_training(t), finished, t.step, t.total_steps, list(t.losses),
                      t.elapsed, t.clock.step_seconds(), t.verdict(frames), self.levels, motions,
                      motion_lines(motions, particle_paths) if motions else [],
                      particle_paths if paths else None, files, bodies, found, t.pair.regions)

    def find_regions(self, progress=None, stop=None):
        """partition auto: train the first stage with one field, find the bodies in its motion, and make
        self.training the partitioned run going on from there (domains.py).  Sets self.bodies
        (domains.Bodies; None when stopped first) and self.body_lines (what was found, in words); the
        region map is then self.regions (None: one body, one field goes on).

        progress(Progress) is called after each step, that of the step the first stage ended at once the
        bodies are found: with them in words (Progress.found), and as the run going on sees that step
        (a new stage begins there when the regions go on alone).  The totals it gives are the run's as it
        goes on: the partitioned plan keeps every step of the one-field plan (objective.partitioned_plan
        shares its first stage, or a lone stage's first half), so the total does not change when the
        fields split; a stage that ends early shortens both alike."""
        t = self.training
        shared = self.search_steps
        last = []               # the first stage's last step, told once its bodies are found

        def tell(step, total, loss, elapsed):
            if step >= shared or t.plan.stage_index(step) > 0:
                last.append((step, loss, elapsed))
            elif progress is not None:
                progress(self._progress(step, total, loss, elapsed))
        t.run(tell, lambda: (stop is not None and stop()) or t.step >= shared or t.plan.stage_index(t.step) > 0)
        if not last:
            self.body_lines = ['partition auto: stopped before the motion was learnt; no bodies looked for']
            return
        self._find_bodies()
        if progress is not None:
            step, loss, elapsed = last[-1]
            progress(replace(self._progress(step, self.training.total_steps, loss, elapsed),
                             found=tuple(self.body_lines)))

    @cached_property
    def search_steps(self):
        """partition auto: the steps of the run's first stage, which trains one field before the bodies are
        looked for (fewer when its loss stops improving first)."""
        return plan(self.pair.initial, self.pair.grid.voxel_size, self.training.settings, 2)[0].steps

    def search_time_left_text(self):
        """partition auto: the time its first stage still takes, in words ('' before a step was timed)."""
        t = self.training
        first = t.plan[0]._replace(steps=min(t.plan[0].steps, self.search_steps))
        return t.clock.time_left_text(Plan([first]), t.step)

    def _find_bodies(self):
        """The bodies in the motion of the one-field run (self.training), and the run going on with them."""
        t = self.training
        began = time.perf_counter()
        before, after, mass, voxels, shape, factor = flow_motion(t.flow, self.pair.initial, self.pair.grid,
                                                                  t.device)
        bodies = find_bodies(before, after, mass, voxels, shape, self.count,
                             max(self.pair.grid.voxel_size) * factor)
        lines = [f'partition auto: {bodies.count} {"body" if bodies.count == 1 else "bodies"} in the motion of one '
                 f'field after {t.step} steps ({t.elapsed:.1f} s, the run\'s first stage); {bodies.why}; '
                 f'found in {time.perf_counter() - began:.1f} s'] + body_lines(bodies)
        self.bodies, self.body_lines = bodies, lines
        if bodies.count == 1:
            lines.append('partition auto: one field goes on (the same run)')
            return
        regions = region_map(bodies, voxels, shape, factor, self.pair.initial > 0)
        self.pair = replace(self.pair, regions=regions)
        self.training = continued(t, self.pair, self.settings, self.free_memory)

    @property
    def regions(self):
        """The region map the run trains with (found by partition auto once its first stage has run)."""
        return self.pair.regions

    def _progress(self, step, total, loss, elapsed):
        t = self.training
        going = step < total
        stage = t.plan.stage_at(min(step, total - 1))
        return Progress(step, total, loss, elapsed, stage.loss,
                        going and stage is not t.plan.stage_at(step - 1),
                        stage_ended_note(t, step), beginning_note(t, step))


def continued(short, pair, settings, free_memory=None):
    """A partitioned Training (pair with regions) that starts where a one-field run of its shared first
    stage (short) ended: every region's field the one field, the steps, losses and time carried over.
    The same state the partitioned run would have reached itself: its shared stage trains one field
    on the same grid and particles (objective.partitioned_plan), and Adam starts afresh when it ends."""
    t = Training(pair, settings, None, 0, free_memory)
    t.flow.fields[0].load_state_dict(short.flow.fields[0].state_dict())
    t.flow.share_first_field()
    if short.step < t.plan[0].steps:            # the shared stage ended early (its loss stopped improving)
        t.plan.end_early(0, short.step)
    t.step, t.losses, t.elapsed = short.step, list(short.losses), short.elapsed
    t.ended_early = list(short.ended_early)
    t.clock.times = {0: list(short.clock.times.get(0, []))}
    return t


def _kept(checkpoint):
    if checkpoint and os.path.exists(checkpoint):
        return (f'{checkpoint} keeps step {load_checkpoint(checkpoint)["step"]}, the last checkpoint before it '
                f'(cryotrans frames makes its frames)')
    return 'no checkpoint was written'


def morph(initial, grid0, target, grid1, settings=None, level0=None, level1=None, regions=None,
          regions_grid=None, transform=None, checkpoint=None, more=0, log=print, **run):
    """A morph from arrays [z, y, x] and their Grids, in one call: prepares the pair (levels: numbers,
    levels.LevelSpec or None for the rule), trains and returns the Result.  run: MorphJob.run's
    keywords (progress, stop, out, checkpoint_every, paths); out must not be held by another run."""
    pair = prepare_pair(initial, grid0, target, grid1, level0, level1, transform, log, regions, regions_grid)
    return MorphJob(pair, settings, checkpoint, more).run(**run)


def morph_files(initial, target, settings=None, out=None, level0=None, level1=None, partition=None,
                resume=None, more=0, log=print, count=None, **run):
    """A morph from MRC files, in one call: the maps and region map read (partition 'auto': found from the
    motion, count bodies, and written to out/regions.mrc), the folder out made and held while the run
    writes there (claim_folder), frames, flow.pt and loss.log written into it."""
    from .maps import claim_folder, output_folder
    state = None if resume is None else load_checkpoint(resume)
    if state is not None and settings is None:
        settings = settings_to_resume(state)
    auto = partition == 'auto'
    if auto:
        partition = None
    (f0, g0), (f1, g1) = read_map(initial), read_map(target)
    labels, grid_r = read_map(partition) if partition else (None, None)
    pair = prepare_pair(f0, g0, f1, g1, level0, level1, None, log, labels, grid_r)
    job = MorphJob(pair, settings, state, more, auto=auto, count=count)
    if out is None:
        return job.run(**run)
    check_inputs_kept(out, job.training.settings.frames + 1, (initial, target, partition, resume), resume)
    output_folder(out)
    with claim_folder(out, f'cryotrans morph {os.path.basename(str(initial))}'):
        return job.run(out=out, **run)
