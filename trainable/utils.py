"""Helpers for users: ``validate_save_restore``, and the pickling checks
that ``run()`` uses to name an unpicklable object."""

import inspect
import logging
import math
import shutil
import tempfile
from typing import Any, Dict, Optional, Tuple

import cloudpickle

from trainable.errors import SaveRestoreError, TuneError, WorkerError

logger = logging.getLogger(__name__)

# Result keys that differ between two runs of the same computation.
_VOLATILE_KEYS = frozenset({
    "time_this_iter_s", "time_total_s", "time_since_restore", "timestamp",
    "date", "pid", "hostname", "node_ip", "experiment_id", "trial_id",
    "iterations_since_restore", "timesteps_since_restore", "config",
})


def find_unpicklable(value: Any, path: str = "") -> Optional[
        Tuple[str, Any, str]]:
    """Return ``(key path, value, error)`` of the first part of ``value``
    that cloudpickle cannot pickle, or None if all of it pickles."""
    try:
        cloudpickle.dumps(value)
        return None
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    items = ()
    if isinstance(value, dict):
        items = ((f"{path}[{key!r}]", item) for key, item in value.items())
    elif isinstance(value, (list, tuple)):
        items = ((f"{path}[{i}]", item) for i, item in enumerate(value))
    for sub_path, item in items:
        found = find_unpicklable(item, sub_path)
        if found is not None:
            return found
    return path, value, error


def describe_unpicklable(trainable: Any) -> Optional[str]:
    """Name the variable or attribute that keeps ``trainable`` from being
    pickled, or return None if none is found."""
    functions = []
    if inspect.isfunction(trainable):
        functions.append(("", trainable))
    elif isinstance(trainable, type):
        for name, attr in vars(trainable).items():
            func = getattr(attr, "__func__", attr)
            if inspect.isfunction(func):
                functions.append((f"{trainable.__qualname__}.{name}", func))
            elif not name.startswith("__"):
                found = find_unpicklable(attr)
                if found is not None:
                    return (f"the class attribute {name!r} holds "
                            f"{type(attr).__name__} {attr!r:.60}")
    for owner, func in functions:
        try:
            variables = inspect.getclosurevars(func)
        except (TypeError, ValueError):
            continue
        where = f" used by {owner}()" if owner else ""
        for kind, mapping in (("variable", variables.nonlocals),
                              ("global variable", variables.globals)):
            for name, value in mapping.items():
                if inspect.ismodule(value):
                    continue
                if find_unpicklable(value) is not None:
                    return (f"the {kind} {name!r}{where} holds "
                            f"{type(value).__name__} {value!r:.60}")
    return None


def validate_save_restore(
    trainable_cls: type,
    config: Optional[Dict[str, Any]] = None,
    num_gpus: int = 0,
    use_object_store: bool = False,
    compare_results: bool = True,
    start_method: Optional[str] = None,
    num_steps: int = 3,
) -> bool:
    """Check that a Trainable continues correctly after save and restore.

    Two worker processes run the class. The first trains ``num_steps``
    steps and saves; the second restores that checkpoint. With
    ``use_object_store=True`` the checkpoint travels as an in-memory blob
    and is unpacked into a fresh directory, as on Ray, so a Trainable that
    stores absolute paths fails. Both then train one more step: the
    iterations must match and, with ``compare_results``, so must the
    metrics (turn it off for Trainables whose steps are random).

    Returns:
        True when every check passed.

    Raises:
        SaveRestoreError: a check failed. The message names the check and
            the likely cause.
    """
    from trainable.function import wrap_function
    from trainable.pool import Resources, WorkerPool
    from trainable.trainable import Trainable

    if not (isinstance(trainable_cls, type)
            and issubclass(trainable_cls, Trainable)):
        trainable_cls = wrap_function(trainable_cls)
    config = dict(config or {})
    pool = WorkerPool(cloudpickle.dumps(trainable_cls), num_cpus=2,
                      num_gpus=num_gpus or None, start_method=start_method)
    resources = Resources(cpu=1, gpu=num_gpus)
    tmp = tempfile.mkdtemp(prefix="validate_save_restore-")
    try:
        first = pool.start_worker(resources)
        second = pool.start_worker(resources)
        info = {"trial_id": "validate", "trial_name": "validate",
                "logdir": tmp}
        call(first, "setup", config, info, {})
        for _ in range(num_steps):
            call(first, "train")
        if use_object_store:
            blob = call(first, "save_object")
        else:
            saved = call(first, "save", tmp)
        # The second worker restores where the first cannot interfere.
        call(second, "setup", config, dict(info, logdir=tempfile.mkdtemp(
            prefix="validate_save_restore-", dir=tmp)), {})
        try:
            if use_object_store:
                iteration = call(second, "restore_object", blob=blob)
            else:
                iteration = call(second, "restore", saved["path"])
        except WorkerError as exc:
            raise SaveRestoreError(
                f"{trainable_cls.__name__} could not be restored from its "
                f"own checkpoint in a fresh worker: {exc}\nA common cause "
                f"is a checkpoint that stores absolute paths; store paths "
                f"relative to the checkpoint directory.") from None
        if iteration != num_steps:
            raise SaveRestoreError(
                f"After restoring, {trainable_cls.__name__} is at iteration "
                f"{iteration}, but the checkpoint was saved at iteration "
                f"{num_steps}.")
        expected = call(first, "train")
        actual = call(second, "train")
        _compare_next_results(trainable_cls.__name__, expected, actual,
                              compare_results)
        for worker in (first, second):
            call(worker, "stop")
    finally:
        pool.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    return True


def _compare_next_results(name: str, expected: Dict[str, Any],
                          actual: Dict[str, Any], compare: bool) -> None:
    if actual["training_iteration"] != expected["training_iteration"]:
        raise SaveRestoreError(
            f"The restored {name} reported training_iteration "
            f"{actual['training_iteration']}, the original "
            f"{expected['training_iteration']}.")
    if not compare:
        return
    for key, value in expected.items():
        if key in _VOLATILE_KEYS:
            continue
        other = actual.get(key)
        if not _same(value, other):
            raise SaveRestoreError(
                f"After save and restore, {name} reported {key}={other!r} "
                f"where the original reported {key}={value!r}. Its "
                f"checkpoint does not hold all the state that step() uses. "
                f"Save that state in save_checkpoint(), or pass "
                f"compare_results=False if step() is random.")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b)) or math.isclose(
            a, b, rel_tol=1e-9, abs_tol=1e-12)
    try:
        return bool(a == b)
    except Exception:
        return repr(a) == repr(b)


def call(worker: Any, method: str, *args: Any, blob: Optional[bytes] = None,
         timeout: float = 300.0) -> Any:
    """Send one request to a worker and wait for its reply.

    Raises:
        WorkerError: the call raised in the worker (with its traceback).
        WorkerDiedError: the worker died.
        TuneError: no reply within ``timeout`` seconds.
    """
    from trainable import protocol

    worker.send(method, args, blob)
    if not worker.conn.poll(timeout):
        raise TuneError(
            f"Worker {worker.pid} did not reply to {method!r} within "
            f"{timeout:g} s.")
    _, status, payload = worker.receive()
    if status == protocol.ERROR:
        raise WorkerError(f"{payload.type_name}: {payload.message}",
                          payload.traceback)
    return payload
