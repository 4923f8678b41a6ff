"""Variant generation: grid expansion and resolution of sampled values.

A spec is a nested structure of dicts, lists and tuples. Its unresolved
values are:

- grid searches: ``{"grid_search": [...]}`` (what ``grid_search()``
  returns) or a :class:`~trainable.space.Categorical` with the grid
  sampler;
- domains such as ``uniform(0, 1)`` or ``choice([...])``;
- functions: ``sample_from(func)``, and, as in early Ray Tune, a plain
  Python function written directly as a value (``"b": lambda spec: ...``).
  To use a function as a constant value, return it from a ``sample_from``:
  ``sample_from(lambda spec: my_function)``.

:func:`generate_variants` yields one variant per grid point. Each variant
is resolved in this order:

1. Grid values. The variants are the product of all grids. The first grid
   in sorted key-path order changes fastest, as in Ray Tune. A grid inside a
   chosen grid value is expanded too.
2. Domains, sampled once per variant.
3. Functions, in rounds. A function receives a :class:`SpecView` of the
   whole spec, where ``spec.config.a.b`` and ``spec["config"]["a"]["b"]``
   both work. A function that reads a value that is still unresolved is
   called again in the next round. If a round resolves nothing, the values
   depend on each other in a circle and :class:`InvalidSearchSpace` names
   their key paths. A domain returned by a function is sampled, and a
   ``grid_search`` returned by a function is rejected.

Paths are tuples of dict keys and list indices, e.g. ``("config", "opt",
"lr")``. Copies of a spec copy its dicts, lists and tuples; other leaf
objects are shared between the input spec and the variants.
"""

import inspect
import itertools
import logging
import math
import types
from collections.abc import Mapping
from typing import Any, Callable, Dict, Iterator, List, Tuple

from trainable.errors import InvalidSearchSpace
from trainable.space import (
    Categorical,
    Domain,
    Function,
    RandomState,
    grid_search,
    resolve_random_state,
)

logger = logging.getLogger(__name__)

Path = Tuple[Any, ...]

# Top-level keys of an experiment spec that are not hyperparameters; Ray
# Tune leaves them out of experiment tags.
_TAG_EXCLUDED_KEYS = ("run", "env", "resources_per_trial")

# Every round of resolve_domains resolves at least one value. Only a chain
# of more than this many dependent functions, or a function that keeps
# returning new domains, reaches the cap.
_MAX_RESOLUTION_ROUNDS = 1000

__all__ = [
    "SpecView",
    "apply_preset",
    "assign_value",
    "collect_resolved_vars",
    "count_variants",
    "expand_grid",
    "flatten_resolved_vars",
    "format_path",
    "format_vars",
    "generate_variants",
    "get_value",
    "grid_search",
    "has_unresolved_values",
    "normalize_spec",
    "parse_spec_vars",
    "resolve_domains",
]


# --------------------------------------------------------------------------
# Classifying values.


def _is_grid_dict(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and (
        "grid_search" in value
    )


def _is_grid(value: Any) -> bool:
    if isinstance(value, Domain):
        return value.is_grid()
    return _is_grid_dict(value)


def _is_unresolved(value: Any) -> bool:
    return isinstance(value, Domain) or _is_grid_dict(value)


def _is_legacy_function(value: Any) -> bool:
    """Return whether ``value`` is a plain function Ray Tune would call.

    Only Python functions and lambdas that accept one positional argument
    count. Classes, builtins and other callables stay constant values.
    """
    if not isinstance(value, types.FunctionType):
        return False
    try:
        inspect.signature(value).bind(None)
    except (TypeError, ValueError):
        return False
    return True


def _children(value: Any) -> Iterator[Tuple[Any, Any]]:
    if isinstance(value, dict):
        yield from value.items()
    elif isinstance(value, (list, tuple)):
        yield from enumerate(value)


def _path_sort_key(path: Path) -> Tuple:
    """Sort key for paths whose parts mix ints and strings."""
    key = []
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            key.append((0, part, ""))
        elif isinstance(part, str):
            key.append((1, 0, part))
        else:
            key.append((2, 0, repr(part)))
    return tuple(key)


def format_path(path: Path) -> str:
    """Format a path for messages: ``("config", "opt", "lr")`` -> opt/lr."""
    if len(path) > 1 and path[0] == "config":
        path = path[1:]
    return "/".join(str(part) for part in path) or "<root>"


def _grid_values(path: Path, value: Any) -> List[Any]:
    if isinstance(value, Categorical):
        return list(value.categories)
    values = value["grid_search"]
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(
        values, (list, tuple)
    ):
        raise InvalidSearchSpace(
            f"grid_search at '{format_path(path)}' must contain a list of "
            f"values, got {values!r}."
        )
    if not values:
        raise InvalidSearchSpace(
            f"grid_search at '{format_path(path)}' is empty; give at least "
            f"one value."
        )
    return list(values)


# --------------------------------------------------------------------------
# Reading and writing values by path.


def get_value(spec: Any, path: Path) -> Any:
    """Return the value at ``path`` inside ``spec``."""
    for part in path:
        spec = spec[part]
    return spec


def assign_value(spec: Any, path: Path, value: Any) -> None:
    """Set the value at ``path`` inside ``spec``.

    A tuple on the way is rebuilt with the new value and stored in its
    parent, because tuples cannot be changed in place.
    """
    if not path:
        raise InvalidSearchSpace("Cannot assign a value to an empty path.")
    parent = None
    parent_key = None
    container = spec
    for part in path[:-1]:
        parent, parent_key = container, part
        container = container[part]
    key = path[-1]
    if not isinstance(container, tuple):
        container[key] = value
        return
    if parent is None:
        raise InvalidSearchSpace(
            f"Cannot assign to '{format_path(path)}': the spec itself is a "
            f"tuple."
        )
    items = list(container)
    items[key] = value
    assign_value(parent, (parent_key,), _rebuild_tuple(container, items))


def _rebuild_tuple(original: tuple, items: List[Any]) -> tuple:
    if type(original) is tuple:
        return tuple(items)
    # A named tuple takes its fields as separate arguments.
    make = getattr(type(original), "_make", None)
    return make(items) if make is not None else tuple(items)


def _map_children(value: Any, function: Callable[[Any], Any]) -> Any:
    """Copy a dict, list or tuple with ``function`` applied to each child;
    return any other value unchanged."""
    if isinstance(value, dict):
        copied = value.copy()
        for key, child in value.items():
            copied[key] = function(child)
        return copied
    if isinstance(value, list):
        copied = value.copy()
        for index, child in enumerate(value):
            copied[index] = function(child)
        return copied
    if isinstance(value, tuple):
        return _rebuild_tuple(value, [function(v) for v in value])
    return value


def _copy_structure(value: Any) -> Any:
    """Copy the dicts, lists and tuples of ``value``; share other objects."""
    if isinstance(value, (SpecView, ListView)):
        return _unwrap(value)
    return _map_children(value, _copy_structure)


def normalize_spec(spec: Any) -> Any:
    """Copy ``spec`` with plain functions turned into ``sample_from``.

    The result is what the other functions of this module work on; the
    input is left unchanged.
    """
    if _is_grid_dict(spec):
        raise InvalidSearchSpace(
            "The whole spec is a grid_search; put grid_search under a key, "
            "e.g. {'lr': grid_search([...])}."
        )
    return _normalize(spec)


def _normalize(value: Any) -> Any:
    if _is_legacy_function(value):
        function = Function(value)
        function.legacy_form = True
        return function
    if _is_grid_dict(value):
        # A plain function as a grid value is kept as a value, so that a
        # grid can range over functions.
        values = value["grid_search"]
        if isinstance(values, (list, tuple)):
            values = [
                v if _is_legacy_function(v) else _normalize(v)
                for v in values
            ]
        return {"grid_search": values}
    return _map_children(value, _normalize)


# --------------------------------------------------------------------------
# Finding unresolved values.


def _find_unresolved(
    spec: Any, path: Path = (), legacy: bool = False
) -> List[Tuple[Path, Any]]:
    """List the unresolved values of ``spec`` with their paths.

    Plain functions count only if ``legacy`` is true: in a normalized spec
    they have become :class:`Function` domains, and a plain function that
    is left is a constant value.
    """
    found = []
    for key, child in _children(spec):
        child_path = path + (key,)
        if _is_unresolved(child) or (legacy and _is_legacy_function(child)):
            found.append((child_path, child))
        else:
            found.extend(_find_unresolved(child, child_path, legacy))
    return found


def has_unresolved_values(spec: Any) -> bool:
    """Return whether ``spec`` contains values to resolve."""
    return bool(_find_unresolved(spec, legacy=True))


def parse_spec_vars(
    spec: Any,
) -> Tuple[
    List[Tuple[Path, Any]], List[Tuple[Path, Domain]],
    List[Tuple[Path, Categorical]],
]:
    """Split ``spec`` into constants, domains and grids, as Ray Tune does.

    Returns:
        ``(resolved, domain_vars, grid_vars)``: lists of ``(path, value)``.
        ``domain_vars`` contains the domains and functions (plain
        functions as :class:`Function`). ``grid_vars`` contains each grid as a
        :class:`Categorical` with the grid sampler, sorted by path.
    """
    resolved = []
    domain_vars = []
    grid_vars = []

    def visit(value: Any, path: Path) -> None:
        if _is_grid(value):
            grid = Categorical(_grid_values(path, value)).grid()
            grid_vars.append((path, grid))
        elif isinstance(value, Domain):
            domain_vars.append((path, value))
        elif _is_legacy_function(value):
            domain_vars.append((path, Function(value)))
        elif isinstance(value, (dict, list, tuple)) and path:
            for key, child in _children(value):
                visit(child, path + (key,))
        elif path:
            resolved.append((path, value))
        else:
            for key, child in _children(value):
                visit(child, (key,))

    visit(spec, ())
    grid_vars.sort(key=lambda item: _path_sort_key(item[0]))
    return resolved, domain_vars, grid_vars


# --------------------------------------------------------------------------
# Grid expansion.


def _grid_vars(spec: Any) -> List[Tuple[Path, List[Any]]]:
    grid_vars = [
        (path, _grid_values(path, value))
        for path, value in _find_unresolved(spec)
        if _is_grid(value)
    ]
    grid_vars.sort(key=lambda item: _path_sort_key(item[0]))
    return grid_vars


def _product_first_fastest(value_lists: List[List[Any]]) -> Iterator[tuple]:
    for combination in itertools.product(*reversed(value_lists)):
        yield tuple(reversed(combination))


def expand_grid(spec: Any) -> Iterator[Tuple[Any, List[Path]]]:
    """Yield a copy of ``spec`` for every grid point, with the grid paths.

    The other unresolved values are left as they are. Grids inside a chosen
    grid value are expanded as well.
    """
    grid_vars = _grid_vars(spec)
    if not grid_vars:
        yield _copy_structure(spec), []
        return
    paths = [path for path, _ in grid_vars]
    for combination in _product_first_fastest([v for _, v in grid_vars]):
        variant = _copy_structure(spec)
        for path, value in zip(paths, combination):
            assign_value(variant, path, _copy_structure(value))
        for inner, inner_paths in expand_grid(variant):
            yield inner, paths + inner_paths


def _count(value: Any, path: Path) -> int:
    if _is_grid(value):
        return sum(
            _count(v, path) for v in _grid_values(path, value)
        )
    if isinstance(value, Domain):
        return 1
    total = 1
    for key, child in _children(value):
        total *= _count(child, path + (key,))
    return total


def count_variants(spec: Any) -> int:
    """Return the number of grid points of ``spec`` (1 if it has no grid)."""
    return _count(spec, ())


# --------------------------------------------------------------------------
# The view that sample_from functions receive.


class _UnresolvedDependency(BaseException):
    """A function read a value that is not resolved yet.

    It derives from BaseException so that an ``except Exception`` in user
    code cannot swallow it and return a value computed from a default.
    """

    def __init__(self, path: Path):
        super().__init__(path)
        self.path = path


def _guard(value: Any, path: Path) -> Any:
    if isinstance(value, (SpecView, ListView)):
        return value
    if _is_unresolved(value):
        raise _UnresolvedDependency(path)
    if isinstance(value, dict):
        return SpecView(value, path)
    if isinstance(value, list):
        return ListView(value, path)
    if type(value) is tuple:
        return tuple(_guard(v, path + (i,)) for i, v in enumerate(value))
    return value


class SpecView(dict):
    """View of a spec, given to ``sample_from`` functions.

    Keys can be read as items (``spec["config"]["lr"]``) or attributes
    (``spec.config.lr``); a key shadows a dict method of the same name, as
    in Ray Tune. Nested dicts and lists come back as views too. Writing to a
    view does not change the spec.

    Args:
        data: The dict to view.
        path: Path of ``data`` inside the spec, used in messages.
    """

    def __init__(self, data: Mapping, path: Path = ()):
        super().__init__(data)
        self.__path = tuple(path)

    def __getitem__(self, key: Any) -> Any:
        value = dict.__getitem__(self, key)
        return _guard(value, self.__path + (key,))

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_") and dict.__contains__(self, name):
            return self[name]
        return object.__getattribute__(self, name)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are neither keys nor attributes.
        if name.startswith("_"):
            raise AttributeError(name)
        keys = ", ".join(repr(key) for key in dict.keys(self))
        where = format_path(self.__path) if self.__path else "the spec"
        raise AttributeError(
            f"{where} has no key {name!r}; its keys are: {keys or 'none'}"
        )

    def get(self, key: Any, default: Any = None) -> Any:
        return self[key] if dict.__contains__(self, key) else default

    def values(self) -> List[Any]:
        return [self[key] for key in dict.keys(self)]

    def items(self) -> List[Tuple[Any, Any]]:
        return [(key, self[key]) for key in dict.keys(self)]


class ListView(list):
    """View of a list inside a spec, see :class:`SpecView`."""

    def __init__(self, data: List[Any], path: Path = ()):
        super().__init__(data)
        self.__path = tuple(path)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            positions = range(len(self))[index]
            return [self[i] for i in positions]
        value = list.__getitem__(self, index)
        position = index if index >= 0 else len(self) + index
        return _guard(value, self.__path + (position,))

    def __iter__(self) -> Iterator[Any]:
        for index in range(len(self)):
            yield self[index]


def _unwrap(value: Any) -> Any:
    """Turn views inside a function's return value back into plain data."""
    if isinstance(value, SpecView):
        return {key: _unwrap(value[key]) for key in dict.keys(value)}
    if isinstance(value, ListView):
        return [_unwrap(value[i]) for i in range(len(value))]
    if type(value) is dict:
        return {key: _unwrap(child) for key, child in value.items()}
    if type(value) is list:
        return [_unwrap(child) for child in value]
    if type(value) is tuple:
        return tuple(_unwrap(child) for child in value)
    return value


def _contains_grid(value: Any) -> bool:
    if _is_grid(value):
        return True
    return any(_contains_grid(child) for _, child in _children(value))


# --------------------------------------------------------------------------
# Resolving domains and functions.


def _call_function(
    spec: Any, path: Path, function: Domain, rng: Any
) -> Any:
    try:
        value = function.sample(spec=SpecView(spec), random_state=rng)
    except InvalidSearchSpace:
        raise
    except Exception as error:
        hint = ""
        if getattr(function, "legacy_form", False):
            hint = (
                " A plain function in the config is called like "
                "sample_from(func); to keep a function as a constant value, "
                "write sample_from(lambda spec: func)."
            )
        raise InvalidSearchSpace(
            f"The sample_from function at '{format_path(path)}' raised "
            f"{type(error).__name__}: {error}.{hint}"
        ) from error
    value = _unwrap(value)
    if _contains_grid(value):
        raise InvalidSearchSpace(
            f"The sample_from function at '{format_path(path)}' returned a "
            f"grid_search. grid_search inside sample_from is not supported: "
            f"put the grid_search at the top level of the config and read "
            f"the chosen value in the function instead."
        )
    return value


def _circular_error(blocked: Dict[Path, Path]) -> InvalidSearchSpace:
    names = ", ".join(f"'{format_path(p)}'" for p in blocked)
    reads = "; ".join(
        f"'{format_path(p)}' reads '{format_path(d)}'"
        for p, d in blocked.items()
    )
    return InvalidSearchSpace(
        f"Cannot resolve the sample_from values at {names}: each reads a "
        f"value that is never resolved ({reads}). Remove the circular "
        f"dependency between these keys."
    )


def _sampled_grid_error(path: Path) -> InvalidSearchSpace:
    return InvalidSearchSpace(
        f"A sampled value contains a grid_search at '{format_path(path)}'. "
        f"grid_search must be written directly in the config, not inside "
        f"choice() or a value that sample_from returns."
    )


def _under_any(path: Path, prefixes: List[Path]) -> bool:
    return any(path[: len(prefix)] == prefix for prefix in prefixes)


def resolve_domains(
    spec: Any, random_state: RandomState = None, allow_fail: bool = False
) -> Tuple[List[Path], Dict[Path, Path]]:
    """Sample the domains and call the functions of ``spec`` in place.

    Domains are sampled first, then functions are called in rounds until
    every value is resolved. Grids are not expanded: call
    :func:`expand_grid` first.

    Args:
        spec: A normalized spec (see :func:`normalize_spec`); changed in
            place.
        random_state: ``None``, an ``int`` seed or a ``random.Random``.
        allow_fail: Leave values that cannot be resolved yet (because they
            read a grid) instead of raising.

    Returns:
        ``(resolved_paths, blocked)``: the paths given a value, in order,
        and for each function left unresolved the path it tried to read.

    Raises:
        InvalidSearchSpace: functions depend on each other in a circle, a
            function raised or returned a grid, a sampled value contains a
            grid, or values were still unresolved after the round limit.
    """
    rng = resolve_random_state(random_state)
    resolved: List[Path] = []
    for _ in range(_MAX_RESOLUTION_ROUNDS):
        pending = _find_unresolved(spec)
        grids = [path for path, value in pending if _is_grid(value)]
        for path in grids:
            if not allow_fail or _under_any(path, resolved):
                raise _sampled_grid_error(path)
        domains = [
            (path, value) for path, value in pending
            if not _is_grid(value) and not _is_function(value)
        ]
        functions = [
            (path, value) for path, value in pending if _is_function(value)
        ]
        if domains:
            # Sampled values may contain further domains; the next pass of
            # the loop finds them.
            for path, domain in domains:
                assign_value(spec, path, domain.sample(random_state=rng))
                resolved.append(path)
            continue
        if not functions:
            return resolved, {}
        blocked = _call_functions(spec, functions, rng, resolved)
        if len(blocked) == len(functions):
            if allow_fail:
                return resolved, blocked
            raise _circular_error(blocked)
    still_open = ", ".join(
        f"'{format_path(path)}'" for path, _ in _find_unresolved(spec)
    )
    raise InvalidSearchSpace(
        f"The values at {still_open} were still unresolved after "
        f"{_MAX_RESOLUTION_ROUNDS} rounds: a sample_from function keeps "
        f"returning new functions or domains. Make it return a value."
    )


def _is_function(value: Any) -> bool:
    return isinstance(value, Domain) and value.is_function()


def _call_functions(
    spec: Any,
    functions: List[Tuple[Path, Any]],
    rng: Any,
    resolved: List[Path],
) -> Dict[Path, Path]:
    """Run one round of functions and add the paths they set to ``resolved``.

    Returns:
        For each function that read an unresolved value, that value's path.
    """
    blocked = {}
    for path, function in functions:
        try:
            value = _call_function(spec, path, function, rng)
        except _UnresolvedDependency as dependency:
            blocked[path] = dependency.path
            continue
        assign_value(spec, path, value)
        resolved.append(path)
    return blocked


def collect_resolved_vars(
    spec: Any, paths: List[Path]
) -> Dict[Path, Any]:
    """Map each of ``paths`` to its final value in ``spec``."""
    resolved_vars = {}
    for path in paths:
        try:
            resolved_vars[path] = get_value(spec, path)
        except (KeyError, IndexError, TypeError):
            # A later assignment replaced a parent of this path.
            continue
    return resolved_vars


def generate_variants(
    unresolved_spec: Any,
    constant_grid_search: bool = False,
    random_state: RandomState = None,
) -> Iterator[Tuple[Dict[Path, Any], Any]]:
    """Yield ``(resolved_vars, resolved_spec)`` for every grid point.

    Args:
        unresolved_spec: The spec; it is not changed. Functions receive a
            view of it, so for ``spec.config.x`` to work pass
            ``{"config": config}``, as the variant generators do.
        constant_grid_search: Sample the domains once and reuse the values
            for every grid point, except those that depend on a grid value.
        random_state: ``None``, an ``int`` seed or a ``random.Random``.

    Yields:
        ``resolved_vars`` maps the path of every grid, sampled or computed
        value to its value; constants are not included. ``resolved_spec``
        is a new spec without unresolved values.
    """
    rng = resolve_random_state(random_state)
    spec = normalize_spec(unresolved_spec)
    constant_paths: List[Path] = []
    if constant_grid_search:
        constant_paths, _ = resolve_domains(spec, rng, allow_fail=True)
    for variant, grid_paths in expand_grid(spec):
        paths, _ = resolve_domains(variant, rng)
        all_paths = grid_paths + constant_paths + paths
        yield collect_resolved_vars(variant, all_paths), variant


# --------------------------------------------------------------------------
# Presets: fixed values for some keys (points_to_evaluate, suggestions).


def _locate(
    config: Any, prefix: Path, key: Any, label: str, add_missing: bool
) -> Tuple[Path, bool]:
    """Return the full path of ``key`` below ``prefix`` and if it exists.

    A string key that is not found directly may be a flattened path
    (``"opt/lr"``); digits select list items. A missing key is an error
    unless ``add_missing`` is true and its parent is a dict.
    """
    parts = [key]
    container = get_value(config, prefix)
    if not _has_key(container, key) and isinstance(key, str) and "/" in key:
        parts = key.split("/")
    path = prefix
    for index, part in enumerate(parts):
        container = get_value(config, path)
        if isinstance(container, (list, tuple)) and isinstance(part, str):
            part = int(part) if part.isdigit() else part
        if _has_key(container, part):
            path = path + (part,)
            continue
        if add_missing and isinstance(container, dict) and not (
            _is_unresolved(container)
        ):
            return path + tuple(parts[index:]), False
        raise InvalidSearchSpace(
            f"{label} sets '{format_path(path + (part,))}', which is not "
            f"a key of the search space. Add the key to the config or "
            f"remove it from {label}."
        )
    return path, True


def _has_key(container: Any, key: Any) -> bool:
    if isinstance(container, dict) and not _is_unresolved(container):
        return key in container
    if isinstance(container, (list, tuple)):
        return isinstance(key, int) and -len(container) <= key < len(
            container
        )
    return False


def _preset_leaves(
    config: Any, preset: Mapping, prefix: Path, label: str, add_missing: bool
) -> Iterator[Tuple[Path, Any, bool]]:
    """Yield ``(path, value, exists)`` for each value ``preset`` sets."""
    for key, value in preset.items():
        path, exists = _locate(config, prefix, key, label, add_missing)
        if not exists:
            yield path, value, False
            continue
        target = get_value(config, path)
        descend = isinstance(value, Mapping) and not _is_grid_dict(value)
        container = isinstance(target, (dict, list, tuple)) and not (
            _is_unresolved(target)
        )
        if descend and container:
            yield from _preset_leaves(config, value, path, label,
                                      add_missing)
        else:
            yield path, value, True


def _warn_if_outside(target: Any, value: Any, path: Path, label: str):
    if _is_grid(target):
        valid = value in _grid_values(path, target)
        allowed = f"grid values {_grid_values(path, target)}"
    elif isinstance(target, Domain):
        if target.is_function():
            return
        valid = target.is_valid(value)
        allowed = f"the domain {target.domain_str}"
    else:
        valid = target == value
        allowed = f"the constant {target!r}"
    if not valid:
        logger.warning(
            "%s sets '%s' to %r, which is not in %s; using it anyway.",
            label, format_path(path), value, allowed,
        )


def _add_parents(config: Any, path: Path) -> None:
    """Create the missing dicts on the way to ``path``."""
    container = config
    for part in path[:-1]:
        if part not in container:
            container[part] = {}
        container = container[part]


def apply_preset(
    config: Any,
    preset: Mapping,
    label: str = "points_to_evaluate",
    warn: bool = True,
    add_missing: bool = False,
) -> List[Path]:
    """Write the values of ``preset`` into ``config`` in place.

    ``preset`` is a partial config: nested dicts follow the config's
    nesting, and a key may also be a flattened path such as ``"opt/lr"``.
    A value outside the domain it replaces is used, with a warning.

    Args:
        config: A normalized config; changed in place.
        preset: The values to set.
        label: Name of the preset's origin, used in messages.
        warn: Log a warning for each value outside its domain.
        add_missing: Add keys that ``config`` does not have, instead of
            raising.

    Returns:
        The paths that were set, relative to ``config``.

    Raises:
        InvalidSearchSpace: ``preset`` is not a mapping, or it sets a key
            that ``config`` does not have and ``add_missing`` is false.
    """
    if not isinstance(preset, Mapping):
        raise InvalidSearchSpace(
            f"{label} must be a dict of config values, got {preset!r} of "
            f"type {type(preset).__name__}."
        )
    leaves = list(_preset_leaves(config, preset, (), label, add_missing))
    paths = []
    for path, value, exists in leaves:
        if not exists:
            _add_parents(config, path)
        elif warn:
            _warn_if_outside(get_value(config, path), value, path, label)
        assign_value(config, path, _copy_structure(value))
        paths.append(path)
    return paths


# --------------------------------------------------------------------------
# Tags.


def _short_name(path: Path) -> str:
    """Name a path by its last string key and any list indices after it."""
    pieces = []
    for part in reversed(path):
        pieces.append(str(part))
        if isinstance(part, str):
            break
    return "_".join(reversed(pieces))


def _clean_value(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.5}" if math.isfinite(value) else str(value)
    else:
        text = str(value)
    return text.replace("/", "_")


def format_vars(resolved_vars: Dict[Path, Any]) -> str:
    """Format resolved values as a tag such as ``a=1,lr=0.12346``.

    Each value is named by the last key of its path (with list indices
    kept, e.g. ``layers_0``); floats keep 5 significant digits.
    """
    parts = []
    ordered = sorted(resolved_vars.items(),
                     key=lambda item: _path_sort_key(item[0]))
    for path, value in ordered:
        if path and path[0] in _TAG_EXCLUDED_KEYS:
            continue
        parts.append(f"{_clean_value(_short_name(path))}="
                     f"{_clean_value(value)}")
    return ",".join(parts)


def flatten_resolved_vars(resolved_vars: Dict[Path, Any]) -> Dict[str, Any]:
    """Map ``{("config", "opt", "lr"): v}`` to ``{"opt/lr": v}``."""
    flat = {}
    for path, value in resolved_vars.items():
        if len(path) > 1 and path[0] == "config":
            path = path[1:]
        flat["/".join(str(part) for part in path)] = value
    return flat
