"""`cryotrans install torch`: the PyTorch build this machine can use, installed into ChimeraX's Python.

The build and its index come from pytorch_install.py; pip is ChimeraX's (chimerax.core.python_utils:
its Python, and PYTHONUSERBASE set to the folder ChimeraX's own `pip install` and the toolshed use).
The exact command is logged first.  With a graphical interface pip runs in a thread, its lines
going to the log as they come, so ChimeraX stays usable through a download of up to 3 GB; without
one (`wait true`) the command returns when pip has ended, and fails when pip does.
"""

import os
import platform
import shlex
import site
import subprocess
import threading

from chimerax.core.commands import BoolArg, CmdDesc, EnumOf, StringArg
from chimerax.core.errors import UserError

from .pytorch_install import BUILDS, COMMAND, nvidia_driver, pip_arguments, torch_build

_busy = threading.Lock()      # one pip at a time: they would write into the same folder


def cryotrans_install(session, package, build='auto', upgrade=False, index=None, dry_run=False, wait=None):
    """Install PyTorch (package: 'torch', the one this command installs); returns pip's command line."""
    try:
        chosen = torch_build(platform.system(), platform.machine(), nvidia_driver(), build)
    except ValueError as e:
        raise UserError(f'{COMMAND}: {e}') from e
    if index is not None:
        chosen = type(chosen)(chosen.name, index, f'index {index} given')
    installed = _installed_version()
    if installed is not None and not upgrade and not dry_run:
        session.logger.info(f'{COMMAND}: PyTorch {installed} is installed already; to replace it with '
                            f'{chosen.name} ({chosen.why}), type  {COMMAND} upgrade true')
        return None
    argv, env = _pip_command(chosen, upgrade)
    line = ' '.join(shlex.quote(a) for a in argv)
    into = f'PYTHONUSERBASE={shlex.quote(env["PYTHONUSERBASE"])} ' if '--user' in argv else ''
    session.logger.info(f'{COMMAND}: {chosen.name} ({chosen.why}); '
                        f'{"would run" if dry_run else "running"}: {into}{line}')
    if dry_run:
        return line
    if not _busy.acquire(blocking=False):
        raise UserError(f'{COMMAND}: an install is running already; wait for it to end')
    if wait is None:
        wait = not session.ui.is_gui
    if wait:
        _run_pip(session, argv, env, chosen, lambda f, *a: f(*a), raise_errors=True)
    else:
        threading.Thread(target=_run_pip, args=(session, argv, env, chosen, session.ui.thread_safe),
                         name=COMMAND, daemon=True).start()
    return line


def _installed_version():
    """The version of the PyTorch this ChimeraX would import, or None."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version('torch')
    except PackageNotFoundError:
        return None


def _pip_command(chosen, upgrade):
    """ChimeraX's pip with this build's arguments, and the environment ChimeraX runs pip in.

    --user as ChimeraX's `pip install` gives it, except where ChimeraX's user site is not in the
    folder --user would install into (ChimeraX run as root on Linux uses its own site-packages)."""
    from chimerax import app_dirs
    from chimerax.core.python_utils import chimerax_environment, chimerax_python_executable
    with chimerax_environment():
        env = dict(os.environ)
    base = os.path.realpath(app_dirs.user_data_dir)
    per_user = os.path.realpath(site.USER_SITE or '').startswith(base + os.sep)
    return [chimerax_python_executable(), '-m', 'pip'] + pip_arguments(chosen, per_user, upgrade), env


def _run_pip(session, argv, env, chosen, post, raise_errors=False):
    """Run pip, posting its lines and its end to the log (post: how to reach the main thread)."""
    lines = []
    try:
        try:
            pip = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   encoding='utf-8', errors='replace', bufsize=1,
                                   creationflags=getattr(subprocess, 'CREATE_NO_WINDOW', 0))   # no console on Windows
        except OSError as e:
            return _ended(session, post, f'{COMMAND}: could not start ChimeraX\'s Python ({argv[0]}): {e}',
                          raise_errors)
        for line in pip.stdout:
            line = line.rstrip()
            if line:
                lines.append(line)
                post(session.logger.info, line)
        code = pip.wait()
    finally:
        _busy.release()
    if code != 0:
        tail = '\n'.join(lines[-5:])
        return _ended(session, post, f'{COMMAND}: pip failed (exit status {code}); it said:\n{tail}', raise_errors)
    post(session.logger.info, f'{COMMAND}: {chosen.name} of PyTorch is installed: restart ChimeraX to use the '
                              f'cryotrans commands')


def _ended(session, post, message, raise_errors):
    if raise_errors:
        raise UserError(message)
    post(session.logger.error, message)


install_desc = CmdDesc(
    required=[('package', EnumOf(['torch']))],
    keyword=[('build', EnumOf(BUILDS)), ('upgrade', BoolArg), ('index', StringArg), ('dry_run', BoolArg),
             ('wait', BoolArg)],
    synopsis='install the PyTorch build this machine can use (CUDA or CPU) into ChimeraX\'s Python')
