"""Tests of grid expansion and sample_from resolution in trainable.variants."""

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

import trainable.space as space
import trainable.variants as variants
from trainable.errors import InvalidSearchSpace


def _configs(spec, **kwargs):
    return [
        resolved["config"]
        for _, resolved in variants.generate_variants(spec, **kwargs)
    ]


# --------------------------------------------------------------------------
# Grids.


def test_grid_first_sorted_key_varies_fastest():
    spec = {"config": {
        "b": space.grid_search([1, 2]),
        "a": space.grid_search(["x", "y"]),
    }}
    order = [(c["a"], c["b"]) for c in _configs(spec)]
    assert order == [("x", 1), ("y", 1), ("x", 2), ("y", 2)]


@given(st.lists(st.integers(1, 4), min_size=0, max_size=4))
def test_grid_product_size_and_uniqueness(sizes):
    config = {
        f"k{i}": space.grid_search(list(range(size)))
        for i, size in enumerate(sizes)
    }
    configs = _configs({"config": config})
    expected = 1
    for size in sizes:
        expected *= size
    assert len(configs) == expected
    assert variants.count_variants({"config": config}) == expected
    assert len({tuple(sorted(c.items())) for c in configs}) == expected


def test_nested_grid_inside_grid_value():
    config = {"model": space.grid_search([
        {"type": "a"},
        {"type": "b", "depth": space.grid_search([1, 2])},
    ])}
    configs = _configs({"config": config})
    assert configs == [
        {"model": {"type": "a"}},
        {"model": {"type": "b", "depth": 1}},
        {"model": {"type": "b", "depth": 2}},
    ]
    assert variants.count_variants(config) == 3


def test_grid_in_list_and_nested_dict():
    config = {"layers": [space.grid_search([8, 16]), 4],
              "opt": {"lr": space.grid_search([0.1, 0.2])}}
    configs = _configs({"config": config})
    assert len(configs) == 4
    assert {c["layers"][0] for c in configs} == {8, 16}
    assert all(c["layers"][1] == 4 for c in configs)


def test_grid_written_as_plain_dict():
    config = {"a": {"grid_search": [1, 2, 3]}}
    configs = _configs({"config": config})
    assert [c["a"] for c in configs] == [1, 2, 3]


def test_categorical_grid_domain_is_grid():
    config = {"a": space.Categorical([1, 2]).grid()}
    assert [c["a"] for c in _configs({"config": config})] == [1, 2]


def test_empty_hand_written_grid_rejected():
    with pytest.raises(InvalidSearchSpace, match="'a'"):
        list(variants.generate_variants({"a": {"grid_search": []}}))


def test_grid_values_copied_per_variant():
    shared = {"inner": space.uniform(0, 1)}
    config = {"g": space.grid_search([shared]), "n": space.grid_search([1, 2])}
    configs = _configs({"config": config}, random_state=0)
    assert configs[0]["g"] is not configs[1]["g"]
    assert configs[0]["g"]["inner"] != configs[1]["g"]["inner"]
    assert isinstance(shared["inner"], space.Domain)


# --------------------------------------------------------------------------
# Sampling and reproducibility.


def test_input_spec_not_changed():
    config = {"a": space.uniform(0, 1), "b": [space.choice([1, 2])]}
    spec = {"config": config}
    list(variants.generate_variants(spec, random_state=0))
    assert isinstance(config["a"], space.Domain)
    assert isinstance(config["b"][0], space.Domain)


def test_seed_makes_variants_reproducible():
    spec = {"config": {"a": space.uniform(0, 1),
                       "g": space.grid_search([1, 2, 3])}}
    first = _configs(spec, random_state=42)
    second = _configs(spec, random_state=42)
    third = _configs(spec, random_state=43)
    assert first == second
    assert first != third


def test_each_grid_point_samples_anew():
    spec = {"config": {"a": space.uniform(0, 1),
                       "g": space.grid_search([1, 2, 3])}}
    values = [c["a"] for c in _configs(spec, random_state=0)]
    assert len(set(values)) == 3


def test_constant_grid_search_keeps_samples():
    spec = {"config": {
        "a": space.uniform(0, 1),
        "g": space.grid_search([1, 2, 3]),
        "per_point": space.sample_from(lambda s: s.config.g * 10),
    }}
    configs = _configs(spec, constant_grid_search=True, random_state=0)
    assert len({c["a"] for c in configs}) == 1
    assert [c["per_point"] for c in configs] == [10, 20, 30]


def test_resolved_vars_hold_only_varied_values():
    spec = {"config": {"a": space.grid_search([1]), "b": space.randint(0, 5),
                       "c": 7, "d": {"e": space.choice(["x"])}}}
    (resolved_vars, _), = list(variants.generate_variants(spec))
    assert set(resolved_vars) == {("config", "a"), ("config", "b"),
                                  ("config", "d", "e")}


def test_choice_of_domains_is_sampled_again():
    config = {"a": space.choice([space.uniform(10, 11)])}
    (value,) = [c["a"] for c in _configs({"config": config})]
    assert 10 <= value < 11


def test_choice_holding_grid_rejected():
    config = {"a": space.choice([space.grid_search([1, 2])])}
    with pytest.raises(InvalidSearchSpace, match="grid_search must be"):
        list(variants.generate_variants({"config": config}))


# --------------------------------------------------------------------------
# sample_from resolution.


def test_sample_from_dependencies_case():
    config = {
        "method": space.grid_search(["sgd", "adam"]),
        "alpha": space.uniform(1, 2),
        "beta": space.sample_from(lambda spec: spec.config.alpha * 10),
        "opt": {"lr": space.sample_from(
            lambda spec: 0.1 if spec.config.method == "sgd" else 0.001)},
        "gamma": space.sample_from(lambda spec: spec.config.opt.lr * 2),
    }
    configs = []
    for _ in range(3):
        configs += _configs({"config": config})
    assert len(configs) == 6
    for c in configs:
        assert abs(c["beta"] - c["alpha"] * 10) < 1e-9
        assert c["opt"]["lr"] == (0.1 if c["method"] == "sgd" else 0.001)
        assert c["gamma"] == c["opt"]["lr"] * 2


def test_dependency_declared_before_its_source():
    # "a" sorts and is listed first but needs "z", which needs "y".
    config = {
        "a": space.sample_from(lambda spec: spec.config.z + 1),
        "z": space.sample_from(lambda spec: spec["config"]["y"] * 2),
        "y": space.sample_from(lambda spec: spec.config.x + 1),
        "x": space.randint(0, 10),
    }
    (c,) = _configs({"config": config})
    assert c["y"] == c["x"] + 1
    assert c["z"] == c["y"] * 2
    assert c["a"] == c["z"] + 1


def test_item_and_attribute_access_agree():
    config = {"opt": {"lr": 0.5, "layers": [3, 4]},
              "a": space.sample_from(lambda spec: (
                  spec["config"]["opt"]["lr"], spec.config.opt.lr,
                  spec.config.opt.layers[1], spec.config.opt.get("lr"),
                  spec.config.opt.get("missing", "d")))}
    (c,) = _configs({"config": config})
    assert c["a"] == (0.5, 0.5, 4, 0.5, "d")


def test_function_reading_list_item_waits_for_it():
    config = {"layers": [space.sample_from(lambda s: s.config.n), 2],
              "n": space.randint(5, 6),
              "total": space.sample_from(
                  lambda s: sum(s.config.layers))}
    (c,) = _configs({"config": config})
    assert c["layers"] == [5, 2]
    assert c["total"] == 7


def test_function_returning_subtree_gets_resolved_values():
    config = {"opt": {"lr": space.uniform(0, 1)},
              "copy": space.sample_from(lambda s: s.config.opt)}
    (c,) = _configs({"config": config})
    assert c["copy"] == c["opt"]
    assert type(c["copy"]) is dict


def test_circular_dependency_names_keys():
    config = {"a": space.sample_from(lambda s: s.config.b),
              "b": space.sample_from(lambda s: s.config.a),
              "c": space.sample_from(lambda s: 1)}
    with pytest.raises(InvalidSearchSpace) as info:
        list(variants.generate_variants({"config": config}))
    message = str(info.value)
    assert "'a' reads 'b'" in message
    assert "'b' reads 'a'" in message
    assert "circular" in message
    assert "'c'" not in message


def test_self_dependency_names_key():
    config = {"opt": {"x": space.sample_from(lambda s: s.config.opt.x)}}
    with pytest.raises(InvalidSearchSpace, match="'opt/x' reads 'opt/x'"):
        list(variants.generate_variants({"config": config}))


def test_broad_except_cannot_hide_dependency():
    def careless(spec):
        try:
            return spec.config.b + 1
        except Exception:
            return -1

    config = {"a": space.sample_from(careless),
              "b": space.sample_from(lambda s: 10)}
    (c,) = _configs({"config": config})
    assert c["a"] == 11


def test_sample_from_returning_grid_rejected():
    config = {"a": space.sample_from(
        lambda s: space.grid_search([1, 2]))}
    with pytest.raises(InvalidSearchSpace) as info:
        list(variants.generate_variants({"config": config}))
    message = str(info.value)
    assert "'a'" in message
    assert "not supported" in message
    assert "top level" in message


def test_sample_from_returning_domain_is_sampled():
    config = {"a": space.sample_from(lambda s: space.randint(3, 4)),
              "b": space.sample_from(lambda s: {"x": space.choice(["y"])})}
    (c,) = _configs({"config": config})
    assert c == {"a": 3, "b": {"x": "y"}}


def test_missing_key_error_names_key_and_path():
    config = {"a": space.sample_from(lambda s: s.config.nope)}
    with pytest.raises(InvalidSearchSpace) as info:
        list(variants.generate_variants({"config": config}))
    message = str(info.value)
    assert "'a'" in message
    assert "'nope'" in message


def test_error_in_function_names_path():
    config = {"opt": {"lr": space.sample_from(lambda s: 1 / 0)}}
    with pytest.raises(InvalidSearchSpace, match="opt/lr.*ZeroDivision"):
        list(variants.generate_variants({"config": config}))


def test_bare_lambda_is_sample_from():
    config = {"a": 2, "b": lambda spec: spec.config.a * 3}
    (c,) = _configs({"config": config})
    assert c["b"] == 6
    assert variants.has_unresolved_values(config)


def test_function_constant_kept_via_sample_from():
    def helper(x):
        return x

    config = {"f": space.sample_from(lambda s: helper), "g": len}
    (c,) = _configs({"config": config})
    assert c["f"] is helper
    assert c["g"] is len


def test_two_argument_function_stays_constant():
    def loss(prediction, target):
        return prediction - target

    (c,) = _configs({"config": {"loss": loss}})
    assert c["loss"] is loss


def test_zero_argument_function():
    (c,) = _configs({"config": {"a": space.sample_from(lambda: 4)}})
    assert c["a"] == 4


# --------------------------------------------------------------------------
# Helpers.


def test_format_vars():
    resolved = {("config", "a"): 1, ("config", "opt", "b"): 0.123456789,
                ("config", "layers", 0): 8, ("config", "p"): "x/y"}
    assert variants.format_vars(resolved) == (
        "a=1,layers_0=8,b=0.12346,p=x_y")


def test_flatten_resolved_vars():
    resolved = {("config", "opt", "lr"): 0.1, ("config", "l", 0): 2}
    assert variants.flatten_resolved_vars(resolved) == {
        "opt/lr": 0.1, "l/0": 2}


def test_has_unresolved_values():
    assert not variants.has_unresolved_values({"a": 1, "b": [1, {"c": 2}]})
    assert variants.has_unresolved_values({"b": [1, {"c": space.randn()}]})
    assert variants.has_unresolved_values({"g": space.grid_search([1])})


def test_assign_value_rebuilds_tuple():
    spec = {"t": (1, 2, 3)}
    variants.assign_value(spec, ("t", 1), 9)
    assert spec["t"] == (1, 9, 3)


def test_tuple_with_domain_resolved():
    (c,) = _configs({"config": {"t": (1, space.choice([5]))}})
    assert c["t"] == (1, 5)


def test_apply_preset_nested_and_flat_keys():
    config = {"a": space.uniform(0, 1), "opt": {"lr": space.uniform(0, 1)},
              "l": [space.randint(0, 3)]}
    paths = variants.apply_preset(
        config, {"a": 0.5, "opt": {"lr": 0.2}, "l/0": 1})
    assert config == {"a": 0.5, "opt": {"lr": 0.2}, "l": [1]}
    assert paths == [("a",), ("opt", "lr"), ("l", 0)]


def test_apply_preset_unknown_key_rejected():
    with pytest.raises(InvalidSearchSpace, match="'b'.*not a key"):
        variants.apply_preset({"a": 1}, {"b": 2})


def test_apply_preset_warns_outside_domain(caplog):
    with caplog.at_level(logging.WARNING, logger="trainable.variants"):
        variants.apply_preset({"a": space.randint(0, 3)}, {"a": 3})
    assert "'a' to 3" in caplog.text


def test_parse_spec_vars():
    spec = {"a": 1, "b": space.uniform(0, 1),
            "c": space.grid_search([1, 2]), "d": lambda s: 1}
    resolved, domains, grids = variants.parse_spec_vars(spec)
    assert resolved == [(("a",), 1)]
    assert [path for path, _ in domains] == [("b",), ("d",)]
    assert grids[0][0] == ("c",)
    assert grids[0][1].is_grid()


def test_function_returning_itself_stops():
    looping = space.sample_from(lambda s: looping)
    with pytest.raises(InvalidSearchSpace, match="'a'.*still unresolved"):
        list(variants.generate_variants({"config": {"a": looping}}))


def test_apply_preset_adds_missing_keys_on_request():
    config = {"opt": {"lr": space.uniform(0, 1)}}
    paths = variants.apply_preset(
        config, {"opt": {"m": 0.9}, "new/deep": 1, "top": {"x": 2}},
        add_missing=True)
    assert config["opt"]["m"] == 0.9
    assert config["new"] == {"deep": 1}
    assert config["top"] == {"x": 2}
    assert paths == [("opt", "m"), ("new", "deep"), ("top",)]
