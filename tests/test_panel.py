"""The tool panel's Qt widget for real (PyQt6, offscreen) against a real headless ChimeraX session.

The ToolInstance wrapper (tool.py) needs chimerax.ui, which the PyPI ChimeraX wheel lacks,
so it is not run here; everything it holds is.  Commands that need ChimeraX's GUI
(`vseries slider`) are checked as command strings only.
"""

import time

import pytest

from cryotrans_engine import Grid, write_map
from helpers import blob, logged, run
from test_levels import noisy_pair

GRID = Grid((20, 20, 20), (2.0, 2.0, 2.0), (10.0, -20.0, 30.0))
CENTRE = (30.0, 0.0, 50.0)
GUI_ONLY = ('vseries slider', 'mousemode', 'ui tool show')


class Services:
    """The panel's real session services, recording each command line; those that need
    ChimeraX's GUI are recorded and not run (headless ChimeraX has no GUI to run them)."""

    def __new__(cls, session):
        from chimerax.cryotrans.panel_session import SessionServices

        class Recording(SessionServices):
            def __init__(self, session):
                super().__init__(session)
                self.commands = []

            def run(self, command):
                self.commands.append(command)
                if command.startswith(GUI_ONLY):
                    return None
                return super().run(command)
        return Recording(session)


@pytest.fixture
def maps(session, tmp_path):
    write_map(tmp_path / 'initial.mrc', 3 * blob(GRID, (CENTRE[0] - 3, *CENTRE[1:])), GRID)
    write_map(tmp_path / 'target.mrc', blob(GRID, (CENTRE[0] + 3, *CENTRE[1:])), GRID)
    write_map(tmp_path / 'mask.mrc', (blob(GRID, (CENTRE[0] - 6, *CENTRE[1:]), 5) > 0.3).astype('float32'), GRID)
    run(session, f'open {tmp_path / "initial.mrc"}')
    run(session, f'open {tmp_path / "target.mrc"}')
    run(session, 'volume #1 level 0.6')
    run(session, 'volume #2 level 0.2')
    return tmp_path


@pytest.fixture
def panel(qt_app, session, maps):
    from chimerax.cryotrans.panel import MorphPanel
    p = MorphPanel(Services(session))
    yield p
    run(session, 'cryotrans stop')
    p.close_services()
    p.deleteLater()


def settle(app, seconds=0.5):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def until_ended(app, panel, timeout=120):
    """Pump the workers' hand-overs and Qt's events until the panel's run ends (headless, the
    hand-overs reach the main thread only when it pumps)."""
    end = time.monotonic() + timeout
    while panel.run is None or panel.run.running or panel.run.worker.is_alive():
        assert time.monotonic() < end
        panel.services.pump()
        app.processEvents()
        time.sleep(0.005)
    panel.services.pump()
    app.processEvents()


def test_each_training_control_starts_at_the_declared_default_and_takes_the_declared_values(panel):
    from Qt.QtWidgets import QComboBox, QLineEdit
    from cryotrans_engine.settings import OPTIONS
    for option in OPTIONS:
        if not option.chimerax:
            assert option.keyword not in panel.controls
            continue
        control = panel.controls[option.keyword]
        if option.kind is tuple:                   # per region, in the region table
            continue
        assert control.toolTip() == option.help, option.name
        if option.choices:
            assert isinstance(control, QComboBox)
            assert [control.itemText(i) for i in range(control.count())] == list(option.choices)
            assert control.currentText() == option.default
        elif isinstance(control, QLineEdit):
            assert float(control.text()) == option.default
        elif option.default is None:               # not given: its lowest value, below the least allowed
            assert control.value() == control.minimum() == option.least - 1, option.name
        else:
            assert (control.minimum(), control.value()) == (option.least, option.default), option.name


def test_the_panel_builds_with_a_control_for_every_keyword_and_fits_a_side_panel(panel):
    from chimerax.cryotrans.morph_command import morph_desc

    def camel(name):
        head, *rest = name.split('_')
        return head + ''.join(w.capitalize() for w in rest)
    keywords = {camel(name) for name in morph_desc._keyword if name not in morph_desc._hidden}   # not old names
    assert keywords - set(panel.controls) == {'wait'}          # the panel always runs `wait false`
    assert panel.morph_command().endswith(' wait false')
    panel.advanced_toggle.setChecked(True)
    assert panel.minimumSizeHint().width() <= 400
    assert [panel.initial.itemText(i) for i in range(panel.initial.count())] == \
        ['#1 initial.mrc', '#2 target.mrc']
    assert panel.initial.currentData() == '#1' and panel.target.currentData() == '#2'
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled()


def test_the_command_says_what_the_controls_say(panel, tmp_path):
    assert panel.morph_command() == 'cryotrans morph #1 to #2 wait false'
    panel.resolution.setValue(7)
    panel.steps.setValue(300)
    panel.level_mode[0].setCurrentIndex(panel.level_mode[0].findData('encloseVolume'))
    panel.level_value[0].setValue(9000)
    panel.level_mode[1].setCurrentIndex(panel.level_mode[1].findData('auto'))
    panel.lr.setText('0.0005')
    panel.device.setCurrentText('cpu')
    panel.bin.setValue(2)
    panel.refine.setValue(100)
    panel.report_every.setValue(25)
    panel.directory.setText(str(tmp_path / 'my results'))
    panel.model_id.setValue(7)
    assert panel.morph_command() == (
        f'cryotrans morph #1 to #2 encloseVolume0 9000 level1 auto resolution 7 steps 300 bin 2 device cpu '
        f'lr 0.0005 refine 100 reportEvery 25 modelId #7 directory "{tmp_path / "my results"}" wait false')
    panel.lr.setText('fast')
    panel.start()
    assert "'fast' is not a number (lr)" in panel.message.text() and not panel.services.commands


def test_the_map_lists_follow_maps_opening_closing_and_renamed(panel, session, maps, qt_app):
    run(session, f'open {maps / "mask.mrc"}')
    assert panel.initial.count() == 3 and panel.mask.count() == 3
    run(session, 'rename #2 "closed state"')
    assert panel.target.itemText(1) == '#2 closed state' and panel.target.currentData() == '#2'
    run(session, 'close #3')
    assert panel.initial.count() == 2
    run(session, 'close #1')
    assert panel.initial.count() == 1 and not panel.start_button.isEnabled()
    settle(qt_app)
    assert 'choose two different maps' in panel.level_note[0].text()


def test_the_levels_shown_are_the_ones_morph_would_use_and_follow_the_dragged_level(panel, session, qt_app):
    settle(qt_app)
    _, log = logged(session, 'cryotrans morph #1 to #2 steps 1 frames 2')     # what morph itself says
    for i in (0, 1):
        line = next(t for t in log.splitlines() if t.startswith(f'level{i} '))
        assert panel.level_note[i].text() == 'level ' + line[len(f'level{i} '):]
    assert panel.level_note[0].text().startswith('level 0.6 (shown in ChimeraX): encloses ')
    assert 'Å³' in panel.level_note[1].text()
    run(session, 'volume #1 level 0.0001')         # far too low: the rule's level is used, and said
    settle(qt_app)
    text = panel.level_note[0].text()
    assert "(enclosing the target's volume)" in text and 'The shown level is too far off to be the molecule' in text
    assert 'type level0 0.0001 to keep the shown one' in panel.level_note[0].toolTip()
    panel.level_mode[1].setCurrentIndex(panel.level_mode[1].findData('level'))
    panel.level_value[1].setValue(0.3)
    settle(qt_app)
    assert panel.level_note[1].text().startswith('level 0.3 (given): encloses')


def test_on_a_noisy_map_the_panel_quotes_the_level_morph_trains_at(panel, session, qt_app, tmp_path):
    """Where the noise floor decides the initial map's level, the panel's note and its warning give
    the level morph trains at (the panel once read them back from the log's words)."""
    g, initial, target, _ = noisy_pair()
    for name, values in (('noisy', initial), ('blurred', target)):
        write_map(tmp_path / f'{name}.mrc', values, g)
        run(session, f'open {tmp_path / name}.mrc')               # #3 and #4, at ChimeraX's 1 %
    panel.initial.setCurrentIndex(panel.initial.findData('#3'))
    panel.target.setCurrentIndex(panel.target.findData('#4'))
    settle(qt_app)
    _, log = logged(session, 'cryotrans morph #3 to #4 steps 1 frames 2')
    line = next(t for t in log.splitlines() if t.startswith('level0 '))
    assert "(2 σ above the initial map's solvent noise" in line
    assert panel.level_note[0].text() == ('level ' + line[len('level0 '):]
                                          + '. The shown level is too far off to be the molecule')
    assert f"the rule's level {line.split()[1]} encloses" in panel.level_note[0].toolTip()
    assert panel.level_note[0].toolTip() in log


def test_a_run_from_the_panel_shows_progress_the_loss_and_the_verdict(panel, qt_app, session):
    panel.steps.setValue(30)
    panel.report_every.setValue(10)
    panel.frames.setValue(3)
    panel.start_button.click()
    assert panel.services.commands == ['cryotrans morph #1 to #2 steps 30 frames 3 reportEvery 10 wait false']
    assert panel.run is not None and panel.series_spec == '#3'
    assert not panel.start_button.isEnabled() and panel.stop_button.isEnabled()
    assert not panel.initial.isEnabled() and not panel.steps.isEnabled() and not panel.advanced.isEnabled()
    until_ended(qt_app, panel)
    steps, losses = panel.plot.points('w2')
    assert steps == list(range(1, 31)) and losses == panel.run.training.losses
    assert panel.progress.value() == 30 and 'finished' in panel.progress.format()
    text = panel.summary.text()
    assert text.startswith('Finished: 30 steps in ') and 'Correlation with the target: prediction' in text
    assert text.endswith('the prediction is better.'), text
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled() and panel.initial.isEnabled()
    panel.play_button.click()
    assert panel.services.commands[-1] == 'vseries slider #3'       # needs the GUI: the string is checked
    panel.list_button.click()
    assert panel.services.commands[-1] == 'cryotrans list' and not panel.message.text()


def test_stop_stops_the_run_keeping_its_frames(panel, qt_app):
    panel.steps.setValue(100000)
    panel.start_button.click()
    end = time.monotonic() + 60
    while panel.run.training.step < 3 or 'left' not in panel.progress.format():   # progress: about once a second
        assert time.monotonic() < end
        panel.services.pump()
        qt_app.processEvents()
        time.sleep(0.005)
    assert '·' in panel.progress.format() and panel.progress.value() >= 1
    assert len(panel.run.training.plan) == 1    # one stage, which runs all its steps: one time, not a range
    assert '–' not in panel.progress.format(), panel.progress.format()
    panel.stop_button.click()
    until_ended(qt_app, panel)
    assert panel.services.commands[-1] == 'cryotrans stop #3'
    assert 'stopped' in panel.progress.format() and panel.summary.text().startswith('Stopped after')
    assert 3 <= len(panel.plot.points('w2')[0]) < 100000


def test_refinement_is_marked_on_the_plot_with_its_own_axis(panel, qt_app):
    panel.steps.setValue(6)
    panel.refine.setValue(4)
    panel.resolution.setValue(5)
    panel.bin.setValue(1)
    panel.start_button.click()
    until_ended(qt_app, panel)
    assert panel.plot.points('w2')[0] == list(range(1, 7)) and panel.plot.points('refine')[0] == [7, 8, 9, 10]
    assert panel.plot.marks == [(6, 'refinement')] and panel.plot.right is not None


def test_refinement_s_polish_with_finer_particles_is_marked_too(panel, qt_app):
    panel.steps.setValue(6)
    panel.refine.setValue(12)
    panel.resolution.setValue(5)
    panel.bin.setValue(1)
    panel.particles.setValue(60)         # the maps' particles come from a coarser binning: then a polish
    panel.start_button.click()
    until_ended(qt_app, panel)
    assert panel.plot.marks == [(6, 'refinement'), (16, 'polish')]
    assert panel.plot.points('refine')[0] == list(range(7, 19))


def test_a_run_started_by_command_shows_in_the_panel(panel, session, qt_app):
    run(session, 'cryotrans morph #1 to #2 steps 100000 frames 3 wait false')
    assert panel.run is not None and panel.series_spec == '#3' and panel.stop_button.isEnabled()
    run(session, 'cryotrans stop')
    until_ended(qt_app, panel)
    assert panel.summary.text().startswith('Stopped after')


def test_a_failed_start_says_why_in_the_panel(panel, session):
    run(session, 'volume #1 level 50')
    panel.level_mode[0].setCurrentIndex(panel.level_mode[0].findData('level'))
    panel.level_value[0].setValue(50)
    panel.start_button.click()
    assert 'no density above level0 50' in panel.message.text() and panel.run is None


def test_regions_from_a_mask_are_listed_and_used_by_the_next_run(panel, session, maps):
    run(session, f'open {maps / "mask.mrc"}')
    panel.mask.setCurrentIndex(panel.mask.findData('#3'))
    panel.mask_button.click()
    assert panel.services.commands[-1] == 'cryotrans partition #1 masks #3'
    assert panel.region_table.rowCount() >= 1 and panel.use_regions.isChecked()
    spec = panel.region_map_spec
    assert spec and f'partition {spec}' in panel.morph_command()
    panel.region_table.cellWidget(0, 2).setValue(0.5)
    assert 'rigidity 0.5' in panel.morph_command()
    panel.draw_button.click()
    assert panel.services.commands[-1] == 'cryotrans partition #1 draw new'
    assert 'right-click on the map' in panel.region_hint.text()
    panel.atoms_button.click()
    assert 'give the atoms of a region' in panel.message.text()


def test_the_panels_state_comes_back_whole(panel, qt_app, session):
    from chimerax.cryotrans.panel import MorphPanel
    panel.resolution.setValue(6.5)
    panel.steps.setValue(777)
    panel.loss.setCurrentText('l2')
    panel.epsilon.setText('0.0002')
    panel.level_mode[0].setCurrentIndex(panel.level_mode[0].findData('sdLevel'))
    panel.level_value[0].setValue(3)
    panel.target.setCurrentIndex(0)
    panel.advanced_toggle.setChecked(True)
    state = panel.state()
    other = MorphPanel(Services(session))
    try:
        other.set_state(state)
        assert other.state() == state
        assert other.morph_command() == panel.morph_command()
        older = dict(state, texts={**state['texts'], 'saveDir': '/tmp/kept'})     # a panel saved as saveDir
        del older['texts']['directory']
        other.set_state(older)
        assert other.directory.text() == '/tmp/kept' and ' directory /tmp/kept ' in other.morph_command()
    finally:
        other.close_services()


def test_the_tool_is_declared_for_the_tools_menu_and_comes_back_with_sessions(session):
    """What ChimeraX reads to put CryoTRANS under Tools → Volume Data and `ui tool show CryoTRANS`
    (the tool window itself needs chimerax.ui: the command string is checked)."""
    bi = session.toolshed.find_bundle('ChimeraX-CryoTRANS', session.logger)
    assert [(t.name, t.categories) for t in bi.tools] == [('CryoTRANS', ['Volume Data'])]
    from chimerax.cryotrans import bundle_api
    from chimerax.cryotrans.tool import TOOL_NAME
    cls = bundle_api.get_class('CryoTransTool')
    assert cls.SESSION_SAVE and not cls.SESSION_ENDURING and TOOL_NAME == 'CryoTRANS'
    assert f'ui tool show {TOOL_NAME}'.startswith(GUI_ONLY)


def test_a_poor_result_says_so_in_the_summary(panel, qt_app):
    panel.steps.setValue(3)
    panel.lr.setText('1e-9')
    panel.start_button.click()
    until_ended(qt_app, panel)
    assert 'POOR RESULT: the prediction fits the target no better than the initial map' in panel.summary.text()


def _set(panel, keyword):
    """Change the control of one morph keyword; returns what the command must then say."""
    p = panel
    if keyword.startswith(('level', 'encloseVolume', 'sdLevel')):
        i = int(keyword[-1])
        mode = keyword[:-1]
        p.level_mode[i].setCurrentIndex(p.level_mode[i].findData(mode))
        p.level_value[i].setValue(0.25)
        return f'{keyword} 0.25'
    spins = dict(steps=(p.steps, 40), frames=(p.frames, 4), width=(p.width, 64), depth=(p.depth, 4),
                 sinkhornIterations=(p.sinkhorn, 7), bin=(p.bin, 2), seed=(p.seed, 5), refine=(p.refine, 30),
                 reportEvery=(p.report_every, 5), more=(p.more, 12),
                 particles=(p.particles, 5000))
    if keyword in spins:
        spin, value = spins[keyword]
        spin.setValue(value)
        return f'{keyword} {value}'
    if keyword == 'resolution':
        p.resolution.setValue(6.5)
        return 'resolution 6.5'
    if keyword == 'modelId':
        p.model_id.setValue(9)
        return 'modelId #9'
    if keyword in ('loss', 'device', 'rigidityForm'):
        combo, value = {'loss': (p.loss, 'l2'), 'device': (p.device, 'cpu'),
                        'rigidityForm': (p.rigidity_form, 'killing')}[keyword]
        combo.setCurrentText(value)
        return f'{keyword} {value}'
    if keyword in ('lr', 'epsilon'):
        (p.lr if keyword == 'lr' else p.epsilon).setText('0.002')
        return f'{keyword} 0.002'
    if keyword in ('directory', 'resume'):
        (p.directory if keyword == 'directory' else p.resume).setText('/tmp/somewhere')
        return f'{keyword} /tmp/somewhere'
    if keyword == 'to':
        return 'to #2'
    raise KeyError(keyword)


ALONE = ['level0', 'level1', 'encloseVolume0', 'encloseVolume1', 'sdLevel0', 'sdLevel1', 'to', 'steps', 'frames',
         'resolution', 'refine', 'loss', 'lr', 'width', 'depth', 'epsilon', 'sinkhornIterations', 'bin', 'device',
         'seed', 'rigidityForm', 'reportEvery', 'modelId', 'directory', 'resume', 'more', 'particles']


@pytest.mark.parametrize('keyword', ALONE)
def test_each_control_puts_its_keyword_in_the_command(panel, keyword):
    said = _set(panel, keyword)
    assert f' {said} ' in panel.morph_command() + ' '


def test_the_region_controls_put_partition_rigidity_and_colouring_in_the_command(panel, session, maps):
    run(session, f'open {maps / "mask.mrc"}')
    panel.mask.setCurrentIndex(panel.mask.findData('#3'))
    panel.mask_button.click()
    spec = panel.region_map_spec
    panel.region_table.cellWidget(0, 2).setValue(0.3)
    panel.color_regions.setChecked(False)
    command = panel.morph_command()
    assert f' partition {spec} rigidity 0.3 colorRegions false ' in command
    panel.use_regions.setChecked(False)
    assert 'partition' not in panel.morph_command()


def test_finding_the_regions_from_the_motion_puts_partition_auto_and_its_count_in_the_command(panel):
    assert 'partition' not in panel.morph_command()
    panel.auto_regions.setChecked(True)
    assert ' partition auto wait false' in panel.morph_command()
    panel.body_count.setValue(3)
    panel.color_regions.setChecked(False)
    assert ' partition auto count 3 colorRegions false ' in panel.morph_command()


def test_every_keyword_is_covered_by_the_two_tests_above():
    from chimerax.cryotrans.morph_command import morph_desc

    def camel(name):
        head, *rest = name.split('_')
        return head + ''.join(w.capitalize() for w in rest)
    shown = {camel(n) for n in morph_desc._keyword if n not in morph_desc._hidden}      # saveDir: directory's old name
    assert shown == set(ALONE) | {'partition', 'rigidity', 'colorRegions', 'count', 'wait'}
