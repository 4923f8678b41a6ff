"""Worker processes: CPU and GPU slots, start, reuse and shutdown.

The driver keeps one :class:`Worker` per live worker process: the parent
end of its pipe, the process handle and the one request in flight. The
:class:`WorkerPool` gives out slots (``num_cpus`` divided by the CPUs a
trial requests, and GPU ids), keeps finished workers for reuse when
``reuse_actors`` is on, and stops every process on shutdown: first by
request, then with SIGTERM, then SIGKILL.
"""

import atexit
import itertools
import logging
import multiprocessing
import os
import signal
import sys
import time
import weakref
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Dict, List, Optional, Tuple

from trainable import protocol
from trainable.errors import InvalidConfig, WorkerDiedError
from trainable.trainable import NODE_IP_VARIABLE, node_ip
from trainable.worker import serve

logger = logging.getLogger(__name__)

# Variables that size the thread pools of numeric libraries.
THREAD_COUNT_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
_SHUTDOWN_GRACE_S = 2.0

_live_pools: "weakref.WeakSet[WorkerPool]" = weakref.WeakSet()


def _default_start_method() -> Optional[str]:
    # fork starts a worker about 2.4 times faster than forkserver and 10
    # times faster than spawn here (benchmarks/RESULTS.rst). Python 3.14
    # makes forkserver the Linux default, so ask for fork by name.
    if sys.platform.startswith("linux") and (
            "fork" in multiprocessing.get_all_start_methods()):
        return "fork"
    return None


def available_cpus() -> int:
    """Return the number of CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def visible_gpu_ids() -> List[str]:
    """Return the GPU ids listed in ``CUDA_VISIBLE_DEVICES`` (may be [])."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    return [part for part in value.split(",") if part.strip()]


@dataclass
class Resources:
    """The resources of one trial: CPUs (may be fractional), whole GPUs."""

    cpu: float = 1.0
    gpu: int = 0

    @classmethod
    def from_request(cls, request: Any) -> "Resources":
        """Build from ``resources_per_trial`` (a dict, None or Resources).

        Raises:
            InvalidConfig: unknown keys, negative amounts or fractional GPUs.
        """
        if request is None:
            return cls()
        if isinstance(request, Resources):
            return request
        request = _as_resource_dict(request)
        if not isinstance(request, dict):
            raise InvalidConfig(
                f"resources_per_trial must be a dict such as "
                f"{{'cpu': 1, 'gpu': 0}}, got {type(request).__name__} "
                f"{request!r:.80}."
            )
        unknown = set(request) - {"cpu", "gpu"}
        if unknown:
            raise InvalidConfig(
                f"resources_per_trial has the keys {sorted(unknown)}; only "
                f"'cpu' and 'gpu' are supported on one machine."
            )
        cpu = request.get("cpu", 1)
        gpu = request.get("gpu", 0)
        if not isinstance(cpu, (int, float)) or cpu < 0:
            raise InvalidConfig(
                f"resources_per_trial['cpu'] is {cpu!r}; use a number >= 0.")
        if not isinstance(gpu, (int, float)) or gpu < 0 or gpu != int(gpu):
            raise InvalidConfig(
                f"resources_per_trial['gpu'] is {gpu!r}; use a whole number "
                f">= 0 (GPUs are not shared between trials here).")
        return cls(float(cpu), int(gpu))


def _as_resource_dict(request: Any) -> Any:
    """Read Ray's resource objects as a ``{"cpu": .., "gpu": ..}`` dict.

    Accepts Ray Tune's ``Resources`` (attributes ``cpu`` and ``gpu``), a
    ``PlacementGroupFactory`` (its ``bundles``, summed) and dicts with
    upper-case ``CPU``/``GPU`` keys. Anything else is returned unchanged.
    """
    bundles = getattr(request, "bundles", None)
    if bundles is not None:
        request = {"cpu": sum(b.get("CPU", 0) for b in bundles),
                   "gpu": sum(b.get("GPU", 0) for b in bundles)}
    elif not isinstance(request, dict) and hasattr(request, "cpu"):
        request = {"cpu": request.cpu, "gpu": getattr(request, "gpu", 0)}
    if isinstance(request, dict) and set(request) & {"CPU", "GPU"}:
        request = {key.lower(): value for key, value in request.items()}
    return request


@dataclass
class PendingRequest:
    """The one request in flight on a worker."""

    request_id: int
    method: str
    context: Any = None


@dataclass
class Worker:
    """The driver's handle on one worker process."""

    process: Any
    conn: Connection
    resources: Resources
    gpu_ids: Tuple[str, ...] = ()
    pending: Optional[PendingRequest] = None
    trial: Any = None
    pid: int = 0
    start_method: str = "fork"
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    @property
    def sentinel(self) -> int:
        """The process sentinel, ready once the process has exited."""
        return self.process.sentinel

    def send(self, method: str, args: Tuple[Any, ...] = (),
             blob: Optional[bytes] = None, context: Any = None) -> None:
        """Send one request; the previous one must have had its reply."""
        if self.pending is not None:
            raise RuntimeError(
                f"Worker {self.pid} still serves {self.pending.method!r}; "
                f"cannot send {method!r}.")
        request_id = next(self._ids)
        self.pending = PendingRequest(request_id, method, context)
        try:
            protocol.send_request(self.conn, request_id, method, args, blob)
        except (BrokenPipeError, ConnectionResetError, OSError) as exc:
            raise WorkerDiedError(self.death_message(method)) from exc

    def receive(self) -> Tuple[PendingRequest, str, Any]:
        """Receive the reply to the pending request.

        Raises:
            WorkerDiedError: the process exited before it replied.
        """
        pending = self.pending
        try:
            request_id, status, payload = protocol.receive_reply(self.conn)
        except (EOFError, OSError) as exc:
            method = pending.method if pending else "nothing"
            raise WorkerDiedError(self.death_message(method)) from exc
        if pending is None or request_id != pending.request_id:
            raise RuntimeError(
                f"Worker {self.pid} replied to request {request_id}, but "
                f"request {pending and pending.request_id} was in flight.")
        self.pending = None
        return pending, status, payload

    def death_message(self, method: str) -> str:
        """Describe how the process ended, for an error message."""
        self.process.join(0.5)
        code = self.process.exitcode
        if code is None:
            how = "closed its pipe"
        elif code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        message = (f"The worker process (pid {self.pid}) {how} while it ran "
                   f"{method!r}.")
        if method == "setup" and self.start_method != "fork":
            message += (
                f" With the {self.start_method} start method each worker "
                f"imports the main script again: a script without an "
                f"'if __name__ == \"__main__\":' guard around its run() "
                f"call fails there. Add the guard, or pass "
                f"start_method='fork'. The worker's own error is on the "
                f"driver's stderr.")
        return message

    def is_alive(self) -> bool:
        """Return whether the process is still running."""
        return self.process.is_alive()


class WorkerPool:
    """Starts, lends out, reuses and stops worker processes.

    Args:
        class_blob: the cloudpickled Trainable class every worker serves.
        num_cpus: CPUs to share among trials (default: all usable CPUs).
        num_gpus: GPUs to share (default: those in CUDA_VISIBLE_DEVICES).
        start_method: ``fork``, ``forkserver`` or ``spawn`` (default: the
            platform's default).
        reuse: keep finished workers to serve the next trial.
        prestart: without ``reuse``, keep one worker started ahead of the
            next trial.
    """

    def __init__(self, class_blob: bytes, num_cpus: Optional[float] = None,
                 num_gpus: Optional[int] = None,
                 start_method: Optional[str] = None, reuse: bool = False,
                 prestart: bool = False):
        self.class_blob = class_blob
        self.num_cpus = float(num_cpus if num_cpus is not None
                              else available_cpus())
        gpu_ids = visible_gpu_ids()
        if num_gpus is not None:
            gpu_ids = gpu_ids[:num_gpus] if gpu_ids else [
                str(i) for i in range(num_gpus)]
        self.free_gpu_ids: List[str] = list(gpu_ids)
        self.num_gpus = len(gpu_ids)
        self.context = multiprocessing.get_context(
            start_method or _default_start_method())
        if self.context.get_start_method() == "forkserver":
            # The fork server imports the worker module once; each worker
            # forked from it then starts without importing it again. This
            # has no effect once the server is running.
            self.context.set_forkserver_preload(["trainable.worker"])
        self.reuse = reuse
        self.node_ip = node_ip()
        self.used_cpus = 0.0
        self.workers: List[Worker] = []
        self.idle: List[Worker] = []
        # Workers asked to shut down, with the time they were asked.
        self.retiring: List[Tuple[Worker, float]] = []
        # Without reuse every trial needs a new process; one is kept
        # started ahead (at most one spare, holding no CPU slot).
        self.prestart = prestart and not reuse
        self.spares: List[Worker] = []
        _live_pools.add(self)

    # ------------------------------------------------------------- capacity

    def check_fits(self, resources: Resources) -> None:
        """Raise InvalidConfig if one trial can never fit on this machine."""
        if resources.cpu > self.num_cpus:
            raise InvalidConfig(
                f"resources_per_trial asks for {resources.cpu:g} CPU(s) but "
                f"this machine has {self.num_cpus:g} to share. Ask for at "
                f"most {self.num_cpus:g}.")
        if resources.gpu > self.num_gpus:
            raise InvalidConfig(
                f"resources_per_trial asks for {resources.gpu} GPU(s) but "
                f"{self.num_gpus} are visible (CUDA_VISIBLE_DEVICES). Ask "
                f"for at most {self.num_gpus}.")

    def has_room(self, resources: Resources) -> bool:
        """Return whether a trial with these resources can start now."""
        if self._idle_match(resources) is not None:
            return True
        cpu_room = self.used_cpus + resources.cpu <= self.num_cpus + 1e-9
        if not cpu_room and self.idle:
            return True  # an idle worker can be stopped to make room
        return cpu_room and resources.gpu <= len(self.free_gpu_ids)

    def _idle_match(self, resources: Resources) -> Optional[Worker]:
        for worker in self.idle:
            if worker.resources == resources:
                return worker
        return None

    # ------------------------------------------------------------ lifecycle

    def take_idle(self, resources: Resources) -> Optional[Worker]:
        """Return an idle worker with the same resources, if any."""
        worker = self._idle_match(resources)
        if worker is not None:
            self.idle.remove(worker)
        return worker

    def start_worker(self, resources: Resources,
                     name: str = "trainable-worker") -> Worker:
        """Start (or take a prestarted) worker process with the given
        resources."""
        while (self.used_cpus + resources.cpu > self.num_cpus + 1e-9
               and self.idle):
            self.stop_worker(self.idle.pop(0))
        worker = self._take_spare(resources)
        if worker is None:
            gpu_ids = tuple(self.free_gpu_ids[:resources.gpu])
            del self.free_gpu_ids[:resources.gpu]
            worker = self._spawn(resources, gpu_ids, name)
        self.used_cpus += resources.cpu
        self.workers.append(worker)
        if self.prestart and resources.gpu == 0 and not self.spares:
            # The next trial most likely needs the same kind of worker:
            # start it now, so its start-up overlaps this trial's run.
            self.spares.append(self._spawn(resources, (), "trainable-spare"))
        return worker

    def _take_spare(self, resources: Resources) -> Optional[Worker]:
        for worker in self.spares:
            if worker.resources == resources and worker.process.is_alive():
                self.spares.remove(worker)
                return worker
        return None

    def _spawn(self, resources: Resources, gpu_ids: Tuple[str, ...],
               name: str) -> Worker:
        env = self._worker_env(resources, gpu_ids)
        parent_conn, child_conn = self.context.Pipe()
        process = self.context.Process(
            target=serve,
            args=(child_conn, self.class_blob, env, os.getpid()),
            name=name,
        )
        with _environment(env if self.context.get_start_method() == "spawn"
                          else {}):
            process.start()
        child_conn.close()
        logger.debug("Started worker pid %d with %s", process.pid, resources)
        return Worker(process, parent_conn, resources, gpu_ids,
                      pid=process.pid,
                      start_method=self.context.get_start_method())

    def _worker_env(self, resources: Resources,
                    gpu_ids: Tuple[str, ...]) -> Dict[str, str]:
        threads = str(max(1, int(resources.cpu)))
        env = {name: threads for name in THREAD_COUNT_VARIABLES}
        env[NODE_IP_VARIABLE] = self.node_ip
        if self.num_gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_ids)
        return env

    def release(self, worker: Worker, reusable: bool) -> None:
        """Take back a worker whose trial ended; keep it idle or stop it."""
        worker.trial = None
        if reusable and self.reuse and worker.pending is None and (
                worker.is_alive()):
            self.idle.append(worker)
        else:
            self.stop_worker(worker)

    def stop_worker(self, worker: Worker, graceful: bool = True) -> None:
        """Stop one worker process and free its resources."""
        if worker in self.idle:
            self.idle.remove(worker)
        if worker not in self.workers:
            return
        self.workers.remove(worker)
        self.used_cpus = max(0.0, self.used_cpus - worker.resources.cpu)
        self.free_gpu_ids.extend(worker.gpu_ids)
        if graceful and _request_shutdown(worker):
            # The process exits on its own; reap() collects it later, so
            # the next trial can start while this one winds down.
            self.retiring.append((worker, time.monotonic()))
        else:
            _stop_process(worker, graceful=False)
        logger.debug("Stopped worker pid %d", worker.pid)

    def reap(self) -> None:
        """Collect retiring workers that exited; kill those that take
        longer than the grace period."""
        now = time.monotonic()
        still = []
        for worker, since in self.retiring:
            if not worker.process.is_alive():
                _stop_process(worker, graceful=False)
            elif now - since > _SHUTDOWN_GRACE_S:
                logger.warning("Worker pid %d did not exit within %.0f s of "
                               "shutdown; killing it.", worker.pid,
                               _SHUTDOWN_GRACE_S)
                _stop_process(worker, graceful=False)
            else:
                still.append((worker, since))
        self.retiring = still

    def stop_idle(self) -> None:
        """Stop the workers kept for reuse."""
        for worker in list(self.idle):
            self.stop_worker(worker)

    def shutdown(self, graceful: bool = True) -> None:
        """Stop every worker process of this pool and wait for them."""
        for worker in self.spares:
            self.workers.append(worker)
            self.used_cpus += worker.resources.cpu
        self.spares = []
        for worker in list(self.workers):
            self.stop_worker(worker, graceful)
        for worker, _ in self.retiring:
            worker.process.join(_SHUTDOWN_GRACE_S if graceful else 0)
            _stop_process(worker, graceful=False)
        self.retiring = []
        _live_pools.discard(self)


def _request_shutdown(worker: Worker) -> bool:
    """Ask an idle worker to exit; return False if it cannot be asked."""
    if worker.pending is not None or not worker.process.is_alive():
        return False
    try:
        protocol.send_request(worker.conn, 0, "shutdown")
    except OSError:
        return False
    return True


def _stop_process(worker: Worker, graceful: bool) -> None:
    process = worker.process
    if graceful and _request_shutdown(worker):
        process.join(_SHUTDOWN_GRACE_S)
    if process.is_alive():
        # Workers ignore SIGTERM, so they are killed outright.
        process.kill()
        process.join()
    else:
        process.join(0)
    worker.conn.close()
    try:
        process.close()
    except ValueError:
        pass


class _environment:
    """Set environment variables for the duration of a ``with`` block.

    Used around starting a ``spawn`` worker, whose interpreter reads the
    thread-count variables before it runs any code of this package.
    """

    def __init__(self, env: Dict[str, str]):
        self.env = env
        self.saved: Dict[str, Optional[str]] = {}

    def __enter__(self) -> None:
        for name, value in self.env.items():
            self.saved[name] = os.environ.get(name)
            os.environ[name] = value

    def __exit__(self, *exc: Any) -> None:
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@atexit.register
def _shutdown_live_pools() -> None:
    for pool in list(_live_pools):
        pool.shutdown(graceful=False)
