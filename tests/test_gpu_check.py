"""tools/gpu_check.sh, the accelerator check of issue #14, run through on the CPU on small stand-in maps:
the script is run on the device machine only when a session is lent one, so it must not rot meanwhile."""

import os
import subprocess
import sys
from pathlib import Path

from test_bench import stand_in_pair

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_check_runs_every_part_and_its_table_reports_each(tmp_path):
    data, log = tmp_path / 'maps', tmp_path / 'log'
    data.mkdir()
    stand_in_pair(data, 40, 1.5, 28)
    env = dict(os.environ, PYTHON=sys.executable, DEVICE='cpu', SIZES='20', REAL='tric_160', W2='5',
               REAL_ARGS='--steps 20 --refine 5', DATA=str(data), OUT=str(log), TESTS='tests/test_fsc.py',
               OMP_NUM_THREADS='2')
    run = subprocess.run(['bash', str(ROOT / 'tools' / 'gpu_check.sh')], cwd=ROOT, env=env,
                         capture_output=True, text=True, encoding='utf-8', timeout=400)
    assert run.returncode == 0, run.stderr[-2000:]
    table = run.stdout.split('== gpu_check:')[-1]
    assert 'none:' not in table, table                     # no part timed out or failed
    assert 'cuda none' in table and ' passed' in table and 'failed' not in table
    lines = table.splitlines()
    full_grid = lines.index(next(line for line in lines if line.startswith('bench full-grid step')))
    assert lines[full_grid + 1].split()[0] == '20³'
    assert any(line.startswith('   fsc_prediction_masked_A ') for line in lines)     # the real-size run judged
    every = next(line for line in lines if 'every step on the full grid' in line)
    assert 'ran 1:' in every and 'fsc_prediction_masked_A' in every          # on the full grid, and judged
    assert sum('w2_steps' in line for line in lines) == 2
