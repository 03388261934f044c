"""Pictures of a morph for the README and the help page, rendered by ChimeraX itself (offscreen).

    python tools/render_pictures.py [--out docs/pictures] [--session run.cxs]

On the bundled AdK maps (data/adk/README.md): the 3 Å open map (#1) is morphed onto the 7 Å
closed map (#2) with `cryotrans morph #1 to #2 resolution 7 steps 800` (1-2 min on 2 cores);
the 3 Å closed map, the truth, is opened as #4. Writes into --out:

  adk_initial.png, adk_target.png, adk_prediction.png, adk_truth.png   400x400, one view
  adk_frames.png     frames 0, 3, 6, 10 of the series (#3.1, #3.4, #3.7, #3.11), 1000 px wide
  adk_fsc.png        `cryotrans fsc #3.11 to #4 plot ...`: the prediction against the truth

The target at the level morph used for it; initial, frames, prediction and truth at one level,
morph's level for the initial map or 5% of that map's maximum if higher (the ripples of a 3 Å map
around morph's level would hide the shape), specks under 6 Å hidden. --session: reuse that session file if it exists (no training),
else save the run there (for trying views). Needs offscreen rendering: Debian's libosmesa6 and
PyOpenGL==3.1.7 (requirements.txt); PYOPENGL_PLATFORM=osmesa is set here.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
DATA = os.path.join(ROOT, 'data', 'adk')
SIZE = 400
FRAMES = (0, 3, 6, 10)          # frame k is #3.(k+1)
PICTURE_LEVEL = 0.05            # x the initial map's maximum
STRIP = 250                     # each frame in the strip: 4 x 250 = 1000 px
# The view: the hinge (LID and NMP closing over CORE) seen side on.
VIEW = ['view orient', 'turn y 90', 'view', 'zoom 0.95']
COLORS = {'initial': '#6495ed', 'target': '#b0b0b0', 'prediction': '#f0a030', 'truth': '#50b050'}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default=os.path.join(ROOT, 'docs', 'pictures'))
    p.add_argument('--session', help='reuse this .cxs if it exists, else save the run there')
    p.add_argument('--steps', type=int, default=800)
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    from chimerax_run import start_session
    from chimerax.core.commands import run
    session = start_session(offscreen=True)
    if not session.ui.has_graphics:
        sys.exit('no offscreen rendering: apt-get install libosmesa6; pip install PyOpenGL==3.1.7')

    def cmd(c):
        return run(session, c, log=False)

    import json
    import re
    levels_file = args.session and args.session + '.levels.json'
    if args.session and os.path.exists(args.session):
        cmd(f'open {args.session}')
        level, target_level = json.load(open(levels_file))
    else:
        from chimerax.core.logger import StringPlainTextLog
        cmd(f'open {os.path.join(DATA, "adk_open_3A.mrc")}')
        cmd(f'open {os.path.join(DATA, "adk_closed_7A.mrc")}')
        with StringPlainTextLog(session.logger) as log:
            cmd(f'cryotrans morph #1 to #2 resolution 7 steps {args.steps} wait true')
        # "... voxels of #1 above level L0 move onto #2 above level L1; ..."
        found = re.search(r'#1 above level (\S+) move onto #2 above level (\S+);', log.getvalue())
        level, target_level = float(found.group(1)), float(found.group(2))
        cmd(f'open {os.path.join(DATA, "adk_closed_3A.mrc")}')     # #4, the truth
        if args.session:
            cmd(f'save {args.session}')
            json.dump([level, target_level], open(levels_file, 'w'))

    def model(spec):
        return session.models.list(model_id=tuple(int(i) for i in spec.split('.')))[0]

    last = f'3.{FRAMES[-1] + 1}'
    print(f'morph\'s levels: initial/prediction/truth {level:.4g}, target {target_level:.4g}')

    cmd('set bgColor white')
    cmd('lighting soft')
    # morph's level0 (0.016 here) encloses the target's volume but also the 3 Å maps' Fourier
    # ripples: the pictures show the 3 Å maps at 5% of the initial map's maximum (0.05 here),
    # one level for initial, frames, prediction and truth, specks under 6 Å hidden.
    shown = max(level, PICTURE_LEVEL * float(model('1').full_matrix().max()))
    print(f'pictures: initial/frames/prediction/truth at {shown:.4g}, target at {target_level:.4g}')
    cmd(f'volume #1,3,4 level {shown:.6g} style surface')
    cmd('surface dust #1,3,4 size 6')
    cmd(f'volume #2 level {target_level:.6g} style surface')
    cmd(f'volume #1 color {COLORS["initial"]}')
    cmd(f'volume #2 color {COLORS["target"]}')
    cmd(f'volume #4 color {COLORS["truth"]}')
    cmd(f'volume #3 color {COLORS["prediction"]}')

    def show_only(spec):
        cmd('hide #1-4 models')
        cmd(f'show #{spec} models')       # the map and its surface (#{spec}.1)
        if spec.startswith('3.'):        # the series' parent only (#!3), then one frame
            cmd('show #!3 models')

    # One view for all: fitted to the initial map (the largest extent), then kept.
    show_only('1')
    for c in VIEW:
        cmd(c)

    def save(name, width, height):
        path = os.path.join(args.out, name)
        cmd(f'save {path} width {width} height {height} supersample 3')
        print('wrote', path, os.path.getsize(path), 'bytes')
        return path

    for name, spec in (('initial', '1'), ('target', '2'), ('prediction', last), ('truth', '4')):
        show_only(spec)
        save(f'adk_{name}.png', SIZE, SIZE)

    # The strip: frames rendered one by one, pasted side by side (Pillow).
    from PIL import Image
    tiles = []
    for k in FRAMES:
        show_only(f'3.{k + 1}')
        tiles.append(save(f'_frame{k}.png', STRIP, STRIP))
    strip = Image.new('RGB', (STRIP * len(tiles), STRIP), 'white')
    for i, t in enumerate(tiles):
        with Image.open(t) as im:
            strip.paste(im.convert('RGB'), (i * STRIP, 0))
        os.remove(t)
    path = os.path.join(args.out, 'adk_frames.png')
    strip.save(path, optimize=True)
    print('wrote', path, os.path.getsize(path), 'bytes')

    cmd(f'cryotrans fsc #{last} to #4 plot {os.path.join(args.out, "adk_fsc.png")}')
    print('wrote', os.path.join(args.out, 'adk_fsc.png'))


if __name__ == '__main__':
    main()
