"""`cryotrans move #4 flow #3`: carry an atomic model along the flow a run learnt.

The flow is a motion of space, so it moves every atom of a model fitted into the initial map
(each atom by its region's field when the run had regions).  The result is a new structure
with one coordinate set per frame of the series, the last being the model of the target state.
"""

from chimerax.atomic import StructureArg
from chimerax.core.commands import BoolArg, CmdDesc, ModelIdArg, ModelArg
from chimerax.core.errors import UserError

from .flows import ended_run
from .structures import atoms_in_frame_of, bonded_pairs, moved_copy


def cryotrans_move(session, structure, flow=None, restrain=True, model_id=None):
    """Move structure along the flow of a cryotrans series; returns the moved copy.  restrain: keep the
    model's bond lengths and angles while following the flow (engine restraints.py)."""
    from cryotrans_engine.carry import carry, carried_words
    run = ended_run(session, flow)
    trained = run.flow
    xyz = atoms_in_frame_of(structure, run.series)
    bonds = bonded_pairs(structure) if restrain else None
    frames, regions = carry(trained, xyz, bonds)
    if model_id is not None:
        if session.models.have_id(model_id):
            raise UserError('model #%s already exists; choose another modelId' % '.'.join(map(str, model_id)))
    moved = moved_copy(session, structure, frames, run.series, f'{structure.name} moved by {run.name}')
    if model_id is not None:
        session.models.assign_id(moved, model_id)
    words = carried_words(xyz, frames, regions, trained.region_count, bonds)
    session.logger.info(f'{len(xyz)} atoms of #{structure.id_string} moved along {run.name} as '
                        f'#{moved.id_string}{words}; {len(frames)} coordinate sets, one per frame '
                        f'(coordset #{moved.id_string} plays them)')
    return moved


move_desc = CmdDesc(
    required=[('structure', StructureArg)],
    keyword=[('flow', ModelArg), ('restrain', BoolArg), ('model_id', ModelIdArg)],
    synopsis='move an atomic model along the flow of a cryotrans series, one coordinate set per frame')
