"""`cryotrans stop [#N]` and `cryotrans list`: the background runs (and partition auto while it looks for
bodies), seen and ended from the command line."""

from chimerax.core.commands import CmdDesc, ModelsArg
from chimerax.core.errors import UserError

from .run import background, pump


def cryotrans_stop(session, series=None):
    """Stop the runs training these series, or partition auto looking at these maps (all when none given),
    and wait for their last step.

    Waiting a step keeps the command's promise: when it returns, the frames so far are shown
    and the checkpoint is written.
    """
    pump(session)
    running = [r for r in background(session) if r.running and (series is None or r.stops_with(series))]
    if not running:
        if series is not None:
            raise UserError('no cryotrans run is training ' + ', '.join('#' + m.id_string for m in series))
        session.logger.info('cryotrans: no run is training')
    for r in running:
        r.stop()
    for r in running:
        r.pump(until_done=True)


def cryotrans_list(session):
    """Log each run of the session with its state; pumps first, so the states are current."""
    pump(session)
    listed = background(session)
    session.logger.info('\n'.join(r.describe() for r in listed) if listed else 'cryotrans: no runs')


stop_desc = CmdDesc(optional=[('series', ModelsArg)],
                    synopsis='stop cryotrans training runs (and partition auto), keeping their frames so far')
list_desc = CmdDesc(synopsis='list cryotrans training runs and their state')
