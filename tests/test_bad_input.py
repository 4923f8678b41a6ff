"""Bad input to run() and to trainables: clear errors, no hang, no orphan
process. Every error names the value and the fix."""

import math
import re
import threading

import pytest

import trainable as tune
from trainable.errors import (
    CheckpointError,
    InvalidConfig,
    InvalidSearchSpace,
    SerializationError,
    TuneError,
)


def plain(config):
    tune.report(x=config.get("n", 1))


class NotATrainable:
    pass


def bad_dirname(trial):
    return "a/b"


# (id, run() keyword arguments, exception, pattern the message must match)
RUN_CASES = [
    ("zero samples", dict(num_samples=0), InvalidConfig, "num_samples is 0"),
    ("negative samples", dict(num_samples=-2), InvalidConfig,
     "num_samples is -2.*-1"),
    ("config not dict", dict(config=[1]), InvalidConfig, "config must be"),
    ("mode invalid", dict(metric="x", mode="best"), InvalidConfig,
     "mode is 'best'"),
    ("metric without mode", dict(metric="x"), InvalidConfig,
     "give both or neither"),
    ("name with slash", dict(name="a/b"), InvalidConfig,
     "name is 'a/b'.*local_dir"),
    ("name dotdot", dict(name=".."), InvalidConfig, "name is '..'"),
    ("too many cpus", dict(resources_per_trial={"cpu": 10_000}),
     InvalidConfig, "10000 CPU"),
    ("gpus absent", dict(resources_per_trial={"cpu": 1, "gpu": 1},
                         num_gpus=0), InvalidConfig, "1 GPU.s. but 0"),
    ("unknown resource", dict(resources_per_trial={"tpu": 1}),
     InvalidConfig, "'tpu'"),
    ("unknown argument", dict(num_sample=3), InvalidConfig,
     "unknown argument 'num_sample'"),
    ("unsupported argument", dict(server_port=4321), InvalidConfig,
     "server_port=4321 is not supported"),
    ("bad max_failures", dict(max_failures=-5), InvalidConfig,
     "max_failures is -5"),
    ("bad fail_fast", dict(fail_fast="maybe"), InvalidConfig,
     "fail_fast is 'maybe'"),
    ("bad resume", dict(resume="SOMETIMES"), InvalidConfig,
     "resume is 'SOMETIMES'"),
    ("bad time budget", dict(time_budget_s=-1), InvalidConfig,
     "time_budget_s is -1"),
    ("bad keep", dict(keep_checkpoints_num=0), InvalidConfig,
     "keep_checkpoints_num is 0"),
    ("bad stop type", dict(stop=42), InvalidConfig, "int"),
    ("bad stop threshold", dict(stop={"loss": "low"}), InvalidConfig,
     "loss"),
    ("bad start method", dict(start_method="teleport"), InvalidConfig,
     "start_method is 'teleport'"),
    ("bad callbacks", dict(callbacks=[object()]), InvalidConfig,
     "Callback"),
    ("unpicklable config", dict(config={"n": 1, "db": {
        "conn": threading.Lock()}}), SerializationError,
     r"config\['db'\]\['conn'\].*lock"),
    ("randint bounds", dict(config={"n": "placeholder"}), None, None),
    ("missing restore", dict(restore="/nonexistent/checkpoint_000001"),
     CheckpointError, "does not exist"),
    ("dirname creator slash", dict(trial_dirname_creator=bad_dirname),
     InvalidConfig, "'a/b'.*path separators"),
]


@pytest.mark.parametrize("case", [c for c in RUN_CASES if c[2]],
                         ids=[c[0] for c in RUN_CASES if c[2]])
def test_run_rejects_bad_argument(tmp_path, case):
    _, kwargs, error, pattern = case
    kwargs = dict(kwargs)
    kwargs.setdefault("local_dir", str(tmp_path))
    with pytest.raises(error, match=pattern):
        tune.run(plain, verbose=0, **kwargs)


SPACE_CASES = [
    ("uniform order", lambda: tune.uniform(2, 1), "uniform"),
    ("randint order", lambda: tune.randint(5, 5), "randint"),
    ("loguniform zero", lambda: tune.loguniform(0, 1), "loguniform"),
    ("empty choice", lambda: tune.choice([]), "choice"),
    ("quniform q", lambda: tune.quniform(0, 1, 0), "quniform"),
    ("qrandint q", lambda: tune.qrandint(0, 10, -1), "qrandint"),
]


@pytest.mark.parametrize("case", SPACE_CASES, ids=[c[0] for c in
                                                   SPACE_CASES])
def test_invalid_search_space_rejected(case):
    _, make, name = case
    with pytest.raises(InvalidSearchSpace, match=name):
        make()


def test_not_a_trainable_class(tmp_path):
    with pytest.raises(InvalidConfig, match="not a subclass of"):
        tune.run(NotATrainable, local_dir=str(tmp_path), verbose=0)


def test_not_callable(tmp_path):
    with pytest.raises(InvalidConfig, match="Trainable subclass"):
        tune.run(42, local_dir=str(tmp_path), verbose=0)


def test_unregistered_name(tmp_path):
    with pytest.raises(InvalidConfig, match="register_trainable"):
        tune.run("nothing-here", local_dir=str(tmp_path), verbose=0)


def test_unpicklable_closure_variable_named(tmp_path):
    lock = threading.Lock()

    def uses_lock(config):
        with lock:
            tune.report(x=1)

    with pytest.raises(SerializationError, match="variable 'lock'"):
        tune.run(uses_lock, local_dir=str(tmp_path), verbose=0)


def test_unpicklable_global_in_script_named(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        "import threading\n"
        "import trainable as tune\n"
        "lock = threading.Lock()\n"
        "def uses_global(config):\n"
        "    with lock:\n"
        "        tune.report(x=1)\n"
        "try:\n"
        f"    tune.run(uses_global, local_dir={str(tmp_path)!r}, "
        "verbose=0)\n"
        "except tune.SerializationError as exc:\n"
        "    print('ERROR', exc)\n")
    import subprocess
    import sys

    from conftest import script_env

    output = subprocess.run([sys.executable, str(script)], check=True,
                            capture_output=True, text=True, timeout=60,
                            env=script_env()).stdout
    assert "global variable 'lock'" in output


def test_unpicklable_class_attribute_named(tmp_path):
    class LockAttribute(tune.Trainable):
        lock = threading.Lock()

        def step(self):
            return {"x": 1}

    with pytest.raises(SerializationError, match="attribute 'lock'"):
        tune.run(LockAttribute, local_dir=str(tmp_path), verbose=0)


def test_unwritable_local_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InvalidConfig, match="not writable"):
        tune.run(plain, local_dir=str(blocker / "sub"), verbose=0)


def test_corrupt_restore_checkpoint(tmp_path):
    directory = tmp_path / "checkpoint_000001"
    directory.mkdir()
    (directory / "model.pkl").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not inside a checkpoint"):
        tune.run(plain, restore=str(directory / "model.pkl"),
                 local_dir=str(tmp_path), verbose=0)


@pytest.mark.parametrize("returned,pattern", [
    (None, "returned NoneType.*must return a dict"),
    ([1, 2], "returned list"),
    ({3: "x"}, "key 3 of type int"),
])
def test_step_with_bad_result_fails_trial(tmp_path, returned, pattern):
    class Bad(tune.Trainable):
        def step(self):
            return returned

    analysis = tune.run(Bad, local_dir=str(tmp_path), verbose=0,
                        raise_on_failed_trial=False)
    trial = analysis.trials[0]
    assert trial.status == "ERROR"
    assert re.search(pattern, open(trial.error_file).read())


def test_failed_trials_raise_with_error_files(tmp_path):
    class Raises(tune.Trainable):
        def step(self):
            raise KeyError("missing feature")

    with pytest.raises(TuneError, match="error.txt"):
        tune.run(Raises, local_dir=str(tmp_path), verbose=0)


def metric_trials(tmp_path, values):
    def report_value(config):
        value = config["v"]
        if value == "missing":
            tune.report(other=1)
        else:
            tune.report(score=value)

    return tune.run(report_value, config={"v": tune.grid_search(values)},
                    local_dir=str(tmp_path), verbose=0)


def test_best_trial_metric_never_reported(tmp_path):
    analysis = metric_trials(tmp_path, [1, 2])
    with pytest.raises(InvalidConfig, match="'scor'.*score"):
        analysis.get_best_trial("scor", "max")


def test_best_trial_skips_none_and_nan(tmp_path):
    analysis = metric_trials(tmp_path, [None, math.nan, 3, "missing", 1])
    best = analysis.get_best_trial("score", "max")
    assert best.config["v"] == 3
    assert analysis.get_best_trial("score", "min").config["v"] == 1


def test_best_trial_all_nan_returns_none(tmp_path):
    analysis = metric_trials(tmp_path, [math.nan, None])
    assert analysis.get_best_trial("score", "max") is None


def test_best_trial_without_metric(tmp_path):
    analysis = metric_trials(tmp_path, [1])
    with pytest.raises(InvalidConfig, match="No metric and mode"):
        analysis.get_best_trial()


def test_best_trial_bad_scope(tmp_path):
    analysis = metric_trials(tmp_path, [1])
    with pytest.raises(InvalidConfig, match="scope is 'first'"):
        analysis.get_best_trial("score", "max", scope="first")


def test_spawn_without_main_guard_explained(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import trainable as tune\n"
        "def f(config):\n"
        "    tune.report(x=1)\n"
        f"a = tune.run(f, local_dir={str(tmp_path)!r}, verbose=0,\n"
        "             start_method='spawn', raise_on_failed_trial=False)\n"
        "print('STATUS', a.trials[0].status)\n"
        "print('ERROR', open(a.trials[0].error_file).read())\n")
    import subprocess
    import sys

    from conftest import script_env

    completed = subprocess.run([sys.executable, str(script)],
                               capture_output=True, text=True, timeout=120,
                               env=script_env())
    assert "STATUS ERROR" in completed.stdout
    assert "__main__" in completed.stdout
    assert "start_method='fork'" in completed.stdout
