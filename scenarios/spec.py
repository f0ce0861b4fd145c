"""The scenario file format: a target, a task, scripted model outputs, and checks on real state.

A scenario is a YAML file::

    name: click-submit                  # optional; defaults to the file name
    description: Click Submit once.     # optional
    target:                             # what to start and act on
      kind: desktop                     # desktop | android | robot
      app: fixture                      # the built-in Tk fixture app, or:
      # app: chromium, page: form.html  # Chromium showing a local page (served on 127.0.0.1)
      # launch: [mousepad]              # a real program, in a fresh work directory and HOME,
      # ready_window: class=mousepad    #   ready once this window is shown
      # command: [...]                  # a fixture-like command that writes a JSON state file
      # view: {window: class=xterm}     # observe one window (or {region: [x, y, w, h]})
      screen: [1280, 800]               # the display size the coordinates assume

Android targets are the built-in phone fixture reached through the real adb
(``{kind: android, app: phone, start: signin, screen: [720, 1280]}``); robot targets are a
pybullet scene seen through its camera (``{kind: robot, scene: tray, screen: [640, 480]}``).
    task: Click the Submit button.
    budgets: {max_steps: 5, max_seconds: 60, max_retries: 2}
    scripts:                            # one run per dialect, each with its raw outputs
      qwen2vl:
        - "✿FUNCTION✿: click\\n✿ARGS✿: {\\"point\\": [500, 300]}"
        - "✿FUNCTION✿: finish\\n✿ARGS✿: {}"
      uitars: [...]
    expect:                             # how each run must end
      status: success                   # success | failure | step_budget | time_budget | error
      retries: 0                        # optional: exact number of rejected answers
      answer_contains: ""               # optional
    checks:                             # on the target's real state after the run
      - {path: submit_count, equals: 1}
      - {path: name, equals: "Zoë — 東京 ✓"}
      - {path: items_first, at_least: 20}

      - {file: note.txt, equals: "Zoë — 東京 ✓\n"}   # a file the run left in its work directory
      - {dom: "#name", equals: "Zoë — 東京 ✓"}      # a page element's value (prop: textContent...)

A check reads one thing: ``path`` (a dot path into the target's JSON state; list indices are
numbers), ``file`` (a file in the run's work directory, as UTF-8 text: its exact bytes, since
the encoding is one-to-one; undecodable bytes fail the check) or ``dom`` (a CSS selector on a
Chromium target's page; ``prop`` names the element's property, default ``value``). It has exactly
one test: equals, not_equals, at_least, at_most, contains, exists. Checks are polled briefly,
since an app updates its state a moment after the input arrives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pixelpilot.agent.errors import ScenarioError

_MISSING = object()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class View(_Strict):
    """What the desktop device observes: one window (a window spec) or a region of the screen."""

    window: str | None = None
    region: tuple[int, int, int, int] | None = None

    @model_validator(mode="after")
    def _one(self) -> View:
        if (self.window is None) == (self.region is None):
            raise ValueError("give exactly one of 'window' or 'region'")
        return self


class DesktopTarget(_Strict):
    """An X display of ``screen`` size with the Tk fixture app, Chromium on a local page, a
    launched program or a fixture-like command on it; ``view`` narrows what is observed."""

    kind: Literal["desktop"] = "desktop"
    app: Literal["fixture", "chromium"] | None = None
    page: str | None = None
    launch: list[str] | None = None
    ready_window: str | None = None
    command: list[str] | None = None
    view: View | None = None
    screen: tuple[int, int] = (1280, 800)

    @model_validator(mode="after")
    def _one_app(self) -> DesktopTarget:
        if sum(x is not None for x in (self.app, self.command, self.launch)) != 1:
            raise ValueError("give exactly one of 'app', 'launch' or 'command'")
        if (self.app == "chromium") != (self.page is not None):
            raise ValueError("'page' (an HTML file) goes with app: chromium, and it needs one")
        if (self.launch is not None) != (self.ready_window is not None):
            raise ValueError("'launch' needs 'ready_window' (the window that shows it is ready)")
        if self.launch is not None and not self.launch:
            raise ValueError("'launch' needs a program")
        return self

    @property
    def has_state(self) -> bool:
        return self.app == "fixture"

    @property
    def has_dom(self) -> bool:
        return self.app == "chromium"

    @property
    def has_workdir(self) -> bool:
        return self.app == "chromium" or self.launch is not None


class AndroidTarget(_Strict):
    """The built-in phone fixture (the device side of adb), reached through the real adb."""

    kind: Literal["android"]
    app: Literal["phone"] = "phone"
    start: str = "home"
    screen: tuple[int, int] = (720, 1280)
    density: int = Field(320, ge=80, le=800)

    has_state: ClassVar[bool] = True
    has_dom: ClassVar[bool] = False


class RobotTarget(_Strict):
    """A pybullet tabletop scene seen through its camera (``screen`` is the image size)."""

    kind: Literal["robot"]
    scene: str = "tray"
    screen: tuple[int, int] = (640, 480)
    seed: int = 0

    has_state: ClassVar[bool] = True
    has_dom: ClassVar[bool] = False


Target = Annotated[DesktopTarget | AndroidTarget | RobotTarget, Field(discriminator="kind")]
TARGET_KINDS = ("desktop", "android", "robot")


class ScenarioBudgets(_Strict):
    max_steps: int = Field(10, ge=1, le=200)
    max_seconds: float = Field(120, gt=0)
    max_retries: int = Field(2, ge=0, le=10)


class Expect(_Strict):
    status: Literal["success", "failure", "step_budget", "time_budget", "error"] = "success"
    retries: int | None = None
    answer_contains: str | None = None


class Check(_Strict):
    path: str | None = None
    file: str | None = None
    dom: str | None = None
    prop: str = "value"
    equals: Any = _MISSING
    not_equals: Any = _MISSING
    at_least: float | None = None
    at_most: float | None = None
    contains: Any = _MISSING
    exists: bool | None = None

    @model_validator(mode="after")
    def _one_test(self) -> Check:
        sources = [n for n in ("path", "file", "dom") if getattr(self, n) is not None]
        if len(sources) != 1:
            raise ValueError("give exactly one of path, file, dom (what the check reads)")
        if self.file is not None and (Path(self.file).is_absolute() or ".." in Path(self.file).parts):
            raise ValueError(f"file {self.file!r}: give a path inside the run's work directory")
        tests = [
            n for n in ("equals", "not_equals", "contains") if getattr(self, n) is not _MISSING
        ]
        tests += [n for n in ("at_least", "at_most", "exists") if getattr(self, n) is not None]
        if len(tests) != 1:
            raise ValueError(
                "give exactly one of equals, not_equals, at_least, at_most, contains, exists"
            )
        return self

    @property
    def source(self) -> Literal["path", "file", "dom"]:
        return "path" if self.path is not None else "file" if self.file is not None else "dom"

    @property
    def label(self) -> str:
        """How the check names what it reads, in its one-line result."""
        if self.file is not None:
            return f"file {self.file}"
        if self.dom is not None:
            return f"{self.dom}.{self.prop}"
        return str(self.path)

    def evaluate(self, state: dict[str, Any]) -> tuple[bool, str]:
        """(passed, one-line description with the actual value) for a ``path`` check."""
        return self.test(lookup(state, self.path or ""))

    def test(self, value: Any) -> tuple[bool, str]:
        """(passed, one-line description with the actual value) of the value read; ``MISSING``
        when there is none (no such key, file or element), an ``Unreadable`` when it cannot be
        read as asked (a file that is not UTF-8)."""
        name = self.label
        if isinstance(value, Unreadable):
            return False, f"{name}: {value.why}"
        if self.exists is not None:
            ok = (value is not _MISSING) == self.exists
            return ok, f"{name} {'exists' if self.exists else 'is absent'}"
        shown = "<missing>" if value is _MISSING else repr(value)
        if self.equals is not _MISSING:
            return value == self.equals, f"{name} == {self.equals!r} (got {shown})"
        if self.not_equals is not _MISSING:
            return value != self.not_equals, f"{name} != {self.not_equals!r} (got {shown})"
        if self.contains is not _MISSING:
            ok = isinstance(value, (str, list, dict)) and self.contains in value
            return ok, f"{name} contains {self.contains!r} (got {shown})"
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.at_least is not None:
            return (
                number and value >= self.at_least,
                f"{name} >= {self.at_least:g} (got {shown})",
            )
        return number and value <= self.at_most, f"{name} <= {self.at_most:g} (got {shown})"


class Unreadable:
    """A checked value that exists but cannot be read as asked; ``why`` says what is wrong."""

    def __init__(self, why: str) -> None:
        self.why = why


class Scenario(_Strict):
    name: str
    description: str = ""
    target: Target
    task: str = Field(min_length=1)
    budgets: ScenarioBudgets = Field(default_factory=ScenarioBudgets)
    scripts: dict[str, list[str]] = Field(min_length=1)
    expect: Expect = Field(default_factory=Expect)
    checks: list[Check] = Field(default_factory=list)
    path: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_kind(cls, data: Any) -> Any:
        target = data.get("target") if isinstance(data, dict) else None
        if isinstance(target, dict):
            kind = target.setdefault("kind", "desktop")
            if kind not in TARGET_KINDS:
                raise ValueError(
                    f"target.kind: unknown {kind!r}; use one of: {', '.join(TARGET_KINDS)}"
                )
        return data

    @model_validator(mode="after")
    def _known_dialects(self) -> Scenario:
        from pixelpilot.agent.dialects import DIALECTS

        for name, outputs in self.scripts.items():
            if name not in DIALECTS:
                raise ValueError(
                    f"scripts: unknown dialect {name!r}; use one of: {', '.join(DIALECTS)}"
                )
            if not outputs:
                raise ValueError(f"scripts.{name}: needs at least one output")
        for n, check in enumerate(self.checks):
            where = f"checks.{n}"
            if check.source == "path" and not self.target.has_state:
                raise ValueError(f"{where}: 'path' checks need a target with state (app: fixture)")
            if check.source == "dom" and not self.target.has_dom:
                raise ValueError(f"{where}: 'dom' checks need a page (app: chromium)")
            if check.source == "file" and not getattr(self.target, "has_workdir", False):
                raise ValueError(
                    f"{where}: 'file' checks need a launched program (launch:) or app: chromium"
                )
        return self

    @model_validator(mode="after")
    def _page_beside_the_file(self) -> Scenario:
        """A relative ``page`` is relative to the scenario file."""
        target = self.target
        if isinstance(target, DesktopTarget) and target.page is not None and self.path:
            page = Path(self.path).parent / target.page
            if not page.is_file():
                raise ValueError(f"target.page: no such file {str(page)!r}")
            target.page = str(page.resolve())
        return self


MISSING = _MISSING
"""The value of a check whose key, file or element does not exist."""


def lookup(state: Any, path: str) -> Any:
    """Value at a dot path ('fields.name', 'events.0'), or a sentinel when absent."""
    node = state
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif (
            isinstance(node, list)
            and part.lstrip("-").isdigit()
            and -len(node) <= int(part) < len(node)
        ):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; raises ScenarioError with one line saying what is wrong."""
    file = Path(path)
    if not file.is_file():
        raise ScenarioError(f"{file}: no such scenario file")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ScenarioError(f"{file}: {where}{getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{file}: a scenario is a YAML mapping (task, target, scripts, ...)")
    data.setdefault("name", file.stem)
    data["path"] = str(file)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        parts = [str(p) for p in err["loc"]]
        if parts[:1] == ["target"] and parts[1:2] and parts[1] in TARGET_KINDS:
            del parts[1]  # the union's tag: the file says target.screen, not target.desktop.screen
        loc = ".".join(parts)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        raise ScenarioError(f"{file}: {loc + ': ' if loc else ''}{msg}") from None


def discover(root: str | Path) -> list[Path]:
    """Scenario files under ``root`` (a file or a directory), sorted."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise ScenarioError(f"{root}: no such file or directory")
    return sorted(p for p in root.rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))


BUILTIN_DIR = Path(__file__).parent
"""Where the shipped scenarios live (``desktop/*.yaml``)."""
