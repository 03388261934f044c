"""Checkpoints: a run's whole state on disk, written atomically, read safely, resumed bit for bit.

A checkpoint (flow.pt) holds the flow's weights, the optimiser, the schedule as run, the
losses, and what the flow needs to be used again: the grid of the initial map, the levels,
the regions and the settings (trained.py reads it as a TrainedFlow).
"""

import io
import os
import tempfile
from dataclasses import asdict, fields

import torch

from .errors import CheckpointError, OutputError
from .flow import Flow
from .maps import follow_umask
from .levels import LevelSpec
from .objective import Stage
from .schedule import Plan
from .settings import Settings

CHECKPOINT_FORMAT = 1


def state_of(training, kept=False):
    """The run's whole state as plain tensors and numbers (loads with weights_only=True).

    kept: with the weights and the optimiser's moments copied to the CPU, so that the state stays as
    it is while the run trains on (the weights otherwise are the flow's own tensors, changed in place).
    """
    g = training.pair.grid
    own = _copied if kept else (lambda tensors: tensors)
    return {
        'format': CHECKPOINT_FORMAT,
        'settings': asdict(training.settings),
        'schedule': [list(p) for p in training.plan],
        'step': training.step,
        'more': training.more,
        'elapsed': training.elapsed,
        'flow': own(training.flow.state_dict()),
        'optimizer': own(training.optimizer.state_dict()),
        'losses': torch.tensor(training.losses, dtype=torch.float64),
        'penalties': torch.tensor(training.penalties, dtype=torch.float64),
        'scales': dict(training.scales),
        'fingerprints': training.pair.fingerprints(),
        'grid': {'shape': list(g.shape), 'voxel_size': list(g.voxel_size), 'origin': list(g.origin)},
        'level0': training.pair.level0,
        'level1': training.pair.level1,
        'peak': training.pair.peak,
        'regions': None if training.pair.regions is None else torch.from_numpy(training.pair.regions),
    }


def _copied(value):
    """A copy on the CPU of every tensor in nested dicts and lists (a state_dict)."""
    if torch.is_tensor(value):
        return value.detach().to('cpu', copy=True)
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copied(v) for v in value)
    return value


def restore(training, ckpt):
    """Put a Training where a checkpoint of the same maps and settings left it (CheckpointError if not)."""
    _same_maps(ckpt, training.pair)
    saved = ckpt['settings']        # as resolved when it was written
    here = asdict(training.settings)
    differ = [f'{k} {saved[k]} (here {here[k]})' for k in saved if k != 'device' and saved[k] != here[k]]
    if differ:
        longer = ('; to train further, add more N (the CLI: --more N)'
                  if saved['steps'] != here['steps'] or saved['refine'] != here['refine'] else '')
        raise CheckpointError(f'the checkpoint was trained with other settings: {", ".join(differ)}; '
                       f'resume with the same ones (left out, the checkpoint\'s are used){longer}')
    if 'schedule' in ckpt:      # the stages it was trained on, less the steps added (they are added again)
        stored = Plan(Stage(*stage) for stage in ckpt['schedule'])
        stored.lengthen_last(-int(ckpt.get('more', 0)))
        training.plan = stored
    _load_weights(training.flow, ckpt)
    check_flow(training.flow)
    training.optimizer.load_state_dict(ckpt['optimizer'])   # refinement's own, past its first step
    training.step = int(ckpt['step'])
    training.losses = ckpt['losses'].tolist()
    training.penalties = ckpt['penalties'].tolist() if 'penalties' in ckpt else []
    training.scales = dict(ckpt.get('scales', {}))
    training.elapsed = float(ckpt.get('elapsed', 0.0))
    training.more = int(ckpt.get('more', 0))


def _same_maps(ckpt, pair):
    """The checkpoint's maps, levels and regions are these, or one line naming which differs."""
    saved, here = ckpt.get('fingerprints') or {}, pair.fingerprints()
    if saved == here:
        return
    count = int(ckpt['regions'].max()) if ckpt.get('regions') is not None else 1
    if 'regions' in saved and 'regions' not in here:
        raise CheckpointError(f'the checkpoint was trained with a partition into {count} regions: resume with the same '
                              f'region map (partition, in the CLI --partition)')
    if 'regions' in here and 'regions' not in saved:
        raise CheckpointError('the checkpoint was trained without a partition: resume without one')
    words = {'initial': 'the initial map (or its level0)', 'target': 'the target map (or its level1)',
             'regions': 'the region map'}
    differ = [words[name] for name in words if saved.get(name) != here.get(name)]
    raise CheckpointError(f'the checkpoint was trained on other maps or levels than these: {" and ".join(differ)} '
                          f'{"differs" if len(differ) == 1 else "differ"}; resume with the maps, levels and regions it '
                          f'was trained on')


def _load_weights(flow, state):
    """The checkpoint's weights into a flow made from its settings, or one line when they do not fit."""
    try:
        flow.load_state_dict(state['flow'])
    except (RuntimeError, KeyError) as e:
        s = state['settings']
        raise CheckpointError(f'the checkpoint\'s weights do not fit its own settings (width {s.get("width")}, depth '
                              f'{s.get("depth")}, {flow.regions} region{"s" if flow.regions > 1 else ""}): the file was '
                              f'changed or damaged; train again or use the flow.pt the run wrote') from e


def save_checkpoint(path, state):
    """Write a checkpoint atomically: an interrupted write leaves the old one whole."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(suffix='.pt', dir=folder)
    os.close(fd)
    try:
        torch.save(state, tmp)
        follow_umask(tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:     # torch says a short write as "unexpected pos N vs M"
        os.unlink(tmp)
        kept = 'the checkpoint written before is kept whole' if os.path.exists(path) else 'no checkpoint is kept'
        raise OutputError(f'writing the checkpoint {path} failed: the file could not be written whole (disk full '
                       f'or a file-size limit; {getattr(e, "strerror", None) or e}); {kept}: free space or '
                       f'choose another folder') from e
    except BaseException:
        os.unlink(tmp)
        raise


def settings_to_resume(checkpoint, **given):
    """The settings a checkpoint was trained with, those given over them; the device is this
    machine's own choice (auto), not the one the checkpoint was made on.  Without a checkpoint
    (None): those given over the defaults."""
    if checkpoint is None:
        return Settings(**given)
    return Settings(**{**checkpoint['settings'], 'device': Settings.device, **given})


def checkpoint_level(checkpoint, i):
    """The level map i was trained at, as a LevelSpec (for resuming without typing it)."""
    return LevelSpec('value', float(checkpoint[f'level{i}']), 'the checkpoint\'s')


def load_checkpoint(path):
    """Read a checkpoint safely (weights_only) and check it is one of ours."""
    return _read(path, path)


def checkpoint_bytes(state):
    """A checkpoint as the bytes a flow.pt holds, to keep it inside another file (a ChimeraX session)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def checkpoint_from_bytes(data, name='the saved flow'):
    """A checkpoint from checkpoint_bytes, read and checked as load_checkpoint reads a file."""
    return _read(io.BytesIO(data), name)


def _read(source, name):
    """A checkpoint from a path or a file object, named in messages as name."""
    try:
        state = torch.load(source, map_location='cpu', weights_only=True)
    except FileNotFoundError as e:
        raise CheckpointError(f'{name}: no such checkpoint') from e
    except Exception as e:      # PyTorch's own message would advise unsafe loading: not ours to pass on
        raise CheckpointError(f'{name}: not a CryoTRANS checkpoint (not a flow.pt that cryotrans wrote, '
                       f'or a damaged one)') from e
    if not isinstance(state, dict) or state.get('format') != CHECKPOINT_FORMAT:
        raise CheckpointError(f'{name}: not a CryoTRANS flow checkpoint (format {CHECKPOINT_FORMAT})')
    missing = [k for k in ('settings', 'flow', 'step', 'grid', 'level0') if k not in state]
    if missing or not isinstance(state['settings'], dict):
        raise CheckpointError(f'{name}: an incomplete CryoTRANS checkpoint (no {", ".join(missing) or "settings"})')
    known = {f.name for f in fields(Settings)}
    state['settings'] = {k: v for k, v in state['settings'].items() if k in known}
    return state


def flow_from_checkpoint(state):
    """The trained flow stored in a checkpoint, ready to make frames."""
    settings = Settings(**state['settings'])
    regions = state.get('regions')
    flow = Flow(settings.depth, settings.width, settings.frames, 1 if regions is None else int(regions.max()))
    _load_weights(flow, state)
    return check_flow(flow)


def check_flow(flow):
    """A flow whose weights are all finite numbers, or CheckpointError: a diverged flow moves nothing sensibly."""
    if not all_finite(flow.parameters()):
        raise CheckpointError('the checkpoint holds a diverged flow (weights that are not finite numbers); '
                       'train again with a lower lr')
    return flow


def all_finite(tensors, *also):
    """Whether some tensors are all finite numbers and the boolean tensors `also` true (one device sync)."""
    checks = [torch.isfinite(t).all() for t in tensors] + list(also)
    return bool(torch.stack(checks).all()) if checks else True
