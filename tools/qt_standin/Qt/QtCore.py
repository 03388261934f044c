"""PyQt6.QtCore under ChimeraX's name (see __init__.py)."""

from PyQt6 import QtCore as _module
from PyQt6.QtCore import *  # noqa: F401,F403

from . import promote_enums

promote_enums(_module)
from PyQt6.QtCore import pyqtSignal as Signal, pyqtSlot as Slot  # noqa: E402,F401   ChimeraX's Qt names
