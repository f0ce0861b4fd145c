"""Grammar-constrained decoding with llguidance: one ``GrammarConstraint`` per generation.

A decode loop asks the constraint for the tokens the grammar forces (``forced``), masks the
logits of each free step (``mask_logits``), and tells it every token it took (``advance``)::

    c = GrammarConstraint(prompt.grammar, tokenizer, model.config.vocab_size)
    while not c.done:
        ids = c.forced() or [sample(c.mask_logits(logits) or logits)]
        for t in ids:
            c.advance(t)          # and feed t to the model

Costs are kept off the per-token path: the llguidance tokenizer (~1-3 s for the Qwen vocab) is
built once per (tokenizer, vocab size); a grammar is compiled once per (tokenizer, grammar) and
each generation deep-copies the compiled matcher; the mask is written into one preallocated
bitmask and unpacked without Python loops. Pass the MODEL's vocabulary size (151936 for
Qwen2-VL-2B): rows past the tokenizer's never carry text and stay masked. Every stop id the
tokenizer knows (``<|im_end|>``, ``<|endoftext|>`` and its eos) ends a generation, allowed only
where the grammar is complete.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import llguidance
import llguidance.hf
import numpy as np
import torch

from pixelpilot.agent.errors import ConfigError, ModelError

__all__ = ["STOP_TOKENS", "GrammarConstraint", "ll_tokenizer", "stop_ids"]

STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")
"""Token strings that end a Qwen-family answer; looked up in each tokenizer by string."""

_LOCK = threading.Lock()
_TOKENIZERS: OrderedDict[tuple[int, int], tuple[Any, llguidance.LLTokenizer, frozenset[int]]] = (
    OrderedDict()
)
_MATCHERS: OrderedDict[tuple[int, str], tuple[llguidance.LLTokenizer, llguidance.LLMatcher]] = (
    OrderedDict()
)
_MAX_TOKENIZERS = 4
_MAX_MATCHERS = 128


def stop_ids(tokenizer: Any) -> list[int]:
    """Ids of every stop token ``tokenizer`` knows: ``STOP_TOKENS`` and its eos, in that order."""
    vocab = tokenizer.get_vocab()
    ids = [vocab[t] for t in STOP_TOKENS if t in vocab]
    eos = getattr(tokenizer, "eos_token_id", None)
    if isinstance(eos, int) and eos not in ids:
        ids.append(eos)
    if not ids:
        raise ConfigError("the tokenizer has no stop token (<|im_end|>, <|endoftext|> or eos)")
    return ids


def ll_tokenizer(tokenizer: Any, vocab_size: int) -> llguidance.LLTokenizer:
    """The llguidance tokenizer for an HF fast tokenizer and the model's vocabulary size.

    Built once per (tokenizer object, vocab size); the tokenizer is kept alive with it.
    """
    return _cached_tokenizer(tokenizer, vocab_size)[0]


def _cached_tokenizer(
    tokenizer: Any, vocab_size: int
) -> tuple[llguidance.LLTokenizer, frozenset[int]]:
    key = (id(tokenizer), vocab_size)
    with _LOCK:
        hit = _TOKENIZERS.get(key)
        if hit is not None and hit[0] is tokenizer:
            _TOKENIZERS.move_to_end(key)
            return hit[1], hit[2]
    if vocab_size < len(tokenizer):
        raise ConfigError(
            f"vocab_size {vocab_size} is smaller than the tokenizer's {len(tokenizer)} tokens; "
            "pass the model's vocabulary size (config.vocab_size)"
        )
    stops = stop_ids(tokenizer)
    try:
        llt = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size, eos_token=stops)
    except ValueError as err:
        raise ConfigError(f"constrained decoding needs a fast tokenizer: {err}") from None
    with _LOCK:
        _TOKENIZERS[key] = (tokenizer, llt, frozenset(stops))
        while len(_TOKENIZERS) > _MAX_TOKENIZERS:
            _TOKENIZERS.popitem(last=False)
    return llt, frozenset(stops)


def _compiled(llt: llguidance.LLTokenizer, grammar: str) -> llguidance.LLMatcher:
    """A fresh matcher for ``grammar``: a deep copy of the one compiled per (tokenizer, grammar).

    The entry keeps its tokenizer alive and is used only for that very object: an id alone
    can be reused by a later tokenizer of another vocabulary size (a wrong-size mask)."""
    key = (id(llt), grammar)
    with _LOCK:
        hit = _MATCHERS.get(key)
        if hit is not None and hit[0] is llt:
            _MATCHERS.move_to_end(key)
            return hit[1].deep_copy()
    m = llguidance.LLMatcher(llt, grammar, log_level=0)
    if m.is_error():
        raise ConfigError(f"the decoding grammar does not compile: {_first_line(m.get_error())}")
    with _LOCK:
        _MATCHERS[key] = (llt, m)
        while len(_MATCHERS) > _MAX_MATCHERS:
            _MATCHERS.popitem(last=False)
    return m.deep_copy()


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "unknown error"


class GrammarConstraint:
    """The state of one constrained generation over a model vocabulary of ``vocab_size``."""

    def __init__(self, grammar: str, tokenizer: Any, vocab_size: int) -> None:
        self.vocab_size = vocab_size
        self.tokenizer, self.stop_ids = _cached_tokenizer(tokenizer, vocab_size)
        self._matcher = _compiled(self.tokenizer, grammar)
        self._words = torch.full((1, (vocab_size + 31) // 32), -1, dtype=torch.int32)
        self._np_words = self._words.numpy().view(np.uint8)
        self._allowed = torch.empty(self._words.shape[1] * 32, dtype=torch.bool)
        self._np_allowed = self._allowed.numpy()
        self._device_words: torch.Tensor | None = None
        self._shifts: torch.Tensor | None = None
        self.tokens: list[int] = []
        """Every token consumed so far (forced ones included)."""
        self._stopped = False

    # -- state ---------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """The grammar is complete and admits nothing more, or a stop token was consumed."""
        return self._stopped or self._matcher.is_stopped()

    @property
    def accepting(self) -> bool:
        """The text so far is a complete answer (a stop token would be allowed now)."""
        return self._matcher.is_accepting()

    def forced(self) -> list[int]:
        """Tokens the grammar forces next (maybe none); NOT consumed: ``advance`` each one."""
        if self.done:
            return []
        return self._matcher.compute_ff_tokens()

    def advance(self, token_id: int) -> None:
        """Consume one token the model took. ModelError if the grammar does not allow it."""
        if self._stopped:
            raise ModelError(f"token {token_id} after the generation ended")
        if token_id in self.stop_ids and self._matcher.is_accepting():
            self._stopped = True
            self.tokens.append(token_id)
            return
        if not self._matcher.consume_token(token_id):
            text = self.tokenizer.decode_str([token_id]) if token_id < self.vocab_size else "?"
            so_far = self.tokenizer.decode_str(self.tokens)[-60:]
            raise ModelError(
                f"token {token_id} ({text!r}) breaks the grammar after {so_far!r}: "
                f"{_first_line(self._matcher.get_error())}"
            )
        self.tokens.append(token_id)

    def allows(self, token_id: int) -> bool:
        """Whether ``token_id`` may come next: a cheap check without computing the mask, for
        loops that sample first and mask only when the sample is refused."""
        if self.done:
            return token_id in self.stop_ids
        if token_id in self.stop_ids:
            return self._matcher.is_accepting()
        return self._matcher.validate_tokens([token_id]) == 1

    # -- masking -------------------------------------------------------------------------------
    def allowed(self) -> torch.Tensor:
        """Bool tensor over the vocabulary: which tokens the grammar allows next (CPU, reused)."""
        self._fill()
        self._unpack()
        return self._allowed[: self.vocab_size]

    def mask_logits(self, logits: torch.Tensor) -> None:
        """Set the logits of disallowed tokens to -inf, in place (1-D, any device and dtype)."""
        if logits.dim() != 1:
            raise ValueError(f"mask_logits takes 1-D logits, got shape {tuple(logits.shape)}")
        self._fill()
        n = min(logits.shape[0], self.vocab_size)
        if logits.device.type == "cpu":
            self._unpack()
            blocked = ~self._allowed[:n]
        else:
            blocked = ~self._unpack_on(logits.device)[:n]
        logits[:n].masked_fill_(blocked, float("-inf"))
        if logits.shape[0] > n:
            logits[n:] = float("-inf")

    def _fill(self) -> None:
        if self.done:
            self._words.zero_()
            for t in self.stop_ids:
                if t < self.vocab_size:
                    self._words[0, t // 32] |= 1 << (t % 32)
        else:
            self._matcher.unsafe_compute_mask_ptr(self._words.data_ptr(), self._words.numel() * 4)
            if self._matcher.is_error():
                raise ModelError(
                    f"the grammar matcher failed: {_first_line(self._matcher.get_error())}"
                )

    def _unpack(self) -> None:
        self._np_allowed[:] = np.unpackbits(self._np_words, bitorder="little").view(np.bool_)

    def _unpack_on(self, device: torch.device) -> torch.Tensor:
        """The allowed-token mask on an accelerator: the packed words move, not 150k bools."""
        if self._device_words is None or self._device_words.device != device:
            self._device_words = torch.empty_like(self._words[0], device=device)
            self._shifts = torch.arange(32, dtype=torch.int32, device=device)
        assert self._shifts is not None
        self._device_words.copy_(self._words[0], non_blocking=True)
        bits = (self._device_words.unsqueeze(1) >> self._shifts) & 1
        return bits.reshape(-1).bool()
