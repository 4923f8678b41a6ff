"""The Trial record, its statuses and its checkpoints.

A :class:`Trial` is the driver's view of one configuration being trained:
its config, status, last result, directory and checkpoints. It carries the
attributes Ray Tune users read (``trial_id``, ``config``, ``status``,
``last_result``, ``logdir``, ``checkpoint``, ``num_failures``,
``error_file``) and is what ``ExperimentAnalysis`` returns.
"""

import base64
import itertools
import logging
import os
import re
import shutil
from typing import Any, Dict, List, Optional

import cloudpickle

from trainable.errors import InvalidConfig

logger = logging.getLogger(__name__)

# Maximum length of a trial directory name. File systems allow 255 bytes
# per path component and eCryptfs only 143, so this leaves room for
# suffixes.
MAX_DIRNAME_LENGTH = 128
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_.,=+-]+")


_checkpoint_order = itertools.count()


class Checkpoint:
    """One checkpoint of a trial, on disk or in memory.

    Attributes:
        storage: :attr:`PERSISTENT` (``value`` is a path) or :attr:`MEMORY`
            (``value`` is a blob from ``save_to_object``).
        value: the path or the blob.
        result: the trial's result when the checkpoint was taken.
        iteration: the ``training_iteration`` the checkpoint holds.
    """

    PERSISTENT = "persistent"
    MEMORY = "memory"

    def __init__(self, storage: str, value: Any,
                 result: Optional[Dict[str, Any]] = None,
                 iteration: int = 0):
        self.storage = storage
        self.value = value
        self.result = result or {}
        self.iteration = iteration
        # Creation order: the newest checkpoint is the one taken last, which
        # after an exploit may hold a lower iteration than older ones.
        self.order = next(_checkpoint_order)

    @property
    def dir_or_data(self) -> Any:
        """Ray Tune's later name for :attr:`value`."""
        return self.value

    def __fspath__(self) -> str:
        if self.storage != self.PERSISTENT:
            raise TypeError("An in-memory checkpoint has no path.")
        return self.value

    def __repr__(self) -> str:
        where = (self.value if self.storage == self.PERSISTENT
                 else f"<{len(self.value)} bytes in memory>")
        return f"Checkpoint({self.storage}, {where}, " \
               f"iteration={self.iteration})"


class CheckpointManager:
    """The disk checkpoints of one trial and the policy that keeps them.

    Args:
        keep_checkpoints_num: how many checkpoints to keep by score (None
            keeps all). The newest checkpoint is always kept as well,
            because a restart after a failure or a resume needs it, so up
            to ``keep_checkpoints_num + 1`` directories may exist.
        checkpoint_score_attr: the result key that ranks checkpoints,
            higher is better; a ``min-`` prefix means lower is better. Ties
            go to the newer checkpoint.
    """

    def __init__(self, keep_checkpoints_num: Optional[int] = None,
                 checkpoint_score_attr: str = "training_iteration"):
        self.keep = keep_checkpoints_num
        self.attr = checkpoint_score_attr
        self.sign = 1.0
        if checkpoint_score_attr.startswith("min-"):
            self.attr = checkpoint_score_attr[len("min-"):]
            self.sign = -1.0
        self.checkpoints: List[Checkpoint] = []

    @property
    def newest(self) -> Optional[Checkpoint]:
        """The checkpoint with the highest iteration, if any."""
        return self.checkpoints[-1] if self.checkpoints else None

    def add(self, checkpoint: Checkpoint) -> List[Checkpoint]:
        """Record a new disk checkpoint.

        Returns the checkpoints no longer kept. The caller deletes them with
        :meth:`delete` once the experiment state no longer points at them.
        """
        # Checkpoints at or past the new one's iteration belong to a history
        # the trial left (it restarted or was exploited from an earlier
        # state), so they are dropped.
        stale = [c for c in self.checkpoints
                 if c.iteration >= checkpoint.iteration
                 and c.value != checkpoint.value]
        self.checkpoints = [c for c in self.checkpoints
                            if c.iteration < checkpoint.iteration]
        self.checkpoints.append(checkpoint)
        return stale + self._apply_retention()

    @staticmethod
    def delete(checkpoints: List[Checkpoint]) -> None:
        """Delete the directories of checkpoints that are no longer kept."""
        for checkpoint in checkpoints:
            _delete_checkpoint(checkpoint)

    def _score(self, checkpoint: Checkpoint) -> float:
        from trainable.results import flatten_dict

        value = checkpoint.result.get(self.attr)
        if value is None:
            value = flatten_dict(checkpoint.result).get(self.attr)
        if not isinstance(value, (int, float)) or value != value:
            return float("-inf")
        return self.sign * float(value)

    def _apply_retention(self) -> List[Checkpoint]:
        if self.keep is None or len(self.checkpoints) <= self.keep:
            return []
        newest = self.checkpoints[-1]
        ranked = sorted(self.checkpoints,
                        key=lambda c: (self._score(c), c.iteration),
                        reverse=True)
        kept = ranked[:self.keep]
        if newest not in kept:
            kept.append(newest)
        dropped = [c for c in self.checkpoints if c not in kept]
        self.checkpoints = [c for c in self.checkpoints if c in kept]
        return dropped

    def drop_after(self, iteration: int) -> None:
        """Forget (and delete) checkpoints newer than ``iteration``."""
        for checkpoint in self.checkpoints:
            if checkpoint.iteration > iteration:
                _delete_checkpoint(checkpoint)
        self.checkpoints = [c for c in self.checkpoints
                            if c.iteration <= iteration]

    def to_state(self, base: str) -> List[Dict[str, Any]]:
        return [{"path": os.path.relpath(c.value, base),
                 "iteration": c.iteration,
                 "result": _encode(c.result)} for c in self.checkpoints]

    def load_state(self, entries: List[Dict[str, Any]], base: str) -> None:
        self.checkpoints = [
            Checkpoint(Checkpoint.PERSISTENT,
                       os.path.normpath(os.path.join(base, e["path"])),
                       _decode(e["result"]), e["iteration"])
            for e in entries]


def _delete_checkpoint(checkpoint: Checkpoint) -> None:
    from trainable.checkpoint import find_checkpoint_dir
    from trainable.errors import CheckpointError

    try:
        directory = find_checkpoint_dir(checkpoint.value)
    except CheckpointError:
        return
    shutil.rmtree(directory, ignore_errors=True)
    logger.debug("Deleted checkpoint %s", directory)


def _encode(value: Any) -> str:
    return base64.b64encode(cloudpickle.dumps(value)).decode("ascii")


def _decode(text: str) -> Any:
    return cloudpickle.loads(base64.b64decode(text))


class Trial:
    """One configuration of an experiment, as the driver tracks it."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    TERMINATED = "TERMINATED"
    ERROR = "ERROR"

    def __init__(self, trainable_name: str, config: Dict[str, Any],
                 trial_id: str, experiment_tag: str = "",
                 local_dir: str = "", evaluated_params: Optional[Dict] = None,
                 resources: Any = None, max_failures: int = 0,
                 keep_checkpoints_num: Optional[int] = None,
                 checkpoint_score_attr: str = "training_iteration"):
        self.trainable_name = trainable_name
        self.config = config
        self.trial_id = trial_id
        self.experiment_tag = experiment_tag
        self.local_dir = local_dir
        self.evaluated_params = evaluated_params or {}
        self.resources = resources
        self.max_failures = max_failures
        self.status = Trial.PENDING
        self.last_result: Dict[str, Any] = {}
        self.logdir: Optional[str] = None
        self.num_failures = 0
        self.error_file: Optional[str] = None
        self.error_msg: Optional[str] = None
        self.custom_trial_name: Optional[str] = None
        self.checkpoint_manager = CheckpointManager(keep_checkpoints_num,
                                                    checkpoint_score_attr)
        self.memory_checkpoint: Optional[Checkpoint] = None
        self.restore_path: Optional[str] = None
        # Set after a failure or a resume: results past the checkpoint the
        # trial restarts from must be dropped before it runs again.
        self.needs_rewind = False

    # ------------------------------------------------------------- identity

    def __str__(self) -> str:
        if self.custom_trial_name:
            return self.custom_trial_name
        return f"{self.trainable_name}_{self.trial_id}"

    def __repr__(self) -> str:
        return str(self)

    @property
    def trial_name(self) -> str:
        """The trial's name, as ``str(trial)``."""
        return str(self)

    # ---------------------------------------------------------- checkpoints

    @property
    def checkpoint(self) -> Optional[Checkpoint]:
        """The newest checkpoint, on disk or (if newer) in memory."""
        disk = self.checkpoint_manager.newest
        memory = self.memory_checkpoint
        if memory is not None and (disk is None or memory.order > disk.order):
            return memory
        return disk

    @property
    def has_checkpoint(self) -> bool:
        """Whether the trial can be restored from a checkpoint."""
        return self.checkpoint is not None or self.restore_path is not None

    @property
    def iteration(self) -> int:
        """The last reported ``training_iteration`` (0 before any)."""
        return self.last_result.get("training_iteration", 0)

    def is_finished(self) -> bool:
        """Return whether the trial ended (terminated or errored)."""
        return self.status in (Trial.TERMINATED, Trial.ERROR)

    # --------------------------------------------------------------- errors

    def should_recover(self) -> bool:
        """Return whether another failure is allowed (``max_failures``)."""
        return (self.max_failures < 0
                or self.num_failures <= self.max_failures)

    # ---------------------------------------------------------------- state

    def to_state(self, experiment_dir: str) -> Dict[str, Any]:
        """Return a JSON-compatible snapshot for the experiment state file.

        Paths are stored relative to the experiment directory, so the
        directory can be moved. In-memory checkpoints are left out: the
        trial resumes from its newest disk checkpoint.
        """
        return {
            "trial_id": self.trial_id,
            "trainable_name": self.trainable_name,
            "experiment_tag": self.experiment_tag,
            "custom_trial_name": self.custom_trial_name,
            "status": self.status,
            "logdir": (os.path.relpath(self.logdir, experiment_dir)
                       if self.logdir else None),
            "num_failures": self.num_failures,
            "error_file": (os.path.relpath(self.error_file, experiment_dir)
                           if self.error_file else None),
            "error_msg": self.error_msg,
            "restore_path": self.restore_path,
            "config": _encode(self.config),
            "evaluated_params": _encode(self.evaluated_params),
            "last_result": _encode(self.last_result),
            "checkpoints": self.checkpoint_manager.to_state(experiment_dir),
            "resources": _encode(self.resources),
        }

    @classmethod
    def from_state(cls, state: Dict[str, Any], experiment_dir: str,
                   **kwargs: Any) -> "Trial":
        """Rebuild a trial from :meth:`to_state` output."""
        trial = cls(state["trainable_name"], _decode(state["config"]),
                    state["trial_id"], state["experiment_tag"],
                    local_dir=experiment_dir,
                    evaluated_params=_decode(state["evaluated_params"]),
                    resources=_decode(state["resources"]), **kwargs)
        trial.custom_trial_name = state.get("custom_trial_name")
        trial.status = state["status"]
        if state["logdir"]:
            trial.logdir = os.path.normpath(
                os.path.join(experiment_dir, state["logdir"]))
        trial.num_failures = state["num_failures"]
        if state["error_file"]:
            trial.error_file = os.path.join(experiment_dir,
                                            state["error_file"])
        trial.error_msg = state.get("error_msg")
        trial.restore_path = state.get("restore_path")
        trial.last_result = _decode(state["last_result"])
        trial.checkpoint_manager.load_state(state["checkpoints"],
                                            experiment_dir)
        return trial


def safe_dirname(name: str, max_length: int = MAX_DIRNAME_LENGTH) -> str:
    """Return ``name`` made safe as one path component.

    Characters other than letters, digits and ``_ . , = + -`` become ``_``,
    leading dots are dropped, and the result is cut to ``max_length``.
    """
    cleaned = _UNSAFE_CHARS.sub("_", name).lstrip(".")
    return cleaned[:max_length] or "trial"


def validate_dirname(name: Any, source: str) -> str:
    """Check a directory name given by a user callback.

    Raises:
        InvalidConfig: not a non-empty string, contains a path separator,
            or is ``.``/``..``.
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidConfig(
            f"{source} returned {name!r}; it must return a non-empty string.")
    if os.sep in name or (os.altsep and os.altsep in name) or name in (
            ".", "..") or "\0" in name:
        raise InvalidConfig(
            f"{source} returned {name!r}, which is not a single directory "
            f"name; remove path separators and '..'.")
    return name
