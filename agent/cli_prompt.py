"""``pixelpilot model prompt``: the exact text a model receives for one step, to diff against
the family's own code.

The dialect builds the step's prompt (task, earlier steps, screenshots of the screen size) as
``pixelpilot run`` would, and the checkpoint's chat template renders it (``vlm.inputs.chat_text``,
what the local backend feeds the model): the default is the tiny checkpoint's processor, which
carries the hub Qwen2-VL chat template byte for byte; ``--model`` takes another checkpoint's.
Each image is its one vision placeholder (``<|vision_start|><|image_pad|><|vision_end|>``, as
``apply_chat_template`` writes it); what each placeholder stands for (its visual tokens) goes to
stderr, so stdout is the string alone.

The history file (``--history``) is YAML or JSON: a list of earlier steps, oldest first, each a
raw answer as the model wrote it, or a mapping ``{raw: ..., screen: WxH, note: ...}`` (``screen``:
that step's screenshot size, default ``--screen``; ``note``: what pixelpilot told the model
after it, e.g. the user's answer). Screenshots are synthetic images of their size.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from pixelpilot.agent.errors import ParseError, UserError
from pixelpilot.agent.geometry import HUB_PIXELS, PixelBudget

DEVICES = ("desktop", "mobile")
HISTORY_KEYS = frozenset({"raw", "screen", "note"})


@dataclass(frozen=True)
class Step:
    """One earlier step of a history file."""

    raw: str
    screen: tuple[int, int] | None = None
    note: str = ""


@dataclass(frozen=True)
class Shown:
    """One image of the prompt: its screenshot size, what the model sees, its visual tokens."""

    size: tuple[int, int]
    resized: tuple[int, int]
    tokens: int


@dataclass(frozen=True)
class Rendered:
    """The text the model receives (one placeholder per image), its images in order, and the
    prompt's token count with the checkpoint's tokenizer."""

    text: str
    images: list[Shown]
    tokens: int
    dialect: str
    template: str


def parse_screen(text: str, what: str = "--screen") -> tuple[int, int]:
    """``WxH`` -> (W, H); UserError otherwise."""
    w, sep, h = text.lower().partition("x")
    if not (sep and w.isdigit() and h.isdigit() and int(w) > 0 and int(h) > 0):
        raise UserError(
            f"{what}: write the screen size as WIDTHxHEIGHT (e.g. 1280x800), not {text!r}"
        )
    return int(w), int(h)


def load_history(path: Path) -> list[Step]:
    """A history file's steps; UserError naming the file and the step that is wrong."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"--history {path}: cannot read it ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise UserError(f"--history {path}: not valid YAML or JSON ({_where(exc)})") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise UserError(f"--history {path}: must be a list of earlier steps, oldest first")
    steps = []
    for i, item in enumerate(data, 1):
        where = f"--history {path}: step {i}"
        if isinstance(item, str):
            steps.append(Step(item))
            continue
        if not isinstance(item, dict) or not isinstance(item.get("raw"), str):
            raise UserError(f"{where}: write a raw answer, or a mapping with a 'raw' answer")
        unknown = set(item) - HISTORY_KEYS
        if unknown:
            raise UserError(f"{where}: unknown key {sorted(unknown)[0]!r}; use raw, screen, note")
        screen = parse_screen(str(item["screen"]), f"{where}: screen") if "screen" in item else None
        note = item.get("note", "")
        if not isinstance(note, str):
            raise UserError(f"{where}: note must be text")
        steps.append(Step(item["raw"], screen, note))
    return steps


def render(
    task: str,
    *,
    dialect: str | None = None,
    device: str = "desktop",
    screen: tuple[int, int] = (1280, 800),
    history: list[Step] | None = None,
    model: str | None = None,
    official: bool = False,
    pixels: PixelBudget | None = None,
) -> Rendered:
    """The text ``model``'s checkpoint (default: the tiny one) receives for ``task`` on this
    step, built by ``dialect`` (default: the model's own) for ``device`` and ``screen``."""
    from pixelpilot.agent.dialects import Fidelity, get_dialect
    from pixelpilot.agent.dialects.base import Turn
    from pixelpilot.vlm.inputs import encode, image_grid, set_pixels
    from pixelpilot.vlm.registry import default_dialect

    if device not in DEVICES:
        raise UserError(f"--device must be desktop or mobile, got {device!r}")
    if not task.strip():
        raise UserError("--task is empty: say what the agent should do")
    processor, template, budget = _processor(model)
    budget = pixels or budget
    set_pixels(processor, budget)
    the_dialect = get_dialect(
        dialect or default_dialect(model or "tiny"),
        Fidelity.official() if official else Fidelity(),
    )
    turns = []
    for i, step in enumerate(history or [], 1):
        size = step.screen or screen
        ctx = _context(device, size, budget)
        try:
            action = the_dialect.parse(step.raw, ctx)
        except ParseError as err:
            raise UserError(
                f"--history step {i}: not a {the_dialect.name} answer on a {device} "
                f"({err}); write an answer the model could have given"
            ) from None
        turns.append(Turn(raw=step.raw, action=action, image=_screenshot(size, i), note=step.note))
    ctx = _context(device, screen, budget)
    prompt = the_dialect.build_prompt(task, turns, _screenshot(screen, 0), ctx)
    enc = encode(processor, prompt)
    patch = processor.image_processor.patch_size
    shown = []
    for im, span in zip(prompt.images, enc.spans, strict=True):
        _, gh, gw = image_grid(processor, *im.size)
        shown.append(Shown(im.size, (gw * patch, gh * patch), span.end - span.start))
    return Rendered(enc.text, shown, len(enc.ids), the_dialect.name, template)


def prompt_command(
    task: Annotated[str, typer.Option(help="What the agent should do.")],
    dialect: Annotated[
        str | None,
        typer.Option(
            help="qwen2vl | qwen25vl | uitars | uitars-1.5 | osatlas | showui "
            "(default: the model's own)"
        ),
    ] = None,  # fmt: skip
    device: Annotated[str, typer.Option(help="desktop or mobile")] = "desktop",
    screen: Annotated[str, typer.Option(help="Screen size WIDTHxHEIGHT.")] = "1280x800",
    history: Annotated[
        Path | None,
        typer.Option(help="YAML/JSON list of earlier steps: raw answers, or {raw, screen, note}."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Whose chat template and pixel budget: a checkpoint directory "
            "(DIR#DIALECT), a short name whose weights are here, or tiny (default)."
        ),
    ] = None,  # fmt: skip
    official: Annotated[
        bool, typer.Option("--official", help="The family's official format only (no additions).")
    ] = False,
    max_pixels: Annotated[int | None, typer.Option(min=3136)] = None,
    min_pixels: Annotated[int, typer.Option(min=3136)] = 3136,
) -> None:
    """Print exactly the text the model receives for one step (chat template applied, one
    placeholder per image); what each image stands for goes to stderr."""
    pixels = None
    if max_pixels is not None:
        if max_pixels < min_pixels:
            raise UserError(f"--max-pixels {max_pixels} is below --min-pixels {min_pixels}")
        pixels = PixelBudget(min_pixels, max_pixels)
    steps = load_history(history) if history is not None else []
    got = render(
        task, dialect=dialect, device=device, screen=parse_screen(screen), history=steps,
        model=model, official=official, pixels=pixels,
    )  # fmt: skip
    sys.stdout.write(got.text)
    sys.stdout.flush()
    err = sys.stderr
    tokens = f"{got.tokens} prompt tokens, " if model not in (None, "tiny") else ""
    print(
        f"\n# {got.dialect} on a {device} {screen}, {got.template}: {tokens}"
        f"{len(got.images)} image(s); each <|image_pad|> stands for its image's visual tokens:",
        file=err,
    )
    for i, im in enumerate(got.images, 1):
        what = "the current screenshot" if i == len(got.images) else "an earlier screenshot"
        print(
            f"#   image {i} ({what}): {im.size[0]}x{im.size[1]} -> {im.resized[0]}x"
            f"{im.resized[1]}, {im.tokens} visual tokens",
            file=err,
        )


def _processor(model: str | None) -> tuple[Any, str, PixelBudget]:
    """(processor, where its chat template comes from, pixel budget) of a model reference."""
    from transformers import AutoProcessor

    from pixelpilot.agent.cli_model import checkpoint_dir
    from pixelpilot.vlm.registry import CARDS, TINY
    from pixelpilot.vlm.tiny import ensure_tiny

    budget = HUB_PIXELS  # what the local backend uses unless the card or the user says
    if model is None or model in TINY:
        path = ensure_tiny(TINY.get(model or "tiny", "small"))  # type: ignore[arg-type]
        label = "the tiny checkpoint's template (the hub Qwen2-VL one)"
        if model == "tiny-qwenvocab":
            label = "the tiny checkpoint's template (the hub Qwen2-VL one, Qwen vocabulary)"
    elif model.startswith(("openai:", "scripted:")):
        raise UserError(
            f"--model {model}: model prompt reads a checkpoint's chat template; give its "
            "directory, a short name whose weights are here, or tiny"
        )
    elif model in CARDS:
        path, budget = checkpoint_dir(CARDS[model].hub_id), CARDS[model].pixels
        label = f"{model}'s template"
    else:
        path = checkpoint_dir(model.partition("#")[0])
        label = f"{path.name}'s template"
    try:
        processor = AutoProcessor.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise UserError(
            f"--model {model}: no processor there ({str(exc).splitlines()[0]})"
        ) from None
    if getattr(processor, "chat_template", None) is None:
        raise UserError(f"--model {model}: its processor has no chat template")
    return processor, label, budget


def _context(device: str, size: tuple[int, int], budget: PixelBudget) -> Any:
    from pixelpilot.agent.actions import DESKTOP_KINDS, MOBILE_KINDS
    from pixelpilot.agent.dialects.base import StepContext
    from pixelpilot.agent.geometry import ScreenGeometry

    kinds = DESKTOP_KINDS if device == "desktop" else MOBILE_KINDS
    return StepContext(device, kinds, ScreenGeometry(*size), budget.resize(*size))


def _screenshot(size: tuple[int, int], step: int) -> Any:
    """A synthetic screenshot: a plain screen, one shade per step."""
    from PIL import Image

    shade = 230 - (step * 17) % 120
    return Image.new("RGB", size, (shade, shade, 240))


def _where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "syntax error"
    return f"line {mark.line + 1}: {problem}" if mark is not None else problem
