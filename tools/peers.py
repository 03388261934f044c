"""Peer comparison on the AdK pair, in one run: CryoTRANS, ChimeraX `volume morph`, MorphOT.

    python tools/peers.py [--steps 1250] [--morphot CHECKOUT --morphot-python PYTHON]

times, on this machine and in this process (MorphOT in a child process), one trajectory
of the open 3 Å -> closed 7 Å AdK pair (64³, 1.5 Å voxels) with 11 frames by

  (a) our engine (the demo's levels and settings): training + frames; FSC(0.5) of the
      predicted map against the true closed 3 Å map;
  (b) ChimeraX 1.7.1 `volume morph` in a headless session: pointwise linear interpolation,
      whose last frame is the target itself (time only), with and without an isosurface
      per frame;
  (c) MorphOT (github.com/kdd-ubc/MorphOT) when --morphot names a checkout: one
      convolutional Wasserstein barycentre per frame, run by its own CPU function with
      the defaults of its `MorphOT barycenterSave` command (niter 20, reg = box/60), on
      the same thresholded maps as ours.  Skipped with a note when not given.

and prints a table.  Frames and maps go to --out.  Nothing of MorphOT is copied here: its
module is loaded from the checkout at run time, in a Python that has what it needs
(numpy, scipy, mrcfile; `--morphot-python`).  This file's top level imports only the
standard library, because it is also that child process (--morphot-worker).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)
DATA = os.path.join(ROOT, 'data', 'adk')
INITIAL, TARGET, TRUTH = (os.path.join(DATA, f'adk_{n}.mrc') for n in ('open_3A', 'closed_7A', 'closed_3A'))
MORPHOT_URL = 'https://github.com/kdd-ubc/MorphOT'
# The last MorphOT commit whose bundle module imports: at the head (merge f8a388d, 2021-06-14)
# otmorph-bundle/src/utils.py has a duplicated docstring opening and is a SyntaxError.
MORPHOT_COMMIT = 'b4e49a688432fce9da2b427cf4925e46d09fe86d'
MORPHOT_MARK = 'MORPHOT_RESULT '


# ---------------------------------------------------------------------------------------------
# (a) our engine
# ---------------------------------------------------------------------------------------------

def time_ours(steps, frames, device, level0, level1, out):
    """Train on the pair and compute its frames; seconds, FSC(0.5) of the prediction vs truth."""
    from cryotrans_engine import Settings, Training, fsc_resolution, prepare_pair, read_map, write_map
    initial, grid = read_map(INITIAL)
    target, grid1 = read_map(TARGET)
    truth, _ = read_map(TRUTH)
    start = time.perf_counter()
    pair = prepare_pair(initial, grid, target, grid1, level0 * float(initial.max()),
                        level1 * float(target.max()), log=lambda m: None)
    training = Training(pair, Settings(steps=steps, frames=frames, device=device))
    every = max(1, steps // 10)

    def progress(step, total, loss, elapsed):
        if step % every == 0:
            print(f'  step {step}/{total}  loss {loss:.4g}  {elapsed:.0f} s', flush=True)
    training.run(progress)
    result = training.frames()
    seconds = time.perf_counter() - start
    write_map(os.path.join(out, 'cryotrans_prediction.mrc'), result[-1], grid)
    vs = grid.voxel_size
    return dict(seconds=seconds, frames=len(result), device=str(training.device),
                fsc=fsc_resolution(result[-1], truth, vs), target_fsc=fsc_resolution(target, truth, vs),
                thresholded_target_fsc=fsc_resolution(pair.target, truth, vs), pair=pair)


# ---------------------------------------------------------------------------------------------
# (b) ChimeraX volume morph
# ---------------------------------------------------------------------------------------------

def time_volume_morph(session, path0, path1, frames=10, repeat=5, surfaces=True, level0=None, level1=None):
    """Seconds for one ChimeraX `volume morph` trajectory of frames + 1 frames, best of repeat.

    `volume morph ... frames N` copies the first map (frame 0) and then interpolates one
    frame each time the graphics redraw fires 'new frame'; headless nothing redraws, so
    the trigger is fired here until the morph stops playing, and with surfaces=True each
    frame's isosurface is computed too, as a display would.  One untimed run first
    (command registration).  Returns seconds (best), all times, the interpolation
    fractions of the frames and max |last frame - second map|.
    """
    import numpy as np
    from chimerax.core.commands import FileNameArg, run
    v0 = run(session, 'open ' + FileNameArg.unparse(path0), log=False)[0]
    v1 = run(session, 'open ' + FileNameArg.unparse(path1), log=False)[0]
    for v, level in ((v0, level0), (v1, level1)):
        if level is not None:
            run(session, f'volume #{v.id_string} level {level}', log=False)
    command = (f'volume morph #{v0.id_string},{v1.id_string} frames {frames} playStep {1 / frames!r} '
               'hideOriginalMaps false')
    times = []
    for i in range(repeat + 1):
        start = time.perf_counter()
        im = run(session, command, log=False)
        if surfaces:
            im.result.update_drawings()
        fractions = [im.f]
        while im.playing():
            session.triggers.activate_trigger('new frame', None)
            if im.playing():
                fractions.append(im.f)
                if surfaces:
                    im.result.update_drawings()
        seconds = time.perf_counter() - start
        last = float(np.abs(im.result.full_matrix() - v1.full_matrix()).max())
        run(session, f'close #{im.result.id_string}', log=False)
        if i:
            times.append(seconds)
    run(session, f'close #{v0.id_string},{v1.id_string}', log=False)
    return dict(seconds=min(times), times=times, fractions=fractions, last_vs_target=last)


def volume_morph_rows(frames, repeat, level0, level1):
    """Both volume morph timings in this process's headless ChimeraX session."""
    sys.path.insert(0, TOOLS)
    from chimerax_run import start_session
    with tempfile.TemporaryDirectory(prefix='chimerax-') as state:
        session = start_session(state)
        values = time_volume_morph(session, INITIAL, TARGET, frames, repeat, False)
        shown = time_volume_morph(session, INITIAL, TARGET, frames, repeat, True, level0, level1)
    return values, shown


# ---------------------------------------------------------------------------------------------
# (c) MorphOT, in a child process with MorphOT's own Python
# ---------------------------------------------------------------------------------------------

def morphot_worker(checkout, path0, path1, frames, out):
    """(child) One MorphOT barycentre per frame; prints MORPHOT_MARK + JSON.

    What `MorphOT barycenterSave #1,2 DIR frames N` does per frame (mergedmorph.ot_save:
    weights from 0 to 1 in N steps, niter 20, reg = largest box side / 60), calling
    utils.convolutional_barycenter_cpu directly: its dispatcher convolutional_barycenter
    always takes the cupy (GPU) branch, so without CUDA the command itself cannot run.
    """
    import importlib.util

    import mrcfile
    import numpy as np
    path = os.path.join(checkout, 'otmorph-bundle', 'src', 'utils.py')
    result = dict(module=path)
    try:
        spec = importlib.util.spec_from_file_location('morphot_utils', path)
        utils = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(utils)
        barycenter = utils.convolutional_barycenter_cpu
    except (Exception, SyntaxError) as e:
        result['error'] = f'{type(e).__name__}: {e}'
        print(MORPHOT_MARK + json.dumps(result), flush=True)
        return 1
    with mrcfile.open(path0) as m:
        a = m.data.copy()
        voxel_size = m.voxel_size.copy()
    with mrcfile.open(path1) as m:
        b = m.data.copy()
    reg, niter = max(a.shape) / 60.0, 20
    weights = [float(w) for w in np.linspace(0.0, 1.0, frames + 1)]
    start = time.perf_counter()
    maps = [barycenter([a, b], reg, (1 - w, w), niter=niter) for w in weights]
    seconds = time.perf_counter() - start
    paths = []
    for i, m in enumerate(maps):
        paths.append(os.path.join(out, f'morphot_frame_{i:02d}.mrc'))
        with mrcfile.new(paths[-1], overwrite=True) as f:
            f.set_data(np.asarray(m, np.float32))
            f.voxel_size = voxel_size
    result.update(seconds=seconds, frames=len(maps), reg=reg, niter=niter, weights=weights, paths=paths)
    print(MORPHOT_MARK + json.dumps(result), flush=True)
    return 0


def time_morphot(checkout, python, pair, frames, out):
    """Run the MorphOT child on the prepared (thresholded) pair; its result dict, or its error."""
    from cryotrans_engine import write_map
    path0, path1 = os.path.join(out, 'initial_thresholded.mrc'), os.path.join(out, 'target_thresholded.mrc')
    write_map(path0, pair.initial * pair.peak, pair.grid)
    write_map(path1, pair.target * pair.peak, pair.grid)
    run = subprocess.run([python, os.path.abspath(__file__), '--morphot-worker', checkout, path0, path1,
                          str(frames), out], capture_output=True, text=True)
    for line in run.stdout.splitlines():
        if line.startswith(MORPHOT_MARK):
            return json.loads(line[len(MORPHOT_MARK):])
    tail = (run.stderr or run.stdout).strip().splitlines()[-1:] or [f'exit status {run.returncode}']
    return dict(error=tail[0])


# ---------------------------------------------------------------------------------------------

def table(rows):
    head = ('method', 'what it computes', 'frames', 'wall s / trajectory', 'FSC(0.5) vs truth, last frame')
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '|'.join(['---', '---', '---:', '---:', '---']) + '|']
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--steps', type=int, default=1250, help='our training steps (the demo: 1250)')
    p.add_argument('--frames', type=int, default=10, help='frames after the first (the demo: 10, so 11 in all)')
    p.add_argument('--device', default='auto')
    p.add_argument('--threads', type=int, help="torch CPU threads (default: torch's own choice)")
    p.add_argument('--repeat', type=int, default=5, help='volume morph runs to time (best is kept)')
    p.add_argument('--morphot', metavar='CHECKOUT', help=f'a clone of {MORPHOT_URL} at {MORPHOT_COMMIT[:7]}')
    p.add_argument('--morphot-python', default=sys.executable,
                   help='a Python with numpy, scipy and mrcfile for MorphOT (default: this one)')
    p.add_argument('--out', default=os.path.join(ROOT, 'peers_out'))
    p.add_argument('--morphot-worker', nargs=5, metavar=('CHECKOUT', 'MAP0', 'MAP1', 'FRAMES', 'OUT'),
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.morphot_worker:
        checkout, path0, path1, frames, out = args.morphot_worker
        return morphot_worker(checkout, path0, path1, int(frames), out)

    sys.path.insert(0, TOOLS)
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    from demo import LEVEL0, LEVEL1
    from cryotrans_engine import fsc_resolution, read_map
    os.makedirs(args.out, exist_ok=True)
    n = args.frames + 1
    print(f'AdK open 3 Å -> closed 7 Å, 64³ at 1.5 Å, {n} frames; levels {LEVEL0}, {LEVEL1} of peak; '
          f'torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs', flush=True)
    rows = []

    print(f'(a) CryoTRANS: {args.steps} steps ...', flush=True)
    ours = time_ours(args.steps, args.frames, args.device, LEVEL0, LEVEL1, args.out)
    rows.append(('CryoTRANS (this bundle)', f'neural-ODE flow trained {args.steps} steps ({ours["device"]}, {torch.get_num_threads()} thread{"s" if torch.get_num_threads() > 1 else ""}), '
                 'then its Euler frames', ours['frames'], f'{ours["seconds"]:.1f}',
                 f'{ours["fsc"]:.2f} Å (target itself {ours["target_fsc"]:.2f} Å)'))

    print(f'(b) ChimeraX volume morph, best of {args.repeat} ...', flush=True)
    values, shown = volume_morph_rows(args.frames, args.repeat, LEVEL0, LEVEL1)
    for result, what in ((values, 'pointwise linear interpolation'),
                         (shown, 'the same + one isosurface per frame')):
        assert len(result['fractions']) == n and result['last_vs_target'] < 1e-5, result
        rows.append(('ChimeraX 1.7.1 `volume morph`', what, n, f'{result["seconds"]:.3f}',
                     'the target itself (last frame = target map)'))

    if args.morphot:
        print(f'(c) MorphOT from {args.morphot} in {args.morphot_python} ...', flush=True)
        m = time_morphot(os.path.abspath(args.morphot), args.morphot_python, ours['pair'], args.frames, args.out)
        if 'error' in m:
            print(f'  MorphOT did not run: {m["error"]}\n  (needs a clone at {MORPHOT_COMMIT[:7]}: '
                  f'git -C {args.morphot} checkout {MORPHOT_COMMIT[:7]}; and a Python with numpy, scipy, '
                  'mrcfile: --morphot-python)', flush=True)
            rows.append(('MorphOT', 'did not run: ' + m['error'].replace('|', '/'), '', '', ''))
        else:
            truth, grid = read_map(TRUTH)
            last, _ = read_map(m['paths'][-1])
            rows.append(('MorphOT (kdd-ubc, CPU)', f'one convolutional W2 barycentre per frame '
                         f'(niter {m["niter"]}, reg {m["reg"]:.3g} voxels)', m['frames'], f'{m["seconds"]:.1f}',
                         f'{fsc_resolution(last, truth, grid.voxel_size):.2f} Å (the thresholded target it was given: '
                f'{ours["thresholded_target_fsc"]:.2f} Å)'))
    else:
        print(f'(c) MorphOT skipped: pass --morphot CHECKOUT (git clone {MORPHOT_URL}; '
              f'git checkout {MORPHOT_COMMIT[:7]}) and --morphot-python PYTHON', flush=True)
    print()
    print(table(rows))
    print(f'\nframes and maps in {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
