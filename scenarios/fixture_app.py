"""A small Tk desktop app that is the real target of desktop scenario tests.

Run ``python -m pixelpilot.scenarios.fixture_app --state PATH [--width W --height H]``. The
window sits at +0+0 and fills W x H exactly: it asks to be full-screen, so a window manager
gives it no frame (without one it stays at the geometry it asked for). Every widget
is placed at a fixed pixel box, so coordinates do not depend on fonts; the layout is designed
for 1280x800 and centred on other sizes, leaving the screen corners (pyautogui's fail-safe
points) empty.

The app is its own oracle: it writes its whole state as JSON to PATH (atomically: temp file +
``os.replace``) on start and after every change, with ``"ready": true`` once the window is
mapped and laid out. Keys: ready, seq, pid, width, height, boxes {name: [x, y, w, h] in screen
px}, focus, name, email, password (a field that shows dots), subscribe, submit_count, submitted,
reset_count, enter_count, selected, opened,
items_first, item_boxes, block (centre [x, y]), block_in_target, menu_posted, menu_entries
{label: [x, y, w, h]}, menu_choice, double_clicks, saved_count, escaped, status, events.
"""

from __future__ import annotations

import argparse
import json
import os
import tkinter as tk
from collections.abc import Callable
from typing import Any

BG = "#eceff1"
BLOCK_COLOUR = "#1565c0"
TARGET_COLOUR = "#ffe0b2"
SUBMIT_COLOUR = "#2e7d32"
MENU_LABELS = ("Copy", "Rename", "Delete")
N_ITEMS = 100

# name -> (x, y, w, h) on the 1280x800 design; shifted to stay centred on other sizes.
LAYOUT: dict[str, tuple[int, int, int, int]] = {
    "title": (340, 40, 600, 40),
    "name_label": (340, 110, 100, 30),
    "name": (450, 110, 300, 30),
    "email_label": (340, 160, 100, 30),
    "email": (450, 160, 300, 30),
    "subscribe": (450, 210, 200, 30),
    "submit": (450, 260, 120, 40),
    "reset": (590, 260, 120, 40),
    "items": (800, 110, 140, 190),
    "password_label": (960, 110, 240, 30),
    "password": (960, 145, 240, 30),
    "canvas": (340, 330, 600, 260),
    "menu_target": (340, 610, 200, 50),
    "double_target": (560, 610, 200, 50),
    "status": (340, 690, 600, 30),
}
# canvas items, in canvas coordinates: (x1, y1, x2, y2)
BLOCK = (40, 105, 90, 155)
TARGET = (440, 70, 580, 190)


class FixtureWindow:
    """The Tk app and its state file."""

    def __init__(self, state_path: str, width: int, height: int) -> None:
        self.path = state_path
        self.width, self.height = width, height
        self.dx, self.dy = max(0, (width - 1280) // 2), max(0, (height - 800) // 2)
        self.root = tk.Tk(className="PixelpilotFixture")
        self.root.title("pixelpilot fixture")
        self.root.geometry(f"{width}x{height}+0+0")
        self.root.attributes("-fullscreen", True)  # no frame under a window manager
        self.root.configure(background=BG)
        self.seq = 0
        self.ready = False
        self.events: list[str] = []
        self.counters = dict.fromkeys(
            ("submit_count", "reset_count", "double_clicks", "saved_count", "enter_count"), 0
        )
        self.submitted: dict[str, Any] | None = None
        self.selected: str | None = None
        self.opened: str | None = None
        self.menu_posted = False
        self.menu_entries: dict[str, list[int]] = {}
        self.menu_choice: str | None = None
        self.escaped = False
        self.block_in_target = False
        self._drag_from: tuple[int, int] | None = None
        self._build()

    # -- widgets ---------------------------------------------------------------------------------
    def _place(self, widget: tk.Widget, name: str) -> None:
        x, y, w, h = LAYOUT[name]
        widget.place(x=x + self.dx, y=y + self.dy, width=w, height=h)

    def _build(self) -> None:
        r = self.root
        self.widgets: dict[str, tk.Widget] = {}

        def add(name: str, widget: tk.Widget) -> None:
            self.widgets[name] = widget
            self._place(widget, name)

        add("title", tk.Label(r, name="title", text="PixelPilot fixture", bg=BG,
                              font=("TkHeadingFont", 16, "bold")))  # fmt: skip
        add("name_label", tk.Label(r, name="name_label", text="Name", bg=BG, anchor="w"))
        add("email_label", tk.Label(r, name="email_label", text="Email", bg=BG, anchor="w"))
        self.name_var, self.email_var = tk.StringVar(r), tk.StringVar(r)
        # insertofftime=0: a steady caret, so screenshots of a still app are identical
        add("name", tk.Entry(r, name="name", textvariable=self.name_var, insertofftime=0))
        add("email", tk.Entry(r, name="email", textvariable=self.email_var, insertofftime=0))
        add("password_label", tk.Label(r, name="password_label", text="Password", bg=BG,
                                       anchor="w"))  # fmt: skip
        self.password_var = tk.StringVar(r)
        add("password", tk.Entry(r, name="password", textvariable=self.password_var, show="•",
                                 insertofftime=0))  # fmt: skip
        self.password_var.trace_add("write", lambda *_: self.changed("edit:password"))
        self.name_var.trace_add("write", lambda *_: self.changed("edit:name"))
        self.email_var.trace_add("write", lambda *_: self.changed("edit:email"))
        self.subscribe_var = tk.BooleanVar(r, value=False)
        add("subscribe", tk.Checkbutton(
            r, name="subscribe", text="Subscribe", variable=self.subscribe_var, bg=BG,
            activebackground=BG, anchor="w", command=lambda: self.changed("subscribe"),
        ))  # fmt: skip
        add("submit", tk.Button(
            r, name="submit", text="Submit", command=self.on_submit, bg=SUBMIT_COLOUR, fg="white",
            activebackground=SUBMIT_COLOUR, activeforeground="white",
        ))  # fmt: skip
        add("reset", tk.Button(r, name="reset", text="Reset", command=self.on_reset))

        lb = tk.Listbox(r, name="items", exportselection=False, activestyle="none")
        for i in range(1, N_ITEMS + 1):
            lb.insert("end", f"Item {i:03d}")
        lb.configure(yscrollcommand=lambda *_: self.changed("scroll:items"))
        lb.bind("<<ListboxSelect>>", self.on_select)
        lb.bind("<Double-Button-1>", self.on_open)
        add("items", lb)
        self.items = lb

        cv = tk.Canvas(r, name="canvas", bg="white", highlightthickness=0, borderwidth=0)
        cv.create_rectangle(*TARGET, fill=TARGET_COLOUR, outline="#ef6c00", width=2, tags="target")
        cv.create_rectangle(*BLOCK, fill=BLOCK_COLOUR, outline=BLOCK_COLOUR, tags="block")
        cv.tag_bind("block", "<ButtonPress-1>", self.on_block_press)
        cv.tag_bind("block", "<B1-Motion>", self.on_block_motion)
        cv.tag_bind("block", "<ButtonRelease-1>", self.on_block_release)
        add("canvas", cv)
        self.canvas = cv

        mt = tk.Label(r, name="menu_target", text="Right-click me", bg="#cfd8dc", relief="ridge")
        mt.bind("<Button-3>", self.on_menu_request)
        add("menu_target", mt)
        self.menu = tk.Menu(r, name="context", tearoff=0)
        for label in MENU_LABELS:
            self.menu.add_command(label=label, command=self._chooser(label))
        self.menu.bind("<Map>", self.on_menu_map)
        self.menu.bind("<Unmap>", self.on_menu_unmap)

        dt = tk.Label(r, name="double_target", text="Double-click me", bg="#d1c4e9",
                      relief="ridge")  # fmt: skip
        dt.bind("<Double-Button-1>", self.on_double)
        add("double_target", dt)
        self.status = tk.Label(r, name="status", text="ready", bg=BG, anchor="w")
        add("status", self.status)

        r.bind_all("<Control-s>", self.on_save)
        r.bind_all("<Escape>", self.on_escape)
        r.bind_all("<Return>", self.on_enter)
        r.bind_all("<FocusIn>", lambda e: self.changed("focus"), add="+")

    # -- handlers --------------------------------------------------------------------------------
    def on_submit(self) -> None:
        self.counters["submit_count"] += 1
        self.submitted = {
            "name": self.name_var.get(),
            "email": self.email_var.get(),
            "subscribe": self.subscribe_var.get(),
        }
        self.changed("submit")

    def on_reset(self) -> None:
        self.counters["reset_count"] += 1
        self.name_var.set("")
        self.email_var.set("")
        self.subscribe_var.set(False)
        self.changed("reset")

    def on_select(self, _event: tk.Event) -> None:
        sel = self.items.curselection()
        self.selected = self.items.get(sel[0]) if sel else None
        self.changed("select")

    def on_open(self, event: tk.Event) -> None:
        self.opened = self.items.get(self.items.nearest(event.y))
        self.changed("open")

    def on_block_press(self, event: tk.Event) -> None:
        self._drag_from = (event.x, event.y)
        self.changed("drag_start")

    def on_block_motion(self, event: tk.Event) -> None:
        if self._drag_from is None:
            return
        x0, y0 = self._drag_from
        self.canvas.move("block", event.x - x0, event.y - y0)
        self._drag_from = (event.x, event.y)
        self.changed("drag_move")

    def on_block_release(self, _event: tk.Event) -> None:
        self._drag_from = None
        x1, y1, x2, y2 = self.canvas.coords("block")
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        tx1, ty1, tx2, ty2 = TARGET
        self.block_in_target = tx1 <= cx <= tx2 and ty1 <= cy <= ty2
        self.changed("drop")

    def on_menu_request(self, event: tk.Event) -> None:
        self.menu.tk_popup(event.x_root, event.y_root)
        self.changed("menu_request")

    def on_menu_map(self, _event: tk.Event) -> None:
        m = self.menu  # mapped: its geometry is final (no update here: it would re-enter)
        x, y, w, h = m.winfo_rootx(), m.winfo_rooty(), m.winfo_width(), m.winfo_height()
        inset = m.winfo_pixels(m.cget("borderwidth"))
        tops = [int(m.yposition(i)) for i in range(len(MENU_LABELS))] + [h - inset]
        self.menu_entries = {
            label: [x + inset, y + tops[i], w - 2 * inset, tops[i + 1] - tops[i]]
            for i, label in enumerate(MENU_LABELS)
        }
        self.menu_posted = True
        self.changed("menu_posted")

    def on_menu_unmap(self, _event: tk.Event) -> None:
        self.menu_posted = False
        self.changed("menu_closed")

    def _chooser(self, label: str) -> Callable[[], None]:
        return lambda: self.on_menu(label)

    def on_menu(self, label: str) -> None:
        self.menu_choice = label
        self.changed(f"menu:{label}")

    def on_double(self, _event: tk.Event) -> None:
        self.counters["double_clicks"] += 1
        self.changed("double_click")

    def on_save(self, _event: tk.Event) -> None:
        self.counters["saved_count"] += 1
        self.changed("save")

    def on_enter(self, _event: tk.Event) -> None:
        self.counters["enter_count"] += 1
        self.changed("enter")

    def on_escape(self, _event: tk.Event) -> None:
        self.escaped = True
        self.changed("escape")

    # -- state -----------------------------------------------------------------------------------
    def changed(self, event: str) -> None:
        """Record an event, show it in the status label and write the state file."""
        self.events = [*self.events, event][-20:]
        if hasattr(self, "status"):
            self.status.configure(text=f"last event: {event}")
        self.write()

    def _box(self, w: tk.Misc) -> list[int]:
        return [w.winfo_rootx(), w.winfo_rooty(), w.winfo_width(), w.winfo_height()]

    def _canvas_box(self, tag: str) -> list[int]:
        x1, y1, x2, y2 = (round(v) for v in self.canvas.coords(tag))
        ox = self.canvas.winfo_rootx() - round(self.canvas.canvasx(0))
        oy = self.canvas.winfo_rooty() - round(self.canvas.canvasy(0))
        return [ox + x1, oy + y1, x2 - x1, y2 - y1]

    def _focus(self) -> str | None:
        try:
            w = self.root.focus_get()
        except (KeyError, tk.TclError):  # focus in a menu or another toplevel Tk can't name
            return None
        if w is None:
            return None
        return "window" if w is self.root else str(w).rsplit(".", 1)[-1]

    def snapshot(self) -> dict[str, Any]:
        """The whole state, as written to the state file."""
        boxes = {name: self._box(w) for name, w in self.widgets.items()}
        boxes["block"] = self._canvas_box("block")
        boxes["target"] = self._canvas_box("target")
        bx, by, bw, bh = boxes["block"]
        lb = self.items
        first = round(float(lb.yview()[0]) * lb.size())
        lx, ly, lw, _ = boxes["items"]
        inset = sum(lb.winfo_pixels(lb.cget(o)) for o in ("borderwidth", "highlightthickness"))
        rows = [(i, b) for i in range(first, min(first + 20, lb.size())) if (b := lb.bbox(i))]
        item_boxes = {}
        for k, (i, (_, top, _, h)) in enumerate(rows):  # a row reaches the next row's top
            if k + 1 < len(rows):
                h = rows[k + 1][1][1] - top
            item_boxes[lb.get(i)] = [lx + inset, ly + top, lw - 2 * inset, h]
        return {
            "ready": self.ready,
            "seq": self.seq,
            "pid": os.getpid(),
            "width": self.width,
            "height": self.height,
            "boxes": boxes,
            "focus": self._focus(),
            "name": self.name_var.get(),
            "email": self.email_var.get(),
            "password": self.password_var.get(),
            "subscribe": self.subscribe_var.get(),
            **self.counters,
            "submitted": self.submitted,
            "selected": self.selected,
            "opened": self.opened,
            "items_first": first,
            "item_boxes": item_boxes,
            "block": [bx + bw // 2, by + bh // 2],
            "block_in_target": self.block_in_target,
            "menu_posted": self.menu_posted,
            "menu_entries": self.menu_entries,
            "menu_choice": self.menu_choice,
            "escaped": self.escaped,
            "status": self.status.cget("text"),
            "events": self.events,
        }

    def write(self) -> None:
        self.seq += 1
        data = json.dumps(self.snapshot(), ensure_ascii=False)
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(data)
        os.replace(tmp, self.path)

    # -- run -------------------------------------------------------------------------------------
    def _when_mapped(self) -> None:
        self.root.update_idletasks()
        if not self.root.winfo_ismapped() or self.widgets["status"].winfo_width() <= 1:
            self.root.after(5, self._when_mapped)
            return
        self.root.focus_force()  # no window manager gives us keyboard focus: take it
        self.root.update()
        self.ready = True
        self.changed("ready")

    def run(self) -> None:
        self.write()
        self.root.after(0, self._when_mapped)
        self.root.mainloop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="pixelpilot's Tk fixture app")
    parser.add_argument("--state", required=True, help="where to write the JSON state")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    args = parser.parse_args(argv)
    FixtureWindow(args.state, args.width, args.height).run()


if __name__ == "__main__":
    main()
