"""Speed-up for attention and Hugging Face models: after the tensors are sliced, bring head
counts and widths held as module attributes, and the model's config, in line with them.

Head counts are found in the graph (one label per query head of each attention op), not from
class names; the attributes updated are the ones a module reads in forward (num_heads,
num_key_value_heads, all_head_size, split_size, ...), and only where their value is the old one.
A Hugging Face config is updated only if the updated config rebuilds exactly the shrunk shapes
(checked by building the model on the meta device); otherwise it is left as it was and
`pi.save_pruned` / `pi.load_pruned` carry the per-layer sizes.
"""
from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .mha import HeadPrunedMultiheadAttention, switch_to_head_pruned

QUERY_HEADS = ("num_heads", "num_attention_heads", "n_heads", "n_head", "heads")
KV_HEADS = ("num_key_value_heads", "num_kv_heads", "n_kv_heads")
WIDTHS = ("all_head_size", "inner_dim", "split_size")
CONFIG_WIDTHS = {"intermediate": ("intermediate_size", "n_inner", "d_ff", "ffn_dim", "encoder_ffn_dim"),
                 "hidden": ("hidden_size", "n_embd", "d_model", "dim")}


@dataclass(frozen=True)
class HeadCount:
    """Query and key/value head counts of one attention module before and after pruning."""

    old_q: int
    new_q: int
    old_kv: int
    new_kv: int


def head_counts(heads: dict, pruned: set[int]) -> dict[str, HeadCount]:
    """Counts of every attention module (graph.AttentionHeads per module) that loses heads."""
    out = {}
    for module, site in heads.items():
        kept = [g for label, g in zip(site.labels, site.kv_groups) if label not in pruned]
        if len(kept) != len(site.labels):
            out[module] = HeadCount(len(site.labels), len(kept), len(set(site.kv_groups)), len(set(kept)))
    return out


def update_attention(model: nn.Module, counts: dict[str, HeadCount]) -> dict[nn.Module, dict[str, Any]]:
    """Set the head-count and width attributes of each attention module; returns the old values."""
    saved: dict[nn.Module, dict[str, Any]] = {}
    for path, c in counts.items():
        module = model.get_submodule(path)
        changes = {name: c.new_q for name in QUERY_HEADS if getattr(module, name, None) == c.old_q}
        if c.old_kv != c.old_q:
            changes.update({name: c.new_kv for name in KV_HEADS if getattr(module, name, None) == c.old_kv})
        if getattr(module, "num_key_value_groups", None) == c.old_q // c.old_kv and c.new_kv:
            changes["num_key_value_groups"] = c.new_q // c.new_kv
        for name in WIDTHS:
            value = getattr(module, name, None)
            if isinstance(value, int) and not isinstance(value, bool) and value % c.old_q == 0:
                changes[name] = value // c.old_q * c.new_q
        saved[module] = {name: getattr(module, name) for name in changes}
        if isinstance(module, nn.MultiheadAttention) and not isinstance(module, HeadPrunedMultiheadAttention):
            saved[module].update(switch_to_head_pruned(module))  # torch's forward needs the full width
        for name, value in changes.items():
            setattr(module, name, value)
    return saved


def restore_attention(saved: dict[nn.Module, dict[str, Any]]) -> None:
    """Undo update_attention (class switches included)."""
    for module, attrs in saved.items():
        for name, value in attrs.items():
            setattr(module, name, value)


def update_config(model: nn.Module, counts: dict[str, HeadCount], widths: dict[str, int]) -> dict:
    """Update a Hugging Face `model.config` where it can express the shrunk model (uniform sizes);
    `widths` maps "intermediate" / "hidden" to the one kept width of every such layer. Returns
    the old values of what changed (empty when nothing could be or had to be)."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "to_dict"):
        return {}
    changes: dict[str, int] = {}
    if counts and len(set(counts.values())) == 1:
        c = next(iter(counts.values()))
        if getattr(config, "num_attention_heads", None) == c.old_q:
            changes["num_attention_heads"] = c.new_q
            if getattr(config, "num_key_value_heads", None) == c.old_kv:
                changes["num_key_value_heads"] = c.new_kv
    for kind, width in widths.items():
        key = next((k for k in CONFIG_WIDTHS[kind] if hasattr(config, k)
                    and (getattr(config, k) is None or isinstance(getattr(config, k), int))), None)
        if key is not None:
            changes[key] = width
    changed = {k: v for k, v in changes.items() if getattr(config, k) != v}
    if not changed:
        return {}
    shapes = {name: p.shape for name, p in model.state_dict().items()}
    saved = {k: getattr(config, k) for k in changed}
    for k, v in changed.items():
        setattr(config, k, v)
    if not _config_rebuilds(model, shapes):
        for k, v in saved.items():
            setattr(config, k, v)
        warnings.warn(f"pruner_iface: the pruned {type(model).__name__} has sizes its config cannot express "
                      f"(per-layer counts, or head widths derived from hidden_size); its config is unchanged: "
                      f"save it with pi.save_pruned and load it with pi.load_pruned", stacklevel=3)
        return {}
    return saved


def _config_rebuilds(model: nn.Module, shapes: dict[str, torch.Size]) -> bool:
    """Does `type(model)(model.config)` have exactly these parameter and buffer shapes?"""
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fresh = type(model)(copy.deepcopy(model.config))
    except Exception:
        return False
    rebuilt = {name: p.shape for name, p in fresh.state_dict().items()}
    return all(rebuilt.get(name) == shape for name, shape in shapes.items() if name in rebuilt) and \
        set(rebuilt) >= {n for n in shapes if not n.endswith("_mask")}


SIZE_ATTRIBUTES = QUERY_HEADS + KV_HEADS + WIDTHS + ("num_key_value_groups",)
CONFIG_KEYS = ("num_attention_heads", "num_key_value_heads") + tuple(k for ks in CONFIG_WIDTHS.values() for k in ks)


def size_attributes(model: nn.Module) -> dict[str, dict[str, int]]:
    """The head counts and widths held as attributes ("" for the config), for save_pruned."""
    out = {name: {a: v for a in SIZE_ATTRIBUTES if isinstance(v := getattr(module, a, None), int)}
           | ({"head_pruned_mha": 1} if isinstance(module, HeadPrunedMultiheadAttention) else {})
           for name, module in model.named_modules()}
    out = {f"module:{k}": v for k, v in out.items() if v}
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "to_dict"):
        out["config"] = {k: v for k in CONFIG_KEYS if hasattr(config, k) and isinstance(v := getattr(config, k), int)}
    return out


def apply_size_attributes(model: nn.Module, spec: dict[str, dict[str, int]]) -> None:
    for key, attrs in spec.items():
        kind, _, name = key.partition(":")
        target = getattr(model, "config", None) if kind == "config" else model.get_submodule(name)
        if target is not None:
            attrs = dict(attrs)
            if attrs.pop("head_pruned_mha", 0) and isinstance(target, nn.MultiheadAttention):
                switch_to_head_pruned(target)
            for attr, value in attrs.items():
                setattr(target, attr, value)
