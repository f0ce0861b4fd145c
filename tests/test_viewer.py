"""The HTML viewer in a real headless Chromium (pixel checks of the markers), killed runs,
escaping of model text, overlays on phone and robot screens, and the GIF."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageSequence

from pixelpilot.agent.actions import LongPress, Pick, Place, Point, Scroll, Swipe, Tap
from pixelpilot.agent.animate import frames, mp4_available, write_gif
from pixelpilot.agent.errors import ConfigError
from pixelpilot.agent.overlay import MARK_COLOR, action_marks, draw, sizes
from pixelpilot.agent.trajectory import (
    Attempt,
    DirectoryRecorder,
    RunMeta,
    RunResult,
    StepRecord,
    load_trajectory,
)
from pixelpilot.agent.viewer import write_report

V1 = Path(__file__).parent / "data" / "trajectory_v1"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
MAGENTA = tuple(int(MARK_COLOR[i : i + 2], 16) for i in (1, 3, 5))
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed")


def close(px: tuple[int, ...], want: tuple[int, ...], tol: int = 40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(px[:3], want, strict=True))


def chromium(tmp: Path, url: str, size: tuple[int, int], what: str = "screenshot") -> Path | str:
    """Render ``url`` in headless Chromium: a screenshot PNG, or the DOM after scripts ran."""
    shot = tmp / f"shot-{size[0]}x{size[1]}.png"
    args = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tmp / 'chromium-profile'}", "--hide-scrollbars",
        "--force-device-scale-factor=1", f"--window-size={size[0]},{size[1]}",
    ]  # fmt: skip
    args += [f"--screenshot={shot}", url] if what == "screenshot" else ["--dump-dom", url]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if what == "dom":
        return proc.stdout
    assert shot.exists(), proc.stderr[-2000:]
    return shot


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    dest = tmp_path / "run"
    shutil.copytree(V1, dest)
    return dest


def executed_point(run: Path, index: int) -> tuple[int, int]:
    step = load_trajectory(run).steps[index - 1]
    p = step.executed.action.point if step.executed else step.device_action.point
    return int(p.x), int(p.y)


@needs_chromium
def test_marker_drawn_at_executed_point_in_chromium(run_dir: Path, tmp_path: Path) -> None:
    report = write_report(run_dir)
    x, y = executed_point(run_dir, 1)  # the click the fixture app received, in screen pixels
    assert (x, y) == (600, 125)
    full = Image.open(chromium(tmp_path, report.as_uri() + "#solo-1", (1280, 800))).convert("RGB")
    assert close(full.getpixel((x, y)), MAGENTA), full.getpixel((x, y))
    assert not close(full.getpixel((x + 60, y + 60)), MAGENTA)
    # half the width: the overlay scales with the image, the marker moves to (x/2, y/2)
    half = Image.open(chromium(tmp_path, report.as_uri() + "#solo-1", (640, 400))).convert("RGB")
    assert close(half.getpixel((x // 2, y // 2)), MAGENTA), half.getpixel((x // 2, y // 2))
    # the drag of step 3: an arrow from its start to its end
    drag = load_trajectory(run_dir).steps[2].executed.action
    shot3 = Image.open(chromium(tmp_path, report.as_uri() + "#solo-3", (1280, 800))).convert("RGB")
    (sx, sy), (ex, ey) = (drag.start.x, drag.start.y), (drag.end.x, drag.end.y)
    mid = (int((sx + ex) / 2), int((sy + ey) / 2))
    assert close(shot3.getpixel((int(sx), int(sy))), MAGENTA)
    assert close(shot3.getpixel(mid), MAGENTA), shot3.getpixel(mid)
    assert not close(shot3.getpixel((mid[0], mid[1] + 40)), MAGENTA)


@needs_chromium
def test_full_report_shows_every_step_and_the_summary(run_dir: Path, tmp_path: Path) -> None:
    report = write_report(run_dir, tmp_path / "out" / "r.html")
    dom = chromium(tmp_path, report.as_uri(), (1300, 900), what="dom")
    assert isinstance(dom, str)
    for i in (1, 2, 3, 4):
        assert f'id="step-{i}"' in dom
    assert "success" in dom and "1 rejected" in dom
    assert "pyautogui.click" in dom  # executed commands
    page = Image.open(chromium(tmp_path, report.as_uri(), (1300, 1400))).convert("RGB")
    colors = page.getcolors(maxcolors=1 << 22) or []
    assert any(close(c, MAGENTA, 20) for _, c in colors)


@needs_chromium
def test_killed_run_still_renders(run_dir: Path, tmp_path: Path) -> None:
    (run_dir / "result.json").unlink()
    lines = (run_dir / "steps.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    cut = lines[-1][: len(lines[-1]) // 2]  # the process died while writing step 4
    (run_dir / "steps.jsonl").write_text("".join(lines[:-1]) + cut, encoding="utf-8")
    (run_dir / "screens" / "0003.png").unlink()  # step 3's screenshot was never written
    report = write_report(run_dir)
    html = report.read_text(encoding="utf-8")
    assert "incomplete" in html and "cut off" in html
    assert 'id="step-3"' in html and 'id="step-4"' not in html
    assert "screenshot not written" in html
    shot = Image.open(chromium(tmp_path, report.as_uri() + "#solo-1", (1280, 800))).convert("RGB")
    assert close(shot.getpixel(executed_point(run_dir, 1)), MAGENTA)


def _hostile_run(dest: Path) -> Path:
    """A run whose task, model text and error try to inject markup and script."""
    evil = '</pre><script>document.title="pwned"</script><b id="inj">x</b><img src=x onerror="document.title=\'pwned\'">'
    rec = DirectoryRecorder(dest)
    rec.start(RunMeta(task="t</title><script>alert(1)</script>", model=evil, dialect="qwen2vl",
                      device={"name": "d", "kind": "desktop", "width": 64, "height": 40}))  # fmt: skip
    step = StepRecord(
        index=1, started_at=0.0, geometry={"width": 64, "height": 40},
        attempts=[Attempt(raw=evil, error=evil)], error=evil,
    )  # fmt: skip
    rec.append(step, Image.new("RGB", (64, 40), "white"))
    rec.finish(RunResult(status="failure", reason=evil, steps=[step]))
    return dest


@needs_chromium
def test_model_text_is_escaped(tmp_path: Path) -> None:
    report = write_report(_hostile_run(tmp_path / "evil"))
    html = report.read_text(encoding="utf-8")
    assert '<b id="inj">' not in html and "<script>document" not in html
    assert "&lt;b id=&quot;inj&quot;&gt;" in html
    dom = chromium(tmp_path, report.as_uri(), (800, 600), what="dom")
    assert isinstance(dom, str)
    assert 'id="inj"' not in dom.replace("&quot;", '"').replace('&lt;b id="inj"', "")
    assert "<title>pixelpilot run: t&lt;/title&gt;" in dom  # the title did not close early
    assert "pwned" not in dom.split("<title>")[1].split("</title>")[0]


def test_phone_and_robot_overlays_land_on_their_points() -> None:
    img = Image.new("RGB", (400, 800), "white")
    px = lambda x, y: Point(x=x, y=y, space="screen_px")  # noqa: E731
    tap = draw(img, action_marks(Tap(point=px(100, 200)), img.size))
    assert close(tap.getpixel((100, 200)), MAGENTA, 5)
    held = draw(img, action_marks(LongPress(point=px(100, 200), seconds=2), img.size))
    outer = round(sizes(img.size)[0] * 1.6)  # the second ring of a long press
    assert close(held.getpixel((100 + outer, 200)), MAGENTA, 5)
    assert not close(tap.getpixel((100 + outer, 200)), MAGENTA, 60)
    swipe = draw(img, action_marks(Swipe(start=px(200, 600), end=px(200, 200)), img.size))
    assert close(swipe.getpixel((200, 400)), MAGENTA, 5)  # the arrow's shaft
    assert not close(swipe.getpixel((260, 400)), MAGENTA, 60)
    scroll = draw(img, action_marks(Scroll(direction="down", point=px(200, 300)), img.size))
    assert close(scroll.getpixel((200, 330)), MAGENTA, 5)  # the arrow points down from the point
    assert not close(scroll.getpixel((200, 270)), MAGENTA, 60)
    cam = Image.new("RGB", (640, 480), "white")
    pick = draw(cam, action_marks(Pick(point=px(320, 240)), cam.size))
    place = draw(cam, action_marks(Place(point=px(100, 100)), cam.size))
    assert close(pick.getpixel((320, 240)), (0x00, 0xC8, 0x53), 5)
    assert close(place.getpixel((100, 100)), (0x29, 0x62, 0xFF), 5)


def test_gif_has_a_frame_per_screenshot_with_the_marker(run_dir: Path, tmp_path: Path) -> None:
    out = write_gif(run_dir, tmp_path / "run.gif", fps=2, max_width=640)
    gif = Image.open(out)
    assert gif.n_frames == 4
    shots = [f.convert("RGB") for f in ImageSequence.Iterator(gif)]
    assert shots[0].width == 640 and shots[0].height == 400 + 28  # scaled + caption bar
    x, y = executed_point(run_dir, 1)
    assert close(shots[0].getpixel((x // 2, y // 2)), MAGENTA), shots[0].getpixel((x // 2, y // 2))
    assert not close(shots[1].getpixel((x // 2, y // 2)), MAGENTA)  # step 2 typed, no click
    gif.seek(0)
    assert gif.info["duration"] == 500  # fps=2
    gif.seek(3)
    assert gif.info["duration"] == 2500  # the last frame is held 2 s longer
    assert len(frames(run_dir, max_width=None)) == 4


def test_mp4_needs_imageio_ffmpeg(run_dir: Path, tmp_path: Path) -> None:
    if mp4_available():
        pytest.skip("imageio-ffmpeg is installed here")
    with pytest.raises(ConfigError, match="imageio-ffmpeg"):
        write_gif(run_dir, tmp_path / "run.mp4")


def test_linked_images_stay_beside_the_report(run_dir: Path) -> None:
    report = write_report(run_dir, images="link")
    html = report.read_text(encoding="utf-8")
    assert 'src="screens/0001.png"' in html and "data:image/png" not in html
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["format_version"] == 1
