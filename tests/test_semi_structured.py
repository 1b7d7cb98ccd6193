import pytest
import torch
from conftest import same_state, state
from torch import nn

import pruner_iface as pi
from pruner_iface.errors import InputError
from pruner_iface.semi_structured import is_two_four, to_semi_structured


def two_four_mlp(device="cpu", dtype=torch.float32):
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32)).to(device=device, dtype=dtype)
    pi.Pruner(model, (torch.randn(2, 64, device=device, dtype=dtype),), target={"name": "n:m", "n": 2, "m": 4},
              metric="l1", objective={"name": "sparsity", "target": 0.5}).run()
    return model


def test_two_four_pattern_is_checked_along_the_inputs():
    w = torch.tensor([[1.0, 0, 2, 0, 0, 0, 3, 4]])
    assert is_two_four(w) and not is_two_four(torch.tensor([[1.0, 2, 3, 0, 0, 0, 0, 0]]))
    assert not is_two_four(torch.ones(2, 6))


def test_cpu_weights_are_refused_naming_the_modules_and_nothing_changes():
    model = two_four_mlp()
    before = state(model)
    with pytest.raises(InputError, match=r"'0': its weight is on cpu; semi-structured sparsity runs on CUDA only"):
        to_semi_structured(model)
    assert same_state(model, before)


def test_a_named_layer_without_the_pattern_is_refused():
    model = nn.Sequential(nn.Linear(8, 8))
    with pytest.raises(InputError, match="'0': its weight is not 2:4 sparse"):
        to_semi_structured(model, ["0"])
    with pytest.raises(InputError, match="no Linear layer of the model carries a 2:4 mask"):
        to_semi_structured(model)
    with pytest.raises(InputError, match=r"\['nope'\] are not Linear modules"):
        to_semi_structured(model, ["nope"])


@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.get_device_capability() < (8, 0),
                    reason="semi-structured sparse tensors need CUDA with compute capability >= 8.0")
def test_converted_layers_compute_what_the_masked_ones_did():
    model = two_four_mlp("cuda", torch.float16)
    x = torch.randn(32, 64, device="cuda", dtype=torch.float16)
    with torch.no_grad():
        masked = model(x)
        assert to_semi_structured(model) == ["0", "2"]
        assert torch.allclose(model(x), masked, atol=1e-2, rtol=1e-2)
    assert isinstance(model[0].weight.data, torch.sparse.SparseSemiStructuredTensor)
