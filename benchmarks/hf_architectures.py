"""Which Hugging Face architectures each structured target prunes: random-init small configs (no
downloads), `head`/`mlp`/`hidden`/`channel` at sparsity 0.5/0.5/0.25/0.3 with l1, then speed_up.

An outcome is `exact` (masked == shrunk within 1e-4 of the output scale), `approx` with the
measured relative difference (hidden width: normalisation over removed channels), `narrower`
(an encoder whose output is the hidden state itself), or the error a user would get, with the
graph's first warning. Architectures beyond the test zoo, to find couplings the rules miss.
"""
from __future__ import annotations

import argparse
import warnings

import torch
import transformers as tf

import pruner_iface as pi
from pruner_iface.inputs import normalize_inputs, output_tensors

from .common import machine_header
from .results_io import write_results

VOCAB = 96
SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48)
TARGETS = (("head", 0.5), ("mlp", 0.5), ("hidden", 0.25), ("channel", 0.3))


def _ids():
    return (torch.randint(1, VOCAB, (2, 7), generator=torch.Generator().manual_seed(1)),)


def _images(size=32):
    return (torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1)),)


def _lm(cls, config_cls, **config):
    return lambda: (cls(config_cls(vocab_size=VOCAB, **config)), _ids())


ARCHITECTURES = {
    "distilbert": lambda: (tf.DistilBertModel(tf.DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4,
                                                                  hidden_dim=48)), _ids()),
    "albert": _lm(tf.AlbertModel, tf.AlbertConfig, embedding_size=16, **SIZES),
    "electra": _lm(tf.ElectraModel, tf.ElectraConfig, embedding_size=16, **SIZES),
    "deberta_v2": _lm(tf.DebertaV2Model, tf.DebertaV2Config, **SIZES),
    "opt": _lm(tf.OPTForCausalLM, tf.OPTConfig, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
               ffn_dim=48, word_embed_proj_dim=32, pad_token_id=0),
    "gpt_neox": _lm(tf.GPTNeoXForCausalLM, tf.GPTNeoXConfig, **SIZES),
    "bloom": _lm(tf.BloomForCausalLM, tf.BloomConfig, hidden_size=32, n_layer=2, n_head=4),
    "falcon": _lm(tf.FalconForCausalLM, tf.FalconConfig, hidden_size=32, num_hidden_layers=2, num_attention_heads=4),
    "phi": _lm(tf.PhiForCausalLM, tf.PhiConfig, **SIZES),
    "gemma": _lm(tf.GemmaForCausalLM, tf.GemmaConfig, head_dim=8, num_key_value_heads=2, **SIZES),
    "qwen3": _lm(tf.Qwen3ForCausalLM, tf.Qwen3Config, head_dim=8, num_key_value_heads=2, **SIZES),
    "gptj": _lm(tf.GPTJForCausalLM, tf.GPTJConfig, n_embd=32, n_layer=2, n_head=4, rotary_dim=4, bos_token_id=0,
                eos_token_id=0),
    "bart": _lm(tf.BartModel, tf.BartConfig, d_model=32, encoder_layers=2, decoder_layers=2,
                encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=48, decoder_ffn_dim=48),
    "clip_text": _lm(tf.CLIPTextModel, tf.CLIPTextConfig, bos_token_id=0, eos_token_id=2, **SIZES),
    "swin": lambda: (tf.SwinModel(tf.SwinConfig(image_size=32, patch_size=4, embed_dim=16, depths=[2, 2],
                                                num_heads=[2, 4], window_size=4)), _images()),
    "convnext": lambda: (tf.ConvNextModel(tf.ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2)),
                         _images()),
    "resnet": lambda: (tf.ResNetModel(tf.ResNetConfig(hidden_sizes=[8, 16], depths=[1, 1], embedding_size=8)),
                       _images()),
    "mobilevit": lambda: (tf.MobileViTModel(tf.MobileViTConfig(image_size=32, hidden_sizes=[16, 24, 32],
                                                               neck_hidden_sizes=[8, 8, 16, 16, 24, 24, 32])),
                          _images()),
    "segformer": lambda: (tf.SegformerModel(tf.SegformerConfig(
        hidden_sizes=[8, 16], depths=[1, 1], num_encoder_blocks=2, num_attention_heads=[1, 2], sr_ratios=[2, 1],
        decoder_hidden_size=16, strides=[4, 2], patch_sizes=[7, 3], mlp_ratios=[2, 2])), _images()),
    "deit": lambda: (tf.DeiTModel(tf.DeiTConfig(image_size=16, patch_size=4, **SIZES)), _images(16)),
}


def _first(model, inputs):
    args, kwargs = normalize_inputs(inputs)
    with torch.no_grad():
        return output_tensors(model(*args, **kwargs))[0]


def outcome(name: str, target: str, amount: float) -> str:
    torch.manual_seed(0)
    model, inputs = ARCHITECTURES[name]()
    model.eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            pruner = pi.Pruner(model, inputs, target=target, metric="l1",
                               objective={"name": "sparsity", "target": amount})
            pruner.run()
            masked = _first(model, inputs)
            pruner.speed_up()
        except Exception as exc:  # the outcome a user would see is what this benchmark reports
            return f"{type(exc).__name__}: {str(exc)[:160]}"
    shrunk = _first(model, inputs)
    graph = [str(w.message) for w in caught if "pruner_iface graph" in str(w.message)]
    note = f" (warns: {graph[0][len('pruner_iface graph: '):][:100]})" if graph else ""
    if masked.shape != shrunk.shape:
        return "narrower" + note
    difference = (masked - shrunk).abs().max().item() / max(1.0, masked.abs().max().item())
    return ("exact" if difference <= 1e-4 else f"approx {difference:.1e}") + note


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated architectures (default: all)")
    args = parser.parse_args(argv)
    print(machine_header("Hugging Face architectures by structured target") + f"\ntransformers {tf.__version__}")
    names = [n for n in args.only.split(",") if n] or list(ARCHITECTURES)
    rows = []
    for name in names:
        row = {"architecture": name}
        for target, amount in TARGETS:
            row[f"{target} {amount}"] = outcome(name, target, amount)
        print(" | ".join(str(v) for v in row.values()), flush=True)
        rows.append(row)
    columns = ["architecture"] + [f"{t} {a}" for t, a in TARGETS]
    path = write_results("hf_architectures", f"Hugging Face architectures by structured target (transformers "
                         f"{tf.__version__})", columns, rows, [
        "Random-init small configs; l1 scores, sparsity objective, then speed_up. exact: masked == shrunk within "
        "1e-4 of the output scale; approx: relative difference (normalisation over removed hidden channels); "
        "narrower: the output is the hidden state itself; otherwise the error a user gets (speed_up restores "
        "the model when its output check fails)."])
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
