"""tools/realsize_maps.py's judging mask and region map, on a few atoms (the real pairs need a download)."""

import numpy as np

import realsize_maps

ORIGIN = np.zeros(3)
VOXEL, SIZE = 1.5, 32


def _atoms():
    """Two clusters of carbon atoms 20 Å apart along x; the second one moves."""
    rng = np.random.default_rng(3)
    still = rng.normal((14, 24, 24), 2.0, (40, 3))
    moves = rng.normal((34, 24, 24), 2.0, (40, 3))
    xyz = np.vstack([still, moves])
    return xyz, np.full(len(xyz), 6.0), np.arange(len(xyz)) >= 40


def _at(values, xyz):
    i, j, k = np.round((np.asarray(xyz) - ORIGIN) / VOXEL).astype(int)
    return values[k, j, i]


def test_the_region_map_labels_each_part_where_its_density_is_and_nothing_far_from_both():
    xyz, z, moving = _atoms()
    labels = realsize_maps.parts(xyz, z, moving, ORIGIN, VOXEL, SIZE, 4.5)
    assert set(np.unique(labels)) == {0.0, 1.0, 2.0}
    assert _at(labels, (14, 24, 24)) == 1 and _at(labels, (34, 24, 24)) == 2
    assert _at(labels, (2, 2, 2)) == 0 and _at(labels, (24, 45, 45)) == 0


def test_the_judging_mask_is_one_on_the_moved_part_and_zero_away_from_it():
    xyz, z, moving = _atoms()
    mask = realsize_maps.moved_mask(xyz[moving], z[moving], ORIGIN, VOXEL, SIZE)
    assert mask.min() >= 0 and mask.max() == 1
    assert _at(mask, (34, 24, 24)) == 1
    assert _at(mask, (14, 24, 24)) < 0.05            # the part that stays is outside it
    assert 0 < np.count_nonzero(mask == 1) < mask.size // 10
