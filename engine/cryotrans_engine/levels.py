"""Contour levels: which voxels of a map are the molecule.

The level decides which voxels become particles, and it decides the result more
than any training setting (a real 3 Å map at ChimeraX's untouched 1 % level gave
a prediction worse than the blurry target; at a level enclosing the molecule,
FSC 3.8 Å).  The automatic rule (`target_rule`, `initial_rule`; `choose_levels` chooses
both maps' levels by it) holds on real and simulated maps:

- **Target (low resolution): half height.**  A blurred molecule's true boundary
  lies where the density falls to half its inside value, so the target's level
  is half way from the solvent to the median density it encloses (a fixed point,
  found by iterating).  The median, not the peak: real maps have sharp peaks.
- **Initial map (high resolution): the same volume.**  Both maps show the same
  molecule, so the initial map's level is the one at which it encloses what the
  target encloses.  On a sharp map no simple height rule works: noise-free maps
  have no noise to stand on, real maps have peaks and noise.
- **Dust left out**, as ChimeraX's `surface dust` hides it: blobs not connected
  to the molecule whose longest side is under DUST_SIZE (a low-pass filter's
  ripple, noise) count for neither volume and make no particles.
- **Noise floor.**  On a noisy initial map the level enclosing the target's
  volume can sink into the noise, whose blobs then touch the molecule and count as
  it; so the initial level stays NOISE_FLOOR σ above the initial map's solvent,
  read (median, MAD) where the target shows no molecule (beyond SOLVENT_MARGIN of
  it; voxels exactly 0, a mask's outside, left out).  2 σ, not 3: measured on the
  noisy AdK pair (docs/benchmarks.md, Levels); it leaves noise-free and masked
  real maps (EMD-3488) untouched.  The target's own solvent is read at its box edges.

Levels given by the user, by enclosed volume or by σ (ChimeraX's `volume`
options encloseVolume and sdLevel, with its meaning: sdLevel n is n standard
deviations from zero), go through `given_level` and are never overridden.
"""

import contextlib
import contextvars
import math
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from .errors import MapError

DUST_SIZE = 5.0       # Å: ChimeraX's `surface dust` default size
HALF = 0.5            # the boundary of a blurred object lies at half its inside density
NOISE_FLOOR = 2.0     # the initial map's level stays this many σ above its solvent noise
SOLVENT_MARGIN = 6.0  # Å: the solvent is what lies this far beyond the target's molecule
FACES = ndimage.generate_binary_structure(3, 1)   # a voxel's 6 face neighbours: what connects a piece


class LevelSpec(NamedTuple):
    """How a level is asked for: 'value' (a density), 'volume' (Å³ enclosed), 'sd' (× SD), or 'auto'.

    note says where a value came from when logged (e.g. 'shown in ChimeraX'); default 'given'.
    """
    kind: str
    amount: float = None
    note: str = 'given'

    def __str__(self):
        return {'value': f'{self.amount:.4g}', 'volume': f'encloseVolume {self.amount:g}',
                'sd': f'sdLevel {self.amount:g}', 'auto': 'auto'}[self.kind]


def components(mask):
    """Label the face-connected pieces of a boolean mask: int32 labels (0 outside, 1… numbered in
    raster order of each piece's first voxel) and their count.

    scipy.ndimage.label with the 6-neighbour structure (ChimeraX ships scipy): the same labels as
    the hand-written union-find it replaced, on EMD-3488's and the real-size maps, 2–7× faster
    (docs/benchmarks.md, Libraries).
    """
    labels, count = ndimage.label(mask, FACES)
    return labels, int(count)


def without_dust(mask, voxel_size, size=DUST_SIZE):
    """The mask less its dust: pieces whose bounding box's longest side is under size Å.

    The largest piece is always kept, so a map smaller than size keeps its molecule.
    """
    labels, count = components(mask)
    if count <= 1:
        return np.asarray(mask, bool)
    step = np.asarray(voxel_size, float)[::-1]                  # z, y, x
    keep = np.zeros(count + 1, bool)
    keep[1:] = [max((s.stop - s.start) * d for s, d in zip(box, step)) >= size
                for box in ndimage.find_objects(labels)]
    volumes = np.bincount(labels.ravel(), minlength=count + 1)
    keep[int(np.argmax(volumes[1:])) + 1] = True
    return keep[labels]


_kept = contextvars.ContextVar('molecule masks kept', default=None)


@contextlib.contextmanager
def masks_kept():
    """Within it, each map's molecule at a level is found once and kept (read-only): choosing
    the levels and thresholding ask for the same few several times over, and on a 256³ map
    each takes half a second (the dust's connected pieces).  Maps are told apart by identity, and
    kept alive while the block lasts, so a key can never name another map."""
    if _kept.get() is not None:           # nested: the outer block keeps them
        yield
        return
    token = _kept.set({})
    try:
        yield
    finally:
        _kept.reset(token)


def molecule(values, level, voxel_size, dust=DUST_SIZE):
    """The voxels at or above level that belong to the molecule (dust left out)."""
    kept = _kept.get()
    key = (id(values), float(level), tuple(float(v) for v in voxel_size), dust)
    if kept is not None and key in kept:
        return kept[key][1]
    mask = np.asarray(values) >= level
    if dust:
        mask = without_dust(mask, voxel_size, dust)
    if kept is not None:
        mask.flags.writeable = False      # shared by whoever asks next
        kept[key] = (values, mask)        # the map kept alive, so its id is not reused meanwhile
    return mask


def above_level(values, level, voxel_size):
    """The density that becomes particles: at or above level and on the molecule (no dust, no negatives)."""
    keep = molecule(values, max(level, 0.0), voxel_size)
    return np.where(keep, values, 0).astype(np.float32)


def enclosed_volume(values, level, voxel_size, dust=DUST_SIZE):
    """Å³ at or above level, dust left out."""
    return float(molecule(values, level, voxel_size, dust).sum()) * float(np.prod(voxel_size))


def median_and_noise(values):
    """Median and a robust σ (1.4826 × the median absolute deviation) of some voxels' values."""
    median = float(np.median(values))
    return median, 1.4826 * float(np.median(np.abs(values - median)))


def solvent(values):
    """Median and noise of the box edges, where the solvent is."""
    v = np.asarray(values)
    n = max(1, min(v.shape) // 10)
    inner = np.zeros(v.shape, bool)
    inner[n:-n or None, n:-n or None, n:-n or None] = True
    return median_and_noise(v[~inner] if (~inner).any() else v.ravel())


def half_height_level(values, voxel_size, dust=DUST_SIZE, iterations=50):
    """The level half way from the solvent to the median density it encloses (dust left out)."""
    return half_height(values, voxel_size, dust, iterations)[0]


def half_height(values, voxel_size, dust=DUST_SIZE, iterations=50):
    """(level, how it was found, in words for the log) of the half-height rule.

    Starts above the noise (3 σ, and 2 % of the height so a noise-free map starts
    off its flat solvent) and iterates level = solvent + ½ (median inside − solvent)
    to its fixed point; each step raises the level, so it stops at the lowest one.
    On a noisy map the start can lie above the fixed point already: the level stays
    at the start, and the words say so (half way would be lower, in the noise).
    """
    v = np.asarray(values, np.float32)
    base, noise = solvent(v)
    top = float(v.max())
    if not top > base:
        raise MapError('the map is flat: no voxel stands above its solvent, so it shows no molecule')
    start = base + max(3 * noise, 0.02 * (top - base))
    level = start
    for _ in range(iterations):
        inside = v[molecule(v, level, voxel_size, dust)]
        if inside.size == 0:
            break
        new = base + HALF * (float(np.median(inside)) - base)
        if abs(new - level) <= 1e-4 * (top - base):
            level = new
            break
        if new < level:     # the start is above the fixed point already (a noisy map): it stays,
            break           # and going on could not raise it (50 passes of dust on a 256³ map: 45 s)
        level = new
    if level == start:
        floor = '3 σ above its solvent noise' if 3 * noise >= 0.02 * (top - base) else '2 % of its height'
        return float(level), f'{floor}: half way to the density it encloses would be lower, in the noise'
    return float(level), 'half way from solvent to the density it encloses'


def level_enclosing(values, volume, voxel_size, dust=DUST_SIZE, iterations=10):
    """The level at which the map encloses volume Å³, dust left out.

    Without dust, the answer is read off the sorted values.  With it, the level
    is lowered until what is left after the dust is taken out holds the volume:
    each round asks the sorted values for the volume plus the dust just found
    (the dust changes little between rounds, so a few rounds settle it).
    """
    v = np.asarray(values, np.float32)
    cell = float(np.prod(voxel_size))
    ordered = np.sort(v, axis=None)[::-1]

    above_floor = ordered[ordered > ordered[-1]]    # a flat solvent (zeros) is never enclosed whole

    def raw(vol):
        k = int(np.clip(round(vol / cell), 1, max(above_floor.size, 1)))
        return float(above_floor[k - 1] if above_floor.size else ordered[0])

    level = raw(volume)
    if not dust:
        return level
    for _ in range(iterations):
        left_out = (v >= level).sum() * cell - enclosed_volume(v, level, voxel_size, dust)
        new = raw(volume + left_out)
        if new == level:
            break
        level = new
    return level


def sd_level(values, n):
    """ChimeraX's sdLevel: n standard deviations of the whole map, from zero."""
    return float(n) * float(np.asarray(values, np.float64).std())


def level_from(spec, values, voxel_size):
    """The density level a LevelSpec asks for on this map (not 'auto': that needs both maps)."""
    if spec.kind == 'value':
        return float(spec.amount)
    if spec.kind == 'volume':
        return level_enclosing(values, spec.amount, voxel_size)
    if spec.kind == 'sd':
        return sd_level(values, spec.amount)
    raise ValueError(f'level {spec} needs both maps: use choose_levels')


def grown(mask, voxel_size, margin):
    """The mask grown by margin Å, one face-neighbour step at a time.

    By shifted slices, not scipy.ndimage.binary_dilation: the same voxels, 3–4× faster (a 6 Å margin
    on a 256³ map: 0.08 s against 0.31 s; docs/benchmarks.md, Libraries).
    """
    out = np.asarray(mask, bool).copy()
    for _ in range(int(math.ceil(margin / min(voxel_size)))):
        g = out.copy()
        for axis in range(3):
            g[(slice(None),) * axis + (slice(1, None),)] |= out[(slice(None),) * axis + (slice(None, -1),)]
            g[(slice(None),) * axis + (slice(None, -1),)] |= out[(slice(None),) * axis + (slice(1, None),)]
        out = g
    return out


def noise_floor(initial, voxel0, target_on_initial, level1):
    """NOISE_FLOOR σ above the initial map's solvent: where the target (on the initial grid) shows no molecule."""
    near = grown(molecule(target_on_initial, level1, voxel0), voxel0, SOLVENT_MARGIN)
    values = np.asarray(initial)
    far = values[~near & (values != 0)]
    if far.size < 1000:
        return -math.inf
    median, noise = median_and_noise(far)
    return median + NOISE_FLOOR * noise


class MapLevel(NamedTuple):
    """One map's level, the Å³ it encloses (dust left out), and how it was chosen.

    kind: 'rule', 'given' (asked for by a LevelSpec: typed, or a checkpoint's) or the caller's own
    word for a given level (ChimeraX: 'typed' or 'shown'); how: the words the log gives in parentheses (the
    rule's reason, e.g. the noise floor's note, or what was asked for).
    """
    level: float
    volume: float
    kind: str
    how: str


class Levels(NamedTuple):
    """Both maps' levels as chosen: what a pair is thresholded at, logged and reported."""
    initial: MapLevel
    target: MapLevel

    level0 = property(lambda self: self.initial.level)
    level1 = property(lambda self: self.target.level)
    volume0 = property(lambda self: self.initial.volume)
    volume1 = property(lambda self: self.target.volume)

    @property
    def coverage(self):
        """What level0 encloses / what level1 encloses (Å³ / Å³): the verdict's coverage."""
        return self.volume0 / max(self.volume1, 1e-30)

    def words(self, i):
        """Map i's level, how it was chosen and what it encloses beside the other map: the log's
        line after 'level0 ' or 'level1 ' (the panel shows the same words)."""
        this, other = self[i], self[1 - i]
        whose = "the target's" if i == 0 else "the initial map's"
        return (f'{this.level:.4g} ({this.how}): encloses {this.volume:,.0f} Å³, '
                f'{this.volume / max(other.volume, 1e-30):.2f} × {whose}')


def target_rule(target, voxel1):
    """The rule's level for the target: half height (half_height says which way it was found)."""
    level, how = half_height(target, voxel1)
    return MapLevel(level, enclosed_volume(target, level, voxel1), 'rule', how)


def initial_rule(initial, voxel0, target_on_initial, target_level):
    """The rule's level for the initial map: enclosing what the target encloses at target_level (a
    MapLevel, however it was chosen), kept to the noise floor (target_on_initial: the target on the
    initial map's grid, as it is)."""
    level = level_enclosing(initial, target_level.volume, voxel0)
    how = "enclosing the target's volume"
    floor = noise_floor(initial, voxel0, target_on_initial, target_level.level)
    if floor > level:
        how = (f"{NOISE_FLOOR:g} σ above the initial map's solvent noise; the target's volume "
               f"({level:.4g}) would take in noise")
        level = floor
    return MapLevel(level, enclosed_volume(initial, level, voxel0), 'rule', how)


def given_level(spec, values, voxel_size, kind='given'):
    """The MapLevel a LevelSpec (not 'auto') asks for on this map; kind: how the caller came by it."""
    level = level_from(spec, values, voxel_size)
    return MapLevel(level, enclosed_volume(values, level, voxel_size), kind,
                    spec.note if spec.kind == 'value' else str(spec))


def choose_levels(initial, voxel0, target, voxel1, target_on_initial, level0=None, level1=None):
    """Both maps' Levels from what was asked: a number, a LevelSpec, None (the rule) or a MapLevel
    chosen already (kept as it is).

    The target first: the initial map's rule encloses what the target encloses at its level,
    whichever way that was chosen.  target_on_initial: the target on the initial map's grid
    (pair.placed_target), where the noise floor reads the initial map's solvent.
    """
    chosen1 = _given(level1, target, voxel1) or target_rule(target, voxel1)
    chosen0 = _given(level0, initial, voxel0) or initial_rule(initial, voxel0, target_on_initial, chosen1)
    return Levels(chosen0, chosen1)


def _given(level, values, voxel_size):
    """The MapLevel a level asked for comes to (a MapLevel as it is); None for the rule."""
    if level is None or isinstance(level, MapLevel):
        return level
    spec = level if isinstance(level, LevelSpec) else LevelSpec('value', float(level))
    return None if spec.kind == 'auto' else given_level(spec, values, voxel_size)
