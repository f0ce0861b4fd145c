"""``pixelpilot train``: a thin layer over ``train.train`` (docs/training.md).

The model reference is resolved by the registry (``tiny``, a short name whose weights are here,
``DIR`` or ``DIR#DIALECT``); its dialect and pixel budget are the defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pixelpilot.agent.cli_common import out
from pixelpilot.agent.errors import UserError
from pixelpilot.agent.geometry import PixelBudget


def train_cmd(
    ctx: typer.Context,
    data: Annotated[
        list[Path],
        typer.Argument(
            help="Run directories, folders of them at any depth (runs/, a bench's --out), "
            "or 'pixelpilot export' directories (data.jsonl)."
        ),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="New (or empty) output directory.")],
    model: Annotated[
        str,
        typer.Option(
            help="Base checkpoint: tiny, a short name whose weights are here, DIR or "
            "DIR#DIALECT (a Qwen2-VL-architecture checkpoint), or scratch (with --grounding: "
            "a new small model, its tokenizer trained on the data's prompts)."
        ),
    ] = "tiny",
    dialect: Annotated[
        str | None,
        typer.Option(
            help="Dialect to train (default: the base model's own where its reference "
            "names one, else each run's own)."
        ),
    ] = None,
    epochs: Annotated[float, typer.Option(min=0.0)] = 1.0,
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="Optimizer steps in all (overrides --epochs).")
    ] = None,
    lr: Annotated[float, typer.Option(help="Peak learning rate (linear decay).")] = 1e-5,
    batch_size: Annotated[int, typer.Option(min=1, help="Examples per micro-batch.")] = 1,
    grad_accum: Annotated[int, typer.Option(min=1, help="Micro-batches per step.")] = 1,
    lora: Annotated[
        bool, typer.Option("--lora", help="Train a LoRA adapter (merged into the output).")
    ] = False,
    lora_rank: Annotated[int, typer.Option(min=1)] = 16,
    max_pixels: Annotated[
        int | None,
        typer.Option(
            min=3136,
            help="Pixel budget of the screenshots (default: the base's own); "
            "run the trained model with the same one (it is saved with it).",
        ),
    ] = None,
    min_pixels: Annotated[int, typer.Option(min=3136)] = 3136,
    seed: Annotated[int, typer.Option()] = 0,
    save_steps: Annotated[
        int, typer.Option(min=1, help="Write a checkpoint every this many steps.")
    ] = 500,
    log_steps: Annotated[
        int, typer.Option(min=1, help="A progress line every this many steps.")
    ] = 10,
    workers: Annotated[
        int | None,
        typer.Option(min=0, help="Processes preparing the screenshots of the next batches "
                     "(default: 0 on a CPU, up to 8 beside a GPU)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Go on from the last checkpoint in --out.")
    ] = False,
    all_runs: Annotated[
        bool,
        typer.Option("--all/--only-success", help="Also train on runs that did not succeed."),
    ] = False,
    keep_retried: Annotated[
        bool, typer.Option("--keep-retried", help="Keep steps whose first answer was rejected.")
    ] = False,
    grounding: Annotated[
        bool,
        typer.Option(
            "--grounding",
            help="Train to point from scratch: the language loss plus training-only losses "
            "that tie the coordinates to the image tokens (needs recorded element boxes; "
            "docs/training.md). Uses --max-steps, --batch-size, --lr, --seed, --save-steps.",
        ),
    ] = False,
) -> None:
    """Fine-tune a Qwen2-VL-architecture checkpoint on recorded runs (TRL SFTTrainer).

    Every step's prompt is rebuilt by the code that built it at inference and tokenized as the
    local backend tokenizes it; the loss is on the recorded action and its end-of-turn token.
    The output directory is a plain checkpoint: run it with --model OUT#DIALECT."""
    from pixelpilot.agent.train import TrainLog, train
    from pixelpilot.vlm.registry import local_checkpoint

    if grounding:
        _grounding(ctx, data, out_dir, model, dialect, max_steps, batch_size, lr, seed,
                   save_steps, resume, all_runs, min_pixels, max_pixels, log_steps)  # fmt: skip
        return
    if model == "scratch":
        raise UserError("--model scratch builds an untrained model: use it with --grounding")
    base = local_checkpoint(model)
    pixels = base.pixels
    if max_pixels is not None:
        if max_pixels < min_pixels:
            raise UserError(f"--max-pixels {max_pixels} is below --min-pixels {min_pixels}")
        pixels = PixelBudget(min_pixels, max_pixels)
    out.print(f"training {escape(model)} into {escape(str(out_dir))}")

    def line(log: TrainLog) -> None:
        loss = f"{log.loss:.4f}" if log.loss is not None else "-"
        lr_now = f"{log.lr:.2e}" if log.lr is not None else "-"
        out.print(
            f"step {log.step:>5}/{log.total}  loss [bold]{loss}[/]  lr {lr_now}  "
            f"{log.s_per_step:.2f} s/step"
        )

    try:
        result = train(
            data,
            base.where,
            out_dir,
            dialect=dialect or base.dialect,
            pixels=pixels,
            epochs=epochs,
            max_steps=max_steps,
            lr=lr,
            batch_size=batch_size,
            grad_accum=grad_accum,
            lora=lora,
            lora_rank=lora_rank,
            seed=seed,
            save_steps=save_steps,
            log_steps=log_steps,
            workers=workers,
            resume=resume,
            only_success=not all_runs,
            drop_retried=not keep_retried,
            progress=line,
            command=_command_line(ctx),
        )
    except KeyboardInterrupt:  # Ctrl+C, SIGTERM: the checkpoints written so far stay
        last = sorted(out_dir.glob("checkpoint-*"), key=lambda c: c.stat().st_mtime)
        where = f"; go on from {last[-1].name} with --resume" if last else ""
        out.print(f"[yellow]interrupted[/]{escape(where)}")
        raise typer.Exit(130) from None
    skipped = ", ".join(f"{k}: {v}" for k, v in sorted(result.skipped.items())) or "none"
    loss = f"{result.final_loss:.4f}" if result.final_loss is not None else "-"
    dialect_ = result.dialect if isinstance(result.dialect, str) else ",".join(result.dialect)
    out.print(
        f"trained {result.examples} examples (skipped: {escape(skipped)}), steps "
        f"{result.start_step}->{result.steps}, final loss {loss}, {result.seconds:.1f} s "
        f"({result.s_per_step:.2f} s/step)"
    )
    out.print(
        f"model: {escape(result.out)}  (pixelpilot run --model {escape(result.out)}#{dialect_})"
    )


def _command_line(ctx: typer.Context) -> list[str]:
    """This command as a command line: its arguments, then each option not at its default."""
    words = ["pixelpilot", *ctx.command_path.split()[1:]]
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if param.param_type_name == "argument":
            words += [str(v) for v in value or ()]
        elif value != param.default:
            if getattr(param, "is_flag", False):
                names = param.opts if value else param.secondary_opts
                words += names[:1] or [f"--{param.name}"]
            else:
                words += [param.opts[0], str(value)]
    return words


def _grounding(ctx: typer.Context, data: list[Path], out_dir: Path, model: str,
               dialect: str | None, max_steps: int | None, batch_size: int, lr: float,
               seed: int, save_steps: int, resume: bool, all_runs: bool, min_pixels: int,
               max_pixels: int | None, log_steps: int) -> None:  # fmt: skip
    """``--grounding``: train_grounding's recipe (its defaults where a flag was left alone)."""
    from pixelpilot.agent.geometry import HUB_PIXELS
    from pixelpilot.agent.train_grounding import GroundingConfig, GroundingLog, run_grounding

    if out_dir.exists() and any(out_dir.iterdir()) and not resume:
        raise UserError(f"--out {out_dir} is not empty; name a new directory or add --resume")
    if max_pixels is not None and max_pixels < min_pixels:
        raise UserError(f"--max-pixels {max_pixels} is below --min-pixels {min_pixels}")
    base = model
    if model != "scratch":
        from pixelpilot.vlm.registry import local_checkpoint

        base = str(local_checkpoint(model).where)
    def given(name: str) -> bool:  # a flag on the command line, not this command's default
        source = ctx.get_parameter_source(name)  # typer's own click: compare by name
        return source is not None and source.name != "DEFAULT"

    d = GroundingConfig()
    cfg = GroundingConfig(
        max_steps=max_steps or d.max_steps,
        batch_size=batch_size if given("batch_size") else d.batch_size,
        lr=lr if given("lr") else d.lr,
        seed=seed,
        save_steps=save_steps if given("save_steps") else d.save_steps,
    )
    pixels = PixelBudget(min_pixels, max_pixels) if max_pixels is not None else HUB_PIXELS
    out.print(f"grounding training of {escape(model)} into {escape(str(out_dir))}")

    def line(log: GroundingLog) -> None:
        if log.step % log_steps and log.step != log.total and not log.val:
            return
        terms = "  ".join(f"{k} {v:.3f}" for k, v in log.losses.items())
        held = "  held-out: " + ", ".join(f"{k} {v:.1%}" for k, v in log.val.items()) if log.val else ""
        out.print(f"step {log.step:>5}/{log.total}  {terms}  lr {log.lr:.2e}  "
                  f"{log.s_per_step:.2f} s/step{escape(held)}")  # fmt: skip

    record = run_grounding(data, base, out_dir, cfg, dialect=dialect, pixels=pixels,
                           resume=resume, only_success=not all_runs, progress=line,
                           command=_command_line(ctx))  # fmt: skip
    out.print(f"[green]done[/]: {record['steps']} steps in {record['seconds']:.0f} s on "
              f"{record['examples']} examples; model in {escape(str(out_dir))} "
              f"(run it with --model {escape(str(out_dir))}#{record['dialect']})")
