"""`cryotrans morph #1 to #2`: train a flow from one map onto another and open its frames.

Thin: turns typed keywords into engine Settings, reads the maps where they sit in the
scene, runs the engine, and opens the trajectory as a volume series beside the inputs.
"""

import os

from chimerax.core.commands import (BoolArg, CmdDesc, EnumOf, FloatArg, ModelIdArg, NonNegativeIntArg,
                                    PositiveFloatArg, PositiveIntArg, SaveFolderNameArg)
from chimerax.core.errors import UserError
from chimerax.map import MapArg

from .engine import MapError, Settings, Training, correlation, prepare_pair
from .engine.cli import write_frames
from .engine.training import DEVICES, LOSSES
from .volumes import initial_to_target, map_values, open_series


def cryotrans_morph(session, initial, to=None, level0=None, level1=None, report_every=50, model_id=None,
                    save_dir=None, wait=False, **settings):
    """Train to completion on this thread, then add the trajectory as a MapSeries and return it."""
    target = to
    if model_id is not None and session.models.have_id(model_id):
        raise UserError('model #%s already exists; choose another modelId' % '.'.join(map(str, model_id)))
    if target is initial:
        raise UserError(f'the initial and target maps are the same map (#{initial.id_string}); '
                        'morph onto a map of the other state')
    if session.ui.is_gui and not wait:
        session.logger.info('cryotrans: training runs to the end before ChimeraX responds again '
                            '(background training comes in a later version)')
    level0 = initial.minimum_surface_level if level0 is None else level0   # None: no surface shown,
    level1 = target.minimum_surface_level if level1 is None else level1    # the engine picks one
    values0, grid0 = map_values(initial)
    values1, grid1 = map_values(target)
    try:
        pair = prepare_pair(values0, grid0, values1, grid1, level0, level1,
                            transform=initial_to_target(initial, target), log=session.logger.info)
        s = Settings(**{k: v for k, v in settings.items() if v is not None})
        training = Training(pair, s)
    except MapError as e:
        raise UserError(f'cryotrans morph: {e}') from e
    name = f'cryotrans #{initial.id_string} to #{target.id_string}'
    session.logger.info(f'{name}: {int((pair.initial > 0).sum())} voxels of #{initial.id_string} above '
                        f'level {pair.level0:.4g} move onto #{target.id_string} above level {pair.level1:.4g}; '
                        f'{s.steps} steps on {training.device}')
    def progress(step, steps, loss, elapsed):
        if step % report_every == 0 or step == steps:
            session.logger.status(f'{name}: step {step}/{steps}, loss {loss:.5g}, {elapsed:.0f} s')

    checkpoint = None
    if save_dir is not None:
        os.makedirs(save_dir, exist_ok=True)
        checkpoint = os.path.join(save_dir, 'flow.pt')
    training.run(progress, checkpoint_path=checkpoint, checkpoint_every=report_every)
    frames = training.frames()
    series = open_series(session, frames, initial, name, model_id)
    initial.display = False
    if save_dir is not None:
        write_frames(save_dir, frames, grid0)
    session.logger.info(
        f'{name}: {training.step} steps in {training.elapsed:.1f} s, final loss {training.losses[-1]:.5g}; '
        f'{len(frames)} frames as #{series.id_string}; correlation of the last frame with the target '
        f'{correlation(frames[-1] / pair.peak, pair.target):.4f}'
        + (f'; frames and flow.pt written to {save_dir}' if save_dir else ''))
    return series


morph_desc = CmdDesc(
    required=[('initial', MapArg)],
    keyword=[('to', MapArg),
             ('level0', FloatArg), ('level1', FloatArg),
             ('steps', PositiveIntArg), ('frames', PositiveIntArg),
             ('loss', EnumOf(LOSSES)), ('lr', PositiveFloatArg),
             ('width', PositiveIntArg), ('depth', PositiveIntArg),
             ('epsilon', PositiveFloatArg), ('sinkhorn_iterations', PositiveIntArg),
             ('bin', NonNegativeIntArg), ('device', EnumOf(DEVICES)), ('seed', NonNegativeIntArg),
             ('report_every', PositiveIntArg), ('model_id', ModelIdArg),
             ('save_dir', SaveFolderNameArg), ('wait', BoolArg)],
    required_arguments=['to'],
    synopsis='morph a map onto another state\'s map by a learnt flow, as a volume series')
