"""The Trainable base class, used directly in this process."""

import os
import pickle

import pytest

import trainable as tune
from trainable.errors import (
    CheckpointError,
    ResultTypeError,
    TrainableDefinitionError,
)

AUTOMATIC_FIELDS = {
    "training_iteration", "time_this_iter_s", "time_total_s",
    "timesteps_total", "done", "trial_id", "experiment_id", "date",
    "timestamp", "pid", "hostname", "node_ip", "iterations_since_restore",
    "time_since_restore", "config",
}


class Counter(tune.Trainable):
    def setup(self, config):
        self.count = config.get("start", 0)

    def step(self):
        self.count += 1
        return {"count": self.count}

    def save_checkpoint(self, tmp_dir):
        path = os.path.join(tmp_dir, "count.pkl")
        with open(path, "wb") as f:
            pickle.dump(self.count, f)
        return path

    def load_checkpoint(self, path):
        with open(path, "rb") as f:
            self.count = pickle.load(f)


class DictCounter(Counter):
    def save_checkpoint(self, tmp_dir):
        return {"count": self.count}

    def load_checkpoint(self, checkpoint):
        self.count = checkpoint["count"]


class ClassicCounter(tune.Trainable):
    def _setup(self, config):
        self.count = 0
        self.stopped = False

    def _train(self):
        self.count += 1
        return {"count": self.count}

    def _save(self, tmp_dir):
        return {"count": self.count}

    def _restore(self, checkpoint):
        self.count = checkpoint["count"]

    def _stop(self):
        self.stopped = True


def test_train_adds_automatic_fields():
    t = Counter(config={"start": 5})
    result = t.train()
    assert AUTOMATIC_FIELDS <= set(result)
    assert result["count"] == 6
    assert result["training_iteration"] == 1
    assert result["iterations_since_restore"] == 1
    assert result["done"] is False
    assert result["pid"] == os.getpid()
    assert result["config"] == {"start": 5}
    assert t.iteration == 1


def test_setup_receives_deep_copy_of_config():
    seen = {}

    class Mutator(tune.Trainable):
        def setup(self, config):
            config["nested"]["x"] = 99
            seen["config"] = config

        def step(self):
            return {}

    config = {"nested": {"x": 1}}
    t = Mutator(config=config)
    assert t.config["nested"]["x"] == 1
    assert seen["config"]["nested"]["x"] == 99


def test_time_totals_accumulate():
    t = Counter()
    first = t.train()
    second = t.train()
    assert second["time_total_s"] >= first["time_total_s"]
    assert second["time_total_s"] == pytest.approx(
        first["time_this_iter_s"] + second["time_this_iter_s"])


def test_timesteps_accumulate():
    class Steps(tune.Trainable):
        def step(self):
            return {"timesteps_this_iter": 10, "episodes_this_iter": 2}

    t = Steps()
    t.train()
    result = t.train()
    assert result["timesteps_total"] == 20
    assert result["episodes_total"] == 4


@pytest.mark.parametrize("cls", [Counter, DictCounter, ClassicCounter])
def test_save_restore_continues(cls, tmp_path):
    t = cls(config={})
    for _ in range(3):
        t.train()
    path = t.save(str(tmp_path))
    assert os.path.basename(os.path.dirname(path) if os.path.isfile(path)
                            else path) == "checkpoint_000003"
    fresh = cls(config={})
    fresh.restore(path)
    assert fresh.iteration == 3
    result = fresh.train()
    assert result["count"] == 4
    assert result["training_iteration"] == 4
    assert result["iterations_since_restore"] == 1


@pytest.mark.parametrize("cls", [Counter, DictCounter, ClassicCounter])
def test_save_to_object_round_trip(cls):
    t = cls(config={})
    t.train()
    t.train()
    blob = t.save_to_object()
    assert isinstance(blob, (bytes, bytearray))
    fresh = cls(config={})
    fresh.restore_from_object(blob)
    assert fresh.iteration == 2
    assert fresh.train()["count"] == 3


def test_save_to_object_leaves_no_files(tmp_path):
    t = Counter(config={})
    t._logdir = str(tmp_path)
    t.train()
    t.save_to_object()
    assert os.listdir(tmp_path) == []


def test_restore_from_object_uses_fresh_directory():
    paths = []

    class RemembersPath(Counter):
        def load_checkpoint(self, path):
            paths.append(path)
            super().load_checkpoint(path)

    t = RemembersPath(config={})
    t.train()
    blob = t.save_to_object()
    for _ in range(2):
        RemembersPath(config={}).restore_from_object(blob)
    assert paths[0] != paths[1]
    assert not os.path.exists(paths[0])


def test_classic_names_are_aliased():
    t = ClassicCounter(config={})
    assert t.train()["count"] == 1
    t.stop()
    assert t.stopped


def test_both_names_of_one_hook_rejected():
    with pytest.raises(TrainableDefinitionError, match="_train.*step"):
        class Both(tune.Trainable):
            def _train(self):
                return {}

            def step(self):
                return {}


def test_subclass_may_override_classic_with_current():
    class Child(ClassicCounter):
        def step(self):
            return {"child": True}

    assert Child(config={}).train()["child"] is True


@pytest.mark.parametrize("bad", [None, 3, [1, 2], "loss"])
def test_step_returning_non_dict_rejected(bad):
    class Bad(tune.Trainable):
        def step(self):
            return bad

    with pytest.raises(ResultTypeError, match="must return a dict"):
        Bad().train()


def test_step_returning_non_string_keys_rejected():
    class Bad(tune.Trainable):
        def step(self):
            return {1: 2}

    with pytest.raises(ResultTypeError, match="keys must be strings"):
        Bad().train()


def test_missing_step_names_the_fix():
    with pytest.raises(TrainableDefinitionError, match="step"):
        tune.Trainable().train()


def test_save_path_outside_checkpoint_rejected(tmp_path):
    class Outside(Counter):
        def save_checkpoint(self, tmp_dir):
            path = tmp_path / "elsewhere.pkl"
            path.write_bytes(b"x")
            return str(path)

    t = Outside()
    t.train()
    with pytest.raises(CheckpointError, match="outside the checkpoint"):
        t.save(str(tmp_path / "ckpts"))
    assert not [p for p in os.listdir(tmp_path / "ckpts")
                if p.startswith("checkpoint_")]


def test_restore_missing_path_rejected(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        Counter().restore(str(tmp_path / "nope"))


def test_truncated_checkpoint_reported(tmp_path):
    t = Counter()
    t.train()
    path = t.save(str(tmp_path))
    with open(path, "r+b") as f:
        f.truncate(1)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        Counter().restore(path)


def test_failed_save_leaves_no_checkpoint_dir(tmp_path):
    class Failing(Counter):
        def save_checkpoint(self, tmp_dir):
            open(os.path.join(tmp_dir, "partial"), "w").close()
            raise RuntimeError("disk full")

    t = Failing()
    t.train()
    with pytest.raises(RuntimeError):
        t.save(str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_newer_checkpoint_version_rejected(tmp_path):
    import json

    from trainable.checkpoint import METADATA_FILE

    t = Counter()
    t.train()
    path = t.save(str(tmp_path))
    meta_path = os.path.join(os.path.dirname(path), METADATA_FILE)
    meta = json.load(open(meta_path))
    meta["version"] = 99
    json.dump(meta, open(meta_path, "w"))
    with pytest.raises(CheckpointError, match="version 99"):
        Counter().restore(path)


def test_reset_clears_trial_state():
    class Resettable(Counter):
        def reset_config(self, new_config):
            self.count = new_config["start"]
            return True

    t = Resettable(config={"start": 0},
                   trial_info={"trial_id": "a", "logdir": "/tmp/a"})
    t.train()
    t.train()
    assert t.reset({"start": 10}, trial_info={"trial_id": "b",
                                              "logdir": "/tmp/b"})
    result = t.train()
    assert result["training_iteration"] == 1
    assert result["trial_id"] == "b"
    assert result["count"] == 11
    assert t.config == {"start": 10}
    assert t.logdir == "/tmp/b"


def test_reset_without_reset_config_returns_false():
    t = Counter()
    assert t.reset({"start": 1}) is False
