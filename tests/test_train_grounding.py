"""Grounding training from scratch (``pixelpilot train --model scratch --grounding``) on real
recorded MiniWoB++ episodes: the domain tokenizer, the shared-prefix forward, checkpoints that
resume, and an output the agent loads and runs. How well the recipe trains is measured by
scripts/build_demo_model.sh (docs/training.md), not here."""

from __future__ import annotations

import json

from pixelpilot.agent.cli import main
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.geometry import HUB_PIXELS
from pixelpilot.agent.train_data import DataStats, examples, find_data
from pixelpilot.envs.dom_oracle import DomOracle
from pixelpilot.envs.miniwob_bench import BenchConfig, run_bench
from pixelpilot.vlm.checkpoint import load_processor
from pixelpilot.vlm.inputs import chat_text
from pixelpilot.vlm.registry import load_model


def _record(env, out, seed, episodes=3):
    cfg = BenchConfig(tasks=("click-test", "focus-text"), dialect="qwen2vl", episodes=episodes,
                      seed=seed, observe="task", out=out)  # fmt: skip
    results = run_bench(cfg, env, DomOracle(env))
    assert all(r.success for r in results)
    return out


def test_scratch_grounding_trains_resumes_and_runs(miniwob, tmp_path, capsys):
    data = _record(miniwob, tmp_path / "rec", seed=7000)
    runs, _ = find_data([data])
    exs = list(examples(runs, get_dialect("qwen2vl"), HUB_PIXELS, DataStats()))
    clicks = [e for e in exs if e.meta["kind"] == "click"]
    assert len(clicks) == 6 and all(
        e.meta["target_box"][2] > 0 and e.meta["target_box"][3] > 0 for e in clicks
    )  # every click step knows the element it hit (recorded element boxes)

    out = tmp_path / "model"
    args = ["train", str(data), "--model", "scratch", "--grounding", "--batch-size", "4",
            "--save-steps", "1", "--out", str(out)]  # fmt: skip
    assert main([*args, "--max-steps", "2"]) == 0
    first = json.loads((out / "pixelpilot-train.json").read_text())
    assert first["steps"] == 2 and first["tasks"] == ["click-test", "focus-text"]
    assert first["recipe"] == "grounding" and first["prefix_tokens"] > 50
    assert main([*args, "--max-steps", "3", "--resume"]) == 0
    record = json.loads((out / "pixelpilot-train.json").read_text())
    assert record["steps"] == 3
    shown = capsys.readouterr().out
    assert "step     3/3" in shown and "step     1/3" not in shown  # resumed, did not start over
    for term in ("lm", "dig", "pos", "tgt", "attn"):
        assert f"{term} " in shown

    # the domain tokenizer: the tool prompt is short, each coordinate digit one token, and the
    # text decodes back as it was
    processor = load_processor(str(out))
    text = chat_text(processor, clicks[0].prompt) + clicks[0].answer
    ids = processor.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) < 250 < len(text) / 10
    assert processor.tokenizer.decode(ids) == text
    digits = processor.tokenizer(clicks[0].answer, add_special_tokens=False)["input_ids"]
    assert sum(processor.tokenizer.convert_ids_to_tokens(i).isdigit() for i in digits) >= 4

    # a plain checkpoint: the local backend loads it and its answer is a valid call
    model = load_model(f"{out}#qwen2vl")
    try:
        gen = model.generate(clicks[0].prompt)
    finally:
        model.close()
    assert get_dialect("qwen2vl").parse(gen.text, clicks[0].prompt.meta["ctx"]) is not None


def test_grounding_needs_element_boxes(tmp_path, capsys):
    assert main(["train", str(tmp_path), "--model", "scratch", "--grounding", "--out",
                 str(tmp_path / "m")]) == 2  # fmt: skip
    assert "no trajectory" in capsys.readouterr().err
