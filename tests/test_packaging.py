"""The bundle as ChimeraX builds and installs it: described once (pyproject.toml), built by ChimeraX's own
build backend (cx_pep517) whichever standard way is used, with its own metadata and licence."""

import email.parser
import glob
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest
from packaging.requirements import Requirement

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCHER = os.path.join(ROOT, 'tools', 'chimerax_run.py')
SOURCES = ('pyproject.toml', 'LICENSE', 'src', 'docs', 'engine')       # what a build reads
PAGES = ('docs/user/commands/cryotrans.html', 'docs/user/cryotrans_method.html', 'docs/user/tools/cryotrans.html')


def project():
    with open(os.path.join(ROOT, 'pyproject.toml'), 'rb') as f:
        return tomllib.load(f)


def metadata(wheel):
    """The METADATA of a wheel, as an email message, and the wheel's file names."""
    z = zipfile.ZipFile(wheel)
    name, = [n for n in z.namelist() if n.endswith('.dist-info/METADATA')]
    return email.parser.Parser().parsestr(z.read(name).decode('utf-8')), z


@pytest.fixture(scope='module')
def built():
    """The wheel `make` built (pip wheel . into dist/) and installed."""
    wheel, = glob.glob(os.path.join(ROOT, 'dist', 'chimerax_cryotrans-*.whl'))
    return metadata(wheel)


def test_the_bundle_needs_a_chimerax_it_runs_in_and_not_pypis_pytorch(built):
    md, _ = built
    needs = {Requirement(r).name: Requirement(r).specifier for r in md.get_all('Requires-Dist')}
    # PyTorch: `cryotrans install torch` picks the build; scipy and psutil ship with ChimeraX's app
    assert set(needs) == {'ChimeraX-Core', 'mrcfile', 'scipy', 'psutil'}
    core = needs['ChimeraX-Core']
    assert all(v in core for v in ('1.7', '1.7.1', '1.8', '1.11')), core   # 1.7: first with tasks.TaskState
    assert not any(v in core for v in ('1.1', '1.6.1', '2.0')), core      # 1.6: Python 3.9, no TaskState
    assert md['Requires-Python'] == '>=3.9'


def test_the_bundle_names_its_own_authors_and_licence_and_no_other_projects_address(built):
    md, z = built
    assert md['Name'] == 'ChimeraX-CryoTRANS' and md['Author'] == 'CryoTRANS for ChimeraX developers'
    assert md['License'] == 'MIT' and 'License :: OSI Approved :: MIT License' in md.get_all('Classifier')
    assert not any(md.get(field) for field in ('Home-page', 'Project-URL', 'Author-email'))
    text = str(md) + ''.join(md.get_all('Classifier'))
    assert 'mxhulab' not in text and '.invalid' not in text and 'Educational' not in text
    licence, = [n for n in z.namelist() if n.endswith(('.dist-info/licenses/LICENSE', '.dist-info/LICENSE'))]
    with open(os.path.join(ROOT, 'LICENSE'), 'rb') as f:
        assert z.read(licence) == f.read()


def test_the_toolshed_sees_the_bundle_its_tool_and_every_command(built):
    md, _ = built
    classifiers = md.get_all('Classifier')
    assert 'ChimeraX :: Bundle :: Volume Data :: 1,1 :: chimerax.cryotrans ::  :: true' in classifiers
    commands = sorted(c.split(' :: ')[2] for c in classifiers if c.startswith('ChimeraX :: Command :: '))
    assert commands == sorted(project()['chimerax']['command']) and 'cryotrans install' in commands
    assert any(c.startswith('ChimeraX :: Tool :: CryoTRANS :: Volume Data :: ') for c in classifiers)


def test_the_wheel_ships_the_help_pages_where_chimeraxs_help_looks(built):
    _, z = built
    names = set(z.namelist())
    for page in PAGES:
        assert 'chimerax/cryotrans/' + page in names, page
    assert {'cryotrans_engine/__init__.py', 'chimerax/cryotrans/bundle.py'} <= names
    assert not any(n.startswith(('build/', 'src/', 'tests/', 'tools/')) for n in names)


def _clean(tree):
    for left in ('build', 'dist', 'src/docs', 'ChimeraX_CryoTRANS.egg-info'):
        shutil.rmtree(os.path.join(tree, left), ignore_errors=True)


def _contents(wheel):
    return sorted(n for n in zipfile.ZipFile(wheel).namelist() if '.dist-info/' not in n)


def test_pip_wheel_python_m_build_and_devel_build_make_the_same_bundle_from_a_clean_copy(tmp_path, built):
    tree = str(tmp_path / 'bundle')
    os.makedirs(tree)
    for name in SOURCES:
        source = os.path.join(ROOT, name)
        if os.path.isdir(source):       # not what an earlier build left: src/docs, build, egg-info
            left = ('docs', 'build', '*.egg-info') if name == 'src' else ()
            shutil.copytree(source, os.path.join(tree, name), ignore=shutil.ignore_patterns('__pycache__', *left))
        else:
            shutil.copy(source, tree)
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PIP_REQUIRE_VIRTUALENV')}
    ways = {
        'pip wheel': [sys.executable, '-m', 'pip', 'wheel', '--quiet', '--no-deps', '--no-build-isolation',
                      '-w', 'dist', '.'],
        # ChimeraX's own Python has ChimeraX-BundleBuilder as a distribution; this venv has it inside `chimerax`
        'python -m build': [sys.executable, '-m', 'build', '--wheel', '--no-isolation', '--skip-dependency-check'],
        'devel build': [sys.executable, LAUNCHER, '--cmd', f'cd {tree}', '--cmd', 'devel build .'],
    }
    expected = _contents(built[1].filename)
    for way, command in ways.items():
        _clean(tree)
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, encoding='utf-8', timeout=300)
        assert done.returncode == 0, (way, done.stdout[-2000:], done.stderr[-2000:])
        wheel, = glob.glob(os.path.join(tree, 'dist', '*.whl'))
        assert _contents(wheel) == expected, way
        assert metadata(wheel)[0].get_all('Requires-Dist') == built[0].get_all('Requires-Dist'), way
