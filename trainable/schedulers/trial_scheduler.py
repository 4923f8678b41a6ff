"""The scheduler interface and the default first-in, first-out scheduler.

A scheduler receives every result and returns
:attr:`TrialScheduler.CONTINUE`, :attr:`~TrialScheduler.PAUSE` or
:attr:`~TrialScheduler.STOP`. It also chooses which pending or paused
trial starts next. The runner passes itself as ``runner``, and schedulers
call ``runner.get_trials()`` and the other public methods of
:class:`trainable.runner.TrialRunner`.
"""

from typing import Any, Dict, Optional


class TrialScheduler:
    """Base class of trial schedulers (the Ray Tune interface)."""

    CONTINUE = "CONTINUE"
    PAUSE = "PAUSE"
    STOP = "STOP"
    NOOP = "NOOP"

    _metric: Optional[str] = None
    _mode: Optional[str] = None
    _supports_buffered_results = True

    @property
    def metric(self) -> Optional[str]:
        """The metric this scheduler optimises, if set."""
        return self._metric

    @property
    def mode(self) -> Optional[str]:
        """``"min"`` or ``"max"``, if set."""
        return self._mode

    def set_search_properties(self, metric: Optional[str],
                              mode: Optional[str]) -> bool:
        """Adopt ``run()``'s metric and mode where none was given here.

        Returns False if the scheduler already has a different metric or
        mode, which ``run()`` reports as an error.
        """
        if self._metric and metric and self._metric != metric:
            return False
        if self._mode and mode and self._mode != mode:
            return False
        if metric:
            self._metric = metric
        if mode:
            self._mode = mode
        return True

    def on_trial_add(self, runner: Any, trial: Any) -> None:
        """Called when a trial is added to the experiment."""

    def on_trial_error(self, runner: Any, trial: Any) -> None:
        """Called when a trial ends with an error."""

    def on_trial_result(self, runner: Any, trial: Any,
                        result: Dict[str, Any]) -> str:
        """Decide what the trial does after this result."""
        return TrialScheduler.CONTINUE

    def on_trial_complete(self, runner: Any, trial: Any,
                          result: Dict[str, Any]) -> None:
        """Called when a trial finishes normally."""

    def on_trial_remove(self, runner: Any, trial: Any) -> None:
        """Called when a trial is stopped by the scheduler."""

    def choose_trial_to_run(self, runner: Any) -> Optional[Any]:
        """Return the next pending or paused trial to start, or None."""
        raise NotImplementedError

    def debug_string(self) -> str:
        """Return a short human-readable status line."""
        return ""


class FIFOScheduler(TrialScheduler):
    """Runs trials in the order they were created, pending before paused."""

    def choose_trial_to_run(self, runner: Any) -> Optional[Any]:
        for trial in runner.startable_trials():
            if runner.has_resources_for_trial(trial):
                return trial
        return None

    def debug_string(self) -> str:
        return "Using FIFO scheduling algorithm."
