"""head / mlp / hidden targets on small random-init transformers: masked == shrunk for heads and
MLP neurons, hidden width measured; attributes and configs follow; save/reload; generate."""
import warnings

import pytest
import torch
from hf_zoo import HF_ZOO, LANGUAGE_MODELS, build

import pruner_iface as pi
from pruner_iface.inputs import normalize_inputs, output_tensors


def first_output(model, inputs):
    args, kwargs = normalize_inputs(inputs)
    with torch.no_grad():
        return output_tensors(model(*args, **kwargs))[0]


def prune(name, target, amount, metric="l1"):
    model, x = build(name)
    dense = first_output(model, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruner = pi.Pruner(model, x, target=target, metric=metric, objective={"name": "sparsity", "target": amount})
        report = pruner.run()
        masked = first_output(model, x)
        pruner.speed_up()
    return model, x, pruner, report, dense, masked, first_output(model, x)


CASES = [(name, "head", 0.5) for name in HF_ZOO] + \
        [(name, "mlp", 0.5) for name in HF_ZOO] + \
        [(name, "head", 0.25) for name in ("bert", "gpt2", "t5", "timm_vit")]


@pytest.mark.parametrize("name,target,amount", CASES)
def test_heads_and_neurons_shrink_exactly(name, target, amount, tmp_path):
    model, x, pruner, report, dense, masked, shrunk = prune(name, target, amount)
    assert shrunk.shape == dense.shape
    assert (masked - shrunk).abs().max().item() <= 1e-4 * max(1.0, masked.abs().max().item())
    assert report.params < report.dense_params and pi.count_params(model) == report.params
    kept = sum(row.units_kept for row in report.layers)
    total = sum(row.units_total for row in report.layers)
    assert total - kept >= amount * total - len(report.layers)  # within one unit per layer (rounded up)
    pi.save_pruned(model, tmp_path / "pruned.pt")
    fresh, _ = build(name, seed=5)
    pi.load_pruned(tmp_path / "pruned.pt", fresh)
    assert torch.equal(first_output(fresh, x), shrunk)


def test_sparsity_half_of_heads_removes_half_of_the_query_heads():
    model, x, pruner, *_ = prune("bert", "head", 0.5)
    for layer in model.encoder.layer:
        attention = layer.attention.self
        assert attention.num_attention_heads == 2 and attention.all_head_size == 16
        assert attention.query.out_features == attention.key.out_features == attention.value.out_features == 16
        assert layer.attention.output.dense.in_features == 16


def test_grouped_query_attention_prunes_query_heads_evenly_per_kv_group_by_default(tmp_path):
    model, x, pruner, report, dense, masked, shrunk = prune("llama", "head", 0.5)
    for layer in model.model.layers:
        attention = layer.self_attn
        assert attention.q_proj.out_features == 2 * attention.head_dim  # half of the 4 query heads
        assert attention.k_proj.out_features == attention.v_proj.out_features == 2 * attention.head_dim
        assert attention.num_key_value_groups == 1 and attention.o_proj.in_features == 2 * attention.head_dim
    assert model.config.num_attention_heads == 2 and model.config.num_key_value_heads == 2
    model.save_pretrained(tmp_path)
    import transformers

    reloaded = transformers.LlamaForCausalLM.from_pretrained(tmp_path).eval()
    assert torch.equal(first_output(reloaded, x), shrunk)


def test_grouped_query_attention_kv_mode_removes_a_kv_head_with_its_query_heads(tmp_path):
    model, x = build("llama")
    pruner = pi.Pruner(model, x, target={"name": "head", "gqa": "kv"}, metric="l1",
                       objective={"name": "sparsity", "target": 0.5})
    pruner.run()
    masked = first_output(model, x)
    pruner.speed_up()
    assert (masked - first_output(model, x)).abs().max().item() <= 1e-4 * max(1.0, masked.abs().max().item())
    attention = model.model.layers[0].self_attn
    assert attention.k_proj.out_features == attention.head_dim and attention.num_key_value_groups == 2
    assert model.config.num_attention_heads == 2 and model.config.num_key_value_heads == 1


def tiny_llama(heads, kv_heads, hidden, layers):
    """A LlamaForCausalLM with head_dim 8 and the given query/key-value heads, and its inputs."""
    import transformers

    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=64, hidden_size=hidden, num_hidden_layers=layers,
                                      num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=8,
                                      intermediate_size=48, max_position_embeddings=16)
    return transformers.LlamaForCausalLM(config).eval(), (torch.randint(0, 64, (2, 5)),)


def test_single_kv_head_keeps_it_and_prunes_query_heads_evenly():
    model, x = tiny_llama(heads=6, kv_heads=1, hidden=48, layers=1)
    pruner = pi.Pruner(model, x, target="head", metric="l2", objective={"name": "sparsity", "target": 0.5})
    pruner.run()
    masked = first_output(model, x)
    pruner.speed_up()
    assert (masked - first_output(model, x)).abs().max().item() <= 1e-4 * max(1.0, masked.abs().max().item())
    attention = model.model.layers[0].self_attn
    assert attention.q_proj.out_features == 3 * 8 and attention.k_proj.out_features == 8
    assert attention.num_key_value_groups == 3


@pytest.mark.parametrize("seed", range(4))
def test_channel_target_prunes_grouped_query_heads_evenly_too(seed):
    from pruner_iface.targets.channel import BalancedHeadLayer

    model, x = tiny_llama(heads=4, kv_heads=2, hidden=32, layers=2)
    pruner = pi.Pruner(model, x, target="channel", metric={"name": "random", "seed": seed},
                       objective={"name": "sparsity", "target": 0.5})
    heads = [layer for layer in pruner.layers if layer.groups[0].attention]
    assert heads and all(isinstance(layer, BalancedHeadLayer) for layer in heads)
    assert not any(g.approximate for layer in pruner.layers for g in layer.groups)  # hidden width: output-bound
    pruner.run()
    masked = first_output(model, x)
    pruner.speed_up()
    assert (masked - first_output(model, x)).abs().max().item() <= 1e-4 * max(1.0, masked.abs().max().item())


def test_balanced_head_layer_rounds_to_whole_rounds_and_picks_within_each_kv_group():
    from pruner_iface.targets.channel import BalancedHeadLayer

    model, x = build("llama")
    pruner = pi.Pruner(model, x, target="head", metric="l1", objective={"name": "sparsity", "target": 0.3})
    layer = pruner.layers[0]
    assert isinstance(layer, BalancedHeadLayer)
    assert layer.legal_count(1) == 2 and layer.max_units == 2  # whole rounds over the 2 kv groups
    assert layer.kv.tolist() == [0, 0, 1, 1]
    picked = layer.choose(torch.tensor([0.1, 5.0, 3.0, 0.2]), 2)  # not the two lowest overall (0.1, 0.2 is)
    assert picked.tolist() == [True, False, False, True]
    assert layer.choose(torch.tensor([0.1, 0.2, 3.0, 5.0]), 2).tolist() == [True, False, True, False]


def test_t5_cross_attention_heads_are_pruned_with_its_zero_position_bias(tmp_path):
    model, x = build("t5")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pruner = pi.Pruner(model, x, target="head", metric="l1", objective={"name": "sparsity", "target": 0.5})
    assert not [w for w in caught if "graph" in str(w.message)]
    pruner.run()
    masked = first_output(model, x)
    pruner.speed_up()
    shrunk = first_output(model, x)
    assert (masked - shrunk).abs().max().item() <= 1e-4 * max(1.0, masked.abs().max().item())
    for block in model.decoder.block:  # the bias zeros(1, n_heads, q, k) is shared by every decoder layer
        cross = block.layer[1].EncDecAttention
        assert cross.n_heads == 2 and cross.q.out_features == cross.o.in_features == 2 * cross.key_value_proj_dim
    assert model.config.num_heads == 2
    model.save_pretrained(tmp_path)
    import transformers

    reloaded = transformers.T5Model.from_pretrained(tmp_path).eval()
    assert torch.equal(first_output(reloaded, x), shrunk)


def test_unknown_gqa_mode_is_refused():
    model, x = build("llama")
    with pytest.raises(pi.errors.ConfigError, match="gqa"):
        pi.Pruner(model, x, target={"name": "head", "gqa": "groups"}, metric="l1",
                  objective={"name": "sparsity", "target": 0.5})


@pytest.mark.parametrize("name", LANGUAGE_MODELS)
def test_pruned_language_models_still_generate(name):
    model, x, *_ = prune(name, "head", 0.5)
    prune_mlp = pi.Pruner(model, x, target="mlp", metric="l2", objective={"name": "sparsity", "target": 0.5})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prune_mlp.run()
        prune_mlp.speed_up()
    out = model.generate(x[0][:1], max_new_tokens=4, do_sample=False, pad_token_id=0)
    assert out.shape == (1, x[0].shape[1] + 4)


@pytest.mark.parametrize("name", ["bert", "llama", "gpt2", "t5", "vit", "timm_vit"])
def test_hidden_width_is_coupled_everywhere_and_its_difference_reported(name, tmp_path):
    model, x, pruner, report, dense, masked, shrunk = prune(name, "hidden", 0.25)
    difference = report.extra["speed_up_max_relative_difference"]
    assert 0 <= difference < 1.0
    width = {m.weight.shape[-1] for m in model.modules() if "Norm" in type(m).__name__}
    assert width == {24}  # every normalisation shrank with the stream
    if name in ("bert", "t5", "vit"):  # encoders return the hidden state itself, narrower
        assert shrunk.shape[-1] == 24 and dense.shape[-1] == 32
    else:
        assert shrunk.shape == dense.shape
    pi.save_pruned(model, tmp_path / "pruned.pt")
    fresh, _ = build(name, seed=5)
    pi.load_pruned(tmp_path / "pruned.pt", fresh)
    assert torch.equal(first_output(fresh, x), shrunk)


def test_tied_embedding_and_lm_head_shrink_together():
    model, x, *_ = prune("gpt2", "hidden", 0.25)
    assert model.lm_head.weight is model.transformer.wte.weight
    assert model.transformer.wte.weight.shape == (96, 24) and model.lm_head.in_features == 24


def test_config_that_cannot_express_pruned_heads_is_left_alone_with_a_warning():
    model, x = build("bert")
    pruner = pi.Pruner(model, x, target="head", metric="l1", objective={"name": "sparsity", "target": 0.5})
    pruner.run()
    with pytest.warns(UserWarning, match="save_pruned"):
        pruner.speed_up()
    assert model.config.num_attention_heads == 4  # head size is derived from hidden_size / heads in BERT


def test_model_without_attention_has_no_heads_to_prune():
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    with pytest.raises(pi.errors.ConfigError, match="head target found no prunable attention head"):
        pi.Pruner(model, (torch.randn(2, 8),), target="head", metric="l1",
                  objective={"name": "sparsity", "target": 0.5})


def test_multi_head_llama_without_grouping_updates_its_config(tmp_path):
    import transformers

    model, x = tiny_llama(heads=4, kv_heads=4, hidden=32, layers=2)
    pruner = pi.Pruner(model, x, target="head", metric="l2", objective={"name": "sparsity", "target": 0.5})
    assert all(type(layer).__name__ == "GroupLayer" for layer in pruner.layers)  # no grouping: plain heads
    pruner.run()
    masked = first_output(model, x)
    pruner.speed_up()
    assert (masked - first_output(model, x)).abs().max().item() <= 1e-4 * max(1.0, masked.abs().max().item())
    assert model.config.num_attention_heads == model.config.num_key_value_heads == 2
    model.save_pretrained(tmp_path)
    reloaded = transformers.LlamaForCausalLM.from_pretrained(tmp_path).eval()
    assert torch.equal(first_output(reloaded, x), first_output(model, x))


def test_channel_round_to_rounds_neurons_but_counts_heads_whole():
    model, x = build("bert")
    heads = model.config.num_attention_heads
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruner = pi.Pruner(model, x, target={"name": "channel", "module_types": ["Linear"], "round_to": 8},
                           metric="l1", objective={"name": "sparsity", "target": 0.5})
        pruner.run()
        pruner.speed_up()
    layers = model.encoder.layer
    assert heads < 8 < model.config.intermediate_size
    assert all(layer.attention.self.num_attention_heads < heads for layer in layers)  # fewer heads than round_to: pruned
    assert all(layer.intermediate.dense.out_features % 8 == 0 for layer in layers)
