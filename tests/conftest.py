"""Shared fixtures: one X display for the whole session, the Tk fixture app, a desktop device,
one Chromium with MiniWoB++, the two tiny Qwen2-VL checkpoints (built once per session into the
session's temp dir), a ``transformers serve`` process serving the small one.

``display`` starts ONE Xvfb (1280x800) with the openbox window manager (when installed, as
scripts/setup.sh does) unless ``$DISPLAY`` is already set, and points
``DISPLAY`` at it before anything imports pyautogui (which binds the display it finds when
first imported, once per process). Tests that need it skip only when Xvfb is not installed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pixelpilot.agent.errors import ConfigError
from pixelpilot.envs.miniwob_env import MiniWoBEnv
from pixelpilot.scenarios.fixture import FixtureApp
from pixelpilot.tools.desktop import DesktopDevice
from pixelpilot.tools.xvfb import VirtualDisplay, default_wm, xvfb_available
from pixelpilot.vlm.transformers_serve import TransformersServe, missing_serving_deps

SCREEN = (1280, 800)


@pytest.fixture(scope="session")
def display() -> Iterator[str]:
    """The X display of this test session (":N")."""
    current = os.environ.get("DISPLAY")
    if current:
        yield current
        return
    if not xvfb_available():
        pytest.skip("Xvfb is not installed; install it with: apt-get install xvfb xauth")
    with VirtualDisplay(*SCREEN, wm=default_wm()) as vd:
        saved = os.environ.get("XAUTHORITY")
        os.environ.update(vd.env)
        try:
            yield vd.display
        finally:
            os.environ.pop("DISPLAY", None)
            if saved is None:
                os.environ.pop("XAUTHORITY", None)
            else:
                os.environ["XAUTHORITY"] = saved


@pytest.fixture
def fixture_app(display: str) -> Iterator[FixtureApp]:
    """The Tk fixture app, started fresh for the test and ready."""
    with FixtureApp(display=display, width=SCREEN[0], height=SCREEN[1]) as app:
        yield app


@pytest.fixture
def desktop(display: str) -> Iterator[DesktopDevice]:
    """An open DesktopDevice on the session display."""
    device = DesktopDevice(display=display)
    device.open()
    try:
        yield device
    finally:
        device.close()


@pytest.fixture(scope="session")
def miniwob(display: str) -> Iterator[MiniWoBEnv]:
    """One real Chromium showing MiniWoB++ pages for the whole session, in the display's
    bottom-right corner (away from (0, 0), so the page-position probe is really exercised)."""
    from pixelpilot.envs.chromium import BrowserConfig, find_binaries

    try:
        find_binaries()
    except ConfigError as exc:
        pytest.skip(str(exc))
    where = BrowserConfig(x=SCREEN[0] - 440, y=SCREEN[1] - 440, width=400, height=400)
    with MiniWoBEnv(display, browser=where) as env:
        yield env


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread: on a loaded 2-core machine two threads make tiny ops 5-100x slower
    (each parallel region waits for a descheduled thread)."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="session")
def tiny_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint with the small locally trained vocabulary."""
    from pixelpilot.vlm.tiny import ensure_tiny

    return ensure_tiny("small", tmp_path_factory.getbasetemp() / "tiny-small")


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint with the real 151,643-rank Qwen vocabulary (model vocab 151936)."""
    from pixelpilot.vlm.tiny import ensure_tiny

    return ensure_tiny("qwen", tmp_path_factory.getbasetemp() / "tiny-qwen")


@pytest.fixture(scope="session")
def tiny_server(tiny_small: Path) -> Iterator[TransformersServe]:
    """A real ``transformers serve`` process serving the tiny checkpoint on CPU, for the session
    (``.url`` its OpenAI base, ``.model`` the served name, ``.log`` its output)."""
    missing = missing_serving_deps()
    if missing:
        pytest.skip(f"transformers serve needs {', '.join(missing)}: pip install 'transformers[serving]'")
    with TransformersServe(tiny_small, log=tiny_small.parent / "serve.log") as server:
        yield server
