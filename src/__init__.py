"""CryoTRANS for ChimeraX: predict the high-resolution map of a rare state, and the motion to it.

The engine sub-package runs without ChimeraX, so this module must not import
chimerax.core when it loads: the toolshed's bundle_api is made on first access.
"""


def __getattr__(name):
    if name == 'bundle_api':
        from .bundle import bundle_api
        globals()['bundle_api'] = bundle_api
        return bundle_api
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
