"""The torch.* presets give the same masks as torch.nn.utils.prune, bit for bit, on the same
tensors and seeds — also when pruning twice, with counts, and over several layers."""
import copy

import pytest
import torch
import torch.nn.utils.prune as tprune
from hypothesis import example, given, settings, strategies as st
from torch import nn

import pruner_iface as pi
from pruner_iface.errors import ConfigError, ObjectiveNotReachedError


def make_model(kind: str, out: int, inp: int, seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    if kind == "linear":
        return nn.Sequential(nn.Linear(inp, out), nn.ReLU(), nn.Linear(out, 3))
    return nn.Sequential(nn.Conv2d(inp, out, 3), nn.ReLU(), nn.Conv2d(out, 3, 1))


def inputs(kind: str, inp: int):
    return (torch.randn(2, inp) if kind == "linear" else torch.randn(2, inp, 5, 5),)


def ours(model, kind, inp, preset, **options):
    pi.Pruner.from_preset(preset, model, inputs(kind, inp), **options).run()
    return [getattr(m, "weight_mask", torch.ones_like(m.weight, dtype=torch.bool)).clone()
            for m in model if isinstance(m, (nn.Linear, nn.Conv2d))]  # no mask: nothing pruned


def check_same(mine, kind, inp, preset, expected, **options):
    """Our masks equal torch's; where torch removed a whole weight (or every slice of it), ours
    refuses instead, since every layer keeps a unit, and leaves the model as it was."""
    if any(not e.any() for e in expected):
        before = [getattr(m, "weight_mask", None) for m in mine]
        with pytest.raises(ObjectiveNotReachedError, match="at least one is kept"):
            ours(mine, kind, inp, preset, **options)
        assert all(b is getattr(m, "weight_mask", None) for b, m in zip(before, mine))
        return False
    got = ours(mine, kind, inp, preset, **options)
    assert all(torch.equal(g, e) for g, e in zip(got, expected)), preset
    return True


def draws_everywhere(model, expected) -> bool:
    """Whether torch drew random numbers for every layer this step: it draws none for a tensor
    it prunes nothing from, while our random metric scores every layer from one seeded stream,
    so the streams align only when each layer prunes something."""
    before = [getattr(m, "weight_mask", None) for m in model if isinstance(m, (nn.Linear, nn.Conv2d))]
    return all(b is None and not e.all() or b is not None and not torch.equal(b.bool(), e)
               for b, e in zip(before, expected))


def theirs(model, method, seed, **kwargs):
    torch.manual_seed(seed)
    layers = [m for m in model if isinstance(m, (nn.Linear, nn.Conv2d))]
    for m in layers:
        method(m, "weight", **kwargs)
    return [m.weight_mask.bool() for m in layers]


amounts = st.one_of(st.floats(0.0, 0.95), st.integers(0, 3))
shapes = dict(kind=st.sampled_from(["linear", "conv"]), out=st.integers(2, 9), inp=st.integers(1, 6),
              seed=st.integers(0, 10_000))


@settings(max_examples=20, deadline=None)
@given(amount=amounts, twice=st.one_of(st.none(), amounts), **shapes)
@example(amount=3, twice=None, kind="linear", out=2, inp=1, seed=0)  # more than the tensor holds
def test_l1_and_random_unstructured_match_torch(amount, twice, kind, out, inp, seed):
    model = make_model(kind, out, inp, seed)
    for preset, method, extra in (("torch.l1_unstructured", tprune.l1_unstructured, {}),
                                  ("torch.random_unstructured", tprune.random_unstructured, {"seed": seed})):
        mine, ref = copy.deepcopy(model), copy.deepcopy(model)
        try:
            expected = theirs(ref, method, seed, amount=amount)
        except ValueError:  # a count beyond the tensor's size: torch refuses, so do we
            with pytest.raises(ObjectiveNotReachedError, match="cannot prune|at least one is kept"):
                ours(mine, kind, inp, preset, amount=amount, **extra)
            continue
        if extra and not draws_everywhere(model, expected):
            continue
        if check_same(mine, kind, inp, preset, expected, amount=amount, **extra) and twice is not None:
            try:
                expected = theirs(ref, method, seed + 1, amount=twice)
            except ValueError:  # torch refuses a count beyond what is left; so do we
                with pytest.raises(ObjectiveNotReachedError, match="cannot prune|at least one is kept"):
                    ours(mine, kind, inp, preset, amount=twice, **extra)
                continue
            if not extra or draws_everywhere(mine, expected):
                check_same(mine, kind, inp, preset, expected, amount=twice, **({"seed": seed + 1} if extra else {}))


@settings(max_examples=20, deadline=None)
@given(amount=amounts, twice=st.one_of(st.none(), amounts), dim=st.sampled_from([0, 1]),
       n=st.sampled_from([1, 2, 3]), **shapes)
def test_ln_and_random_structured_match_torch(amount, twice, dim, n, kind, out, inp, seed):
    model = make_model(kind, out, inp, seed)
    for preset, method, extra, kwargs in (
            ("torch.ln_structured", tprune.ln_structured, {"n": n}, {"n": n}),
            ("torch.random_structured", tprune.random_structured, {"seed": seed}, {})):
        mine, ref = copy.deepcopy(model), copy.deepcopy(model)
        for value in [amount] if twice is None else [amount, twice]:
            try:
                expected = theirs(ref, method, seed, amount=value, dim=dim, **kwargs)
            except ValueError:  # torch refuses a count beyond the slices left; so do we
                with pytest.raises(ObjectiveNotReachedError, match="cannot prune|at least one is kept"):
                    ours(mine, kind, inp, preset, amount=value, dim=dim, **extra)
                break
            if "seed" in extra and not draws_everywhere(mine, expected):
                break
            if not check_same(mine, kind, inp, preset, expected, amount=value, dim=dim, **extra):
                break


@settings(max_examples=20, deadline=None)
@given(amount=amounts, twice=st.one_of(st.none(), amounts), **shapes)
def test_global_unstructured_matches_torch(amount, twice, kind, out, inp, seed):
    model = make_model(kind, out, inp, seed)
    mine, ref = copy.deepcopy(model), copy.deepcopy(model)
    params = [(m, "weight") for m in ref if isinstance(m, (nn.Linear, nn.Conv2d))]
    for value in [amount] if twice is None else [amount, twice]:
        try:
            tprune.global_unstructured(params, pruning_method=tprune.L1Unstructured, amount=value)
        except ValueError:  # a count beyond what is left
            with pytest.raises(ObjectiveNotReachedError, match="cannot prune|at least one is kept"):
                ours(mine, kind, inp, "torch.global_unstructured", amount=value)
            return
        expected = [m.weight_mask.bool() for m, _ in params]
        if not check_same(mine, kind, inp, "torch.global_unstructured", expected, amount=value):
            return


def test_amount_applies_to_what_is_left():
    model = make_model("linear", 8, 8, 0)
    for _ in range(2):
        ours(model, "linear", 8, "torch.l1_unstructured", amount=0.5)
    assert model[0].weight_mask.float().mean() == 0.25


def test_count_beyond_what_is_left_is_refused_and_the_model_untouched():
    model = make_model("linear", 4, 3, 0)
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ObjectiveNotReachedError, match="'0' has 12 units left; cannot prune 13"):
        ours(model, "linear", 3, "torch.l1_unstructured", amount=13)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_bad_amount_and_unknown_preset_option_are_named():
    model = make_model("linear", 4, 3, 0)
    with pytest.raises(ConfigError, match=r"objective.target.*fraction of the units left"):
        pi.Pruner.from_preset("torch.l1_unstructured", model, inputs("linear", 3), amount=1.5)
    with pytest.raises(ConfigError, match=r"'ratio' is neither an option.*options of 'torch.l1_unstructured': amount"):
        pi.Pruner.from_preset("torch.l1_unstructured", model, inputs("linear", 3), ratio=0.5)
    with pytest.raises(ConfigError, match=r"metric.p.*positive finite"):
        pi.Pruner.from_preset("torch.ln_structured", model, inputs("linear", 3), n=-1)
