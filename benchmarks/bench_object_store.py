"""A large checkpoint through ``save_to_object`` and
``restore_from_object`` over the pipe.

Figure: a worker process runs a Trainable with a 100 MB state. The driver
sends it ``save_object`` (the worker saves a checkpoint, packs it into a
blob and sends the blob back) and then ``restore_object`` with that blob
(the worker unpacks it into a new directory and restores from it). These
are the requests that pausing a trial and population-based training use.
The Trainable's own work is minimal: ``save_checkpoint`` writes the bytes
to one file and ``load_checkpoint`` reads them back.

Limit: the same bytes sent to an echo process and back with
``send_bytes``/``recv_bytes``. The ratio is the figure's bandwidth (twice
the checkpoint size over the time of both requests) divided by the raw
bandwidth.
"""

import multiprocessing
import os
import time
from multiprocessing.connection import Connection
from typing import Any, Dict, List

import cloudpickle

import trainable as tune
from benchmarks import (
    Figure,
    Settings,
    median,
    median_ratio,
    paired_repeats,
)
from trainable.pool import Resources, WorkerPool

_MB = 1024 * 1024
_STATE_FILE = "state.bin"


class LargeState(tune.Trainable):
    """A Trainable whose state is ``config["megabytes"]`` MiB of bytes."""

    def setup(self, config: Dict[str, Any]) -> None:
        self.state = os.urandom(1024) * (config["megabytes"] * 1024)

    def step(self) -> Dict[str, Any]:
        return {"size": len(self.state)}

    def save_checkpoint(self, tmp_checkpoint_dir: str) -> str:
        path = os.path.join(tmp_checkpoint_dir, _STATE_FILE)
        with open(path, "wb") as file:
            file.write(self.state)
        return path

    def load_checkpoint(self, checkpoint: str) -> None:
        with open(checkpoint, "rb") as file:
            self.state = file.read()


# ------------------------------------------------------------------ limit


def _echo_bytes(conn: Connection) -> None:
    while True:
        data = conn.recv_bytes()
        if not data:
            return
        conn.send_bytes(data)


def raw_round_trip_s(megabytes: int) -> float:
    """Return the seconds to send ``megabytes`` MiB to a process and back.
    """
    data = os.urandom(1024) * (megabytes * 1024)
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_echo_bytes, args=(child,))
    process.start()
    child.close()
    try:
        start = time.perf_counter()
        parent.send_bytes(data)
        echoed = parent.recv_bytes()
        elapsed = time.perf_counter() - start
        if len(echoed) != len(data):
            raise RuntimeError("The echo process returned other bytes.")
        return elapsed
    finally:
        parent.send_bytes(b"")
        process.join()
        parent.close()


# ----------------------------------------------------------------- figure


def object_round_trip_s(megabytes: int, workdir: str) -> float:
    """Return the seconds of ``save_object`` plus ``restore_object`` of a
    ``megabytes`` MiB checkpoint, measured in the driver."""
    pool = WorkerPool(cloudpickle.dumps(LargeState), num_cpus=1)
    try:
        worker = pool.start_worker(Resources(cpu=1))
        _call(worker, "setup", ({"megabytes": megabytes},
                                {"trial_id": "object", "logdir": workdir},
                                {}))
        start = time.perf_counter()
        blob = _call(worker, "save_object")
        _call(worker, "restore_object", blob=blob)
        elapsed = time.perf_counter() - start
        if len(blob) < megabytes * _MB:
            raise RuntimeError(
                f"The blob has {len(blob)} bytes, less than the state.")
        return elapsed
    finally:
        pool.shutdown()


def _call(worker: Any, method: str, args: tuple = (),
          blob: Any = None) -> Any:
    worker.send(method, args, blob=blob)
    _, status, payload = worker.receive()
    if status != "ok":
        raise RuntimeError(
            f"The worker failed in {method!r}:\n{payload.traceback}")
    return payload


def user_file_round_trip_s(megabytes: int, directory: str) -> float:
    """Return the seconds the Trainable's own file write and read take."""
    data = os.urandom(1024) * (megabytes * 1024)
    path = os.path.join(directory, _STATE_FILE)
    start = time.perf_counter()
    with open(path, "wb") as file:
        file.write(data)
    with open(path, "rb") as file:
        file.read()
    elapsed = time.perf_counter() - start
    os.remove(path)
    return elapsed


# ------------------------------------------------------------------ entry


def measure(settings: Settings) -> List[Figure]:
    """Measure the object round trip and the raw pipe round trip."""
    megabytes = settings.pick(tiny=1, quick=100, full=100)
    limits, figures = paired_repeats(
        lambda: raw_round_trip_s(megabytes),
        lambda: object_round_trip_s(megabytes, settings.new_dir("object")),
        settings.repeat_count)
    user = median([user_file_round_trip_s(megabytes,
                                          settings.new_dir("file"))
                   for _ in range(settings.repeat_count)])
    size = 2 * megabytes
    return [Figure(
        name="object_store",
        title=f"{megabytes} MB save_object+restore_object",
        value=size / median(figures),
        unit="MB/s",
        limit=size / median(limits),
        limit_title="raw pipe, the same bytes there and back",
        ratio=median_ratio(limits, figures),
        comparison=">=",
        target=0.5,
        details=[
            f"figure {median(figures) * 1e3:.0f} ms, raw pipe "
            f"{median(limits) * 1e3:.0f} ms for the same bytes",
            f"of the figure, the Trainable's own file write and read "
            f"take {user * 1e3:.0f} ms when done alone",
        ],
    )]
