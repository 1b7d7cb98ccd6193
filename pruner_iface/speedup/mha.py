"""nn.MultiheadAttention with pruned heads.

torch's own forward requires the projections' inner width to equal `embed_dim` (and its fused
fast paths assume it), so a head-pruned nn.MultiheadAttention cannot run. speed_up switches such a
module to this subclass in place: same parameters, names and state-dict keys, an inner width of
num_heads x head_dim, and the same call signature and masks (attn_mask 2-D or per head,
key_padding_mask, is_causal, need_weights, batch_first or not, unbatched inputs).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SpeedUpError


class HeadPrunedMultiheadAttention(nn.MultiheadAttention):
    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        unbatched = query.dim() == 2
        if unbatched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            key_padding_mask = None if key_padding_mask is None else key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        length, batch, _ = query.shape
        source = key.shape[0]
        heads, head_dim = self.num_heads, self.head_dim
        if self.in_proj_weight is not None:
            w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        else:
            w_q, w_k, w_v = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        b_q, b_k, b_v = self.in_proj_bias.chunk(3) if self.in_proj_bias is not None else (None, None, None)

        def split(x, w, b, n):  # [n, batch, in] -> [batch, heads, n, head_dim]
            return F.linear(x, w, b).reshape(n, batch, heads, head_dim).permute(1, 2, 0, 3)

        q, k, v = split(query, w_q, b_q, length), split(key, w_k, b_k, source), split(value, w_v, b_v, source)
        mask = self._mask(attn_mask, key_padding_mask, batch, length, source, q.dtype)
        causal = is_causal and mask is None
        dropout = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            scores = q @ k.transpose(-2, -1) / math.sqrt(head_dim)
            if causal:
                scores = scores.masked_fill(torch.ones(length, source, dtype=torch.bool, device=q.device).triu(1),
                                            float("-inf"))
            if mask is not None:
                scores = scores + mask
            weights = F.dropout(scores.softmax(-1), dropout, self.training)
            out = weights @ v
            weights = weights.mean(1) if average_attn_weights else weights
            weights = weights.squeeze(0) if unbatched else weights
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=causal)
        out = F.linear(out.permute(2, 0, 1, 3).reshape(length, batch, heads * head_dim),
                       self.out_proj.weight, self.out_proj.bias)
        if unbatched:
            out = out.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def _mask(self, attn_mask, key_padding_mask, batch, length, source, dtype):
        """One additive mask [batch or 1, heads or 1, length, source] from torch's two masks."""
        def additive(m):
            return torch.zeros(m.shape, dtype=dtype, device=m.device).masked_fill(m, float("-inf")) \
                if m.dtype == torch.bool else m.to(dtype)

        mask = None
        if attn_mask is not None:
            mask = additive(attn_mask)
            if mask.dim() == 3:
                if mask.shape[0] != batch * self.num_heads:
                    raise ValueError(f"attn_mask has {mask.shape[0]} per-head rows; this attention has "
                                     f"{self.num_heads} heads (after pruning) x batch {batch}")
                mask = mask.reshape(batch, self.num_heads, length, source)
            else:
                mask = mask.reshape(1, 1, length, source)
        if key_padding_mask is not None:
            padding = additive(key_padding_mask).reshape(batch, 1, 1, source)
            mask = padding if mask is None else mask + padding
        return mask


def switch_to_head_pruned(module: nn.MultiheadAttention) -> dict:
    """Make `module` a HeadPrunedMultiheadAttention in place; returns what to restore on rollback."""
    if module.bias_k is not None or module.add_zero_attn:
        raise SpeedUpError("nn.MultiheadAttention with add_bias_kv or add_zero_attn cannot lose heads here")
    saved = {"__class__": type(module), "_qkv_same_embed_dim": module._qkv_same_embed_dim}
    module.__class__ = HeadPrunedMultiheadAttention
    module._qkv_same_embed_dim = False  # torch's fused encoder fast path assumes the full inner width
    return saved
