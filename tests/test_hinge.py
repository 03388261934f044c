"""The two-body hinge (tools/hinge.py): a partition held rigid keeps each body rigid and predicts better.

Three seeds each of a single field and of the default partitioned run, with the target's
resolution given; the gains must exceed the spread of the seeds.
"""

import numpy as np

import hinge
from cryotrans_engine import Settings, Training, correlation, fsc_resolution, prepare_pair
from cryotrans_engine.motion import rigid_fit

SEEDS = (0, 1, 2)


def _run(partition, seed, initial, target, truth, labels):
    pair = prepare_pair(initial, hinge.GRID, target, hinge.GRID, 0.05, 0.1 * target.max(), log=lambda m: None,
                        regions=labels if partition else None)
    t = Training(pair, Settings(steps=120, refine=150, resolution=hinge.RESOLUTION, seed=seed))
    t.run()
    prediction = t.frames()[-1]
    moving, path = t.paths()
    body = hinge.body_of_particles(moving)
    rms = [rigid_fit(path[0][body == b].numpy(), path[-1][body == b].numpy(), moving.mass[body == b].numpy()).rms
           for b in (1, 2)]
    return rms, fsc_resolution(prediction, truth, hinge.GRID.voxel_size), correlation(prediction, truth)


def test_a_rigid_partition_keeps_each_body_rigid_and_predicts_the_hinge_better_than_one_field():
    maps = hinge.hinge_maps()
    single = [_run(False, seed, *maps) for seed in SEEDS]
    parted = [_run(True, seed, *maps) for seed in SEEDS]
    for body in (0, 1):
        assert max(r[0][body] for r in parted) <= 0.5 * min(r[0][body] for r in single)
    for i, better in ((1, lambda a, b: a < b), (2, lambda a, b: a > b)):     # FSC in Å (lower), correlation
        a, b = [r[i] for r in parted], [r[i] for r in single]
        spread = max(np.ptp(a), np.ptp(b))
        gain = abs(np.mean(a) - np.mean(b))
        assert better(np.mean(a), np.mean(b)) and gain > spread, (a, b)
