"""Stop criteria, time budgets, result value types and trial directory
names, through run()."""

import csv
import json
import logging
import os
import time

import trainable as tune
from trainable.stoppers import TimeoutStopper


def late_metric(config):
    for i in range(10):
        result = {"i": i}
        if i >= 3:
            result["score"] = i * 10
        if i == 4:
            result["score"] = None
        tune.report(**result)


def test_stop_key_appearing_late_or_none(tmp_path):
    analysis = tune.run(late_metric, stop={"score": 50},
                        local_dir=str(tmp_path), verbose=0)
    trial = analysis.trials[0]
    assert trial.status == "TERMINATED"
    assert trial.last_result["score"] == 50
    assert trial.last_result["i"] == 5


def test_stop_key_never_reported_warns_once(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="trainable.stoppers"):
        analysis = tune.run(late_metric, stop={"nonexistent": 1},
                            local_dir=str(tmp_path), verbose=0)
    trial = analysis.trials[0]
    assert trial.status == "TERMINATED"
    assert trial.last_result["i"] == 9
    warnings = [r for r in caplog.records if "nonexistent" in r.message]
    assert len(warnings) == 1
    assert "score" in warnings[0].message or "i" in warnings[0].message


def test_stop_nested_key(tmp_path):
    def nested(config):
        for i in range(10):
            tune.report(info={"loss": 10 - i})

    analysis = tune.run(nested, stop={"info/loss": 7},
                        local_dir=str(tmp_path), verbose=0)
    assert analysis.trials[0].last_result["training_iteration"] == 1


def test_stop_callable_and_done(tmp_path):
    def counts(config):
        for i in range(100):
            tune.report(i=i, done=i == 7)

    analysis = tune.run(counts, num_samples=2,
                        stop=lambda trial_id, result: result["i"] >= 3,
                        local_dir=str(tmp_path), verbose=0)
    assert [t.last_result["i"] for t in analysis.trials] == [3, 3]
    analysis = tune.run(counts, local_dir=str(tmp_path), verbose=0)
    assert analysis.trials[0].last_result["i"] == 7


def slow_counter(config):
    for i in range(1000):
        time.sleep(0.1)
        tune.report(i=i)


def test_timeout_stopper_is_wall_clock(tmp_path):
    start = time.time()
    analysis = tune.run(slow_counter, num_samples=4,
                        stop=TimeoutStopper(2.0), local_dir=str(tmp_path),
                        verbose=0, num_cpus=4)
    wall = time.time() - start
    assert 2.0 <= wall < 5.0
    assert all(t.status == "TERMINATED" for t in analysis.trials)


def test_time_total_stops_at_first_result_past(tmp_path):
    analysis = tune.run(slow_counter, stop={"time_total_s": 1.0},
                        local_dir=str(tmp_path), verbose=0)
    result = analysis.trials[0].last_result
    assert 1.0 <= result["time_total_s"] < 1.5


def test_time_budget_stops_experiment(tmp_path):
    start = time.time()
    analysis = tune.run(slow_counter, num_samples=2, time_budget_s=1.5,
                        local_dir=str(tmp_path), verbose=0)
    assert 1.5 <= time.time() - start < 4.0
    assert all(t.status == "TERMINATED" for t in analysis.trials)


def test_odd_result_values_logged(tmp_path):
    def odd(config):
        tune.report(loss=0.5, name="run-a", tags=[],
                    nested={"a": [[], [1, 2]], "b": None}, obj=object(),
                    flag=True, arr=[1.0, 2.0])

    analysis = tune.run(odd, local_dir=str(tmp_path), verbose=0)
    trial = analysis.trials[0]
    assert trial.status == "TERMINATED"
    result = trial.last_result
    assert result["loss"] == 0.5
    assert result["name"] == "run-a"
    assert result["nested"]["b"] is None
    assert result["flag"] is True
    with open(os.path.join(trial.logdir, "progress.csv")) as f:
        row = next(csv.DictReader(f))
    assert float(row["loss"]) == 0.5
    assert row["flag"] == "True"
    with open(os.path.join(trial.logdir, "result.json")) as f:
        line = json.loads(f.read().splitlines()[-1])
    assert line["name"] == "run-a"
    assert line["arr"] == [1.0, 2.0]


def test_unpicklable_result_value_sent_as_repr(tmp_path):
    def locky(config):
        import threading

        tune.report(loss=1.0, lock=threading.Lock())

    analysis = tune.run(locky, local_dir=str(tmp_path), verbose=0)
    result = analysis.trials[0].last_result
    assert result["loss"] == 1.0
    assert "lock" in result["lock"]


def test_long_config_gives_bounded_safe_dirname(tmp_path):
    def ok(config):
        tune.report(ok=1)

    config = {f"hyperparameter_with_long_name_{i}":
              tune.grid_search(["v" * 40]) for i in range(12)}
    config["path/with:odd chars"] = tune.choice(["a/b", "c\\d", "e f"])
    analysis = tune.run(ok, config=config, local_dir=str(tmp_path),
                        verbose=0)
    trial = analysis.trials[0]
    assert trial.status == "TERMINATED"
    assert os.path.isdir(trial.logdir)
    name = os.path.basename(trial.logdir)
    assert len(name) <= 128
    assert not set(name) & set("/\\: ")
    assert os.path.dirname(os.path.dirname(trial.logdir)) == str(tmp_path)


def test_trial_name_and_dirname_creators(tmp_path):
    def ok(config):
        tune.report(ok=1)

    analysis = tune.run(
        ok, config={"a": tune.grid_search([1, 2])},
        trial_name_creator=lambda t: f"custom_{t.config['a']}",
        trial_dirname_creator=lambda t: f"dir_{t.config['a']}",
        local_dir=str(tmp_path), name="named", verbose=0)
    assert [str(t) for t in analysis.trials] == ["custom_1", "custom_2"]
    assert [os.path.basename(t.logdir) for t in analysis.trials] == [
        "dir_1", "dir_2"]


def test_duplicate_dirnames_made_unique(tmp_path):
    def ok(config):
        tune.report(ok=1)

    analysis = tune.run(ok, num_samples=2,
                        trial_dirname_creator=lambda t: "same",
                        local_dir=str(tmp_path), verbose=0)
    assert sorted(os.path.basename(t.logdir) for t in analysis.trials) == [
        "same", "same_1"]
