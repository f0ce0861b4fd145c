"""The Dialect interface: a model family's prompt layout, output forms and coordinate space.

A dialect builds the prompt exactly as the family's own code lays it out (``build_prompt``),
reads raw model text into one Action (``parse``: total and linear, an Action or a one-line
ParseError written for the model), writes an Action back as the family writes it (``format``:
scripted outputs, exports, round trips), names the verbs it offers on a device (``offered``)
and owns its decoding grammar and JSON form. It never evaluates model text.

``Fidelity`` switches pixelpilot's additions on top of the family's official format (retry
feedback, extra verbs, notes where the family has no slot); ``Fidelity.official()`` turns them
all off. ``parse`` is final here: it runs the family's ``_parse`` inside a net that turns any
unexpected exception into a ParseError and counts it in ``NET`` (tests assert it never fires:
every known failure is handled where it happens).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from PIL import Image

from pixelpilot.agent.actions import Space
from pixelpilot.agent.errors import ParseError
from pixelpilot.agent.geometry import ScreenGeometry
from pixelpilot.vlm.base import JsonForm, Prompt, Sampling

__all__ = ["NET", "Dialect", "Fidelity", "StepContext", "Turn"]


@dataclass(frozen=True)
class StepContext:
    """What a dialect needs to know about the step beyond the text.

    ``kinds``: action kinds the device supports. ``resized``: (w, h) of the image the model
    sees. ``device_kind``: 'desktop' | 'mobile' | 'robot'. ``secrets``: NAMES of the secrets
    the model may write as ``<secret>NAME</secret>`` in typed text (never their values).
    """

    device_kind: str
    kinds: frozenset[str]
    geometry: ScreenGeometry
    resized: tuple[int, int]
    secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Turn:
    """One earlier step as the model saw and answered it; the dialect's layout decides which
    parts a prompt shows, and how.

    ``raw``: the accepted answer as the model wrote it. ``action``: that answer parsed (model
    space; None where only the text is known). ``image``: the screenshot the model answered
    (None where it was not kept). ``note``: what pixelpilot tells the model about the outcome
    beyond the family's own format ("" for nothing): a device's note ("grasped nothing"), the
    user's answer, a warning that the screen did not change.
    """

    raw: str
    action: Any = None
    image: Image.Image | None = None
    note: str = ""


@dataclass(frozen=True)
class Fidelity:
    """Project additions on top of a family's official format; all off = the official format
    only. Each family lists its additions, with the reason, in docs/models.md."""

    feedback: bool = True
    """The reason a rejected answer was rejected, shown on the re-ask."""
    extra_verbs: bool = True
    """Verbs the family lacks (ask_user, robot kinds, ...)."""
    notes: bool = True
    """Notes (device, user answers, warnings) where the family has no slot for them."""

    @classmethod
    def official(cls) -> Fidelity:
        return cls(feedback=False, extra_verbs=False, notes=False)


NET: Counter[str] = Counter()
"""How often the parse net caught an unexpected exception, by dialect name. Stays empty: a
parser raises ParseError itself for every answer it refuses."""


class Dialect(ABC):
    """A model family's interface. Subclasses implement ``_parse``, ``format``, ``offered``,
    ``build_prompt`` and, where the family has them, ``grammar`` and ``json_form``."""

    name: ClassVar[str]
    space: ClassVar[Space]
    """The coordinate space the family's points are in."""
    sampling: ClassVar[Sampling] = Sampling()
    """The family authors' decoding settings (the backend's defaults for this dialect)."""

    def __init__(self, fidelity: Fidelity | None = None) -> None:
        self.fidelity = fidelity or Fidelity()

    # -- prompt ------------------------------------------------------------------------------
    @abstractmethod
    def build_prompt(
        self,
        task: str,
        history: Sequence[Turn],
        image: Image.Image,
        ctx: StepContext,
        feedback: str | None = None,
    ) -> Prompt:
        """The prompt for the next step: the family's layout of task, earlier turns and the
        current screenshot. ``feedback`` is why the previous answer of this step was rejected
        (shown only where ``fidelity.feedback`` allows)."""

    @abstractmethod
    def offered(self, ctx: StepContext) -> list[str]:
        """The verbs offered on this device, in prompt order."""

    def grammar(self, ctx: StepContext) -> str | None:
        """A Lark grammar (for llguidance) admitting only answers ``parse`` accepts for this
        step, or None when the family has none. Cached: cheap to call every step."""
        return None

    def json_form(self, ctx: StepContext) -> JsonForm | None:
        """The call as one JSON object, or None where the family's call is not JSON."""
        return None

    # -- output ------------------------------------------------------------------------------
    def parse(self, raw: str, ctx: StepContext) -> Any:
        """Raw model text -> one Action (points in ``self.space``), or ParseError: for any
        text, in time linear in its length."""
        try:
            return self._parse(raw, ctx)
        except ParseError:
            raise
        except Exception as exc:  # noqa: BLE001 - the net: counted, and a test keeps it at 0
            NET[self.name] += 1
            raise ParseError(
                f"cannot read this answer ({type(exc).__name__}); answer with one call as the "
                "instructions show"
            ) from None

    @abstractmethod
    def _parse(self, raw: str, ctx: StepContext) -> Any:
        """``parse`` without the net: raise ParseError for every answer it refuses."""

    @abstractmethod
    def format(self, action: Any, ctx: StepContext) -> str:
        """An Action (points in ``self.space``) written as this family's model would write it;
        ValueError when the family cannot express it."""
