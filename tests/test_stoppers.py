"""Tests of trainable.stoppers."""

import datetime
import logging
import math
import pickle
import time

import pytest

from trainable import stoppers
from trainable.errors import InvalidConfig
from trainable.stoppers import (
    CombinedStopper,
    DictStopper,
    EarlyStopping,
    ExperimentPlateauStopper,
    FunctionStopper,
    MaximumIterationStopper,
    NoopStopper,
    Stopper,
    TimeoutStopper,
    TrialPlateauStopper,
    build_stopper,
)


class FakeClock:
    """A monotonic clock that only moves when a test advances it."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(stoppers, "_monotonic", fake)
    return fake


class RecordingStopper(Stopper):
    def __init__(self, decision=False):
        self.decision = decision
        self.seen = []

    def __call__(self, trial_id, result):
        self.seen.append((trial_id, result))
        return self.decision

    def stop_all(self):
        return self.decision

    def get_state(self):
        return {"seen": len(self.seen)}

    def set_state(self, state):
        self.restored = state


# ---------------------------------------------------------------------------
# Base classes
# ---------------------------------------------------------------------------


def test_stopper_base_call_not_implemented():
    with pytest.raises(NotImplementedError, match="__call__"):
        Stopper()("t", {})


def test_stopper_base_defaults():
    stopper = Stopper()
    assert stopper.stop_all() is False
    assert stopper.get_state() == {}
    stopper.set_state({})


def test_noop_stopper():
    stopper = NoopStopper()
    assert stopper("t", {"training_iteration": 10 ** 9}) is False
    assert stopper.stop_all() is False


# ---------------------------------------------------------------------------
# DictStopper (stop={...})
# ---------------------------------------------------------------------------


def test_dict_stopper_threshold_is_inclusive():
    stopper = DictStopper({"training_iteration": 3})
    assert stopper("t", {"training_iteration": 2}) is False
    assert stopper("t", {"training_iteration": 3}) is True
    assert stopper("t", {"training_iteration": 4}) is True


def test_dict_stopper_any_key_stops():
    stopper = DictStopper({"a": 10, "b": 10})
    assert stopper("t", {"a": 1, "b": 1}) is False
    assert stopper("t", {"a": 1, "b": 11}) is True


def test_dict_stopper_float_time_total():
    stopper = DictStopper({"time_total_s": 1.0})
    assert stopper("t", {"time_total_s": 0.99}) is False
    assert stopper("t", {"time_total_s": 1.02}) is True


def test_dict_stopper_nested_key_in_nested_result():
    stopper = DictStopper({"info/loss": 5})
    assert stopper("t", {"info": {"loss": 4}}) is False
    assert stopper("t", {"info": {"loss": 5}}) is True


def test_dict_stopper_nested_key_in_flat_result():
    stopper = DictStopper({"info/loss": 5})
    assert stopper("t", {"info/loss": 6}) is True


def test_dict_stopper_nested_criteria_dict():
    stopper = DictStopper({"info": {"loss": 5}})
    assert stopper.criteria == {"info/loss": 5}
    assert stopper("t", {"info": {"loss": 7}}) is True


def test_dict_stopper_missing_key_ignored():
    stopper = DictStopper({"score": 50})
    assert stopper("t", {"i": 0}) is False


def test_dict_stopper_none_value_does_not_stop():
    stopper = DictStopper({"score": 50})
    assert stopper("t", {"score": None}) is False


def test_dict_stopper_nan_value_does_not_stop():
    stopper = DictStopper({"score": 50})
    assert stopper("t", {"score": math.nan}) is False


def test_dict_stopper_bool_value_compares():
    stopper = DictStopper({"converged": 1})
    assert stopper("t", {"converged": False}) is False
    assert stopper("t", {"converged": True}) is True


def test_dict_stopper_late_and_none_key_sequence():
    """A metric that appears late and is None once stops at >= 50."""
    stopper = DictStopper({"score": 50})
    stopped_at = None
    for i in range(10):
        result = {"i": i}
        if i >= 3:
            result["score"] = i * 10
        if i == 4:
            result["score"] = None
        if stopper("t", result):
            stopped_at = i
            break
    assert stopped_at == 5


def test_dict_stopper_warns_once_per_missing_key(caplog):
    caplog.set_level(logging.WARNING, logger="trainable.stoppers")
    stopper = DictStopper({"nonexistent": 1, "other": 2})
    for i in range(5):
        stopper("trial_1", {"score": i, "info": {"loss": 1}})
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    first = next(m for m in messages if "'nonexistent'" in m)
    assert "'score'" in first
    assert "'info/loss'" in first
    assert "trial_1" in first


def test_dict_stopper_warning_omits_config_keys(caplog):
    caplog.set_level(logging.WARNING, logger="trainable.stoppers")
    DictStopper({"x": 1})("t", {"score": 1, "config": {"lr": 0.1}})
    assert "config/lr" not in caplog.text


def test_dict_stopper_no_warning_for_none(caplog):
    caplog.set_level(logging.WARNING, logger="trainable.stoppers")
    DictStopper({"score": 1})("t", {"score": None})
    assert caplog.records == []


@pytest.mark.parametrize("value", ["high", [1, 2], object()])
def test_dict_stopper_uncomparable_value_raises(value):
    stopper = DictStopper({"score": 5})
    with pytest.raises(InvalidConfig) as info:
        stopper("t", {"score": value})
    message = str(info.value)
    assert "'score'" in message
    assert repr(value) in message
    assert type(value).__name__ in message


@pytest.mark.parametrize("threshold", ["10", None, [1], math.nan])
def test_dict_stopper_invalid_threshold_raises(threshold):
    with pytest.raises(InvalidConfig) as info:
        DictStopper({"score": threshold})
    assert "'score'" in str(info.value)
    assert repr(threshold) in str(info.value)


def test_dict_stopper_not_a_dict_raises():
    with pytest.raises(InvalidConfig, match="list"):
        DictStopper([("a", 1)])


# ---------------------------------------------------------------------------
# FunctionStopper, CombinedStopper, MaximumIterationStopper
# ---------------------------------------------------------------------------


def test_function_stopper_calls_function():
    calls = []

    def stop_fn(trial_id, result):
        calls.append(trial_id)
        return result["x"] > 2

    stopper = FunctionStopper(stop_fn)
    assert stopper("a", {"x": 1}) is False
    assert stopper("b", {"x": 3}) is True
    assert calls == ["a", "b"]
    assert stopper.stop_all() is False


def test_function_stopper_not_callable_raises():
    with pytest.raises(InvalidConfig, match="callable"):
        FunctionStopper(5)


def test_function_stopper_is_valid_function():
    assert FunctionStopper.is_valid_function(lambda t, r: False)
    assert not FunctionStopper.is_valid_function(NoopStopper())
    assert not FunctionStopper.is_valid_function(5)


def test_combined_stopper_every_stopper_sees_results():
    first = RecordingStopper(decision=True)
    second = RecordingStopper(decision=False)
    combined = CombinedStopper(first, second)
    assert combined("t", {"a": 1}) is True
    assert len(second.seen) == 1


def test_combined_stopper_stop_all_or():
    assert CombinedStopper(NoopStopper(), RecordingStopper(True)).stop_all()
    assert not CombinedStopper(NoopStopper(), NoopStopper()).stop_all()


def test_combined_stopper_state_roundtrip():
    first, second = RecordingStopper(), RecordingStopper()
    combined = CombinedStopper(first, second)
    combined("t", {})
    state = combined.get_state()
    assert state == {"stoppers": [{"seen": 1}, {"seen": 1}]}
    combined.set_state(state)
    assert first.restored == {"seen": 1}


def test_combined_stopper_rejects_non_stopper():
    with pytest.raises(InvalidConfig, match="position 1"):
        CombinedStopper(NoopStopper(), {"a": 1})


def test_maximum_iteration_stopper_counts_per_trial():
    stopper = MaximumIterationStopper(max_iter=2)
    assert stopper("a", {}) is False
    assert stopper("b", {}) is False
    assert stopper("a", {}) is True
    assert stopper("b", {}) is True
    assert stopper.stop_all() is False


def test_maximum_iteration_stopper_state_roundtrip():
    stopper = MaximumIterationStopper(max_iter=3)
    stopper("a", {})
    stopper("a", {})
    restored = MaximumIterationStopper(max_iter=3)
    restored.set_state(stopper.get_state())
    assert restored("a", {}) is True


@pytest.mark.parametrize("bad", [0, -1, 2.5, "3", True])
def test_maximum_iteration_stopper_invalid(bad):
    with pytest.raises(InvalidConfig, match="max_iter"):
        MaximumIterationStopper(bad)


# ---------------------------------------------------------------------------
# TimeoutStopper: wall time while the driver runs
# ---------------------------------------------------------------------------


def test_timeout_stopper_clock_starts_at_first_call(clock):
    stopper = TimeoutStopper(10)
    clock.advance(100)  # setup time before the first call is not charged
    assert stopper.stop_all() is False
    clock.advance(9)
    assert stopper.stop_all() is False
    clock.advance(1)
    assert stopper.stop_all() is True


def test_timeout_stopper_explicit_start(clock):
    stopper = TimeoutStopper(5)
    stopper.start()
    clock.advance(5)
    assert stopper.stop_all() is True


def test_timeout_stopper_start_twice_keeps_clock(clock):
    stopper = TimeoutStopper(5)
    stopper.start()
    clock.advance(3)
    stopper.start()
    assert stopper.remaining_s == pytest.approx(2)


def test_timeout_stopper_trial_call_never_stops(clock):
    stopper = TimeoutStopper(1)
    assert stopper("t", {}) is False
    clock.advance(5)
    assert stopper("t", {}) is False
    assert stopper.stop_all() is True


def test_timeout_stopper_wall_time_not_sum_of_trials(clock):
    """Four parallel trials reporting for 2 s spend 2 s, not 8 s."""
    stopper = TimeoutStopper(3)
    stopper.start()
    for _ in range(20):
        clock.advance(0.1)
        for trial_id in "abcd":
            stopper(trial_id, {"time_this_iter_s": 0.1})
    assert stopper.stop_all() is False
    assert stopper.remaining_s == pytest.approx(1.0)


def test_timeout_stopper_timedelta(clock):
    stopper = TimeoutStopper(datetime.timedelta(minutes=1))
    assert stopper.timeout_s == 60
    stopper.start()
    clock.advance(59)
    assert stopper.stop_all() is False
    clock.advance(1)
    assert stopper.stop_all() is True


def test_timeout_stopper_zero_budget(clock):
    assert TimeoutStopper(0).stop_all() is True


def test_timeout_stopper_state_stores_remaining(clock):
    stopper = TimeoutStopper(10)
    stopper.start()
    clock.advance(4)
    assert stopper.get_state() == {"timeout_s": 10.0, "remaining_s": 6.0}


def test_timeout_stopper_resume_skips_downtime(clock):
    stopper = TimeoutStopper(10)
    stopper.start()
    clock.advance(4)
    state = stopper.get_state()

    clock.advance(3600)  # the driver was down for an hour
    resumed = TimeoutStopper(10)
    resumed.set_state(state)
    clock.advance(100)  # setup of the resumed run is not charged either
    assert resumed.stop_all() is False
    clock.advance(5.9)
    assert resumed.stop_all() is False
    clock.advance(0.1)
    assert resumed.stop_all() is True


def test_timeout_stopper_pickle_pauses_clock(clock):
    stopper = TimeoutStopper(10)
    stopper.start()
    clock.advance(4)
    data = pickle.dumps(stopper)
    clock.advance(3600)
    restored = pickle.loads(data)
    assert restored.remaining_s == pytest.approx(6)
    assert restored.stop_all() is False


def test_timeout_stopper_logs_once(clock, caplog):
    caplog.set_level(logging.INFO, logger="trainable.stoppers")
    stopper = TimeoutStopper(1)
    stopper.start()
    clock.advance(2)
    for _ in range(3):
        assert stopper.stop_all() is True
    assert len(caplog.records) == 1


def test_timeout_stopper_invalid_state_keeps_budget(clock, caplog):
    stopper = TimeoutStopper(10)
    stopper.set_state({"remaining_s": "x"})
    assert stopper.remaining_s == 10
    assert "Ignored" in caplog.text


@pytest.mark.parametrize("bad", ["10", None, -1, math.nan, math.inf, True])
def test_timeout_stopper_invalid_timeout(bad):
    with pytest.raises(InvalidConfig, match="timeout"):
        TimeoutStopper(bad)


def test_timeout_stopper_real_clock():
    stopper = TimeoutStopper(0.05)
    assert stopper.stop_all() is False
    time.sleep(0.1)
    assert stopper.stop_all() is True


# ---------------------------------------------------------------------------
# TrialPlateauStopper
# ---------------------------------------------------------------------------


def test_trial_plateau_stops_on_flat_metric():
    stopper = TrialPlateauStopper("loss", std=0.01, num_results=3,
                                  grace_period=3)
    decisions = [stopper("t", {"loss": value}) for value in [1.0, 1.0, 1.0]]
    assert decisions == [False, False, True]


def test_trial_plateau_keeps_changing_metric():
    stopper = TrialPlateauStopper("loss", num_results=3, grace_period=3)
    decisions = [stopper("t", {"loss": v}) for v in [1.0, 2.0, 3.0, 4.0]]
    assert decisions == [False] * 4


@pytest.mark.parametrize("odd", [math.inf, -math.inf, math.nan])
def test_trial_plateau_inf_and_nan_do_not_stop(odd):
    stopper = TrialPlateauStopper("loss", num_results=2, grace_period=2)
    stopper("t", {"loss": odd})
    assert stopper("t", {"loss": odd}) is False
    assert stopper("t", {"loss": 1.0}) is False
    assert stopper("t", {"loss": 1.0}) is True


def test_experiment_plateau_inf_does_not_stop():
    stopper = ExperimentPlateauStopper("loss", top=2, mode="max")
    stopper("a", {"loss": math.inf})
    assert stopper("b", {"loss": math.inf}) is False
    stopper = ExperimentPlateauStopper("loss", top=2, mode="max")
    stopper("a", {"loss": -math.inf})
    assert stopper("b", {"loss": math.inf}) is False


def test_trial_plateau_grace_period():
    stopper = TrialPlateauStopper("loss", num_results=2, grace_period=4)
    decisions = [stopper("t", {"loss": 1.0}) for _ in range(4)]
    assert decisions == [False, False, False, True]


def test_trial_plateau_trials_are_separate():
    stopper = TrialPlateauStopper("loss", num_results=2, grace_period=2)
    assert stopper("a", {"loss": 1.0}) is False
    assert stopper("b", {"loss": 1.0}) is False
    assert stopper("a", {"loss": 1.0}) is True


def test_trial_plateau_missing_or_none_metric_does_not_stop():
    stopper = TrialPlateauStopper("loss", num_results=2, grace_period=2)
    assert stopper("t", {"loss": 1.0}) is False
    assert stopper("t", {}) is False
    assert stopper("t", {"loss": None}) is False
    assert stopper("t", {"loss": 1.0}) is False
    assert stopper("t", {"loss": 1.0}) is True


def test_trial_plateau_nested_metric():
    stopper = TrialPlateauStopper("info/loss", num_results=2, grace_period=2)
    stopper("t", {"info": {"loss": 1.0}})
    assert stopper("t", {"info": {"loss": 1.0}}) is True


def test_trial_plateau_threshold_min():
    stopper = TrialPlateauStopper("loss", num_results=2, grace_period=2,
                                  metric_threshold=0.5, mode="min")
    assert stopper("t", {"loss": 1.0}) is False
    assert stopper("t", {"loss": 1.0}) is False  # flat but above 0.5
    stopper = TrialPlateauStopper("loss", num_results=2, grace_period=2,
                                  metric_threshold=0.5, mode="min")
    stopper("t", {"loss": 0.4})
    assert stopper("t", {"loss": 0.4}) is True


def test_trial_plateau_threshold_max():
    stopper = TrialPlateauStopper("acc", num_results=2, grace_period=2,
                                  metric_threshold=0.9, mode="max")
    stopper("t", {"acc": 0.5})
    assert stopper("t", {"acc": 0.5}) is False
    stopper("t", {"acc": 0.95})
    assert stopper("t", {"acc": 0.95}) is True


def test_trial_plateau_zero_threshold_needs_mode():
    with pytest.raises(InvalidConfig, match="mode"):
        TrialPlateauStopper("loss", metric_threshold=0)


def test_trial_plateau_state_roundtrip():
    stopper = TrialPlateauStopper("loss", num_results=2, grace_period=2)
    stopper("t", {"loss": 1.0})
    restored = TrialPlateauStopper("loss", num_results=2, grace_period=2)
    restored.set_state(pickle.loads(pickle.dumps(stopper.get_state())))
    assert restored("t", {"loss": 1.0}) is True


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"std": 0}, "std"),
        ({"num_results": 0}, "num_results"),
        ({"grace_period": -1}, "grace_period"),
        ({"mode": "median"}, "mode"),
        ({"metric_threshold": "x", "mode": "min"}, "metric_threshold"),
    ],
)
def test_trial_plateau_invalid_arguments(kwargs, name):
    with pytest.raises(InvalidConfig, match=name):
        TrialPlateauStopper("loss", **kwargs)


# ---------------------------------------------------------------------------
# ExperimentPlateauStopper
# ---------------------------------------------------------------------------


def test_experiment_plateau_stops_when_top_flat():
    stopper = ExperimentPlateauStopper("loss", top=3, mode="min")
    decisions = [stopper("t", {"loss": 0.5}) for _ in range(3)]
    assert decisions == [False, False, True]
    assert stopper.stop_all() is True


def test_experiment_plateau_patience():
    stopper = ExperimentPlateauStopper("loss", top=2, patience=2)
    decisions = [stopper("t", {"loss": 0.5}) for _ in range(4)]
    assert decisions == [False, False, True, True]


def test_experiment_plateau_mode_max_keeps_largest():
    stopper = ExperimentPlateauStopper("acc", top=2, mode="max")
    stopper("a", {"acc": 0.1})
    stopper("b", {"acc": 0.9})
    assert stopper("c", {"acc": 0.9}) is True


def test_experiment_plateau_spread_does_not_stop():
    stopper = ExperimentPlateauStopper("loss", top=2, std=0.001)
    stopper("a", {"loss": 1.0})
    assert stopper("b", {"loss": 2.0}) is False


def test_experiment_plateau_ignores_missing_metric(caplog):
    caplog.set_level(logging.WARNING, logger="trainable.stoppers")
    stopper = ExperimentPlateauStopper("loss", top=2)
    assert stopper("t", {"other": 1}) is False
    assert stopper("t", {"loss": None}) is False
    assert stopper("t", {"loss": math.nan}) is False
    assert len(caplog.records) == 1
    assert "'other'" in caplog.text


def test_experiment_plateau_non_numeric_raises():
    stopper = ExperimentPlateauStopper("loss", top=2)
    with pytest.raises(InvalidConfig, match="str"):
        stopper("t", {"loss": "low"})


def test_experiment_plateau_state_roundtrip():
    stopper = ExperimentPlateauStopper("loss", top=2)
    stopper("t", {"loss": 0.5})
    restored = ExperimentPlateauStopper("loss", top=2)
    restored.set_state(stopper.get_state())
    assert restored("t", {"loss": 0.5}) is True


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"mode": "avg"}, "mode"),
        ({"top": 1}, "top"),
        ({"patience": -1}, "patience"),
        ({"std": 0.0}, "std"),
    ],
)
def test_experiment_plateau_invalid_arguments(kwargs, name):
    with pytest.raises(InvalidConfig, match=name):
        ExperimentPlateauStopper("loss", **kwargs)


def test_early_stopping_alias_warns():
    with pytest.warns(DeprecationWarning, match="ExperimentPlateauStopper"):
        stopper = EarlyStopping("loss", top=2)
    assert isinstance(stopper, ExperimentPlateauStopper)


# ---------------------------------------------------------------------------
# build_stopper
# ---------------------------------------------------------------------------


def test_build_stopper_none():
    assert isinstance(build_stopper(None), NoopStopper)


def test_build_stopper_dict():
    stopper = build_stopper({"training_iteration": 2})
    assert isinstance(stopper, DictStopper)
    assert stopper("t", {"training_iteration": 2}) is True


def test_build_stopper_function():
    stopper = build_stopper(lambda trial_id, result: result["x"] > 1)
    assert isinstance(stopper, FunctionStopper)
    assert stopper("t", {"x": 2}) is True


def test_build_stopper_instance_returned_as_is():
    instance = MaximumIterationStopper(3)
    assert build_stopper(instance) is instance


def test_build_stopper_duck_typed_object():
    class ForeignStopper:
        def __call__(self, trial_id, result):
            return result.get("x", 0) > 1

        def stop_all(self):
            return True

    stopper = build_stopper(ForeignStopper())
    assert isinstance(stopper, Stopper)
    assert stopper("t", {"x": 2}) is True
    assert stopper.stop_all() is True
    assert stopper.get_state() == {}


def test_build_stopper_class_raises():
    with pytest.raises(InvalidConfig, match="instance"):
        build_stopper(NoopStopper)


@pytest.mark.parametrize("bad", [5, "training_iteration", [1], 2.5])
def test_build_stopper_invalid_type(bad):
    with pytest.raises(InvalidConfig) as info:
        build_stopper(bad)
    assert type(bad).__name__ in str(info.value)
