"""The Guesser example (10 trials) on trainable and on Ray Tune.

Figure: the wall time of a fresh process that runs the Guesser example
with trainable: interpreter start, import, ``run()`` and
``get_best_config``. Limit: the same script, run by an interpreter that
has Ray Tune installed (``--ray-python PATH``). Ray is never a dependency
of this package; without that option the limit is "not measured".

The same Ray interpreter also gives the "vs Ray Tune" column of two other
figures (see :func:`ray_counterparts`): the time per trivial step of one
trial, and ``python -c "import ray.tune"``.

Ray is started on the loopback address, without its dashboard, with its
session files in a temporary directory that is deleted once the process
has exited: ``ray.init(_node_ip_address="127.0.0.1",
include_dashboard=False, _temp_dir=...)``.
Ray Tune 2.x takes ``storage_path`` where 1.x took ``local_dir``; the
script passes whichever the installed ``tune.run`` accepts.
"""

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

from benchmarks import Figure, Settings, median, timed

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TIMEOUT_S = 900
_TARGET = 40.0
_TITLE = "Guesser, 10 trials, whole process"

# One script for both libraries: argv is LIBRARY TASK RESULT_DIR [STEPS OUT]
# with LIBRARY "ray" or "trainable" and TASK "guesser" or "steps".
SCRIPT = '''
import inspect
import json
import sys
import time

library, task, result_dir = sys.argv[1:4]
if library == "ray":
    import os

    import ray

    ray.init(_node_ip_address="127.0.0.1", include_dashboard=False,
             _temp_dir=os.environ["TRAINABLE_BENCH_RAY_TEMP_DIR"])
    from ray import tune
    from ray.tune import Trainable
else:
    import trainable as tune
    from trainable import Trainable

if "storage_path" in inspect.signature(tune.run).parameters:
    where = {"storage_path": result_dir}
else:
    where = {"local_dir": result_dir}


class Guesser(Trainable):
    def setup(self, config):
        self.password = 1024
        self.guess = config["guess"]

    def step(self):
        return {"diff": abs(self.guess - self.password)}


class Timestamps(Trainable):
    def setup(self, config):
        self.stamps = []

    def step(self):
        self.stamps.append(time.perf_counter())
        return {"n": len(self.stamps)}

    def cleanup(self):
        with open(self.config["out"], "w") as out:
            json.dump(self.stamps, out)


if task == "guesser":
    analysis = tune.run(Guesser, stop={"training_iteration": 1},
                        num_samples=10,
                        config={"guess": tune.randint(1, 10000)},
                        verbose=0, **where)
    print(analysis.get_best_config(metric="diff", mode="min"))
else:
    steps, out = int(sys.argv[4]), sys.argv[5]
    tune.run(Timestamps, stop={"training_iteration": steps},
             config={"out": out}, verbose=0, **where)
'''


def _write_script(directory: str) -> str:
    path = os.path.join(directory, "guesser_script.py")
    with open(path, "w") as script:
        script.write(SCRIPT)
    return path


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        path for path in (_ROOT, env.get("PYTHONPATH")) if path)
    return env


def run_script(python: str, library: str, task: str, directory: str,
               *extra: str) -> float:
    """Run the benchmark script in a fresh process; return its wall time.

    Raises:
        RuntimeError: the script failed; the message ends with its output.
    """
    script = _write_script(directory)
    command = [python, script, library, task,
               os.path.join(directory, "results"), *extra]
    env = _env()
    # Ray's session directory contains Unix sockets, whose paths must stay
    # short, so it goes directly under the system's temporary directory.
    ray_temp_dir = tempfile.mkdtemp(prefix="ray-")
    env["TRAINABLE_BENCH_RAY_TEMP_DIR"] = ray_temp_dir

    def run() -> None:
        completed = subprocess.run(command, cwd=directory, env=env,
                                   capture_output=True, text=True,
                                   timeout=_TIMEOUT_S, check=False)
        if completed.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} exited with code "
                f"{completed.returncode}:\n{completed.stderr[-3000:]}")
    try:
        return timed(run)
    finally:
        shutil.rmtree(ray_temp_dir, ignore_errors=True)


def step_time_s(python: str, library: str, steps: int,
                directory: str) -> float:
    """Return the time per trivial step of one trial, in seconds."""
    out = os.path.join(directory, "stamps.json")
    run_script(python, library, "steps", directory, str(steps), out)
    with open(out) as stamps_file:
        stamps = json.load(stamps_file)
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1)


def ray_counterparts(settings: Settings,
                     names: List[str]) -> Dict[str, float]:
    """Measure on Ray Tune what the named figures measure on trainable.

    Supports ``step_overhead`` (microseconds per step) and ``import``
    (milliseconds for ``python -c "import ray.tune"``); other names are
    ignored. Returns an empty dict without ``settings.ray_python``.
    """
    python = settings.ray_python
    found: Dict[str, float] = {}
    if python is None:
        return found
    if "step_overhead" in names:
        steps = settings.pick(tiny=20, quick=200, full=500)
        found["step_overhead"] = 1e6 * step_time_s(
            python, "ray", steps, settings.new_dir("ray-steps"))
    if "import" in names:
        import_ray = [python, "-c", "import ray.tune"]
        subprocess.run(import_ray, check=True, capture_output=True)
        found["import"] = 1e3 * median([
            timed(lambda: subprocess.run(import_ray, check=True,
                                         capture_output=True))
            for _ in range(settings.pick(tiny=1, quick=3, full=5))])
    return found


def measure(settings: Settings) -> List[Figure]:
    """Time the Guesser on trainable, and on Ray Tune if available."""
    repeats = settings.repeat_count
    run_script(sys.executable, "trainable", "guesser",
               settings.new_dir("guesser"))  # warm-up: bytecode cache
    ours = [run_script(sys.executable, "trainable", "guesser",
                       settings.new_dir("guesser")) for _ in range(repeats)]
    theirs: Optional[List[float]] = None
    if settings.ray_python is not None:
        ray_repeats = settings.pick(tiny=1, quick=1, full=3)
        theirs = [run_script(settings.ray_python, "ray", "guesser",
                             settings.new_dir("guesser-ray"))
                  for _ in range(ray_repeats)]
    if theirs is None:
        return [Figure(
            name="vs_ray", title=_TITLE, value=median(ours), unit="s",
            limit=math.nan, limit_title="Ray Tune: not measured",
            ratio=math.nan, comparison=">=", target=_TARGET,
            vs_ray="not measured",
            details=["pass --ray-python PATH to compare with Ray Tune"])]
    ratio = median(theirs) / median(ours)
    version = subprocess.run(
        [settings.ray_python, "-c", "import ray; print(ray.__version__)"],
        capture_output=True, text=True, check=True).stdout.strip()
    return [Figure(
        name="vs_ray",
        title=_TITLE,
        value=median(ours),
        unit="s",
        limit=median(theirs),
        limit_title="the same script on Ray Tune",
        ratio=ratio,
        comparison=">=",
        target=_TARGET,
        vs_ray=f"{ratio:.0f}x faster",
        details=[f"trainable: median of {len(ours)} runs; Ray Tune "
                 f"{version} ({settings.ray_python}): median of "
                 f"{len(theirs)} runs"],
    )]
