"""Every training option, declared once (OPTIONS): its name, type, default, the values it takes
and one line of help.

Settings, the record a run trains with and each checkpoint stores, is made from OPTIONS, and
so are the command line's options (cli.py), the keywords of ChimeraX's `cryotrans morph` and
the panel's controls; a test holds the help page to it.  No torch here: the panel reads this
module, and so may a ChimeraX that has no PyTorch installed yet.
"""

import math
from dataclasses import dataclass, make_dataclass, replace

from .errors import SettingsError

LOSSES = ('w2', 'l2')
KERNELS = ('fast', 'window', 'exact')      # the ways wasserstein.py applies the Sinkhorn kernel
FORMS = ('deformation', 'killing')         # the ways rigidity.py measures how rigid a region moves
DEVICES = ('auto', 'cpu', 'cuda', 'mps')
REFINE_STEPS = 600   # refinement's default when the target's resolution is given
RIGIDITY = 1.0       # each region's λ when a partition is given without rigidity (docs/benchmarks.md)
PARTICLES = 32768    # most particles a training step moves by default (schedule.py; docs/benchmarks.md, Real size)


@dataclass(frozen=True)
class Option:
    """One training option, Settings' field `name`: ChimeraX's keyword is its camelCase, the
    command line's flag --its-kebab-case."""
    name: str
    kind: type               # int, float, str (one of choices) or tuple (of floats: one per region)
    default: object          # None: decided by other options when the run's settings are resolved
    help: str
    least: float = None      # the smallest value allowed
    above: float = None      # a bound the value must be greater than
    choices: tuple = ()
    must: str = ''           # what a value must be, where `at least N` (int) or `a positive number` (float)
                             # does not say it; {value}: the value given
    default_words: str = ''  # the default, where its value alone does not say it
    chimerax: bool = True    # also a keyword of cryotrans morph (else the command line's only)

    @property
    def keyword(self):
        head, *rest = self.name.split('_')
        return head + ''.join(word.capitalize() for word in rest)

    @property
    def flag(self):
        return '--' + self.name.replace('_', '-')

    @property
    def default_text(self):
        if self.default_words:
            return self.default_words
        return f'{self.default:g}' if isinstance(self.default, float) else str(self.default)

    def check(self, value):
        """Raise SettingsError, naming the option, for a value it cannot take (None: its default rule)."""
        if value is None and self.default is None:
            return
        if self.choices:
            if value not in self.choices:
                raise SettingsError(f'{self.name} must be one of {", ".join(self.choices)}, not {value!r}')
            return
        numbers = (value,) if isinstance(value, (int, float)) else tuple(value)
        if not numbers or not all(self._allows(v) for v in numbers):
            must = self.must or (f'at least {self.least}' if self.kind is int else 'a positive number, not {value}')
            raise SettingsError(f'{self.name} must be {must.format(value=value)}')

    def _allows(self, number):
        return ((self.kind is int or math.isfinite(number))
                and (self.least is None or number >= self.least) and (self.above is None or number > self.above))


OPTIONS = (      # in the order of Settings' fields (positional arguments)
    Option('steps', int, 1250, 'training steps of the loss, before refinement\'s', least=1),
    Option('frames', int, 10, 'Euler steps M of the flow; the trajectory has M + 1 frames', least=1),
    Option('depth', int, 3, 'layers of the velocity network', least=2,
           must='at least 2 (input and output layers)'),
    Option('width', int, 100, 'width of the velocity network', least=1),
    Option('lr', float, 1e-3, 'Adam learning rate', above=0),
    Option('loss', str, 'w2', 'w2: entropic Wasserstein distance; l2: voxel-wise squared difference',
           choices=LOSSES),
    Option('epsilon', float, 1e-4, 'entropic regularisation, on the box scaled so its longest edge is 1', above=0),
    Option('sinkhorn_iterations', int, 5, 'log-domain Sinkhorn iterations per step', least=1),
    Option('kernel', str, 'fast', 'how the Sinkhorn kernel is applied; all give the same result to float precision',
           choices=KERNELS, chimerax=False),
    Option('bin', int, 0, '0: multi-scale; k: every step of the loss on maps binned by k', least=0,
           must='0 (automatic multi-scale) or a positive binning factor'),
    Option('seed', int, 0, 'initialisation of the network: the same seed gives the same run', least=0),
    Option('device', str, 'auto', 'auto: CUDA, then Apple MPS, then the CPU', choices=DEVICES),
    Option('resolution', float, 0.0, 'the target map\'s resolution in Å: training then ends with refinement '
           'against it', least=0, must='positive (the target map\'s, in Å), or 0 when not known',
           default_words='0: not known'),
    Option('refine', int, None, 'refinement steps after the others, on the resolution grid', least=0,
           must='0 or a number of steps', default_words=f'{REFINE_STEPS} with a resolution, else 0'),
    Option('rigidity', tuple, None, 'λ: how rigid each region is held, one value or one per region', least=0,
           must='one number ≥ 0, or one per region (0: not held rigid)',
           default_words=f'{RIGIDITY:g} with a partition, else 0'),
    Option('rigidity_form', str, 'deformation', 'how rigidity is measured', choices=FORMS),
    Option('particles', int, PARTICLES, 'the most particles a training step moves (refinement\'s also at most '
           'R/1.6 apart until its polish); 0: every particle in every step', least=0,
           must='0 (every particle in every step) or the most a step may move'),
)


def _resolved(self, regions=None):
    """These settings checked (SettingsError names a value that cannot work), as new Settings with
    refine filled in, rigidity a tuple of floats and, the number of regions given, one per region."""
    for option in OPTIONS:
        option.check(getattr(self, option.name))
    refine = self.refine
    if refine is None:
        refine = REFINE_STEPS if self.resolution > 0 else 0
    if refine > 0 and self.resolution == 0:
        raise SettingsError('refine needs the target map\'s resolution (in Å) to blur the prediction to')
    return replace(self, refine=refine, rigidity=_rigidity(self.rigidity, regions))


def _rigidity(rigidity, regions):
    """λ as a tuple of floats, one per region when their number is known."""
    if rigidity is not None:
        rigidity = tuple(float(v) for v in ((rigidity,) if isinstance(rigidity, (int, float)) else rigidity))
    if regions is None:
        return rigidity
    if rigidity is None:
        return (RIGIDITY if regions > 1 else 0.0,) * regions
    if len(rigidity) == 1:
        return rigidity * regions
    if len(rigidity) != regions:
        raise SettingsError(f'{len(rigidity)} rigidity values for {regions} regions: give one value, or one per region')
    return rigidity


Settings = make_dataclass(
    'Settings', [(option.name, option.kind, option.default) for option in OPTIONS],
    namespace={'__doc__': 'Everything that decides a training run (OPTIONS); stored in each checkpoint.',
               '__module__': __name__, 'resolved': _resolved})
