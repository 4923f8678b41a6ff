"""Asynchronous successive halving (ASHA), and the metric helpers that the
schedulers of this package share.

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
import numbers
import random
from typing import Any, Dict, List, Optional, Tuple

from trainable.errors import InvalidConfig
from trainable.results import unflattened_lookup
from trainable.schedulers.trial_scheduler import (
    FIFOScheduler,
    TrialScheduler,
)

logger = logging.getLogger(__name__)

_MISSING = object()
_MAX_KEYS_IN_MESSAGE = 12


# ----------------------------------------------------------- shared helpers


def resolve_metric_mode(scheduler: str, metric: Optional[str],
                        mode: Optional[str],
                        reward_attr: Optional[str]) -> Tuple[Optional[str],
                                                             Optional[str]]:
    """Check a scheduler's ``metric``, ``mode`` and ``reward_attr``.

    ``reward_attr`` is Ray Tune's older name for a metric to maximise; it
    sets ``metric=reward_attr, mode="max"`` and logs a deprecation warning.

    Args:
        scheduler: the class name, used in messages.
        metric: the result key to optimise, or None to take it from
            ``run(metric=...)``.
        mode: ``"min"``, ``"max"``, or None to take it from
            ``run(mode=...)``.
        reward_attr: the deprecated alternative to ``metric``.

    Returns:
        The ``(metric, mode)`` pair to use.

    Raises:
        InvalidConfig: a value has the wrong type, ``mode`` is not
            ``"min"`` or ``"max"``, or ``reward_attr`` conflicts with
            ``metric`` or ``mode``.
    """
    if reward_attr is not None:
        if metric is not None and metric != reward_attr:
            raise InvalidConfig(
                f"{scheduler} got reward_attr={reward_attr!r} and "
                f"metric={metric!r}. reward_attr is the deprecated name of "
                f"metric; pass only metric=..., mode=...")
        if mode not in (None, "max"):
            raise InvalidConfig(
                f"{scheduler} got reward_attr={reward_attr!r} with "
                f"mode={mode!r}, but reward_attr always maximises. Pass "
                f"metric={reward_attr!r}, mode={mode!r} instead.")
        logger.warning(
            "%s: reward_attr is deprecated; using metric=%r, mode='max'. "
            "Pass metric and mode instead.", scheduler, reward_attr)
        metric, mode = reward_attr, "max"
    if metric is not None and (not isinstance(metric, str) or not metric):
        raise InvalidConfig(
            f"{scheduler} got metric={metric!r}; it must be the result key "
            f"to optimise, as a non-empty str.")
    if mode not in (None, "min", "max"):
        raise InvalidConfig(
            f"{scheduler} got mode={mode!r}; use 'min' or 'max'.")
    return metric, mode


def metric_sign(scheduler: TrialScheduler) -> float:
    """Return +1.0 for ``mode="max"`` and -1.0 for ``mode="min"``.

    Raises:
        InvalidConfig: the scheduler has no metric or no mode, neither from
            its constructor nor from ``run(metric=..., mode=...)``; the
            message names the missing one.
    """
    name = type(scheduler).__name__
    missing = [arg for arg, value in (("metric", scheduler.metric),
                                      ("mode", scheduler.mode))
               if value is None]
    if missing:
        missing_text = " and ".join(missing)
        raise InvalidConfig(
            f"{name} has no {missing_text}. Pass metric='<result key>' and "
            f"mode='min' or 'max' to {name}(...) or to tune.run(...).")
    return 1.0 if scheduler.mode == "max" else -1.0


def result_value(result: Dict[str, Any], key: str) -> Any:
    """Return ``result[key]``, with ``"a/b"`` looking into nested dicts.

    Returns a private sentinel (test with :func:`is_missing`) if the key is
    absent.
    """
    return unflattened_lookup(key, result, default=_MISSING)


def is_missing(value: Any) -> bool:
    """Return whether :func:`result_value` found nothing."""
    return value is _MISSING


def as_score(value: Any, sign: float) -> Optional[float]:
    """Turn a metric value into a score where higher is better.

    Returns None for a value that is not a number (None, a str, a bool).
    NaN becomes -inf, the worst score.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    if math.isnan(value):
        return -math.inf
    return sign * value


def as_time(value: Any) -> Optional[float]:
    """Return a ``time_attr`` value as a float, or None if it is not a
    finite number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def describe_keys(result: Dict[str, Any]) -> str:
    """Return the top-level result keys for a message, shortened."""
    keys = [repr(key) for key in result if key != "config"]
    shown = ", ".join(keys[:_MAX_KEYS_IN_MESSAGE])
    if len(keys) > _MAX_KEYS_IN_MESSAGE:
        shown += f" and {len(keys) - _MAX_KEYS_IN_MESSAGE} more"
    return shown or "(none)"


def check_number(scheduler: str, name: str, value: Any, *,
                 minimum: Optional[float] = None,
                 above: Optional[float] = None,
                 integer: bool = False) -> None:
    """Check a numeric constructor argument.

    Raises:
        InvalidConfig: ``value`` is not a (whole, if ``integer``) number,
            is below ``minimum`` or not above ``above``.
    """
    kind = "an int" if integer else "a number"
    allowed = (numbers.Integral,) if integer else (numbers.Real,)
    valid = (not isinstance(value, bool) and isinstance(value, allowed)
             and math.isfinite(value))
    rule = kind
    if valid and minimum is not None:
        valid = value >= minimum
        rule = f"{kind} >= {minimum:g}"
    if valid and above is not None:
        valid = value > above
        rule = f"{kind} > {above:g}"
    if not valid:
        raise InvalidConfig(
            f"{scheduler} got {name}={value!r}; it must be {rule}.")


class MissingKeyWarner:
    """Logs one warning per result key that a scheduler needs but a result
    lacks, instead of one per result."""

    def __init__(self, scheduler: str):
        self.scheduler = scheduler
        self._warned: set = set()

    def warn(self, key: str, role: str, trial: Any,
             result: Dict[str, Any]) -> None:
        """Log that ``result`` of ``trial`` has no usable ``key``."""
        if key in self._warned:
            return
        self._warned.add(key)
        value = result_value(result, key)
        problem = ("is missing from" if is_missing(value)
                   else f"is {value!r}, not a number, in")
        logger.warning(
            "%s: %s %r %s a result of trial %s, so that result is ignored. "
            "The result has the keys: %s. Report %r as a number in every "
            "result or change the %s. This warning is shown once per key.",
            self.scheduler, role, key, problem, trial, describe_keys(result),
            key, role)


# ------------------------------------------------------------------- ASHA


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


def percentile(values: List[float], q: float) -> float:
    """Return the ``q``-th percentile (0..100) with linear interpolation
    between the closest ranks, as ``numpy.percentile`` computes it by
    default. ``values`` must be non-empty and contain no NaN."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    lower = math.floor(position)
    upper = math.ceil(position)
    fraction = position - lower
    if lower == upper or fraction == 0.0:
        return ordered[lower]
    low, high = ordered[lower], ordered[upper]
    if math.isinf(low) or math.isinf(high):
        # inf - inf has no interpolation; take the closer rank.
        return low if fraction < 0.5 else high
    return low + (high - low) * fraction
