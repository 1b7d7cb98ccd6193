"""Presets reproducing torch.nn.utils.prune, applied to every selected Linear/ConvNd weight
(narrow with include/exclude). `amount` is torch's: a float is the fraction of the entries (or
slices) not pruned yet, rounded with round(amount·n); an int is a count. Masks equal torch's bit
for bit on the same tensors and seeds (tests/presets/test_torch_prune.py); for the random ones,
`seed` plays the part of ``torch.manual_seed`` before the call. One difference by design:
`torch.ln_structured`/`torch.random_structured` along dim 0 also mask each pruned row's bias.
"""
from . import register_preset

ORIGIN = "torch.nn.utils.prune (PyTorch)"
UNSTRUCTURED = {"target": "element", "allocator": "uniform", "scheduler": "one-pass",
                "objective": {"name": "amount", "target": 0.5}}

register_preset(
    "torch.random_unstructured", "prune `amount` of each weight's unpruned entries at random (torch removes the "
    "highest of u ~ U[0,1) drawn for them)", f"{ORIGIN}: random_unstructured(module, name, amount)",
    {**UNSTRUCTURED, "metric": {"name": "random", "seed": 0}},
    options={"amount": "objective.target", "seed": "metric.seed"},
)
register_preset(
    "torch.l1_unstructured", "prune `amount` of each weight's unpruned entries with the smallest |w|",
    f"{ORIGIN}: l1_unstructured(module, name, amount)",
    {**UNSTRUCTURED, "metric": "l1"},
    options={"amount": "objective.target"},
)
register_preset(
    "torch.ln_structured", "prune `amount` of each weight's unpruned slices along `dim` with the smallest "
    "L_n norm ‖w_slice‖_n (n: a positive number or 'fro')", f"{ORIGIN}: ln_structured(module, name, amount, n, dim)",
    {**UNSTRUCTURED, "target": {"name": "channel-local", "dim": 0}, "metric": {"name": "lp", "p": 2}},
    options={"amount": "objective.target", "n": "metric.p", "dim": "target.dim"},
)
register_preset(
    "torch.random_structured", "prune `amount` of each weight's unpruned slices along `dim` at random (torch "
    "removes the lowest of u ~ U[0,1) drawn per slice)", f"{ORIGIN}: random_structured(module, name, amount, dim)",
    {**UNSTRUCTURED, "target": {"name": "channel-local", "dim": 0},
     "metric": {"name": "random", "seed": 0, "along": 0, "reduce": "max"}},
    options={"amount": "objective.target", "dim": ["target.dim", "metric.along"], "seed": "metric.seed"},
)
register_preset(
    "torch.global_unstructured", "prune `amount` of the unpruned entries of all selected weights together, "
    "smallest |w| first (pruning_method=L1Unstructured)",
    f"{ORIGIN}: global_unstructured(parameters, pruning_method=L1Unstructured, amount)",
    {**UNSTRUCTURED, "metric": "l1", "allocator": "global"},
    options={"amount": "objective.target"},
)
