"""`cryotrans morph #1 to #2`: train a flow from one map onto another and open its frames.

Thin: turns typed keywords into engine Settings (the training options' keywords are made from
the engine's declaration, settings.py), reads the maps where they sit in the scene, opens the
trajectory as a volume series beside the inputs and hands the training to a background run
(run.py) that refreshes it.
"""

import copy
import os

from chimerax.core.commands import (BoolArg, CmdDesc, EnumOf, FloatArg, ListOf, ModelIdArg, NonNegativeFloatArg,
                                    NonNegativeIntArg, Or, PositiveFloatArg, PositiveIntArg,
                                    SaveFolderNameArg)
from chimerax.core.errors import UserError
from chimerax.map import MapArg, MapsArg

from cryotrans_engine import MorphJob, OutputError, SettingsError
from cryotrans_engine.budget import gb
from cryotrans_engine.files import check_inputs_kept
from cryotrans_engine.maps import claim_folder, output_folder
from cryotrans_engine.partition import region_summary
from cryotrans_engine.checkpoint import checkpoint_level, settings_to_resume
from cryotrans_engine.settings import OPTIONS
from cryotrans_engine.stage_notes import refinement_note
from .flows import FlowArg, flow_of
from .map_levels import morph_pair, typed_spec
from .pytorch_install import cpu_build_note, no_cuda_message
from .run import MorphRun
from .run_session import keep_runs_in_sessions
from .volumes import map_files, open_series, region_labels_on


def cryotrans_morph(session, initial, to=None, level0=None, level1=None, enclose_volume0=None, enclose_volume1=None,
                    sd_level0=None, sd_level1=None, report_every=50, model_id=None,
                    directory=None, wait=None, partition=None, count=None, color_regions=True, resume=None, more=0,
                    save_dir=None, **settings):
    """Open the series at once, train in a worker thread that refreshes it, and return the series.

    directory: the folder for the frames, loss log and flow.pt (saveDir, its old name, still works).
    wait (default: true without a GUI) returns only when training has ended, for scripts.
    resume: the flow to go on from (a series whose run ended, or a flow.pt), with its settings and
    levels unless typed; more: steps beyond its run.  partition auto: the regions are found from the
    motion of the run's first stage (count: that many bodies) and shown as a region map as soon as found.
    """
    initial, target = _the_two_maps(initial, to)
    if directory is not None and save_dir is not None:
        raise UserError('give the output folder once: directory (saveDir is its old name)')
    save_dir = save_dir if directory is None else directory
    if model_id is not None and session.models.have_id(model_id):
        raise UserError('model #%s already exists; choose another modelId' % '.'.join(map(str, model_id)))
    if target is initial:
        raise UserError(f'the initial and target maps are the same map (#{initial.id_string}); '
                        'morph onto a map of the other state')
    typed = (typed_spec(0, level0, enclose_volume0, sd_level0), typed_spec(1, level1, enclose_volume1, sd_level1))
    import torch
    if settings.get('device') == 'cuda' and not torch.cuda.is_available():
        raise UserError(f'cryotrans morph: {no_cuda_message(torch)}')
    if more and resume is None:
        raise SettingsError('more adds steps to a run from its flow: give resume #N (its series) or resume '
                            '<folder>/flow.pt too')
    checkpoint = origin = None
    if resume is not None:
        flow, origin, _ = flow_of(session, resume)
        checkpoint = copy.deepcopy(flow.state)      # training changes the optimiser state it is given in place
    if checkpoint is not None:       # the levels it was trained with, unless typed
        typed = tuple(checkpoint_level(checkpoint, i) if spec is None else spec for i, spec in enumerate(typed))
    auto = partition == 'auto'
    if auto:
        partition = None
    elif count is not None:
        raise UserError('count is how many bodies partition auto finds: give partition auto too')
    if partition is not None and partition in (initial, target):
        raise UserError(f'partition #{partition.id_string} is one of the maps being morphed; give the region map '
                        f'(cryotrans partition #{initial.id_string} ... makes one)')
    labels = None if partition is None else region_labels_on(initial, partition)
    pair = morph_pair(session.logger, initial, target, typed, labels)
    given = {k: v for k, v in settings.items() if v is not None}
    s = settings_to_resume(checkpoint, **given)
    job = MorphJob(pair, s, checkpoint, more, auto=auto, count=count)
    claim = None
    if save_dir is not None:
        _not_in_use(session, save_dir)
        flow_file = resume if isinstance(resume, str) else None
        inputs = map_files(initial, target, *([partition] if partition is not None else [])) + [flow_file]
        check_inputs_kept(save_dir, job.training.settings.frames + 1, inputs, flow_file)
        output_folder(save_dir)
        claim = claim_folder(save_dir, f'cryotrans morph #{initial.id_string} to #{target.id_string} in ChimeraX')
    try:
        run = _start(session, initial, target, job, s, origin, 'auto' if auto else partition, model_id, save_dir,
                     report_every, color_regions, claim)
    except BaseException:
        if claim is not None:
            claim.release()
        raise
    if wait is None:
        wait = not session.ui.is_gui
    if wait:
        run.wait()
    return run.series


def _start(session, initial, target, job, s, origin, partition, model_id, save_dir, report_every,
           color_regions, claim):
    """Open the series (the initial map until the first refresh) and start training into it: the MorphRun."""
    pair, training = job.pair, job.training
    name = series_name(initial, target)
    # Until the first refresh every frame shows the initial map above its level.  Computing the
    # flow's frames here instead would run torch on the main thread, and a worker thread's
    # training is then up to 1.8x slower on CPU (measured: two OpenMP thread teams compete).
    start = pair.initial * pair.peak
    series = open_series(session, [start] * (s.frames + 1), initial, name, model_id, last='prediction')
    initial.display = False
    session.logger.info(f'{name}: {int((pair.initial > 0).sum())} voxels of #{initial.id_string} above '
                        f'level {pair.level0:.4g} move onto #{target.id_string} above level {pair.level1:.4g}; '
                        f'{s.steps} steps{_refinement(training, target)}{_resumed(training, origin)} on '
                        f'{training.device} (memory about {gb(training.memory.total)}); '
                        f'{_particles_note(training)}frames as #{series.id_string}, '
                        f'refreshed every {report_every} steps'
                        + _partition_words(pair, training, partition))
    if training.device.type == 'cpu':
        import torch
        note = cpu_build_note(torch)
        if note:
            session.logger.warning(f'{name}: {note}')
    run = MorphRun(session, job, series, (initial, target), save_dir, report_every, color_regions, claim)
    keep_runs_in_sessions(session)
    run.start()
    return run


def _partition_words(pair, training, partition):
    if partition == 'auto':
        return ('; partition auto: the first stage trains one field, then its motion\'s rigid bodies become the '
                'regions')
    if partition is None:
        return ''
    return f'; {region_summary(pair, training.settings)} from #{partition.id_string}'


def series_name(initial, target):
    """The series' name (and its run's), after the maps' names: model numbers change when models are
    closed, moved or the session reopened, and a name holding them would then point at other maps."""
    return f'cryotrans {initial.name} to {target.name}'


def _the_two_maps(initial, to):
    """The initial map and the target, or what to type: `cryotrans morph #1 #2` reads both maps as the
    initial one (ChimeraX would say only 'Must specify one map, got 2')."""
    if len(initial) == 1 and to is not None:
        return initial[0], to
    ids = ' '.join(f'#{v.id_string}' for v in initial)
    if len(initial) == 2 and to is None:
        raise UserError(f'give the target map after "to": cryotrans morph #{initial[0].id_string} to '
                        f'#{initial[1].id_string}')
    if to is None:
        raise UserError(f'give the target map after "to": cryotrans morph {ids} to #N')
    raise UserError(f'give one initial map, not {len(initial)} ({ids}): cryotrans morph #N to #{to.id_string}')


def _not_in_use(session, save_dir):
    """A folder a running run writes to cannot take another's frames and checkpoint."""
    from .run import runs
    here = os.path.realpath(save_dir)
    for r in runs(session):
        if r.running and r.save_dir is not None and os.path.realpath(r.save_dir) == here:
            stop = 'cryotrans stop' + ('' if r.series.deleted else f' {r.where}')   # a closed series has no spec
            raise OutputError(f'{save_dir} is where {r.name} ({r.where}), still training, writes its frames and '
                              f'flow.pt: choose another directory, or {stop} first')


def _particles_note(training):
    """What the particle limit does to this run, when it does anything ('' otherwise)."""
    if not any(stage.particle_bin for stage in training.plan):
        return ''
    return (f'at most {training.settings.particles} particles a step (stages on finer grids take them from '
            f'coarser binnings); ')


def _resumed(training, origin):
    more = f' and {training.more} more' if training.more else ''
    return f'{more}, going on from step {training.step} of {origin}' if origin else ''


def _refinement(training, target):
    note = refinement_note(training.settings)
    return f', then {note} against #{target.id_string}' if note else ''


def option_arg(option):
    """The ChimeraX argument type for a training option as settings.py declares it: ChimeraX parses its
    kind and sign, Settings.resolved checks the rest (a larger least value, finite numbers)."""
    if option.choices:
        return EnumOf(option.choices)
    if option.kind is int:
        return PositiveIntArg if option.least >= 1 else NonNegativeIntArg
    number = PositiveFloatArg if option.above == 0 else NonNegativeFloatArg
    return ListOf(number) if option.kind is tuple else number


LEVEL_ARG = Or(EnumOf(['auto']), FloatArg)

morph_desc = CmdDesc(
    required=[('initial', MapsArg)],
    keyword=[('to', MapArg),
             ('level0', LEVEL_ARG), ('level1', LEVEL_ARG),
             ('enclose_volume0', PositiveFloatArg), ('enclose_volume1', PositiveFloatArg),
             ('sd_level0', FloatArg), ('sd_level1', FloatArg),
             *[(option.name, option_arg(option)) for option in OPTIONS if option.chimerax],
             ('partition', Or(EnumOf(['auto']), MapArg)), ('count', PositiveIntArg),
             ('color_regions', BoolArg),
             ('report_every', PositiveIntArg), ('model_id', ModelIdArg),
             ('directory', SaveFolderNameArg), ('wait', BoolArg),
             ('resume', FlowArg), ('more', PositiveIntArg),
             ('save_dir', SaveFolderNameArg)],      # directory's old name, still accepted
    hidden=['save_dir'],
    synopsis='morph a map onto another state\'s map by a learnt flow, as a volume series')
