"""The public surface: lazy exports, and the README's Python example run as written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pixelpilot.agent
import pixelpilot.tools
import pixelpilot.vlm

README = Path(__file__).resolve().parents[1] / "README.md"


def test_exports_are_locked():
    assert pixelpilot.agent.__all__ == [
        "Agent", "Budgets", "DirectoryRecorder", "Policy", "RunControl", "RunResult", "Secrets",
        "StepRecord", "Trajectory", "get_dialect", "load_trajectory", "replay",
    ]  # fmt: skip
    assert pixelpilot.tools.__all__ == [
        "AndroidDevice", "DesktopDevice", "Device", "DryRunDesktop", "DryRunPhone", "Executed",
        "Observation", "RobotDevice", "VirtualDisplay",
    ]  # fmt: skip
    assert pixelpilot.vlm.__all__ == [
        "Generation", "LocalModel", "Message", "OpenAIServerModel", "Prompt", "ScriptedModel",
        "VisionModel", "load_model",
    ]  # fmt: skip
    for module in (pixelpilot.agent, pixelpilot.tools, pixelpilot.vlm):
        for name in module.__all__:
            assert getattr(module, name) is not None


def test_readme_python_example_runs(fixture_app, tmp_path):
    block = re.search(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S).group(1)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        scope: dict = {}
        exec(compile(block, "README.md", "exec"), scope)  # the README's own code, not model text
    finally:
        os.chdir(cwd)
    assert scope["result"].status == "success" and scope["result"].answer == "done"
    assert fixture_app.wait_for(lambda s: s["submit_count"] == 1)
    assert (tmp_path / "runs" / "mine" / "steps.jsonl").exists()
