"""What the ChimeraX toolshed calls: registers the cryotrans commands when first used."""

from chimerax.core.toolshed import BundleAPI


class _CryoTransAPI(BundleAPI):
    api_version = 1

    @staticmethod
    def register_command(bi, ci, logger):
        from chimerax.core.commands import register
        from . import morph_command
        desc = morph_command.morph_desc
        if desc.synopsis is None:
            desc.synopsis = ci.synopsis
        register(ci.name, desc, morph_command.cryotrans_morph, logger=logger)


bundle_api = _CryoTransAPI()
