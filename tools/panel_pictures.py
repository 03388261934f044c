"""Pictures of the tool panel for docs/ and the README: idle, mid-run and finished, on the AdK pair.

    python tools/panel_pictures.py [--out docs/pictures]

The real widget (panel.py) offscreen against a real headless ChimeraX session, 400 pixels
wide as in ChimeraX's side panel; a short run (resolution 7) trains in the background.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, 'qt_standin'))
os.environ.setdefault('QT_QPA_PLATFORM', 'offscreen')
WIDTH = 400


def settle(app, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def shot(panel, path):
    panel.resize(WIDTH, panel.sizeHint().height())
    panel.grab().save(path)
    print('wrote', path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default=os.path.join(ROOT, 'docs', 'pictures'))
    p.add_argument('--steps', type=int, default=300)
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    from PyQt6.QtWidgets import QApplication
    app = QApplication.instance() or QApplication([])
    from chimerax_run import start_session
    from chimerax.core.commands import run
    session = start_session()
    data = os.path.join(ROOT, 'data', 'adk')
    run(session, f'open {os.path.join(data, "adk_open_3A.mrc")}')
    run(session, f'open {os.path.join(data, "adk_closed_7A.mrc")}')
    from chimerax.cryotrans.panel import MorphPanel
    from chimerax.cryotrans.panel_session import SessionServices
    panel = MorphPanel(SessionServices(session))
    panel.resolution.setValue(7)
    panel.steps.setValue(args.steps)
    panel.refine.setValue(args.steps // 3)
    panel.report_every.setValue(50)
    settle(app, 2)
    shot(panel, os.path.join(args.out, 'panel_idle.png'))
    panel.start_button.click()
    total = panel.run.training.total_steps
    while panel.run.training.step < 0.8 * total:
        panel.services.pump()
        app.processEvents()
        time.sleep(0.01)
    panel.services.pump()
    settle(app, 0.5)
    shot(panel, os.path.join(args.out, 'panel_running.png'))
    while panel.run.worker.is_alive():
        panel.services.pump()
        app.processEvents()
        time.sleep(0.01)
    panel.services.pump()
    settle(app, 0.5)
    shot(panel, os.path.join(args.out, 'panel_finished.png'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
