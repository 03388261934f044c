"""Make src/ importable as chimerax.cryotrans in this venv and install the `cryotrans` command.

A development link, not a copy: edits to src/ take effect at once.  The engine
needs no ChimeraX, so a namespace package `chimerax` holding only cryotrans is enough.
"""

import os
import sys
import sysconfig

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
link_root = os.path.join(root, 'build', 'py')
os.makedirs(os.path.join(link_root, 'chimerax'), exist_ok=True)
link = os.path.join(link_root, 'chimerax', 'cryotrans')
if os.path.islink(link):
    os.unlink(link)
os.symlink(os.path.join(root, 'src'), link)
with open(os.path.join(sysconfig.get_paths()['purelib'], 'cryotrans-dev.pth'), 'w') as f:
    f.write(link_root + '\n')
script = os.path.join(os.path.dirname(sys.executable), 'cryotrans')
with open(script, 'w') as f:
    f.write(f'#!{sys.executable}\nimport sys\nfrom chimerax.cryotrans.engine.cli import main\nsys.exit(main())\n')
os.chmod(script, 0o755)
