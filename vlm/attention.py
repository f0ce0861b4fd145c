"""Text attention of the local backend on a CPU when a chunk follows a cached prefix.

transformers' SDPA path builds a boolean (chunk x cache) mask for any chunk that follows cached
tokens, and PyTorch's CPU attention with a mask is several times slower than its causal kernel
(it converts the mask in every layer and cannot skip the blocks above the diagonal). Measured on
the tiny checkpoint, 6,800 tokens after a 61-token prefix took 3.6 s against 1.1 s from an empty
cache (docs/models.md): a reused prefix made the step slower.

The local backend runs one sequence without padding, so the mask is always "causal, shifted by
the prefix length P" and needs no tensor. ``prefix_sdpa`` (registered with transformers'
``AttentionInterface`` as ``PREFIX_SDPA``; as a custom name, no mask is built for it) computes:

- a chunk from an empty cache, or one token: SDPA as transformers does (causal / unmasked);
- a chunk of L after P cached tokens, P small against L: the query padded with P zero rows in
  front, so the chunk is the causal kernel's lower triangle, and the pad rows' outputs dropped;
- P large against L: one additive float mask per shape (every layer of a forward pass shares
  it), so no layer converts a boolean mask.

Only the DynamicCache path uses it (a StaticCache's keys include unwritten slots that a mask must
hide), and only on a CPU; CUDA keeps transformers' SDPA.
"""

from __future__ import annotations

from typing import Any

PREFIX_SDPA = "pixelpilot_prefix_sdpa"
PAD_RATIO = 1.5
"""Pad the query when P <= PAD_RATIO * L: the causal kernel's (P+L)^2/2 pairs then cost less
than the masked kernel's L*(P+L) (about 1.2-1.5x dearer per pair on a CPU)."""

_masks: dict[tuple[int, int, Any, Any], Any] = {}


def prefix_sdpa(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    **kwargs: Any,
) -> tuple[Any, None]:
    """transformers' attention-function signature: query (1, heads, L, d), key and value
    (1, kv_heads, P + L, d) after the cache update; returns (1, L, heads, d)."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    n, total = query.shape[2], key.shape[2]
    prefix = total - n
    if n == 1 or prefix == 0 or attention_mask is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    if prefix <= PAD_RATIO * n:
        pad = query.new_zeros(query.shape[0], query.shape[1], prefix, query.shape[3])
        out, _ = sdpa_attention_forward(
            module, torch.cat([pad, query], dim=2), key, value, None, is_causal=True, **kwargs
        )
        return out[:, prefix:], None
    return sdpa_attention_forward(module, query, key, value, _mask(n, total, query), **kwargs)


def _mask(n: int, total: int, query: Any) -> Any:
    """The (1, 1, n, total) additive mask of n tokens after total - n cached ones."""
    import torch

    key = (n, total, query.dtype, query.device)
    mask = _masks.get(key)
    if mask is None:
        rows = torch.arange(n, device=query.device)[:, None] + (total - n)
        allowed = rows >= torch.arange(total, device=query.device)[None, :]
        mask = torch.zeros(n, total, dtype=query.dtype, device=query.device)
        mask.masked_fill_(~allowed, torch.finfo(query.dtype).min)
        _masks[key] = mask = mask.view(1, 1, n, total)
    return mask


def forget_masks() -> None:
    """Drop the masks kept for the layers of the last forward pass."""
    _masks.clear()


def use_prefix_sdpa(model: Any) -> None:
    """Run ``model``'s text attention through ``prefix_sdpa`` (its vision tower keeps SDPA)."""
    from transformers import AttentionInterface

    AttentionInterface.register(PREFIX_SDPA, prefix_sdpa)
    model.set_attn_implementation({"text_config": PREFIX_SDPA})
