"""PyQt6.QtWidgets under ChimeraX's name (see __init__.py)."""

from PyQt6 import QtWidgets as _module
from PyQt6.QtWidgets import *  # noqa: F401,F403

from . import promote_enums

promote_enums(_module)
