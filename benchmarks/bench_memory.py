"""Driver memory after 10,000 finished one-step trials.

The experiment runs in a fresh interpreter (``python -m
benchmarks.bench_memory --child TRIALS DIR``), so that what other
benchmarks allocated does not count. The child reports its resident set
size (``VmRSS``) after ``import trainable`` and after ``run()`` returned,
with the ``ExperimentAnalysis`` still alive, and its peak (``VmHWM``).
Trials reuse workers (``reuse_actors=True``) so that the run takes
seconds rather than minutes; the driver keeps the same records either way.

The parent then checks that the result files are consistent: one trial
directory per trial, each with one line in ``result.json``. The child
also counts its open file descriptors at every trial completion, so
that files left open for finished trials fail a check before they reach
the descriptor limit.

The target is absolute (150 MB), so there is no limit to measure. The
full mode runs 10,000 trials and the quick mode skips this benchmark.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

from benchmarks import Figure, Settings, not_measured, rss_mb

_EXPERIMENT = "memory"
_BUDGET_MB = 150.0
_FULL_TRIALS = 10_000
# Most file descriptors the driver may add while trials run: two result
# files, a pipe and a process sentinel for each of a few running trials,
# with room to spare. A leak of one per finished trial exceeds it soon.
_DESCRIPTOR_GROWTH_LIMIT = 32


def _title(trials: int) -> str:
    return f"driver RSS after {trials:,} one-step trials"


def _vm_hwm_mb() -> Optional[float]:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def open_file_descriptors() -> int:
    """Return the number of file descriptors this process has open."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def run_child(trials: int, local_dir: str) -> Dict[str, Any]:
    """Run the experiment in this process and return the memory figures.
    """
    import trainable as tune
    from benchmarks.bench_reuse_start import ReusableOneStep

    class DescriptorCount(tune.Callback):
        """Records the most file descriptors open at a trial completion."""

        def __init__(self) -> None:
            self.most = 0

        def on_trial_complete(self, iteration: int, trials: List[Any],
                              trial: Any, **info: Any) -> None:
            self.most = max(self.most, open_file_descriptors())

    counter = DescriptorCount()
    before = rss_mb()
    descriptors_before = open_file_descriptors()
    start = time.perf_counter()
    analysis = tune.run(ReusableOneStep, config={"x": tune.randint(0, 10)},
                        num_samples=trials, stop={"training_iteration": 1},
                        reuse_actors=True, local_dir=local_dir,
                        name=_EXPERIMENT, verbose=0, callbacks=[counter])
    seconds = time.perf_counter() - start
    return {
        "rss_before_mb": before,
        "rss_after_mb": rss_mb(),
        "peak_mb": _vm_hwm_mb(),
        "seconds": seconds,
        "trials": len(analysis.trials),
        "descriptor_growth": counter.most - descriptors_before,
    }


def memory_in_child(trials: int, local_dir: str) -> Dict[str, Any]:
    """Run :func:`run_child` in a fresh interpreter; return its figures."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        path for path in (root, env.get("PYTHONPATH")) if path)
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_memory", "--child",
         str(trials), local_dir],
        cwd=root, env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(
            f"The memory benchmark process exited with code "
            f"{completed.returncode}:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def check_result_files(local_dir: str, trials: int) -> List[Tuple[str, bool]]:
    """Check one trial directory per trial with one result line each."""
    experiment = os.path.join(local_dir, _EXPERIMENT)
    trial_dirs = [entry.path for entry in os.scandir(experiment)
                  if entry.is_dir()]
    one_line_each = True
    for path in trial_dirs:
        try:
            with open(os.path.join(path, "result.json")) as lines:
                count = sum(1 for _ in lines)
        except OSError:
            count = 0
        one_line_each = one_line_each and count == 1
    return [
        (f"{len(trial_dirs)} of {trials} trial directories",
         len(trial_dirs) == trials),
        ("one line in each result.json", one_line_each),
    ]


def measure(settings: Settings) -> List[Figure]:
    """Measure the driver's memory after many finished trials."""
    if settings.mode == "quick":
        return [not_measured("memory", _title(_FULL_TRIALS),
                             "run in full mode only", "<", _BUDGET_MB,
                             "MB")]
    trials = settings.pick(tiny=20, quick=0, full=_FULL_TRIALS)
    local_dir = settings.new_dir("memory")
    figures = memory_in_child(trials, local_dir)
    growth = figures["descriptor_growth"]
    checks = check_result_files(local_dir, trials) + [
        (f"{growth} more open file descriptors at most during the run "
         f"(limit {_DESCRIPTOR_GROWTH_LIMIT})",
         growth <= _DESCRIPTOR_GROWTH_LIMIT)]
    return [Figure(
        name="memory",
        title=_title(trials),
        value=figures["rss_after_mb"],
        unit="MB",
        limit=None,
        limit_title="fixed budget",
        ratio=None,
        comparison="<",
        target=_BUDGET_MB,
        target_unit="MB",
        extra_checks=checks,
        details=[
            f"RSS after import {figures['rss_before_mb']:.1f} MB, peak "
            f"{figures['peak_mb'] or float('nan'):.1f} MB; the run took "
            f"{figures['seconds']:.1f} s with reuse_actors=True",
        ] + [f"check: {text}: {'ok' if ok else 'FAILED'}"
             for text, ok in checks],
    )]


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point of the child process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("TRIALS", "DIR"),
                        required=True,
                        help="run TRIALS one-step trials with results in "
                             "DIR and print the memory figures as JSON")
    args = parser.parse_args(argv)
    trials, local_dir = int(args.child[0]), args.child[1]
    print(json.dumps(run_child(trials, local_dir)))


if __name__ == "__main__":
    main()
