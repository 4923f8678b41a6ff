"""Trials started per second with ``reuse_actors=True``.

Figure: ``run()`` with many one-step trials whose ``reset_config`` returns
True, so every trial after the first reuses the worker of the one before.
Trials run one at a time (``max_concurrent_trials=1``), as the calls of
the limit do, so the ratio does not depend on the number of cores. A
callback records when each trial starts; the rate is taken from the
second start on, the first being the one that started the worker.

Limit: the rate of bare ``reset_config`` calls over a pipe: the driver
sends a config with ``Connection.send``, an echo process calls
``reset_config`` on a Trainable instance and sends back its return value.

Detail (no target): the rate of a bare trial loop that does the least a
reused trial needs: three requests (``reset_config``, ``train``,
``cleanup``) and a trial directory with ``params.json``, ``params.pkl``,
``result.json`` and ``progress.csv``, written without the library.
"""

import csv
import json
import multiprocessing
import os
import pickle
import time
from multiprocessing.connection import Connection
from typing import Any, Dict, List

import trainable as tune
from benchmarks import (
    Figure,
    Settings,
    median,
    median_ratio,
    paired_repeats,
)

_WARMUP_CALLS = 100


class ReusableOneStep(tune.Trainable):
    """A trivial Trainable that accepts a new config in place."""

    def setup(self, config: Dict[str, Any]) -> None:
        self.value = config.get("x", 0)

    def step(self) -> Dict[str, Any]:
        return {"value": self.value}

    def reset_config(self, new_config: Dict[str, Any]) -> bool:
        self.value = new_config.get("x", 0)
        return True


class StartTimes(tune.Callback):
    """Records the time of every trial start."""

    def __init__(self) -> None:
        self.starts: List[float] = []

    def on_trial_start(self, iteration: int, trials: List[Any], trial: Any,
                       **info: Any) -> None:
        self.starts.append(time.perf_counter())


# ------------------------------------------------------------------ limit


def _serve_reset_config(conn: Connection) -> None:
    instance = ReusableOneStep(config={"x": 0})
    while True:
        config = conn.recv()
        if config is None:
            return
        conn.send(instance.reset_config(config))


def bare_reset_rate(calls: int) -> float:
    """Return bare ``reset_config`` calls per second over a pipe."""
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_serve_reset_config,
                                      args=(child,))
    process.start()
    child.close()
    config = {"x": 1}
    try:
        for _ in range(_WARMUP_CALLS):
            parent.send(config)
            parent.recv()
        start = time.perf_counter()
        for _ in range(calls):
            parent.send(config)
            parent.recv()
        return calls / (time.perf_counter() - start)
    finally:
        parent.send(None)
        process.join()
        parent.close()


def _serve_trials(conn: Connection) -> None:
    instance = ReusableOneStep(config={"x": 0})
    while True:
        request = conn.recv()
        if request is None:
            return
        method, args = request
        if method == "reset":
            conn.send(instance.reset_config(*args))
        elif method == "train":
            conn.send(instance.train())
        else:
            conn.send(instance.cleanup())


def bare_trial_rate(trials: int, directory: str) -> float:
    """Return bare trials per second: three requests and four files each.
    """
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_serve_trials, args=(child,))
    process.start()
    child.close()
    try:
        start = time.perf_counter()
        for index in range(trials):
            config = {"x": index}
            logdir = os.path.join(directory, f"trial_{index:05d}")
            os.mkdir(logdir)
            with open(os.path.join(logdir, "params.json"), "w") as file:
                json.dump(config, file)
            with open(os.path.join(logdir, "params.pkl"), "wb") as file:
                pickle.dump(config, file)
            parent.send(("reset", (config,)))
            parent.recv()
            parent.send(("train", ()))
            result = parent.recv()
            parent.send(("cleanup", ()))
            parent.recv()
            _write_result_files(logdir, result)
        return trials / (time.perf_counter() - start)
    finally:
        parent.send(None)
        process.join()
        parent.close()


def _write_result_files(logdir: str, result: Dict[str, Any]) -> None:
    with open(os.path.join(logdir, "result.json"), "w") as file:
        file.write(json.dumps(result))
        file.write("\n")
    fields = [key for key in result if key != "config"]
    with open(os.path.join(logdir, "progress.csv"), "w",
              newline="") as file:
        writer = csv.writer(file)
        writer.writerow(fields)
        writer.writerow([result[key] for key in fields])


# ----------------------------------------------------------------- figure


def reuse_start_rate(trials: int, local_dir: str) -> float:
    """Run ``trials`` one-step trials with reuse; return starts per second.
    """
    if trials < 3:
        raise ValueError(
            f"trials is {trials}; use at least 3 so that two trials reuse "
            f"the worker.")
    recorder = StartTimes()
    tune.run(ReusableOneStep, config={"x": tune.randint(0, 1000)},
             num_samples=trials, stop={"training_iteration": 1},
             reuse_actors=True, max_concurrent_trials=1,
             local_dir=local_dir, verbose=0, callbacks=[recorder])
    reused = recorder.starts[1:]
    return (len(reused) - 1) / (reused[-1] - reused[0])


# ------------------------------------------------------------------ entry


def measure(settings: Settings) -> List[Figure]:
    """Measure the reuse start rate and the bare ``reset_config`` rate."""
    trials = settings.pick(tiny=8, quick=200, full=500)
    calls = settings.pick(tiny=100, quick=3000, full=10000)
    limits, figures = paired_repeats(
        lambda: bare_reset_rate(calls),
        lambda: reuse_start_rate(trials, settings.new_dir("reuse")),
        settings.repeat_count)
    floor = median([bare_trial_rate(trials, settings.new_dir("bare"))
                    for _ in range(settings.repeat_count)])
    return [Figure(
        name="reuse_start",
        title="trial starts, reuse_actors=True",
        value=median(figures),
        unit="/s",
        limit=median(limits),
        limit_title="bare reset_config calls over a pipe",
        ratio=median_ratio(figures, limits),
        comparison=">=",
        target=0.5,
        details=[
            f"{trials} one-step trials, one at a time",
            f"bare trial loop (3 requests, 4 files per trial): "
            f"{floor:,.0f}/s = {floor / median(limits):.3f}x the limit; "
            f"the figure is {median(figures) / floor:.2f}x of it",
        ],
    )]
