"""Per-task steps of the DOM reference policy: what a careful person would do next.

Each solver looks at the live page (and the episode's instruction fields) and returns the next
``Intent``; it is called again after every step, so it works from what the page shows now, not
from a script (``mem`` keeps the little a person would remember within an episode). Solvers act
only the way a person can through a screen, mouse and keyboard: they read the DOM to know where
things are and what they say, never to set values.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pixelpilot.envs.dom_page import (
    DragTo,
    El,
    Hover,
    Intent,
    Keys,
    OracleStuck,
    Page,
    Press,
    Wheel,
    Write,
)
from pixelpilot.envs.miniwob_env import Episode

__all__ = ["SOLVERS", "Solver", "solver_for"]

Solver = Callable[[Page, Episode, dict[str, Any]], Intent]
SOLVERS: dict[str, Solver] = {}
AREA = (0.0, 0.0, 160.0, 210.0)


def _solver(*names: str) -> Callable[[Solver], Solver]:
    def register(fn: Solver) -> Solver:
        for n in names:
            SOLVERS[n] = fn
        return fn

    return register


def solver_for(task: str) -> Solver:
    """The solver of ``task``; OracleStuck when the policy has none."""
    try:
        return SOLVERS[task]
    except KeyError:
        raise OracleStuck(f"the DOM policy has no solver for {task!r}") from None


# -- shared steps ----------------------------------------------------------------------------
def _field(ep: Episode, key: str) -> str:
    if key not in ep.fields:
        raise OracleStuck(f"instruction {ep.utterance!r} has no field {key!r}")
    return ep.fields[key]


def _fill(el: El, text: str, mem: dict[str, Any]) -> Intent | None:
    """Steps that make ``el`` hold exactly ``text``; None once it does."""
    if el.value == text:
        return None
    if not el.focused:
        return Press(el)
    key = f"selected:{el.handle.id}:{text}"
    if el.value and not mem.get(key):
        mem[key] = True
        return Keys(("ctrl", "a"))  # the next typing replaces what is there
    return Write(text)


def _fill_then(page: Page, pairs: list[tuple[El, str]], submit: El, mem: dict[str, Any]) -> Intent:
    for el, text in pairs:
        step = _fill(el, text, mem)
        if step is not None:
            return step
    return Press(submit)


def _submit(page: Page) -> El:
    return page.one("#subbtn, #submit")


# -- clicks ------------------------------------------------------------------------------------
@_solver("click-test")
def click_test(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    return Press(page.one("#subbtn"))


@_solver("click-test-2", "click-test-transfer")
def click_test_2(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    return Press(page.one("#area button", text=_field(ep, "target")))


@_solver("click-button")
def click_button(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    return Press(page.one("#area button", text=_field(ep, "target")))


@_solver("click-link")
def click_link(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    return Press(page.one("#area .alink", text=_field(ep, "target")))


@_solver("click-dialog")
def click_dialog(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    return Press(page.one(".ui-dialog-titlebar button"))


@_solver("click-dialog-2")
def click_dialog_2(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    target = _field(ep, "target")
    if target == "x":
        return Press(page.one(".ui-dialog-titlebar button"))
    return Press(page.one(".ui-dialog-buttonpane button", text=target))


@_solver("click-tab")
def click_tab(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    return Press(page.one("#area ul a", text=f"Tab #{_field(ep, 'target')}"))


@_solver("click-tab-2", "click-tab-2-easy", "click-tab-2-medium", "click-tab-2-hard")
def click_tab_2(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    target = _field(ep, "target")
    links = page.shown("#area .alink", text=target)
    if links:
        return Press(links[0])
    for tab in page.all("#area ul li"):  # the tab whose (hidden) panel holds the link
        panel = tab.handle.find_element("css selector", "a").get_attribute("href").split("#")[-1]
        if page.all(f"#{panel} .alink", text=target):
            return Press(page.one("a", within=tab))
    # no panel holds it: look through the tabs not seen yet, as a person would
    seen = mem.setdefault("seen", set())
    for tab in page.all("#area ul li"):
        name = tab.text
        if name not in seen and "ui-tabs-active" not in (tab.handle.get_attribute("class") or ""):
            seen.add(name)
            return Press(page.one("a", within=tab))
    raise OracleStuck(f"no tab holds the link {target!r}")


@_solver("click-button-sequence")
def click_button_sequence(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    if not mem.get("one"):
        mem["one"] = True
        return Press(page.one("#subbtn"))
    return Press(page.one("#subbtn2"))


@_solver("click-collapsible", "click-collapsible-nodelay")
def click_collapsible(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    if not page.shown(".ui-accordion-content"):
        return Press(page.one("#area h3"))
    return Press(page.one("#subbtn"))


@_solver("click-collapsible-2", "click-collapsible-2-nodelay")
def click_collapsible_2(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    target = _field(ep, "target")
    links = [e for e in page.shown("#area .alink", text=target) if e.inside(AREA)]
    if links:
        return Press(links[0])
    for header in page.all("#area h3"):
        section = page.js("return arguments[0].nextElementSibling;", header.handle)
        if page.all(".alink", text=target, within=_wrap(page, section)):
            return Press(header)
    raise OracleStuck(f"no section holds the link {target!r}")


def _wrap(page: Page, handle: Any) -> El:
    return El(handle, "", "", None, None, (0, 0, 0, 0), False, True)


@_solver("click-color")
def click_color(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    color = _field(ep, "target")
    for box in page.shown("#area .color"):
        if box.handle.get_attribute("data-color") == color:
            return Press(box)
    raise OracleStuck(f"no {color!r} box")


@_solver("identify-shape")
def identify_shape(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    """The figure is one SVG shape or a text glyph (a letter or a digit)."""
    glyph = page.all("#area_svg text")
    if glyph:
        kind = "digit" if glyph[0].text.isdigit() else "letter"
    else:
        tags = {e.tag for e in page.all("#area_svg circle, #area_svg rect, #area_svg polygon")}
        names = {"circle": "circle", "rect": "rectangle", "polygon": "triangle"}
        if len(tags) != 1:
            raise OracleStuck(f"unreadable figure {sorted(tags)}")
        kind = names[tags.pop()]
    return Press(page.one(f'#area-buttons button[data-type="{kind}"]'))


@_solver("click-widget")
def click_widget(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    kind = _field(ep, "target")
    for widget in page.shown("#area .widget"):
        inner = page.all("[data-type]", within=widget)
        if inner and inner[0].handle.get_attribute("data-type") == kind:
            return Press(inner[0])
    raise OracleStuck(f"no {kind!r} widget")


@_solver("click-option")
def click_option(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    label = page.one("#boxes label", text=_field(ep, "target"))
    box = page.one("input", within=label)
    if not box.checked:
        return Press(box)
    return Press(page.one("#subbtn"))


@_solver("focus-text")
def focus_text(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    return Press(page.one("#tt"))


@_solver("focus-text-2")
def focus_text_2(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    return Press(page.one(f"#tt{_field(ep, 'target')}"))


@_solver("click-menu")
def click_menu(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    path = _field(ep, "target").split(">")
    for depth, name in enumerate(path):
        item = [e for e in page.shown("#area li > div") if e.text == name]
        if not item:
            raise OracleStuck(f"menu item {name!r} is not shown")
        if depth == len(path) - 1:
            return Press(item[0])
        sub = page.js("return arguments[0].parentElement.querySelector('ul');", item[0].handle)
        if sub is None or not page.js("return arguments[0].offsetParent !== null;", sub):
            return Hover(item[0])  # open the submenu
    raise OracleStuck("empty menu path")


# -- typing ------------------------------------------------------------------------------------
@_solver("enter-text", "enter-text-dynamic")
def enter_text(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    return _fill_then(page, [(page.one("#tt"), _field(ep, "target"))], page.one("#subbtn"), mem)


@_solver("enter-text-2")
def enter_text_2(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    text = _field(ep, "text")
    text = text.lower() if _field(ep, "case") == "lower" else text.upper()
    return _fill_then(page, [(page.one("#tt"), text)], page.one("#subbtn"), mem)


@_solver("enter-password")
def enter_password(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    pw = _field(ep, "target")
    pairs = [(page.one("#password"), pw), (page.one("#verify"), pw)]
    return _fill_then(page, pairs, page.one("#subbtn"), mem)


@_solver("login-user")
def login_user(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    pairs = [(page.one("#username"), _field(ep, "username")),
             (page.one("#password"), _field(ep, "password"))]  # fmt: skip
    return _fill_then(page, pairs, page.one("#subbtn"), mem)


@_solver("login-user-popup")
def login_user_popup(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    """As login-user; a popup that may open when a field gets focus is cancelled."""
    popup = page.shown("#popup-cancel")
    return Press(popup[0]) if popup else login_user(page, ep, mem)


@_solver("text-transform")
def text_transform(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    text = page.one("#captcha").text.replace(" ", "")
    return _fill_then(page, [(page.one("#tt"), text)], page.one("#subbtn"), mem)


@_solver("use-autocomplete", "use-autocomplete-nodelay")
def use_autocomplete(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    """Type the start, then pick the suggestion that also has the right end."""
    start, end = _field(ep, "start"), ep.fields.get("end", "")
    field = page.one("#tags")
    if (
        field.value
        and field.value.startswith(start)
        and field.value.endswith(end)
        and mem.get("picked")
    ):
        return Press(page.one("#subbtn"))
    for item in page.shown("ul.ui-autocomplete li"):
        if item.text.startswith(start) and item.text.endswith(end):
            mem["picked"] = True
            return Press(item)
    if field.value != start:
        step = _fill(field, start, mem)
        if step is not None:
            return step
    if mem.get("waited", 0) > 3:
        raise OracleStuck(f"no suggestion starts with {start!r} and ends with {end!r}")
    mem["waited"] = mem.get("waited", 0) + 1
    return Keys(("down",))  # opens the suggestions if they are not shown


@_solver("find-word")
def find_word(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    words = page.one("#area p").text.split()
    n = int(_field(ep, "target"))
    if not 1 <= n <= len(words):
        raise OracleStuck(f"the paragraph has no word {n}")
    word = re.sub(r"[^a-zA-Z]", "", words[n - 1])
    return _fill_then(page, [(page.one("#answer-input"), word)], page.one("#subbtn"), mem)


@_solver("simple-arithmetic")
def simple_arithmetic(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    m = re.fullmatch(r"(\d+) ([-+x]) (\d+) =", page.one("#math-problem").text)
    if m is None:
        raise OracleStuck("unreadable math problem")
    a, op, b = int(m[1]), m[2], int(m[3])
    answer = a + b if op == "+" else a - b if op == "-" else a * b
    return _fill_then(page, [(page.one("#math-answer"), str(answer))], page.one("#subbtn"), mem)


@_solver("guess-number")
def guess_number(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    """Bisection on the page's feedback ("higher than N" / "lower than N")."""
    low, high = mem.setdefault("range", [0, 9])
    for which in page.shown("#higher, #lower"):
        said = int(page.one("span", within=which).text)
        low, high = (
            (max(low, said + 1), high) if "higher" in which.text else (low, min(high, said - 1))
        )
    mem["range"] = [low, high]
    guess = str((low + high) // 2)
    step = _fill(page.one("#tt"), guess, mem)
    return step if step is not None else Keys(("enter",))  # submits the form


# -- keys --------------------------------------------------------------------------------------
@_solver("copy-paste")
def copy_paste(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    source, answer = page.one("#to-copy"), page.one("#answer-input")
    if answer.value == source.value:
        return Press(page.one("#subbtn"))
    stage = mem.get("stage", "focus")
    steps: dict[str, tuple[str, Intent]] = {
        "focus": ("select", Press(source)),
        "select": ("copy", Keys(("ctrl", "a"))),
        "copy": ("target", Keys(("ctrl", "c"))),
        "target": ("paste", Press(answer)),
        "paste": ("check", Keys(("ctrl", "v"))),
    }
    if stage not in steps:
        raise OracleStuck("pasting did not give the textarea's text")
    mem["stage"], step = steps[stage]
    return step


@_solver("enter-date")
def enter_date(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    month, day, year = _field(ep, "target").split("/")
    field = page.one("#tt")
    if field.value == f"{year}-{month}-{day}":
        return Press(page.one("#subbtn"))
    if not field.focused:
        return Press(field, at=(field.rect[0] + 6, field.center[1]))  # the month segment
    if mem.get("typed"):
        raise OracleStuck(f"the date field holds {field.value!r} after typing")
    mem["typed"] = True
    return Write(month + day + year)


@_solver("enter-time")
def enter_time(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    m = re.fullmatch(r"(\d+):(\d\d)\s*([AP]M)", _field(ep, "target"))
    if m is None:
        raise OracleStuck("unreadable time")
    hour = int(m[1]) % 12 + (12 if m[3] == "PM" else 0)
    field = page.one("#tt")
    if field.value == f"{hour:02d}:{m[2]}":
        return Press(page.one("#subbtn"))
    if not field.focused:
        return Press(field, at=(field.rect[0] + 6, field.center[1]))  # the hour segment
    if mem.get("typed"):
        raise OracleStuck(f"the time field holds {field.value!r} after typing")
    mem["typed"] = True
    return Write(f"{int(m[1]):02d}{m[2]}{m[3][0]}")


@_solver("use-spinner")
def use_spinner(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    target = int(_field(ep, "target"))
    value = int(page.one("#spinner").value or 0)
    if value == target:
        return Press(page.one("#subbtn"))
    return Press(page.one(".ui-spinner-up" if value < target else ".ui-spinner-down"))


# -- checkboxes and lists ----------------------------------------------------------------------
@_solver("click-checkboxes", "click-checkboxes-large", "click-checkboxes-transfer")
def click_checkboxes(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    wanted = {v for k, v in ep.fields.items() if k.startswith("target")}
    for label in page.shown("#area label"):
        box = page.one("input", within=label)
        if bool(box.checked) != (label.text in wanted):
            return Press(box)
    return Press(page.one("#subbtn"))


@_solver("choose-list")
def choose_list(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    """A native drop-down: open it, type the option's name, press Enter (a person's quickest
    way; the popup is a separate window that may reach beyond the task area). Keys typed while
    the popup is still fading in are lost: when Enter chose another option, do it again, as a
    person who sees the wrong name would (at most 3 times)."""
    target = _field(ep, "target")
    select = page.one("#options")
    chosen = page.js("var s = arguments[0]; return s.options[s.selectedIndex].text;", select.handle)
    stage = mem.get("stage")
    if stage == "closed" and chosen != target and mem.get("tries", 1) < 3:
        mem["tries"] = mem.get("tries", 1) + 1
        stage = None
    if stage is None and chosen != target:
        mem["stage"] = "open"
        return Press(select)
    if stage == "open":
        mem["stage"] = "typed"
        return Write(target)
    if stage == "typed":
        mem["stage"] = "closed"
        return Keys(("enter",))
    if chosen != target:
        raise OracleStuck(f"typing {target!r} in the list chose {chosen!r}")
    return Press(page.one("#area button"))


@_solver("click-scroll-list")
def click_scroll_list(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    """A multiple-choice list box, from the keyboard once it has focus: arrows select the first
    item (the list scrolls along), ctrl+arrows move the focus and ctrl+space adds the second;
    a click cannot hold ctrl down."""
    wanted = [w.strip() for w in _field(ep, "target").split(",")]
    box = page.one("#options")
    options = page.all("#options option")
    names = [o.text for o in options]
    if any(w not in names for w in wanted):
        raise OracleStuck(f"the list lacks one of {wanted}")
    picked = page.js("return [...arguments[0].selectedOptions].map(o => o.index);", box.handle)
    chosen = {names[i] for i in picked}
    if chosen == set(wanted):
        return Press(page.one("#area button"))
    first = names.index(wanted[0])
    if not box.focused:
        visible = [o for o in options if o.inside(box.rect)]
        if not visible:
            raise OracleStuck("the list shows no option")
        return Press(visible[0])
    if chosen != {wanted[0]} and not mem.get("adding"):
        at = picked[0] if picked else 0
        return Keys(("down" if first > at else "up",))
    mem["adding"] = True
    at = mem.setdefault("focus", first)
    goal = names.index(wanted[1])
    if at == goal:
        return Keys(("ctrl", "space"))
    mem["focus"] = at + (1 if goal > at else -1)
    return Keys(("ctrl", "down" if goal > at else "up"))


# -- drags and scrolling -----------------------------------------------------------------------
@_solver("drag-box")
def drag_box(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    small, large = page.one("#draggableSmall"), page.one("#draggableLarge")
    sx, sy, sw, sh = small.rect
    lx, ly, lw, lh = large.rect
    inside = lx < sx and sx + sw < lx + lw and ly < sy and sy + sh < ly + lh
    if inside:
        return Press(page.one("#subbtn"))
    return DragTo(small, end=large.center)


@_solver("drag-items")
def drag_items(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    m = re.fullmatch(r"(.+?) (to the top|to the bottom|down by one position|up by one position"
                     r"|to the (\d+)\w\w position)", _field(ep, "target"))  # fmt: skip
    if m is None:
        raise OracleStuck("unreadable drag instruction")
    items = page.shown("#sortable li")
    names = [i.text for i in items]
    if m[1] not in names:
        raise OracleStuck(f"no item {m[1]!r}")
    at = names.index(m[1])
    how = m[2]
    goal = (0 if how == "to the top" else len(items) - 1 if how == "to the bottom"
            else at + 1 if how.startswith("down") else at - 1 if how.startswith("up")
            else int(m[3]) - 1)  # fmt: skip
    dest = items[goal]
    # past the middle of the item now in the goal slot, on the side the item comes from
    dy = dest.rect[3] * 0.3 * (1 if goal > at else -1)
    return DragTo(items[at], end=(dest.center[0], dest.center[1] + dy))


@_solver("use-slider")
def use_slider(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    target = int(_field(ep, "target"))
    slider, handle = page.one("#slider"), page.one("#slider .ui-slider-handle")
    lo, hi, value, vertical = page.js(
        "var s = $('#slider'); return [s.slider('option', 'min'), s.slider('option', 'max'), "
        "s.slider('value'), s.slider('option', 'orientation') === 'vertical'];"
    )
    if value == target:
        return Press(page.one("#subbtn"))
    x, y, w, h = slider.rect
    frac = (target - lo) / (hi - lo)
    step_px = (h if vertical else w) / (hi - lo)
    if abs(target - value) * step_px > 4 and not mem.get("dragged"):
        mem["dragged"] = True  # one drag to about the right place, then keys for the rest
        end = (
            (handle.center[0], y + h * (1 - frac)) if vertical else (x + w * frac, handle.center[1])
        )
        return DragTo(handle, end=end)
    if not handle.focused:
        return Press(handle)
    up = "up" if vertical else "right"
    down = "down" if vertical else "left"
    return Keys((up if target > value else down,))


@_solver("scroll-text-2")
def scroll_text_2(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    area = page.one("#text-area")
    top, room = page.js(
        "var t = arguments[0]; return [t.scrollTop, t.scrollHeight - t.clientHeight];", area.handle
    )
    if _field(ep, "target") == "top":
        return Wheel(area, "up", 3) if top > 0 else Press(page.one("#subbtn"))
    return Wheel(area, "down", 3) if top < room - 1 else Press(page.one("#subbtn"))


@_solver("resize-textarea")
def resize_textarea(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    dim, way = re.fullmatch(r"(width|height) is (larger|smaller)", _field(ep, "target")).groups()  # type: ignore[union-attr]
    if mem.get("dragged"):
        return Press(page.one("#submit"))
    grip = page.one(".ui-resizable-se")
    d = 15 if way == "larger" else -15
    cx, cy = grip.center
    mem["dragged"] = True
    return DragTo(grip, end=(cx + d, cy) if dim == "width" else (cx, cy + d))


@_solver("drag-single-shape")
def drag_single_shape(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    if mem.get("dragged"):
        return Press(page.one("#subbtn"))
    shape = page.one("svg .black-shape")
    dx, dy = {"left": (-12, 0), "right": (12, 0), "up": (0, -12), "down": (0, 12)}[
        _field(ep, "target")
    ]
    cx, cy = shape.center
    mem["dragged"] = True
    return DragTo(shape, end=(cx + dx, cy + dy))


@_solver("scroll-text")
def scroll_text(page: Page, ep: Episode, mem: dict[str, Any]) -> Intent:
    """Scroll the text to its end to see the last word, then type it."""
    area = page.one("#area textarea")
    top, room = page.js(
        "var t = arguments[0]; return [t.scrollTop, t.scrollHeight - t.clientHeight];", area.handle
    )
    if top < room - 1 and not mem.get("seen"):
        return Wheel(area, "down", 3)
    mem["seen"] = True
    words = (area.value or "").split()
    if not words:
        raise OracleStuck("the text area is empty")
    last = re.sub(r"[^a-zA-Z0-9]", "", words[-1])
    field = page.one("#area input[type=text]")
    return _fill_then(page, [(field, last)], page.one("#subbtn"), mem)
