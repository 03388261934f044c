"""`cryotrans move #4 flow #3`: carry an atomic model along the flow a run learnt.

The flow is a motion of space, so it moves every atom of a model fitted into the initial map
(each atom by its region's field when the run had regions).  The result is a new structure
with one coordinate set per frame of the series, the last being the model of the target state.
"""

import numpy as np
from chimerax.atomic import StructureArg
from chimerax.core.commands import CmdDesc, ModelIdArg, ModelArg
from chimerax.core.errors import UserError

from .flows import ended_run
from .structures import atoms_in_frame_of, moved_copy


def cryotrans_move(session, structure, flow=None, model_id=None):
    """Move structure along the flow of a cryotrans series; returns the moved copy."""
    run = ended_run(session, flow)
    trained = run.flow
    xyz = atoms_in_frame_of(structure, run.series)
    regions = trained.point_regions(xyz)
    frames = [trained.move(xyz, k / trained.frame_count, regions) for k in range(trained.frame_count + 1)]
    if model_id is not None:
        if session.models.have_id(model_id):
            raise UserError('model #%s already exists; choose another modelId' % '.'.join(map(str, model_id)))
    moved = moved_copy(session, structure, frames, run.series, f'{structure.name} moved by {run.name}')
    if model_id is not None:
        session.models.assign_id(moved, model_id)
    shift = np.linalg.norm(frames[-1] - frames[0], axis=1)
    per_region = ''
    if trained.region_count > 1:
        counts = np.bincount(regions, minlength=trained.region_count + 1)[1:]
        per_region = ' (' + ', '.join(f'region {r + 1}: {n}' for r, n in enumerate(counts)) + ' atoms)'
    session.logger.info(f'{len(xyz)} atoms of #{structure.id_string} moved along {run.name} as '
                        f'#{moved.id_string}{per_region}: {shift.mean():.2f} Å on average, {shift.max():.2f} Å at '
                        f'most; {len(frames)} coordinate sets, one per frame (coordset #{moved.id_string} plays '
                        f'them)')
    return moved


move_desc = CmdDesc(
    required=[('structure', StructureArg)],
    keyword=[('flow', ModelArg), ('model_id', ModelIdArg)],
    synopsis='move an atomic model along the flow of a cryotrans series, one coordinate set per frame')
