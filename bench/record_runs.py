"""Record trajectories with element boxes on the real desktop fixture (Xvfb + Tk fixture app).

Each step's line gets ``boxes``: the fixture app's widget, list-item and menu-entry boxes as
they were when the step's screenshot was taken (the device wrapper reads the app's state file
at every observation), so offline evaluation can score points by element, as AITW does.

    python bench/record_runs.py scenarios OUT_DIR     # every shipped desktop scenario, every dialect
    python bench/record_runs.py fixture OUT_DIR       # the small format-v1 test fixture

What the loop would record itself once devices report boxes is in the issue #5 report.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from PIL import Image

from pixelpilot.agent.loop import Agent, Budgets
from pixelpilot.agent.trajectory import DirectoryRecorder, RunResult
from pixelpilot.scenarios.fixture import FixtureApp
from pixelpilot.scenarios.spec import BUILTIN_DIR, discover, load_scenario
from pixelpilot.tools.base import Observation
from pixelpilot.tools.desktop import DesktopDevice
from pixelpilot.tools.xvfb import ensure_display
from pixelpilot.vlm.scripted import ScriptedModel

FIXTURE_TASK = "Type Zoë ✓ into the Name field, then drag the blue square into the orange box."
FIXTURE_OUTPUTS = [
    "I will click the name field.",  # rejected: prose, no call
    '✿FUNCTION✿: click\n✿ARGS✿: {"point": [469, 157]}',
    '✿FUNCTION✿: type\n✿ARGS✿: {"text": "Zoë ✓"}',
    '✿FUNCTION✿: drag\n✿ARGS✿: {"start": [317, 576], "end": [664, 576]}',
    '✿FUNCTION✿: finish\n✿ARGS✿: {"answer": "done <b>now</b>"}',
]


class BoxedDesktop(DesktopDevice):
    """A DesktopDevice that notes the fixture app's element boxes at every observation."""

    def __init__(self, app: FixtureApp, **kw: Any) -> None:
        super().__init__(**kw)
        self.app = app
        self.seen: list[dict[str, list[int]]] = []

    def _observe(self) -> Observation:
        obs = super()._observe()
        state = self.app.state()
        boxes = dict(state.get("boxes", {}))
        boxes.update({f"item:{k}": v for k, v in state.get("item_boxes", {}).items()})
        boxes.update({f"menu:{k}": v for k, v in (state.get("menu_entries") or {}).items()})
        obs.extra["boxes"] = boxes
        self.seen.append(boxes)
        return obs


def record(
    task: str,
    outputs: list[str],
    dialect: str,
    dest: Path,
    *,
    screen: tuple[int, int] = (1280, 800),
    budgets: Budgets | None = None,
    meta_extra: dict[str, Any] | None = None,
) -> RunResult:
    """Run ``outputs`` through the real loop on the fixture app; add boxes to steps.jsonl."""
    w, h = screen
    with FixtureApp(width=w, height=h) as app, BoxedDesktop(app) as device:
        agent = Agent(
            model=ScriptedModel(outputs, name=f"scripted:{dest.name}"),
            device=device,
            dialect=dialect,
            budgets=budgets or Budgets(max_steps=10, max_seconds=60),
            recorder=DirectoryRecorder(dest),
            meta_extra=meta_extra or {"target": {"kind": "desktop", "app": "fixture",
                                                 "command": None, "screen": [w, h]}},
        )  # fmt: skip
        result = agent.run(task)
        add_boxes(dest, device.seen)
    return result


def add_boxes(dest: Path, seen: list[dict[str, list[int]]]) -> None:
    """Write each observation's boxes into the matching step line (step i saw observation i)."""
    lines = (dest / "steps.jsonl").read_text(encoding="utf-8").splitlines()
    out = []
    for line in lines:
        obj = json.loads(line)
        i = obj["index"] - 1
        if 0 <= i < len(seen):
            obj["boxes"] = seen[i]
        out.append(json.dumps(obj, ensure_ascii=False))
    tmp = dest / "steps.jsonl.tmp"
    tmp.write_text("\n".join(out) + "\n", encoding="utf-8")
    os.replace(tmp, dest / "steps.jsonl")


def record_scenarios(out_dir: Path) -> list[Path]:
    """Every shipped desktop scenario in every dialect it has a script for."""
    dirs = []
    for file in discover(BUILTIN_DIR / "desktop"):
        s = load_scenario(file)
        for dialect, outputs in s.scripts.items():
            dest = out_dir / f"{s.name}-{dialect}"
            extra = {"scenario": s.path, "target": s.target.model_dump()}
            budgets = Budgets(**s.budgets.model_dump())
            r = record(s.task, outputs, dialect, dest, screen=s.target.screen, budgets=budgets,
                       meta_extra=extra)  # fmt: skip
            print(f"{dest.name}: {r.status} in {len(r.steps)} steps")
            dirs.append(dest)
    return dirs


def recorded_runs(runs_dir: Path | None, work: Path) -> tuple[Path, list[Path]]:
    """The run directories under ``runs_dir``; with None, the shipped desktop scenarios are
    recorded under ``work/runs`` first (on a display of their own if there is none)."""
    if runs_dir is None:
        runs_dir = work / "runs"
        with ensure_display(1280, 800):
            record_scenarios(runs_dir)
    return runs_dir, sorted(p for p in runs_dir.iterdir() if (p / "run.json").is_file())


def record_fixture(dest: Path) -> Path:
    """The format-v1 fixture: a rejected answer, click, type, drag, finish; PNGs recompressed."""
    r = record(FIXTURE_TASK, FIXTURE_OUTPUTS, "qwen2vl", dest)
    for png in (dest / "screens").glob("*.png"):
        with Image.open(png) as im:
            small = im.quantize(colors=64)
        small.save(png, optimize=True)
    print(f"{dest}: {r.status} in {len(r.steps)} steps")
    return dest


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("scenarios", "fixture"):
        print(__doc__)
        return 2
    what, out = argv[0], Path(argv[1])
    t0 = time.perf_counter()
    with ensure_display(1280, 800):
        if what == "scenarios":
            record_scenarios(out)
        else:
            record_fixture(out)
    print(f"recorded in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
