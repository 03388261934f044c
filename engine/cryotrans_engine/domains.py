"""Rigid bodies found from a flow's motion: a partition without drawing (`partition auto`).

A short single-field run moves every particle; its motion (where each particle starts and
ends) is then split into bodies that each move as one rigid piece, as DynDom does for two
models: fit each body its mass-weighted rigid motion (motion.rigid_fit; while seeking, with an
isotropic scale: scaled_fit says why), give each particle
to the motion that explains it best, keep the bodies spatially whole (a voxel takes the
body most of its neighbours are in; a piece cut off from its body, lighter than a body may
be, joins the body that explains it best), and repeat until nothing changes.

How many bodies: one more is kept while it lowers the mass-weighted RMS residual by at
least GAIN of what it was and every body holds at least LEAST_SHARE of the mass, up to
MOST bodies.  A motion one body explains to within FLOOR voxels is not split: a rigid
motion, learnt by a smooth field, leaves a residual that more bodies would only chase.
A new body is seeded several ways (the worst-fit body split by planes through its centre,
split by the direction its particles miss their fit, and all the particles split afresh by
where they are); each seed is iterated and the lowest residual kept.  Deterministic.
"""

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage

from .motion import RigidMotion, rigid_fit
from .partition import region_labels
from .schedule import particle_bin

GAIN = 0.25          # a new body must lower the RMS residual by this share of what it was (docs/benchmarks.md)
LEAST_SHARE = 0.08   # a body holds at least this share of the mass (smaller pieces merge)
MOST = 6             # bodies looked for at most
FLOOR = 0.35         # voxels of the clustering grid: a motion one body explains this well is one body
ROUNDS = 30          # most reassignment rounds for one number of bodies
CLUSTER_PARTICLES = 30000   # the motion is read from the initial map binned to at most this many particles


@dataclass
class Bodies:
    """Bodies found in a motion: each particle's body (1…K) and each body's rigid motion."""
    labels: np.ndarray           # (N,) 1…K, per particle
    motions: list                # motion.RigidMotion per body
    shares: list                 # each body's share of the mass
    rms: float                   # mass-weighted RMS residual (Å) of every particle from its body's (scaled) motion
    centres: list = field(default_factory=list)  # each body's centre of mass before the motion (Å)
    tried: list = field(default_factory=list)   # (bodies, RMS residual Å) for each number tried
    why: str = ''                # why this number of bodies, in words

    @property
    def count(self):
        return len(self.motions)


def find_bodies(before, after, mass, voxels, shape, count=None, voxel_size=1.0, most=MOST, gain=GAIN,
                least_share=LEAST_SHARE):
    """Bodies of a motion: before/after (N, 3) positions in Å, mass (N,), voxels (N,) flat [z, y, x]
    indices of each particle's voxel on a grid of `shape` (for who neighbours whom); count: that
    many bodies, whatever the gain; voxel_size: that grid's voxel in Å (for FLOOR)."""
    a, b = np.asarray(before, np.float64), np.asarray(after, np.float64)
    w = np.asarray(mass, np.float64)
    grid = _Grid(np.asarray(voxels, np.int64), tuple(shape))
    labels = np.ones(len(a), np.int64)
    best = _settle(labels, a, b, w, grid, 1, least_share)
    tried = [(1, best.rms)]
    why = ''
    target = count or most
    while best.count < target:
        k = best.count + 1
        if not count and best.rms < FLOOR * voxel_size:
            why = (f'one body\'s motion explains every particle to {best.rms:.2f} Å RMS' if best.count == 1 else
                   f'{best.count} bodies explain the motion to {best.rms:.2f} Å RMS')
            break
        trial = min((_settle(seed, a, b, w, grid, k, least_share) for seed in _seeds(best, a, b, w, k)),
                    key=lambda found: (found.count != k, found.rms))
        tried.append((k, trial.rms))
        if count:
            if trial.count < k:
                why = f'{count} bodies asked for; only {best.count} hold mass of their own'
                break
            best = trial
            continue
        if trial.count < k or trial.rms > (1 - gain) * best.rms:
            why = (f'{k} bodies would lower the RMS residual from {best.rms:.2f} to {trial.rms:.2f} Å, less '
                   f'than the {gain:.0%} a body must gain' if trial.count == k else
                   f'{k} bodies would leave one under {least_share:.0%} of the mass')
            break
        best = trial
    if count and not why:
        why = f'{count} {"body" if count == 1 else "bodies"} asked for'
    elif not why:
        why = f'{most} bodies at most'
    best.tried, best.why = tried, why
    return best


class _Grid:
    """Who neighbours whom: the particles' voxels on their grid."""

    def __init__(self, voxels, shape):
        self.voxels, self.shape = voxels, shape

    def on_grid(self, labels):
        out = np.zeros(int(np.prod(self.shape)), np.int64)
        out[self.voxels] = labels
        return out.reshape(self.shape)

    def majority(self, labels, count):
        """Each particle's body as most of its 26 neighbours and itself have it (its own on a tie)."""
        if count == 1:
            return labels
        t = torch.from_numpy(self.on_grid(labels))
        onehot = torch.nn.functional.one_hot(t, count + 1)[..., 1:].permute(3, 0, 1, 2).float()
        votes = torch.nn.functional.avg_pool3d(onehot[None], 3, stride=1, padding=1)[0] * 27   # whole counts
        votes = torch.round(votes).reshape(count, -1)[:, torch.from_numpy(self.voxels)].numpy()
        own = votes[labels - 1, np.arange(len(labels))]
        top = votes.argmax(0) + 1
        return np.where(votes.max(0) > own, top, labels)

    def pieces(self, labels, count):
        """(piece id per particle, pieces' body): each body's connected pieces (26 neighbours)."""
        on = self.on_grid(labels)
        piece = np.zeros(len(labels), np.int64)
        owner, n = [0], 0
        for k in range(1, count + 1):
            found, m = ndimage.label(on == k, structure=np.ones((3, 3, 3)))
            ids = found.ravel()[self.voxels]
            mine = labels == k
            piece[mine] = ids[mine] + n
            owner += [k] * m
            n += m
        return piece, np.array(owner)


def _fits(labels, a, b, w, count, fit=None):
    """Each body's motion (None for a body without mass): scaled_fit while the bodies are sought, rigid_fit
    for the bodies found."""
    fit = fit or scaled_fit
    motions = []
    for k in range(1, count + 1):
        mine = labels == k
        motions.append(fit(a[mine], b[mine], w[mine]) if w[mine].sum() > 0 else None)
    return motions


def scaled_fit(before, after, weights):
    """The rigid fit with an isotropic scale (its `rotation` is s·R): what the bodies are sought with.
    A one-field flow also shrinks or swells the density a little (levels differ, the target is blurred);
    rigid motions alone would explain that by splitting a body in two, each half taking its share of the
    shrinking as a shift.  Measured (docs/benchmarks.md, partition auto): agreement with the true
    regions 0.57 → 0.78 on haemoglobin's two dimers, 0.83 → 0.89 on AdK's three domains; the hinge 1.0 both."""
    m = rigid_fit(before, after, weights)
    w = np.asarray(weights, np.float64) / np.sum(weights)
    ca, cb = w @ before, w @ after
    x = before - ca
    scale = float((w * ((x @ m.rotation.T) * (after - cb)).sum(1)).sum() / max((w * (x ** 2).sum(1)).sum(), 1e-30))
    r = scale * m.rotation
    return RigidMotion(r, cb - r @ ca, m.rms, m.particles)


def _residuals(motions, a, b):
    """(N, K) squared distance of each particle's end from where each body's motion takes it."""
    return np.stack([((a @ m.rotation.T + m.translation - b) ** 2).sum(1) if m is not None
                     else np.full(len(a), np.inf) for m in motions], 1)


def _settle(labels, a, b, w, grid, count, least_share):
    """Iterate fits and reassignment from a first labelling until nothing changes: Bodies."""
    labels = labels.copy()
    for _ in range(ROUNDS):
        motions = _fits(labels, a, b, w, count)
        r2 = _residuals(motions, a, b)
        own = r2[np.arange(len(a)), labels - 1]
        new = np.where(own <= r2.min(1) + 1e-12, labels, r2.argmin(1) + 1)   # a tie keeps its body
        new = grid.majority(new, count)
        new = _merge_small(new, r2, w, grid, count, least_share)
        if (new == labels).all():
            break
        labels = new
    labels, count = _renumbered(labels, count)
    r2 = _residuals(_fits(labels, a, b, w, count), a, b)[np.arange(len(a)), labels - 1]
    total = w.sum()
    shares = [float(w[labels == k].sum() / total) for k in range(1, count + 1)]
    centres = [np.average(a[labels == k], 0, w[labels == k]) for k in range(1, count + 1)]
    return Bodies(labels, _fits(labels, a, b, w, count, rigid_fit), shares, float(np.sqrt((w * r2).sum() / total)),
                  centres)


def _merge_small(labels, r2, w, grid, count, least_share):
    """Pieces lighter than least_share of the mass join the body that explains them best (not their own,
    unless it is their body's heaviest piece)."""
    piece, owner = grid.pieces(labels, count)
    mass = np.bincount(piece, weights=w, minlength=len(owner))
    small = mass < least_share * w.sum()
    for k in range(1, count + 1):          # each body's heaviest piece stays, unless the body itself is light
        mine = np.flatnonzero(owner == k)
        if len(mine) and mass[mine].sum() >= least_share * w.sum():
            small[mine[mass[mine].argmax()]] = False
    small[0] = False
    if not small.any():
        return labels
    out = labels.copy()
    cost = np.zeros((len(owner), count))
    np.add.at(cost, piece, w[:, None] * np.where(np.isfinite(r2), r2, 1e30))
    for p in np.flatnonzero(small):
        choice = cost[p].copy()
        choice[owner[p] - 1] = np.inf
        heavy = [k for k in range(1, count + 1) if mass[owner == k].sum() >= least_share * w.sum()]
        for k in range(1, count + 1):
            if k not in heavy:
                choice[k - 1] = np.inf
        if np.isfinite(choice).any():
            out[piece == p] = choice.argmin() + 1
    return out


def _renumbered(labels, count):
    """Bodies that hold particles numbered 1, 2, … by mass order kept stable (first seen first)."""
    present = [k for k in range(1, count + 1) if (labels == k).any()]
    table = np.zeros(count + 1, np.int64)
    table[present] = np.arange(1, len(present) + 1)
    return table[labels], len(present)


def _seeds(found, a, b, w, k):
    """First labellings for k bodies from the best k - 1: the worst-fit body split by planes through its
    centre (PLANES) and by the direction its particles miss their fit, and a fresh split of every particle
    by position (k-means)."""
    labels = found.labels
    r2 = _residuals(_fits(labels, a, b, w, k - 1), a, b)[np.arange(len(a)), labels - 1]
    worst = max(range(1, k), key=lambda j: (w * r2)[labels == j].sum())
    mine = labels == worst
    centre = np.average(a[mine], 0, w[mine])
    x = a[mine] - centre
    axes = np.linalg.eigh((x * w[mine, None]).T @ x)[1]
    seeds = [_split(labels, mine, x @ (axes @ d) > 0, k) for d in PLANES]
    m = scaled_fit(a[mine], b[mine], w[mine])
    miss = b[mine] - (a[mine] @ m.rotation.T + m.translation)
    along = np.linalg.eigh((miss * w[mine, None]).T @ miss)[1][:, -1]
    seeds.append(_split(labels, mine, miss @ along > 0, k))
    seeds.append(_kmeans(a, w, k))
    return seeds


# Planes through the worst body's centre that seed a split, as normals in its principal axes (longest
# last): across each axis, and across the diagonals between them (a globular body's interface may lie
# along none of its axes).
PLANES = [np.array(v, float) / np.linalg.norm(v) for v in
          ((0, 0, 1), (0, 1, 0), (1, 0, 0), (0, 1, 1), (0, 1, -1), (1, 0, 1), (1, 0, -1), (1, 1, 0), (1, -1, 0),
           (1, 1, 1), (1, 1, -1), (1, -1, 1), (-1, 1, 1))]


def _split(labels, mine, side, k):
    out = labels.copy()
    chosen = np.flatnonzero(mine)[side]
    out[chosen] = k
    return out


def _kmeans(points, w, k, rounds=20):
    """Weighted k-means of positions, started from the farthest points in turn (deterministic)."""
    mean = np.average(points, 0, w)
    centres = [points[((points - mean) ** 2).sum(1).argmax()]]
    for _ in range(k - 1):
        d = np.min([((points - c) ** 2).sum(1) for c in centres], 0)
        centres.append(points[d.argmax()])
    centres = np.array(centres)
    for _ in range(rounds):
        labels = ((points[:, None] - centres[None]) ** 2).sum(2).argmin(1)
        centres = np.array([np.average(points[labels == j], 0, w[labels == j]) if (labels == j).any()
                            else centres[j] for j in range(k)])
    return labels + 1


def agreement(found, truth, mass=None):
    """The share of the mass (or of the voxels) in the same body in both labellings (1…K each, 0 left
    out), with the bodies matched one to one as well as they can be (a body left unmatched counts as
    wrong): 1 is the same partition."""
    from scipy.optimize import linear_sum_assignment
    found, truth = np.asarray(found).ravel(), np.asarray(truth).ravel()
    w = np.ones(len(found)) if mass is None else np.asarray(mass, np.float64).ravel()
    kept = (found > 0) & (truth > 0)
    overlap = np.zeros((int(found.max()) + 1, int(truth.max()) + 1))
    np.add.at(overlap, (found[kept], truth[kept]), w[kept])
    rows, cols = linear_sum_assignment(-overlap)
    return float(overlap[rows, cols].sum() / w[kept].sum())


def flow_motion(flow, initial, grid, device='cpu'):
    """What a flow does to a prepared initial map (pair.initial), read on the map binned to at most
    CLUSTER_PARTICLES particles (the bodies are large; the clustering's cost stays small on any map):
    (before, after (N, 3) Å, mass (N,), voxels (N,) on the binned grid, its shape, binning factor)."""
    from .training import binned_particles
    factor = particle_bin(initial > 0, 1, CLUSTER_PARTICLES) or 1
    moving = binned_particles(torch.from_numpy(np.ascontiguousarray(initial, np.float32)).to(device), factor,
                              grid.unit_step)
    with torch.no_grad():
        path = flow.to(device).trajectory(moving.positions, [moving.mass.numel()] + [0] * (flow.regions - 1))
    longest, corner = max(grid.extent), np.array(grid.corner)
    ends = [x.double().cpu().numpy() * longest + corner for x in (path[0], path[-1])]
    return (*ends, moving.mass.double().cpu().numpy(), moving.voxels.cpu().numpy(), moving.shape, factor)


def region_map(bodies, voxels, shape, factor, occupied):
    """The bodies as a region map (partition.py) on the initial map's grid: each voxel above level
    takes the body of its block on the binned grid (gaps filled from the nearest region)."""
    binned = np.zeros(int(np.prod(shape)), np.int32)
    binned[voxels] = bodies.labels
    binned = binned.reshape(shape)
    nz, ny, nx = occupied.shape
    full = binned[np.arange(nz)[:, None, None] // factor, np.arange(ny)[None, :, None] // factor,
                  np.arange(nx)[None, None, :] // factor]
    return region_labels(np.where(occupied, full, 0), occupied)


def body_lines(bodies):
    """One line per body: its particles (on the clustering grid), share of the mass, rigid motion
    in `measure rotation`'s words (about its centre) and how far its particles are from it."""
    return [f'body {k}: {m.particles} particles, {share:.0%} of the mass, {m.description(centre)}'
            for k, (m, share, centre) in enumerate(zip(bodies.motions, bodies.shares, bodies.centres), start=1)]
