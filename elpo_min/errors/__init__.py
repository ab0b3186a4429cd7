"""Mistakes in what a user gave us: a config value, a data file, a path, a missing extra.

The command line prints a :class:`UserError` as one line (exit code 2, no traceback; ``--debug``
shows it), because its message already names the field or file and says how to fix it. Any other
exception is a bug and keeps its traceback. Each class also derives from the builtin a Python
caller would expect, so ``except ValueError`` still catches a bad config value.

It sits outside the core because the core never reads a user's files or command line: the
subpackages that do (tasks, models, checkpoints, launch) raise these.
"""


class UserError(Exception):
    """A mistake in the user's input; the message names what is wrong and how to fix it."""


class ConfigError(UserError, ValueError):
    """A config field with a bad type or value, or an unknown key."""


class DataError(UserError, ValueError):
    """A data file with a bad row; the message starts with ``path:line``."""


class MissingFile(UserError, FileNotFoundError):
    """A file or folder the user named (or the run needs) does not exist."""


class MissingExtra(UserError, ImportError):
    """An optional dependency is not installed; the message says which extra to install."""


class NeedsNetwork(UserError, RuntimeError):
    """The run asks for the hub while HF_HUB_OFFLINE is set."""


class CheckpointError(UserError, ValueError):
    """A checkpoint that cannot be trusted: a missing or unreadable manifest, bytes that do not
    match their digest, a config that is not JSON; the message names the versions to go back to.
    """


class WriteFailed(UserError, OSError):
    """The run's folder could not be written (a full disk, a quota, a failing device); the
    message names the cause, the space needed and free, and which checkpoint is still good."""
