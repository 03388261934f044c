"""The training options' one declaration (settings.py): what is made from it (the help page's list:
test_help_pages.py), and Settings.resolved, which checks without changing the settings it is given."""

import math
import subprocess
import sys
from dataclasses import asdict

import pytest

from cryotrans_engine import Settings, SettingsError
from cryotrans_engine.cli import _settings, parser
from cryotrans_engine.settings import OPTIONS, REFINE_STEPS, RIGIDITY


def test_the_settings_and_the_package_load_without_torch_and_every_public_name_is_there():
    code = ('import sys, cryotrans_engine.settings; assert "torch" not in sys.modules, "settings"; '
            'import cryotrans_engine; assert "torch" not in sys.modules, "package"; '
            'import cryotrans_engine.schedule; from cryotrans_engine import schedule; assert callable(schedule); '
            'from cryotrans_engine import *; from cryotrans_engine import Training, MorphJob, TrainedFlow, FSC, compare_maps')
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_resolved_gives_new_settings_and_leaves_the_given_ones_as_they_were():
    given = Settings(resolution=5.0, rigidity=0.5)
    before = asdict(given)
    resolved = given.resolved(3)
    assert asdict(given) == before
    assert (resolved.refine, resolved.rigidity) == (REFINE_STEPS, (0.5, 0.5, 0.5))
    assert resolved.resolved(3) == resolved
    assert Settings().resolved(2).rigidity == (RIGIDITY, RIGIDITY) and Settings().resolved(1).rigidity == (0.0,)
    assert Settings(rigidity=[0, 2]).resolved().rigidity == (0.0, 2.0)


@pytest.mark.parametrize('given, regions, message', [
    (dict(loss='l1'), None, "loss must be one of w2, l2, not 'l1'"),
    (dict(kernel='slow'), None, "kernel must be one of fast, window, exact, not 'slow'"),
    (dict(steps=0), None, 'steps must be at least 1'),
    (dict(depth=1), None, 'depth must be at least 2 (input and output layers)'),
    (dict(lr=math.nan), None, 'lr must be a positive number, not nan'),
    (dict(epsilon=0.0), None, 'epsilon must be a positive number, not 0.0'),
    (dict(bin=-1), None, 'bin must be 0 (automatic multi-scale) or a positive binning factor'),
    (dict(particles=-1), None, 'particles must be 0 (every particle in every step) or the most a step may move'),
    (dict(resolution=math.inf), None, 'resolution must be positive (the target map\'s, in Å), or 0 when not known'),
    (dict(resolution=5.0, refine=-1), None, 'refine must be 0 or a number of steps'),
    (dict(refine=10), None, 'refine needs the target map\'s resolution (in Å) to blur the prediction to'),
    (dict(rigidity=(1, -1)), None, 'rigidity must be one number ≥ 0, or one per region (0: not held rigid)'),
    (dict(rigidity=(1, 2, 3)), 2, '3 rigidity values for 2 regions: give one value, or one per region'),
])
def test_a_value_that_cannot_work_is_named_and_the_settings_stay_as_given(given, regions, message):
    settings = Settings(**given)
    before = asdict(settings)
    with pytest.raises(SettingsError) as e:
        settings.resolved(regions)
    assert str(e.value) == message
    assert asdict(settings) == before


def test_the_command_lines_training_options_are_the_declared_ones():
    morph = parser()._subparsers._group_actions[0].choices['morph']
    actions = {a.option_strings[0]: a for a in morph._actions if a.option_strings}
    for option in OPTIONS:
        action = actions[option.flag]
        assert action.default is None and action.dest == option.name
        assert action.help.endswith(f'(default {option.default_text})') and option.help in action.help
        assert tuple(action.choices or ()) == option.choices
    args = parser().parse_args(['morph', 'a.mrc', 'b.mrc', '--out', 'o', '--rigidity', '1,0.5', '--steps', '7'])
    assert _settings(args) == Settings(rigidity=(1.0, 0.5), steps=7)
