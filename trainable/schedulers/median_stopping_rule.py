"""The median stopping rule of Google Vizier (Golovin et al., "Google
Vizier: A Service for Black-Box Optimization", KDD 2017), with Ray Tune
1.x's arguments.

A trial is stopped when its best score so far is worse than the median of
the other trials' running mean scores up to the same ``time_attr``. Scores
are signed so that higher is better, and a NaN metric counts as the worst
score.
"""

import logging
import math
from typing import Any, Dict, List, Optional, Tuple

from trainable.errors import InvalidConfig
from trainable.schedulers.metrics import (
    MissingKeyWarner,
    as_score,
    as_time,
    check_number,
    metric_sign,
    resolve_metric_mode,
    result_value,
)
from trainable.schedulers.trial_scheduler import (
    FIFOScheduler,
    TrialScheduler,
)
from trainable.trial import Trial

logger = logging.getLogger(__name__)


class MedianStoppingRule(FIFOScheduler):
    """Stop a trial whose best score is below the median of the others'
    running means.

    The rule applies once a trial's ``time_attr`` reaches ``grace_period``
    and at least ``min_samples_required`` other trials have results that
    far. For each of those trials it takes the mean score between
    ``grace_period`` and the trial's current ``time_attr``, and compares
    the trial's best score so far with the median of those means. Below
    the median, the trial is stopped
    (``hard_stop=True``) or paused (``hard_stop=False``). A trial paused
    this way is not started again; it is stopped, with its checkpoint, once
    no other trial runs or waits.

    With too few other trials to compare, a trial yields its slot (PAUSE)
    to pending or paused trials, at most once every ``min_time_slice``
    units of ``time_attr``. The runner keeps a trial running instead of
    pausing it if it has no checkpoint to resume from.

    Args:
        time_attr: the result key that measures training progress; it must
            increase monotonically.
        reward_attr: deprecated; ``metric=reward_attr, mode="max"``.
        metric: the result key to optimise; None takes ``run(metric=...)``.
        mode: ``"min"`` or ``"max"``; None takes ``run(mode=...)``.
        grace_period: no trial is stopped before its ``time_attr`` reaches
            this, and earlier results do not count in the means.
        min_samples_required: how many other trials must have reached the
            same ``time_attr`` before the rule compares.
        min_time_slice: the least ``time_attr`` a trial runs between two
            pauses that yield its slot.
        hard_stop: stop (True) or pause (False) trials below the median.

    Raises:
        InvalidConfig: an argument is invalid; the message names it.
    """

    def __init__(self, time_attr: str = "time_total_s",
                 reward_attr: Optional[str] = None,
                 metric: Optional[str] = None, mode: Optional[str] = None,
                 grace_period: float = 60.0, min_samples_required: int = 3,
                 min_time_slice: float = 0, hard_stop: bool = True):
        name = type(self).__name__
        if not isinstance(time_attr, str) or not time_attr:
            raise InvalidConfig(
                f"{name} got time_attr={time_attr!r}; it must be a result "
                f"key such as 'time_total_s'.")
        check_number(name, "grace_period", grace_period, minimum=0)
        check_number(name, "min_samples_required", min_samples_required,
                     minimum=1, integer=True)
        check_number(name, "min_time_slice", min_time_slice, minimum=0)
        if not isinstance(hard_stop, bool):
            raise InvalidConfig(
                f"{name} got hard_stop={hard_stop!r}; use True or False.")
        self._metric, self._mode = resolve_metric_mode(
            name, metric, mode, reward_attr)
        self._time_attr = time_attr
        self._grace_period = grace_period
        self._min_samples_required = min_samples_required
        self._min_time_slice = min_time_slice
        self._hard_stop = hard_stop
        # trial_id -> [(time_attr value, score)], in arrival order.
        self._results: Dict[str, List[Tuple[float, float]]] = {}
        self._stopped_trials: set = set()
        self._last_pause: Dict[str, float] = {}
        self._warner = MissingKeyWarner(name)

    def on_trial_add(self, runner: Any, trial: Any) -> None:
        """Check that metric and mode are set."""
        metric_sign(self)

    def on_trial_result(self, runner: Any, trial: Any,
                        result: Dict[str, Any]) -> str:
        """Return STOP (or PAUSE) below the median, PAUSE to yield the slot
        when too few trials compare, else CONTINUE."""
        if trial.trial_id in self._stopped_trials:
            # Judged below the median, but still running because the
            # runner could not pause it: let it run, as Ray Tune does.
            return TrialScheduler.CONTINUE
        progress, score = self._record(trial, result)
        if progress is None or progress < self._grace_period:
            return TrialScheduler.CONTINUE
        others = [trial_id for trial_id, history in self._results.items()
                  if trial_id != trial.trial_id
                  and history[-1][0] >= progress]
        if len(others) < self._min_samples_required:
            return self._on_insufficient_samples(runner, trial, progress)
        means = [mean for mean in (self._running_mean(trial_id, progress)
                                   for trial_id in others)
                 if mean is not None]
        if not means:
            return TrialScheduler.CONTINUE
        median = _median(means)
        best = max(s for _, s in self._results[trial.trial_id])
        logger.debug(
            "MedianStoppingRule: trial %s best score %s, median of %d "
            "running means %s.", trial, best, len(means), median)
        if best >= median:
            return TrialScheduler.CONTINUE
        logger.debug("MedianStoppingRule stops trial %s at %s=%s.", trial,
                     self._time_attr, progress)
        self._stopped_trials.add(trial.trial_id)
        return (TrialScheduler.STOP if self._hard_stop
                else TrialScheduler.PAUSE)

    def choose_trial_to_run(self, runner: Any) -> Optional[Any]:
        """Start waiting trials first come, first served, except those this
        rule paused below the median (``hard_stop=False``).

        Those stay paused while other trials run or wait, and are stopped
        (TERMINATED, checkpoint kept) once none do and the search
        algorithm has no more trials.
        """
        paused_below_median = []
        waiting = False
        for trial in runner.startable_trials():
            if trial.trial_id in self._stopped_trials:
                paused_below_median.append(trial)
                continue
            waiting = True
            if runner.has_resources_for_trial(trial):
                return trial
        running = any(t.status == Trial.RUNNING for t in runner.get_trials())
        if paused_below_median and not waiting and not running and (
                runner.search_alg.is_finished()):
            for trial in paused_below_median:
                logger.debug("MedianStoppingRule: stopping paused trial %s "
                             "because no other trial is left.", trial)
                runner.stop_trial(trial)
        return None

    def on_trial_complete(self, runner: Any, trial: Any,
                          result: Dict[str, Any]) -> None:
        """Record the final result, which later trials are compared with.

        A result already recorded by :meth:`on_trial_result` is not added
        twice.
        """
        if result and self.metric is not None and self.mode is not None:
            self._record(trial, result)

    def _record(self, trial: Any, result: Dict[str, Any]
                ) -> Tuple[Optional[float], Optional[float]]:
        sign = metric_sign(self)
        progress = as_time(result_value(result, self._time_attr))
        if progress is None:
            self._warner.warn(self._time_attr, "time_attr", trial, result)
            return None, None
        score = as_score(result_value(result, self._metric), sign)
        if score is None:
            self._warner.warn(self._metric, "metric", trial, result)
            return None, None
        history = self._results.setdefault(trial.trial_id, [])
        if not history or history[-1] != (progress, score):
            history.append((progress, score))
        return progress, score

    def _on_insufficient_samples(self, runner: Any, trial: Any,
                                 progress: float) -> str:
        last = self._last_pause.get(trial.trial_id, float("-inf"))
        if progress - last <= self._min_time_slice:
            return TrialScheduler.CONTINUE
        if not runner.startable_trials():
            return TrialScheduler.CONTINUE
        self._last_pause[trial.trial_id] = progress
        logger.debug("MedianStoppingRule: too few trials to compare with "
                     "trial %s; yielding its slot.", trial)
        return TrialScheduler.PAUSE

    def _running_mean(self, trial_id: str, progress: float
                      ) -> Optional[float]:
        scores = [s for t, s in self._results[trial_id]
                  if self._grace_period <= t <= progress]
        if not scores:
            return None
        mean = sum(scores) / len(scores)
        # NaN comes from a history with both -inf and +inf scores.
        return None if math.isnan(mean) else mean

    def debug_string(self) -> str:
        """Return how many trials the rule stopped."""
        return (f"Using MedianStoppingRule: num_stopped="
                f"{len(self._stopped_trials)}.")


def _median(values: List[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    low, high = ordered[middle - 1], ordered[middle]
    mean = (low + high) / 2.0
    # -inf and +inf have no mean; take the lower one.
    return low if math.isnan(mean) else mean
