"""The engine as a package of its own: one `pip install ./engine` in a fresh venv without ChimeraX gives
the working `cryotrans` command line (what a cluster node gets), and the bundle ships that same source."""

import glob
import os
import shutil
import subprocess
import venv
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINE = os.path.join(ROOT, 'engine')
ADK = os.path.join(ROOT, 'data', 'adk')


@pytest.fixture(scope='module')
def fresh(tmp_path_factory):
    """A new venv with only the engine installed from (a copy of) its folder (and PyTorch's CPU build, pinned so
    pip does not fetch a CUDA build: the package itself asks for torch>=2.0)."""
    where = tmp_path_factory.mktemp('fresh')
    source = shutil.copytree(ENGINE, where / 'engine', ignore=shutil.ignore_patterns('build', '*.egg-info',
                                                                                  '__pycache__'))
    venv.create(where / 'venv', with_pip=True)
    bin_dir = where / 'venv' / 'bin'
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV')}
    install = subprocess.run([str(bin_dir / 'python'), '-m', 'pip', 'install', '--quiet', '--disable-pip-version-check',
                              'torch==2.13.0', str(source)], env=env, capture_output=True, encoding='utf-8', cwd=str(where))
    assert install.returncode == 0, install.stderr[-3000:]
    return bin_dir, env, where


def test_the_engine_installs_alone_and_never_needs_chimerax(fresh):
    bin_dir, env, where = fresh
    code = ('import sys, cryotrans_engine, numpy; print(numpy.__version__); '
            'import importlib.metadata as m; assert m.metadata("cryotrans-engine")["License"] == "MIT"; '
            'assert any(f.name == "LICENSE" and "MIT License" in f.read_text() for f in m.files("cryotrans-engine")); '
            'import importlib.util; sys.exit(importlib.util.find_spec("chimerax") is not None)')
    done = subprocess.run([str(bin_dir / 'python'), '-c', code], env=env, capture_output=True, encoding='utf-8',
                          cwd=str(where))
    assert done.returncode == 0, done.stderr
    assert os.path.exists(bin_dir / 'cryotrans')


def test_the_installed_cli_morphs_writes_frames_and_scores_them(fresh):
    bin_dir, env, where = fresh
    out = where / 'run'
    morph = subprocess.run([str(bin_dir / 'cryotrans'), 'morph', os.path.join(ADK, 'adk_open_3A.mrc'),
                            os.path.join(ADK, 'adk_closed_7A.mrc'), '--out', str(out), '--steps', '6',
                            '--frames', '3', '--resolution', '7', '--refine', '2'],
                           env=env, capture_output=True, encoding='utf-8', cwd=str(where))
    assert morph.returncode == 0, morph.stderr
    assert 'finished 4 frames' in morph.stdout and 'correlation with the target' in morph.stdout
    assert sorted(os.listdir(out)) == (['flow.pt'] + [f'frame_{i:02d}.mrc' for i in range(4)]
                                       + ['loss.log', 'open_in_chimerax.py'])
    fsc = subprocess.run([str(bin_dir / 'cryotrans'), 'fsc', str(out / 'frame_03.mrc'),
                          os.path.join(ADK, 'adk_closed_3A.mrc')], env=env, capture_output=True, encoding='utf-8')
    assert fsc.returncode == 0 and 'FSC(0.5)' in fsc.stdout, fsc.stderr


def test_the_bundle_wheel_ships_the_engine_source_unchanged():
    wheel, = glob.glob(os.path.join(ROOT, 'dist', 'chimerax_cryotrans-*.whl'))
    shipped = zipfile.ZipFile(wheel)
    sources = sorted(glob.glob(os.path.join(ENGINE, 'cryotrans_engine', '*.py')))
    assert len(sources) > 10
    for path in sources:
        name = 'cryotrans_engine/' + os.path.basename(path)
        with open(path, 'rb') as f:
            assert shipped.read(name) == f.read(), name
    assert not any(n.startswith('chimerax/cryotrans/engine/') for n in shipped.namelist())
