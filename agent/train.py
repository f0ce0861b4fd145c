"""Supervised fine-tuning of a Qwen2-VL-architecture checkpoint on recorded runs.

``train(data, base, out)`` reads trajectories (and ``pixelpilot export`` directories) through
``train_data`` (the prompts the loop built, rebuilt by the same code), turns them into token ids
through ``train_batch`` (the ids the local backend feeds the model) and trains with TRL's
``SFTTrainer`` on a pre-tokenized dataset with our collator; the loss is on the answer and its
end-of-turn token only. LoRA (PEFT) is an option; the adapter is merged at the end, so ``out``
is a plain checkpoint that ``--model OUT#DIALECT`` loads, with the processor files and the pixel
budget it was trained with, and ``pixelpilot-train.json`` saying how it was made.
Checkpoints go to ``out/checkpoint-N`` every ``save_steps``; ``resume=True`` goes on from the
last one. On CUDA weights and compute are bf16; on a CPU fp32.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.errors import ConfigError, UserError
from pixelpilot.agent.geometry import HUB_PIXELS, PixelBudget
from pixelpilot.agent.train_batch import Collator, encode_example
from pixelpilot.agent.train_data import DataStats, examples, export_examples, find_data
from pixelpilot.vlm.checkpoint import TRAIN_RECORD

RECORD = TRAIN_RECORD
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""The language model's linear layers (the vision tower's are named qkv/proj/fc1/fc2)."""

ExtraLoss = Callable[[Any, dict[str, Any], Any, list[dict[str, Any]]], Any]
"""``(model, inputs, outputs, metas) -> scalar tensor`` added to the LM loss of each batch.
``inputs``: the batch the model got; ``outputs``: the language backbone's output of that forward
pass (``last_hidden_state``, and ``hidden_states`` / ``attentions`` when asked for; the LM head's
logits are not built: TRL scores the labels in chunks); ``metas``: per example, its meta
(trajectory, step, kind, screen, resized, ...) with ``image_spans`` and ``prompt_tokens``."""


@dataclass(frozen=True)
class TrainLog:
    """One progress line: ``step`` of ``total``, the mean ``loss`` and the learning rate at it,
    seconds per optimizer step since the last line."""

    step: int
    total: int
    loss: float | None
    lr: float | None
    s_per_step: float
    epoch: float | None = None


class TrainResult(BaseModel):
    """What ``train`` did (also written to ``out/pixelpilot-train.json``)."""

    out: str
    base: str
    data: list[str]
    dialect: str | list[str]
    pixels: tuple[int, int]
    examples: int
    skipped: dict[str, int]
    start_step: int
    steps: int
    final_loss: float | None
    mean_loss: float | None
    seconds: float
    s_per_step: float
    lora: bool
    hyper: dict[str, Any]
    command: list[str] | None = None


def train(
    data: Sequence[str | os.PathLike[str]],
    base: str,
    out: str | os.PathLike[str],
    *,
    dialect: str | None = None,
    pixels: PixelBudget | None = None,
    epochs: float = 1.0,
    max_steps: int | None = None,
    lr: float = 1e-5,
    batch_size: int = 1,
    grad_accum: int = 1,
    lora: bool = False,
    lora_rank: int = 16,
    seed: int = 0,
    save_steps: int = 500,
    log_steps: int = 10,
    workers: int | None = None,
    resume: bool = False,
    only_success: bool = True,
    drop_retried: bool = True,
    extra_loss: ExtraLoss | None = None,
    output_hidden_states: bool = False,
    output_attentions: bool = False,
    device: str | None = None,
    progress: Callable[[TrainLog], None] | None = None,
    command: list[str] | None = None,
) -> TrainResult:
    """Fine-tune ``base`` (a checkpoint directory, or a hub id in the local cache) on ``data``
    (trajectory directories, folders of them, export directories) into ``out``.

    ``dialect``: the format to train (default: each run's own). ``pixels``: the budget screens
    are resized into (default: the one ``base`` was saved with, else the hub's); train and run
    with the same one. ``max_steps`` overrides ``epochs``. ``only_success``: only runs that
    succeeded; ``drop_retried``: leave out steps whose first answer was rejected (their prompt
    was not the plain one). ``extra_loss`` is added to the LM loss (``ExtraLoss``).
    ``progress`` gets a TrainLog every ``log_steps`` optimizer steps. ``workers``: processes
    that load and patch the screenshots of the next batches (default: none on a CPU, up to 8
    beside a GPU, which would otherwise wait for them)."""
    t0 = time.perf_counter()
    out = Path(out)
    _check_options(lr, epochs, max_steps, workers or 0, batch_size, grad_accum, lora_rank,
                   save_steps, log_steps)  # fmt: skip
    _check_out(out, resume)
    _require("trl", *(["peft"] if lora else []))
    chosen = get_dialect(dialect) if dialect else None  # an unknown name fails here
    runs, exports = find_data(data)
    from pixelpilot.vlm.checkpoint import load_processor, saved_pixels
    from pixelpilot.vlm.inputs import set_pixels

    budget = pixels or saved_pixels(base) or HUB_PIXELS
    processor = load_processor(base)  # not a Qwen2-VL checkpoint: ConfigError before the weights
    set_pixels(processor, budget)
    stats = DataStats()
    walk = examples(runs, chosen, budget, stats, only_success=only_success,
                    drop_retried=drop_retried)  # fmt: skip
    rows, dialects = [], set()
    for ex in _chain(walk, exports, stats, budget):
        if chosen is not None and ex.meta.get("dialect") not in (None, chosen.name):
            stats.skip("exported in another dialect")
            continue
        rows.append(encode_example(processor, ex).row())
        dialects.add(str(ex.meta.get("dialect", chosen.name if chosen else "?")))
    if not rows:
        left = ", ".join(f"{k}: {v}" for k, v in sorted(stats.skipped.items())) or "none"
        raise UserError(
            f"no training examples in {stats.trajectories} runs/exports ({stats.steps} steps; "
            f"left out: {left}); --all takes runs that did not succeed"
        )
    hyper = dict(epochs=epochs, max_steps=max_steps, lr=lr, batch_size=batch_size,
                 grad_accum=grad_accum, lora=lora, lora_rank=lora_rank, seed=seed,
                 save_steps=save_steps, log_steps=log_steps, workers=workers)  # fmt: skip
    start = _last_step(out) if resume else 0
    with warnings.catch_warnings():  # transformers 5.24 renaming what TRL 1.16 still sets
        warnings.filterwarnings("ignore", ".*gradient_checkpointing.* is deprecated", FutureWarning)
        trainer = _trainer(base, out, processor, rows, extra_loss, output_hidden_states,
                           output_attentions, device, progress, hyper)  # fmt: skip
        t_train = time.perf_counter()
        output = trainer.train(resume_from_checkpoint=True if resume else None)
        train_s = time.perf_counter() - t_train
    state = trainer.state
    _save(trainer, processor, out, lora)
    losses = [h["loss"] for h in state.log_history if "loss" in h]
    result = TrainResult(
        out=str(out),
        base=base,
        data=[str(p) for p in [*runs, *exports]],
        dialect=dialects.pop() if len(dialects) == 1 else sorted(dialects),
        pixels=(budget.min_pixels, budget.max_pixels),
        examples=len(rows),
        skipped=stats.skipped,
        start_step=start,
        steps=state.global_step,
        final_loss=losses[-1] if losses else None,
        mean_loss=float(output.training_loss) if output.training_loss is not None else None,
        seconds=round(time.perf_counter() - t0, 3),
        s_per_step=round(train_s / max(1, state.global_step - start), 4),
        lora=lora,
        hyper=trainer.pixelpilot_hyper,
        command=command,
    )
    (out / RECORD).write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return result


def _chain(walk: Any, exports: list[Path], stats: DataStats, pixels: PixelBudget) -> Any:
    yield from walk
    for d in exports:
        yield from export_examples(d, stats, pixels)


def _check_options(
    lr: float, epochs: float, max_steps: int | None, workers: int, *counts: int
) -> None:
    """ConfigError for a value no run can use; ``counts`` must all be >= 1."""
    if lr <= 0:
        raise ConfigError(f"the learning rate must be > 0, got {lr}")
    if max_steps is None and epochs <= 0:
        raise ConfigError(f"epochs must be > 0, got {epochs}")
    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"max_steps must be at least 1, got {max_steps}")
    if workers < 0 or any(i < 1 for i in counts):
        raise ConfigError(
            "batch size, gradient accumulation, LoRA rank, save and log steps must be >= 1, "
            "workers >= 0"
        )


def _require(*packages: str) -> None:
    """ConfigError naming the extra to install when a training package is missing."""
    import importlib.util

    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        raise ConfigError(
            f"pixelpilot train needs {', '.join(missing)}: pip install 'pixelpilot[train]'"
        )


def _check_out(out: Path, resume: bool) -> None:
    """``out`` must be new or empty, or (with ``resume``) hold a run of ours to go on with."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a directory")
    entries = list(out.iterdir()) if out.is_dir() else []
    ours = (out / RECORD).is_file() or any(_checkpoints(out))
    if resume:
        if not any(_checkpoints(out)):
            raise UserError(f"nothing to resume in {out}: no checkpoint-N in it")
    elif ours:
        raise UserError(
            f"{out} already holds a training run; add --resume to go on with it or choose "
            "another --out"
        )
    elif entries:
        raise UserError(f"{out} holds other files; give a new or empty directory as --out")


def _checkpoints(out: Path) -> list[Path]:
    if not out.is_dir():
        return []
    return [p for p in out.iterdir() if p.is_dir() and p.name.startswith("checkpoint-")]


def _last_step(out: Path) -> int:
    steps = [int(p.name.partition("-")[2]) for p in _checkpoints(out)
             if p.name.partition("-")[2].isdigit()]  # fmt: skip
    return max(steps, default=0)


def _trainer(
    base: str,
    out: Path,
    processor: Any,
    rows: list[dict[str, Any]],
    extra_loss: ExtraLoss | None,
    hidden: bool,
    attentions: bool,
    device: str | None,
    progress: Callable[[TrainLog], None] | None,
    hp: dict[str, Any],
) -> Any:
    import torch
    from datasets import Dataset
    from transformers.trainer_callback import ProgressCallback
    from trl import SFTConfig

    from pixelpilot.agent.train_loop import (
        BarOnly,
        PixelPilotTrainer,
        ProgressLines,
        ResumedSchedule,
    )
    from pixelpilot.vlm.checkpoint import load_checkpoint, torch_dtype

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = torch_dtype(None, dev)  # bf16 on CUDA, fp32 on a CPU
    attn = "eager" if attentions else "sdpa"  # SDPA returns no attention weights
    _, model = load_checkpoint(base, dev, dtype, attn)
    peft_config = None
    if hp["lora"]:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=hp["lora_rank"], lora_alpha=2 * hp["lora_rank"], lora_dropout=0.05,
            target_modules=list(LORA_TARGETS), task_type="CAUSAL_LM",
        )  # fmt: skip
    cuda = dev.type == "cuda"
    if hp["workers"] is None:
        hp["workers"] = min(8, (os.cpu_count() or 1) - 1) if cuda else 0
    args = SFTConfig(
        output_dir=str(out),
        per_device_train_batch_size=hp["batch_size"],
        gradient_accumulation_steps=hp["grad_accum"],
        learning_rate=hp["lr"],
        num_train_epochs=hp["epochs"],
        max_steps=hp["max_steps"] or -1,
        logging_steps=hp["log_steps"],
        save_strategy="steps",
        save_steps=hp["save_steps"],
        save_total_limit=2,  # resuming needs the last; a 7B one with its optimizer is ~45 GB
        seed=hp["seed"],
        bf16=cuda,
        use_cpu=not cuda,
        gradient_checkpointing=cuda,  # memory on a GPU; on a CPU (tiny models) speed
        report_to="none",
        dataset_kwargs={"skip_prepare_dataset": True},
        remove_unused_columns=False,
        max_length=None,
        dataloader_pin_memory=cuda,
        dataloader_num_workers=hp["workers"],
        save_only_model=False,
    )
    lines = [ProgressLines(lambda **kw: progress(TrainLog(**kw)))] if progress else []
    trainer = PixelPilotTrainer(
        model=model,
        args=args,
        data_collator=Collator(processor),
        train_dataset=Dataset.from_list(rows),
        processing_class=processor,
        peft_config=peft_config,
        callbacks=[ResumedSchedule(), *lines],
        extra_loss=extra_loss,
        output_hidden_states=hidden,
        output_attentions=attentions,
    )
    if progress is not None and trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(BarOnly)
    trainer.pixelpilot_hyper = {**hp, "device": dev.type, "dtype": str(dtype).removeprefix("torch."),
                                "examples_per_step": hp["batch_size"] * hp["grad_accum"]}  # fmt: skip
    return trainer


def _save(trainer: Any, processor: Any, out: Path, lora: bool) -> None:
    """The trained model as a plain checkpoint in ``out`` (a LoRA adapter merged into it), with
    the processor files and the pixel budget (preprocessor_config.json min/max_pixels)."""
    model = trainer.model
    if lora:
        model = model.merge_and_unload()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    ip = processor.image_processor
    ip.save_pretrained(out)  # preprocessor_config.json, the file other tools read the budget from
    cfg_file = out / "preprocessor_config.json"
    cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    cfg["min_pixels"], cfg["max_pixels"] = ip.size["shortest_edge"], ip.size["longest_edge"]
    cfg_file.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
