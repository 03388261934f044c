"""The CryoTRANS numeric engine: plain Python and PyTorch, no ChimeraX.

A map pair is prepared (levels, one grid, normalised), a flow is trained to carry
the initial map's density onto the target's, and the flow's Euler steps give the
frames of a pseudo-trajectory whose last frame is the predicted map.

The public surface: a job (MorphJob, or morph / morph_files in one call) runs a morph and
gives a Result; a TrainedFlow is what a run leaves (flow.pt): frames of a map, points moved
along the flow; errors name what went wrong (errors.py).
"""

from .errors import CheckpointError, CryoTransError, DeviceError, MapError, OutputError, SettingsError
from .levels import (LevelSpec, Levels, MapLevel, choose_levels, enclosed_volume, half_height_level,
                     level_enclosing)
from .maps import Grid, read_map, write_map, resample
from .pair import MapPair, placed_target, prepare_pair
from .schedule import schedule
from .training import Settings, Training, RunFailed, choose_device, trajectory_frames
from .checkpoint import save_checkpoint, load_checkpoint, flow_from_checkpoint
from .trained import TrainedFlow
from .job import MorphJob, Progress, Result, morph, morph_files
from .fsc import fsc_curve, fsc_resolution, resolution, correlation
