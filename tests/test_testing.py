"""Tests of trainable.testing: the configs() strategy, the in-process
save/restore round trip, and round_trip_test()."""

import collections
import importlib.util
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import threading

import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

import trainable as tune
from trainable.errors import InvalidConfig, InvalidSearchSpace, TuneError
from trainable.search import BasicVariantGenerator
from trainable.space import (
    Categorical,
    Domain,
    Float,
    FloatGrid,
    Integer,
    Normal,
    Quantized,
    quantize_unbounded,
)
from trainable.testing import (
    assert_save_restore_round_trip,
    configs,
    round_trip_test,
)
from trainable.utils import validate_save_restore
from trainable.variants import normalize_spec

from conftest import PROJECT_ROOT, script_env

EXAMPLES = os.path.join(PROJECT_ROOT, "examples")
SNIPPET_FILES = [os.path.join(PROJECT_ROOT, "README.rst")]


# --------------------------------------------------------------------------
# An independent check that a value is one variant generation can produce.


def check_in_space(spec, value, path="config"):
    """Assert that ``value`` is a resolution of the normalized ``spec``.

    Functions accept any value: the tests that use them check their
    results themselves.
    """
    if isinstance(spec, dict) and list(spec) == ["grid_search"]:
        check_one_of(spec["grid_search"], value, path)
    elif isinstance(spec, Categorical):
        check_one_of(spec.categories, value, path)
    elif isinstance(spec, Domain):
        if not spec.is_function():
            check_in_domain(spec, value, path)
    elif isinstance(spec, dict):
        assert type(value) is type(spec), path
        assert list(value) == list(spec), path
        for key in spec:
            check_in_space(spec[key], value[key], f"{path}/{key}")
    elif isinstance(spec, (list, tuple)):
        assert type(value) is type(spec), path
        assert len(value) == len(spec), path
        for index, (child, item) in enumerate(zip(spec, value)):
            check_in_space(child, item, f"{path}/{index}")
    else:
        assert value is spec or value == spec, (path, value, spec)


def check_one_of(options, value, path):
    for option in options:
        try:
            check_in_space(option, value, path)
            return
        except AssertionError:
            continue
    raise AssertionError(f"{path}: {value!r} is none of {options!r}")


def check_in_domain(domain, value, path):
    assert domain.is_valid(value), (path, value, domain)
    sampler = domain.get_sampler()
    if isinstance(domain, Integer):
        assert type(value) is int, (path, value)
        return
    assert type(value) is float, (path, value)
    assert math.isfinite(value), (path, value)
    if isinstance(sampler, Quantized):
        if isinstance(sampler.get_sampler(), Normal):
            assert value == quantize_unbounded(value, sampler.q), path
        else:
            grid = FloatGrid("test", domain.lower, domain.upper, sampler.q)
            assert value == grid.value(round(value / sampler.q)), path
    elif not isinstance(sampler, Normal):
        assert domain.lower <= value < domain.upper, (path, value)


def drawn_values(space_value, generator_samples=0):
    """Values that BasicVariantGenerator produces for ``{"x": value}``."""
    generator = BasicVariantGenerator(random_state=0)
    generator.add_configurations({"x": space_value}, generator_samples)
    values = []
    for index in range(10_000):
        suggestion = generator.next_trial(f"t{index}")
        if suggestion is None:
            break
        values.append(suggestion.config["x"])
    return values


# --------------------------------------------------------------------------
# configs(): one primitive at a time.

PRIMITIVES = {
    "uniform": tune.uniform(-2.5, 3),
    "uniform_huge": tune.uniform(-1e308, 1e308),
    "quniform": tune.quniform(0, 1, 0.1),
    "quniform_negative": tune.quniform(-1, 1, 0.25),
    "loguniform": tune.loguniform(1e-4, 1e-1),
    "loguniform_wide": tune.loguniform(1e-300, 1e300),
    "qloguniform": tune.qloguniform(1, 100, 5),
    "qloguniform_small_q": tune.qloguniform(1e-3, 1, 1e-3),
    "randn": tune.randn(),
    "randn_shifted": tune.randn(5, 0.1),
    "qrandn": tune.qrandn(0, 1, 0.25),
    "randint": tune.randint(0, 3),
    "randint_negative": tune.randint(-5, 5),
    "qrandint": tune.qrandint(0, 10, 5),
    "qrandint_offset": tune.qrandint(-7, 7, 3),
    "lograndint": tune.lograndint(1, 1000),
    "qlograndint": tune.qlograndint(1, 100, 10),
    "float_default_sampler": Float(0, 1),
    "float_unbounded": Float(None, None),
    "integer_default_sampler": Integer(2, 4),
    "choice": tune.choice([1, "a", None, (2, 3)]),
    "categorical_grid": Categorical([1, 2, 3]).grid(),
    "grid_search": tune.grid_search([0.1, "b", [1, 2]]),
}


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_configs_primitive_in_domain(name, data):
    space = {"x": PRIMITIVES[name]}
    config = data.draw(configs(space))
    check_in_space(normalize_spec(space), config)


@settings(max_examples=100, deadline=None)
@given(configs({"x": tune.randn(5, 0.1)}))
def test_configs_normal_within_ten_sd(config):
    assert abs(config["x"] - 5) <= 1.0 + 1e-12


@pytest.mark.parametrize("sign", [1, -1])
def test_configs_normal_reaches_nine_sd(sign):
    space = {"x": tune.randn(5, 0.1)}
    value = find(configs(space), lambda c: sign * (c["x"] - 5) > 0.9)["x"]
    assert sign * (value - 5) > 0.9


DISCRETE = {
    "quniform": tune.quniform(0, 1, 0.1),
    "qloguniform": tune.qloguniform(1, 100, 5),
    "qrandint": tune.qrandint(-7, 7, 3),
    "qlograndint": tune.qlograndint(1, 100, 10),
    "randint": tune.randint(-2, 3),
    "lograndint": tune.lograndint(1, 8),
    "choice": tune.choice([1, "a", None]),
    "grid_search": tune.grid_search([3, 1, 2]),
}


@pytest.mark.parametrize("name", sorted(DISCRETE))
def test_configs_values_generator_produces(name):
    produced = drawn_values(DISCRETE[name], generator_samples=400)

    @settings(max_examples=30, deadline=None)
    @given(configs({"x": DISCRETE[name]}))
    def check(config):
        assert config["x"] in produced

    check()


def test_configs_grid_points_all_reached():
    # Every grid point is drawn, rounded as the generator rounds it.
    space = {"x": tune.quniform(0.05, 0.95, 0.1)}
    expected = sorted(set(drawn_values(space["x"], 500)))
    found = set()

    @settings(max_examples=200, deadline=None)
    @given(configs(space))
    def collect(config):
        found.add(config["x"])

    collect()
    assert expected == [round(0.1 * k, 1) for k in range(1, 10)]
    assert found == set(expected)


# --------------------------------------------------------------------------
# configs(): nesting, grids and functions.

Point = collections.namedtuple("Point", "x y")

NESTED = {
    "optimizer": {
        "lr": tune.loguniform(1e-5, 1e-1),
        "betas": [tune.uniform(0.8, 0.99), 0.999],
        "schedule": {"kind": tune.choice(["step", "cosine"]),
                     "warmup": tune.randint(0, 10)},
    },
    "layers": [tune.qrandint(16, 128, 16), tune.qrandint(16, 128, 16)],
    "point": Point(tune.randint(0, 3), 1),
    "pair": (tune.choice([True, False]), "fixed"),
    "activation": tune.grid_search(["relu", "tanh"]),
    "seed": 42,
}


@settings(max_examples=50, deadline=None)
@given(configs(NESTED))
def test_configs_nested_space(config):
    check_in_space(normalize_spec(NESTED), config)
    assert isinstance(config["point"], Point)
    assert isinstance(config["pair"], tuple)
    assert config["seed"] == 42


GRID_IN_GRID = {
    "model": tune.grid_search([
        {"kind": "linear"},
        {"kind": "mlp", "width": tune.grid_search([32, 64]),
         "dropout": tune.uniform(0, 0.5)},
    ]),
}


@settings(max_examples=40, deadline=None)
@given(configs(GRID_IN_GRID))
def test_configs_grid_inside_grid_value(config):
    check_in_space(normalize_spec(GRID_IN_GRID), config)
    model = config["model"]
    if model["kind"] == "mlp":
        assert model["width"] in (32, 64)
        assert 0 <= model["dropout"] < 0.5


CHOICE_OF_DOMAINS = {
    "x": tune.choice([
        tune.uniform(10, 20),
        {"inner": tune.randint(0, 3), "const": "c"},
        [tune.qrandint(0, 4, 2)],
        7,
    ]),
}


@settings(max_examples=60, deadline=None)
@given(configs(CHOICE_OF_DOMAINS))
def test_configs_choice_holding_domains(config):
    check_in_space(normalize_spec(CHOICE_OF_DOMAINS), config)
    assert not isinstance(config["x"], Domain)


CHOICE_OF_FUNCTIONS = {
    "base": tune.randint(1, 5),
    "derived": tune.choice([
        tune.sample_from(lambda spec: spec.config.base * 10),
        "fixed",
    ]),
}


@settings(max_examples=30, deadline=None)
@given(configs(CHOICE_OF_FUNCTIONS))
def test_configs_choice_holding_function(config):
    assert config["base"] in range(1, 5)
    assert config["derived"] in (config["base"] * 10, "fixed")


FUNCTIONS = {
    "width": tune.grid_search([8, 16]),
    "depth": tune.randint(1, 4),
    "units": tune.sample_from(lambda spec: spec.config.width * 2),
    # A plain function as a value is called like sample_from, as in Ray.
    "total": lambda spec: spec.config.units * spec.config.depth,
    "nested": {"half": tune.sample_from(lambda spec: spec.config.total / 2)},
    "noise": tune.sample_from(lambda: tune.uniform(0, 1)),
    "constant_fn": tune.grid_search([len]),
}


@settings(max_examples=40, deadline=None)
@given(configs(FUNCTIONS))
def test_configs_sample_from_dependencies(config):
    assert config["width"] in (8, 16)
    assert config["depth"] in (1, 2, 3)
    assert config["units"] == config["width"] * 2
    assert config["total"] == config["units"] * config["depth"]
    assert config["nested"]["half"] == config["total"] / 2
    assert 0 <= config["noise"] < 1
    assert config["constant_fn"] is len


def test_configs_sample_from_seeded_by_hypothesis():
    # A domain returned by a function is sampled with hypothesis's random
    # generator, so a failing example can shrink to its lowest value.
    space = {"x": tune.sample_from(lambda: tune.randint(0, 1000))}
    assert find(configs(space), lambda c: True)["x"] == 0


def test_configs_circular_functions_rejected():
    space = {"a": lambda spec: spec.config.b,
             "b": lambda spec: spec.config.a}
    with pytest.raises(InvalidSearchSpace, match="'a' reads 'b'"):
        find(configs(space), lambda c: True)


def test_configs_grid_inside_choice_rejected():
    space = {"x": tune.choice([1, {"y": tune.grid_search([1, 2])}])}
    with pytest.raises(InvalidSearchSpace, match="x/y"):
        configs(space)


@pytest.mark.parametrize("space", [None, [1, 2], "lr"])
def test_configs_space_not_dict(space):
    with pytest.raises(InvalidSearchSpace, match="must be a dict"):
        configs(space)


def test_configs_leaves_space_unchanged():
    space = {"a": tune.uniform(0, 1), "b": [tune.randint(0, 2)],
             "c": lambda spec: spec.config.a}
    before = {key: list(value) if isinstance(value, list) else value
              for key, value in space.items()}
    find(configs(space), lambda c: True)
    assert space["a"] is before["a"]
    assert space["b"] == before["b"]
    assert space["c"] is before["c"]


@pytest.mark.parametrize("domain, expected", [
    (tune.loguniform(1e-4, 1e-1), 1e-4),
    (tune.quniform(0.3, 1, 0.1), 0.3),
    (tune.qloguniform(2, 100, 5), 5.0),
    (tune.randn(5, 2), 5.0),
    (tune.randint(3, 10), 3),
    (tune.lograndint(4, 1000), 4),
    (tune.qrandint(5, 50, 5), 5),
    (tune.choice(["first", "second"]), "first"),
    (tune.grid_search(["a", "b"]), "a"),
])
def test_configs_shrink_targets(domain, expected):
    value = find(configs({"x": domain}), lambda c: True)["x"]
    # pytest.approx compares numbers only (pytest 9 rejects strings).
    if isinstance(expected, float):
        assert value == pytest.approx(expected, rel=1e-12)
    else:
        assert value == expected


def test_import_without_hypothesis():
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "import trainable.testing as t\n"
            "try:\n"
            "    t.configs({})\n"
            "except ImportError as exc:\n"
            "    print(exc)\n")
    output = subprocess.run(
        [sys.executable, "-c", code], env=script_env(), check=True,
        capture_output=True, text=True, timeout=60).stdout
    assert 'pip install "trainable[test]"' in output


def test_missing_hypothesis_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "hypothesis", None)
    with pytest.raises(ImportError, match=re.escape(
            'pip install "trainable[test]"')):
        round_trip_test(Accumulator, {})


# --------------------------------------------------------------------------
# Trainables that checkpoint correctly.


class Accumulator(tune.Trainable):
    """Adds a random multiple of ``lr`` to a total each step.

    Its state is the total, a step counter and a random generator; the
    checkpoint is a file inside the checkpoint directory.
    """

    def setup(self, config):
        self.lr = config["lr"]
        self.rng = random.Random(config.get("seed", 0))
        self.total = 0.0
        self.count = 0

    def step(self):
        self.count += 1
        self.total += self.lr * self.rng.random()
        return {"total": self.total, "count": self.count,
                "timesteps_this_iter": self.count}

    def state(self):
        return {"total": self.total, "count": self.count,
                "rng": self.rng.getstate()}

    def set_state(self, state):
        self.total = state["total"]
        self.count = state["count"]
        self.rng.setstate(state["rng"])

    def save_checkpoint(self, tmp_checkpoint_dir):
        import pickle

        path = os.path.join(tmp_checkpoint_dir, "state.pkl")
        with open(path, "wb") as f:
            pickle.dump(self.state(), f)
        return path

    def load_checkpoint(self, checkpoint_path):
        import pickle

        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))


ACCUMULATOR_SPACE = {
    "lr": tune.loguniform(1e-3, 1.0),
    "seed": tune.randint(0, 2**31),
    "tag": tune.choice(["a", "b"]),
}

test_accumulator_round_trip = round_trip_test(
    Accumulator, ACCUMULATOR_SPACE, max_steps=4, max_examples=15)


class ClassicCounter(tune.Trainable):
    """A Trainable with the classic hook names and a dict checkpoint."""

    def _setup(self, config):
        self.value = config["start"]

    def _train(self):
        self.value += 1
        return {"value": self.value}

    def _save(self, tmp_checkpoint_dir):
        return {"value": self.value}

    def _restore(self, checkpoint):
        self.value = checkpoint["value"]


test_classic_hooks_round_trip = round_trip_test(
    ClassicCounter, {"start": tune.randint(-100, 100)}, max_steps=3,
    max_examples=8)


def counting_function(config, checkpoint_dir=None):
    """A function trainable that checkpoints its counter every step."""
    count = 0
    if checkpoint_dir:
        with open(os.path.join(checkpoint_dir, "count")) as f:
            count = int(f.read())
    while True:
        count += 1
        with tune.checkpoint_dir(step=count) as directory:
            with open(os.path.join(directory, "count"), "w") as f:
                f.write(str(count))
        tune.report(score=count * config["scale"], count=count)


test_function_round_trip = round_trip_test(
    counting_function, {"scale": tune.uniform(0.5, 2)}, max_steps=3,
    max_examples=6)


def function_threads():
    return [t for t in threading.enumerate()
            if t.name.startswith("trainable-function-")]


def test_function_trainable_threads_end():
    for use_object_store in (False, True):
        assert_save_restore_round_trip(
            counting_function, {"scale": 1.0}, steps=2,
            use_object_store=use_object_store)
    assert function_threads() == []


def test_function_checkpoint_gap_reported():
    def sparse_checkpoints(config, checkpoint_dir=None):
        count = 0
        while True:
            count += 1
            if count == 1:
                with tune.checkpoint_dir(step=count) as directory:
                    open(os.path.join(directory, "count"), "w").close()
            tune.report(count=count)

    with pytest.raises(AssertionError, match="at iteration 1.*every step"):
        assert_save_restore_round_trip(sparse_checkpoints, {}, steps=3)
    assert function_threads() == []


def mismatched_file_function(config, checkpoint_dir=None):
    """Writes its counter to "count" but reads it back from "counter"."""
    count = 0
    if checkpoint_dir:
        with open(os.path.join(checkpoint_dir, "counter")) as f:
            count = int(f.read())
    while True:
        count += 1
        with tune.checkpoint_dir(step=count) as directory:
            with open(os.path.join(directory, "count"), "w") as f:
                f.write(str(count))
        tune.report(count=count)


def test_function_restore_error_in_first_step():
    with pytest.raises(AssertionError) as failure:
        assert_save_restore_round_trip(mismatched_file_function, {})
    message = str(failure.value)
    assert "restored from " in message
    assert "raised in its first step: FileNotFoundError" in message
    assert "leaves out state that step() needs" in message
    assert function_threads() == []


def load_example(name):
    path = os.path.join(EXAMPLES, f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


guesser = load_example("guesser")


class CheckpointedGuesser(guesser.Guesser):
    """The stateless Guesser example with an empty checkpoint."""

    def save_checkpoint(self, tmp_checkpoint_dir):
        return {}

    def load_checkpoint(self, checkpoint):
        pass


test_guesser_round_trip = round_trip_test(
    CheckpointedGuesser, {"guess": tune.randint(1, 10000)}, max_steps=2,
    max_examples=8)


def test_guesser_without_checkpoint_hooks():
    # The example defines no save_checkpoint(): the original error shows.
    with pytest.raises(NotImplementedError, match="save_checkpoint"):
        assert_save_restore_round_trip(guesser.Guesser, {"guess": 3})


def test_digits_classifier_round_trip():
    pytest.importorskip("sklearn")
    import numpy as np

    digits = load_example("tune_digits")

    class SeededDigitsClassifier(digits.DigitsClassifier):
        # The example's SGDClassifier has random_state=None, so each
        # partial_fit() shuffles with numpy's global generator, which no
        # checkpoint contains. A generator of its own is pickled with the
        # model and makes the steps after a restore repeatable.
        def setup(self, config, data=None):
            super().setup(config, data=data)
            self.model.set_params(
                random_state=np.random.RandomState(config["seed"]))

    classifier = tune.with_parameters(SeededDigitsClassifier,
                                      data=digits.load_splits())
    space = {"lr": tune.loguniform(1e-3, 1.0),
             "alpha": tune.loguniform(1e-6, 1e-2),
             "seed": tune.randint(0, 100)}
    round_trip_test(classifier, space, max_steps=2, max_examples=3)()


# --------------------------------------------------------------------------
# The example of the README's property-based testing section, kept
# identical to it.

from hypothesis import given  # noqa: E402,F811

import trainable as tune  # noqa: E402,F811
from trainable.testing import (  # noqa: E402,F811
    assert_save_restore_round_trip, configs, round_trip_test)


class Decay(tune.Trainable):
    def setup(self, config):
        self.rate = config["rate"]
        self.loss = float(config["start"])

    def step(self):
        self.loss *= 1.0 - self.rate
        return {"loss": self.loss}

    def save_checkpoint(self, tmp_checkpoint_dir):
        return {"loss": self.loss}

    def load_checkpoint(self, checkpoint):
        self.loss = checkpoint["loss"]


SPACE = {"rate": tune.loguniform(1e-3, 0.5),
         "start": tune.qrandint(10, 100, 10)}

test_decay_round_trip = round_trip_test(Decay, SPACE, max_steps=4)


@given(configs(SPACE))
def test_space_bounds(config):
    assert 1e-3 <= config["rate"] < 0.5
    assert config["start"] % 10 == 0


def test_decay_after_object_store():
    assert_save_restore_round_trip(
        Decay, {"rate": 0.1, "start": 50}, use_object_store=True)

# End of the documented example.


def documented_examples():
    """Return the Python code blocks that import trainable.testing from
    the README and the documentation snippet."""
    blocks = []
    for path in SNIPPET_FILES:
        if not os.path.exists(path):
            continue
        with open(path) as f:
            text = f.read()
        pattern = r"\.\. code-block:: python\n\n((?:(?:    .*)?\n)+)"
        for match in re.finditer(pattern, text):
            code = re.sub(r"(?m)^    ", "", match.group(1))
            if "from trainable.testing import" in code:
                blocks.append((path, code))
    return blocks


def test_documented_example_runs():
    blocks = documented_examples()
    if not blocks:
        pytest.skip("no documented example of trainable.testing found")
    for path, code in blocks:
        namespace = {"__name__": "documented_example"}
        exec(compile(code, path, "exec"), namespace)
        tests = [value for name, value in namespace.items()
                 if name.startswith("test_") and callable(value)]
        assert tests, path
        for test in tests:
            test()


def test_documented_forgotten_state_message():
    class ForgetfulDecay(Decay):
        def save_checkpoint(self, tmp_checkpoint_dir):
            return {}

        def load_checkpoint(self, checkpoint):
            pass

    with pytest.raises(AssertionError, match=(
            r"After save and restore, ForgetfulDecay reported loss=\S+ in "
            r"the next step, where the instance that was not restored "
            r"reported loss=")):
        assert_save_restore_round_trip(
            ForgetfulDecay, {"rate": 0.1, "start": 50})


# --------------------------------------------------------------------------
# Broken Trainables that the helpers must catch.


class ForgetsCounter(Accumulator):
    """Leaves the step counter out of its checkpoint."""

    def state(self):
        state = super().state()
        del state["count"]
        return state

    def set_state(self, state):
        self.total = state["total"]
        self.rng.setstate(state["rng"])


class IgnoresCheckpoint(Accumulator):
    """Saves everything but restores nothing."""

    def load_checkpoint(self, checkpoint_path):
        pass


class StoresAbsolutePath(Accumulator):
    """Writes its state beside the checkpoint directory, not inside it, and
    keeps the absolute path of that file in the checkpoint.

    The file outlives a checkpoint on disk, but not one sent through the
    object store, whose save directory is deleted after packing.
    """

    def save_checkpoint(self, tmp_checkpoint_dir):
        import pickle

        parent = os.path.dirname(os.path.abspath(tmp_checkpoint_dir))
        path = os.path.join(parent, f"state_{self.iteration}.pkl")
        with open(path, "wb") as f:
            pickle.dump(self.state(), f)
        return {"state_file": path}

    def load_checkpoint(self, checkpoint):
        super().load_checkpoint(checkpoint["state_file"])


BROKEN_CONFIG = {"lr": 0.5, "seed": 1}


@pytest.mark.parametrize("use_object_store", [False, True])
def test_forgotten_counter_caught(use_object_store):
    with pytest.raises(AssertionError) as failure:
        assert_save_restore_round_trip(
            ForgetsCounter, BROKEN_CONFIG, steps=3,
            use_object_store=use_object_store)
    message = str(failure.value)
    assert "ForgetsCounter reported count=1 " in message
    assert "reported count=4 " in message
    assert "does not contain all the state" in message


def test_ignored_checkpoint_caught():
    with pytest.raises(AssertionError) as failure:
        assert_save_restore_round_trip(IgnoresCheckpoint, BROKEN_CONFIG)
    message = str(failure.value)
    assert "reported total=" in message
    assert "load_checkpoint() does not apply all of it" in message


def test_absolute_path_passes_on_disk():
    assert_save_restore_round_trip(StoresAbsolutePath, BROKEN_CONFIG,
                                   use_object_store=False)


def test_absolute_path_caught_with_object_store():
    with pytest.raises(AssertionError) as failure:
        assert_save_restore_round_trip(StoresAbsolutePath, BROKEN_CONFIG,
                                       use_object_store=True)
    message = str(failure.value)
    assert "could not be restored from the blob" in message
    assert "FileNotFoundError" in message
    assert "absolute paths" in message
    assert isinstance(failure.value.__cause__, FileNotFoundError)


@pytest.fixture
def no_shrinking():
    """Build hypothesis tests without shrinking and without the example
    database, for tests that only check that a failure is found."""
    previous = settings.get_current_profile_name()
    settings.register_profile("trainable-testing-no-shrink",
                              phases=[Phase.explicit, Phase.generate],
                              database=None)
    settings.load_profile("trainable-testing-no-shrink")
    yield
    settings.load_profile(previous)


@pytest.mark.parametrize("broken", [ForgetsCounter, IgnoresCheckpoint,
                                    StoresAbsolutePath])
def test_round_trip_test_catches(broken, no_shrinking):
    test = round_trip_test(broken, ACCUMULATOR_SPACE, max_steps=3,
                           max_examples=10)
    with pytest.raises(AssertionError, match=broken.__name__):
        test()


def test_round_trip_test_disk_only_passes_absolute_path():
    round_trip_test(StoresAbsolutePath, ACCUMULATOR_SPACE, max_steps=2,
                    use_object_store=False, max_examples=5)()


def test_validate_save_restore_forgotten_counter():
    with pytest.raises(TuneError, match="reported count=1 where the "
                                        "original reported count=4"):
        validate_save_restore(ForgetsCounter, BROKEN_CONFIG)


def test_validate_save_restore_ignored_checkpoint():
    with pytest.raises(TuneError, match="reported total="):
        validate_save_restore(IgnoresCheckpoint, BROKEN_CONFIG)


def test_validate_save_restore_absolute_path():
    assert validate_save_restore(StoresAbsolutePath, BROKEN_CONFIG)
    with pytest.raises(TuneError, match="absolute paths"):
        validate_save_restore(StoresAbsolutePath, BROKEN_CONFIG,
                              use_object_store=True)


# --------------------------------------------------------------------------
# Other checks of assert_save_restore_round_trip.


class RandomSteps(tune.Trainable):
    """Reports a draw from an unseeded generator, so that two runs almost
    never agree."""

    def step(self):
        return {"draw": random.random()}

    def save_checkpoint(self, tmp_checkpoint_dir):
        return {}

    def load_checkpoint(self, checkpoint):
        pass


def test_compare_results_off_for_random_steps():
    with pytest.raises(AssertionError, match="compare_results=False"):
        assert_save_restore_round_trip(RandomSteps, {})
    assert_save_restore_round_trip(RandomSteps, {}, compare_results=False)


class SkipsMetadata(Accumulator):
    """Overrides restore() without the base class, losing the iteration."""

    def restore(self, checkpoint_path):
        self.load_checkpoint(checkpoint_path)


def test_lost_iteration_caught():
    with pytest.raises(AssertionError,
                       match="saved at iteration 3, SkipsMetadata is at "
                             "iteration 0"):
        assert_save_restore_round_trip(SkipsMetadata, BROKEN_CONFIG)


class RecordsStops(Accumulator):
    stopped = []

    def cleanup(self):
        RecordsStops.stopped.append(self.trial_name)


class FailsAfterRestore(RecordsStops):
    def load_checkpoint(self, checkpoint_path):
        raise RuntimeError("cannot load")


@pytest.mark.parametrize("cls, error", [(RecordsStops, None),
                                        (FailsAfterRestore, AssertionError)])
@pytest.mark.parametrize("use_object_store", [False, True])
def test_stops_instances_and_removes_temp_dirs(cls, error, use_object_store,
                                               tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    RecordsStops.stopped = []
    if error is None:
        assert_save_restore_round_trip(cls, BROKEN_CONFIG,
                                       use_object_store=use_object_store)
    else:
        with pytest.raises(error, match="RuntimeError: cannot load"):
            assert_save_restore_round_trip(
                cls, BROKEN_CONFIG, use_object_store=use_object_store)
    name = cls.__name__
    assert sorted(RecordsStops.stopped) == [f"{name}_original",
                                            f"{name}_restored"]
    assert os.listdir(tmp_path) == []


def test_checkpoint_dir_kept(tmp_path):
    assert_save_restore_round_trip(Accumulator, BROKEN_CONFIG, steps=2,
                                   checkpoint_dir=str(tmp_path))
    assert os.listdir(tmp_path) == ["checkpoint_000002"]


@pytest.mark.parametrize("steps", [-1, 1.5, True, "3"])
def test_invalid_steps(steps):
    with pytest.raises(InvalidConfig, match="steps must be an int"):
        assert_save_restore_round_trip(Accumulator, BROKEN_CONFIG,
                                       steps=steps)


@pytest.mark.parametrize("trainable_cls", [dict, 3])
def test_invalid_trainable_cls(trainable_cls):
    with pytest.raises(InvalidConfig, match="trainable_cls must be"):
        assert_save_restore_round_trip(trainable_cls, {})


@pytest.mark.parametrize("argument", ["max_steps", "max_examples"])
def test_round_trip_test_invalid_counts(argument):
    with pytest.raises(InvalidConfig, match=argument):
        round_trip_test(Accumulator, ACCUMULATOR_SPACE, **{argument: 0})


def test_zero_steps_round_trip():
    assert_save_restore_round_trip(Accumulator, BROKEN_CONFIG, steps=0)


def test_round_trip_test_name():
    test = round_trip_test(Accumulator, ACCUMULATOR_SPACE)
    assert test.__name__ == "test_Accumulator_round_trip"
