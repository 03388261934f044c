"""What can go wrong, by what went wrong: each message says what and how to fix it.

Every error a user can act on is a CryoTransError, so a front end turns all of them into
its own kind in one place (the ChimeraX bundle: UserError; the CLI: one line and exit 2).
"""


class CryoTransError(ValueError):
    """Bad input or a fault a user can act on: the message says what and how."""


class MapError(CryoTransError):
    """A map that cannot be used as it is (its file, values, grid or level)."""


class SettingsError(CryoTransError):
    """A setting whose value cannot work, or settings that do not go together."""


class DeviceError(CryoTransError):
    """The device asked for is not there, or has no room for the run."""


class CheckpointError(CryoTransError):
    """A checkpoint that is not one, is damaged, or belongs to other maps or settings."""


class OutputError(CryoTransError):
    """Where results go: a folder that cannot be written, or is held by another run; a full disk."""
