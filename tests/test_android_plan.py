"""android_plan: Android actions -> exact ``adb shell`` argv lists (pure, no device needed).

Also checks the two halves that make typed text safe without a device: every argv survives
``shell_line`` quoting as exactly the same words (split by the phone fixture's sh-like
splitter, which refuses anything sh would interpret), and every ``input text`` chunk decodes,
by Android's own %s rule, back to the text.
"""

from __future__ import annotations

import base64
import shlex
import typing

import pytest

from pixelpilot.agent.actions import (
    Finish,
    LongPress,
    OpenApp,
    Point,
    Swipe,
    SystemButton,
    Tap,
    TypeText,
    Wait,
)
from pixelpilot.agent.errors import ActionRejected, UnsupportedAction
from pixelpilot.scenarios.phone_shell import ShellSyntaxError, android_input_text, split_line
from pixelpilot.tools.android import parse_density, parse_wm_size
from pixelpilot.tools.android_plan import (
    IME_CHUNK_BYTES,
    INPUT_TEXT_CHUNK,
    KEYEVENTS,
    plan,
    resolve_app,
    shell_line,
    type_text,
)


def px(x: float, y: float) -> Point:
    return Point(x=x, y=y, space="screen_px")


HOSTILE = [
    "plain",
    "two words  and   spaces ",
    'O\'Brien "Bob"',
    "100%s done %s%s %%s %",
    "a & b && c",
    "a; reboot",
    "$(reboot) ${HOME} $HOME $0 $$",
    "`id`",
    "back\\slash \\\\ \\n \\'",
    "pipe | redirect > < >> 2>&1",
    "glob * ? [a-z] {a,b} ~ #comment !bang",
    "-dash --option",
    "",
]
UNICODE = [
    "Zoë 東京",
    "emoji 🚀👍🏽",
    "zoë@例え.jp",
    "مرحبا",
    "e\u0301 combining",
    "\u200b zero width",
]


# -- touches and keys ---------------------------------------------------------------------------
def test_tap_long_press_swipe_exact_argv() -> None:
    assert plan(Tap(point=px(135, 246)), ime=True) == [["input", "tap", "135", "246"]]
    assert plan(LongPress(point=px(10, 20)), ime=True) == [
        ["input", "swipe", "10", "20", "10", "20", "1000"]
    ]
    assert plan(LongPress(point=px(0, 719), seconds=0.65), ime=False) == [
        ["input", "swipe", "0", "719", "0", "719", "650"]
    ]
    assert plan(Swipe(start=px(360, 1100), end=px(360, 500)), ime=True) == [
        ["input", "swipe", "360", "1100", "360", "500", "300"]
    ]
    assert plan(Swipe(start=px(1, 2), end=px(3, 4), seconds=2.5), ime=True) == [
        ["input", "swipe", "1", "2", "3", "4", "2500"]
    ]


def test_system_buttons_are_numeric_keyevents() -> None:
    codes = {"back": "4", "home": "3", "enter": "66", "menu": "82", "recent": "187"}
    for button, code in codes.items():
        assert plan(SystemButton(button=button), ime=True) == [["input", "keyevent", code]]  # type: ignore[arg-type]


def test_every_system_button_has_its_keyevent() -> None:
    """Every SystemButton is planned (a phone key: mobile_use ``key`` "supports adb's
    `keyevent` syntax", e.g. volume_up, power, camera, clear)."""
    for button in typing.get_args(SystemButton.model_fields["button"].annotation):
        code = str(KEYEVENTS[button])
        assert plan(SystemButton(button=button), ime=True) == [["input", "keyevent", code]]
    assert KEYEVENTS["volume_up"] == 24 and KEYEVENTS["power"] == 26 and KEYEVENTS["clear"] == 28


def test_control_actions_need_no_commands() -> None:
    assert plan(Finish(), ime=True) == []
    assert plan(Wait(seconds=1), ime=True) == []


def test_points_must_be_screen_px() -> None:
    with pytest.raises(ValueError, match="screen_px"):
        plan(Tap(point=Point(x=500, y=500, space="norm1000")), ime=True)


# -- typing through ADBKeyboard -----------------------------------------------------------------
def test_ime_typing_is_one_base64_broadcast() -> None:
    assert plan(TypeText(text="Zoë 東京"), ime=True) == [
        ["am", "broadcast", "-a", "ADB_INPUT_B64", "--es", "msg", "Wm/DqyDmnbHkuqw="]
    ]


def _ime_text(cmds: list[list[str]]) -> str:
    out = []
    for argv in cmds:
        if argv[:2] == ["input", "keyevent"]:
            out.append({"66": "\n", "61": "\t"}[argv[2]])
        else:
            assert argv[:6] == ["am", "broadcast", "-a", "ADB_INPUT_B64", "--es", "msg"]
            out.append(base64.b64decode(argv[6], validate=True).decode("utf-8"))
    return "".join(out)


@pytest.mark.parametrize("text", [t for t in HOSTILE + UNICODE if t])
def test_ime_typing_round_trips_every_string(text: str) -> None:
    cmds = type_text(text, ime=True)
    assert _ime_text(cmds) == text
    for argv in cmds:  # base64 leaves nothing for a shell: every element is a safe word
        assert shell_line(argv) == " ".join(argv)


def test_long_text_is_chunked_between_characters() -> None:
    text = "東" * 1000 + "é" * 300 + "x"
    cmds = type_text(text, ime=True)
    sizes = [len(base64.b64decode(c[6])) for c in cmds]
    assert len(cmds) == 8 and max(sizes) <= IME_CHUNK_BYTES and min(sizes[:-1]) >= 509
    assert _ime_text(cmds) == text  # every chunk decodes alone: no character was split


def test_newline_and_tab_press_keys() -> None:
    cmds = type_text("name\npass\tx\r\n", ime=True)
    assert [c[:2] for c in cmds] == [["am", "broadcast"], ["input", "keyevent"],
                                     ["am", "broadcast"], ["input", "keyevent"],
                                     ["am", "broadcast"], ["input", "keyevent"]]  # fmt: skip
    assert [c[2] for c in cmds if c[0] == "input"] == ["66", "61", "66"]


def test_control_characters_are_refused_for_the_model() -> None:
    with pytest.raises(ActionRejected, match="U\\+0007"):
        type_text("bell\x07", ime=True)


# -- typing through `input text` -----------------------------------------------------------------
def test_input_text_encodes_spaces_and_splits_literal_percent_s() -> None:
    assert type_text("a b", ime=False) == [["input", "text", "a%sb"]]
    assert type_text("100%s", ime=False) == [["input", "text", "100%"], ["input", "text", "s"]]
    assert type_text("% x", ime=False) == [["input", "text", "%%sx"]]


@pytest.mark.parametrize("text", [t for t in HOSTILE if t])
def test_input_text_round_trips_through_androids_rule(text: str) -> None:
    cmds = type_text(text, ime=False)
    assert all(argv[:2] == ["input", "text"] and argv[2] for argv in cmds)
    assert "".join(android_input_text(argv[2]) for argv in cmds) == text


def test_input_text_chunks_never_cut_an_encoded_space() -> None:
    text = ("ab " * 200) + "%s" + (" x" * 150)
    cmds = type_text(text, ime=False)
    assert len(cmds) > 3 and all(len(c[2]) <= INPUT_TEXT_CHUNK for c in cmds)
    assert "".join(android_input_text(c[2]) for c in cmds) == text


def test_non_ascii_without_the_ime_says_how_to_install_it() -> None:
    with pytest.raises(UnsupportedAction, match="ADBKeyboard.*ime enable"):
        type_text("Zoë", ime=False)


# -- shell quoting: nothing a model typed becomes shell syntax ------------------------------------
@pytest.mark.parametrize("text", HOSTILE + UNICODE + ["new\nline", "tab\there"])
def test_shell_line_keeps_every_argv_one_word(text: str) -> None:
    argv = ["input", "text", text]
    line = shell_line(argv)
    assert shlex.split(line) == argv
    assert split_line(line) == argv  # the fixture's sh-like splitter finds no shell syntax


@pytest.mark.parametrize(
    "line",
    ["input text a;b", "input text $(id)", "input text `id`", "a | b", "a && b", "a > f",
     "echo $HOME", 'echo "$(id)"', 'echo "`id`"', "a\nb", "echo *", "echo {a,b}", "echo ~",
     "echo 'open", "(id)"],
)  # fmt: skip
def test_fixture_refuses_lines_with_shell_syntax(line: str) -> None:
    with pytest.raises(ShellSyntaxError):
        split_line(line)


def test_fixture_splits_quoted_words_like_sh() -> None:
    assert split_line("""a 'b c' "d \\"e\\" $" f\\ g '$(id)'""") == [
        "a",
        "b c",
        'd "e" $',
        "f g",
        "$(id)",
    ]


# -- open_app ------------------------------------------------------------------------------------
def test_open_app_by_name_package_or_device_table() -> None:
    launcher = ["-c", "android.intent.category.LAUNCHER", "1"]
    assert plan(OpenApp(app="Settings"), ime=True) == [
        ["monkey", "-p", "com.android.settings", *launcher]
    ]
    assert plan(OpenApp(app="com.example.app"), ime=True) == [
        ["monkey", "-p", "com.example.app", *launcher]
    ]
    assert plan(OpenApp(app=" notes "), ime=True, apps={"Notes": "com.pixelpilot.notes"}) == [
        ["monkey", "-p", "com.pixelpilot.notes", *launcher]
    ]


def test_open_app_refuses_unknown_names_and_non_packages() -> None:
    with pytest.raises(ActionRejected, match="unknown app 'Frobnicator'.*Notes"):
        resolve_app("Frobnicator", {"Notes": "com.pixelpilot.notes"})
    with pytest.raises(ActionRejected, match="unknown app"):
        resolve_app("com.x; reboot")
    with pytest.raises(ActionRejected, match="not a package"):
        resolve_app("evil", {"evil": "com.x $(reboot)"})


# -- geometry from wm ----------------------------------------------------------------------------
def test_wm_size_and_density_override_wins() -> None:
    assert parse_wm_size("Physical size: 1080x2400\n") == (1080, 2400)
    assert parse_wm_size("Physical size: 1080x2400\nOverride size: 720x1600\n") == (720, 1600)
    assert parse_density("Physical density: 420\nOverride density: 320\n") == 320
    assert parse_density("Physical density: 440") == 440
    with pytest.raises(Exception, match="wm size"):
        parse_wm_size("error: no display")
