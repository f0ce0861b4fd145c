"""Policies: which actions a run may perform, which it must not, and which need a person's OK.

A policy is a list of rules (YAML: ``Policy.from_file``; Python: ``Policy(PolicySpec(...))``).
A rule matches an action when every condition it names holds; the strictest effect among the
rules that match wins (deny > confirm > allow), and an action no rule matches gets the
policy's ``default``. finish, ask_user and wait touch nothing: only rules that name their kind
in ``kinds`` apply to them. See docs/policy.md::

    default: allow
    rules:
      - effect: deny
        keys: [ctrl+alt+delete, super]      # hotkeys that hold these keys (and maybe more)
        reason: system shortcuts are off limits
      - effect: confirm
        text: "(?i)password|rm -rf"         # typed text, a regular expression (searched)
      - effect: deny
        region: [0, 0, 1280, 40]            # x, y, width, height in screen pixels
      - effect: confirm
        window: {class: "(?i)xterm"}        # X11: the window under the point / in focus
      - effect: deny
        package: "^com\\.android\\.vending$" # Android: the app in front (open_app: the one opened)

A denied action is never executed and the model is told why (``ActionDenied`` goes back as a
retry). A confirm effect asks the run's ``confirm`` hook (the CLI's ``--confirm`` asks on the
terminal); without one, or when the person says no, the action is denied.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pixelpilot.agent.actions import BY_KIND, CONTROL_KINDS, points
from pixelpilot.agent.errors import ActionDenied, ActionRejected, ConfigError
from pixelpilot.agent.keys import KNOWN_KEYS, normalize_key
from pixelpilot.tools.android_plan import resolve_app
from pixelpilot.tools.base import Device, TargetInfo

__all__ = ["Confirmation", "Decision", "Policy", "PolicySpec", "Rule", "WindowMatch", "key_set"]

Effect = Literal["allow", "confirm", "deny"]
RANK: dict[str, int] = {"allow": 0, "confirm": 1, "deny": 2}
_SIDES = {
    "ctrlleft": "ctrl", "ctrlright": "ctrl", "altleft": "alt", "altright": "alt",
    "shiftleft": "shift", "shiftright": "shift", "winleft": "win", "winright": "win",
    "command": "win", "altgr": "alt",
}  # fmt: skip


def key_set(keys: list[str] | tuple[str, ...]) -> frozenset[str]:
    """Canonical key names: aliases resolved (super -> win), left/right variants merged."""
    out = set()
    for k in keys:
        n = normalize_key(k) if k.strip() else k
        out.add(_SIDES.get(n, n))
    return frozenset(out)


def _combo(text: str) -> frozenset[str]:
    parts = text.split("+")
    if text.endswith("++"):  # "ctrl++": the plus key itself
        parts = [*parts[:-2], "+"]
    if any(not p.strip() for p in parts):
        raise ValueError(f"{text!r} is not a key combination; write keys joined by '+'")
    keys = key_set(parts)
    unknown = sorted(k for k in keys if k not in KNOWN_KEYS and k not in _SIDES.values())
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} in {text!r}; use names like ctrl, alt, "
                         "shift, super, delete, enter, f4 or a single character")  # fmt: skip
    return keys


def _regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"{value!r} is not a regular expression ({exc})") from None
    return value


class WindowMatch(BaseModel):
    """An X11 window: a regular expression for its WM_CLASS (instance or class) and/or title."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
    class_: str | None = Field(None, alias="class")
    title: str | None = None

    _check = field_validator("class_", "title")(_regex)


class Rule(BaseModel):
    """One rule: an effect and the conditions (all must hold) under which it applies."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    effect: Effect
    kinds: list[str] | None = None
    keys: list[str] | None = None
    text: str | None = None
    region: tuple[int, int, int, int] | None = None
    window: WindowMatch | None = None
    package: str | None = None
    reason: str = ""

    _check_text = field_validator("text", "package")(_regex)

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str] | None) -> list[str] | None:
        for k in kinds or []:
            if k not in BY_KIND:
                raise ValueError(f"unknown action kind {k!r}; kinds are: {', '.join(BY_KIND)}")
        return kinds

    @field_validator("keys")
    @classmethod
    def _known_keys(cls, keys: list[str] | None) -> list[str] | None:
        for combo in keys or []:
            _combo(combo)
        return keys

    @field_validator("region")
    @classmethod
    def _positive(cls, r: tuple[int, int, int, int] | None) -> tuple[int, int, int, int] | None:
        if r is not None and (r[2] <= 0 or r[3] <= 0):
            raise ValueError("a region is [x, y, width, height] with a positive width and height")
        return r

    def conditions(self) -> list[str]:
        """The conditions this rule names."""
        return [c for c in ("kinds", "keys", "text", "region", "window", "package")
                if getattr(self, c) is not None]  # fmt: skip

    def describe(self) -> str:
        """The rule as a short line ("deny keys=['super']")."""
        bits = []
        for c in self.conditions():
            value = getattr(self, c)
            if isinstance(value, WindowMatch):
                value = value.model_dump(by_alias=True, exclude_none=True)
            bits.append(f"{c}={value}")
        return f"{self.effect} {' '.join(bits)}"


class PolicySpec(BaseModel):
    """A policy file's contents."""

    model_config = ConfigDict(extra="forbid")
    default: Effect = "allow"
    rules: list[Rule] = Field(default_factory=list)


@dataclass(frozen=True)
class Decision:
    """What a policy says about one action: its effect, the deciding rule (1-based; None for
    the default) and why, in words for the model and the person."""

    effect: Effect
    rule: int | None
    reason: str


@dataclass(frozen=True)
class Confirmation:
    """What a confirm hook is asked about: the action (model space and screen pixels), what it
    would act on, and the rule that asks."""

    action: Any
    device_action: Any
    target: TargetInfo
    decision: Decision

    def describe(self) -> str:
        """One line: what, where, on what, and why it needs a yes."""
        a = self.device_action
        what = [a.kind]
        if a.kind == "type":
            what.append(repr(a.text))
        elif a.kind == "hotkey":
            what.append("+".join(a.keys))
        elif a.kind == "open_app":
            what.append(repr(a.app))
        what += [f"at ({p.x:g}, {p.y:g}) px" for p in points(a)]
        t = self.target
        if t.window_class or t.window_title:
            what.append(f"in window {t.window_title or ''!r} ({'.'.join(t.window_class or ())})")
        if t.package:
            what.append(f"in app {t.package}")
        return f"{' '.join(what)} — {self.decision.reason}"


ConfirmHook = Callable[[Confirmation], bool]
"""Asked before an action a confirm rule matches; True lets it run."""


@dataclass
class Policy:
    """A compiled policy; ``decide`` judges one action, ``enforce`` raises ActionDenied."""

    spec: PolicySpec = field(default_factory=PolicySpec)
    source: str = "policy"

    def __post_init__(self) -> None:
        self._combos = [
            [_combo(c) for c in r.keys] if r.keys is not None else None for r in self.spec.rules
        ]
        self._needs_target = any(r.window or r.package for r in self.spec.rules)

    # -- loading ---------------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path) -> Policy:
        """Read a YAML policy; ConfigError (one line) says what is wrong and where."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"policy file {p}: cannot read it ({exc})") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or "not YAML"
            raise ConfigError(f"policy file {p}: not valid YAML{where} ({problem})") from None
        return cls.from_data(data if data is not None else {}, source=str(p))

    @classmethod
    def from_data(cls, data: Any, source: str = "policy") -> Policy:
        try:
            return cls(PolicySpec.model_validate(data), source)
        except ValidationError as exc:
            e = exc.errors()[0]
            loc = ".".join(str(x) for x in e["loc"]) or "top level"
            msg = e["msg"].removeprefix("Value error, ")
            raise ConfigError(f"policy file {source}: {loc}: {msg}") from None

    @classmethod
    def confirm_all(cls) -> Policy:
        """Every action that acts on the device needs a person's OK (``--confirm`` alone)."""
        return cls(PolicySpec(default="confirm"), "--confirm")

    # -- judging ---------------------------------------------------------------------------------
    def decide(self, action: Any, device_action: Any, device: Device | None = None) -> Decision:
        """The policy's verdict on ``action`` (model space) / ``device_action`` (screen px)."""
        targets: list[TargetInfo] | None = None
        best: Decision | None = None
        control = action.kind in CONTROL_KINDS
        for n, rule in enumerate(self.spec.rules, 1):
            if control and (rule.kinds is None or action.kind not in rule.kinds):
                continue
            if (rule.window or rule.package) and targets is None:
                targets = self._targets(device_action, device)
            stricter = best is None or RANK[rule.effect] > RANK[best.effect]
            if stricter and self._matches(n - 1, rule, action, device_action, targets or []):
                best = Decision(rule.effect, n, rule.reason or f"rule {n} ({rule.describe()})")
        if best is not None:
            return best
        if control:
            return Decision("allow", None, "control actions are allowed")
        effect = self.spec.default
        return Decision(effect, None, f"the policy's default is {effect}")

    def enforce(
        self,
        action: Any,
        device_action: Any,
        device: Device | None = None,
        confirm: ConfirmHook | None = None,
    ) -> Decision:
        """Raise ActionDenied (written for the model) unless the action may run."""
        d = self.decide(action, device_action, device)
        if d.effect == "deny":
            raise ActionDenied(f"this action is not allowed: {d.reason}; do something else")
        if d.effect == "confirm":
            if confirm is None:
                raise ActionDenied(
                    f"this action needs a person's confirmation and no one can confirm in this "
                    f"run: {d.reason}; do something else"
                )
            target = self._target_of(device_action, device)
            if not confirm(Confirmation(action, device_action, target, d)):
                raise ActionDenied(f"the user refused this action ({d.reason}); do something else")
        return d

    def _targets(self, device_action: Any, device: Device | None) -> list[TargetInfo]:
        if device is None:
            return []
        pts = points(device_action)
        return [device.target_at(p) for p in pts] if pts else [device.target_at(None)]

    def _target_of(self, device_action: Any, device: Device | None) -> TargetInfo:
        if device is None or not self._needs_target:
            return TargetInfo()
        pts = points(device_action)
        return device.target_at(pts[0] if pts else None)

    def _matches(
        self, i: int, rule: Rule, action: Any, device_action: Any, targets: list[TargetInfo]
    ) -> bool:
        if rule.kinds is not None and action.kind not in rule.kinds:
            return False
        combos = self._combos[i]
        if combos is not None:
            if action.kind != "hotkey":
                return False
            pressed = key_set(action.keys)
            if not any(c <= pressed for c in combos):
                return False
        if rule.text is not None and (
            action.kind != "type" or not re.search(rule.text, action.text)
        ):
            return False
        if rule.region is not None:
            x, y, w, h = rule.region
            pts = points(device_action)
            if not any(x <= p.x < x + w and y <= p.y < y + h for p in pts):
                return False
        if rule.window is not None and not any(_window_matches(rule.window, t) for t in targets):
            return False
        if rule.package is not None:
            if action.kind == "open_app":  # it acts on the app it opens, not the one in front
                pkgs = [_package_of(action.app)]
            else:
                pkgs = [t.package for t in targets if t.package]
            if not any(re.search(rule.package, p) for p in pkgs):
                return False
        return True


def _package_of(app: str) -> str:
    """The package open_app would start (the name itself when it names no known app)."""
    try:
        return resolve_app(app)
    except ActionRejected:
        return app


def _window_matches(m: WindowMatch, t: TargetInfo) -> bool:
    if t.window_class is None and t.window_title is None:
        return False
    if m.class_ is not None and not any(re.search(m.class_, c) for c in t.window_class or ()):
        return False
    return m.title is None or re.search(m.title, t.window_title or "") is not None
