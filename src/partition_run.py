"""`cryotrans partition #1 auto to #2` in the background: a worker trains the first stage of a morph onto
#2 with one field and finds the rigid bodies of its motion (the engine's MorphJob.find_regions); the main
thread shows them as #1's region map.

The hand-over is a morph run's (run.Background): the status line tells the steps, `cryotrans stop` (or
closing either map) stops it and no region map is made then, `cryotrans list` lists it while it
looks, and the command's `wait true` (the default without a GUI) returns once the map is shown.
"""

import datetime
import time

import numpy as np
from chimerax.core.errors import UserError
from chimerax.core.tasks import TaskState

from cryotrans_engine import CryoTransError
from .run import FAILED, STOPPED, Background

FINISHED = TaskState.FINISHED


class PartitionRun(Background):
    """partition auto's search for the bodies of #1's motion towards #2; listed until it ends."""

    def __init__(self, session, job, volume, target, show):
        """job: the engine's MorphJob (auto); show(labels): main thread, makes, logs and returns the region map."""
        super().__init__(session, f'cryotrans partition {volume.name} auto to {target.name}')
        self.job = job
        self.volume, self.target = volume, target
        self.steps = job.search_steps
        self.region_map = None    # the region map made once the bodies are found
        self._show = show
        self._watched = [(m, '#' + m.id_string) for m in (volume, target)]
        self._said = 0.0
        self._handler = session.triggers.add_handler('remove models', self._models_removed)

    def run(self):
        """The worker: the first stage and the search, then the labels over the whole box (for colouring)."""
        try:
            self.job.find_regions(self._progress, self._stop.is_set)
            labels = None if self.job.bodies is None else box_labels(self.job)
            self._post(self._end, labels, FINISHED if labels is not None else STOPPED,
                       list(self.job.body_lines))
        except CryoTransError as e:     # a diverged first stage: says what to change
            self.error = str(e)
            self._post(self._end, None, FAILED, [])
        except Exception as e:
            self.error = f'{type(e).__name__}: {e}'
            self._post(self._end, None, FAILED, [])

    def _progress(self, p):
        """Worker side: the status line, at most once a second."""
        if time.monotonic() - self._said >= 1 or p.found:
            self._said = time.monotonic()
            left = self.job.search_time_left_text()
            self._post(self.session.logger.status, f'{self.name}: step {p.step}/{self.steps}, loss {p.loss:.5g}'
                                                   + (f', {left}' if left else ''))

    def _end(self, labels, state, lines):
        """Main thread: log what was found and show the region map; a stopped search makes none."""
        self.end_time = datetime.datetime.now()
        log, t = self.session.logger, self.job.training
        for line in lines:
            log.info(f'{self.name}: {line}')
        if state == STOPPED:
            log.info(f'{self.name}: stopped ({self._stop_reason}) after {t.step} of {self.steps} steps; no region '
                     f'map made')
        elif state == FINISHED and self.volume.deleted:
            state = STOPPED
            log.info(f'{self.name}: {self._watched[0][1]} was closed; no region map made')
        elif state == FINISHED:
            try:
                self.region_map = self._show(labels)
            except UserError as e:
                self.error, state = str(e), FAILED
        if state == FAILED:
            self.failure = f'{self.name}: failed after {t.step} of {self.steps} steps: {self.error}'
            if not self.waited:         # else the command that waits raises it
                log.error(self.failure)
        log.status('')
        self.session.triggers.remove_handler(self._handler)
        self.state = state
        self._forget()

    def _models_removed(self, trigger, models):
        """Closing either map stops the search."""
        closed = [label for m, label in self._watched if m in models]
        if closed and self.running and not self._stop.is_set():
            self.stop(f'{", ".join(closed)} closed')

    def stops_with(self, models):
        return self.volume in models

    def describe(self):
        """One line for `cryotrans list` and `taskman list`."""
        t = self.job.training
        return (f'{self._watched[0][1]} {self.name}: looking for bodies, step {t.step}/{self.steps}'
                + (f', loss {t.losses[-1]:.5g}' if t.losses else ''))

    __str__ = describe


def box_labels(job):
    """The bodies a job found as labels over the whole box (each voxel the body of the nearest particle),
    so that the map is coloured at any level; one body: every voxel region 1."""
    from cryotrans_engine.partition import grow_labels
    found = job.regions if job.regions is not None else (job.pair.initial > 0).astype(np.int32)
    return grow_labels(found, np.ones(found.shape, bool), int(found.max()))
