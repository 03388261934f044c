import os
import sys

import pytest

# The test maps are tiny: one thread is fastest, and steady on a busy machine.
os.environ.setdefault('OMP_NUM_THREADS', '1')

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'tools'))
# The panel's Qt: ChimeraX's `Qt` module stood in by tools/qt_standin over PyQt6, drawn offscreen.
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'tools', 'qt_standin'))
os.environ.setdefault('QT_QPA_PLATFORM', 'offscreen')


def pytest_configure(config):
    # ChimeraX 1.7.1's own code uses numpy and array APIs that newer releases deprecate.
    config.addinivalue_line('filterwarnings', r'ignore::DeprecationWarning:chimerax\.(core|map_data)')


@pytest.fixture(scope='session')
def chimerax(tmp_path_factory):
    """The one headless ChimeraX session of this test process (a second cannot be made)."""
    from chimerax_run import start_session
    return start_session(str(tmp_path_factory.mktemp('chimerax-state')))


@pytest.fixture
def session(chimerax):
    """The ChimeraX session, emptied with `close session` after each test."""
    yield chimerax
    from chimerax.core.commands import run
    run(chimerax, 'close session', log=False)


@pytest.fixture(scope='session')
def qt_app():
    """The one QApplication of this test process (offscreen)."""
    from PyQt6.QtWidgets import QApplication
    return QApplication.instance() or QApplication([])
