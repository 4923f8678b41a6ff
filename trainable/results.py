"""Per-trial result files: ``result.json``, ``progress.csv`` and params.

Each trial directory contains the files Ray Tune writes for a trial:

``result.json``
    One JSON object per line, one line per reported result, in the order
    the results arrived. Values that JSON cannot encode are written as
    their ``str()`` (objects, sets, bytes); numpy-like scalars and arrays
    are converted with their ``item()`` or ``tolist()`` method first. NaN
    and infinite floats are written as ``null``, so that every line is
    strict JSON that any parser (``jq``, JavaScript, pandas) reads. Ray
    Tune writes them as the non-standard literal ``NaN``;
    :func:`read_results` accepts both forms.
``progress.csv``
    The same results, flattened with ``/`` (``{"info": {"loss": 1}}``
    becomes the column ``info/loss``), without the ``config`` entry (as in
    Ray Tune). The header is the keys of the first row. A key that first
    appears later is added by rewriting the file with the extended header,
    and older rows get an empty cell there. Lists are written as JSON
    text, other non-scalar values as their ``str()``, ``None`` as an empty
    cell, NaN as ``nan``, and booleans as ``True``/``False``. Lines end
    with CRLF, as the csv module and Ray Tune write them, so that a
    string value containing a line break is quoted and stays one cell. A
    result with no columns at all (``{}``) before the first header gets no
    row.
``params.json``, ``params.pkl``
    The trial config, as JSON (``str()`` fallback) and as a cloudpickle.

Writing never raises for a value it cannot represent: the trial must not
fail because a logger cannot encode one of its metrics.
"""

import csv
import io
import json
import logging
import math
import os
import time
from typing import Any, Dict, List, Optional, TextIO

import cloudpickle

from trainable.errors import InvalidConfig, SerializationError

logger = logging.getLogger(__name__)

RESULT_FILE = "result.json"
PROGRESS_FILE = "progress.csv"
PARAMS_FILE = "params.json"
PARAMS_PICKLE_FILE = "params.pkl"

TRAINING_ITERATION = "training_iteration"

_MISSING = object()

# Values that the csv module writes correctly without conversion. The type
# is compared exactly, so subclasses (for example enum members derived from
# int) take the slower path through _csv_cell.
_CSV_PLAIN_TYPES = frozenset({int, float, str, bool})


# ---------------------------------------------------------------------------
# Flattening and lookup of nested result keys
# ---------------------------------------------------------------------------


def flatten_dict(
    d: Dict[Any, Any],
    delimiter: str = "/",
    prevent_delimiter: bool = False,
) -> Dict[str, Any]:
    """Flatten nested dicts into one level, joining keys with a delimiter.

    ``{"info": {"loss": 1}, "lr": 0.1}`` becomes
    ``{"info/loss": 1, "lr": 0.1}``. Lists are kept as values. An empty
    nested dict produces no key, as in Ray Tune's ``flatten_dict``. Keys
    that are not strings are converted with ``str()``.

    Args:
        d: The dict to flatten. It is not modified.
        delimiter: The string placed between the keys of nested levels.
        prevent_delimiter: If True, a key that already contains the
            delimiter raises, because it could not be distinguished from a
            nested key after flattening.

    Returns:
        A new dict with no dict values left.

    Raises:
        InvalidConfig: If ``prevent_delimiter`` is True and a key contains
            the delimiter.
    """
    flat: Dict[str, Any] = {}
    _flatten_into(flat, "", d, delimiter, prevent_delimiter)
    return flat


def _flatten_into(
    out: Dict[str, Any],
    prefix: str,
    d: Dict[Any, Any],
    delimiter: str,
    prevent_delimiter: bool,
) -> None:
    for key, value in d.items():
        if type(key) is not str:
            key = str(key)
        if prevent_delimiter and delimiter in key:
            raise InvalidConfig(
                f"Invalid key {key!r}: it contains the delimiter "
                f"{delimiter!r}, so it would be ambiguous after flattening. "
                f"Rename the key or nest it as a dict instead."
            )
        if isinstance(value, dict):
            _flatten_into(
                out, prefix + key + delimiter, value, delimiter,
                prevent_delimiter,
            )
        else:
            out[prefix + key] = value


def unflattened_lookup(
    flat_key: str,
    lookup: Dict[str, Any],
    delimiter: str = "/",
    default: Any = _MISSING,
) -> Any:
    """Look up a flattened key such as ``"info/loss"`` in a nested dict.

    A key present literally (``lookup["info/loss"]``) wins. Otherwise the
    key is split at the delimiter and the nested dicts are walked. If that
    fails too, the dict is flattened and searched, which finds keys whose
    nested parts contain the delimiter themselves.

    Args:
        flat_key: The key, with nested levels joined by the delimiter.
        lookup: The (possibly nested) dict to search.
        delimiter: The string that separates nested levels in the key.
        default: The value to return when the key is missing. Without it a
            missing key raises KeyError.

    Returns:
        The value found, or ``default``.

    Raises:
        KeyError: If the key is missing and no default was given.
    """
    if flat_key in lookup:
        return lookup[flat_key]
    if delimiter in flat_key:
        node: Any = lookup
        for part in flat_key.split(delimiter):
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                node = _MISSING
                break
        if node is _MISSING:
            node = flatten_dict(lookup, delimiter).get(flat_key, _MISSING)
        if node is not _MISSING:
            return node
    if default is _MISSING:
        raise KeyError(flat_key)
    return default


# ---------------------------------------------------------------------------
# Encoding values for JSON and CSV
# ---------------------------------------------------------------------------


def _json_fallback(value: Any) -> Any:
    """Convert a value that ``json`` cannot encode (the ``default`` hook)."""
    # numpy scalars and 0-d arrays have item(), arrays have tolist(). They
    # are converted by duck typing so that numpy is never imported here.
    for method_name in ("item", "tolist"):
        method = getattr(value, method_name, None)
        if callable(method) and not isinstance(value, type):
            try:
                converted = method()
            except Exception:  # noqa: BLE001 - any failure means "no"
                continue
            if converted is not value:
                return converted
    return _safe_str(value)


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not escape
        return object.__repr__(value)


def _to_plain_json(value: Any, active_ids: set) -> Any:
    """Return ``value`` as plain JSON types, with NaN/inf turned into None.

    ``active_ids`` contains the ids of the containers on the current path, so
    that a container that contains itself is written as a string instead
    of recursing forever.
    """
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, (dict, list, tuple)):
        if id(value) in active_ids:
            return "<circular reference>"
        active_ids.add(id(value))
        try:
            if isinstance(value, dict):
                return {
                    _json_key(key): _to_plain_json(item, active_ids)
                    for key, item in value.items()
                }
            return [_to_plain_json(item, active_ids) for item in value]
        finally:
            active_ids.discard(id(value))
    converted = _json_fallback(value)
    if converted is None or isinstance(
        converted, (str, bool, int, float, dict, list, tuple)
    ):
        return _to_plain_json(converted, active_ids)
    return _safe_str(converted)


def _json_key(key: Any) -> str:
    if type(key) is str:
        return key
    if isinstance(key, float) and not math.isfinite(key):
        return str(key)
    if key is None or isinstance(key, (int, float, bool)):
        # The same text that json.dumps produces for these key types.
        return json.dumps(key)
    return _safe_str(key)


# One encoder for the hot path: json.dumps with keyword arguments builds a
# new JSONEncoder on every call.
_JSON_ENCODER = json.JSONEncoder(default=_json_fallback, allow_nan=False)


def encode_json(value: Any, **dumps_kwargs: Any) -> str:
    """Encode a value as strict JSON text, never raising.

    The common case (plain numbers, strings, lists and dicts) takes one
    encoder call. Only if that fails, because of NaN/inf, keys that are
    not strings, or a circular reference, is the value converted to plain
    JSON types first (NaN/inf become ``null``).

    Args:
        value: The value to encode.
        **dumps_kwargs: Passed to ``json.dumps`` (for example ``indent``).

    Returns:
        The JSON text.
    """
    try:
        if not dumps_kwargs:
            return _JSON_ENCODER.encode(value)
        return json.dumps(
            value, default=_json_fallback, allow_nan=False, **dumps_kwargs
        )
    except (TypeError, ValueError, RecursionError):
        pass
    try:
        plain = _to_plain_json(value, set())
    except RecursionError:
        # Nesting deeper than the interpreter's recursion limit.
        return json.dumps(_safe_str(value))
    # After the conversion every dict key is a str and every float finite.
    return json.dumps(plain, allow_nan=False, **dumps_kwargs)


def _csv_cell(value: Any) -> Any:
    """Convert a result value to what the CSV cell shows."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return encode_json(value)
    if isinstance(value, (int, float, str)):
        # bool is an int subclass, so it stays True/False here.
        return value
    converted = _json_fallback(value)
    if isinstance(converted, (list, tuple)):
        return encode_json(converted)
    if isinstance(converted, (int, float, str)):
        return converted
    return _safe_str(value)


# ---------------------------------------------------------------------------
# File helpers
# ---------------------------------------------------------------------------


def _atomic_write_text(path: str, text: str) -> None:
    """Write a text file through a temporary file and ``os.replace``."""
    _atomic_write_bytes(path, text.encode("utf-8"))


def _atomic_write_bytes(path: str, data: bytes) -> None:
    # One process writes each trial's files, so a fixed temporary name is
    # enough; tempfile.mkstemp costs more than the write for small files.
    directory, name = os.path.split(path)
    tmp_path = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    try:
        with open(tmp_path, "wb") as tmp_file:
            tmp_file.write(data)
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except OSError:
            pass
        raise


def _drop_partial_last_line(path: str) -> None:
    """Cut a file back to its last newline.

    A process killed in the middle of a write leaves a partial last line.
    Appending after it would glue the next line onto it and corrupt both,
    so the partial line is removed before the file is opened for append.
    """
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        return
    if size == 0:
        return
    with open(path, "rb+") as file:
        file.seek(size - 1)
        if file.read(1) == b"\n":
            return
        # Search backwards in blocks for the last newline.
        block_size = 65536
        end = size
        keep = 0
        while end > 0:
            start = max(0, end - block_size)
            file.seek(start)
            block = file.read(end - start)
            newline_at = block.rfind(b"\n")
            if newline_at >= 0:
                keep = start + newline_at + 1
                break
            end = start
        file.truncate(keep)
    logger.warning(
        "Removed a partial last line from %s (%d bytes), left by an "
        "interrupted write.", path, size - keep,
    )


def _read_csv_header(path: str) -> Optional[List[str]]:
    """Return the header of an existing CSV file, or None if it has none."""
    try:
        with open(path, "r", newline="", encoding="utf-8") as file:
            header = next(csv.reader(file), None)
    except FileNotFoundError:
        return None
    return header or None


# ---------------------------------------------------------------------------
# ResultWriter
# ---------------------------------------------------------------------------


class ResultWriter:
    """Appends results to one trial's ``result.json`` and ``progress.csv``.

    Writes are buffered in the file objects. They reach the files when
    :meth:`flush` or :meth:`close` is called, or automatically on the first
    :meth:`write` after ``flush_interval_s`` seconds have passed since the
    last flush. Call :meth:`flush` before recording a checkpoint as the
    trial's latest, so that a resume from it finds every earlier result.
    A flush hands the data to the operating system but does not ``fsync``,
    so it survives a killed process, not a power loss.

    Files are opened lazily, in append mode, so a resumed trial continues
    its existing files. An existing ``progress.csv`` keeps its header, and
    a partial last line left by a killed process is removed first.

    The format of both files is described in the module docstring.

    Args:
        logdir: The trial directory. It is created if missing.
        flush_interval_s: Seconds between automatic flushes. 0 flushes on
            every write.
    """

    def __init__(self, logdir: str, flush_interval_s: float = 5.0):
        if not isinstance(logdir, (str, os.PathLike)):
            raise InvalidConfig(
                f"Invalid logdir {logdir!r} (type {type(logdir).__name__}): "
                f"expected a directory path as str or os.PathLike."
            )
        if (
            isinstance(flush_interval_s, bool)
            or not isinstance(flush_interval_s, (int, float))
            or not flush_interval_s >= 0
        ):
            raise InvalidConfig(
                f"Invalid flush_interval_s {flush_interval_s!r}: expected "
                f"a number of seconds >= 0."
            )
        self.logdir = os.fspath(logdir)
        self.flush_interval_s = float(flush_interval_s)
        self.result_path = os.path.join(self.logdir, RESULT_FILE)
        self.progress_path = os.path.join(self.logdir, PROGRESS_FILE)

        self._json_file: Optional[TextIO] = None
        self._csv_file: Optional[TextIO] = None
        self._csv_writer: Any = None
        self._csv_fields: List[str] = []
        self._csv_field_set: set = set()
        self._last_flush = time.monotonic()

    # -- opening -----------------------------------------------------------

    def _open_json(self) -> TextIO:
        os.makedirs(self.logdir, exist_ok=True)
        _drop_partial_last_line(self.result_path)
        self._json_file = open(
            self.result_path, "a", encoding="utf-8", buffering=1 << 16
        )
        return self._json_file

    def _open_csv(self) -> None:
        os.makedirs(self.logdir, exist_ok=True)
        _drop_partial_last_line(self.progress_path)
        header = _read_csv_header(self.progress_path)
        if header is None and os.path.exists(self.progress_path):
            # The file is empty or contains only a blank line, so start over.
            open(self.progress_path, "w").close()
        self._csv_file = open(
            self.progress_path, "a", newline="", encoding="utf-8",
            buffering=1 << 16,
        )
        self._csv_writer = csv.writer(self._csv_file, lineterminator="\r\n")
        self._csv_fields = list(header) if header else []
        self._csv_field_set = set(self._csv_fields)

    # -- writing -----------------------------------------------------------

    def write(self, result: Dict[str, Any]) -> None:
        """Append one result to both files (buffered).

        Args:
            result: The result dict. It is not modified.
        """
        json_file = self._json_file or self._open_json()
        json_file.write(encode_json(result))
        json_file.write("\n")

        self._write_csv_row(result)

        now = time.monotonic()
        if now - self._last_flush >= self.flush_interval_s:
            self.flush()

    def _write_csv_row(self, result: Dict[str, Any]) -> None:
        if self._csv_file is None:
            self._open_csv()
        if "config" in result:
            # As in Ray Tune, the config goes to params.json, not the CSV.
            result = {
                key: value for key, value in result.items()
                if key != "config"
            }
        flat = flatten_dict(result)

        if not self._csv_fields:
            if not flat:
                # No columns yet, so there is nothing to write: a CSV row
                # needs a header.
                return
            self._csv_fields = list(flat)
            self._csv_field_set = set(self._csv_fields)
            self._csv_writer.writerow(self._csv_fields)
        elif not self._csv_field_set.issuperset(flat):
            new_fields = [
                key for key in flat if key not in self._csv_field_set
            ]
            self._extend_csv_header(new_fields)

        cells = []
        for field in self._csv_fields:
            value = flat.get(field)
            if type(value) in _CSV_PLAIN_TYPES:
                cells.append(value)
            else:
                cells.append(_csv_cell(value))
        self._csv_writer.writerow(cells)

    def _extend_csv_header(self, new_fields: List[str]) -> None:
        """Rewrite progress.csv with new columns appended to the header."""
        assert self._csv_file is not None
        self._csv_file.close()
        with open(
            self.progress_path, "r", newline="", encoding="utf-8"
        ) as file:
            rows = list(csv.reader(file))
        fields = self._csv_fields + new_fields
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(fields)
        width = len(fields)
        for row in rows[1:]:
            writer.writerow(row + [""] * (width - len(row)))
        _atomic_write_text(self.progress_path, buffer.getvalue())

        self._csv_file = open(
            self.progress_path, "a", newline="", encoding="utf-8",
            buffering=1 << 16,
        )
        self._csv_writer = csv.writer(self._csv_file, lineterminator="\r\n")
        self._csv_fields = fields
        self._csv_field_set = set(fields)
        logger.debug(
            "Added columns %s to %s.", new_fields, self.progress_path
        )

    def flush(self) -> None:
        """Hand all buffered lines to the operating system."""
        if self._json_file is not None:
            self._json_file.flush()
        if self._csv_file is not None:
            self._csv_file.flush()
        self._last_flush = time.monotonic()

    def close(self) -> None:
        """Flush and close both files. A later write opens them again."""
        for file in (self._json_file, self._csv_file):
            if file is not None:
                file.close()
        self._json_file = None
        self._csv_file = None
        self._csv_writer = None
        self._csv_fields = []
        self._csv_field_set = set()
        self._last_flush = time.monotonic()

    def __enter__(self) -> "ResultWriter":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- rewinding ---------------------------------------------------------

    def truncate_after(self, iteration: int) -> None:
        """Drop every result whose ``training_iteration`` is > iteration.

        Used when a trial restarts from an earlier checkpoint, so that the
        history has no duplicated or missing iterations. Works on files
        written by an earlier process. Both files are rewritten atomically
        (temporary file and ``os.replace``). Lines without a numeric
        ``training_iteration`` are kept, and lines that are not valid JSON
        (a partial last line) are dropped.

        Args:
            iteration: The last ``training_iteration`` to keep.
        """
        if isinstance(iteration, bool) or not isinstance(
            iteration, (int, float)
        ):
            raise InvalidConfig(
                f"Invalid iteration {iteration!r} for truncate_after: "
                f"expected an int (the last training_iteration to keep)."
            )
        self.close()
        self._truncate_json(iteration)
        self._truncate_csv(iteration)

    def _truncate_json(self, iteration: float) -> None:
        try:
            with open(self.result_path, "r", encoding="utf-8") as file:
                lines = file.read().splitlines()
        except FileNotFoundError:
            return
        kept = []
        dropped = 0
        for line in lines:
            if not line.strip():
                continue
            try:
                parsed = json.loads(line)
            except ValueError:
                dropped += 1
                continue
            value = (
                parsed.get(TRAINING_ITERATION)
                if isinstance(parsed, dict) else None
            )
            if _iteration_after(value, iteration):
                dropped += 1
                continue
            kept.append(line + "\n")
        if dropped:
            _atomic_write_text(self.result_path, "".join(kept))
            logger.info(
                "Dropped %d lines after training_iteration %s from %s.",
                dropped, iteration, self.result_path,
            )

    def _truncate_csv(self, iteration: float) -> None:
        try:
            with open(
                self.progress_path, "r", newline="", encoding="utf-8"
            ) as file:
                text = file.read()
        except FileNotFoundError:
            return
        rows = list(csv.reader(io.StringIO(text)))
        complete = text.endswith("\n")
        if rows and not complete:
            rows.pop()  # a partial last row, or a partial header
        if not rows:
            if text:
                _atomic_write_text(self.progress_path, "")
            return

        header = rows[0]
        try:
            column = header.index(TRAINING_ITERATION)
        except ValueError:
            column = -1

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(header)
        dropped = 0
        for row in rows[1:]:
            if 0 <= column < len(row) and _iteration_after(
                _parse_number(row[column]), iteration
            ):
                dropped += 1
                continue
            writer.writerow(row)
        if dropped or not complete:
            _atomic_write_text(self.progress_path, buffer.getvalue())


def _iteration_after(value: Any, iteration: float) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return value > iteration


def _parse_number(text: str) -> Optional[float]:
    try:
        return float(text)
    except ValueError:
        return None


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------


def read_results(logdir: str) -> List[Dict[str, Any]]:
    """Read all results of a trial from its ``result.json``.

    A last line that is not valid JSON (a write cut short by a killed
    process) is skipped silently. An invalid line elsewhere is skipped
    with a warning. ``NaN`` literals, as Ray Tune writes them, are read as
    float NaN, and ``null`` as None.

    Args:
        logdir: The trial directory.

    Returns:
        The results in file order; an empty list if the file is missing.
    """
    path = os.path.join(os.fspath(logdir), RESULT_FILE)
    try:
        with open(path, "r", encoding="utf-8") as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        return []
    while lines and not lines[-1].strip():
        lines.pop()
    results = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            results.append(json.loads(line))
        except ValueError:
            if number != len(lines):
                logger.warning(
                    "Skipped invalid JSON on line %d of %s.", number, path
                )
    return results


def _parse_csv_value(text: Optional[str]) -> Any:
    if text is None or text == "":
        return None
    if text == "True":
        return True
    if text == "False":
        return False
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def read_progress_csv(
    logdir: str, parse_values: bool = True
) -> List[Dict[str, Any]]:
    """Read all rows of a trial's ``progress.csv``.

    Args:
        logdir: The trial directory.
        parse_values: If True, cells are converted back: ``""`` to None,
            ``True``/``False`` to bool, and numbers to int or float (this
            also turns a string metric such as ``"7"`` into the number 7).
            If False, every cell is returned as the string in the file.

    Returns:
        One dict per row, in file order; an empty list if the file is
        missing. A partial last row (no final newline) is skipped.
    """
    path = os.path.join(os.fspath(logdir), PROGRESS_FILE)
    try:
        with open(path, "r", newline="", encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError:
        return []
    rows = list(csv.DictReader(io.StringIO(text)))
    if rows and not text.endswith("\n"):
        rows.pop()
    if not parse_values:
        return rows
    return [
        {key: _parse_csv_value(value) for key, value in row.items()}
        for row in rows
    ]


# ---------------------------------------------------------------------------
# Params
# ---------------------------------------------------------------------------


def write_params(logdir: str, config: Dict[str, Any]) -> None:
    """Write a trial's config to ``params.json`` and ``params.pkl``.

    ``params.json`` is indented JSON with sorted keys, written with the
    same fallbacks as ``result.json``. ``params.pkl`` is the config
    pickled with cloudpickle. Both files are written atomically.

    Args:
        logdir: The trial directory. It is created if missing.
        config: The resolved trial config.

    Raises:
        SerializationError: If the config cannot be pickled.
    """
    logdir = os.fspath(logdir)
    os.makedirs(logdir, exist_ok=True)
    _atomic_write_text(
        os.path.join(logdir, PARAMS_FILE),
        encode_json(config, indent=2, sort_keys=True),
    )
    try:
        data = cloudpickle.dumps(config)
    except Exception as error:  # noqa: BLE001 - pickling raises many types
        raise SerializationError(
            f"Failed to pickle the trial config to {PARAMS_PICKLE_FILE} in "
            f"{logdir}: {type(error).__name__}: {error}. Configs must be "
            f"picklable; pass unpicklable objects with "
            f"tune.with_parameters() or create them inside the trainable."
        ) from error
    _atomic_write_bytes(os.path.join(logdir, PARAMS_PICKLE_FILE), data)
