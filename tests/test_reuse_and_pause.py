"""Worker reuse (reuse_actors) and pausing trials through the runner."""

import json
import os

import pytest

import trainable as tune
from trainable.schedulers import FIFOScheduler, TrialScheduler

RESETS = 0


class Tracked(tune.Trainable):
    def setup(self, config):
        self.seen = []

    def step(self):
        self.seen.append(self.config["id"])
        return {"id": self.config["id"], "pid": os.getpid(),
                "resets": RESETS, "trial": self.trial_id,
                "logdir": self.logdir, "seen": list(self.seen)}

    def reset_config(self, new_config):
        global RESETS
        RESETS += 1
        self.seen = []
        return True


def test_reused_worker_resets_trial_state(tmp_path):
    analysis = tune.run(
        Tracked, config={"id": tune.grid_search(list(range(4)))},
        reuse_actors=True, max_concurrent_trials=1,
        stop={"training_iteration": 2}, local_dir=str(tmp_path), verbose=0)
    results = [t.last_result for t in analysis.trials]
    assert len({r["pid"] for r in results}) == 1
    assert sorted(r["resets"] for r in results) == [0, 1, 2, 3]
    for trial, result in zip(analysis.trials, results):
        assert result["training_iteration"] == 2
        assert result["trial"] == trial.trial_id
        assert result["logdir"] == trial.logdir
        assert result["seen"] == [trial.config["id"]] * 2


@pytest.mark.parametrize("returned", [False, None, "yes"])
def test_reset_not_true_starts_fresh_worker(tmp_path, returned):
    class Refuses(Tracked):
        def reset_config(self, new_config):
            return returned

    analysis = tune.run(
        Refuses, config={"id": tune.grid_search([0, 1, 2])},
        reuse_actors=True, max_concurrent_trials=1,
        stop={"training_iteration": 2}, local_dir=str(tmp_path), verbose=0)
    results = [t.last_result for t in analysis.trials]
    assert all(t.status == "TERMINATED" for t in analysis.trials)
    assert len({r["pid"] for r in results}) == 3
    for trial, result in zip(analysis.trials, results):
        assert result["seen"] == [trial.config["id"]] * 2


def test_function_trainable_reused(tmp_path):
    def train_fn(config):
        for step in range(3):
            tune.report(loss=config["lr"] * (3 - step), pid=os.getpid())

    analysis = tune.run(
        train_fn, config={"lr": tune.grid_search([0.1, 0.2, 0.3, 0.4])},
        reuse_actors=True, max_concurrent_trials=1,
        local_dir=str(tmp_path), verbose=0)
    assert all(t.status == "TERMINATED" for t in analysis.trials)
    assert sorted(t.last_result["loss"] for t in analysis.trials) == [
        0.1, 0.2, 0.3, 0.4]
    assert sorted(t.config["lr"] for t in analysis.trials) == [
        0.1, 0.2, 0.3, 0.4]
    assert len({t.last_result["pid"] for t in analysis.trials}) == 1
    for trial in analysis.trials:
        assert trial.last_result["training_iteration"] == 3


class PauseEvery(FIFOScheduler):
    """Pause every trial after every ``every`` results."""

    def __init__(self, every):
        self.every = every
        self.pauses = 0

    def on_trial_result(self, runner, trial, result):
        if result["training_iteration"] % self.every == 0:
            self.pauses += 1
            return TrialScheduler.PAUSE
        return TrialScheduler.CONTINUE

    def choose_trial_to_run(self, runner):
        # Prefer paused trials, so trials really alternate.
        startable = runner.startable_trials()
        paused = [t for t in startable if t.status == "PAUSED"]
        for trial in paused + startable:
            if runner.has_resources_for_trial(trial):
                return trial
        return None


class Accumulator(tune.Trainable):
    def setup(self, config):
        self.total = 0

    def step(self):
        self.total += self.config["inc"]
        return {"total": self.total, "pid": os.getpid()}

    def save_checkpoint(self, tmp_dir):
        return {"total": self.total}

    def load_checkpoint(self, checkpoint):
        self.total = checkpoint["total"]

    def reset_config(self, new_config):
        self.total = 0
        return True


@pytest.mark.parametrize("reuse", [False, True])
def test_pause_and_resume_many_times(tmp_path, reuse):
    scheduler = PauseEvery(every=1)
    analysis = tune.run(
        Accumulator, config={"inc": tune.grid_search([1, 10, 100])},
        scheduler=scheduler, stop={"training_iteration": 6},
        reuse_actors=reuse, num_cpus=2, local_dir=str(tmp_path),
        verbose=0)
    assert scheduler.pauses >= 15
    for trial in analysis.trials:
        assert trial.status == "TERMINATED"
        lines = [json.loads(line) for line in
                 open(os.path.join(trial.logdir, "result.json"))]
        assert [r["training_iteration"] for r in lines] == [1, 2, 3, 4, 5, 6]
        inc = trial.config["inc"]
        assert [r["total"] for r in lines] == [inc * i for i in range(1, 7)]


def test_pause_function_trainable_with_checkpoints(tmp_path):
    def counting(config, checkpoint_dir=None):
        start = 0
        if checkpoint_dir:
            with open(os.path.join(checkpoint_dir, "n")) as f:
                start = int(f.read())
        for n in range(start, 5):
            with tune.checkpoint_dir(step=n) as d:
                with open(os.path.join(d, "n"), "w") as f:
                    f.write(str(n + 1))
            tune.report(n=n + 1)

    analysis = tune.run(counting, num_samples=2, scheduler=PauseEvery(2),
                        local_dir=str(tmp_path), verbose=0, num_cpus=1)
    for trial in analysis.trials:
        lines = [json.loads(line) for line in
                 open(os.path.join(trial.logdir, "result.json"))]
        assert [r["n"] for r in lines] == [1, 2, 3, 4, 5]
        assert [r["training_iteration"] for r in lines] == [1, 2, 3, 4, 5]


def test_function_without_checkpoint_is_not_paused(tmp_path):
    def plain(config):
        for i in range(4):
            tune.report(i=i + 1)

    analysis = tune.run(plain, num_samples=2, scheduler=PauseEvery(1),
                        local_dir=str(tmp_path), verbose=0, num_cpus=1)
    for trial in analysis.trials:
        lines = [json.loads(line) for line in
                 open(os.path.join(trial.logdir, "result.json"))]
        assert [r["i"] for r in lines] == [1, 2, 3, 4]
        assert trial.status == "TERMINATED"


def test_large_paused_checkpoint_goes_to_disk(tmp_path):
    class Big(Accumulator):
        def save_checkpoint(self, tmp_dir):
            with open(os.path.join(tmp_dir, "blob"), "wb") as f:
                f.write(b"x" * 200_000)
            with open(os.path.join(tmp_dir, "total"), "w") as f:
                f.write(str(self.total))
            return tmp_dir

        def load_checkpoint(self, path):
            with open(os.path.join(path, "total")) as f:
                self.total = int(f.read())

    analysis = tune.run(Big, config={"inc": 2}, scheduler=PauseEvery(2),
                        stop={"training_iteration": 4},
                        max_memory_checkpoint_bytes=100_000,
                        local_dir=str(tmp_path), verbose=0)
    trial = analysis.trials[0]
    assert trial.last_result["total"] == 8
    names = sorted(d for d in os.listdir(trial.logdir)
                   if d.startswith("checkpoint_"))
    assert "checkpoint_000002" in names


def open_result_files():
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.endswith(("result.json", "progress.csv")):
            found.append(target)
    return found


@pytest.mark.parametrize("reuse", [False, True])
def test_finished_trials_close_result_files(tmp_path, reuse):
    class Count(tune.Callback):
        most = 0

        def on_trial_complete(self, iteration, trials, trial, **info):
            Count.most = max(Count.most, len(open_result_files()))

    tune.run(Tracked, config={"id": tune.grid_search(list(range(8)))},
             reuse_actors=reuse, max_concurrent_trials=1,
             stop={"training_iteration": 1}, local_dir=str(tmp_path),
             verbose=0, callbacks=[Count()])
    assert Count.most == 0
    assert open_result_files() == []
