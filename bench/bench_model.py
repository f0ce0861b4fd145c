"""Per-stage step latency of the local backend with a tiny Qwen2-VL checkpoint on the CPU.

    python bench/bench_model.py [--steps 8] [--vocab qwen|small] [--json out.json]

Part 1 runs the real agent loop (Xvfb 1280x800, the Tk fixture app, the qwen2vl dialect's
grammar, sampled at temperature 1 with a fixed seed) in four configurations, taking turns:
with/without reuse (the prompt-prefix KV and the vision features of screenshots seen before)
and with/without grammar-forced tokens fed in one pass.
Stages: capture, preprocess (chat template + image processor), vision (ViT), prefill (LLM over
the prompt), decode (every later forward pass + sampling + grammar), parse, execute, record.

Part 2 measures decode cost per output token on one screenshot: unconstrained, constrained
(every token masked and sampled) and constrained with forced tokens in one pass.
The weights are random: the numbers are about the machinery, not about answers.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from pathlib import Path
from typing import Any

from pixelpilot.agent.loop import Agent, Budgets
from pixelpilot.agent.trajectory import DirectoryRecorder
from pixelpilot.scenarios.fixture import FixtureApp
from pixelpilot.tools.desktop import DesktopDevice
from pixelpilot.tools.xvfb import ensure_display
from pixelpilot.vlm.base import Generation, Prompt, VisionModel
from pixelpilot.vlm.local import LocalModel
from pixelpilot.vlm.tiny import ensure_tiny

STAGES = ("capture", "preprocess", "vision", "prefill", "decode", "parse", "execute", "record")
COUNTS = ("visual", "prompt", "reused", "prefilled", "output", "forward passes")
CONFIGS = {  # name: (reuse_prefix, forced)
    "plain": (False, "off"),
    "prefix reuse": (True, "off"),
    "forced 1-pass": (False, "batch"),
    "both": (True, "batch"),
}


class Recording(VisionModel):
    """Delegates to a model and keeps every Generation (the loop keeps only a summary)."""

    def __init__(self, inner: LocalModel) -> None:
        self.inner, self.name, self.pixels = inner, inner.name, inner.pixels
        self.generations: list[Generation] = []
        self.stats: list[Any] = []

    def _generate(self, prompt: Prompt) -> Generation:
        gen = self.inner.generate(prompt)
        self.generations.append(gen)
        self.stats.append(self.inner.last_stats)
        return gen


def loop_bench(ckpt: Path, steps: int, rounds: int, seed: int) -> dict[str, dict[str, Any]]:
    """Stage medians (ms) per configuration: ``rounds`` x ``steps`` agent steps each, the
    configurations taking turns round by round so that load from other processes hits all."""
    recs: dict[str, Recording] = {}
    for name, (reuse, forced) in CONFIGS.items():
        model = LocalModel(
            str(ckpt), reuse_prefix=reuse, vision_cache=8 if reuse else 0, forced=forced,
            temperature=1.0,
        )  # fmt: skip
        model.seed(seed)
        recs[name] = Recording(model)
    samples: dict[str, dict[str, list[float]]] = {
        name: {k: [] for k in (*STAGES, "step")} for name in CONFIGS
    }
    counts: dict[str, dict[str, list[int]]] = {name: {k: [] for k in COUNTS} for name in CONFIGS}
    with ensure_display(1280, 800), tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for name, rec in recs.items():
                done = 0
                while done < steps:  # a run the model finishes early: start another
                    rec.inner.reset_prefix()  # a new run: its prompt prefix is new
                    with FixtureApp(), DesktopDevice() as dev:
                        agent = Agent(
                            model=rec,
                            device=dev,
                            dialect="qwen2vl",
                            budgets=Budgets(max_steps=steps - done, max_retries=0),
                            recorder=DirectoryRecorder(Path(tmp) / f"{r}-{name}-{done}"),
                        )
                        first = len(rec.generations)
                        result = agent.run("Click the Submit button")
                    done += len(result.steps)
                    for step, gen, st in zip(
                        result.steps, rec.generations[first:], rec.stats[first:], strict=False
                    ):
                        t = {**step.timings, **gen.timings}
                        for k in STAGES:
                            samples[name][k].append(t.get(k, 0.0))
                        samples[name]["step"].append(sum(step.timings.values()))
                        c = counts[name]
                        c["visual"].append(gen.visual_tokens or 0)
                        c["prompt"].append(gen.prompt_tokens or 0)
                        c["reused"].append(st.reused_tokens)
                        c["prefilled"].append(st.prefilled_tokens)
                        c["output"].append(gen.output_tokens or 0)
                        c["forward passes"].append(st.forward_passes)
    return {
        name: {
            "ms": {k: statistics.median(v) * 1e3 for k, v in samples[name].items()},
            "median": {k: statistics.median(v) for k, v in counts[name].items()},
            "steps": len(samples[name]["step"]),
        }
        for name in CONFIGS
    }


def token_bench(ckpt: Path, repeat: int, seed: int) -> dict[str, dict[str, float]]:
    """Decode ms per output token: unconstrained vs constrained (masked) vs forced 1-pass."""
    from PIL import Image, ImageDraw

    from pixelpilot.agent.actions import DESKTOP_KINDS
    from pixelpilot.agent.dialects import get_dialect
    from pixelpilot.agent.dialects.base import StepContext
    from pixelpilot.agent.geometry import HUB_PIXELS, ScreenGeometry

    img = Image.new("RGB", (1280, 800), "white")
    ImageDraw.Draw(img).rectangle((400, 300, 600, 360), fill="navy")
    ctx = StepContext(
        "desktop", DESKTOP_KINDS, ScreenGeometry(1280, 800), HUB_PIXELS.resize(1280, 800)
    )
    prompt = get_dialect("qwen2vl").build_prompt("Click the button", [], img, ctx)
    variants = {
        "unconstrained": {"constrain": False, "forced": "off"},
        "constrained, every token masked": {"constrain": True, "forced": "off"},
        "constrained, forced 1-pass": {"constrain": True, "forced": "batch"},
    }
    out: dict[str, dict[str, float]] = {}
    for name, kw in variants.items():
        model = LocalModel(str(ckpt), temperature=1.0, max_new_tokens=64, **kw)  # type: ignore[arg-type]
        model.seed(seed)
        model.generate(prompt)  # warm-up (grammar compile, llguidance tokenizer)
        decode = grammar = 0.0
        tokens = sampled = passes = 0
        for _ in range(repeat):
            gen = model.generate(prompt)
            st = model.last_stats
            decode += gen.timings["decode"]
            grammar += gen.timings.get("grammar", 0.0)
            tokens += gen.output_tokens or 0
            sampled += st.sampled_tokens
            passes += st.forward_passes
        out[name] = {
            "ms/token": decode / max(tokens, 1) * 1e3,
            "grammar ms/sampled": grammar / max(sampled, 1) * 1e3,
            "tokens/call": tokens / repeat,
            "passes/call": passes / repeat,
            "decode ms/call": decode / repeat * 1e3,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=4, help="steps per run")
    ap.add_argument("--rounds", type=int, default=3, help="runs per configuration, interleaved")
    ap.add_argument("--repeat", type=int, default=5, help="calls per variant in part 2")
    ap.add_argument("--vocab", choices=("qwen", "small"), default="qwen")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (see docs/models.md)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    ckpt = ensure_tiny(args.vocab)
    loop = loop_bench(ckpt, args.steps, args.rounds, args.seed)
    tokens = token_bench(ckpt, args.repeat, args.seed)
    cpu = platform.processor() or platform.machine()
    print(f"tiny Qwen2-VL ({args.vocab} vocabulary), CPU {cpu}, {args.threads} torch thread(s)")
    n = args.steps * args.rounds
    print(f"\nPart 1: median ms per step over {n} agent steps (1280x800, qwen2vl)")
    print("| stage | " + " | ".join(loop) + " |")
    print("|---" * (len(loop) + 1) + "|")
    for k in (*STAGES, "step"):
        print(f"| {k} | " + " | ".join(f"{r['ms'][k]:.1f}" for r in loop.values()) + " |")
    for k in COUNTS:
        print(f"| {k} (n) | " + " | ".join(f"{r['median'][k]:g}" for r in loop.values()) + " |")
    print(f"\nPart 2: decode cost per output token ({args.repeat} calls each)")
    cols = list(next(iter(tokens.values())))
    print("| variant | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for name, row in tokens.items():
        print(f"| {name} | " + " | ".join(f"{row[c]:.2f}" for c in cols) + " |")
    if args.json:
        args.json.write_text(json.dumps({"loop": loop, "tokens": tokens}, indent=2))


if __name__ == "__main__":
    main()
