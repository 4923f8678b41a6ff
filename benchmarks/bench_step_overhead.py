"""Per-step overhead of a trivial ``step`` against a raw pipe round trip.

Figure: one trial runs many iterations of a ``step`` that only returns a
timestamp. The time per step is the spread of the first and last
timestamps divided by the steps between them, so worker start and
shutdown are left out.

Limit: one round trip of a small dict over a ``multiprocessing.Pipe``
with ``Connection.send`` and ``recv``, between this process and an echo
process.

Details (no target): the CPU time of each process per step, and a bare
loop that does the work the library must do per step. In that loop the
worker builds the full result dict, and the driver sends the next request
before it writes the JSON line and the CSV row. Last, the round trip of
the full result dict with two encodings.
"""

import csv
import json
import multiprocessing
import os
import pickle
import resource
import time
from multiprocessing.connection import Connection
from typing import Any, Dict, List, NamedTuple

import trainable as tune
from benchmarks import (
    Figure,
    Settings,
    median,
    median_ratio,
    paired_repeats,
)

SMALL_DICT = {"training_iteration": 1, "loss": 0.5}
_WARMUP_ROUND_TRIPS = 200


class TimestampStep(tune.Trainable):
    """A Trainable whose step only reports when it ran."""

    def step(self) -> Dict[str, Any]:
        return {"t": time.perf_counter()}


# ------------------------------------------------------------------ limits


def _echo_objects(conn: Connection) -> None:
    while True:
        message = conn.recv()
        if message is None:
            return
        conn.send(message)


def _echo_pickle5(conn: Connection) -> None:
    while True:
        message = pickle.loads(conn.recv_bytes())
        if message is None:
            return
        conn.send_bytes(pickle.dumps(message, protocol=5))


def raw_round_trip_s(count: int, message: Any = None,
                     encoding: str = "send") -> float:
    """Return the seconds of one pipe round trip of ``message``.

    Args:
        count: round trips to time, after a warm-up.
        message: the object sent back and forth (default: a small dict).
        encoding: ``"send"`` for ``Connection.send``/``recv``, ``"pickle5"``
            for ``pickle.dumps(protocol=5)`` with ``send_bytes``.
    """
    message = SMALL_DICT if message is None else message
    target = _echo_objects if encoding == "send" else _echo_pickle5
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=target, args=(child,))
    process.start()
    child.close()
    try:
        if encoding == "send":
            def round_trip() -> None:
                parent.send(message)
                parent.recv()
        else:
            def round_trip() -> None:
                parent.send_bytes(pickle.dumps(message, protocol=5))
                pickle.loads(parent.recv_bytes())
        for _ in range(_WARMUP_ROUND_TRIPS):
            round_trip()
        start = time.perf_counter()
        for _ in range(count):
            round_trip()
        return (time.perf_counter() - start) / count
    finally:
        if encoding == "send":
            parent.send(None)
        else:
            parent.send_bytes(pickle.dumps(None))
        process.join()
        parent.close()


# ------------------------------------------------------------------ figure


class StepTimes(NamedTuple):
    """Seconds per step: wall time, and CPU time of each process."""

    wall_s: float
    driver_cpu_s: float
    worker_cpu_s: float


def step_time_s(iterations: int, local_dir: str) -> float:
    """Run one trial of ``iterations`` trivial steps; return s per step."""
    return step_times(iterations, local_dir).wall_s


def step_times(iterations: int, local_dir: str) -> StepTimes:
    """Run one trial of ``iterations`` trivial steps; return its times.

    The CPU times (user plus system, from ``getrusage``) cover the whole
    ``run()`` call, so they include its fixed cost spread over the steps.
    """
    driver_before = cpu_seconds(resource.RUSAGE_SELF)
    workers_before = cpu_seconds(resource.RUSAGE_CHILDREN)
    analysis = tune.run(TimestampStep,
                        stop={"training_iteration": iterations},
                        local_dir=local_dir, verbose=0)
    driver = cpu_seconds(resource.RUSAGE_SELF) - driver_before
    # The worker was joined at shutdown, so its CPU time is in CHILDREN.
    worker = cpu_seconds(resource.RUSAGE_CHILDREN) - workers_before
    stamps = [row["t"] for row in _read_results(analysis.trials[0].logdir)]
    if len(stamps) != iterations:
        raise RuntimeError(
            f"The trial wrote {len(stamps)} results; {iterations} were "
            f"expected.")
    wall = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
    return StepTimes(wall, driver / iterations, worker / iterations)


def cpu_seconds(who: int) -> float:
    """Return user plus system CPU seconds of ``getrusage(who)``."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _read_results(logdir: str) -> List[Dict[str, Any]]:
    with open(os.path.join(logdir, "result.json")) as lines:
        return [json.loads(line) for line in lines]


# ----------------------------------------------------------------- details


def _serve_full_results(conn: Connection) -> None:
    trainable = TimestampStep(config={"lr": 0.1},
                              trial_info={"trial_id": "bare"})
    while True:
        if pickle.loads(conn.recv_bytes()) is None:
            return
        conn.send_bytes(pickle.dumps(trainable.train(), protocol=5))


def bare_loop_step_s(iterations: int, directory: str) -> float:
    """Return the seconds per step of the minimal library-like loop.

    The worker returns ``Trainable.train()`` results (pickle protocol 5,
    ``send_bytes``). The driver sends the next request, then appends the
    result to a JSON-lines file and a CSV file, both buffered.
    """
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_serve_full_results,
                                      args=(child,))
    process.start()
    child.close()
    request = pickle.dumps(("train", ()), protocol=5)
    json_path = os.path.join(directory, "result.json")
    csv_path = os.path.join(directory, "progress.csv")
    try:
        with open(json_path, "a", buffering=1 << 16) as json_file, \
                open(csv_path, "a", buffering=1 << 16,
                     newline="") as csv_file:
            writer = csv.writer(csv_file)
            fields: List[str] = []
            parent.send_bytes(request)
            start = time.perf_counter()
            for index in range(iterations):
                result = pickle.loads(parent.recv_bytes())
                if index + 1 < iterations:
                    parent.send_bytes(request)
                json_file.write(json.dumps(result))
                json_file.write("\n")
                if not fields:
                    fields = [key for key in result if key != "config"]
                    writer.writerow(fields)
                writer.writerow([result.get(key) for key in fields])
            return (time.perf_counter() - start) / iterations
    finally:
        parent.send_bytes(pickle.dumps(None))
        process.join()
        parent.close()


def full_result() -> Dict[str, Any]:
    """Return a result dict with every automatic field, as a step makes."""
    trainable = TimestampStep(config={"lr": 0.1},
                              trial_info={"trial_id": "sample"})
    return trainable.train()


# ------------------------------------------------------------------- entry


def measure(settings: Settings) -> List[Figure]:
    """Measure the per-step figure, its limit and the details."""
    iterations = settings.pick(tiny=100, quick=2000, full=5000)
    round_trips = settings.pick(tiny=100, quick=3000, full=10000)
    repeats = settings.repeat_count
    runs: List[StepTimes] = []

    def figure() -> float:
        runs.append(step_times(iterations, settings.new_dir("step")))
        return runs[-1].wall_s

    limits, figures = paired_repeats(
        lambda: raw_round_trip_s(round_trips), figure, repeats)
    bare = [bare_loop_step_s(iterations, settings.new_dir("bare"))
            for _ in range(repeats)]
    result = full_result()
    sends, pickle5s = paired_repeats(
        lambda: raw_round_trip_s(round_trips, result, "send"),
        lambda: raw_round_trip_s(round_trips, result, "pickle5"), repeats)
    by_send, by_pickle5 = median(sends), median(pickle5s)
    raw = median(limits)
    details = [
        f"{iterations} steps per trial; time per step from the first to "
        f"the last step's timestamp",
        f"CPU per step (getrusage over the whole run): driver "
        f"{median([r.driver_cpu_s for r in runs]) * 1e6:.1f} us, worker "
        f"{median([r.worker_cpu_s for r in runs]) * 1e6:.1f} us",
        f"bare loop (full result dict, JSON line and CSV row, next "
        f"request sent before writing): {median(bare) * 1e6:.1f} us = "
        f"{median(bare) / raw:.2f}x the raw round trip",
        f"round trip of the full result dict ({len(result)} keys, "
        f"{len(pickle.dumps(result, protocol=5))} bytes pickled): "
        f"Connection.send {by_send * 1e6:.1f} us, pickle protocol 5 with "
        f"send_bytes {by_pickle5 * 1e6:.1f} us",
    ]
    return [Figure(
        name="step_overhead",
        title="per-step time, trivial step",
        value=median(figures) * 1e6,
        unit="us",
        limit=raw * 1e6,
        limit_title="raw Pipe round trip, small dict",
        ratio=median_ratio(figures, limits),
        comparison="<=",
        target=2.0,
        details=details,
    )]
