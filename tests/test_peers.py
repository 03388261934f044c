"""tools/peers.py: the `volume morph` timing in headless ChimeraX, and the MorphOT child process."""

import os
import sys

import numpy as np
import pytest

import peers
from cryotrans_engine import Grid, prepare_pair, read_map, write_map


def tiny_pair(tmp_path):
    grid = Grid((8, 8, 8), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
    a = np.zeros((8, 8, 8), np.float32)
    b = np.zeros((8, 8, 8), np.float32)
    a[2:4, 2:4, 2:4] = 1.0
    b[4:6, 3:5, 4:6] = 2.0
    paths = [str(tmp_path / 'a.mrc'), str(tmp_path / 'b.mrc')]
    for path, values in zip(paths, (a, b)):
        write_map(path, values, grid)
    return paths, grid, a, b


def test_volume_morph_computes_every_frame_and_ends_on_the_target(session, tmp_path):
    (p0, p1), *_ = tiny_pair(tmp_path)
    result = peers.time_volume_morph(session, p0, p1, frames=4, repeat=2, surfaces=True, level0=0.5, level1=1.0)
    assert result['fractions'] == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])
    assert result['last_vs_target'] < 1e-6
    assert len(result['times']) == 2 and result['seconds'] > 0
    assert len(session.models) == 0     # its maps and morphs are closed again


FAKE_UTILS = '''
import numpy as np
def convolutional_barycenter_cpu(Hv, reg, alpha, niter=1500):
    return alpha[0] * np.asarray(Hv[0], float) + alpha[1] * np.asarray(Hv[1], float) + reg * 0
'''


def fake_checkout(tmp_path, text):
    src = tmp_path / 'MorphOT' / 'otmorph-bundle' / 'src'
    src.mkdir(parents=True)
    (src / 'utils.py').write_text(text)
    return str(tmp_path / 'MorphOT')


def test_morphot_child_runs_one_barycentre_per_frame(tmp_path):
    paths, grid, a, b = tiny_pair(tmp_path)
    pair = prepare_pair(a, grid, b, grid, 0.5, 0.5, log=lambda m: None)
    out = tmp_path / 'out'
    out.mkdir()
    result = peers.time_morphot(fake_checkout(tmp_path, FAKE_UTILS), sys.executable, pair, 4, str(out))
    assert 'error' not in result, result
    assert result['frames'] == 5 and result['niter'] == 20 and result['reg'] == pytest.approx(8 / 60)
    assert result['weights'] == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])
    middle, _ = read_map(result['paths'][2])
    np.testing.assert_allclose(middle, 0.5 * pair.peak * (pair.initial + pair.target), atol=1e-5)


def test_morphot_child_reports_a_module_that_does_not_compile(tmp_path):
    paths, grid, a, b = tiny_pair(tmp_path)
    pair = prepare_pair(a, grid, b, grid, 0.5, 0.5, log=lambda m: None)
    result = peers.time_morphot(fake_checkout(tmp_path, 'def f(:\n'), sys.executable, pair, 2, str(tmp_path))
    assert result['error'].startswith('SyntaxError')
    assert os.path.basename(result['module']) == 'utils.py'
