"""Build the ChimeraX-CryoTRANS wheel with ChimeraX's own bundle builder; print its path.

The builder copies the help pages into src/ and leaves build/ and egg-info beside
bundle_info.xml, so it runs on a copy of the bundle under build/bundle and the
source tree stays clean.  Usage: build_bundle.py OUT_DIR
"""

import glob
import logging
import os
import shutil
import sys
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLE_FILES = ('bundle_info.xml', 'src', 'docs', 'engine')


def main(out):
    stage = os.path.join(ROOT, 'build', 'bundle')
    shutil.rmtree(stage, ignore_errors=True)
    os.makedirs(stage)
    for name in BUNDLE_FILES:
        source = os.path.join(ROOT, name)
        copy = shutil.copytree if os.path.isdir(source) else shutil.copyfile
        copy(source, os.path.join(stage, name),
             **({'ignore': shutil.ignore_patterns('__pycache__')} if copy is shutil.copytree else {}))
    warnings.filterwarnings('ignore')
    from chimerax.bundle_builder import BundleBuilder
    os.chdir(stage)   # the builder copies ExtraFiles relative to the working folder
    builder = BundleBuilder(logging.getLogger('bundle'), stage)
    # setuptools >= 75.8 names wheels in lower case; 1.7.1's builder looks for its own spelling.
    folder, name = os.path.split(builder.wheel_path)
    dist, rest = name.split('-', 1)
    builder.wheel_path = os.path.join(folder, dist.lower() + '-' + rest)
    builder.make_wheel()
    os.makedirs(out, exist_ok=True)
    for old in glob.glob(os.path.join(out, dist.lower() + '-*.whl')):
        os.remove(old)
    wheel = shutil.copy(builder.wheel_path, out)
    print(os.path.abspath(wheel))


if __name__ == '__main__':
    main(os.path.abspath(sys.argv[1]))
