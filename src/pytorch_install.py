"""PyTorch for this ChimeraX: which build this machine can use, the pip command that installs it, and
what the cryotrans commands say when PyTorch is missing or cannot use the GPU.

ChimeraX runs its own Python, so PyTorch installed elsewhere is not seen, and PyPI's builds differ
by platform: Linux's include NVIDIA CUDA (about 3 GB, whether or not there is a GPU), Windows' run
on the processor only, macOS's use Apple's GPU (MPS).  ChimeraX's own `pip install` cannot name
PyTorch's wheel index, where the CUDA and CPU-only builds are, so `cryotrans install torch`
(install_command.py) runs ChimeraX's pip itself with the index chosen here, into the folder
ChimeraX's `pip install` and the toolshed use.  Imports nothing of the engine (which needs PyTorch),
so the bundle can say all this in a ChimeraX without it.
"""

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

INDEX = 'https://download.pytorch.org/whl'
# PyTorch's CUDA builds, newest first, with the least NVIDIA driver (major version) each runs on:
# CUDA 12.8 (the first for Blackwell GPUs) from driver 570, 12.6 from 525, 11.8 from 450.
CUDA_BUILDS = ((570, 'cu128', '12.8'), (525, 'cu126', '12.6'), (450, 'cu118', '11.8'))
REQUIREMENT = 'torch>=2'
COMMAND = 'cryotrans install torch'
BUILDS = ('auto', 'cuda', 'cpu')


@dataclass(frozen=True)
class TorchBuild:
    """A PyTorch build to install: its name, the wheel index it comes from (None: PyPI) and why it is
    the one."""
    name: str
    index: str
    why: str


def torch_build(system, machine='', driver=None, build='auto'):
    """The PyTorch build for a machine: system as platform.system() names it, machine as
    platform.machine(), driver the NVIDIA driver's version (a tuple of ints, None without one) and
    build what was asked for (auto, cuda or cpu).  ValueError for a build the machine cannot have."""
    if build not in BUILDS:
        raise ValueError(f'build must be one of {", ".join(BUILDS)}, not {build!r}')
    if system == 'Darwin':
        if build == 'cuda':
            raise ValueError('PyTorch has no CUDA build for macOS: give build auto (Apple\'s GPU, MPS, where '
                             'the Mac has one) or cpu')
        gpu = 'runs on Apple\'s GPU (MPS)' if machine == 'arm64' else 'runs on the processor (an Intel Mac)'
        return TorchBuild('PyPI\'s macOS build', None, f'macOS: PyPI\'s build {gpu}')
    if build == 'cpu':
        return _cpu('asked for')
    if driver is None:
        if build == 'cuda':
            return _cuda(CUDA_BUILDS[1], 'asked for, though no NVIDIA driver was found')
        return _cpu('no NVIDIA driver was found, so no GPU PyTorch can use')
    shown = '.'.join(map(str, driver))
    for least, tag, cuda in CUDA_BUILDS:
        if driver[0] >= least:
            return _cuda((least, tag, cuda), f'NVIDIA driver {shown}')
    old = (f'NVIDIA driver {shown} is older than any PyTorch CUDA build needs ({CUDA_BUILDS[-1][0]} or later): '
           f'update the driver for the GPU')
    if build == 'cuda':
        raise ValueError(old)
    return _cpu(old)


def _cpu(why):
    return TorchBuild('the CPU-only build', f'{INDEX}/cpu', why)


def _cuda(build, why):
    _, tag, cuda = build
    return TorchBuild(f'the CUDA {cuda} build', f'{INDEX}/{tag}', why)


def pip_arguments(build, per_user=True, upgrade=False):
    """pip's arguments after `python -m pip`, as ChimeraX's own `pip install` gives them (into its user
    folder unless per_user is false; dependencies ChimeraX has already left as they are), with the build's
    index."""
    args = ['install'] + (['--user'] if per_user else []) + [
        '--upgrade-strategy', 'only-if-needed', '--no-warn-script-location', '--disable-pip-version-check',
        '--progress-bar', 'off']
    if upgrade:
        args.append('--upgrade')
    if build.index:
        args += ['--index-url', build.index]
    return args + [REQUIREMENT]


def nvidia_driver():
    """This machine's NVIDIA driver version as a tuple of ints ((535, 104, 5)), or None: Linux's
    /proc/driver/nvidia/version, else nvidia-smi (Windows, or a Linux where /proc does not show it)."""
    try:
        with open('/proc/driver/nvidia/version', encoding='utf-8', errors='replace') as f:
            driver = driver_in_proc(f.read())
        if driver is not None:
            return driver
    except OSError:
        pass
    smi = shutil.which('nvidia-smi')
    if smi is None:
        return None
    try:
        done = subprocess.run([smi, '--query-gpu=driver_version', '--format=csv,noheader'],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.match(r'\s*(\d+(?:\.\d+)+)', done.stdout) if done.returncode == 0 else None
    return _version(found.group(1)) if found else None


def driver_in_proc(text):
    """The driver version in /proc/driver/nvidia/version's text (its Kernel Module line, of the
    proprietary or the open module), or None."""
    found = re.search(r'Kernel Module(?:\s+for\s+\S+)?\s+(\d+(?:\.\d+)+)', text)
    return _version(found.group(1)) if found else None


def _version(text):
    return tuple(int(part) for part in text.split('.'))


def has_nvidia_gpu():
    """Whether this machine shows an NVIDIA driver."""
    return os.path.exists('/proc/driver/nvidia/version') or shutil.which('nvidia-smi') is not None


def missing_message(error):
    """The one message for commands that cannot import PyTorch."""
    return (f'cryotrans needs PyTorch, which this ChimeraX cannot import ({error}): type  {COMMAND}  in '
            f'ChimeraX\'s command line (it installs the build this machine can use: CUDA with an NVIDIA GPU, '
            f'else the CPU-only one; Apple\'s on a Mac), then restart ChimeraX')


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
            f'only, so training runs on the CPU, many times slower; for the GPU, type  {COMMAND} upgrade true  '
            f'and restart ChimeraX')


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
