"""The trainable command: list-trials, list-experiments and best, on real
experiment directories."""

import csv
import json
import os
import subprocess
import sys

import pytest

import trainable
from conftest import script_env
from trainable.cli import main


class Quadratic(trainable.Trainable):
    """loss = (x - 2)^2 + 1/steps: lowest for x=2, falling with steps."""

    def setup(self, config):
        self.x = config["x"]
        self.steps = 0

    def step(self):
        self.steps += 1
        return {"loss": (self.x - 2) ** 2 + 1.0 / self.steps,
                "info": {"steps": self.steps}}

    def save_checkpoint(self, checkpoint_dir):
        return {"steps": self.steps}

    def load_checkpoint(self, state):
        self.steps = state["steps"]


def fail_if_configured(config):
    if config["fail"]:
        raise ValueError("failing as configured")
    trainable.report(score=1)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A local_dir with two experiments: quad (3 trials, checkpoints) and
    mixed (one trial terminated, one errored)."""
    local_dir = tmp_path_factory.mktemp("project")
    trainable.run(Quadratic, name="quad", local_dir=str(local_dir),
                  config={"x": trainable.grid_search([0, 2, 5])},
                  stop={"training_iteration": 3}, checkpoint_freq=1,
                  verbose=0)
    trainable.run(fail_if_configured, name="mixed", local_dir=str(local_dir),
                  config={"fail": trainable.grid_search([False, True])},
                  raise_on_failed_trial=False, verbose=0)
    return local_dir


@pytest.fixture
def quad(project):
    return str(project / "quad")


def run_cli(capsys, *args):
    status = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def table_rows(text):
    """Return the cells of a format_table table, header row first."""
    rows = []
    for line in text.splitlines():
        if line.startswith("| "):
            rows.append([cell.strip() for cell in line[1:-1].split("|")])
    return rows


def column(rows, name):
    index = rows[0].index(name)
    return [row[index] for row in rows[1:]]


# ------------------------------------------------------------ list-trials


def test_list_trials_default_columns(capsys, quad):
    status, out, err = run_cli(capsys, "list-trials", quad)
    assert status == 0, err
    rows = table_rows(out)
    header = rows[0]
    for name in ("trial_id", "status", "logdir", "training_iteration",
                 "loss", "info/steps", "config/x"):
        assert name in header
    assert len(rows) == 4
    assert column(rows, "status") == ["TERMINATED"] * 3
    assert sorted(column(rows, "config/x")) == ["0", "2", "5"]
    assert column(rows, "training_iteration") == ["3"] * 3


def test_list_trials_chosen_columns(capsys, quad):
    status, out, _ = run_cli(capsys, "list-trials", quad, "--columns",
                             "trial_id,loss,info/steps,x,last_update")
    assert status == 0
    rows = table_rows(out)
    assert rows[0] == ["trial_id", "loss", "info/steps", "x", "last_update"]
    assert column(rows, "info/steps") == ["3"] * 3
    assert all(column(rows, "last_update"))


def test_list_trials_sort(capsys, quad):
    _, out, _ = run_cli(capsys, "ls", quad, "--sort", "loss",
                        "--columns", "x,loss")
    assert column(table_rows(out), "x") == ["2", "0", "5"]
    _, out, _ = run_cli(capsys, "ls", quad, "--sort", "loss", "--desc",
                        "--columns", "x,loss")
    assert column(table_rows(out), "x") == ["5", "0", "2"]


def test_list_trials_sort_and_limit(capsys, quad):
    _, out, _ = run_cli(capsys, "ls", quad, "--sort", "config/x", "--desc",
                        "--limit", "2", "--columns", "config/x")
    assert column(table_rows(out), "config/x") == ["5", "2"]


@pytest.mark.parametrize("expression, expected", [
    ("loss < 1", ["2"]),
    ("loss<5", ["0", "2"]),
    ("config/x >= 2", ["2", "5"]),
    ("x != 2", ["0", "5"]),
    ("status == TERMINATED", ["0", "2", "5"]),
    ("status == 'ERROR'", []),
    ("logdir > zzz", []),
])
def test_list_trials_filter(capsys, quad, expression, expected):
    status, out, err = run_cli(capsys, "ls", quad, "--filter", expression,
                               "--sort", "x", "--columns", "x")
    assert status == 0, err
    assert column(table_rows(out), "x") == expected


def test_list_trials_filters_combine(capsys, quad):
    _, out, _ = run_cli(capsys, "ls", quad, "--filter", "loss < 5",
                        "--filter", "x > 0", "--columns", "x")
    assert column(table_rows(out), "x") == ["2"]


def test_list_trials_csv_output(capsys, quad, tmp_path):
    target = tmp_path / "trials.csv"
    status, out, _ = run_cli(capsys, "ls", quad, "--output", target,
                             "--sort", "x", "--columns",
                             "trial_id,x,loss,status")
    assert status == 0
    assert "Wrote 3 rows" in out
    with open(target, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["x"] for row in rows] == ["0", "2", "5"]
    assert float(rows[1]["loss"]) == pytest.approx(1 / 3)
    assert rows[0]["status"] == "TERMINATED"


def test_list_trials_text_output(capsys, quad, tmp_path):
    target = tmp_path / "trials.txt"
    status, _, _ = run_cli(capsys, "ls", quad, "-o", target, "--columns",
                           "x")
    assert status == 0
    assert sorted(column(table_rows(target.read_text()), "x")) == [
        "0", "2", "5"]


def test_list_trials_error_status(capsys, project):
    _, out, _ = run_cli(capsys, "ls", project / "mixed", "--sort",
                        "config/fail", "--columns",
                        "config/fail,status,score,num_failures")
    rows = table_rows(out)
    assert column(rows, "status") == ["TERMINATED", "ERROR"]
    assert column(rows, "score") == ["1", ""]


def test_list_trials_accepts_state_file(capsys, quad):
    status, out, _ = run_cli(capsys, "ls",
                             os.path.join(quad, "experiment_state.json"))
    assert status == 0
    assert len(table_rows(out)) == 4


# -------------------------------------------------------- list-experiments


def test_list_experiments(capsys, project):
    status, out, err = run_cli(capsys, "list-experiments", project)
    assert status == 0, err
    rows = table_rows(out)
    assert rows[0] == ["name", "trials", "statuses", "last_update"]
    assert column(rows, "name") == ["mixed", "quad"]
    assert column(rows, "trials") == ["2", "3"]
    assert column(rows, "statuses") == ["1 TERMINATED, 1 ERROR",
                                        "3 TERMINATED"]
    assert all(column(rows, "last_update"))


def test_list_experiments_options(capsys, project):
    _, out, _ = run_cli(capsys, "lsx", project, "--columns",
                        "name,error,terminated", "--sort", "trials",
                        "--desc", "--filter", "error == 0")
    rows = table_rows(out)
    assert rows == [["name", "error", "terminated"], ["quad", "0", "3"]]


# ------------------------------------------------------------------- best


def test_best_text(capsys, quad):
    status, out, err = run_cli(capsys, "best", quad, "--metric", "loss",
                               "--mode", "min")
    assert status == 0, err
    assert "(TERMINATED), by loss (min, scope last)" in out
    config_text = out.split("Config: ", 1)[1].split("\nBest checkpoint")[0]
    assert json.loads(config_text) == {"x": 2}
    checkpoint = out.split("Best checkpoint: ", 1)[1].strip()
    assert os.path.isdir(checkpoint)


def test_best_json(capsys, quad):
    status, out, _ = run_cli(capsys, "best", quad, "--metric", "loss",
                             "--mode", "max", "--scope", "avg", "--json")
    assert status == 0
    best = json.loads(out)
    assert best["config"] == {"x": 5}
    assert best["scope"] == "avg"
    assert best["last_value"] == pytest.approx(9 + 1 / 3)
    assert os.path.isdir(best["best_checkpoint"])
    assert os.path.basename(best["logdir"]).startswith("Quadratic_")


def test_best_checkpoint_is_best_by_metric(capsys, quad):
    _, out, _ = run_cli(capsys, "best", quad, "--metric", "loss", "--mode",
                        "min", "--json")
    best = json.loads(out)
    # Loss falls with every step, so the last checkpoint is the best.
    name = os.path.basename(best["best_checkpoint"].rstrip("/"))
    assert name.startswith("checkpoint_")
    assert name.endswith("3")


def test_best_nested_metric(capsys, quad):
    status, out, _ = run_cli(capsys, "best", quad, "--metric", "info/steps",
                             "--mode", "max", "--json")
    assert status == 0
    assert json.loads(out)["last_value"] == 3


def test_best_without_finite_value_exits_1(capsys, tmp_path):
    def reports_nan(config):
        trainable.report(score=float("nan"))

    trainable.run(reports_nan, name="nan", local_dir=str(tmp_path),
                  verbose=0)
    status, out, err = run_cli(capsys, "best", tmp_path / "nan", "--metric",
                               "score", "--mode", "max")
    assert status == 1
    assert "no trial" in err
    assert out == ""


# ------------------------------------------------------------------ errors


def assert_error(capsys, args, *fragments):
    status, out, err = run_cli(capsys, *args)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("trainable ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


def test_missing_directory(capsys, tmp_path):
    missing = tmp_path / "nope"
    assert_error(capsys, ["list-trials", missing], "does not exist")
    assert_error(capsys, ["best", missing, "--metric", "a", "--mode",
                          "min"], "does not exist")
    assert_error(capsys, ["list-experiments", missing], "does not exist")


def test_project_dir_is_not_experiment(capsys, project):
    assert_error(capsys, ["list-trials", project],
                 "is not an experiment directory", "mixed, quad",
                 "list-experiments")


def test_empty_dir_is_not_experiment(capsys, tmp_path):
    assert_error(capsys, ["list-trials", tmp_path],
                 "is not an experiment directory")
    assert_error(capsys, ["list-experiments", tmp_path],
                 "contains no experiment directories")


def test_experiment_dir_is_not_project(capsys, quad):
    assert_error(capsys, ["list-experiments", quad], "list-trials")


def test_foreign_state_file(capsys, tmp_path):
    (tmp_path / "experiment_state.json").write_text('{"checkpoints": []}')
    assert_error(capsys, ["list-trials", tmp_path],
                 "not a trainable experiment state")


@pytest.mark.parametrize("option", ["--columns", "--sort"])
def test_unknown_column(capsys, quad, option):
    assert_error(capsys, ["ls", quad, option, "trial_id,lss"],
                 option, "'lss'")


def test_unknown_experiment_column(capsys, project):
    assert_error(capsys, ["lsx", project, "--columns", "name,size"],
                 "'size'", "Use one of name, trials")


def test_filter_on_unknown_column(capsys, quad):
    assert_error(capsys, ["ls", quad, "--filter", "lss < 1"], "'lss'")


@pytest.mark.parametrize("expression", ["loss ~ 1", "loss <", "loss",
                                        "< 3"])
def test_invalid_filter(capsys, quad, expression):
    assert_error(capsys, ["ls", quad, "--filter", expression],
                 "--filter", "is invalid")


def test_best_unknown_metric(capsys, quad):
    assert_error(capsys, ["best", quad, "--metric", "lss", "--mode", "min"],
                 "'lss'")


def test_unwritable_output(capsys, quad, tmp_path):
    assert_error(capsys, ["ls", quad, "-o", tmp_path / "no" / "x.csv"],
                 "--output")


@pytest.mark.parametrize("args", [
    ["ls", "dir", "--limit", "0"],
    ["best", "dir", "--metric", "loss", "--mode", "lowest"],
    ["best", "dir", "--mode", "min"],
    [],
])
def test_invalid_arguments_exit_2(capsys, args):
    with pytest.raises(SystemExit) as raised:
        main(args)
    assert raised.value.code == 2


# --------------------------------------------------------------- subprocess


def test_python_m_trainable(quad):
    done = subprocess.run(
        [sys.executable, "-m", "trainable", "list-trials", quad,
         "--columns", "trial_id,x", "--sort", "x"],
        capture_output=True, text=True, timeout=60, env=script_env())
    assert done.returncode == 0, done.stderr
    rows = table_rows(done.stdout)
    assert column(rows, "x") == ["0", "2", "5"]
    missing = subprocess.run(
        [sys.executable, "-m", "trainable", "list-trials", quad + "-nope"],
        capture_output=True, text=True, timeout=60, env=script_env())
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr
