"""Exceptions raised by trainable.

Every error derives from :class:`TuneError`; the ones caused by bad input
also derive from the matching builtin, so ``except ValueError`` works too.
"""


class TuneError(Exception):
    """Base class of every error this package raises."""


class InvalidSearchSpace(TuneError, ValueError):
    """A search-space primitive got bounds, steps or choices it cannot use."""


class InvalidConfig(TuneError, ValueError):
    """An argument of ``run()`` or a trial config is invalid."""


class TrainableDefinitionError(TuneError, TypeError):
    """A Trainable class defines its hooks in a way that cannot work."""


class SerializationError(TuneError, TypeError):
    """A trainable or config cannot be pickled to send it to a worker."""


class CheckpointError(TuneError):
    """A checkpoint is missing, corrupt or of an unknown format version."""


class NoCheckpointError(CheckpointError):
    """A trainable was asked to save but has no state to save yet.

    A function trainable raises it when the function has not written a
    checkpoint with ``checkpoint_dir`` since it started.
    """


class ResultTypeError(TuneError, TypeError):
    """``step`` returned a value that is not a dict with string keys."""


class SaveRestoreError(TuneError, AssertionError):
    """``validate_save_restore`` found that save and restore lose state.

    It is an AssertionError too, which is what Ray Tune raises there.
    """


class WorkerError(TuneError):
    """User code raised in a worker; carries the remote traceback."""

    def __init__(self, message: str, remote_traceback: str = ""):
        super().__init__(message)
        self.remote_traceback = remote_traceback

    def __str__(self) -> str:
        base = super().__str__()
        if self.remote_traceback:
            return f"{base}\n\nRemote traceback:\n{self.remote_traceback}"
        return base


class WorkerDiedError(TuneError):
    """A worker process exited or was killed while it served a trial."""


class WorkerTimeoutError(TuneError):
    """A worker did not reply within the configured call timeout."""


class AbortTrialExecution(TuneError):
    """Raised by user code to end a trial with an error and no retry."""
