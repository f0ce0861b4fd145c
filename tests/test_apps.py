"""Real desktop apps behind a real window manager, at 1920x1080: Chromium on a page served by a
real http.server (the live DOM read over the DevTools protocol), mousepad (GTK; its Save dialog,
the saved file's bytes) and xterm (a shell command with quotes and $, the file it wrote).

They run as users run them: ``pixelpilot scenario test`` in a subprocess without DISPLAY, so it
starts ONE 1920x1080 Xvfb with openbox for all of them (the session display stays 1280x800 for
the rest of the suite); a 1280x800 scenario given with them runs in a second process on a
display of its own. ``Zoë — 東京 ✓`` typed through XTEST must arrive byte-exact: the page's
field value and the saved file's bytes are compared exactly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pixelpilot.scenarios.spec import BUILTIN_DIR

APPS = BUILTIN_DIR / "apps"
NEEDED = ("chromium", "mousepad", "xterm", "openbox", "Xvfb")
missing = [p for p in NEEDED if shutil.which(p) is None]
pytestmark = pytest.mark.skipif(
    bool(missing), reason=f"not installed: {missing}; bash scripts/setup.sh --test installs them"
)


def test_real_app_scenarios_pass_at_1920x1080(tmp_path: Path) -> None:
    wrong = tmp_path / "xterm_wrong.yaml"
    text = (APPS / "xterm_printf.yaml").read_text(encoding="utf-8")
    wrong.write_text(_wrong(text), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    runs = tmp_path / "runs"
    r = subprocess.run(
        [sys.executable, "-m", "pixelpilot.agent.cli", "scenario", "test", str(APPS), str(wrong),
         str(BUILTIN_DIR / "desktop" / "click_submit.yaml"), "--out", str(runs)],
        capture_output=True, text=True, timeout=240, env=env,
    )  # fmt: skip
    out = r.stdout
    for name in ("chromium_signup", "mousepad_save", "xterm_printf"):
        for dialect in ("qwen2vl", "qwen25vl", "uitars"):
            assert f"PASS {name} [{dialect}]" in out, out + r.stderr
    assert "PASS click_submit [qwen2vl]" in out  # its 1280x800 group, in a process of its own
    # the wrong expectation fails on the real file, with the bytes that are there
    assert "FAIL xterm_wrong [qwen2vl]" in out
    assert "✗ file out.txt == 'nothing like it\\n' (got 'Zoë — 東京 ✓\\nit costs $5" in out
    assert r.returncode == 1 and "1 of 2 groups failed" in out, out + r.stderr

    done = {p.name.split("-", 2)[2]: p for p in runs.iterdir()}
    result = json.loads((done["chromium_signup-qwen25vl"] / "result.json").read_text())
    assert result["achieved"] is True and len(result["checks"]) == 3
    meta = json.loads((done["xterm_printf-uitars"] / "run.json").read_text())
    assert meta["device"]["view"]["window"] == "class=xterm"
    assert meta["device"]["screen"] == [1920, 1080]
    assert meta["device"]["width"] < 1920  # the model saw the terminal window only
    steps = (done["mousepad_save-qwen2vl"] / "steps.jsonl").read_text().splitlines()
    assert json.loads(steps[0])["geometry"]["width"] == 1920


def _wrong(text: str) -> str:
    head, _, _ = text.partition("checks:")
    head = head.replace("name: xterm_printf", "name: xterm_wrong")
    return head + 'checks:\n- file: out.txt\n  equals: "nothing like it\\n"\n'
