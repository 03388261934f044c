"""`make bench` on a tiny box: every table runs and reports numbers (timings are not asserted)."""

import math

import bench


def test_every_bench_table_runs_on_a_tiny_box(capsys):
    assert bench.main(['--sizes', '20', '--repeat', '1']) == 0
    speed, split, memory, partition = [line.split() for line in capsys.readouterr().out.splitlines()
                                       if line.strip().startswith('20³')]
    times = speed[2:4] + speed[6:8] + split[3:7] + split[8:] + memory[2:3]     # split[7]: the rest, ± noise
    assert len(times) == 10 and all(float(t) >= 0 for t in times) and float(split[3]) > 0
    assert all(math.isfinite(float(x)) for x in speed[4:6] + speed[8:] + split[7:8])
    assert split[2] in ('yes', 'no') and len(split) == 9
    assert len(partition) == 9 and all(float(t) > 0 for t in partition[2:])
