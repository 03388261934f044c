"""The "cryotrans region" mouse mode: click on a map's surface to draw the region chosen
with `cryotrans partition #1 draw N`.

ChimeraX's own marker modes place into one marker set they choose; this mode places
into the set of the region being drawn, then updates the region map (every voxel goes
to the region of its nearest marker).  The placement is a plain function, so headless
tests call it with a pick; the mode itself is registered only with a GUI (bundle.py).
"""

from chimerax.mouse_modes import MouseMode

from .partition_command import DRAW_MODE, drawing, drawn_marker_set, drawn_marker_sets
from .regions import MARKER_RADIUS, region_color


def place_region_marker(session, volume, region, scene_xyz):
    """Add a marker for a region at a scene point (logged as the command that would do it), then
    remake the map's regions from all its drawn marker sets."""
    from chimerax.core.commands import run
    from chimerax.core.colors import color_name
    mset = drawn_marker_set(session, volume, region)
    rgba = region_color(region)
    marker = mset.create_marker(mset.scene_position.inverse() * scene_xyz, rgba, MARKER_RADIUS)
    xyz = ','.join(f'{c:.4g}' for c in scene_xyz)
    session.logger.info(f'marker #{mset.id_string} position {xyz} color {color_name(rgba)} radius {MARKER_RADIUS:g}',
                        is_html=False)
    sets = drawn_marker_sets(session, volume)
    if len(sets) > 1:
        run(session, f'cryotrans partition #{volume.id_string} markers '
                     + ' '.join('#' + m.id_string for m in sets))
    return marker


def picked_map_point(session, x, y):
    """(volume, scene point) of the map surface under window pixel x, y, or (None, None)."""
    from chimerax.map import PickedMap
    xyz1, xyz2 = session.main_view.clip_plane_points(x, y)
    if xyz1 is None or xyz2 is None:
        return None, None
    pick = session.main_view.picked_object_on_segment(xyz1, xyz2, max_transparent_layers=0)
    if not isinstance(pick, PickedMap):
        return None, None
    return pick.map, pick.position


class RegionMouseMode(MouseMode):
    """Click on the map being partitioned to add a marker to the region being drawn."""
    name = DRAW_MODE
    icon_file = None

    def mouse_down(self, event):
        state = drawing(self.session)
        if state is None:
            self.session.logger.status('choose a region first: cryotrans partition #1 draw 1')
            return
        volume, region = state
        picked, xyz = picked_map_point(self.session, *event.position())
        if picked is not volume:
            self.session.logger.status(f'click on the surface of #{volume.id_string} to draw region {region}')
            return
        place_region_marker(self.session, volume, region, xyz)
