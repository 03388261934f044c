"""What the ChimeraX toolshed calls: registers the cryotrans commands when first used, and
the region-drawing mouse mode when there is a GUI."""

from chimerax.core.toolshed import BundleAPI


class _CryoTransAPI(BundleAPI):
    api_version = 1

    @staticmethod
    def initialize(session, bi):
        if session.ui.is_gui:
            from .region_mouse import RegionMouseMode
            session.ui.mouse_modes.add_mode(RegionMouseMode(session))

    @staticmethod
    def register_command(bi, ci, logger):
        from chimerax.core.commands import register
        from . import morph_command, partition_command, run_commands
        desc, func = {
            'cryotrans morph': (morph_command.morph_desc, morph_command.cryotrans_morph),
            'cryotrans partition': (partition_command.partition_desc, partition_command.cryotrans_partition),
            'cryotrans stop': (run_commands.stop_desc, run_commands.cryotrans_stop),
            'cryotrans list': (run_commands.list_desc, run_commands.cryotrans_list),
        }[ci.name]
        if desc.synopsis is None:
            desc.synopsis = ci.synopsis
        register(ci.name, desc, func, logger=logger)


bundle_api = _CryoTransAPI()
