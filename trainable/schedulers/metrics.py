"""Helpers the schedulers share: metric and mode, scores, result values,
argument checks and a percentile.

Scores: a result's metric is multiplied by +1 (``mode="max"``) or -1
(``mode="min"``), so that higher is always better. A NaN metric counts as
the worst score (-inf).
"""

import logging
import math
import numbers
from typing import Any, Dict, List, Optional, Tuple

from trainable.errors import InvalidConfig
from trainable.results import unflattened_lookup
from trainable.schedulers.trial_scheduler import TrialScheduler

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
