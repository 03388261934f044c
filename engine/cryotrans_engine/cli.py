"""`cryotrans` on the command line: the engine without ChimeraX, for scripts and clusters.

    cryotrans morph INITIAL TARGET --out DIR [options]   train, write frames + checkpoint
    cryotrans frames CHECKPOINT INITIAL --out DIR        frames from a saved flow
    cryotrans move MODEL CHECKPOINT --out MOVED.pdb      an atomic model carried along a saved flow
    cryotrans fsc MAP1 MAP2 [--mask M] [--csv C]         FSC of two maps (fsc.py: the definition)
    cryotrans batch INITIAL TARGET... --seeds N --out DIR  every (target, seed) on Dask, the best kept
"""

import argparse
import os
import sys

# Only what needs no PyTorch here, so that Ctrl-C while it loads is caught (signals.py): the rest of
# the engine is imported by the command that needs it.
from .errors import CryoTransError, MapError, SettingsError
from .levels import LevelSpec
from .settings import OPTIONS
from .signals import Signals, Stopped


def _settings(args, checkpoint=None):
    """The settings given, over the defaults, or over the checkpoint's when resuming (so that a
    run goes on as it was started without its options typed again; the device is this machine's).
    The run checks them (Training)."""
    from .checkpoint import settings_to_resume
    given = {o.name: getattr(args, o.name) for o in OPTIONS if getattr(args, o.name) is not None}
    return settings_to_resume(checkpoint, **given)


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
        from .checkpoint import checkpoint_level
        return checkpoint_level(checkpoint, i)
    return level


def run_morph(args):
    from .checkpoint import load_checkpoint
    from .job import MorphJob
    from .files import check_inputs_kept
    from .maps import claim_folder, output_folder, read_map
    from .pair import prepare_pair
    if args.more and not args.resume:
        raise SettingsError('--more adds steps to a run from its checkpoint: give --resume DIR/flow.pt too')
    checkpoint = load_checkpoint(args.resume) if args.resume else None
    settings = _settings(args, checkpoint)
    if os.path.exists(args.initial) and os.path.exists(args.target) and os.path.samefile(args.initial, args.target):
        raise MapError(f'{args.initial} is both the initial and the target map: morph onto a map of the other state')
    initial, grid0 = read_map(args.initial)
    target, grid1 = read_map(args.target)
    truth = _truth(args, (initial, grid0), (target, grid1)) if args.truth else None   # a bad one should not wait
    auto = _auto(args)
    regions, grid_r = read_map(args.partition) if args.partition and not auto else (None, None)
    pair = prepare_pair(initial, grid0, target, grid1, _level(args, 0, checkpoint), _level(args, 1, checkpoint),
                        regions=regions, regions_grid=grid_r)
    job = MorphJob(pair, settings, checkpoint, args.more, auto=auto, count=args.count)
    check_inputs_kept(args.out, job.training.settings.frames + 1,
                      (args.initial, args.target, args.truth, None if auto else args.partition, args.resume),
                      args.resume)
    output_folder(args.out)
    with claim_folder(args.out, f'cryotrans morph {os.path.basename(args.initial)}'):
        return _train(args, job, truth, checkpoint)


def _auto(args):
    """Whether --partition auto was asked for (--count goes with it only)."""
    auto = args.partition == 'auto'
    if args.count is not None and not auto:
        raise SettingsError('--count is how many bodies --partition auto finds: give --partition auto too')
    return auto


def _train(args, job, truth, checkpoint):
    """Run the job into args.out (held by this run) and report."""
    from .budget import gb
    from .files import REGIONS
    from .fsc import compare_maps
    from .partition import region_summary
    from .schedule import stage_text
    pair, training = job.pair, job.training
    grid0 = pair.grid
    print(f'{int((pair.initial > 0).sum())} particles from {args.initial} (level {pair.level0:.4g}), '
          f'grid {grid0.shape[::-1]} at {grid0.voxel_size[0]:.3g} Å; device {training.device}; '
          f'schedule: {"; ".join(stage_text(stage) for stage in training.plan)}; '
          f'memory about {gb(training.memory.total)}'
          + (' (activations recomputed in the backward pass, to fit)' if training.memory.recompute else '')
          + (f'; resuming at step {training.step} of {training.total_steps}' if checkpoint else ''), flush=True)
    if pair.regions is not None:
        print(region_summary(pair, training.settings), flush=True)
    every = max(1, args.report_every)
    signals = args.signals
    found = []

    def progress(p):
        if p.step == p.total:               # training has ended: a signal now stops the writing at once
            signals.graceful = False
        for line in p.found:                # partition auto's bodies, as soon as they are found
            print(line, flush=True)
        found.extend(p.found)
        if p.ended:
            print(f'step {p.step}: {p.ended}', flush=True)
        if p.begins:
            print(f'{p.step} steps done, loss {p.loss:.6g}; now {p.begins}', flush=True)
        if p.step % every == 0 or p.step == p.total:
            print(f'step {p.step}/{p.total}  loss {p.loss:.6g}  {p.elapsed:.1f} s  ({training.time_left_text()})',
                  flush=True)

    signals.graceful = True
    try:
        result = job.run(progress, signals, args.out, every)
    finally:
        signals.graceful = False
    print(f'{"finished" if result.finished else "stopped at step %d;" % result.steps} {len(result.frames)} frames, '
          f'checkpoint and loss log in {args.out}; {result.elapsed:.1f} s training', flush=True)
    print(result.verdict.summary())
    for line in result.body_lines if not found else ():     # stopped before they were looked for
        print(line)
    if result.bodies is not None and result.regions is not None:
        print(f'the regions found: {os.path.join(args.out, REGIONS)} (reuse it with --partition)')
    for line in result.motion_lines:
        print(line)
    if truth is not None:
        values, grid, scores = truth
        generated = compare_maps(result.frames[-1], grid0, values, grid, names=('the prediction', args.truth))
        print('FSC(0.5) vs truth, as cryotrans fsc MAP TRUTH gives it: '
              + ', '.join(f'{name} {fsc.text(0.5)}' for name, fsc in (('generated', generated), *scores)))
    if signals.signum is not None:
        print(f'{Stopped(signals.signum)} at step {result.steps} of {result.total_steps}: go on with the same command '
              f'and --resume {os.path.join(args.out, "flow.pt")}', flush=True)
        return 128 + signals.signum
    return 0


def run_frames(args):
    from .files import check_inputs_kept, write_frames
    from .maps import claim_folder, output_folder, read_map
    from .trained import TrainedFlow
    flow = TrainedFlow.load(args.checkpoint)
    initial, grid = read_map(args.initial)
    try:
        frames = flow.frames(initial, grid, args.level0)
    except MapError as e:
        raise MapError(f'{args.initial}: {e}') from e
    check_inputs_kept(args.out, len(frames), (args.checkpoint, args.initial))
    output_folder(args.out)
    with claim_folder(args.out, f'cryotrans frames {os.path.basename(args.checkpoint)}'):
        paths = write_frames(args.out, frames, grid)
    print(f'{len(paths)} frames written to {args.out}')
    return 0


def run_move(args):
    """An atomic model fitted into the initial map, moved along the flow: each atom by its region's field."""
    from .carry import carry, carried_words
    from .files import refuse_input
    from .models import hydrogens, read_model, write_model
    from .restraints import bonds_by_distance
    from .trained import TrainedFlow
    refuse_input(args.out, [(args.model, 'the model being moved'), (args.checkpoint, 'the flow moving it')])
    flow = TrainedFlow.load(args.checkpoint)
    structure, xyz = read_model(args.model)
    bonds = None if args.no_restrain else bonds_by_distance(xyz, hydrogens(structure))
    frames, regions = carry(flow, xyz, bonds, every_frame=args.frames)
    write_model(args.out, structure, frames)
    print(f'{len(xyz)} atoms of {args.model} moved along {args.checkpoint}'
          f'{carried_words(xyz, frames, regions, flow.region_count, bonds)}; written to {args.out}'
          + (f' as {len(frames)} models, one per frame' if args.frames else ''))
    return 0


def _truth(args, initial, target):
    """--truth read, and the target and initial map files scored against it (before training, so that
    a truth that cannot be compared is refused at once): (values, grid, [(name, FSC)])."""
    from .fsc import compare_maps
    from .maps import read_map
    values, grid = read_map(args.truth)
    return values, grid, [(name, compare_maps(*m, values, grid, names=(path, args.truth)))
                          for name, m, path in (('target', target, args.target), ('initial', initial, args.initial))]


def run_fsc(args):
    """FSC of two map files where their headers place them (fsc.py says how), optionally masked."""
    from .files import refuse_input
    from .fsc import compare_maps
    from .maps import read_map
    if args.csv:
        refuse_input(args.csv, [(args.map1, 'one of the maps compared'), (args.map2, 'one of the maps compared'),
                                (args.mask, 'the mask')])
    a, grid_a = read_map(args.map1)
    b, grid_b = read_map(args.map2)
    mask = (*read_map(args.mask), None) if args.mask else None
    fsc = compare_maps(a, grid_a, b, grid_b, mask=mask, names=(args.map1, args.map2, args.mask))
    if args.csv:
        fsc.save_csv(args.csv)
    print(fsc.summary() + (f'; curve in {args.csv}' if args.csv else ''))
    return 0


def run_batch(args):
    """Every (target, seed) a task on Dask (batch.py); the exit status says whether every target has a result."""
    from .batch import morph_batch
    signals = args.signals
    _auto(args)
    signals.graceful = True                 # the first signal stops the waiting: finished tasks are kept
    signals.stopping = ('stopping: no more tasks start; the finished ones are kept and the summary written (a '
                        'second signal stops at once)')
    try:
        batch = morph_batch(args.initial, args.targets, args.out, _settings(args), args.seeds, _level(args, 0),
                            _level(args, 1), args.partition, args.scheduler, args.workers, args.threads,
                            args.best_by, say=lambda text: print(text, flush=True), stop=signals, count=args.count)
    finally:
        signals.graceful = False
    if signals.signum is not None:
        left = ', '.join(f'{t.name} seed {t.seed}' for t in batch.left)
        print(f'{Stopped(signals.signum)}: {len(batch.left)} task{"s" if len(batch.left) != 1 else ""} left'
              + (f' ({left})' if left else '') + '; the finished ones are kept: the same command runs the rest',
              flush=True)
        return 128 + signals.signum
    return 1 if batch.missing else 0


def _argument(option):
    """argparse's keywords for a training option as settings.py declares it (left out: None, the
    default or the checkpoint's)."""
    read = (dict(type=rigidity_values, metavar='λ[,λ2,…]') if option.kind is tuple else
            dict(type=option.kind, choices=option.choices or None, metavar='N' if option.kind is int else None))
    return dict(read, help=f'{option.help} (default {option.default_text})')


def parser():
    p = argparse.ArgumentParser(prog='cryotrans', description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='command', required=True)

    m = sub.add_parser('morph', help='train a flow from the initial map to the target map')
    m.add_argument('initial', help='high-resolution map (MRC/CCP4)')
    m.add_argument('target', help='low-resolution map of the other state')
    m.add_argument('--out', required=True, help='folder for frames, flow.pt and loss.log')
    _training_arguments(m)
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

    v = sub.add_parser('move', help='an atomic model fitted into the initial map, moved along a saved flow')
    v.add_argument('model', help='the model (PDB or mmCIF), in the initial map\'s coordinates')
    v.add_argument('checkpoint', help='the flow.pt a run wrote')
    v.add_argument('--out', required=True, help='the moved model: .pdb, or .cif for mmCIF')
    v.add_argument('--frames', action='store_true', help='write every frame as a model (1 … M + 1), not only the last')
    v.add_argument('--no-restrain', action='store_true',
                   help='the flow\'s positions as they are, without keeping bond lengths and angles')
    v.set_defaults(run=run_move)

    c = sub.add_parser('fsc', help='FSC resolution and correlation of two maps',
                       description='FSC of two maps where their headers place them: MAP2 is read at MAP1\'s '
                                   'voxels; resolution at 0.5 and 0.143 and the real-space correlation.')
    c.add_argument('map1', help='the map whose grid is used (MRC/CCP4)')
    c.add_argument('map2', help='the map compared with it, read at its voxels')
    c.add_argument('--mask', metavar='MASK.mrc', help='weights 0 (left out) to 1 (kept), soft edges allowed, '
                                                      'read at MAP1\'s voxels; both maps are multiplied by it')
    c.add_argument('--csv', metavar='CURVE.csv',
                   help='write the curve: shell, frequency_per_A, resolution_A, fsc')
    c.set_defaults(run=run_fsc)

    b = sub.add_parser('batch', help='one initial map onto many targets with several seeds, on Dask; the best '
                                     'seed of each target kept',
                       description='Every (target, seed) is a morph task on Dask distributed (pip install '
                                   '"cryotrans-engine[batch]"): a local cluster, or a running one (--scheduler). '
                                   'Writes DIR/runs/KEY per task, DIR/best/TARGET and DIR/summary.csv; a re-run '
                                   'skips the tasks finished. Exit status 0 when every target has a result, 1 '
                                   'when one has none (the summary says why), 2 for bad input, 130/143 when '
                                   'stopped by Ctrl-C/SIGTERM.')
    b.add_argument('initial', help='high-resolution map (MRC/CCP4)')
    b.add_argument('targets', nargs='+', metavar='target', help='maps of other states (e.g. 3D classes)')
    b.add_argument('--out', required=True, help='folder for runs/, best/ and summary.csv')
    b.add_argument('--seeds', type=int, default=1, metavar='N',
                   help='runs per target, with seeds --seed, --seed + 1, … (default 1)')
    _training_arguments(b)
    b.add_argument('--best-by', choices=('correlation', 'loss'), default='correlation',
                   help='the best seed: the highest correlation with the target, or the lowest final loss '
                        '(default correlation)')
    b.add_argument('--scheduler', metavar='ADDRESS',
                   help='a running Dask scheduler: tcp://HOST:8786 (e.g. a dask-jobqueue cluster\'s) or the JSON '
                        'file dask scheduler --scheduler-file wrote; default: a local cluster on this machine')
    b.add_argument('--workers', type=int, default=0, metavar='N',
                   help='worker processes of the local cluster, one task at a time each (default: one per core, '
                        'at most one per task; one when the tasks run on a GPU)')
    b.add_argument('--threads', type=int, default=0, metavar='N',
                   help='PyTorch threads a task (default: the cores shared out among the tasks that run at once)')
    b.set_defaults(run=run_batch)
    return p


def _training_arguments(p):
    """The levels, every training option (settings.OPTIONS) and the partition (a region map, or auto with
    its --count): what morph and batch share."""
    for i, which in ((0, 'initial'), (1, 'target')):
        g = p.add_mutually_exclusive_group()
        g.add_argument(f'--level{i}', type=level_value, metavar='LEVEL|auto',
                       help=f'{which} map density level (default auto: ' +
                            ('the volume the target encloses)' if i == 0 else 'half height)'))
        g.add_argument(f'--enclose-volume{i}', type=float, metavar='Å³',
                       help=f'{which} map level enclosing this volume (dust left out)')
        g.add_argument(f'--sd-level{i}', type=float, metavar='N',
                       help=f'{which} map level at N standard deviations from zero, as ChimeraX\'s sdLevel')
    for option in OPTIONS:
        p.add_argument(option.flag, **_argument(option))
    p.add_argument('--partition', metavar='LABELS.mrc|auto',
                   help='region map on the initial map\'s grid (0: no region, 1, 2, …: regions), '
                        'one velocity field per region; auto: found from the motion (--count)')
    p.add_argument('--count', type=int, metavar='N',
                   help='--partition auto finds the regions from the motion of the run\'s first stage and writes '
                        'them to regions.mrc beside the frames; --count N: N of them (default: as many as the '
                        'motion shows)')


def main(argv=None):
    args = None
    with Signals() as signals:
        try:
            args = parser().parse_args(argv)
            args.signals = signals
            return args.run(args)
        except CryoTransError as e:
            print(f'cryotrans: error: {e}', file=sys.stderr)
            return 2
        except Stopped as e:
            print(f'cryotrans: {e}; {_kept(args)}', file=sys.stderr)
            return 128 + e.signum


def _kept(args):
    """What a command stopped at once leaves: a morph's last checkpoint, else nothing (no partial files)."""
    if args is not None and args.command == 'batch':
        return f'the tasks finished are kept in {os.path.join(args.out, "runs")}: the same command runs the rest'
    path = os.path.join(args.out, 'flow.pt') if args is not None and args.command == 'morph' else None
    if path and os.path.exists(path):
        from .checkpoint import load_checkpoint
        return (f'{path} holds step {load_checkpoint(path)["step"]}: go on with the same command and --resume '
                f'{path}')
    return 'nothing was written'


if __name__ == '__main__':
    sys.exit(main())
