"""Optuna as a :class:`~trainable.search.searcher.Searcher`.

Optuna is imported when an :class:`OptunaSearch` is created, so this module
imports without it. Install it with ``pip install trainable[optuna]``.

Search spaces written with ``trainable`` domains are converted to Optuna
distributions with the same bounds as :mod:`trainable.space` documents:

==============================  ===========================================
domain                          Optuna distribution
==============================  ===========================================
``uniform(a, b)``               ``FloatDistribution(a, b)``
``loguniform(a, b)``            ``FloatDistribution(a, b, log=True)``
``quniform(a, b, q)``           ``FloatDistribution(lo, hi, step=q)``
``qloguniform(a, b, q)``        log float in ``[lo, hi]``, then rounded
``randint(a, b)``               ``IntDistribution(a, b - 1)``: b excluded
``lograndint(a, b)``            ``IntDistribution(a, b - 1, log=True)``
``qrandint(a, b, q)``           ``IntDistribution(lo, hi, step=q)``
``qlograndint(a, b, q)``        log int in ``[lo, hi]``, then rounded
``choice(values)``              ``CategoricalDistribution``
``sample_from(func)``           not converted: resolved after the
                                suggestion, so it can read suggested values
``randn``, ``grid_search``      rejected: Optuna has no such distribution
==============================  ===========================================

``lo`` and ``hi`` are the smallest and largest multiples of ``q`` inside
the bounds. Optuna does not combine a step with a log scale, so the log
variants draw from the log-scale range and round the draw to the nearest
multiple of ``q`` there.
"""

import logging
import math
from collections.abc import Mapping
from typing import Any, Callable, Dict, List, Optional, Union

from trainable.errors import InvalidConfig, InvalidSearchSpace
from trainable.search.searcher import Searcher, check_mode
from trainable.space import (
    Categorical,
    Domain,
    Float,
    Integer,
    LogUniform,
    Normal,
    Quantized,
    Uniform,
    FloatGrid,
    IntGrid,
)
from trainable.variants import Path, parse_spec_vars

logger = logging.getLogger(__name__)

__all__ = ["OptunaSearch"]

# Optuna stores these category types in any storage; other values are
# stored by their index in the category list.
_PLAIN_CATEGORY_TYPES = (type(None), bool, int, float, str)


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError as error:
        raise ImportError(
            "OptunaSearch needs the optuna package, which is not installed. "
            "Install it with: pip install trainable[optuna]"
        ) from error
    return optuna


def _param_name(path: Path) -> str:
    return "/".join(str(part) for part in path)


class _Param:
    """One converted parameter: its Optuna distribution and the mapping
    from Optuna's value back to the config value."""

    def __init__(
        self,
        distribution: Any,
        to_value: Callable[[Any], Any] = lambda value: value,
        to_optuna: Callable[[Any], Any] = lambda value: value,
    ):
        self.distribution = distribution
        self.to_value = to_value
        self.to_optuna = to_optuna


def _convert_float(ot: Any, name: str, domain: Float) -> _Param:
    sampler = domain.get_sampler()
    distributions = ot.distributions
    if isinstance(sampler, Quantized):
        inner = sampler.get_sampler()
        if isinstance(inner, Normal):
            raise _unsupported(name, "qrandn (quantized normal)")
        grid = FloatGrid(name, domain.lower, domain.upper, sampler.q)
        low, high = grid.value(grid.k_min), grid.value(grid.k_max)
        if isinstance(inner, LogUniform):
            return _Param(
                distributions.FloatDistribution(low, high, log=True),
                to_value=grid.nearest,
            )
        return _Param(
            distributions.FloatDistribution(low, high, step=sampler.q),
            to_value=grid.nearest,
        )
    if isinstance(sampler, LogUniform):
        return _Param(distributions.FloatDistribution(
            domain.lower, domain.upper, log=True))
    if isinstance(sampler, Uniform):
        return _Param(distributions.FloatDistribution(
            domain.lower, domain.upper))
    if isinstance(sampler, Normal):
        raise _unsupported(name, "randn (normal)")
    raise _unsupported(name, f"Float with sampler {sampler}")


def _convert_integer(ot: Any, name: str, domain: Integer) -> _Param:
    sampler = domain.get_sampler()
    distributions = ot.distributions
    if isinstance(sampler, Quantized):
        # The quantized integer variants include the upper bound.
        grid = IntGrid(name, domain.lower, domain.upper, sampler.q)
        low, high = grid.value(grid.k_min), grid.value(grid.k_max)
        if isinstance(sampler.get_sampler(), LogUniform):
            return _Param(
                distributions.IntDistribution(low, high, log=True),
                to_value=grid.nearest,
            )
        return _Param(
            distributions.IntDistribution(low, high, step=sampler.q)
        )
    # randint and lograndint exclude the upper bound, while Optuna's
    # IntDistribution includes it.
    if isinstance(sampler, LogUniform):
        return _Param(distributions.IntDistribution(
            domain.lower, domain.upper - 1, log=True))
    if isinstance(sampler, Uniform):
        return _Param(distributions.IntDistribution(
            domain.lower, domain.upper - 1))
    raise _unsupported(name, f"Integer with sampler {sampler}")


def _convert_categorical(ot: Any, domain: Categorical) -> _Param:
    categories = domain.categories
    distributions = ot.distributions
    if all(isinstance(c, _PLAIN_CATEGORY_TYPES) for c in categories):
        return _Param(distributions.CategoricalDistribution(categories))

    def to_optuna(value: Any) -> int:
        for index, category in enumerate(categories):
            if category == value:
                return index
        raise ValueError(f"{value!r} is not one of {categories!r}")

    return _Param(
        distributions.CategoricalDistribution(list(range(len(categories)))),
        to_value=lambda index: categories[index],
        to_optuna=to_optuna,
    )


def _unsupported(name: str, what: str) -> InvalidSearchSpace:
    return InvalidSearchSpace(
        f"OptunaSearch cannot convert the parameter '{name}': Optuna has no "
        f"distribution for {what}. Use uniform(), loguniform(), randint() "
        f"or choice() for it, or pass an Optuna distribution in `space`."
    )


def _convert_space(ot: Any, config: Mapping) -> Dict[str, _Param]:
    """Convert a config of domains and Optuna distributions."""
    params = {}
    for name, value in config.items():
        if isinstance(value, ot.distributions.BaseDistribution):
            params[str(name)] = _Param(value)
    rest = {k: v for k, v in config.items() if str(k) not in params}
    _, domain_vars, grid_vars = parse_spec_vars(rest)
    if grid_vars:
        raise InvalidSearchSpace(
            f"OptunaSearch cannot use the grid_search at "
            f"'{_param_name(grid_vars[0][0])}': Optuna picks values one "
            f"trial at a time. Use choice() instead."
        )
    for path, domain in domain_vars:
        name = _param_name(path)
        param = _convert_domain(ot, name, domain)
        if param is not None:
            params[name] = param
    return params


def _convert_domain(ot: Any, name: str, domain: Domain) -> Optional[_Param]:
    if domain.is_function():
        # Left in the config and resolved after the suggestion is merged.
        return None
    if isinstance(domain, Float):
        return _convert_float(ot, name, domain)
    if isinstance(domain, Integer):
        return _convert_integer(ot, name, domain)
    if isinstance(domain, Categorical):
        return _convert_categorical(ot, domain)
    raise _unsupported(name, f"domain {domain!r}")


def _unflatten(flat: Dict[str, Any]) -> Dict[str, Any]:
    nested: Dict[str, Any] = {}
    for name, value in flat.items():
        parts = name.split("/")
        target = nested
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return nested


def _flatten(nested: Mapping, prefix: str = "") -> Dict[str, Any]:
    flat = {}
    for key, value in nested.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}/"))
        else:
            flat[name] = value
    return flat


class OptunaSearch(Searcher):
    """Search with an Optuna sampler (TPE by default), via ask and tell.

    Args:
        space: The search space: a config of ``trainable`` domains (nested
            dicts allowed), a flat dict of Optuna distributions, or a
            define-by-run function that takes an ``optuna.Trial``, calls its
            ``suggest_*`` methods and may return a dict of constants. If
            None, the ``config`` of ``run()`` is used.
        metric: The result key to optimize; a list of keys for
            multi-objective search.
        mode: ``"min"`` or ``"max"``, or a list matching ``metric``.
        points_to_evaluate: Configs to try first, keyed like the space.
        sampler: An ``optuna.samplers.BaseSampler``; defaults to
            ``TPESampler(seed=seed)``.
        seed: Seed of the default sampler; ignored if ``sampler`` is given.

    Raises:
        ImportError: optuna is not installed.
    """

    def __init__(
        self,
        space: Optional[Union[Mapping, Callable[[Any], Any]]] = None,
        metric: Optional[Union[str, List[str]]] = None,
        mode: Optional[Union[str, List[str]]] = None,
        points_to_evaluate: Optional[List[Mapping]] = None,
        sampler: Any = None,
        seed: Optional[int] = None,
    ):
        self._ot = _import_optuna()
        _check_modes(mode)
        self._metric = metric
        self._mode = mode
        if sampler is not None and seed is not None:
            logger.warning(
                "OptunaSearch got both a sampler and seed=%r; the seed is "
                "ignored. Pass it to the sampler instead.", seed,
            )
        self._sampler = sampler
        self._seed = seed
        self._points = [dict(p) for p in points_to_evaluate or []]
        self._space_function: Optional[Callable[[Any], Any]] = None
        self._params: Optional[Dict[str, _Param]] = None
        self._study = None
        self._ot_trials: Dict[str, Any] = {}
        if callable(space) and not isinstance(space, Mapping):
            self._space_function = space
        elif space is not None:
            if not isinstance(space, Mapping):
                raise InvalidSearchSpace(
                    f"OptunaSearch: space must be a dict or a define-by-run "
                    f"function, got {space!r}."
                )
            self._params = _convert_space(self._ot, space)
        if self._has_space() and metric is not None and mode is not None:
            self._setup_study()

    def _has_space(self) -> bool:
        return self._space_function is not None or self._params is not None

    def _directions(self) -> Union[str, List[str]]:
        def direction(mode: str) -> str:
            return "maximize" if mode == "max" else "minimize"

        if isinstance(self._mode, (list, tuple)):
            return [direction(m) for m in self._mode]
        return direction(self._mode)

    def _setup_study(self) -> None:
        sampler = self._sampler
        if sampler is None:
            sampler = self._ot.samplers.TPESampler(seed=self._seed)
        directions = self._directions()
        if isinstance(directions, list):
            self._study = self._ot.create_study(
                sampler=sampler, directions=directions
            )
        else:
            self._study = self._ot.create_study(
                sampler=sampler, direction=directions
            )
        for point in self._points:
            self._study.enqueue_trial(self._point_to_optuna(point))

    def _point_to_optuna(self, point: Mapping) -> Dict[str, Any]:
        flat = _flatten(point)
        if self._params is None:
            return flat
        converted = {}
        for name, value in flat.items():
            param = self._params.get(name)
            if param is None:
                converted[name] = value
                continue
            try:
                converted[name] = param.to_optuna(value)
            except ValueError as error:
                raise InvalidSearchSpace(
                    f"OptunaSearch: points_to_evaluate sets '{name}' to "
                    f"{value!r}, which is not in its search space: {error}."
                ) from error
        return converted

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        """Take ``run()``'s metric, mode and config.

        A metric or mode this searcher was created without is taken from
        ``run()``. ``config`` becomes the search space unless the searcher
        already has one.

        Returns:
            False if the searcher already had a space, so ``config`` was not
            used as one (as Ray Tune's OptunaSearch returns); True
            otherwise.
        """
        _check_modes(mode)
        if self._metric is None and metric is not None:
            self._metric = metric
        if self._mode is None and mode is not None:
            self._mode = mode
        had_space = self._has_space()
        if not had_space:
            self._params = _convert_space(self._ot, config or {})
        if self._study is None and self._metric is not None and (
            self._mode is not None
        ):
            self._setup_study()
        return not had_space

    def _check_ready(self) -> None:
        if not self._has_space():
            raise InvalidConfig(
                "OptunaSearch has no search space: pass `space` to "
                "OptunaSearch or a `config` to run()."
            )
        if self._metric is None or self._mode is None:
            raise InvalidConfig(
                f"OptunaSearch needs a metric and a mode, got "
                f"metric={self._metric!r}, mode={self._mode!r}. Pass them "
                f"to OptunaSearch or to run()."
            )
        if self._study is None:
            self._setup_study()

    def suggest(self, trial_id: str) -> Optional[Dict[str, Any]]:
        self._check_ready()
        if self._space_function is not None:
            ot_trial = self._study.ask()
            constants = self._space_function(ot_trial) or {}
            params = {**ot_trial.params, **constants}
        else:
            distributions = {
                name: p.distribution for name, p in self._params.items()
            }
            ot_trial = self._study.ask(fixed_distributions=distributions)
            params = {
                name: self._params[name].to_value(value)
                for name, value in ot_trial.params.items()
            }
        self._ot_trials[trial_id] = ot_trial
        return _unflatten(params)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if isinstance(self._metric, (list, tuple)):
            # Optuna has no intermediate values for several objectives.
            return
        ot_trial = self._ot_trials.get(trial_id)
        value = result.get(self._metric)
        if ot_trial is None or not _is_number(value):
            return
        step = result.get("training_iteration")
        if isinstance(step, int) and not isinstance(step, bool):
            ot_trial.report(value, step)

    def on_trial_complete(self, trial_id, result=None, error=False) -> None:
        ot_trial = self._ot_trials.pop(trial_id, None)
        if ot_trial is None:
            return
        states = self._ot.trial.TrialState
        values = self._objective_values(result)
        if values is None:
            state = states.FAIL if error else states.PRUNED
            self._study.tell(ot_trial, state=state)
            return
        self._study.tell(ot_trial, values)

    def _objective_values(self, result: Optional[dict]) -> Any:
        if not result:
            return None
        if isinstance(self._metric, (list, tuple)):
            values = [result.get(m) for m in self._metric]
            return values if all(_is_number(v) for v in values) else None
        value = result.get(self._metric)
        return value if _is_number(value) else None

    def get_state(self) -> dict:
        """Return the study, the open trials and the space.

        Pickle it with cloudpickle, because the space contains functions.
        """
        return {
            "metric": self._metric,
            "mode": self._mode,
            "params": self._params,
            "space_function": self._space_function,
            "points": self._points,
            "study": self._study,
            "ot_trials": self._ot_trials,
        }

    def set_state(self, state: dict) -> None:
        self._metric = state["metric"]
        self._mode = state["mode"]
        self._params = state["params"]
        self._space_function = state["space_function"]
        self._points = state["points"]
        self._study = state["study"]
        self._ot_trials = state["ot_trials"]

    @staticmethod
    def convert_search_space(spec: Mapping) -> Dict[str, Any]:
        """Return the Optuna distributions for a config of domains.

        Keys are flattened paths such as ``"opt/lr"``. Functions and
        constants are left out.
        """
        params = _convert_space(_import_optuna(), spec)
        return {name: param.distribution for name, param in params.items()}


def _check_modes(mode: Any) -> None:
    if isinstance(mode, (list, tuple)):
        for item in mode:
            check_mode(item, "OptunaSearch")
    else:
        check_mode(mode, "OptunaSearch")


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return not math.isnan(value)
