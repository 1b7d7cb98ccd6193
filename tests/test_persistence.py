import torch
from torch import nn

import pruner_iface as pi


def test_unstructured_masks_are_saved_and_restored(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 2))
    pi.Pruner(model, (torch.randn(1, 6),), target="element", metric="l1",
              objective={"name": "sparsity", "target": 0.5}).run()
    pi.save_pruned(model, tmp_path / "m.pt")
    fresh = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 2))
    pi.load_pruned(tmp_path / "m.pt", fresh)
    assert torch.equal(fresh[0].weight_mask, model[0].weight_mask)
    opt = torch.optim.SGD(fresh.parameters(), lr=1.0)
    fresh(torch.randn(3, 6)).sum().backward()
    opt.step()
    assert torch.all(fresh[0].weight[~fresh[0].weight_mask] == 0)


def test_file_holds_no_pickled_code(tmp_path):
    model = nn.Sequential(nn.Linear(3, 3))
    pi.save_pruned(model, tmp_path / "m.pt")
    assert torch.load(tmp_path / "m.pt", weights_only=True)["format"] == "pruner_iface.pruned/1"
