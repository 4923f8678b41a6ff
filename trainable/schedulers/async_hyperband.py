"""Asynchronous successive halving (ASHA).

ASHA stops a trial early when, at one of a few milestones of ``time_attr``
(the *rungs*: ``grace_period``, ``grace_period * reduction_factor``, ...
below ``max_t``), its score is below the top ``1 / reduction_factor`` of
the scores other trials recorded at that rung. It never pauses a trial, so
it works with trainables that cannot checkpoint. The algorithm is the one
of Li et al., "A System for Massively Parallel Hyperparameter Tuning"
(MLSys 2020), with Ray Tune 1.x's arguments and rung layout.

Scores: a result's metric is multiplied by +1 (``mode="max"``) or -1
(``mode="min"``), so that higher is always better. A NaN metric counts as
the worst score (-inf), so a diverged trial is stopped rather than kept.
"""

import logging
import math
import random
from typing import Any, Dict, List, Optional, Tuple

from trainable.errors import InvalidConfig
from trainable.schedulers.metrics import (
    MissingKeyWarner,
    as_score,
    as_time,
    check_number,
    metric_sign,
    percentile,
    resolve_metric_mode,
    result_value,
)
from trainable.schedulers.trial_scheduler import (
    FIFOScheduler,
    TrialScheduler,
)

logger = logging.getLogger(__name__)


class AsyncHyperBandScheduler(FIFOScheduler):
    """Asynchronous successive halving: stop under-performing trials early.

    Each trial is placed in one of ``brackets`` brackets. Bracket ``s`` has
    rungs at ``grace_period * reduction_factor ** (k + s)`` for ``k = 0,
    1, ...`` while below ``max_t``. The first time a trial's ``time_attr``
    reaches a rung, its score is compared with the scores other trials
    recorded there: below the ``1 - 1 / reduction_factor`` quantile of
    them, the trial is stopped (``STOP``). A trial that reaches ``max_t``
    is stopped as finished. Trials never pause, so any trainable works.

    Args:
        time_attr: the result key that measures training progress. It must
            increase monotonically, for example ``training_iteration``.
        reward_attr: deprecated; ``metric=reward_attr, mode="max"``.
        metric: the result key to optimise; None takes ``run(metric=...)``.
        mode: ``"min"`` or ``"max"``; None takes ``run(mode=...)``.
        max_t: the ``time_attr`` at which every trial is stopped.
        grace_period: the first rung; no trial is stopped before it.
        reduction_factor: the ratio between rungs; about ``1 /
            reduction_factor`` of the trials pass each rung.
        brackets: how many brackets (Ray Tune's ``s`` values) to use.

    Raises:
        InvalidConfig: an argument is invalid; the message names it.
    """

    def __init__(self, time_attr: str = "training_iteration",
                 reward_attr: Optional[str] = None,
                 metric: Optional[str] = None, mode: Optional[str] = None,
                 max_t: float = 100, grace_period: float = 1,
                 reduction_factor: float = 4, brackets: int = 1):
        name = type(self).__name__
        if not isinstance(time_attr, str) or not time_attr:
            raise InvalidConfig(
                f"{name} got time_attr={time_attr!r}; it must be a result "
                f"key such as 'training_iteration'.")
        check_number(name, "max_t", max_t, above=0)
        check_number(name, "grace_period", grace_period, above=0)
        if grace_period > max_t:
            raise InvalidConfig(
                f"{name} got grace_period={grace_period!r} > "
                f"max_t={max_t!r}; grace_period must be <= max_t.")
        check_number(name, "reduction_factor", reduction_factor, above=1)
        check_number(name, "brackets", brackets, minimum=1, integer=True)
        self._metric, self._mode = resolve_metric_mode(
            name, metric, mode, reward_attr)
        self._time_attr = time_attr
        self._max_t = max_t
        self._reduction_factor = reduction_factor
        self._brackets = [
            _Bracket(grace_period, max_t, reduction_factor, s)
            for s in range(brackets)
        ]
        self._trial_bracket: Dict[str, _Bracket] = {}
        self._num_stopped = 0
        self._warner = MissingKeyWarner(name)

    def on_trial_add(self, runner: Any, trial: Any) -> None:
        """Check metric and mode, and put the trial in a bracket.

        Brackets with more rungs are chosen more often (softmax of the rung
        counts), as in Ray Tune.
        """
        metric_sign(self)
        sizes = [len(b.rungs) for b in self._brackets]
        top = max(sizes)
        weights = [math.exp(size - top) for size in sizes]
        bracket = random.choices(self._brackets, weights=weights)[0]
        self._trial_bracket[trial.trial_id] = bracket

    def on_trial_result(self, runner: Any, trial: Any,
                        result: Dict[str, Any]) -> str:
        """Return STOP at ``max_t`` or below a rung's cutoff, else
        CONTINUE."""
        sign = metric_sign(self)
        progress = as_time(result_value(result, self._time_attr))
        if progress is None:
            self._warner.warn(self._time_attr, "time_attr", trial, result)
            return TrialScheduler.CONTINUE
        score = as_score(result_value(result, self._metric), sign)
        if score is None:
            self._warner.warn(self._metric, "metric", trial, result)
            return TrialScheduler.CONTINUE
        if progress >= self._max_t:
            action = TrialScheduler.STOP
        else:
            bracket = self._bracket_of(trial)
            action = bracket.on_result(trial.trial_id, progress, score)
        if action == TrialScheduler.STOP:
            self._num_stopped += 1
            logger.debug("ASHA stops trial %s at %s=%s.", trial,
                         self._time_attr, progress)
        return action

    def on_trial_complete(self, runner: Any, trial: Any,
                          result: Dict[str, Any]) -> None:
        """Record the final result at its rung, so later trials meet it."""
        bracket = self._trial_bracket.pop(trial.trial_id, None)
        if bracket is None or not result or self.metric is None:
            return
        progress = as_time(result_value(result, self._time_attr))
        score = as_score(result_value(result, self._metric),
                         1.0 if self.mode == "max" else -1.0)
        if progress is not None and score is not None:
            bracket.on_result(trial.trial_id, progress, score)

    def on_trial_remove(self, runner: Any, trial: Any) -> None:
        """Forget a trial that this scheduler stopped."""
        self._trial_bracket.pop(trial.trial_id, None)

    def on_trial_error(self, runner: Any, trial: Any) -> None:
        """Forget a trial that failed."""
        self._trial_bracket.pop(trial.trial_id, None)

    def _bracket_of(self, trial: Any) -> "_Bracket":
        bracket = self._trial_bracket.get(trial.trial_id)
        if bracket is None:
            # Added before this scheduler saw it (not via on_trial_add).
            self.on_trial_add(None, trial)
            bracket = self._trial_bracket[trial.trial_id]
        return bracket

    def debug_string(self) -> str:
        """Return the number of stopped trials and each bracket's rungs."""
        lines = [f"Using AsyncHyperBand: num_stopped={self._num_stopped}"]
        lines.extend(bracket.debug_string() for bracket in self._brackets)
        return "\n".join(lines)


ASHAScheduler = AsyncHyperBandScheduler


class _Bracket:
    """The rungs of one bracket and the scores recorded at each.

    Rungs are kept from the highest milestone to the lowest, as a trial is
    recorded at the highest rung it has reached and not yet been recorded
    at.
    """

    def __init__(self, min_t: float, max_t: float, reduction_factor: float,
                 s: int):
        self.reduction_factor = reduction_factor
        count = int(math.log(max_t / min_t) / math.log(reduction_factor)
                    - s + 1)
        self.rungs: List[Tuple[float, Dict[str, float]]] = [
            (min_t * reduction_factor ** (k + s), {})
            for k in reversed(range(count))
        ]

    def cutoff(self, recorded: Dict[str, float]) -> Optional[float]:
        """Return the score a trial must reach to pass a rung, or None if
        no trial is recorded there yet."""
        if not recorded:
            return None
        return percentile(list(recorded.values()),
                          (1 - 1 / self.reduction_factor) * 100)

    def on_result(self, trial_id: str, progress: float,
                  score: float) -> str:
        """Record ``score`` at the highest new rung ``progress`` reached,
        and return STOP if it is below that rung's cutoff."""
        for milestone, recorded in self.rungs:
            if progress < milestone or trial_id in recorded:
                continue
            cutoff = self.cutoff(recorded)
            recorded[trial_id] = score
            if cutoff is not None and score < cutoff:
                return TrialScheduler.STOP
            return TrialScheduler.CONTINUE
        return TrialScheduler.CONTINUE

    def debug_string(self) -> str:
        """Return each rung's milestone, trial count and cutoff."""
        parts = []
        for milestone, recorded in self.rungs:
            cutoff = self.cutoff(recorded)
            shown = "-" if cutoff is None else f"{cutoff:.4g}"
            parts.append(f"Iter {milestone:.3f}: {len(recorded)} trials, "
                         f"cutoff {shown}")
        return "Bracket: " + " | ".join(parts)
