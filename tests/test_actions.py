"""The action union: one schema source, one-line validation errors, JSON round trips."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pixelpilot.agent.actions import (
    ACTION_ADAPTER,
    ACTION_TYPES,
    BY_KIND,
    DESKTOP_KINDS,
    MOBILE_KINDS,
    ROBOT_KINDS,
    Click,
    Drag,
    Point,
    action_from_call,
    arguments_schema,
    points,
    tool_specs,
)
from pixelpilot.agent.errors import ParseError
from pixelpilot.agent.keys import normalize_key


def test_every_kind_is_offered_by_some_device():
    assert set(BY_KIND) == DESKTOP_KINDS | MOBILE_KINDS | ROBOT_KINDS
    assert len(BY_KIND) == len(ACTION_TYPES) == 19


def test_schema_is_generated_from_the_models():
    spec = {s["name"]: s for s in tool_specs(DESKTOP_KINDS, bounds=(0, 1000))}
    assert set(spec) == DESKTOP_KINDS
    click = spec["click"]["parameters"]
    # Click.point may be None (Qwen2.5-VL's clicks at the pointer), but a generic tool asks for it
    assert Click.model_fields["point"].is_required() is False and click["required"] == ["point"]
    assert click["properties"]["point"]["items"] == {"type": "integer", "minimum": 0, "maximum": 1000}
    assert click["properties"]["button"]["enum"] == ["left", "right", "middle"]
    assert "kind" not in click["properties"] and click["additionalProperties"] is False
    # a new field on the model shows up in the schema with no second edit anywhere
    assert set(arguments_schema("scroll")["properties"]) == set(BY_KIND["scroll"].model_fields) - {"kind"}
    assert spec["click"]["description"] == "Click a point. count=2 is a double click."


def test_action_from_call_builds_points_in_the_given_space():
    a = action_from_call("drag", {"start": [1, 2], "end": [3, 4]}, "resized_px")
    assert a == Drag(start=Point(x=1, y=2, space="resized_px"), end=Point(x=3, y=4, space="resized_px"))
    assert [p.space for p in points(a)] == ["resized_px", "resized_px"]


@pytest.mark.parametrize(
    ("kind", "args", "reason"),
    [
        ("clack", {}, "unknown action 'clack'"),
        ("move", {}, "missing argument 'point'"),
        ("click", {"point": [1]}, "'point' must be [x, y]"),
        ("click", {"point": ["a", 2]}, "'point' must be [x, y]"),
        ("click", {"point": [True, 2]}, "'point' must be [x, y]"),
        ("click", {"point": [1, 2], "clicks": 2}, "unexpected argument 'clicks'"),
        ("click", {"point": [1, 2], "count": 9}, "'count'"),
        ("type", {"text": ""}, "'text'"),
        ("hotkey", {"keys": []}, "'keys'"),
        ("scroll", {"direction": "sideways"}, "'direction'"),
        ("click", [1, 2], "arguments must be a JSON object"),
    ],
)
def test_invalid_calls_give_one_line_reasons(kind, args, reason):
    with pytest.raises(ParseError) as err:
        action_from_call(kind, args, "norm1000")
    assert reason in str(err.value) and "\n" not in str(err.value)


def test_json_round_trip_of_every_kind():
    p = {"x": 1, "y": 2, "space": "norm1000"}
    samples = {
        "click": {"point": p}, "move": {"point": p}, "drag": {"end": p}, "scroll": {"direction": "up"},
        "type": {"text": "Zoë — 東京 ✓"}, "hotkey": {"keys": ["ctrl", "s"]}, "wait": {},
        "tap": {"point": p}, "long_press": {"point": p}, "swipe": {"start": p, "end": p},
        "system_button": {"button": "back"}, "open_app": {"app": "Settings"}, "pick": {"point": p},
        "place": {"point": p}, "gripper": {"state": "open"}, "move_effector": {"point": p},
        "home": {}, "finish": {"answer": "42"}, "ask_user": {"question": "Which file?"},
    }  # fmt: skip
    assert set(samples) == set(BY_KIND)
    for kind, data in samples.items():
        action = ACTION_ADAPTER.validate_python({"kind": kind, **data})
        assert type(action) is BY_KIND[kind]
        assert ACTION_ADAPTER.validate_json(ACTION_ADAPTER.dump_json(action)) == action


def test_actions_are_immutable():
    c = Click(point=Point(x=1, y=2, space="norm1000"))
    with pytest.raises(ValidationError):
        c.button = "right"


@pytest.mark.parametrize(
    ("raw", "key"), [("Control", "ctrl"), ("RETURN", "enter"), ("Escape", "esc"), ("a", "a"), (" Tab ", "tab")]
)
def test_normalize_key(raw, key):
    assert normalize_key(raw) == key
