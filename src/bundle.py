"""What the ChimeraX toolshed calls: registers the cryotrans commands when first used (without PyTorch,
each says how to install it, and `cryotrans install torch` does), the region-drawing mouse mode when
there is a GUI, and starts the tool panel (tool.py)."""

from chimerax.core.toolshed import BundleAPI


class _CryoTransAPI(BundleAPI):
    api_version = 1

    @staticmethod
    def initialize(session, bi):
        if session.ui.is_gui:
            from .region_mouse import RegionMouseMode
            session.ui.mouse_modes.add_mode(RegionMouseMode(session))

    @staticmethod
    def start_tool(session, bi, ti):
        """Tools → Volume Data → CryoTRANS, or `ui tool show CryoTRANS`."""
        from .tool import get_singleton
        return get_singleton(session)

    @staticmethod
    def get_class(class_name):
        """For session restore: the panel's tool class, and what keeps the runs (run_session.py)."""
        if class_name == 'CryoTransTool':
            from .tool import CryoTransTool
            return CryoTransTool
        if class_name == 'RunsInSession':
            from .run_session import RunsInSession
            return RunsInSession
        return None

    @staticmethod
    def register_command(bi, ci, logger):
        from chimerax.core.commands import register
        if ci.name == 'cryotrans install':      # needs no PyTorch: it is what installs it
            from .install_command import cryotrans_install, install_desc
            register(ci.name, install_desc, cryotrans_install, logger=logger)
            return
        try:
            desc, func = commands()[ci.name]
        except ImportError as e:
            from .pytorch_install import is_missing_pytorch
            if not is_missing_pytorch(e):
                raise
            register(ci.name, _needs_pytorch(), _refuse, logger=logger)
            return
        if desc.synopsis is None:
            desc.synopsis = ci.synopsis
        register(ci.name, desc, _user_errors(ci.name, func), logger=logger)


def commands():
    """Every command that needs PyTorch, by name: its CmdDesc and function (importing them imports PyTorch)."""
    from . import apply_command, fsc_command, morph_command, move_command, partition_command, run_commands
    return {
        'cryotrans morph': (morph_command.morph_desc, morph_command.cryotrans_morph),
        'cryotrans partition': (partition_command.partition_desc, partition_command.cryotrans_partition),
        'cryotrans move': (move_command.move_desc, move_command.cryotrans_move),
        'cryotrans apply': (apply_command.apply_desc, apply_command.cryotrans_apply),
        'cryotrans fsc': (fsc_command.fsc_desc, fsc_command.cryotrans_fsc),
        'cryotrans stop': (run_commands.stop_desc, run_commands.cryotrans_stop),
        'cryotrans list': (run_commands.list_desc, run_commands.cryotrans_list),
    }


def _user_errors(name, func):
    """The command with the engine's errors (maps, settings, devices, checkpoints, output) turned into
    ChimeraX's UserError, named by the command: the one place they are translated."""
    from functools import wraps
    from chimerax.core.errors import UserError
    from cryotrans_engine import CryoTransError

    @wraps(func)
    def command(session, *args, **kw):
        try:
            return func(session, *args, **kw)
        except CryoTransError as e:
            raise UserError(f'{name}: {e}') from e
    return command


def _needs_pytorch():
    """Any words after the command, so that its first use says what to install, whatever was typed."""
    from chimerax.core.commands import CmdDesc, RestOfLine
    return CmdDesc(optional=[('words', RestOfLine)], synopsis='needs PyTorch: type the command to see how to install it')


def _refuse(session, words=None):
    from chimerax.core.errors import UserError
    from .pytorch_install import missing_message
    try:
        __import__('torch')      # installed since ChimeraX started: a restart registers the real commands
    except ImportError as e:
        raise UserError(missing_message(e)) from e
    raise UserError('PyTorch is installed now: restart ChimeraX to use the cryotrans commands')


bundle_api = _CryoTransAPI()
