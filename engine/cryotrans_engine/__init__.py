"""The CryoTRANS numeric engine: plain Python and PyTorch, no ChimeraX.

A map pair is prepared (levels, one grid, normalised), a flow is trained to carry
the initial map's density onto the target's, and the flow's Euler steps give the
frames of a pseudo-trajectory whose last frame is the predicted map.

The public surface: a job (MorphJob, or morph / morph_files in one call) runs a morph and
gives a Result; a TrainedFlow is what a run leaves (flow.pt): frames of a map, points moved
along the flow; compare_maps judges a map against another (the one FSC definition, fsc.py);
errors name what went wrong (errors.py); every training option is declared in settings.py.
Each name is imported on first use, so that what needs no PyTorch (the settings, for
ChimeraX's panel) loads none.
"""

import importlib
import sys
from types import ModuleType

_PUBLIC = {
    'errors': ('CheckpointError', 'CryoTransError', 'DeviceError', 'MapError', 'OutputError', 'SettingsError'),
    'levels': ('LevelSpec', 'Levels', 'MapLevel', 'choose_levels', 'enclosed_volume', 'half_height_level',
               'level_enclosing'),
    'maps': ('Grid', 'read_map', 'write_map', 'resample'),
    'pair': ('MapPair', 'placed_target', 'prepare_pair'),
    'schedule': ('schedule',),
    'settings': ('Settings',),
    'training': ('Training', 'RunFailed', 'choose_device', 'trajectory_frames'),
    'checkpoint': ('save_checkpoint', 'load_checkpoint', 'flow_from_checkpoint'),
    'trained': ('TrainedFlow',),
    'job': ('MorphJob', 'Progress', 'Result', 'morph', 'morph_files'),
    'fsc': ('FSC', 'compare_maps', 'map_fsc', 'fsc_resolution', 'correlation'),
}
_MODULE = {name: module for module, names in _PUBLIC.items() for name in names}
__all__ = sorted(_MODULE)


def __getattr__(name):
    if name not in _MODULE:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    value = getattr(importlib.import_module(f'.{_MODULE[name]}', __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _Package(ModuleType):
    """The import system sets each submodule on its package when it is first imported: a public
    name keeps its meaning over a submodule of the same name (the function schedule, not schedule.py)."""

    def __setattr__(self, name, value):
        if not (name in _MODULE and isinstance(value, ModuleType)):
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
