"""The ray shim: the import table, install and uninstall, ray.init, and
running an unchanged Ray Tune script with python -m trainable.ray_compat."""

import importlib
import os
import pickle
import subprocess
import sys
import textwrap

import cloudpickle
import pytest

import trainable
from conftest import script_env
from trainable import launcher, ray_compat
from trainable.errors import InvalidConfig, TuneError


def _drop_ray_modules():
    for name in [n for n in sys.modules if n == "ray"
                 or n.startswith("ray.")]:
        del sys.modules[name]


@pytest.fixture
def shim():
    """The shim installed for one test, and removed after it."""
    ray_compat.install(force=True)
    yield
    ray_compat.uninstall()
    _drop_ray_modules()


@pytest.fixture
def fake_real_ray(tmp_path, monkeypatch):
    """A package named ray on sys.path, standing in for a Ray install."""
    package = tmp_path / "fake_site" / "ray"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("REAL_RAY = True\n")
    monkeypatch.syspath_prepend(str(package.parent))
    importlib.invalidate_caches()
    yield package.parent
    ray_compat.uninstall()
    _drop_ray_modules()


# ------------------------------------------------------------ import table


@pytest.mark.parametrize("path", sorted(ray_compat.MODULES))
def test_table_module_gives_trainable_objects(shim, path):
    module = importlib.import_module(path)
    expected = {}
    for source_name, names in ray_compat.MODULES[path]:
        source = importlib.import_module(source_name)
        if names == ray_compat.ALL_NAMES:
            names = source.__all__
        for name in names:
            expected[name] = getattr(source, name)
    assert expected
    for name, value in expected.items():
        assert getattr(module, name) is value, f"{path}.{name}"
    assert sorted(module.__all__) == sorted(expected)


def test_table_parents_are_in_table():
    for path in ray_compat.MODULES:
        parent = path.rpartition(".")[0]
        if parent:
            assert parent in ray_compat.MODULES, path


def test_listed_imports_resolve(shim):
    from ray import tune
    from ray.tune import track
    from ray.tune.logger import (
        CSVLoggerCallback, JsonLoggerCallback, LoggerCallback, pretty_print,
    )
    from ray.tune.progress_reporter import CLIReporter
    from ray.tune.schedulers import PopulationBasedTraining
    from ray.tune.search import ConcurrencyLimiter as Limiter2
    from ray.tune.search.optuna import OptunaSearch as Optuna2
    from ray.tune.stopper import MaximumIterationStopper, Stopper
    from ray.tune.suggest import BasicVariantGenerator, ConcurrencyLimiter
    from ray.tune.suggest.optuna import OptunaSearch
    from ray.tune.trial import Trial
    from ray.tune.utils import validate_save_restore

    import ray
    import ray.tune.schedulers.pbt

    assert tune is ray.tune
    assert tune.Trainable is trainable.Trainable
    assert tune.report is trainable.report
    assert tune.grid_search is trainable.grid_search
    assert tune.run is ray_compat.run
    assert track.log is trainable.report
    assert pretty_print is ray_compat.pretty_print
    assert LoggerCallback is ray_compat.LoggerCallback
    assert JsonLoggerCallback is ray_compat.JsonLoggerCallback
    assert CSVLoggerCallback is ray_compat.CSVLoggerCallback
    assert CLIReporter is trainable.CLIReporter
    pbt = trainable.schedulers.PopulationBasedTraining
    assert PopulationBasedTraining is pbt
    assert ray.tune.schedulers.pbt.PopulationBasedTraining is pbt
    assert BasicVariantGenerator is trainable.search.BasicVariantGenerator
    assert ConcurrencyLimiter is trainable.search.ConcurrencyLimiter
    assert Limiter2 is ConcurrencyLimiter
    assert OptunaSearch is trainable.search.OptunaSearch
    assert Optuna2 is OptunaSearch
    assert Stopper is trainable.stoppers.Stopper
    assert MaximumIterationStopper is (
        trainable.stoppers.MaximumIterationStopper)
    assert Trial is trainable.trial.Trial
    assert validate_save_restore is trainable.utils.validate_save_restore
    assert ray.init is ray_compat.init
    assert ray.shutdown is ray_compat.shutdown
    assert ray.is_initialized is ray_compat.is_initialized


def test_star_import_of_tune(shim):
    namespace = {}
    exec("from ray.tune import *", namespace)
    assert namespace["Trainable"] is trainable.Trainable
    assert namespace["run"] is ray_compat.run


def test_other_ray_attribute_raises(shim):
    import ray

    with pytest.raises(AttributeError, match="only emulates Ray Tune"):
        ray.remote
    assert not hasattr(ray, "get")
    with pytest.raises(AttributeError, match="ray.tune.Tuner"):
        ray.tune.Tuner


def test_unknown_name_import_raises(shim):
    with pytest.raises(ImportError, match="ray.tune.Tuner is not available"):
        exec("from ray.tune import Tuner", {})
    with pytest.raises(ImportError, match="only emulates Ray Tune"):
        exec("from ray import remote", {})


def test_unknown_module_import_raises(shim):
    with pytest.raises(ModuleNotFoundError,
                       match="ray.tune.integration is not available"):
        importlib.import_module("ray.tune.integration.keras")


def test_unknown_import_can_fall_back(shim):
    try:
        from ray.tune import Tuner  # noqa: F401
        found = True
    except ImportError:
        found = False
    assert not found


def test_shim_module_pickles_by_name(shim):
    from ray import tune

    assert pickle.loads(cloudpickle.dumps(tune)) is tune

    # A function of a script run as __main__, whose globals refer to tune.
    namespace = {"__name__": "__main__", "tune": tune}
    exec("def train_fn(config):\n    tune.report(x=1)\n", namespace)
    copy = pickle.loads(cloudpickle.dumps(namespace["train_fn"]))
    assert copy is not namespace["train_fn"]
    assert copy.__globals__["tune"] is tune


# ------------------------------------------------------ install, uninstall


def test_uninstall_removes_everything(shim):
    stub = ray_compat._stub_dir
    assert stub is not None and os.path.isdir(stub)
    assert ray_compat.is_installed()
    ray_compat.uninstall()
    assert not ray_compat.is_installed()
    assert not [n for n in sys.modules if n == "ray"
                or n.startswith("ray.")]
    assert stub not in sys.path
    assert not os.path.exists(stub)
    assert ray_compat._finder not in sys.meta_path
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("ray")


def test_install_twice_is_one_install(shim):
    import ray

    ray_compat.install()
    assert sys.modules["ray"] is ray
    assert sys.meta_path.count(ray_compat._finder) == 1


def test_uninstall_without_install_does_nothing():
    path, meta_path = sys.path[:], sys.meta_path[:]
    ray_compat.uninstall()
    assert sys.path == path
    assert sys.meta_path == meta_path


def test_install_rejects_real_ray(fake_real_ray):
    with pytest.raises(TuneError, match="real Ray package is importable"):
        ray_compat.install()
    assert "ray" not in sys.modules
    import ray

    assert ray.REAL_RAY


def test_install_force_hides_real_ray(fake_real_ray):
    import ray as real

    with pytest.raises(TuneError, match="force=True"):
        ray_compat.install()
    ray_compat.install(force=True)
    import ray as shimmed

    assert shimmed is not real
    assert not hasattr(shimmed, "REAL_RAY")
    ray_compat.uninstall()
    assert sys.modules["ray"] is real


# ---------------------------------------------------------------- ray.init


@pytest.fixture
def recorded_run(monkeypatch):
    """Replace trainable's run(); returns the keyword arguments of calls."""
    calls = []

    def fake_run(*args, **kwargs):
        calls.append(kwargs)

    monkeypatch.setattr(launcher, "run", fake_run)
    return calls


def test_init_values_become_run_defaults(shim, recorded_run):
    import ray
    from ray import tune

    assert not ray.is_initialized()
    tune.run("anything")
    ray.init(num_cpus=3, num_gpus=0)
    assert ray.is_initialized()
    tune.run("anything")
    tune.run("anything", num_cpus=1, num_gpus=None)
    ray.shutdown()
    assert not ray.is_initialized()
    tune.run("anything")
    assert "num_cpus" not in recorded_run[0]
    assert recorded_run[1]["num_cpus"] == 3
    assert recorded_run[1]["num_gpus"] == 0
    assert recorded_run[2]["num_cpus"] == 1
    assert recorded_run[2]["num_gpus"] == 0
    assert "num_cpus" not in recorded_run[3]


def test_init_twice_raises(shim, recorded_run):
    import ray
    from ray import tune

    ray.init(num_cpus=2)
    with pytest.raises(TuneError, match="ignore_reinit_error=True"):
        ray.init(num_cpus=1)
    ray.init(num_cpus=1, ignore_reinit_error=True)
    tune.run("anything")
    assert recorded_run[0]["num_cpus"] == 2


def test_init_ignores_cluster_arguments(shim):
    import ray

    ray.init("auto", local_mode=True, include_dashboard=False)
    assert ray.is_initialized()


@pytest.mark.parametrize("kwargs", [
    {"num_cpus": 0}, {"num_cpus": -1}, {"num_cpus": "2"},
    {"num_cpus": True}, {"num_gpus": 1.5}, {"num_gpus": -1},
])
def test_init_rejects_bad_resources(shim, kwargs):
    import ray

    name = next(iter(kwargs))
    with pytest.raises(InvalidConfig, match=name):
        ray.init(**kwargs)
    assert not ray.is_initialized()


def test_uninstall_forgets_init(shim):
    import ray

    ray.init(num_cpus=2)
    ray_compat.uninstall()
    assert not ray_compat.is_initialized()


# -------------------------------------------------------- ray.tune.logger


def test_pretty_print_format():
    text = ray_compat.pretty_print({
        "loss": 0.5, "info": {"lr": 0.1, "steps": [1, 2]},
        "config": {"x": 1}, "note": "ok", "skipped": None})
    assert text == "info:\n  lr: 0.1\n  steps: [1, 2]\nloss: 0.5\nnote: ok\n"


class _Recorder(ray_compat.LoggerCallback):
    def __init__(self):
        self.calls = []

    def log_trial_start(self, trial):
        self.calls.append(("start", trial.trial_id))

    def log_trial_result(self, iteration, trial, result):
        self.calls.append(("result", result["training_iteration"]))

    def log_trial_end(self, trial, failed=False):
        self.calls.append(("end", failed))


def _two_steps(config):
    for step in range(2):
        trainable.report(loss=config["x"] - step)


def test_logger_callbacks_run_in_experiment(shim, tmp_path):
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    recorder = _Recorder()
    analysis = tune.run(
        _two_steps, config={"x": 3}, local_dir=str(tmp_path), verbose=0,
        callbacks=[recorder, JsonLoggerCallback(), CSVLoggerCallback()])
    assert analysis.trials[0].last_result["loss"] == 2
    kinds = [call[0] for call in recorder.calls]
    assert kinds[0] == "start"
    assert ("result", 1) in recorder.calls
    assert ("result", 2) in recorder.calls
    assert recorder.calls[-1] == ("end", False)


# ------------------------------------------------------------ command line


RAY_TUNE_SCRIPT = textwrap.dedent('''
    import sys

    import ray
    from ray import tune
    from ray.tune import Trainable
    from ray.tune.schedulers import AsyncHyperBandScheduler


    class Guesser(Trainable):
        def _setup(self, config):
            self.guess = config["guess"]
            self.steps = 0

        def _train(self):
            self.steps += 1
            return {"score": -abs(self.guess - 7) + 0.01 * self.steps}

        def _save(self, checkpoint_dir):
            return {"steps": self.steps}

        def _restore(self, state):
            self.steps = state["steps"]


    def train_fn(config):
        for step in range(3):
            tune.report(loss=(config["lr"] - 0.1) ** 2 + step)


    if __name__ == "__main__":
        local_dir, start_method = sys.argv[1], sys.argv[2]
        if start_method != "default":
            import multiprocessing
            multiprocessing.set_start_method(start_method)
        ray.init(num_cpus=2)
        scheduler = AsyncHyperBandScheduler(metric="score", mode="max",
                                            max_t=3, grace_period=1)
        analysis = tune.run(Guesser, stop={"training_iteration": 3},
                            config={"guess": tune.grid_search([3, 7, 9])},
                            scheduler=scheduler, local_dir=local_dir,
                            verbose=0)
        print("best config:",
              analysis.get_best_config(metric="score", mode="max"))
        analysis = tune.run(train_fn,
                            config={"lr": tune.grid_search([0.01, 0.1])},
                            local_dir=local_dir, verbose=0)
        print("best function config:",
              analysis.get_best_config(metric="loss", mode="min"))
        ray.shutdown()
''')


def _run_command(*args, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "trainable.ray_compat", *args],
        capture_output=True, text=True, timeout=100,
        env=env or script_env(), cwd=cwd)


@pytest.mark.parametrize("start_method", ["default", "spawn"])
def test_command_runs_ray_tune_script(tmp_path, start_method):
    script = tmp_path / "tune_script.py"
    script.write_text(RAY_TUNE_SCRIPT)
    results = tmp_path / "results"
    done = _run_command(str(script), str(results), start_method,
                        cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "best config: {'guess': 7}" in done.stdout
    assert "best function config: {'lr': 0.1}" in done.stdout
    assert (results / "Guesser" / "experiment_state.json").is_file()
    assert (results / "train_fn" / "experiment_state.json").is_file()


def test_command_missing_script_exits_2(tmp_path):
    done = _run_command(str(tmp_path / "missing.py"))
    assert done.returncode == 2
    assert "was not found" in done.stderr
    assert "Traceback" not in done.stderr


def test_command_rejects_real_ray_without_force(tmp_path, fake_real_ray):
    script = tmp_path / "uses_ray.py"
    script.write_text("import ray\nprint('real:', hasattr(ray, 'REAL_RAY'))\n")
    env = script_env()
    env["PYTHONPATH"] = os.pathsep.join([str(fake_real_ray),
                                         env["PYTHONPATH"]])
    refused = _run_command(str(script), env=env)
    assert refused.returncode == 2
    assert "--force" in refused.stderr
    forced = _run_command("--force", str(script), env=env)
    assert forced.returncode == 0, forced.stderr
    assert "real: False" in forced.stdout


def test_main_restores_process_state(tmp_path):
    script = tmp_path / "probe.py"
    out = tmp_path / "probe.txt"
    script.write_text(textwrap.dedent(f'''
        import sys
        import ray

        ray.init(num_cpus=1)
        with open({str(out)!r}, "w") as f:
            f.write(repr((sys.argv, sys.path[1], __name__)))
    '''))
    argv, path = sys.argv[:], sys.path[:]
    assert ray_compat.main([str(script), "--flag", "x"]) == 0
    assert sys.argv == argv
    assert sys.path == path
    assert "ray" not in sys.modules
    assert not ray_compat.is_initialized()
    probe_argv, probe_path, probe_name = eval(out.read_text())
    assert probe_argv == [str(script), "--flag", "x"]
    assert probe_path == str(tmp_path)
    assert probe_name == "__main__"


def test_command_without_script_names_it(capsys):
    with pytest.raises(SystemExit) as info:
        ray_compat.main([])
    assert info.value.code == 2
    assert "missing the script to run" in capsys.readouterr().err
