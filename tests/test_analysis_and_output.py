"""ExperimentAnalysis queries, console output and the examples."""

import math
import os
import subprocess
import sys

import pytest

import trainable as tune
from conftest import PROJECT_ROOT, script_env

CURVES = {
    "rising": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    "early_peak": [20, 0, 1, 1, 1, 1, 1, 1, 1, 2],
    "flat": [6, 6, 6, 6, 6, 6, 6, 6, 6, 6],
}


def curve(config):
    for value in CURVES[config["name"]]:
        tune.report(score=value, info={"half": value / 2})


@pytest.fixture(scope="module")
def curves(tmp_path_factory):
    local = tmp_path_factory.mktemp("curves")
    analysis = tune.run(curve, config={"name": tune.grid_search(
        list(CURVES))}, local_dir=str(local), name="curves", verbose=0,
        metric="score", mode="max")
    return analysis


def best_name(analysis, **kwargs):
    return analysis.get_best_trial(**kwargs).config["name"]


@pytest.mark.parametrize("scope,expected", [
    ("last", "rising"),
    ("all", "early_peak"),
    ("avg", "flat"),
    ("last-5-avg", "rising"),
    ("last-10-avg", "flat"),
])
def test_best_trial_by_scope(curves, scope, expected):
    assert best_name(curves, metric="score", mode="max",
                     scope=scope) == expected


def test_best_trial_min_mode(curves):
    assert best_name(curves, metric="score", mode="min",
                     scope="all") == "early_peak"
    assert best_name(curves, metric="score", mode="min") == "early_peak"


def test_nested_metric(curves):
    assert best_name(curves, metric="info/half", mode="max") == "rising"


def test_default_metric_properties(curves):
    assert curves.best_trial.config["name"] == "rising"
    assert curves.best_config == {"name": "rising"}
    assert curves.best_result["score"] == 10
    assert curves.best_logdir == curves.best_trial.logdir
    assert len(curves.results) == 3


def test_get_all_configs(curves):
    configs = curves.get_all_configs()
    assert sorted(c["name"] for c in configs.values()) == sorted(CURVES)
    prefixed = curves.get_all_configs(prefix=True)
    assert all("config/name" in c for c in prefixed.values())


def test_dataframes(curves):
    pytest.importorskip("pandas")
    frame = curves.dataframe()
    assert len(frame) == 3
    assert set(frame["score"]) == {10, 2, 6}
    assert "info/half" in frame.columns
    best_rows = curves.dataframe(metric="score", mode="max")
    assert set(best_rows["score"]) == {10, 20, 6}
    histories = curves.trial_dataframes
    assert all(len(df) == 10 for df in histories.values())


def test_loaded_analysis_matches(curves):
    loaded = tune.ExperimentAnalysis(curves.experiment_path,
                                     default_metric="score",
                                     default_mode="max")
    assert loaded.best_config == curves.best_config
    assert math.isclose(
        loaded.get_best_trial(scope="avg").last_result["score"], 6)


def test_quiet_with_verbose_zero(tmp_path, capsys):
    tune.run(curve, config={"name": "flat"}, local_dir=str(tmp_path),
             verbose=0)
    assert capsys.readouterr().out == ""


def test_progress_table_printed(tmp_path, capsys):
    tune.run(curve, config={"name": "flat"}, local_dir=str(tmp_path),
             verbose=1, metric="score", mode="max")
    out = capsys.readouterr().out
    assert "== Status ==" in out
    assert "TERMINATED" in out
    assert "Current best trial" in out


def test_failed_trial_traceback_in_error(tmp_path):
    def broken(config):
        raise ZeroDivisionError("divide by config")

    with pytest.raises(tune.TuneError) as info:
        tune.run(broken, local_dir=str(tmp_path), verbose=0)
    assert "ZeroDivisionError: divide by config" in str(info.value)


def run_example(*args):
    return subprocess.run([sys.executable, *args], capture_output=True,
                          text=True, timeout=300, env=script_env(),
                          cwd=PROJECT_ROOT)


def test_guesser_example_runs(tmp_path):
    env_dir = {"TUNE_RESULT_DIR": str(tmp_path)}
    completed = subprocess.run(
        [sys.executable, os.path.join("examples", "guesser.py")],
        capture_output=True, text=True, timeout=300,
        env={**script_env(), **env_dir}, cwd=PROJECT_ROOT)
    assert completed.returncode == 0, completed.stderr
    assert "Best config: {'guess':" in completed.stdout


def test_digits_example_runs(tmp_path):
    pytest.importorskip("sklearn")
    completed = run_example(os.path.join("examples", "tune_digits.py"),
                            "--num-samples", "3", "--epochs", "3",
                            "--local-dir", str(tmp_path))
    assert completed.returncode == 0, completed.stderr
    assert "Best validation accuracy" in completed.stdout
    assert "Test accuracy of the best checkpoint" in completed.stdout
