import torch
from torch import nn

import pruner_iface as pi
from pruner_iface.counting import module_flops
from pruner_iface.masks import set_mask


def test_count_flops_matches_analytic_count_for_conv_and_linear():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(8 * 5 * 5, 4))
    x = (torch.randn(2, 3, 5, 5),)
    analytic = 2 * (8 * 3 * 9 * 25 + 200 * 4)  # multiply-adds, fvcore's convention
    assert pi.count_flops(model, x) == analytic


def test_masks_reduce_counted_params_and_flops():
    model = nn.Sequential(nn.Linear(10, 10), nn.Linear(10, 2))
    x = (torch.randn(1, 10),)
    keep = torch.ones(10, 10, dtype=torch.bool)
    keep[:5] = False
    set_mask(model[0], "weight", keep)
    assert pi.count_params(model) == 10 * 10 + 10 + 10 * 2 + 2 - 50
    assert pi.count_flops(model, x) == 100 + 20 - 50


def test_shared_parameters_count_once():
    lin = nn.Linear(4, 4)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    assert pi.count_params(model) == 20


def test_keyword_inputs_are_counted():
    from conftest import KwargModel

    flops = pi.count_flops(KwargModel(), {"features": torch.randn(3, 12)})
    assert flops == 3 * (12 * 24 + 24 * 4)


def test_outputs_holding_non_tensor_objects_are_counted():
    class Cache:  # stands for a Hugging Face cache object in the outputs
        pass

    class DictOut(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(5, 3)

        def forward(self, x):
            return {"logits": self.lin(x), "cache": Cache(), "extra": [self.lin(x) * 2]}

    assert pi.count_flops(DictOut(), (torch.randn(2, 5),)) == 2 * (2 * 5 * 3)


class _Attention(nn.Module):
    """q/k/v/o projections around scaled_dot_product_attention, and a baddbmm score path."""

    def __init__(self, dim=16, heads=4):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x):
        b, n, d = x.shape
        split = lambda t: t.view(b, n, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        y = torch.nn.functional.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)))
        scores = torch.baddbmm(torch.zeros(b, n, n), x, x.transpose(1, 2))
        return self.o(y.transpose(1, 2).reshape(b, n, d)) + scores.sum(-1, keepdim=True)


def test_flops_count_attention_products_that_fvcore_skips():
    b, n, d, h = 2, 5, 16, 4
    per_module = module_flops(_Attention(d, h), (torch.randn(b, n, d),))
    linears = 4 * b * n * d * d
    sdpa = b * h * n * n * (d // h) * 2  # QKᵀ and AV
    baddbmm = b * n * d * n
    assert per_module["q"] == b * n * d * d
    assert per_module[""] == linears + sdpa + baddbmm
