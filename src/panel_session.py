"""What the tool panel needs of a ChimeraX session, in one place and without Qt.

The panel (panel.py) is a plain Qt widget: it asks this object for the open maps,
the levels `cryotrans morph` would use, the region maps, and to run commands; and it
hears from it when maps open, close, are renamed or change level, and when runs
change.  Every action is a command line run through ChimeraX's command runner, so
it is logged as if typed.
"""

from chimerax.core.models import MODEL_NAME_CHANGED

from .map_levels import level_choices, typed_spec
from .run import MorphRun, add_run_handler, pump, runs
from .volumes import scene_pair


class SessionServices:
    def __init__(self, session):
        self.session = session
        self._handlers = []
        self._watched_levels = []

    # maps
    def volumes(self):
        """(spec, label) of each open map the panel can morph: not a cryotrans series' frames."""
        from chimerax.map import Volume
        from chimerax.map_series import MapSeries
        frames = {id(m) for s in self.session.models.list(type=MapSeries) for m in s.maps}
        return [('#' + v.id_string, f'#{v.id_string} {v.name}') for v in self.session.models.list(type=Volume)
                if id(v) not in frames and not _is_region_map(v)]

    def volume(self, spec):
        from chimerax.map import Volume
        for v in self.session.models.list(type=Volume):
            if '#' + v.id_string == spec:
                return v
        return None

    def watch_models(self, callback):
        """callback() whenever models open, close or are renamed."""
        t = self.session.triggers
        for name in ('add models', 'remove models', MODEL_NAME_CHANGED):
            self._handlers.append(t.add_handler(name, lambda *_: callback()))

    def watch_levels(self, specs, callback):
        """callback() when the shown level of these maps changes (replacing earlier watches)."""
        self._unwatch_levels()
        for spec in specs:
            v = self.volume(spec)
            if v is not None:
                def changed(volume, kind):
                    if kind == 'thresholds changed':
                        callback()
                v.add_volume_change_callback(changed)
                self._watched_levels.append((v, changed))

    def _unwatch_levels(self):
        for v, cb in self._watched_levels:
            if not v.deleted and cb in v.change_callbacks:
                v.remove_volume_change_callback(cb)
        self._watched_levels = []

    def levels(self, initial, target, typed):
        """The map_levels.LevelChoices cryotrans morph would make (levels, what they enclose, how each
        was chosen, warnings), or None without two maps.
        typed is ((mode, value) or None) per map, mode 'level', 'auto', 'encloseVolume' or 'sdLevel'."""
        maps = (self.volume(initial), self.volume(target))
        if None in maps or maps[0] is maps[1]:
            return None
        specs = []
        for i, t in enumerate(typed):
            kw = {'level': None, 'encloseVolume': None, 'sdLevel': None}
            if t is not None:
                kw[t[0] if t[0] != 'auto' else 'level'] = 'auto' if t[0] == 'auto' else t[1]
            specs.append(typed_spec(i, kw['level'], kw['encloseVolume'], kw['sdLevel']))
        return level_choices(maps, scene_pair(*maps), specs)

    # regions
    def region_map(self, initial):
        """(spec, [(region, rgba 0-255, voxels)]) of the initial map's region map, or None."""
        from .regions import region_color, region_map_of
        v = self.volume(initial)
        m = None if v is None else region_map_of(self.session, v)
        if m is None:
            return None
        import numpy as np
        labels = np.asarray(m.full_matrix())
        counts = np.bincount(labels.astype(np.int64).ravel())
        return ('#' + m.id_string, [(r, tuple(int(c) for c in region_color(r)), int(counts[r]))
                                    for r in range(1, len(counts)) if counts[r]])

    def drawn_region_sets(self, initial):
        """Specs of the marker sets drawn as regions of the initial map, region 1 first."""
        from .partition_command import drawn_marker_sets
        v = self.volume(initial)
        return [] if v is None else ['#' + m.id_string for m in drawn_marker_sets(self.session, v)]

    # commands and runs
    def run(self, command):
        """Run a command line as if typed (logged); returns its result, raises its error."""
        from chimerax.core.commands import run
        return run(self.session, command)

    def watch_runs(self, handler):
        """handler(RunEvent) on the main thread whenever a run of this session changes."""
        self._handlers.append(add_run_handler(self.session, lambda name, event: handler(event)))

    def run_of(self, series):
        for r in runs(self.session):
            if r.series is series:
                return r
        return None

    def runs(self):
        return list(runs(self.session))

    def pump(self):
        """Apply what workers handed over (needed headless, where no event loop does it)."""
        pump(self.session)

    def close(self):
        for h in self._handlers:
            self.session.triggers.remove_handler(h)
        self._handlers = []
        self._unwatch_levels()


def _is_region_map(v):
    return v.name.endswith(' regions')


def summary(run):
    """The words for a run that ended: how it ended, its time and final loss, and whether the
    prediction beats the initial map (verdict.py)."""
    if not isinstance(run, MorphRun):
        return ''
    if run.failure:
        return run.failure
    t = run.training
    from .run import STOPPED
    how = (f'Stopped after {t.step} of {t.total_steps} steps' if run.state == STOPPED else
           f'Finished: {t.step} steps')
    loss = f', final loss {t.losses[-1]:.4g}' if t.losses else ''
    text = f'{how} in {t.elapsed:.0f} s{loss}.'
    v = run.verdict
    if v is not None:
        at = f' at {v.resolution:g} Å' if v.resolution else ''
        text += (f' Correlation with the target{at}: prediction {v.prediction:.3f}, initial map unmoved '
                 f'{v.initial:.3f}: ')
        text += 'the prediction is better.' if v.better else v.advice()
    return text
