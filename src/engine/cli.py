"""`cryotrans` on the command line: the engine without ChimeraX, for scripts and clusters.

    cryotrans morph INITIAL TARGET --out DIR [options]   train, write frames + checkpoint
    cryotrans frames CHECKPOINT INITIAL --out DIR        frames from a saved flow
    cryotrans fsc MAP1 MAP2                              FSC resolution of two maps
"""

import argparse
import glob
import os
import signal
import sys
import tempfile
import threading

from .fsc import correlation, fsc_resolution
from .levels import LevelSpec, above_level
from .maps import MapError, claim_folder, output_folder, read_map, resample, same_grid, write_map
from .motion import motion_report
from .pair import prepare_pair
from .partition import region_labels, region_summary
from .rigidity import FORMS
from .budget import gb
from .schedule import stage_text
from .training import (DEVICES, LOSSES, REFINE_STEPS, RIGIDITY, RunFailed, Settings, Training, out_of_memory,
                       checkpoint_grid, checkpoint_level, flow_from_checkpoint, load_checkpoint,
                       settings_to_resume, trajectory_frames)
from .wasserstein import KERNELS


def frame_paths(folder, count):
    """frame_00.mrc ... one per frame, zero-padded so they sort in order."""
    digits = max(2, len(str(count - 1)))
    return [os.path.join(folder, f'frame_{i:0{digits}d}.mrc') for i in range(count)]


def write_frames(folder, frames, grid):
    """Write every frame on the initial map's grid, all or none; returns the paths.

    Each frame goes to a temporary file first and the set is renamed into place only
    when all are written, so a full disk or a file-size limit never leaves a set that
    looks whole but is not; frames of an older run beyond this set are removed, so a
    folder never mixes two runs.
    """
    paths = frame_paths(folder, len(frames))
    staged = []
    try:
        for values in frames:
            fd, tmp = tempfile.mkstemp(prefix='.frame-', suffix='.part', dir=folder)
            os.close(fd)
            staged.append(tmp)
            write_map(tmp, values, grid)
    except (OSError, ValueError) as e:
        for tmp in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
        why = getattr(e, 'strerror', None) or str(e)
        raise MapError(f'writing the frames to {folder} failed at frame {len(staged) - 1} of {len(frames)} '
                       f'({why}); none of this set was written, older files there are as they were: free '
                       f'space or choose another folder') from e
    for tmp, path in zip(staged, paths):
        os.replace(tmp, path)
    for old in glob.glob(os.path.join(glob.escape(folder), 'frame_*.mrc')):
        if old not in paths:
            os.unlink(old)
    return paths


def _settings(args, checkpoint=None):
    """The settings given, over the defaults, or over the checkpoint's when resuming (so that a
    run goes on as it was started without its options typed again; the device is this machine's)."""
    s = Settings() if checkpoint is None else settings_to_resume(checkpoint)
    for name in ('steps', 'frames', 'depth', 'width', 'lr', 'loss', 'epsilon', 'sinkhorn_iterations',
                 'kernel', 'bin', 'seed', 'device', 'resolution', 'refine', 'rigidity', 'rigidity_form',
                 'particles'):
        if getattr(args, name) is not None:
            setattr(s, name, getattr(args, name))
    return s.check()


def write_loss_log(path, losses):
    """loss.log: one line per step, written whole or not at all."""
    with open(path + '.tmp', 'w') as f:
        f.write('# step loss\n')
        f.writelines(f'{i + 1} {loss:.9g}\n' for i, loss in enumerate(losses))
    os.replace(path + '.tmp', path)


def rigidity_values(text):
    """'0.1' or '0.1,0.2,…' as a tuple of floats (argparse type)."""
    try:
        return tuple(float(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(f'rigidity must be a number or numbers separated by commas, not {text!r}')


def level_value(text):
    """--level0/--level1: a density value or 'auto'."""
    if text.strip().lower() == 'auto':
        return LevelSpec('auto')
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'a level is a number or auto, not {text!r}')


def _level(args, i, checkpoint=None):
    """The level asked for map i by --level, --enclose-volume or --sd-level (None: auto; when
    resuming, the checkpoint's)."""
    volume, sd = getattr(args, f'enclose_volume{i}'), getattr(args, f'sd_level{i}')
    if volume is not None:
        return LevelSpec('volume', volume)
    if sd is not None:
        return LevelSpec('sd', sd)
    level = getattr(args, f'level{i}')
    if level is None and checkpoint is not None and checkpoint.get(f'level{i}') is not None:
        return checkpoint_level(checkpoint, i)
    return level


def _interruptible():
    """A stop flag that Ctrl-C sets, so an interrupted run still writes what it has."""
    flag = threading.Event()
    if threading.current_thread() is threading.main_thread():
        def handler(signum, frame):
            print('\nstopping after this step; frames and checkpoint will be written', flush=True)
            flag.set()
        signal.signal(signal.SIGINT, handler)
    return flag


def run_morph(args):
    if args.more and not args.resume:
        raise MapError('--more adds steps to a run from its checkpoint: give --resume DIR/flow.pt too')
    checkpoint = load_checkpoint(args.resume) if args.resume else None
    settings = _settings(args, checkpoint)
    if os.path.exists(args.initial) and os.path.exists(args.target) and os.path.samefile(args.initial, args.target):
        raise MapError(f'{args.initial} is both the initial and the target map: morph onto a map of the other state')
    initial, grid0 = read_map(args.initial)
    target, grid1 = read_map(args.target)
    truth = read_map(args.truth) if args.truth else None      # read now: a bad file should not wait for training
    regions, grid_r = read_map(args.partition) if args.partition else (None, None)
    pair = prepare_pair(initial, grid0, target, grid1, _level(args, 0, checkpoint), _level(args, 1, checkpoint),
                        regions=regions, regions_grid=grid_r)
    training = Training(pair, settings, checkpoint, args.more)
    output_folder(args.out)
    with claim_folder(args.out, f'cryotrans morph {os.path.basename(args.initial)}'):
        return _train(args, pair, training, truth, checkpoint)


def _train(args, pair, training, truth, checkpoint):
    """Train into args.out (held by this run), write the frames and report."""
    grid0 = pair.grid
    ckpt_path = os.path.join(args.out, 'flow.pt')
    log_path = os.path.join(args.out, 'loss.log')
    print(f'{int((pair.initial > 0).sum())} particles from {args.initial} (level {pair.level0:.4g}), '
          f'grid {grid0.shape[::-1]} at {grid0.voxel_size[0]:.3g} Å; device {training.device}; '
          f'schedule: {"; ".join(stage_text(stage) for stage in training.plan)}; '
          f'memory about {gb(training.memory.total)}'
          + (' (activations recomputed in the backward pass, to fit)' if training.memory.recompute else '')
          + (f'; resuming at step {training.step} of {training.total_steps}' if checkpoint else ''), flush=True)
    if pair.regions is not None:
        print(region_summary(pair, training.settings), flush=True)
    every = max(1, args.report_every)

    def progress(step, steps, loss, elapsed):
        ended = training.stage_ended_note(step)
        if ended:
            print(f'step {step}: {ended}', flush=True)
        begins = training.beginning_note(step)
        if begins:
            print(f'{step} steps done, loss {loss:.6g}; now {begins}', flush=True)
        if step % every == 0 or step == steps:
            print(f'step {step}/{steps}  loss {loss:.6g}  {elapsed:.1f} s  ({training.time_left_text()})', flush=True)

    stop = _interruptible()
    try:
        done = training.run(progress, stop.is_set, ckpt_path, every)
    except RunFailed as e:
        write_loss_log(log_path, training.losses)
        kept = (f'{ckpt_path} keeps step {load_checkpoint(ckpt_path)["step"]}, the last checkpoint before it '
                f'(cryotrans frames makes its frames)' if os.path.exists(ckpt_path) else 'no checkpoint was written')
        raise MapError(f'{e}; no frames written, {kept}') from e
    write_loss_log(log_path, training.losses)
    again = f'{ckpt_path} keeps the trained flow: cryotrans frames {ckpt_path} {args.initial} --out FOLDER makes them'
    try:
        frames = training.frames()
    except Exception as e:
        if out_of_memory(e):
            raise MapError(f'making the frames ran out of memory ({e}); {again} where there is more') from e
        raise
    try:
        write_frames(args.out, frames, grid0)
    except MapError as e:
        raise MapError(f'{e}; {again} again') from e
    print(f'{"finished" if done else "stopped at step %d;" % training.step} {len(frames)} frames, '
          f'checkpoint and loss log in {args.out}; {training.elapsed:.1f} s training', flush=True)
    print(training.verdict(frames).summary())
    for line in motion_report(training):
        print(line)
    if truth is not None:
        truth, gridt = truth
        if not same_grid(gridt, grid0):
            truth = resample(truth, gridt, grid0)
        vs = grid0.voxel_size
        print(f'FSC(0.5) vs truth: generated {fsc_resolution(frames[-1], truth, vs):.2f} Å, '
              f'target {fsc_resolution(pair.target, truth, vs):.2f} Å')
    return 0 if done else 130


def run_frames(args):
    state = load_checkpoint(args.checkpoint)
    initial, grid = read_map(args.initial)
    trained = checkpoint_grid(state)
    if not same_box(trained, grid):
        raise MapError(f'the flow was trained on a box from {trained.box_text()}, and {args.initial} fills '
                       f'another: the flow moves points of its own box, so apply it to a map resampled onto that '
                       f'box (in ChimeraX: volume resample #N onGrid <the map it was trained on>)')
    level = state['level0'] if args.level0 is None else args.level0
    values = above_level(initial, level, grid.voxel_size)
    peak = float(values.max())
    if peak <= 0:
        raise MapError(f'{args.initial}: no density above level {level:.4g}')
    regions = state.get('regions')
    if regions is not None:
        if tuple(regions.shape) != grid.shape:
            raise MapError(f'the flow was trained with regions on a {tuple(regions.shape)[::-1]} grid, '
                           f'{args.initial} is {grid.shape[::-1]}: apply it to a map on the same grid')
        regions = region_labels(regions.numpy(), values > 0)
    result = trajectory_frames(flow_from_checkpoint(state), values / peak, grid, peak, regions=regions)
    output_folder(args.out)
    with claim_folder(args.out, f'cryotrans frames {os.path.basename(args.checkpoint)}'):
        paths = write_frames(args.out, result, grid)
    print(f'{len(paths)} frames written to {args.out}')
    return 0


def same_box(a, b):
    """Whether two grids fill the same box in space (to half a voxel), whatever their voxel sizes."""
    tol = 0.5 * max(a.voxel_size + b.voxel_size)
    return all(abs(x - y) <= tol for x, y in zip(a.corner + a.extent, b.corner + b.extent))


def run_fsc(args):
    a, grid_a = read_map(args.map1)
    b, grid_b = read_map(args.map2)
    if not same_grid(grid_a, grid_b):
        b = resample(b, grid_b, grid_a)
    for cutoff in (0.5, 0.143):
        print(f'FSC({cutoff}) {fsc_resolution(a, b, grid_a.voxel_size, cutoff):.2f} Å')
    print(f'correlation {correlation(a, b):.4f}')
    return 0


def parser():
    p = argparse.ArgumentParser(prog='cryotrans', description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='command', required=True)

    m = sub.add_parser('morph', help='train a flow from the initial map to the target map')
    m.add_argument('initial', help='high-resolution map (MRC/CCP4)')
    m.add_argument('target', help='low-resolution map of the other state')
    m.add_argument('--out', required=True, help='folder for frames, flow.pt and loss.log')
    for i, which in ((0, 'initial'), (1, 'target')):
        g = m.add_mutually_exclusive_group()
        g.add_argument(f'--level{i}', type=level_value, metavar='LEVEL|auto',
                       help=f'{which} map density level (default auto: ' +
                            ('the volume the target encloses)' if i == 0 else 'half height)'))
        g.add_argument(f'--enclose-volume{i}', type=float, metavar='Å³',
                       help=f'{which} map level enclosing this volume (dust left out)')
        g.add_argument(f'--sd-level{i}', type=float, metavar='N',
                       help=f'{which} map level at N standard deviations from zero, as ChimeraX\'s sdLevel')
    m.add_argument('--steps', type=int, help=f'training steps (default {Settings.steps})')
    m.add_argument('--resolution', type=float,
                   help="the target map's resolution in Å: then refine against it at that resolution")
    m.add_argument('--refine', type=int,
                   help=f'refinement steps after the others (default {REFINE_STEPS} with --resolution)')
    m.add_argument('--partition', metavar='LABELS.mrc',
                   help='region map on the initial map\'s grid (0: no region, 1, 2, …: regions), '
                        'one velocity field per region')
    m.add_argument('--rigidity', type=rigidity_values, metavar='λ[,λ2,…]',
                   help=f'how rigid each region is held, one value or one per region '
                        f'(default {RIGIDITY:g} with --partition, else 0)')
    m.add_argument('--rigidity-form', choices=FORMS, help='how rigidity is measured (default deformation)')
    m.add_argument('--frames', type=int, help='Euler steps M; M + 1 frames are written (default 10)')
    m.add_argument('--loss', choices=LOSSES)
    m.add_argument('--lr', type=float, help='Adam learning rate (default 1e-3)')
    m.add_argument('--width', type=int, help='velocity MLP width (default 100)')
    m.add_argument('--depth', type=int, help='velocity MLP layers (default 3)')
    m.add_argument('--epsilon', type=float, help='entropic regularisation on the unit box (default 1e-4)')
    m.add_argument('--sinkhorn-iterations', type=int, help='Sinkhorn iterations per step (default 5)')
    m.add_argument('--kernel', choices=KERNELS, help='how the Sinkhorn kernel is applied (default fast)')
    m.add_argument('--bin', type=int, help='0: multi-scale (default); k: train on maps binned by k')
    m.add_argument('--particles', type=int, metavar='N',
                   help=f'most particles a training step moves (default {Settings.particles}; 0: all of them)')
    m.add_argument('--seed', type=int)
    m.add_argument('--device', choices=DEVICES)
    m.add_argument('--report-every', type=int, default=50, help='print and checkpoint every N steps')
    m.add_argument('--resume', metavar='FLOW.pt',
                   help='go on from this checkpoint, with its settings and levels unless given here')
    m.add_argument('--more', type=int, default=0, metavar='N',
                   help='with --resume: train N steps beyond the checkpoint\'s run, on its last stage')
    m.add_argument('--truth', help='a map of the true target state, to report FSC against')
    m.set_defaults(run=run_morph)

    f = sub.add_parser('frames', help='frames of a saved flow applied to a map, without training')
    f.add_argument('checkpoint')
    f.add_argument('initial')
    f.add_argument('--out', required=True)
    f.add_argument('--level0', type=float, help="default: the level the flow was trained with")
    f.set_defaults(run=run_frames)

    c = sub.add_parser('fsc', help='FSC resolution and correlation of two maps')
    c.add_argument('map1')
    c.add_argument('map2')
    c.set_defaults(run=run_fsc)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except MapError as e:
        print(f'cryotrans: error: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
