"""The experiment directory and its state file.

``<local_dir>/<name>/experiment_state.json`` records every trial (config,
status, last result, disk checkpoints, failures) and the runner's own state
(search algorithm, stopper, time used). It is rewritten atomically
(temporary file, then ``os.replace``) so a reader or a resume never reads a
half-written file. The runner writes it after every checkpoint, before any
older checkpoint is deleted, and soon after every status change.

File layout (JSON object): ``format`` (``"trainable-experiment-state"``),
``version``, ``name``, ``timestamp``, ``runner`` (an object), ``trials``
(a list of the objects ``Trial.to_state`` returns).
"""

import json
import logging
import os
import time
import uuid
from typing import Any, Callable, Dict, List, Optional

from trainable.errors import TuneError

logger = logging.getLogger(__name__)

STATE_FILE = "experiment_state.json"
STATE_FORMAT = "trainable-experiment-state"
STATE_VERSION = 1

# Rewriting the state costs time proportional to the number of trials, so
# status-change writes are spaced at least this many times the duration of
# the last write apart (checkpoints are always written at once).
_WRITE_SPACING_FACTOR = 20.0
# Maximum time a change waits to be written.
_MAX_WRITE_DELAY_S = 5.0


class ExperimentDir:
    """The directory of one experiment and its state file.

    Args:
        path: ``<local_dir>/<name>``.
        name: the experiment name.
    """

    def __init__(self, path: str, name: str):
        self.path = os.path.abspath(path)
        self.name = name
        self.state_path = os.path.join(self.path, STATE_FILE)
        self._dirty = False
        self._last_write = 0.0
        self._last_duration = 0.0
        #: Maximum time between two writes; the runner shortens it when a
        #: time budget must survive a crash with little error.
        self.refresh_interval_s = _MAX_WRITE_DELAY_S

    def mark_dirty(self) -> None:
        """Note that the state changed and should be written soon."""
        self._dirty = True

    def save_if_due(self, snapshot: Callable[[], Dict[str, Any]]) -> None:
        """Write the state if it changed and the spacing allows, and at
        least every ``refresh_interval_s`` (the time used, the last
        results and stopper state change without a status change)."""
        since = time.monotonic() - self._last_write
        spacing = _WRITE_SPACING_FACTOR * self._last_duration
        if self._dirty and since >= min(_MAX_WRITE_DELAY_S, spacing):
            self.save(snapshot)
        elif since >= max(self.refresh_interval_s, spacing):
            self.save(snapshot)

    def save(self, snapshot: Callable[[], Dict[str, Any]]) -> None:
        """Write the state file now."""
        # NOTE: each write rewrites every trial's entry (finished ones are
        # cached as text). An experiment with many thousands of trials that
        # all checkpoint therefore spends time proportional to the square of
        # the trial count here.
        start = time.monotonic()
        data = snapshot()
        trials = data.pop("trials")
        header = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "name": self.name,
            "timestamp": time.time(),
            "runner": data,
        }
        text = json.dumps(header)[:-1]
        body = ",\n".join(trials)
        os.makedirs(self.path, exist_ok=True)
        tmp = f"{self.state_path}.tmp-{uuid.uuid4().hex[:8]}"
        with open(tmp, "w") as f:
            f.write(f'{text}, "trials": [\n{body}\n]}}\n')
        os.replace(tmp, self.state_path)
        self._dirty = False
        self._last_write = time.monotonic()
        self._last_duration = self._last_write - start

    def exists(self) -> bool:
        """Return whether a state file is present."""
        return os.path.isfile(self.state_path)

    def load(self) -> Dict[str, Any]:
        """Read the state file.

        Raises:
            TuneError: missing, unreadable or of a newer format version.
        """
        return load_state_file(self.state_path)


def load_state_file(path: str) -> Dict[str, Any]:
    """Read and check an experiment state file."""
    try:
        with open(path) as f:
            state = json.load(f)
    except FileNotFoundError:
        raise TuneError(
            f"No experiment state file at {path!r}. Check local_dir and "
            f"name, or start a new experiment with resume=False."
        ) from None
    except (OSError, ValueError) as exc:
        raise TuneError(
            f"The experiment state file {path!r} is unreadable ({exc})."
        ) from None
    if state.get("format") != STATE_FORMAT:
        raise TuneError(f"{path!r} is not a trainable experiment state.")
    if state.get("version", 0) > STATE_VERSION:
        raise TuneError(
            f"{path!r} has state version {state.get('version')}, newer than "
            f"{STATE_VERSION}; upgrade trainable to read it.")
    return state


def find_state_file(path: str) -> Optional[str]:
    """Return the state file of an experiment directory, or None."""
    candidate = os.path.join(path, STATE_FILE)
    return candidate if os.path.isfile(candidate) else None


def list_trial_states(state: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Return the trial entries of a loaded state."""
    return list(state.get("trials", []))
