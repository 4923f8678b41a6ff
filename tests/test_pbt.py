"""Population-based training: explore, argument checks, and real
experiments that exploit, checkpoint and log."""

import csv
import glob
import json
import logging
import os
import pickle
import random
import re
import time

import pytest

import trainable as tune
from trainable.errors import InvalidConfig
from trainable.schedulers import (
    FIFOScheduler,
    PopulationBasedTraining,
    TrialScheduler,
)
from trainable.schedulers.pbt import explore


# ----------------------------------------------------------- trainables


# Long enough for trials in parallel workers to overlap, so that PBT has a
# population to rank.
STEP_S = 0.01


class DictState(tune.Trainable):
    """Adds lr to ``s`` each step, and counts its steps in its state."""

    def setup(self, config):
        self.s = 0.0
        self.steps = 0

    def step(self):
        time.sleep(STEP_S)
        self.s += self.config["lr"]
        self.steps += 1
        return {"s": self.s, "steps": self.steps}

    def save_checkpoint(self, tmp_dir):
        return {"s": self.s, "steps": self.steps}

    def load_checkpoint(self, checkpoint):
        self.s = checkpoint["s"]
        self.steps = checkpoint["steps"]


class FileState(tune.Trainable):
    def setup(self, config):
        self.v = 0.0
        self.steps = 0

    def step(self):
        time.sleep(STEP_S)
        self.v += self.config["lr"]
        self.steps += 1
        return {"v": self.v, "steps": self.steps}

    def save_checkpoint(self, tmp_dir):
        with open(os.path.join(tmp_dir, "v"), "wb") as f:
            pickle.dump((self.v, self.steps), f)
        return tmp_dir

    def load_checkpoint(self, path):
        with open(os.path.join(path, "v"), "rb") as f:
            self.v, self.steps = pickle.load(f)


def read_rows(trial):
    with open(os.path.join(trial.logdir, "result.json")) as f:
        return [json.loads(line) for line in f]


def read_policy(experiment_dir, name="pbt_global.txt"):
    path = os.path.join(experiment_dir, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f]


def orig_tag(trial):
    """The experiment tag before PBT appended ``@perturbed[...]``."""
    return trial.experiment_tag.split("@perturbed")[0]


def experiment_dir(analysis):
    return os.path.dirname(analysis.trials[0].logdir)


def assert_all_terminated(analysis):
    for trial in analysis.trials:
        assert trial.status == "TERMINATED", (trial, trial.error_msg)
        assert trial.num_failures == 0, (trial, trial.error_msg)


def pbt(**kwargs):
    args = dict(time_attr="training_iteration", metric="s", mode="max",
                perturbation_interval=3,
                hyperparam_mutations={"lr": [0.1, 1.0, 5.0]})
    args.update(kwargs)
    return PopulationBasedTraining(**args)


# --------------------------------------------------------------- explore


class FixedRandom:
    """Stands in for the random module: random() returns queued values,
    choice() the first element."""

    def __init__(self, *values):
        self.values = list(values)

    def random(self):
        return self.values.pop(0)

    def choice(self, values):
        return values[0]


def test_explore_list_moves_to_neighbour():
    values = [1, 2, 3, 4]
    down = explore({"a": 3}, {"a": values}, 0.25, rng=FixedRandom(0.9, 0.9))
    up = explore({"a": 3}, {"a": values}, 0.25, rng=FixedRandom(0.9, 0.1))
    assert down["a"] == 2
    assert up["a"] == 4


def test_explore_list_stays_inside_ends():
    values = [1, 2, 3]
    low = explore({"a": 1}, {"a": values}, 0.0, rng=FixedRandom(0.5, 0.9))
    high = explore({"a": 3}, {"a": values}, 0.0, rng=FixedRandom(0.5, 0.1))
    assert low["a"] == 1
    assert high["a"] == 3


def test_explore_list_resamples():
    resampled = explore({"a": 3}, {"a": [7, 8]}, 0.5,
                        rng=FixedRandom(0.1))
    unknown = explore({"a": 99}, {"a": [7, 8]}, 0.0,
                      rng=FixedRandom(0.9))
    assert resampled["a"] == 7
    assert unknown["a"] == 7


def test_explore_domain_scales_value():
    space = {"lr": tune.uniform(0.0, 1.0)}
    up = explore({"lr": 0.5}, space, 0.25, rng=FixedRandom(0.9, 0.9))
    down = explore({"lr": 0.5}, space, 0.25, rng=FixedRandom(0.9, 0.1))
    assert up["lr"] == pytest.approx(0.6)
    assert down["lr"] == pytest.approx(0.4)


def test_explore_int_value_stays_int():
    space = {"n": tune.randint(1, 100)}
    new = explore({"n": 10}, space, 0.0, rng=FixedRandom(0.9, 0.9))
    assert new["n"] == 12
    assert type(new["n"]) is int


def test_explore_domain_resamples_in_bounds():
    rng = random.Random(5)
    for _ in range(50):
        new = explore({"lr": 0.5}, {"lr": tune.loguniform(1e-4, 1e-2)},
                      1.0, rng=rng)
        assert 1e-4 <= new["lr"] < 1e-2


def test_explore_choice_domain_acts_as_list():
    space = {"opt": tune.choice(["sgd", "adam", "rmsprop"])}
    new = explore({"opt": "adam"}, space, 0.0, rng=FixedRandom(0.9, 0.1))
    assert new["opt"] == "rmsprop"


def test_explore_callable_resamples():
    new = explore({"x": 3}, {"x": lambda: 42}, 1.0, rng=FixedRandom(0.0))
    assert new["x"] == 42


def test_explore_nested_and_custom_fn():
    config = {"opt": {"lr": 1.0, "keep": "me"}, "other": [1]}

    def custom(new_config):
        new_config["custom"] = True
        return new_config

    new = explore(config, {"opt": {"lr": [0.5, 1.0, 2.0]}}, 0.0,
                  custom_explore_fn=custom, rng=FixedRandom(0.9, 0.9))
    assert new["opt"] == {"lr": 0.5, "keep": "me"}
    assert new["custom"] is True
    assert config == {"opt": {"lr": 1.0, "keep": "me"}, "other": [1]}
    assert new["other"] is not config["other"]


def test_explore_custom_fn_must_return_dict():
    with pytest.raises(InvalidConfig, match="custom_explore_fn returned"):
        explore({"a": 1}, {"a": [1, 2]}, 0.0,
                custom_explore_fn=lambda config: None)


# -------------------------------------------------------- argument checks


@pytest.mark.parametrize("kwargs, message", [
    ({"quantile_fraction": 0}, r"quantile_fraction=0.*> 0"),
    ({"quantile_fraction": 0.6}, r"quantile_fraction=0\.6.*\(0, 0\.5\]"),
    ({"perturbation_interval": 0}, r"perturbation_interval=0.*> 0"),
    ({"perturbation_interval": -5}, r"perturbation_interval=-5"),
    ({"hyperparam_mutations": {}}, "needs hyperparam_mutations"),
    ({"hyperparam_mutations": {"lr": []}}, r"\['lr'\] is an empty list"),
    ({"hyperparam_mutations": {"lr": 0.1}}, r"\['lr'\] is 0\.1"),
    ({"hyperparam_mutations": {"lr": tune.grid_search([1, 2])}},
     "grid_search"),
    ({"hyperparam_mutations": [0.1]}, "must be a dict"),
    ({"resample_probability": 1.5}, r"resample_probability=1\.5"),
    ({"mode": "maximum"}, r"mode='maximum'.*'min' or 'max'"),
    ({"time_attr": ""}, "time_attr=''"),
    ({"synch": "yes"}, r"synch='yes'.*True or False"),
    ({"custom_explore_fn": 3}, "custom_explore_fn=3"),
])
def test_pbt_rejects_invalid_arguments(kwargs, message):
    with pytest.raises(InvalidConfig, match=message):
        pbt(**kwargs)


def test_pbt_custom_fn_alone_is_enough():
    scheduler = PopulationBasedTraining(
        metric="s", mode="max", custom_explore_fn=lambda config: config)
    assert scheduler.metric == "s"


def test_pbt_reward_attr_means_max():
    scheduler = PopulationBasedTraining(
        reward_attr="acc", hyperparam_mutations={"lr": [1, 2]})
    assert (scheduler.metric, scheduler.mode) == ("acc", "max")


@pytest.mark.parametrize("kwargs, missing", [
    ({"metric": None, "mode": None}, "no metric and mode"),
    ({"metric": "s", "mode": None}, "no mode"),
    ({"metric": None, "mode": "max"}, "no metric"),
])
def test_pbt_without_metric_or_mode_fails_at_start(tmp_path, kwargs,
                                                   missing):
    with pytest.raises(InvalidConfig, match=missing):
        tune.run(DictState, scheduler=pbt(**kwargs), config={"lr": 1.0},
                 stop={"training_iteration": 2}, local_dir=str(tmp_path),
                 verbose=0)


def test_pbt_takes_metric_and_mode_from_run(tmp_path):
    scheduler = pbt(metric=None, mode=None)
    analysis = tune.run(DictState, scheduler=scheduler, metric="s",
                        mode="max", config={"lr": 1.0},
                        stop={"training_iteration": 2},
                        local_dir=str(tmp_path), verbose=0)
    assert (scheduler.metric, scheduler.mode) == ("s", "max")
    assert_all_terminated(analysis)


def test_pbt_missing_metric_raises_with_keys(tmp_path):
    scheduler = pbt(metric="accuracy", perturbation_interval=1)
    with pytest.raises(InvalidConfig) as info:
        tune.run(DictState, scheduler=scheduler, config={"lr": 1.0},
                 stop={"training_iteration": 3}, local_dir=str(tmp_path),
                 verbose=0)
    text = str(info.value)
    assert "'accuracy' is missing" in text
    assert "'steps'" in text
    assert "require_attrs=False" in text


def test_pbt_missing_metric_warns_without_require_attrs(tmp_path, caplog):
    scheduler = pbt(metric="accuracy", perturbation_interval=1,
                    require_attrs=False)
    with caplog.at_level(logging.WARNING, logger="trainable.schedulers"):
        analysis = tune.run(DictState, scheduler=scheduler,
                            config={"lr": 1.0},
                            stop={"training_iteration": 3},
                            local_dir=str(tmp_path), verbose=0)
    assert_all_terminated(analysis)
    warnings = [r for r in caplog.records if "'accuracy'" in r.getMessage()]
    assert len(warnings) == 1


def test_pbt_fills_missing_config_keys(tmp_path):
    scheduler = pbt(hyperparam_mutations={"lr": [0.5, 2.0],
                                          "opt": {"wd": [0.1]}})
    analysis = tune.run(DictState, scheduler=scheduler, config={},
                        stop={"training_iteration": 1},
                        local_dir=str(tmp_path), verbose=0)
    config = analysis.trials[0].config
    assert config["lr"] in (0.5, 2.0)
    assert config["opt"] == {"wd": 0.1}


# ------------------------------------------------------------ experiments


def test_pbt_exploit_logs_each_result_once(tmp_path):
    """Check the iteration policy. After an exploit a trial continues from
    the donor checkpoint's iteration. Its log keeps every result once, in
    arrival order, and the policy files record the jump."""
    scheduler = pbt()
    analysis = tune.run(
        DictState, scheduler=scheduler,
        config={"lr": tune.grid_search([0.1, 1.0, 5.0, 0.1])},
        stop={"training_iteration": 15}, local_dir=str(tmp_path),
        verbose=0, num_cpus=2)
    assert_all_terminated(analysis)
    policy = read_policy(experiment_dir(analysis))
    assert policy, "no exploit happened"
    for trial in analysis.trials:
        rows = read_rows(trial)
        stamps = [row["timestamp"] for row in rows]
        assert stamps == sorted(stamps)
        assert len({row["time_total_s"] for row in rows}) == len(rows)
        assert rows[-1]["training_iteration"] == 15
        # The restored state and the iteration counter move together.
        assert all(row["steps"] == row["training_iteration"]
                   for row in rows)
        iterations = [row["training_iteration"] for row in rows]
        pairs = list(zip(iterations, iterations[1:]))
        exploits = [p for p in policy
                    if p[0] == orig_tag(trial)]
        jumps = [(a, b) for a, b in pairs if b != a + 1]
        for before, restored_from in ((p[2], p[3]) for p in exploits):
            assert (before, restored_from + 1) in pairs
        assert len(jumps) <= len(exploits)


def test_pbt_policy_files_have_ray_layout(tmp_path):
    analysis = tune.run(
        DictState, scheduler=pbt(),
        config={"lr": tune.grid_search([0.1, 1.0, 5.0, 0.1])},
        stop={"training_iteration": 9}, local_dir=str(tmp_path),
        verbose=0, num_cpus=2)
    directory = experiment_dir(analysis)
    rows = read_policy(directory)
    assert rows
    tags = {orig_tag(t): t for t in analysis.trials}
    for row in rows:
        assert len(row) == 6
        trial_tag, donor_tag, before, restored, donor_config, new = row
        assert trial_tag in tags
        assert donor_tag in tags
        assert trial_tag != donor_tag
        assert isinstance(before, int) and isinstance(restored, int)
        assert restored >= 1
        assert set(new) == {"lr"}
        assert new["lr"] in (0.1, 1.0, 5.0)
        assert donor_config["lr"] in (0.1, 1.0, 5.0)
    per_trial = glob.glob(os.path.join(directory, "pbt_policy_*.txt"))
    assert per_trial
    received = {row[0] for row in rows}
    for path in per_trial:
        trial_id = os.path.basename(path)[len("pbt_policy_"):-len(".txt")]
        trial = next(t for t in analysis.trials if t.trial_id == trial_id)
        own = read_policy(directory, os.path.basename(path))
        assert own[-1][0] == orig_tag(trial)
        assert orig_tag(trial) in received
        assert "@perturbed[lr=" in trial.experiment_tag


def test_pbt_retention_keeps_clone_source(tmp_path):
    analysis = tune.run(
        FileState, scheduler=pbt(metric="v", perturbation_interval=2),
        config={"lr": tune.grid_search([0.1, 0.5, 1.0, 0.1])},
        checkpoint_freq=1, keep_checkpoints_num=1, checkpoint_score_attr="v",
        stop={"training_iteration": 12}, local_dir=str(tmp_path),
        verbose=0, num_cpus=2)
    assert_all_terminated(analysis)
    assert read_policy(experiment_dir(analysis)), "no exploit happened"
    for trial in analysis.trials:
        kept = [d for d in os.listdir(trial.logdir)
                if d.startswith("checkpoint_")]
        assert len(kept) <= 2
        rows = read_rows(trial)
        assert all(row["steps"] == row["training_iteration"]
                   for row in rows)
        assert rows[-1]["training_iteration"] == 12


def test_pbt_skips_function_without_checkpoints(tmp_path, caplog):
    def never_saves(config, checkpoint_dir=None):
        for i in range(10):
            time.sleep(STEP_S)
            tune.report(score=config["a"] * (i + 1), it=i + 1)

    scheduler = PopulationBasedTraining(
        time_attr="training_iteration", metric="score", mode="max",
        perturbation_interval=2, hyperparam_mutations={"a": [1, 2, 3]})
    with caplog.at_level(logging.WARNING):
        analysis = tune.run(never_saves, scheduler=scheduler,
                            config={"a": tune.grid_search([1, 2, 3, 1])},
                            local_dir=str(tmp_path), verbose=0, num_cpus=2)
    assert_all_terminated(analysis)
    for trial in analysis.trials:
        with open(os.path.join(trial.logdir, "progress.csv")) as f:
            its = [int(row["it"]) for row in csv.DictReader(f)]
        assert its == list(range(1, 11))
        assert trial.last_result["training_iteration"] == 10
    assert read_policy(experiment_dir(analysis)) == []
    assert any("no checkpoint" in r.getMessage() for r in caplog.records)


def test_pbt_clones_function_with_checkpoints(tmp_path):
    def saves(config, checkpoint_dir=None):
        state = {"i": 0, "score": 0.0}
        if checkpoint_dir:
            with open(os.path.join(checkpoint_dir, "state.json")) as f:
                state = json.load(f)
        while state["i"] < 100:
            time.sleep(STEP_S)
            state["i"] += 1
            state["score"] += config["a"]
            with tune.checkpoint_dir(step=state["i"]) as directory:
                with open(os.path.join(directory, "state.json"), "w") as f:
                    json.dump(state, f)
            tune.report(score=state["score"], i=state["i"])

    scheduler = PopulationBasedTraining(
        time_attr="training_iteration", metric="score", mode="max",
        perturbation_interval=3, hyperparam_mutations={"a": [1, 2, 3]})
    analysis = tune.run(saves, scheduler=scheduler,
                        config={"a": tune.grid_search([1, 2, 3, 1])},
                        stop={"training_iteration": 12},
                        local_dir=str(tmp_path), verbose=0, num_cpus=2)
    assert_all_terminated(analysis)
    assert read_policy(experiment_dir(analysis)), "no exploit happened"
    for trial in analysis.trials:
        rows = read_rows(trial)
        reported = [row for row in rows if "i" in row]
        assert all(row["i"] == row["training_iteration"]
                   for row in reported)
        assert trial.last_result["i"] == 12


def test_pbt_dict_checkpoints_every_iteration(tmp_path):
    scheduler = pbt(perturbation_interval=1,
                    hyperparam_mutations={"lr": [0.5, 1.0, 2.0]})
    analysis = tune.run(
        DictState, scheduler=scheduler, num_samples=6, checkpoint_freq=1,
        config={"lr": tune.choice([0.5, 1.0, 2.0])},
        stop={"training_iteration": 20}, local_dir=str(tmp_path),
        verbose=0, num_cpus=2, reuse_actors=True)
    assert_all_terminated(analysis)
    for trial in analysis.trials:
        assert isinstance(trial.last_result["s"], float)
        assert trial.last_result["training_iteration"] == 20


def test_pbt_state_file_with_memory_checkpoints(tmp_path):
    class Mult(tune.Trainable):
        def setup(self, config):
            self.n = 0

        def step(self):
            time.sleep(STEP_S)
            self.n += 1
            return {"s": self.n * self.config["m"]}

        def save_checkpoint(self, tmp_dir):
            return {"n": self.n}

        def load_checkpoint(self, checkpoint):
            self.n = checkpoint["n"]

    scheduler = pbt(perturbation_interval=2,
                    hyperparam_mutations={"m": [1, 2]})
    tune.run(Mult, name="state", scheduler=scheduler,
             config={"m": tune.grid_search([1, 2, 1])},
             stop={"training_iteration": 6}, local_dir=str(tmp_path),
             verbose=0, num_cpus=2)
    taken = re.search(r"(\d+) checkpoints", scheduler.debug_string())
    assert int(taken.group(1)) > 0
    state_files = glob.glob(str(tmp_path / "state" / "experiment_state*"))
    assert state_files
    with open(sorted(state_files)[-1]) as f:
        state = json.load(f)
    assert len(state["trials"]) == 3
    analysis = tune.ExperimentAnalysis(str(tmp_path / "state"))
    assert sorted(t.status for t in analysis.trials) == ["TERMINATED"] * 3


def test_pbt_synch_waits_for_population(tmp_path):
    scheduler = pbt(perturbation_interval=2, synch=True)
    analysis = tune.run(
        DictState, scheduler=scheduler,
        config={"lr": tune.grid_search([0.1, 1.0, 5.0, 0.1])},
        stop={"training_iteration": 8}, local_dir=str(tmp_path),
        verbose=0, num_cpus=2)
    assert_all_terminated(analysis)
    rows = {t.trial_id: read_rows(t) for t in analysis.trials}
    for boundary in (2, 4, 6):
        reached = max(
            min(r["timestamp"] for r in trial_rows
                if r["training_iteration"] == boundary)
            for trial_rows in rows.values())
        passed = min(
            min(r["timestamp"] for r in trial_rows
                if r["training_iteration"] == boundary + 1)
            for trial_rows in rows.values())
        assert passed >= reached, f"a trial passed {boundary} early"
    # One bottom trial per perturbation, cloned from a top trial paused at
    # the same iteration.
    policy = read_policy(experiment_dir(analysis))
    assert [(row[2], row[3]) for row in policy] == [(2, 2), (4, 4), (6, 6)]
    for trial_rows in rows.values():
        assert trial_rows[-1]["training_iteration"] == 8


def test_exploit_on_final_result_ends_trial(tmp_path):
    """A trial whose result meets the stop criterion ends there, even if a
    scheduler asked to clone another checkpoint into it."""

    class ExploitAtEnd(FIFOScheduler):
        exploited = False

        def on_trial_result(self, runner, trial, result):
            iteration = result["training_iteration"]
            if iteration == 1:
                runner.save_trial_to_memory(trial)
            elif iteration == 3 and not self.exploited:
                self.exploited = True
                blob = runner.checkpoint_blob(trial.checkpoint)
                runner.exploit_trial(trial, blob, dict(trial.config))
                return self.NOOP
            return self.CONTINUE

    analysis = tune.run(DictState, scheduler=ExploitAtEnd(),
                        config={"lr": 1.0}, stop={"training_iteration": 3},
                        local_dir=str(tmp_path), verbose=0)
    trial = analysis.trials[0]
    assert trial.status == "TERMINATED"
    assert [r["training_iteration"] for r in read_rows(trial)] == [1, 2, 3]


def test_pbt_decisions_against_stand_in_runner():
    scheduler = pbt(perturbation_interval=1, quantile_fraction=0.5)
    runner = FakeRunner()
    good = runner.add(scheduler, "0_good")
    bad = runner.add(scheduler, "1_bad")
    assert runner.result(scheduler, good, s=10.0) == TrialScheduler.CONTINUE
    # The donor has no checkpoint from a perturbation yet: no exploit.
    assert runner.result(scheduler, bad, s=1.0) == TrialScheduler.CONTINUE
    assert runner.exploits == []
    assert runner.result(scheduler, good, s=20.0, iteration=2) == (
        TrialScheduler.CONTINUE)
    assert runner.saved == [good]
    # The save reply arrives.
    good.memory_checkpoint = runner.memory_checkpoint(good, iteration=2)
    decision = runner.result(scheduler, bad, s=2.0, iteration=2)
    assert decision == TrialScheduler.NOOP
    (trial, blob, config), = runner.exploits
    assert trial is bad
    assert blob == good.memory_checkpoint.value
    assert config["lr"] in (0.1, 1.0, 5.0)
    assert bad.experiment_tag.startswith("1_bad@perturbed[lr=")


class FakeRunner:
    """Stands in for the runner methods PBT calls, and records the
    requests."""

    def __init__(self):
        self.trials = []
        self.saved = []
        self.exploits = []

    def add(self, scheduler, tag):
        from trainable.trial import Trial

        trial = Trial("T", {"lr": 1.0}, f"id_{tag}", experiment_tag=tag)
        trial.status = Trial.RUNNING
        self.trials.append(trial)
        scheduler.on_trial_add(self, trial)
        return trial

    def result(self, scheduler, trial, s, iteration=1):
        result = {"s": s, "training_iteration": iteration}
        trial.last_result = result
        return scheduler.on_trial_result(self, trial, result)

    @staticmethod
    def memory_checkpoint(trial, iteration):
        from trainable.trial import Checkpoint

        return Checkpoint(Checkpoint.MEMORY, b"blob-" + trial.trial_id
                          .encode(), {"training_iteration": iteration},
                          iteration)

    def get_trials(self):
        return self.trials

    def startable_trials(self):
        return []

    def has_resources_for_trial(self, trial):
        return True

    def save_trial_to_memory(self, trial):
        self.saved.append(trial)

    @staticmethod
    def checkpoint_blob(checkpoint):
        return None if checkpoint is None else checkpoint.value

    def exploit_trial(self, trial, blob, new_config, donor_result=None):
        self.exploits.append((trial, blob, new_config))
        return True


class Approach(tune.Trainable):
    """Moves towards 10 at a rate set by its config."""

    def setup(self, config):
        self.w = 0.0

    def step(self):
        self.w += self.config["lr"] * (10 - self.w)
        return {"loss": (10 - self.w) ** 2}

    def save_checkpoint(self, tmp_dir):
        return {"w": self.w}

    def load_checkpoint(self, checkpoint):
        self.w = checkpoint["w"]


class SavesAndWaits(FIFOScheduler):
    """Requests an in-memory checkpoint and waits for it at once."""

    def __init__(self):
        self.seen = []

    def on_trial_result(self, runner, trial, result):
        if result["training_iteration"] == 2:
            runner.save_trial_to_memory(trial)
            runner.wait_for_memory_checkpoint(trial)
            self.seen.append(trial.memory_checkpoint.iteration)
        return TrialScheduler.CONTINUE


def test_wait_for_memory_checkpoint_returns_saved_state(tmp_path):
    # PBT waits like this for a donor whose save has not returned yet,
    # instead of skipping the exploit.
    scheduler = SavesAndWaits()
    analysis = tune.run(Approach, scheduler=scheduler, num_samples=2,
                        config={"lr": 0.1}, stop={"training_iteration": 4},
                        local_dir=str(tmp_path), verbose=0)
    assert scheduler.seen == [2, 2]
    for trial in analysis.trials:
        assert trial.status == "TERMINATED"
        assert trial.last_result["training_iteration"] == 4


class Accumulate(tune.Trainable):
    """Adds its learning rate each step and records what it restores."""

    def setup(self, config):
        self.w = 0.0
        self.restored = None

    def step(self):
        self.w += self.config["lr"]
        return {"score": self.w, "restored": self.restored}

    def save_checkpoint(self, tmp_dir):
        return {"w": self.w}

    def load_checkpoint(self, checkpoint):
        self.w = checkpoint["w"]
        self.restored = checkpoint["w"]


class ExploitOnce(FIFOScheduler):
    """Clones a prepared checkpoint into the trial at iteration 2."""

    def __init__(self, blob):
        self.blob = blob
        self.done = False

    def on_trial_result(self, runner, trial, result):
        if not self.done and result["training_iteration"] == 2:
            self.done = True
            runner.exploit_trial(trial, self.blob,
                                 dict(trial.config, lr=5.0))
            return TrialScheduler.NOOP
        return TrialScheduler.CONTINUE


@pytest.mark.parametrize("checkpoint_freq", [0, 1])
def test_exploit_restores_donor_state(tmp_path, checkpoint_freq):
    donor = Accumulate(config={"lr": 5.0})
    for _ in range(3):
        donor.train()
    blob = donor.save_to_object()
    # With checkpoint_freq=1 the trial saves its own state at iteration 2
    # after the exploit is decided; it must still restart from the donor.
    analysis = tune.run(Accumulate, config={"lr": 0.1},
                        scheduler=ExploitOnce(blob),
                        stop={"training_iteration": 5},
                        checkpoint_freq=checkpoint_freq,
                        local_dir=str(tmp_path), verbose=0)
    trial = analysis.trials[0]
    rows = [json.loads(line) for line in
            open(os.path.join(trial.logdir, "result.json"))]
    assert [r["training_iteration"] for r in rows] == [1, 2, 4, 5]
    assert [r["restored"] for r in rows] == [None, None, 15.0, 15.0]
    assert rows[-1]["score"] == pytest.approx(25.0)


class ExploitFromFinished(FIFOScheduler):
    """Tries to clone a checkpoint taken at the stop iteration."""

    def __init__(self, blob):
        self.blob = blob
        self.accepted = []

    def on_trial_result(self, runner, trial, result):
        if result["training_iteration"] == 2:
            self.accepted.append(runner.exploit_trial(
                trial, self.blob, dict(trial.config),
                donor_result={"training_iteration": 5}))
            return TrialScheduler.NOOP if self.accepted[-1] else (
                TrialScheduler.CONTINUE)
        return TrialScheduler.CONTINUE


def test_exploit_from_checkpoint_past_stop_refused(tmp_path):
    donor = Accumulate(config={"lr": 5.0})
    for _ in range(5):
        donor.train()
    scheduler = ExploitFromFinished(donor.save_to_object())
    analysis = tune.run(Accumulate, config={"lr": 0.1},
                        scheduler=scheduler,
                        stop={"training_iteration": 5},
                        local_dir=str(tmp_path), verbose=0)
    trial = analysis.trials[0]
    assert scheduler.accepted == [False]
    rows = [json.loads(line) for line in
            open(os.path.join(trial.logdir, "result.json"))]
    assert [r["training_iteration"] for r in rows] == [1, 2, 3, 4, 5]
    assert trial.last_result["score"] == pytest.approx(0.5)
