"""Choosing the next token from the logits under a call's sampling settings.

Greedy when the temperature is 0 (or top_k is 1); else transformers' order of processors:
repetition penalty (over the prompt and the answer so far), frequency penalty (OpenAI's, over
the answer so far), temperature, top-k, top-p, then a
draw from the remaining distribution with the backend's seeded generator.
"""

from __future__ import annotations

from typing import Any

from pixelpilot.vlm.base import Sampling


def pick(logits: Any, s: Sampling, prompt_ids: list[int], out: list[int], generator: Any) -> int:
    """The next token: ``logits`` (vocabulary,) of the last position, ``s`` the call's
    settings, ``prompt_ids``/``out`` the tokens so far. ``logits`` may be changed in place."""
    import torch

    penalty = float(s.repetition_penalty or 1.0)
    if penalty != 1.0:  # as transformers' RepetitionPenaltyLogitsProcessor: prompt + answer
        seen = torch.tensor(sorted(set(prompt_ids) | set(out)), device=logits.device)
        picked = logits[seen]
        logits[seen] = torch.where(picked < 0, picked * penalty, picked / penalty)
    if s.frequency_penalty and out:  # OpenAI's: minus penalty x count in the answer so far
        ids, counts = torch.unique(torch.tensor(out, device=logits.device), return_counts=True)
        logits[ids] -= float(s.frequency_penalty) * counts.to(logits.dtype)
    temperature = float(s.temperature or 0.0)
    if temperature <= 0 or s.top_k == 1:
        return int(torch.argmax(logits))
    logits = logits / temperature
    if s.top_k and s.top_k < logits.shape[0]:
        kth = torch.topk(logits, int(s.top_k)).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if s.top_p is not None and s.top_p < 1.0:
        ordered, order = torch.sort(logits, descending=True)
        cum = torch.softmax(ordered, dim=-1).cumsum(-1)
        drop = cum - torch.softmax(ordered, dim=-1) >= s.top_p  # keep the first token always
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    # exponential-race sampling (argmax p_i / E_i, E_i ~ Exp(1)) draws i with probability
    # p_i, like multinomial, at a tenth of its cost over a 152k vocabulary on a CPU
    race = torch.empty_like(probs).exponential_(1.0, generator=generator)
    return int(torch.argmax(probs / race))
