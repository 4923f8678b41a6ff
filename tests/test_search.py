"""Tests of the search algorithms in trainable.search."""

import collections
import logging
import sys

import cloudpickle
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trainable.space as space
from trainable.errors import InvalidConfig, InvalidSearchSpace
from trainable.search import (
    BasicVariantGenerator,
    ConcurrencyLimiter,
    SearchAlgorithm,
    SearchGenerator,
    Searcher,
    Suggestion,
)


def drain(algorithm, limit=10_000, complete=True):
    """Take suggestions until there are none; optionally complete each."""
    suggestions = []
    for index in range(limit):
        trial_id = f"t{index}"
        suggestion = algorithm.next_trial(trial_id)
        if suggestion is None:
            break
        suggestions.append(suggestion)
        if complete:
            algorithm.on_trial_complete(trial_id, {"score": 0})
    return suggestions


def new_generator(config, num_samples, **kwargs):
    generator = BasicVariantGenerator(**kwargs)
    assert generator.set_search_properties(None, None, config)
    generator.add_configurations(config, num_samples)
    return generator


def search_config():
    return {
        "a": space.grid_search([1, 2]),
        "b": space.choice(["x", "y", "z"]),
        "opt": {"lr": space.loguniform(1e-4, 1e-1)},
        "c": 7,
    }


# --------------------------------------------------------------------------
# BasicVariantGenerator: expansion.


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 3), max_size=3), st.integers(0, 4))
def test_grid_times_num_samples(sizes, num_samples):
    config = {f"g{i}": space.grid_search(list(range(size)))
              for i, size in enumerate(sizes)}
    config["r"] = space.uniform(0, 1)
    grid_size = 1
    for size in sizes:
        grid_size *= size
    generator = new_generator(config, num_samples, random_state=0)
    suggestions = drain(generator)
    assert len(suggestions) == grid_size * num_samples
    assert generator.total_samples == grid_size * num_samples
    assert generator.is_finished()
    combos = collections.Counter(
        tuple(s.config[f"g{i}"] for i in range(len(sizes)))
        for s in suggestions
    )
    assert len(combos) == (grid_size if num_samples else 0)
    assert all(count == num_samples for count in combos.values())


def test_repeats_pass_over_whole_grid():
    config = {"a": space.grid_search([1, 2, 3]), "r": space.uniform(0, 1)}
    suggestions = drain(new_generator(config, 2, random_state=0))
    assert [s.config["a"] for s in suggestions] == [1, 2, 3, 1, 2, 3]
    assert len({s.config["r"] for s in suggestions}) == 6


def test_experiment_tags():
    config = {"a": space.grid_search([1, 2]), "b": 2,
              "c": space.grid_search([3])}
    suggestions = drain(new_generator(config, 1))
    assert [s.experiment_tag for s in suggestions] == ["0_a=1,c=3",
                                                       "1_a=2,c=3"]
    assert suggestions[0].resolved_vars == {"a": 1, "c": 3}


def test_constant_config_has_plain_tag():
    suggestions = drain(new_generator({"a": 1}, 2))
    assert [s.experiment_tag for s in suggestions] == ["0", "1"]
    assert all(s.config == {"a": 1} for s in suggestions)
    assert all(isinstance(s, Suggestion) for s in suggestions)


def test_suggestions_are_independent_copies():
    config = {"nested": {"k": [1, 2]}, "a": space.grid_search([1, 2])}
    first, second = drain(new_generator(config, 1))
    first.config["nested"]["k"].append(3)
    assert second.config["nested"]["k"] == [1, 2]
    assert config["nested"]["k"] == [1, 2]


def test_randint_bounds_through_generator():
    generator = new_generator({"b": space.randint(0, 3)}, 60,
                              random_state=0)
    got = {s.config["b"] for s in drain(generator)}
    assert got == {0, 1, 2}


def test_sample_from_case_through_generator():
    config = {
        "method": space.grid_search(["sgd", "adam"]),
        "alpha": space.uniform(1, 2),
        "beta": space.sample_from(lambda spec: spec.config.alpha * 10),
        "opt": {"lr": space.sample_from(
            lambda spec: 0.1 if spec.config.method == "sgd" else 0.001)},
        "gamma": space.sample_from(lambda spec: spec.config.opt.lr * 2),
    }
    suggestions = drain(new_generator(config, 3, random_state=1))
    assert len(suggestions) == 6
    for suggestion in suggestions:
        c = suggestion.config
        assert abs(c["beta"] - c["alpha"] * 10) < 1e-9
        assert c["opt"]["lr"] == (0.1 if c["method"] == "sgd" else 0.001)
        assert c["gamma"] == c["opt"]["lr"] * 2


def test_same_seed_same_variants():
    first = drain(new_generator(search_config(), 3, random_state=5))
    second = drain(new_generator(search_config(), 3, random_state=5))
    third = drain(new_generator(search_config(), 3, random_state=6))
    assert [s.config for s in first] == [s.config for s in second]
    assert [s.config for s in first] != [s.config for s in third]


def test_no_seed_differs_between_generators():
    first = drain(new_generator(search_config(), 2))
    second = drain(new_generator(search_config(), 2))
    assert [s.config for s in first] != [s.config for s in second]


def test_unlimited_samples():
    generator = new_generator({"a": space.grid_search([1, 2])}, -1)
    suggestions = drain(generator, limit=25)
    assert len(suggestions) == 25
    assert not generator.is_finished()
    assert generator.total_samples == -1


def test_invalid_num_samples_names_value():
    generator = BasicVariantGenerator()
    with pytest.raises(InvalidConfig, match="-2"):
        generator.add_configurations({}, -2)


def test_not_finished_before_configurations():
    generator = BasicVariantGenerator()
    assert not generator.is_finished()


def test_max_concurrent_limits_live_trials():
    generator = new_generator({"a": space.grid_search([1, 2, 3])}, 1,
                              max_concurrent=2)
    assert generator.next_trial("t0") is not None
    assert generator.next_trial("t1") is not None
    assert generator.next_trial("t2") is None
    assert not generator.is_finished()
    generator.on_trial_complete("t0")
    assert generator.next_trial("t2").config == {"a": 3}
    assert generator.next_trial("t3") is None
    assert generator.is_finished()


def test_invalid_max_concurrent_names_value():
    with pytest.raises(InvalidConfig, match="-1"):
        BasicVariantGenerator(max_concurrent=-1)


def test_constant_grid_search_generator():
    config = {"a": space.grid_search([1, 2, 3]), "r": space.uniform(0, 1)}
    suggestions = drain(new_generator(config, 2, random_state=0,
                                      constant_grid_search=True))
    values = [s.config["r"] for s in suggestions]
    assert len(set(values[:3])) == 1
    assert len(set(values[3:])) == 1
    assert values[0] != values[3]


def test_several_experiments_run_in_order():
    generator = BasicVariantGenerator(random_state=0)
    generator.add_configurations({"e": 1}, 2)
    generator.add_configurations({"e": 2}, 1)
    assert [s.config["e"] for s in drain(generator)] == [1, 1, 2]
    assert generator.total_samples == 3


# --------------------------------------------------------------------------
# BasicVariantGenerator: points_to_evaluate.


def test_points_come_first_and_count_as_samples():
    config = {"a": space.uniform(0, 1), "b": space.choice([1, 2])}
    generator = new_generator(
        config, 3, points_to_evaluate=[{"a": 0.5, "b": 2}, {"a": 0.25}],
        random_state=0,
    )
    suggestions = drain(generator)
    assert len(suggestions) == 3
    assert suggestions[0].config == {"a": 0.5, "b": 2}
    assert suggestions[1].config["a"] == 0.25
    assert suggestions[1].config["b"] in (1, 2)
    assert suggestions[0].experiment_tag == "0_a=0.5,b=2"


def test_point_leaving_grid_open_expands_it():
    config = {"g": space.grid_search([1, 2]), "x": space.uniform(0, 1)}
    generator = new_generator(config, 1, points_to_evaluate=[{"x": 0.5}])
    suggestions = drain(generator)
    assert [(s.config["g"], s.config["x"]) for s in suggestions] == [
        (1, 0.5), (2, 0.5)]


def test_point_with_nested_and_flat_keys():
    config = {"opt": {"lr": space.uniform(0, 1), "m": space.uniform(0, 1)}}
    generator = new_generator(
        config, 2, points_to_evaluate=[{"opt": {"lr": 0.5}},
                                       {"opt/m": 0.75}])
    first, second = drain(generator)
    assert first.config["opt"]["lr"] == 0.5
    assert second.config["opt"]["m"] == 0.75


def test_point_with_unknown_key_rejected():
    generator = BasicVariantGenerator(points_to_evaluate=[{"zz": 1}])
    with pytest.raises(InvalidSearchSpace, match="'zz'"):
        generator.add_configurations({"a": space.uniform(0, 1)}, 1)


def test_point_outside_domain_warns_once(caplog):
    generator = BasicVariantGenerator(points_to_evaluate=[{"a": 5}])
    with caplog.at_level(logging.WARNING, logger="trainable.variants"):
        generator.add_configurations({"a": space.randint(0, 3)}, 2)
        suggestions = drain(generator)
    assert suggestions[0].config == {"a": 5}
    assert caplog.text.count("points_to_evaluate[0] sets 'a' to 5") == 1


def test_points_must_be_dicts():
    with pytest.raises(InvalidConfig, match=r"points_to_evaluate\[1\]"):
        BasicVariantGenerator(points_to_evaluate=[{"a": 1}, 3])


# --------------------------------------------------------------------------
# BasicVariantGenerator: resume.


def _resume(state, config, num_samples, add_first, **kwargs):
    generator = BasicVariantGenerator(**kwargs)
    state = cloudpickle.loads(cloudpickle.dumps(state))
    if add_first:
        generator.add_configurations(config, num_samples)
        generator.set_state(state)
    else:
        generator.set_state(state)
        generator.add_configurations(config, num_samples)
    return generator


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 12), st.booleans(), st.booleans())
def test_resume_continues_exactly(stop_at, add_first, constant):
    points = [{"a": 2, "opt": {"lr": 0.01}}]
    kwargs = {"points_to_evaluate": points, "constant_grid_search": constant}
    reference = drain(new_generator(search_config(), 6, random_state=3,
                                    **kwargs))
    generator = new_generator(search_config(), 6, random_state=3, **kwargs)
    head = drain(generator, limit=stop_at)
    state = generator.get_state()
    resumed = _resume(state, search_config(), 6, add_first, **kwargs)
    tail = drain(resumed)
    assert [s.config for s in head + tail] == [s.config for s in reference]
    assert [s.experiment_tag for s in head + tail] == [
        s.experiment_tag for s in reference]
    assert resumed.is_finished()


def test_resume_without_seed_replays_drawn_seed():
    generator = new_generator(search_config(), 4)
    head = drain(generator, limit=3)
    state = generator.get_state()
    expected = drain(generator)
    resumed = BasicVariantGenerator()
    resumed.set_state(cloudpickle.loads(cloudpickle.dumps(state)))
    assert [s.config for s in drain(resumed)] == [s.config for s in expected]
    assert len(head) == 3


def test_resume_keeps_live_trials_for_max_concurrent():
    generator = new_generator({"a": space.grid_search([1, 2, 3])}, 1,
                              max_concurrent=1)
    assert generator.next_trial("t0") is not None
    resumed = BasicVariantGenerator(max_concurrent=1)
    resumed.set_state(generator.get_state())
    assert resumed.next_trial("t1") is None
    resumed.on_trial_complete("t0")
    assert resumed.next_trial("t1").config == {"a": 2}


def test_state_of_unknown_version_rejected():
    generator = BasicVariantGenerator()
    with pytest.raises(Exception, match="version"):
        generator.set_state({"version": 99})


# --------------------------------------------------------------------------
# Searcher, SearchGenerator, ConcurrencyLimiter.


class ListSearcher(Searcher):
    """Suggests fixed configs in order, then FINISHED; records results."""

    def __init__(self, configs, metric="score", mode="max"):
        super().__init__(metric=metric, mode=mode)
        self.configs = list(configs)
        self.index = 0
        self.completed = []
        self.results = []

    def suggest(self, trial_id):
        if self.index >= len(self.configs):
            return Searcher.FINISHED
        config = self.configs[self.index]
        self.index += 1
        return config

    def on_trial_result(self, trial_id, result):
        self.results.append((trial_id, result))

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.completed.append((trial_id, result, error))

    def get_state(self):
        return {"index": self.index, "completed": self.completed}

    def set_state(self, state):
        self.index = state["index"]
        self.completed = state["completed"]


class NoneSearcher(Searcher):
    def suggest(self, trial_id):
        return None


def new_search_generator(searcher, config, num_samples):
    generator = SearchGenerator(searcher, random_state=0)
    generator.set_search_properties("score", "max", config)
    generator.add_configurations(config, num_samples)
    return generator


def test_search_generator_merges_and_resolves():
    searcher = ListSearcher([{"a": 1, "opt": {"lr": 0.5}}, {"a": 2}])
    config = {"a": space.randint(0, 5), "opt": {"lr": space.uniform(0, 1)},
              "double": space.sample_from(lambda s: s.config.a * 2),
              "k": "const"}
    suggestions = drain(new_search_generator(searcher, config, 10))
    assert len(suggestions) == 2
    first, second = suggestions
    assert first.config == {"a": 1, "opt": {"lr": 0.5}, "double": 2,
                            "k": "const"}
    assert second.config["double"] == 4
    assert 0 <= second.config["opt"]["lr"] < 1
    assert first.experiment_tag == "1_a=1,double=2,lr=0.5"
    assert first.resolved_vars == {"a": 1, "opt/lr": 0.5, "double": 2}


def test_search_generator_stops_at_num_samples():
    searcher = ListSearcher([{"a": i} for i in range(10)])
    generator = new_search_generator(searcher, {"a": 0}, 3)
    assert len(drain(generator)) == 3
    assert generator.is_finished()
    assert searcher.index == 3


def test_search_generator_finished_from_searcher():
    generator = new_search_generator(ListSearcher([{"a": 1}]), {"a": 0}, -1)
    assert len(drain(generator)) == 1
    assert generator.is_finished()


def test_search_generator_none_means_later():
    generator = new_search_generator(NoneSearcher(), {}, 5)
    assert generator.next_trial("t0") is None
    assert not generator.is_finished()


def test_search_generator_forwards_results():
    searcher = ListSearcher([{"a": 1}])
    generator = new_search_generator(searcher, {"a": 0}, 1)
    generator.next_trial("t0")
    generator.on_trial_result("t0", {"score": 1})
    generator.on_trial_complete("t0", {"score": 2}, error=False)
    assert searcher.results == [("t0", {"score": 1})]
    assert searcher.completed == [("t0", {"score": 2}, False)]


def test_search_generator_rejects_grid():
    generator = new_search_generator(ListSearcher([{"a": 1}]),
                                     {"a": 0, "g": space.grid_search([1])}, 1)
    with pytest.raises(InvalidSearchSpace, match="'g'.*choice"):
        generator.next_trial("t0")


def test_search_generator_state_round_trip():
    searcher = ListSearcher([{"a": i} for i in range(4)])
    generator = new_search_generator(searcher, {"a": 0}, 4)
    drain(generator, limit=2)
    state = cloudpickle.loads(cloudpickle.dumps(generator.get_state()))
    fresh = ListSearcher([{"a": i} for i in range(4)])
    resumed = SearchGenerator(fresh)
    resumed.add_configurations({"a": 0}, 4)
    resumed.set_state(state)
    assert [s.config["a"] for s in drain(resumed)] == [2, 3]
    assert drain(resumed) == []


def test_search_generator_without_searcher_state_warns(caplog):
    generator = new_search_generator(NoneSearcher(), {}, 1)
    with caplog.at_level(logging.WARNING):
        state = generator.get_state()
    assert state["searcher"] is None
    assert "get_state" in caplog.text


def test_search_generator_requires_searcher():
    with pytest.raises(InvalidConfig, match="Searcher"):
        SearchGenerator(object())


def test_searcher_mode_checked():
    with pytest.raises(InvalidConfig, match="'maximum'"):
        ListSearcher([], mode="maximum")


def test_searcher_save_and_restore(tmp_path):
    searcher = ListSearcher([{"a": 1}, {"a": 2}])
    searcher.suggest("t0")
    path = str(tmp_path / "searcher.pkl")
    searcher.save(path)
    restored = ListSearcher([{"a": 1}, {"a": 2}])
    restored.restore(path)
    assert restored.suggest("t1") == {"a": 2}


def test_concurrency_limiter():
    searcher = ListSearcher([{"a": i} for i in range(5)])
    limiter = ConcurrencyLimiter(searcher, max_concurrent=2)
    assert limiter.suggest("t0") == {"a": 0}
    assert limiter.suggest("t1") == {"a": 1}
    assert limiter.suggest("t2") is None
    limiter.on_trial_complete("t0", {"score": 1})
    assert limiter.suggest("t2") == {"a": 2}
    assert searcher.completed == [("t0", {"score": 1}, False)]
    assert limiter.metric == "score"


def test_concurrency_limiter_batch():
    searcher = ListSearcher([{"a": i} for i in range(5)])
    limiter = ConcurrencyLimiter(searcher, max_concurrent=2, batch=True)
    limiter.suggest("t0")
    limiter.suggest("t1")
    limiter.on_trial_complete("t0")
    assert limiter.suggest("t2") is None
    limiter.on_trial_complete("t1")
    assert limiter.suggest("t2") == {"a": 2}


def test_concurrency_limiter_checks_limit():
    with pytest.raises(InvalidConfig, match="0"):
        ConcurrencyLimiter(ListSearcher([]), max_concurrent=0)


def test_search_algorithm_defaults():
    algorithm = SearchAlgorithm()
    assert algorithm.set_search_properties("m", "max", {})
    assert not algorithm.is_finished()
    algorithm.set_finished()
    assert algorithm.is_finished()
    restored = SearchAlgorithm()
    restored.set_state(algorithm.get_state())
    assert restored.is_finished()


# --------------------------------------------------------------------------
# OptunaSearch.


def test_optuna_missing_gives_install_hint(monkeypatch):
    from trainable.search.optuna import OptunaSearch

    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ImportError, match=r"pip install trainable\[optuna\]"):
        OptunaSearch()


@pytest.fixture
def optuna():
    module = pytest.importorskip("optuna")
    module.logging.set_verbosity(module.logging.WARNING)
    return module


def test_optuna_converts_bounds(optuna):
    from trainable.search.optuna import OptunaSearch

    distributions = OptunaSearch.convert_search_space({
        "randint": space.randint(0, 3),
        "qrandint": space.qrandint(1, 10, 3),
        "lograndint": space.lograndint(1, 100),
        "uniform": space.uniform(0, 1),
        "quniform": space.quniform(0.1, 1.0, 0.25),
        "loguniform": space.loguniform(1e-4, 1e-1),
        "choice": space.choice(["a", "b"]),
        "nested": {"x": space.randint(5, 6)},
        "fn": space.sample_from(lambda s: 1),
        "const": 3,
    })
    dist = optuna.distributions
    assert distributions["randint"] == dist.IntDistribution(0, 2)
    assert distributions["qrandint"] == dist.IntDistribution(3, 9, step=3)
    assert distributions["lograndint"] == dist.IntDistribution(1, 99,
                                                               log=True)
    assert distributions["uniform"] == dist.FloatDistribution(0, 1)
    assert distributions["quniform"] == dist.FloatDistribution(
        0.25, 1.0, step=0.25)
    assert distributions["loguniform"] == dist.FloatDistribution(
        1e-4, 1e-1, log=True)
    assert distributions["choice"] == dist.CategoricalDistribution(
        ["a", "b"])
    assert distributions["nested/x"] == dist.IntDistribution(5, 5)
    assert "fn" not in distributions
    assert "const" not in distributions


@pytest.mark.parametrize("domain, message", [
    (space.randn(0, 1), "normal"),
    (space.qrandn(0, 1, 0.5), "normal"),
    (space.grid_search([1, 2]), "grid_search"),
])
def test_optuna_rejects_unsupported(optuna, domain, message):
    from trainable.search.optuna import OptunaSearch

    with pytest.raises(InvalidSearchSpace, match=message):
        OptunaSearch.convert_search_space({"p": domain})


def _run_optuna(searcher, config, num_samples, score):
    generator = SearchGenerator(searcher)
    generator.set_search_properties("score", "max", config)
    generator.add_configurations(config, num_samples)
    suggestions = []
    for index in range(num_samples):
        trial_id = f"t{index}"
        suggestion = generator.next_trial(trial_id)
        suggestions.append(suggestion)
        result = {"score": score(suggestion.config), "training_iteration": 1}
        generator.on_trial_result(trial_id, result)
        generator.on_trial_complete(trial_id, result)
    assert generator.is_finished()
    return suggestions


def test_optuna_randint_keeps_upper_exclusive(optuna):
    from trainable.search.optuna import OptunaSearch

    suggestions = _run_optuna(OptunaSearch(seed=0), {"b": space.randint(0, 3)},
                              60, lambda c: c["b"])
    got = {s.config["b"] for s in suggestions}
    assert got <= {0, 1, 2}
    assert max(got) == 2


def test_optuna_quantized_values_on_grid(optuna):
    from trainable.search.optuna import OptunaSearch

    config = {
        "q": space.qrandint(1, 10, 3),
        "ql": space.qloguniform(1e-3, 1.0, 1e-3),
        "qli": space.qlograndint(1, 100, 5),
        "qu": space.quniform(0.1, 0.9, 0.1),
        "c": space.choice([[1], {"x": 2}]),
        "twice": space.sample_from(lambda s: s.config.q * 2),
    }
    suggestions = _run_optuna(OptunaSearch(seed=1), config, 30,
                              lambda c: c["q"])
    tenths = {round(0.1 * k, 1) for k in range(1, 10)}
    for suggestion in suggestions:
        c = suggestion.config
        assert c["q"] in (3, 6, 9)
        assert 1e-3 <= c["ql"] <= 1.0
        assert c["ql"] == round(c["ql"], 3)
        assert c["qli"] % 5 == 0
        assert 5 <= c["qli"] <= 100
        assert c["qu"] in tenths
        assert c["c"] in ([1], {"x": 2})
        assert c["twice"] == c["q"] * 2


def test_optuna_points_to_evaluate_first(optuna):
    from trainable.search.optuna import OptunaSearch

    searcher = OptunaSearch(
        space={"a": space.uniform(0, 1), "c": space.choice([[1], [2]])},
        metric="score", mode="max",
        points_to_evaluate=[{"a": 0.5, "c": [2]}], seed=0)
    assert searcher.suggest("t0") == {"a": 0.5, "c": [2]}


def test_optuna_own_space_wins_over_config(optuna):
    from trainable.search.optuna import OptunaSearch

    searcher = OptunaSearch(space={"a": space.uniform(0, 1)}, seed=0)
    accepted = searcher.set_search_properties(
        "score", "max", {"a": space.uniform(5, 6)})
    assert not accepted
    assert searcher.metric == "score"
    assert searcher.mode == "max"
    assert 0 <= searcher.suggest("t0")["a"] < 1


def test_optuna_define_by_run(optuna):
    from trainable.search.optuna import OptunaSearch

    def define(trial):
        trial.suggest_int("n", 1, 3)
        return {"fixed": 5}

    searcher = OptunaSearch(space=define, metric="score", mode="min",
                            seed=0)
    config = searcher.suggest("t0")
    assert config["fixed"] == 5
    assert 1 <= config["n"] <= 3
    searcher.on_trial_complete("t0", {"score": 1.0})


def test_optuna_needs_metric_and_mode(optuna):
    from trainable.search.optuna import OptunaSearch

    searcher = OptunaSearch(space={"a": space.uniform(0, 1)})
    with pytest.raises(InvalidConfig, match="metric"):
        searcher.suggest("t0")


def test_optuna_error_and_missing_metric_states(optuna):
    from trainable.search.optuna import OptunaSearch

    searcher = OptunaSearch(space={"a": space.uniform(0, 1)},
                            metric="score", mode="max", seed=0)
    searcher.suggest("t0")
    searcher.suggest("t1")
    searcher.on_trial_complete("t0", None, error=True)
    searcher.on_trial_complete("t1", {"other": 1})
    states = [trial.state for trial in searcher._study.trials]
    TrialState = optuna.trial.TrialState
    assert states == [TrialState.FAIL, TrialState.PRUNED]


def test_optuna_state_round_trip(optuna):
    from trainable.search.optuna import OptunaSearch

    searcher = OptunaSearch(space={"a": space.randint(0, 3)},
                            metric="score", mode="max", seed=0)
    searcher.suggest("t0")
    searcher.on_trial_complete("t0", {"score": 1})
    searcher.suggest("t1")
    state = cloudpickle.loads(cloudpickle.dumps(searcher.get_state()))
    restored = OptunaSearch()
    restored.set_state(state)
    restored.on_trial_complete("t1", {"score": 2})
    restored.suggest("t2")
    assert len(restored._study.trials) == 3
    assert restored._study.best_value == 2


def test_optuna_define_by_run_adds_keys(optuna):
    from trainable.search.optuna import OptunaSearch

    def define(trial):
        trial.suggest_float("lr", 1e-3, 1e-1, log=True)

    suggestions = _run_optuna(OptunaSearch(space=define, seed=0),
                              {"const": 1}, 3, lambda c: -c["lr"])
    for suggestion in suggestions:
        assert 1e-3 <= suggestion.config["lr"] <= 1e-1
        assert suggestion.config["const"] == 1
