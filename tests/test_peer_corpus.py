"""Conformance against peer projects' GUI-model outputs (shared/reference/peer_outputs.jsonl).

The corpus is read in place (``../shared/reference`` next to the repository, or the file named
by PIXELPILOT_PEER_CORPUS) and never copied into the project; the module is skipped without it.

Each record is parsed by the dialect its ``dialect``/``coord_space`` name (uitars in resized_px
is UI-TARS-1.5) on a device of its kind. Accepted records must give the expected action kind,
text and keys, and points that ``geometry.to_screen`` puts within 1 px of the expected screen
points (the corpus keeps the peers' fractional pixels; we floor). Rejected records must raise
ParseError.

Conventions:
- ``sequence`` records (several calls after one ``Action:``): the first call is executed and
  the rest ignored, so the record's ``action``/``screen_points`` (which repeat the first call)
  are checked. Several ``Action:`` markers: the last one that starts a line wins.
- Records we deliberately read differently are in DISAGREEMENTS, each asserted to behave as its
  reason says. Records flagged ambiguous are held to our decision in AMBIGUOUS.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from pixelpilot.agent.actions import (
    DESKTOP_KINDS,
    MOBILE_KINDS,
    Click,
    Drag,
    Finish,
    Point,
    Swipe,
    TypeText,
    points,
)
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import Dialect, StepContext
from pixelpilot.agent.errors import ParseError, PointOutOfBounds
from pixelpilot.agent.geometry import ScreenGeometry, smart_resize, to_screen

CORPUS = Path(
    os.environ.get("PIXELPILOT_PEER_CORPUS")
    or Path(__file__).resolve().parents[2] / "shared" / "reference" / "peer_outputs.jsonl"
)
if not CORPUS.is_file():
    pytest.skip(
        f"peer corpus not found at {CORPUS}; set PIXELPILOT_PEER_CORPUS to its path",
        allow_module_level=True,
    )
RECORDS: dict[str, dict[str, Any]] = {
    r["id"]: r
    for r in (json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line)
}


def N(x: float, y: float) -> Point:
    return Point(x=x, y=y, space="norm1000")


def R(x: float, y: float) -> Point:
    return Point(x=x, y=y, space="resized_px")


DISAGREEMENTS: dict[str, tuple[str, Any]] = {
    "uitars-desktop-02": (
        (
            "type(text=..., start_box=...): our TypeText has no point, so the box is dropped and "
            "the text typed where the focus is (the corpus also expects a click at the box)"
        ),
        TypeText(text="Hello"),
    ),
    "uitars-desktop-07": (
        "same as uitars-desktop-02 with a <bbox> box: the box of a typing call is dropped",
        TypeText(text="Hello"),
    ),
    "uitars-desktop-28": (
        (
            "scroll(direction='left') on a phone: scroll is not a mobile kind, so it becomes the "
            "swipe that reveals content on the left (finger moves right across the screen centre)"
        ),
        Swipe(start=N(250, 500), end=N(750, 500)),
    ),
}

AMBIGUOUS: dict[str, tuple[str, Any]] = {
    "uitars-parser-test-01": (
        (
            "accepted as written; the point lies off the 280x280 resized image, so geometry "
            "refuses it (PointOutOfBounds goes back to the model) instead of clicking off-screen"
        ),
        Click(point=R(200, 300)),
    ),
    "uitars-codes-readme-02": (
        "fractions read as norm1000 numbers: pixel (0, 0)",
        Click(point=N(0.1, 0.2)),
    ),
    "uitars-desktop-11": ("click with only end_box is rejected", ParseError),
    "uitars-desktop-44": (
        "an inner \\n is a newline, as in ui-tars",
        TypeText(text="Hello World\nUI-TARS\n"),
    ),
    "uitars-pr1818-04": ("run-on steps: the last Action: line wins", Finish()),
    "uitars-pr1818-07": ("a stray <|box_end|> inside the box is rejected", ParseError),
}  # fmt: skip


def dialect_for(record: dict[str, Any]) -> Dialect:
    name = record["dialect"]
    if name == "uitars" and record["coord_space"] == "resized_px":
        name = "uitars-1.5"
    return get_dialect(name)


def ctx_for(record: dict[str, Any]) -> StepContext:
    width, height = record["screen"]
    if record.get("resized"):
        resized = tuple(record["resized"])
    else:
        h, w = smart_resize(height, width)
        resized = (w, h)
    kinds = DESKTOP_KINDS if record["device"] == "desktop" else MOBILE_KINDS
    geometry = ScreenGeometry(width, height)
    return StepContext(record["device"], kinds, geometry, resized)


def assert_same_action(action: Any, expected: dict[str, Any]) -> None:
    """The corpus's normalised action (click, double_click, key, ...) against ours."""
    name, args = expected["action"], expected.get("args", {})
    kind = {"double_click": "click", "right_click": "click", "key": "hotkey", "finish": "finish"}
    assert action.kind == kind.get(name, name)
    if name in ("click", "double_click", "right_click"):
        button, count = {"double_click": ("left", 2), "right_click": ("right", 1)}.get(
            name, ("left", 1)
        )
        assert (action.button, action.count) == (button, count)
    if name == "type":
        assert action.text == args["text"]
    if name == "hotkey":
        assert action.keys == args["keys"]
    if name == "key":
        assert action.keys == [args["key"]]
    if name == "scroll" and "direction" in args:
        assert action.direction == args["direction"]
    if name == "finish" and "status" in args:
        assert action.status == args["status"]
    if name == "system_button":
        assert action.button == args["button"].lower()
    if name == "open_app":
        assert action.app == args["app"]


def _cases(ambiguous: bool) -> list[Any]:
    return [
        pytest.param(rid, id=rid)
        for rid, r in RECORDS.items()
        if bool(r.get("ambiguous")) == ambiguous and rid not in DISAGREEMENTS
    ]


@pytest.mark.parametrize("rid", _cases(ambiguous=False))
def test_record(rid: str) -> None:
    record = RECORDS[rid]
    dialect, ctx, expected = dialect_for(record), ctx_for(record), record["expected"]
    if not expected["ok"]:
        with pytest.raises(ParseError):
            dialect.parse(record["raw"], ctx)
        return
    action = dialect.parse(record["raw"], ctx)
    assert_same_action(action, expected)
    got = [to_screen(p, ctx.geometry, ctx.resized) for p in points(action)]
    want = expected["screen_points"]
    assert len(got) == len(want), (got, want)
    for (gx, gy), (wx, wy) in zip(got, want, strict=True):
        assert abs(gx - wx) <= 1 and abs(gy - wy) <= 1, (got, want)


@pytest.mark.parametrize("rid", sorted(DISAGREEMENTS))
def test_disagreement_behaves_as_documented(rid: str) -> None:
    record = RECORDS[rid]
    reason, expected = DISAGREEMENTS[rid]
    assert reason and not record.get("ambiguous")
    assert dialect_for(record).parse(record["raw"], ctx_for(record)) == expected


@pytest.mark.parametrize("rid", _cases(ambiguous=True))
def test_ambiguous_record_follows_our_decision(rid: str) -> None:
    record = RECORDS[rid]
    dialect, ctx = dialect_for(record), ctx_for(record)
    if rid not in AMBIGUOUS:  # a record added later: it must not crash the parser
        with contextlib.suppress(ParseError):
            dialect.parse(record["raw"], ctx)
        return
    _, expected = AMBIGUOUS[rid]
    if expected is ParseError:
        with pytest.raises(ParseError):
            dialect.parse(record["raw"], ctx)
        return
    action = dialect.parse(record["raw"], ctx)
    assert action == expected
    if rid == "uitars-parser-test-01":
        with pytest.raises(PointOutOfBounds):
            to_screen(action.point, ctx.geometry, ctx.resized)
    if rid == "uitars-codes-readme-02":
        assert to_screen(action.point, ctx.geometry, ctx.resized) == (0, 0)


def test_sequence_records_execute_their_first_call() -> None:
    sequences = [r for r in RECORDS.values() if r["expected"].get("sequence")]
    assert sequences
    for record in sequences:
        first = record["expected"]["sequence"][0]
        action = dialect_for(record).parse(record["raw"], ctx_for(record))
        assert_same_action(action, first)


def test_documented_ids_exist() -> None:
    assert set(DISAGREEMENTS) <= set(RECORDS)
    assert set(AMBIGUOUS) <= set(RECORDS)
    assert all(RECORDS[rid].get("ambiguous") for rid in AMBIGUOUS)


def test_drag_and_click_points_keep_their_order() -> None:
    record = RECORDS["uitars-desktop-46"]
    action = dialect_for(record).parse(record["raw"], ctx_for(record))
    assert isinstance(action, Drag) and action.start is not None
    assert action.start.y < action.end.y
    assert not isinstance(action, Click)
