"""The Trainable base class: the lifecycle of one trial and its results.

A subclass implements ``setup``, ``step``, ``save_checkpoint``,
``load_checkpoint`` and optionally ``cleanup`` and ``reset_config`` (or the
classic names ``_setup``, ``_train``, ``_save``, ``_restore``, ``_stop``).
The worker process calls the public methods (``train``, ``save``,
``restore``, ``save_to_object``, ``restore_from_object``, ``reset``,
``stop``); they can also be called directly in the current process, which
is how unit tests of a Trainable usually run.
"""

import copy
import datetime
import logging
import os
import platform
import shutil
import socket
import tempfile
import time
import uuid
from typing import Any, Callable, Dict, Optional, Union

from trainable import checkpoint as ckpt
from trainable.errors import ResultTypeError, TrainableDefinitionError
from trainable.naming import adopt_classic_hooks

logger = logging.getLogger(__name__)

# Keys of the automatic result fields, as Ray Tune names them.
TRAINING_ITERATION = "training_iteration"
TIME_THIS_ITER_S = "time_this_iter_s"
TIME_TOTAL_S = "time_total_s"
TIMESTEPS_THIS_ITER = "timesteps_this_iter"
TIMESTEPS_TOTAL = "timesteps_total"
EPISODES_THIS_ITER = "episodes_this_iter"
EPISODES_TOTAL = "episodes_total"
DONE = "done"
SHOULD_CHECKPOINT = "should_checkpoint"
RESULT_DUPLICATE = "__duplicate__"

_HOSTNAME = platform.node() or "localhost"


#: Set by the worker pool, so that each worker does not resolve the host
#: name again (a lookup can take milliseconds).
NODE_IP_VARIABLE = "TRAINABLE_NODE_IP"


def node_ip() -> str:
    """Return this machine's IP address, as Ray Tune reports ``node_ip``."""
    known = os.environ.get(NODE_IP_VARIABLE)
    if known:
        return known
    try:
        return socket.gethostbyname(_HOSTNAME)
    except OSError:
        return "127.0.0.1"


class Trainable:
    """Base class for a trainable: subclass it and implement its hooks.

    Args:
        config: the hyperparameters of this trial. ``setup`` receives a deep
            copy; ``self.config`` keeps the original.
        logger_creator: accepted for Ray Tune compatibility. If given, it
            is called with the config and the ``logdir`` attribute of what it
            returns becomes this Trainable's log directory.
        trial_info: set by the worker process: a dict with ``trial_id``,
            ``trial_name`` and ``logdir``.
        **setup_kwargs: extra keyword arguments for ``setup``, as
            ``with_parameters`` passes them.
    """

    _node_ip_cache: Optional[str] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        adopt_classic_hooks(cls)

    def __init__(
        self,
        config: Optional[Dict[str, Any]] = None,
        logger_creator: Optional[Callable[[Dict[str, Any]], Any]] = None,
        trial_info: Optional[Dict[str, Any]] = None,
        **setup_kwargs: Any,
    ):
        self.config: Dict[str, Any] = config if config is not None else {}
        self._experiment_id = uuid.uuid4().hex
        self._set_trial_info(trial_info or {})
        if logger_creator is not None:
            self._logdir = getattr(logger_creator(self.config), "logdir",
                                   self._logdir)
        self._reset_counters()
        self._restored = False
        self._last_result: Dict[str, Any] = {}
        start = time.time()
        self.setup(copy.deepcopy(self.config), **setup_kwargs)
        setup_time = time.time() - start
        if setup_time > 10:
            logger.info(
                "setup() of trial %s took %.1f s; with reuse_actors=True "
                "a worker is set up once for many trials.",
                self._trial_id, setup_time,
            )

    # ----------------------------------------------------------------- state

    def _set_trial_info(self, info: Dict[str, Any]) -> None:
        self._trial_id = info.get("trial_id", "default")
        self._trial_name = info.get("trial_name", "default")
        self._logdir = info.get("logdir")

    def _reset_counters(self) -> None:
        self._iteration = 0
        self._time_total = 0.0
        self._timesteps_total: Optional[int] = None
        self._episodes_total: Optional[int] = None
        self._time_since_restore = 0.0
        self._timesteps_since_restore = 0
        self._iterations_since_restore = 0

    @property
    def iteration(self) -> int:
        """The number of completed ``train()`` calls."""
        return self._iteration

    @property
    def training_iteration(self) -> int:
        """Alias of :attr:`iteration`, as in Ray Tune."""
        return self._iteration

    @property
    def trial_id(self) -> str:
        """The id of the trial this Trainable runs (``"default"`` if none)."""
        return self._trial_id

    @property
    def trial_name(self) -> str:
        """The name of the trial this Trainable runs."""
        return self._trial_name

    @property
    def logdir(self) -> str:
        """The trial directory; a temporary one for a standalone Trainable.
        """
        if self._logdir is None:
            self._logdir = tempfile.mkdtemp(
                prefix=f"{type(self).__name__}_")
        return self._logdir

    @classmethod
    def default_resource_request(cls, config: Dict[str, Any]) -> Any:
        """Return the resources a trial with ``config`` needs, or None.

        Override it to return ``{"cpu": n, "gpu": m}`` (Ray Tune's
        ``Resources`` and ``PlacementGroupFactory`` objects work too);
        ``run(resources_per_trial=...)`` takes precedence.
        """
        return None

    def get_config(self) -> Dict[str, Any]:
        """Return the config of this trial."""
        return self.config

    # ------------------------------------------------------------- lifecycle

    def train(self) -> Dict[str, Any]:
        """Run one ``step`` and return its result with the automatic fields.

        Raises:
            TypeError: ``step`` returned something that is not a dict with
                string keys.
        """
        start = time.time()
        result = self.step()
        result = _check_result(result, type(self).__name__)
        if result.get(RESULT_DUPLICATE):
            # The function API ended without a new report: repeat the last
            # result, marked done, without counting an iteration.
            final = dict(self._last_result)
            final[DONE] = True
            final[RESULT_DUPLICATE] = True
            return final
        result = dict(result)
        now = time.time()
        self._iteration += 1
        self._iterations_since_restore += 1
        time_this_iter = result.get(TIME_THIS_ITER_S)
        if time_this_iter is None:
            time_this_iter = now - start
        self._time_total += time_this_iter
        self._time_since_restore += time_this_iter
        timesteps = result.get(TIMESTEPS_THIS_ITER)
        if timesteps is not None:
            self._timesteps_total = (self._timesteps_total or 0) + timesteps
            self._timesteps_since_restore += timesteps
        episodes = result.get(EPISODES_THIS_ITER)
        if episodes is not None:
            self._episodes_total = (self._episodes_total or 0) + episodes
        result.setdefault(DONE, False)
        result.setdefault(TIMESTEPS_TOTAL, self._timesteps_total)
        if self._episodes_total is not None:
            result.setdefault(EPISODES_TOTAL, self._episodes_total)
        result[TRAINING_ITERATION] = self._iteration
        result[TIME_THIS_ITER_S] = time_this_iter
        result[TIME_TOTAL_S] = self._time_total
        result.update(
            trial_id=self._trial_id,
            experiment_id=self._experiment_id,
            date=datetime.datetime.fromtimestamp(now).strftime(
                "%Y-%m-%d_%H-%M-%S"),
            timestamp=int(now),
            pid=os.getpid(),
            hostname=_HOSTNAME,
            node_ip=self._node_ip(),
            config=self.config,
            time_since_restore=self._time_since_restore,
            timesteps_since_restore=self._timesteps_since_restore,
            iterations_since_restore=self._iterations_since_restore,
        )
        self._last_result = result
        self.log_result(result)
        return result

    @classmethod
    def _node_ip(cls) -> str:
        if Trainable._node_ip_cache is None:
            Trainable._node_ip_cache = node_ip()
        return Trainable._node_ip_cache

    def _counters(self) -> Dict[str, Any]:
        return {
            "iteration": self._iteration,
            "time_total_s": self._time_total,
            "timesteps_total": self._timesteps_total,
            "episodes_total": self._episodes_total,
        }

    def save(self, checkpoint_dir: Optional[str] = None) -> str:
        """Save a checkpoint and return its path.

        The checkpoint goes to ``<checkpoint_dir or logdir>/checkpoint_<it>``
        where ``<it>`` is the current iteration. The return value is the
        path ``save_checkpoint`` returned, moved to the final directory: pass
        it to :meth:`restore`.
        """
        parent = checkpoint_dir or self.logdir
        staging = ckpt.make_staging_dir(parent, self._iteration)
        try:
            returned = self.save_checkpoint(staging)
            ckpt.write_user_checkpoint(staging, returned, self._counters())
            final = os.path.join(parent,
                                 ckpt.checkpoint_dir_name(self._iteration))
            relpath = ckpt.read_metadata(staging)["path"]
            ckpt.commit(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return os.path.normpath(os.path.join(final, relpath))

    def save_to_object(self) -> bytes:
        """Save a checkpoint into one ``bytes`` blob (no files left behind).
        """
        tmp = tempfile.mkdtemp(prefix="trainable-save-")
        try:
            path = self.save(tmp)
            return ckpt.pack_dir(ckpt.find_checkpoint_dir(path))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def restore(self, checkpoint_path: str) -> None:
        """Restore from a path that :meth:`save` returned.

        Raises:
            CheckpointError: the path is missing or not a valid checkpoint.
        """
        directory = ckpt.find_checkpoint_dir(os.fspath(checkpoint_path))
        value, metadata = ckpt.load_user_checkpoint(directory)
        self.load_checkpoint(value)
        self._apply_metadata(metadata)

    def restore_from_object(self, blob: bytes) -> None:
        """Restore from a blob that :meth:`save_to_object` returned.

        The blob is unpacked into a fresh temporary directory, which is
        deleted after ``load_checkpoint`` returns. A Trainable that stored
        absolute paths in its checkpoint fails here, as it would on Ray.
        """
        tmp = ckpt.new_temp_dir()
        try:
            ckpt.unpack_blob(blob, tmp)
            self.restore(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _apply_metadata(self, metadata: Dict[str, Any]) -> None:
        self._iteration = metadata.get("iteration", 0)
        self._time_total = metadata.get("time_total_s", 0.0)
        self._timesteps_total = metadata.get("timesteps_total")
        self._episodes_total = metadata.get("episodes_total")
        self._time_since_restore = 0.0
        self._timesteps_since_restore = 0
        self._iterations_since_restore = 0
        self._restored = True

    def reset(
        self,
        new_config: Dict[str, Any],
        logger_creator: Optional[Callable[[Dict[str, Any]], Any]] = None,
        trial_info: Optional[Dict[str, Any]] = None,
    ) -> bool:
        """Prepare this instance for a new trial and call ``reset_config``.

        Trial-scoped state (counters, trial id and name, log directory,
        ``config``) is reset before ``reset_config`` runs. Returns what
        ``reset_config`` returned, as a bool: False means the caller must
        start a fresh instance instead.
        """
        self.config = new_config
        if trial_info is not None:
            self._set_trial_info(trial_info)
        if logger_creator is not None:
            self._logdir = getattr(logger_creator(new_config), "logdir",
                                   self._logdir)
        self._reset_counters()
        self._restored = False
        self._last_result = {}
        self._experiment_id = uuid.uuid4().hex
        return self.reset_config(new_config) is True

    def stop(self) -> None:
        """Release resources: calls ``cleanup``."""
        self.cleanup()

    def export_model(self, export_formats: Any,
                     export_dir: Optional[str] = None) -> Dict[str, str]:
        """Export the model; override to support it (Ray Tune API)."""
        return {}

    # ------------------------------------------------------ hooks to override

    def setup(self, config: Dict[str, Any]) -> None:
        """Set up the trial from its config (classic name ``_setup``)."""

    def step(self) -> Dict[str, Any]:
        """Run one iteration and return a dict of metrics (``_train``)."""
        raise TrainableDefinitionError(
            f"{type(self).__name__} does not implement step() (or the "
            f"classic _train()); define it to return a dict of metrics."
        )

    def save_checkpoint(self, tmp_checkpoint_dir: str) -> Union[str, Dict]:
        """Save state into ``tmp_checkpoint_dir`` (classic name ``_save``).

        Return that directory, a path inside it, or a dict to be pickled.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement save_checkpoint() "
            f"(or the classic _save()), so it cannot be checkpointed, "
            f"paused or restarted after a failure."
        )

    def load_checkpoint(self, checkpoint: Union[str, Dict]) -> None:
        """Restore state from what ``save_checkpoint`` returned (``_restore``).
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement load_checkpoint() "
            f"(or the classic _restore()), so it cannot be restored."
        )

    def cleanup(self) -> None:
        """Release resources at the end of the trial (classic ``_stop``)."""

    def reset_config(self, new_config: Dict[str, Any]) -> bool:
        """Adopt a new config in place; return True if that worked.

        The default returns False, so reusing a worker for another trial
        starts a fresh Trainable instead.
        """
        return False

    def log_result(self, result: Dict[str, Any]) -> None:
        """Called with every result; override to log it yourself."""


def _check_result(result: Any, class_name: str) -> Dict[str, Any]:
    if not isinstance(result, dict):
        raise ResultTypeError(
            f"{class_name}.step() returned {type(result).__name__} "
            f"{result!r:.80}; it must return a dict of metrics such as "
            f"{{'loss': 0.1}}."
        )
    for key in result:
        if not isinstance(key, str):
            raise ResultTypeError(
                f"{class_name}.step() returned a dict with the key {key!r} "
                f"of type {type(key).__name__}; result keys must be strings."
            )
    return result
