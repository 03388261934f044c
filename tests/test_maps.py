import os

import mrcfile
import numpy as np
import pytest

from cryotrans_engine import Grid, MapError, OutputError, prepare_pair, read_map, resample, write_map
from helpers import blob


def test_write_then_read_keeps_values_voxel_size_and_origin(tmp_path):
    grid = Grid((6, 7, 8), (1.5, 2.0, 2.5), (-10.0, 3.0, 7.5))
    values = np.random.default_rng(0).random(grid.shape, dtype=np.float32)
    write_map(tmp_path / 'a.mrc', values, grid)
    back, g = read_map(tmp_path / 'a.mrc')
    assert np.array_equal(back, values)
    assert g == grid
    assert list(tmp_path.iterdir()) == [tmp_path / 'a.mrc']


def test_read_honours_the_axis_order_the_header_declares(tmp_path):
    values = np.random.default_rng(1).random((4, 5, 6), dtype=np.float32)   # [z, y, x]
    with mrcfile.new(tmp_path / 'zyx.mrc') as mrc:
        mrc.set_data(np.ascontiguousarray(values.transpose(2, 1, 0)))    # file sections along x
        mrc.header.mapc, mrc.header.mapr, mrc.header.maps = 3, 2, 1
        mrc.voxel_size = 2.0
    back, grid = read_map(tmp_path / 'zyx.mrc')
    assert grid.shape == (4, 5, 6)
    assert np.array_equal(back, values)


def test_origin_falls_back_to_start_indices(tmp_path):
    with mrcfile.new(tmp_path / 's.mrc') as mrc:
        mrc.set_data(np.zeros((3, 4, 5), np.float32))
        mrc.voxel_size = 2.0
        mrc.header.nxstart, mrc.header.nystart, mrc.header.nzstart = -2, 3, 5
    _, grid = read_map(tmp_path / 's.mrc')
    assert grid.origin == (-4.0, 6.0, 10.0)


def test_headers_whose_voxel_size_or_origin_make_no_sense(tmp_path):
    import pytest
    from cryotrans_engine import MapError
    for name, voxel, origin in (('nan.mrc', float('nan'), 0.0), ('inf.mrc', 2.0, float('inf')),
                                ('far.mrc', 1e9, 0.0)):
        with mrcfile.new(tmp_path / name) as mrc:
            mrc.set_data(np.ones((3, 4, 5), np.float32))
            mrc.voxel_size = voxel
            mrc.header.origin = (origin, 0.0, 0.0)
        with pytest.raises(MapError, match=r"header places it nowhere sensible .*volume #N voxelSize S"):
            read_map(tmp_path / name)
    with mrcfile.new(tmp_path / 'zero.mrc') as mrc:          # no cell: 1 Å voxels, as ChimeraX reads it
        mrc.set_data(np.ones((3, 4, 5), np.float32))
        mrc.voxel_size = 0.0
    assert read_map(tmp_path / 'zero.mrc')[1].voxel_size == (1.0, 1.0, 1.0)


def test_unreadable_file_is_a_map_error(tmp_path):
    bad = tmp_path / 'bad.mrc'
    bad.write_text('not a map')
    with pytest.raises(MapError, match='bad.mrc'):
        read_map(bad)


def test_resample_is_exact_for_a_linear_density_in_physical_space():
    src = Grid((20, 18, 16), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
    dst = Grid((10, 12, 9), (1.3, 1.7, 2.1), (5.0, 4.0, 6.0))

    def ramp(grid):
        nz, ny, nx = grid.shape
        ax = [o + s * np.arange(n) for o, s, n in zip(grid.origin, grid.voxel_size, (nx, ny, nz))]
        z, y, x = np.meshgrid(ax[2], ax[1], ax[0], indexing='ij')
        return (0.5 * x - 0.25 * y + 0.125 * z + 3).astype(np.float32)

    assert np.allclose(resample(ramp(src), src, dst), ramp(dst), atol=1e-4)


def test_resample_follows_a_rigid_placement():
    grid = Grid((16, 16, 16), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
    moved = blob(grid, (20, 15, 15))
    shift = np.array([[1, 0, 0, 6.0], [0, 1, 0, 0], [0, 0, 1, 0]])   # onto-frame xyz -> grid-frame xyz
    back = resample(moved, grid, grid, shift)
    assert np.allclose(back[..., :13], blob(grid, (14, 15, 15))[..., :13], atol=1e-5)   # x + 6 stays inside
    assert np.abs(back[..., 13:]).max() < 1e-6


def test_prepare_normalises_and_resamples_onto_the_initial_grid():
    g0 = Grid((20, 16, 24), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
    g1 = Grid((30, 24, 36), (1.4, 1.4, 1.4), (-3.0, -2.0, -1.0))
    target = 7 * blob(g1, (26, 16, 20)) - 0.5
    pair = prepare_pair(3 * blob(g0, (20, 16, 20)), g0, target, g1, 0.3, 0.7, log=lambda m: None)
    assert pair.target.shape == pair.initial.shape == pair.target_map.shape == g0.shape
    assert np.array_equal(pair.target_map, resample(target, g1, g0))     # as it is: no level, no scaling
    assert pair.initial.max() == pytest.approx(1.0)
    assert pair.peak == pytest.approx(3.0, rel=1e-3)
    assert pair.target.sum() == pytest.approx(pair.initial.sum(), rel=1e-5)
    assert pair.initial.min() == 0 and pair.target.min() == 0


def test_prepare_rejects_a_target_with_nothing_above_level():
    g = Grid((8, 8, 8), (1, 1, 1), (0, 0, 0))
    with pytest.raises(MapError, match='level1'):
        prepare_pair(blob(g, (4, 4, 4)), g, blob(g, (4, 4, 4)), g, 0.5, 5.0)


def test_prepare_rejects_a_target_outside_the_initial_box():
    g0 = Grid((8, 8, 8), (1, 1, 1), (0, 0, 0))
    g1 = Grid((8, 8, 8), (1, 1, 1), (100, 0, 0))
    with pytest.raises(MapError, match='overlap'):
        prepare_pair(blob(g0, (4, 4, 4), 2), g0, blob(g1, (104, 4, 4), 2), g1, 0.1, 0.1)


def test_maps_that_miss_each_other_name_both_boxes_and_a_voxel_size_mismatch():
    g0 = Grid((16, 16, 16), (1, 1, 1), (0, 0, 0))
    g1 = Grid((16, 16, 16), (4, 4, 4), (80, 80, 80))     # a header with 4 Å voxels: the box lies far off
    with pytest.raises(MapError, match=r'fills \(-0\.5, -0\.5, -0\.5\) to \(15\.5, 15\.5, 15\.5\) Å \(1 Å voxels\), the target '
                                       r'\(78\.0, 78\.0, 78\.0\) to \(142\.0, 142\.0, 142\.0\) Å \(4 Å voxels\); their voxel sizes '
                                       r'differ 4\.0-fold.*voxelSize'):
        prepare_pair(blob(g0, (8, 8, 8), 2), g0, blob(g1, (110, 110, 110), 8), g1, 0.1, 0.1, log=lambda m: None)


def test_a_folder_claimed_on_another_machine_is_refused_naming_it(tmp_path):
    """A shared disk (a cluster's): whether that machine's run lives cannot be told from here, so the
    folder stays refused, and the message says which file to delete if that run has ended."""
    from cryotrans_engine.maps import claim_folder
    (tmp_path / '.cryotrans-run').write_text('12345 node17.cluster cryotrans morph big.mrc\n')
    with pytest.raises(OutputError, match=r'is in use: cryotrans morph big.mrc \(process 12345 on node17.cluster\) '
                                       r'is writing .* delete .*\.cryotrans-run\)'):
        claim_folder(tmp_path)
    assert (tmp_path / '.cryotrans-run').read_text().startswith('12345 node17')       # left alone


def test_a_claim_is_held_until_released_and_a_second_in_this_process_is_refused(tmp_path):
    from cryotrans_engine.maps import claim_folder
    with claim_folder(tmp_path, 'run A'):
        with pytest.raises(OutputError, match='run A of this session'):
            claim_folder(tmp_path / '.', 'run B')
    assert not (tmp_path / '.cryotrans-run').exists()
    claim_folder(tmp_path, 'run B').release()


def test_a_skewed_cell_is_refused_not_read_as_rectangular(tmp_path):
    import mrcfile
    g = Grid((8, 8, 8), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
    write_map(tmp_path / 'm.mrc', np.ones(g.shape, np.float32), g)
    with mrcfile.open(tmp_path / 'm.mrc', 'r+') as mrc:
        mrc.header.cellb = (90.0, 90.0, 120.0)
    with pytest.raises(MapError, match=r'm.mrc is on a skewed grid \(cell angles 90, 90, 120°, not 90°\)'):
        read_map(tmp_path / 'm.mrc')
    with mrcfile.open(tmp_path / 'm.mrc', 'r+') as mrc:
        mrc.header.cellb = (0.0, 0.0, 0.0)                  # no angles given: read as rectangular, as ChimeraX does
    assert read_map(tmp_path / 'm.mrc')[1] == g


def test_written_maps_have_finite_header_statistics_and_follow_the_umask(tmp_path):
    import mrcfile
    g = Grid((8, 8, 8), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
    values = np.full(g.shape, 3e38, np.float32)
    values[0] = -3e38
    write_map(tmp_path / 'huge.mrc', values, g)
    with mrcfile.open(tmp_path / 'huge.mrc') as mrc:
        h = mrc.header
        assert all(np.isfinite(float(x)) for x in (h.dmin, h.dmax, h.dmean, h.rms)) and float(h.dmax) == float(np.float32(3e38))
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / 'huge.mrc').st_mode & 0o777 == 0o666 & ~umask


def test_a_file_of_zeros_says_it_holds_no_map_without_warnings(tmp_path):
    import warnings
    (tmp_path / 'zeros.mrc').write_bytes(bytes(8192))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        with pytest.raises(MapError, match=r'zeros.mrc holds no map: its header gives 0×0×0 voxels \(a file of zeros, '
                                           r'or one not written whole\): copy or save it again'):
            read_map(tmp_path / 'zeros.mrc')
