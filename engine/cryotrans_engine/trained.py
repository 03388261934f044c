"""A trained flow: what a run leaves behind, and everything it can be used for after training.

It is a checkpoint's content with an interface: the velocity fields, the grid of the
initial map they were trained on, the levels, the regions and the settings.  It makes the
frames of a map on its grid and moves points given in Å (atoms, markers) along the flow to
any time t, each point by its region's field.  Saved, it is the `flow.pt` a run writes, so
a run can also go on from it (Training's checkpoint).
"""

import math

import numpy as np
import torch

from .errors import MapError
from .levels import above_level
from .maps import Grid, resample as resample_map
from .partition import grow_labels, region_labels
from .checkpoint import (check_flow, checkpoint_bytes, checkpoint_from_bytes, flow_from_checkpoint, load_checkpoint,
                         save_checkpoint)
from .training import trajectory_frames


class TrainedFlow:
    """The flow of a run, on the grid of the initial map it was trained on."""

    def __init__(self, state):
        """state: a checkpoint (Training.checkpoint(), or load_checkpoint's)."""
        self.state = state
        self.flow = flow_from_checkpoint(state)
        g = state['grid']
        self.grid = Grid(tuple(g['shape']), tuple(g['voxel_size']), tuple(g['origin']))
        self.level0 = float(state['level0'])
        self.level1 = None if state.get('level1') is None else float(state['level1'])
        self.peak = float(state.get('peak') or 1.0)
        regions = state.get('regions')
        self.regions = None if regions is None else np.asarray(regions.numpy() if torch.is_tensor(regions)
                                                               else regions, np.int32)

    @classmethod
    def load(cls, path):
        """A flow.pt written by a run (CheckpointError when it is not one, or holds a diverged flow)."""
        return cls(load_checkpoint(path))

    @classmethod
    def from_training(cls, training):
        """The flow of a Training as it stands now."""
        state = training.checkpoint()
        check_flow(training.flow)
        return cls(state)

    @classmethod
    def from_bytes(cls, data, name='the saved flow'):
        """A flow kept as to_bytes gave it (CheckpointError, naming it, when the bytes are not one)."""
        return cls(checkpoint_from_bytes(data, name))

    def save(self, path):
        """Write it as flow.pt, atomically (an interrupted write keeps the file that was there)."""
        save_checkpoint(path, self.state)

    def to_bytes(self):
        """The bytes of its flow.pt, for keeping it inside another file (a ChimeraX session)."""
        return checkpoint_bytes(self.state)

    @property
    def settings(self):
        """The settings it was trained with (a dict, as stored)."""
        return dict(self.state['settings'])

    @property
    def frame_count(self):
        """Euler steps M: a trajectory has M + 1 frames, t = 0, 1/M, ..., 1."""
        return self.flow.frames

    @property
    def region_count(self):
        return self.flow.regions

    @property
    def steps_trained(self):
        return int(self.state['step'])

    def frames(self, values, grid, level=None, resample=False, device='cpu'):
        """The pseudo-trajectory of a map: its voxels above level (default: the level the flow was
        trained with) splatted at each Euler step, in the map's own units, on its grid.

        The flow moves points of its own box, so the map must fill that box (at any voxel size; with
        regions, on the same grid).  Another map is refused (MapError), unless resample: then it is
        first resampled onto the flow's grid (trilinear, in physical coordinates), and the frames are
        on that grid.
        """
        values = np.asarray(values, np.float32)
        if not self.fits(grid):
            if not resample:
                raise MapError(self._other_grid(grid))
            values, grid = resample_map(values, grid, self.grid), self.grid
        level = self.level0 if level is None else float(level)
        kept = above_level(values, level, grid.voxel_size)
        peak = float(kept.max())
        if not peak > 0:
            raise MapError(f'no density above level {level:.4g}: lower the level')
        regions = None if self.regions is None else region_labels(self.regions, kept > 0)
        return trajectory_frames(self.flow, kept / peak, grid, peak, device, regions)

    def fits(self, grid):
        """Whether a map on this grid can be moved as it is: it fills the flow's box (with regions: on its grid)."""
        return same_box(grid, self.grid) and (self.regions is None or tuple(grid.shape) == self.regions.shape)

    def _other_grid(self, grid):
        if not same_box(grid, self.grid):
            return (f'the flow was trained on a box from {self.grid.box_text()}, and this map fills another '
                    f'({grid.box_text()}): the flow moves points of its own box, so apply it to a map resampled onto '
                    f'that box (in ChimeraX: volume resample #N onGrid <the map it was trained on>)')
        return (f'the flow was trained with regions on a {self.regions.shape[::-1]} grid, and this map is '
                f'{grid.shape[::-1]}: apply it to a map on the same grid (or resample it onto that grid)')

    def move(self, points, t=1.0, regions=None, device='cpu'):
        """Points (N, 3) x, y, z in Å, in the physical coordinates of the initial map, moved along the flow
        to time t (0: where they are, 1: the end; between Euler steps, along the step's straight line).

        With regions, each point follows its region's field: regions (N,) gives it (1, 2, ...), else
        it is the region of the flow's region map at the point, or of the nearest labelled voxel for a
        point off every region (an atom just outside the density).  Returns float64 (N, 3) in Å.
        """
        points = np.asarray(points, np.float64).reshape(-1, 3)
        if not (0 <= t <= 1 and math.isfinite(t)):
            raise ValueError(f'time t runs from 0 (the initial map) to 1 (the prediction), not {t}')
        if not np.isfinite(points).all():
            raise ValueError('points must be finite coordinates in Å')
        which = self.point_regions(points) if regions is None else np.asarray(regions, np.int64).reshape(-1)
        if which.shape[0] != points.shape[0] or (which.size and not 1 <= which.min() <= which.max()
                                                 <= self.flow.regions):
            raise ValueError(f'regions must give each of the {points.shape[0]} points a region from 1 to '
                             f'{self.flow.regions}')
        order = np.argsort(which, kind='stable')
        sections = np.bincount(which[order] - 1, minlength=self.flow.regions).tolist()
        longest, corner = max(self.grid.extent), np.array(self.grid.corner)
        x = torch.from_numpy((points[order] - corner) / longest).float().to(device)
        steps = t * self.flow.frames
        whole = min(int(math.floor(steps + 1e-9)), self.flow.frames)
        flow = self.flow.to(device)
        with torch.no_grad():
            if whole:
                x = flow.trajectory(x, sections)[whole]
            rest = steps - whole
            if rest > 1e-9:
                start = 0
                for field, n in zip(flow.fields, sections):
                    if n:
                        x[start:start + n] += (rest / flow.frames) * field(x[start:start + n])
                    start += n
        moved = np.empty_like(points)
        moved[order] = x.double().cpu().numpy() * longest + corner
        return moved

    def point_regions(self, points):
        """The region (1, 2, ...) of each point (N, 3) in Å: the region map's label at its voxel, or the
        nearest labelled voxel's; all 1 without a partition."""
        points = np.asarray(points, np.float64).reshape(-1, 3)
        if self.regions is None or self.flow.regions == 1:
            return np.ones(len(points), np.int64)
        g = self.grid
        ijk = np.rint((points - np.array(g.origin)) / np.array(g.voxel_size)).astype(np.int64)
        ijk = np.clip(ijk, 0, np.array(g.shape[::-1]) - 1)
        labels = self.regions
        at = (ijk[:, 2], ijk[:, 1], ijk[:, 0])
        found = labels[at].astype(np.int64)
        if (found == 0).any():          # the regions grown to these voxels as to dust (partition.py)
            asked = np.zeros(labels.shape, bool)
            asked[at] = True
            found = grow_labels(labels, asked, self.flow.regions)[at].astype(np.int64)
        return found


def same_box(a, b):
    """Whether two grids fill the same box in space (to half a voxel), whatever their voxel sizes."""
    tol = 0.5 * max(a.voxel_size + b.voxel_size)
    return all(abs(x - y) <= tol for x, y in zip(a.corner + a.extent, b.corner + b.extent))
