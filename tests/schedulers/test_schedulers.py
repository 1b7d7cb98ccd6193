import pytest
from hypothesis import given, settings, strategies as st

import pruner_iface as pi
from pruner_iface.errors import ConfigError

VECTORS = {  # s_i = 0, s_f = 0.9, K = 10 (reference test vectors of the original implementations)
    5: {"agp": 0.7875, "cube": 0.1125, "exp": 0.6838, "cos": 0.2636, "linear": 0.45},
    8: {"agp": 0.8928, "cube": 0.4608, "exp": 0.8415, "cos": 0.6219, "linear": 0.72},
}


def plan(spec, target=0.9, objective="sparsity"):
    obj = pi.OBJECTIVES.build({"name": objective, "target": target})
    return pi.SCHEDULERS.build(spec).plan(obj)


def scheduler_spec(curve):
    if curve in ("agp", "linear"):
        return {"name": curve, "start": 0, "end": 10}
    return {"name": "decay", "curve": curve, "start": 0, "end": 10}


@pytest.mark.parametrize("k", [5, 8])
@pytest.mark.parametrize("curve", ["agp", "cube", "exp", "cos", "linear"])
def test_curves_match_reference_vectors(curve, k):
    values = dict(plan(scheduler_spec(curve)))
    assert values[k] == pytest.approx(VECTORS[k][curve], abs=5e-5)


def test_cube_is_slow_start_and_agp_fast_start():
    agp, cube = dict(plan(scheduler_spec("agp"))), dict(plan(scheduler_spec("cube")))
    assert agp[2] > 0.4 > 0.01 > cube[2]


def test_inc_step_counting_with_frequency():
    steps = [s for s, _ in plan({"name": "linear", "start": 2, "end": 11, "frequency": 3})]
    assert steps == [2, 5, 8, 11]  # K = (end - start + frequency)//frequency - 1 = 3


def test_one_pass_and_start_equal_end_prune_once_to_target():
    assert plan("one-pass") == [(0, 0.9)]
    assert plan({"name": "agp", "start": 4, "end": 4}) == [(4, 0.9)]


def test_budget_objectives_schedule_from_dense_down_to_budget():
    values = [v for _, v in plan({"name": "agp", "start": 0, "end": 3}, target=0.5, objective="flops")]
    assert values[0] == 1.0 and values[-1] == 0.5 and values == sorted(values, reverse=True)
    exp = [v for _, v in plan({"name": "decay", "curve": "exp", "end": 2}, target=0.25, objective="params")]
    assert exp == pytest.approx([1.0, 0.5, 0.25])  # budget shrinks geometrically


def test_table_schedule_accepts_string_steps_and_checks_target():
    assert plan({"name": "table", "table": {"10": 0.5, "20": 0.8}}, target=0.8) == [(10, 0.5), (20, 0.8)]
    with pytest.raises(ConfigError, match="ends at 0.8 but the objective target is 0.9"):
        plan({"name": "table", "table": {10: 0.5, 20: 0.8}}, target=0.9)
    with pytest.raises(ConfigError, match="monotonically"):
        plan({"name": "table", "table": {10: 0.8, 20: 0.5}}, target=0.5)
    with pytest.raises(ConfigError, match="sparsity must be in"):
        plan({"name": "table", "table": {10: 1.5}}, target=0.9)


@pytest.mark.parametrize("bad, key", [({"start": -1}, "start"), ({"start": 5, "end": 2}, "end"),
                                      ({"frequency": 0}, "frequency"), ({"curve": "square"}, "curve")])
def test_invalid_scheduler_options_name_their_key(bad, key):
    with pytest.raises(ConfigError, match=rf"scheduler\.{key}"):
        pi.SCHEDULERS.build({"name": "decay", **bad}, "scheduler")


@settings(max_examples=60, deadline=None)
@given(curve=st.sampled_from(["agp", "cube", "exp", "cos", "linear"]), start=st.integers(0, 20),
       length=st.integers(0, 40), frequency=st.integers(1, 7), final=st.floats(0.01, 0.99),
       initial_frac=st.floats(0.0, 1.0), objective=st.sampled_from(["sparsity", "flops"]))
def test_schedules_are_monotone_and_reach_final_value_at_end(curve, start, length, frequency, final,
                                                             initial_frac, objective):
    obj = pi.OBJECTIVES.build({"name": objective, "target": final})
    dense = obj.dense_value
    initial = dense + (final - dense) * initial_frac
    spec = {**scheduler_spec(curve), "start": start, "end": start + length, "frequency": frequency,
            "initial": initial}
    p = pi.SCHEDULERS.build(spec).plan(obj)
    amounts = [obj.to_amount(v) for _, v in p]
    assert all(b >= a - 1e-12 for a, b in zip(amounts, amounts[1:]))
    assert p[-1][1] == final and p[-1][0] <= start + length
    assert [s for s, _ in p] == list(range(start, start + length + 1, frequency))


def test_start_without_end_means_one_step_at_start():
    assert plan({"name": "one-pass", "start": 5}) == [(5, 0.9)]
    assert plan({"name": "agp", "start": 5}) == [(5, 0.9)]
