"""Tools → Volume Data → CryoTRANS: the panel (panel.py) in a ChimeraX tool window; nothing else.

One per session (ChimeraX's get_singleton), saved and restored with the session.
chimerax.ui exists only in the ChimeraX application, so this wrapper is not run by the
tests; the widget it holds is (tests/test_panel.py).
"""

from chimerax.core.tools import ToolInstance

TOOL_NAME = 'CryoTRANS'


class CryoTransTool(ToolInstance):
    SESSION_ENDURING = False
    SESSION_SAVE = True
    help = 'help:user/tools/cryotrans.html'

    def __init__(self, session, tool_name=TOOL_NAME):
        super().__init__(session, tool_name)
        from chimerax.ui import MainToolWindow
        from Qt.QtWidgets import QScrollArea, QVBoxLayout
        from .panel import MorphPanel
        from .panel_session import SessionServices
        self.tool_window = MainToolWindow(self)
        self.panel = MorphPanel(SessionServices(session))
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.panel)
        layout = QVBoxLayout(self.tool_window.ui_area)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        self.tool_window.manage('side')

    def delete(self):
        self.panel.close_services()
        super().delete()

    def take_snapshot(self, session, flags):
        return {'version': 1, 'panel': self.panel.state()}

    @classmethod
    def restore_snapshot(cls, session, data):
        tool = get_singleton(session)
        tool.panel.set_state(data['panel'])
        return tool


def get_singleton(session, create=True):
    from chimerax.core import tools
    return tools.get_singleton(session, CryoTransTool, TOOL_NAME, create=create)
