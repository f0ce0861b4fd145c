"""Every action an agent can take, as one pydantic discriminated union.

An action is what the model asked for, in the model's coordinate space; the same types, with
points in ``screen_px``, are what a device executes. The JSON schema that prompts and grammars
show the model is generated here (``arguments_schema``), never written by hand elsewhere.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from pixelpilot.agent.errors import ParseError

Space = Literal["norm1000", "resized_px", "screen_px", "logical_pt"]
"""Coordinate spaces: 0..1000 of the image; pixels of the model's resized image; physical
device pixels; OS logical points (physical / scale)."""

SPACES: tuple[Space, ...] = get_args(Space)


class Point(BaseModel):
    """A point that always says which coordinate space it is in (finite coordinates only)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    x: float
    y: float
    space: Space

    def __str__(self) -> str:
        return f"({self.x:g}, {self.y:g} {self.space})"


class _Action(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# -- desktop -----------------------------------------------------------------------------------
class Click(_Action):
    """Click a point. count=2 is a double click."""

    kind: Literal["click"] = "click"
    point: Point | None = None
    """None: where the pointer is (Qwen2.5-VL's cookbook clicks); generic tools ask for a point
    (``WRITTEN_REQUIRED``)."""
    button: Literal["left", "right", "middle"] = "left"
    count: int = Field(1, ge=1, le=3)


class Move(_Action):
    """Move the pointer to a point without clicking (hover)."""

    kind: Literal["move"] = "move"
    point: Point


class Drag(_Action):
    """Press at start (or where the pointer is, when start is None), move to end, release."""

    kind: Literal["drag"] = "drag"
    start: Point | None = None
    end: Point
    button: Literal["left", "right", "middle"] = "left"


class Scroll(_Action):
    """Scroll the content under a point (or under the pointer). direction is where the view
    moves: 'down' reveals content below. amount is in wheel clicks."""

    kind: Literal["scroll"] = "scroll"
    direction: Literal["up", "down", "left", "right"]
    amount: int = Field(5, ge=1, le=1000)
    point: Point | None = None


class TypeText(_Action):
    """Type text into the focused field, exactly as given (a newline presses Enter)."""

    kind: Literal["type"] = "type"
    text: str = Field(min_length=1, max_length=4000)


class Hotkey(_Action):
    """Press keys together, e.g. ['ctrl', 'c'], or one key, e.g. ['enter']."""

    kind: Literal["hotkey"] = "hotkey"
    keys: list[str] = Field(min_length=1, max_length=5)


class Wait(_Action):
    """Do nothing for a while so the screen can change."""

    kind: Literal["wait"] = "wait"
    seconds: float = Field(1.0, ge=0, le=60)


# -- mobile ------------------------------------------------------------------------------------
class Tap(_Action):
    """Tap a point on a touch screen."""

    kind: Literal["tap"] = "tap"
    point: Point


class LongPress(_Action):
    """Touch a point and hold."""

    kind: Literal["long_press"] = "long_press"
    point: Point
    seconds: float = Field(1.0, gt=0, le=10)


class Swipe(_Action):
    """Slide a finger from start to end."""

    kind: Literal["swipe"] = "swipe"
    start: Point
    end: Point
    seconds: float = Field(0.3, gt=0, le=10)


class SystemButton(_Action):
    """Press a phone system button or key (recent: the overview of recent apps; del: backspace)."""

    kind: Literal["system_button"] = "system_button"
    button: Literal[
        "back", "home", "enter", "menu", "recent",
        "volume_up", "volume_down", "volume_mute", "power", "camera", "clear", "search",
        "notification", "tab", "del", "escape", "dpad_up", "dpad_down", "dpad_left",
        "dpad_right", "dpad_center", "wakeup", "sleep",
    ]  # fmt: skip


class OpenApp(_Action):
    """Open an app by its name or package."""

    kind: Literal["open_app"] = "open_app"
    app: str = Field(min_length=1, max_length=200)


# -- robot -------------------------------------------------------------------------------------
class Pick(_Action):
    """Grasp the object seen at an image point."""

    kind: Literal["pick"] = "pick"
    point: Point


class Place(_Action):
    """Put the held object down at an image point."""

    kind: Literal["place"] = "place"
    point: Point


class Gripper(_Action):
    """Open or close the gripper."""

    kind: Literal["gripper"] = "gripper"
    state: Literal["open", "close"]


class MoveEffector(_Action):
    """Move the end effector above an image point, height metres over the surface there."""

    kind: Literal["move_effector"] = "move_effector"
    point: Point
    height: float = Field(0.15, ge=0, le=1.0)


class Home(_Action):
    """Return the arm to its home pose."""

    kind: Literal["home"] = "home"


# -- control -----------------------------------------------------------------------------------
class Finish(_Action):
    """End the task, saying whether it succeeded, with an answer if one was asked for."""

    kind: Literal["finish"] = "finish"
    status: Literal["success", "failure"] = "success"
    answer: str = Field("", max_length=4000)


class AskUser(_Action):
    """Stop and ask the user a question."""

    kind: Literal["ask_user"] = "ask_user"
    question: str = Field(min_length=1, max_length=2000)


ACTION_TYPES: tuple[type[_Action], ...] = (
    Click, Move, Drag, Scroll, TypeText, Hotkey, Wait,
    Tap, LongPress, Swipe, SystemButton, OpenApp,
    Pick, Place, Gripper, MoveEffector, Home,
    Finish, AskUser,
)  # fmt: skip

Action = Annotated[
    Click | Move | Drag | Scroll | TypeText | Hotkey | Wait | Tap | LongPress | Swipe | SystemButton | OpenApp | Pick | Place | Gripper | MoveEffector | Home | Finish | AskUser,
    Field(discriminator="kind"),
]  # fmt: skip
"""Any action; ``action.kind`` tells which."""

ACTION_ADAPTER: TypeAdapter[Action] = TypeAdapter(Action)
BY_KIND: dict[str, type[_Action]] = {t.model_fields["kind"].default: t for t in ACTION_TYPES}

CONTROL_KINDS = frozenset({"finish", "ask_user", "wait"})
DESKTOP_KINDS = frozenset({"click", "move", "drag", "scroll", "type", "hotkey"}) | CONTROL_KINDS
MOBILE_KINDS = (
    frozenset({"tap", "long_press", "swipe", "type", "system_button", "open_app"}) | CONTROL_KINDS
)
ROBOT_KINDS = frozenset({"pick", "place", "gripper", "move_effector", "home"}) | CONTROL_KINDS


def point_fields(cls: type[_Action]) -> list[str]:
    """Names of the fields of ``cls`` that hold a Point."""
    return [
        name
        for name, f in cls.model_fields.items()
        if f.annotation is Point or f.annotation == (Point | None)
    ]


def points(action: _Action) -> list[Point]:
    """The points an action carries, in field order (start before end)."""
    out = []
    for name in point_fields(type(action)):
        p = getattr(action, name)
        if p is not None:
            out.append(p)
    return out


A = TypeVar("A", bound=_Action)


def map_points(action: A, fn: Callable[[Point], Point]) -> A:
    """A copy of ``action`` with every point replaced by ``fn(point)``."""
    update = {
        name: fn(getattr(action, name))
        for name in point_fields(type(action))
        if getattr(action, name) is not None
    }
    return action.model_copy(update=update) if update else action


def arguments_schema(kind: str, bounds: tuple[float, float] | None = None) -> dict[str, Any]:
    """JSON schema of a call's arguments as the model writes them: every point is ``[x, y]``.

    ``bounds`` limits each coordinate (e.g. (0, 1000) for norm1000), for prompts and grammars.
    Generated once per (kind, bounds); each call returns a fresh copy the caller may change.
    """
    out: dict[str, Any] = json.loads(
        _arguments_schema_json(kind, None if bounds is None else (bounds[0], bounds[1]))
    )
    return out


WRITTEN_REQUIRED: dict[str, tuple[str, ...]] = {"click": ("point",)}
"""Fields a generic tool (qwen2vl's functions, other families' extra tools) always asks for
although the action may leave them out: a click at the pointer is the Qwen2.5-VL cookbook's
form only, written through its own tool."""


@functools.cache
def _arguments_schema_json(kind: str, bounds: tuple[float, float] | None) -> str:
    cls = BY_KIND[kind]
    schema = cls.model_json_schema()
    props = dict(schema.get("properties", {}))
    props.pop("kind", None)
    item: dict[str, Any] = {"type": "number"}
    if bounds is not None:
        item = {"type": "integer", "minimum": bounds[0], "maximum": bounds[1]}
    for name in point_fields(cls):
        props[name] = {
            "type": "array",
            "items": item,
            "minItems": 2,
            "maxItems": 2,
            "description": f"{name} as [x, y]",
        }
    for p in props.values():
        p.pop("title", None)
    required = [r for r in schema.get("required", []) if r != "kind"]
    required += [r for r in WRITTEN_REQUIRED.get(kind, ()) if r not in required]
    required.sort(key=list(props).index)
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = required
    return json.dumps(out)


def tool_specs(
    kinds: frozenset[str] | set[str], bounds: tuple[float, float] | None = None
) -> list[dict[str, Any]]:
    """One function spec (name, description, parameters) per action kind, in union order."""
    specs = []
    for cls in ACTION_TYPES:
        kind = cls.model_fields["kind"].default
        if kind in kinds:
            doc = " ".join((cls.__doc__ or kind).split())
            specs.append(
                {"name": kind, "description": doc, "parameters": arguments_schema(kind, bounds)}
            )
    return specs


def action_from_call(kind: str, args: dict[str, Any], space: Space) -> Any:
    """Build and validate an action from a call as a model writes it (points as [x, y]).

    Raises ParseError with a one-line reason written for the model.
    """
    cls = BY_KIND.get(kind)
    if cls is None:
        raise ParseError(f"unknown action {kind!r}; use one of: {', '.join(BY_KIND)}")
    if not isinstance(args, dict):
        raise ParseError(f"{kind}: arguments must be a JSON object")
    data = dict(args)
    for name in point_fields(cls):
        value = data.get(name)
        if value is None:
            continue
        if isinstance(value, Point):
            continue
        if (
            not isinstance(value, (list, tuple))
            or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            raise ParseError(f"{kind}: {name!r} must be [x, y] with two numbers, got {value!r}")
        try:
            data[name] = Point(x=value[0], y=value[1], space=space)
        except ValidationError:  # a number no float holds (309 digits), or not finite
            raise ParseError(f"{kind}: {name!r} holds a number out of range") from None
    data["kind"] = kind
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise ParseError(f"{kind}: {_first_error(err)}") from None


def _first_error(err: ValidationError) -> str:
    e = err.errors()[0]
    loc = ".".join(str(p) for p in e["loc"]) or "arguments"
    if e["type"] == "extra_forbidden":
        return f"unexpected argument {loc!r}"
    if e["type"] == "missing":
        return f"missing argument {loc!r}"
    return f"{loc!r}: {e['msg']}"
