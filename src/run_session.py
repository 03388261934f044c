"""Runs in session files: each run saved with its series, and listed and used again when restored.

`save s.cxs` keeps, for each run whose series is open, what `cryotrans list` says of it and its
flow as the bytes of the flow.pt it would write (the engine's checkpoint: weights, optimiser,
settings, grid, levels, regions).  `open s.cxs` makes each a SavedRun beside its series, so
`cryotrans list` shows it and `cryotrans move`, `cryotrans apply` and `cryotrans morph ... resume #N`
use its flow.  A run still training is saved with the flow whose frames its series shows (the copy
its worker made at that refresh, never weights in the middle of a step) and comes back unfinished.

session.tasks could save the runs themselves (Task.SESSION_SAVE), but ChimeraX 1.7 restores tasks
under their saved ids without moving its id counter past them, so the next run would take a
restored run's id and replace it there; a state manager of our own saves them instead, and only
when there is a run to save (a session without one does not need this bundle to open).
"""

import math

from chimerax.core.state import StateManager
from chimerax.core.tasks import TaskState
from chimerax.core.triggerset import DEREGISTER

from .run import FAILED, STOPPED, Run, pump, runs

VERSION = 1
_STATES = {'finished': TaskState.FINISHED, 'stopped': STOPPED, 'failed': FAILED, 'unfinished': STOPPED}


def keep_runs_in_sessions(session):
    """Have the session's runs saved in its session files (once a run starts)."""
    if getattr(session, 'cryotrans_runs', None) is None:
        session.cryotrans_runs = RunsInSession(session)


class RunsInSession(StateManager):
    """The session's runs in its session files; holds nothing itself (session.tasks has the runs)."""

    def __init__(self, session):
        self.session = session
        session.triggers.add_handler('begin save session', lambda *_: pump(session))  # the latest frames

    def include_state(self):
        return bool(_saved(self.session))

    def take_snapshot(self, session, flags):
        return {'version': VERSION, 'runs': [_record(r) for r in _saved(session)]}

    @classmethod
    def restore_snapshot(cls, session, data):
        try:
            restored = [SavedRun(session, record) for record in data['runs'] if record['series'] is not None]
        except ImportError as e:        # the series come back without their runs
            from .pytorch_install import missing_message
            session.logger.warning(f'cryotrans runs are not restored: {missing_message(e)}')
            restored = []

        def tell(*_):
            _tell_restored(session, restored)
            return DEREGISTER
        session.triggers.add_handler('end restore session', tell)    # once the series have their ids
        return getattr(session, 'cryotrans_runs', None) or cls(session)

    def reset_state(self, session):
        """Nothing to reset: a run's listing ends when the reset closes its series."""


def _saved(session):
    return [r for r in runs(session) if not r.series.deleted]


def _record(run):
    """What a session file keeps of a run: plain values, its series by reference, its flow as bytes."""
    record = {'series': run.series, 'name': run.name, 'step': run.step, 'total': run.total_steps,
              'loss': run.last_loss, 'error': run.error,
              'verdict': None if run.verdict is None else list(run.verdict),
              'flow': None if run.flow is None else run.flow.to_bytes()}
    if run.running:         # the flow whose frames the series holds, as the worker copied it at that refresh
        from cryotrans_engine.checkpoint import checkpoint_bytes
        state = run.shown_state
        losses = state['losses']
        return {**record, 'state': 'unfinished', 'step': int(state['step']),
                'loss': float(losses[-1]) if len(losses) else math.nan, 'flow': checkpoint_bytes(state)}
    state = 'unfinished' if run.unfinished else next(k for k, v in _STATES.items() if v == run.state)
    return {**record, 'state': state}


class SavedRun(Run):
    """A run restored from a session file: its series, what `cryotrans list` said of it, and its flow."""

    def __init__(self, session, record):
        from cryotrans_engine import CryoTransError, TrainedFlow
        from cryotrans_engine.verdict import Verdict
        super().__init__(session, record['series'], record['name'])
        self.step, self.total_steps, self.last_loss = record['step'], record['total'], record['loss']
        self.error = record['error']
        self.verdict = None if record['verdict'] is None else Verdict(*record['verdict'])
        self.unfinished = record['state'] == 'unfinished'
        if record['flow'] is not None:
            try:
                self.flow = TrainedFlow.from_bytes(record['flow'], f'the flow of {self.name} in the session file')
            except CryoTransError as e:
                self.error = str(e)
        self.state = _STATES[record['state']]


def _tell_restored(session, restored):
    """Log each restored run: an unfinished one as a warning that says how to train it on."""
    for r in restored:
        if r.series.deleted:
            continue
        spec = f'#{r.series.id_string}'
        if r.unfinished:
            session.logger.warning(f'{r.describe()}; {spec} holds its frames and flow of step {r.step} (to train it '
                                   f'on: cryotrans morph <initial map> to <target map> resume {spec})')
        elif r.flow is not None:
            session.logger.info(f'{r.describe()}; its flow is restored with {spec} (cryotrans move, cryotrans apply '
                                f'and cryotrans morph ... resume {spec} use it)')
        else:
            session.logger.info(r.describe())
