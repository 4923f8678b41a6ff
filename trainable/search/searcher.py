"""The runner's interface to search algorithms, and Ray Tune's Searcher API.

The runner talks to one :class:`SearchAlgorithm`::

    runner                                  SearchAlgorithm
    set_search_properties(metric, mode, config)  ->  True / False
    add_configurations(config, num_samples)      (once per experiment)
    next_trial(trial_id)                     ->  Suggestion or None
    on_trial_result(trial_id, result)
    on_trial_complete(trial_id, result, error)
    is_finished()                            ->  no more suggestions, ever
    get_state() / set_state(state)               for resume

``next_trial`` returning ``None`` means "nothing to start now". The runner
calls it again later, and stops once ``is_finished()`` is true.

A :class:`Searcher` is the simpler, Ray Tune compatible interface for model
based search: ``suggest(trial_id)`` returns a partial config.
:class:`SearchGenerator` adapts a Searcher to a SearchAlgorithm: it counts
``num_samples``, merges each suggestion into the config, resolves what the
searcher left open (``sample_from`` functions, other domains) and builds the
experiment tags. :class:`ConcurrencyLimiter` caps how many suggestions of a
Searcher are running at once.
"""

import logging
import numbers
import os
import random
from typing import Any, Dict, NamedTuple, Optional, Union

import cloudpickle

from trainable.errors import InvalidConfig, InvalidSearchSpace
from trainable.space import RandomState
from trainable.variants import (
    apply_preset,
    collect_resolved_vars,
    flatten_resolved_vars,
    format_path,
    format_vars,
    normalize_spec,
    parse_spec_vars,
    resolve_domains,
)

logger = logging.getLogger(__name__)

__all__ = [
    "ConcurrencyLimiter",
    "SearchAlgorithm",
    "SearchGenerator",
    "Searcher",
    "Suggestion",
]


class Suggestion(NamedTuple):
    """A config for the runner to start as a new trial.

    Attributes:
        config: The resolved config.
        experiment_tag: Ray Tune style tag, ``"<index>_<values>"``, e.g.
            ``"0_a=1,b=2"``.
        resolved_vars: The grid, sampled and suggested values, keyed by
            their flattened path within the config (``"opt/lr"``), as Ray
            Tune's ``Trial.evaluated_params``.
    """

    config: Dict[str, Any]
    experiment_tag: str
    resolved_vars: Dict[str, Any]


def check_mode(mode: Any, where: str) -> None:
    """Raise InvalidConfig unless ``mode`` is None, "min" or "max"."""
    if mode not in (None, "min", "max"):
        raise InvalidConfig(
            f"{where}: mode must be 'min', 'max' or None, got {mode!r}."
        )


def check_num_samples(num_samples: Any, where: str) -> int:
    """Return ``num_samples`` if it is an int >= 0 or -1 (unlimited)."""
    if (
        isinstance(num_samples, bool)
        or not isinstance(num_samples, int)
        or num_samples < -1
    ):
        raise InvalidConfig(
            f"{where}: num_samples must be an int >= 0, or -1 for no limit, "
            f"got {num_samples!r}."
        )
    return num_samples


def new_seed(random_state: RandomState) -> int:
    """Return a seed from ``random_state``; a fresh one if it is None."""
    if random_state is None:
        return int.from_bytes(os.urandom(8), "big")
    if isinstance(random_state, bool):
        raise InvalidSearchSpace(
            f"random_state must be None, an int seed or a random.Random, "
            f"got the bool {random_state!r}."
        )
    if isinstance(random_state, numbers.Integral):
        return int(random_state)
    if isinstance(random_state, random.Random):
        return random_state.getrandbits(64)
    raise InvalidSearchSpace(
        f"random_state must be None, an int seed or a random.Random, got "
        f"{random_state!r} of type {type(random_state).__name__}."
    )


def variant_random(seed: int, *keys: Any) -> random.Random:
    """Return a generator that depends only on ``seed`` and ``keys``.

    ``random.Random`` turns a string seed into an int with SHA-512, not with
    ``hash()``, so the sequence does not depend on ``PYTHONHASHSEED``.
    """
    return random.Random("/".join(str(part) for part in (seed,) + keys))


class SearchAlgorithm:
    """Source of trial configs for the runner.

    Subclasses implement :meth:`add_configurations` and :meth:`next_trial`;
    the other methods have working defaults.
    """

    def __init__(self) -> None:
        self._finished = False

    def set_search_properties(
        self, metric: Optional[str], mode: Optional[str], config: dict
    ) -> bool:
        """Pass the experiment's metric, mode and config.

        Returns:
            False if the algorithm already has a search space and cannot
            take ``config`` as one; True otherwise.
        """
        return True

    def add_configurations(self, config: dict, num_samples: int) -> None:
        """Add an experiment: a config and how many samples to draw.

        ``num_samples`` -1 means no limit.
        """
        raise NotImplementedError

    def next_trial(self, trial_id: str) -> Optional[Suggestion]:
        """Return the config of the trial ``trial_id``, or None for now."""
        raise NotImplementedError

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Receive an intermediate result of a trial."""

    def on_trial_complete(
        self,
        trial_id: str,
        result: Optional[dict] = None,
        error: bool = False,
    ) -> None:
        """Receive the end of a trial, with its last result if any."""

    def is_finished(self) -> bool:
        """Return whether no more trials will be suggested."""
        return self._finished

    def set_finished(self) -> None:
        """Mark the algorithm as finished."""
        self._finished = True

    def get_state(self) -> dict:
        """Return a picklable state for :meth:`set_state`."""
        return {"finished": self._finished}

    def set_state(self, state: dict) -> None:
        """Restore a state from :meth:`get_state`."""
        self._finished = state.get("finished", False)


class Searcher:
    """Source of configs suggested one trial at a time (Ray Tune's API).

    Subclasses implement :meth:`suggest` and usually
    :meth:`on_trial_complete`. Wrap a Searcher in :class:`SearchGenerator`
    to give it to the runner (``run()`` does this itself).

    Args:
        metric: The result key to optimize.
        mode: ``"min"`` or ``"max"``.
    """

    FINISHED = "FINISHED"
    CKPT_FILE_TMPL = "searcher-state-{}.pkl"

    def __init__(
        self, metric: Optional[str] = None, mode: Optional[str] = None
    ):
        check_mode(mode, type(self).__name__)
        self._metric = metric
        self._mode = mode

    @property
    def metric(self) -> Optional[str]:
        """The result key to optimize."""
        return self._metric

    @property
    def mode(self) -> Optional[str]:
        """``"min"`` or ``"max"``."""
        return self._mode

    def set_search_properties(
        self, metric: Optional[str], mode: Optional[str], config: dict,
        **spec: Any,
    ) -> bool:
        """Take the experiment's metric, mode and search space.

        Returns:
            True if the searcher accepted them. The base class returns
            False, as Ray Tune's does: it cannot use ``config`` as a search
            space.
        """
        return False

    def suggest(self, trial_id: str) -> Optional[Union[dict, str]]:
        """Return a config for ``trial_id``, None, or :attr:`FINISHED`.

        None means no suggestion right now; FINISHED means none ever again.
        """
        raise NotImplementedError

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Receive an intermediate result of a trial."""

    def on_trial_complete(
        self,
        trial_id: str,
        result: Optional[dict] = None,
        error: bool = False,
    ) -> None:
        """Receive the end of a trial, with its last result if any."""

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        """Limit concurrency natively; return False if not supported."""
        return False

    def on_pause(self, trial_id: str) -> None:
        """Receive the pause of a trial."""

    def on_unpause(self, trial_id: str) -> None:
        """Receive the resumption of a paused trial."""

    def get_state(self) -> dict:
        """Return a picklable state; raises NotImplementedError by default."""
        raise NotImplementedError

    def set_state(self, state: dict) -> None:
        """Restore a state from :meth:`get_state`."""
        raise NotImplementedError

    def save(self, checkpoint_path: str) -> None:
        """Write :meth:`get_state` to ``checkpoint_path``, atomically."""
        temporary = f"{checkpoint_path}.tmp"
        with open(temporary, "wb") as file:
            cloudpickle.dump(self.get_state(), file)
        os.replace(temporary, checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        """Load a state written by :meth:`save`.

        The file is unpickled, so load only files you trust.
        """
        with open(checkpoint_path, "rb") as file:
            self.set_state(cloudpickle.load(file))


class ConcurrencyLimiter(Searcher):
    """Limit how many suggestions of a searcher are running at once.

    Args:
        searcher: The searcher to wrap.
        max_concurrent: The maximum number of running trials, at least 1.
        batch: Wait until all running trials of a batch have completed
            before suggesting the next ``max_concurrent`` trials.
    """

    def __init__(
        self, searcher: Searcher, max_concurrent: int, batch: bool = False
    ):
        if (
            isinstance(max_concurrent, bool)
            or not isinstance(max_concurrent, int)
            or max_concurrent < 1
        ):
            raise InvalidConfig(
                f"ConcurrencyLimiter: max_concurrent must be an int >= 1, "
                f"got {max_concurrent!r}."
            )
        super().__init__(metric=searcher.metric, mode=searcher.mode)
        self.searcher = searcher
        self.max_concurrent = max_concurrent
        self.batch = batch
        self.live_trials: set = set()
        self.num_unfinished_live_trials = 0
        # A searcher that limits itself needs no bookkeeping here.
        self._limit_live_trials = not searcher.set_max_concurrency(
            max_concurrent
        )

    @property
    def metric(self) -> Optional[str]:
        return self.searcher.metric

    @property
    def mode(self) -> Optional[str]:
        return self.searcher.mode

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.searcher.set_search_properties(
            metric, mode, config, **spec
        )

    def suggest(self, trial_id: str) -> Optional[Union[dict, str]]:
        if not self._limit_live_trials:
            return self.searcher.suggest(trial_id)
        if len(self.live_trials) >= self.max_concurrent:
            return None
        if self.batch and self.num_unfinished_live_trials > 0:
            return None
        suggestion = self.searcher.suggest(trial_id)
        if suggestion not in (None, Searcher.FINISHED):
            self.live_trials.add(trial_id)
            if self.batch and len(self.live_trials) >= self.max_concurrent:
                self.num_unfinished_live_trials = len(self.live_trials)
        return suggestion

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id, result=None, error=False):
        if self._limit_live_trials and trial_id not in self.live_trials:
            return
        self.searcher.on_trial_complete(trial_id, result=result, error=error)
        self.live_trials.discard(trial_id)
        if self.batch and self.num_unfinished_live_trials > 0:
            self.num_unfinished_live_trials -= 1
            if self.num_unfinished_live_trials == 0:
                self.live_trials.clear()

    def on_pause(self, trial_id: str) -> None:
        self.searcher.on_pause(trial_id)

    def on_unpause(self, trial_id: str) -> None:
        self.searcher.on_unpause(trial_id)

    def get_state(self) -> dict:
        return {
            "live_trials": sorted(self.live_trials),
            "num_unfinished_live_trials": self.num_unfinished_live_trials,
            "searcher": self.searcher.get_state(),
        }

    def set_state(self, state: dict) -> None:
        self.live_trials = set(state["live_trials"])
        self.num_unfinished_live_trials = state["num_unfinished_live_trials"]
        self.searcher.set_state(state["searcher"])


class SearchGenerator(SearchAlgorithm):
    """Adapt a :class:`Searcher` to the runner's :class:`SearchAlgorithm`.

    Each suggestion is merged into the experiment's config, like a
    ``points_to_evaluate`` entry, and may add keys the config does not
    have. Values the searcher left open
    (``sample_from`` functions, domains it does not handle) are then
    resolved as the variant generator resolves them. A ``grid_search`` left
    in the config is an error: searchers pick values one trial at a time.

    Args:
        searcher: The searcher.
        random_state: ``None``, an ``int`` seed or a ``random.Random``, for
            the values the searcher leaves open.
    """

    def __init__(self, searcher: Searcher, random_state: RandomState = None):
        super().__init__()
        if not isinstance(searcher, Searcher):
            raise InvalidConfig(
                f"SearchGenerator: searcher must be a Searcher instance, got "
                f"{searcher!r} of type {type(searcher).__name__}."
            )
        self.searcher = searcher
        self._seed = new_seed(random_state)
        self._config: Optional[dict] = None
        self._total_samples = 0
        self._counter = 0
        self._warned_no_state = False

    @property
    def metric(self) -> Optional[str]:
        return self.searcher.metric

    @property
    def mode(self) -> Optional[str]:
        return self.searcher.mode

    @property
    def total_samples(self) -> int:
        """The number of trials to create; -1 for no limit."""
        return self._total_samples

    def set_search_properties(self, metric, mode, config) -> bool:
        return self.searcher.set_search_properties(metric, mode, config)

    def add_configurations(self, config: dict, num_samples: int) -> None:
        if self._config is not None:
            raise InvalidConfig(
                "SearchGenerator takes one experiment; add_configurations "
                "was called a second time."
            )
        self._total_samples = check_num_samples(
            num_samples, "SearchGenerator"
        )
        self._config = normalize_spec(dict(config or {}))

    def _samples_left(self) -> bool:
        return self._total_samples < 0 or self._counter < self._total_samples

    def next_trial(self, trial_id: str) -> Optional[Suggestion]:
        if self._config is None:
            raise InvalidConfig(
                "SearchGenerator.next_trial was called before "
                "add_configurations."
            )
        if self._finished or not self._samples_left():
            return None
        suggested = self.searcher.suggest(trial_id)
        if suggested == Searcher.FINISHED:
            self._finished = True
            return None
        if suggested is None:
            return None
        return self._make_suggestion(suggested)

    def _make_suggestion(self, suggested: dict) -> Suggestion:
        spec = {"config": normalize_spec(self._config)}
        label = f"the suggestion of {type(self.searcher).__name__}"
        paths = [
            ("config",) + path
            for path in apply_preset(
                spec["config"], suggested, label, add_missing=True
            )
        ]
        grid_vars = parse_spec_vars(spec)[2]
        if grid_vars:
            raise InvalidSearchSpace(
                f"grid_search at '{format_path(grid_vars[0][0])}' cannot be "
                f"used with {type(self.searcher).__name__}, which picks "
                f"values one trial at a time. Use choice() instead, or run "
                f"the grid with the default BasicVariantGenerator."
            )
        rng = variant_random(self._seed, self._counter)
        paths += resolve_domains(spec, rng)[0]
        resolved_vars = collect_resolved_vars(spec, paths)
        self._counter += 1
        tag = str(self._counter)
        if resolved_vars:
            tag += "_" + format_vars(resolved_vars)
        return Suggestion(
            config=spec["config"],
            experiment_tag=tag,
            resolved_vars=flatten_resolved_vars(resolved_vars),
        )

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id, result=None, error=False) -> None:
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    def is_finished(self) -> bool:
        return self._finished or not self._samples_left()

    def get_state(self) -> dict:
        """Return the counters, the config and the searcher's state.

        The config may contain functions: pickle the state with
        cloudpickle. A searcher without ``get_state`` is stored as None and
        starts afresh after a resume.
        """
        try:
            searcher_state = self.searcher.get_state()
        except NotImplementedError:
            searcher_state = None
            if not self._warned_no_state:
                self._warned_no_state = True
                logger.warning(
                    "%s does not implement get_state(); after a resume it "
                    "starts without the results it has seen.",
                    type(self.searcher).__name__,
                )
        return {
            "finished": self._finished,
            "counter": self._counter,
            "total_samples": self._total_samples,
            "seed": self._seed,
            "config": self._config,
            "searcher": searcher_state,
        }

    def set_state(self, state: dict) -> None:
        self._finished = state["finished"]
        self._counter = state["counter"]
        self._total_samples = state["total_samples"]
        self._seed = state["seed"]
        if self._config is None:
            self._config = state["config"]
        if state["searcher"] is not None:
            self.searcher.set_state(state["searcher"])
