"""Grounding training: teach a small model from scratch WHERE to point, on a CPU.

``pixelpilot train DATA --model scratch --grounding`` (docs/training.md). The prompts and labels
are the ones ``pixelpilot train`` uses (``train_data`` + ``train_batch.encode_example``: the
loop's own prompt, the answer as the model writes it, ``<|im_end|>``); what differs is how the
model is pushed to read the screenshot. A model trained from random weights with the language
loss alone learns the call's format and the average position, not the target's: its answer
tokens attend to the prompt, not the image. Four training-only losses (linear probes, dropped
at the end: the saved checkpoint is a stock Qwen2-VL) tie the answer to the image tokens:

- ``pos``: each visual token's hidden state after layer ``probe_layer`` names its own row and
  column (the M-RoPE position must survive into the state);
- ``tgt``: the same state says whether its cell holds at least ``cover_min`` of the target
  element (the recorded ``target_box``);
- ``attn``: in ``attn_layers``, head ``attn_head``, each position that writes a coordinate
  digit attends over the visual tokens like the target's coverage of their cells
  (cross-entropy against that distribution);
- ``dig``: the coordinate digits' cross-entropy once more (they are 6 of ~15 answer tokens).

Every example of the data shares its first tokens (the dialect's tool prompt: ~120 of ~190);
they are run once per batch and their keys and values shared by the batch, which gives the
same logits and gradients as running each example whole (checked at start) at a fraction of
the cost. A batch is mostly pointing steps, ``other_share`` of it others (finish, ...), which
are easy. AdamW, linear warm-up, cosine decay; a checkpoint every
``save_steps`` (``--resume`` goes on from it, the same batches as an unbroken run).
"""

from __future__ import annotations

import json
import math
import random
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pixelpilot.agent.errors import UserError
from pixelpilot.agent.train_batch import IGNORE, Features, encode_example
from pixelpilot.agent.train_data import Example
from pixelpilot.vlm.checkpoint import TRAIN_RECORD
from pixelpilot.vlm.inputs import pixel_values

STATE = "grounding-state.pt"


@dataclass(frozen=True)
class GroundingConfig:
    """The recipe's knobs (docs/training.md has what was measured with them)."""

    max_steps: int = 1200
    batch_size: int = 32
    other_share: float = 0.19
    """Of a batch, the share of steps without a target box (6 of 32)."""
    lr: float = 2e-3
    warmup: int = 100
    weight_decay: float = 0.01
    clip: float = 1.0
    probe_layer: int = 1
    attn_layers: tuple[int, ...] = (2, 3)
    attn_head: int = 0
    cover_min: float = 0.1
    save_steps: int = 100
    eval_steps: int = 100
    val_share: float = 0.05
    seed: int = 0


@dataclass
class Item:
    """One example as tensors, with what the grounding losses need about its last image."""

    features: Features
    pixels: Any
    grid: Any
    span: tuple[int, int]
    cols: int
    cover: Any | None  # per visual token: the share of the target box in its cell (sums to 1)
    box: list[float] | None
    size: tuple[int, int]
    val: bool = False


@dataclass
class GroundingLog:
    step: int
    total: int
    losses: dict[str, float]
    lr: float
    s_per_step: float
    val: dict[str, float] = field(default_factory=dict)


def make_items(processor: Any, examples: Sequence[Example], val_share: float) -> list[Item]:
    """Encode ``examples`` (ids as at inference, pixels with the processor's budget)."""
    import torch

    merge = processor.image_processor.merge_size
    patch = processor.image_processor.patch_size * merge  # resized pixels per visual token
    out = []
    for ex in examples:
        f = encode_example(processor, ex)
        pix = [pixel_values(processor, im, g) for im, g in zip(ex.prompt.images, f.grids,
                                                                strict=True)]  # fmt: skip
        _, h, w = f.grids[-1]
        rows, cols = h // merge, w // merge
        size = ex.prompt.images[-1].size
        box = ex.meta.get("target_box")
        cover = None
        if box is not None:
            sx, sy = ex.meta["resized"][0] / size[0], ex.meta["resized"][1] / size[1]
            cover = _coverage(box, sx, sy, rows, cols, patch)
        tag = "/".join(Path(str(ex.meta.get("trajectory", ""))).parts[-2:])  # TASK/NNN: any root
        out.append(Item(
            features=f, pixels=torch.cat(pix), grid=torch.tensor(f.grids, dtype=torch.long),
            span=f.spans[-1], cols=cols, cover=cover, box=box, size=size,
            val=box is not None and zlib.crc32(tag.encode()) % 1000 < val_share * 1000,
        ))  # fmt: skip
    return out


def _coverage(box: list[float], sx: float, sy: float, rows: int, cols: int, cell: int) -> Any:
    import torch

    x0, y0 = box[0] * sx, box[1] * sy
    x1, y1 = (box[0] + box[2]) * sx, (box[1] + box[3]) * sy
    w = torch.zeros(rows * cols)
    for r in range(rows):
        for c in range(cols):
            ix = min(x1, (c + 1) * cell) - max(x0, c * cell)
            iy = min(y1, (r + 1) * cell) - max(y0, r * cell)
            w[r * cols + c] = max(0.0, ix) * max(0.0, iy)
    return w / w.sum() if float(w.sum()) > 0 else None


def shared_prefix(items: Sequence[Item]) -> int:
    """How many leading tokens every example shares, stopping before the first image."""
    first = items[0].features
    n = min(min(it.features.prompt_tokens, it.span[0]) for it in items)
    for it in items[1:]:
        ids = it.features.input_ids
        k = 0
        while k < n and ids[k] == first.input_ids[k]:
            k += 1
        n = k
    return n


class Batches:
    """Right-padded batches of Items and the forward pass that shares their common prefix."""

    def __init__(self, items: Sequence[Item], prefix: int, pad_id: int, image_id: int) -> None:
        import torch

        self.prefix = prefix
        self.pad_id, self.image_id = pad_id, image_id
        self.prefix_ids = torch.tensor(items[0].features.input_ids[:prefix]).unsqueeze(0)

    def tensors(self, its: Sequence[Item]) -> dict[str, Any]:
        import torch

        n = max(len(it.features.input_ids) for it in its)
        ids = torch.full((len(its), n), self.pad_id, dtype=torch.long)
        att = torch.zeros((len(its), n), dtype=torch.long)
        lab = torch.full((len(its), n), IGNORE, dtype=torch.long)
        for b, it in enumerate(its):
            k = len(it.features.input_ids)
            ids[b, :k] = torch.tensor(it.features.input_ids)
            lab[b, :k] = torch.tensor(it.features.labels)
            att[b, :k] = 1
        return {"input_ids": ids, "attention_mask": att, "labels": lab,
                "pixel_values": torch.cat([it.pixels for it in its]),
                "image_grid_thw": torch.cat([it.grid for it in its])}  # fmt: skip

    def forward(self, model: Any, t: dict[str, Any], **kw: Any) -> Any:
        """The model's output for the tokens after the shared prefix (logits, and hidden
        states / attentions over the whole sequence's keys when asked)."""
        ids, att, p = t["input_ids"], t["attention_mask"], self.prefix
        mm = ((ids == self.image_id) & (att == 1)).long()
        pos, _ = model.model.get_rope_index(ids, mm_token_type_ids=mm,
                                            image_grid_thw=t["image_grid_thw"], attention_mask=att)  # fmt: skip
        cache = model(input_ids=self.prefix_ids, use_cache=True).past_key_values
        cache.batch_repeat_interleave(ids.shape[0])
        return model(input_ids=ids[:, p:], attention_mask=att, position_ids=pos[:, :, p:],
                     pixel_values=t["pixel_values"], image_grid_thw=t["image_grid_thw"],
                     mm_token_type_ids=mm[:, p:], cache=cache, use_cache=True, **kw)  # fmt: skip


def train_grounding(
    examples: Sequence[Example],
    base: Path,
    out: Path,
    cfg: GroundingConfig,
    *,
    resume: bool = False,
    progress: Callable[[GroundingLog], None] | None = None,
) -> dict[str, Any]:
    """Train ``base`` on ``examples`` with the grounding losses; the model is saved to ``out``
    (a plain checkpoint, processor files beside it). Returns what happened (steps, losses,
    held-out click accuracy per task, seconds)."""
    import torch
    from transformers import AutoModelForImageTextToText

    from pixelpilot.vlm.checkpoint import load_processor

    t_start = time.perf_counter()
    processor = load_processor(str(base))
    model: Any = AutoModelForImageTextToText.from_pretrained(
        base, dtype=torch.float32, attn_implementation="eager"
    )
    items = make_items(processor, examples, cfg.val_share)
    points = [it for it in items if it.cover is not None and not it.val]
    others = [it for it in items if it.cover is None]
    held = [it for it in items if it.val]
    n_other = max(1, round(cfg.batch_size * cfg.other_share)) if others else 0
    if len(points) < cfg.batch_size - n_other or len(others) < n_other:
        raise UserError(
            f"grounding needs at least {cfg.batch_size - n_other} steps with a target box and "
            f"{n_other} without; the data has {len(points)} and {len(others)} "
            "(record with element boxes: pixelpilot bench miniwob does)"
        )
    tok = processor.tokenizer
    batches = Batches(items, shared_prefix(items), int(tok.pad_token_id),
                      int(processor.image_token_id))  # fmt: skip
    digits = torch.tensor([tok.convert_tokens_to_ids(str(d)) for d in range(10)])
    _check_sharing(model, batches, points[:2] + others[:2])
    hidden = int(model.config.text_config.hidden_size)
    rows = max((it.span[1] - it.span[0]) // it.cols for it in items)
    probes = torch.nn.ModuleDict({"row": torch.nn.Linear(hidden, rows),
                                  "col": torch.nn.Linear(hidden, max(it.cols for it in items)),
                                  "tgt": torch.nn.Linear(hidden, 1)})  # fmt: skip
    params = [*model.parameters(), *probes.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def factor(s: int) -> float:
        warm = min(1.0, (s + 1) / cfg.warmup)
        return warm * 0.5 * (1 + math.cos(math.pi * min(1.0, s / cfg.max_steps)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    step, history = 0, []
    state_file = out / STATE
    if resume and state_file.is_file():
        state = torch.load(state_file, weights_only=False)
        model.load_state_dict(state["model"])
        probes.load_state_dict(state["probes"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        step, history = state["step"], state["history"]
    model.train()
    t0, done0 = time.perf_counter(), step
    while step < cfg.max_steps:
        rng = random.Random(cfg.seed * 1_000_003 + step)  # the batch depends on the step only
        its = rng.sample(points, cfg.batch_size - n_other) + rng.sample(others, n_other)
        t = batches.tensors(its)
        o = batches.forward(model, t, output_hidden_states=True, output_attentions=True)
        terms = _losses(o, t, its, batches.prefix, probes, digits, cfg)
        loss = sum(terms.values())
        opt.zero_grad()
        loss.backward()  # type: ignore[union-attr]
        torch.nn.utils.clip_grad_norm_(params, cfg.clip)
        opt.step()
        sched.step()
        step += 1
        log = GroundingLog(step, cfg.max_steps, {k: float(v.detach()) for k, v in terms.items()},
                           float(sched.get_last_lr()[0]),
                           (time.perf_counter() - t0) / (step - done0))  # fmt: skip
        if step % cfg.eval_steps == 0 or step == cfg.max_steps:
            log.val = click_accuracy(model, batches, held, digits, tok)
            model.train()
            history.append({"step": step, "seconds": round(time.perf_counter() - t_start, 1),
                            "loss": log.losses, "val": log.val})  # fmt: skip
        if progress is not None:
            progress(log)
        if step % cfg.save_steps == 0 or step == cfg.max_steps:
            out.mkdir(parents=True, exist_ok=True)
            tmp = state_file.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "probes": probes.state_dict(),
                        "opt": opt.state_dict(), "sched": sched.state_dict(), "step": step,
                        "history": history}, tmp)  # fmt: skip
            tmp.replace(state_file)
    model.eval()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return {"steps": step, "examples": len(items), "pointing": len(points),
            "others": len(others), "held_out": len(held), "prefix_tokens": batches.prefix,
            "history": history, "config": asdict(cfg),
            "seconds": round(time.perf_counter() - t_start, 1)}  # fmt: skip


def _losses(o: Any, t: dict[str, Any], its: Sequence[Item], p: int, probes: Any, digits: Any,
            cfg: GroundingConfig) -> dict[str, Any]:  # fmt: skip
    import torch
    import torch.nn.functional as F  # noqa: N812

    logits, labels = o.logits[:, :-1], t["labels"][:, p + 1 :]
    lm = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                         ignore_index=IGNORE)  # fmt: skip
    is_digit = torch.isin(labels, digits)
    dig = F.cross_entropy(logits[is_digit], labels[is_digit]) if bool(is_digit.any()) else lm * 0
    states = o.hidden_states[cfg.probe_layer]
    pos = tgt = attn = lm * 0
    pointed = 0
    for b, it in enumerate(its):
        s, e = it.span
        v = states[b, s - p : e - p]
        n = torch.arange(e - s)
        pos = pos + F.cross_entropy(probes["row"](v), n // it.cols)
        pos = pos + F.cross_entropy(probes["col"](v), n % it.cols)
        if it.cover is None:
            continue
        pointed += 1
        tgt = tgt + F.binary_cross_entropy_with_logits(
            probes["tgt"](v).squeeze(-1), (it.cover >= cfg.cover_min).float()
        )
        rows_q = torch.nonzero(is_digit[b]).flatten()  # query rows in the suffix; keys absolute
        for layer in cfg.attn_layers:
            a = o.attentions[layer][b, cfg.attn_head][rows_q][:, s:e]
            q = a / a.sum(-1, keepdim=True).clamp_min(1e-9)
            attn = attn + -(it.cover * torch.log(q + 1e-9)).sum(-1).mean() / len(cfg.attn_layers)
    k = max(pointed, 1)
    return {"lm": lm, "dig": dig, "pos": pos / len(its), "tgt": tgt / k, "attn": attn / k}


def click_accuracy(model: Any, batches: Batches, held: Sequence[Item], digits: Any,
                   tok: Any) -> dict[str, float]:  # fmt: skip
    """Per task (by instruction), the share of held-out points inside the target element:
    each coordinate digit the argmax given the recorded digits before it (teacher forcing)."""
    import torch

    model.eval()
    hits: dict[str, list[bool]] = {}
    with torch.no_grad():
        for k in range(0, len(held), 32):
            its = held[k : k + 32]
            t = batches.tensors(its)
            pred = batches.forward(model, t).logits[:, :-1].argmax(-1)
            labels = t["labels"][:, batches.prefix + 1 :]
            for b, it in enumerate(its):
                got = [tok.convert_ids_to_tokens(int(x)) for x in pred[b][torch.isin(labels[b], digits)]]
                half = len(got) // 2
                try:
                    x, y = int("".join(got[:half])), int("".join(got[half:]))
                except ValueError:
                    x = y = -1
                assert it.box is not None
                px, py = x / 1000 * it.size[0], y / 1000 * it.size[1]
                bx, by, bw, bh = it.box
                task = str(it.features.meta.get("task", "?"))
                hits.setdefault(task, []).append(bx <= px <= bx + bw and by <= py <= by + bh)
    return {t: round(sum(v) / len(v), 4) for t, v in sorted(hits.items())}


def _check_sharing(model: Any, batches: Batches, its: Sequence[Item]) -> None:
    """The shared-prefix forward must give the logits of the whole-sequence forward."""
    import torch

    with torch.no_grad():
        t = batches.tensors(its)
        mm = (t["input_ids"] == batches.image_id).long()
        whole = model(**{k: v for k, v in t.items() if k != "labels"},
                      mm_token_type_ids=mm).logits[:, batches.prefix :]  # fmt: skip
        shared = batches.forward(model, t).logits
        keep = t["attention_mask"][:, batches.prefix :].bool()
        diff = float((whole - shared)[keep].abs().max())
    if diff > 1e-3:
        raise RuntimeError(f"the shared-prefix forward differs from the whole one by {diff:g}")


def write_record(out: Path, record: dict[str, Any]) -> None:
    (out / TRAIN_RECORD).write_text(json.dumps(record, indent=2) + "\n",
                                               encoding="utf-8")  # fmt: skip


def run_grounding(
    data: Sequence[str | Path],
    base: str,
    out: Path,
    cfg: GroundingConfig,
    *,
    dialect: str | None,
    pixels: Any,
    resume: bool = False,
    only_success: bool = True,
    progress: Callable[[GroundingLog], None] | None = None,
    command: list[str] | None = None,
) -> dict[str, Any]:
    """``pixelpilot train --grounding``: the data's examples, a base (``scratch``: a new
    ``vlm.scratch`` model whose tokenizer is trained on the data's own prompts, in OUT/base),
    ``train_grounding``, and ``pixelpilot-train.json`` with the recipe and its curves."""
    from pixelpilot.agent.dialects import get_dialect
    from pixelpilot.agent.train_data import DataStats, examples, find_data

    runs, exports = find_data(data)
    if exports:
        raise UserError("--grounding trains on trajectories (it needs their element boxes), "
                        "not on export directories")  # fmt: skip
    stats = DataStats()
    chosen = get_dialect(dialect) if dialect else None
    exs = list(examples(runs, chosen, pixels, stats, only_success=only_success))
    if not exs:
        raise UserError(f"no training examples in {stats.trajectories} runs")
    where = Path(base)
    if base == "scratch":
        where = out / "base"
        if not (where / "config.json").is_file():
            build_scratch_for(exs, where, cfg.seed)
    result = train_grounding(exs, where, out, cfg, resume=resume, progress=progress)
    record = {"base": base, "data": [str(p) for p in data], "runs": len(runs),
              "dialect": exs[0].meta["dialect"],
              "tasks": _miniwob_tasks(runs),
              "pixels": [pixels.min_pixels, pixels.max_pixels], "skipped": stats.skipped,
              "command": command, "recipe": "grounding", **result}  # fmt: skip
    write_record(out, record)
    return record


def _miniwob_tasks(runs: Sequence[Path]) -> list[str]:
    """The MiniWoB++ tasks of the runs (what ``pixelpilot demo`` picks from)."""
    tasks = set()
    for d in runs:
        try:
            extra = json.loads((Path(d) / "run.json").read_text(encoding="utf-8")).get("extra")
            tasks.add(str(extra["miniwob"]["task"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(tasks)


def build_scratch_for(exs: Sequence[Example], where: Path, seed: int) -> Path:
    """A from-scratch model whose tokenizer is trained on what these examples render to."""
    from pixelpilot.vlm.checkpoint import load_processor
    from pixelpilot.vlm.inputs import chat_text
    from pixelpilot.vlm.scratch import build_scratch
    from pixelpilot.vlm.tiny import ensure_tiny

    template = load_processor(str(ensure_tiny()))  # the Qwen2-VL chat template, any vocabulary
    corpus = [chat_text(template, ex.prompt) + ex.answer + "<|im_end|>\n" for ex in exs]
    return build_scratch(where, corpus, seed=seed)
