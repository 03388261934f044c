"""What a run writes into its folder: the frames and the loss log, each whole or not at all."""

import glob
import os
import tempfile

from .errors import OutputError
from .maps import write_map

CHECKPOINT = 'flow.pt'
LOSS_LOG = 'loss.log'


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
    except BaseException as e:           # a full disk, or a signal (signals.Stopped): no partial files left
        for tmp in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
        if not isinstance(e, (OSError, ValueError)):
            raise
        why = getattr(e, 'strerror', None) or str(e)
        raise OutputError(f'writing the frames to {folder} failed at frame {len(staged) - 1} of {len(frames)} '
                          f'({why}); none of this set was written, older files there are as they were: free '
                          f'space or choose another folder') from e
    for tmp, path in zip(staged, paths):
        os.replace(tmp, path)
    for old in glob.glob(os.path.join(glob.escape(folder), 'frame_*.mrc')):
        if old not in paths:
            os.unlink(old)
    return paths


def check_inputs_kept(folder, frame_count, inputs, checkpoint=None):
    """Refuse (OutputError) a results folder where writing frame_count frames, flow.pt and loss.log, or
    removing an older run's frames, would write over or delete one of the command's inputs (paths; None
    ignored).  checkpoint: the flow.pt being resumed, which the run goes on writing (the same run)."""
    outputs = frame_paths(folder, frame_count) + glob.glob(os.path.join(glob.escape(folder), 'frame_*.mrc'))
    outputs += [os.path.join(folder, name) for name in (CHECKPOINT, LOSS_LOG)]
    written = {os.path.realpath(p) for p in outputs}
    if checkpoint is not None:
        written.discard(os.path.realpath(checkpoint))
    for path in inputs:
        if path is not None and os.path.realpath(path) in written:
            raise OutputError(f'{path} is one of this command\'s inputs, and the results written to {folder} would '
                              f'write over it or remove it: choose another folder for the results (or move the input)')


def write_loss_log(path, losses):
    """loss.log: one line per step, written whole or not at all."""
    try:
        with open(path + '.tmp', 'w') as f:
            f.write('# step loss\n')
            f.writelines(f'{i + 1} {loss:.9g}\n' for i, loss in enumerate(losses))
        os.replace(path + '.tmp', path)
    except BaseException:
        if os.path.exists(path + '.tmp'):
            os.unlink(path + '.tmp')
        raise
