"""Which level of each map `cryotrans morph` uses: typed, shown, or the engine's rule.

A level the user typed (level0 0.05, encloseVolume0 30000, sdLevel0 3) is used as
it is, with a warning when it is far from the rule's.  Otherwise the level shown
in ChimeraX is used when it is a sensible one; ChimeraX's untouched level (the
1 % of the box it starts every map at) usually is not, so when the shown level
encloses less than half or more than twice what the rule's level does, the log
says so and the rule's level is used (engine/levels.py says what the rule is).
The rule's levels are found once, here, and handed to the engine as chosen; the
initial map's is the one that encloses what the target's chosen level encloses,
so a warning quotes the level training would use.
"""

from typing import NamedTuple

from chimerax.core.errors import UserError

from cryotrans_engine.levels import LevelSpec, Levels, given_level, initial_rule, masks_kept, target_rule
from cryotrans_engine.pair import check_maps
from .volumes import scene_pair

OFF_BY = 2.0        # a level enclosing under 1/OFF_BY or over OFF_BY × the rule's volume is "clearly off"


def typed_spec(name, level, enclose_volume, sd_level):
    """The LevelSpec the keywords for one map ask for, or None if none was typed."""
    given = [(k, v) for k, v in (('level', level), ('encloseVolume', enclose_volume), ('sdLevel', sd_level))
             if v is not None]
    if len(given) > 1:
        raise UserError(f'give one of level{name}, encloseVolume{name} or sdLevel{name}, not '
                        + ' and '.join(f'{k}{name}' for k, _ in given))
    if not given:
        return None
    keyword, value = given[0]
    if keyword == 'level':
        return LevelSpec('auto') if value == 'auto' else LevelSpec('value', float(value))
    return LevelSpec('volume' if keyword == 'encloseVolume' else 'sd', float(value))


class LevelChoices(NamedTuple):
    """What `cryotrans morph` will do about the two maps' levels: the levels it trains at (each
    with what it encloses and how it was chosen: kind 'rule', 'typed' or 'shown'), and what
    the log warns about each map's ('' if nothing)."""
    levels: Levels
    warnings: tuple


def morph_pair(log, initial, target, typed, regions=None):
    """The MapPair `cryotrans morph` trains on: the maps as they sit in the scene, at the levels
    chosen here (typed, shown or the rule's), each level logged with what it encloses.
    log: a ChimeraX logger, or anything with info and warning."""
    from cryotrans_engine import prepare_pair
    scene = scene_pair(initial, target)
    with masks_kept():          # the rule's masks, found here, are the ones prepare_pair thresholds with
        choices = level_choices((initial, target), scene, typed)
        for warning in choices.warnings:
            if warning:
                log.warning(warning)
        return prepare_pair(scene.values[0], scene.grids[0], scene.values[1], scene.grids[1], *choices.levels,
                            transform=scene.transform, log=log.info, regions=regions,
                            target_on_initial=scene.target_on_initial)


def level_choices(maps, scene, typed):
    """LevelChoices for maps (initial, target) read as scene (volumes.ScenePair); typed: (LevelSpec or
    None) for each.  The target's first: the initial map's rule encloses what the target's chosen level does."""
    values, voxels = scene.values, [g.voxel_size for g in scene.grids]
    check_maps(*values)
    with masks_kept():
        target, warning1 = _judged(maps[1], 1, typed[1], target_rule(values[1], voxels[1]), values[1], voxels[1])
        rule0 = initial_rule(values[0], voxels[0], scene.target_on_initial, target)
        initial, warning0 = _judged(maps[0], 0, typed[0], rule0, values[0], voxels[0])
    return LevelChoices(Levels(initial, target), (warning0, warning1))


def _judged(v, i, spec, rule, values, voxel_size):
    """(MapLevel, warning) for map i (volume v): the rule's when asked for or nothing is shown, a typed
    level as typed, the shown one when it encloses about what the rule's does."""
    shown = v.minimum_surface_level
    asks_rule = spec.kind == 'auto' if spec is not None else shown is None
    if asks_rule:
        return rule, ''
    if spec is not None:
        level = given_level(spec, values, voxel_size, 'typed')
    else:
        level = given_level(LevelSpec('value', float(shown), 'shown in ChimeraX'), values, voxel_size, 'shown')
    ratio = level.volume / max(rule.volume, 1e-30)
    if 1 / OFF_BY <= ratio <= OFF_BY:
        return level, ''
    what = (f'#{v.id_string}\'s {level.kind} level {level.level:.4g} encloses {level.volume:,.0f} Å³, {ratio:.2f} × '
            f'what the rule\'s level {rule.level:.4g} encloses ({rule.volume:,.0f} Å³)')
    if spec is not None:
        return level, f'{what}; it is used as typed (level{i} auto asks for the rule)'
    return rule, (f'{what}: too far off to be the molecule, so the rule\'s level is used '
                  f'(type level{i} {level.level:.4g} to keep the shown one)')
