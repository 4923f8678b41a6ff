"""Kill workers and the driver at points Hypothesis chooses, then check
that the result histories match an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trainable as tune
from conftest import script_env


class Fragile(tune.Trainable):
    """Counts; kills its own process once, at a chosen point."""

    def setup(self, config):
        self.value = 0

    def _maybe_die(self, phase):
        marker = self.config["marker"]
        if (self.config["phase"] == phase
                and self.iteration + (phase == "step") == self.config["at"]
                and not os.path.exists(marker)):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)

    def step(self):
        self.value += self.config["inc"]
        self._maybe_die("step")
        return {"value": self.value}

    def save_checkpoint(self, tmp_dir):
        with open(os.path.join(tmp_dir, "value"), "w") as f:
            f.write(str(self.value))
        self._maybe_die("save")
        return tmp_dir

    def load_checkpoint(self, path):
        with open(os.path.join(path, "value")) as f:
            self.value = int(f.read())


def history(trial):
    with open(os.path.join(trial.logdir, "result.json")) as f:
        return [(r["training_iteration"], r["value"])
                for r in map(json.loads, f)]


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(at=st.integers(1, 8), phase=st.sampled_from(["step", "save"]))
def test_worker_killed_anywhere_keeps_history(tmp_path, at, phase):
    local = tmp_path / uuid.uuid4().hex
    config = {"inc": tune.grid_search([1, 3]), "at": at, "phase": phase,
              "marker": str(local / "killed")}
    local.mkdir()
    analysis = tune.run(Fragile, config=config, checkpoint_freq=2,
                        stop={"training_iteration": 8}, max_failures=2,
                        local_dir=str(local), verbose=0, num_cpus=2)
    for trial in analysis.trials:
        assert trial.status == "TERMINATED"
        inc = trial.config["inc"]
        assert history(trial) == [(i, inc * i) for i in range(1, 9)]
        for name in os.listdir(trial.logdir):
            if name.startswith("checkpoint_"):
                restored = Fragile(config=dict(trial.config, phase="none"))
                restored.restore(os.path.join(trial.logdir, name))
                assert restored.value == inc * restored.iteration


DRIVER = textwrap.dedent('''
    import os, sys, time
    import trainable as tune
    from trainable.search import BasicVariantGenerator

    class Slow(tune.Trainable):
        def setup(self, config):
            self.value = 0

        def step(self):
            time.sleep(0.1)
            self.value += self.config["inc"]
            return {"value": self.value}

        def save_checkpoint(self, d):
            return {"value": self.value}

        def load_checkpoint(self, checkpoint):
            self.value = checkpoint["value"]

    if __name__ == "__main__":
        tune.run(Slow, name="exp", local_dir=sys.argv[1], num_samples=3,
                 config={"inc": tune.randint(1, 100)},
                 search_alg=BasicVariantGenerator(random_state=7),
                 checkpoint_freq=3, stop={"training_iteration": 10},
                 resume="AUTO", verbose=0, num_cpus=2)
''')


def histories(local_dir):
    exp = os.path.join(local_dir, "exp")
    found = []
    for name in sorted(os.listdir(exp)):
        path = os.path.join(exp, name, "result.json")
        if os.path.isfile(path):
            with open(path) as f:
                rows = [json.loads(line) for line in f]
            found.append([(r["config"]["inc"], r["training_iteration"],
                           r["value"]) for r in rows])
    return sorted(found)


@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delay=st.floats(0.3, 2.5))
def test_driver_killed_anytime_resumes_same(tmp_path, delay):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    reference = tmp_path / "reference"
    if not reference.exists():
        subprocess.run([sys.executable, str(script), str(reference)],
                       check=True, timeout=120, env=script_env())
    local = tmp_path / uuid.uuid4().hex
    process = subprocess.Popen([sys.executable, str(script), str(local)],
                               env=script_env())
    time.sleep(delay)
    process.kill()
    process.wait()
    subprocess.run([sys.executable, str(script), str(local)], check=True,
                   timeout=120, env=script_env())
    assert histories(str(local)) == histories(str(reference))
