"""cryotrans batch on a real Dask LocalCluster (2 workers) with real morphs of tiny maps: every (target, seed)
a task, the best seed kept, a bad map reported without stopping the others, a re-run that recomputes nothing,
a worker killed mid-task, and SIGTERM leaving every finished result whole."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from cryotrans_engine import Grid, Settings, read_map, write_map
from cryotrans_engine.batch import file_digest, task_key
from cryotrans_engine.cli import main
from helpers import blob

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
G = Grid((16, 16, 16), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
TRAIN = ['--frames', '3', '--bin', '1', '--level0', '0.05', '--level1', '0.05']


@pytest.fixture
def maps(tmp_path):
    """An initial blob, two targets moved two ways, and a file that is not a map."""
    write_map(tmp_path / 'initial.mrc', blob(G, (14, 16, 16)), G)
    write_map(tmp_path / 'up.mrc', blob(G, (18, 16, 16)), G)
    write_map(tmp_path / 'side.mrc', blob(G, (16, 19, 16)), G)
    (tmp_path / 'broken.mrc').write_text('not a map')
    return tmp_path


def _summary(out):
    with open(out / 'summary.csv', newline='') as f:
        return list(csv.DictReader(f))


def _left_behind(out):
    """Unfinished folders or temporary files anywhere in a batch's folder."""
    return [os.path.join(d, n) for d, dirs, files in os.walk(out) for n in dirs + files
            if n.endswith(('.part', '.tmp', '.old')) or n == '.cryotrans-run']


def _run_files(out, row):
    folder = out / row['files']
    return sorted(os.listdir(folder)), json.loads((folder / 'result.json').read_text())


def test_every_target_and_seed_runs_the_best_is_kept_a_bad_map_fails_alone_and_a_rerun_recomputes_nothing(maps,
                                                                                                         capsys):
    out = maps / 'out'
    argv = ['batch', str(maps / 'initial.mrc'), str(maps / 'up.mrc'), str(maps / 'side.mrc')]
    code = main(argv + [str(maps / 'broken.mrc'), '--seeds', '2', '--steps', '30', '--out', str(out), *TRAIN])
    assert code == 1                                 # one target has no result; the summary is still written
    text = capsys.readouterr().out
    assert '6 tasks (3 targets × 2 seeds): 0 done in earlier runs, 6 to run' in text
    assert 'local cluster of 2 workers' in text
    assert [int(n) for n in re.findall(r'^\[(\d)/6\]', text, re.M)] == [1, 2, 3, 4, 5, 6]
    assert 'left' in text.split('[1/6]')[1].split('\n')[0]          # time left, once a task has ended
    rows = _summary(out)
    assert [(r['target'], r['seed']) for r in rows] == [('up', '0'), ('up', '1'), ('side', '0'), ('side', '1'),
                                                         ('broken', '0'), ('broken', '1')]
    for r in rows[4:]:
        assert r['verdict'] == 'failed' and 'broken.mrc' in r['message'] and r['files'] == r['best'] == ''
    assert 'broken: no result' in text
    for target in ('up', 'side'):
        ran = [r for r in rows if r['target'] == target]
        assert all(r['verdict'] == 'good' and float(r['correlation']) > float(r['initial_correlation']) for r in ran)
        best = max(ran, key=lambda r: float(r['correlation']))
        assert best['best'] == f'best/{target}' and [r['best'] for r in ran].count('') == 1
        names, record = _run_files(out, best)
        assert names == ['flow.pt', 'frame_00.mrc', 'frame_01.mrc', 'frame_02.mrc', 'frame_03.mrc', 'loss.log',
                         'open_in_chimerax.py', 'result.json']
        assert record['seed'] == int(best['seed']) and record['settings']['steps'] == 30
        assert len((out / best['files'] / 'loss.log').read_text().splitlines()) == 31
        assert sorted(os.listdir(out / 'best' / target)) == names
        for name in names:                           # the best run's own files
            assert (out / 'best' / target / name).read_bytes() == (out / best['files'] / name).read_bytes()
    assert rows[0]['files'] != rows[1]['files'] and float(rows[0]['loss']) != float(rows[1]['loss'])   # two seeds
    assert _left_behind(out) == []

    written = {r['files']: os.path.getmtime(out / r['files'] / 'result.json') for r in rows[:4]}
    summary_before = (out / 'summary.csv').read_text()
    again = time.perf_counter()
    assert main(argv + ['--seeds', '2', '--steps', '30', '--out', str(out), *TRAIN]) == 0    # no bad map: status 0
    assert time.perf_counter() - again < 10          # no cluster started
    text = capsys.readouterr().out
    assert '4 tasks (2 targets × 2 seeds): 4 done in earlier runs, 0 to run' in text and 'cluster' not in text
    assert {r['files']: os.path.getmtime(out / r['files'] / 'result.json') for r in rows[:4]} == written
    assert (out / 'summary.csv').read_text() == ''.join(summary_before.splitlines(True)[:5])


def test_the_key_is_the_inputs_bytes_levels_settings_and_seed(maps):
    digests = [file_digest(maps / 'initial.mrc'), file_digest(maps / 'up.mrc'), None]
    s = dict(Settings(steps=30).__dict__)
    key = task_key(digests, 0.05, None, s)
    (maps / 'copy.mrc').write_bytes((maps / 'up.mrc').read_bytes())
    assert task_key([digests[0], file_digest(maps / 'copy.mrc'), None], 0.05, None, s) == key   # same bytes
    assert task_key([digests[0], file_digest(maps / 'side.mrc'), None], 0.05, None, s) != key
    assert task_key(digests, 0.06, None, s) != key
    assert task_key(digests, 0.05, None, dict(s, seed=1)) != key
    assert task_key(digests, 0.05, None, dict(s, steps=31)) != key


def test_partition_auto_finds_each_tasks_regions_and_keeps_them_in_its_folder(tmp_path, capsys):
    from cryotrans_engine.batch import plan
    grid = Grid((20, 20, 20), (2.0, 2.0, 2.0), (10.0, -20.0, 30.0))
    write_map(tmp_path / 'initial.mrc', blob(grid, (22, 0, 50), 3.0) + blob(grid, (38, 0, 50), 3.0), grid)
    write_map(tmp_path / 'apart.mrc', blob(grid, (19, 0, 50), 3.0) + blob(grid, (41, 0, 50), 3.0), grid)
    out = tmp_path / 'out'
    argv = ['batch', str(tmp_path / 'initial.mrc'), str(tmp_path / 'apart.mrc'), '--out', str(out), '--steps', '150',
            '--frames', '2', '--bin', '1', '--level0', '0.1', '--level1', '0.1', '--workers', '1', '--threads', '1']
    assert main(argv + ['--partition', 'auto']) == 0
    text = capsys.readouterr().out
    assert re.search(r'^\[1/1\] apart seed 0: correlation .*, partition auto: 2 bodies$', text, re.M), text
    row, = _summary(out)
    names, record = _run_files(out, row)
    assert 'regions.mrc' in names and 'regions.mrc' in os.listdir(out / 'best' / 'apart')
    assert set(np.unique(read_map(out / row['files'] / 'regions.mrc')[0])) == {0, 1, 2}
    assert record['partition'] == 'auto' and record['bodies'] == 2
    assert record['body_lines'][0].startswith('partition auto: 2 bodies') and record['body_lines'][2].startswith('body 2')
    settings = Settings(steps=150, frames=2, bin=1)
    keys = [t.key for count in (None, 1, 2) for t in plan(str(tmp_path / 'initial.mrc'), [str(tmp_path / 'apart.mrc')],
                                                          out, settings, 1, 0.1, 0.1, 'auto', count)[0]]
    assert keys[0] == record['key'] and len(set(keys)) == 3       # another count: another task
    assert main(argv + ['--count', '2']) == 2
    assert '--count is how many bodies --partition auto finds' in capsys.readouterr().err


def test_a_worker_killed_mid_task_is_retried_and_the_batch_ends_whole(maps, capsys):
    """A running cluster (--scheduler, named by a scheduler file) of 2 worker processes; one is killed (SIGKILL)
    while its morph trains: Dask runs that task again, and every result comes out whole."""
    from distributed import Client, LocalCluster
    out = maps / 'out'
    killed = {}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as client:
        pids = client.run(os.getpid)
        (maps / 'scheduler.json').write_text(json.dumps({'address': cluster.scheduler_address}))

        def kill_one_mid_task():
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not killed:
                training = [n for n in os.listdir(out / 'runs')] if (out / 'runs').is_dir() else []
                busy = [w for w, keys in client.processing().items() if keys and w in pids]
                if any(n.endswith('.part') for n in training) and busy:
                    time.sleep(0.5)                          # well into its steps
                    killed['worker'], killed['task'] = busy[0], client.processing()[busy[0]][0]
                    killed['done'] = sorted(n for n in os.listdir(out / 'runs') if not n.startswith('.'))
                    os.kill(pids[busy[0]], signal.SIGKILL)
                time.sleep(0.05)

        killer = threading.Thread(target=kill_one_mid_task)
        killer.start()
        try:
            code = main(['batch', str(maps / 'initial.mrc'), str(maps / 'up.mrc'), '--seeds', '2', '--steps', '400',
                         '--out', str(out), '--scheduler', str(maps / 'scheduler.json'), *TRAIN])
        finally:
            killer.join()
        workers_after = client.run(os.getpid)
    assert code == 0
    assert killed and killed['done'] == []                 # killed while both tasks were still training
    assert killed['worker'] not in workers_after            # that worker process is gone (Dask restarted one)
    key = killed['task'].rsplit('-', 1)[1]
    record = json.loads((out / 'runs' / key / 'result.json').read_text())
    assert record['pid'] != pids[killed['worker']] and record['steps'] == 400      # run again, by another worker
    rows = _summary(out)
    assert [r['verdict'] for r in rows] == ['good', 'good']
    for r in rows:
        names, record = _run_files(out, r)
        assert 'flow.pt' in names and len(names) == 8 and record['steps'] == 400
        assert len((out / r['files'] / 'loss.log').read_text().splitlines()) == 401
        values, grid = read_map(out / r['files'] / 'frame_03.mrc')
        assert grid == G and np.isfinite(values).all()
    assert _left_behind(out) == []
    assert f'the cluster at {maps / "scheduler.json"} (2 workers' in capsys.readouterr().out


def test_sigterm_keeps_every_finished_result_whole_says_what_is_left_and_a_rerun_runs_only_that(maps, capsys):
    """A scheduler's time limit: SIGTERM to the batch and its workers (one process group, as SLURM signals a job).
    The batch stops waiting, writes the summary of what is done, says what is left and exits 143."""
    for i, x in enumerate((17, 18, 19)):
        write_map(maps / f'class{i}.mrc', blob(G, (x, 16, 16)), G)
    argv = [str(maps / 'initial.mrc'), *(str(maps / f'class{i}.mrc') for i in range(3)), '--out',
            str(maps / 'out'), '--workers', '1', '--threads', '1', '--steps', '150', *TRAIN]
    process = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), 'cryotrans'), 'batch'] + argv,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding='utf-8',
                               env={**os.environ, 'OMP_NUM_THREADS': '1'}, start_new_session=True)
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith('[1/3]'):
            os.killpg(process.pid, signal.SIGTERM)
            break
    rest, err = process.communicate(timeout=120)
    text = ''.join(seen) + rest
    assert process.returncode == 143, text + err
    assert err == ''
    rows = _summary(maps / 'out')
    done = [r for r in rows if r['verdict'] == 'good']
    left = [r for r in rows if r['verdict'] == 'left']
    assert len(rows) == 3 and len(done) >= 1 and len(left) >= 1 and len(done) + len(left) == 3
    assert 'SIGTERM: stopping: no more tasks start' in text
    assert f'stopped by SIGTERM: {len(left)} task' in text and 'the same command runs the rest' in text
    for r in left:
        assert f'{r["target"]} seed 0' in text.split('stopped by SIGTERM:')[1] and r['files'] == ''
        assert r['message'].startswith('not run')
    for r in done:                                   # whole: every file, the loss log to its last step
        names, record = _run_files(maps / 'out', r)
        assert len(names) == 8 and len((maps / 'out' / r['files'] / 'loss.log').read_text().splitlines()) == 151
    assert sorted(os.listdir(maps / 'out' / 'runs')) == sorted(os.path.basename(r['files']) for r in done)
    assert _left_behind(maps / 'out') == []
    assert main(['batch'] + argv) == 0
    assert (f'3 tasks (3 targets × 1 seed): {len(done)} done in earlier runs, {len(left)} to run'
            in capsys.readouterr().out)
    assert [r['verdict'] for r in _summary(maps / 'out')] == ['good'] * 3


def test_bad_input_is_one_clear_message_before_anything_is_written(maps, capsys):
    out = maps / 'out'
    base = ['batch', str(maps / 'initial.mrc'), str(maps / 'up.mrc'), '--out', str(out), *TRAIN]
    for argv, words in (
            (['batch', str(maps / 'broken.mrc'), str(maps / 'up.mrc'), '--out', str(out)], 'broken.mrc'),
            (base + ['--seeds', '0'], 'seeds must be at least 1'),
            (base[:3] + [str(maps / 'up.mrc')] + base[3:], 'is given twice'),
            (base + ['--frames', '0'], 'frames must be'),
            (base + ['--workers', '2', '--scheduler', 'tcp://127.0.0.1:1'], 'a running cluster'),
            (base + ['--device', 'mps'], 'device mps was asked for'),
            (base + ['--scheduler', 'tcp://127.0.0.1:1'], 'no Dask scheduler answers at tcp://127.0.0.1:1')):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count('\n') == 1 and words in err, err
        assert not out.exists()


def test_no_batch_writes_over_or_removes_its_inputs(maps, capsys):
    (maps / 'out' / 'best' / 'up').mkdir(parents=True)
    inside = maps / 'out' / 'best' / 'up' / 'frame_03.mrc'
    inside.write_bytes((maps / 'up.mrc').read_bytes())
    (maps / 'out' / 'summary.csv').write_bytes((maps / 'side.mrc').read_bytes())
    for target, words in ((inside, 'inside'), (maps / 'out' / 'summary.csv', 'summary.csv is one of')):
        assert main(['batch', str(maps / 'initial.mrc'), str(target), '--out', str(maps / 'out'), *TRAIN]) == 2
        assert words in capsys.readouterr().err
    assert inside.read_bytes() == (maps / 'up.mrc').read_bytes()
    assert (maps / 'out' / 'summary.csv').read_bytes() == (maps / 'side.mrc').read_bytes()


def test_without_dask_the_message_says_what_to_install(maps, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, 'distributed', None)          # import distributed fails, as where absent
    out = maps / 'out'
    assert main(['batch', str(maps / 'initial.mrc'), str(maps / 'up.mrc'), '--out', str(out), *TRAIN]) == 2
    assert 'pip install "cryotrans-engine[batch]"' in capsys.readouterr().err
    assert not out.exists()


def test_dask_is_the_engines_optional_extra_and_never_the_bundles():
    with open(os.path.join(ROOT, 'engine', 'pyproject.toml'), encoding='utf-8') as f:
        project = f.read()
    extra = project.split('[project.optional-dependencies]')[1].split('\n[')[0]
    assert re.search(r'^batch = \[.*"distributed', extra, re.M)
    assert 'dask' not in project.split('[project.optional-dependencies]')[0]
    with open(os.path.join(ROOT, 'pyproject.toml'), encoding='utf-8') as f:     # the bundle's one description
        assert not re.search('dask|distributed', f.read(), re.I)
    source = open(os.path.join(ROOT, 'engine', 'cryotrans_engine', 'batch.py'), encoding='utf-8').read()
    assert not re.search(r'^(import|from) (dask|distributed)', source, re.M)     # imported lazily, only there
    for name in os.listdir(os.path.join(ROOT, 'engine', 'cryotrans_engine')):
        if name.endswith('.py') and name != 'batch.py':
            with open(os.path.join(ROOT, 'engine', 'cryotrans_engine', name), encoding='utf-8') as f:
                assert not re.search(r'import (dask|distributed)|from (dask|distributed)', f.read()), name


def test_batch_takes_every_training_option_as_morph_declares_it():
    from cryotrans_engine.cli import parser
    from cryotrans_engine.settings import OPTIONS
    commands = parser()._subparsers._group_actions[0].choices
    morph, batch = ({a.dest: (a.option_strings, a.type, a.choices, a.default, a.help) for a in commands[c]._actions}
                    for c in ('morph', 'batch'))
    for name in [o.name for o in OPTIONS] + ['level0', 'enclose_volume1', 'sd_level0', 'partition', 'count']:
        assert batch[name] == morph[name], name


def test_the_slurm_example_is_python_and_names_only_dask_jobqueues_keywords():
    """The SLURMCluster example of docs/batch.md (its job script was made with dask-jobqueue 0.9.0, which is
    not a dependency): it parses, and each keyword is one SLURMCluster 0.9.0 takes."""
    import ast
    with open(os.path.join(ROOT, 'docs', 'batch.md'), encoding='utf-8') as f:
        code, = re.findall(r'```python\n(.*?)```', f.read(), re.S)
    call, = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Call) and getattr(n.func, 'id', '') ==
             'SLURMCluster']
    known = {'queue', 'account', 'walltime', 'job_cpu', 'job_mem', 'job_extra_directives', 'job_directives_skip',
             'cores', 'memory', 'processes', 'nanny', 'interface', 'death_timeout', 'local_directory',
             'worker_command', 'worker_extra_args', 'job_script_prologue', 'log_directory', 'shebang', 'python',
             'job_name', 'config_name', 'n_workers', 'silence_logs', 'dashboard_address', 'scheduler_options'}
    assert {k.arg for k in call.keywords} <= known
    assert "'--scheduler', cluster.scheduler_address" in code
