"""Tiny Qwen2-VL checkpoints built locally, with no network: random weights, real structure.

``build_tiny(dir)`` writes a directory that ``AutoProcessor``/``AutoModelForImageTextToText``
``.from_pretrained(dir)`` load exactly like a hub checkpoint: config.json, model.safetensors,
generation_config.json, tokenizer files, the hub's chat_template.json and a hub-format
preprocessor_config.json (min/max pixels 3136/12845056). It is how the real code path
(processor -> vision tower -> M-RoPE -> constrained decoding) is exercised without weights.

Variants: ``small`` trains a byte-level BPE (~1k tokens) with ``tokenizers`` on a built-in corpus;
``qwen`` uses the real 151,643-rank Qwen vocabulary (dashscope's qwen.tiktoken) with the real
special-token ids (151643...) and the model vocabulary of 151936. Both hold every Qwen2-VL special
token, and the config's image/video/vision ids are read from the tokenizer (a wrong
vision_start id raises nothing; it only puts positions in the wrong place).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

from pixelpilot.agent.errors import ConfigError
from pixelpilot.agent.geometry import HUB_PIXELS

Vocab = Literal["small", "qwen"]

SPECIAL_TOKENS = (
    "<|endoftext|>",  # 151643
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",  # 151656
)
QWEN_VOCAB_SIZE = 151936
"""Qwen2-VL-2B's model vocabulary (rows of the embedding): larger than the tokenizer's 151,657."""

CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""Qwen/Qwen2-VL-7B-Instruct's chat_template.json, verbatim (it renders no tools)."""

PREPROCESSOR = {
    "min_pixels": HUB_PIXELS.min_pixels,
    "max_pixels": HUB_PIXELS.max_pixels,
    "patch_size": 14,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "image_processor_type": "Qwen2VLImageProcessor",
    "processor_class": "Qwen2VLProcessor",
}
"""The hub checkpoints' preprocessor_config.json (v4 format: min/max_pixels keys)."""

_CORPUS = """\
✿FUNCTION✿: click
✿ARGS✿: {"point": [500, 300]}
✿FUNCTION✿: type
✿ARGS✿: {"text": "hello world"}
✿FUNCTION✿: finish
✿ARGS✿: {"answer": "done", "status": "success"}
✿RESULT✿: Done.
✿RETURN✿: The task is complete.
<tool_call>
{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [640, 400]}}
</tool_call>
Thought: I need to click the Submit button.
Action: click(start_box='(512,300)')
Action: click(point='<point>640 400</point>')
Action: type(content='hello') hotkey(key='ctrl c') scroll(direction='down') finished()
{"start": [10, 20], "end": [30, 40], "direction": "down", "amount": 3, "keys": ["ctrl", "c"]}
{"button": "left", "clicks": 2, "seconds": 1.0, "question": "Which file?", "app": "Settings"}
You are a helpful assistant that operates a desktop by calling tools. Each turn shows a
screenshot; a point is [x, y] in relative coordinates from 0 to 1000 on each axis.
Task: Click the Submit button, then type the name into the text field and press Enter.
The quick brown fox jumps over the lazy dog. 0123456789 Zoë — 東京 ✓ ✿ ()[]{}<>,.:;'"!?
"""


def default_tiny_dir(vocab: Vocab = "small") -> Path:
    """Where ``ensure_tiny`` keeps a checkpoint: $PIXELPILOT_HOME or ~/.cache/pixelpilot."""
    home = os.environ.get("PIXELPILOT_HOME")
    root = Path(home) if home else Path.home() / ".cache" / "pixelpilot"
    return root / ("tiny-qwen2-vl" if vocab == "small" else "tiny-qwen2-vl-qwenvocab")


def ensure_tiny(vocab: Vocab = "small", directory: Path | None = None) -> Path:
    """The tiny checkpoint's directory, built on first use (built aside, then renamed in)."""
    target = Path(directory) if directory is not None else default_tiny_dir(vocab)
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build_tiny(tmp, vocab=vocab)
        try:
            os.replace(tmp, target)
        except OSError:  # another process won the race; its copy is as good as ours
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def build_tiny(directory: str | os.PathLike[str], *, vocab: Vocab = "small", seed: int = 0) -> Path:
    """Write a random-weight tiny Qwen2-VL checkpoint to ``directory``; returns its path."""
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    if vocab not in ("small", "qwen"):
        raise ConfigError(f"unknown tiny vocabulary {vocab!r}; use 'small' or 'qwen'")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tok = qwen_tokenizer() if vocab == "qwen" else small_tokenizer()
    ids: dict[str, int] = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    model_vocab = QWEN_VOCAB_SIZE if vocab == "qwen" else round_up(len(tok), 64)
    config = Qwen2VLConfig(**tiny_config_dict(model_vocab, ids))
    torch.manual_seed(seed)
    model: Any = Qwen2VLForConditionalGeneration(config)
    model = model.to(torch.bfloat16).eval()
    save_checkpoint(out, model, tok)
    return out


def save_checkpoint(out: Path, model: Any, tok: Any) -> None:
    """Write a locally built model and tokenizer as a hub-format checkpoint: greedy generation
    ending at ``<|im_end|>``, the hub's chat_template.json and preprocessor_config.json."""
    from transformers import GenerationConfig
    from transformers.utils import logging as hf_logging

    ids = {t: int(tok.convert_tokens_to_ids(t)) for t in ("<|endoftext|>", "<|im_end|>")}
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
        do_sample=False,
    )
    hf_logging.disable_progress_bar()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "chat_template.json").write_text(
        json.dumps({"chat_template": CHAT_TEMPLATE}, indent=2) + "\n", encoding="utf-8"
    )
    (out / "preprocessor_config.json").write_text(
        json.dumps(PREPROCESSOR, indent=2) + "\n", encoding="utf-8"
    )


def tiny_config_dict(vocab_size: int, ids: dict[str, int]) -> dict[str, Any]:
    """Qwen2VLConfig kwargs of the tiny model: 2 layers of 64, a 2-block ViT, real ids."""
    return {
        "text_config": {
            "vocab_size": vocab_size,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,  # head_dim 16: mrope_section must sum to 8
            "num_key_value_heads": 2,
            "max_position_embeddings": 32768,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1000000.0,
                "mrope_section": [2, 3, 3],
            },
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "tie_word_embeddings": vocab_size > 10_000,  # keeps the Qwen-vocab file small
        },
        "vision_config": {
            "depth": 2,
            "embed_dim": 32,
            "hidden_size": 64,  # the merger's output: must equal the text hidden size
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "tie_word_embeddings": vocab_size > 10_000,
    }


def small_tokenizer(vocab_size: int = 1024) -> Any:
    """A byte-level BPE trained on a built-in corpus, with Qwen2's pre-tokenizer and specials."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_CORPUS.splitlines(keepends=True), trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return _qwen2_tokenizer(model["vocab"], merges)


@functools.cache
def qwen_tokenizer() -> Any:
    """The real Qwen vocabulary (151,643 BPE ranks + Qwen2-VL's special tokens at 151643...).

    Built from dashscope's qwen.tiktoken (~5 s, cached per process).
    """
    from transformers.convert_slow_tokenizer import TikTokenConverter

    path = qwen_tiktoken_path()
    ranks = {}
    for line in path.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)

    class _Converter(TikTokenConverter):
        @staticmethod
        def load_tiktoken_bpe(tiktoken_url: str) -> dict[bytes, int]:
            return ranks

    vocab, merges = _Converter().extract_vocab_merges_from_model(str(path))
    tok = _qwen2_tokenizer(vocab, merges)
    if tok.convert_tokens_to_ids("<|endoftext|>") != 151643:
        raise ConfigError(f"{path}: not the 151,643-rank Qwen vocabulary")
    return tok


def qwen_tiktoken_path() -> Path:
    """dashscope's copy of qwen.tiktoken; ConfigError naming the package when it is missing."""
    import importlib.util

    spec = importlib.util.find_spec("dashscope")  # the file only: the SDK itself is not imported
    if spec is None or spec.origin is None:
        raise ConfigError(
            "the Qwen-vocabulary tiny checkpoint needs qwen.tiktoken from the dashscope package; "
            "pip install dashscope==2.0.2 (or use the 'small' vocabulary)"
        )
    path = Path(spec.origin).parent / "resources" / "qwen.tiktoken"
    if not path.is_file():
        raise ConfigError(f"{path} is missing; reinstall dashscope==2.0.2")
    return path


def _qwen2_tokenizer(vocab: dict[str, int], merges: list[Any]) -> Any:
    """Qwen2Tokenizer (NFC + Qwen2 split + byte level) with the special tokens appended in order."""
    from tokenizers import AddedToken
    from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

    tok: Any = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,  # type: ignore[arg-type]  # the Instruct checkpoints have none
        eos_token="<|endoftext|>",  # added first, so it gets the first id after the vocabulary
        pad_token="<|endoftext|>",
        model_max_length=32768,
    )
    tok.add_special_tokens(
        {
            "additional_special_tokens": [
                AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS
            ]
        }
    )
    tok.eos_token = "<|im_end|>"  # as in the Instruct checkpoints' tokenizer_config.json
    ids: list[int] = [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS]
    if ids != list(range(ids[0], ids[0] + len(ids))) or ids[0] != len(vocab):
        raise ConfigError(f"special tokens got ids {ids}, expected them right after the vocabulary")
    return tok


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple
