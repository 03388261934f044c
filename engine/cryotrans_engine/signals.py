"""Ctrl-C (SIGINT) and a scheduler's SIGTERM on the command line: never a traceback, never half a file.

The first signal while a run trains asks it to stop after the current step: the checkpoint, the
loss log and the frames so far are written, and the command ends with a non-zero exit.  Any other
signal (a second one, or one while the command starts or writes its results) ends the command at
once: Stopped is raised where it is, so that each writer removes its temporary file and each
folder claim is released on the way out (files.py, checkpoint.py, maps.FolderClaim).
"""

import signal
import threading

CAUGHT = (signal.SIGINT, signal.SIGTERM)


class Stopped(BaseException):
    """A signal ended the command at once (a BaseException, as KeyboardInterrupt is, so that no
    `except Exception` takes it for an error to handle)."""

    def __init__(self, signum):
        super().__init__(f'stopped by {signal_name(signum)}')
        self.signum = signum


def signal_name(signum):
    return 'Ctrl-C (SIGINT)' if signum == signal.SIGINT else signal.Signals(signum).name


class Signals:
    """Catches SIGINT and SIGTERM while a command runs (a with block, on the main thread; elsewhere it
    does nothing).  Called, it says whether a run should stop: the training loop's stop callback."""

    def __init__(self, say=print):
        self.say = say
        self.signum = None        # the signal that asked a run to stop after its step
        self.graceful = False     # a run is training: the first signal stops it after the step
        self.stopping = ('stopping after this step; the checkpoint and frames so far will be written (a second '
                         'signal stops at once)')     # what the first signal does, in words
        self._before = {}

    def __call__(self):
        return self.signum is not None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._before = {s: signal.signal(s, self._caught) for s in CAUGHT}
        return self

    def __exit__(self, *exc):
        for s, handler in self._before.items():
            signal.signal(s, handler)
        self._before = {}

    def _caught(self, signum, frame):
        if self.graceful and self.signum is None:
            self.signum = signum
            self.say(f'\n{signal_name(signum)}: {self.stopping}')
            return
        raise Stopped(signum)
