"""`cryotrans fsc #1 to #2` and `cryotrans fsc #1 model #4 resolution 3.2`: how alike two maps
are where they sit in the scene, or a map and an atomic model, by the engine's one FSC
definition (cryotrans_engine/fsc.py), the same as `cryotrans fsc` on the command line.

The second map is read at the first's voxels through the scene positions, as `fitmap` reads
maps moved by hand.  A model is simulated by ChimeraX's own molmap on the first map's grid
(what `molmap #4 3.2 onGrid #1` makes), not opened, and closed after.
"""

from chimerax.atomic import AtomsArg
from chimerax.core.commands import CmdDesc, PositiveFloatArg, SaveFileNameArg
from chimerax.core.errors import UserError
from chimerax.map import MapArg

from cryotrans_engine import compare_maps

from .volumes import initial_to_target, map_values


def cryotrans_fsc(session, map, to=None, model=None, resolution=None, mask=None, plot=None):
    """FSC of map with another map (to) or with atoms simulated at resolution (model), optionally
    within mask; logs the resolution at 0.5 and 0.143 and the correlation, saves the curve as a PNG
    with plot; returns the engine's FSC (frequency, curve, resolution(cutoff), correlation)."""
    _check_choice(to, model, resolution, plot)
    if to is not None:
        other, name, how = to, f'#{to.id_string}', ''
    else:
        from chimerax.map.molmap import molmap
        other = molmap(session, model, resolution, on_grid=map, replace=False, open_model=False)
        structures = model.unique_structures
        models = ','.join('#' + s.id_string for s in structures)
        whole = len(model) == sum(s.num_atoms for s in structures)
        name = f'model {models} at {resolution:g} Å' if whole else f'{len(model)} atoms of {models} at {resolution:g} Å'
        how = (f' (simulated by molmap on #{map.id_string}\'s grid'
               + (f': molmap {models} {resolution:g} onGrid #{map.id_string})' if whole else ')'))
    try:
        fsc = _compare(map, other, mask, name)
    finally:
        if other is not to:
            other.delete()
    within = f' within mask #{mask.id_string}' if mask else ''
    if plot is not None:
        from .fsc_plot import save_plot
        save_plot(fsc, plot, f'#{map.id_string} {map.name} vs {name if model else f"{name} {to.name}"}{within}')
    session.logger.info(f'FSC of #{map.id_string} with {name}{within}{how}, read at #{map.id_string}\'s voxels '
                        f'where they sit: {fsc.summary()}' + (f'; curve saved to {plot}' if plot else ''))
    return fsc


def _check_choice(to, model, resolution, plot):
    """One clear message for keywords that do not go together."""
    if (to is None) == (model is None):
        raise UserError('compare with one thing: a map (cryotrans fsc #1 to #2) or an atomic model '
                        '(cryotrans fsc #1 model #4 resolution 3.2)' + (', not both' if to is not None else ''))
    if model is not None and resolution is None:
        raise UserError('give the resolution to simulate the model at: resolution R in Å (usually the map\'s)')
    if to is not None and resolution is not None:
        raise UserError('resolution is for a model (model #4 resolution R); a map given with to is compared '
                        'as it is')
    if model is not None and len(model) == 0:
        raise UserError('the model has no atoms: give a structure, e.g. model #4')
    if plot is not None and not plot.lower().endswith('.png'):
        raise UserError(f'plot saves a PNG image: give a file name ending in .png, not {plot}')


def _compare(map, other, mask, other_name):
    """The engine's FSC of two volumes (and a mask volume) read where they sit in the scene."""
    values, grid = map_values(map)
    other_values, other_grid = map_values(other)
    placed_mask = None if mask is None else (*map_values(mask), initial_to_target(map, mask))
    return compare_maps(values, grid, other_values, other_grid, initial_to_target(map, other), placed_mask,
                        names=(f'#{map.id_string}', other_name, f'mask #{mask.id_string}' if mask else None))


fsc_desc = CmdDesc(
    required=[('map', MapArg)],
    keyword=[('to', MapArg), ('model', AtomsArg), ('resolution', PositiveFloatArg), ('mask', MapArg),
             ('plot', SaveFileNameArg)],
    synopsis='FSC of a map with another map or an atomic model, where they sit')
