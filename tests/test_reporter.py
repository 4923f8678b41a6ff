"""Tests of trainable.reporter."""

import io
import re
import time

import pytest

from trainable.errors import InvalidConfig
from trainable.reporter import (
    CLIReporter,
    JupyterNotebookReporter,
    ProgressReporter,
    format_table,
)


class FakeTrial:
    """Stands in for trainable.trial.Trial with the attributes reporters
    read."""

    def __init__(self, index, status, config=None, last_result=None,
                 error_file=None, num_failures=0):
        self.trial_id = f"7f3a2_{index:05d}"
        self.status = status
        self.config = config if config is not None else {}
        self.last_result = last_result if last_result is not None else {}
        self.error_file = error_file
        self.num_failures = num_failures
        self.experiment_tag = str(index)
        self.trainable_name = "Guesser"

    def __str__(self):
        return f"{self.trainable_name}_{self.trial_id}"


def _result(loss, iteration=1, **extra):
    result = {
        "loss": loss, "training_iteration": iteration,
        "time_total_s": 1.5 * iteration, "done": False, "pid": 123,
        "hostname": "host", "date": "2024-01-01", "timestamp": 1,
        "time_this_iter_s": 1.5, "trial_id": "x", "config": {"lr": 0.1},
    }
    result.update(extra)
    return result


def _trials():
    return [
        FakeTrial(0, "RUNNING", {"lr": 0.1}, _result(0.5, 3)),
        FakeTrial(1, "RUNNING", {"lr": 0.01}, _result(0.25, 2)),
        FakeTrial(2, "TERMINATED", {"lr": 0.001}, _result(0.75, 10)),
        FakeTrial(3, "TERMINATED", {"lr": 1.0}, _result(0.125, 10)),
    ]


def _report(reporter, trials, done=False, *sys_info):
    stream = io.StringIO()
    reporter.stream = stream
    reporter.report(trials, done, *sys_info)
    return stream.getvalue()


def _table_header(text):
    for line in text.splitlines():
        if line.startswith("| Trial name"):
            return [cell.strip() for cell in line.strip("|").split("|")]
    raise AssertionError(f"no table in:\n{text}")


def _table_rows(text):
    rows = []
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| Trial name"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


# ---------------------------------------------------------------------------
# Base class
# ---------------------------------------------------------------------------


def test_progress_reporter_base_methods_raise():
    reporter = ProgressReporter()
    with pytest.raises(NotImplementedError):
        reporter.should_report([])
    with pytest.raises(NotImplementedError):
        reporter.report([], True)


def test_progress_reporter_base_accepts_search_properties():
    reporter = ProgressReporter()
    assert reporter.set_search_properties("loss", "min") is True
    reporter.set_total_samples(3)
    reporter.setup(start_time=1.0, total_samples=2, metric="m", mode="max")


# ---------------------------------------------------------------------------
# Report contents
# ---------------------------------------------------------------------------


def test_report_status_header_and_counts():
    reporter = CLIReporter(total_samples=10)
    text = _report(reporter, _trials())
    lines = text.splitlines()
    assert lines[0] == "== Status =="
    assert lines[1].startswith("Current time: ")
    assert "Number of trials: 4/10 (2 RUNNING, 2 TERMINATED)" in lines


def test_report_counts_without_total():
    text = _report(CLIReporter(), _trials())
    assert "Number of trials: 4 (2 RUNNING, 2 TERMINATED)" in text


def test_report_infinite_total():
    import sys

    reporter = CLIReporter()
    reporter.set_total_samples(sys.maxsize)
    text = _report(reporter, _trials())
    assert "Number of trials: 4/infinite" in text


def test_report_sys_info_lines():
    text = _report(CLIReporter(), _trials(), False, "Resources: 2/2 CPUs")
    assert "Resources: 2/2 CPUs" in text.splitlines()


def test_report_running_time_format():
    reporter = CLIReporter()
    reporter.set_start_time(time.time() - 3725.5)
    text = _report(reporter, _trials())
    assert re.search(r"running for 01:02:0[56]\.\d\d\)", text)


def test_report_best_trial_min():
    reporter = CLIReporter(metric="loss", mode="min")
    text = _report(reporter, _trials())
    assert (
        "Current best trial: 7f3a2_00003 with loss=0.125 and "
        "parameters={'lr': 1.0}" in text
    )


def test_report_best_trial_max():
    reporter = CLIReporter(metric="loss", mode="max")
    text = _report(reporter, _trials())
    assert "Current best trial: 7f3a2_00002 with loss=0.75" in text


def test_report_best_trial_skips_missing_and_nan():
    trials = _trials()
    trials[3].last_result["loss"] = float("nan")
    trials.append(FakeTrial(4, "PENDING"))
    reporter = CLIReporter(metric="loss", mode="min")
    assert "Current best trial: 7f3a2_00001" in _report(reporter, trials)


def test_report_no_best_trial_without_mode():
    text = _report(CLIReporter(metric="loss"), _trials())
    assert "Current best trial" not in text


def test_report_best_trial_mode_only_uses_default_metric():
    reporter = CLIReporter()
    reporter.set_search_properties(None, "min")
    text = _report(reporter, _trials())
    assert "Current best trial" not in text  # no trial reports "_metric"


def test_report_best_trial_single_inferred_metric():
    reporter = CLIReporter(mode="min")
    assert "Current best trial: 7f3a2_00003" in _report(reporter, _trials())


def test_report_table_rows_and_columns():
    text = _report(CLIReporter(), _trials())
    header = _table_header(text)
    assert header == [
        "Trial name", "status", "lr", "iter", "total time (s)", "loss",
    ]
    rows = _table_rows(text)
    assert rows[0] == ["Guesser_7f3a2_00000", "RUNNING", "0.1", "3", "4.5",
                       "0.5"]
    assert [row[1] for row in rows] == [
        "RUNNING", "RUNNING", "TERMINATED", "TERMINATED",
    ]


def test_report_status_order():
    trials = [
        FakeTrial(0, "ERROR"), FakeTrial(1, "TERMINATED"),
        FakeTrial(2, "PENDING"), FakeTrial(3, "PAUSED"),
        FakeTrial(4, "RUNNING"),
    ]
    rows = _table_rows(_report(CLIReporter(), trials))
    assert [row[1] for row in rows] == [
        "RUNNING", "PAUSED", "PENDING", "TERMINATED", "ERROR",
    ]


def test_report_infers_metrics_up_to_limit():
    result = _result(0.5, acc=0.9, f1=0.8, extra=0.7, name="text")
    trials = [FakeTrial(0, "RUNNING", {"lr": 0.1}, result)]
    header = _table_header(_report(CLIReporter(infer_limit=2), trials))
    assert header[-2:] == ["loss", "acc"]
    assert "f1" not in header
    assert "name" not in header


def test_report_never_infers_auto_keys():
    header = _table_header(_report(CLIReporter(infer_limit=10), _trials()))
    for auto_key in ("pid", "timestamp", "time_this_iter_s", "done",
                     "hostname", "trial_id", "config/lr"):
        assert auto_key not in header


def test_report_nested_metric_inferred():
    result = {"training_iteration": 1, "info": {"loss": 0.3}}
    trials = [FakeTrial(0, "RUNNING", {}, result)]
    text = _report(CLIReporter(), trials)
    assert "info/loss" in _table_header(text)
    assert _table_rows(text)[0][-1] == "0.3"


def test_report_explicit_metric_columns_list():
    reporter = CLIReporter(metric_columns=["loss"])
    header = _table_header(_report(reporter, _trials()))
    assert header == ["Trial name", "status", "lr", "loss"]


def test_report_explicit_metric_columns_dict_titles():
    reporter = CLIReporter(metric_columns={"loss": "Loss", "missing": "M"})
    header = _table_header(_report(reporter, _trials()))
    assert header[-1] == "Loss"
    assert "M" not in header


def test_add_metric_column():
    reporter = CLIReporter(metric_columns={"loss": "Loss"})
    reporter.add_metric_column("training_iteration", "it")
    header = _table_header(_report(reporter, _trials()))
    assert header[-2:] == ["Loss", "it"]


def test_add_metric_column_duplicate_raises():
    reporter = CLIReporter(metric_columns=["loss"])
    with pytest.raises(InvalidConfig, match="already exists"):
        reporter.add_metric_column("loss")


def test_add_metric_column_title_for_list_raises():
    reporter = CLIReporter(metric_columns=["loss"])
    with pytest.raises(InvalidConfig, match="representation"):
        reporter.add_metric_column("acc", "Accuracy")


def test_add_metric_column_to_default_keeps_defaults():
    reporter = CLIReporter()
    reporter.add_metric_column("pid")
    header = _table_header(_report(reporter, _trials()))
    assert header[-3:] == ["iter", "total time (s)", "pid"]


def test_parameter_columns_explicit():
    trials = [FakeTrial(0, "RUNNING", {"lr": 0.1, "model": {"depth": 3}},
                        _result(0.5))]
    reporter = CLIReporter(parameter_columns={"model/depth": "depth"})
    text = _report(reporter, trials)
    assert _table_header(text)[:3] == ["Trial name", "status", "depth"]
    assert _table_rows(text)[0][2] == "3"


def test_add_parameter_column():
    reporter = CLIReporter(parameter_columns=["lr"])
    reporter.add_parameter_column("momentum")
    trials = [FakeTrial(0, "RUNNING", {"lr": 0.1, "momentum": 0.9})]
    header = _table_header(_report(reporter, trials))
    assert header == ["Trial name", "status", "lr", "momentum"]
    with pytest.raises(InvalidConfig, match="already exists"):
        reporter.add_parameter_column("lr")


def test_parameter_columns_auto_scalar_config_values():
    config = {"lr": 0.1, "layers": [1, 2], "opt": {"name": "sgd"}}
    trials = [FakeTrial(0, "RUNNING", config)]
    header = _table_header(_report(CLIReporter(), trials))
    assert header == ["Trial name", "status", "lr", "opt/name"]


def test_parameter_columns_auto_evaluated_params():
    trial = FakeTrial(0, "RUNNING", {"lr": 0.1, "fixed": 3})
    trial.evaluated_params = {"lr": 0.1}
    header = _table_header(_report(CLIReporter(), [trial]))
    assert header == ["Trial name", "status", "lr"]


def test_report_error_rows():
    trials = _trials() + [
        FakeTrial(4, "ERROR", {"lr": 5.0}, {},
                  error_file="/exp/Guesser_7f3a2_00004/error.txt",
                  num_failures=2),
    ]
    text = _report(CLIReporter(), trials)
    assert "Number of errored trials: 1" in text
    error_rows = [
        row for row in _table_rows(text)
        if row[-1] == "/exp/Guesser_7f3a2_00004/error.txt"
    ]
    assert error_rows == [
        ["Guesser_7f3a2_00004", "2", "/exp/Guesser_7f3a2_00004/error.txt"]
    ]


def test_report_error_rows_truncated():
    trials = [
        FakeTrial(i, "ERROR", error_file=f"/e/{i}/error.txt")
        for i in range(5)
    ]
    reporter = CLIReporter(max_error_rows=2)
    text = _report(reporter, trials)
    assert "Table truncated to 2 rows (3 overflow)" in text
    assert "/e/2/error.txt" not in text
    assert "/e/4/error.txt" in _report(reporter, trials, True)


def test_report_max_progress_rows_fair_share():
    trials = [FakeTrial(i, "RUNNING") for i in range(6)]
    trials += [FakeTrial(i, "TERMINATED") for i in range(6, 8)]
    reporter = CLIReporter(max_progress_rows=4)
    text = _report(reporter, trials)
    statuses = [row[1] for row in _table_rows(text)]
    assert statuses == ["RUNNING", "RUNNING", "TERMINATED", "TERMINATED"]
    assert "... 4 more trials not shown (4 RUNNING)" in text


def test_report_done_shows_all_rows():
    trials = [FakeTrial(i, "TERMINATED") for i in range(30)]
    text = _report(CLIReporter(max_progress_rows=5), trials, True)
    assert len(_table_rows(text)) == 30
    assert "more trials not shown" not in text


def test_report_sort_by_metric():
    reporter = CLIReporter(metric="loss", mode="min", sort_by_metric=True)
    rows = _table_rows(_report(reporter, _trials()))
    terminated = [row[0] for row in rows if row[1] == "TERMINATED"]
    assert terminated == ["Guesser_7f3a2_00003", "Guesser_7f3a2_00002"]


def test_report_without_intermediate_tables():
    reporter = CLIReporter(print_intermediate_tables=False)
    assert "| Trial name" not in _report(reporter, _trials())
    assert "| Trial name" in _report(reporter, _trials(), True)


def test_report_cell_formatting():
    result = {"training_iteration": 1, "loss": None, "ratio": 1 / 3,
              "flag": True}
    trials = [
        FakeTrial(0, "RUNNING", {"s": "a\nb"}, result),
        FakeTrial(1, "RUNNING", {"s": "c"}, {"loss": 2.0}),
    ]
    reporter = CLIReporter(metric_columns=["loss", "ratio", "flag"])
    rows = _table_rows(_report(reporter, trials))
    assert rows[0][2] == "a b"
    assert rows[0][3] == ""
    assert rows[0][4] == "0.333333"
    assert rows[0][5] == "True"


def test_report_plain_text_and_aligned():
    text = _report(CLIReporter(metric="loss", mode="min"), _trials(), True)
    assert "\x1b" not in text
    table_lines = [line for line in text.splitlines()
                   if line[:1] in "+|"]
    widths = {len(line) for line in table_lines[:7]}
    assert len(widths) == 1


def test_report_empty_trial_list():
    text = _report(CLIReporter(), [])
    assert text.startswith("== Status ==")
    assert "Number of trials" not in text


def test_report_local_dir_lines():
    trials = _trials()
    for trial in trials:
        trial.local_dir = "/tmp/exp"
    assert "Result logdir: /tmp/exp" in _report(CLIReporter(), trials)


def test_report_default_stream_stdout(capsys):
    CLIReporter().report(_trials(), True)
    assert "== Status ==" in capsys.readouterr().out


def test_report_stream_argument():
    stream = io.StringIO()
    CLIReporter(stream=stream).report(_trials(), False)
    assert stream.getvalue().startswith("== Status ==")


# ---------------------------------------------------------------------------
# Rate limit and search properties
# ---------------------------------------------------------------------------


def test_should_report_rate_limited():
    reporter = CLIReporter(max_report_frequency=60)
    assert reporter.should_report([]) is True
    assert reporter.should_report([]) is False
    assert reporter.should_report([], done=True) is True


def test_should_report_after_interval():
    reporter = CLIReporter(max_report_frequency=0.05)
    assert reporter.should_report([]) is True
    time.sleep(0.1)
    assert reporter.should_report([]) is True


def test_set_search_properties_conflict_raises():
    reporter = CLIReporter(metric="loss", mode="min")
    with pytest.raises(InvalidConfig, match="metric"):
        reporter.set_search_properties("acc", None)


def test_set_search_properties_sets_metric():
    reporter = CLIReporter()
    assert reporter.set_search_properties("loss", "max") is True
    assert "Current best trial: 7f3a2_00002" in _report(reporter, _trials())


def test_setup_sets_total_samples():
    reporter = CLIReporter()
    reporter.setup(total_samples=8)
    assert "Number of trials: 4/8" in _report(reporter, _trials())


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"metric_columns": "loss"}, "metric_columns"),
        ({"parameter_columns": [1]}, "parameter_columns"),
        ({"max_progress_rows": 0}, "max_progress_rows"),
        ({"max_report_frequency": -1}, "max_report_frequency"),
        ({"infer_limit": -1}, "infer_limit"),
        ({"mode": "best"}, "mode"),
    ],
)
def test_cli_reporter_invalid_arguments(kwargs, name):
    with pytest.raises(InvalidConfig, match=name):
        CLIReporter(**kwargs)


# ---------------------------------------------------------------------------
# Jupyter alias and the table helper
# ---------------------------------------------------------------------------


def test_jupyter_reporter_behaves_as_cli():
    reporter = JupyterNotebookReporter(True, metric_columns=["loss"])
    assert isinstance(reporter, CLIReporter)
    header = _table_header(_report(reporter, _trials()))
    assert header == ["Trial name", "status", "lr", "loss"]


def test_jupyter_reporter_without_overwrite():
    assert isinstance(JupyterNotebookReporter(), CLIReporter)


def test_format_table_alignment():
    table = format_table(["name", "value"], [["a", 1], ["bbb", 22.5]])
    assert table.splitlines() == [
        "+------+-------+",
        "| name | value |",
        "|------+-------|",
        "| a    |     1 |",
        "| bbb  |  22.5 |",
        "+------+-------+",
    ]
