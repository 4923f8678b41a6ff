"""Checkpoints through run(): frequency, retention, restore, numbering."""

import json
import os
import pickle

import pytest

import trainable as tune


class Weights(tune.Trainable):
    def setup(self, config):
        self.w = 0

    def step(self):
        self.w += 1
        return {"w": self.w}

    def save_checkpoint(self, tmp_dir):
        path = os.path.join(tmp_dir, "w.pkl")
        with open(path, "wb") as f:
            pickle.dump(self.w, f)
        return path

    def load_checkpoint(self, path):
        with open(path, "rb") as f:
            self.w = pickle.load(f)


ACC = [0.1, 0.9, 0.3, 0.5, 0.2]


class Scored(tune.Trainable):
    def step(self):
        acc = ACC[self.iteration]
        return {"acc": acc, "loss": 1 - acc}

    def save_checkpoint(self, tmp_dir):
        with open(os.path.join(tmp_dir, "it"), "w") as f:
            f.write(str(self.iteration))
        return tmp_dir

    def load_checkpoint(self, path):
        pass


def checkpoint_dirs(trial):
    return sorted(d for d in os.listdir(trial.logdir)
                  if d.startswith("checkpoint_"))


def test_restored_run_saves_new_state(tmp_path):
    first = tune.run(Weights, stop={"training_iteration": 2},
                     checkpoint_at_end=True, local_dir=str(tmp_path),
                     verbose=0)
    restored_from = first.trials[0].checkpoint.value
    second = tune.run(Weights, stop={"training_iteration": 4},
                      checkpoint_at_end=True, local_dir=str(tmp_path),
                      restore=restored_from, verbose=0)
    trial = second.trials[0]
    saved = trial.checkpoint.value
    fresh = Weights(config={})
    fresh.restore(saved)
    assert fresh.w == 4
    assert fresh.iteration == 4
    assert os.path.basename(os.path.dirname(saved)) == "checkpoint_000004"
    assert not os.path.samefile(os.path.dirname(saved),
                                os.path.dirname(restored_from))
    with open(restored_from, "rb") as f:
        assert pickle.load(f) == 2


def test_dict_checkpoint_through_run(tmp_path):
    class DictWeights(Weights):
        def save_checkpoint(self, tmp_dir):
            return {"w": self.w}

        def load_checkpoint(self, checkpoint):
            self.w = checkpoint["w"]

    first = tune.run(DictWeights, stop={"training_iteration": 3},
                     checkpoint_at_end=True, local_dir=str(tmp_path),
                     verbose=0)
    second = tune.run(DictWeights, stop={"training_iteration": 5},
                      restore=first.trials[0].checkpoint.value,
                      local_dir=str(tmp_path), verbose=0)
    assert second.trials[0].last_result["w"] == 5


@pytest.mark.parametrize("attr", ["acc", "min-loss"])
def test_retention_keeps_best_and_newest(tmp_path, attr):
    analysis = tune.run(Scored, checkpoint_freq=1, keep_checkpoints_num=1,
                        checkpoint_score_attr=attr,
                        stop={"training_iteration": 5},
                        local_dir=str(tmp_path), verbose=0)
    trial = analysis.trials[0]
    # The best (iteration 2: acc 0.9, loss 0.1) and the newest survive.
    assert checkpoint_dirs(trial) == ["checkpoint_000002",
                                      "checkpoint_000005"]
    best = analysis.get_best_checkpoint(trial, metric="acc", mode="max")
    with open(os.path.join(str(best), "it")) as f:
        assert f.read() == "2"
    worst = analysis.get_best_checkpoint(trial, metric="acc", mode="min")
    with open(os.path.join(str(worst), "it")) as f:
        assert f.read() == "5"


def test_retention_by_iteration_keeps_latest(tmp_path):
    analysis = tune.run(Scored, checkpoint_freq=1, keep_checkpoints_num=2,
                        stop={"training_iteration": 5},
                        local_dir=str(tmp_path), verbose=0)
    assert checkpoint_dirs(analysis.trials[0]) == [
        "checkpoint_000004", "checkpoint_000005"]


def test_checkpoint_at_end_adds_final(tmp_path):
    analysis = tune.run(Scored, checkpoint_freq=2, checkpoint_at_end=True,
                        stop={"training_iteration": 5},
                        local_dir=str(tmp_path), verbose=0)
    trial = analysis.trials[0]
    assert checkpoint_dirs(trial) == [
        "checkpoint_000002", "checkpoint_000004", "checkpoint_000005"]
    paths = analysis.get_trial_checkpoints_paths(trial, "acc")
    assert [value for _, value in paths] == [0.9, 0.5, 0.2]


def test_best_checkpoint_restores(tmp_path):
    analysis = tune.run(Weights, checkpoint_freq=1,
                        stop={"training_iteration": 3},
                        local_dir=str(tmp_path), verbose=0)
    best = analysis.get_best_checkpoint(analysis.trials[0], "w", "max")
    fresh = Weights(config={})
    fresh.restore(best)
    assert fresh.w == 3


def resumable_fn(config, checkpoint_dir=None):
    start = 0
    if checkpoint_dir:
        with open(os.path.join(checkpoint_dir, "s.json")) as f:
            start = json.load(f)["i"]
    for i in range(start, 4):
        with tune.checkpoint_dir(step=i) as d:
            with open(os.path.join(d, "s.json"), "w") as f:
                json.dump({"i": i + 1}, f)
        tune.report(i=i + 1)


def test_function_checkpoints_numbered_after_restore(tmp_path):
    first = tune.run(resumable_fn, local_dir=str(tmp_path),
                     stop={"training_iteration": 2}, verbose=0)
    trial = first.trials[0]
    assert checkpoint_dirs(trial) == ["checkpoint_000001",
                                      "checkpoint_000002"]
    second = tune.run(resumable_fn, local_dir=str(tmp_path),
                      restore=trial.checkpoint.value, verbose=0)
    resumed = second.trials[0]
    names = checkpoint_dirs(resumed)
    assert names == ["checkpoint_000003", "checkpoint_000004"]
    assert resumed.last_result["training_iteration"] == 4
    assert resumed.last_result["i"] == 4
    lines = [json.loads(line) for line in
             open(os.path.join(resumed.logdir, "result.json"))]
    assert [r["training_iteration"] for r in lines] == [3, 4]


def test_function_checkpoint_holds_its_state(tmp_path):
    analysis = tune.run(resumable_fn, local_dir=str(tmp_path), verbose=0)
    trial = analysis.trials[0]
    for name in checkpoint_dirs(trial):
        iteration = int(name.split("_")[-1])
        with open(os.path.join(trial.logdir, name, "s.json")) as f:
            assert json.load(f)["i"] == iteration


def test_function_without_checkpoints_ignores_checkpoint_at_end(tmp_path):
    def plain(config):
        tune.report(x=1)

    analysis = tune.run(plain, checkpoint_at_end=True,
                        local_dir=str(tmp_path), verbose=0)
    trial = analysis.trials[0]
    assert trial.status == "TERMINATED"
    assert checkpoint_dirs(trial) == []
    assert trial.checkpoint is None


def test_missing_save_checkpoint_is_trial_error(tmp_path):
    class NoSave(tune.Trainable):
        def step(self):
            return {"x": 1}

    analysis = tune.run(NoSave, checkpoint_freq=1,
                        stop={"training_iteration": 2},
                        local_dir=str(tmp_path), verbose=0,
                        raise_on_failed_trial=False)
    trial = analysis.trials[0]
    assert trial.status == "ERROR"
    assert "does not implement save_checkpoint" in open(
        trial.error_file).read()
