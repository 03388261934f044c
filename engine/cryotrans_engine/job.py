"""A morph as one job: maps and settings in, a Result out, with progress and stop callbacks.

Every front end runs a morph through this: the command line (cli.py), ChimeraX's
background run (the bundle's run.py) and batch runs.  What happens after training (the
frames, writing them, the verdict, each region's rigid motion) is done here once.
"""

import os
from dataclasses import dataclass, field

from .errors import CryoTransError, OutputError
from .files import CHECKPOINT, LOSS_LOG, check_inputs_kept, write_frames, write_loss_log, write_viewer
from .levels import Levels
from .maps import read_map
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


class MorphJob:
    """One morph of a prepared pair (pair.py) with settings; run() trains and returns the Result."""

    def __init__(self, pair, settings=None, checkpoint=None, more=0, free_memory=None):
        """checkpoint: a saved state (load_checkpoint) to go on from; more: steps to add to it."""
        self.pair = pair
        self.training = Training(pair, settings or Settings(), checkpoint, more, free_memory)

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
        t = self.training
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
        want = paths or t.pair.regions is not None
        particle_paths = t.paths() if want else None
        motions = region_motions(*particle_paths) if t.pair.regions is not None else []
        return Result(frames, TrainedFlow.from_training(t), finished, t.step, t.total_steps, list(t.losses),
                      t.elapsed, t.clock.step_seconds(), t.verdict(frames), self.levels, motions,
                      motion_lines(motions, particle_paths) if motions else [],
                      particle_paths if paths else None, files)

    def _progress(self, step, total, loss, elapsed):
        t = self.training
        going = step < total
        stage = t.plan.stage_at(min(step, total - 1))
        return Progress(step, total, loss, elapsed, stage.loss,
                        going and stage is not t.plan.stage_at(step - 1),
                        stage_ended_note(t, step), beginning_note(t, step))


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
                resume=None, more=0, log=print, **run):
    """A morph from MRC files, in one call: the maps and region map read, the folder out made and
    held while the run writes there (claim_folder), frames, flow.pt and loss.log written into it."""
    from .maps import claim_folder, output_folder
    state = None if resume is None else load_checkpoint(resume)
    if state is not None and settings is None:
        settings = settings_to_resume(state)
    (f0, g0), (f1, g1) = read_map(initial), read_map(target)
    labels, grid_r = read_map(partition) if partition else (None, None)
    pair = prepare_pair(f0, g0, f1, g1, level0, level1, None, log, labels, grid_r)
    job = MorphJob(pair, settings, state, more)
    if out is None:
        return job.run(**run)
    check_inputs_kept(out, job.training.settings.frames + 1, (initial, target, partition, resume), resume)
    output_folder(out)
    with claim_folder(out, f'cryotrans morph {os.path.basename(str(initial))}'):
        return job.run(out=out, **run)

