"""Stand-in for ChimeraX's `Qt` module, absent from the PyPI ChimeraX 1.7.1 wheel (tests only).

ChimeraX's app ships a thin `Qt` package over PyQt6 so that bundles import Qt as
`from Qt.QtWidgets import ...`; this one re-exports the pinned PyQt6 the same way, as
tools/chimerax_nogui.py stands in for the missing nogui module.  Like ChimeraX's, it
also makes PyQt6's scoped enum members reachable unscoped (Qt.AlignCenter beside
Qt.AlignmentFlag.AlignCenter), which ChimeraX's own modules (open_command's dialog) use.
"""

import enum

qt_api = 'PyQt6'


def promote_enums(module):
    """Each class's enum members as attributes of the class, where the name is free."""
    for cls in vars(module).values():
        if not isinstance(cls, type):
            continue
        for value in list(vars(cls).values()):
            if isinstance(value, type) and issubclass(value, enum.Enum):
                for name, member in value.__members__.items():     # aliases too (AlignCenter)
                    if not hasattr(cls, name):
                        try:
                            setattr(cls, name, member)
                        except (AttributeError, TypeError):
                            pass
