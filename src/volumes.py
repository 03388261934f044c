"""Between ChimeraX volumes and the engine: arrays plus a Grid in, a volume series out.

The engine knows arrays on regular grids in a map's own frame; ChimeraX knows
Volume models placed in a scene.  This module is the only place that knows both.
"""

from typing import NamedTuple

import numpy as np
from chimerax.core.errors import UserError

from cryotrans_engine import Grid, MapError, placed_target
from cryotrans_engine.partition import labels_on_grid


def map_values(v):
    """A map's full values as float32 [z, y, x] and the Grid they sit on (its own frame)."""
    d = v.data
    if not np.allclose(d.rotation, np.eye(3)):
        raise UserError(f'map #{v.id_string} has skewed or rotated grid axes, which cryotrans does not '
                        f'handle; resample it first (volume resample #{v.id_string} onGrid ...)')
    values = np.array(v.full_matrix(), dtype=np.float32)
    return values, Grid(values.shape, d.step, d.origin)


def map_grid(v):
    """The Grid a map's values sit on, in its own frame (without reading them)."""
    d = v.data
    return Grid(tuple(d.size[::-1]), d.step, d.origin)


def region_labels_on(initial, region_map):
    """A region map's labels on the initial map's grid, read where both sit in the scene."""
    values, grid = map_values(region_map)
    if np.any((values != np.rint(values)) | (values < 0)):
        raise MapError(f'#{region_map.id_string} is not a region map: its values must be 0, 1, 2, … '
                       f'(cryotrans partition makes one)')
    t = region_map.scene_position.inverse() * initial.scene_position
    return labels_on_grid(np.rint(values).astype(np.int32), grid, map_grid(initial), None if t.is_identity() else t.matrix)


def initial_to_target(initial, target):
    """3x4 matrix taking xyz in the initial map's frame to the target's, or None if they coincide.

    Maps moved in the scene (by hand or fitmap) are morphed where they are seen.
    """
    t = target.scene_position.inverse() * initial.scene_position
    return None if t.is_identity() else t.matrix


class ScenePair(NamedTuple):
    """Two maps as the engine takes them, read where they sit in the scene."""
    values: tuple                   # (initial, target) float32 arrays [z, y, x]
    grids: tuple                    # their Grids, each in its own frame
    transform: np.ndarray           # 3x4, the initial map's frame to the target's (initial_to_target), or None
    target_on_initial: np.ndarray   # the target at the initial map's voxels, as it is (placed_target)


def scene_pair(initial, target):
    """The ScenePair of an initial and a target volume."""
    (values0, grid0), (values1, grid1) = map_values(initial), map_values(target)
    transform = initial_to_target(initial, target)
    return ScenePair((values0, values1), (grid0, grid1), transform, placed_target(values1, grid1, grid0, transform))


def open_series(session, frames, initial, name, model_id=None, grid=None, last=None):
    """Add the frames as a MapSeries on the initial map's grid (or on grid, a Grid in its frame), shown
    like it, placed where it is; the frames named by frame_names (last: what the last frame is).

    Each frame gets its own copy of the values, which later refreshes overwrite in place.
    """
    from chimerax.map.volume import open_grids
    from chimerax.map_data import ArrayGridData
    d = initial.data
    origin, step = (d.origin, d.step) if grid is None else (grid.origin, grid.voxel_size)
    grids = [ArrayGridData(np.array(f, dtype=np.float32), origin=origin, step=step, name=n)
             for f, n in zip(frames, frame_names(len(frames), last))]
    (series,), _ = open_grids(session, grids, name, vseries=True, show_dialog=False)
    for v in series.maps:
        v.copy_settings_from(initial, copy_xform=False, copy_active=False, copy_zone=False)
        v.display = v is series.maps[0]
    if model_id is not None:
        series.id = model_id
    session.models.add([series])
    series.scene_position = initial.scene_position
    return series


def frame_names(count, last=None):
    """The frames' names in the Model Panel: their time along the flow, t=0 (the map as it starts) to t=1,
    which reads the same whatever model numbers the frames get (frame i of series #3 is #3.(i+1)).
    last, e.g. 'prediction', is added to the last frame's name."""
    names = [f't={i / max(count - 1, 1):.3g}' for i in range(count)]
    if last:
        names[-1] += f' ({last})'
    return names


def map_files(*volumes):
    """The files the maps were read from (none for maps made in the session): what a command must not
    write over."""
    paths = []
    for v in volumes:
        path = getattr(v.data, 'path', None)
        paths += [p for p in (path if isinstance(path, (list, tuple)) else [path]) if p]
    return paths
