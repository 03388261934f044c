"""Background runs in real headless ChimeraX: `cryotrans morph ... wait false`, `cryotrans stop`, `cryotrans list`.

Headless, thread_safe runs its function on the calling (worker) thread, so the worker's
hand-overs wait on the run's queue until the main thread pumps them, as a cryotrans
command does.  Runs are long (steps 100000) and ended by a stop, so no timing is assumed;
the only waits are polls for the worker to have trained a few steps.
"""

import os
import threading
import time

import numpy as np
import pytest

from cryotrans_engine import Grid, load_checkpoint, write_map
from helpers import blob
from helpers import logged as cx

GRID = Grid((16, 16, 16), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
LONG = 'steps 100000 frames 3 wait false'
RUN = 'cryotrans initial.mrc to target.mrc'     # a run's name: the series', after its two maps


@pytest.fixture
def pair(session, tmp_path):
    """#1, #2: a blob and the same blob 6 Å further along x, at levels 0.6 and 0.2."""
    from chimerax.core.commands import run
    write_map(tmp_path / 'initial.mrc', 3 * blob(GRID, (13.0, 15.0, 15.0)), GRID)
    write_map(tmp_path / 'target.mrc', blob(GRID, (19.0, 15.0, 15.0)), GRID)
    run(session, f'open {tmp_path / "initial.mrc"}', log=False)
    run(session, f'open {tmp_path / "target.mrc"}', log=False)
    run(session, 'volume #1 level 0.6', log=False)
    run(session, 'volume #2 level 0.2', log=False)
    yield [session.models.list(model_id=(i,))[0] for i in (1, 2)]
    run(session, 'cryotrans stop', log=False)     # a failed test leaves no worker training


def run_of(session, series):
    from chimerax.cryotrans.run import runs
    r, = [r for r in runs(session) if r.series is series]
    return r


def trained(run, steps=2, timeout=60):
    """Poll until the worker has trained some steps (it starts at once; nothing else waits)."""
    end = time.monotonic() + timeout
    while run.training.step < steps:
        assert run.worker.is_alive() and time.monotonic() < end
        time.sleep(0.002)


def test_wait_false_returns_at_once_with_the_series_and_a_worker_thread(session, pair):
    from chimerax.map_series import MapSeries
    initial, _ = pair
    series, log = cx(session, f'cryotrans morph #1 to #2 {LONG}')
    run = run_of(session, series)
    assert run.running and run.worker.is_alive() and run.worker is not threading.current_thread()
    assert run in session.tasks.values() and 'running' in str(run)      # taskman lists it
    assert isinstance(series, MapSeries) and [m.id_string for m in series.maps] == ['3.1', '3.2', '3.3', '3.4']
    values = initial.full_matrix()
    for m in series.maps:   # until the first refresh every frame is the initial map above its level
        assert np.allclose(m.full_matrix(), np.where(values >= 0.6, values, 0), atol=1e-4)
    arrays = [m.data.array for m in series.maps]   # each its own array, refreshed in place
    assert not any(np.shares_memory(a, b) for i, a in enumerate(arrays) for b in arrays[i + 1:])
    assert [s.level for s in series.maps[-1].surfaces] == [0.6] and not initial.display
    assert 'frames as #3' in log
    cx(session, 'cryotrans stop')
    assert not run.worker.is_alive()


def test_frames_from_the_worker_change_the_series_only_when_the_main_thread_pumps(session, pair):
    series, _ = cx(session, f'cryotrans morph #1 to #2 {LONG} reportEvery 2 lr 0.01')
    run = run_of(session, series)
    before = series.maps[-1].full_matrix().copy()
    trained(run, 6)
    assert not run._work.empty()                              # handed over, not yet applied
    assert np.array_equal(series.maps[-1].full_matrix(), before)
    cx(session, 'cryotrans list')                             # a cryotrans command pumps on the main thread
    assert run.shown_step >= 2
    assert np.abs(series.maps[-1].full_matrix() - before).max() > 1e-4
    cx(session, 'cryotrans stop')


def test_stop_keeps_the_frames_writes_the_checkpoint_and_lists_it(session, pair, tmp_path):
    out = tmp_path / 'out'
    series, _ = cx(session, f'cryotrans morph #1 to #2 {LONG} reportEvery 1000 saveDir {out}')
    run = run_of(session, series)
    trained(run, 3)
    _, listed = cx(session, 'cryotrans list')
    assert f'#3 {RUN}: running, step' in listed
    _, log = cx(session, 'cryotrans stop #3')
    assert not run.worker.is_alive() and not run.running
    assert 3 <= run.training.step < 100000 and run.shown_step == run.training.step
    assert 'stopped (cryotrans stop) after' in log and 'frames as #3' in log and 'correlation' in log
    assert load_checkpoint(out / 'flow.pt')['step'] == run.training.step
    assert sorted(os.listdir(out)) == (['flow.pt'] + [f'frame_{i:02d}.mrc' for i in range(4)]
                                       + ['loss.log', 'open_in_chimerax.py'])
    assert len(series.maps) == 4 and not series.deleted
    _, listed = cx(session, 'cryotrans list')
    assert f'#3 {RUN}: stopped after {run.training.step}/100000 steps' in listed
    _, log = cx(session, 'cryotrans stop')
    assert 'no run is training' in log


def test_closing_the_initial_map_stops_the_run_and_closing_the_series_ends_its_listing(session, pair):
    series, _ = cx(session, f'cryotrans morph #1 to #2 {LONG}')
    run = run_of(session, series)
    trained(run)
    cx(session, 'close #1')
    run.pump(until_done=True)
    assert not run.running and run.training.step < 100000 and not series.deleted
    _, listed = cx(session, 'cryotrans list')
    assert 'stopped after' in listed
    cx(session, 'close #3')
    _, listed = cx(session, 'cryotrans list')
    assert 'no runs' in listed and run not in session.tasks.values()


def test_closing_the_series_stops_its_run(session, pair):
    series, _ = cx(session, f'cryotrans morph #1 to #2 {LONG}')
    run = run_of(session, series)
    trained(run)
    cx(session, 'close #3')
    run.pump(until_done=True)
    assert not run.worker.is_alive() and run.training.step < 100000
    assert run not in session.tasks.values()


def test_two_runs_train_side_by_side_and_stop_one_at_a_time(session, pair):
    a, _ = cx(session, f'cryotrans morph #1 to #2 {LONG}')
    b, _ = cx(session, f'cryotrans morph #1 to #2 {LONG} seed 1')
    ra, rb = run_of(session, a), run_of(session, b)
    trained(ra), trained(rb)
    _, listed = cx(session, 'cryotrans list')
    assert listed.count('running, step') == 2 and '#3 ' in listed and '#4 ' in listed
    cx(session, 'cryotrans stop #4')
    assert ra.running and not rb.running
    cx(session, 'cryotrans stop')
    assert not ra.running


def test_a_second_run_into_the_folder_a_run_is_writing_is_refused(session, pair, tmp_path):
    from chimerax.core.errors import UserError
    out = tmp_path / 'out'
    first, _ = cx(session, f'cryotrans morph #1 to #2 {LONG} saveDir {out}')
    run = run_of(session, first)
    trained(run)
    with pytest.raises(UserError, match=rf'is where {RUN} \(#3\), still training, writes its frames'):
        cx(session, f'cryotrans morph #1 to #2 {LONG} saveDir {out}/.')
    assert len(session.models.list(model_id=(4,))) == 0 and run.running
    cx(session, 'cryotrans stop')
    assert not (out / '.cryotrans-run').exists()          # the stopped run gave the folder up
    second, _ = cx(session, f'cryotrans morph #1 to #2 steps 2 frames 3 saveDir {out}')     # free again
    assert load_checkpoint(out / 'flow.pt')['step'] == 2
    assert not (out / '.cryotrans-run').exists()


def test_a_folder_a_command_line_run_is_writing_to_is_refused_before_anything_opens(session, pair, tmp_path):
    """A terminal's `cryotrans morph --out X` and ChimeraX's saveDir X: the second is told who holds X."""
    import signal
    import subprocess
    import sys
    from chimerax.core.errors import UserError
    out = tmp_path / 'out'
    command = os.path.join(os.path.dirname(sys.executable), 'cryotrans')
    cli = subprocess.Popen([command, 'morph', str(tmp_path / 'initial.mrc'), str(tmp_path / 'target.mrc'),
                            '--out', str(out), '--level0', '0.6', '--level1', '0.2', '--steps', '100000',
                            '--bin', '1', '--report-every', '5'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           encoding='utf-8')
    try:
        deadline = time.monotonic() + 120
        while not (out / 'flow.pt').exists():
            assert cli.poll() is None and time.monotonic() < deadline, cli.communicate()
            time.sleep(0.2)
        with pytest.raises(UserError, match=rf'is in use: cryotrans morph initial.mrc \(process {cli.pid} on '):
            cx(session, f'cryotrans morph #1 to #2 {LONG} saveDir {out}')
        assert len(session.models.list(model_id=(3,))) == 0
    finally:
        cli.send_signal(signal.SIGINT)
        cli.communicate(timeout=120)
    series, _ = cx(session, f'cryotrans morph #1 to #2 steps 2 frames 3 saveDir {out}')      # free once it ended
    assert load_checkpoint(out / 'flow.pt')['step'] == 2


def test_closing_the_session_stops_every_run_keeping_its_checkpoint(session, pair, tmp_path):
    out = tmp_path / 'out'
    series, _ = cx(session, f'cryotrans morph #1 to #2 {LONG} saveDir {out}')
    run = run_of(session, series)
    trained(run, 3)
    cx(session, 'close session')
    run.pump(until_done=True)
    assert not run.worker.is_alive() and 3 <= run.training.step < 100000
    assert load_checkpoint(out / 'flow.pt')['step'] == run.training.step
    assert run not in session.tasks.values()
    _, listed = cx(session, 'cryotrans list')
    assert 'no runs' in listed


def test_a_failed_run_logs_the_error_and_keeps_its_frames(session, pair, tmp_path):
    out = tmp_path / 'out'
    series, _ = cx(session, f'cryotrans morph #1 to #2 {LONG} reportEvery 1 saveDir {out}')
    run = run_of(session, series)
    trained(run, 2)
    os.rename(out, tmp_path / 'moved')            # the next checkpoint has nowhere to go
    _, log = cx(session, 'cryotrans list')         # pumps the worker's end, then lists
    if run.worker.is_alive():
        run.pump(until_done=True)
        _, log = cx(session, 'cryotrans list')
    assert not run.running and 'failed after' in log and 'FileNotFoundError' in log
    assert run.shown_step >= 1 and len(series.maps) == 4 and not series.deleted


def test_wait_true_returns_the_finished_series_trained_on_a_worker_thread(session, pair):
    series, log = cx(session, 'cryotrans morph #1 to #2 steps 5 frames 2 wait true')
    run = run_of(session, series)
    assert run.worker is not threading.current_thread() and not run.worker.is_alive()
    assert not run.running and run.training.step == 5 and '5 steps in' in log
    _, listed = cx(session, 'cryotrans list')
    assert f'#3 {RUN}: finished, 5 steps' in listed


def test_listeners_hear_every_change_of_a_run_on_the_main_thread_with_all_its_losses(session, pair):
    from chimerax.cryotrans.run import add_run_handler
    events, threads = [], set()

    def heard(trigger, event):
        events.append(event)
        threads.add(threading.get_ident())
    handler = add_run_handler(session, heard)
    try:
        series, _ = cx(session, 'cryotrans morph #1 to #2 steps 12 bin 1 resolution 8 refine 6 reportEvery 5 '
                                'frames 3 wait true')
    finally:
        session.triggers.remove_handler(handler)
    run = run_of(session, series)
    kinds = [e.kind for e in events]
    assert kinds[0] == 'started' and kinds[-1] == 'ended' and kinds.count('ended') == 1
    assert 'frames' in kinds and 'progress' in kinds
    assert [e.stage for e in events if e.kind == 'stage'] == ['refine']
    assert threads == {threading.get_ident()}                               # the main thread only
    heard_losses = [x for e in events if e.kind == 'progress' for x in e.losses]
    assert heard_losses == run.training.losses and len(heard_losses) == 18
    assert all(e.run is run and e.total == 18 for e in events)
    assert events[-1].step == 18 and str(run.state) == str(events[-1].run.state)


def test_chimerax_exiting_while_a_run_trains_stops_it_cleanly_keeping_its_frames_and_checkpoint(tmp_path):
    import subprocess
    import sys
    write_map(tmp_path / 'initial.mrc', 3 * blob(GRID, (13.0, 15.0, 15.0)), GRID)
    write_map(tmp_path / 'target.mrc', blob(GRID, (19.0, 15.0, 15.0)), GRID)
    launcher = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tools', 'chimerax_run.py')
    out = tmp_path / 'out'
    result = subprocess.run([sys.executable, launcher, '--cmd', f'open {tmp_path / "initial.mrc"}',
                             '--cmd', f'open {tmp_path / "target.mrc"}', '--cmd', 'volume #1 level 0.6',
                             '--cmd', f'cryotrans morph #1 to #2 {LONG} saveDir {out}', '--cmd', 'wait 1'],
                            capture_output=True, encoding='utf-8', timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'terminate called' not in result.stderr
    state = load_checkpoint(out / 'flow.pt')
    assert 0 < state['step'] < 100000
    from cryotrans_engine import read_map
    frames = [read_map(out / f'frame_{i:02d}.mrc')[0] for i in range(4)]
    assert all(f.shape == (16, 16, 16) and f.sum() > 0 for f in frames)


def test_refreshing_the_frames_is_skipped_while_it_has_taken_over_a_tenth_of_the_run():
    """On a 256³ map the frames take seconds to make (every particle of the full grid): a run refreshes
    the series only while refreshing has cost at most REFRESH_SHARE of its time so far."""
    from chimerax.cryotrans.run import REFRESH_SHARE, refresh_due
    assert REFRESH_SHARE == 0.1
    assert refresh_due(0.0, 0.0)                # the first report always refreshes
    assert refresh_due(0.9, 10.0) and not refresh_due(1.1, 10.0)
    assert refresh_due(1.1, 12.0)               # training on, the share falls and refreshing resumes
