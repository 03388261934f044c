"""The CryoTRANS tool panel: choose two maps, start, watch and stop a run, without typing.

A plain Qt widget over session services (panel_session.SessionServices) handed in from
outside, so that it is tested alone against a real headless session; tool.py only puts
it in a ChimeraX tool window.  One truth: every action is the command line a user could
type (`cryotrans morph …`, `cryotrans stop #3`, `cryotrans partition …`), run through
ChimeraX's command runner, so it is logged; the panel hears how runs go from their
notifications (run.py's RUN_TRIGGER), whoever started them.
"""

from Qt.QtCore import QTimer
from Qt.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout,
                          QHeaderView, QLabel, QLineEdit, QProgressBar, QPushButton, QSpinBox, QTableWidget,
                          QTableWidgetItem, QToolButton, QVBoxLayout, QWidget)
from Qt.QtGui import QColor

from cryotrans_engine.settings import OPTIONS, REFINE_STEPS, RIGIDITY
from .loss_plot import LossPlot

OPTION = {o.keyword: o for o in OPTIONS if o.chimerax}    # the training options, by morph keyword
RENAMED = {'saveDir': 'directory'}      # keywords of panels saved in older sessions, by their names now
MOST = 2 ** 31 - 1      # the top of every spin box: the engine has none
LEVEL_MODES = [('shown', 'shown in ChimeraX'), ('auto', "the rule's (auto)"), ('level', 'level'),
               ('encloseVolume', 'enclosing Å³'), ('sdLevel', 'SD from zero')]
STAGE_LABELS = {'refine': 'refinement', 'w2': 'regions apart', 'l2': 'regions apart'}


def _option(keyword, special=None):
    """The control of a training option, from its declaration: a spin box from its least value,
    a choice of its values, or a field for a float (typed, as its useful values span decades)."""
    option = OPTION[keyword]
    if option.choices:
        control = _combo(option.choices)
        control.setCurrentText(option.default)
    elif option.kind is float:
        control = QLineEdit(_number(option.default))
    else:
        control = _spin(option.least, MOST, option.default, special)
    control.setToolTip(option.help)
    return control


def _spin(low, high, value, special=None, suffix='', box=None):
    """A spin box (whole numbers unless box is a QDoubleSpinBox made ready), its range and value;
    special: the words for its lowest value."""
    s = QSpinBox() if box is None else box
    s.setRange(low, high)
    s.setValue(value)
    if special:
        s.setSpecialValueText(special)
    if suffix:
        s.setSuffix(suffix)
    return s


def _real(low, high, value, decimals, step, special=None, suffix=''):
    box = QDoubleSpinBox()
    box.setDecimals(decimals)        # before the range and value, which it rounds
    box.setSingleStep(step)
    return _spin(low, high, value, special, suffix, box)


def _combo(items=()):
    """A combo box that does not grow with long map names (a side panel is 400 pixels wide)."""
    c = QComboBox()
    c.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    c.setMinimumContentsLength(10)
    c.addItems(list(items))
    return c


def _form(parent):
    form = QFormLayout(parent)
    form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
    return form


def _number(text):
    return f'{text:g}' if isinstance(text, float) else str(text)


class MorphPanel(QWidget):
    """The panel's widget; services: what it needs of the session (panel_session.py)."""

    def __init__(self, services, parent=None):
        super().__init__(parent)
        self.services = services
        self.run = None              # the run the panel follows (the one it started, or one started by command)
        self.series_spec = None
        self.controls = {}           # morph keyword -> the control that sets it
        self.region_map_spec = None  # the sharp map's region map (#N), when it has one
        self._told = 0               # losses of the followed run plotted so far
        self._stage = None
        self._level_timer = QTimer(self)
        self._level_timer.setSingleShot(True)
        self._level_timer.setInterval(300)
        self._level_timer.timeout.connect(self._update_levels)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self._maps_group())
        layout.addWidget(self._training_group())
        layout.addWidget(self._advanced_group())
        layout.addWidget(self._regions_group())
        layout.addWidget(self._run_group())
        layout.addStretch(1)
        self.refresh_maps()
        services.watch_models(self.refresh_maps)
        services.watch_runs(self._run_changed)
        for r in services.runs():
            if r.running:
                self._follow(r)

    # ---- building -------------------------------------------------------------------------
    def _maps_group(self):
        box = QGroupBox('Maps')
        form = _form(box)
        self.initial = _combo()
        self.target = _combo()
        self.level_mode, self.level_value, self.level_note = [], [], []
        for i, (combo, label) in enumerate(((self.initial, 'Sharp map'), (self.target, 'Blurry map'))):
            combo.setToolTip('the high-resolution map of one state' if i == 0 else
                             'the low-resolution map of the other state, placed over the sharp one')
            combo.currentIndexChanged.connect(self._maps_changed)
            form.addRow(label, combo)
            mode = _combo()
            for key, text in LEVEL_MODES:
                mode.addItem(text, key)
            value = _real(-1e6, 1e9, 0.0, 4, 0.01)
            value.setMaximumWidth(110)
            value.setEnabled(False)
            mode.currentIndexChanged.connect(self._level_mode_changed)
            value.valueChanged.connect(lambda *_: self._level_timer.start())
            row = QHBoxLayout()
            row.addWidget(mode, 1)
            row.addWidget(value, 1)
            form.addRow('  level', row)
            note = QLabel('')
            note.setWordWrap(True)
            note.setStyleSheet('color: #555')
            form.addRow(note)
            self.level_mode.append(mode)
            self.level_value.append(value)
            self.level_note.append(note)
            for kw in (f'level{i}', f'encloseVolume{i}', f'sdLevel{i}'):
                self.controls[kw] = mode
        self.controls['to'] = self.target
        resolution = OPTION['resolution']
        self.resolution = _real(resolution.least, MOST, resolution.default, 1, 0.5, special='not known', suffix=' Å')
        self.resolution.setToolTip(resolution.help)
        form.addRow('  resolution', self.resolution)
        self.controls['resolution'] = self.resolution
        return box

    def _training_group(self):
        box = QGroupBox('Training')
        form = _form(box)
        self.steps = _option('steps')
        self.frames = _option('frames')
        self.device = _option('device')
        form.addRow('Steps', self.steps)
        form.addRow('Frames (Euler steps)', self.frames)
        form.addRow('Device', self.device)
        self.controls.update(steps=self.steps, frames=self.frames, device=self.device)
        return box

    def _advanced_group(self):
        box = QWidget()
        outer = QVBoxLayout(box)
        outer.setContentsMargins(0, 0, 0, 0)
        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText('Advanced')
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setStyleSheet('QToolButton { border: none; font-weight: bold }')
        self.advanced = QGroupBox()
        self.advanced.setVisible(False)
        self.advanced_toggle.toggled.connect(self._show_advanced)
        self._show_advanced(False)
        outer.addWidget(self.advanced_toggle)
        outer.addWidget(self.advanced)
        form = _form(self.advanced)
        self.loss = _option('loss')
        self.lr = _option('lr')
        self.width = _option('width')
        self.depth = _option('depth')
        self.epsilon = _option('epsilon')
        self.sinkhorn = _option('sinkhornIterations')
        self.bin = _option('bin', special='multi-scale')
        self.seed = _option('seed')
        self.particles = _option('particles', special='all')
        unset = OPTION['refine'].least - 1      # below its least: not given, the engine's rule decides
        self.refine = _spin(unset, MOST, unset, special=f'{REFINE_STEPS} with a resolution')
        self.refine.setToolTip(OPTION['refine'].help)
        self.report_every = _spin(1, 100000, 50)
        self.model_id = _spin(0, 100000, 0, special='next free')
        self.directory = QLineEdit()
        self.directory.setPlaceholderText('folder for frames and flow.pt (optional)')
        self.resume = QLineEdit()
        self.resume.setPlaceholderText('a flow.pt to go on from (optional)')
        self.more = _spin(0, 1000000, 0, special='none')
        self.rigidity_form = _option('rigidityForm')
        self.color_regions = QCheckBox('colour frames by region')
        self.color_regions.setChecked(True)
        form.addRow('Loss', self.loss)
        form.addRow('Learning rate', self.lr)
        form.addRow('Network width', self.width)
        form.addRow('Network depth', self.depth)
        form.addRow('ε (unit box)', self.epsilon)
        form.addRow('Sinkhorn iterations', self.sinkhorn)
        form.addRow('Binning', self.bin)
        form.addRow('Seed', self.seed)
        form.addRow('Particles a step', self.particles)
        form.addRow('Refinement steps', self.refine)
        form.addRow('Refresh frames every', self.report_every)
        form.addRow('Series model #', self.model_id)
        form.addRow('Save to', self._with_browse(self.directory, folder=True))
        form.addRow('Go on from', self._with_browse(self.resume, folder=False))
        form.addRow('More steps', self.more)
        form.addRow('Rigidity measure', self.rigidity_form)
        form.addRow(self.color_regions)
        self.report_every.setSuffix(' steps')
        self.controls.update(loss=self.loss, lr=self.lr, width=self.width, depth=self.depth, epsilon=self.epsilon,
                             sinkhornIterations=self.sinkhorn, bin=self.bin, seed=self.seed, refine=self.refine,
                             particles=self.particles, reportEvery=self.report_every, modelId=self.model_id,
                             directory=self.directory, resume=self.resume, more=self.more,
                             rigidityForm=self.rigidity_form, colorRegions=self.color_regions)
        return box

    def _with_browse(self, field, folder):
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(field, 1)
        browse = QPushButton('Browse…')

        def choose():
            path = (QFileDialog.getExistingDirectory(self, 'Folder for the results') if folder else
                    QFileDialog.getOpenFileName(self, 'Checkpoint', '', 'CryoTRANS checkpoint (*.pt)')[0])
            if path:
                field.setText(path)
        browse.clicked.connect(choose)
        layout.addWidget(browse)
        return row

    def _show_advanced(self, shown):
        self.advanced.setVisible(shown)
        self.advanced_toggle.setText(('▾ ' if shown else '▸ ') + 'Advanced')

    def _regions_group(self):
        box = QGroupBox('Regions')
        v = QVBoxLayout(box)
        about = QLabel('Domains that move differently: each region gets its own motion, held rigid.')
        about.setWordWrap(True)
        about.setStyleSheet('color: #555')
        v.addWidget(about)
        self.use_regions = QCheckBox('use the region map')
        self.use_regions.setEnabled(False)
        v.addWidget(self.use_regions)
        auto = QHBoxLayout()
        self.auto_regions = QCheckBox('or find them from the motion')
        self.auto_regions.setToolTip('partition auto: the rigid bodies of the motion of the run\'s first stage')
        self.body_count = _spin(0, 20, 0, special='bodies: as it shows', suffix=' bodies')
        auto.addWidget(self.auto_regions, 1)
        auto.addWidget(self.body_count)
        v.addLayout(auto)
        self.region_table = QTableWidget(0, 3)
        self.region_table.setHorizontalHeaderLabels(['region', 'voxels', 'rigidity λ'])
        self.region_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.region_table.verticalHeader().setVisible(False)
        self.region_table.setMaximumHeight(110)
        v.addWidget(self.region_table)
        draw = QHBoxLayout()
        self.draw_region = _combo()
        self.draw_button = QPushButton('Draw')
        self.draw_button.setToolTip('the right mouse button then places markers of this region on the map')
        self.draw_button.clicked.connect(self._draw)
        self.update_button = QPushButton('Update from drawn')
        self.update_button.setToolTip('make the regions from the markers drawn so far')
        self.update_button.clicked.connect(self._update_from_drawn)
        draw.addWidget(QLabel('Draw region'))
        draw.addWidget(self.draw_region, 1)
        draw.addWidget(self.draw_button)
        v.addLayout(draw)
        v.addWidget(self.update_button)
        atoms = QHBoxLayout()
        self.atoms = QLineEdit()
        self.atoms.setPlaceholderText('atoms, e.g. #3:30-59')
        self.atoms_button = QPushButton('Add from atoms')
        self.atoms_button.clicked.connect(self._from_atoms)
        atoms.addWidget(self.atoms, 1)
        atoms.addWidget(self.atoms_button)
        v.addLayout(atoms)
        mask = QHBoxLayout()
        self.mask = _combo()
        self.mask_button = QPushButton('Add from mask')
        self.mask_button.clicked.connect(self._from_mask)
        mask.addWidget(self.mask, 1)
        mask.addWidget(self.mask_button)
        v.addLayout(mask)
        self.region_hint = QLabel('')
        self.region_hint.setWordWrap(True)
        self.region_hint.setStyleSheet('color: #555')
        v.addWidget(self.region_hint)
        self.controls.update(partition=self.use_regions, rigidity=self.region_table, count=self.body_count)
        return box

    def _run_group(self):
        box = QGroupBox('Run')
        v = QVBoxLayout(box)
        buttons = QHBoxLayout()
        self.start_button = QPushButton('Start')
        self.stop_button = QPushButton('Stop')
        self.play_button = QPushButton('Play')
        self.play_button.setToolTip('ChimeraX\'s series slider for the frames')
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.play_button.clicked.connect(self.play)
        self.list_button = QPushButton('All runs')
        self.list_button.setToolTip('cryotrans list: every run of this session, in the log')
        self.list_button.clicked.connect(lambda: self._issue('cryotrans list'))
        for b in (self.start_button, self.stop_button, self.play_button, self.list_button):
            buttons.addWidget(b)
        v.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setFormat('not started')
        self.progress.setTextVisible(True)
        self.progress.setValue(0)
        v.addWidget(self.progress)
        self.plot = LossPlot()
        v.addWidget(self.plot)
        self.summary = QLabel('')
        self.summary.setWordWrap(True)
        v.addWidget(self.summary)
        self.message = QLabel('')
        self.message.setWordWrap(True)
        self.message.setStyleSheet('color: #b00')
        v.addWidget(self.message)
        self._set_running(False)
        self.play_button.setEnabled(False)
        return box

    # ---- maps and levels ------------------------------------------------------------------
    def refresh_maps(self):
        """Keep the map lists as the open maps are (by model number), keeping the choices."""
        volumes = self.services.volumes()
        for combo, other in ((self.initial, 1), (self.target, 0)):
            keep = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            for spec, label in volumes:
                combo.addItem(label, spec)
            index = combo.findData(keep)
            if index < 0 and combo is self.target and len(volumes) > 1:
                index = 1                      # a second map, when there is one: the likely target
            combo.setCurrentIndex(max(index, 0) if volumes else -1)
            combo.blockSignals(False)
        keep = self.mask.currentData()
        self.mask.clear()
        for spec, label in volumes:
            self.mask.addItem(label, spec)
        if self.mask.findData(keep) >= 0:
            self.mask.setCurrentIndex(self.mask.findData(keep))
        self._maps_changed()

    def _maps_changed(self, *_):
        specs = [c.currentData() for c in (self.initial, self.target)]
        self.services.watch_levels([s for s in specs if s], self._level_timer.start)
        self._refresh_regions()
        self._level_timer.start()
        self._set_running(self._running())

    def _level_mode_changed(self, *_):
        for mode, value in zip(self.level_mode, self.level_value):
            value.setEnabled(mode.currentData() not in ('shown', 'auto'))
        self._level_timer.start()

    def typed_levels(self):
        out = []
        for mode, value in zip(self.level_mode, self.level_value):
            key = mode.currentData()
            out.append(None if key == 'shown' else (key, None if key == 'auto' else value.value()))
        return out

    def _update_levels(self):
        """The level cryotrans morph would use for each map, with the volume it encloses."""
        initial, target = self.initial.currentData(), self.target.currentData()
        try:
            choices = self.services.levels(initial, target, self.typed_levels()) if initial and target else None
        except Exception as e:          # a map no level can help (constant, inverted): say why
            for note in self.level_note:
                note.setText(str(e))
            return
        if choices is None:
            why = 'choose two different maps' if initial and target else 'open two maps'
            for note in self.level_note:
                note.setText(why)
            return
        for i, (label, warning) in enumerate(zip(self.level_note, choices.warnings)):
            text = 'level ' + choices.levels.words(i)
            if warning:         # the rule's level in place of a shown one, or a typed one kept
                text += ('. The shown level is too far off to be the molecule' if choices.levels[i].kind == 'rule'
                         else '. Far from the rule\'s level')
            label.setText(text)
            label.setToolTip(warning)

    # ---- regions --------------------------------------------------------------------------
    def _refresh_regions(self):
        initial = self.initial.currentData()
        found = self.services.region_map(initial) if initial else None
        keep = self.rigidities()
        self.region_map_spec = None if found is None else found[0]
        rows = [] if found is None else found[1]
        self.region_table.setRowCount(len(rows))
        for row, (region, rgba, voxels) in enumerate(rows):
            item = QTableWidgetItem(f'region {region}')
            item.setBackground(QColor(*rgba[:3]))
            self.region_table.setItem(row, 0, item)
            self.region_table.setItem(row, 1, QTableWidgetItem(f'{voxels:,}'))
            spin = _real(OPTION['rigidity'].least, MOST, keep[row] if row < len(keep) else RIGIDITY, 2, 0.1)
            self.region_table.setCellWidget(row, 2, spin)
        self.use_regions.setEnabled(found is not None)
        self.use_regions.setText(f'use the region map {found[0]} ({len(rows)} regions)' if found else
                                 'no region map yet')
        self.use_regions.setChecked(found is not None)
        drawn = self.services.drawn_region_sets(initial) if initial else []
        self.draw_region.clear()
        for r in range(1, len(drawn) + 1):
            self.draw_region.addItem(f'{r}', r)
        self.draw_region.addItem('new', 'new')

    def rigidities(self):
        spins = [self.region_table.cellWidget(r, 2) for r in range(self.region_table.rowCount())]
        return [s.value() for s in spins if s is not None]

    def _partition(self, source):
        initial = self.initial.currentData()
        if not initial:
            self._say('open the sharp map first')
            return
        if self._issue(f'cryotrans partition {initial} {source}'):
            self._refresh_regions()

    def _draw(self):
        self._partition(f'draw {self.draw_region.currentData()}')
        self.region_hint.setText('right-click on the map to place this region\'s markers (the right mouse button '
                                 'is bound to "cryotrans region"), then Update from drawn')
        self._refresh_regions()

    def _update_from_drawn(self):
        drawn = self.services.drawn_region_sets(self.initial.currentData() or '')
        if not drawn:
            self._say('no regions drawn yet: choose a region and press Draw')
            return
        self._partition('markers ' + ','.join(drawn))

    def _from_atoms(self):
        if not self.atoms.text().strip():
            self._say('give the atoms of a region, e.g. #3:30-59')
            return
        self._partition(f'atoms {self.atoms.text().strip()}')

    def _from_mask(self):
        if self.mask.currentData():
            self._partition(f'masks {self.mask.currentData()}')

    # ---- the command ----------------------------------------------------------------------
    def morph_command(self):
        """The `cryotrans morph` line the controls say (defaults left out, `wait false` always)."""
        initial, target = self.initial.currentData(), self.target.currentData()
        if not initial or not target:
            raise ValueError('choose the sharp map and the blurry map')
        words = [f'cryotrans morph {initial} to {target}']
        for i, (key, value) in enumerate(t if t else (None, None) for t in self.typed_levels()):
            if key == 'auto':
                words.append(f'level{i} auto')
            elif key:
                words.append(f'{key}{i} {value:g}')
        if self.resolution.value() > 0:
            words.append(f'resolution {self.resolution.value():g}')
        numbers = [('steps', self.steps), ('frames', self.frames), ('width', self.width), ('depth', self.depth),
                   ('sinkhornIterations', self.sinkhorn), ('bin', self.bin), ('seed', self.seed),
                   ('particles', self.particles)]
        for key, spin in numbers:
            if spin.value() != OPTION[key].default:
                words.append(f'{key} {spin.value()}')
        for key, combo in (('loss', self.loss), ('device', self.device), ('rigidityForm', self.rigidity_form)):
            if combo.currentText() != OPTION[key].default:
                words.append(f'{key} {combo.currentText()}')
        for key, field in (('lr', self.lr), ('epsilon', self.epsilon)):
            try:
                value = float(field.text())
            except ValueError:
                raise ValueError(f'{field.text()!r} is not a number ({key})')
            if value != OPTION[key].default:
                words.append(f'{key} {value:g}')
        if self.refine.value() >= OPTION['refine'].least:
            words.append(f'refine {self.refine.value()}')
        if self.report_every.value() != 50:
            words.append(f'reportEvery {self.report_every.value()}')
        if self.model_id.value():
            words.append(f'modelId #{self.model_id.value()}')
        for key, field in (('directory', self.directory), ('resume', self.resume)):
            if field.text().strip():
                words.append(f'{key} {_quoted(field.text().strip())}')
        if self.more.value():
            words.append(f'more {self.more.value()}')
        if self.auto_regions.isChecked():
            words.append('partition auto' + (f' count {self.body_count.value()}' if self.body_count.value() else ''))
        elif self.use_regions.isChecked() and self.region_map_spec:
            words.append(f'partition {self.region_map_spec}')
            rigid = self.rigidities()
            if rigid and any(r != RIGIDITY for r in rigid):
                words.append('rigidity ' + ','.join(f'{r:g}' for r in rigid))
        if (self.auto_regions.isChecked() or self.use_regions.isChecked()) and not self.color_regions.isChecked():
            words.append('colorRegions false')
        words.append('wait false')
        return ' '.join(words)

    # ---- actions --------------------------------------------------------------------------
    def start(self):
        try:
            command = self.morph_command()
        except ValueError as e:
            self._say(str(e))
            return
        series = self._issue(command)
        if series is not None:
            run = self.services.run_of(series)
            if run is not None:
                self._follow(run)

    def stop(self):
        if self.series_spec:
            self._issue(f'cryotrans stop {self.series_spec}')

    def play(self):
        if self.series_spec:
            self._issue(f'vseries slider {self.series_spec}')

    def _issue(self, command):
        """Run a command line; its error goes to the panel's message line (the log has it too)."""
        self._say('')
        try:
            result = self.services.run(command)
        except Exception as e:
            self._say(str(e))
            return None
        return result if result is not None else True

    def _say(self, text):
        self.message.setText(text)

    # ---- following a run ------------------------------------------------------------------
    def _follow(self, run):
        self.run = run
        self.series_spec = '#' + run.series.id_string
        t = run.training
        self._told = 0
        self._stage = None
        self.plot.reset(t.total_steps)
        self.progress.setRange(0, t.total_steps)
        self.summary.setText(f'{run.name} → {self.series_spec}')
        self._catch_up(run, t.step, float('nan'), float('nan'))
        self._set_running(run.running)
        self.play_button.setEnabled(True)

    def _run_changed(self, event):
        if event.kind == 'started' and (self.run is None or not self.run.running):
            self._follow(event.run)
            return
        if event.run is not self.run:
            return
        if event.kind == 'stage':
            polish = event.run.training.plan.polish_starts_after(event.step)
            self.plot.mark(event.step, 'polish' if polish else STAGE_LABELS.get(event.stage, event.stage))
        self._catch_up(event.run, event.step, event.soonest, event.left)
        if event.kind == 'ended':
            self._set_running(False)
            from .panel_session import summary
            self.summary.setText(summary(event.run))
            state = event.run.state
            self.progress.setFormat(f'{event.step} / {event.total} steps, {_state_word(state)}')

    def _catch_up(self, run, step, soonest, left):
        """Plot the losses not yet plotted, each under the stage it was trained in; move the bar."""
        t = run.training
        losses = t.losses[self._told:step]
        while losses:
            kind = t.plan.stage_at(self._told).loss
            n = 1
            while n < len(losses) and t.plan.stage_at(self._told + n).loss == kind:
                n += 1
            self.plot.add(self._told + 1, losses[:n], kind)
            self._told += n
            losses = losses[n:]
        self.progress.setValue(step)
        if left == left and step < t.total_steps:
            from cryotrans_engine.budget import time_left_text       # a run exists: torch is imported already
            self.progress.setFormat(f'step %v / %m · {time_left_text(soonest, left, _duration)}')
        elif step < t.total_steps:
            self.progress.setFormat('step %v / %m')

    def _running(self):
        return self.run is not None and self.run.running

    def _set_running(self, running):
        initial, target = self.initial.currentData(), self.target.currentData()
        self.start_button.setEnabled(not running and bool(initial and target) and initial != target)
        self.stop_button.setEnabled(running)
        for w in (self.initial, self.target, *self.level_mode, self.resolution, self.steps, self.frames,
                  self.device, self.advanced, self.draw_button, self.update_button, self.atoms_button,
                  self.mask_button, self.use_regions, self.region_table, self.auto_regions, self.body_count):
            w.setEnabled(not running)
        if not running:
            self._level_mode_changed()
            self.use_regions.setEnabled(self.region_map_spec is not None)

    # ---- saved with the session -----------------------------------------------------------
    def state(self):
        """What the panel shows, for a ChimeraX session file (plain values)."""
        return {
            'version': 1,
            'initial': self.initial.currentData(), 'target': self.target.currentData(),
            'levels': [[m.currentData(), v.value()] for m, v in zip(self.level_mode, self.level_value)],
            'resolution': self.resolution.value(),
            'spins': {k: w.value() for k, w in self._spins().items()},
            'combos': {k: w.currentText() for k, w in self._combos().items()},
            'texts': {k: w.text() for k, w in self._texts().items()},
            'color_regions': self.color_regions.isChecked(),
            'auto_regions': self.auto_regions.isChecked(),
            'rigidity': self.rigidities(),
            'advanced': self.advanced_toggle.isChecked(),
            'series': self.series_spec,
        }

    def set_state(self, state):
        for combo, key in ((self.initial, 'initial'), (self.target, 'target')):
            index = combo.findData(state.get(key))
            if index >= 0:
                combo.setCurrentIndex(index)
        for (mode, value), (key, number) in zip(zip(self.level_mode, self.level_value), state.get('levels', [])):
            mode.setCurrentIndex(max(0, mode.findData(key)))
            value.setValue(number)
        self.resolution.setValue(state.get('resolution', 0))
        for key, v in state.get('spins', {}).items():
            self._spins()[key].setValue(v)
        for key, v in state.get('combos', {}).items():
            self._combos()[key].setCurrentText(v)
        for key, v in state.get('texts', {}).items():
            self._texts()[RENAMED.get(key, key)].setText(v)
        self.color_regions.setChecked(state.get('color_regions', True))
        self.auto_regions.setChecked(state.get('auto_regions', False))
        for row, value in enumerate(state.get('rigidity', [])):
            spin = self.region_table.cellWidget(row, 2)
            if spin is not None:
                spin.setValue(value)
        self.advanced_toggle.setChecked(state.get('advanced', False))
        self.series_spec = state.get('series')
        self.play_button.setEnabled(bool(self.series_spec))

    def _spins(self):
        return dict(steps=self.steps, frames=self.frames, width=self.width, depth=self.depth,
                    sinkhornIterations=self.sinkhorn, bin=self.bin, seed=self.seed, refine=self.refine,
                    reportEvery=self.report_every, modelId=self.model_id, more=self.more, particles=self.particles,
                    count=self.body_count)

    def _combos(self):
        return dict(loss=self.loss, device=self.device, rigidityForm=self.rigidity_form)

    def _texts(self):
        return dict(lr=self.lr, epsilon=self.epsilon, directory=self.directory, resume=self.resume,
                    atoms=self.atoms)

    def close_services(self):
        self.services.close()


def _quoted(path):
    return f'"{path}"' if any(c.isspace() for c in path) else path


def _duration(seconds):
    if seconds >= 3600:
        return f'{seconds / 3600:.1f} h'
    return f'{seconds / 60:.0f} min' if seconds >= 120 else f'{seconds:.0f} s'


def _state_word(state):
    from .run import FAILED, STOPPED
    return 'failed' if state == FAILED else 'stopped' if state == STOPPED else 'finished'
