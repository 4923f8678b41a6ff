"""Search-space domains and the functions that build them.

The public functions mirror Ray Tune's ``ray.tune.sample`` module:

=================================  =====================================
function                           values
=================================  =====================================
``uniform(lower, upper)``          float in ``[lower, upper)``
``quniform(lower, upper, q)``      multiple of ``q`` in ``[lower, upper]``
``loguniform(lower, upper)``       float in ``[lower, upper)``, log scale
``qloguniform(lower, upper, q)``   multiple of ``q`` in ``[lower, upper]``
``randn(mean, sd)``                normal float
``qrandn(mean, sd, q)``            normal float rounded to a multiple of q
``randint(lower, upper)``          int in ``[lower, upper)``
``qrandint(lower, upper, q)``      multiple of ``q`` in ``[lower, upper]``
``lograndint(lower, upper)``       int in ``[lower, upper)``, log scale
``qlograndint(lower, upper, q)``   multiple of ``q`` in ``[lower, upper]``
``choice(categories)``             one of ``categories``
``sample_from(func)``              ``func(spec)``, see ``trainable.variants``
``grid_search(values)``            every value, once per grid point
=================================  =====================================

The quantized ("q") variants include the upper bound, as Ray Tune documents.
Their values lie on the grid of multiples of ``q`` inside the bounds; the
uniform ones pick a grid point uniformly, so the bounds are never crossed and
the end points are as likely as the inner ones.

Randomness comes from the standard ``random`` module; no numpy is needed.
Every ``sample`` call takes ``random_state``: ``None`` for the ``random``
module's shared generator (so ``random.seed(...)`` makes runs repeatable),
an ``int`` seed, or a ``random.Random`` instance.
"""

import inspect
import logging
import math
import numbers
import random
from collections.abc import Mapping
from copy import copy
from decimal import Decimal
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from trainable.errors import InvalidSearchSpace

logger = logging.getLogger(__name__)

RandomState = Union[None, int, random.Random]

# A quantized float domain needs neighbouring multiples of q to be distinct
# floats. Beyond 2**50 steps from zero the float spacing of the bounds gets
# too close to q for that, so such spaces are rejected.
_MAX_FLOAT_GRID_INDEX = 2.0 ** 50


def resolve_random_state(random_state: RandomState) -> Any:
    """Return the generator that a ``random_state`` argument selects.

    Args:
        random_state: ``None`` (or the ``random`` module) for the
            ``random`` module's shared generator, an ``int`` seed for a new
            ``random.Random``, or a ``random.Random``, used as it is.

    Returns:
        An object with the ``random.Random`` methods (the ``random`` module
        itself for ``None``).

    Raises:
        InvalidSearchSpace: ``random_state`` is of another type.
    """
    if random_state is None or random_state is random:
        return random
    if isinstance(random_state, bool):
        raise InvalidSearchSpace(
            f"random_state must be None, an int seed or a random.Random, "
            f"got the bool {random_state!r}."
        )
    if isinstance(random_state, numbers.Integral):
        return random.Random(int(random_state))
    if isinstance(random_state, random.Random):
        return random_state
    raise InvalidSearchSpace(
        f"random_state must be None, an int seed or a random.Random, got "
        f"{random_state!r} of type {type(random_state).__name__}. Pass an "
        f"int seed to make sampling repeatable."
    )


# --------------------------------------------------------------------------
# Input checks shared by the domain classes and the public functions. Each
# takes the label of the primitive that the user called, so that the error
# names it.


def _check_number(label: str, name: str, value: Any) -> Union[int, float]:
    """Return ``value`` as a Python int or float.

    Other real number types, such as numpy scalars, are converted.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidSearchSpace(
            f"{label}: {name} must be a number, got {value!r} of type "
            f"{type(value).__name__}."
        )
    value = int(value) if isinstance(value, numbers.Integral) else float(
        value
    )
    if math.isnan(value):
        raise InvalidSearchSpace(f"{label}: {name} must not be NaN.")
    return value


def _check_finite(label: str, name: str, value: Any) -> Union[int, float]:
    value = _check_number(label, name, value)
    if math.isinf(value):
        raise InvalidSearchSpace(
            f"{label}: {name} must be finite, got {value!r}."
        )
    return value


def _check_int(label: str, name: str, value: Any) -> int:
    """Return ``value`` as an int; integral floats such as 1e3 are allowed."""
    value = _check_finite(label, name, value)
    if isinstance(value, float):
        if not value.is_integer():
            raise InvalidSearchSpace(
                f"{label}: {name} must be an integer, got {value!r}."
            )
        return int(value)
    return int(value)


def _check_order(label: str, lower: Any, upper: Any) -> None:
    if lower >= upper:
        raise InvalidSearchSpace(
            f"{label}: lower must be less than upper, got lower={lower!r}, "
            f"upper={upper!r}. Swap the bounds or widen the range."
        )


def _float_bounds(
    label: str, lower: Optional[float], upper: Optional[float]
) -> Tuple[float, float]:
    lower = -math.inf if lower is None else lower
    upper = math.inf if upper is None else upper
    lower = _check_number(label, "lower", lower)
    upper = _check_number(label, "upper", upper)
    _check_order(label, lower, upper)
    return lower, upper


def _int_bounds(label: str, lower: Any, upper: Any) -> Tuple[int, int]:
    lower = _check_int(label, "lower", lower)
    upper = _check_int(label, "upper", upper)
    _check_order(label, lower, upper)
    return lower, upper


def _check_bounded(label: str, lower: float, upper: float) -> None:
    if math.isinf(lower) or math.isinf(upper):
        raise InvalidSearchSpace(
            f"{label}: needs finite bounds, got lower={lower!r}, "
            f"upper={upper!r}."
        )


def _check_log_bounds(label: str, lower: Any, upper: Any) -> None:
    if lower <= 0:
        raise InvalidSearchSpace(
            f"{label}: a log scale needs lower > 0, got lower={lower!r}. "
            f"Pass the untransformed bounds, e.g. loguniform(1e-4, 1e-1)."
        )
    _check_bounded(label, lower, upper)


def _check_base(label: str, base: Any) -> float:
    base = _check_finite(label, "base", base)
    if base <= 0 or base == 1:
        raise InvalidSearchSpace(
            f"{label}: base must be positive and not 1, got base={base!r}."
        )
    return base


def _check_sd(label: str, mean: Any, sd: Any) -> Tuple[float, float]:
    mean = _check_finite(label, "mean", mean)
    sd = _check_finite(label, "sd", sd)
    if sd <= 0:
        raise InvalidSearchSpace(
            f"{label}: sd must be greater than 0, got sd={sd!r}."
        )
    return mean, sd


def _check_q(label: str, q: Any, integer: bool) -> Union[int, float]:
    if integer:
        q = _check_int(label, "q", q)
    else:
        q = _check_finite(label, "q", q)
    if q <= 0:
        raise InvalidSearchSpace(
            f"{label}: q must be greater than 0, got q={q!r}."
        )
    return q


def _check_categories(label: str, name: str, values: Any) -> List[Any]:
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(
        values, Iterable
    ):
        raise InvalidSearchSpace(
            f"{label}: {name} must be a list or another sequence of values, "
            f"got {values!r} of type {type(values).__name__}."
        )
    values = list(values)
    if not values:
        raise InvalidSearchSpace(
            f"{label}: {name} must not be empty; give at least one value."
        )
    return values


def _empty_grid_error(label: str, lower: Any, upper: Any, q: Any):
    return InvalidSearchSpace(
        f"{label}: no multiple of q={q!r} lies in [lower={lower!r}, "
        f"upper={upper!r}]. Widen the bounds or use a smaller q."
    )


# --------------------------------------------------------------------------
# Grids of multiples of q.


def _decimal_places(q: Union[int, float]) -> int:
    """Return how many decimal places the shortest repr of ``q`` has."""
    exponent = Decimal(repr(q)).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


class FloatGrid:
    """The multiples ``k * q`` that lie in ``[lower, upper]``.

    Each value is rounded to the decimal places of ``q``, so ``0.25 * 3``
    gives ``0.75`` and ``0.1 * 3`` gives ``0.3`` rather than
    ``0.30000000000000004``. The index range is adjusted after rounding, so
    every grid value really lies inside the bounds.
    """

    def __init__(self, label: str, lower: float, upper: float, q: float):
        self.q = q
        self.ndigits = _decimal_places(q)
        largest = max(abs(lower), abs(upper))
        if largest / q >= _MAX_FLOAT_GRID_INDEX:
            raise InvalidSearchSpace(
                f"{label}: q={q!r} is too small for bounds of magnitude "
                f"{largest!r}; neighbouring multiples of q would not be "
                f"distinct floats. Use a larger q."
            )
        self.k_min = self._first_index(math.ceil(lower / q), lower)
        self.k_max = self._last_index(math.floor(upper / q), upper)
        if self.k_min > self.k_max:
            raise _empty_grid_error(label, lower, upper, q)

    def value(self, k: int) -> float:
        return float(round(k * self.q, self.ndigits))

    def _first_index(self, k: int, lower: float) -> int:
        while self.value(k - 1) >= lower:
            k -= 1
        while self.value(k) < lower:
            k += 1
        return k

    def _last_index(self, k: int, upper: float) -> int:
        while self.value(k + 1) <= upper:
            k += 1
        while self.value(k) > upper:
            k -= 1
        return k

    def nearest(self, x: float) -> float:
        """Return the grid value nearest to ``x``, clipped to the grid."""
        k = min(max(round(x / self.q), self.k_min), self.k_max)
        return self.value(k)


class IntGrid:
    """The multiples ``k * q`` of an integer ``q`` in ``[lower, upper]``."""

    def __init__(self, label: str, lower: int, upper: int, q: int):
        self.q = q
        self.k_min = -(-lower // q)
        self.k_max = upper // q
        if self.k_min > self.k_max:
            raise _empty_grid_error(label, lower, upper, q)

    def value(self, k: int) -> int:
        return k * self.q

    def nearest(self, x: float) -> int:
        k = min(max(round(x / self.q), self.k_min), self.k_max)
        return self.value(k)


def quantize_unbounded(x: float, q: Union[int, float]) -> float:
    """Round ``x`` to the nearest multiple of ``q``, as a float."""
    return float(round(round(x / q) * q, _decimal_places(q)))


# --------------------------------------------------------------------------
# Continuous draws kept inside half-open bounds despite rounding.


def _clip_half_open(value: float, lower: float, upper: float) -> float:
    if value >= upper:
        return max(lower, math.nextafter(upper, -math.inf))
    return max(value, lower)


def _draw_uniform(rng: Any, lower: float, upper: float) -> float:
    u = rng.random()
    span = upper - lower
    if math.isinf(span):
        # Both bounds are finite but their difference overflows.
        value = lower * (1.0 - u) + upper * u
    else:
        value = lower + span * u
    return _clip_half_open(value, lower, upper)


def _draw_log_uniform(rng: Any, lower: float, upper: float) -> float:
    log_lower = math.log(lower)
    log_upper = math.log(upper)
    try:
        value = math.exp(log_lower + (log_upper - log_lower) * rng.random())
    except OverflowError:
        value = math.inf
    return _clip_half_open(value, lower, upper)


# --------------------------------------------------------------------------
# Samplers. A sampler names the distribution and the domain does the
# arithmetic. Code that inspects a space, such as a searcher adaptor, can
# then use isinstance checks on the sampler, as with Ray Tune.


class Sampler:
    """Way of drawing values from a :class:`Domain`."""

    def sample(
        self,
        domain: "Domain",
        spec: Any = None,
        size: int = 1,
        random_state: RandomState = None,
    ) -> List[Any]:
        """Draw ``size`` values from ``domain`` and return them as a list."""
        raise NotImplementedError

    def __str__(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class BaseSampler(Sampler):
    """Sampler of a :class:`Function`: calls the function."""

    def sample(self, domain, spec=None, size=1, random_state=None):
        return [domain._call(spec) for _ in range(size)]


class Uniform(Sampler):
    """Uniform distribution over the domain's values."""

    def sample(self, domain, spec=None, size=1, random_state=None):
        rng = resolve_random_state(random_state)
        return [domain._draw_uniform(rng) for _ in range(size)]


class LogUniform(Sampler):
    """Log-uniform distribution between the domain's bounds.

    Args:
        base: Base of the logarithm. It does not change the distribution
            and is kept for Ray Tune compatibility.
    """

    def __init__(self, base: float = 10):
        self.base = base

    def sample(self, domain, spec=None, size=1, random_state=None):
        rng = resolve_random_state(random_state)
        return [domain._draw_log_uniform(rng) for _ in range(size)]

    def __repr__(self) -> str:
        return f"LogUniform(base={self.base!r})"


class Normal(Sampler):
    """Normal distribution with mean ``mean`` and standard deviation ``sd``."""

    def __init__(self, mean: float = 0.0, sd: float = 1.0):
        self.mean, self.sd = _check_sd("Normal()", mean, sd)

    def sample(self, domain, spec=None, size=1, random_state=None):
        rng = resolve_random_state(random_state)
        return [
            domain.cast(rng.normalvariate(self.mean, self.sd))
            for _ in range(size)
        ]

    def __repr__(self) -> str:
        return f"Normal(mean={self.mean!r}, sd={self.sd!r})"


class Grid(Sampler):
    """Marker of a grid-search domain, whose values are enumerated."""

    def sample(self, domain, spec=None, size=1, random_state=None):
        raise InvalidSearchSpace(
            f"grid_search values are enumerated by the variant generator and "
            f"cannot be sampled; got a grid over {domain.domain_str}. Use "
            f"choice() to draw one value at random."
        )


class Quantized(Sampler):
    """Wrapper that puts the values of another sampler on multiples of ``q``.

    Args:
        sampler: The sampler that gives the shape of the distribution.
        q: The step of the grid.
    """

    def __init__(self, sampler: Sampler, q: Union[int, float]):
        self.sampler = sampler
        self.q = q

    def get_sampler(self) -> Sampler:
        """Return the wrapped sampler."""
        return self.sampler

    @property
    def base(self) -> float:
        """Logarithm base of the wrapped :class:`LogUniform` sampler."""
        return self.sampler.base

    @property
    def mean(self) -> float:
        """Mean of the wrapped :class:`Normal` sampler."""
        return self.sampler.mean

    @property
    def sd(self) -> float:
        """Standard deviation of the wrapped :class:`Normal` sampler."""
        return self.sampler.sd

    def sample(self, domain, spec=None, size=1, random_state=None):
        rng = resolve_random_state(random_state)
        return [domain._draw_quantized(self, rng) for _ in range(size)]

    def __str__(self) -> str:
        return f"Quantized({self.sampler})"

    def __repr__(self) -> str:
        return f"Quantized({self.sampler!r}, q={self.q!r})"


# --------------------------------------------------------------------------
# Domains.


class Domain:
    """Set of values a hyperparameter may take, with a sampler over it.

    Subclasses are :class:`Float`, :class:`Integer`, :class:`Categorical` and
    :class:`Function`. The sampler methods (``uniform()``, ``loguniform()``,
    ``normal()``, ``quantized()``, ``grid()``) return a copy of the domain
    with that sampler set.
    """

    sampler: Optional[Sampler] = None
    default_sampler_cls: Optional[type] = None

    def cast(self, value: Any) -> Any:
        """Convert ``value`` to the domain's type."""
        return value

    def set_sampler(self, sampler: Sampler, allow_override: bool = False):
        """Set the sampler, which can be set once unless ``allow_override``.

        Raises:
            InvalidSearchSpace: a sampler is already set.
        """
        if self.sampler is not None and not allow_override:
            raise InvalidSearchSpace(
                f"{type(self).__name__}: a domain takes one sampler, but "
                f"{sampler} was set on a domain that already samples with "
                f"{self.sampler}. Create a new domain instead."
            )
        self.sampler = sampler

    def get_sampler(self) -> Sampler:
        """Return the sampler, or a new default one if none is set."""
        if self.sampler is not None:
            return self.sampler
        return self.default_sampler_cls()

    def _with_sampler(self, sampler: Sampler, allow_override=False):
        new = copy(self)
        new.set_sampler(sampler, allow_override=allow_override)
        return new

    def sample(
        self, spec: Any = None, size: int = 1, random_state: RandomState = None
    ) -> Any:
        """Draw values from the domain.

        Args:
            spec: Passed to the function of a :class:`Function` domain;
                ignored by the other domains.
            size: How many values to draw.
            random_state: ``None``, an ``int`` seed or a ``random.Random``;
                see :func:`resolve_random_state`.

        Returns:
            One value if ``size`` is 1, else a list of ``size`` values.
        """
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise InvalidSearchSpace(
                f"{type(self).__name__}.sample(): size must be an int of at "
                f"least 1, got {size!r}."
            )
        rng = resolve_random_state(random_state)
        values = self.get_sampler().sample(
            self, spec=spec, size=size, random_state=rng
        )
        if not isinstance(values, list):
            values = [values]
        return values[0] if size == 1 else values

    def is_grid(self) -> bool:
        """Return whether this domain is a grid search."""
        return isinstance(self.sampler, Grid)

    def is_function(self) -> bool:
        """Return whether this domain calls a function (``sample_from``)."""
        return False

    def is_valid(self, value: Any) -> bool:
        """Return whether this domain can produce ``value``."""
        raise NotImplementedError

    @property
    def domain_str(self) -> str:
        """Short text form of the domain's values, used in messages."""
        return "(unknown)"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.domain_str}, "
            f"sampler={self.get_sampler()!r})"
        )

    def _unsupported(self, what: str):
        return InvalidSearchSpace(
            f"{type(self).__name__} domains do not support {what} sampling."
        )

    def _draw_uniform(self, rng: Any) -> Any:
        raise self._unsupported("uniform")

    def _draw_log_uniform(self, rng: Any) -> Any:
        raise self._unsupported("log-uniform")

    def _draw_quantized(self, sampler: Quantized, rng: Any) -> Any:
        raise self._unsupported("quantized")

    def _call(self, spec: Any) -> Any:
        raise self._unsupported("function")


class Float(Domain):
    """Floats between ``lower`` and ``upper``; ``None`` means unbounded.

    Args:
        lower: Lower bound, or ``None`` for minus infinity.
        upper: Upper bound, or ``None`` for infinity.
    """

    default_sampler_cls = Uniform

    def __init__(self, lower: Optional[float], upper: Optional[float]):
        self.lower, self.upper = _float_bounds("Float()", lower, upper)

    def cast(self, value: Any) -> float:
        return float(value)

    def uniform(self) -> "Float":
        """Return a copy that samples uniformly from ``[lower, upper)``."""
        _check_bounded("Float.uniform()", self.lower, self.upper)
        return self._with_sampler(Uniform())

    def loguniform(self, base: float = 10) -> "Float":
        """Return a copy that samples log-uniformly from ``[lower, upper)``."""
        label = "Float.loguniform()"
        _check_log_bounds(label, self.lower, self.upper)
        return self._with_sampler(LogUniform(_check_base(label, base)))

    def normal(self, mean: float = 0.0, sd: float = 1.0) -> "Float":
        """Return a copy that samples from a normal distribution."""
        label = "Float.normal()"
        if not (math.isinf(self.lower) and math.isinf(self.upper)):
            raise InvalidSearchSpace(
                f"{label}: normal sampling needs an unbounded domain, got "
                f"lower={self.lower!r}, upper={self.upper!r}. Use "
                f"Float(None, None)."
            )
        mean, sd = _check_sd(label, mean, sd)
        return self._with_sampler(Normal(mean, sd))

    def quantized(self, q: float) -> "Float":
        """Return a copy whose values are multiples of ``q``.

        With bounds, the values lie in ``[lower, upper]``, upper included.
        """
        label = "Float.quantized()"
        q = _check_q(label, q, integer=False)
        inner = self.get_sampler()
        if not isinstance(inner, Normal):
            _check_bounded(label, self.lower, self.upper)
            FloatGrid(label, self.lower, self.upper, q)
        return self._with_sampler(Quantized(inner, q), allow_override=True)

    def _draw_uniform(self, rng: Any) -> float:
        return _draw_uniform(rng, self.lower, self.upper)

    def _draw_log_uniform(self, rng: Any) -> float:
        return _draw_log_uniform(rng, self.lower, self.upper)

    def _draw_quantized(self, sampler: Quantized, rng: Any) -> float:
        inner = sampler.get_sampler()
        if isinstance(inner, Normal):
            x = rng.normalvariate(inner.mean, inner.sd)
            return quantize_unbounded(x, sampler.q)
        label = "Float.quantized()"
        grid = FloatGrid(label, self.lower, self.upper, sampler.q)
        if isinstance(inner, LogUniform):
            # A draw on the log scale goes to its nearest grid point, so each
            # point gets the log-uniform mass of the values that round to it.
            log_lower = math.log(self.lower)
            log_upper = math.log(self.upper)
            return grid.nearest(math.exp(rng.uniform(log_lower, log_upper)))
        return grid.value(rng.randint(grid.k_min, grid.k_max))

    def is_valid(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if isinstance(self.sampler, Quantized):
            multiple = round(value / self.sampler.q) * self.sampler.q
            if not math.isclose(value, multiple, rel_tol=1e-9, abs_tol=1e-12):
                return False
        return self.lower <= value <= self.upper

    @property
    def domain_str(self) -> str:
        return f"({self.lower}, {self.upper})"


class Integer(Domain):
    """Integers between ``lower`` and ``upper``.

    ``upper`` is excluded by the uniform and log-uniform samplers and
    included by the quantized one, as in Ray Tune.

    Args:
        lower: Lower bound, included.
        upper: Upper bound.
    """

    default_sampler_cls = Uniform

    def __init__(self, lower: int, upper: int):
        self.lower, self.upper = _int_bounds("Integer()", lower, upper)

    def cast(self, value: Any) -> int:
        return int(value)

    def uniform(self) -> "Integer":
        """Return a copy that samples uniformly from ``[lower, upper)``."""
        return self._with_sampler(Uniform())

    def loguniform(self, base: float = 10) -> "Integer":
        """Return a copy that samples log-uniformly from ``[lower, upper)``."""
        label = "Integer.loguniform()"
        _check_log_bounds(label, self.lower, self.upper)
        return self._with_sampler(LogUniform(_check_base(label, base)))

    def quantized(self, q: int) -> "Integer":
        """Return a copy whose values are multiples of ``q`` in
        ``[lower, upper]``, upper included."""
        label = "Integer.quantized()"
        q = _check_q(label, q, integer=True)
        IntGrid(label, self.lower, self.upper, q)
        return self._with_sampler(
            Quantized(self.get_sampler(), q), allow_override=True
        )

    def _draw_uniform(self, rng: Any) -> int:
        return rng.randrange(self.lower, self.upper)

    def _draw_log_uniform(self, rng: Any) -> int:
        x = _draw_log_uniform(rng, float(self.lower), float(self.upper))
        return min(max(math.floor(x), self.lower), self.upper - 1)

    def _draw_quantized(self, sampler: Quantized, rng: Any) -> int:
        label = "Integer.quantized()"
        grid = IntGrid(label, self.lower, self.upper, sampler.q)
        if isinstance(sampler.get_sampler(), LogUniform):
            log_lower = math.log(self.lower)
            log_upper = math.log(self.upper)
            return grid.nearest(math.exp(rng.uniform(log_lower, log_upper)))
        return grid.value(rng.randint(grid.k_min, grid.k_max))

    def is_valid(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if isinstance(value, float) and not value.is_integer():
            return False
        if isinstance(self.sampler, Quantized):
            return (
                self.lower <= value <= self.upper
                and int(value) % self.sampler.q == 0
            )
        return self.lower <= value < self.upper

    @property
    def domain_str(self) -> str:
        return f"({self.lower}, {self.upper})"


class Categorical(Domain):
    """One of a list of values.

    Args:
        categories: The values; any iterable except a string or a mapping.
    """

    default_sampler_cls = Uniform

    def __init__(self, categories: Iterable[Any]):
        self.categories = _check_categories(
            "Categorical()", "categories", categories
        )

    def uniform(self) -> "Categorical":
        """Return a copy that picks each category with equal probability."""
        return self._with_sampler(Uniform())

    def grid(self) -> "Categorical":
        """Return a copy that grid-searches over the categories."""
        return self._with_sampler(Grid())

    def __len__(self) -> int:
        return len(self.categories)

    def __getitem__(self, index: int) -> Any:
        return self.categories[index]

    def _draw_uniform(self, rng: Any) -> Any:
        return self.categories[rng.randrange(len(self.categories))]

    def is_valid(self, value: Any) -> bool:
        return value in self.categories

    @property
    def domain_str(self) -> str:
        return f"{self.categories}"


class Function(Domain):
    """Values computed by a function, as ``sample_from`` builds them.

    The function takes either no argument or one: the spec, see
    ``trainable.variants`` for what it contains during variant generation.

    Args:
        func: The function.
    """

    default_sampler_cls = BaseSampler

    def __init__(self, func: Callable[..., Any]):
        self.func = func
        self.pass_spec = _takes_one_argument("sample_from()", func)

    @property
    def pass_config(self) -> bool:
        """Ray Tune's name for :attr:`pass_spec`."""
        return self.pass_spec

    def is_function(self) -> bool:
        return True

    def is_valid(self, value: Any) -> bool:
        return True

    def _call(self, spec: Any) -> Any:
        if not self.pass_spec:
            return self.func()
        if spec is None:
            # Imported here because variants imports this module.
            from trainable.variants import SpecView

            spec = SpecView({"config": {}})
        return self.func(spec)

    @property
    def domain_str(self) -> str:
        name = getattr(self.func, "__qualname__", None) or repr(self.func)
        return f"{name}()"


def _takes_one_argument(label: str, func: Any) -> bool:
    """Return whether ``func`` takes one argument (True) or none (False)."""
    if not callable(func):
        raise InvalidSearchSpace(
            f"{label}: expected a function, got {func!r} of type "
            f"{type(func).__name__}. Pass a callable such as "
            f"`lambda spec: spec.config.x * 2`."
        )
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        # Some builtins have no signature; assume the documented one-argument
        # form.
        return True
    try:
        signature.bind(None)
        return True
    except TypeError:
        pass
    try:
        signature.bind()
        return False
    except TypeError:
        raise InvalidSearchSpace(
            f"{label}: the function {func!r} must take one argument (the "
            f"spec) or none, but its signature is {signature}."
        ) from None


# --------------------------------------------------------------------------
# Public constructors, as in Ray Tune. Each checks its arguments itself so
# that an error names the function the user called.


def sample_from(func: Callable[..., Any]) -> Function:
    """Specify a value computed by ``func``.

    ``func`` takes the spec (``spec.config`` contains the values resolved so
    far) or no argument. During variant generation, a domain that ``func``
    returns is sampled in turn.
    """
    _takes_one_argument("sample_from()", func)
    return Function(func)


def uniform(lower: float, upper: float) -> Float:
    """Sample a float uniformly from ``[lower, upper)``."""
    label = "uniform()"
    lower, upper = _float_bounds(label, lower, upper)
    _check_bounded(label, lower, upper)
    return Float(lower, upper).uniform()


def quniform(lower: float, upper: float, q: float) -> Float:
    """Sample a multiple of ``q`` uniformly from ``[lower, upper]``."""
    label = "quniform()"
    lower, upper = _float_bounds(label, lower, upper)
    _check_bounded(label, lower, upper)
    q = _check_q(label, q, integer=False)
    FloatGrid(label, lower, upper, q)
    return Float(lower, upper).uniform().quantized(q)


def loguniform(lower: float, upper: float, base: float = 10) -> Float:
    """Sample a float log-uniformly from ``[lower, upper)``.

    ``base`` does not change the distribution; it is kept for Ray Tune
    compatibility.
    """
    label = "loguniform()"
    lower, upper = _float_bounds(label, lower, upper)
    _check_log_bounds(label, lower, upper)
    _check_base(label, base)
    return Float(lower, upper).loguniform(base)


def qloguniform(
    lower: float, upper: float, q: float, base: float = 10
) -> Float:
    """Sample a multiple of ``q`` from ``[lower, upper]`` on a log scale.

    A log-uniform draw is rounded to the nearest multiple of ``q`` inside the
    bounds.
    """
    label = "qloguniform()"
    lower, upper = _float_bounds(label, lower, upper)
    _check_log_bounds(label, lower, upper)
    _check_base(label, base)
    q = _check_q(label, q, integer=False)
    FloatGrid(label, lower, upper, q)
    return Float(lower, upper).loguniform(base).quantized(q)


def randn(mean: float = 0.0, sd: float = 1.0) -> Float:
    """Sample a float from a normal distribution."""
    mean, sd = _check_sd("randn()", mean, sd)
    return Float(None, None).normal(mean, sd)


def qrandn(mean: float, sd: float, q: float) -> Float:
    """Sample a normal float rounded to the nearest multiple of ``q``."""
    label = "qrandn()"
    mean, sd = _check_sd(label, mean, sd)
    q = _check_q(label, q, integer=False)
    return Float(None, None).normal(mean, sd).quantized(q)


def randint(lower: int, upper: int) -> Integer:
    """Sample an int uniformly from ``[lower, upper)``; upper is excluded."""
    lower, upper = _int_bounds("randint()", lower, upper)
    return Integer(lower, upper).uniform()


def qrandint(lower: int, upper: int, q: int = 1) -> Integer:
    """Sample a multiple of ``q`` uniformly from ``[lower, upper]``.

    Unlike :func:`randint`, the upper bound is included.
    """
    label = "qrandint()"
    lower, upper = _int_bounds(label, lower, upper)
    q = _check_q(label, q, integer=True)
    IntGrid(label, lower, upper, q)
    return Integer(lower, upper).uniform().quantized(q)


def lograndint(lower: int, upper: int, base: float = 10) -> Integer:
    """Sample an int log-uniformly from ``[lower, upper)``."""
    label = "lograndint()"
    lower, upper = _int_bounds(label, lower, upper)
    _check_log_bounds(label, lower, upper)
    _check_base(label, base)
    return Integer(lower, upper).loguniform(base)


def qlograndint(lower: int, upper: int, q: int, base: float = 10) -> Integer:
    """Sample a multiple of ``q`` from ``[lower, upper]`` on a log scale.

    Unlike :func:`lograndint`, the upper bound is included.
    """
    label = "qlograndint()"
    lower, upper = _int_bounds(label, lower, upper)
    _check_log_bounds(label, lower, upper)
    _check_base(label, base)
    q = _check_q(label, q, integer=True)
    IntGrid(label, lower, upper, q)
    return Integer(lower, upper).loguniform(base).quantized(q)


def choice(categories: Iterable[Any]) -> Categorical:
    """Sample one of ``categories`` with equal probability."""
    categories = _check_categories("choice()", "categories", categories)
    return Categorical(categories).uniform()


def grid_search(values: Iterable[Any]) -> Dict[str, List[Any]]:
    """Specify a grid search: every value is tried, in every combination.

    Returns ``{"grid_search": [...]}``, the form Ray Tune uses, which may
    also be written by hand (for example in a JSON file).
    """
    return {"grid_search": _check_categories("grid_search()", "values",
                                             values)}


__all__ = [
    "BaseSampler",
    "Categorical",
    "Domain",
    "Float",
    "Function",
    "Grid",
    "Integer",
    "LogUniform",
    "Normal",
    "Quantized",
    "RandomState",
    "Sampler",
    "Uniform",
    "choice",
    "grid_search",
    "lograndint",
    "loguniform",
    "qlograndint",
    "qloguniform",
    "qrandint",
    "qrandn",
    "quniform",
    "randint",
    "randn",
    "resolve_random_state",
    "sample_from",
    "uniform",
]
