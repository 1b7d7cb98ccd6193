"""Head metrics: Michel et al.'s head importance equals |∂L/∂gate| of explicit head gates, and
activation_norm equals the norm of each head's output, both on a hand-written attention."""
import pytest
import torch
import torch.nn.functional as F
from hf_zoo import build

import pruner_iface as pi


def batches(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(4, 3, 16, 16, generator=g), torch.randint(0, 5, (4,), generator=g)) for _ in range(n)]


def ce(model, batch):
    return F.cross_entropy(model(batch[0]), batch[1])


def head_of_units(layer, head_dim):
    """Head index of each unit, from the output projection columns it owns."""
    return [next(int(m.indices[0]) // head_dim for m in g.members if m.consumes) for g in layer.groups]


def explicit_gate_importance(model, data):
    """The original recipe: a gate of ones on every head's output, |grad| summed over batches."""
    gates, handles = {}, []
    for i, block in enumerate(model.blocks):
        attn = block.attn
        gates[i] = torch.ones(attn.num_heads, requires_grad=True)
        handles.append(attn.proj.register_forward_pre_hook(
            lambda m, inp, g=gates[i], d=attn.head_dim: (inp[0] * g.repeat_interleave(d),)))
    total = {i: torch.zeros(len(g)) for i, g in gates.items()}
    for batch in data:
        for g in gates.values():
            g.grad = None
        ce(model, batch).backward()
        for i, g in gates.items():
            total[i] += g.grad.abs()
    for h in handles:
        h.remove()
    model.zero_grad()
    return {i: t / t.norm() for i, t in total.items()}


def test_head_importance_equals_explicit_gate_gradients():
    model, x = build("timm_vit")
    data = batches()
    expected = explicit_gate_importance(model, data)
    pruner = pi.Pruner(model, x, target="head", metric="head_importance",
                       objective={"name": "sparsity", "target": 0.5})
    pruner.metric.collect(model, pruner.layers, data, ce)
    for i, layer in enumerate(pruner.layers):
        scores = pruner.metric.unit_scores(layer)
        heads = head_of_units(layer, model.blocks[i].attn.head_dim)
        assert torch.allclose(scores, expected[i][heads], rtol=1e-4, atol=1e-6)


def test_activation_norm_equals_each_heads_output_norm():
    model, x = build("timm_vit")
    data = batches()
    seen = {i: torch.zeros(4) for i in range(len(model.blocks))}
    def record(i):
        def hook(module, inputs):
            seen[i].add_(inputs[0].detach().pow(2).reshape(-1, 4, 8).sum((0, 2)))
        return hook

    handles = [b.attn.proj.register_forward_pre_hook(record(i)) for i, b in enumerate(model.blocks)]
    with torch.no_grad():
        for batch in data:
            model(batch[0])
    for h in handles:
        h.remove()
    pruner = pi.Pruner(model, x, target="head", metric="activation_norm",
                       objective={"name": "sparsity", "target": 0.5})
    pruner.metric.collect(model, pruner.layers, data, ce)
    for i, layer in enumerate(pruner.layers):
        heads = head_of_units(layer, 8)
        assert torch.allclose(pruner.metric.unit_scores(layer), seen[i].sqrt()[heads], rtol=1e-5)


@pytest.mark.parametrize("metric", ["head_importance", "activation_norm"])
def test_head_metrics_drive_pruning_of_the_least_important_heads(metric):
    model, x = build("timm_vit")
    data = batches()
    pruner = pi.Pruner(model, x, target="head", metric=metric, objective={"name": "sparsity", "target": 0.5})
    pruner.metric.collect(model, pruner.layers, data, ce)
    scores = [pruner.metric.unit_scores(layer).clone() for layer in pruner.layers]
    pruner.run(data=data, loss_fn=ce)
    for layer, s in zip(pruner.layers, scores):
        pruned = layer.current_pruned()
        assert int(pruned.sum()) == 2 and s[pruned].max() <= s[~pruned].min()
    masked = model(x[0])
    pruner.speed_up()
    assert torch.allclose(model(x[0]), masked, atol=1e-5)


def test_unit_metrics_refuse_element_targets_and_missing_data():
    model, x = build("timm_vit")
    with pytest.raises(pi.errors.InputError, match="graph-aware"):
        pi.Pruner(model, x, target="element", metric="head_importance",
                  objective={"name": "sparsity", "target": 0.5}).run(data=batches(), loss_fn=ce)
    with pytest.raises(pi.errors.MissingDataError):
        pi.Pruner(model, x, target="head", metric="activation_norm",
                  objective={"name": "sparsity", "target": 0.5}).run()


def test_head_importance_learns_from_the_training_loop_hooks_and_activation_norm_refuses():
    model, x = build("timm_vit")
    data = batches()
    pruner = pi.Pruner(model, x, target="head", metric="head_importance",
                       objective={"name": "sparsity", "target": 0.5})
    for batch in data:
        model.zero_grad()
        ce(model, batch).backward()
        pruner.on_before_optimizer_step()
    expected = explicit_gate_importance(model, data)
    for i, layer in enumerate(pruner.layers):
        heads = head_of_units(layer, model.blocks[i].attn.head_dim)
        assert torch.allclose(pruner.metric.unit_scores(layer), expected[i][heads], rtol=1e-4, atol=1e-6)
    other = pi.Pruner(model, x, target="head", metric="activation_norm", objective={"name": "sparsity", "target": 0.5})
    with pytest.raises(pi.errors.InputError, match="training-loop hooks"):
        other.on_before_optimizer_step()
