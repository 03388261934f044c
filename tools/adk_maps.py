"""Simulate cryo-EM maps of adenylate kinase (AdK) open and closed states.

CryoTRANS needs a realistic, reproducible test case with a known answer: an
initial map of one conformation, target maps of another conformation at
lower resolution, and a high-resolution "truth" to score the result against.
AdK is the classic large hinge motion (open 4AKE -> closed 1AKE).  The two
structures come from the MDAnalysisTests sdist, where they are atom-for-atom
identical, so no sequence alignment is needed.

Maps are made like ChimeraX ``molmap`` (one Z-weighted Gaussian per atom,
sigma = 0.225 * resolution) and then hard low-pass filtered at the resolution,
so that Fourier shell correlation is meaningful.  Everything is deterministic.

Regenerate with:  python tools/adk_maps.py --out data/adk
"""

import argparse
import glob
import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import mrcfile
import numpy as np
from cryotrans_engine import fsc_resolution

sys.path.insert(0, str(Path(__file__).resolve().parent))
from atoms import atomic_numbers, pdb_text_atoms, with_coordinates  # noqa: E402  (gemmi reads the PDBs)

SDIST_SPEC = "MDAnalysisTests==2.11.0"
DATA_DIR = "mdanalysistests-2.11.0/MDAnalysisTests/data"
ELEMENTS = "HCNOPS"     # what AdK's atom names start with (after digits)
CORE_RANGES = ((1, 29), (60, 121), (160, 214))
# AdK's three domains, numbered as regions of a partition: CORE 1, NMP 2, LID 3
DOMAINS = (("CORE", CORE_RANGES), ("NMP", ((30, 59),)), ("LID", ((122, 159),)))
SIGMA_PER_RESOLUTION = 0.225
WINDOW_SIGMAS = 5.0
MARGIN = 10.0
GROW_STEP = 8
LABEL = b"CryoTRANS tools/adk_maps.py: simulated AdK map"
# (file stem, state, resolution in Angstrom)
MAPS = (
    ("adk_open_3A", "open", 3.0),
    ("adk_closed_7A", "closed", 7.0),
    ("adk_closed_5A", "closed", 5.0),
    ("adk_closed_3A", "closed", 3.0),
)
# The reverse direction's target (closed 3 A -> open), on a grid of its own as a real pair's would be:
# (file stem, state, resolution, voxel size in A, edge in voxels, origin shift from the common box's in A)
OTHER_GRID = ("adk_open_6A_2A", "open", 6.0, 2.0, 50, -1.3)


def download_sdist(dest):
    """Fetch the MDAnalysisTests sdist with pip, because it holds the AdK PDBs."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps",
         "--no-binary", ":all:", SDIST_SPEC, "-d", str(dest)],
        check=True,
    )
    (path,) = glob.glob(str(Path(dest) / "*.tar.gz"))
    return path


def element_of(atom_name):
    """Infer the element from the atom name, since these PDBs lack that column (and their names are
    not placed in columns by element, so gemmi's guess from them is no better: CA would be calcium)."""
    letters = atom_name.strip().lstrip("0123456789")
    if not letters or letters[0] not in ELEMENTS:
        raise ValueError(f"cannot infer a known element from atom name {atom_name!r}")
    return letters[0]


def parse_pdb(text):
    """Atom names, residue numbers, serial numbers, coordinates and Z of a PDB file's text, read by gemmi."""
    atoms = pdb_text_atoms(text, hydrogens=True)
    return {"name": atoms.name, "resseq": atoms.resseq, "serial": atoms.serial, "xyz": atoms.xyz,
            "z": atomic_numbers([element_of(n) for n in atoms.name])}


def read_structures(sdist):
    """Load open and closed AdK straight from the sdist, checking they match atom for atom."""
    with tarfile.open(sdist, "r:gz") as tar:
        structs = {
            state: parse_pdb(io.TextIOWrapper(tar.extractfile(f"{DATA_DIR}/adk_{state}.pdb")).read())
            for state in ("open", "closed")
        }
    o, c = structs["open"], structs["closed"]
    if not (np.array_equal(o["name"], c["name"]) and np.array_equal(o["resseq"], c["resseq"])):
        raise ValueError("open and closed PDBs do not list the same atoms")
    return structs


def kabsch(mobile, target):
    """Least-squares rotation and centroids that put mobile onto target."""
    mc, tc = mobile.mean(0), target.mean(0)
    u, _, vt = np.linalg.svd((mobile - mc).T @ (target - tc))
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rot = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return rot, mc, tc


def rmsd(a, b):
    """Root-mean-square deviation of paired coordinates."""
    return float(np.sqrt(((a - b) ** 2).sum(1).mean()))


def superpose(structs):
    """Fit closed onto open on the rigid CORE so the maps differ only by the hinge motion."""
    o, c = structs["open"], structs["closed"]
    ca = o["name"] == "CA"
    core = ca & np.any([(o["resseq"] >= a) & (o["resseq"] <= b) for a, b in CORE_RANGES], axis=0)
    rot, mc, tc = kabsch(c["xyz"][core], o["xyz"][core])
    c["xyz"] = (c["xyz"] - mc) @ rot.T + tc
    print(f"core CA atoms: {core.sum()}, core CA RMSD after fit: {rmsd(c['xyz'][core], o['xyz'][core]):.3f} A")
    print(f"all CA atoms: {ca.sum()}, all CA RMSD open vs closed: {rmsd(c['xyz'][ca], o['xyz'][ca]):.3f} A")


def common_box(coords, voxel, size):
    """Pick one cubic grid around both states, grown until atoms plus margin fit."""
    lo, hi = coords.min(0), coords.max(0)
    centre = (lo + hi) / 2
    print("union extents (A): " + ", ".join(
        f"{ax} {a:.2f}..{b:.2f} ({b - a:.2f})" for ax, a, b in zip("xyz", lo, hi)))
    need = float((hi - lo).max()) + 2 * MARGIN
    while size * voxel < need:
        size += GROW_STEP
        print(f"box too small for atoms + {MARGIN:g} A margin ({need:.2f} A): growing to {size} voxels")
    origin = centre - (size * voxel) / 2 + voxel / 2
    print(f"box: {size}^3 voxels of {voxel:g} A = {size * voxel:g} A, "
          f"voxel [0,0,0] centre (x,y,z) = ({origin[0]:.3f}, {origin[1]:.3f}, {origin[2]:.3f})")
    return origin, size


def axis_profiles(x, origin, voxel, size, sigma):
    """Per-atom 1D Gaussian over a +-5 sigma window along one axis, with grid indices."""
    width = int(np.floor(2 * WINDOW_SIGMAS * sigma / voxel)) + 1
    start = np.ceil((x - WINDOW_SIGMAS * sigma - origin) / voxel).astype(int)
    idx = start[:, None] + np.arange(width)
    d = origin + idx * voxel - x[:, None]
    prof = np.exp(-0.5 * (d / sigma) ** 2) * (np.abs(d) <= WINDOW_SIGMAS * sigma)
    prof *= (idx >= 0) & (idx < size)
    return prof, np.clip(idx, 0, size - 1)


def simulate(xyz, z, origin, voxel, size, resolution):
    """Sum Z-weighted atomic Gaussians on voxel centres, as ChimeraX molmap does."""
    sigma = SIGMA_PER_RESOLUTION * resolution
    (px, ix), (py, iy), (pz, iz) = (
        axis_profiles(xyz[:, a], origin[a], voxel, size, sigma) for a in range(3))
    weight = (z[:, None, None, None] * pz[:, :, None, None]
              * py[:, None, :, None] * px[:, None, None, :])
    flat = (iz[:, :, None, None] * size + iy[:, None, :, None]) * size + ix[:, None, None, :]
    grid = np.bincount(flat.ravel(), weights=weight.ravel(), minlength=size ** 3)
    return grid.reshape(size, size, size)


def radial_frequency(shape, voxel):
    """|k| in 1/A for each component of a (z, y, x) grid's real-input Fourier transform (rfftn)."""
    kz = np.fft.fftfreq(shape[0], d=voxel)[:, None, None]
    ky = np.fft.fftfreq(shape[1], d=voxel)[None, :, None]
    kx = np.fft.rfftfreq(shape[2], d=voxel)[None, None, :]
    return np.sqrt(kz ** 2 + ky ** 2 + kx ** 2)


def lowpass(grid, voxel, resolution):
    """Zero Fourier components beyond 1/resolution so the map truly lacks finer detail."""
    f = np.fft.rfftn(grid)
    f[radial_frequency(grid.shape, voxel) > 1.0 / resolution] = 0
    return np.fft.irfftn(f, s=grid.shape)


def write_map(path, grid, origin, voxel, scale=True):
    """Save a max-normalised float32 MRC whose header places it in the PDB frame
    (scale=False: whole-number labels, as 8-bit integers)."""
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data((grid / grid.max()).astype(np.float32) if scale else grid.astype(np.int8))
        mrc.voxel_size = voxel
        mrc.header.origin = tuple(float(v) for v in origin)
        mrc.header.nxstart = mrc.header.nystart = mrc.header.nzstart = 0
        mrc.header.mapc, mrc.header.mapr, mrc.header.maps = 1, 2, 3
        mrc.header.label[0] = LABEL  # replaces mrcfile's timestamped label, for identical reruns
        mrc.update_header_stats()


def domain_of_residues(resseq):
    """Region number (1 CORE, 2 NMP, 3 LID) of each residue number."""
    label = np.zeros(len(resseq), dtype=np.int32)
    for region, (_, ranges) in enumerate(DOMAINS, start=1):
        for a, b in ranges:
            label[(resseq >= a) & (resseq <= b)] = region
    return label


def domain_map(xyz, resseq, origin, voxel, size):
    """Each voxel labelled with the domain of its nearest atom: a region map for a partition."""
    label = domain_of_residues(resseq)
    axis = np.arange(size) * voxel
    z, y, x = np.meshgrid(axis + origin[2], axis + origin[1], axis + origin[0], indexing="ij")
    centres = np.stack([x.ravel(), y.ravel(), z.ravel()], 1)
    nearest = np.empty(len(centres), dtype=np.int64)
    for s in range(0, len(centres), 4096):
        block = centres[s:s + 4096]
        d2 = (block ** 2).sum(1)[:, None] - 2 * block @ xyz.T + (xyz ** 2).sum(1)[None]
        nearest[s:s + 4096] = d2.argmin(1)
    return label[nearest].reshape(size, size, size).astype(np.float32)


def write_pdb(path, text, moved=None):
    """Keep a structure's ATOM records beside its maps (the open one: the model a user would fit); moved
    (a parse_pdb structure) replaces the coordinates (the closed one as superposed, the truth a moved
    model is scored against)."""
    lines = [line for line in text.splitlines() if line.startswith(("ATOM  ", "HETATM", "TER", "END"))]
    if moved is not None:
        lines = with_coordinates(lines, moved["xyz"], moved["serial"])
    path.write_text("\n".join(lines) + "\n")


def write_readme(out, voxel, size, origin):
    """Record provenance and parameters next to the maps."""
    lines = [
        "# Simulated AdK maps",
        "",
        "Simulated cryo-EM maps of E. coli adenylate kinase, made by `tools/adk_maps.py`",
        "from `adk_open.pdb` (4AKE, open) and `adk_closed.pdb` (1AKE, closed) in the",
        f"`{SDIST_SPEC}` sdist (same atoms in both, hydrogens included).",
        "",
        "Regenerate: `python tools/adk_maps.py --out data/adk`",
        "",
        "- Closed is superposed onto open (Kabsch) on the CA atoms of the rigid CORE domain,",
        "  residues " + ", ".join(f"{a}-{b}" for a, b in CORE_RANGES) + "; the open frame is kept.",
        "- Like ChimeraX `molmap`: each atom a Gaussian, sigma = 0.225 x resolution,",
        "  weight = atomic number, window +-5 sigma; then all Fourier components with",
        "  |k| > 1/resolution are zeroed. Each map is scaled to maximum 1 (small negatives kept).",
        f"- Grid: {size}^3 voxels, {voxel:g} A, array order (z, y, x); voxel [0,0,0] centre at",
        f"  x,y,z = {origin[0]:.3f}, {origin[1]:.3f}, {origin[2]:.3f} A (the MRC header origin).",
        "",
        "| file | state | resolution | role |",
        "|---|---|---|---|",
        "| adk_open_3A.mrc | open | 3 A | initial map |",
        "| adk_closed_7A.mrc | closed | 7 A | target |",
        "| adk_closed_5A.mrc | closed | 5 A | second target |",
        "| adk_closed_3A.mrc | closed | 3 A | truth, for scoring only |",
        f"| {OTHER_GRID[0]}.mrc | open | {OTHER_GRID[2]:g} A | the reverse direction's target (closed 3 A -> open; "
        f"truth adk_open_3A.mrc), on its own grid: {OTHER_GRID[4]}^3 at {OTHER_GRID[3]:g} A, origin "
        f"{OTHER_GRID[5]:g} A from the others' on each axis |",
        "| adk_open_domains.mrc | open | - | region map: each voxel the domain of its nearest atom, "
        "CORE 1, NMP 2 (30-59), LID 3 (122-159) |",
        "| adk_open.pdb | open | - | the open structure's atoms (4AKE as in the sdist), for `cryotrans partition ... atoms` |",
        "| adk_closed.pdb | closed | - | the closed structure's atoms (1AKE) as superposed: the truth a moved model is "
        "scored against |",
        "",
    ]
    (out / "README.md").write_text("\n".join(lines))


def make_maps(sdist, out, voxel, size):
    """Run the whole pipeline: structures, superposition, box, maps, report."""
    structs = read_structures(sdist)
    n_h = int((structs["open"]["z"] == 1).sum())
    print(f"atoms per state: {len(structs['open']['z'])} ({n_h} hydrogens), "
          f"residues {structs['open']['resseq'].min()}-{structs['open']['resseq'].max()}")
    superpose(structs)
    origin, size = common_box(np.vstack([s["xyz"] for s in structs.values()]), voxel, size)
    out.mkdir(parents=True, exist_ok=True)
    grids = {}
    for stem, state, res in MAPS:
        s = structs[state]
        grids[stem] = lowpass(simulate(s["xyz"], s["z"], origin, voxel, size, res), voxel, res)
        write_map(out / f"{stem}.mrc", grids[stem], origin, voxel)
        print(f"wrote {out / stem}.mrc (min {grids[stem].min() / grids[stem].max():.4f} after scaling)")
    stem, state, res, other_voxel, other_size, shift = OTHER_GRID
    s, other_origin = structs[state], origin + shift
    grids[stem] = lowpass(simulate(s["xyz"], s["z"], other_origin, other_voxel, other_size, res), other_voxel, res)
    write_map(out / f"{stem}.mrc", grids[stem], other_origin, other_voxel)
    print(f"wrote {out / stem}.mrc ({other_size}^3 at {other_voxel:g} A)")
    o = structs["open"]
    write_map(out / "adk_open_domains.mrc", domain_map(o["xyz"], o["resseq"], origin, voxel, size), origin, voxel,
              scale=False)
    with tarfile.open(sdist, "r:gz") as tar:
        write_pdb(out / "adk_open.pdb", io.TextIOWrapper(tar.extractfile(f"{DATA_DIR}/adk_open.pdb")).read())
        write_pdb(out / "adk_closed.pdb", io.TextIOWrapper(tar.extractfile(f"{DATA_DIR}/adk_closed.pdb")).read(),
                  structs["closed"])
    write_readme(out, voxel, size, origin)
    for stem in ("adk_closed_7A", "adk_closed_5A", "adk_open_3A"):
        res = fsc_resolution(grids[stem], grids["adk_closed_3A"], (voxel,) * 3)
        print(f"FSC(0.5) {stem} vs adk_closed_3A: {res:.2f} A")


def main(argv=None):
    """Parse the command line and generate the maps."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sdist", help=f"path to the {SDIST_SPEC} sdist (downloaded with pip if omitted)")
    p.add_argument("--out", type=Path, default=Path("data/adk"), help="output folder")
    p.add_argument("--voxel", type=float, default=1.5, help="voxel size in A")
    p.add_argument("--size", type=int, default=64, help="initial box edge in voxels")
    args = p.parse_args(argv)
    if args.sdist:
        make_maps(args.sdist, args.out, args.voxel, args.size)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            make_maps(download_sdist(tmp), args.out, args.voxel, args.size)


if __name__ == "__main__":
    main()
