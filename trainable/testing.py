"""Property-based testing helpers for search spaces and Trainables.

Three helpers, meant for a user's own pytest suite:

- :func:`configs` turns a search space into a hypothesis strategy that
  draws concrete configs, the kind that ``BasicVariantGenerator`` produces.
- :func:`assert_save_restore_round_trip` checks in the current process that
  a Trainable continues after save and restore exactly as it would have
  without them.
- :func:`round_trip_test` combines the two into a ready pytest test.

``assert_save_restore_round_trip`` is the in-process, fast counterpart of
:func:`trainable.utils.validate_save_restore`, which runs real worker
processes. Both use the same result comparison.

hypothesis is a test dependency, not a runtime one. This module imports
without it, and the functions that need it raise :class:`ImportError` with
the install command.
"""

import copy
import logging
import math
import os
import shutil
import tempfile
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Tuple,
    Type,
    Union,
)

from trainable.errors import InvalidConfig, InvalidSearchSpace
from trainable.space import (
    Categorical,
    Domain,
    Float,
    FloatGrid,
    Integer,
    IntGrid,
    LogUniform,
    Normal,
    Quantized,
    Uniform,
    quantize_unbounded,
)
from trainable.trainable import Trainable
from trainable.utils import _VOLATILE_KEYS, _same
from trainable.variants import (
    Path,
    _grid_values,
    _is_grid,
    _rebuild_tuple,
    _sampled_grid_error,
    format_path,
    normalize_spec,
    resolve_domains,
)

if TYPE_CHECKING:  # pragma: no cover
    from hypothesis.strategies import SearchStrategy

logger = logging.getLogger(__name__)

__all__ = [
    "assert_save_restore_round_trip",
    "configs",
    "round_trip_test",
]

_INSTALL_COMMAND = 'pip install "trainable[test]"'

# A normal distribution is drawn within this many standard deviations of
# its mean, so that every value is finite.
_NORMAL_SPAN_SD = 10.0

_MISSING = "<missing>"


def _import_hypothesis() -> Tuple[Any, Any]:
    """Return the ``hypothesis`` module and its ``strategies`` module."""
    try:
        import hypothesis
        from hypothesis import strategies
    except ImportError as exc:
        raise ImportError(
            f"trainable.testing needs hypothesis, which is not installed "
            f"({exc}). Install the test extra: {_INSTALL_COMMAND}"
        ) from exc
    return hypothesis, strategies


# --------------------------------------------------------------------------
# Strategies for search spaces.


def configs(space: Mapping[str, Any]) -> "SearchStrategy[Dict[str, Any]]":
    """Build a hypothesis strategy that draws configs from ``space``.

    Each drawn config has the structure and value ranges of the configs
    that ``BasicVariantGenerator`` produces from ``space``. A grid search
    picks one of its values, and a domain draws a value inside its bounds.
    ``sample_from`` functions, and plain functions written as values, are
    called last on the drawn config, by the resolution code of variant
    generation.

    Failing examples shrink toward the lower bound of log scales and of
    ``q`` grids, toward the mean of normal distributions, the first
    category and the first grid value. Uniform floats and ints shrink as
    hypothesis shrinks numbers, toward small and simple values.

    Draws cover each domain's values, not its distribution:

    - ``uniform``: floats in ``[lower, upper)``, never NaN or infinite;
    - ``loguniform``: floats in ``[lower, upper)``, spread over the orders
      of magnitude between the bounds;
    - ``randn``: floats within 10 standard deviations of the mean;
    - ``quniform``, ``qloguniform``, ``qrandint`` and ``qlograndint``:
      the points of the grid of multiples of ``q`` that the space samples
      from, upper bound included;
    - ``qrandn``: a ``randn`` draw rounded to a multiple of ``q``;
    - ``randint`` and ``lograndint``: ints in ``[lower, upper)``;
    - ``choice``: one of the categories, with the domains inside a category
      drawn in turn.

    A domain that a ``sample_from`` function returns, or a domain type
    this module does not know, is sampled with a ``random.Random`` that
    hypothesis controls.

    Args:
        space: The search space, as passed to ``run(config=...)``.

    Returns:
        A strategy of config dicts.

    Raises:
        ImportError: hypothesis is not installed.
        InvalidSearchSpace: ``space`` is not a dict, or contains a
            ``grid_search`` inside a ``choice()``, which variant generation
            rejects too.
    """
    _, strategies = _import_hypothesis()
    if not isinstance(space, Mapping):
        raise InvalidSearchSpace(
            f"configs(): space must be a dict of hyperparameters, got "
            f"{space!r:.80} of type {type(space).__name__}."
        )
    normalized = normalize_spec(dict(space))
    unresolved = _strategy_for(strategies, normalized, ("config",), False)
    randoms = strategies.randoms(use_true_random=False)
    return strategies.tuples(unresolved, randoms).map(_resolve_functions)


def _resolve_functions(drawn: Tuple[Dict[str, Any], Any]) -> Dict[str, Any]:
    """Call the functions left in a drawn config, as variant generation does.
    """
    config, rng = drawn
    spec = {"config": config}
    resolve_domains(spec, rng)
    return spec["config"]


def _strategy_for(st: Any, value: Any, path: Path, sampled: bool) -> Any:
    """Return a strategy of the values that ``value`` can resolve to.

    Functions are left in place for :func:`_resolve_functions`. ``sampled``
    is true inside a category of ``choice()``, where variant generation
    rejects a grid search.
    """
    if _is_grid(value):
        if sampled:
            raise _sampled_grid_error(path)
        options = _grid_values(path, value)
        return st.one_of([_strategy_for(st, option, path, False)
                          for option in options])
    if isinstance(value, Domain):
        if value.is_function():
            return st.just(value)
        return _domain_strategy(st, value, path)
    if isinstance(value, dict):
        return _dict_strategy(st, value, path, sampled)
    if isinstance(value, list):
        children = [_strategy_for(st, child, path + (index,), sampled)
                    for index, child in enumerate(value)]
        return st.tuples(*children).map(list)
    if isinstance(value, tuple):
        children = [_strategy_for(st, child, path + (index,), sampled)
                    for index, child in enumerate(value)]
        return st.tuples(*children).map(
            lambda items: _rebuild_tuple(value, list(items)))
    return st.just(value)


def _dict_strategy(st: Any, value: dict, path: Path, sampled: bool) -> Any:
    keys = list(value)
    children = [_strategy_for(st, value[key], path + (key,), sampled)
                for key in keys]

    def build(items: Tuple[Any, ...]) -> dict:
        # A copy keeps the key order and the dict's own type.
        built = value.copy()
        for key, item in zip(keys, items):
            built[key] = item
        return built

    return st.tuples(*children).map(build)


def _domain_strategy(st: Any, domain: Domain, path: Path) -> Any:
    sampler = domain.get_sampler()
    strategy = None
    if isinstance(domain, Categorical) and isinstance(sampler, Uniform):
        strategy = st.one_of([_strategy_for(st, category, path, True)
                              for category in domain.categories])
    elif isinstance(domain, Float):
        strategy = _float_strategy(st, domain, sampler, path)
    elif isinstance(domain, Integer):
        strategy = _integer_strategy(st, domain, sampler, path)
    if strategy is not None:
        return strategy
    logger.debug(
        "configs(): no strategy for %r at '%s'; sampling it with a "
        "generator that hypothesis controls.", domain, format_path(path),
    )
    return st.randoms(use_true_random=False).map(
        lambda rng: domain.sample(random_state=rng))


def _float_strategy(st: Any, domain: Float, sampler: Any,
                    path: Path) -> Any:
    lower, upper = domain.lower, domain.upper
    if isinstance(sampler, Quantized):
        inner = sampler.get_sampler()
        if isinstance(inner, Normal):
            return _normal_strategy(st, inner).map(
                lambda x: quantize_unbounded(x, sampler.q))
        label = f"configs() at '{format_path(path)}'"
        return _grid_strategy(st, FloatGrid(label, lower, upper, sampler.q))
    if isinstance(sampler, Normal):
        return _normal_strategy(st, sampler)
    if isinstance(sampler, LogUniform):
        # A unit draw goes through the space's own log-uniform transform,
        # so the bounds are kept exactly as sampling keeps them and a draw
        # of 0 (hypothesis's shrink target) gives the lower bound.
        return st.floats(0.0, 1.0, exclude_max=True).map(
            lambda unit: domain._draw_log_uniform(_UnitRandom(unit)))
    if isinstance(sampler, Uniform):
        bounded_above = not math.isinf(upper)
        return st.floats(
            min_value=None if math.isinf(lower) else lower,
            max_value=upper if bounded_above else None,
            exclude_max=bounded_above,
            allow_nan=False,
            allow_infinity=False,
        )
    return None


def _integer_strategy(st: Any, domain: Integer, sampler: Any,
                      path: Path) -> Any:
    if isinstance(sampler, Quantized):
        label = f"configs() at '{format_path(path)}'"
        grid = IntGrid(label, domain.lower, domain.upper, sampler.q)
        return _grid_strategy(st, grid)
    if isinstance(sampler, (Uniform, LogUniform)):
        return st.integers(domain.lower, domain.upper - 1)
    return None


def _normal_strategy(st: Any, sampler: Normal) -> Any:
    # Offsets in standard deviations shrink toward 0, that is the mean.
    mean, sd = sampler.mean, sampler.sd
    return st.floats(-_NORMAL_SPAN_SD, _NORMAL_SPAN_SD).map(
        lambda offset: mean + offset * sd).filter(math.isfinite)


def _grid_strategy(st: Any, grid: Union[FloatGrid, IntGrid]) -> Any:
    # The same points as sampled_from(grid values), without building the
    # list, which can be too large to hold in memory.
    return st.integers(0, grid.k_max - grid.k_min).map(
        lambda offset: grid.value(grid.k_min + offset))


class _UnitRandom:
    """Random generator stand-in whose ``random()`` returns a fixed value.

    It lets a value that hypothesis drew in ``[0, 1)`` go through a
    domain's own sampling transform.
    """

    def __init__(self, unit: float):
        self.unit = unit

    def random(self) -> float:
        return self.unit


# --------------------------------------------------------------------------
# Save and restore round trips.


def assert_save_restore_round_trip(
    trainable_cls: Union[Type[Trainable], Callable[..., Any]],
    config: Optional[Dict[str, Any]],
    steps: int = 3,
    use_object_store: bool = False,
    compare_results: bool = True,
    checkpoint_dir: Optional[str] = None,
) -> None:
    """Check that a Trainable continues correctly after save and restore.

    Everything runs in this process, so hypothesis can try many examples
    quickly. An instance trains ``steps`` steps, saves, and trains one step
    more. A fresh instance then restores the checkpoint, must be at
    iteration ``steps``, and trains one step. The two results of that
    last step must match, apart from the automatic keys that differ
    between runs (``time_*``, ``date``, ``timestamp``, ``pid``,
    ``hostname``, ``node_ip``, ``experiment_id``, ``trial_id``,
    ``iterations_since_restore``, ``timesteps_since_restore`` and
    ``config``). Both instances are stopped and the temporary
    directories removed, also when a check fails.

    The original instance is stopped before the fresh one starts. Function
    trainables need that, because the function API keeps one current
    session per process.

    For the check with real worker processes, see
    :func:`trainable.utils.validate_save_restore`.

    Args:
        trainable_cls: A Trainable subclass, or a function trainable
            ``def train_fn(config, checkpoint_dir=None)``.
        config: The config both instances get.
        steps: Steps to train before saving.
        use_object_store: Save with ``save_to_object()`` and restore with
            ``restore_from_object()``, which unpacks the checkpoint into a
            new directory, as when a trial moves between workers. A
            checkpoint that contains absolute paths fails this way.
        compare_results: Compare the metrics of the step after the
            restore; turn it off for a Trainable whose steps are random.
            The training iteration is always compared.
        checkpoint_dir: Directory to save the checkpoint in, and leave it
            there; by default a temporary directory is used. Not used with
            ``use_object_store``.

    Raises:
        AssertionError: the restore failed, or the restored instance
            continued differently; the message names the key, both values
            and the likely cause.
        InvalidConfig: ``trainable_cls`` or ``steps`` is invalid.
    """
    cls = _as_trainable_class(trainable_cls)
    _check_steps(steps)
    name = cls.__name__
    config = {} if config is None else config
    root = tempfile.mkdtemp(prefix="trainable-round-trip-")
    running: List[Trainable] = []
    try:
        original = _start_instance(cls, config, root, "original", running)
        for _ in range(steps):
            original.train()
        saved = _save(original, use_object_store,
                      checkpoint_dir or os.path.join(root, "checkpoints"))
        expected = original.train()
        _stop_instance(original, running)

        restored = _start_instance(cls, config, root, "restored", running)
        _restore(restored, saved, use_object_store, name)
        if restored.iteration != steps:
            raise AssertionError(_iteration_message(cls, restored, steps))
        actual = _train_restored(restored, saved, use_object_store, name)
        _stop_instance(restored, running)
    finally:
        for instance in running:
            _stop_after_failure(instance)
        shutil.rmtree(root, ignore_errors=True)
    context = (f"config {config!r}, {steps} steps before saving, "
               f"use_object_store={use_object_store}")
    _compare_results(name, expected, actual, compare_results,
                     use_object_store, context)


def _as_trainable_class(trainable_cls: Any) -> Type[Trainable]:
    from trainable.function import wrap_function

    if isinstance(trainable_cls, type):
        if issubclass(trainable_cls, Trainable):
            return trainable_cls
        raise InvalidConfig(
            f"trainable_cls must be a subclass of trainable.Trainable or a "
            f"function, got the class {trainable_cls.__qualname__}. "
            f"Subclass Trainable, or pass def train_fn(config)."
        )
    if not callable(trainable_cls):
        raise InvalidConfig(
            f"trainable_cls must be a subclass of trainable.Trainable or a "
            f"function, got {type(trainable_cls).__name__} "
            f"{trainable_cls!r:.80}."
        )
    return wrap_function(trainable_cls)


def _check_steps(steps: Any) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise InvalidConfig(
            f"steps must be an int >= 0 (the steps to train before "
            f"saving), got {steps!r}."
        )


def _start_instance(cls: Type[Trainable], config: Dict[str, Any],
                    root: str, role: str,
                    running: List[Trainable]) -> Trainable:
    """Create an instance with its own log directory under ``root``.

    Each instance gets its own copy of the config, as each worker would.
    """
    logdir = os.path.join(root, role)
    os.makedirs(logdir)
    info = {"trial_id": f"round_trip_{role}",
            "trial_name": f"{cls.__name__}_{role}", "logdir": logdir}
    instance = cls(config=copy.deepcopy(config), trial_info=info)
    running.append(instance)
    return instance


def _stop_instance(instance: Trainable, running: List[Trainable]) -> None:
    running.remove(instance)
    instance.stop()


def _stop_after_failure(instance: Trainable) -> None:
    # An error from stop() here would hide the error being raised.
    try:
        instance.stop()
    except Exception:
        logger.warning(
            "stop() of %s raised while a round-trip check was failing.",
            type(instance).__name__, exc_info=True,
        )


def _save(instance: Trainable, use_object_store: bool,
          checkpoint_dir: str) -> Union[bytes, str]:
    if use_object_store:
        return instance.save_to_object()
    return instance.save(checkpoint_dir)


def _restore(instance: Trainable, saved: Union[bytes, str],
             use_object_store: bool, name: str) -> None:
    try:
        if use_object_store:
            instance.restore_from_object(saved)
        else:
            instance.restore(saved)
    except Exception as exc:
        source, cause = _describe_restore(saved, use_object_store)
        raise AssertionError(
            f"A fresh {name} could not be restored {source}: "
            f"{type(exc).__name__}: {exc}. {cause}") from exc


def _train_restored(instance: Trainable, saved: Union[bytes, str],
                    use_object_store: bool, name: str) -> Dict[str, Any]:
    # A function trainable reads its checkpoint only when its function
    # starts again, in this first step.
    try:
        return instance.train()
    except Exception as exc:
        source, cause = _describe_restore(saved, use_object_store)
        raise AssertionError(
            f"A {name} restored {source} raised in its first step: "
            f"{type(exc).__name__}: {exc}. {cause}") from exc


def _describe_restore(saved: Union[bytes, str],
                      use_object_store: bool) -> Tuple[str, str]:
    """Return where a restore read its checkpoint from and the likely
    cause of a failure there."""
    if use_object_store:
        source = ("from the blob that save_to_object() returned, unpacked "
                  "into a new directory")
        cause = (
            "A likely cause is a checkpoint that contains absolute paths: "
            "the files are no longer where they were when the checkpoint "
            "was saved. Store paths relative to the checkpoint directory.")
    else:
        source = f"from {saved!r}"
        cause = ("A likely cause is a load_checkpoint() that cannot use "
                 "what save_checkpoint() returned, or that leaves out "
                 "state that step() needs.")
    return source, cause


def _iteration_message(cls: Type[Trainable], restored: Trainable,
                       steps: int) -> str:
    from trainable.function import FunctionTrainable

    message = (
        f"After restoring the checkpoint saved at iteration {steps}, "
        f"{cls.__name__} is at iteration {restored.iteration}.")
    if issubclass(cls, FunctionTrainable):
        return message + (
            " A function trainable resumes at its last checkpoint_dir() "
            "checkpoint; write one in every step for this check.")
    return message + (
        " save() records the iteration in the checkpoint metadata, so an "
        "override of save() or restore() that skips the base class "
        "loses it.")


def _is_volatile(key: str) -> bool:
    return key in _VOLATILE_KEYS or key.startswith("time_")


def _compare_results(name: str, expected: Dict[str, Any],
                     actual: Dict[str, Any], compare: bool,
                     use_object_store: bool, context: str) -> None:
    """Raise AssertionError at the first key whose values differ."""
    keys = ["training_iteration"]
    if compare:
        keys += [key for key in expected if key not in keys]
        keys += [key for key in actual if key not in expected]
    for key in keys:
        if _is_volatile(key):
            continue
        original = expected.get(key, _MISSING)
        restored = actual.get(key, _MISSING)
        if not _same(original, restored):
            raise AssertionError(_mismatch_message(
                name, key, original, restored, use_object_store, context))


def _mismatch_message(name: str, key: str, original: Any, restored: Any,
                      use_object_store: bool, context: str) -> str:
    message = (
        f"After save and restore, {name} reported {key}={restored!r} in "
        f"the next step, where the instance that was not restored "
        f"reported {key}={original!r} ({context}). Likely cause: the "
        f"checkpoint does not contain all the state that step() uses, or "
        f"load_checkpoint() does not apply all of it. Save that state in "
        f"save_checkpoint() and set it in load_checkpoint().")
    if use_object_store:
        message += (
            " With use_object_store=True the checkpoint is unpacked into a "
            "new directory, so a checkpoint that contains absolute paths "
            "reads files that are gone or stale.")
    return message + (
        " If step() is random, pass compare_results=False.")


def round_trip_test(
    trainable_cls: Union[Type[Trainable], Callable[..., Any]],
    space: Mapping[str, Any],
    max_steps: int = 5,
    use_object_store: Optional[bool] = None,
    max_examples: int = 25,
    compare_results: bool = True,
) -> Callable[[], None]:
    """Build a pytest test of save and restore over a search space.

    Assign the result to a module-level name that starts with ``test_``::

        test_model_round_trip = round_trip_test(Model, {"lr": uniform(0, 1)})

    Each example draws a config from ``space`` (see :func:`configs`), a
    step count in ``[1, max_steps]`` and, unless ``use_object_store`` is
    given, whether to use the object store, and runs
    :func:`assert_save_restore_round_trip`.

    Args:
        trainable_cls: A Trainable subclass or a function trainable.
        space: The search space to draw configs from.
        max_steps: The largest number of steps to train before saving.
        use_object_store: True or False to test one way of saving only;
            None draws both.
        max_examples: How many examples hypothesis runs.
        compare_results: Passed to
            :func:`assert_save_restore_round_trip`.

    Returns:
        A test function without arguments, with hypothesis's ``given``
        and ``settings(max_examples=max_examples, deadline=None)``.

    Raises:
        ImportError: hypothesis is not installed.
        InvalidConfig: an argument is invalid.
        InvalidSearchSpace: ``space`` is invalid.
    """
    hypothesis, st = _import_hypothesis()
    cls = _as_trainable_class(trainable_cls)
    for label, value in (("max_steps", max_steps),
                         ("max_examples", max_examples)):
        if isinstance(value, bool) or not isinstance(value, int) or (
                value < 1):
            raise InvalidConfig(
                f"round_trip_test(): {label} must be an int >= 1, got "
                f"{value!r}."
            )
    if use_object_store is None:
        stores = st.booleans()
    else:
        stores = st.just(bool(use_object_store))

    def test_round_trip(config: Dict[str, Any], steps: int,
                        use_object_store: bool) -> None:
        assert_save_restore_round_trip(
            cls, config, steps=steps, use_object_store=use_object_store,
            compare_results=compare_results)

    name = f"test_{cls.__name__}_round_trip"
    test_round_trip.__name__ = test_round_trip.__qualname__ = name
    # NOTE: hypothesis keys its example database by the test's source code,
    # which is the same for every test built here. This attribute, the
    # internal hook that hypothesis's pytest plugin sets for parametrized
    # tests, keeps the saved examples of different tests apart.
    config_strategy = configs(space)
    digest = (f"{cls.__module__}.{cls.__qualname__}|"
              f"{sorted(map(str, space))}|{max_steps}|{use_object_store}")
    test_round_trip._hypothesis_internal_add_digest = digest.encode()
    test = hypothesis.given(config=config_strategy,
                            steps=st.integers(1, max_steps),
                            use_object_store=stores)(test_round_trip)
    return hypothesis.settings(max_examples=max_examples,
                               deadline=None)(test)
