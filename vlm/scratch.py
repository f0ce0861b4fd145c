"""A small Qwen2-VL built from scratch for one domain: stock classes, a tokenizer of its own.

``build_scratch(dir, corpus)`` writes a checkpoint directory that loads exactly like a hub
checkpoint (``AutoProcessor`` / ``AutoModelForImageTextToText.from_pretrained``): a stock
``Qwen2VLForConditionalGeneration`` with random weights, sized to be trained on a 2-core CPU
(``DEMO_ARCH``: about 3.1 M parameters, 12.6 MB in fp32), the Qwen2-VL chat template and image
processor, and a byte-level BPE trained on ``corpus`` (the rendered prompts and answers the
model will see) with every Qwen2-VL special token.

Why its own tokenizer: Qwen's 151,643-token vocabulary alone would be 29 M embedding
parameters at this width. Why this one: the BPE does not split at word boundaries (only each
digit is its own piece), so the family's long fixed tool prompt (about 4,000 characters, 1,200
Qwen tokens) becomes about 140 tokens, and a coordinate is one token per digit, as in Qwen's
own vocabulary. Byte-level, so any text still encodes; llguidance constrains it like any BPE.

What was measured about the architecture (``rope_theta`` 10, the M-RoPE split) is in
docs/training.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pixelpilot.vlm.tiny import SPECIAL_TOKENS, round_up, save_checkpoint

DEMO_ARCH: dict[str, Any] = {
    "hidden_size": 192,
    "intermediate_size": 512,
    "num_hidden_layers": 4,
    "num_attention_heads": 3,  # head_dim 64: mrope_section sums to 32
    "num_key_value_heads": 3,
    "rope_theta": 10.0,  # 1e6 leaves the x position almost no signal at this size
    "mrope_section": [4, 12, 16],
    "vision_depth": 3,
    "vision_embed_dim": 128,
    "vision_heads": 4,
}
"""The demo model's shape (docs/training.md says what was measured)."""


def domain_tokenizer(corpus: Iterable[str], vocab_size: int = 2048) -> Any:
    """A byte-level BPE trained on ``corpus`` whose merges may cross spaces (never digits),
    with the Qwen2-VL special tokens appended; a ``PreTrainedTokenizerFast``."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer)
    bpe.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=32768,
    )


def scratch_config(vocab_size: int, ids: dict[str, int], arch: dict[str, Any] = DEMO_ARCH) -> Any:
    """The ``Qwen2VLConfig`` of a from-scratch model of shape ``arch``."""
    from transformers import Qwen2VLConfig

    return Qwen2VLConfig(
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": arch["hidden_size"],
            "intermediate_size": arch["intermediate_size"],
            "num_hidden_layers": arch["num_hidden_layers"],
            "num_attention_heads": arch["num_attention_heads"],
            "num_key_value_heads": arch["num_key_value_heads"],
            "max_position_embeddings": 32768,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": arch["rope_theta"],
                "mrope_section": arch["mrope_section"],
            },
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "tie_word_embeddings": True,
        },
        vision_config={
            "depth": arch["vision_depth"],
            "embed_dim": arch["vision_embed_dim"],
            "hidden_size": arch["hidden_size"],  # the merger's output feeds the LLM
            "num_heads": arch["vision_heads"],
            "mlp_ratio": 4,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )


def build_scratch(
    directory: str | os.PathLike[str],
    corpus: Iterable[str],
    *,
    arch: dict[str, Any] = DEMO_ARCH,
    vocab_size: int = 2048,
    seed: int = 0,
) -> Path:
    """Write a random-weight checkpoint of shape ``arch`` with a tokenizer trained on
    ``corpus`` to ``directory``; returns its path."""
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tok = domain_tokenizer(corpus, vocab_size)
    ids = {t: int(tok.convert_tokens_to_ids(t)) for t in SPECIAL_TOKENS}
    torch.manual_seed(seed)
    model: Any = Qwen2VLForConditionalGeneration(
        scratch_config(round_up(len(tok), 64), ids, arch)
    )
    save_checkpoint(out, model, tok)
    return out
