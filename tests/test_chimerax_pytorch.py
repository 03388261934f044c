"""ChimeraX without PyTorch, or with a PyTorch that cannot use the GPU: the first command says what to type."""

import os
import subprocess
import sys

import pytest

from cryotrans_engine import write_map
from helpers import blob, run
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


def test_without_pytorch_the_first_command_says_what_to_type(tmp_path):
    write_map(tmp_path / 'a.mrc', blob(GRID, (30.0, 0.0, 50.0)), GRID)
    result = _chimerax_without_pytorch(f'open {tmp_path / "a.mrc"}', 'cryotrans morph #1 to #1 steps 5')
    out = result.stdout + result.stderr
    assert result.returncode == 1, out[-2000:]
    assert 'cryotrans needs PyTorch, which this ChimeraX cannot import' in out
    assert "type  pip install torch  in ChimeraX's command line, then restart ChimeraX" in out
    assert 'download.pytorch.org/whl/cpu' in out and sys.executable in out      # this platform: Linux
    assert 'Traceback' not in out and 'BUG' not in out
    listed = _chimerax_without_pytorch('cryotrans list')
    assert listed.returncode == 1 and 'cryotrans needs PyTorch' in listed.stdout + listed.stderr


def test_the_advice_names_each_platforms_build():
    from chimerax.cryotrans.pytorch_install import install_advice
    assert 'CPU build' in install_advice('Linux') and '/whl/cpu' in install_advice('Linux')
    assert '/whl/cu126' in install_advice('Windows') and 'processor only' in install_advice('Windows')
    assert 'MPS' in install_advice('Darwin') and '--index-url' not in install_advice('Darwin')
    assert install_advice('Plan9').startswith("type  pip install torch")


def test_a_cpu_only_pytorch_on_a_machine_with_an_nvidia_gpu_is_said():
    """This machine has no NVIDIA GPU: its presence is given at the boundary where it is read
    (has_nvidia_gpu), and the PyTorch is this venv's real CPU-only build."""
    import torch
    from chimerax.cryotrans.pytorch_install import cpu_build_note, has_nvidia_gpu, no_cuda_message
    assert torch.version.cuda is None
    note = cpu_build_note(torch, nvidia=True)
    assert 'has an NVIDIA GPU, but this PyTorch' in note and '/whl/cu126 --upgrade' in note
    assert cpu_build_note(torch, nvidia=False) == ''
    assert 'shows no NVIDIA GPU' in no_cuda_message(torch, nvidia=False)
    if not has_nvidia_gpu():
        assert cpu_build_note(torch) == ''


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
