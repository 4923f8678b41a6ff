"""The worker process: a loop that serves one Trainable over a pipe.

::

    driver (pool.Worker)                  worker process (serve)
    parent end of Pipe  --- request --->  child end of Pipe
                        <--- reply ----
    process sentinel                      parent watch thread

The driver owns the parent end and the process handle; the worker owns
the child end. The worker handles one request at a time and sends exactly
one reply per request (see ``trainable.protocol``).

When the driver dies, the pipe reports EOF (or the parent watch notices
that the parent process is gone) and the worker exits, so no worker
outlives its driver. When the worker dies, its process
sentinel becomes ready and the driver's end of the pipe reports EOF.

The worker ignores SIGINT and SIGTERM: Ctrl-C in a terminal and timeout(1)
signal the whole process group, and it is the driver that decides how the
experiment stops.
"""

import logging
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any, Callable, Dict, Optional, Tuple

import cloudpickle

from trainable import protocol
from trainable.errors import TuneError

logger = logging.getLogger(__name__)

_PARENT_POLL_INTERVAL_S = 0.5


def serve(conn: Connection, class_blob: bytes, env: Dict[str, str],
          parent_pid: int) -> None:
    """Serve requests for one Trainable class until a shutdown request."""
    _prepare_process(env, parent_pid)
    state = _WorkerState(class_blob)
    while True:
        try:
            request_id, method, args, blob_follows = pickle.loads(
                conn.recv_bytes())
            if blob_follows:
                args = args + (conn.recv_bytes(),)
        except (EOFError, OSError):
            # The driver is gone; nothing is left to serve.
            state.stop_trainable()
            return
        try:
            value = state.handle(method, args)
        except BaseException as exc:  # noqa: B902 - every error is replied
            reply = protocol.encode_reply(
                request_id, protocol.ERROR,
                protocol.error_from_exception(exc))
            conn.send_bytes(reply)
        else:
            if isinstance(value, (bytes, bytearray)):
                conn.send_bytes(protocol.encode_reply(
                    request_id, protocol.BLOB, None))
                conn.send_bytes(value)
            else:
                conn.send_bytes(protocol.encode_reply(
                    request_id, protocol.OK, value))
        if method == "shutdown":
            return


def _prepare_process(env: Dict[str, str], parent_pid: int) -> None:
    os.environ.update(env)
    # Ctrl-C, timeout(1) and batch schedulers signal the whole process
    # group. The driver decides how the experiment stops (it checkpoints
    # and pauses trials), so workers ignore both signals. The driver ends
    # them with a shutdown request or SIGKILL.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent(parent_pid)


def _load_libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True)
    except (ImportError, OSError):
        return None


# Loaded when the driver imports this module, so that forked workers
# inherit the handle instead of loading ctypes on every start.
_LIBC = _load_libc()
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    # Linux can deliver SIGKILL when the parent dies. The watch thread
    # covers other systems and the forkserver start method, where the
    # parent is the fork server rather than the driver.
    if _LIBC is not None:
        try:
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except AttributeError:
            pass
    thread = threading.Thread(target=_watch_parent, args=(parent_pid,),
                              name="trainable-parent-watch", daemon=True)
    thread.start()


def _watch_parent(parent_pid: int) -> None:
    direct_parent = os.getppid()
    while True:
        time.sleep(_PARENT_POLL_INTERVAL_S)
        if os.getppid() != direct_parent or not _pid_alive(parent_pid):
            os._exit(1)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _WorkerState:
    """The Trainable instance of this worker and the methods it serves."""

    def __init__(self, class_blob: bytes):
        self.class_blob = class_blob
        self.cls: Optional[type] = None
        self.trainable: Any = None
        self.handlers: Dict[str, Callable[..., Any]] = {
            "setup": self.setup,
            "reset": self.reset,
            "train": self.train,
            "save": self.save,
            "save_object": self.save_object,
            "restore": self.restore,
            "restore_object": self.restore_object,
            "stop": self.stop,
            "shutdown": self.shutdown,
            "ping": lambda: os.getpid(),
        }

    def handle(self, method: str, args: tuple) -> Any:
        handler = self.handlers.get(method)
        if handler is None:
            raise TuneError(f"Unknown worker request {method!r}.")
        return handler(*args)

    def _require_trainable(self) -> Any:
        if self.trainable is None:
            raise TuneError("The worker has no Trainable; send setup first.")
        return self.trainable

    def setup(self, config: Dict[str, Any], trial_info: Dict[str, Any],
              setup_kwargs: Dict[str, Any]) -> int:
        if self.cls is None:
            self.cls = cloudpickle.loads(self.class_blob)
        self.stop_trainable()
        _enter_logdir(trial_info.get("logdir"), trial_info.get("log_files"))
        self.trainable = self.cls(config=config, trial_info=trial_info,
                                  **setup_kwargs)
        return os.getpid()

    def reset(self, config: Dict[str, Any],
              trial_info: Dict[str, Any]) -> bool:
        trainable = self._require_trainable()
        _enter_logdir(trial_info.get("logdir"), trial_info.get("log_files"))
        return trainable.reset(config, trial_info=trial_info)

    def train(self) -> Dict[str, Any]:
        return self._require_trainable().train()

    def save(self, parent_dir: Optional[str]) -> Dict[str, Any]:
        from trainable import checkpoint as ckpt

        path = self._require_trainable().save(parent_dir)
        metadata = ckpt.read_metadata(ckpt.find_checkpoint_dir(path))
        return {"path": path, "iteration": metadata["iteration"]}

    def save_object(self) -> bytes:
        return self._require_trainable().save_to_object()

    def restore(self, path: str) -> int:
        trainable = self._require_trainable()
        trainable.restore(path)
        return trainable.iteration

    def restore_object(self, blob: bytes) -> int:
        trainable = self._require_trainable()
        trainable.restore_from_object(blob)
        return trainable.iteration

    def stop(self, keep_for_reuse: bool = False) -> Optional[str]:
        # A worker kept for reuse keeps its Trainable: the next trial gets
        # it through reset(), and cleanup() runs when the worker shuts down.
        # An error in cleanup() is returned as text for the driver to log:
        # the trial's results are complete, so it does not fail the trial.
        if keep_for_reuse:
            return None
        trainable, self.trainable = self.trainable, None
        if trainable is None:
            return None
        try:
            trainable.stop()
        except Exception:
            return traceback.format_exc()
        return None

    def shutdown(self) -> None:
        self.stop_trainable()

    def stop_trainable(self, raise_errors: bool = False) -> None:
        trainable, self.trainable = self.trainable, None
        if trainable is None:
            return
        try:
            trainable.stop()
        except Exception:
            if raise_errors:
                raise
            logger.exception("cleanup() of trial %s raised",
                             trainable.trial_id)


def _enter_logdir(logdir: Optional[str],
                  log_files: Optional[Tuple[str, str]] = None) -> None:
    # Ray Tune runs each trial with its trial directory as the working
    # directory, and user code relies on relative paths landing there.
    if logdir:
        os.makedirs(logdir, exist_ok=True)
        os.chdir(logdir)
    if log_files:
        _redirect_output(logdir or ".", log_files)


def _redirect_output(logdir: str, log_files: Tuple[str, str]) -> None:
    """Send this process's stdout and stderr to files in ``logdir``.

    The file descriptors are redirected, so output of C extensions and
    subprocesses lands there too.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    out_path = os.path.join(logdir, log_files[0])
    err_path = os.path.join(logdir, log_files[1])
    out_fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    if err_path == out_path:
        err_fd = out_fd
    else:
        err_fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                         0o644)
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    os.close(out_fd)
    if err_fd != out_fd:
        os.close(err_fd)
    # sys.stdout may be a replacement that does not write to fd 1 (a test
    # runner's capture, a notebook's stream), so point it at fd 1 again.
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
