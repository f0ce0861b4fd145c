"""A Tk window that shows coloured square targets and records where every click lands.

Run ``python -m pixelpilot.scenarios.target_app --state PATH --width W --height H --targets
'[[x, y, size, "#e53935"], ...]'``: a W x H window at +0+0 (full-screen, so a window manager
gives it no frame) on a grey background, each target a ``size`` x ``size`` square whose top-left is (x, y), in X
screen pixels. It is the oracle of the coordinate tests: the state file (JSON, written
atomically, ``"ready": true`` once mapped) lists the targets and every button-1 click as
``[x_root, y_root]``, so a test can check that a model's point really landed in its target.
Usable with ``pixelpilot.scenarios.fixture.FixtureApp(command=...)``.

With ``--title T --at X,Y`` it is instead an ordinary window titled T (WM_CLASS
``PixelpilotWindow``) of W x H at (X, Y), framed and movable under a window manager: the oracle
of the window-view tests. Target boxes are then in the window's own pixels, each click is also
recorded in them (``local``), and ``window`` holds the client area [x, y, w, h] on the screen,
updated when the window moves.
"""

from __future__ import annotations

import argparse
import json
import os
import tkinter as tk
from typing import Any

BACKGROUND = "#808080"


class TargetWindow:
    """The window, its targets and the clicks it has seen."""

    def __init__(
        self,
        path: str,
        width: int,
        height: int,
        targets: list[list[Any]],
        title: str | None = None,
        at: tuple[int, int] = (0, 0),
    ) -> None:
        self.path = path
        self.targets: list[tuple[int, int, int, str]] = [
            (int(x), int(y), int(size), str(colour)) for x, y, size, colour in targets
        ]
        self.clicks: list[list[int]] = []
        self.local: list[list[int]] = []
        self.ready = False
        self.root = tk.Tk(className="PixelpilotWindow" if title else "PixelpilotTargets")
        if title is None:
            self.root.geometry(f"{width}x{height}+0+0")
            self.root.attributes("-fullscreen", True)
        else:
            self.root.title(title)
            self.root.geometry(f"{width}x{height}+{at[0]}+{at[1]}")
            self.root.bind("<Configure>", lambda e: self.write() if self.ready else None)
        self.windowed = title is not None
        self.canvas = tk.Canvas(
            self.root, width=width, height=height, bg=BACKGROUND, highlightthickness=0, bd=0
        )
        self.canvas.place(x=0, y=0)
        for x, y, size, colour in self.targets:
            # a rectangle's outline is drawn inside x..x+size-1 with width 0 and fill only
            self.canvas.create_rectangle(x, y, x + size, y + size, fill=colour, width=0)
        self.canvas.bind("<Button-1>", self.clicked)

    def clicked(self, event: tk.Event[tk.Misc]) -> None:
        self.clicks.append([event.x_root, event.y_root])
        self.local.append([event.x, event.y])
        self.write()

    def write(self) -> None:
        state: dict[str, Any] = {
            "ready": self.ready, "targets": self.targets, "clicks": self.clicks,
            "local": self.local,
        }  # fmt: skip
        if self.windowed:
            r = self.root
            state["window"] = [r.winfo_rootx(), r.winfo_rooty(), r.winfo_width(), r.winfo_height()]
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(state, f)
        os.replace(tmp, self.path)

    def _when_mapped(self) -> None:
        self.root.update_idletasks()
        if not self.root.winfo_ismapped() or self.canvas.winfo_width() <= 1:
            self.root.after(5, self._when_mapped)
            return
        self.root.update()
        self.ready = True
        self.write()

    def run(self) -> None:
        self.write()
        self.root.after(0, self._when_mapped)
        self.root.mainloop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="pixelpilot's click-target app")
    parser.add_argument("--state", required=True, help="where to write the JSON state")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--targets", required=True, help='JSON: [[x, y, size, "#rrggbb"], ...]')
    parser.add_argument("--title", help="an ordinary titled window instead of full-screen")
    parser.add_argument("--at", default="0,0", help="X,Y of an ordinary window")
    args = parser.parse_args(argv)
    x, y = (int(v) for v in args.at.split(","))
    TargetWindow(
        args.state, args.width, args.height, json.loads(args.targets), args.title, (x, y)
    ).run()


if __name__ == "__main__":
    main()
