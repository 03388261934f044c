"""The initial and target maps made ready for training: one grid, thresholded, normalised."""

import hashlib
from dataclasses import dataclass

import numpy as np

from .levels import Levels, above_level, choose_levels, masks_kept
from .maps import Grid, MapError, normalise_pair, resample, same_grid
from .partition import labels_on_grid, region_labels


@dataclass
class MapPair:
    """What training needs: both maps on the initial map's grid, in the method's units."""
    initial: np.ndarray   # f0 / peak: its maximum is 1
    target: np.ndarray    # f1 on f0's grid, scaled to f0's mass
    grid: Grid
    peak: float           # the initial map's maximum above level: frames × peak are in its units
    levels: Levels        # each map's level, what it encloses (Å³, dust left out), how it was chosen
    target_map: np.ndarray = None   # the target on f0's grid as it is (no level): what refinement fits
    regions: np.ndarray = None      # int32 region labels 1…N of f0's voxels above level (0 elsewhere)

    level0 = property(lambda self: self.levels.level0)
    level1 = property(lambda self: self.levels.level1)
    coverage = property(lambda self: self.levels.coverage)   # what level0 encloses / what level1 encloses

    @property
    def region_count(self):
        """How many regions (velocity fields): 1 without a partition."""
        return 1 if self.regions is None else int(self.regions.max())

    def fingerprints(self):
        """Short hashes of the prepared maps (and regions), to tell whether a checkpoint belongs to them."""
        maps = [('initial', self.initial), ('target', self.target)]
        if self.regions is not None:
            maps.append(('regions', self.regions))
        return {name: hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16] for name, a in maps}


def check_maps(initial, target):
    """Refuse maps that no level can help (not 3D, NaN, constant, no positive density), saying why."""
    for name, values in (('initial', initial), ('target', target)):
        if values.ndim != 3 or min(values.shape) < 2:
            raise MapError(f'the {name} map must be a 3D grid at least 2 voxels on each side, got {values.shape}')
        if not np.isfinite(values).all():
            raise MapError(f'the {name} map has NaN or infinite values')
        top, bottom = float(values.max()), float(values.min())
        if top == bottom:
            raise MapError(f'the {name} map is constant (every voxel {top:.4g}): it shows no molecule; '
                           f'check the file')
        if top <= 0:
            raise MapError(f'the {name} map has no positive density (its values run from {bottom:.4g} to {top:.4g}): '
                           f'no level can help; if its contrast is inverted, scale it by -1 first '
                           f'(in ChimeraX: volume scale #N factor -1)')


def placed_target(target, grid1, grid0, transform=None):
    """The target as it is (no level) at the initial map's voxels, float32: where the noise floor
    reads the initial map's solvent, and what refinement fits.  The target array itself when it
    lies there already, so the masks found on it (levels.masks_kept) serve both."""
    if transform is None and same_grid(grid0, grid1):
        return np.asarray(target, np.float32)
    return np.asarray(resample(target, grid1, grid0, transform), np.float32)


def prepare_pair(initial, grid0, target, grid1, level0=None, level1=None, transform=None, log=print,
                 regions=None, regions_grid=None, target_on_initial=None):
    """Threshold both maps at their levels, bring the target onto the initial grid, normalise.

    Levels: numbers, levels.LevelSpec, None for the automatic rule (levels.py), or levels.MapLevel
    chosen already (choose_levels); each is logged with what it encloses, and each map's dust
    (small blobs off the molecule) is left out.  transform (3x4) takes the initial map's frame to
    the target's when they were placed apart; target_on_initial: placed_target's result, if the
    caller has it.  regions: a label map (partition.py) on the initial map's grid, or on
    regions_grid (placed in the initial map's frame), read there by nearest neighbour.
    """
    check_maps(initial, target)
    if target_on_initial is None:
        target_on_initial = placed_target(target, grid1, grid0, transform)
    with masks_kept():          # the level rule and the thresholding ask for the same molecule masks
        levels = choose_levels(initial, grid0.voxel_size, target, grid1.voxel_size, target_on_initial,
                               level0, level1)
        for i in (0, 1):
            log(f'level{i} {levels.words(i)}')
        level0, level1 = levels.level0, levels.level1
        f0 = above_level(initial, level0, grid0.voxel_size)
        f1 = above_level(target, level1, grid1.voxel_size)
    for name, values, level, value, full in (('initial', f0, 'level0', level0, initial),
                                              ('target', f1, 'level1', level1, target)):
        if values.max() <= 0:
            raise MapError(f'the {name} map has no density above {level} {value:.4g} (its maximum is '
                           f'{float(full.max()):.4g}); lower {level}, or use {level} auto')
        if np.count_nonzero(values) == values.size:
            raise MapError(f'{level} {value:.4g} is below every voxel of the {name} map (its minimum is '
                           f'{float(full.min()):.4g}): the whole box would be the molecule; raise {level}, or use '
                           f'{level} auto')
    if transform is not None or not same_grid(grid0, grid1):
        f1 = np.maximum(resample(f1, grid1, grid0, transform), 0)
        if f1.max() <= 0:
            raise MapError(_no_overlap(grid0, grid1, transform))
    labels = None
    if regions is not None:
        if regions_grid is not None and not same_grid(regions_grid, grid0):
            regions = labels_on_grid(regions, regions_grid, grid0)
        labels = region_labels(regions, f0 > 0)
    f0, f1, peak = normalise_pair(f0, f1)
    return MapPair(f0, f1, grid0, peak, levels, np.array(target_on_initial), labels)


def _no_overlap(grid0, grid1, transform):
    """Why the target is nowhere on the initial grid, in the terms of both headers."""
    v0, v1 = max(grid0.voxel_size), max(grid1.voxel_size)
    said = (f'the target map does not overlap the initial map\'s box: the initial map fills {grid0.box_text()} '
            f'({v0:g} Å voxels), the target {grid1.box_text()} ({v1:g} Å voxels)'
            + (' before its placement' if transform is not None else ''))
    ratio = max(v0, v1) / min(v0, v1)
    if ratio > 1.5:
        return (f'{said}; their voxel sizes differ {ratio:.1f}-fold: if a header is wrong, set the right voxel '
                f'size (in ChimeraX: volume #N voxelSize S), else place the maps over each other (fitmap)')
    return f'{said}; place them over each other first (e.g. with fitmap)'
