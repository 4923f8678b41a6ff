"""The function API: a plain function that reports results, run as a
Trainable.

``wrap_function`` turns ``def train_fn(config, checkpoint_dir=None)`` into a
:class:`FunctionTrainable` subclass. The function runs in a thread inside
the worker. Each ``report()`` hands one result to ``step()`` and then blocks
until the next ``step()``, so between two steps the function is parked
inside ``report()``: that is the point where the worker saves, pauses,
resets or stops it.

Checkpoints are the function's own. ``with checkpoint_dir(step=i) as d``
gives a staging directory, and the checkpoint counts from the next
``report()`` on. That report carries ``should_checkpoint``, so the runner
saves the checkpoint under the report's iteration. Saving copies the newest
staged directory. Restoring starts the function again with
``checkpoint_dir`` set to the restored copy.
"""

import contextlib
import inspect
import logging
import os
import queue
import shutil
import threading
import uuid
from typing import Any, Callable, Dict, Iterator, Optional

from trainable.errors import NoCheckpointError, TuneError
from trainable.trainable import (
    RESULT_DUPLICATE,
    SHOULD_CHECKPOINT,
    TIME_TOTAL_S,
    Trainable,
)

logger = logging.getLogger(__name__)

_STAGING_DIR = ".function_checkpoints"
# How long reset and stop wait for the function thread to leave report().
_THREAD_STOP_TIMEOUT_S = 10.0

_session: Optional["_Session"] = None


class _StopFunction(BaseException):
    """Raised inside report() to unwind a function that must end.

    It derives from BaseException so that a broad ``except Exception`` in
    user code does not swallow it.
    """


class _Session:
    """The link between the function thread and ``FunctionTrainable``."""

    def __init__(self, trainable: "FunctionTrainable"):
        self.trainable = trainable
        self.replies: "queue.Queue[tuple]" = queue.Queue()
        self.resume = threading.Semaphore(0)
        self.stop_requested = False
        self.checkpoint_written = False

    def report(self, metrics: Dict[str, Any]) -> None:
        if self.stop_requested:
            raise _StopFunction
        self.replies.put(("result", metrics))
        self.resume.acquire()
        if self.stop_requested:
            raise _StopFunction


def _current_session(caller: str) -> Optional[_Session]:
    if _session is None:
        logger.warning(
            "%s() was called outside a trial; the call is ignored. Call it "
            "from a function passed to trainable.run().", caller,
        )
    return _session


def report(_metric: Any = None, **kwargs: Any) -> None:
    """Report one result from a function trainable; counts one iteration.

    ``report(loss=0.1, acc=0.9)`` is the usual form. A single positional
    dict is merged into the metrics, and a single positional number is
    stored as ``_metric``, as in Ray Tune.
    """
    metrics = dict(kwargs)
    if isinstance(_metric, dict):
        metrics.update(_metric)
    elif _metric is not None:
        metrics["_metric"] = _metric
    session = _current_session("report")
    if session is not None:
        session.report(metrics)


@contextlib.contextmanager
def checkpoint_dir(step: Any) -> Iterator[str]:
    """Give a directory to write a checkpoint into, inside a function.

    The checkpoint becomes the trial's newest one with the next
    ``report()``. ``step`` is recorded in the directory name only; the
    checkpoint is numbered by the iteration of that report.
    """
    session = _current_session("checkpoint_dir")
    if session is None:
        path = os.path.abspath(f"checkpoint_tmp_{step}_{uuid.uuid4().hex}")
        os.makedirs(path)
        yield path
        return
    path = session.trainable._new_staging_dir(step)
    yield path
    session.trainable._set_staged(path)
    session.checkpoint_written = True


def get_trial_dir() -> Optional[str]:
    """Return the directory of the current trial (None outside a trial)."""
    return _session.trainable.logdir if _session else None


def get_trial_name() -> Optional[str]:
    """Return the name of the current trial (None outside a trial)."""
    return _session.trainable.trial_name if _session else None


def get_trial_id() -> Optional[str]:
    """Return the id of the current trial (None outside a trial)."""
    return _session.trainable.trial_id if _session else None


class _Reporter:
    """The ``reporter`` argument of classic two-argument functions."""

    def __call__(self, _metric: Any = None, **kwargs: Any) -> None:
        report(_metric, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name == "logdir":
            return get_trial_dir()
        raise AttributeError(name)


class FunctionTrainable(Trainable):
    """A Trainable that runs ``_function`` in a thread.

    ``reset_config`` restarts the function with the new config, so function
    trainables can always be reused with ``reuse_actors=True``.
    """

    _function: Callable[..., Any]
    _function_kwargs: Dict[str, Any] = {}

    def setup(self, config: Dict[str, Any]) -> None:
        self._thread: Optional[threading.Thread] = None
        self._fn_session: Optional[_Session] = None
        self._staged: Optional[str] = None
        self._staged_counters: Optional[Dict[str, Any]] = None
        self._restore_dir: Optional[str] = None

    # ------------------------------------------------------------ the thread

    def _start(self) -> None:
        global _session
        session = _Session(self)
        self._fn_session = session
        _session = session
        kwargs = dict(self._function_kwargs)
        params = inspect.signature(self._function).parameters
        if "checkpoint_dir" in params:
            kwargs["checkpoint_dir"] = self._restore_dir
        elif self._restore_dir is not None:
            raise TuneError(
                f"Cannot restore {self._function.__name__}() from a "
                f"checkpoint: it has no checkpoint_dir parameter. Define it "
                f"as def {self._function.__name__}(config, "
                f"checkpoint_dir=None) and load the checkpoint from there."
            )
        if "reporter" in params:
            kwargs["reporter"] = _Reporter()
        config = dict(self.config)
        self._thread = threading.Thread(
            target=self._run, args=(session, config, kwargs),
            name=f"trainable-function-{self.trial_id}", daemon=True,
        )
        self._thread.start()

    def _run(self, session: _Session, config: Dict[str, Any],
             kwargs: Dict[str, Any]) -> None:
        try:
            self._function(config, **kwargs)
        except _StopFunction:
            return
        except BaseException as exc:  # noqa: B902 - sent to step()
            session.replies.put(("error", exc))
            return
        session.replies.put(("done", None))

    def _stop_thread(self) -> bool:
        """End the function thread; return False if it did not end."""
        thread, session = self._thread, self._fn_session
        self._thread = None
        if thread is None or session is None:
            return True
        session.stop_requested = True
        session.resume.release()
        thread.join(_THREAD_STOP_TIMEOUT_S)
        if thread.is_alive():
            logger.warning(
                "The function of trial %s did not return within %.0f s of "
                "being asked to stop; it is still running and will end "
                "with the worker process.",
                self.trial_id, _THREAD_STOP_TIMEOUT_S,
            )
            return False
        return True

    def step(self) -> Dict[str, Any]:
        if self._thread is None:
            self._start()
        else:
            self._fn_session.resume.release()
        kind, payload = self._fn_session.replies.get()
        if kind == "error":
            self._thread = None
            raise payload
        session = self._fn_session
        if kind == "done":
            self._thread = None
            result: Dict[str, Any] = {RESULT_DUPLICATE: True}
            if session.checkpoint_written:
                session.checkpoint_written = False
                self._staged_counters = self._counters_now()
            return result
        if session.checkpoint_written:
            session.checkpoint_written = False
            payload[SHOULD_CHECKPOINT] = True
            # The checkpoint belongs to the iteration this report completes.
            self._staged_counters = None
        return payload

    def train(self) -> Dict[str, Any]:
        result = super().train()
        if self._staged is not None and self._staged_counters is None:
            self._staged_counters = self._counters_now()
        return result

    def _counters_now(self) -> Dict[str, Any]:
        return Trainable._counters(self)

    # ----------------------------------------------------------- checkpoints

    def _new_staging_dir(self, step: Any) -> str:
        root = os.path.join(self.logdir, _STAGING_DIR)
        path = os.path.join(root, f"step_{step}_{uuid.uuid4().hex[:8]}")
        os.makedirs(path)
        return path

    def _set_staged(self, path: str) -> None:
        old = self._staged
        self._staged = path
        if old and old != path:
            shutil.rmtree(old, ignore_errors=True)

    def _counters(self) -> Dict[str, Any]:
        # A checkpoint contains the state of the iteration at which the
        # function wrote it, not of the current one.
        if self._staged_counters is not None:
            return dict(self._staged_counters)
        return Trainable._counters(self)

    def has_current_checkpoint(self) -> bool:
        """Return whether a save now would capture the current iteration."""
        counters = self._staged_counters
        return self._staged is not None and (
            counters is None or counters["iteration"] == self.iteration)

    def save(self, checkpoint_dir: Optional[str] = None) -> str:
        if self._staged is None:
            raise NoCheckpointError(
                f"Trial {self.trial_id} has no checkpoint to save: its "
                f"function has not written one with "
                f"trainable.checkpoint_dir() yet."
            )
        if self._staged_counters is None:
            self._staged_counters = self._counters_now()
        parent = checkpoint_dir or self.logdir
        counters = self._staged_counters
        # Saving names the directory by the checkpoint's own iteration.
        current = self._iteration
        self._iteration = counters["iteration"]
        try:
            return super().save(parent)
        finally:
            self._iteration = current

    def save_checkpoint(self, tmp_checkpoint_dir: str) -> str:
        from trainable.checkpoint import copy_tree_into

        copy_tree_into(self._staged, tmp_checkpoint_dir)
        return tmp_checkpoint_dir

    def load_checkpoint(self, checkpoint: Any) -> None:
        from trainable.checkpoint import copy_tree_into

        if not self._stop_thread():
            raise TuneError(
                f"Cannot restore trial {self.trial_id}: its function did not "
                f"stop when asked."
            )
        # The restored directory may be temporary (restore_from_object
        # deletes it), so keep a copy that outlives this call.
        path = self._new_staging_dir("restored")
        copy_tree_into(checkpoint, path)
        self._set_staged(path)
        self._restore_dir = path

    def _apply_metadata(self, metadata: Dict[str, Any]) -> None:
        super()._apply_metadata(metadata)
        self._staged_counters = {
            "iteration": self._iteration,
            "time_total_s": metadata.get(TIME_TOTAL_S, 0.0),
            "timesteps_total": self._timesteps_total,
            "episodes_total": self._episodes_total,
        }

    # -------------------------------------------------------- reuse and stop

    def reset_config(self, new_config: Dict[str, Any]) -> bool:
        if not self._stop_thread():
            return False
        if self._staged:
            shutil.rmtree(self._staged, ignore_errors=True)
        self._staged = None
        self._staged_counters = None
        self._restore_dir = None
        return True

    def cleanup(self) -> None:
        global _session
        self._stop_thread()
        if _session is not None and _session.trainable is self:
            _session = None
        # The staged copies are saved in checkpoint_* directories already.
        if self._logdir is not None:
            shutil.rmtree(os.path.join(self._logdir, _STAGING_DIR),
                          ignore_errors=True)


def wrap_function(
    function: Callable[..., Any], **function_kwargs: Any
) -> type:
    """Return a :class:`FunctionTrainable` subclass that runs ``function``.

    Raises:
        TypeError: ``function`` is not callable or takes no config argument.
    """
    if not callable(function):
        raise TypeError(
            f"Expected a function, got {type(function).__name__} "
            f"{function!r:.80}."
        )
    try:
        params = inspect.signature(function).parameters
    except (TypeError, ValueError):
        params = {}
    if params is not None and len(params) == 0:
        raise TypeError(
            f"The function {getattr(function, '__name__', function)!r} takes "
            f"no arguments; a function trainable takes the config: "
            f"def train_fn(config, checkpoint_dir=None)."
        )
    name = getattr(function, "__name__", "func")
    return type(
        name,
        (FunctionTrainable,),
        {
            "_function": staticmethod(function),
            "_function_kwargs": dict(function_kwargs),
            "__module__": getattr(function, "__module__", __name__),
            "__qualname__": name,
        },
    )
