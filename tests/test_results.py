"""Tests of trainable.results: result.json, progress.csv and params."""

import csv
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time

import cloudpickle
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainable.errors import InvalidConfig, SerializationError
from trainable.results import (
    PROGRESS_FILE,
    RESULT_FILE,
    ResultWriter,
    encode_json,
    flatten_dict,
    read_progress_csv,
    read_results,
    unflattened_lookup,
    write_params,
)


def _json_lines(logdir):
    with open(os.path.join(logdir, RESULT_FILE), encoding="utf-8") as file:
        return file.read().splitlines()


def _csv_rows(logdir):
    path = os.path.join(logdir, PROGRESS_FILE)
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.reader(file))


class Opaque:
    def __str__(self):
        return "<opaque>"


class BrokenStr:
    def __str__(self):
        raise RuntimeError("no str for you")


class FakeNumpyScalar:
    """Duck-types a numpy scalar: item() returns the Python value."""

    def __init__(self, value):
        self.value = value

    def item(self):
        return self.value


class FakeNumpyArray:
    def __init__(self, values):
        self.values = values

    def tolist(self):
        return list(self.values)


# ---------------------------------------------------------------------------
# flatten_dict and unflattened_lookup
# ---------------------------------------------------------------------------


def test_flatten_dict_nested_levels():
    nested = {"a": {"b": {"c": 1}, "d": 2}, "e": 3}
    assert flatten_dict(nested) == {"a/b/c": 1, "a/d": 2, "e": 3}


def test_flatten_dict_keeps_lists():
    nested = {"a": [1, {"x": 2}], "b": {"c": [[], [1]]}}
    flat = flatten_dict(nested)
    assert flat["a"] == [1, {"x": 2}]
    assert flat["b/c"] == [[], [1]]


def test_flatten_dict_drops_empty_dict():
    assert flatten_dict({"a": {}, "b": 1}) == {"b": 1}


def test_flatten_dict_converts_keys_to_str():
    assert flatten_dict({1: {2: "x"}}) == {"1/2": "x"}


def test_flatten_dict_custom_delimiter():
    assert flatten_dict({"a": {"b": 1}}, delimiter=".") == {"a.b": 1}


def test_flatten_dict_does_not_modify_input():
    nested = {"a": {"b": 1}}
    flatten_dict(nested)
    assert nested == {"a": {"b": 1}}


def test_flatten_dict_prevent_delimiter_raises():
    with pytest.raises(InvalidConfig, match="a/b"):
        flatten_dict({"a/b": 1}, prevent_delimiter=True)


_json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=5),
    st.floats(allow_nan=False, allow_infinity=False),
)
_nested_dict = st.recursive(
    st.dictionaries(st.text("abc", min_size=1, max_size=3), _json_leaf,
                    max_size=4),
    lambda children: st.dictionaries(
        st.text("abc", min_size=1, max_size=3), children, max_size=4
    ),
    max_leaves=12,
)


@given(_nested_dict)
@settings(max_examples=60, deadline=None)
def test_flatten_dict_property_no_dicts_left(nested):
    flat = flatten_dict(nested, delimiter=".")
    assert not any(isinstance(value, dict) for value in flat.values())
    for key, value in flat.items():
        assert unflattened_lookup(key, nested, delimiter=".") == value


def test_unflattened_lookup_literal_key_wins():
    assert unflattened_lookup("a/b", {"a/b": 1, "a": {"b": 2}}) == 1


def test_unflattened_lookup_nested():
    assert unflattened_lookup("a/b", {"a": {"b": 2}}) == 2


def test_unflattened_lookup_key_containing_delimiter():
    assert unflattened_lookup("a/b/c", {"a": {"b/c": 3}}) == 3


def test_unflattened_lookup_missing_default():
    assert unflattened_lookup("a/x", {"a": {"b": 2}}, default=None) is None


def test_unflattened_lookup_missing_raises():
    with pytest.raises(KeyError):
        unflattened_lookup("x", {"a": 1})


# ---------------------------------------------------------------------------
# encode_json
# ---------------------------------------------------------------------------


def test_encode_json_nan_and_inf_as_null():
    text = encode_json({"a": math.nan, "b": [math.inf, -math.inf], "c": 1.5})
    assert json.loads(text) == {"a": None, "b": [None, None], "c": 1.5}


def test_encode_json_is_strict_json():
    text = encode_json({"a": math.nan})
    assert "NaN" not in text


@pytest.mark.parametrize(
    "value, expected",
    [
        (Opaque(), "<opaque>"),
        ({1, 2}, "{1, 2}"),
        (b"ab", "b'ab'"),
        (FakeNumpyScalar(3), 3),
        (FakeNumpyScalar(2.5), 2.5),
        (FakeNumpyScalar(math.nan), None),
        (FakeNumpyArray([1, 2]), [1, 2]),
        ((1, 2), [1, 2]),
    ],
)
def test_encode_json_fallbacks(value, expected):
    assert json.loads(encode_json({"v": value}))["v"] == expected


def test_encode_json_broken_str_does_not_raise():
    decoded = json.loads(encode_json({"v": BrokenStr()}))
    assert decoded["v"].startswith("<")
    assert "BrokenStr" in decoded["v"]


def test_encode_json_non_str_keys():
    decoded = json.loads(encode_json({(1, 2): 1, 3: math.nan, None: 1}))
    assert decoded == {"(1, 2)": 1, "3": None, "null": 1}


def test_encode_json_circular_reference():
    looped = []
    looped.append(looped)
    decoded = json.loads(encode_json({"loop": looped}))
    assert decoded == {"loop": ["<circular reference>"]}


# ---------------------------------------------------------------------------
# ResultWriter: result values of every type
# ---------------------------------------------------------------------------


def _c14_result(iteration=1):
    return {
        "loss": 0.5,
        "name": "run-a",
        "tags": [],
        "nested": {"a": [[], [1, 2]], "b": None},
        "obj": Opaque(),
        "flag": True,
        "arr": [1.0, 2.0],
        "training_iteration": iteration,
        "config": {"lr": 0.1},
    }


def test_writer_json_values_of_every_type(tmp_path):
    with ResultWriter(str(tmp_path)) as writer:
        writer.write(_c14_result())
    [line] = _json_lines(tmp_path)
    decoded = json.loads(line)
    assert decoded["loss"] == 0.5
    assert decoded["name"] == "run-a"
    assert decoded["tags"] == []
    assert decoded["nested"] == {"a": [[], [1, 2]], "b": None}
    assert decoded["obj"] == "<opaque>"
    assert decoded["flag"] is True
    assert decoded["arr"] == [1.0, 2.0]
    assert decoded["config"] == {"lr": 0.1}


def test_writer_csv_values_of_every_type(tmp_path):
    with ResultWriter(str(tmp_path)) as writer:
        writer.write(_c14_result())
    [row] = list(csv.DictReader(open(tmp_path / PROGRESS_FILE)))
    assert float(row["loss"]) == 0.5
    assert row["name"] == "run-a"
    assert row["tags"] == "[]"
    assert row["nested/a"] == "[[], [1, 2]]"
    assert row["nested/b"] == ""
    assert row["obj"] == "<opaque>"
    assert row["flag"] == "True"
    assert row["arr"] == "[1.0, 2.0]"


def test_writer_csv_leaves_out_config(tmp_path):
    with ResultWriter(str(tmp_path)) as writer:
        writer.write(_c14_result())
    header = _csv_rows(tmp_path)[0]
    assert not any(key.startswith("config") for key in header)


def test_writer_csv_nan_and_unrepresentable(tmp_path):
    with ResultWriter(str(tmp_path)) as writer:
        writer.write({
            "a": math.nan, "b": BrokenStr(), "c": FakeNumpyScalar(4),
            "d": FakeNumpyArray([1]), "e": {1, 2},
        })
    [row] = read_progress_csv(str(tmp_path))
    assert math.isnan(row["a"])
    assert "BrokenStr" in row["b"]
    assert row["c"] == 4
    assert row["d"] == "[1]"
    assert row["e"] == "{1, 2}"


def test_writer_never_raises_on_odd_results(tmp_path):
    odd = [
        {}, {"x": None}, {"x": [[], [[]]]}, {(1,): {2: object()}},
        {"x": {"y": {}}}, {"x": "multi\nline, \"quoted\""},
    ]
    with ResultWriter(str(tmp_path)) as writer:
        for result in odd:
            writer.write(result)
    assert len(read_results(str(tmp_path))) == len(odd)
    rows = read_progress_csv(str(tmp_path), parse_values=False)
    # The leading {} has no columns and no header to go under.
    assert len(rows) == len(odd) - 1
    assert rows[-1]["x"] == "multi\nline, \"quoted\""


# ---------------------------------------------------------------------------
# ResultWriter: header, buffering, resume
# ---------------------------------------------------------------------------


def test_writer_new_key_extends_header(tmp_path):
    with ResultWriter(str(tmp_path)) as writer:
        writer.write({"training_iteration": 1, "a": 1})
        writer.write({"training_iteration": 2, "a": 2, "late": "x"})
        writer.write({"training_iteration": 3, "late": "y"})
    rows = _csv_rows(tmp_path)
    assert rows[0] == ["training_iteration", "a", "late"]
    assert rows[1] == ["1", "1", ""]
    assert rows[2] == ["2", "2", "x"]
    assert rows[3] == ["3", "", "y"]


def test_writer_buffers_until_flush(tmp_path):
    writer = ResultWriter(str(tmp_path), flush_interval_s=3600)
    writer.write({"a": 1})
    assert os.path.getsize(tmp_path / RESULT_FILE) == 0
    writer.flush()
    assert len(_json_lines(tmp_path)) == 1
    assert len(_csv_rows(tmp_path)) == 2
    writer.close()


def test_writer_flushes_after_interval(tmp_path):
    writer = ResultWriter(str(tmp_path), flush_interval_s=0.05)
    writer.write({"a": 1})
    time.sleep(0.1)
    writer.write({"a": 2})
    assert len(_json_lines(tmp_path)) == 2
    writer.close()


def test_writer_zero_interval_flushes_every_write(tmp_path):
    writer = ResultWriter(str(tmp_path), flush_interval_s=0)
    writer.write({"a": 1})
    assert len(_json_lines(tmp_path)) == 1
    writer.close()


def test_writer_logs_nothing_per_write(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="trainable")
    with ResultWriter(str(tmp_path), flush_interval_s=0) as writer:
        for iteration in range(50):
            writer.write({"training_iteration": iteration, "x": [iteration]})
    assert caplog.records == []


def test_writer_opens_lazily(tmp_path):
    logdir = tmp_path / "trial"
    writer = ResultWriter(str(logdir))
    assert not logdir.exists()
    writer.write({"a": 1})
    writer.close()
    assert (logdir / RESULT_FILE).exists()


def test_writer_resume_appends_and_keeps_header(tmp_path):
    with ResultWriter(str(tmp_path)) as writer:
        writer.write({"training_iteration": 1, "b": 1, "a": 1})
    with ResultWriter(str(tmp_path)) as writer:
        writer.write({"a": 2, "training_iteration": 2, "b": 2})
    rows = _csv_rows(tmp_path)
    assert rows[0] == ["training_iteration", "b", "a"]
    assert rows[2] == ["2", "2", "2"]
    iterations = [r["training_iteration"] for r in read_results(tmp_path)]
    assert iterations == [1, 2]


def test_writer_write_after_close_reopens(tmp_path):
    writer = ResultWriter(str(tmp_path))
    writer.write({"a": 1})
    writer.close()
    writer.write({"a": 2, "b": 3})
    writer.close()
    assert [r["a"] for r in read_progress_csv(str(tmp_path))] == [1, 2]
    assert _csv_rows(tmp_path)[0] == ["a", "b"]


def test_writer_removes_partial_last_lines(tmp_path):
    with ResultWriter(str(tmp_path)) as writer:
        writer.write({"training_iteration": 1, "a": 1})
    # A process killed in the middle of a write leaves partial lines.
    with open(tmp_path / RESULT_FILE, "a") as file:
        file.write('{"training_iteration": 2, "a"')
    with open(tmp_path / PROGRESS_FILE, "a") as file:
        file.write("2,")
    assert [r["a"] for r in read_results(str(tmp_path))] == [1]
    assert len(read_progress_csv(str(tmp_path))) == 1

    with ResultWriter(str(tmp_path)) as writer:
        writer.write({"training_iteration": 2, "a": 2})
    assert [r["a"] for r in read_results(str(tmp_path))] == [1, 2]
    assert [r["a"] for r in read_progress_csv(str(tmp_path))] == [1, 2]


def test_writer_empty_first_result_has_no_csv_row(tmp_path):
    with ResultWriter(str(tmp_path)) as writer:
        writer.write({})
        writer.write({"a": 1})
        writer.write({})
    assert _csv_rows(tmp_path) == [["a"], ["1"], [""]]
    assert len(read_results(str(tmp_path))) == 3


def test_writer_partial_csv_header(tmp_path):
    (tmp_path / PROGRESS_FILE).write_text("training_itera")
    with ResultWriter(str(tmp_path)) as writer:
        writer.write({"training_iteration": 1})
    assert _csv_rows(tmp_path) == [["training_iteration"], ["1"]]


@pytest.mark.parametrize("bad", [-1, "5", None, True])
def test_writer_invalid_flush_interval(tmp_path, bad):
    with pytest.raises(InvalidConfig, match="flush_interval_s"):
        ResultWriter(str(tmp_path), flush_interval_s=bad)


# ---------------------------------------------------------------------------
# truncate_after
# ---------------------------------------------------------------------------


def _write_iterations(logdir, iterations, **extra):
    with ResultWriter(str(logdir)) as writer:
        for iteration in iterations:
            writer.write({"training_iteration": iteration, **extra})


def test_truncate_after_drops_later_iterations(tmp_path):
    _write_iterations(tmp_path, range(1, 6))
    ResultWriter(str(tmp_path)).truncate_after(3)
    json_iterations = [
        r["training_iteration"] for r in read_results(str(tmp_path))
    ]
    csv_iterations = [
        r["training_iteration"] for r in read_progress_csv(str(tmp_path))
    ]
    assert json_iterations == [1, 2, 3]
    assert csv_iterations == [1, 2, 3]


def test_truncate_after_then_continue(tmp_path):
    writer = ResultWriter(str(tmp_path))
    for iteration in range(1, 6):
        writer.write({"training_iteration": iteration})
    writer.truncate_after(2)
    for iteration in range(3, 5):
        writer.write({"training_iteration": iteration})
    writer.close()
    iterations = [r["training_iteration"] for r in read_results(tmp_path)]
    assert iterations == [1, 2, 3, 4]
    csv_iterations = [
        r["training_iteration"] for r in read_progress_csv(str(tmp_path))
    ]
    assert csv_iterations == [1, 2, 3, 4]


def test_truncate_after_flushes_buffered_lines(tmp_path):
    writer = ResultWriter(str(tmp_path), flush_interval_s=3600)
    for iteration in range(1, 4):
        writer.write({"training_iteration": iteration})
    writer.truncate_after(2)
    assert [r["training_iteration"] for r in read_results(tmp_path)] == [1, 2]


def test_truncate_after_keeps_lines_without_iteration(tmp_path):
    with ResultWriter(str(tmp_path)) as writer:
        writer.write({"training_iteration": 1})
        writer.write({"other": 1})
        writer.write({"training_iteration": 2})
    ResultWriter(str(tmp_path)).truncate_after(1)
    results = read_results(str(tmp_path))
    assert results == [{"training_iteration": 1}, {"other": 1}]
    assert len(read_progress_csv(str(tmp_path))) == 2


def test_truncate_after_leaves_no_temp_files(tmp_path):
    _write_iterations(tmp_path, range(1, 4))
    ResultWriter(str(tmp_path)).truncate_after(1)
    assert sorted(os.listdir(tmp_path)) == [PROGRESS_FILE, RESULT_FILE]


def test_truncate_after_partial_lines(tmp_path):
    _write_iterations(tmp_path, range(1, 4))
    with open(tmp_path / RESULT_FILE, "a") as file:
        file.write('{"training_iteration": 4')
    with open(tmp_path / PROGRESS_FILE, "a") as file:
        file.write("4")
    ResultWriter(str(tmp_path)).truncate_after(2)
    assert [r["training_iteration"] for r in read_results(tmp_path)] == [1, 2]
    assert _csv_rows(tmp_path) == [["training_iteration"], ["1"], ["2"]]


def test_truncate_after_partial_csv_header(tmp_path):
    (tmp_path / PROGRESS_FILE).write_text("training_itera")
    writer = ResultWriter(str(tmp_path))
    writer.truncate_after(2)
    assert (tmp_path / PROGRESS_FILE).read_text() == ""
    writer.write({"training_iteration": 1})
    writer.close()
    assert _csv_rows(tmp_path) == [["training_iteration"], ["1"]]


def test_truncate_after_missing_files(tmp_path):
    ResultWriter(str(tmp_path / "none")).truncate_after(3)
    assert not (tmp_path / "none").exists()


def test_truncate_after_files_of_another_process(tmp_path):
    script = (
        "import sys\n"
        "from trainable.results import ResultWriter\n"
        "w = ResultWriter(sys.argv[1], flush_interval_s=0)\n"
        "for i in range(1, 7):\n"
        "    w.write({'training_iteration': i, 'v': i * 10})\n"
        "w.close()\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        check=True, cwd=root, timeout=60,
        env={**os.environ, "PYTHONPATH": root},
    )
    ResultWriter(str(tmp_path)).truncate_after(4)
    rows = read_progress_csv(str(tmp_path))
    assert [r["v"] for r in rows] == [10, 20, 30, 40]
    assert [r["v"] for r in read_results(str(tmp_path))] == [10, 20, 30, 40]


def test_truncate_after_invalid_iteration(tmp_path):
    with pytest.raises(InvalidConfig, match="iteration"):
        ResultWriter(str(tmp_path)).truncate_after("3")


@given(
    total=st.integers(min_value=0, max_value=12),
    keep=st.integers(min_value=-1, max_value=14),
)
@settings(
    max_examples=30, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_truncate_after_property(tmp_path, total, keep):
    logdir = tempfile.mkdtemp(dir=tmp_path)
    _write_iterations(logdir, range(1, total + 1), x="v")
    writer = ResultWriter(str(logdir))
    writer.truncate_after(keep)
    writer.write({"training_iteration": max(0, min(keep, total)) + 1})
    writer.close()
    iterations = [r["training_iteration"] for r in read_results(logdir)]
    expected = list(range(1, max(0, min(keep, total)) + 2))
    assert iterations == expected
    csv_iterations = [
        r["training_iteration"] for r in read_progress_csv(str(logdir))
    ]
    assert csv_iterations == expected


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------


def test_read_results_missing_file(tmp_path):
    assert read_results(str(tmp_path)) == []


def test_read_results_ray_nan_literal(tmp_path):
    (tmp_path / RESULT_FILE).write_text('{"a": NaN}\n{"a": null}\n')
    results = read_results(str(tmp_path))
    assert math.isnan(results[0]["a"])
    assert results[1]["a"] is None


def test_read_results_skips_invalid_middle_line(tmp_path, caplog):
    (tmp_path / RESULT_FILE).write_text('{"a": 1}\nbroken\n{"a": 2}\n')
    assert read_results(str(tmp_path)) == [{"a": 1}, {"a": 2}]
    assert "line 2" in caplog.text


def test_read_progress_csv_parses_values(tmp_path):
    with ResultWriter(str(tmp_path)) as writer:
        writer.write({"i": 1, "f": 0.5, "b": False, "s": "x", "n": None})
    [row] = read_progress_csv(str(tmp_path))
    assert row == {"i": 1, "f": 0.5, "b": False, "s": "x", "n": None}


def test_read_progress_csv_raw_strings(tmp_path):
    with ResultWriter(str(tmp_path)) as writer:
        writer.write({"i": 1, "n": None})
    assert read_progress_csv(str(tmp_path), parse_values=False) == [
        {"i": "1", "n": ""}
    ]


def test_read_progress_csv_missing_file(tmp_path):
    assert read_progress_csv(str(tmp_path)) == []


@given(st.lists(
    st.dictionaries(
        st.sampled_from(["a", "b", "c"]),
        st.one_of(
            _json_leaf, st.floats(), st.lists(_json_leaf, max_size=3),
            st.dictionaries(st.sampled_from(["x", "y"]), _json_leaf,
                            max_size=2),
        ),
        max_size=3,
    ),
    max_size=6,
))
@settings(
    max_examples=40, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_result_json_roundtrip_property(tmp_path, results):
    logdir = tempfile.mkdtemp(dir=tmp_path)
    with ResultWriter(str(logdir)) as writer:
        for result in results:
            writer.write(result)
    expected = json.loads(json.dumps(results).replace("NaN", "null")
                          .replace("-Infinity", "null")
                          .replace("Infinity", "null"))
    assert read_results(str(logdir)) == expected
    # Results before the first one with a CSV column get no CSV row.
    with_columns = [bool(flatten_dict(result)) for result in results]
    skipped = with_columns.index(True) if any(with_columns) else len(results)
    rows = read_progress_csv(str(logdir))
    assert len(rows) == len(results) - skipped


# ---------------------------------------------------------------------------
# Params
# ---------------------------------------------------------------------------


def test_write_params_json_and_pickle(tmp_path):
    config = {"lr": 0.1, "fn": lambda x: x + 1, "nested": {"b": 2, "a": 1}}
    write_params(str(tmp_path), config)
    params = json.loads((tmp_path / "params.json").read_text())
    assert params["lr"] == 0.1
    assert params["nested"] == {"a": 1, "b": 2}
    assert "lambda" in params["fn"]
    with open(tmp_path / "params.pkl", "rb") as file:
        loaded = cloudpickle.load(file)
    assert loaded["fn"](1) == 2
    assert loaded["nested"] == {"b": 2, "a": 1}


def test_write_params_mixed_keys_and_nan(tmp_path):
    write_params(str(tmp_path), {1: "a", "b": math.nan, None: Opaque()})
    params = json.loads((tmp_path / "params.json").read_text())
    assert params == {"1": "a", "b": None, "null": "<opaque>"}


def test_write_params_unpicklable_raises(tmp_path):
    import threading

    with pytest.raises(SerializationError, match="lock"):
        write_params(str(tmp_path), {"lock": threading.Lock()})
    assert not (tmp_path / "params.pkl").exists()


@pytest.mark.parametrize("text", ["a\rb", "a\nb", "a\r\nb", "\r"])
def test_line_breaks_in_strings_stay_in_one_cell(tmp_path, text):
    writer = ResultWriter(str(tmp_path))
    writer.write({"training_iteration": 1, "s": text})
    writer.write({"training_iteration": 2, "s": "plain", "late": 1})
    writer.close()
    rows = read_progress_csv(str(tmp_path))
    assert [row["s"] for row in rows] == [text, "plain"]
    assert [row["training_iteration"] for row in rows] == [1, 2]
