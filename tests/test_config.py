import json

import pytest
import yaml
from hypothesis import assume, given, settings, strategies as st

import pruner_iface as pi
from pruner_iface.errors import ConfigError, UnknownNameError

BASE = {"target": "element", "metric": "l1", "objective": {"name": "sparsity", "target": 0.5}}

targets = st.one_of(
    st.just("element"), st.just("channel-local"),
    st.builds(lambda n, m: {"name": "block", "block": [n, m]}, st.integers(1, 8), st.integers(1, 8)),
    st.integers(2, 8).flatmap(lambda m: st.builds(lambda n: {"name": "n:m", "n": n, "m": m}, st.integers(1, m - 1))),
)
metrics = st.one_of(st.sampled_from(["l1", "l2", "random", "gradient", "taylor", "snip", "snip_momentum"]),
                    st.builds(lambda r: {"name": "l2", "reduce": r}, st.sampled_from(["sum", "mean", "max"])))
allocators = st.one_of(st.sampled_from(["uniform", "global"]),
                       st.builds(lambda lo, span: {"name": "global", "min_ratio": lo, "max_ratio": min(1.0, lo + span)},
                                 st.floats(0, 0.5), st.floats(0.01, 0.5)))
schedulers = st.one_of(
    st.just("one-pass"),
    st.builds(lambda name, s, n, f: {"name": name, "start": s, "end": s + n, "frequency": f},
              st.sampled_from(["agp", "linear"]), st.integers(0, 50), st.integers(0, 50), st.integers(1, 5)),
    st.builds(lambda c: {"name": "decay", "curve": c, "end": 10}, st.sampled_from(["exp", "cos", "cube", "linear"])),
)
objectives = st.one_of(
    st.builds(lambda t: {"name": "sparsity", "target": t}, st.floats(0.0, 0.49)),
    st.builds(lambda n, t: {"name": n, "target": t}, st.sampled_from(["params", "flops"]), st.floats(0.05, 1.0)),
)


@settings(max_examples=60, deadline=None)
@given(target=targets, metric=metrics, allocator=allocators, scheduler=schedulers, objective=objectives,
       include=st.one_of(st.none(), st.lists(st.sampled_from(["fc.*", "conv[0-9]", "layer1\\..*"]), max_size=2)))
def test_config_round_trips_through_yaml_and_json(target, metric, allocator, scheduler, objective, include):
    if isinstance(target, dict) and target["name"] == "n:m" and objective["name"] == "sparsity":
        assume(objective["target"] <= (target["m"] - target["n"]) / target["m"])
    cfg = pi.PrunerConfig.from_dict(dict(target=target, metric=metric, allocator=allocator, scheduler=scheduler,
                                         objective=objective, include=include))
    again = pi.PrunerConfig.from_dict(yaml.safe_load(cfg.to_yaml()))
    assert again == cfg
    assert pi.PrunerConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_config_file_loading(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(BASE))
    assert pi.PrunerConfig.from_file(path).target == "element"
    bad = tmp_path / "bad.yaml"
    bad.write_text("target: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        pi.PrunerConfig.from_file(bad)
    with pytest.raises(ConfigError, match="cannot be read"):
        pi.PrunerConfig.from_file(tmp_path / "missing.yaml")


@pytest.mark.parametrize("change, exc, pattern", [
    ({"targte": "element"}, ConfigError, r"config: unknown key\(s\) 'targte'"),
    ({"metric": "l3"}, UnknownNameError, r"metric: unknown metric 'l3'.*Did you mean"),
    ({"objective": {"name": "sparsity", "target": 1.0}}, ConfigError, r"objective\.target"),
    ({"target": {"name": "n:m", "n": 4, "m": 2}}, ConfigError, r"target\.n: must satisfy 1 <= n < m"),
    ({"target": {"name": "block", "block": [0, 4]}}, ConfigError, r"target\.block: must be two positive integers"),
    ({"target": {"name": "block", "remainder": "pad"}}, ConfigError, r"target\.remainder: 'pad' is not one of"),
    ({"allocator": {"name": "uniform", "min_ratio": -0.1}}, ConfigError, r"allocator\.min_ratio"),
    ({"scheduler": {"name": "table", "table": {"x": 0.5}}}, ConfigError, r"scheduler\.table: step 'x'"),
    ({"include": "fc1"}, ConfigError, r"config\.include: must be a list"),
    ({"speed_up": "yes"}, ConfigError, r"config\.speed_up"),
])
def test_validation_errors_name_the_key_path(change, exc, pattern):
    with pytest.raises(exc, match=pattern):
        pi.PrunerConfig.from_dict({**BASE, **change})


def test_missing_required_part_is_named():
    with pytest.raises(ConfigError, match="missing required key"):
        pi.PrunerConfig.from_dict({"target": "element"})
