"""nn.MultiheadAttention heads: after speed_up the module runs as HeadPrunedMultiheadAttention
(inner width below embed_dim) and computes what the masked original computed, with every mask."""
import pytest
import torch
from torch import nn

import pruner_iface as pi


def encoder(batch_first):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=batch_first)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()


def prune_heads(model, inputs, amount=0.5):
    pruner = pi.Pruner(model, inputs, target="head", metric="l1", objective={"name": "sparsity", "target": amount})
    pruner.run()
    return pruner


@pytest.mark.parametrize("batch_first", [True, False])
def test_transformer_encoder_heads_shrink_exactly_with_padding_masks(batch_first, tmp_path):
    model = encoder(batch_first)
    x = torch.randn(2, 6, 32) if batch_first else torch.randn(6, 2, 32)
    padding = torch.zeros(2, 6, dtype=torch.bool)
    padding[1, 4:] = True
    pruner = prune_heads(model, (x,))
    with torch.no_grad():
        masked, masked_padded = model(x), model(x, src_key_padding_mask=padding)
    pruner.speed_up()
    attention = model.layers[0].self_attn
    assert type(attention).__name__ == "HeadPrunedMultiheadAttention" and attention.num_heads == 2
    assert attention.in_proj_weight.shape == (3 * 16, 32) and attention.out_proj.in_features == 16
    with torch.no_grad():
        assert torch.allclose(model(x), masked, atol=1e-5)
        assert torch.allclose(model(x, src_key_padding_mask=padding), masked_padded, atol=1e-5)
    pi.save_pruned(model, tmp_path / "p.pt")
    fresh = encoder(batch_first)
    pi.load_pruned(tmp_path / "p.pt", fresh)
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))
    torch.save(model, tmp_path / "m.pt")
    assert torch.equal(torch.load(tmp_path / "m.pt", weights_only=False)(x), model(x))


class Causal(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(24, 6, batch_first=True)
        self.head = nn.Linear(24, 3)

    def forward(self, x, need_weights=False):
        mask = torch.ones(x.shape[-2], x.shape[-2], dtype=torch.bool).triu(1)
        out, _ = self.attn(x, x, x, attn_mask=mask, need_weights=need_weights)
        return self.head(out)


@pytest.mark.parametrize("need_weights", [False, True])
def test_module_with_causal_mask_and_weights_and_unbatched_input(need_weights):
    torch.manual_seed(1)
    model = Causal().eval()
    x = torch.randn(2, 5, 24)
    pruner = prune_heads(model, (x, need_weights), amount=1 / 3)
    with torch.no_grad():
        masked, masked_single = model(x, need_weights), model(x[0], need_weights)
    pruner.speed_up()
    assert model.attn.num_heads == 4
    with torch.no_grad():
        assert torch.allclose(model(x, need_weights), masked, atol=1e-5)
        assert torch.allclose(model(x[0], need_weights), masked_single, atol=1e-5)  # unbatched
    _, weights = model.attn(x, x, x, need_weights=True, average_attn_weights=False)
    assert weights.shape == (2, 4, 5, 5)
