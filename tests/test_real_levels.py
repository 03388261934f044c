"""The level rule on a real map: EMD-3488 (haemoglobin, 3.2 Å, masked) onto a noisy 7 Å map of its
model with one αβ dimer turned (`make realdata` makes data/real/; skipped without it)."""

import os
from collections import deque

import numpy as np
import pytest

from cryotrans_engine import placed_target, read_map
from cryotrans_engine.levels import choose_levels, components, noise_floor
from helpers import Said, run

REAL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'data', 'real')
FILES = [os.path.join(REAL, f) for f in ('emd_3488.mrc', 'hb_moved_7A_noise.mrc')]
pytestmark = pytest.mark.skipif(not all(map(os.path.exists, FILES)), reason='no real map: make realdata')


def test_on_the_real_map_the_rule_encloses_the_target_s_volume_and_its_noise_floor_stays_below():
    """As measured (docs/benchmarks.md, Levels, hb7): the target 3 σ above its solvent (half way
    would be in its noise), the real map at the same 72,786 Å³; its noise floor (0.002, read in
    the shell the deposited mask left) lies under that level and changes nothing."""
    (v0, g0), (v1, g1) = map(read_map, FILES)
    on_initial = placed_target(v1, g1, g0)
    levels = choose_levels(v0, g0.voxel_size, v1, g1.voxel_size, on_initial)
    assert levels.level0 == pytest.approx(0.008725, rel=1e-3)
    assert levels.level1 == pytest.approx(0.2533, rel=1e-3)
    assert levels.volume0 == pytest.approx(72786, rel=1e-3) and levels.coverage == pytest.approx(1, abs=0.01)
    assert levels.initial.how == "enclosing the target's volume"
    assert levels.target.how.startswith('3 σ above its solvent noise')
    assert noise_floor(v0, g0.voxel_size, on_initial, levels.level1) < levels.level0 / 2


def test_on_the_real_map_chimerax_s_untouched_levels_give_way_to_the_levels_trained_at(session):
    """ChimeraX's 1 % levels enclose about a sixth of the molecule: both are replaced, and each
    warning quotes the level the pair is then prepared at."""
    from chimerax.cryotrans.map_levels import level_choices, morph_pair
    from chimerax.cryotrans.volumes import scene_pair
    for path in FILES:
        run(session, f'open {path}')
    maps = [session.models.list(model_id=(i,))[0] for i in (1, 2)]
    choices = level_choices(maps, scene_pair(*maps), (None, None))
    for i, (level, warning) in enumerate(zip(choices.levels, choices.warnings)):
        assert level.kind == 'rule' and 'too far off' in warning
        assert f"what the rule's level {level.level:.4g} encloses ({level.volume:,.0f} Å³)" in warning
    said = Said()
    pair = morph_pair(said, *maps, (None, None))
    assert pair.levels == choices.levels and said.warnings == list(choices.warnings)
    assert said.lines == [f'level{i} {choices.levels.words(i)}' for i in (0, 1)]



def flood_fill_labels(mask):
    """Face-connected pieces by breadth-first flood fill from each unlabelled voxel in raster order: slow,
    plain, and sharing nothing with levels.components, so that it can judge it."""
    shape = mask.shape
    flat = mask.ravel()
    labels = np.zeros(flat.size, np.int64)
    strides = (shape[1] * shape[2], shape[2], 1)
    count = 0
    for start in np.flatnonzero(flat):
        if labels[start]:
            continue
        count += 1
        labels[start] = count
        queue = deque([start])
        while queue:
            i = queue.popleft()
            for axis, stride in enumerate(strides):
                at = (i // stride) % shape[axis]
                for j, inside in ((i - stride, at > 0), (i + stride, at < shape[axis] - 1)):
                    if inside and flat[j] and not labels[j]:
                        labels[j] = count
                        queue.append(j)
    return labels.reshape(shape), count


@pytest.mark.parametrize('level', [0.008725, 0.002])
def test_on_the_real_map_the_pieces_are_those_a_flood_fill_finds(level):
    """scipy.ndimage.label gives EMD-3488's pieces at the rule's level (614, the molecule and dust) and
    at a low one where noise joins up (414), numbered as the union-find it replaced numbered them."""
    values, _ = read_map(FILES[0])
    mask = values >= level
    labels, count = components(mask)
    expected, expected_count = flood_fill_labels(mask)
    assert count == expected_count > 400
    assert np.array_equal(labels, expected)
