"""Which flow a command means: the flow a run left with its series (#3), or a flow.pt a run wrote.

Commands name a flow by the series `cryotrans morph` opened (the run may be one restored from a
session file) or by a checkpoint file, so a flow trained elsewhere (the command line, a cluster)
is used the same way.
"""

from chimerax.core.commands import Annotation, ModelArg, OpenFileNameArg
from chimerax.core.errors import UserError

from .run import pump, runs


class FlowArg(Annotation):
    """A cryotrans series (#N), or the path of a flow.pt."""
    name = 'a cryotrans series (#N) or a flow.pt file'

    @staticmethod
    def parse(text, session):
        if text.startswith('#'):
            return ModelArg.parse(text, session)
        return OpenFileNameArg.parse(text, session)

    @staticmethod
    def unparse(value, session=None):
        return value if isinstance(value, str) else value.atomspec


def flow_of(session, source):
    """The engine's TrainedFlow a FlowArg names, words naming it in messages (with the series' id), and
    its name (the run's, or the file's path) for a model's name, which must not hold an id."""
    if isinstance(source, str):
        from cryotrans_engine import TrainedFlow
        return TrainedFlow.load(source), source, source
    run = ended_run(session, source)
    return run.flow, f'{run.name} (#{run.series.id_string})', run.name


def ended_run(session, series):
    """The run whose flow a command uses: of the series given, or the only one there is."""
    pump(session)
    known = runs(session)
    if series is not None:
        known = [r for r in known if r.series is series]
        if not known:
            raise UserError(f'#{series.id_string} is not a cryotrans series of this session: give the series '
                            f'cryotrans morph opened (cryotrans list shows them), or a flow.pt')
    elif len(known) != 1:
        raise UserError('give the series whose flow to use: flow #N (cryotrans list shows the runs)'
                        if known else 'no cryotrans run in this session: run cryotrans morph first')
    run = known[0]
    spec = f'#{run.series.id_string}'
    if run.running:
        raise UserError(f'{run.name} ({spec}) is still training: wait for it to end, or cryotrans stop {spec} first')
    if run.flow is None:
        raise UserError(f'{run.name} ({spec}) ended without a flow ({run.error or "failed"})')
    if run.unfinished:
        session.logger.warning(f'{run.name} ({spec}) stopped at step {run.step} of {run.total_steps} when its '
                               f'session was saved: its flow is unfinished')
    return run
