"""SFT export: filters, images, the LLaMA-Factory dataset entry, and a round trip through the
real Qwen2-VL processor of a tiny checkpoint (chat template + image + tokenizer): the label
tokens decode to the call text, which parses back to the recorded action."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from pixelpilot.agent.cli_traj import register
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.evaluate import step_context
from pixelpilot.agent.export import IMAGE_TAG, export_sft
from pixelpilot.agent.geometry import HUB_PIXELS, to_device
from pixelpilot.agent.trajectory import load_trajectory

V1 = Path(__file__).parent / "data" / "trajectory_v1"


def lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / "data.jsonl").read_text(encoding="utf-8").splitlines()]


def test_filters_and_layout(tmp_path: Path) -> None:
    stats = export_sft([V1], tmp_path / "a")
    assert (stats.steps, stats.written, stats.skipped) == (4, 3, {"retried": 1})
    rows = lines(tmp_path / "a")
    assert [r["pixelpilot"]["kind"] for r in rows] == ["type", "drag", "finish"]
    for r in rows:
        roles = [m["role"] for m in r["messages"]]
        assert roles[0] == "system" and roles[-1] == "assistant"
        assert all(a != b for a, b in zip(roles[1:], roles[2:], strict=False))  # alternating
        # qwen2vl shows every screenshot so far (the user's first, then each call's result)
        assert sum(m["content"].count(IMAGE_TAG) for m in r["messages"]) == len(r["images"])
        assert len(r["images"]) == r["pixelpilot"]["step"]
        assert (tmp_path / "a" / r["images"][0]).stat().st_size > 0
    info = json.loads((tmp_path / "a" / "dataset_info.json").read_text())
    assert info["pixelpilot"]["formatting"] == "sharegpt"
    assert info["pixelpilot"]["columns"] == {"messages": "messages", "images": "images"}

    kept = export_sft([V1], tmp_path / "b", drop_retried=False, images="link")
    assert kept.written == 4
    assert (tmp_path / "b" / lines(tmp_path / "b")[0]["images"][0]).is_symlink()

    failed = tmp_path / "failed"
    shutil.copytree(V1, failed)
    result = json.loads((failed / "result.json").read_text())
    (failed / "result.json").write_text(json.dumps({**result, "status": "failure"}))
    none = export_sft([failed], tmp_path / "c")
    assert none.written == 0 and none.skipped == {"run failure": 4}
    assert export_sft([failed], tmp_path / "d", only_success=False).written == 3


def test_a_dialect_that_cannot_write_an_action_skips_it(tmp_path: Path) -> None:
    # qwen25vl's computer_use drags only from the pointer (the recorded drag has a start) and
    # its terminate carries no answer (the recorded finish has one)
    stats = export_sft([V1], tmp_path / "q", dialect="qwen25vl")
    assert stats.written == 1 and stats.skipped["not expressible in the dialect"] == 2
    rows = lines(tmp_path / "q")
    assert rows[0]["messages"][-1]["content"].startswith("<tool_call>")
    assert "1288x812" in rows[0]["messages"][0]["content"]  # resized_px for the hub budget


def test_export_command(tmp_path: Path) -> None:
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    res = CliRunner().invoke(
        app, ["export", str(V1), "--out", str(tmp_path / "e"), "--keep-retried"]
    )
    assert res.exit_code == 0, res.output
    assert "wrote 4 of 4 steps" in res.output


@pytest.fixture(scope="module")
def processor(tiny_qwen: Path) -> Any:
    """The real Qwen2-VL processor of the tiny checkpoint with the real Qwen vocabulary."""
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_qwen)


def _hf_messages(messages: list[dict[str, str]]) -> list[dict[str, Any]]:
    """sharegpt string content -> the processor's parts, an image part for each <image>."""
    out = []
    for m in messages:
        parts: list[dict[str, Any]] = []
        for i, chunk in enumerate(m["content"].split(IMAGE_TAG)):
            if i:
                parts.append({"type": "image"})
            if chunk:
                parts.append({"type": "text", "text": chunk})
        out.append({"role": m["role"], "content": parts})
    return out


@pytest.mark.parametrize("dialect", ["qwen2vl", "qwen25vl", "uitars"])
def test_labels_decode_to_the_recorded_action(processor: Any, tmp_path: Path, dialect: str) -> None:
    out = tmp_path / dialect
    stats = export_sft([V1], out, dialect=dialect, drop_retried=False)
    assert stats.written == (2 if dialect == "qwen25vl" else 4)
    traj = load_trajectory(V1)
    d = get_dialect(dialect)
    tok = processor.tokenizer
    for row in lines(out):
        step = traj.steps[row["pixelpilot"]["step"] - 1]
        msgs = _hf_messages(row["messages"])
        prompt = processor.apply_chat_template(
            msgs[:-1], add_generation_prompt=True, tokenize=False
        )
        full = processor.apply_chat_template(msgs, tokenize=False)
        assert full.startswith(prompt)
        shots = []
        for name in row["images"]:
            with Image.open(out / name) as im:
                shots.append(im.convert("RGB"))
        enc_prompt = processor(text=[prompt], images=shots)
        enc_full = processor(text=[full], images=shots)
        n = len(enc_prompt["input_ids"][0])
        ids = list(enc_full["input_ids"][0])
        assert ids[:n] == list(enc_prompt["input_ids"][0])
        pad = tok.convert_tokens_to_ids("<|image_pad|>")
        w, h = row["pixelpilot"]["resized"]
        # each image went in at the exported size
        assert ids.count(pad) == len(shots) * (w // 28) * (h // 28)
        label = tok.decode(ids[n:])
        target = row["messages"][-1]["content"]
        assert label == target + "<|im_end|>\n"
        ctx = step_context(traj, step, HUB_PIXELS.resize(1280, 800))
        parsed = d.parse(label.removesuffix("<|im_end|>\n"), ctx)
        assert to_device(parsed, ctx.geometry, ctx.resized) == step.device_action
