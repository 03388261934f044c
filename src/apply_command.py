"""`cryotrans apply #3 to #6`: the motion a run learnt, applied to another map, as a new volume series.

The flow is a motion of its own box, so the other map (a differently sharpened or filtered map of
the initial state, a half map) moves as it is when it fills that box: in the map's own coordinates
and, with regions, on the same grid.  Another grid is refused unless `resample true` asks for the
map to be resampled onto the flow's grid first, which the log says.
"""

from chimerax.core.commands import BoolArg, CmdDesc, FloatArg, ModelIdArg
from chimerax.core.errors import UserError
from chimerax.map import MapArg

from cryotrans_engine import MapError
from .flows import FlowArg, flow_of
from .volumes import map_values, open_series


def cryotrans_apply(session, flow, to=None, level=None, resample=False, model_id=None):
    """Open the frames of map `to` moved along a flow (a series' or a flow.pt's); returns the series.

    level: the density above which the map's voxels move (default: the level shown; without one,
    the level the flow was trained at).
    """
    if model_id is not None and session.models.have_id(model_id):
        raise UserError('model #%s already exists; choose another modelId' % '.'.join(map(str, model_id)))
    trained, name, title = flow_of(session, flow)
    values, grid = map_values(to)
    spec = f'#{to.id_string}'
    fits = trained.fits(grid)
    if not fits and not resample:
        raise MapError(f'{spec} is not on the grid {name} was trained on ({trained.grid.box_text()}; {spec}: '
                       f'{grid.box_text()}): give resample true to resample {spec} onto that grid first, or '
                       f'apply it to a map on that grid')
    if level is None:
        level = trained.level0 if to.minimum_surface_level is None else to.minimum_surface_level
    frames = trained.frames(values, grid, level, resample=resample)
    series = open_series(session, frames, to, f'{title} applied to {to.name}', model_id,
                         None if fits else trained.grid)
    for v in series.maps:
        v.set_parameters(surface_levels=[level])
    resampled = '' if fits else (f' ({spec} resampled onto the flow\'s grid first: {trained.grid.shape[::-1]} '
                                 f'voxels of {trained.grid.voxel_size[0]:g} Å)')
    to.display = False
    session.logger.info(f'{spec} above level {level:.4g} moved along {name}{resampled}: {len(frames)} frames as '
                        f'#{series.id_string}')
    return series


apply_desc = CmdDesc(
    required=[('flow', FlowArg)],
    keyword=[('to', MapArg), ('level', FloatArg), ('resample', BoolArg), ('model_id', ModelIdArg)],
    required_arguments=['to'],
    synopsis='apply the flow of a cryotrans series (or a flow.pt) to another map, as a volume series')
