"""Tiny Qwen2-VL checkpoints: built here with no network, loaded like real ones."""

from __future__ import annotations

import json
import os

import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor
from typer.testing import CliRunner

from pixelpilot.agent.cli_model import describe, model_app
from pixelpilot.agent.errors import ConfigError
from pixelpilot.agent.geometry import HUB_PIXELS, visual_tokens
from pixelpilot.vlm.tiny import CHAT_TEMPLATE, SPECIAL_TOKENS, ensure_tiny, qwen_tokenizer

REAL_IDS = dict(zip(SPECIAL_TOKENS, range(151643, 151657), strict=True))
"""Qwen2-VL's special tokens and their ids on the hub (151643 <|endoftext|> ... 151656)."""


def _messages(image: Image.Image) -> list[dict]:
    return [
        {"role": "system", "content": [{"type": "text", "text": "Call a tool. ✿FUNCTION✿"}]},
        {"role": "user", "content": [{"type": "text", "text": "Task: x"}, {"type": "image", "image": image}]},
    ]  # fmt: skip


@pytest.mark.parametrize("which", ["tiny_small", "tiny_qwen"])
def test_loads_like_a_hub_checkpoint(which, request):
    path = request.getfixturevalue(which)
    assert {p.name for p in path.iterdir()} >= {
        "config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
        "tokenizer_config.json", "chat_template.json", "preprocessor_config.json",
    }  # fmt: skip
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)
    assert type(processor).__name__ == "Qwen2VLProcessor"
    assert type(model).__name__ == "Qwen2VLForConditionalGeneration"
    tok, cfg = processor.tokenizer, model.config
    # the config's vision ids are the tokenizer's (a wrong vision_start id fails silently)
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert cfg.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    assert cfg.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert cfg.vision_end_token_id == tok.convert_tokens_to_ids("<|vision_end|>")
    ids = [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS]
    assert ids == list(range(ids[0], ids[0] + len(SPECIAL_TOKENS)))
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    assert set(model.generation_config.eos_token_id) == {ids[0], ids[2]}
    assert cfg.text_config.vocab_size >= len(tok)
    # the hub's pixel budget, read from a hub-format preprocessor_config.json
    size = processor.image_processor.size
    assert (size.shortest_edge, size.longest_edge) == (HUB_PIXELS.min_pixels, HUB_PIXELS.max_pixels)


@pytest.mark.parametrize("which", ["tiny_small", "tiny_qwen"])
def test_chat_template_renders_the_image_and_generate_runs(which, request):
    path = request.getfixturevalue(which)
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)
    image = Image.new("RGB", (640, 400), "white")
    text = processor.apply_chat_template(
        _messages(image), tokenize=False, add_generation_prompt=True
    )
    assert text == (
        "<|im_start|>system\nCall a tool. ✿FUNCTION✿<|im_end|>\n<|im_start|>user\nTask: x"
        "<|vision_start|><|image_pad|><|vision_end|><|im_end|>\n<|im_start|>assistant\n"
    )
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    pads = int((inputs["input_ids"] == model.config.image_token_id).sum())
    assert pads == visual_tokens(640, 400) == 322  # 644x392: 23 x 14 merged patches
    out = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 3
    # the stored template is the hub's, byte for byte
    stored = json.loads((path / "chat_template.json").read_text(encoding="utf-8"))
    assert stored["chat_template"] == CHAT_TEMPLATE


def test_qwen_variant_has_the_real_vocabulary(tiny_qwen):
    tok = AutoProcessor.from_pretrained(tiny_qwen).tokenizer
    cfg = json.loads((tiny_qwen / "config.json").read_text())
    assert cfg["text_config"]["vocab_size"] == 151936
    assert {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS} == REAL_IDS
    assert len(tok) == 151657
    assert tok.encode("Hello world") == [9707, 1879]  # Qwen's own ids
    assert cfg["image_token_id"] == 151655 and cfg["vision_start_token_id"] == 151652
    text = '✿FUNCTION✿: click\n✿ARGS✿: {"point": [1, 2]}<|im_end|>'
    ids = tok.encode(text)
    assert ids[-1] == 151645 and tok.decode(ids) == text
    assert (tiny_qwen / "model.safetensors").stat().st_size < 25_000_000  # tied, hidden 64, bf16


def test_small_vocabulary_encodes_every_character(tiny_small):
    tok = AutoProcessor.from_pretrained(tiny_small).tokenizer
    for text in [
        '✿FUNCTION✿: type\n✿ARGS✿: {"text": "Zoë — 東京 ✓ 🙂"}',
        "<|box_start|>(1,2)<|box_end|>",
    ]:
        assert tok.decode(tok.encode(text)) == text
    assert tok.encode("<|box_start|>")[0] == tok.convert_tokens_to_ids("<|box_start|>")


def test_qwen_tokenizer_is_cached():
    assert qwen_tokenizer() is qwen_tokenizer()
    assert qwen_tokenizer().convert_tokens_to_ids("<|im_end|>") == 151645


def test_ensure_tiny_builds_once_and_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELPILOT_HOME", str(tmp_path))
    first = ensure_tiny("small")
    assert first == tmp_path / "tiny-qwen2-vl"
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert ensure_tiny("small") == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == ["tiny-qwen2-vl"]  # no temp dir left


def test_cli_init_tiny_and_info(tmp_path):
    runner = CliRunner()
    r = runner.invoke(model_app, ["init-tiny", str(tmp_path / "ck")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "ck" / "model.safetensors").is_file()
    r = runner.invoke(model_app, ["info", str(tmp_path / "ck")])
    assert r.exit_code == 0 and "qwen2_vl" in r.output and "1932x1092" in r.output
    r = runner.invoke(model_app, ["init-tiny", str(tmp_path / "ck")])
    assert isinstance(r.exception, ConfigError) and "not empty" in str(r.exception)
    r = runner.invoke(model_app, ["init-tiny", str(tmp_path / "x"), "--vocab", "big"])
    assert isinstance(r.exception, ConfigError)


def test_info_describes_without_loading_weights(tiny_qwen):
    d = describe(str(tiny_qwen))
    assert d["architecture"] == "qwen2_vl" and "vocab 151936" in d["text"]
    assert d["pixels"] == "3136..12845056" and d["1920x1080 ->"] == "1932x1092"
    assert d["ids"] == "image 151655, video 151656, vision_start 151652"
    with pytest.raises(ConfigError, match="hf download"):
        describe("Qwen/Qwen2-VL-7B-Instruct-not-here")
    with pytest.raises(ConfigError, match="not found"):
        describe(os.path.join(str(tiny_qwen), "missing"))
