"""Policies from a file: deny or confirm by kind, key combination, typed text, screen region,
X11 window (read from the X server) and Android package (from the phone). Denied actions are
never executed (a property test over random actions and policies through the real loop) and
the model is told why."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixelpilot.agent.actions import (
    Click,
    Drag,
    Finish,
    Hotkey,
    OpenApp,
    Point,
    Scroll,
    Tap,
    TypeText,
    Wait,
)
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import StepContext
from pixelpilot.agent.errors import ConfigError
from pixelpilot.agent.geometry import HUB_PIXELS, ScreenGeometry, from_screen, to_device
from pixelpilot.agent.loop import Agent, Budgets
from pixelpilot.agent.policy import Policy
from pixelpilot.agent.trajectory import load_trajectory
from pixelpilot.tools.dryrun import DryRunDesktop
from pixelpilot.vlm.scripted import ScriptedModel

W, H = 1280, 800
GEOM = ScreenGeometry(W, H)
RESIZED = HUB_PIXELS.resize(W, H)
FINISH = "✿FUNCTION✿: finish\n✿ARGS✿: {}"


def px(x: float, y: float) -> Point:
    return Point(x=x, y=y, space="screen_px")


def policy(text: str) -> Policy:
    return Policy.from_data(yaml.safe_load(text))


# -- the file format -------------------------------------------------------------------------------
EXAMPLE = """
default: allow
rules:
  - effect: deny
    keys: [ctrl+alt+delete, super]
    reason: system shortcuts are off limits
  - effect: confirm
    text: "(?i)password|rm -rf"
  - effect: deny
    region: [0, 0, 1280, 40]
  - effect: confirm
    window: {class: "(?i)xterm"}
  - effect: deny
    package: "^com\\\\.android\\\\.vending$"
"""


def test_the_documented_example_loads_and_decides():
    p = policy(EXAMPLE)
    decide = lambda a: p.decide(a, a)  # noqa: E731 - screen_px actions: the same in both spaces
    assert decide(Hotkey(keys=["ctrl", "alt", "delete"])).effect == "deny"
    assert decide(Hotkey(keys=["Control", "Alt", "Del"])).effect == "deny"  # aliases
    assert decide(Hotkey(keys=["winleft", "r"])).reason == "system shortcuts are off limits"
    assert decide(Hotkey(keys=["ctrl", "delete"])).effect == "allow"  # not the whole combination
    assert decide(TypeText(text="my PASSWORD")).effect == "confirm"
    assert decide(Click(point=px(10, 39))).effect == "deny"
    assert decide(Click(point=px(10, 40))).effect == "allow"
    assert decide(Drag(start=px(5, 300), end=px(5, 20))).effect == "deny"  # any point
    assert decide(OpenApp(app="com.android.vending")).effect == "deny"
    assert decide(Finish()).effect == "allow" and decide(Wait()).effect == "allow"


def test_the_strictest_matching_rule_wins_and_control_kinds_need_naming():
    p = policy("""
default: deny
rules:
  - {effect: allow, kinds: [click]}
  - {effect: confirm, kinds: [click], region: [0, 0, 100, 100]}
  - {effect: deny, kinds: [finish]}
""")
    assert p.decide(Click(point=px(500, 500)), Click(point=px(500, 500))).effect == "allow"
    d = p.decide(Click(point=px(50, 50)), Click(point=px(50, 50)))
    assert (d.effect, d.rule) == ("confirm", 2)
    assert p.decide(Scroll(direction="down"), Scroll(direction="down")).effect == "deny"  # default
    assert p.decide(Wait(), Wait()).effect == "allow"  # the default does not touch control kinds
    assert p.decide(Finish(), Finish()).effect == "deny"  # ... a rule that names one does


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [{effect: deny, kinds: [clik]}]", "rules.0.kinds: unknown action kind 'clik'"),
        ("rules: [{effect: deny, keys: [ctrl+alt+dlete]}]", "unknown key 'dlete' in 'ctrl+alt+dlete'"),
        ("rules: [{effect: deny, text: '(unclosed'}]", "'(unclosed' is not a regular expression"),
        ("rules: [{efect: deny}]", "rules.0.effect: Field required"),
        ("rules: [{effect: maybe}]", "rules.0.effect: Input should be 'allow', 'confirm' or 'deny'"),
        ("rules: [{effect: deny, region: [0, 0, 0, 5]}]", "positive width and height"),
        ("default: allow\nrules: [\n", "not valid YAML at line"),
        ("rules: [{effect: deny, window: {klass: x}}]", "rules.0.window.klass: Extra inputs"),
    ],
)
def test_a_bad_policy_file_is_one_line_saying_where(tmp_path, text, message):
    f = tmp_path / "p.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        Policy.from_file(f)
    assert message in str(err.value) and str(err.value).startswith(f"policy file {f}")
    assert "\n" not in str(err.value)


def test_the_cli_refuses_a_bad_policy_with_exit_2(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("rules: [{effect: deny, kinds: [clik]}]", encoding="utf-8")
    outputs = tmp_path / "o.yaml"
    outputs.write_text(yaml.safe_dump([FINISH], allow_unicode=True), encoding="utf-8")
    r = subprocess.run(
        [sys.executable, "-m", "pixelpilot.agent.cli", "run", "x", "--model", f"scripted:{outputs}",
         "--device", "dryrun", "--policy", str(bad), "--out", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=120, env=os.environ.copy(),
    )  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "unknown action kind 'clik'" in r.stderr


# -- the property: denied actions never run ------------------------------------------------------
KEYS = ["ctrl", "alt", "shift", "win", "delete", "enter", "tab", "a", "r", "f4", "esc"]
TEXTS = ["hello", "my password", "rm -rf /", "Zoë 東京", "sudo reboot", "x"]

coord = st.tuples(st.integers(0, W - 1), st.integers(0, H - 1))


@st.composite
def actions(draw: Any) -> Any:
    kind = draw(st.sampled_from(["click", "type", "hotkey", "drag", "scroll", "finish"]))
    if kind == "click":
        return Click(point=px(*draw(coord)), button=draw(st.sampled_from(["left", "right"])))
    if kind == "type":
        return TypeText(text=draw(st.sampled_from(TEXTS)))
    if kind == "hotkey":
        return Hotkey(keys=draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=3, unique=True)))
    if kind == "drag":
        return Drag(start=px(*draw(coord)), end=px(*draw(coord)))
    if kind == "scroll":
        return Scroll(direction="down", point=px(*draw(coord)))
    return Finish()


@st.composite
def rules(draw: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"effect": draw(st.sampled_from(["deny", "deny", "confirm", "allow"]))}
    for cond in draw(st.lists(st.sampled_from(["kinds", "keys", "text", "region"]), max_size=2,
                              unique=True)):  # fmt: skip
        if cond == "kinds":
            rule["kinds"] = draw(st.lists(st.sampled_from(
                ["click", "type", "hotkey", "drag", "scroll", "finish"]), min_size=1, max_size=3))
        elif cond == "keys":
            rule["keys"] = ["+".join(draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=2,
                                                   unique=True)))]  # fmt: skip
        elif cond == "text":
            rule["text"] = draw(st.sampled_from(["pass", "^rm", "東", "(?i)SUDO", "z$"]))
        else:
            x, y = draw(coord)
            rule["region"] = [x, y, draw(st.integers(1, W)), draw(st.integers(1, H))]
    return rule


def oracle(spec: dict[str, Any], a: Any) -> str:
    """The effect the policy must have, computed independently of policy.py."""
    rank = {"allow": 0, "confirm": 1, "deny": 2}
    control = a.kind == "finish"
    best = None
    for r in spec["rules"]:
        if control and a.kind not in r.get("kinds", []):
            continue
        ok = True
        if "kinds" in r:
            ok &= a.kind in r["kinds"]
        if "keys" in r:
            ok &= a.kind == "hotkey" and set(r["keys"][0].split("+")) <= set(a.keys)
        if "text" in r:
            ok &= a.kind == "type" and re.search(r["text"], a.text) is not None
        if "region" in r:
            x, y, w, h = r["region"]
            pts = [p for p in (getattr(a, n, None) for n in ("point", "start", "end")) if p]
            ok &= any(x <= p.x < x + w and y <= p.y < y + h for p in pts)
        if ok and (best is None or rank[r["effect"]] > rank[best]):
            best = r["effect"]
    return best if best is not None else ("allow" if control else spec["default"])


def test_denied_actions_are_never_executed_and_the_model_is_told_why():
    """A property over 1,500 random (action, policy, yes/no) triples, through the real loop on a
    dry-run device; every outcome (denied, allowed, confirmed yes, refused) shows up > 20 times."""
    counts = {"denied": 0, "confirmed_yes": 0, "confirmed_no": 0, "allowed": 0}
    ctx = StepContext("desktop", DryRunDesktop.supported, GEOM, RESIZED)

    @settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow],
              database=None, derandomize=True)  # fmt: skip
    @given(
        action=actions(),
        spec=st.fixed_dictionaries({
            "default": st.sampled_from(["allow", "deny", "confirm"]),
            "rules": st.lists(rules(), max_size=4),
        }),
        answer=st.booleans(),
    )  # fmt: skip
    def prop(action: Any, spec: dict[str, Any], answer: bool) -> None:
        model_action = action.model_copy(update={  # the same points in the model's space
            n: from_screen(int(p.x), int(p.y), "norm1000", GEOM)
            for n in ("point", "start", "end") if (p := getattr(action, n, None)) is not None
        })  # fmt: skip
        raw = get_dialect("qwen2vl").format(model_action, ctx)
        # what the device is asked to do: norm1000 rounding may move a point by a pixel
        parsed = get_dialect("qwen2vl").parse(raw, ctx)
        action = to_device(parsed, GEOM, RESIZED)
        asked: list[Any] = []

        def confirm(c: Any) -> bool:
            assert c.describe()
            asked.append(c.action)
            return answer

        with DryRunDesktop() as dev:
            model = ScriptedModel([raw, FINISH])
            result = Agent(
                model=model, device=dev, dialect="qwen2vl", policy=Policy.from_data(spec),
                confirm=confirm, budgets=Budgets(max_retries=1),
            ).run("x")  # fmt: skip
        expected = oracle(spec, action)
        runs = expected == "allow" or (expected == "confirm" and answer)
        key = {"allow": "allowed", "deny": "denied"}.get(expected) or (
            "confirmed_yes" if answer else "confirmed_no")  # fmt: skip
        counts[key] += 1
        assert (asked[:1] == [parsed]) == (expected == "confirm")
        first = result.steps[0].attempts[0]
        if action.kind == "finish":
            if runs:
                assert result.status == "success" and first.error is None
            else:
                assert first.error and "do something else" in first.error
            return
        assert len(dev.executed) == (1 if runs else 0), (spec, action, expected)
        if runs:
            assert dev.executed[0].action == action and first.error is None
        else:
            assert first.error and first.error in model.prompts[1].messages[-1].text

    prop()
    print(f"\npolicy property test: {sum(counts.values())} examples: {counts}")
    assert all(v > 20 for v in counts.values()), counts


# -- X11 windows and Android packages ------------------------------------------------------------
def test_a_window_rule_reads_the_window_under_the_point_from_the_x_server(fixture_app, desktop):
    under = desktop.target_at(px(510, 280))
    assert under.window_class == ("pixelpilotFixture", "Pixelpilotfixture")  # Tk's WM_CLASS
    assert under.window_title == "pixelpilot fixture"
    assert desktop.target_at(None).window_class == under.window_class  # the focused window
    p = policy("rules: [{effect: deny, window: {class: '(?i)^pixelpilotfixture$'}, "
               "reason: not in the fixture}]")  # fmt: skip
    submit = get_dialect("qwen2vl").format(
        Click(point=from_screen(510, 280, "norm1000", GEOM)),
        StepContext("desktop", desktop.supported, GEOM, RESIZED),
    )
    model = ScriptedModel([submit, FINISH])
    result = Agent(model=model, device=desktop, dialect="qwen2vl", policy=p).run("Submit")
    assert result.status == "success"
    assert result.steps[0].attempts[0].error == (
        "this action is not allowed: not in the fixture; do something else"
    )
    assert fixture_app.state()["submit_count"] == 0 and result.steps[0].executed is None
    other = policy("rules: [{effect: deny, window: {title: xterm}}]")
    result = Agent(model=ScriptedModel([submit, FINISH]), device=desktop, dialect="qwen2vl",
                   policy=other).run("Submit")  # fmt: skip
    fixture_app.wait_for(lambda s: s["submit_count"] == 1)


def test_a_package_rule_reads_the_foreground_app_from_the_phone(tmp_path):
    from pixelpilot.scenarios.phone import PhoneFixture
    from pixelpilot.tools.android import AndroidDevice

    p = policy(r"rules: [{effect: deny, package: '^com\.android\.settings$', reason: hands off}]")
    g = ScreenGeometry(360, 640)
    with (
        PhoneFixture(start="settings", width=360, height=640) as phone,
        AndroidDevice(**phone.device_kwargs()) as dev,
    ):
        assert dev.foreground_package() == "com.android.settings"
        ctx = StepContext("mobile", dev.supported, dev.geometry, HUB_PIXELS.resize(360, 640))
        tap = get_dialect("qwen2vl").format(Tap(point=from_screen(180, 300, "norm1000", g)), ctx)
        home = get_dialect("qwen2vl").format(
            OpenApp(app="com.pixelpilot.notes"), ctx)  # fmt: skip
        settings_app = get_dialect("qwen2vl").format(OpenApp(app="settings"), ctx)
        model = ScriptedModel([tap, home, settings_app, FINISH])
        result = Agent(model=model, device=dev, dialect="qwen2vl", policy=p).run("x")
        assert result.status == "success", result.reason
        s1, s2 = result.steps
        assert s1.attempts[0].error == "this action is not allowed: hands off; do something else"
        assert s1.executed.action.kind == "open_app"  # notes: another app, allowed
        assert s2.attempts[0].error and "hands off" in s2.attempts[0].error  # open settings: no
        assert dev.foreground_package() == "com.pixelpilot.notes"


def test_confirm_asks_on_the_terminal_with_what_and_where(tmp_path):
    outputs = tmp_path / "o.yaml"
    click = "✿FUNCTION✿: click\n✿ARGS✿: {\"point\": [500, 500]}"
    outputs.write_text(yaml.safe_dump([click, click, FINISH], allow_unicode=True), encoding="utf-8")
    pol = tmp_path / "p.yaml"
    pol.write_text("rules: [{effect: confirm, kinds: [click], reason: clicks need a yes}]")
    r = subprocess.run(
        [sys.executable, "-m", "pixelpilot.agent.cli", "run", "x", "--model", f"scripted:{outputs}",
         "--device", "dryrun", "--policy", str(pol), "--confirm", "--no-hotkeys",
         "--out", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=120, env=os.environ.copy(), input="n\ny\n",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    asks = [line for line in r.stderr.splitlines() if line.startswith("confirm:")]
    assert len(asks) == 2
    assert "click at (640, 400) px — clicks need a yes — run it? [y/N]" in asks[0]
    traj = load_trajectory(next((tmp_path / "runs").iterdir()))
    first = traj.steps[0]
    assert first.attempts[0].error == "the user refused this action (clicks need a yes); do something else"
    assert first.executed is not None and first.executed.action.kind == "click"


def test_a_person_answering_confirm_is_off_the_time_budget_and_never_sees_a_secret():
    asked: list[str] = []

    def slow_yes(c: Any) -> bool:  # a person reads the question for 0.4 s, then says yes
        asked.append(c.describe())
        time.sleep(0.4)
        return True

    typed = '✿FUNCTION✿: type\n✿ARGS✿: {"text": "<secret>PW</secret>"}'
    p = policy("rules: [{effect: confirm, text: '<secret>PW</secret>', reason: the password}]")
    with DryRunDesktop() as dev:
        result = Agent(
            model=ScriptedModel([typed, typed, FINISH]), device=dev, dialect="qwen2vl",
            policy=p, confirm=slow_yes, secrets={"PW": "hunter2"},
            budgets=Budgets(max_seconds=0.6),
        ).run("sign in")  # fmt: skip
        typed_texts = [e.action.text for e in dev.executed]
    assert result.status == "success", result.reason  # 0.8 s of asking, a 0.6 s budget
    assert typed_texts == ["hunter2", "hunter2"]  # the device types the value ...
    assert len(asked) == 2 and all("hunter2" not in q for q in asked)  # ... no one is shown it
    assert asked[0] == "type '<secret>PW</secret>' — the password"


def test_documented_in_docs():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "policy.md").read_text()
    assert "effect: deny" in doc and "--confirm" in doc and "window:" in doc
