"""Repair the PyPI ChimeraX 1.7.1 core wheel (chimerax==0.1.71) in this venv.  Idempotent.

Its chimerax/__init__.py imports every sub-package at once (the reason it was yanked):
ChimeraX ships `chimerax` as a namespace-style package, so make it one.  And its
chimerax/core/nogui.py, which Session() imports, is missing: install our stand-in.
"""

import os
import shutil
import sysconfig

HERE = os.path.dirname(os.path.abspath(__file__))
NAMESPACE = "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"


def main():
    cx = os.path.join(sysconfig.get_paths()['purelib'], 'chimerax')
    with open(os.path.join(cx, '__init__.py'), 'w') as f:
        f.write(NAMESPACE)
    shutil.copyfile(os.path.join(HERE, 'chimerax_nogui.py'), os.path.join(cx, 'core', 'nogui.py'))


if __name__ == '__main__':
    main()
