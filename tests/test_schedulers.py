"""ASHA and the median stopping rule: unit checks and real experiments.

The experiments run one trial at a time (``max_concurrent_trials=1``) so
that which trials a rung or the median has seen, and so each decision, is
the same on every run.
"""

import csv
import logging
import math
import os
import random

import pytest

import trainable as tune
from trainable.errors import InvalidConfig
from trainable.schedulers import (
    ASHAScheduler,
    AsyncHyperBandScheduler,
    FIFOScheduler,
    HyperBandScheduler,
    MedianStoppingRule,
    TrialScheduler,
)
from trainable.schedulers.async_hyperband import _Bracket, percentile
from trainable.trial import Trial


class Scored(tune.Trainable):
    """Reports ``score = q * iteration`` and ``loss = -score``."""

    def setup(self, config):
        self.q = config["q"]

    def step(self):
        score = self.q * (self.iteration + 1)
        return {"score": score, "loss": -score, "const": self.q}

    def save_checkpoint(self, tmp_dir):
        return {"q": self.q}

    def load_checkpoint(self, checkpoint):
        self.q = checkpoint["q"]


def iterations_by_q(analysis):
    return {t.config["q"]: t.last_result["training_iteration"]
            for t in analysis.trials}


def run_serial(scheduler, qs, tmp_path, **kwargs):
    args = dict(scheduler=scheduler, config={"q": tune.grid_search(qs)},
                stop={"training_iteration": 100}, max_concurrent_trials=1,
                local_dir=str(tmp_path), verbose=0, num_cpus=2)
    args.update(kwargs)
    return tune.run(Scored, **args)


def asha(**kwargs):
    args = dict(metric="score", mode="max", max_t=9, grace_period=1,
                reduction_factor=3)
    args.update(kwargs)
    return AsyncHyperBandScheduler(**args)


# ----------------------------------------------------------- ASHA units


def test_asha_alias():
    assert ASHAScheduler is AsyncHyperBandScheduler


@pytest.mark.parametrize("args, milestones", [
    ((1, 100, 4, 0), [64, 16, 4, 1]),
    ((1, 100, 4, 1), [64, 16, 4]),
    ((1, 9, 3, 0), [9, 3, 1]),
    ((2, 20, 2, 0), [16, 8, 4, 2]),
])
def test_bracket_rungs(args, milestones):
    assert [m for m, _ in _Bracket(*args).rungs] == milestones


@pytest.mark.parametrize("values, q, expected", [
    ([1, 2, 3, 4], 75, 3.25),
    ([5], 66, 5),
    ([3, 1, 2], 50, 2),
    ([-math.inf, 1.0], 50, 1.0),
    ([-math.inf, -math.inf, 2.0], 25, -math.inf),
])
def test_percentile_interpolates(values, q, expected):
    assert percentile(values, q) == expected


def test_bracket_stops_below_cutoff():
    bracket = _Bracket(1, 9, 3, 0)
    assert bracket.on_result("a", 1, 10.0) == TrialScheduler.CONTINUE
    assert bracket.on_result("b", 1, 5.0) == TrialScheduler.STOP
    assert bracket.on_result("c", 1, 20.0) == TrialScheduler.CONTINUE
    # Between rungs nothing is decided.
    assert bracket.on_result("b", 2, -1.0) == TrialScheduler.CONTINUE


def test_asha_spreads_trials_over_brackets():
    scheduler = asha(max_t=100, reduction_factor=4, brackets=3)
    state = random.getstate()
    random.seed(7)
    try:
        for index in range(300):
            trial = Trial("T", {}, f"t{index}")
            scheduler.on_trial_add(None, trial)
    finally:
        random.setstate(state)
    used = {id(b) for b in scheduler._trial_bracket.values()}
    assert len(used) == 3


@pytest.mark.parametrize("kwargs, message", [
    ({"max_t": 0}, r"max_t=0.*> 0"),
    ({"grace_period": 0}, r"grace_period=0.*> 0"),
    ({"grace_period": 20}, r"grace_period=20 > max_t=9"),
    ({"reduction_factor": 1}, r"reduction_factor=1.*> 1"),
    ({"brackets": 0}, r"brackets=0.*int >= 1"),
    ({"brackets": 1.5}, r"brackets=1\.5"),
    ({"mode": "maximize"}, r"mode='maximize'"),
    ({"time_attr": None}, r"time_attr=None"),
    ({"metric": "", "mode": "max"}, r"metric=''"),
])
def test_asha_rejects_invalid_arguments(kwargs, message):
    with pytest.raises(InvalidConfig, match=message):
        asha(**kwargs)


def test_asha_reward_attr_conflict():
    with pytest.raises(InvalidConfig, match="reward_attr"):
        AsyncHyperBandScheduler(reward_attr="a", metric="b", mode="max")


def test_asha_reward_attr_means_max(caplog):
    with caplog.at_level(logging.WARNING):
        scheduler = AsyncHyperBandScheduler(reward_attr="acc")
    assert (scheduler.metric, scheduler.mode) == ("acc", "max")
    assert "deprecated" in caplog.text


# ----------------------------------------------------- ASHA experiments


def test_asha_stops_bad_trials_early(tmp_path):
    analysis = run_serial(asha(), [5, 1, 8, 2, 6], tmp_path)
    for trial in analysis.trials:
        assert trial.status == "TERMINATED"
        assert trial.num_failures == 0
    # 5 runs first and sets the bar; 8 passes every rung; 1 and 2 are
    # below the top third at rung 1, and 6 at rung 3.
    assert iterations_by_q(analysis) == {5: 9, 1: 1, 8: 9, 2: 1, 6: 3}


def test_asha_mode_min_stops_same_trials(tmp_path):
    analysis = run_serial(asha(metric="loss", mode="min"), [5, 1, 8, 2, 6],
                          tmp_path)
    assert iterations_by_q(analysis) == {5: 9, 1: 1, 8: 9, 2: 1, 6: 3}


def test_asha_metric_from_run(tmp_path):
    scheduler = asha(metric=None, mode=None)
    analysis = run_serial(scheduler, [5, 1], tmp_path, metric="score",
                          mode="max")
    assert iterations_by_q(analysis) == {5: 9, 1: 1}


def test_asha_nan_counts_as_worst(tmp_path):
    class NanLater(Scored):
        def step(self):
            result = super().step()
            if self.q < 0:
                result["score"] = float("nan")
            return result

    analysis = tune.run(NanLater, scheduler=asha(),
                        config={"q": tune.grid_search([1, -1])},
                        stop={"training_iteration": 100},
                        max_concurrent_trials=1, local_dir=str(tmp_path),
                        verbose=0)
    assert iterations_by_q(analysis) == {1: 9, -1: 1}


@pytest.mark.parametrize("kwargs, missing", [
    ({"metric": None, "mode": None}, "no metric and mode"),
    ({"metric": "score", "mode": None}, "no mode"),
])
def test_asha_without_metric_or_mode_fails(tmp_path, kwargs, missing):
    with pytest.raises(InvalidConfig, match=missing):
        run_serial(asha(**kwargs), [1], tmp_path)


def test_asha_missing_metric_warns_once(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        analysis = run_serial(asha(metric="accuracy"), [1, 2], tmp_path,
                              stop={"training_iteration": 3})
    assert iterations_by_q(analysis) == {1: 3, 2: 3}
    warnings = [r for r in caplog.records
                if "'accuracy' is missing" in r.getMessage()]
    assert len(warnings) == 1
    assert "'score'" in warnings[0].getMessage()


def test_asha_conflicting_metric_with_run(tmp_path):
    with pytest.raises(InvalidConfig, match="already has metric"):
        run_serial(asha(), [1], tmp_path, metric="loss", mode="min")


def test_asha_with_function_without_checkpoints(tmp_path):
    def fn(config):
        for i in range(1, 10):
            tune.report(score=config["q"] * i)

    analysis = tune.run(fn, scheduler=asha(),
                        config={"q": tune.grid_search([5, 1, 8])},
                        max_concurrent_trials=1, local_dir=str(tmp_path),
                        verbose=0)
    assert iterations_by_q(analysis) == {5: 9, 1: 1, 8: 9}
    assert all(t.status == "TERMINATED" for t in analysis.trials)


def test_asha_debug_string_counts_stops(tmp_path):
    scheduler = asha()
    run_serial(scheduler, [5, 1, 2], tmp_path)
    assert "num_stopped=" in scheduler.debug_string()
    assert "Bracket: Iter 9.000" in scheduler.debug_string()


# ------------------------------------------------- median stopping rule


def median(**kwargs):
    args = dict(time_attr="training_iteration", metric="const", mode="max",
                grace_period=1, min_samples_required=2)
    args.update(kwargs)
    return MedianStoppingRule(**args)


@pytest.mark.parametrize("kwargs, message", [
    ({"grace_period": -1}, r"grace_period=-1.*>= 0"),
    ({"min_samples_required": 0}, r"min_samples_required=0.*int >= 1"),
    ({"min_time_slice": -2}, r"min_time_slice=-2"),
    ({"hard_stop": "no"}, r"hard_stop='no'"),
    ({"mode": "low"}, r"mode='low'"),
    ({"time_attr": 3}, r"time_attr=3"),
])
def test_median_rejects_invalid_arguments(kwargs, message):
    with pytest.raises(InvalidConfig, match=message):
        median(**kwargs)


def test_median_stops_below_median(tmp_path):
    analysis = run_serial(median(), [4, 3, 1, 2], tmp_path,
                          stop={"training_iteration": 4})
    for trial in analysis.trials:
        assert trial.status == "TERMINATED"
        assert trial.num_failures == 0
    # 4 and 3 have too few others to compare with and yield their slot;
    # 1 and 2 are below the median of the trials before them.
    assert iterations_by_q(analysis) == {4: 4, 3: 4, 1: 1, 2: 1}


def test_median_soft_stop_pauses_then_ends(tmp_path):
    analysis = run_serial(median(hard_stop=False), [4, 3, 1, 2], tmp_path,
                          stop={"training_iteration": 4})
    assert [t.status for t in analysis.trials] == ["TERMINATED"] * 4
    assert iterations_by_q(analysis) == {4: 4, 3: 4, 1: 1, 2: 1}


def test_median_mode_min(tmp_path):
    scheduler = median(metric="loss", mode="min", min_samples_required=1)
    analysis = run_serial(scheduler, [4, 1], tmp_path,
                          stop={"training_iteration": 3})
    assert iterations_by_q(analysis) == {4: 3, 1: 1}


def test_median_grace_period(tmp_path):
    scheduler = median(grace_period=3, min_samples_required=1)
    analysis = run_serial(scheduler, [4, 1], tmp_path,
                          stop={"training_iteration": 5})
    assert iterations_by_q(analysis) == {4: 5, 1: 3}


def test_median_without_metric_fails(tmp_path):
    with pytest.raises(InvalidConfig, match="MedianStoppingRule has no "
                                            "metric"):
        run_serial(median(metric=None), [1], tmp_path)


def test_median_does_not_restart_function(tmp_path):
    """A trial that cannot pause keeps running instead of starting over."""

    def fn(config):
        for i in range(1, 5):
            tune.report(const=config["q"], it=i)

    analysis = tune.run(fn, scheduler=median(),
                        config={"q": tune.grid_search([4, 3, 1])},
                        max_concurrent_trials=1, local_dir=str(tmp_path),
                        verbose=0)
    for trial in analysis.trials:
        assert trial.status == "TERMINATED"
        with open(os.path.join(trial.logdir, "progress.csv")) as f:
            its = [int(row["it"]) for row in csv.DictReader(f)]
        assert its == sorted(its)
        assert its[0] == 1
    assert iterations_by_q(analysis)[1] == 1


def test_schedulers_subclass_fifo():
    for scheduler in (asha(), median()):
        assert isinstance(scheduler, FIFOScheduler)


def test_hyperband_rejected_with_replacement():
    with pytest.raises(InvalidConfig, match="Use AsyncHyperBandScheduler"):
        HyperBandScheduler(metric="score", mode="max", max_t=81)
