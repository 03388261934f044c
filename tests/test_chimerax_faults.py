"""Faults made by real means in real headless ChimeraX, each in a child process: a memory limit
(ulimit -v) and a file-size limit on saveDir.  The script must fail, ChimeraX must end by itself,
and nothing half-written may be left."""

import os
import resource
import subprocess
import sys

from cryotrans_engine import Grid, write_map
from helpers import blob

LAUNCHER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tools', 'chimerax_run.py')


def chimerax(*commands, preexec=None):
    argv = [a for c in commands for a in ('--cmd', c)]
    return subprocess.run([sys.executable, LAUNCHER] + argv, capture_output=True, encoding='utf-8', timeout=300,
                          preexec_fn=preexec)


def test_a_run_that_does_not_fit_a_memory_limit_is_refused_before_anything_opens(tmp_path):
    g = Grid((128, 128, 128), (1.5, 1.5, 1.5), (0.0, 0.0, 0.0))
    write_map(tmp_path / 'a.mrc', blob(g, (92.0, 96.0, 96.0), 20), g)
    write_map(tmp_path / 'b.mrc', blob(g, (100.0, 96.0, 96.0), 20), g)
    limit = tmp_path / 'limit.py'        # ulimit -v: 300 MB above what ChimeraX with PyTorch holds
    limit.write_text('import resource, torch\n'
                     'size = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:"))\n'
                     'resource.setrlimit(resource.RLIMIT_AS, (size + 300 * 2**20, resource.RLIM_INFINITY))\n')
    out = tmp_path / 'out'
    result = chimerax(f'open {tmp_path / "a.mrc"}', f'open {tmp_path / "b.mrc"}', f'open {limit}',
                      f'cryotrans morph #1 to #2 level0 0.05 level1 0.05 steps 5 saveDir {out}', 'cryotrans list')
    log = result.stdout + result.stderr
    assert result.returncode == 1, log[-3000:]
    assert 'cryotrans morph: this run needs about' in log and 'address-space limit (ulimit -v' in log
    assert 'Traceback' not in log and not out.exists()


def test_a_file_size_limit_on_save_dir_fails_the_script_and_leaves_no_partial_frame_set(tmp_path):
    g = Grid((48, 48, 48), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))       # a frame: 443,392 bytes; flow.pt ~140 kB
    write_map(tmp_path / 'a.mrc', 4 * blob(g, (44, 48, 48), 6), g)
    write_map(tmp_path / 'b.mrc', blob(g, (52, 48, 48), 6), g)
    out = tmp_path / 'out'
    result = chimerax(f'open {tmp_path / "a.mrc"}', f'open {tmp_path / "b.mrc"}',
                      f'cryotrans morph #1 to #2 level0 0.2 level1 0.05 steps 3 frames 3 bin 1 saveDir {out}',
                      preexec=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000)))
    log = result.stdout + result.stderr
    assert result.returncode == 1, log[-3000:]
    assert 'writing the frames to' in log and 'none of this set was written' in log and 'Traceback' not in log
    names = sorted(os.listdir(out))
    assert 'flow.pt' in names and not any(n.startswith(('frame_', '.frame-', 'tmp')) for n in names), names
