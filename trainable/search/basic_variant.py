"""The default search algorithm: grid search times random samples.

For a config with grid points ``G`` and ``num_samples`` ``n``, the
generator yields ``n`` passes over the whole grid, ``n * G`` variants. Each
pass samples the random values anew, as Ray Tune does. Entries of
``points_to_evaluate`` come first; each one counts as one of the ``n``
passes and expands whatever grid it leaves open.

Every variant draws from its own generator, seeded from the generator's
seed and the variant's position. Variant ``k`` is therefore the same
whatever happened before it, and resuming needs only the seed and the
position. For ``sample_from`` functions that draw from their own random
source the resumed values can differ; the count and order do not.
"""

import itertools
import logging
from collections.abc import Mapping
from typing import Any, Dict, Iterator, List, Optional, Tuple

from trainable.errors import InvalidConfig, TuneError
from trainable.search.searcher import (
    SearchAlgorithm,
    Suggestion,
    check_num_samples,
    new_seed,
    variant_random,
)
from trainable.space import RandomState
from trainable.variants import (
    Path,
    apply_preset,
    collect_resolved_vars,
    count_variants,
    expand_grid,
    flatten_resolved_vars,
    format_vars,
    normalize_spec,
    resolve_domains,
)

logger = logging.getLogger(__name__)

__all__ = ["BasicVariantGenerator"]

_STATE_VERSION = 1


class _Plan:
    """One experiment: its config, its sample count and how far it got.

    Positions ``0 .. total-1`` are laid out in segments: one per entry of
    ``points_to_evaluate`` (as many variants as the grid that the point
    leaves open), then the repeated full grid.
    """

    def __init__(self, config: dict, num_samples: int, points: List[dict]):
        self.config = config
        self.num_samples = num_samples
        self.points = points
        self.position = 0
        # Building the point specs here checks the points once, with
        # warnings; later calls rebuild them silently.
        self.point_sizes = [
            count_variants(self.base_spec(i, warn=True)[0])
            for i in range(len(points))
        ]
        self.grid_size = count_variants({"config": config})

    @property
    def repeats(self) -> Optional[int]:
        """How many passes over the full grid; None for no limit."""
        if self.num_samples < 0:
            return None
        return max(0, self.num_samples - len(self.points))

    @property
    def total(self) -> Optional[int]:
        """How many variants the plan yields; None for no limit."""
        if self.repeats is None:
            return None
        return sum(self.point_sizes) + self.repeats * self.grid_size

    def exhausted(self) -> bool:
        return self.total is not None and self.position >= self.total

    def locate(self, position: int) -> Tuple[int, int, int]:
        """Return ``(segment, repeat, grid_index)`` of a position."""
        for segment, size in enumerate(self.point_sizes):
            if position < size:
                return segment, 0, position
            position -= size
        repeat, grid_index = divmod(position, self.grid_size)
        return len(self.points), repeat, grid_index

    def base_spec(
        self, segment: int, warn: bool = False
    ) -> Tuple[dict, List[Path]]:
        """Return the spec of a segment and the paths a point fixed."""
        spec = {"config": normalize_spec(self.config)}
        if segment >= len(self.points):
            return spec, []
        label = f"points_to_evaluate[{segment}]"
        paths = apply_preset(
            spec["config"], self.points[segment], label, warn=warn
        )
        return spec, [("config",) + path for path in paths]

    def to_state(self) -> dict:
        return {
            "config": self.config,
            "num_samples": self.num_samples,
            "points": self.points,
            "position": self.position,
        }

    @classmethod
    def from_state(cls, state: dict) -> "_Plan":
        plan = cls(state["config"], state["num_samples"], state["points"])
        plan.position = state["position"]
        return plan


class _Cursor:
    """An open grid iterator, so consecutive variants need no re-expansion."""

    def __init__(
        self,
        key: Tuple[int, int, int],
        iterator: Iterator[Tuple[dict, List[Path]]],
        next_index: int,
        fixed_paths: List[Path],
    ):
        self.key = key
        self.iterator = iterator
        self.next_index = next_index
        self.fixed_paths = fixed_paths


class BasicVariantGenerator(SearchAlgorithm):
    """Grid search and random sampling, Ray Tune's default search algorithm.

    Args:
        points_to_evaluate: Partial configs to evaluate first, in order.
            Keys follow the config's nesting or are flattened paths such as
            ``"opt/lr"``; values that a point leaves out are sampled.
        max_concurrent: At most this many trials of this generator run at
            once; 0 means no limit.
        constant_grid_search: Sample the random values once per pass and
            reuse them for every grid point of the pass.
        random_state: ``None`` (a fresh seed from ``os.urandom``), an
            ``int`` seed or a ``random.Random``. The same seed gives the
            same variants.
    """

    def __init__(
        self,
        points_to_evaluate: Optional[List[dict]] = None,
        max_concurrent: int = 0,
        constant_grid_search: bool = False,
        random_state: RandomState = None,
    ):
        super().__init__()
        self._points = _check_points(points_to_evaluate)
        if (
            isinstance(max_concurrent, bool)
            or not isinstance(max_concurrent, int)
            or max_concurrent < 0
        ):
            raise InvalidConfig(
                f"BasicVariantGenerator: max_concurrent must be an int >= 0 "
                f"(0 for no limit), got {max_concurrent!r}."
            )
        self._max_concurrent = max_concurrent
        self._constant_grid_search = bool(constant_grid_search)
        self._seed = new_seed(random_state)
        self._plans: List[_Plan] = []
        self._num_added = 0
        self._counter = 0
        self._live_trials: set = set()
        self._cursor: Optional[_Cursor] = None

    @property
    def total_samples(self) -> int:
        """The number of variants of all experiments; -1 for no limit."""
        totals = [plan.total for plan in self._plans]
        if any(total is None for total in totals):
            return -1
        return sum(totals)

    def add_configurations(self, config: dict, num_samples: int) -> None:
        """Add an experiment; see the class docstring for the expansion.

        After :meth:`set_state`, a call re-supplies the config of the
        restored experiment at the same index, which keeps its position.
        """
        if not isinstance(config, Mapping):
            raise InvalidConfig(
                f"config must be a dict, got {config!r} of type "
                f"{type(config).__name__}."
            )
        num_samples = check_num_samples(num_samples, "BasicVariantGenerator")
        plan = _Plan(normalize_spec(dict(config)), num_samples,
                     list(self._points))
        if self._num_added < len(self._plans):
            plan.position = self._plans[self._num_added].position
            self._plans[self._num_added] = plan
        else:
            self._plans.append(plan)
        self._num_added += 1
        self._cursor = None

    def next_trial(self, trial_id: str) -> Optional[Suggestion]:
        if self._max_concurrent and (
            len(self._live_trials) >= self._max_concurrent
        ):
            return None
        variant = self._next_variant()
        if variant is None:
            if self._plans:
                self._finished = True
            return None
        resolved_vars, spec = variant
        tag = str(self._counter)
        if resolved_vars:
            tag += "_" + format_vars(resolved_vars)
        self._counter += 1
        self._live_trials.add(trial_id)
        return Suggestion(
            config=spec["config"],
            experiment_tag=tag,
            resolved_vars=flatten_resolved_vars(resolved_vars),
        )

    def on_trial_complete(self, trial_id, result=None, error=False) -> None:
        self._live_trials.discard(trial_id)

    def is_finished(self) -> bool:
        if self._finished:
            return True
        return bool(self._plans) and all(
            plan.exhausted() for plan in self._plans
        )

    def _next_variant(self) -> Optional[Tuple[Dict[Path, Any], dict]]:
        for plan_index, plan in enumerate(self._plans):
            if plan.exhausted():
                continue
            variant = self._variant_at(plan_index, plan)
            plan.position += 1
            return variant
        return None

    def _variant_at(
        self, plan_index: int, plan: _Plan
    ) -> Tuple[Dict[Path, Any], dict]:
        segment, repeat, grid_index = plan.locate(plan.position)
        key = (plan_index, segment, repeat)
        cursor = self._cursor
        if (
            cursor is None
            or cursor.key != key
            or cursor.next_index != grid_index
        ):
            cursor = self._open_cursor(plan, key, grid_index)
            self._cursor = cursor
        spec, grid_paths = next(cursor.iterator)
        cursor.next_index += 1
        rng = variant_random(self._seed, plan_index, plan.position)
        sampled_paths, _ = resolve_domains(spec, rng)
        paths = grid_paths + cursor.fixed_paths + sampled_paths
        return collect_resolved_vars(spec, paths), spec

    def _open_cursor(
        self, plan: _Plan, key: Tuple[int, int, int], grid_index: int
    ) -> _Cursor:
        plan_index, segment, repeat = key
        spec, fixed_paths = plan.base_spec(segment)
        if self._constant_grid_search:
            rng = variant_random(
                self._seed, plan_index, "constant", segment, repeat
            )
            constant_paths, _ = resolve_domains(spec, rng, allow_fail=True)
            fixed_paths = fixed_paths + constant_paths
        iterator = expand_grid(spec)
        # Skipping grid points only copies the spec; nothing is sampled.
        iterator = itertools.islice(iterator, grid_index, None)
        return _Cursor(key, iterator, grid_index, fixed_paths)

    def get_state(self) -> dict:
        """Return the seed, the positions and the configs.

        The configs may contain functions: pickle the state with
        cloudpickle.
        """
        return {
            "version": _STATE_VERSION,
            "finished": self._finished,
            "seed": self._seed,
            "constant_grid_search": self._constant_grid_search,
            "counter": self._counter,
            "live_trials": sorted(self._live_trials),
            "plans": [plan.to_state() for plan in self._plans],
        }

    def set_state(self, state: dict) -> None:
        """Continue from a state of :meth:`get_state`.

        It works before or after :meth:`add_configurations`; either way the
        next variant is the one the saved generator would have produced.
        """
        version = state.get("version")
        if version != _STATE_VERSION:
            raise TuneError(
                f"Cannot restore BasicVariantGenerator state of version "
                f"{version!r}; this version reads version {_STATE_VERSION}."
            )
        self._finished = state["finished"]
        self._seed = state["seed"]
        self._constant_grid_search = state["constant_grid_search"]
        self._counter = state["counter"]
        self._live_trials = set(state["live_trials"])
        self._plans = [_Plan.from_state(s) for s in state["plans"]]
        self._num_added = 0
        self._cursor = None


def _check_points(points: Any) -> List[dict]:
    if points is None:
        return []
    if isinstance(points, Mapping) or not isinstance(points, (list, tuple)):
        raise InvalidConfig(
            f"points_to_evaluate must be a list of dicts, got {points!r}."
        )
    for index, point in enumerate(points):
        if not isinstance(point, Mapping):
            raise InvalidConfig(
                f"points_to_evaluate[{index}] must be a dict of config "
                f"values, got {point!r} of type {type(point).__name__}."
            )
    return [dict(point) for point in points]
