"""What the log says as a run goes from stage to stage: refinement or its polish beginning, a stage
ending early.  The command line and ChimeraX print these words as they are."""

from .schedule import grid_text


def refinement_note(settings):
    """What refinement will do, for logs ('' without it)."""
    s = settings
    return f'{s.refine} steps refining at {s.resolution:g} Å (loss: 1 - correlation)' if s.refine else ''


def beginning_note(training, step):
    """What begins after this step that changes what the loss means, for logs: refinement, or its
    polish ('' when neither)."""
    if training.plan.refinement_starts_after(step):
        return refinement_note(training.settings)
    return polish_note(training, step) if training.plan.polish_starts_after(step) else ''


def polish_note(training, step):
    """What the polish beginning after this step does, for logs."""
    index = training.plan.stage_index(step)
    stage, particles = training.plan[index], training.stage_sizes[index].particles
    source = f'bin {stage.particle_bin}' if stage.particle_bin else grid_text(stage)
    return f'{stage.steps} steps polishing with finer particles ({particles:,} a step, from {source})'


def stage_ended_note(training, step):
    """Words for a stage that ended early at this step (its loss had stopped improving), else ''."""
    plan = training.plan
    for index, done, planned in training.ended_early:
        if plan.start_of(index + 1) == step:
            return (f'{plan[index].loss} on {grid_text(plan[index])} ended after {done} of its {planned} steps: '
                    f'its loss had stopped improving')
    return ''
