"""`cryotrans partition #1 …`: split the initial map into regions that move each as one body.

Thin: each source keyword turns ChimeraX objects into labels (regions.py) and puts them
into #1's region map, which `cryotrans morph #1 to #2 partition #N` reads; `auto to #2` asks
the engine for the rigid bodies of the motion towards #2 (domains.py), in the background as a
morph trains (partition_run.py).
"""

import weakref

from chimerax.atomic import AtomsArg
from chimerax.core.commands import (BoolArg, CmdDesc, EnumOf, Float3Arg, ModelIdArg, ModelsArg, NoArg, Or,
                                    PositiveFloatArg, PositiveIntArg)
from chimerax.core.errors import UserError
from chimerax.map import MapArg, MapsArg

from . import regions

DRAW_MODE = 'cryotrans region'        # the bundle's mouse mode (region_mouse.py)
DRAW_BINDING = f'mousemode rightMode "{DRAW_MODE}"'   # run by `draw` with a GUI
_drawing = weakref.WeakKeyDictionary()   # session -> (map, region) being drawn


def cryotrans_partition(session, volume, atoms=None, range=3.0, masks=None, index_map=None, plane=None,
                        normal=None, markers=None, draw=None, auto=None, to=None, count=None, resolution=None,
                        wait=None, region_map=None, new=False, model_id=None):
    """Make or extend #1's region map from one source; or choose the region the mouse draws.
    auto: the rigid bodies of the motion towards the map `to` (the first stage of a morph, trained in the
    background; wait, the default without a GUI, returns once the region map is shown)."""
    given = [name for name, value in (('atoms', atoms), ('masks', masks), ('indexMap', index_map),
                                      ('plane', plane), ('markers', markers), ('draw', draw), ('auto', auto))
             if value is not None]
    if len(given) != 1:
        raise UserError('cryotrans partition: give one source of regions: atoms, masks, indexMap, plane, '
                        'markers, auto to #N, or draw N to draw region N with the mouse'
                        + (f' (got {", ".join(given)})' if given else ''))
    if auto is None and any(v is not None for v in (to, count, resolution, wait)):
        raise UserError('to, count, resolution and wait go with auto: cryotrans partition #1 auto to #2')
    if draw is not None:
        return choose_drawn_region(session, volume, draw)
    current = region_map or (None if new else regions.region_map_of(session, volume))
    if current is not None and tuple(current.data.size) != tuple(volume.data.size):
        raise UserError(f'#{current.id_string} is not on the grid of #{volume.id_string}')
    earlier = None if current is None else current.full_matrix().astype('int32')
    if atoms is not None:
        labels = _added(earlier, regions.labels_from_atoms(volume, atoms, range))
    elif masks is not None:
        labels = _added(earlier, regions.labels_from_masks(volume, masks))
    elif index_map is not None:
        labels = regions.labels_from_index_map(volume, index_map)
    elif plane is not None:
        labels = regions.labels_from_plane(volume, *_plane(session, plane, normal))
    elif auto is not None:
        return _find_regions(session, volume, to, count, resolution, wait, current, model_id)
    else:
        labels = regions.labels_from_markers(volume, _marker_sets(markers))
    return _shown(session, volume, labels, current, model_id)


def _shown(session, volume, labels, current, model_id):
    """Labels checked and shown as #1's region map (current: the one they replace), said in the log."""
    level = _level(volume)
    held = regions.check_regions(volume, labels, level)
    result = regions.show_regions(session, volume, labels, current, model_id)
    session.logger.info(f'#{result.id_string} {result.name}: {len(held)} regions on the grid of #{volume.id_string}; '
                        f'voxels above level {level:.4g}: '
                        + ', '.join(f'region {r} {n}' for r, n in enumerate(held, start=1))
                        + f'; use it with cryotrans morph #{volume.id_string} to ... partition #{result.id_string}')
    return result


def _find_regions(session, volume, target, count, resolution, wait, current, model_id):
    """partition auto: the first stage of a morph onto the target trained in the background with one field,
    and the rigid bodies of its motion (the engine's domains.py) shown as the region map when found
    (partition_run.py); returns it when waited for."""
    if target is None:
        raise UserError('partition auto reads the motion towards the target map: cryotrans partition '
                        f'#{volume.id_string} auto to #N')
    if target is volume:
        raise UserError(f'the initial and target maps are the same map (#{volume.id_string})')
    from cryotrans_engine import MorphJob, Settings
    from .map_levels import morph_pair
    from .partition_run import PartitionRun
    pair = morph_pair(session.logger, volume, target, (None, None))
    job = MorphJob(pair, Settings(resolution=resolution or 0.0), auto=True, count=count)

    def show(labels):
        return _shown(session, volume, labels, None if current is None or current.deleted else current, model_id)
    task = PartitionRun(session, job, volume, target, show)
    if wait is None:
        wait = not session.ui.is_gui
    session.logger.info(f'{task.name}: the first {task.steps} steps of a morph onto #{target.id_string} with one '
                        f'field, on {job.training.device}; the rigid bodies of its motion become the regions of '
                        f'#{volume.id_string}' + ('' if wait else ' (cryotrans stop stops it)'))
    task.start()
    if not wait:
        return None
    task.wait()
    return task.region_map


def _added(earlier, new):
    """New regions (labels 1, 2, …) numbered after the earlier ones, on the voxels those leave free."""
    if earlier is None or earlier.max() == 0:
        return new
    out = earlier.copy()
    free = (earlier == 0) & (new > 0)
    if not free.any():
        raise UserError('the new region lies wholly inside earlier regions; start over with new true')
    out[free] = new[free] + earlier.max()
    return out


def _plane(session, plane, normal):
    """(scene point, normal) from `plane x,y,z normal a,b,c` or `plane clip` (the near clip plane)."""
    if plane == 'clip':
        clip = session.main_view.clip_planes.find_plane('near') if session.main_view else None
        if clip is None:
            raise UserError('there is no near clip plane: turn one on (clip near) or give plane x,y,z normal a,b,c')
        return clip.plane_point, clip.normal
    if normal is None:
        raise UserError('a plane needs its normal too: plane x,y,z normal a,b,c')
    return plane, normal


def _marker_sets(models):
    from chimerax.markers import MarkerSet
    sets = [m for m in models if isinstance(m, MarkerSet)]
    if len(sets) != len(models):
        raise UserError('markers takes marker sets, one per region (e.g. markers #5,6)')
    return sets


def _level(volume):
    """The level shown, else the engine's half-height level (cryotrans morph's level0 depends on the target too)."""
    level = volume.minimum_surface_level
    if level is None:
        from cryotrans_engine import half_height_level
        from .volumes import map_values
        values, grid = map_values(volume)
        level = half_height_level(values, grid.voxel_size)
    return level


def drawn_marker_set(session, volume, region, create=True):
    """The marker set of a region drawn on a map: '<map name> region N'."""
    from chimerax.markers import MarkerSet
    name = f'{volume.name} region {region}'
    for m in session.models.list(type=MarkerSet):
        if m.name == name:
            return m
    if not create:
        return None
    mset = MarkerSet(session, name)
    session.models.add([mset])
    return mset


def drawn_marker_sets(session, volume):
    """The drawn regions' marker sets of a map, region 1 first, up to the first missing one."""
    sets, region = [], 1
    while (m := drawn_marker_set(session, volume, region, create=False)) is not None:
        sets.append(m)
        region += 1
    return sets


def choose_drawn_region(session, volume, region):
    """Make region N (or a new one) the one the mouse mode draws on this map."""
    if region == 'new':
        region = len(drawn_marker_sets(session, volume)) + 1
    elif region > len(drawn_marker_sets(session, volume)) + 1:
        raise UserError(f'draw regions in order: the next new region of #{volume.id_string} is '
                        f'{len(drawn_marker_sets(session, volume)) + 1}')
    mset = drawn_marker_set(session, volume, region)
    _drawing[session] = (volume, region)
    if session.ui.is_gui:
        from chimerax.core.commands import run
        run(session, DRAW_BINDING)
        how = 'right-click on the map to place markers'
    else:
        how = (f'without a GUI, place markers with marker #{mset.id_string} position x,y,z, '
               f'then cryotrans partition #{volume.id_string} markers ...')
    session.logger.info(f'drawing region {region} of #{volume.id_string} into marker set #{mset.id_string}: {how}')
    return mset


def drawing(session):
    """(map, region) being drawn in this session, or None."""
    state = _drawing.get(session)
    if state is None or state[0].deleted:
        return None
    return state


partition_desc = CmdDesc(
    required=[('volume', MapArg)],
    keyword=[('atoms', AtomsArg), ('range', PositiveFloatArg), ('masks', MapsArg), ('index_map', MapArg),
             ('plane', Or(EnumOf(['clip']), Float3Arg)), ('normal', Float3Arg), ('markers', ModelsArg),
             ('draw', Or(EnumOf(['new']), PositiveIntArg)), ('auto', NoArg), ('to', MapArg),
             ('count', PositiveIntArg), ('resolution', PositiveFloatArg), ('wait', BoolArg),
             ('region_map', MapArg), ('new', BoolArg),
             ('model_id', ModelIdArg)],
    synopsis='split a map into regions, each moved as one rigid body by cryotrans morph')
