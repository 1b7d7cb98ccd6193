"""Budget objectives: absolute forms, true measurements, cost models, and the measured-latency loop."""
import copy

import pytest
import torch
from torch import nn

import pruner_iface as pi
from pruner_iface import loop
from pruner_iface.errors import ConfigError, ObjectiveNotReachedError


def test_absolute_flops_budget_becomes_a_fraction_of_dense(cnn, cnn_inputs):
    layers = pi.TARGETS.build("channel").bind(cnn, example_inputs=cnn_inputs)
    dense = pi.count_flops(cnn, cnn_inputs)
    obj = pi.OBJECTIVES.build({"name": "flops", "absolute": dense * 0.6 / 1e9})
    obj.bind(cnn, cnn_inputs, layers)
    assert obj.target == pytest.approx(0.6)


def test_absolute_params_budget_runs_to_that_count(cnn, cnn_inputs):
    dense = pi.count_params(cnn)
    pruner = pi.Pruner(cnn, cnn_inputs, target="channel", metric="l1",
                       objective={"name": "params", "absolute": int(dense * 0.7)})
    pruner.run()
    assert pi.count_params(cnn) <= dense * 0.7


@pytest.mark.parametrize("spec, pattern", [
    ({"name": "flops", "target": 0.5, "absolute": 1.0}, r"absolute: give either target"),
    ({"name": "sparsity", "absolute": 3.0}, r"absolute: the sparsity objective has no absolute form"),
    ({"name": "latency", "absolute": -1.0}, r"absolute: must be a positive number of ms"),
    ({"name": "latency", "target": 0.5, "tolerance": 0.9}, r"tolerance: must be in \[0, 0.5\]"),
    ({"name": "latency", "target": 0.5, "device": "tpu"}, r"device: must be 'cpu' or 'cuda'"),
])
def test_bad_objective_options_name_the_key(spec, pattern):
    with pytest.raises(ConfigError, match=pattern):
        pi.OBJECTIVES.build(spec, "objective")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_latency_on_cuda_without_a_gpu_is_refused_before_pruning():
    with pytest.raises(ConfigError, match="no CUDA device"):
        pi.OBJECTIVES.build({"name": "latency", "target": 0.5, "device": "cuda"}, "objective")


def test_absolute_budget_above_dense_is_refused_with_the_dense_value(cnn, cnn_inputs):
    before = copy.deepcopy(cnn.state_dict())
    with pytest.raises(ConfigError, match=r"objective.absolute: .* above the dense model's"):
        pi.Pruner(cnn, cnn_inputs, target="channel", metric="l1",
                  objective={"name": "params", "absolute": 10 * pi.count_params(cnn)})
    assert all(torch.equal(before[k], v) for k, v in cnn.state_dict().items())


@pytest.mark.parametrize("name", ["flops", "params"])
def test_step_records_true_value_measured_after_masking(cnn, cnn_inputs, name):
    pruner = pi.Pruner(cnn, cnn_inputs, target="channel", metric="l1", objective={"name": name, "target": 0.6})
    report = pruner.run()
    step = report.steps[-1]
    truth = pi.count_flops(cnn, cnn_inputs) / report.dense_flops if name == "flops" else \
        pi.count_params(cnn) / report.dense_params
    assert step.objective_measured == pytest.approx(truth, rel=1e-6)
    assert step.objective_measured == pytest.approx(step.objective_value, abs=1e-6)
    assert step.objective_measured <= 0.6 + 1e-9


def test_default_savings_are_per_layer_and_start_at_zero(cnn, cnn_inputs):
    layers = pi.TARGETS.build("channel-local").bind(cnn)
    obj = pi.OBJECTIVES.build({"name": "params", "target": 0.5})
    obj.bind(cnn, cnn_inputs, layers)
    savings = obj.savings(layers)
    for layer, s in zip(layers, savings):
        assert s.shape == (layer.num_units + 1,) and s[0] == 0.0
        pruned = torch.zeros(layer.num_units, dtype=torch.bool)
        pruned[:3] = True
        others = [torch.zeros(other.num_units, dtype=torch.bool) for other in layers]
        others[layers.index(layer)] = pruned
        assert s[3] == pytest.approx(1.0 - obj.estimate(layers, others), rel=1e-6)  # rows are linear


class Scaled:
    """A measurement that is a fixed nonlinear function of the estimate (a stand-in for timing)."""

    def __init__(self, layers, objective, fn):
        self.layers, self.objective, self.fn, self.calls = layers, objective, fn, 0

    def __call__(self, pruned):
        self.calls += 1
        return self.fn(self.objective.estimate(self.layers, pruned))


def _latency_parts(cnn, cnn_inputs, **options):
    layers = pi.TARGETS.build("channel").bind(cnn, example_inputs=cnn_inputs)
    obj = pi.OBJECTIVES.build({"name": "latency", "target": 0.6, "runs": 2, "rounds": 1, "warmup": 1, **options})
    obj.bind(cnn, cnn_inputs, layers)
    scores = [torch.rand(layer.num_units) for layer in layers]
    return layers, obj, scores


def test_meet_corrects_its_aim_until_the_measurement_meets_the_target(cnn, cnn_inputs):
    layers, obj, scores = _latency_parts(cnn, cnn_inputs, tolerance=0.05)
    check = Scaled(layers, obj, lambda e: 0.25 + 0.9 * e)  # latency falls slower than FLOPs
    result = loop.meet(layers, scores, pi.ALLOCATORS.build("global"), obj, 0.6, check)
    measured = [t for t in result.tries if t.kind == "measured"]
    assert len(measured) == check.calls >= 2
    assert result.value <= 0.6 * 1.05
    assert result.value == pytest.approx(0.25 + 0.9 * obj.estimate(layers, result.pruned))
    assert result.predicted == pytest.approx(obj.estimate(layers, result.pruned))  # the kept candidate's estimate
    assert measured[0].aim == 0.6 and measured[-1].aim < 0.6


def test_meet_raises_with_the_closest_value_when_no_candidate_meets(cnn, cnn_inputs):
    layers, obj, scores = _latency_parts(cnn, cnn_inputs)
    with pytest.raises(ObjectiveNotReachedError, match=r"closest: 0.9 after \d+ measurements"):
        loop.meet(layers, scores, pi.ALLOCATORS.build("global"), obj, 0.6, lambda pruned: 0.9)


def test_latency_objective_requires_a_structured_target(cnn, cnn_inputs):
    with pytest.raises(ConfigError, match="shrinks nothing; use a structured target"):
        pi.Pruner(cnn, cnn_inputs, target="element", metric="l1", objective={"name": "latency", "target": 0.5})


class WideCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 64, 3, padding=1)
        self.b = nn.Conv2d(64, 64, 3, padding=1)
        self.c = nn.Conv2d(64, 64, 3, padding=1)
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        x = torch.relu(self.c(torch.relu(self.b(torch.relu(self.a(x))))))
        return self.head(x.mean((2, 3)))


def test_measured_latency_run_leaves_a_smaller_model_and_reports_each_measurement():
    model = WideCNN().eval()
    x = (torch.randn(8, 3, 24, 24),)
    dense = copy.deepcopy(model)
    pruner = pi.Pruner(model, x, target="channel", metric="l1", allocator="global",
                       objective={"name": "latency", "target": 0.6, "tolerance": 0.5, "runs": 5, "rounds": 3})  # noisy CI
    report = pruner.run()
    step = report.steps[-1]
    measured = [t for t in step.tries if t["kind"] == "measured"]
    assert measured and all({"ms", "p10_ms", "p90_ms", "dense_ms", "estimate"} <= set(t) | set(t["detail"])
                            for t in measured)
    assert step.objective_value <= 0.6 * 1.5
    kept = [t for t in measured if t["value"] == step.objective_value][-1]
    assert step.objective_predicted == kept["estimate"]
    errors = report.prediction_errors()
    assert errors == pytest.approx([t["estimate"] / t["value"] - 1 for t in measured])
    assert "Cost model vs measurement over" in report.to_markdown()
    with torch.no_grad():
        masked = model(*x)
    pruner.speed_up()
    assert pi.count_params(model) < pi.count_params(dense)
    with torch.no_grad():
        assert torch.allclose(model(*x), masked, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_latency_objective_times_on_cuda_with_events():
    model = WideCNN().eval()
    x = (torch.randn(8, 3, 24, 24),)
    pruner = pi.Pruner(model, x, target="channel", metric="l1",
                       objective={"name": "latency", "target": 0.7, "device": "cuda", "tolerance": 0.3})
    report = pruner.run()
    measured = [t for t in report.steps[-1].tries if t["kind"] == "measured"]
    assert measured and measured[-1]["detail"]["dense_ms"] > 0
    assert report.steps[-1].objective_value <= 0.7 * 1.3


def test_meet_falls_back_to_the_most_reachable_candidate_when_its_aim_is_out_of_reach(cnn, cnn_inputs):
    """The first measurement is far above the estimate, so the corrected aim falls below what the
    estimate can reach; the search must then try the most it can prune rather than give up."""
    layers, obj, scores = _latency_parts(cnn, cnn_inputs, tolerance=0.05)
    check = Scaled(layers, obj, lambda e: 0.6 if e < 0.06 else 20.0)
    result = loop.meet(layers, scores, pi.ALLOCATORS.build("global"), obj, 0.6, check)
    assert result.value == 0.6
    assert obj.estimate(layers, result.pruned) < 0.06
