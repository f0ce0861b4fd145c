"""Full-step latency of Qwen2-VL-2B/7B architectures (random bf16 weights) on one GPU.

    python bench/gpu_bench.py                 # on a CUDA machine, ~3-4 min on one H100
    python bench/gpu_bench.py --smoke         # the same script with tiny configs, on the CPU

No download: the models are built from their configs (DesktopDesign facts: 2B hidden 1536 / 12
heads / 2 KV / 28 layers; 7B hidden 3584 / 28 heads / 4 KV / 28 layers; ViT depth 32, embed 1280)
with random weights, and the processor is the tiny Qwen-vocabulary checkpoint's (the real
151,643-rank vocabulary, the hub's chat template and preprocessor values). One step = the
qwen2vl dialect's prompt (system + tool schema + task + history) with a 1920x1080 screenshot ->
preprocess -> vision -> prefill -> grammar-constrained greedy decode -> parse. Each model runs
at the hub pixel budget (1932x1092, 2691 visual tokens) and at 1280*28*28 (1316x728, 1222),
in three variants: plain (no prefix reuse, every token masked and decoded), speed (prefix KV
reuse + forced tokens in one pass), speed+compile (the same with StaticCache and torch.compile
of the one-token step). Prints a markdown table; writes gpu_bench.json to $OUT if set.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

from pixelpilot.agent.actions import DESKTOP_KINDS
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import StepContext, Turn
from pixelpilot.agent.geometry import HUB_PIXELS, PixelBudget, ScreenGeometry
from pixelpilot.vlm.local import LocalModel
from pixelpilot.vlm.tiny import SPECIAL_TOKENS, build_tiny, tiny_config_dict

BUDGETS = {"hub": HUB_PIXELS, "1280*28*28": PixelBudget(3136, 1280 * 28 * 28)}
VARIANTS = {  # name: LocalModel options
    "plain": {"reuse_prefix": False, "vision_cache": 0, "forced": "off"},
    "speed": {"reuse_prefix": True, "forced": "batch"},
    "speed+compile": {"reuse_prefix": True, "forced": "batch", "compile": True},
}
ARCHS: dict[str, dict[str, Any]] = {
    "qwen2-vl-2b": {
        "text": {"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
                 "num_attention_heads": 12, "num_key_value_heads": 2, "vocab_size": 151936},
        "tie": True,
    },
    "qwen2-vl-7b": {
        "text": {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
                 "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064},
        "tie": False,
    },
}  # fmt: skip
STAGES = ("preprocess", "vision", "prefill", "decode", "grammar")


def arch_config(name: str, ids: dict[str, int], smoke: bool) -> Any:
    """Qwen2VLConfig of a real architecture (or, with ``smoke``, the tiny one)."""
    from transformers import Qwen2VLConfig

    spec = ARCHS[name]
    d = tiny_config_dict(spec["text"]["vocab_size"], ids)
    if not smoke:
        d["text_config"].update(spec["text"])
        d["text_config"]["rope_parameters"]["mrope_section"] = [16, 24, 24]
        d["text_config"]["tie_word_embeddings"] = d["tie_word_embeddings"] = spec["tie"]
        d["vision_config"].update(
            depth=32, embed_dim=1280, num_heads=16, mlp_ratio=4,
            hidden_size=spec["text"]["hidden_size"],
        )  # fmt: skip
    return Qwen2VLConfig(**d)


def build_model(config: Any, device: torch.device, dtype: torch.dtype) -> Any:
    from transformers import Qwen2VLForConditionalGeneration

    with torch.device(device):
        model = Qwen2VLForConditionalGeneration._from_config(
            config, dtype=dtype, attn_implementation="sdpa"
        )
    return model.eval()


def screenshot() -> Image.Image:
    """A 1920x1080 desktop-like image: a title bar, a sidebar, buttons, text lines."""
    img = Image.new("RGB", (1920, 1080), (242, 242, 242))
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, 1919, 40), fill=(40, 44, 52))
    d.rectangle((0, 41, 300, 1079), fill=(225, 228, 232))
    for i in range(12):
        d.text((20, 70 + 40 * i), f"Folder {i}", fill="black")
        d.rectangle((340, 80 + 70 * i, 1800, 120 + 70 * i), outline=(180, 180, 180))
        d.text((360, 92 + 70 * i), f"Row {i}: some text to read on the screen", fill="black")
    d.rectangle((1600, 980, 1860, 1040), fill=(30, 100, 220))
    d.text((1690, 1002), "Submit", fill="white")
    return img


def prompt_for(step: int, image: Image.Image, resized: tuple[int, int]) -> Any:
    ctx = StepContext("desktop", DESKTOP_KINDS, ScreenGeometry(*image.size), resized)
    history = [
        Turn(raw=f'✿FUNCTION✿: click\n✿ARGS✿: {{"point": [{100 + i}, 200]}}')
        for i in range(step)
    ]
    return get_dialect("qwen2vl").build_prompt("Click the Submit button", history, image, ctx)


def run_variant(model: LocalModel, image: Image.Image, steps: int) -> dict[str, Any]:
    """Warm-up step, then ``steps`` timed steps with a growing history (as in a run)."""
    dialect = get_dialect("qwen2vl")
    rows = []
    first = 0.0
    model.reset_prefix()
    for step in range(steps + 1):
        resized = model.resized_size(*image.size)
        # a new screenshot each step, as in a run (one pixel differs: the model reuses the
        # vision features of a screenshot it has seen, by its pixels), so the ViT runs each step
        shot = image.copy()
        shot.putpixel((step, 0), (step * 7 % 256, 0, 0))
        prompt = prompt_for(step, shot, resized)
        t0 = time.perf_counter()
        gen = model.generate(prompt)
        ctx = StepContext("desktop", DESKTOP_KINDS, ScreenGeometry(*image.size), resized)
        dialect.parse(gen.text, ctx)  # constrained: must parse and validate
        wall = time.perf_counter() - t0
        st = model.last_stats
        if step == 0:
            first = wall  # warm-up: kernels, grammar compile, torch.compile
            continue
        rows.append(
            {
                "step_s": wall,
                **{k: gen.timings.get(k, 0.0) for k in STAGES},
                "visual": gen.visual_tokens,
                "prompt": gen.prompt_tokens,
                "reused": st.reused_tokens,
                "output": gen.output_tokens,
                "passes": st.forward_passes,
            }
        )
    return {"first_s": first, **{k: statistics.median(r[k] for r in rows) for k in rows[0]}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny configs (runs on a CPU)")
    ap.add_argument("--models", default=",".join(ARCHS))
    ap.add_argument("--steps", type=int, default=3, help="timed steps per variant")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument(
        "--variants", default=None, help="comma-separated subset of " + ",".join(VARIANTS)
    )
    ap.add_argument(
        "--cudnn-attention", choices=("off", "on", "both"), default="off",
        help="cuDNN SDPA allowed (on), not (off, LocalModel's default), or each in turn",
    )  # fmt: skip
    ap.add_argument("--max-seconds", type=float, default=270.0, help="skip what would start later")
    args = ap.parse_args()
    t_start = time.monotonic()
    cuda = torch.cuda.is_available() and not args.smoke
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    if not cuda and not args.smoke:
        raise SystemExit("no CUDA device: run with --smoke for the CPU check")
    if not cuda:
        torch.set_num_threads(min(4, os.cpu_count() or 1))
    from transformers import AutoProcessor

    with tempfile.TemporaryDirectory() as tmp:
        processor = AutoProcessor.from_pretrained(build_tiny(Path(tmp) / "qwen", vocab="qwen"))
    tok = processor.tokenizer
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    image = screenshot()
    device_name = torch.cuda.get_device_name() if cuda else "CPU (smoke: tiny configs)"
    wanted = args.variants.split(",") if args.variants else list(VARIANTS)
    variants = {
        k: v
        for k, v in VARIANTS.items()
        if k in wanted and not (args.no_compile and "compile" in v)
    }
    cudnn = {"off": [False], "on": [True], "both": [True, False]}[args.cudnn_attention]
    variants = {
        (f"{k} cudnn-attn" if c else k): {**v, "cudnn_attention": c}
        for k, v in variants.items()
        for c in cudnn
    }
    results: list[dict[str, Any]] = []
    skipped: list[str] = []
    for arch in args.models.split(","):
        t0 = time.perf_counter()
        model = build_model(arch_config(arch, ids, args.smoke), device, dtype)
        build_s = time.perf_counter() - t0
        params = sum(p.numel() for p in model.parameters())
        print(f"{arch}: {params / 1e9:.2f}B parameters built in {build_s:.1f} s", flush=True)
        for variant, options in variants.items():
            lm = LocalModel(arch, parts=(processor, model), max_new_tokens=256, **options)
            for budget_name, budget in BUDGETS.items():  # largest first: a static cache fits both
                label = f"{arch} {budget_name} {variant}"
                if time.monotonic() - t_start > args.max_seconds:
                    skipped.append(label)
                    continue
                lm.set_pixels(budget)
                try:
                    row = run_variant(lm, image, args.steps)
                except Exception as exc:  # noqa: BLE001 - report it in the table, go on
                    print(f"{label}: FAILED {type(exc).__name__}: {exc}", flush=True)
                    results.append({"model": arch, "budget": budget_name, "variant": variant,
                                    "error": f"{type(exc).__name__}: {exc}"})  # fmt: skip
                    continue
                row = {"model": arch, "budget": budget_name, "variant": variant, **row}
                results.append(row)
                print(f"{label}: step {row['step_s'] * 1e3:.0f} ms", flush=True)
            del lm
        del model
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    print(f"\n{device_name}, torch {torch.__version__}, {args.steps} timed steps each (median)")
    cols = ("first_s", "step_s", *STAGES)
    print("| model | budget | variant | " + " | ".join(f"{c} ms" for c in cols)
          + " | visual | prompt | reused | output | passes |")  # fmt: skip
    print("|---" * (len(cols) + 8) + "|")
    for r in results:
        if "error" in r:
            print(f"| {r['model']} | {r['budget']} | {r['variant']} | {r['error']} |")
            continue
        ms = " | ".join(f"{r[c] * 1e3:.0f}" for c in cols)
        counts = " | ".join(f"{r[c]:g}" for c in ("visual", "prompt", "reused", "output", "passes"))
        print(f"| {r['model']} | {r['budget']} | {r['variant']} | {ms} | {counts} |")
    if skipped:
        print(f"skipped (over --max-seconds): {', '.join(skipped)}")
    out = os.environ.get("OUT")
    if out:
        Path(out, "gpu_bench.json").write_text(
            json.dumps({"device": device_name, "results": results, "skipped": skipped}, indent=2)
        )


if __name__ == "__main__":
    main()
