import copy

import torch
from torch import nn

import pruner_iface as pi
from pruner_iface.masks import get_mask, masked_params, set_mask


def test_set_mask_zeroes_weight_in_place_without_a_copy():
    lin = nn.Linear(4, 3)
    storage = lin.weight.data_ptr()
    keep = torch.rand(3, 4) > 0.5
    set_mask(lin, "weight", keep)
    assert lin.weight.data_ptr() == storage
    assert torch.all(lin.weight[~keep] == 0)
    assert get_mask(lin, "weight").dtype == torch.bool
    assert not hasattr(lin, "weight_orig")


def test_masked_gradients_are_zero():
    lin = nn.Linear(4, 3)
    keep = torch.rand(3, 4) > 0.5
    set_mask(lin, "weight", keep)
    lin(torch.randn(5, 4)).sum().backward()
    assert torch.all(lin.weight.grad[~keep] == 0)


def test_masks_are_reapplied_after_optimizer_step_despite_momentum_and_decay():
    lin = nn.Linear(4, 3)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    for _ in range(2):  # momentum built up before masking
        opt.zero_grad()
        lin(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
    keep = torch.rand(3, 4) > 0.5
    set_mask(lin, "weight", keep)
    opt.zero_grad()
    lin(torch.randn(5, 4)).pow(2).sum().backward()
    opt.step()
    assert torch.all(lin.weight[~keep] == 0)


def test_remove_masks_bakes_and_removes_buffers_and_hooks():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    keep = torch.rand(3, 4) > 0.5
    set_mask(model[0], "weight", keep)
    pi.remove_masks(model)
    assert list(masked_params(model)) == []
    assert "weight_mask" not in dict(model[0].named_buffers())
    assert torch.all(model[0].weight[~keep] == 0)
    model[0].weight.data.fill_(1.0)
    model(torch.randn(2, 4)).sum().backward()
    assert torch.all(model[0].weight.grad != 0)  # grad hook gone
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    opt.step()
    assert torch.all(model[0].weight == 1.0)  # no re-masking after removal


def test_mask_memory_is_one_byte_per_weight():
    lin = nn.Linear(64, 64)
    set_mask(lin, "weight", torch.ones(64, 64, dtype=torch.bool))
    mask = get_mask(lin, "weight")
    assert mask.element_size() * mask.numel() == 64 * 64


def test_masked_model_can_be_deep_copied_and_saved(tmp_path):
    lin = nn.Linear(4, 3)
    set_mask(lin, "weight", torch.rand(3, 4) > 0.5)
    clone = copy.deepcopy(lin)
    assert torch.equal(clone.weight_mask, lin.weight_mask)
    torch.save(lin.state_dict(), tmp_path / "m.pt")
    assert "weight_mask" in torch.load(tmp_path / "m.pt")


def _train_step(model, x):
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1)
    for _ in range(2):
        opt.zero_grad()
        model(x).pow(2).sum().backward()
        opt.step()


def test_a_second_mask_on_the_same_weight_combines_with_the_first():
    lin = nn.Linear(6, 4)
    first = torch.rand(4, 6) > 0.5
    second = torch.rand(4, 6) > 0.5
    set_mask(lin, "weight", first)
    set_mask(lin, "weight", second)
    assert torch.equal(get_mask(lin, "weight"), first & second)
    _train_step(lin, torch.randn(3, 6))
    assert torch.all(lin.weight[~(first & second)] == 0)


def test_masks_stay_enforced_on_deep_copies_and_reloaded_models(tmp_path):
    model = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 2))
    keep = torch.rand(6, 6) > 0.5
    set_mask(model[0], "weight", keep)
    torch.save(model, tmp_path / "m.pt")
    for other in (copy.deepcopy(model), torch.load(tmp_path / "m.pt", weights_only=False)):
        _train_step(other, torch.randn(3, 6))
        assert torch.all(other[0].weight[~keep] == 0)
        pi.remove_masks(other)
        assert not other[0]._forward_pre_hooks
