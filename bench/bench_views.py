"""What observing a window or a region costs, and the window-manager round trip after typing.

    python bench/bench_views.py [--repeat 50]

On a private 1920x1080 Xvfb with openbox and an xterm window (~1204x724): the median time of
``observe()`` (settle: at least two identical grabs) for the whole screen, a 1204x724 region and
the xterm window (whose geometry is read again on every grab); one ``X11Windows.rect`` (the
per-grab cost of following a window); ``wm_sync`` (the barrier the device runs after typing
that remapped keycodes); typing ``Zoë — 東京 ✓`` plus three new CJK characters into xterm (new
keycodes each time, so the spare keycodes are recycled: that includes the typer's 50 ms pause
before remapping a key that earlier text used).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from pixelpilot.agent.actions import TypeText
from pixelpilot.scenarios.launch import LaunchedApp
from pixelpilot.tools.desktop import DesktopDevice
from pixelpilot.tools.x11_windows import WindowSpec, X11Windows
from pixelpilot.tools.xvfb import default_wm, ensure_display


def median_ms(fn: Callable[[], object], n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=50)
    n = ap.parse_args().repeat
    xterm = ["xterm", "-u8", "-fa", "Monospace", "-fs", "14", "-geometry", "100x30",
             "-e", "bash", "--norc", "--noprofile"]  # fmt: skip
    with ensure_display(1920, 1080, wm=default_wm()) as display, LaunchedApp(
        xterm, "class=xterm"
    ):
        windows = X11Windows(display)
        windows_spec = WindowSpec.parse("class=xterm")
        info = windows.find(windows_spec)
        w, h = info.rect[2], info.rect[3]
        rows = []
        for label, opts in (("screen 1920x1080", {}), (f"region {w}x{h}", {"region": (0, 0, w, h)}),
                            (f"window {w}x{h}", {"window": str(windows_spec)})):  # fmt: skip
            with DesktopDevice(**opts) as dev:
                rows.append((f"observe, {label}", *median_ms(dev.observe, n)))
        rows.append(("X11Windows.rect (per grab, window view)",
                     *median_ms(lambda: windows.rect(info.id, "xterm"), n)))  # fmt: skip
        rows.append(("wm_sync (openbox round trip)", *median_ms(windows.wm_sync, n)))
        with DesktopDevice(window="class=xterm") as dev:
            k = iter(range(10**6))
            rows.append(("type 'Zoë — 東京 ✓' + 3 new CJK chars (remap + wm_sync)", *median_ms(
                lambda: dev.execute(TypeText(text="Zoë — 東京 ✓" + "".join(
                    chr(0x4E00 + 3 * next(k) + i) for i in range(3)))), min(n, 20))))  # fmt: skip
        windows.close()
    print(f"{'what':60} {'median ms':>10} {'p90 ms':>8}")
    for label, med, p90 in rows:
        print(f"{label:60} {med:10.2f} {p90:8.2f}")


if __name__ == "__main__":
    main()
