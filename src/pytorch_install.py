"""What to type to get PyTorch into this ChimeraX, said by the first cryotrans command that needs it.

ChimeraX runs its own Python, so PyTorch installed elsewhere is not seen; ChimeraX's
`pip install` command puts packages into its user site.  PyPI's builds differ by
platform: Linux's include NVIDIA CUDA (large), Windows' are CPU-only, macOS's use
Apple's GPU (MPS).  A CUDA or CPU-only build of another kind comes from PyTorch's own
index, which ChimeraX's pip command cannot name, so that one is typed in a terminal
with ChimeraX's Python.  Imports nothing of the engine (which needs PyTorch).
"""

import os
import platform
import shutil
import sys

INDEX = 'https://download.pytorch.org/whl'
CUDA_INDEX = f'{INDEX}/cu126'


def _terminal(index):
    return f'"{sys.executable}" -m pip install --user torch --index-url {index}'


def has_nvidia_gpu():
    """Whether this machine shows an NVIDIA driver (Linux's /proc, or nvidia-smi on the path)."""
    return os.path.exists('/proc/driver/nvidia/version') or shutil.which('nvidia-smi') is not None


def install_advice(system=None):
    """The lines to type for this platform (system: platform.system()'s name)."""
    system = system or platform.system()
    first = 'type  pip install torch  in ChimeraX\'s command line, then restart ChimeraX'
    if system == 'Linux':
        return (f'{first} (that build includes NVIDIA CUDA, about 3 GB; a machine without an NVIDIA GPU can '
                f'take the CPU build, about 200 MB, by typing in a terminal: {_terminal(INDEX + "/cpu")})')
    if system == 'Windows':
        return (f'{first} (that build runs on the processor only; with an NVIDIA GPU, type in a terminal '
                f'instead: {_terminal(CUDA_INDEX)})')
    if system == 'Darwin':
        return f'{first} (on Apple silicon it trains on the Mac\'s GPU, MPS)'
    return first


def missing_message(error):
    """The one message for commands that cannot import PyTorch."""
    return (f'cryotrans needs PyTorch, which this ChimeraX cannot import ({error}): '
            f'{install_advice()}')


def is_missing_pytorch(error):
    """Whether an ImportError is PyTorch's absence (or a broken install of it)."""
    name = getattr(error, 'name', None) or ''
    return name == 'torch' or name.startswith('torch.') or 'torch' in str(error)


def cpu_build_note(torch, nvidia=None):
    """A warning when this PyTorch cannot use the NVIDIA GPU the machine has; '' otherwise.

    nvidia: whether the machine has one (has_nvidia_gpu() when None).
    """
    if getattr(torch.version, 'cuda', None) or torch.cuda.is_available():
        return ''
    if not (has_nvidia_gpu() if nvidia is None else nvidia):
        return ''
    return (f'this machine has an NVIDIA GPU, but this PyTorch ({torch.__version__}) is built for the processor '
            f'only, so training runs on the CPU, many times slower; for the GPU, type in a terminal: '
            f'{_terminal(CUDA_INDEX)} --upgrade, then restart ChimeraX')


def no_cuda_message(torch, nvidia=None):
    """What `device cuda` says when this PyTorch sees no CUDA GPU."""
    note = cpu_build_note(torch, nvidia)
    if note:
        return f'device cuda was asked for: {note}'
    if not getattr(torch.version, 'cuda', None):
        return (f'device cuda was asked for, but this PyTorch ({torch.__version__}) is built for the processor only '
                f'and this machine shows no NVIDIA GPU: use device auto or cpu')
    return ('device cuda was asked for, but PyTorch sees no working CUDA GPU (check the NVIDIA driver with '
            'nvidia-smi): use device auto or cpu')
