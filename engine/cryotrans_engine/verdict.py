"""Is the prediction any good?  Compared with doing nothing: the initial map as it is.

A run always ends with a map, and a poor one looks like a result.  The honest
baseline is the initial map itself: if the prediction fits the target no better
than the unmoved initial map does, the run has learnt nothing useful and the user
should change the level, the resolution or the partition.  With the target's
resolution both maps are blurred to it first (what `fitmap` would compare);
without it both are compared as they are, and the verdict says so.

A fit to the target cannot catch every poor run: training fits the target, so a
prediction made of a sliver of the molecule (ChimeraX's untouched level on a real
map: 15 % of its volume) still fits it better than the initial map does, while
against the truth it is worse than doing nothing (docs/benchmarks.md, Levels).
So the verdict also asks whether the particles held about the molecule the target
shows: the initial map's level must enclose between 1/COVERAGE and COVERAGE times
what the target's encloses.
"""

from typing import NamedTuple

import torch

from .fsc import correlation
from .refinement import at_resolution, resolution_filter

MARGIN = 0.005      # a gain in correlation smaller than this is no gain
COVERAGE = 2.0      # particles enclosing under 1/2 or over 2 × the target's volume cannot be the molecule


class Verdict(NamedTuple):
    prediction: float   # correlation of the prediction with the target
    initial: float      # correlation of the initial map with the target
    resolution: float   # Å both were blurred to, or None (compared as they are)
    coverage: float = 1.0   # what the initial map's level encloses / what the target's does
    stopped: tuple = None   # (steps done, steps planned) of a run stopped before its end
    rule_level: bool = False    # the initial map's level is the rule's (level0 auto)

    @property
    def covered(self):
        return 1 / COVERAGE <= self.coverage <= COVERAGE

    @property
    def better(self):
        return self.prediction > self.initial + MARGIN and self.covered

    def summary(self):
        """One line for the log, the CLI and cryotrans list."""
        how = (f'both at {self.resolution:g} Å' if self.resolution else
               'both as they are: give the resolution to compare at the target\'s')
        line = (f'correlation with the target: prediction {self.prediction:.3f}, initial map unmoved '
                f'{self.initial:.3f} ({how})')
        advice = self.advice()
        return f'{line}. {advice}' if advice else line

    def advice(self):
        """What to make of a prediction that is not better ('' when it is): unfinished, or POOR RESULT and
        what to change (never what is already in use)."""
        if self.better:
            return ''
        if self.stopped and self.covered:
            done, planned = self.stopped
            return (f'Stopped after {done} of {planned} steps: the flow is unfinished, train it further (resume, '
                    f'more) before judging it.')
        level = ('encloseVolume0 with the molecule\'s volume (the rule\'s level0 is in use)' if self.rule_level else
                 'level0 auto, or encloseVolume0 with the molecule\'s volume')
        if not self.covered:
            return (f'POOR RESULT: the initial map\'s level encloses {self.coverage:.2f} × the volume the target\'s '
                    f'level does, so the particles were not the molecule the target shows and the prediction '
                    f'cannot be it either. Use {level}.')
        return (f'POOR RESULT: the prediction fits the target no better than the initial map does. Try a level '
                f'enclosing the molecule ({level}), the target\'s resolution if not given, or a partition if domains '
                f'move apart.')


def judge(prediction, initial, target, voxel_size, resolution=None, coverage=1.0, stopped=None, rule_level=False):
    """Compare prediction and initial map (same grid, [z, y, x]) with the target as it is; stopped: (steps
    done, planned) of a run stopped early; rule_level: the initial map's level is the rule's."""
    maps = [torch.as_tensor(m, dtype=torch.float32) for m in (prediction, initial)]
    if resolution:
        transfer = resolution_filter(maps[0].shape, voxel_size, resolution)
        maps = [at_resolution(m, transfer) for m in maps]
    a, b = (correlation(m.numpy(), target) for m in maps)
    return Verdict(a, b, resolution, coverage, stopped, rule_level)
