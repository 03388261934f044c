"""Which level of each map `cryotrans morph` uses: typed, shown, or the engine's rule.

A level the user typed (level0 0.05, encloseVolume0 30000, sdLevel0 3) is used as
it is, with a warning when it is far from the rule's.  Otherwise the level shown
in ChimeraX is used when it is a sensible one; ChimeraX's untouched level (the
1 % of the box it starts every map at) usually is not, so when the shown level
encloses less than half or more than twice what the rule's level does, the log
says so and the rule's level is used (engine/levels.py says what the rule is).
"""

from typing import NamedTuple

from chimerax.core.errors import UserError

from cryotrans_engine.levels import LevelSpec, auto_levels, enclosed_volume, level_from, masks_kept

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


def morph_pair(log, initial, target, typed, regions=None):
    """The MapPair `cryotrans morph` trains on: the maps as they sit in the scene, at the levels
    chosen here (typed, shown or the rule's), each level logged with what it encloses.
    log: a ChimeraX logger, or anything with info and warning (the panel collects the lines)."""
    from cryotrans_engine import prepare_pair
    from .volumes import initial_to_target, map_values
    (values0, grid0), (values1, grid1) = map_values(initial), map_values(target)
    with masks_kept():          # the rule's masks, found here, are the ones prepare_pair thresholds with
        level0, level1 = morph_levels(log, (initial, target), (values0, values1),
                                      (grid0.voxel_size, grid1.voxel_size), typed)
        return prepare_pair(values0, grid0, values1, grid1, level0, level1,
                            transform=initial_to_target(initial, target), log=log.info, regions=regions)


def morph_levels(log, maps, values, voxels, typed):
    """The two LevelSpecs to train with: typed ones kept, shown ones checked against the rule.

    maps, values, voxels: (initial, target) volumes, their arrays, voxel sizes;
    typed: (spec or None) for each.  log: a ChimeraX logger (info and warning).
    """
    choices = level_choices(maps, values, voxels, typed)
    for choice in choices:
        if choice.warning:
            log.warning(choice.warning)
    return [choice.spec for choice in choices]


class LevelChoice(NamedTuple):
    """What `cryotrans morph` will do about one map's level, and the words for it."""
    spec: LevelSpec       # what goes to the engine
    level: float          # the level it comes to
    volume: float         # Å³ it encloses (dust left out)
    how: str              # 'shown in ChimeraX', 'typed', 'the rule's'
    warning: str = ''     # what the log warns about it, if anything


def level_choices(maps, values, voxels, typed):
    """LevelChoice for (initial, target): what morph_levels acts on and warns about."""
    with masks_kept():
        rule = auto_levels(values[0], voxels[0], values[1], voxels[1])
    rule_levels, rule_volumes = (rule.level0, rule.level1), (rule.volume0, rule.volume1)
    choices = []
    for i, (v, spec) in enumerate(zip(maps, typed)):
        shown = v.minimum_surface_level
        rule_choice = LevelChoice(LevelSpec('auto'), rule_levels[i], rule_volumes[i], 'the rule\'s')
        if spec is None and shown is None:
            spec = LevelSpec('auto')
        if spec is not None and spec.kind == 'auto':
            choices.append(rule_choice)
            continue
        level = level_from(spec, values[i], voxels[i]) if spec is not None else shown
        volume = enclosed_volume(values[i], level, voxels[i])
        ratio = volume / max(rule_volumes[i], 1e-30)
        off = not (1 / OFF_BY <= ratio <= OFF_BY)
        what = (f'#{v.id_string}\'s {"typed" if spec is not None else "shown"} level {level:.4g} encloses '
                f'{volume:,.0f} Å³, {ratio:.2f} × what the rule\'s level {rule_levels[i]:.4g} encloses '
                f'({rule_volumes[i]:,.0f} Å³)')
        if spec is not None:
            choices.append(LevelChoice(spec, level, volume, 'typed',
                                       f'{what}; it is used as typed (level{i} auto asks for the rule)' if off else ''))
        elif off:
            choices.append(rule_choice._replace(
                warning=f'{what}: too far off to be the molecule, so the rule\'s level is used '
                        f'(type level{i} {level:.4g} to keep the shown one)'))
        else:
            choices.append(LevelChoice(LevelSpec('value', float(shown), 'shown in ChimeraX'), float(shown), volume,
                                       'shown in ChimeraX'))
    return choices
