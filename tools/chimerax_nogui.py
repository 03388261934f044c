"""Stand-in for chimerax.core.nogui, absent from the PyPI ChimeraX 1.7.1 wheel.

Behaves as ChimeraX's own nogui UI does when no event loop runs (--nogui with
--exit, --script or --cmd): thread_safe calls the function at once.
"""

import sys
import weakref

from .logger import PlainTextLog

_LEVELS = {PlainTextLog.LEVEL_INFO: 'INFO', PlainTextLog.LEVEL_WARNING: 'WARNING',
           PlainTextLog.LEVEL_ERROR: 'ERROR', PlainTextLog.LEVEL_BUG: 'BUG'}


class NoGuiLog(PlainTextLog):
    """The log printed to stdout, as ChimeraX --nogui prints it."""

    def log(self, level, msg):
        print('%s:\n%s' % (_LEVELS.get(level, 'INFO'), msg), end='', flush=True)
        return True

    def status(self, msg, color, secondary):
        if msg and not secondary:
            print('STATUS:\n%s' % msg, flush=True)
        return True


class UI:
    is_gui = False
    has_graphics = False

    def __init__(self, session):
        self._session = weakref.ref(session)

    def initialize_color_output(self, color_output):
        pass

    def initialize_offscreen_rendering(self):
        session = self._session()
        from chimerax import graphics
        try:
            c = graphics.OffScreenRenderingContext()
        except Exception as e:
            session.logger.info('Offscreen rendering is not available.\n%s' % e)
            self.has_graphics = False
            return
        session.main_view.initialize_rendering(c)
        self.has_graphics = True

    def splash_info(self, message, splash_step=None, num_splash_steps=None):
        print(message, file=sys.stderr)

    def build(self):
        pass

    def thread_safe(self, func, *args, **kw):
        func(*args, **kw)

    def quit(self):
        session = self._session()
        session.logger.status('Exiting ...', blank_after=0)
        session.logger.clear()
        sys.exit(0)
