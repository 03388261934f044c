"""Batch runs: one initial map morphed onto many targets with several seeds, each (target, seed) one
task on Dask distributed (a local cluster by default, or a running one: SLURM through dask-jobqueue).

A lab has one sharp map and many blurry 3D classes, and the best of a few seeds beats any one seed:
independent morphs that share nothing but files, so they spread over workers as they are.  Each task
is an ordinary morph_files run into its own folder DIR/runs/KEY (its frames, flow.pt, loss.log, a
result.json, and with partition auto the regions it found as regions.mrc), KEY a hash of the input
files' bytes, the levels, the settings and the seed.  The folder is written under a temporary name and
renamed whole when its run has ended, so a re-run skips every task that has one, and a worker killed
mid-task (or a batch stopped) leaves nothing that looks done.

Dask is imported here only, when a batch runs: `pip install cryotrans-engine[batch]`.
"""

import contextlib
import csv
import hashlib
import importlib.util
import io
import json
import math
import os
import shutil
import signal
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, replace

from .errors import CryoTransError, OutputError, SettingsError
from .files import write_text

RUNS = 'runs'                 # DIR/runs/KEY: one finished task each
BEST = 'best'                 # DIR/best/TARGET: the best seed's run, copied (hard links where possible)
SUMMARY = 'summary.csv'
RECORD = 'result.json'        # in each run folder: what the summary says of it
PART = '.part'                # a folder being written (a task, or a best copy), renamed when whole
KEY_FORMAT = 'cryotrans batch 1'   # part of every key: what a task writes changes, the keys change
BEST_BY = ('correlation', 'loss')
RETRIES = 2                   # an unexpected error in a task (not bad input): tried again this often
COLUMNS = ('target', 'seed', 'best', 'loss', 'correlation', 'initial_correlation', 'verdict', 'seconds',
           'files', 'message')


def need_distributed():
    """Dask distributed, or one message saying how to install it."""
    try:
        import distributed
    except ImportError as e:
        raise CryoTransError('cryotrans batch runs its tasks on Dask distributed, an optional part of the '
                             'engine that is not installed here: pip install "cryotrans-engine[batch]"') from e
    return distributed


@dataclass(frozen=True)
class Task:
    """One (target, seed) morph: what a worker needs, and the key its results are kept under."""
    name: str                 # the target's name in the summary and in best/
    target: str               # absolute paths: a cluster's workers must see the same files
    initial: str
    partition: str
    level0: object            # as morph_files takes them (None: the rule)
    level1: object
    settings: dict            # Settings' fields, this task's seed among them
    key: str
    folder: str               # DIR/runs/KEY
    threads: int = 1          # PyTorch threads in the task
    count: int = None         # partition 'auto': how many bodies it finds (None: as many as the motion shows)

    @property
    def seed(self):
        return self.settings['seed']


@dataclass
class Batch:
    """What a batch ended with: a record per task (result.json's, or a failure's), in target and seed
    order; the tasks left when it was stopped; the best record per target name."""
    records: list
    left: list = field(default_factory=list)
    best: dict = field(default_factory=dict)

    @property
    def missing(self):
        """Targets without a result (every seed failed, or none ran)."""
        names = dict.fromkeys([r['target'] for r in self.records] + [t.name for t in self.left])
        return [name for name in names if name not in self.best]


def file_digest(path):
    """sha256 of a file's bytes (a map renamed or copied keeps its results; one changed byte does not)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def level_text(level):
    """A level as the key spells it: 'rule', a number, or a LevelSpec's kind and amount."""
    if level is None:
        return 'rule'
    if isinstance(level, (int, float)):
        return repr(float(level))
    return f'{level.kind} {level.amount!r}'


def task_key(digests, level0, level1, settings):
    """The key of a task: the digests of its initial map, target and partition (None: none; partition auto:
    partition_text's words), its levels and every setting (the seed among them), hashed."""
    text = json.dumps([KEY_FORMAT, list(digests), level_text(level0), level_text(level1),
                       sorted(settings.items())], default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def target_names(targets):
    """Each target's name: its file name without the extension, made unique by -2, -3 …"""
    names, seen = [], {}
    for path in targets:
        stem = os.path.splitext(os.path.basename(path))[0] or 'target'
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f'{stem}-{seen[stem]}')
    return names


def partition_text(partition, count=None):
    """The partition as a key holds it: a region map's digest, partition auto's words (with its count), or None."""
    if partition == 'auto':
        return 'partition auto' + ('' if count is None else f', count {count}')
    return file_digest(partition) if partition else None


def plan(initial, targets, out, settings, seeds, level0=None, level1=None, partition=None, count=None):
    """The tasks of a batch, and a failure record for each target that cannot be read here.

    settings: a Settings whose seed is the first of `seeds` seeds; partition: a region map file, or 'auto'
    (count: how many bodies it finds)."""
    fixed = [file_digest(initial), partition_text(partition, count)]
    where = partition if partition in (None, 'auto') else os.path.abspath(partition)
    given = asdict(settings)
    tasks, failed = [], []
    for name, target in zip(target_names(targets), targets):
        path = os.path.abspath(target)
        try:
            digest = file_digest(path)
            if os.path.samefile(path, initial):
                raise CryoTransError(f'{target} is the initial map itself: morph onto a map of the other state')
        except (OSError, CryoTransError) as e:
            why = f'{target}: {e.strerror}' if isinstance(e, OSError) and e.strerror else str(e)
            failed += [failure(name, path, given['seed'] + i, why) for i in range(seeds)]
            continue
        for i in range(seeds):
            s = dict(given, seed=given['seed'] + i)
            key = task_key([fixed[0], digest, fixed[1]], level0, level1, s)
            tasks.append(Task(name, path, os.path.abspath(initial), where, level0, level1, s, key,
                              os.path.join(os.path.abspath(out), RUNS, key), count=count))
    return tasks, failed


def failure(name, target, seed, message, seconds=None):
    """The record of a task that gave no result."""
    return dict(target=name, path=target, seed=seed, status='failed', verdict='failed', message=message,
                seconds=seconds)


def read_record(folder):
    """A finished task's record from its folder, or None when the task has not finished."""
    try:
        with open(os.path.join(folder, RECORD)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise OutputError(f'{folder} holds no readable {RECORD} ({e}): delete that folder to run its task '
                          f'again') from e


def available_cores():
    """The cores this process may use (a cluster job's share, not the node's)."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def run_task(task):
    """Run one task (on a worker): its record, read from its folder if a run finished it before.

    Bad input (a map that cannot be used, a run that diverges) is a record with verdict 'failed',
    not an error: it would fail again however often it was tried.  The run goes into a temporary
    folder beside the final one, renamed into place only when it is whole."""
    done = read_record(task.folder)
    if done is not None:
        return done
    import torch
    from .job import morph_files
    from .settings import Settings
    torch.set_num_threads(task.threads)
    part = os.path.join(os.path.dirname(task.folder), f'.{task.key}.{uuid.uuid4().hex[:8]}{PART}')
    lines = []
    began = time.perf_counter()
    try:
        result = morph_files(task.initial, task.target, Settings(**task.settings), out=part, level0=task.level0,
                             level1=task.level1, partition=task.partition, count=task.count, log=lines.append,
                             checkpoint_every=0)
        seconds = time.perf_counter() - began
        record = _record(task, result, seconds, lines)
        write_text(os.path.join(part, RECORD), json.dumps(record, indent=1) + '\n')
    except CryoTransError as e:
        shutil.rmtree(part, ignore_errors=True)
        return failure(task.name, task.target, task.seed, str(e), round(time.perf_counter() - began, 1))
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    try:
        os.rename(part, task.folder)
    except OSError:                      # another run of the same task finished first: keep its folder
        shutil.rmtree(part, ignore_errors=True)
        record = read_record(task.folder)
        if record is None:
            raise
    return record


def _record(task, result, seconds, lines):
    verdict = result.verdict
    return dict(target=task.name, path=task.target, seed=task.seed, key=task.key, status='done',
                verdict='good' if verdict.better else 'poor', message=verdict.advice(),
                loss=result.losses[-1], correlation=verdict.prediction, initial_correlation=verdict.initial,
                seconds=round(seconds, 1), training_seconds=round(result.elapsed, 1), steps=result.steps,
                files=sorted(os.path.basename(f) for f in result.files) + [RECORD], levels=lines,
                initial=task.initial, partition=task.partition, settings=task.settings,
                bodies=None if result.bodies is None else result.bodies.count, body_lines=result.body_lines,
                host=socket.gethostname(), pid=os.getpid())       # where it ran: a cluster's node, its worker


def check_outputs(out, inputs):
    """Refuse (OutputError) an output folder where the batch would write over or remove an input:
    summary.csv is written over and best/ is replaced (runs/ only gains folders)."""
    from .files import refuse_input
    refuse_input(os.path.join(out, SUMMARY), [(path, 'one of the batch\'s inputs') for path in inputs])
    best = os.path.realpath(os.path.join(out, BEST)) + os.sep
    for path in inputs:
        if path is not None and os.path.realpath(path).startswith(best):
            raise OutputError(f'{path} is one of the batch\'s inputs, inside {os.path.join(out, BEST)}, which the '
                              f'batch replaces: copy it elsewhere first, or choose another folder for the results')


def clear_parts(out):
    """Remove unfinished folders (a task's whose worker died, a best copy cut short): they are never results."""
    for sub in (RUNS, BEST):
        folder = os.path.join(out, sub)
        for name in os.listdir(folder) if os.path.isdir(folder) else ():
            if name.startswith('.') and name.endswith((PART, '.old')):
                shutil.rmtree(os.path.join(folder, name), ignore_errors=True)


def choose_best(records, by='correlation'):
    """The best finished record of each target: the highest correlation with the target, or the lowest
    final loss; a tie goes to the lower seed."""
    best = {}
    for r in records:
        if r['status'] != 'done':
            continue
        score = (-r['correlation'] if by == 'correlation' else r['loss'], r['seed'])
        if r['target'] not in best or score < best[r['target']][0]:
            best[r['target']] = (score, r)
    return {name: r for name, (_, r) in best.items()}


def keep_best(out, name, record):
    """DIR/best/NAME: the best run's folder, copied whole (hard links where the file system has them),
    replacing an older best; nothing is done when it is the same run."""
    folder = os.path.join(out, BEST, name)
    if os.path.isdir(folder) and (read_record(folder) or {}).get('key') == record['key']:
        return folder
    os.makedirs(os.path.join(out, BEST), exist_ok=True)
    part = os.path.join(out, BEST, f'.{name}.{uuid.uuid4().hex[:8]}')
    try:
        shutil.copytree(os.path.join(out, RUNS, record['key']), part + PART, copy_function=_link_or_copy)
        if os.path.lexists(folder):
            os.rename(folder, part + '.old')
        os.rename(part + PART, folder)
    finally:
        for left in (part + PART, part + '.old'):
            shutil.rmtree(left, ignore_errors=True)
    return folder


def _link_or_copy(source, destination):
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def summary_rows(batch):
    """summary.csv's rows: every task's record, and the tasks left as verdict 'left'."""
    records = batch.records + [dict(target=t.name, path=t.target, seed=t.seed, status='left', verdict='left',
                                    message='not run: the batch was stopped; the same command runs it')
                               for t in batch.left]
    order = {name: i for i, name in enumerate(dict.fromkeys(r['target'] for r in records))}
    rows = []
    for r in sorted(records, key=lambda r: (order[r['target']], r['seed'])):
        best = batch.best.get(r['target'])
        done = r['status'] == 'done'
        rows.append(dict(target=r['target'], seed=r['seed'],
                         best=os.path.join(BEST, r['target']) if best is not None and best['key'] == r.get('key')
                         else '', loss=_number(r.get('loss')), correlation=_number(r.get('correlation')),
                         initial_correlation=_number(r.get('initial_correlation')), verdict=r['verdict'],
                         seconds='' if r.get('seconds') is None else f'{r["seconds"]:.1f}',
                         files=os.path.join(RUNS, r['key']) if done else '', message=r.get('message') or ''))
    return rows


def _number(value):
    return '' if value is None else f'{value:.6g}'


def write_summary(out, rows):
    text = io.StringIO()
    writer = csv.DictWriter(text, COLUMNS, lineterminator='\n')
    writer.writeheader()
    writer.writerows(rows)
    path = os.path.join(out, SUMMARY)
    write_text(path, text.getvalue())
    return path


def duration(seconds):
    """Seconds in words: '40 s', '7 min', '2.5 h'."""
    if seconds < 90:
        return f'{seconds:.0f} s'
    if seconds < 90 * 60:
        return f'{seconds / 60:.0f} min'
    return f'{seconds / 3600:.1f} h'


def _connect(distributed, scheduler):
    """A Client of the scheduler at an address (tcp://HOST:8786) or named by a scheduler file (the JSON
    `dask scheduler --scheduler-file` writes); a tcp:// address nothing listens at fails at once (Dask
    would retry until its timeout)."""
    from urllib.parse import urlsplit
    if scheduler.endswith('.json') and os.path.isfile(scheduler):
        with open(scheduler) as f:
            address = json.load(f).get('address', '')
    else:
        address = scheduler
    parts = urlsplit(address if '://' in address else f'tcp://{address}')
    if parts.scheme == 'tcp' and parts.hostname and parts.port:
        socket.create_connection((parts.hostname, parts.port), timeout=10).close()
    return distributed.Client(address, timeout='30s')


@contextlib.contextmanager
def _ctrl_c_not_inherited():
    """Worker processes started here ignore Ctrl-C, which a terminal sends to them too: the batch alone
    answers it (stops, keeps what is done, closes its cluster), without a traceback from each worker."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


class Cluster:
    """Where the tasks run: a local cluster made for them (closed at the end), or the running one at
    `scheduler`; its Client is .client, and .words says what it is."""

    def __init__(self, tasks, scheduler=None, workers=0, threads=0):
        self.distributed = need_distributed()
        self.local = None
        self.threads = threads or 1       # on a running cluster, one core per worker thread: Dask's own rule
        if scheduler is None:
            self._start_local(tasks, workers, threads)
        else:
            try:
                self.client = _connect(self.distributed, scheduler)
            except (OSError, TimeoutError, ValueError) as e:
                raise CryoTransError(f'no Dask scheduler answers at {scheduler} ({e}): start the cluster first, or '
                                     f'check the address (tcp://HOST:8786, or the scheduler file)') from e
            workers = self.client.scheduler_info()['workers'].values()
            self.words = (f'the cluster at {scheduler} ({len(workers)} workers, '
                          f'{sum(w["nthreads"] for w in workers)} threads now'
                          f'; {self.threads} PyTorch thread{"s" if self.threads > 1 else ""} a task)')

    def _start_local(self, tasks, workers, threads):
        """Workers and threads that do not fight over the cores: one task at a time per worker process,
        each task's PyTorch using its share of the cores; tasks on a GPU take turns on it (one worker),
        as one run may fill its memory."""
        import logging
        from .training import choose_device
        cores = available_cores()
        device = choose_device(tasks[0].settings['device'])
        n = workers or (1 if device.type != 'cpu' else max(1, min(len(tasks), cores)))
        threads = threads or max(1, cores // n)
        # the dashboard's plots need bokeh: without it, none is served (a free port: several may run at once)
        dashboard = ':0' if importlib.util.find_spec('bokeh') else None
        with _ctrl_c_not_inherited():
            self.local = self.distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                                       dashboard_address=dashboard, silence_logs=logging.ERROR)
        self.client = self.distributed.Client(self.local)
        self.words = (f'a local cluster of {n} worker{"s" if n > 1 else ""} on {cores} cores, {threads} PyTorch '
                      f'thread{"s" if threads > 1 else ""} a task'
                      + (f', on {device.type}' if device.type != 'cpu' else '')
                      + (f'; dashboard {self.client.dashboard_link}' if dashboard else ''))
        self.threads = threads

    def slots(self):
        """Tasks that run at once."""
        return max(1, sum(self.client.nthreads().values()))

    def close(self):
        self.client.close()
        if self.local is not None:
            self.local.close()


def morph_batch(initial, targets, out, settings=None, seeds=1, level0=None, level1=None, partition=None,
                scheduler=None, workers=0, threads=0, best_by='correlation', say=print, stop=None, count=None):
    """Morph `initial` onto each of `targets` with `seeds` seeds (settings.seed, settings.seed + 1, …),
    each pair a task on Dask; keep each target's best seed in out/best/NAME and write out/summary.csv.

    scheduler: a running cluster's address (None: a local cluster of `workers` processes, by default
    one per core); threads: PyTorch threads a task (0: cores shared out).  partition: a region map file,
    or 'auto': each task finds its regions from its motion (count: that many bodies) and keeps them as
    regions.mrc in its folder.  stop(): true to stop waiting (a signal): the tasks finished are kept,
    those left are listed.  Returns a Batch.
    """
    from .maps import claim_folder, read_map
    from .settings import Settings
    settings = settings or Settings()
    need_distributed()
    _check(targets, seeds, best_by, workers, threads, scheduler, partition, count)
    region_map = None if partition == 'auto' else partition
    check_outputs(out, [initial, region_map, *targets])
    read_map(initial)                       # a bad initial map fails every task: say so once, before any
    if region_map:
        read_map(region_map)
    settings.resolved()
    with _output_folder(out), claim_folder(out, f'cryotrans batch {os.path.basename(initial)}'):
        clear_parts(out)
        tasks, failed = plan(initial, targets, out, settings, seeds, level0, level1, partition, count)
        records = {(t.name, t.seed): _named(r, t) for t in tasks if (r := read_record(t.folder)) is not None}
        to_run = [t for t in tasks if (t.name, t.seed) not in records]
        say(f'{len(tasks) + len(failed)} tasks ({len(targets)} target{"s" if len(targets) > 1 else ""} × '
            f'{seeds} seed{"s" if seeds > 1 else ""}): {len(records)} done in earlier runs, {len(to_run)} to run'
            + (f', {len(failed)} failed' if failed else ''))
        left = []
        if to_run:
            left = _run(to_run, records, len(tasks) + len(failed), len(records) + len(failed), scheduler,
                             workers, threads, say, stop)
            clear_parts(out)
            for task in left[:]:           # ended while the batch stopped: kept, as a re-run would find it
                if (record := read_record(task.folder)) is not None:
                    records[task.name, task.seed] = _named(record, task)
                    left.remove(task)
        order = {name: i for i, name in enumerate(target_names(targets))}
        batch = Batch(sorted(failed + list(records.values()), key=lambda r: (order[r['target']], r['seed'])), left)
        batch.best = choose_best(batch.records, best_by)
        for name, record in batch.best.items():
            keep_best(out, name, record)
        path = write_summary(out, summary_rows(batch))
    _report(batch, path, say)
    return batch


@contextlib.contextmanager
def _output_folder(out):
    """The output folder made if need be (maps.output_folder), and removed again if a batch that made it
    fails before writing anything there (a scheduler that does not answer): bad input leaves nothing."""
    from .maps import output_folder
    made = not os.path.exists(out)
    output_folder(out)
    try:
        yield out
    except CryoTransError:
        if made and os.path.isdir(out) and not os.listdir(out):
            os.rmdir(out)
        raise


def _check(targets, seeds, best_by, workers, threads, scheduler, partition=None, count=None):
    if not targets:
        raise SettingsError('give at least one target map')
    seen = {}
    for t in targets:
        real = os.path.realpath(t)
        if real in seen:
            raise SettingsError(f'{t} is given twice (as {seen[real]}): give each target once, and --seeds for '
                                f'more runs of it')
        seen[real] = t
    if seeds < 1:
        raise SettingsError(f'seeds must be at least 1, not {seeds}')
    if best_by not in BEST_BY:
        raise SettingsError(f'best is chosen by {" or ".join(BEST_BY)}, not {best_by!r}')
    if workers < 0 or threads < 0:
        raise SettingsError('workers and threads must be positive (0: chosen for the cores)')
    if workers and scheduler:
        raise SettingsError('workers sizes the local cluster: a running cluster (scheduler) has its own')
    if count is not None and partition != 'auto':
        raise SettingsError('count is how many bodies partition auto finds: give partition auto too')
    if count is not None and count < 1:
        raise SettingsError(f'count is how many bodies partition auto finds: 1 or more, not {count}')


def _named(record, task):
    """A record as this batch names it (a target file renamed keeps its results)."""
    return dict(record, target=task.name, path=task.target, seed=task.seed)


def _run(tasks, records, total, already, scheduler, workers, threads, say, stop):
    """Submit the tasks (one computation per key: two targets with the same bytes share it) and gather
    their records into `records` by (target, seed) as they end, telling progress; returns the tasks left
    when stop() was true."""
    same = {}
    for t in tasks:
        same.setdefault(t.key, []).append(t)
    cluster = Cluster(tasks, scheduler, workers, threads)
    try:
        say(f'running on {cluster.words}')
        futures = {cluster.client.submit(run_task, replace(t, threads=cluster.threads), retries=RETRIES,
                                         key=f'morph-{t.name}-seed{t.seed}-{t.key}'): same[t.key]
                   for t, *_ in same.values()}
        waiting = cluster.distributed.as_completed(futures)
        count = already
        while True:
            for future in waiting.next_batch(block=False):
                for task in futures.pop(future):
                    record = records[task.name, task.seed] = _outcome(future, task)
                    count += 1
                    say(f'[{count}/{total}] {task.name} seed {task.seed}: {_words(record)}'
                        + (f'; {_time_left(records, len(futures), cluster.slots())}' if futures else ''))
            if not futures or (stop is not None and stop()):
                break
            time.sleep(0.2)
        for future in futures:
            future.cancel()
        return [t for group in futures.values() for t in group]
    finally:
        cluster.close()


def _time_left(records, left, slots):
    """'about 4 min left': the tasks left times a task's mean time so far, shared among the slots."""
    seconds = [r['seconds'] for r in records.values() if r['status'] == 'done']
    if not seconds:
        return 'time left not known yet'
    return f'about {duration(math.ceil(left / slots) * sum(seconds) / len(seconds))} left'


def _outcome(future, task):
    """A finished task's record, from its folder (the worker that holds the future's result may be gone,
    stopped by the same signal as this batch), else the future's (a failure); an error (a worker that died
    too often, a fault the retries did not mend) as a failure naming it."""
    if future.status == 'finished':
        return _named(read_record(task.folder) or future.result(), task)
    if future.cancelled():
        return failure(task.name, task.target, task.seed, 'cancelled on the cluster (its scheduler went, or '
                                                          'another client cancelled it): run the batch again')
    error = future.exception()
    name = type(error).__name__
    if name == 'KilledWorker':
        why = ('the workers running it died each time (out of memory? the worker logs say): '
               'give each worker more memory, or bin the maps')
    elif isinstance(error, ModuleNotFoundError):
        why = f'{error}: install cryotrans-engine on the workers, in the environment they run in'
    else:
        why = f'{name}: {error}'
    return failure(task.name, task.target, task.seed, why)


def _words(record):
    if record['status'] != 'done':
        return f'failed: {record["message"]}'
    bodies = record.get('bodies')
    return (f'correlation {record["correlation"]:.3f} (initial map {record["initial_correlation"]:.3f}, '
            f'{record["verdict"]}), loss {record["loss"]:.4g}, {duration(record["seconds"])}'
            + ('' if bodies is None else f', partition auto: {bodies} bod{"y" if bodies == 1 else "ies"}'))


def _report(batch, path, say):
    left = {t.name for t in batch.left}
    for name in dict.fromkeys([r['target'] for r in batch.records] + [t.name for t in batch.left]):
        best = batch.best.get(name)
        if best is not None:
            say(f'{name}: best seed {best["seed"]}, correlation {best["correlation"]:.3f} ({best["verdict"]}) in '
                f'{os.path.join(os.path.dirname(path), BEST, name)}' + (' so far' if name in left else ''))
        else:
            say(f'{name}: no result' + (' yet' if name in left else ' (every seed failed: see the summary)'))
    say(f'summary: {path}')
