import pytest
from dataclasses import dataclass

import pruner_iface as pi
from pruner_iface.errors import ConfigError, UnknownNameError
from pruner_iface.metrics import Metric
from pruner_iface.registry import Registry


def test_unknown_name_lists_known_names_and_closest_match():
    with pytest.raises(UnknownNameError) as err:
        pi.METRICS.get("l11")
    msg = str(err.value)
    assert "Did you mean 'l1'?" in msg and "gradient" in msg and "taylor" in msg


def test_build_accepts_name_dict_and_instance():
    a = pi.ALLOCATORS.build("uniform")
    b = pi.ALLOCATORS.build({"name": "uniform", "max_ratio": 0.5})
    assert b.max_ratio == 0.5 and pi.ALLOCATORS.build(b) is b and type(a) is type(b)


def test_build_rejects_unknown_option_with_key_path():
    with pytest.raises(ConfigError, match=r"allocator: unknown option\(s\) 'max_ratoi' for 'uniform'; allowed: min_ratio, max_ratio"):
        pi.ALLOCATORS.build({"name": "uniform", "max_ratoi": 0.5})


def test_build_prefixes_validation_errors_with_key_path():
    with pytest.raises(ConfigError, match=r"^allocator\.max_ratio: must be in \(0, 1\]"):
        pi.ALLOCATORS.build({"name": "global", "max_ratio": 1.5})


def test_dict_spec_without_name_is_rejected():
    with pytest.raises(ConfigError, match="needs a 'name' key"):
        pi.TARGETS.build({"block": [4, 1]}, "target")


def test_decorator_registers_a_third_party_metric_usable_by_name():
    registry = Registry("metric", Metric)

    @registry.register("ones")
    @dataclass
    class Ones(Metric):
        def element_scores(self, layer):
            return layer.weight.detach() * 0 + 1

    assert registry.names() == ["ones"] and isinstance(registry.build("ones"), Ones)
    with pytest.raises(TypeError):
        registry.register("bad")(int)


def test_plugins_load_from_entry_point_group(monkeypatch):
    from pruner_iface import registry as reg

    loaded = []

    class FakeEntryPoint:
        name, value = "fake", "fake_pkg:register"

        def load(self):
            return lambda: loaded.append(True)

    monkeypatch.setattr(reg, "_plugins_loaded", False)
    monkeypatch.setattr(reg.metadata, "entry_points", lambda group: [FakeEntryPoint()] if group == reg.PLUGIN_GROUP else [])
    pi.METRICS.names()
    assert loaded == [True]


def test_broken_plugin_warns_and_does_not_break_lookup(monkeypatch):
    from pruner_iface import registry as reg

    class Broken:
        name, value = "broken", "nowhere:x"

        def load(self):
            raise ImportError("no module nowhere")

    monkeypatch.setattr(reg, "_plugins_loaded", False)
    monkeypatch.setattr(reg.metadata, "entry_points", lambda group: [Broken()])
    with pytest.warns(UserWarning, match="plugin 'broken'"):
        assert "l1" in pi.METRICS.names()


def test_registering_a_taken_name_with_another_class_fails():
    with pytest.raises(ConfigError, match="already registered"):
        @pi.register_metric("l1")
        @dataclass
        class Other(Metric):
            def element_scores(self, layer):
                return layer.weight
