"""Latency tables: measured points, the separable prediction, and the on-disk cache."""
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import pruner_iface as pi
from pruner_iface.latency_table import Curves, LatencyTable, candidate_counts, signature_of


def test_candidate_counts_straddle_every_block_boundary():
    points = candidate_counts(64, block=8, max_points=16)
    assert points[0] == 1 and points[-1] == 64
    for c in range(8, 64, 8):
        assert c in points and c + 1 in points  # the last count of a block and the first of the next


def test_candidate_counts_stay_few_for_wide_ops():
    points = candidate_counts(1536, block=8, max_points=16)
    assert len(points) <= 2 * 16 + 2 and all(p % 8 in (0, 1) for p in points[1:-1])


def test_separable_prediction_uses_both_axes():
    curves = Curves([1, 8, 9, 16], [1.0, 2.0, 3.0, 4.0], [1, 16], [2.0, 4.0], block=8)
    assert curves.predict(16, 16) == pytest.approx(4.0)
    # 12 is off the block: the smooth part between 8 (2.0) and 16 (4.0), plus the tail 9 measured
    # over its smooth part (3.0 - 2.25)
    assert curves.predict(16, 12) == pytest.approx(3.0 + 0.75)
    assert curves.predict(16, 8) == pytest.approx(2.0) and curves.predict(16, 9) == pytest.approx(3.0)  # the step
    assert curves.predict(1, 16) == pytest.approx(4.0 * 2.0 / 4.0)
    np.testing.assert_allclose(curves.predict(np.array([16, 16]), np.array([16, 8])), [4.0, 2.0])


def test_staircase_makes_every_block_multiple_cheap_not_only_measured_ones():
    # a wide op measured every 4 blocks of 8: true cost 1 per 8 channels plus a 0.5 tail off the block
    def true(c):
        return c / 8 + 0.5 * (c % 8 != 0)

    points = candidate_counts(256, block=8, max_points=8)
    assert 40 not in points and 72 not in points  # multiples the table never measured
    curves = Curves(points, [float(true(c)) for c in points], [], [], block=8)
    counts = np.arange(points[1], 257)  # from the first measured multiple (below it: joined linearly)
    np.testing.assert_allclose(curves.predict(counts, counts), true(counts), atol=1e-9)
    assert curves.predict(40, 40) < curves.predict(39, 39) and curves.predict(40, 40) < curves.predict(41, 41)


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 600), block=st.sampled_from([1, 4, 8, 16]), max_points=st.integers(1, 20),
       slope=st.floats(0.001, 1.0), base=st.floats(0.0, 5.0), tail=st.floats(0.0, 3.0))
def test_staircase_reproduces_a_linear_cost_with_a_tail_off_every_block(size, block, max_points, slope, base, tail):
    def true(c):
        return base + slope * c + tail * (c % block != 0)

    points = candidate_counts(size, block, max_points)
    curves = Curves(points, [float(true(c)) for c in points], [], [], block=block)
    np.testing.assert_allclose(curves.predict(np.array(points), np.array(points)), true(np.array(points)), rtol=1e-9)
    multiples = [p for p in points if p % block == 0]
    if multiples:  # between the first and last measured multiple, every count is read exactly
        counts = np.arange(multiples[0], multiples[-1] + 1)
        np.testing.assert_allclose(curves.predict(counts, counts), true(counts), rtol=1e-9, atol=1e-12)
    assert (curves.predict(np.arange(1, size + 1), np.arange(1, size + 1)) >= 0).all()


@pytest.mark.parametrize("module, shape, kind", [
    (nn.Linear(6, 5), (2, 6), "linear"),
    (nn.Conv2d(4, 4, 3, groups=4), (1, 4, 8, 8), "conv2d"),
    (nn.Conv1d(3, 7, 5, stride=2), (1, 3, 20), "conv1d"),
])
def test_signatures_build_ops_that_run_at_any_count(module, shape, kind):
    sig = signature_of(module, shape, torch.float32)
    assert sig.kind == kind
    op, x = sig.build(2, 3 if not sig.depthwise else 2)
    assert op(x).shape[sig.channel_dim] == (3 if not sig.depthwise else 2)


def test_grouped_non_depthwise_conv_is_not_tabulated():
    assert signature_of(nn.Conv2d(8, 8, 3, groups=2), (1, 8, 6, 6), torch.float32) is None


def _table(tmp_path, **kw):
    return LatencyTable(tmp_path, runs=2, warmup=1, max_points=2, **kw)


def test_cache_is_reused_without_measuring_again(tmp_path, monkeypatch):
    sig = signature_of(nn.Linear(16, 24), (4, 16), torch.float32)
    first = _table(tmp_path).curves([sig])[0]
    assert first.out_points == candidate_counts(24, 8, 2) and len(first.out_ms) == len(first.out_points)

    def no_timing(*args):
        raise AssertionError("a cached op was measured again")

    monkeypatch.setattr(LatencyTable, "time_op", no_timing)
    assert _table(tmp_path).curves([sig])[0] == first


@pytest.mark.parametrize("damage", ["not json", "stale"])
def test_corrupt_or_stale_cache_is_rebuilt_not_trusted(tmp_path, damage):
    sig = signature_of(nn.Linear(16, 24), (4, 16), torch.float32)
    table = _table(tmp_path)
    table.curves([sig])
    if damage == "not json":
        table.path.write_text("{truncated")
    else:
        data = json.loads(table.path.read_text())
        data["header"]["torch"] = "0.0.1"
        data["entries"][sig.key()]["out_ms"] = [0.0] * len(data["entries"][sig.key()]["out_ms"])
        table.path.write_text(json.dumps(data))
    with pytest.warns(UserWarning, match="is not usable"):
        again = _table(tmp_path)
    assert again.entries == {} and again.rebuilt_reason
    curves = again.curves([sig])[0]
    assert max(curves.out_ms) > 0.0
    assert json.loads(again.path.read_text())["header"] == again.header  # the rebuilt file replaced it


def test_latency_table_objective_predicts_the_model_and_offers_staircase_savings(tmp_path, cnn, cnn_inputs):
    layers = pi.TARGETS.build("channel").bind(cnn, example_inputs=cnn_inputs)
    obj = pi.OBJECTIVES.build({"name": "latency-table", "target": 0.6, "cache": str(tmp_path), "runs": 2,
                               "rounds": 1, "table_runs": 2, "max_points": 2})
    obj.bind(cnn, cnn_inputs, layers)
    dense = [torch.zeros(layer.num_units, dtype=torch.bool) for layer in layers]
    assert obj.estimate(layers, dense) == pytest.approx(1.0)
    assert len(obj._ops) == 4  # two convs and two linears
    savings = obj.savings(layers)
    for layer, s in zip(layers, savings):
        assert s.shape == (layer.num_units + 1,) and s[0] == 0.0 and np.isfinite(s).all()
    assert list(tmp_path.glob("latency-table-*.json"))
