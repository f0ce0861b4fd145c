"""Step time of the local backend with several screenshots per prompt, with and without reuse.

    python bench/bench_screens.py [--steps 8] [--rounds 3] [--size 1280x800] [--json out.json]

A run of ``--steps`` steps on the tiny Qwen2-VL checkpoint (CPU, random weights: the numbers are
about the machinery, not about answers), a new 1280x800 screenshot each step, in two layouts:

- UI-TARS's official agent layout (bytedance/UI-TARS infer/osworld.py on branch feat/oswd_infer
  @5adcd33: the prompt as the first user message, each earlier step as its screenshot and its
  answer, only the last ``window`` screenshots kept) with a window of 1 and of 5 screenshots;
- qwen2vl's Qwen-Agent layout (the real dialect: every step's screenshot in a ``✿RESULT✿`` of one
  continued assistant turn), which keeps them all.

Each configuration runs ``--rounds`` times, the configurations taking turns: "reuse" is the
default backend (KV prefix + vision features of screenshots seen before), "no reuse" computes
everything each step (``reuse_prefix=False, vision_cache=0``). Both give the same tokens
(tests/test_local_prefix.py); the answers in the history are a fixed UI-TARS/qwen2vl answer.
Reported per configuration: median ms per stage (wall clock) and per step (wall clock, and this
process's CPU time, which load from other processes on the machine does not inflate), and what
was reused, over the steps in the
steady state: UI-TARS from the step whose prompt first holds the full window (from then on the
window slides each step), qwen2vl the step whose prompt holds 5 screenshots.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from pixelpilot.agent.actions import DESKTOP_KINDS
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import StepContext, Turn
from pixelpilot.agent.geometry import HUB_PIXELS, ScreenGeometry
from pixelpilot.vlm.base import Message, Prompt
from pixelpilot.vlm.local import LocalModel
from pixelpilot.vlm.tiny import ensure_tiny

STAGES = ("preprocess", "vision", "prefill", "decode")
TASK = "Open the settings and turn on dark mode"
UITARS_ANSWER = "Thought: I click the settings icon.\nAction: click(start_box='({x},{y})')"
QWEN_ANSWER = 'I click the settings icon.\n✿FUNCTION✿: click\n✿ARGS✿: {{"point": [{x}, {y}]}}'

Layout = Callable[[Sequence[Turn], Image.Image], Prompt]


def screenshot(step: int, size: tuple[int, int]) -> Image.Image:
    """A busy synthetic screen, different each step."""
    w, h = size
    img = Image.new("RGB", size, (235, 235, 240))
    d = ImageDraw.Draw(img)
    for i in range(40):
        x, y = (97 * i + 31 * step) % w, (53 * i + 17 * step) % h
        d.rectangle((x, y, x + 120, y + 40), fill=((i * 37) % 255, (i * 11 + step) % 255, 120))
        d.text((x + 5, y + 5), f"item {i} step {step}", fill="black")
    return img


def uitars(window: int) -> Layout:
    """UI-TARS's official agent layout keeping the last ``window`` screenshots."""

    def build(history: Sequence[Turn], current: Image.Image) -> Prompt:
        msgs = [
            Message("system", [{"type": "text", "text": "You are a helpful assistant."}]),
            Message("user", [{"type": "text", "text": f"You are a GUI agent.\n\n{TASK}\n"}]),
        ]
        for i, turn in enumerate(history):
            if i >= len(history) - (window - 1) and turn.image is not None:
                msgs.append(Message("user", [{"type": "image", "image": turn.image}]))
            msgs.append(Message("assistant", [{"type": "text", "text": turn.raw}]))
        msgs.append(Message("user", [{"type": "image", "image": current}]))
        return Prompt(messages=msgs)

    return build


def qwen2vl(size: tuple[int, int]) -> Layout:
    ctx = StepContext("desktop", DESKTOP_KINDS, ScreenGeometry(*size), HUB_PIXELS.resize(*size))
    dialect = get_dialect("qwen2vl")

    def build(history: Sequence[Turn], current: Image.Image) -> Prompt:
        prompt = dialect.build_prompt(TASK, history, current, ctx)
        prompt.grammar = None  # the prompt is measured here, not the grammar
        return prompt

    return build


def run(
    model: LocalModel, layout: Layout, answer: str, steps: int, size: tuple[int, int]
) -> list[dict[str, Any]]:
    """One run; per step: stage seconds, screenshots, reuse counts."""
    model.reset_prefix()
    history: list[Turn] = []
    rows = []
    for step in range(steps):
        prompt = layout(history, screenshot(step, size))
        cpu = time.process_time()
        gen = model.generate(prompt)
        cpu = time.process_time() - cpu
        st = model.last_stats
        rows.append(
            {
                **{k: gen.timings.get(k, 0.0) for k in STAGES},
                "index": step,
                "step": gen.seconds,
                "step CPU": cpu,
                "screenshots": len(prompt.images),
                "prompt tokens": gen.prompt_tokens or 0,
                "reused tokens": st.reused_tokens,
                "images in reused prefix": st.prefix_images,
                "images from vision cache": st.cached_images,
                "images through ViT": st.encoded_images,
                "tokens": tuple(st.token_ids),
            }
        )
        history.append(Turn(raw=answer.format(x=100 + step, y=200), image=screenshot(step, size)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=8, help="steps per UI-TARS run (>= 6)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size", default="1280x800")
    ap.add_argument("--vocab", choices=("qwen", "small"), default="qwen")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    size = tuple(int(v) for v in args.size.split("x"))
    assert len(size) == 2
    ckpt = ensure_tiny(args.vocab)
    layouts = {  # name: (layout, answer, steps run, first step reported, last)
        "UI-TARS, 1 screenshot": (uitars(1), UITARS_ANSWER, args.steps, 1, args.steps),
        "UI-TARS, 5 screenshots": (uitars(5), UITARS_ANSWER, args.steps, 4, args.steps),
        "qwen2vl, 5 screenshots": (qwen2vl(size), QWEN_ANSWER, 5, 4, 5),  # type: ignore[arg-type]
    }
    modes = {"no reuse": {"reuse_prefix": False, "vision_cache": 0}, "reuse": {}}
    models = {
        mode: LocalModel(str(ckpt), temperature=1.0, max_new_tokens=args.max_new_tokens, **kw)  # type: ignore[arg-type]
        for mode, kw in modes.items()
    }
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in range(args.rounds):
        for name, (layout, answer, steps, _, _) in layouts.items():
            for mode, model in models.items():
                model.seed(r)
                got = run(model, layout, answer, steps, size)  # type: ignore[arg-type]
                rows.setdefault((name, mode), []).extend(got)
            a, b = (rows[(name, m)][-steps:] for m in modes)
            assert [x["tokens"] for x in a] == [x["tokens"] for x in b], "reuse changed tokens"
    cpu = platform.processor() or platform.machine()
    print(f"tiny Qwen2-VL ({args.vocab} vocabulary), CPU {cpu}, {args.threads} torch thread(s)")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{args.steps} steps x {args.rounds} rounds, {args.size} screenshots; median ms/step")
    print(f"load average at the end: {load}")
    cols = [*STAGES, "step", "step CPU"]
    counts = ["prompt tokens", "reused tokens", "images in reused prefix",
              "images from vision cache", "images through ViT"]  # fmt: skip
    print("| layout | mode | steps | " + " | ".join(cols + counts) + " |")
    print("|---" * (len(cols) + len(counts) + 3) + "|")
    summary: dict[str, Any] = {}
    for (name, mode), got in rows.items():
        first, last = layouts[name][3:]
        picked = [x for x in got if first <= x["index"] < last]
        ms = {k: statistics.median(x[k] for x in picked) * 1e3 for k in cols}
        med = {k: statistics.median(x[k] for x in picked) for k in counts}
        summary[f"{name} / {mode}"] = {"ms": ms, "median": med, "steps": len(picked)}
        print(
            f"| {name} | {mode} | {len(picked)} | "
            + " | ".join(f"{ms[k]:.0f}" for k in cols)
            + " | "
            + " | ".join(f"{med[k]:g}" for k in counts)
            + " |"
        )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
