"""Each region's rigid-body motion: the best rigid fit of its particles' displacements.

Reported as ChimeraX's `measure rotation` reports a model's motion: rotation angle
about an axis through a point, and the shift along that axis; plus how far the
particles' own motion is from that rigid one (RMS, Å), which says whether the
region moved as one body.
"""

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class RigidMotion:
    """The rigid motion that best takes a set of points to where they moved."""
    rotation: np.ndarray      # 3 × 3
    translation: np.ndarray   # 3: x' = rotation · x + translation (Å)
    rms: float                # RMS distance (Å) of the moved points from the rigid motion's
    particles: int

    @property
    def matrix(self):
        """The 3 × 4 matrix, as ChimeraX's Place has it."""
        return np.hstack([self.rotation, self.translation[:, None]])

    def axis_angle_shift(self, near=(0.0, 0.0, 0.0)):
        """(axis, a point on it nearest `near`, angle in degrees, shift along the axis in Å)."""
        r, t = self.rotation, self.translation
        angle = math.degrees(math.acos(max(-1.0, min(1.0, (np.trace(r) - 1) / 2))))
        w = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
        if np.linalg.norm(w) > 1e-9:
            axis = w / np.linalg.norm(w)
        elif angle < 90:
            axis = t / np.linalg.norm(t) if np.linalg.norm(t) > 0 else np.array([0.0, 0.0, 1.0])
        else:                               # 180°: the axis is the eigenvector of eigenvalue 1
            values, vectors = np.linalg.eigh((r + r.T) / 2)
            axis = vectors[:, np.argmax(values)]
        shift = float(t @ axis)
        # Points p on the axis: (I - R) p = t - shift·axis; least squares, then nearest `near`.
        near = np.asarray(near, dtype=np.float64)
        p, *_ = np.linalg.lstsq(np.eye(3) - r, t - shift * axis, rcond=None)
        p = p + ((near - p) @ axis) * axis if angle > 1e-6 else near
        return axis, p, angle, shift

    def description(self, near=(0.0, 0.0, 0.0)):
        """`measure rotation`'s figures, how far the point `near` (e.g. the region's centre) moved,
        and the RMS off rigid."""
        axis, point, angle, shift = self.axis_angle_shift(near)
        near = np.asarray(near, dtype=np.float64)
        moved = float(np.linalg.norm(self.rotation @ near + self.translation - near))
        return (f'rotation {angle:.1f}° about axis ({axis[0]:.3f}, {axis[1]:.3f}, {axis[2]:.3f}) '
                f'through ({point[0]:.1f}, {point[1]:.1f}, {point[2]:.1f}) Å, shift along axis {shift:.2f} Å, '
                f'centre moved {moved:.2f} Å, RMS off rigid {self.rms:.2f} Å')


def rigid_fit(before, after, weights=None):
    """The mass-weighted least-squares rigid motion (Kabsch) taking points before → after (n × 3)."""
    a = np.asarray(before, dtype=np.float64)
    b = np.asarray(after, dtype=np.float64)
    w = np.ones(len(a)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    ca, cb = w @ a, w @ b
    h = (a - ca).T @ ((b - cb) * w[:, None])
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    t = cb - r @ ca
    rms = math.sqrt(float(w @ ((a @ r.T + t - b) ** 2).sum(1)))
    return RigidMotion(r, t, rms, len(a))


def region_motions(particles, path):
    """One RigidMotion per region, from Training.paths(): the first frame to the last."""
    start, out = 0, []
    mass = particles.mass.double().cpu().numpy()
    for n in particles.sections:
        part = slice(start, start + n)
        out.append(rigid_fit(path[0][part].numpy(), path[-1][part].numpy(), mass[part]))
        start += n
    return out


def motion_lines(motions, paths):
    """One line per region: its best rigid motion (motions: region_motions(*paths)), about its centre."""
    moving, path = paths
    lines, start = [], 0
    for r, (motion, n) in enumerate(zip(motions, moving.sections)):
        centre = path[0][start:start + n].mean(0).numpy()
        lines.append(f'region {r + 1}: {motion.description(centre)}')
        start += n
    return lines
