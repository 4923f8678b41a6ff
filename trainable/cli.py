"""The ``trainable`` command: list and query experiments on disk.

::

    trainable list-trials EXPERIMENT_DIR [--columns A,B] [--sort KEYS]
        [--desc] [--filter "COLUMN OP VALUE"] [--limit N] [--output FILE]
    trainable list-experiments PROJECT_DIR [same options]
    trainable best EXPERIMENT_DIR --metric M --mode {max,min} [--scope S]
        [--json]

The two listing commands mirror Ray Tune's ``tune list-trials`` and
``tune list-experiments``, and accept its short names ``ls`` and ``lsx``.
``EXPERIMENT_DIR`` is ``<local_dir>/<name>`` of a ``run()``;
``PROJECT_DIR`` is a ``local_dir`` holding such directories.

A column is a trial field (see :data:`TRIAL_FIELDS`), a result key of the
trial's last result (nested keys joined with ``/``, as in
``progress.csv``), or ``config/<key>`` for a config value. A name that no
result has is also looked up in the config. ``--filter`` compares a column
with a number or a text (``"loss < 0.5"``, ``"status == ERROR"``); a trial
without the column never passes an ordering comparison.

Exit status: 0 on success; 1 when ``best`` finds no trial with a finite
value of the metric; 2 for bad input (invalid arguments, a missing
directory, a directory that contains no experiment, an unknown column, an
invalid filter, an unreadable state file, an output file that cannot be
written).
"""

import argparse
import csv
import datetime
import io
import logging
import math
import numbers
import operator
import os
import re
import sys
from typing import (
    Any, Callable, Dict, Iterable, List, Optional, Sequence, TextIO, Tuple,
)

from trainable.analysis import SCOPES, ExperimentAnalysis
from trainable.errors import InvalidConfig, TuneError
from trainable.experiment import STATE_FILE, find_state_file, load_state_file
from trainable.reporter import AUTO_RESULT_KEYS, format_table
from trainable.results import encode_json, flatten_dict, unflattened_lookup
from trainable.trial import Trial

logger = logging.getLogger(__name__)

PROG = "trainable"

_MISSING = object()


def _format_time(timestamp: Any) -> Optional[str]:
    if not isinstance(timestamp, (int, float)) or isinstance(
            timestamp, bool) or not math.isfinite(timestamp):
        return None
    moment = datetime.datetime.fromtimestamp(timestamp)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


TRIAL_FIELDS: Dict[str, Callable[[Trial], Any]] = {
    "trial_id": lambda trial: trial.trial_id,
    "trial_name": str,
    "status": lambda trial: trial.status,
    "logdir": lambda trial: (os.path.basename(trial.logdir)
                             if trial.logdir else None),
    "trainable_name": lambda trial: trial.trainable_name,
    "experiment_tag": lambda trial: trial.experiment_tag,
    "num_failures": lambda trial: trial.num_failures,
    "error_file": lambda trial: trial.error_file,
    "last_update": lambda trial: _format_time(
        trial.last_result.get("timestamp")),
}
"""Columns of ``list-trials`` that come from the trial, not its results.
``logdir`` is the trial directory's name; ``last_update`` is the time of
its last result."""

_DEFAULT_TRIAL_COLUMNS = ("trial_id", "status", "logdir",
                          "training_iteration", "time_total_s")

_STATUSES = (Trial.PENDING, Trial.RUNNING, Trial.PAUSED, Trial.TERMINATED,
             Trial.ERROR)

EXPERIMENT_COLUMNS = ("name", "trials", "statuses", "last_update") + tuple(
    status.lower() for status in _STATUSES)
"""Columns of ``list-experiments``. ``statuses`` summarizes the trial
statuses; ``pending`` to ``error`` count the trials with each status."""

_DEFAULT_EXPERIMENT_COLUMNS = ("name", "trials", "statuses", "last_update")

_OPERATORS: Dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "=": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    ">": operator.gt,
}
_FILTER_PATTERN = re.compile(r"^\s*(\S+)\s*(<=|>=|==|!=|<|>|=)\s*(.*?)\s*$")


# ---------------------------------------------------------------- loading


def _experiment_dirs(project_dir: str) -> List[str]:
    try:
        names = sorted(os.listdir(project_dir))
    except OSError:
        return []
    return [os.path.join(project_dir, name) for name in names
            if find_state_file(os.path.join(project_dir, name))]


def _check_directory(argument: str, role: str) -> str:
    path = os.path.abspath(os.path.expanduser(argument))
    if not os.path.exists(path):
        raise InvalidConfig(f"{role} {argument!r} does not exist.")
    return path


def load_experiment(argument: str) -> ExperimentAnalysis:
    """Load the trials of an experiment directory for the commands.

    Args:
        argument: ``<local_dir>/<name>`` or its ``experiment_state.json``.

    Raises:
        InvalidConfig: the path is missing or contains no experiment.
        TuneError: the state file is unreadable or a trial in it cannot be
            decoded.
    """
    path = _check_directory(argument, "EXPERIMENT_DIR")
    if os.path.isdir(path) and find_state_file(path) is None:
        inside = [os.path.basename(p) for p in _experiment_dirs(path)]
        if inside:
            listed = ", ".join(inside[:5])
            if len(inside) > 5:
                listed += ", ..."
            hint = (f" It contains the experiments {listed}: pass one of "
                    f"them, or run '{PROG} list-experiments {argument}'.")
        else:
            hint = " Pass the directory <local_dir>/<name> that run() wrote."
        raise InvalidConfig(
            f"{argument!r} is not an experiment directory: it has no "
            f"experiment_state.json.{hint}")
    try:
        return ExperimentAnalysis(path)
    except TuneError:
        raise
    except Exception as exc:
        # Configs and results are cloudpickled in the state file, so
        # decoding them can raise whatever the pickled objects raise.
        raise TuneError(
            f"The trials in {argument!r} cannot be decoded "
            f"({type(exc).__name__}: {exc}). If a config contains objects "
            f"from your own modules, run the command where those modules "
            f"are importable (for example with PYTHONPATH set).") from None


# ---------------------------------------------------------------- rows


class _Records:
    """The rows a listing command can show, and how to read their cells.

    Args:
        records: one object per row.
        lookup: returns a record's value in a column, or ``_MISSING``.
        fixed_columns: columns every record has, even with no records.
        column_hint: the sentence of an unknown-column error that says
            which columns exist.
    """

    def __init__(self, records: List[Any],
                 lookup: Callable[[Any, str], Any],
                 fixed_columns: Iterable[str], column_hint: str):
        self.records = records
        self.lookup = lookup
        self.fixed_columns = tuple(fixed_columns)
        self.column_hint = column_hint

    def is_known(self, column: str) -> bool:
        return column in self.fixed_columns or any(
            self.lookup(record, column) is not _MISSING
            for record in self.records)

    def check_columns(self, columns: Sequence[str], option: str) -> None:
        unknown = [c for c in columns if not self.is_known(c)]
        if unknown and self.records:
            raise InvalidConfig(
                f"{option} names the unknown column {unknown[0]!r}: no row "
                f"has it. {self.column_hint}")

    def has_values(self, column: str) -> bool:
        for record in self.records:
            value = self.lookup(record, column)
            if value is not _MISSING and value is not None:
                return True
        return False


def _trial_lookup(trial: Trial, column: str) -> Any:
    field = TRIAL_FIELDS.get(column)
    if field is not None:
        return field(trial)
    if column.startswith("config/"):
        return unflattened_lookup(column[len("config/"):], trial.config,
                                  default=_MISSING)
    value = unflattened_lookup(column, trial.last_result, default=_MISSING)
    if value is _MISSING:
        value = unflattened_lookup(column, trial.config, default=_MISSING)
    return value


def _default_trial_columns(trials: List[Trial]) -> List[str]:
    metrics: List[str] = []
    params: List[str] = []
    for trial in trials:
        for key, value in flatten_dict(trial.last_result).items():
            if (key not in AUTO_RESULT_KEYS and not key.startswith("config/")
                    and isinstance(value, numbers.Real)
                    and not isinstance(value, bool) and key not in metrics):
                metrics.append(key)
        for key in flatten_dict(trial.config):
            if f"config/{key}" not in params:
                params.append(f"config/{key}")
    return list(_DEFAULT_TRIAL_COLUMNS) + sorted(metrics) + sorted(params)


def _experiment_record(path: str) -> Dict[str, Any]:
    record: Dict[str, Any] = {"name": os.path.basename(path)}
    state_file = os.path.join(path, STATE_FILE)
    try:
        state = load_state_file(state_file)
    except TuneError as exc:
        sys.stderr.write(f"{PROG} list-experiments: warning: {exc}\n")
        record.update(trials=None, statuses="unreadable", last_update=None)
        return record
    counts = {status: 0 for status in _STATUSES}
    for entry in state.get("trials", []):
        status = entry.get("status")
        counts[status] = counts.get(status, 0) + 1
    record["trials"] = sum(counts.values())
    record["statuses"] = ", ".join(
        f"{count} {status}" for status, count in counts.items() if count)
    timestamp = state.get("timestamp")
    if timestamp is None:
        timestamp = os.path.getmtime(state_file)
    record["last_update"] = _format_time(timestamp)
    for status in _STATUSES:
        record[status.lower()] = counts[status]
    return record


# --------------------------------------------------------- select and sort


class _Filter:
    """One ``--filter``: a column, an operator and the value to compare."""

    def __init__(self, text: str):
        match = _FILTER_PATTERN.match(text)
        if match is None or not match.group(3):
            raise InvalidConfig(
                f"--filter {text!r} is invalid: use 'COLUMN OP VALUE' with "
                f"OP one of <, <=, ==, !=, >=, >, for example "
                f"'loss < 0.5'.")
        self.column, self.op, self.raw = match.groups()
        self.target = _filter_value(self.raw)

    def passes(self, value: Any) -> bool:
        """Return whether a cell value passes the filter."""
        target = self.target
        if value is _MISSING:
            value = None
        compare = _OPERATORS[self.op]
        if self.op in ("==", "=", "!="):
            if value is None or target is None:
                return compare(value, target)
            if _is_number(value) and _is_number(target):
                return compare(value, target)
            if isinstance(value, str) and isinstance(target, str):
                return compare(value, target)
            # Mixed types, lists and dicts: compare the text forms.
            return compare(str(value), self.raw)
        if value is None or target is None:
            return False
        if _is_number(value) and _is_number(target):
            return compare(value, target)
        if isinstance(value, str) and isinstance(target, str):
            return compare(value, target)
        return False


def _filter_value(raw: str) -> Any:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            pass
    return raw


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real)


def _sort_key(value: Any) -> Tuple[int, Any]:
    if _is_number(value):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    return (1, str(value))


def _is_blank(value: Any) -> bool:
    return value is _MISSING or value is None or (
        isinstance(value, float) and math.isnan(value))


def _select(table: _Records, columns: List[str], sort_keys: List[str],
            descending: bool, filters: List[_Filter],
            limit: Optional[int]) -> List[List[Any]]:
    rows = [record for record in table.records
            if all(f.passes(table.lookup(record, f.column))
                   for f in filters)]
    # One stable sort per key, last key first. Blank cells go last in
    # either direction.
    for key in reversed(sort_keys):
        present = [r for r in rows if not _is_blank(table.lookup(r, key))]
        blank = [r for r in rows if _is_blank(table.lookup(r, key))]
        present.sort(key=lambda r: _sort_key(table.lookup(r, key)),
                     reverse=descending)
        rows = present + blank
    if limit is not None:
        rows = rows[:limit]
    cells = []
    for record in rows:
        values = [table.lookup(record, column) for column in columns]
        cells.append([None if v is _MISSING else v for v in values])
    return cells


# ---------------------------------------------------------------- output


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return encode_json(value)
    return value


def _write_rows(columns: List[str], rows: List[List[Any]],
                output: Optional[str], out: TextIO) -> None:
    if output is None:
        out.write(format_table(columns, rows) + "\n")
        return
    if output.lower().endswith(".csv"):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_csv_cell(v) for v in row] for row in rows])
        text = buffer.getvalue()
    else:
        text = format_table(columns, rows) + "\n"
    try:
        with open(output, "w", newline="", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise InvalidConfig(
            f"--output {output!r} cannot be written ({exc.strerror}). Pass "
            f"a path in an existing, writable directory.") from None
    out.write(f"Wrote {len(rows)} rows to {output}\n")


def _split_columns(text: Optional[str]) -> List[str]:
    if text is None:
        return []
    return [part.strip() for part in text.split(",") if part.strip()]


def _list(table: _Records, default_columns: List[str],
          options: argparse.Namespace, out: TextIO) -> int:
    filters = [_Filter(text) for text in options.filter or []]
    sort_keys = _split_columns(options.sort)
    columns = _split_columns(options.columns)
    table.check_columns(columns, "--columns")
    table.check_columns(sort_keys, "--sort")
    table.check_columns([f.column for f in filters], "--filter")
    if not columns:
        columns = [c for c in default_columns
                   if c in table.fixed_columns or table.has_values(c)]
    rows = _select(table, columns, sort_keys, options.desc, filters,
                   options.limit)
    _write_rows(columns, rows, options.output, out)
    return 0


# ---------------------------------------------------------------- commands


def _list_trials(options: argparse.Namespace, out: TextIO) -> int:
    analysis = load_experiment(options.experiment_dir)
    table = _Records(
        analysis.trials, _trial_lookup, TRIAL_FIELDS,
        f"Use a trial field ({', '.join(TRIAL_FIELDS)}), a result key "
        f"such as loss or info/steps, or config/<key>.")
    return _list(table, _default_trial_columns(analysis.trials), options,
                 out)


def _list_experiments(options: argparse.Namespace, out: TextIO) -> int:
    argument = options.project_dir
    path = _check_directory(argument, "PROJECT_DIR")
    experiments = _experiment_dirs(path)
    if not experiments:
        if find_state_file(path):
            raise InvalidConfig(
                f"{argument!r} is an experiment directory, not a project "
                f"directory; run '{PROG} list-trials {argument}' to list "
                f"its trials.")
        raise InvalidConfig(
            f"{argument!r} contains no experiment directories (none of its "
            f"subdirectories has an experiment_state.json). Pass the "
            f"local_dir given to run().")
    records = [_experiment_record(p) for p in experiments]
    table = _Records(
        records, lambda record, column: record.get(column, _MISSING),
        EXPERIMENT_COLUMNS,
        f"Use one of {', '.join(EXPERIMENT_COLUMNS)}.")
    return _list(table, list(_DEFAULT_EXPERIMENT_COLUMNS), options, out)


def _best(options: argparse.Namespace, out: TextIO) -> int:
    analysis = load_experiment(options.experiment_dir)
    trial = analysis.get_best_trial(options.metric, options.mode,
                                    options.scope)
    if trial is None:
        if analysis.trials:
            reason = f"no trial has a finite value of {options.metric!r}"
        else:
            reason = "the experiment has no trials"
        sys.stderr.write(
            f"{PROG} best: no best trial in {options.experiment_dir!r}: "
            f"{reason}.\n")
        return 1
    checkpoint = analysis.get_best_checkpoint(trial, options.metric,
                                              options.mode)
    value = unflattened_lookup(options.metric, trial.last_result,
                               default=None)
    if options.json:
        out.write(encode_json({
            "trial_id": trial.trial_id,
            "trial_name": str(trial),
            "status": trial.status,
            "logdir": trial.logdir,
            "metric": options.metric,
            "mode": options.mode,
            "scope": options.scope,
            "last_value": value,
            "config": trial.config,
            "best_checkpoint": checkpoint,
        }, indent=2, sort_keys=True) + "\n")
        return 0
    config = encode_json(trial.config, indent=2, sort_keys=True)
    out.write(
        f"Best trial: {trial} ({trial.status}), by {options.metric} "
        f"({options.mode}, scope {options.scope})\n"
        f"Directory: {trial.logdir}\n"
        f"Last {options.metric}: {value}\n"
        f"Config: {config}\n"
        f"Best checkpoint: {checkpoint or 'none'}\n")
    return 0


# ---------------------------------------------------------------- parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an integer >= 1")
    return value


def _add_listing_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--columns", metavar="A,B",
        help="comma-separated columns to show (default: ids, status, "
             "iterations, time, metrics and config values)")
    parser.add_argument(
        "--sort", metavar="KEYS",
        help="comma-separated columns to sort by, first key first; rows "
             "without a value go last")
    parser.add_argument("--desc", action="store_true",
                        help="sort in descending order")
    parser.add_argument(
        "--filter", action="append", metavar="'COLUMN OP VALUE'",
        help="keep only rows that pass, for example 'loss < 0.5'; OP is "
             "one of < <= == != >= >; repeat to combine with AND")
    parser.add_argument("--limit", type=_positive_int, metavar="N",
                        help="show at most N rows, after sorting")
    parser.add_argument(
        "--output", "-o", metavar="FILE",
        help="write the rows to FILE instead of printing them: CSV if FILE "
             "ends with .csv, otherwise the text table")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``trainable`` command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="List and query trainable experiments on disk.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    trials = commands.add_parser(
        "list-trials", aliases=["ls"],
        help="one row per trial of an experiment",
        description="List the trials of one experiment, one row each.")
    trials.add_argument("experiment_dir", metavar="EXPERIMENT_DIR",
                        help="the experiment directory <local_dir>/<name>")
    _add_listing_options(trials)
    trials.set_defaults(handler=_list_trials)

    experiments = commands.add_parser(
        "list-experiments", aliases=["lsx"],
        help="one row per experiment in a directory",
        description="List the experiments in a directory, one row each. "
                    f"Columns: {', '.join(EXPERIMENT_COLUMNS)}.")
    experiments.add_argument(
        "project_dir", metavar="PROJECT_DIR",
        help="a directory of experiment directories (a local_dir)")
    _add_listing_options(experiments)
    experiments.set_defaults(handler=_list_experiments)

    best = commands.add_parser(
        "best", help="the best trial of an experiment",
        description="Print the best trial of an experiment, its config "
                    "and its best checkpoint.")
    best.add_argument("experiment_dir", metavar="EXPERIMENT_DIR",
                      help="the experiment directory <local_dir>/<name>")
    best.add_argument("--metric", required=True,
                      help="the result key to rank trials by")
    best.add_argument("--mode", required=True, choices=("max", "min"),
                      help="whether larger or smaller values are better")
    best.add_argument(
        "--scope", default="last", choices=SCOPES,
        help="which results of a trial count: its last one (default), "
             "the average of all or of the last 5 or 10, or the best of "
             "all ('all')")
    best.add_argument("--json", action="store_true",
                      help="print one JSON object instead of text")
    best.set_defaults(handler=_best)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``trainable`` command.

    Args:
        argv: the arguments after the program name (default:
            ``sys.argv[1:]``).

    Returns:
        The exit status: 0, 1 or 2 (see the module docstring). Invalid
        arguments make argparse raise ``SystemExit(2)``, as usual.
    """
    parser = build_parser()
    options = parser.parse_args(argv)
    try:
        return options.handler(options, sys.stdout)
    except TuneError as exc:
        message = " ".join(str(exc).split())
        sys.stderr.write(f"{PROG} {options.command}: error: {message}\n")
        return 2
