"""`make bench` on a tiny box: every table runs and reports numbers (timings are not asserted)."""

import re

import bench


def test_every_bench_table_runs_on_a_tiny_box(capsys):
    assert bench.main(['--sizes', '20', '--repeat', '1']) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip().startswith('20³')]
    assert [len(r) for r in rows] == [9, 9, 5]            # speed, split (with refinement), memory
    numbers = [float(x) for r in rows for x in r[2:] if re.fullmatch(r'[0-9.e+-]+', x)]
    assert len(numbers) == 7 + 6 + 1 and all(x >= 0 for x in numbers)
