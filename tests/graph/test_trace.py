"""Tracers: torch.export first, make_fx on real tensors where export fails; both must give the
same coupled groups, and untraceable models a clear error with the model untouched."""
import warnings

import pytest
import torch
from conftest import same_state, state
from torch import nn
from zoo import ZOO, build

import pruner_iface as pi
from pruner_iface.graph import TraceError, build_dependency_graph, trace


def signature(graph):
    return sorted((g.producers, g.approximate, sorted((m.tensor, m.dim, m.indices.tolist()) for m in g.members))
                  for g in graph.groups)


@pytest.mark.parametrize("name", list(ZOO))
def test_make_fx_finds_the_same_groups_as_export(name):
    model, x = build(name)
    by_export = build_dependency_graph(model, x, warn=False, tracer="export")
    by_make_fx = build_dependency_graph(model, x, warn=False, tracer="make_fx")
    assert by_make_fx.traced.tracer == "make_fx" and by_export.traced.tracer == "torch.export"
    assert signature(by_make_fx) == signature(by_export)
    assert by_make_fx.warnings == by_export.warnings


def test_make_fx_records_module_paths_and_parameter_names():
    model, x = build("resnet18")
    traced = trace(model, x, tracer="make_fx")
    names = {name for name, _ in model.named_parameters()} | {name for name, _ in model.named_buffers()}
    assert set(traced.tensors.values()) == names
    assert traced.parameters == {name for name, _ in model.named_parameters()}
    convs = [n for n in traced.fx_graph.nodes if n.op == "call_function" and "conv" in str(n.target)]
    modules = {name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    assert {traced.graph.nodes[n.name]["module"] for n in convs} == modules


class Branchy(nn.Module):
    """Data-dependent control flow: torch.export refuses it."""

    def __init__(self):
        super().__init__()
        self.stem, self.bn = nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.body = nn.Conv2d(16, 16, 3, padding=1)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        y = torch.relu(self.bn(self.stem(x)))
        if x.mean() > -1:  # data-dependent (on the input, so no channel feeds the decision)
            y = y + self.body(y)
        return self.head(y.mean((2, 3)))


def test_data_dependent_model_falls_back_to_make_fx_and_prunes_exactly():
    torch.manual_seed(0)
    model = Branchy().train()
    x = (torch.randn(4, 3, 8, 8),)
    with pytest.warns(UserWarning, match="traced with make_fx"):
        pruner = pi.Pruner(model, x, target="channel", metric="l1", objective={"name": "sparsity", "target": 0.5})
    assert model.training and model.bn.training  # modes restored after tracing
    report = pruner.run()
    assert report.to_json()  # the report names the tracer
    assert pruner.target.graph.traced.tracer == "make_fx"
    model.eval()
    with torch.no_grad():
        masked = model(*x)
    pruner.speed_up()
    with torch.no_grad():
        shrunk = model(*x)
    assert model.stem.out_channels == model.body.out_channels == model.head.in_features == 8
    assert (masked - shrunk).abs().max().item() <= 1e-4 * max(1.0, masked.abs().max().item())


def test_export_only_tracer_refuses_data_dependent_control_flow():
    model = Branchy()
    with pytest.raises(TraceError, match="torch.export could not trace Branchy"):
        build_dependency_graph(model, (torch.randn(1, 3, 8, 8),), tracer="export")


def test_model_no_tracer_can_run_is_a_clear_error_and_untouched():
    model = Branchy().train()
    snapshot = state(model)
    with pytest.raises(TraceError, match="make_fx fallback failed too") as info:
        pi.Pruner(model, (torch.randn(1, 5, 8, 8),), target="channel", metric="l1",
                  objective={"name": "sparsity", "target": 0.5})
    assert "Branchy" in str(info.value) and "[1, 5, 8, 8]" in str(info.value).replace(" ", "").replace(",", ", ")
    assert same_state(model, snapshot) and model.training


def test_unknown_tracer_name_is_refused():
    with pytest.raises(Exception, match="tracer"):
        trace(Branchy(), (torch.randn(1, 3, 8, 8),), tracer="jit")
    with pytest.raises(Exception, match="tracer"):
        pi.Pruner(Branchy(), (torch.randn(1, 3, 8, 8),), target={"name": "channel", "tracer": "jit"}, metric="l1",
                  objective={"name": "sparsity", "target": 0.5})


def test_tracing_leaves_no_hooks_or_node_meta_behind():
    model = Branchy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trace(model, (torch.randn(1, 3, 8, 8),), tracer="make_fx")
    from torch.fx import traceback as fx_traceback
    from torch.nn.modules import module as module_mod

    assert not module_mod._global_forward_hooks and not module_mod._global_forward_pre_hooks
    assert "nn_module_stack" not in fx_traceback.current_meta
