"""Experiment callbacks, with the hooks and arguments of Ray Tune's.

Every hook receives keyword arguments only; ``iteration`` counts loop
turns of the runner and ``trials`` is the list of all trials.
"""

import logging
from typing import Any, Dict, List, Optional, Sequence

logger = logging.getLogger(__name__)


class Callback:
    """Base class: override the hooks you need."""

    def setup(self, **info: Any) -> None:
        """Called once before the first trial starts."""

    def on_step_begin(self, iteration: int, trials: List[Any],
                      **info: Any) -> None:
        """Called at the start of each loop turn of the runner."""

    def on_step_end(self, iteration: int, trials: List[Any],
                    **info: Any) -> None:
        """Called at the end of each loop turn of the runner."""

    def on_trial_start(self, iteration: int, trials: List[Any], trial: Any,
                       **info: Any) -> None:
        """Called when a trial starts or restarts in a worker."""

    def on_trial_restore(self, iteration: int, trials: List[Any],
                         trial: Any, **info: Any) -> None:
        """Called after a trial was restored from a checkpoint."""

    def on_trial_save(self, iteration: int, trials: List[Any], trial: Any,
                      **info: Any) -> None:
        """Called after a trial saved a checkpoint."""

    def on_trial_result(self, iteration: int, trials: List[Any], trial: Any,
                        result: Dict[str, Any], **info: Any) -> None:
        """Called with every result."""

    def on_trial_complete(self, iteration: int, trials: List[Any],
                          trial: Any, **info: Any) -> None:
        """Called when a trial finishes normally."""

    def on_trial_error(self, iteration: int, trials: List[Any], trial: Any,
                       **info: Any) -> None:
        """Called when a trial fails for good (no retries left)."""

    def on_checkpoint(self, iteration: int, trials: List[Any], trial: Any,
                      checkpoint: Any, **info: Any) -> None:
        """Called when a checkpoint is recorded for a trial."""

    def on_experiment_end(self, trials: List[Any], **info: Any) -> None:
        """Called once after the last trial ended."""


class CallbackList:
    """Calls a hook on every callback; an error in one is logged, once per
    callback and hook, and does not stop the experiment."""

    def __init__(self, callbacks: Optional[Sequence[Callback]]):
        self.callbacks = list(callbacks or [])
        self._reported: set = set()

    def __bool__(self) -> bool:
        return bool(self.callbacks)

    def call(self, hook: str, **kwargs: Any) -> None:
        """Call ``hook`` on each callback with ``kwargs``."""
        for callback in self.callbacks:
            try:
                getattr(callback, hook)(**kwargs)
            except Exception:
                key = (id(callback), hook)
                if key not in self._reported:
                    self._reported.add(key)
                    logger.exception(
                        "Callback %s.%s raised; the experiment goes on and "
                        "further errors of this hook are not logged.",
                        type(callback).__name__, hook)


def validate_callbacks(callbacks: Any) -> List[Callback]:
    """Check the ``callbacks`` argument of ``run()``.

    Raises:
        InvalidConfig: not a list of Callback instances.
    """
    from trainable.errors import InvalidConfig

    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)):
        raise InvalidConfig(
            f"callbacks must be a list of trainable.Callback objects, got "
            f"{type(callbacks).__name__}.")
    for item in callbacks:
        if not isinstance(item, Callback):
            raise InvalidConfig(
                f"callbacks contains {item!r:.60} of type "
                f"{type(item).__name__}; each entry must be an instance of "
                f"a trainable.Callback subclass.")
    return list(callbacks)
