"""Stoppers: decide when a trial or the whole experiment ends.

The classes mirror ``ray.tune.stopper``. The runner calls a stopper with
``stopper(trial_id, result)`` after every result, and stops that trial when
it returns True. It calls ``stopper.stop_all()`` after results too, and
ends the whole experiment when that returns True.

:func:`build_stopper` turns the ``stop`` argument of ``run()`` (None, a
dict, a function or a :class:`Stopper`) into one Stopper.

Stoppers that keep state across results implement :meth:`Stopper.get_state`
and :meth:`Stopper.set_state`, so that the runner can store the state in
the experiment state file and restore it on resume.
"""

import collections
import datetime
import logging
import math
import numbers
import time
import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from trainable.errors import InvalidConfig
from trainable.results import flatten_dict, unflattened_lookup

logger = logging.getLogger(__name__)

# The clock of TimeoutStopper. Tests replace it with a fake clock.
_monotonic = time.monotonic

_MISSING = object()

# At most this many result keys are listed in a "key missing" warning.
_MAX_KEYS_IN_MESSAGE = 40


def _is_number(value: Any) -> bool:
    """Return True for real numbers, bool included (it compares as 0/1)."""
    return isinstance(value, numbers.Real)


class Stopper:
    """Base class of trial and experiment stoppers.

    Subclasses implement :meth:`__call__` and, if they can end the whole
    experiment, :meth:`stop_all`.

    Example::

        class StopAfterTenResults(Stopper):
            def __init__(self):
                self.count = 0

            def __call__(self, trial_id, result):
                self.count += 1
                return False

            def stop_all(self):
                return self.count >= 10
    """

    def __call__(self, trial_id: str, result: Dict[str, Any]) -> bool:
        """Return True if the trial should stop after this result."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement "
            f"__call__(trial_id, result)."
        )

    def stop_all(self) -> bool:
        """Return True if the whole experiment should stop."""
        return False

    def get_state(self) -> Dict[str, Any]:
        """Return the state to store for a resume (picklable)."""
        return {}

    def set_state(self, state: Dict[str, Any]) -> None:
        """Restore the state returned by :meth:`get_state`."""


class NoopStopper(Stopper):
    """Never stops anything."""

    def __call__(self, trial_id: str, result: Dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return False


class FunctionStopper(Stopper):
    """Stops a trial when ``function(trial_id, result)`` returns True.

    Args:
        function: Called after every result with the trial id and the
            result dict.
    """

    def __init__(self, function: Callable[[str, Dict[str, Any]], bool]):
        if not callable(function):
            raise InvalidConfig(
                f"Invalid stop function {function!r} (type "
                f"{type(function).__name__}): expected a callable "
                f"function(trial_id, result) -> bool."
            )
        self._fn = function

    def __call__(self, trial_id: str, result: Dict[str, Any]) -> bool:
        return bool(self._fn(trial_id, result))

    def stop_all(self) -> bool:
        return False

    @classmethod
    def is_valid_function(cls, fn: Any) -> bool:
        """Return True if ``fn`` is a plain callable, not a Stopper."""
        return (
            callable(fn)
            and not isinstance(fn, Stopper)
            and not isinstance(fn, type)
            and not callable(getattr(fn, "stop_all", None))
        )


class CombinedStopper(Stopper):
    """Stops when any of several stoppers returns True (logical OR).

    Unlike Ray Tune, every stopper receives every result, even after an
    earlier one has returned True, so that stateful stoppers (plateau,
    iteration counts) do not miss results.

    Args:
        *stoppers: The stoppers to combine.
    """

    def __init__(self, *stoppers: Stopper):
        for index, stopper in enumerate(stoppers):
            if not isinstance(stopper, Stopper):
                raise InvalidConfig(
                    f"Invalid stopper at position {index} of "
                    f"CombinedStopper: {stopper!r} (type "
                    f"{type(stopper).__name__}). Pass Stopper instances; "
                    f"wrap functions in FunctionStopper and dicts in "
                    f"DictStopper."
                )
        self._stoppers = stoppers

    @property
    def stoppers(self) -> Tuple[Stopper, ...]:
        """The combined stoppers, in the order given."""
        return tuple(self._stoppers)

    def __call__(self, trial_id: str, result: Dict[str, Any]) -> bool:
        decisions = [stopper(trial_id, result) for stopper in self._stoppers]
        return any(decisions)

    def stop_all(self) -> bool:
        decisions = [stopper.stop_all() for stopper in self._stoppers]
        return any(decisions)

    def get_state(self) -> Dict[str, Any]:
        return {"stoppers": [s.get_state() for s in self._stoppers]}

    def set_state(self, state: Dict[str, Any]) -> None:
        states = state.get("stoppers", [])
        if len(states) != len(self._stoppers):
            logger.warning(
                "Ignored the stored CombinedStopper state: it has %d "
                "stoppers, this one has %d.", len(states), len(self._stoppers),
            )
            return
        for stopper, stopper_state in zip(self._stoppers, states):
            stopper.set_state(stopper_state)


class MaximumIterationStopper(Stopper):
    """Stops each trial after it has reported ``max_iter`` results.

    As in Ray Tune, the stopper counts the results it has seen for each
    trial, not the ``training_iteration`` field.

    Args:
        max_iter: The number of results after which a trial stops.
    """

    def __init__(self, max_iter: int):
        if (
            isinstance(max_iter, bool)
            or not isinstance(max_iter, numbers.Integral)
            or max_iter < 1
        ):
            raise InvalidConfig(
                f"Invalid max_iter {max_iter!r}: expected an int >= 1."
            )
        self._max_iter = int(max_iter)
        self._iter: Dict[str, int] = collections.defaultdict(int)

    def __call__(self, trial_id: str, result: Dict[str, Any]) -> bool:
        self._iter[trial_id] += 1
        return self._iter[trial_id] >= self._max_iter

    def stop_all(self) -> bool:
        return False

    def get_state(self) -> Dict[str, Any]:
        return {"iterations": dict(self._iter)}

    def set_state(self, state: Dict[str, Any]) -> None:
        self._iter = collections.defaultdict(int, state.get("iterations", {}))


class TimeoutStopper(Stopper):
    """Stops the whole experiment after a wall-clock time budget.

    The clock starts at the first call of :meth:`__call__` or
    :meth:`stop_all`, or at an explicit :meth:`start`, so that setup before
    the first result is not charged. It measures elapsed time with
    ``time.monotonic()`` while the driver runs. :meth:`get_state` stores
    the remaining budget, and after :meth:`set_state` (or unpickling) the
    clock is paused until the next call, so the time the driver was down
    is not charged.

    Trials are never stopped one by one (:meth:`__call__` returns False);
    :meth:`stop_all` returns True once the budget is spent.

    Args:
        timeout: The budget, in seconds (int or float) or as a
            ``datetime.timedelta``.
    """

    def __init__(self, timeout: Union[int, float, datetime.timedelta]):
        if isinstance(timeout, datetime.timedelta):
            seconds = timeout.total_seconds()
        elif _is_number(timeout) and not isinstance(timeout, bool):
            seconds = float(timeout)
        else:
            raise InvalidConfig(
                f"Invalid timeout {timeout!r} (type "
                f"{type(timeout).__name__}): expected seconds as int or "
                f"float, or a datetime.timedelta."
            )
        if not seconds >= 0 or math.isinf(seconds):
            raise InvalidConfig(
                f"Invalid timeout {timeout!r}: expected a finite number of "
                f"seconds >= 0."
            )
        self._timeout_seconds = seconds
        self._remaining = seconds
        self._last_check: Optional[float] = None
        self._reported = False

    @property
    def timeout_s(self) -> float:
        """The whole budget in seconds."""
        return self._timeout_seconds

    @property
    def remaining_s(self) -> float:
        """The budget left, in seconds (negative once overspent)."""
        if self._last_check is None:
            return self._remaining
        return self._remaining - (_monotonic() - self._last_check)

    def start(self) -> None:
        """Start the clock, or restart it after a restore.

        Does nothing while the clock runs.
        """
        if self._last_check is None:
            self._last_check = _monotonic()

    def _charge_elapsed(self) -> None:
        now = _monotonic()
        if self._last_check is not None:
            self._remaining -= now - self._last_check
        self._last_check = now

    def __call__(self, trial_id: str, result: Dict[str, Any]) -> bool:
        self._charge_elapsed()
        return False

    def stop_all(self) -> bool:
        self._charge_elapsed()
        if self._remaining > 0:
            return False
        if not self._reported:
            self._reported = True
            logger.info(
                "Reached the timeout of %s seconds. Stopping all trials.",
                self._timeout_seconds,
            )
        return True

    def get_state(self) -> Dict[str, Any]:
        return {
            "timeout_s": self._timeout_seconds,
            "remaining_s": self.remaining_s,
        }

    def set_state(self, state: Dict[str, Any]) -> None:
        remaining = state.get("remaining_s")
        if not _is_number(remaining) or math.isnan(remaining):
            logger.warning(
                "Ignored an invalid stored TimeoutStopper state %r. The "
                "full budget of %s seconds applies.",
                state, self._timeout_seconds,
            )
            return
        self._remaining = float(remaining)
        self._last_check = None
        self._reported = False

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state["_remaining"] = self.remaining_s
        state["_last_check"] = None
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._last_check = None


class TrialPlateauStopper(Stopper):
    """Stops a trial when its metric has stopped changing.

    A trial stops when the population standard deviation of its last
    ``num_results`` values of ``metric`` is below ``std``. A result
    without the metric, or with a value that is not a number, counts as a
    result but keeps the trial going until it drops out of the window.

    Args:
        metric: The result key to watch (nested keys as ``"a/b"``).
        std: The standard deviation below which the trial has plateaued.
        num_results: The number of latest results to consider.
        grace_period: The number of results before a trial may stop.
        metric_threshold: If set, the trial only stops once the latest
            value is at or beyond this threshold (``<=`` for mode "min",
            ``>=`` for mode "max").
        mode: "min" or "max". Required when ``metric_threshold`` is set.
    """

    def __init__(
        self,
        metric: str,
        std: float = 0.01,
        num_results: int = 4,
        grace_period: int = 4,
        metric_threshold: Optional[float] = None,
        mode: Optional[str] = None,
    ):
        _check_metric_name(metric)
        _check_positive_number("std", std)
        _check_int("num_results", num_results, minimum=1)
        _check_int("grace_period", grace_period, minimum=0)
        if mode not in (None, "min", "max"):
            raise InvalidConfig(
                f"Invalid mode {mode!r}: expected 'min', 'max' or None."
            )
        if metric_threshold is not None:
            if not _is_number(metric_threshold):
                raise InvalidConfig(
                    f"Invalid metric_threshold {metric_threshold!r}: "
                    f"expected a number or None."
                )
            if mode is None:
                raise InvalidConfig(
                    f"Missing mode: metric_threshold={metric_threshold!r} "
                    f"needs mode='min' or mode='max' to know which side of "
                    f"the threshold counts as reached."
                )
        self._metric = metric
        self._std = std
        self._num_results = num_results
        self._grace_period = grace_period
        self._metric_threshold = metric_threshold
        self._mode = mode
        self._iter: Dict[str, int] = collections.defaultdict(int)
        self._trial_results: Dict[str, collections.deque] = {}

    def __call__(self, trial_id: str, result: Dict[str, Any]) -> bool:
        value = _lookup(result, self._metric)
        window = self._trial_results.get(trial_id)
        if window is None:
            window = collections.deque(maxlen=self._num_results)
            self._trial_results[trial_id] = window
        window.append(None if value is _MISSING else value)
        self._iter[trial_id] += 1

        if self._iter[trial_id] < self._grace_period:
            return False
        if len(window) < self._num_results:
            return False
        if not all(_is_number(item) for item in window):
            return False
        if self._metric_threshold is not None:
            if self._mode == "min" and not value <= self._metric_threshold:
                return False
            if self._mode == "max" and not value >= self._metric_threshold:
                return False
        return _population_std(window) < self._std

    def stop_all(self) -> bool:
        return False

    def get_state(self) -> Dict[str, Any]:
        return {
            "iterations": dict(self._iter),
            "results": {
                trial_id: list(window)
                for trial_id, window in self._trial_results.items()
            },
        }

    def set_state(self, state: Dict[str, Any]) -> None:
        self._iter = collections.defaultdict(int, state.get("iterations", {}))
        self._trial_results = {
            trial_id: collections.deque(values, maxlen=self._num_results)
            for trial_id, values in state.get("results", {}).items()
        }


class ExperimentPlateauStopper(Stopper):
    """Stops the experiment when the best results have stopped changing.

    The stopper keeps the ``top`` best values of ``metric`` over all
    results of all trials. When there are ``top`` of them and their
    population standard deviation is at most ``std`` for more than
    ``patience`` results in a row, the experiment stops. A result without
    the metric, or with None or NaN there, is ignored.

    Args:
        metric: The result key to watch (nested keys as ``"a/b"``).
        std: The standard deviation at or below which the top values have
            plateaued; must be > 0.
        top: How many of the best values to consider; must be >= 2.
        mode: "min" or "max": which values are the best.
        patience: How many plateaued results to wait before stopping.
    """

    def __init__(
        self,
        metric: str,
        std: float = 0.001,
        top: int = 10,
        mode: str = "min",
        patience: int = 0,
    ):
        _check_metric_name(metric)
        if mode not in ("min", "max"):
            raise InvalidConfig(
                f"Invalid mode {mode!r}: expected 'min' or 'max'."
            )
        _check_int("top", top, minimum=2)
        _check_int("patience", patience, minimum=0)
        _check_positive_number("std", std)
        self._metric = metric
        self._std = std
        self._top = top
        self._mode = mode
        self._patience = patience
        self._iterations = 0
        self._top_values: List[float] = []
        self._warned_missing = False

    def __call__(self, trial_id: str, result: Dict[str, Any]) -> bool:
        value = _lookup(result, self._metric)
        if value is _MISSING or value is None:
            if not self._warned_missing:
                self._warned_missing = True
                logger.warning(
                    "ExperimentPlateauStopper ignores results without a "
                    "value for metric %r (first seen in trial %s); result "
                    "keys: %s.", self._metric, trial_id,
                    _describe_keys(result),
                )
            return self.stop_all()
        if not _is_number(value):
            raise InvalidConfig(
                f"Invalid value for metric {self._metric!r} of "
                f"ExperimentPlateauStopper in trial {trial_id}: {value!r} "
                f"(type {type(value).__name__}). The metric must be a "
                f"number; report a number under this key or watch another "
                f"metric."
            )
        if math.isnan(value):
            return self.stop_all()

        values = sorted(self._top_values + [float(value)])
        if self._mode == "min":
            self._top_values = values[: self._top]
        else:
            self._top_values = values[-self._top:]

        if self.has_plateaued():
            self._iterations += 1
        else:
            self._iterations = 0
        return self.stop_all()

    def has_plateaued(self) -> bool:
        """Return True if the top values vary by at most ``std``."""
        return (
            len(self._top_values) == self._top
            and _population_std(self._top_values) <= self._std
        )

    def stop_all(self) -> bool:
        return self.has_plateaued() and self._iterations >= self._patience

    def get_state(self) -> Dict[str, Any]:
        return {
            "top_values": list(self._top_values),
            "iterations": self._iterations,
        }

    def set_state(self, state: Dict[str, Any]) -> None:
        self._top_values = list(state.get("top_values", []))
        self._iterations = int(state.get("iterations", 0))


class EarlyStopping(ExperimentPlateauStopper):
    """Former name of :class:`ExperimentPlateauStopper` (deprecated)."""

    def __init__(self, *args: Any, **kwargs: Any):
        warnings.warn(
            "EarlyStopping was renamed to ExperimentPlateauStopper; use "
            "that name instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        super().__init__(*args, **kwargs)


class DictStopper(Stopper):
    """Stops a trial when any result value reaches its threshold.

    These are the semantics of ``stop={...}`` in Ray Tune: the trial stops
    at the first result where ``result[key] >= threshold`` for ANY key.
    Nested result keys are written flattened (``"info/loss"``), and a
    nested criteria dict is flattened the same way.

    A key that is missing from a result, or None there, neither stops the
    trial nor raises, because many metrics only appear after a few
    iterations. The first time a key is missing, one warning names the key
    and the keys that the result does have. NaN never reaches a threshold.

    Args:
        criteria: Maps result keys to numeric thresholds.

    Raises:
        InvalidConfig: At construction, if a key is not a str or a
            threshold is not a number (or NaN). When called, if a result
            value cannot be compared with its threshold (a string, a list),
            naming the key, the value and its type.
    """

    def __init__(self, criteria: Dict[str, Any]):
        if not isinstance(criteria, dict):
            raise InvalidConfig(
                f"Invalid stop criteria {criteria!r} (type "
                f"{type(criteria).__name__}): expected a dict mapping "
                f"result keys to numeric thresholds."
            )
        flat = flatten_dict(criteria)
        for key, threshold in flat.items():
            if not _is_number(threshold) or math.isnan(threshold):
                raise InvalidConfig(
                    f"Invalid stop threshold for {key!r}: {threshold!r} "
                    f"(type {type(threshold).__name__}). A trial stops when "
                    f"result[{key!r}] >= threshold, so the threshold must "
                    f"be a number, for example stop={{{key!r}: 100}}."
                )
        self._criteria = flat
        self._warned_missing: set = set()

    @property
    def criteria(self) -> Dict[str, Any]:
        """The flattened criteria (a copy)."""
        return dict(self._criteria)

    def __call__(self, trial_id: str, result: Dict[str, Any]) -> bool:
        for key, threshold in self._criteria.items():
            value = _lookup(result, key)
            if value is None:
                continue
            if value is _MISSING:
                self._warn_missing(key, trial_id, result)
                continue
            if _is_number(value):
                if value >= threshold:
                    return True
                continue
            if _compare_at_least(key, value, threshold):
                return True
        return False

    def _warn_missing(
        self, key: str, trial_id: str, result: Dict[str, Any]
    ) -> None:
        if key in self._warned_missing:
            return
        self._warned_missing.add(key)
        logger.warning(
            "Stop criterion %r is missing from a result of trial %s, so it "
            "cannot stop the trial yet. The result has the keys: %s. This "
            "warning is shown once per key.",
            key, trial_id, _describe_keys(result),
        )

    def stop_all(self) -> bool:
        return False


def _compare_at_least(key: str, value: Any, threshold: Any) -> bool:
    """Compare a non-number with a threshold, or raise InvalidConfig."""
    try:
        return bool(value >= threshold)
    except (TypeError, ValueError) as error:
        raise InvalidConfig(
            f"Invalid result value for stop criterion {key!r}: {value!r} "
            f"(type {type(value).__name__}) cannot be compared with the "
            f"threshold {threshold!r} by >=. Report a number under "
            f"{key!r} or remove this key from `stop`."
        ) from error


def _population_std(values: Iterable[float]) -> float:
    """Return the population standard deviation (NaN if any value is inf).

    ``statistics.pstdev`` is not used because on Python 3.11 it raises on
    NaN and inf, and ``math.fsum`` raises on inf plus -inf.
    """
    floats = [float(value) for value in values]
    mean = sum(floats) / len(floats)
    variance = sum((value - mean) ** 2 for value in floats) / len(floats)
    return math.sqrt(variance)


def _lookup(result: Dict[str, Any], key: str) -> Any:
    """Return ``result[key]`` with ``"a/b"`` nested lookup, or _MISSING."""
    return unflattened_lookup(key, result, default=_MISSING)


def _describe_keys(result: Dict[str, Any]) -> str:
    keys = [
        key for key in flatten_dict(result) if not key.startswith("config/")
    ]
    shown = ", ".join(repr(key) for key in keys[:_MAX_KEYS_IN_MESSAGE])
    if len(keys) > _MAX_KEYS_IN_MESSAGE:
        shown += f" and {len(keys) - _MAX_KEYS_IN_MESSAGE} more"
    return shown or "(none)"


def _check_metric_name(metric: Any) -> None:
    if not isinstance(metric, str) or not metric:
        raise InvalidConfig(
            f"Invalid metric {metric!r}: expected the result key to watch, "
            f"as a non-empty str."
        )


def _check_positive_number(name: str, value: Any) -> None:
    if isinstance(value, bool) or not _is_number(value) or not value > 0:
        raise InvalidConfig(
            f"Invalid {name} {value!r}: expected a number > 0."
        )


def _check_int(name: str, value: Any, minimum: int) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < minimum
    ):
        raise InvalidConfig(
            f"Invalid {name} {value!r}: expected an int >= {minimum}."
        )


class _DuckTypedStopper(Stopper):
    """Adapts an object with ``__call__`` and ``stop_all`` to Stopper."""

    def __init__(self, wrapped: Any):
        self.wrapped = wrapped

    def __call__(self, trial_id: str, result: Dict[str, Any]) -> bool:
        return bool(self.wrapped(trial_id, result))

    def stop_all(self) -> bool:
        return bool(self.wrapped.stop_all())

    def get_state(self) -> Dict[str, Any]:
        get_state = getattr(self.wrapped, "get_state", None)
        return get_state() if callable(get_state) else {}

    def set_state(self, state: Dict[str, Any]) -> None:
        set_state = getattr(self.wrapped, "set_state", None)
        if callable(set_state):
            set_state(state)


def build_stopper(stop: Any) -> Stopper:
    """Turn the ``stop`` argument of ``run()`` into one Stopper.

    Args:
        stop: One of:

            * None: never stop (:class:`NoopStopper`).
            * a dict: :class:`DictStopper` criteria.
            * a :class:`Stopper` instance: used as is.
            * an object with ``__call__`` and ``stop_all`` methods that is
              not a Stopper (for example a stopper class written for
              another library): adapted to Stopper.
            * a callable ``(trial_id, result) -> bool``:
              :class:`FunctionStopper`.

    Returns:
        The stopper.

    Raises:
        InvalidConfig: If ``stop`` is none of these, or a class instead of
            an instance, naming its type.
    """
    if stop is None:
        return NoopStopper()
    if isinstance(stop, Stopper):
        return stop
    if isinstance(stop, dict):
        return DictStopper(stop)
    if isinstance(stop, type):
        raise InvalidConfig(
            f"Invalid stop {stop!r}: it is a class. Pass an instance, for "
            f"example stop={stop.__name__}(...)."
        )
    if callable(stop) and callable(getattr(stop, "stop_all", None)):
        return _DuckTypedStopper(stop)
    if callable(stop):
        return FunctionStopper(stop)
    raise InvalidConfig(
        f"Invalid stop {stop!r} (type {type(stop).__name__}): expected "
        f"None, a dict of result thresholds such as "
        f"{{'training_iteration': 10}}, a function (trial_id, result) -> "
        f"bool, or a Stopper instance."
    )
