"""PyQt6.QtGui under ChimeraX's name (see __init__.py)."""

from PyQt6 import QtGui as _module
from PyQt6.QtGui import *  # noqa: F401,F403

from . import promote_enums

promote_enums(_module)
