"""ChimeraX without PyTorch, or with a PyTorch that cannot use the GPU: the first command says what to type,
and `cryotrans install torch` installs the build this machine can use through ChimeraX's own pip."""

import os
import subprocess
import sys

import pytest

from cryotrans_engine import write_map
from helpers import blob, logged, run
from test_chimerax_morph import GRID, open_pair

LAUNCHER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tools', 'chimerax_run.py')


def _chimerax_without_pytorch(*commands):
    """Real headless ChimeraX in a child process in which `import torch` fails (it is set to None in
    sys.modules before ChimeraX starts: Python's own ImportError, as when torch is not installed)."""
    code = ('import runpy, sys\n'
            'sys.modules["torch"] = None\n'
            f'sys.argv = [{LAUNCHER!r}] + sys.argv[1:]\n'
            f'runpy.run_path({LAUNCHER!r}, run_name="__main__")\n')
    argv = [a for c in commands for a in ('--cmd', c)]
    return subprocess.run([sys.executable, '-c', code] + argv, capture_output=True, encoding='utf-8', timeout=300)


def test_without_pytorch_the_first_command_says_what_to_type_and_cryotrans_install_is_there(tmp_path):
    write_map(tmp_path / 'a.mrc', blob(GRID, (30.0, 0.0, 50.0)), GRID)
    result = _chimerax_without_pytorch(f'open {tmp_path / "a.mrc"}', 'cryotrans morph #1 to #1 steps 5')
    out = result.stdout + result.stderr
    assert result.returncode == 1, out[-2000:]
    assert 'cryotrans needs PyTorch, which this ChimeraX cannot import' in out
    assert "type  cryotrans install torch  in ChimeraX's command line" in out and 'restart ChimeraX' in out
    assert 'Traceback' not in out and 'BUG' not in out
    listed = _chimerax_without_pytorch('cryotrans list')
    assert listed.returncode == 1 and 'cryotrans needs PyTorch' in listed.stdout + listed.stderr
    planned = _chimerax_without_pytorch('cryotrans install torch dryRun true')
    out = planned.stdout + planned.stderr
    assert planned.returncode == 0, out[-2000:]
    assert 'would run: PYTHONUSERBASE=' in out and ' -m pip install --user ' in out and 'torch>=2' in out


def test_each_platform_gets_the_build_it_can_use():
    from chimerax.cryotrans.pytorch_install import INDEX, torch_build
    cases = [   # system, machine, NVIDIA driver, build asked for -> index (None: PyPI), words of why
        ('Linux', 'x86_64', None, 'auto', f'{INDEX}/cpu', 'no NVIDIA driver'),
        ('Linux', 'x86_64', (535, 104, 5), 'auto', f'{INDEX}/cu126', 'NVIDIA driver 535.104.5'),
        ('Linux', 'aarch64', (575, 51, 3), 'auto', f'{INDEX}/cu128', 'driver 575'),
        ('Linux', 'x86_64', (470, 82), 'auto', f'{INDEX}/cu118', 'driver 470'),
        ('Linux', 'x86_64', (390, 157), 'auto', f'{INDEX}/cpu', 'older than any PyTorch CUDA build needs'),
        ('Linux', 'x86_64', (535, 104, 5), 'cpu', f'{INDEX}/cpu', 'asked for'),
        ('Linux', 'x86_64', None, 'cuda', f'{INDEX}/cu126', 'no NVIDIA driver was found'),
        ('Windows', 'AMD64', (551, 86), 'auto', f'{INDEX}/cu126', 'driver 551'),
        ('Windows', 'AMD64', None, 'auto', f'{INDEX}/cpu', 'no NVIDIA driver'),
        ('Darwin', 'arm64', None, 'auto', None, 'MPS'),
        ('Darwin', 'x86_64', None, 'cpu', None, 'processor'),
        ('FreeBSD', 'amd64', None, 'auto', f'{INDEX}/cpu', 'no NVIDIA driver'),
    ]
    for system, machine, driver, build, index, why in cases:
        chosen = torch_build(system, machine, driver, build)
        assert chosen.index == index and why in chosen.why, (system, driver, build, chosen)
    for system, driver, message in [('Darwin', None, 'no CUDA build for macOS'),
                                    ('Linux', (390, 157), 'update the driver')]:
        with pytest.raises(ValueError, match=message):
            torch_build(system, 'x86_64', driver, 'cuda')


def test_pip_is_given_the_index_the_folder_and_chimeraxs_upgrade_strategy():
    from chimerax.cryotrans.pytorch_install import pip_arguments, torch_build
    cuda = pip_arguments(torch_build('Windows', 'AMD64', (551, 86)), per_user=True)
    assert cuda[:2] == ['install', '--user'] and cuda[-3:] == ['--index-url', 'https://download.pytorch.org/whl/cu126',
                                                               'torch>=2']
    assert 'only-if-needed' in cuda and '--upgrade' not in cuda
    mac = pip_arguments(torch_build('Darwin', 'arm64'), per_user=False, upgrade=True)
    assert '--user' not in mac and '--index-url' not in mac and '--upgrade' in mac


def test_the_nvidia_driver_is_read_from_either_kind_of_kernel_module_line():
    from chimerax.cryotrans.pytorch_install import driver_in_proc
    assert driver_in_proc('NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\n'
                          'GCC version:  gcc version 12.2.0') == (535, 104, 5)
    assert driver_in_proc('NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.15  Release Build  '
                          '(dvs-builder@U16-I3-B03-4-3)  Thu Jan 23 21:25:03 UTC 2025') == (570, 86, 15)
    assert driver_in_proc('no driver here') is None


@pytest.fixture
def offline_pip(tmp_path, monkeypatch):
    """A wheel index with no torch in it, and pip reading no configuration (so no other index or
    --find-links reaches it): ChimeraX's pip runs for real, offline, and finds nothing to install."""
    for name in [n for n in os.environ if n.startswith('PIP_')]:      # e.g. PIP_FIND_LINKS
        monkeypatch.delenv(name)
    monkeypatch.setenv('PIP_CONFIG_FILE', os.devnull)
    (tmp_path / 'index').mkdir()
    return (tmp_path / 'index').as_uri()


def test_a_dry_run_logs_chimeraxs_pip_with_the_build_and_the_folder_chimerax_looks_in(session):
    import platform, site
    from chimerax import app_dirs
    from chimerax.core.python_utils import chimerax_python_executable
    from chimerax.cryotrans.pytorch_install import nvidia_driver, torch_build
    line, text = logged(session, 'cryotrans install torch dryRun true')
    chosen = torch_build(platform.system(), platform.machine(), nvidia_driver())
    assert line.startswith(f'{chimerax_python_executable()} -m pip install --user ')
    assert line.endswith(f'--index-url {chosen.index} \'torch>=2\'')
    assert f'would run: PYTHONUSERBASE={app_dirs.user_data_dir} {line}' in text and chosen.why in text
    assert site.USER_SITE.startswith(app_dirs.user_data_dir)       # where --user puts it is where ChimeraX looks
    installed, text = logged(session, 'cryotrans install torch')            # this venv has PyTorch
    assert installed is None and 'is installed already' in text and 'cryotrans install torch upgrade true' in text


def test_pip_runs_for_real_and_its_failure_is_one_message(session, offline_pip):
    from chimerax.core.errors import UserError
    with pytest.raises(UserError) as e:
        run(session, f'cryotrans install torch upgrade true index {offline_pip} wait true')
    message = str(e.value)
    assert message.startswith('cryotrans install torch: pip failed (exit status 1); it said:')
    assert 'No matching distribution found for torch' in message and 'Traceback' not in message
    with pytest.raises(UserError, match='Invalid "build" argument: Should be one of .auto., .cpu., or .cuda.'):
        run(session, 'cryotrans install torch build rocm')
    with pytest.raises(UserError, match='invalid "package" argument: Should be .torch.'):
        run(session, 'cryotrans install numpy')


def test_without_waiting_pip_runs_in_a_thread_and_a_second_install_waits_its_turn(session, offline_pip):
    import time
    from chimerax.core.errors import UserError
    from chimerax.core.logger import StringPlainTextLog
    from chimerax.cryotrans import install_command
    with StringPlainTextLog(session.logger) as log:
        started = time.monotonic()
        run(session, f'cryotrans install torch upgrade true index {offline_pip} wait false')
        assert time.monotonic() - started < 2          # returned while pip runs
        with pytest.raises(UserError, match='an install is running already'):
            run(session, f'cryotrans install torch upgrade true index {offline_pip} wait false')
        while install_command._busy.locked() and time.monotonic() - started < 120:
            time.sleep(0.1)
        said = log.getvalue()
    assert 'pip failed (exit status 1)' in said and 'No matching distribution found for torch' in said


@pytest.fixture
def maps(tmp_path):
    write_map(tmp_path / 'initial.mrc', 3 * blob(GRID, (27.0, 0.0, 50.0)), GRID)
    write_map(tmp_path / 'target.mrc', blob(GRID, (33.0, 0.0, 50.0)), GRID)
    return tmp_path


def test_device_cuda_with_a_cpu_only_pytorch_is_one_message(session, maps):
    from chimerax.core.errors import UserError
    import torch
    if torch.cuda.is_available():
        pytest.skip('this PyTorch has CUDA')
    open_pair(session, maps)
    with pytest.raises(UserError, match=r'device cuda was asked for.*built for the processor only'):
        run(session, 'cryotrans morph #1 to #2 steps 2 device cuda')
    assert len(session.models.list()) == 2 + 2      # the two maps and their surfaces: no series opened
