"""Progress reporters: periodic status tables of an experiment.

The classes mirror ``ray.tune.progress_reporter``. The runner calls
``reporter.should_report(trials, done)`` on every loop, and if it returns
True, ``reporter.report(trials, done, *sys_info)``.

:class:`CLIReporter` prints plain text (no ANSI codes, no third-party
table library) to its ``stream``. This module is the only place in the
package that prints.

A report looks like this (the table is cut short here)::

    == Status ==
    Current time: 2024-05-01 12:00:00 (running for 00:00:05.12)
    Current best trial: 00001 with loss=0.25 and parameters={'lr': 0.01}
    Number of trials: 3/10 (1 ERROR, 1 RUNNING, 1 TERMINATED)
    +---------------+------------+------+------+----------------+------+
    | Trial name    | status     |   lr | iter | total time (s) | loss |
    |---------------+------------+------+------+----------------+------|
    | f_7f3a2_00000 | RUNNING    |  0.1 |    3 |          1.234 |  0.5 |
    | f_7f3a2_00001 | TERMINATED | 0.01 |   10 |            4.2 | 0.25 |
    ...
    Number of errored trials: 1
    ...
"""

import collections
import datetime
import logging
import math
import numbers
import sys
import time
from typing import (
    Any, Dict, Iterable, List, Mapping, Optional, Sequence, TextIO, Tuple,
    Union,
)

from trainable.errors import InvalidConfig
from trainable.results import flatten_dict, unflattened_lookup

logger = logging.getLogger(__name__)

ColumnSpec = Union[List[str], Dict[str, str]]

# Status names of trainable.trial.Trial, in the order rows are printed.
_STATUS_ORDER = ("RUNNING", "PAUSED", "PENDING", "TERMINATED", "ERROR")

# Metric used when only a mode is given, as in Ray Tune.
DEFAULT_METRIC = "_metric"

# Result keys that Trainable.train() adds. They are never inferred as user
# metrics, but training_iteration and time_total_s are in DEFAULT_COLUMNS.
AUTO_RESULT_KEYS = frozenset({
    "training_iteration", "time_total_s", "time_this_iter_s",
    "timesteps_total", "timesteps_this_iter", "timesteps_since_restore",
    "episodes_total", "episodes_this_iter", "done", "trial_id",
    "experiment_id", "experiment_tag", "date", "timestamp", "pid",
    "hostname", "node_ip", "iterations_since_restore",
    "time_since_restore", "config", "warmup_time", "should_checkpoint",
})


def _is_metric_value(value: Any) -> bool:
    """Return True for values that are shown as an inferred metric."""
    if value is None:
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _format_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return format(value, "g")
    text = value if isinstance(value, str) else str(value)
    return text.replace("\r", " ").replace("\n", " ")


def _is_numeric_cell(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]]
) -> str:
    """Format rows as a plain-text table with a border.

    Numbers are right-aligned and everything else left-aligned. None is an
    empty cell, and floats use the ``g`` format (6 significant digits).

    Args:
        headers: The column titles.
        rows: The rows; each has one value per header.

    Returns:
        The table, lines joined by newlines, without a final newline.
    """
    text_rows = [[_format_cell(value) for value in row] for row in rows]
    numeric_columns = [
        bool(rows) and all(
            _is_numeric_cell(row[index]) or row[index] is None
            for row in rows
        ) and any(_is_numeric_cell(row[index]) for row in rows)
        for index in range(len(headers))
    ]
    widths = [len(header) for header in headers]
    for row in text_rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))

    def render(cells: Sequence[str]) -> str:
        parts = []
        for index, cell in enumerate(cells):
            if numeric_columns[index]:
                parts.append(cell.rjust(widths[index]))
            else:
                parts.append(cell.ljust(widths[index]))
        return "| " + " | ".join(parts) + " |"

    border = "+-" + "-+-".join("-" * width for width in widths) + "-+"
    separator = "|-" + "-+-".join("-" * width for width in widths) + "-|"
    lines = [border, render(headers), separator]
    lines.extend(render(row) for row in text_rows)
    lines.append(border)
    return "\n".join(lines)


def _format_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, rest = divmod(rest, 60)
    text = f"{int(hours):02d}:{int(minutes):02d}:{rest:05.2f}"
    if days:
        text = f"{int(days)} days, " + text
    return text


class ProgressReporter:
    """Base class of experiment progress reporters.

    The runner calls :meth:`should_report` after trial status changes and
    results, and calls :meth:`report` when it returns True.
    """

    def setup(
        self,
        start_time: Optional[float] = None,
        total_samples: Optional[int] = None,
        metric: Optional[str] = None,
        mode: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        """Set the values that are only known when the run starts.

        Args:
            start_time: The ``time.time()`` at which the run started.
            total_samples: The number of trials the run will create.
            metric: The metric passed to ``run()``.
            mode: The mode passed to ``run()``: "min" or "max".
            **kwargs: Ignored, for forward compatibility.
        """
        if start_time is not None:
            self.set_start_time(start_time)
        if total_samples is not None:
            self.set_total_samples(total_samples)
        if metric is not None or mode is not None:
            self.set_search_properties(metric, mode)

    def should_report(self, trials: List[Any], done: bool = False) -> bool:
        """Return True if :meth:`report` should be called now.

        Args:
            trials: The trials to report on.
            done: True for the last report of the run.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement "
            f"should_report(trials, done)."
        )

    def report(self, trials: List[Any], done: bool, *sys_info: Any) -> None:
        """Report the progress of all trials.

        Args:
            trials: The trials to report on.
            done: True for the last report of the run.
            *sys_info: Extra lines (str) to include in the report.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement "
            f"report(trials, done, *sys_info)."
        )

    def set_search_properties(
        self, metric: Optional[str], mode: Optional[str]
    ) -> bool:
        """Accept the metric and mode of ``run()``.

        Returns:
            True if the reporter accepted them. The base class has no use
            for them and accepts them.
        """
        return True

    def set_total_samples(self, total_samples: Optional[int]) -> None:
        """Set the number of trials the run will create."""

    def set_start_time(self, timestamp: Optional[float] = None) -> None:
        """Set the ``time.time()`` at which the run started."""


class CLIReporter(ProgressReporter):
    """Prints a plain-text status table of all trials.

    A report contains, in this order:

    * the line "== Status ==", the current time and the time since the
      start, and the extra ``sys_info`` lines;
    * the best trial so far, if a metric and mode are known;
    * the experiment directories, if the trials have a ``local_dir``;
    * the trial counts by status;
    * a table with one row per trial: name, status, parameter columns and
      metric columns;
    * a table of errored trials with their error files.

    Metric columns, when not given, are the default columns
    (``training_iteration`` as "iter", ``time_total_s`` as "total time
    (s)", and a few common metric names) plus up to ``infer_limit`` numeric
    keys inferred from the trials' last results. Only columns that some
    trial has a value for are shown.

    Parameter columns, when not given, are the trial's
    ``evaluated_params`` (the sampled values) if the trial has that
    attribute, and otherwise every scalar value of the flattened config.

    Args:
        metric_columns: The metrics to show: a list of result keys, or a
            dict from result key to column title. Nested keys as ``"a/b"``.
        parameter_columns: The config values to show, as a list of keys or
            a dict from key to column title.
        total_samples: The number of trials the run will create, shown as
            "Number of trials: 4/10".
        max_progress_rows: The maximum number of trial rows. Rows are
            shared fairly between statuses, and the hidden rows are
            counted in one line. The last report (``done=True``) shows
            every row.
        max_error_rows: The maximum number of rows in the error table,
            except in the last report.
        max_report_frequency: The minimum number of seconds between two
            reports, except the last one.
        infer_limit: The maximum number of metrics to infer.
        print_intermediate_tables: If False, only the last report shows
            the trial table. None and True show it in every report (Ray
            Tune derives None from its verbosity level, which this reporter
            does not have).
        metric: The metric used to pick the best trial.
        mode: "min" or "max" for ``metric``.
        sort_by_metric: If True (and metric and mode are set), terminated
            trials are sorted by their metric, best first.
        stream: Where reports are written. None means ``sys.stdout`` at
            the time of each report.
    """

    DEFAULT_COLUMNS: Dict[str, str] = collections.OrderedDict([
        ("mean_accuracy", "acc"),
        ("mean_loss", "loss"),
        ("training_iteration", "iter"),
        ("time_total_s", "total time (s)"),
        ("timesteps_total", "ts"),
        ("episode_reward_mean", "reward"),
    ])

    def __init__(
        self,
        metric_columns: Optional[ColumnSpec] = None,
        parameter_columns: Optional[ColumnSpec] = None,
        total_samples: Optional[int] = None,
        max_progress_rows: int = 20,
        max_error_rows: int = 20,
        max_report_frequency: float = 5,
        infer_limit: int = 3,
        print_intermediate_tables: Optional[bool] = None,
        metric: Optional[str] = None,
        mode: Optional[str] = None,
        sort_by_metric: bool = False,
        *,
        stream: Optional[TextIO] = None,
    ):
        _check_columns("metric_columns", metric_columns)
        _check_columns("parameter_columns", parameter_columns)
        _check_count("max_progress_rows", max_progress_rows, minimum=1)
        _check_count("max_error_rows", max_error_rows, minimum=1)
        _check_count("infer_limit", infer_limit, minimum=0)
        if (
            isinstance(max_report_frequency, bool)
            or not isinstance(max_report_frequency, numbers.Real)
            or not max_report_frequency >= 0
        ):
            raise InvalidConfig(
                f"Invalid max_report_frequency {max_report_frequency!r}: "
                f"expected a number of seconds >= 0."
            )
        _check_mode(mode)

        self._metrics_override = metric_columns is not None
        self._metric_columns: ColumnSpec = _copy_columns(
            metric_columns or self.DEFAULT_COLUMNS
        )
        self._inferred_metrics: Dict[str, str] = {}
        self._parameter_columns: ColumnSpec = _copy_columns(
            parameter_columns or []
        )
        self._total_samples = total_samples
        self._max_progress_rows = max_progress_rows
        self._max_error_rows = max_error_rows
        self._max_report_frequency = float(max_report_frequency)
        self._infer_limit = infer_limit
        self._print_intermediate_tables = (
            True if print_intermediate_tables is None
            else bool(print_intermediate_tables)
        )
        self._metric = metric
        self._mode = mode
        self._sort_by_metric = sort_by_metric
        self._start_time = time.time()
        self._last_report_time: Optional[float] = None
        self.stream = stream

    # -- configuration -------------------------------------------------

    def add_metric_column(
        self, metric: str, representation: Optional[str] = None
    ) -> None:
        """Add a metric column.

        Args:
            metric: The result key (nested keys as ``"a/b"``).
            representation: The column title. Defaults to ``metric``, and
                must equal ``metric`` if the columns were given as a list.

        Raises:
            InvalidConfig: If the column exists, or a different title is
                given for list columns.
        """
        if not self._metrics_override:
            # The first explicit column ends inference, as in Ray Tune. The
            # columns inferred so far are kept.
            self._metric_columns.update(self._inferred_metrics)
        self._metrics_override = True
        _add_column(self._metric_columns, "metric", metric, representation)

    def add_parameter_column(
        self, parameter: str, representation: Optional[str] = None
    ) -> None:
        """Add a parameter column.

        Args:
            parameter: The config key (nested keys as ``"a/b"``).
            representation: The column title. Defaults to ``parameter``,
                and must equal ``parameter`` if the columns were given as a
                list.

        Raises:
            InvalidConfig: If the column exists, or a different title is
                given for list columns.
        """
        _add_column(
            self._parameter_columns, "parameter", parameter, representation
        )

    def set_search_properties(
        self, metric: Optional[str], mode: Optional[str]
    ) -> bool:
        """Set the metric and mode used to pick the best trial.

        Raises:
            InvalidConfig: If the reporter was created with its own metric
                or mode and ``run()`` passes one too.
        """
        if (self._metric and metric) or (self._mode and mode):
            raise InvalidConfig(
                f"Conflicting metric/mode: run() got metric={metric!r}, "
                f"mode={mode!r}, but the progress reporter was created with "
                f"metric={self._metric!r}, mode={self._mode!r}. Pass them "
                f"to only one of the two."
            )
        _check_mode(mode)
        if metric:
            self._metric = metric
        if mode:
            self._mode = mode
        if self._metric is None and self._mode:
            self._metric = DEFAULT_METRIC
        return True

    def set_total_samples(self, total_samples: Optional[int]) -> None:
        self._total_samples = total_samples

    def set_start_time(self, timestamp: Optional[float] = None) -> None:
        self._start_time = time.time() if timestamp is None else timestamp

    # -- reporting -----------------------------------------------------

    def should_report(self, trials: List[Any], done: bool = False) -> bool:
        """Return True at most every ``max_report_frequency`` s, or if done.
        """
        now = time.monotonic()
        if (
            self._last_report_time is None
            or now - self._last_report_time > self._max_report_frequency
        ):
            self._last_report_time = now
            return True
        return done

    def report(self, trials: List[Any], done: bool, *sys_info: Any) -> None:
        """Write the status report of ``trials`` to :attr:`stream`."""
        stream = self.stream if self.stream is not None else sys.stdout
        stream.write(self.progress_str(trials, done, *sys_info) + "\n")
        stream.flush()

    def progress_str(
        self, trials: List[Any], done: bool, *sys_info: Any
    ) -> str:
        """Return the report text that :meth:`report` writes."""
        trials = list(trials)
        if not self._metrics_override:
            self._infer_metrics(trials)
        now = time.time()
        current = datetime.datetime.fromtimestamp(now)
        lines = [
            "== Status ==",
            f"Current time: {current:%Y-%m-%d %H:%M:%S} (running for "
            f"{_format_duration(now - self._start_time)})",
        ]
        lines.extend(str(info) for info in sys_info)

        best_trial, metric = self._current_best_trial(trials)
        if best_trial is not None:
            lines.append(self._best_trial_str(best_trial, metric))

        local_dirs = sorted({
            str(trial.local_dir) for trial in trials
            if getattr(trial, "local_dir", None)
        })
        lines.extend(f"Result logdir: {path}" for path in local_dirs)

        if trials:
            lines.append(self._count_str(trials))
            if self._print_intermediate_tables or done:
                lines.extend(self._trial_table(trials, done))
            lines.extend(self._error_table(trials, done))
        return "\n".join(lines)

    def _count_str(self, trials: List[Any]) -> str:
        counts = collections.Counter(trial.status for trial in trials)
        by_status = ", ".join(
            f"{counts[status]} {status}" for status in sorted(counts)
        )
        total = ""
        if self._total_samples:
            if self._total_samples >= sys.maxsize:
                total = "/infinite"
            else:
                total = f"/{self._total_samples}"
        return f"Number of trials: {len(trials)}{total} ({by_status})"

    def _infer_metrics(self, trials: List[Any]) -> None:
        if len(self._inferred_metrics) >= self._infer_limit:
            return
        for trial in trials:
            result = trial.last_result or {}
            for key, value in flatten_dict(result).items():
                if len(self._inferred_metrics) >= self._infer_limit:
                    return
                if (
                    key in self._metric_columns
                    or key.split("/", 1)[0] in AUTO_RESULT_KEYS
                    or key in self._inferred_metrics
                ):
                    continue
                if _is_metric_value(value):
                    self._inferred_metrics[key] = key

    def _all_metric_columns(self) -> List[Tuple[str, str]]:
        columns = _column_items(self._metric_columns)
        if not self._metrics_override:
            columns += list(self._inferred_metrics.items())
        return columns

    def _resolve_metric(self) -> Optional[str]:
        """Return the metric for the best trial, or None if unknown."""
        if self._metric:
            return self._metric
        if len(self._inferred_metrics) == 1:
            # Only one user metric was reported: use it, as Ray Tune does.
            return next(iter(self._inferred_metrics))
        return None

    def _current_best_trial(
        self, trials: List[Any]
    ) -> Tuple[Optional[Any], Optional[str]]:
        metric = self._resolve_metric()
        if not metric or not self._mode:
            return None, metric
        best_trial = None
        best_value = -math.inf
        sign = 1.0 if self._mode == "max" else -1.0
        for trial in trials:
            value = _metric_value(trial, metric)
            if value is None:
                continue
            if best_trial is None or value * sign > best_value:
                best_trial = trial
                best_value = value * sign
        return best_trial, metric

    def _best_trial_str(self, trial: Any, metric: str) -> str:
        value = unflattened_lookup(metric, trial.last_result, default=None)
        config = trial.config or {}
        keys = [key for key, _ in _column_items(self._parameter_columns)]
        if not keys:
            keys = list(config)
        parameters = {
            key: unflattened_lookup(key, config, default=None) for key in keys
        }
        return (
            f"Current best trial: {trial.trial_id} with {metric}={value} "
            f"and parameters={parameters}"
        )

    def _parameter_keys(self, trials: List[Any]) -> List[Tuple[str, str]]:
        if self._parameter_columns:
            return _column_items(self._parameter_columns)
        keys: Dict[str, None] = {}
        for trial in trials:
            evaluated = getattr(trial, "evaluated_params", None)
            if isinstance(evaluated, Mapping):
                names: Iterable[str] = evaluated
            else:
                flat_config = flatten_dict(trial.config or {})
                names = [
                    key for key, value in flat_config.items()
                    if value is None
                    or isinstance(value, (str, numbers.Real))
                ]
            for name in names:
                keys.setdefault(name, None)
        return [(key, key) for key in sorted(keys)]

    def _order_trials(self, trials: List[Any]) -> Dict[str, List[Any]]:
        by_status: Dict[str, List[Any]] = collections.defaultdict(list)
        for trial in trials:
            by_status[trial.status].append(trial)
        metric = self._resolve_metric()
        if self._sort_by_metric and metric and self._mode:
            by_status["TERMINATED"] = _sort_by_metric(
                by_status.get("TERMINATED", []), metric, self._mode
            )
        ordered = collections.OrderedDict()
        for status in _STATUS_ORDER:
            if by_status.get(status):
                ordered[status] = by_status[status]
        for status in sorted(by_status):
            if status not in ordered and by_status[status]:
                ordered[status] = by_status[status]
        return ordered

    def _trial_table(self, trials: List[Any], done: bool) -> List[str]:
        ordered = self._order_trials(trials)
        max_rows = None if done else self._max_progress_rows
        shown = _fair_share(ordered, max_rows)

        rows_trials = [t for status in ordered for t in shown[status]]
        metric_columns = [
            (key, title) for key, title in self._all_metric_columns()
            if any(
                unflattened_lookup(key, t.last_result or {}, default=None)
                is not None
                for t in rows_trials
            )
        ]
        parameter_columns = self._parameter_keys(rows_trials)

        headers = (
            ["Trial name", "status"]
            + [title for _, title in parameter_columns]
            + [title for _, title in metric_columns]
        )
        rows = []
        for trial in rows_trials:
            config = trial.config or {}
            result = trial.last_result or {}
            rows.append(
                [str(trial), trial.status]
                + [
                    unflattened_lookup(key, config, default=None)
                    for key, _ in parameter_columns
                ]
                + [
                    unflattened_lookup(key, result, default=None)
                    for key, _ in metric_columns
                ]
            )
        lines = [format_table(headers, rows)]

        hidden = {
            status: len(ordered[status]) - len(shown[status])
            for status in ordered
        }
        total_hidden = sum(hidden.values())
        if total_hidden:
            details = ", ".join(
                f"{count} {status}" for status, count in hidden.items()
                if count
            )
            lines.append(
                f"... {total_hidden} more trials not shown ({details})"
            )
        return lines

    def _error_table(self, trials: List[Any], done: bool) -> List[str]:
        failed = [t for t in trials if getattr(t, "error_file", None)]
        if not failed:
            return []
        lines = [f"Number of errored trials: {len(failed)}"]
        max_rows = None if done else self._max_error_rows
        if max_rows is not None and len(failed) > max_rows:
            lines.append(
                f"Table truncated to {max_rows} rows "
                f"({len(failed) - max_rows} overflow)"
            )
            failed = failed[:max_rows]
        rows = [
            [str(t), getattr(t, "num_failures", 0), t.error_file]
            for t in failed
        ]
        lines.append(
            format_table(["Trial name", "# failures", "error file"], rows)
        )
        return lines


class JupyterNotebookReporter(CLIReporter):
    """Alias of :class:`CLIReporter`, for code written for Ray Tune.

    Ray Tune's notebook reporter renders HTML and can overwrite its last
    output. This one prints the same plain text as :class:`CLIReporter`.
    It accepts ``overwrite`` as its first argument, as Ray Tune's does,
    and ignores it.
    """

    def __init__(self, overwrite: bool = False, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._overwrite = overwrite


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _metric_value(trial: Any, metric: str) -> Optional[float]:
    """Return the trial's last metric value if it is a comparable number."""
    value = unflattened_lookup(metric, trial.last_result or {}, default=None)
    if not _is_numeric_cell(value) or math.isnan(value):
        return None
    return value


def _sort_by_metric(trials: List[Any], metric: str, mode: str) -> List[Any]:
    """Sort trials best first. Trials without a value go last."""
    with_value = []
    without_value = []
    for trial in trials:
        value = _metric_value(trial, metric)
        if value is None:
            without_value.append(trial)
        else:
            with_value.append((value, trial))
    with_value.sort(key=lambda item: item[0], reverse=(mode == "max"))
    return [trial for _, trial in with_value] + without_value


def _fair_share(
    ordered: Dict[str, List[Any]], max_rows: Optional[int]
) -> Dict[str, List[Any]]:
    """Pick at most max_rows trials, shared round-robin between statuses.

    Within a status the first trials in the list are kept (for terminated
    trials sorted by metric, the best ones).
    """
    if max_rows is None or sum(map(len, ordered.values())) <= max_rows:
        return {status: list(group) for status, group in ordered.items()}
    quota = {status: 0 for status in ordered}
    remaining = max_rows
    while remaining > 0:
        progressed = False
        for status, group in ordered.items():
            if remaining > 0 and quota[status] < len(group):
                quota[status] += 1
                remaining -= 1
                progressed = True
        if not progressed:
            break
    return {
        status: group[: quota[status]] for status, group in ordered.items()
    }


def _copy_columns(columns: ColumnSpec) -> ColumnSpec:
    if isinstance(columns, Mapping):
        return collections.OrderedDict(columns)
    return list(columns)


def _column_items(columns: ColumnSpec) -> List[Tuple[str, str]]:
    if isinstance(columns, Mapping):
        return [(key, str(title)) for key, title in columns.items()]
    return [(key, key) for key in columns]


def _add_column(
    columns: ColumnSpec,
    kind: str,
    key: str,
    representation: Optional[str],
) -> None:
    if key in columns:
        raise InvalidConfig(
            f"Invalid {kind} column {key!r}: the column already exists."
        )
    if isinstance(columns, dict):
        columns[key] = representation or key
        return
    if representation is not None and representation != key:
        raise InvalidConfig(
            f"Invalid representation {representation!r} for {kind} column "
            f"{key!r}: the {kind} columns were given as a list, which has "
            f"no titles. Give the columns as a dict to use titles."
        )
    columns.append(key)


def _check_columns(name: str, columns: Any) -> None:
    if columns is None:
        return
    if isinstance(columns, Mapping):
        keys = list(columns)
    elif isinstance(columns, (list, tuple)):
        keys = list(columns)
    else:
        raise InvalidConfig(
            f"Invalid {name} {columns!r} (type {type(columns).__name__}): "
            f"expected a list of keys or a dict from key to column title."
        )
    for key in keys:
        if not isinstance(key, str):
            raise InvalidConfig(
                f"Invalid key {key!r} in {name}: keys must be str (nested "
                f"keys as 'a/b')."
            )


def _check_count(name: str, value: Any, minimum: int) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < minimum
    ):
        raise InvalidConfig(
            f"Invalid {name} {value!r}: expected an int >= {minimum}."
        )


def _check_mode(mode: Any) -> None:
    if mode not in (None, "min", "max"):
        raise InvalidConfig(
            f"Invalid mode {mode!r}: expected 'min', 'max' or None."
        )
