"""An atomic model carried along a trained flow: every atom, each by its region's field, at each frame,
its bonds and angles kept (restraints.py) unless asked not to.  The command line and ChimeraX's
`cryotrans move` both call this, so they move a model the same way and say the same of it."""

import numpy as np

from .restraints import keep_geometry


def carry(flow, xyz, bonds=None, every_frame=True):
    """(frames, regions): the atoms (N, 3 Å, the initial map's coordinates) at t = 0, 1/M, ..., 1 (or only
    at 1 without every_frame), and each atom's region.  bonds: bonded atom pairs (i, j) to keep the
    fitted model's 1-2 and 1-3 distances with; None: the flow's positions as they are."""
    regions = flow.point_regions(xyz)
    times = [k / flow.frame_count for k in range(flow.frame_count + 1)] if every_frame else [1.0]
    frames = [flow.move(xyz, t, regions) for t in times]
    if bonds is not None:
        frames = [xyz if t == 0 else keep_geometry(xyz, f, bonds) for t, f in zip(times, frames)]
    return frames, regions


def carried_words(xyz, frames, regions, region_count, bonds=None):
    """How far the atoms moved, per region when there are several, and the bonds kept."""
    shift = np.linalg.norm(frames[-1] - xyz, axis=1)
    per_region = ''
    if region_count > 1:
        counts = np.bincount(regions, minlength=region_count + 1)[1:]
        per_region = ' (' + ', '.join(f'region {r + 1}: {n}' for r, n in enumerate(counts)) + ' atoms)'
    kept = f'; its {len(bonds)} bonds kept at their lengths, and its angles' if bonds is not None else ''
    return f'{per_region}: {shift.mean():.2f} Å on average, {shift.max():.2f} Å at most{kept}'
