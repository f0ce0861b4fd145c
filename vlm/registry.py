"""Model references -> VisionModel instances: the one place the CLI, scenarios and the API
resolve them.

A reference is one of:

- a short name from ``CARDS`` (``qwen2-vl-7b``, ``ui-tars-7b``, ...): the hub checkpoint it
  names, with that family's dialect and pixel budget, loaded by the local transformers backend
  from this machine's hub cache (no download is started: a missing checkpoint is one line that
  says what to download and how to point at a directory);
- ``tiny`` / ``tiny-qwenvocab``: the built-in tiny checkpoint (random weights), built on first use;
- a checkpoint directory (anything ``from_pretrained`` reads), optionally ``DIR#DIALECT``;
- ``openai:URL#MODEL``: an OpenAI-compatible server (vLLM, SGLang, ``transformers serve``);
  without ``#MODEL`` the server's one listed model;
- ``scripted:FILE``: a YAML list of raw outputs (any dialect), replayed in order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from pixelpilot.agent.errors import ConfigError
from pixelpilot.agent.geometry import HUB_PIXELS, PixelBudget
from pixelpilot.vlm.base import VisionModel
from pixelpilot.vlm.checkpoint import TRAIN_RECORD
from pixelpilot.vlm.scripted import ScriptedModel


@dataclass(frozen=True)
class ModelCard:
    """A known checkpoint: where it lives, how it talks, what pixel budget it was trained with."""

    name: str
    hub_id: str
    dialect: str
    pixels: PixelBudget
    gigabytes: float
    """bf16 weights on disk, for the download hint."""


_UITARS_V1 = PixelBudget(100 * 28 * 28, 2700 * 28 * 28)  # UI-TARS SDK, MAX_PIXELS_V1_0
_UITARS_V15 = PixelBudget(100 * 28 * 28, 16384 * 28 * 28)  # UI-TARS README_coordinates
_SHOWUI = PixelBudget(256 * 28 * 28, 1344 * 28 * 28)  # ShowUI README

CARDS: dict[str, ModelCard] = {
    c.name: c
    for c in (
        ModelCard("qwen2-vl-2b", "Qwen/Qwen2-VL-2B-Instruct", "qwen2vl", HUB_PIXELS, 4.4),
        ModelCard("qwen2-vl-7b", "Qwen/Qwen2-VL-7B-Instruct", "qwen2vl", HUB_PIXELS, 16.6),
        ModelCard("qwen2-vl-72b", "Qwen/Qwen2-VL-72B-Instruct", "qwen2vl", HUB_PIXELS, 147.0),
        ModelCard("qwen2.5-vl-7b", "Qwen/Qwen2.5-VL-7B-Instruct", "qwen25vl", HUB_PIXELS, 16.6),
        ModelCard("ui-tars-7b", "bytedance-research/UI-TARS-7B-DPO", "uitars", _UITARS_V1, 16.6),
        ModelCard(
            "ui-tars-1.5-7b", "ByteDance-Seed/UI-TARS-1.5-7B", "uitars-1.5", _UITARS_V15, 16.6
        ),
        ModelCard("os-atlas-pro-7b", "OS-Copilot/OS-Atlas-Pro-7B", "osatlas", HUB_PIXELS, 16.6),
        ModelCard("showui-2b", "showlab/ShowUI-2B", "showui", _SHOWUI, 4.4),
    )
}
TINY = {"tiny": "small", "tiny-qwenvocab": "qwen"}
"""What ``pixelpilot train`` writes beside a checkpoint it made (agent/train.py)."""
MODEL_HELP = (
    f"a short name ({', '.join(CARDS)}), demo, tiny, a checkpoint directory, "
    "openai:URL#MODEL, or scripted:FILE (a YAML list of raw model outputs)"
)


DEMO_DIR = Path(__file__).parent / "demo_model"
"""The built-in demo model (reference ``demo``): shipped in the package, docs/training.md."""


def _alias(ref: str) -> str:
    """``demo`` -> the shipped demo model's directory (ConfigError when this install lacks it)."""
    if ref != "demo":
        return ref
    if not (DEMO_DIR / "config.json").is_file():
        raise ConfigError(
            f"the demo model is not in this install ({DEMO_DIR}); rebuild it with "
            "bash scripts/build_demo_model.sh (docs/training.md)"
        )
    return f"{DEMO_DIR}#qwen2vl"


def default_dialect(ref: str) -> str:
    """The dialect a reference's model speaks: the card's, the ``#DIALECT`` of a directory, the
    one a ``pixelpilot train`` output was trained in; qwen2vl where nothing says."""
    if ref == "demo":
        return "qwen2vl"
    if ref in CARDS:
        return CARDS[ref].dialect
    if not ref.startswith(("scripted:", "openai:")) and "#" in ref:
        return ref.rpartition("#")[2]
    return trained_dialect(ref) or "qwen2vl"


def trained_dialect(ref: str) -> str | None:
    """The single dialect ``DIR/pixelpilot-train.json`` says DIR was trained in, else None."""
    file = Path(ref) / TRAIN_RECORD
    if ref.startswith(("scripted:", "openai:")) or not file.is_file():
        return None
    try:
        dialect = json.loads(file.read_text(encoding="utf-8")).get("dialect")
    except (OSError, ValueError, AttributeError):
        return None
    return dialect if isinstance(dialect, str) else None


@dataclass(frozen=True)
class LocalCheckpoint:
    """A reference resolved to weights on this machine: ``where`` (a directory or a hub id in
    the local cache, what ``from_pretrained`` reads), its ``dialect`` and ``pixels`` where the
    reference names them (a card, ``DIR#DIALECT``), else None."""

    where: str
    dialect: str | None = None
    pixels: PixelBudget | None = None


def local_checkpoint(ref: str) -> LocalCheckpoint:
    """The checkpoint files a model reference names (ConfigError for a server, a script, or
    weights that are not here), for tools that need the weights themselves (training)."""
    ref = _alias(ref)
    kind = ref.partition(":")[0]
    if kind in ("scripted", "openai"):
        raise ConfigError(f"{ref} is not a checkpoint on this machine; give tiny, a short name "
                          "whose weights are downloaded, or a checkpoint directory")  # fmt: skip
    if ref in TINY:
        from pixelpilot.vlm.tiny import ensure_tiny

        return LocalCheckpoint(str(ensure_tiny(vocab=TINY[ref])))  # type: ignore[arg-type]
    if ref in CARDS:
        card = CARDS[ref]
        _require_cached(card)
        return LocalCheckpoint(card.hub_id, card.dialect, card.pixels)
    path, _, dialect = ref.partition("#")
    if Path(path).is_dir():
        return LocalCheckpoint(path, dialect or trained_dialect(path))
    raise ConfigError(f"unknown model {ref!r}; use {MODEL_HELP}")


def load_model(ref: str, **options: object) -> VisionModel:
    """Resolve a model reference; raises ConfigError with what to write or download instead.

    ``options`` go to the backend (e.g. ``device``, ``dtype``, ``pixels``, ``temperature``).
    """
    ref = _alias(ref)
    kind, _, arg = ref.partition(":")
    if options.get("compile") and kind in ("scripted", "openai"):
        raise ConfigError(f"--compile is for local transformers models; {ref} does not compile")
    if kind == "scripted":
        return _scripted(arg, options.get("pixels"))  # type: ignore[arg-type]
    if kind == "openai":
        return _server(arg, options)
    if ref in TINY:
        from pixelpilot.vlm.local import LocalModel
        from pixelpilot.vlm.tiny import ensure_tiny

        path = ensure_tiny(vocab=TINY[ref])  # type: ignore[arg-type]
        return LocalModel(str(path), name=ref, **options)  # type: ignore[arg-type]
    if ref in CARDS:
        card = CARDS[ref]
        _require_cached(card)
        from pixelpilot.vlm.local import LocalModel

        options.setdefault("pixels", card.pixels)
        return LocalModel(card.hub_id, dialect=card.dialect, name=ref, **options)  # type: ignore[arg-type]
    path, _, dialect = ref.partition("#")
    if Path(path).is_dir():
        from pixelpilot.vlm.local import LocalModel

        return LocalModel(path, dialect=dialect or None, **options)  # type: ignore[arg-type]
    raise ConfigError(f"unknown model {ref!r}; use {MODEL_HELP}")


def check_reference(ref: str) -> None:
    """Fail as ``load_model`` would on a bad reference, without loading any weights (parallel
    runs check the reference once, then load the model in every worker)."""
    ref = _alias(ref)
    kind = ref.partition(":")[0]
    if kind in ("scripted", "openai"):
        load_model(ref).close()  # a file read or a client object: cheap
    elif ref in CARDS:
        _require_cached(CARDS[ref])
    elif ref not in TINY and not Path(ref.partition("#")[0]).is_dir():
        raise ConfigError(f"unknown model {ref!r}; use {MODEL_HELP}")


def is_cached(card: ModelCard) -> bool:
    """Whether the checkpoint is in this machine's hub cache (looks at no network)."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(card.hub_id, "config.json"), str)


def _require_cached(card: ModelCard) -> None:
    """Fail in one line, before transformers tries the network, when the weights aren't here."""
    if is_cached(card):
        return
    raise ConfigError(
        f"{card.name}: the weights of {card.hub_id} ({card.gigabytes:g} GB) are not on this "
        f"machine; download them with 'hf download {card.hub_id}' or pass a local copy with "
        f"--model /path/to/checkpoint#{card.dialect}"
    )


def _server(arg: str, options: dict[str, object]) -> VisionModel:
    if not arg.startswith(("http://", "https://")):
        raise ConfigError(
            f"bad server reference 'openai:{arg}'; write openai:http://HOST:PORT/v1#MODEL_NAME"
        )
    from pixelpilot.vlm.openai_server import from_reference

    return from_reference(arg, **options)


def _scripted(path: str, pixels: PixelBudget | None = None) -> ScriptedModel:
    file = Path(path)
    if not path or not file.is_file():
        raise ConfigError(f"scripted model file {path!r} not found; write scripted:FILE")
    try:
        outputs = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({_yaml_where(exc)})") from None
    if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
        raise ConfigError(f"{path}: must be a YAML list of strings (raw model outputs)")
    return ScriptedModel(outputs, name=f"scripted:{file.name}", pixels=pixels)


def _yaml_where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "syntax error"
    return f"line {mark.line + 1}: {problem}" if mark is not None else problem
