"""A `cryotrans morph` run in the background: a worker thread trains, the main thread shows.

The worker never touches models.  What it has for the scene (frames, status, the end)
goes on the run's queue, and session.ui.thread_safe asks the main thread to apply it.
ChimeraX's nogui UI without an event loop (scripts, --exit, tests) runs thread_safe's
function at once on the calling thread instead; then the queue waits for the main thread
to pump it: `cryotrans morph ... wait true`, `cryotrans stop` and `cryotrans list` do.
That hand-over is Background's, which `cryotrans partition ... auto` uses too (partition_run.py).

A run is a ChimeraX Task, so `taskman` lists it (and `taskman kill` stops it), and
session.tasks is the registry of runs.  Task.start is not used: its thread sets the
task's state, which fires triggers, from the worker thread.

Listeners (the tool panel, scripts) learn what a run does from the session trigger
RUN_TRIGGER, always fired on the main thread with a RunEvent: 'started', 'progress'
(about once a second, with the losses since the last one), 'stage' (a new stage
begins: refinement, or the regions of a partition going on alone), 'frames' (the
series was refreshed) and 'ended' (finished, stopped or failed: see run.state).

Session files keep each run with its series and flow (run_session.py); it comes back as a Run
of another kind, listed and its flow used, with nothing left to train.
"""

import atexit
import datetime
import math
from dataclasses import dataclass
import os
import queue
import threading
import time
import weakref

import numpy as np
from chimerax.core.errors import UserError
from chimerax.core.tasks import Task, TaskState
from chimerax.core.triggerset import DEREGISTER

from cryotrans_engine import CryoTransError

FAILED = TaskState.FAILED
STOPPED = TaskState.TERMINATED
RUN_TRIGGER = 'cryotrans run'


@dataclass(frozen=True)
class RunEvent:
    """What a run tells its listeners, on the main thread."""
    run: object               # the MorphRun
    kind: str                 # 'started', 'progress', 'stage', 'frames' or 'ended'
    step: int                 # steps done
    total: int                # steps in all (refinement's included)
    elapsed: float = 0.0      # seconds of training so far
    left: float = math.nan    # seconds of training still to come (estimate), as planned
    soonest: float = math.nan  # the same if the stages that may end early end at their first chance
    losses: tuple = ()        # 'progress': the losses of the steps since the last 'progress'
    stage: str = ''           # the loss in force ('w2', 'l2', 'refine'); 'stage': the new one


_live = weakref.WeakSet()     # Background work whose worker may still be training


@atexit.register
def _stop_runs_at_exit():
    """Stop every training worker and wait for it to write what it has, before Python ends.

    A worker thread still inside PyTorch when the interpreter finalises aborts the process
    ("terminate called without an active exception"), and its frames and checkpoint are
    lost; a script ending or `exit` with a `wait false` run training must not do that.
    """
    for run in list(_live):
        if run.worker is not None and run.worker.is_alive():
            run.stop('ChimeraX exits')
            run.worker.join()


def add_run_handler(session, handler):
    """Call handler(trigger_name, RunEvent) on the main thread whenever any run of the session
    changes; returns the handler to remove with session.triggers.remove_handler."""
    return _run_triggers(session).add_handler(RUN_TRIGGER, handler)


def _run_triggers(session):
    if not session.triggers.has_trigger(RUN_TRIGGER):
        session.triggers.add_trigger(RUN_TRIGGER)
    return session.triggers


def runs(session):
    """The session's runs, running, ended or restored from a session file, whose series is still open (or ending)."""
    return session.tasks.find_by_class(Run)


def background(session):
    """The session's runs and the other cryotrans work in the background (partition auto while it looks)."""
    return session.tasks.find_by_class(Background)


def pump(session):
    """Apply on this (main) thread what every worker has handed over so far."""
    for r in background(session):
        r.pump()


REFRESH_SHARE = 0.1   # refreshing the frames takes at most this share of a run's time


def refresh_due(spent, elapsed):
    """Whether a refresh of the frames is due at a report step: frames are made from every particle
    of the full grid (on a 256³ map, seconds each time), so a refresh is skipped while refreshing has
    taken more than REFRESH_SHARE of the training time so far; small maps refresh at every report."""
    return spent <= REFRESH_SHARE * elapsed


class Background(Task):
    """Work of a cryotrans command on a thread of its own (the worker), which hands the main thread what it
    has for the scene: a morph's training (MorphRun) or partition auto's search (partition_run.py).

    The worker calls _post(f, ...) and the main thread calls f when it pumps; stop() asks the worker
    to end at its next step; wait() is a command's `wait true`.  A subclass's run() is the worker.
    """

    def __init__(self, session, name):
        super().__init__(session)
        self.name = name
        self.worker = None
        self.error = None         # why a failed worker failed
        self.failure = None       # the message of a failed one
        self.waited = False       # a command waits for the end (and reports a failure itself)
        self._stop = threading.Event()
        self._stop_reason = 'cryotrans stop'
        self._work = queue.Queue()
        self._main = threading.get_ident()

    @property
    def running(self):
        return self.state == TaskState.RUNNING

    def start(self):
        """Work on a thread of our own; with a GUI, leave it one core."""
        if self.session.ui.is_gui:
            import torch
            torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
        self.start_time = datetime.datetime.now()
        self.worker = threading.Thread(target=self.run, name=self.name, daemon=True)
        self.state = TaskState.RUNNING
        self._starting()
        _live.add(self)
        self.worker.start()

    def _starting(self):
        """Main thread, running but before the worker starts: what a subclass tells then."""

    def terminate(self):
        """What `taskman kill` calls: stop at the next step, keeping what is done."""
        self.stop('taskman kill')

    def stop(self, reason='cryotrans stop'):
        """Ask the worker to end after its current step (it checks every step)."""
        self._stop_reason = reason
        self._stop.set()

    def stops_with(self, models):
        """Whether `cryotrans stop` naming these models stops this work."""
        return False

    def wait(self):
        """Main thread: apply what the worker hands over until it ends (a command's `wait true`); a
        failure is raised, which fails a script."""
        self.waited = True
        self.pump(until_done=True)
        if self.failure is not None:
            raise UserError(self.failure)

    def _post(self, f, *args):
        self._work.put((f, args))
        session = self.session
        if session is not None:
            session.ui.thread_safe(self.pump)

    def pump(self, until_done=False):
        """Apply the worker's hand-overs, only on the main thread; until_done: until the worker ends."""
        if threading.get_ident() != self._main:
            return
        while True:
            waiting = until_done and self.worker is not None and self.worker.is_alive()
            try:
                f, args = self._work.get(timeout=0.05) if waiting else self._work.get_nowait()
            except queue.Empty:
                if waiting:
                    continue
                return
            f(*args)

    def _forget(self):
        if self.id in self.session.tasks:
            self.session.tasks.remove(self)


class Run(Background):
    """A run as the session lists it (`cryotrans list`, session.tasks) until its series closes, and the
    flow it left: one training here (MorphRun) or one restored from a session file (run_session.py).

    Not saved by session.tasks (SESSION_SAVE stays False): run_session.py saves runs with their series.
    """

    def __init__(self, session, series, name):
        super().__init__(session, name)
        self.series = series
        self.label = '#' + series.id_string    # the series' id, for messages once it is closed
        self.verdict = None       # verdict.Verdict of a run that ended with frames
        self.flow = None          # the engine's TrainedFlow of a run that ended with frames
        self.unfinished = False   # restored from a session saved while it trained: it stopped there
        self._handler = session.triggers.add_handler('remove models', self._models_removed)

    @property
    def where(self):
        """The series' id as a spec ('#3'), or what it was ('closed #3')."""
        return f'closed {self.label}' if self.series.deleted else f'#{self.series.id_string}'

    def stops_with(self, models):
        return self.series in models

    def _models_removed(self, trigger, models):
        """A closed series ends the run's listing once it no longer trains."""
        if self.series in models and not self.running:
            self._forget()
        return DEREGISTER if self.series in models else None

    def describe(self):
        """One line for `cryotrans list` and `taskman list`."""
        state = self._state_text()
        if self.verdict is not None and not self.running:
            state += f'; {self.verdict.summary()}'
        return f'{self.where} {self.name}: {state}'

    __str__ = describe

    def _state_text(self):
        if self.unfinished:
            return f'stopped at step {self.step} of {self.total_steps} when the session was saved: unfinished'
        if self.state == FAILED:
            return f'failed after {self.step}/{self.total_steps} steps: {self.error}'
        if self.state == STOPPED:
            return f'stopped after {self.step}/{self.total_steps} steps, loss {self.last_loss:.5g}'
        return f'finished, {self.step} steps, loss {self.last_loss:.5g}'


class MorphRun(Run):
    """One training run and the MapSeries it refreshes; stays listed until the series closes."""

    def __init__(self, session, job, series, inputs, save_dir=None, report_every=50, color_regions=False,
                 claim=None):
        """job: the engine's MorphJob; claim: the save_dir's maps.FolderClaim, given up when the worker ends."""
        super().__init__(session, series, series.name)
        self._watched = [(m, '#' + m.id_string) for m in (*inputs, series)]   # ids are gone once closed
        self._claim = claim
        self.job = job
        self.save_dir = save_dir
        self.report_every = report_every
        self.color_regions = color_regions and (job.pair.regions is not None or job.auto)
        self.initial = inputs[0]
        self.shown_step = 0
        self.shown_state = None   # the checkpoint of the flow whose frames the series shows (a copy)
        self.bodies_shown = False     # partition auto's bodies told as they were found
        self._said = 0.0
        self._refreshing = 0.0      # seconds spent making frames for refreshes so far
        self._told = 0            # losses handed to listeners so far

    @property
    def training(self):
        """The job's training (partition auto: the one-field first stage, then the partitioned run)."""
        return self.job.training

    @property
    def step(self):
        return self.training.step

    @property
    def total_steps(self):
        return self.training.total_steps

    @property
    def last_loss(self):
        return _last_loss(self.training)

    @property
    def checkpoint_path(self):
        return None if self.save_dir is None else os.path.join(self.save_dir, 'flow.pt')

    def _starting(self):
        self.shown_state = self.training.checkpoint(kept=True)     # before the worker trains: no step is half done
        self._tell(self._event('started'))

    def run(self):
        """The worker thread: the engine's job, handing over frames every report_every steps, then the end."""
        try:
            result = self.job.run(self._progress, self._stop.is_set, self.save_dir, self.report_every,
                                  paths=self.color_regions)
            if result.body_lines and not self.bodies_shown:     # stopped before they were looked for
                self._post(self._show_bodies, result.body_lines, result.regions)
            self._post(self._end, result.frames, TaskState.FINISHED if result.finished else STOPPED, result.verdict,
                       result.motion_lines, self._region_paths(result.paths), result.flow)
        except CryoTransError as e:     # a diverged run: says what to change; the last good checkpoint is kept
            self.error = str(e)
            self._post(self._end, None, FAILED, None, [], None)
        except Exception as e:
            self.error = f'{type(e).__name__}: {e}'
            self._post(self._end, None, FAILED, None, [], None)
        finally:
            if self._claim is not None:
                self._claim.release()

    def _show_bodies(self, lines, regions):
        """Main thread, partition auto: log the bodies found and show their region map (coloured, as
        cryotrans partition makes one) beside the initial map, as soon as they are found."""
        for line in lines:
            self.session.logger.info(f'{self.name}: {line}')
        if regions is not None and not self.initial.deleted:
            from .regions import show_regions
            shown = show_regions(self.session, self.initial, regions)     # a new model: drawn regions are kept
            self.session.logger.info(f'{self.name}: the regions found are #{shown.id_string} (use them again with '
                                     f'partition #{shown.id_string})')

    def _event(self, kind, **more):
        """A RunEvent of this run as it stands (worker or main thread)."""
        t = self.training
        elapsed = t.elapsed
        going = t.step < t.total_steps
        left = t.clock.seconds_left(t.plan, t.step) if going else 0.0
        soonest = t.clock.seconds_left(t.plan, t.step, soonest=True) if going else 0.0
        stage = t.plan.stage_at(min(t.step, t.total_steps - 1)).loss
        return RunEvent(self, kind, t.step, t.total_steps, elapsed, left, stage=stage, soonest=soonest, **more)

    def _tell(self, event):
        """Main thread: fire the run trigger."""
        if self.session is not None:
            _run_triggers(self.session).activate_trigger(RUN_TRIGGER, event)

    def _progress(self, p):
        """Worker side (p: the job's Progress): frames every report_every steps, the status line and
        listeners at most once a second."""
        t = self.training
        if p.found:
            self.bodies_shown = True
            self._post(self._show_bodies, p.found, self.job.regions)
        if p.ended:
            self._post(self.session.logger.info, f'{self.name}: step {p.step}: {p.ended}')
        if p.begins:
            self._post(self.session.logger.info, f'{self.name}: {p.step} steps done, loss {p.loss:.5g}; now {p.begins}')
        if p.new_stage:
            self._post(self._tell, self._event('stage'))
        if p.step % self.report_every == 0 and p.step < p.total and refresh_due(self._refreshing, p.elapsed):
            began = time.perf_counter()
            frames = self.job.frames()
            self._post(self._show, frames, p.step, self._region_paths(), t.checkpoint(kept=True))
            self._refreshing += time.perf_counter() - began
        if p.step % self.report_every == 0 or time.monotonic() - self._said >= 1 or p.step == p.total:
            self._said = time.monotonic()
            self._post(self.session.logger.status,
                       f'{self.name}: step {p.step}/{p.total}, loss {p.loss:.5g}, {t.time_left_text()}')
            new = tuple(t.losses[self._told:p.step])
            self._told = p.step
            self._post(self._tell, self._event('progress', losses=new))

    def _region_paths(self, paths=None):
        """Worker side: each frame's particle positions and each particle's region, for colouring
        (paths: the Result's, when already made)."""
        if not self.color_regions:
            return None
        moving, path = self.training.paths() if paths is None else paths
        regions = np.repeat(np.arange(1, len(moving.sections) + 1), moving.sections)
        return [x.numpy() for x in path], regions

    def _show(self, frames, step, region_paths=None, state=None):
        """Main thread: copy the frames into the series' arrays in place, as map_filter does; state: the
        checkpoint they were made from, copied on the worker then (a session saved now keeps it)."""
        if self.series.deleted:
            return
        if state is not None:
            self.shown_state = state
        for v, values in zip(self.series.maps, frames):
            v.data.array[...] = values
            v.data.values_changed()
        if region_paths is not None:
            from .regions import color_frames_by_region
            color_frames_by_region(self.series, *region_paths)
        self.shown_step = step
        self._tell(self._event('frames'))

    def _end(self, frames, state, fit, motions, region_paths, flow=None):
        t = self.training
        self.end_time = datetime.datetime.now()
        if frames is not None:
            self._show(frames, t.step, region_paths)
        log = self.session.logger
        kept = '' if self.series.deleted else f'; {len(self.series.maps)} frames as #{self.series.id_string}'
        saved = f'; frames and flow.pt written to {self.save_dir}' if self.save_dir and frames is not None else ''
        if state == FAILED:
            self.failure = (f'{self.name}: failed after {t.step} of {t.total_steps} steps: {self.error}'
                            + ('' if self.series.deleted else f'; #{self.series.id_string} keeps the frames '
                               f'of step {self.shown_step}'))
            if not self.waited:         # else the command that waits raises it, which fails a script
                log.error(self.failure)
        else:
            done = (f'{t.step} steps' if state == TaskState.FINISHED else
                    f'stopped ({self._stop_reason}) after {t.step} of {t.total_steps} steps')
            self.verdict = fit
            self.flow = flow
            log.info(f'{self.name}: {done} in {t.elapsed:.1f} s, final loss {_last_loss(t):.5g}{kept}{saved}')
            (log.info if fit.better else log.warning)(f'{self.name}: {fit.summary()}')
            for line in motions:
                log.info(f'{self.name}: {line}')
        log.status('')
        self.state = state
        self._tell(self._event('ended'))
        if self.series.deleted:
            self._forget()

    def _models_removed(self, trigger, models):
        """Closing an input or the series stops the run; a closed series also ends its listing."""
        closed = [label for m, label in self._watched if m in models]
        if closed and self.running and not self._stop.is_set():
            self.stop(f'{", ".join(closed)} closed')
        return super()._models_removed(trigger, models)

    def _state_text(self):
        if self.running:
            return (f'running, step {self.step}/{self.total_steps}, loss {self.last_loss:.5g}' if self.training.losses
                    else f'running, step 0/{self.total_steps}, no loss yet')
        return super()._state_text()


def _last_loss(training):
    return training.losses[-1] if training.losses else math.nan
