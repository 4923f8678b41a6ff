"""Tests of the search-space domains in trainable.space."""

import collections
import fractions
import math
import pickle
import random

import cloudpickle
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trainable.space as space
from trainable.errors import InvalidSearchSpace

SAMPLES = 200

finite_floats = st.floats(
    min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False
)
positive_floats = st.floats(min_value=1e-6, max_value=1e6)
steps = st.sampled_from([0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0])
seeds = st.integers(min_value=0, max_value=2**32)


def _ordered(pair):
    low, high = sorted(pair)
    return low, high


float_bounds = st.tuples(finite_floats, finite_floats).filter(
    lambda pair: pair[0] != pair[1]
).map(_ordered)
positive_bounds = st.tuples(positive_floats, positive_floats).filter(
    lambda pair: pair[0] != pair[1]
).map(_ordered)
int_bounds = st.tuples(
    st.integers(-10**6, 10**6), st.integers(-10**6, 10**6)
).filter(lambda pair: pair[0] != pair[1]).map(_ordered)
positive_int_bounds = st.tuples(
    st.integers(1, 10**6), st.integers(1, 10**6)
).filter(lambda pair: pair[0] != pair[1]).map(_ordered)


def _is_multiple(value, q):
    return math.isclose(value / q, round(value / q), abs_tol=1e-6)


def _build_or_check_empty(build, lower, upper, q):
    """Build a quantized domain; if it is rejected, check the grid is small.

    A bound that is itself a multiple of q up to float error may fall on
    either side, so only grids of at most one point may be rejected.
    """
    try:
        return build(lower, upper, q)
    except InvalidSearchSpace as error:
        assert "no multiple" in str(error)
        assert math.floor(upper / q) - math.ceil(lower / q) < 1
        return None


# --------------------------------------------------------------------------
# Bounds, as property tests.


@given(float_bounds, seeds)
def test_uniform_stays_in_half_open_range(bounds, seed):
    lower, upper = bounds
    values = space.uniform(lower, upper).sample(size=50, random_state=seed)
    for value in values:
        assert isinstance(value, float)
        assert lower <= value < upper


@given(positive_bounds, seeds)
def test_loguniform_stays_in_half_open_range(bounds, seed):
    lower, upper = bounds
    values = space.loguniform(lower, upper).sample(size=50, random_state=seed)
    for value in values:
        assert lower <= value < upper


@given(int_bounds, seeds)
def test_randint_excludes_upper(bounds, seed):
    lower, upper = bounds
    values = space.randint(lower, upper).sample(size=50, random_state=seed)
    for value in values:
        assert isinstance(value, int)
        assert lower <= value < upper


@given(positive_int_bounds, seeds)
def test_lograndint_excludes_upper(bounds, seed):
    lower, upper = bounds
    domain = space.lograndint(lower, upper)
    for value in domain.sample(size=50, random_state=seed):
        assert isinstance(value, int)
        assert lower <= value < upper


@given(int_bounds, st.integers(1, 50), seeds)
def test_qrandint_on_inclusive_grid(bounds, q, seed):
    lower, upper = bounds
    if -(-lower // q) > upper // q:
        with pytest.raises(InvalidSearchSpace, match="no multiple"):
            space.qrandint(lower, upper, q)
        return
    domain = space.qrandint(lower, upper, q)
    for value in domain.sample(size=50, random_state=seed):
        assert isinstance(value, int)
        assert lower <= value <= upper
        assert value % q == 0


@given(positive_int_bounds, st.integers(1, 50), seeds)
def test_qlograndint_on_inclusive_grid(bounds, q, seed):
    lower, upper = bounds
    if -(-lower // q) > upper // q:
        with pytest.raises(InvalidSearchSpace, match="no multiple"):
            space.qlograndint(lower, upper, q)
        return
    domain = space.qlograndint(lower, upper, q)
    for value in domain.sample(size=50, random_state=seed):
        assert isinstance(value, int)
        assert lower <= value <= upper
        assert value % q == 0


@given(float_bounds, steps, seeds)
def test_quniform_on_inclusive_grid(bounds, q, seed):
    lower, upper = bounds
    domain = _build_or_check_empty(space.quniform, lower, upper, q)
    if domain is None:
        return
    for value in domain.sample(size=50, random_state=seed):
        assert isinstance(value, float)
        assert lower <= value <= upper
        assert _is_multiple(value, q)


@given(positive_bounds, steps, seeds)
def test_qloguniform_on_inclusive_grid(bounds, q, seed):
    lower, upper = bounds
    domain = _build_or_check_empty(space.qloguniform, lower, upper, q)
    if domain is None:
        return
    for value in domain.sample(size=50, random_state=seed):
        assert lower <= value <= upper
        assert _is_multiple(value, q)


@given(finite_floats, st.floats(0.01, 100), steps, seeds)
def test_qrandn_is_multiple_of_q(mean, sd, q, seed):
    domain = space.qrandn(mean, sd, q)
    for value in domain.sample(size=20, random_state=seed):
        assert isinstance(value, float)
        assert _is_multiple(value, q)


@given(st.lists(st.integers(), min_size=1, max_size=10), seeds)
def test_choice_returns_a_category(categories, seed):
    domain = space.choice(categories)
    for value in domain.sample(size=20, random_state=seed):
        assert value in categories


def test_uniform_with_huge_span_stays_in_range():
    domain = space.uniform(-1.7e308, 1.7e308)
    for value in domain.sample(size=100, random_state=0):
        assert -1.7e308 <= value < 1.7e308


# --------------------------------------------------------------------------
# Exact grid values and the reported cases.


def test_qrandint_case_grid_and_uniformity():
    domain = space.qrandint(1, 10, 3)
    values = domain.sample(size=3000, random_state=0)
    assert set(values) == {3, 6, 9}
    assert all(isinstance(v, int) for v in values)
    counts = collections.Counter(values)
    assert min(counts.values()) > 800


def test_qrandint_single_grid_point():
    assert space.qrandint(1, 4, 3).sample() == 3
    assert space.qrandint(1, 4, 3).sample(size=5) == [3] * 5


def test_quniform_values_are_exact_multiples():
    domain = space.quniform(0.0, 1.0, 0.25)
    values = set(domain.sample(size=2000, random_state=1))
    assert values == {0.0, 0.25, 0.5, 0.75, 1.0}


def test_quniform_tenths_have_no_float_noise():
    values = set(space.quniform(0.1, 0.9, 0.1).sample(size=2000,
                                                      random_state=2))
    assert values == {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}


def test_quniform_grid_inside_unaligned_bounds():
    values = set(space.quniform(0.1, 1.0, 0.25).sample(size=2000,
                                                       random_state=3))
    assert values == {0.25, 0.5, 0.75, 1.0}


def test_quniform_end_points_as_likely_as_inner_points():
    values = space.quniform(0.0, 1.0, 0.5).sample(size=3000, random_state=4)
    counts = collections.Counter(values)
    assert set(counts) == {0.0, 0.5, 1.0}
    assert min(counts.values()) > 850


def test_randint_case_never_reaches_upper():
    values = set(space.randint(0, 3).sample(size=2000, random_state=5))
    assert values == {0, 1, 2}


def test_qrandint_with_q_one_includes_upper():
    values = set(space.qrandint(0, 3).sample(size=2000, random_state=6))
    assert values == {0, 1, 2, 3}


def test_lograndint_reaches_every_value():
    values = set(space.lograndint(1, 5).sample(size=3000, random_state=7))
    assert values == {1, 2, 3, 4}


def test_loguniform_is_uniform_per_decade():
    values = space.loguniform(1e-4, 1.0).sample(size=4000, random_state=8)
    decades = collections.Counter(math.floor(math.log10(v)) for v in values)
    assert set(decades) == {-4, -3, -2, -1}
    for count in decades.values():
        assert 800 < count < 1200


def test_qloguniform_favours_small_values():
    domain = space.qloguniform(1, 1000, 1)
    values = domain.sample(size=3000, random_state=9)
    below_ten = sum(1 for v in values if v < 10)
    # Log-uniform puts a third of the mass below 10; uniform would put 1%.
    assert 800 < below_ten < 1200


def test_randn_mean_and_spread():
    values = space.randn(5.0, 2.0).sample(size=4000, random_state=10)
    mean = sum(values) / len(values)
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    assert abs(mean - 5.0) < 0.15
    assert abs(spread - 2.0) < 0.15


# --------------------------------------------------------------------------
# Randomness sources.


@settings(max_examples=25)
@given(seeds)
def test_int_seed_is_reproducible(seed):
    domain = space.uniform(0, 1)
    first = domain.sample(size=10, random_state=seed)
    second = domain.sample(size=10, random_state=seed)
    assert first == second


def test_random_instance_is_used_and_advanced():
    domain = space.randint(0, 10**9)
    rng = random.Random(3)
    first = domain.sample(random_state=rng)
    second = domain.sample(random_state=rng)
    assert first != second
    assert [first, second] == domain.sample(size=2,
                                            random_state=random.Random(3))


def test_global_random_seed_makes_default_reproducible():
    domain = space.uniform(0, 1)
    random.seed(1234)
    first = domain.sample(size=5)
    random.seed(1234)
    assert domain.sample(size=5) == first


def test_invalid_random_state_names_value():
    with pytest.raises(InvalidSearchSpace, match="'abc'"):
        space.uniform(0, 1).sample(random_state="abc")


def test_size_must_be_positive():
    with pytest.raises(InvalidSearchSpace, match="size"):
        space.uniform(0, 1).sample(size=0)


def test_sample_size_shapes_result():
    domain = space.choice(["a"])
    assert domain.sample() == "a"
    assert domain.sample(size=3) == ["a", "a", "a"]


# --------------------------------------------------------------------------
# Attributes that searcher adaptors read.


def test_domain_attributes():
    log = space.qloguniform(1e-3, 1.0, 1e-3, base=2)
    assert isinstance(log, space.Float)
    assert (log.lower, log.upper) == (1e-3, 1.0)
    assert isinstance(log.sampler, space.Quantized)
    assert isinstance(log.sampler.get_sampler(), space.LogUniform)
    assert log.sampler.q == 1e-3
    assert log.sampler.base == 2
    normal = space.qrandn(1.0, 2.0, 0.5)
    assert (normal.sampler.mean, normal.sampler.sd) == (1.0, 2.0)
    integer = space.randint(0, 3)
    assert isinstance(integer, space.Integer)
    assert isinstance(integer.sampler, space.Uniform)
    categorical = space.choice([1, 2])
    assert categorical.categories == [1, 2]
    assert categorical.domain_str == "[1, 2]"
    assert integer.domain_str == "(0, 3)"


def test_grid_and_function_flags():
    assert space.Categorical([1, 2]).grid().is_grid()
    assert not space.choice([1, 2]).is_grid()
    assert space.sample_from(lambda spec: 1).is_function()
    assert not space.uniform(0, 1).is_function()


def test_sampler_set_once():
    with pytest.raises(InvalidSearchSpace, match="one sampler"):
        space.uniform(0.5, 1).loguniform()


def test_class_api_matches_functions():
    domain = space.Integer(0, 10).quantized(5)
    assert set(domain.sample(size=500, random_state=0)) == {0, 5, 10}
    domain = space.Float(1e-3, 1).loguniform()
    assert all(1e-3 <= v < 1 for v in domain.sample(size=100))


def test_is_valid():
    assert space.randint(0, 3).is_valid(2)
    assert not space.randint(0, 3).is_valid(3)
    assert space.qrandint(0, 9, 3).is_valid(9)
    assert not space.qrandint(0, 9, 3).is_valid(4)
    assert space.quniform(0, 1, 0.25).is_valid(0.75)
    assert not space.quniform(0, 1, 0.25).is_valid(0.7)
    assert space.choice(["a"]).is_valid("a")


def test_function_domain_without_argument():
    domain = space.sample_from(lambda: 7)
    assert domain.sample() == 7


def test_function_domain_sample_gets_spec():
    domain = space.sample_from(lambda spec: spec.config.get("x", 3))
    assert domain.sample() == 3


def test_domains_pickle():
    for domain in [space.uniform(0, 1), space.qrandint(1, 10, 3),
                   space.choice([1, "a"]), space.qrandn(0, 1, 0.5)]:
        copy = pickle.loads(pickle.dumps(domain))
        assert repr(copy) == repr(domain)
    function = cloudpickle.loads(cloudpickle.dumps(
        space.sample_from(lambda spec: 5)))
    assert function.sample() == 5


def test_other_real_types_converted():
    domain = space.uniform(fractions.Fraction(1, 2), 1)
    assert domain.lower == 0.5
    assert type(domain.lower) is float


def test_grid_search_returns_ray_form():
    assert space.grid_search((1, 2)) == {"grid_search": [1, 2]}


# --------------------------------------------------------------------------
# Input checks: each message names the primitive and the value.


@pytest.mark.parametrize(
    "build, expected",
    [
        (lambda: space.uniform(2, 1), ["uniform()", "lower=2", "upper=1"]),
        (lambda: space.uniform(1, 1), ["uniform()", "lower=1"]),
        (lambda: space.quniform(5, 1, 1), ["quniform()", "lower=5"]),
        (lambda: space.randint(3, 3), ["randint()", "lower=3"]),
        (lambda: space.qrandint(9, 2), ["qrandint()", "lower=9"]),
        (lambda: space.lograndint(10, 1), ["lograndint()", "lower=10"]),
        (lambda: space.loguniform(0, 1), ["loguniform()", "lower=0"]),
        (lambda: space.loguniform(-1, 1), ["loguniform()", "lower=-1"]),
        (lambda: space.qloguniform(0, 1, 0.1), ["qloguniform()", "lower=0"]),
        (lambda: space.lograndint(0, 5), ["lograndint()", "lower=0"]),
        (lambda: space.qlograndint(0, 5, 1), ["qlograndint()", "lower=0"]),
        (lambda: space.loguniform(1, 10, base=1), ["loguniform()", "base=1"]),
        (lambda: space.choice([]), ["choice()", "empty"]),
        (lambda: space.choice("abc"), ["choice()", "'abc'"]),
        (lambda: space.choice(5), ["choice()", "5"]),
        (lambda: space.quniform(0, 1, 0), ["quniform()", "q=0"]),
        (lambda: space.quniform(0, 1, -0.5), ["quniform()", "q=-0.5"]),
        (lambda: space.qrandint(0, 10, 0), ["qrandint()", "q=0"]),
        (lambda: space.qrandint(0, 10, 1.5), ["qrandint()", "1.5"]),
        (lambda: space.qrandn(0, 1, 0), ["qrandn()", "q=0"]),
        (lambda: space.randn(0, 0), ["randn()", "sd=0"]),
        (lambda: space.randn(0, -1), ["randn()", "sd=-1"]),
        (lambda: space.qrandn(0, -2, 1), ["qrandn()", "sd=-2"]),
        (lambda: space.sample_from(42), ["sample_from()", "42"]),
        (lambda: space.sample_from(lambda a, b: 1), ["sample_from()"]),
        (lambda: space.grid_search(7), ["grid_search()", "7"]),
        (lambda: space.grid_search([]), ["grid_search()", "empty"]),
        (lambda: space.grid_search({"a": 1}), ["grid_search()", "'a'"]),
        (lambda: space.qrandint(1, 2, 5), ["qrandint()", "q=5", "lower=1"]),
        (lambda: space.quniform(0.1, 0.2, 0.5), ["quniform()", "q=0.5"]),
        (lambda: space.qlograndint(1, 3, 4), ["qlograndint()", "q=4"]),
        (lambda: space.randint(0.5, 3), ["randint()", "0.5"]),
        (lambda: space.uniform("a", 1), ["uniform()", "'a'"]),
        (lambda: space.uniform(float("nan"), 1), ["uniform()", "NaN"]),
        (lambda: space.uniform(0, float("inf")), ["uniform()", "inf"]),
        (lambda: space.quniform(0, 1e300, 1e-300), ["quniform()", "q="]),
    ],
)
def test_invalid_input_message(build, expected):
    with pytest.raises(InvalidSearchSpace) as info:
        build()
    message = str(info.value)
    for part in expected:
        assert part in message


def test_invalid_search_space_is_value_error():
    with pytest.raises(ValueError):
        space.uniform(1, 0)
