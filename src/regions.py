"""Between ChimeraX objects and region labels: markers, atoms, masks, label maps, a plane.

A partition is a region map: a label volume on the initial map's grid (0 no region,
1…N regions) that `cryotrans morph … partition #N` reads.  This module turns what a
user has in the scene into such labels and shows them, by colouring the initial map's
surface with ChimeraX's own zone colouring; the engine never sees a ChimeraX object.
"""

import numpy as np
from chimerax.core.errors import UserError

from cryotrans_engine import MapError
from cryotrans_engine.partition import labels_on_grid
from .volumes import map_grid, map_values

# Region colours (RGBA), region 1 first; past the last they repeat.
PALETTE = np.array([(70, 130, 180, 255), (255, 165, 0, 255), (60, 179, 113, 255), (220, 20, 60, 255),
                    (147, 112, 219, 255), (255, 215, 0, 255), (0, 206, 209, 255), (205, 133, 63, 255),
                    (255, 105, 180, 255), (128, 128, 0, 255)], dtype=np.uint8)
MARKER_RADIUS = 1.5   # Å, of markers placed for drawn regions


def region_color(region):
    """The RGBA (0-255) colour of a region number (1, 2, …)."""
    return PALETTE[(region - 1) % len(PALETTE)]


def voxel_centres(volume):
    """xyz (in the volume's own frame) of every voxel centre, in [z, y, x] raster order."""
    d = volume.data
    nx, ny, nz = d.size
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing='ij')
    ijk = np.stack([i.ravel(), j.ravel(), k.ravel()], 1).astype(np.float32)
    return d.ijk_to_xyz_transform.transform_points(ijk)


def _in_map_frame(volume, scene_points):
    return volume.scene_position.inverse().transform_points(np.asarray(scene_points, dtype=np.float64))


def labels_from_points(volume, scene_points, point_regions, max_distance):
    """Each voxel labelled with the region of its nearest point within max_distance (Å), else 0."""
    from chimerax.geometry import find_closest_points
    points = _in_map_frame(volume, scene_points).astype(np.float32)
    centres = voxel_centres(volume)
    labels = np.zeros(len(centres), np.int32)
    i1, _, nearest = find_closest_points(centres, points, max_distance)
    labels[i1] = np.asarray(point_regions, np.int32)[nearest]
    return labels.reshape(volume.data.size[::-1])


def labels_from_markers(volume, marker_sets):
    """Region i (1, 2, … in the order given) for the voxels nearest a marker of set i."""
    points, regions = [], []
    for r, mset in enumerate(marker_sets, start=1):
        xyz = mset.atoms.scene_coords
        if len(xyz) == 0:
            raise UserError(f'marker set #{mset.id_string} has no markers: place some on #{volume.id_string} '
                            f'for region {r}, or leave the set out')
        outside = _outside(volume, xyz)
        if outside.any():
            raise UserError(f'{int(outside.sum())} marker(s) of #{mset.id_string} lie outside the box of '
                            f'#{volume.id_string}: move them onto the map')
        points.append(xyz)
        regions.append(np.full(len(xyz), r))
    if not points:
        raise UserError('no marker sets given: place markers for each region (cryotrans partition ... draw 1)')
    diagonal = float(np.linalg.norm(np.array(volume.data.size) * np.array(volume.data.step)))
    return labels_from_points(volume, np.concatenate(points), np.concatenate(regions), 2 * diagonal)


def _outside(volume, scene_points):
    """Which points lie outside the volume's box (half a voxel past the outer centres)."""
    ijk = volume.data.xyz_to_ijk_transform.transform_points(_in_map_frame(volume, scene_points))
    size = np.array(volume.data.size)
    return ((ijk < -0.5) | (ijk > size - 0.5)).any(1)


def labels_from_atoms(volume, atoms, distance):
    """One region: the voxels within `distance` Å of the atoms (1 there, 0 elsewhere)."""
    if len(atoms) == 0:
        raise UserError('no atoms given for the region: name them, e.g. #2:30-59')
    labels = labels_from_points(volume, atoms.scene_coords, np.ones(len(atoms)), distance)
    if not labels.any():
        raise UserError(f'no voxel of #{volume.id_string} lies within {distance:g} Å of the {len(atoms)} atoms: '
                        f'fit the model into the map first (fitmap), or raise range')
    return labels


def labels_from_masks(volume, masks):
    """One region per 0/1 mask (value > 0 inside), in the order given, read onto the volume's grid."""
    out = np.zeros(volume.data.size[::-1], np.int32)
    for r, m in enumerate(masks, start=1):
        on = _on_grid(volume, m, lambda values: (values > 0).astype(np.int32)) > 0
        if not on.any():
            raise UserError(f'mask #{m.id_string} holds no voxel inside #{volume.id_string}')
        overlap = on & (out > 0)
        if overlap.any():
            other = masks[int(np.bincount(out[overlap]).argmax()) - 1]
            raise UserError(f'masks #{other.id_string} and #{m.id_string} overlap in {int(overlap.sum())} voxels: '
                            f'a voxel can be in one region only; make the masks disjoint')
        out[on] = r
    return out


def labels_from_index_map(volume, index_map):
    """An index map's values as the regions (0 none), e.g. as Segger's `segger exportmask` writes it."""
    return _on_grid(volume, index_map, lambda values: np.rint(values).astype(np.int32))


def _on_grid(volume, other, convert):
    """Another map's values, converted to labels, on the volume's grid by nearest neighbour."""
    values, grid = map_values(other)
    try:
        return labels_on_grid(convert(values), grid, map_grid(volume), _transform(volume, other))
    except MapError as e:
        raise MapError(f'#{other.id_string}: {e}') from e


def _transform(volume, other):
    """3 × 4 matrix from the volume's frame to another model's, or None if they coincide."""
    t = other.scene_position.inverse() * volume.scene_position
    return None if t.is_identity() else t.matrix


def labels_from_plane(volume, point, normal):
    """Two regions either side of a plane (scene point and normal): 1 behind it, 2 in front."""
    n = np.asarray(normal, dtype=np.float64)
    if np.linalg.norm(n) == 0:
        raise UserError('the plane\'s normal must not be 0,0,0')
    rotation = volume.scene_position.inverse().zero_translation()
    n_map = rotation.transform_vector(n)
    p_map = _in_map_frame(volume, [point])[0]
    side = (voxel_centres(volume) - p_map) @ n_map
    labels = np.where(side >= 0, 2, 1).astype(np.int32).reshape(volume.data.size[::-1])
    if labels.min() == labels.max():
        raise UserError(f'the plane does not cut the box of #{volume.id_string}: move it through the map')
    return labels


def check_regions(volume, labels, level):
    """Each region must hold density above the map's level: say which does not."""
    values, _ = map_values(volume)
    above = values >= level
    count = int(labels.max())
    held = np.bincount(labels[above].ravel(), minlength=count + 1)
    present = np.bincount(labels.ravel(), minlength=count + 1)
    for r in range(1, count + 1):
        if present[r] == 0:
            raise UserError(f'region {r} is empty')
        if held[r] == 0:
            raise UserError(f'region {r} holds no density of #{volume.id_string} above level {level:.4g}: '
                            f'draw it over the molecule, or lower the level')
    return held[1:]


def region_map_of(session, volume):
    """The region map made for a map in this session (or restored with it), or None."""
    from chimerax.map import Volume
    for m in session.models.list(type=Volume):
        if getattr(m, 'cryotrans_regions_of', None) is volume:
            return m
    name = region_map_name(volume)
    for m in session.models.list(type=Volume):     # after a session restore the name tells
        if m.name == name and tuple(m.data.size) == tuple(volume.data.size):
            m.cryotrans_regions_of = volume
            return m
    return None


def region_map_name(volume):
    return f'{volume.name} regions'


def show_regions(session, volume, labels, region_map=None, model_id=None):
    """Put labels into the volume's region map (made on its grid if there is none), hide it,
    and colour the volume's surface by region; returns the region map."""
    values = labels.astype(np.float32)
    if region_map is not None and tuple(region_map.data.size) == tuple(volume.data.size):
        region_map.data.array[...] = values
        region_map.data.values_changed()
    else:
        if region_map is not None:
            session.models.close([region_map])
        from chimerax.map.volume import open_grids
        from chimerax.map_data import ArrayGridData
        d = volume.data
        grid = ArrayGridData(values, origin=d.origin, step=d.step, name=region_map_name(volume))
        (region_map,), _ = open_grids(session, [grid], region_map_name(volume), show_dialog=False)
        if model_id is not None:
            region_map.id = model_id
        session.models.add([region_map])
        region_map.scene_position = volume.scene_position
    region_map.cryotrans_regions_of = volume
    region_map.display = False
    color_by_region(volume, labels)
    return region_map


def color_by_region(volume, labels, level=None):
    """Colour the volume's surfaces by the region of the nearest labelled voxel (zone colouring)."""
    from chimerax.surface.colorzone import color_zone
    volume.update_drawings()
    flat = labels.ravel()
    inside = np.nonzero(flat)[0]
    if len(inside) == 0:
        return
    points = volume.scene_position.transform_points(voxel_centres(volume)[inside].astype(np.float64))
    colors = PALETTE[(flat[inside] - 1) % len(PALETTE)]
    reach = 2.0 * float(max(volume.data.step))
    for surface in volume.surfaces:
        color_zone(surface, points, colors, reach, sharp_edges=True)


COLOR_POINTS = 60000   # at most this many particles colour a frame (every k-th of them)


def color_frames_by_region(series, paths, regions):
    """Colour each frame of a partitioned run's series by the region of the nearest moved particle.

    paths: each frame's particle positions (N × 3, Å in the initial map's frame, which the series
    shares); regions: each particle's region (1…).  Frames not shown yet take their colours when
    their surfaces are made (zone colouring updates itself).
    """
    from chimerax.surface.colorzone import color_zone
    every = max(1, len(regions) // COLOR_POINTS)
    colors = PALETTE[(np.asarray(regions)[::every] - 1) % len(PALETTE)]
    for v, xyz in zip(series.maps, paths):
        points = v.scene_position.transform_points(np.asarray(xyz, dtype=np.float64)[::every])
        reach = 2.0 * float(max(v.data.step)) * every ** (1 / 3)
        for surface in v.surfaces:
            color_zone(surface, points, colors, reach)
