"""What a run writes into its folder: the frames, the loss log and a script that shows the frames in
ChimeraX, each whole or not at all."""

import glob
import os
import tempfile

from .errors import OutputError
from .maps import write_map

CHECKPOINT = 'flow.pt'
LOSS_LOG = 'loss.log'
REGIONS = 'regions.mrc'       # the region map partition auto found, written beside the frames
VIEWER = 'open_in_chimerax.py'

# A Python script, not a .cxc: a command script cannot name the series it opens (its model number
# depends on what else is open), and the level must be set on that series alone.
_VIEWER_SCRIPT = """\
# The frames of this cryotrans run as one volume series, shown at the level the run used ({level:.6g}):
# open this file in ChimeraX (open <this folder>/{name}).
import os
from chimerax.core.commands import quote_path_if_necessary, run
frames = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'frame_*.mrc')
series, = run(session, f'open {{quote_path_if_necessary(frames)}} vseries true')
run(session, f'volume #{{series.id_string}} level {level:.6g}')
"""


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
    outputs += [os.path.join(folder, name) for name in (CHECKPOINT, LOSS_LOG, REGIONS)]
    written = {os.path.realpath(p) for p in outputs}
    if checkpoint is not None:
        written.discard(os.path.realpath(checkpoint))
    for path in inputs:
        if path is not None and os.path.realpath(path) in written:
            raise OutputError(f'{path} is one of this command\'s inputs, and the results written to {folder} would '
                              f'write over it or remove it: choose another folder for the results (or move the input)')


def write_text(path, text):
    """A text file written whole or not at all (a temporary file renamed into place; removed on any
    failure or signal): what a reader finds is the old file or the new one."""
    try:
        with open(path + '.tmp', 'w') as f:
            f.write(text)
        os.replace(path + '.tmp', path)
    except BaseException:
        if os.path.exists(path + '.tmp'):
            os.unlink(path + '.tmp')
        raise


def refuse_input(path, inputs):
    """Refuse (OutputError) writing to path when it is one of a command's inputs: (path, words) pairs."""
    for given, words in inputs:
        if given is not None and os.path.exists(path) and os.path.exists(given) and os.path.samefile(path, given):
            raise OutputError(f'{path} is {words}: write the result to another file')


def write_loss_log(path, losses):
    """loss.log: one line per step, written whole or not at all."""
    write_text(path, '# step loss\n' + ''.join(f'{i + 1} {loss:.9g}\n' for i, loss in enumerate(losses)))


def write_viewer(folder, level):
    """open_in_chimerax.py: opened in ChimeraX, it opens the folder's frames as one volume series shown
    at level (the initial map's, in its units: the frames'); returns its path."""
    path = os.path.join(folder, VIEWER)
    try:
        write_text(path, _VIEWER_SCRIPT.format(level=level, name=VIEWER))
    except OSError as e:
        raise OutputError(f'writing {path} failed ({e.strerror or e}); the frames are written: open them in '
                          f'ChimeraX with open {os.path.join(folder, "frame_*.mrc")} vseries true') from e
    return path
