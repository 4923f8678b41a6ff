"""run() end to end with real worker processes, pipes and files."""

import csv
import json
import os
import pickle
import signal
import time

import pytest

import trainable as tune
from trainable.errors import TuneError


class Guesser(tune.Trainable):
    def setup(self, config):
        self.password = 1024
        self.guess = config["guess"]

    def step(self):
        return {"diff": abs(self.guess - self.password)}


class Counter(tune.Trainable):
    def setup(self, config):
        self.count = 0

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


def read_lines(trial):
    with open(os.path.join(trial.logdir, "result.json")) as f:
        return [json.loads(line) for line in f]


def read_csv(trial):
    with open(os.path.join(trial.logdir, "progress.csv")) as f:
        return list(csv.DictReader(f))


def test_guesser_finds_best_config(tmp_path):
    analysis = tune.run(
        Guesser, stop={"training_iteration": 1}, num_samples=10,
        config={"guess": tune.randint(1, 10000)}, local_dir=str(tmp_path),
        verbose=0)
    assert len(analysis.trials) == 10
    assert all(t.status == "TERMINATED" for t in analysis.trials)
    best = analysis.get_best_config(metric="diff", mode="min")
    diffs = [t.last_result["diff"] for t in analysis.trials]
    assert abs(best["guess"] - 1024) == min(diffs)


def test_trial_files_written(tmp_path):
    analysis = tune.run(Counter, stop={"training_iteration": 3},
                        config={"lr": 0.1}, local_dir=str(tmp_path),
                        name="files", verbose=0, checkpoint_freq=2)
    trial = analysis.trials[0]
    assert os.path.dirname(trial.logdir) == str(tmp_path / "files")
    assert json.load(open(os.path.join(trial.logdir, "params.json"))) == {
        "lr": 0.1}
    with open(os.path.join(trial.logdir, "params.pkl"), "rb") as f:
        assert pickle.load(f) == {"lr": 0.1}
    lines = read_lines(trial)
    assert [r["training_iteration"] for r in lines] == [1, 2, 3]
    assert [int(r["count"]) for r in read_csv(trial)] == [1, 2, 3]
    checkpoints = sorted(d for d in os.listdir(trial.logdir)
                         if d.startswith("checkpoint_"))
    assert checkpoints == ["checkpoint_000002"]
    assert not [d for d in os.listdir(trial.logdir) if ".tmp-" in d]
    assert os.path.isfile(tmp_path / "files" / "experiment_state.json")


def test_function_api(tmp_path):
    def train_fn(config):
        for i in range(3):
            tune.report(loss=config["lr"] * (3 - i), step=i)

    analysis = tune.run(train_fn, config={"lr": tune.grid_search([1, 2])},
                        local_dir=str(tmp_path), verbose=0)
    assert [t.status for t in analysis.trials] == ["TERMINATED"] * 2
    assert sorted(t.last_result["loss"] for t in analysis.trials) == [1, 2]
    for trial in analysis.trials:
        assert trial.last_result["training_iteration"] == 3
        assert trial.last_result["done"] is True
        assert [r["step"] for r in read_lines(trial)] == [0, 1, 2]


def test_classic_reporter_argument(tmp_path):
    def train_fn(config, reporter):
        reporter(mean_accuracy=0.5)
        reporter(mean_accuracy=0.7)

    analysis = tune.run(train_fn, local_dir=str(tmp_path), verbose=0)
    assert analysis.trials[0].last_result["mean_accuracy"] == 0.7


def test_track_log(tmp_path):
    from trainable import track

    def train_fn(config):
        track.log(acc=1)

    analysis = tune.run(train_fn, local_dir=str(tmp_path), verbose=0)
    assert analysis.trials[0].last_result["acc"] == 1


def test_local_class_runs_under_each_start_method(tmp_path, start_method):
    class Local(tune.Trainable):
        def setup(self, config):
            self.factor = config["factor"]

        def step(self):
            return {"value": self.factor * (self.iteration + 1),
                    "cwd": os.getcwd(),
                    "omp": os.environ.get("OMP_NUM_THREADS")}

    analysis = tune.run(Local, config={"factor": tune.grid_search([2, 3])},
                        stop={"training_iteration": 2},
                        local_dir=str(tmp_path), verbose=0,
                        start_method=start_method)
    for trial in analysis.trials:
        result = trial.last_result
        assert result["value"] == trial.config["factor"] * 2
        assert result["cwd"] == trial.logdir
        assert result["omp"] == "1"


def test_lambda_in_config_under_spawn(tmp_path):
    def train_fn(config):
        tune.report(value=config["f"](3))

    double = tune.sample_from(lambda spec: (lambda x: x * 2))
    analysis = tune.run(train_fn, config={"f": double},
                        local_dir=str(tmp_path), verbose=0,
                        start_method="spawn")
    assert analysis.trials[0].last_result["value"] == 6


def test_two_trials_run_in_parallel(tmp_path):
    def sleeper(config):
        start = time.time()
        time.sleep(1.0)
        tune.report(start=start, end=time.time(), pid=os.getpid())

    analysis = tune.run(sleeper, num_samples=2, local_dir=str(tmp_path),
                        verbose=0, num_cpus=2)
    a, b = (t.last_result for t in analysis.trials)
    assert a["pid"] != b["pid"]
    assert a["start"] < b["end"]
    assert b["start"] < a["end"]


def test_cpu_slots_limit_concurrency(tmp_path):
    def sleeper(config):
        start = time.time()
        time.sleep(0.3)
        tune.report(start=start, end=time.time())

    analysis = tune.run(sleeper, num_samples=3, local_dir=str(tmp_path),
                        verbose=0, num_cpus=2,
                        resources_per_trial={"cpu": 2})
    spans = sorted((t.last_result["start"], t.last_result["end"])
                   for t in analysis.trials)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end - 0.05


def test_error_writes_traceback_and_raises(tmp_path):
    def broken(config):
        tune.report(x=1)
        raise ValueError("user bug here")

    with pytest.raises(TuneError, match="did not complete"):
        tune.run(broken, local_dir=str(tmp_path), name="err", verbose=0)
    analysis = tune.run(broken, local_dir=str(tmp_path), name="err2",
                        verbose=0, raise_on_failed_trial=False)
    trial = analysis.trials[0]
    assert trial.status == "ERROR"
    text = open(trial.error_file).read()
    assert "ValueError: user bug here" in text
    assert "in broken" in text


def test_killed_worker_restarts_from_checkpoint(tmp_path):
    class Dies(Counter):
        def step(self):
            result = super().step()
            marker = os.path.join(self.logdir, "died")
            if self.count == 4 and not os.path.exists(marker):
                open(marker, "w").close()
                os.kill(os.getpid(), signal.SIGKILL)
            return result

    analysis = tune.run(Dies, stop={"training_iteration": 6},
                        checkpoint_freq=2, max_failures=1,
                        local_dir=str(tmp_path), verbose=0)
    trial = analysis.trials[0]
    assert trial.status == "TERMINATED"
    assert trial.num_failures == 1
    assert "SIGKILL" in open(trial.error_file).read()
    iterations = [r["training_iteration"] for r in read_lines(trial)]
    assert iterations == [1, 2, 3, 4, 5, 6]
    assert [r["count"] for r in read_lines(trial)] == [1, 2, 3, 4, 5, 6]
    assert [int(r["training_iteration"]) for r in read_csv(trial)] == [
        1, 2, 3, 4, 5, 6]


def test_os_exit_without_retries_is_error(tmp_path):
    class Exits(tune.Trainable):
        def step(self):
            os._exit(3)

    analysis = tune.run(Exits, local_dir=str(tmp_path), verbose=0,
                        raise_on_failed_trial=False)
    trial = analysis.trials[0]
    assert trial.status == "ERROR"
    assert "exited with code 3" in open(trial.error_file).read()


def test_checkpoint_at_end_and_restore(tmp_path):
    first = tune.run(Counter, stop={"training_iteration": 2},
                     checkpoint_at_end=True, local_dir=str(tmp_path),
                     verbose=0)
    path = first.trials[0].checkpoint.value
    second = tune.run(Counter, stop={"training_iteration": 4},
                      checkpoint_at_end=True, local_dir=str(tmp_path),
                      restore=path, verbose=0)
    trial = second.trials[0]
    assert trial.last_result["count"] == 4
    saved = trial.checkpoint.value
    assert saved != path
    restored = Counter(config={})
    restored.restore(saved)
    assert restored.count == 4
    assert restored.iteration == 4


def test_analysis_loads_from_disk(tmp_path):
    tune.run(Guesser, stop={"training_iteration": 1}, num_samples=3,
             config={"guess": tune.randint(1, 2000)},
             local_dir=str(tmp_path), name="disk", verbose=0)
    analysis = tune.ExperimentAnalysis(str(tmp_path / "disk"))
    assert len(analysis.trials) == 3
    best = analysis.get_best_trial("diff", "min")
    assert best.last_result["diff"] == min(
        t.last_result["diff"] for t in analysis.trials)


def test_log_to_file_captures_output(tmp_path):
    def noisy(config):
        print("to stdout", flush=True)
        import sys

        print("to stderr", file=sys.stderr, flush=True)
        os.system("echo from a subprocess")
        tune.report(x=1)

    analysis = tune.run(noisy, log_to_file=True, local_dir=str(tmp_path),
                        verbose=0)
    logdir = analysis.trials[0].logdir
    out = open(os.path.join(logdir, "stdout")).read()
    assert "to stdout" in out
    assert "from a subprocess" in out
    assert "to stderr" in open(os.path.join(logdir, "stderr")).read()
    both = tune.run(noisy, log_to_file="all.log", local_dir=str(tmp_path),
                    verbose=0)
    text = open(os.path.join(both.trials[0].logdir, "all.log")).read()
    assert "to stdout" in text
    assert "to stderr" in text


@pytest.mark.parametrize("value", ["a/b", ("x",), 5])
def test_log_to_file_rejects_bad_value(tmp_path, value):
    with pytest.raises(tune.InvalidConfig, match="log_to_file"):
        tune.run(Counter, log_to_file=value, local_dir=str(tmp_path),
                 verbose=0)


class RayResources:
    """Stands in for Ray Tune's Resources object."""

    def __init__(self, cpu, gpu=0):
        self.cpu = cpu
        self.gpu = gpu


@pytest.mark.parametrize("request_value", [
    {"cpu": 2}, {"CPU": 2, "GPU": 0}, RayResources(cpu=2)])
def test_default_resource_request_used(tmp_path, request_value):
    class Wide(tune.Trainable):
        @classmethod
        def default_resource_request(cls, config):
            return request_value

        def step(self):
            start = time.time()
            time.sleep(0.3)
            return {"start": start, "end": time.time(),
                    "omp": os.environ["OMP_NUM_THREADS"]}

    analysis = tune.run(Wide, num_samples=2, num_cpus=2,
                        stop={"training_iteration": 1},
                        local_dir=str(tmp_path), verbose=0)
    first, second = sorted((t.last_result for t in analysis.trials),
                           key=lambda r: r["start"])
    assert second["start"] >= first["end"] - 0.05
    assert first["omp"] == "2"


def test_cleanup_error_keeps_trial_terminated(tmp_path, caplog):
    class BadCleanup(Counter):
        def cleanup(self):
            raise RuntimeError("cleanup broke")

    analysis = tune.run(BadCleanup, stop={"training_iteration": 2},
                        local_dir=str(tmp_path), verbose=0)
    assert analysis.trials[0].status == "TERMINATED"
    assert "cleanup broke" in caplog.text
