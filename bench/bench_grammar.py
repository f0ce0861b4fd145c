"""Constrained decoding costs: grammar build and compile, mask per token, forced tokens, and
constrained vs unconstrained decoding with the tiny checkpoint.

    python3 bench/bench_grammar.py [--gen 20] [--threads 1]

Uses the real 151,643-rank Qwen vocabulary (model vocab 151936) for the grammar numbers, and the
tiny checkpoints (small and Qwen vocabulary) for the decode numbers. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixelpilot.agent.actions import DESKTOP_KINDS, Click, Point, TypeText
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import StepContext
from pixelpilot.agent.geometry import HUB_PIXELS, PixelBudget, ScreenGeometry
from pixelpilot.vlm.constrained import GrammarConstraint, _compiled, ll_tokenizer
from pixelpilot.vlm.tiny import QWEN_VOCAB_SIZE, ensure_tiny, qwen_tokenizer

DIALECTS = ("qwen2vl", "qwen25vl", "uitars", "uitars-1.5", "osatlas", "showui")
CTX = StepContext(
    "desktop", DESKTOP_KINDS, ScreenGeometry(1920, 1080), HUB_PIXELS.resize(1920, 1080)
)


def _ms(xs: list[float]) -> str:
    return f"{statistics.mean(xs) * 1e3:.2f}"


def _us(xs: list[float], q: float | None = None) -> str:
    v = statistics.mean(xs) if q is None else float(np.quantile(xs, q))
    return f"{v * 1e6:.0f}"


def build_and_compile(tok: Any) -> None:
    print("\n### Grammar build and compile (Qwen vocab, desktop kinds, 1920x1080)\n")
    print("| dialect | grammar chars | build (ms, uncached) | cached lookup (µs) | compile (ms) |")
    print("|---|---|---|---|---|")
    llt = ll_tokenizer(tok, QWEN_VOCAB_SIZE)

    def fresh(name: str) -> str:
        """Uncached: a fresh dialect instance builds its grammar."""
        return get_dialect(name).grammar(CTX)

    import llguidance

    for name in DIALECTS:
        build = []
        for _ in range(5):
            t0 = time.perf_counter()
            g = fresh(name)
            build.append(time.perf_counter() - t0)
        dialect = get_dialect(name)
        dialect.grammar(CTX)
        t0 = time.perf_counter()
        for _ in range(1000):
            dialect.grammar(CTX)
        lookup = (time.perf_counter() - t0) / 1000
        comp = []
        for _ in range(3):
            t0 = time.perf_counter()
            llguidance.LLMatcher(llt, g, log_level=0).compute_ff_tokens()
            comp.append(time.perf_counter() - t0)
        _compiled(llt, g)
        print(f"| {name} | {len(g)} | {_ms(build)} | {lookup * 1e6:.1f} | {_ms(comp)} |")


def mask_times(tok: Any, walks: int) -> None:
    print(f"\n### Mask per free token (Qwen vocab 151936, {walks} random walks per dialect)\n")
    print("| dialect | free tokens | mask_logits mean (µs) | p50 | p95 | advance (µs) |")
    print("|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    logits = torch.zeros(QWEN_VOCAB_SIZE)
    for name in DIALECTS:
        g = get_dialect(name).grammar(CTX)
        masks: list[float] = []
        advances: list[float] = []
        for _ in range(walks):
            c = GrammarConstraint(g, tok, QWEN_VOCAB_SIZE)
            while not c.done:
                forced = c.forced()
                for t in forced:
                    c.advance(t)
                if forced:
                    continue
                logits.zero_()
                t0 = time.perf_counter()
                c.mask_logits(logits)
                masks.append(time.perf_counter() - t0)
                ids = torch.nonzero(logits == 0).flatten()
                t = int(ids[int(rng.integers(len(ids)))])
                t0 = time.perf_counter()
                c.advance(t)
                advances.append(time.perf_counter() - t0)
        print(
            f"| {name} | {len(masks)} | {_us(masks)} | {_us(masks, 0.5)} | {_us(masks, 0.95)} "
            f"| {_us(advances)} |"
        )


def forced_share(tok: Any) -> None:
    """How many tokens of typical calls the grammar forces (the model need not choose them)."""
    print("\n### Forced tokens in typical calls (Qwen vocab)\n")
    print("| dialect | call | tokens | forced | share |")
    print("|---|---|---|---|---|")
    for name in DIALECTS:
        dialect = get_dialect(name)
        click = Click(point=Point(x=500, y=300, space=dialect.space))
        for action in (click, TypeText(text="hello world")):
            text = dialect.format(action, CTX)
            n, forced = _follow(
                GrammarConstraint(dialect.grammar(CTX), tok, QWEN_VOCAB_SIZE), tok, text
            )
            print(f"| {name} | {action.kind} | {n} | {forced} | {forced / n:.0%} |")


def _follow(c: GrammarConstraint, tok: Any, text: str) -> tuple[int, int]:
    """Write ``text`` through the constraint: forced tokens as forced, the rest greedily as the
    longest allowed token that continues the text. (total tokens, forced tokens)."""
    target = text.encode()
    vocab = {i: c.tokenizer.decode_bytes([i]) for i in range(len(tok))}
    done = b""
    n = forced_n = 0
    while not c.done and done != target:  # a grammar may admit more after the call
        forced = c.forced()
        if forced:
            for t in forced:
                c.advance(t)
                done += vocab.get(t, b"")
            n += len(forced)
            forced_n += len(forced)
            continue
        rest = target[len(done) :]
        best = max(
            (
                i
                for i in np.flatnonzero(c.allowed().numpy())
                if vocab.get(int(i)) and rest.startswith(vocab[int(i)])
            ),
            key=lambda i: len(vocab[int(i)]),
        )
        c.advance(int(best))
        done += vocab[int(best)]
        n += 1
    assert tok.decode(c.tokens) == text and c.accepting, (tok.decode(c.tokens), text)
    return n, forced_n


def decode_cost(gen: int) -> None:
    from PIL import Image, ImageDraw

    from pixelpilot.vlm.local import LocalModel

    print(f"\n### Tiny checkpoint decode, {gen} generations per row (qwen2vl grammar, CPU)\n")
    print("| vocab | mode | ms / generated token | forward passes / call | tokens / call "
          "| grammar ms / call |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    img = Image.new("RGB", (640, 400), "white")
    ImageDraw.Draw(img).rectangle((100, 100, 300, 200), fill="navy")
    ctx = StepContext("desktop", DESKTOP_KINDS, ScreenGeometry(640, 400), (644, 392))
    prompt = get_dialect("qwen2vl").build_prompt("Click the box", [], img, ctx)
    root = Path(tempfile.gettempdir()) / "pixelpilot-bench"
    for vocab in ("small", "qwen"):
        path = ensure_tiny(vocab, root / f"tiny-{vocab}")  # type: ignore[arg-type]
        for mode, kw in (
            ("unconstrained", {"constrain": False}),
            ("constrained, forced off", {"forced": "off"}),
            ("constrained, forced step", {"forced": "step"}),
            ("constrained, forced batch", {"forced": "batch"}),
        ):
            model = LocalModel(
                str(path), pixels=PixelBudget(3136, 256 * 28 * 28), temperature=1.0, seed=0,
                max_new_tokens=64, **kw,
            )  # fmt: skip
            model.generate(prompt)  # warm-up
            dec: list[float] = []
            toks: list[int] = []
            passes: list[int] = []
            gram: list[float] = []
            for _ in range(gen):
                g = model.generate(prompt)
                dec.append(g.timings["decode"])
                toks.append(g.output_tokens or 0)
                passes.append(model.last_stats.forward_passes)
                gram.append(g.timings.get("grammar", 0.0))
            per_tok = sum(dec) / max(sum(toks), 1)
            print(
                f"| {vocab} | {mode} | {per_tok * 1e3:.2f} | {statistics.mean(passes):.1f} "
                f"| {statistics.mean(toks):.1f} | {_ms(gram)} |"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gen", type=int, default=20, help="generations per decode row")
    ap.add_argument("--walks", type=int, default=30, help="random walks per dialect for masks")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--skip-decode", action="store_true", help="grammar numbers only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    tok = qwen_tokenizer()
    t1 = time.perf_counter()
    ll_tokenizer(tok, QWEN_VOCAB_SIZE)
    t2 = time.perf_counter()
    print(
        f"Qwen tokenizer from qwen.tiktoken: {t1 - t0:.2f} s; llguidance tokenizer: {t2 - t1:.2f} s"
    )
    build_and_compile(tok)
    mask_times(tok, args.walks)
    forced_share(tok)
    if not args.skip_decode:
        decode_cost(args.gen)


if __name__ == "__main__":
    main()
