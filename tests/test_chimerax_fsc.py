"""`cryotrans fsc` in real ChimeraX 1.7.1 (headless), driven by command lines: maps compared
where they sit in the scene, a model simulated by molmap, the curve as a PNG, bad input refused."""

import os

import numpy as np
import pytest

from cryotrans_engine import FSC, Grid, compare_maps, read_map, write_map
from helpers import blob, logged, run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADK = os.path.join(ROOT, 'data', 'adk')
GRID = Grid((20, 20, 20), (2.0, 2.0, 2.0), (10.0, -20.0, 30.0))
CENTRE = np.array((30.0, 0.0, 50.0))       # xyz Å: the middle of GRID
AWAY = np.array((6.0, 0.0, 0.0))           # three voxels along x


def two_blobs(grid, centre):
    """A big blob and a small one beside it: a map with a shape, so a shift shows."""
    return 3 * blob(grid, centre) + blob(grid, centre + (0, 8, 0), sigma=2.5)


@pytest.fixture
def maps(tmp_path):
    """a.mrc; b.mrc: the same density 6 Å further along x, on a grid 6 Å further too (its file
    says it sits 6 Å away); mask.mrc: soft weights 0..1 around the big blob, on another grid."""
    write_map(tmp_path / 'a.mrc', two_blobs(GRID, CENTRE), GRID)
    moved = Grid(GRID.shape, GRID.voxel_size, tuple(np.add(GRID.origin, AWAY)))
    write_map(tmp_path / 'b.mrc', two_blobs(moved, CENTRE + AWAY), moved)
    coarse = Grid((12, 12, 12), (3.0, 3.0, 3.0), (12.0, -18.0, 32.0))
    write_map(tmp_path / 'mask.mrc', np.clip(blob(coarse, CENTRE, sigma=5) / 0.4, 0, 1), coarse)
    return tmp_path


def test_maps_moved_in_the_scene_are_compared_where_they_sit(session, maps):
    run(session, f'open {maps / "a.mrc"}')
    run(session, f'open {maps / "b.mrc"}')
    apart, text = logged(session, 'cryotrans fsc #1 to #2')
    assert isinstance(apart, FSC) and apart.correlation < 0.9
    assert text.startswith("FSC of #1 with #2, read at #1's voxels where they sit: FSC(0.5) ")
    run(session, 'move x -6 models #2 coordinateSystem #1')                       # #2's density now sits on #1's
    together, text = logged(session, 'cryotrans fsc #1 to #2')
    assert together.correlation == pytest.approx(1, abs=1e-5)
    assert together.resolution(0.5) == pytest.approx(4.0)       # Nyquist of 2 Å voxels
    assert 'FSC(0.5) 4.00 Å (Nyquist: above 0.5 at every shell)' in text and 'correlation 1.0000' in text
    a, grid = read_map(maps / 'a.mrc')         # the same figures as the engine's (and the command line's)
    b, grid_b = read_map(maps / 'b.mrc')
    assert apart.resolution(0.5) == pytest.approx(compare_maps(a, grid, b, grid_b).resolution(0.5))


def test_a_mask_in_the_scene_weighs_the_comparison(session, maps):
    run(session, f'open {maps / "a.mrc"}')
    run(session, f'open {maps / "b.mrc"}')
    run(session, f'open {maps / "mask.mrc"}')
    run(session, 'move x -6 models #2 coordinateSystem #1')
    run(session, 'move y 8 models #2 coordinateSystem #1')       # now #2's big blob sits on #1's small one
    whole = run(session, 'cryotrans fsc #1 to #2')
    inside, text = logged(session, 'cryotrans fsc #1 to #2 mask #3')
    assert inside.masked and 'FSC of #1 with #2 within mask #3, read at' in text and '(within the mask)' in text
    assert inside.correlation != pytest.approx(whole.correlation, abs=0.01)
    assert inside.resolution(0.5) != pytest.approx(whole.resolution(0.5), abs=0.1)


def test_a_model_is_compared_at_a_resolution_as_molmap_simulates_it(session):
    """The open AdK map against the model it was simulated from and against the closed model."""
    run(session, f'open {os.path.join(ADK, "adk_open_3A.mrc")}')
    run(session, f'open {os.path.join(ADK, "adk_open.pdb")}')
    run(session, f'open {os.path.join(ADK, "adk_closed.pdb")}')
    own, text = logged(session, 'cryotrans fsc #1 model #2 resolution 3')
    assert "FSC of #1 with model #2 at 3 Å (simulated by molmap on #1's grid: molmap #2 3 onGrid #1), read" in text
    assert [m.id_string for m in session.models.list() if '.' not in m.id_string] == ['1', '2', '3']  # none left
    run(session, 'molmap #2 3 onGrid #1')
    same = run(session, 'cryotrans fsc #1 to #4')
    assert np.allclose(own.curve, same.curve) and own.correlation == pytest.approx(same.correlation)
    assert own.resolution(0.5) == pytest.approx(3.0) and own.correlation > 0.9     # its own model: Nyquist
    other = run(session, 'cryotrans fsc #1 model #3 resolution 3')
    assert other.resolution(0.5) > 8 and other.correlation < 0.7                    # the other state's
    assert run(session, 'cryotrans fsc #1 model #2 resolution 8').correlation < own.correlation - 0.1
    _, text = logged(session, 'cryotrans fsc #1 model #2:1-100 resolution 3')
    assert "FSC of #1 with 1520 atoms of #2 at 3 Å (simulated by molmap on #1's grid), read" in text


def test_the_plot_is_a_png_of_the_curve(session, maps, tmp_path):
    run(session, f'open {maps / "a.mrc"}')
    run(session, f'open {maps / "b.mrc"}')
    path = tmp_path / 'curve.png'
    _, text = logged(session, f'cryotrans fsc #1 to #2 plot {path}')
    assert text.rstrip().endswith(f'; curve saved to {path}')
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    import matplotlib.image
    height, width, _ = matplotlib.image.imread(path).shape
    assert (width, height) == (640, 420)


@pytest.mark.parametrize('command, message', [
    ('cryotrans fsc #1', r'compare with one thing: a map \(cryotrans fsc #1 to #2\) or an atomic model'),
    ('cryotrans fsc #1 to #2 model #4 resolution 3', 'compare with one thing: .*, not both'),
    ('cryotrans fsc #1 model #4', 'give the resolution to simulate the model at'),
    ('cryotrans fsc #1 model #9 resolution 3', 'the model has no atoms: give a structure'),
    ('cryotrans fsc #1 to #2 resolution 3', 'resolution is for a model'),
    ('cryotrans fsc #1 to #2 plot curve.pdf', 'plot saves a PNG image: give a file name ending in .png'),
    ('cryotrans fsc #1 to #2 mask #3', r'cryotrans fsc: mask #3 runs from 0 to 2, but a mask holds weights'),
    ('cryotrans fsc #1 to #5', 'cryotrans fsc: #5 is all zero: it shows nothing to correlate'),
    ('cryotrans fsc #1 to #2 plot /no/such/folder/c.png', 'the plot cannot be saved to /no/such/folder/c.png'),
])
def test_bad_input_is_one_user_error(session, maps, command, message):
    from chimerax.core.errors import UserError
    write_map(maps / 'two.mrc', 2 * blob(GRID, CENTRE), GRID)
    write_map(maps / 'zero.mrc', np.zeros(GRID.shape, np.float32), GRID)
    for name in ('a', 'b', 'two'):
        run(session, f'open {maps / name}.mrc')
    run(session, f'open {os.path.join(ADK, "adk_open.pdb")}')
    run(session, f'open {maps / "zero.mrc"}')
    with pytest.raises(UserError, match=message):
        run(session, command)


def test_maps_that_do_not_overlap_where_they_sit_are_refused(session, maps):
    from chimerax.core.errors import UserError
    run(session, f'open {maps / "a.mrc"}')
    run(session, f'open {maps / "b.mrc"}')
    run(session, 'move x 500 models #2 coordinateSystem #1')
    with pytest.raises(UserError, match=r"cryotrans fsc: #2 does not overlap #1 where they sit: none of its "
                                        r"density falls in #1's box \(.*\); place one on the other first"):
        run(session, 'cryotrans fsc #1 to #2')
