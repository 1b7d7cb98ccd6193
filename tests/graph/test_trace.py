"""Tracers: a run on meta tensors first, torch.export where it cannot run, make_fx on real tensors
where export fails too; all must give the same coupled groups, and untraceable models a clear
error with the model untouched."""
import warnings

import pytest
import torch
from conftest import same_state, state
from torch import nn
from hf_zoo import HF_ZOO
from hf_zoo import build as build_transformer
from zoo import ZOO, build

import pruner_iface as pi
from pruner_iface.graph import TraceError, build_dependency_graph, trace


def signature(graph, model=None):
    """Every group's producers and member slices; with `model`, a tied tensor under its first name
    (tracers may name it after any module holding it)."""
    every = list(model.named_parameters(remove_duplicate=False)) if model is not None else []
    first = {}
    for name, tensor in every:
        first.setdefault(id(tensor), name)
    names = {name: first[id(tensor)] for name, tensor in every}
    return sorted((g.producers, g.approximate, sorted((names.get(m.tensor, m.tensor), m.dim, m.indices.tolist())
                                                      for m in g.members)) for g in graph.groups)


@pytest.mark.parametrize("name", list(ZOO) + [f"hf:{n}" for n in HF_ZOO])
def test_meta_trace_finds_the_same_groups_and_heads_as_export(name):
    model, x = build_transformer(name[3:]) if name.startswith("hf:") else build(name)
    by_export = build_dependency_graph(model, x, warn=False, tracer="export")
    by_meta = build_dependency_graph(model, x, warn=False, tracer="meta")
    assert by_meta.traced.tracer == "meta"
    assert signature(by_meta, model) == signature(by_export, model)
    assert by_meta.warnings == by_export.warnings
    assert by_meta.heads == by_export.heads
    assert [o.tolist() for o in by_meta.outputs] == [o.tolist() for o in by_export.outputs]


def test_auto_uses_the_meta_trace_and_leaves_no_mode_hook_or_flag_behind():
    from torch.nn.modules import module as module_mod
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

    model, x = build("resnet18")
    traced = trace(model, x)
    assert traced.tracer == "meta"
    assert not module_mod._global_forward_hooks and not module_mod._global_forward_pre_hooks
    assert not torch.compiler.is_compiling() and not torch.compiler.is_exporting()
    assert torch._ops._len_torch_dispatch_stack_pre_dispatch() == 0 and not _get_current_dispatch_mode_stack()
    assert all(p.device.type == "cpu" for p in model.parameters())  # the model itself never went to meta
    convs = [n for n in traced.fx_graph.nodes if n.op == "call_function" and "conv" in str(n.target)]
    assert {traced.graph.nodes[n.name]["module"] for n in convs} == \
        {name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}


class ListIndex(nn.Module):
    """An index list in forward: torch makes it a tensor on the input's device, so on meta its
    values would be lost."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 8, 1), nn.Linear(2 * 9, 4)

    def forward(self, x):
        return self.fc(self.conv(x)[:, [0, 3]].flatten(1))


class Constants(nn.Module):
    """A plain tensor attribute (neither parameter nor buffer), a literal made in forward, an
    in-place op and a multi-output op."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 8, 1), nn.Linear(4, 2)
        self.scale = torch.linspace(0.5, 1.5, 8).reshape(1, 8, 1, 1)

    def forward(self, x):
        y = torch.relu_(self.conv(x) * self.scale)
        a, b = y.chunk(2, 1)
        picked = b.index_select(1, torch.tensor([0, 2]))
        return self.fc(torch.cat([a.mean((2, 3))[:, :2], picked.mean((2, 3))], 1))


def test_meta_trace_refuses_values_it_cannot_know_and_auto_falls_back_to_export():
    x = (torch.randn(2, 3, 3, 3),)
    with pytest.raises(TraceError, match="meta could not trace ListIndex.*values are lost"):
        trace(ListIndex(), x, tracer="meta")
    with pytest.raises(TraceError, match="meta could not trace Branchy"):
        trace(Branchy(), (torch.randn(1, 3, 8, 8),), tracer="meta")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # export can trace it: no warning
        assert trace(ListIndex(), x).tracer == "torch.export"


def test_meta_trace_records_constants_in_place_and_multi_output_ops_as_export_does():
    model, x = Constants().eval(), (torch.randn(2, 3, 4, 4),)
    by_meta = trace(model, x, tracer="meta")
    by_export = trace(model, x, tracer="export")
    assert by_meta.constants == {"scale"} and "scale" in by_export.constants
    assert sorted(v.tolist() for v in by_meta.constant_values.values() if v.dim() == 1) == [[0, 2]]
    assert signature(build_dependency_graph(model, x, warn=False, tracer="meta")) == \
        signature(build_dependency_graph(model, x, warn=False, tracer="export"))


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
