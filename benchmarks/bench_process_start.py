"""Trials per second with a new worker process per trial.

Figure, for each start method: ``run()`` with many one-step trials and
``reuse_actors=False`` (the default), so every trial starts and stops its
own worker. Trials run one at a time (``max_concurrent_trials=1``), as the
bare processes of the limit do, so the ratio does not depend on the
number of cores. The rate is the number of trials divided by the time
from the first trial start to the last trial completion, so the fixed
cost of ``run()`` itself is left out.

Limit: the rate of starting and joining a bare process, one after the
other, with the same start method. Its target is ``os.getpid`` so the
child imports nothing beyond what the start method needs (and, with
``spawn`` or ``forkserver``, the main module, as any child does).

A ``forkserver`` server is started once per driver process; both the
limit and the figure are measured after a warm-up that started it.
"""

import multiprocessing
import os
import time
from typing import Any, Dict, List

import trainable as tune
from benchmarks import (
    Figure,
    Settings,
    median,
    median_ratio,
    paired_repeats,
)


class OneStep(tune.Trainable):
    """A trivial Trainable for one step."""

    def step(self) -> Dict[str, Any]:
        return {"value": 1}


class TrialTimes(tune.Callback):
    """Records the first trial start and every trial completion."""

    def __init__(self) -> None:
        self.first_start = None
        self.completions: List[float] = []

    def on_trial_start(self, iteration: int, trials: List[Any], trial: Any,
                       **info: Any) -> None:
        if self.first_start is None:
            self.first_start = time.perf_counter()

    def on_trial_complete(self, iteration: int, trials: List[Any],
                          trial: Any, **info: Any) -> None:
        self.completions.append(time.perf_counter())


def start_methods() -> List[str]:
    """Return the start methods this platform supports, in a fixed order."""
    available = multiprocessing.get_all_start_methods()
    return [m for m in ("fork", "forkserver", "spawn") if m in available]


def default_start_method() -> str:
    """Return the start method that ``run()`` uses when none is given."""
    return multiprocessing.get_context().get_start_method()


def bare_start_rate(method: str, processes: int) -> float:
    """Return bare processes started and joined per second, one by one."""
    context = multiprocessing.get_context(method)
    _start_and_join(context)  # warm-up: starts the fork server if needed
    start = time.perf_counter()
    for _ in range(processes):
        _start_and_join(context)
    return processes / (time.perf_counter() - start)


def _start_and_join(context: Any) -> None:
    process = context.Process(target=os.getpid)
    process.start()
    process.join()
    process.close()


def new_worker_trial_rate(method: str, trials: int, local_dir: str) -> float:
    """Run ``trials`` one-step trials, each in a new worker; return
    trials per second."""
    recorder = TrialTimes()
    tune.run(OneStep, num_samples=trials, stop={"training_iteration": 1},
             start_method=method, max_concurrent_trials=1,
             local_dir=local_dir, verbose=0, callbacks=[recorder])
    if len(recorder.completions) != trials:
        raise RuntimeError(
            f"{len(recorder.completions)} of {trials} trials completed.")
    return trials / (recorder.completions[-1] - recorder.first_start)


def measure(settings: Settings) -> List[Figure]:
    """Measure the new-worker trial rate for each start method."""
    default = default_start_method()
    figures = []
    for method in start_methods():
        # spawn starts a fresh interpreter per process: fewer trials.
        slow = method == "spawn"
        trials = settings.pick(tiny=2, quick=10 if slow else 30,
                               full=20 if slow else 80)
        processes = settings.pick(tiny=2, quick=10 if slow else 30,
                                  full=20 if slow else 80)
        new_worker_trial_rate(method, 2, settings.new_dir("warmup"))
        limits, rates = paired_repeats(
            lambda: bare_start_rate(method, processes),
            lambda: new_worker_trial_rate(method, trials,
                                          settings.new_dir(method)),
            settings.repeat_count)
        label = " (default)" if method == default else ""
        figures.append(Figure(
            name=f"process_start[{method}]",
            title=f"trials, new worker each, {method}{label}",
            value=median(rates),
            unit="/s",
            limit=median(limits),
            limit_title=f"bare process start+join, {method}",
            ratio=median_ratio(rates, limits),
            comparison=">=",
            target=0.7,
            details=[f"{trials} one-step trials and {processes} bare "
                     f"processes, one at a time"],
        ))
    return figures
