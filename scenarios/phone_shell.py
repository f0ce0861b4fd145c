"""The phone's shell: command lines split as ``sh`` would, and the commands it understands.

``split_line`` returns the words ``sh`` would pass as argv, or raises ShellSyntaxError when the
line holds anything sh would act on instead of passing it as data (an unquoted ``;``, ``&``,
``|``, backtick, ``$(``, ``$VAR``, redirection, glob, brace, newline...). ``PhoneShell`` runs an
argv against the simulated phone (``input``, ``screencap``, ``wm``, ``getprop``, ``ime``,
``settings``, ``pm``, ``am``, ``monkey``, ``uiautomator``, ``dumpsys``, ``cat``, ``rm``) and records a refused
line in the state's ``injections`` without running any of it.
"""

from __future__ import annotations

import base64
import binascii
import struct
import time
from collections.abc import Callable

from pixelpilot.scenarios.phone_app import APPS, PhoneApp

__all__ = [
    "ADB_IME",
    "LATIN_IME",
    "PhoneShell",
    "ShellSyntaxError",
    "android_input_text",
    "split_line",
]

ADB_IME = "com.android.adbkeyboard/.AdbIME"
LATIN_IME = "com.android.inputmethod.latin/.LatinIME"
PROPS = {
    "ro.product.model": "PixelPilot Phone", "ro.product.manufacturer": "pixelpilot",
    "ro.build.version.release": "14", "ro.build.version.sdk": "34",
    "ro.serialno": "PIXELPILOT0001", "sys.boot_completed": "1",
}  # fmt: skip


# -- the shell line: split like sh, refuse anything sh would interpret ---------------------------
class ShellSyntaxError(ValueError):
    """The line holds shell syntax (an operator, expansion, ...) rather than plain words."""


_OPERATORS = set(";&|<>()`\n")
_GLOB = set("*?[]{}")


def split_line(line: str) -> list[str]:
    """The words ``sh`` would pass as argv, or ShellSyntaxError naming what sh would act on."""
    words: list[str] = []
    cur: list[str] = []
    in_word = False
    i, n = 0, len(line)

    def dollar(j: int) -> None:
        if j + 1 < n and (
            line[j + 1] in "({" or line[j + 1].isalnum() or line[j + 1] in "_@*#?$!-"
        ):
            raise ShellSyntaxError(f"unquoted expansion {line[j : j + 2]!r} at {j}")

    while i < n:
        c = line[i]
        if c in " \t":
            if in_word:
                words.append("".join(cur))
                cur, in_word = [], False
            i += 1
            continue
        start = not in_word
        in_word = True
        if c == "'":
            end = line.find("'", i + 1)
            if end < 0:
                raise ShellSyntaxError(f"unterminated single quote at {i}")
            cur.append(line[i + 1 : end])
            i = end + 1
        elif c == '"':
            i += 1
            while True:
                if i >= n:
                    raise ShellSyntaxError("unterminated double quote")
                c = line[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\" and i + 1 < n and line[i + 1] in '$`"\\\n':
                    if line[i + 1] != "\n":
                        cur.append(line[i + 1])
                    i += 2
                    continue
                if c == "`":
                    raise ShellSyntaxError(f"command substitution (backtick) at {i}")
                if c == "$":
                    dollar(i)
                cur.append(c)
                i += 1
        elif c == "\\":
            if i + 1 >= n:
                raise ShellSyntaxError("a trailing backslash")
            if line[i + 1] != "\n":
                cur.append(line[i + 1])
            i += 2
        elif c in _OPERATORS:
            raise ShellSyntaxError(f"unquoted {c!r} at {i}")
        elif c in _GLOB:
            raise ShellSyntaxError(f"unquoted glob/brace {c!r} at {i}")
        elif c == "$":
            dollar(i)
            cur.append(c)
            i += 1
        elif start and (c in "#~" or (not words and c == "!")):
            raise ShellSyntaxError(f"unquoted {c!r} starting a word at {i}")
        else:
            cur.append(c)
            i += 1
    if in_word:
        words.append("".join(cur))
    return words


def android_input_text(text: str) -> str:
    """What Android's ``input text`` types for its argument: each '%s' becomes a space."""
    out: list[str] = []
    escape = False
    for c in text:
        if escape and c == "s":
            out[-1] = " "
            escape = False
            continue
        escape = c == "%"
        out.append(c)
    return "".join(out)


# -- the commands the phone understands ----------------------------------------------------------
Result = tuple[bytes, bytes, int]


class PhoneShell:
    """Runs one argv (already split) against the phone app: ``input``, ``screencap``, ``wm``..."""

    def __init__(self, app: PhoneApp, *, ime: str = "selected") -> None:
        if ime not in ("selected", "enabled", "none"):
            raise ValueError(f"ime must be selected, enabled or none, got {ime!r}")
        self.app = app
        self.ime_installed = ime != "none"
        self.ime = ADB_IME if ime == "selected" else LATIN_IME
        self.files: dict[str, bytes] = {}
        self.commands: dict[str, Callable[[list[str]], Result]] = {
            "input": self._input, "screencap": self._screencap, "wm": self._wm,
            "getprop": self._getprop, "ime": self._ime, "settings": self._settings,
            "pm": self._pm, "am": self._am, "monkey": self._monkey,
            "uiautomator": self._uiautomator, "cat": self._cat, "rm": self._rm,
            "dumpsys": self._dumpsys,
            "echo": lambda a: ((" ".join(a[1:]) + "\n").encode(), b"", 0),
            "true": lambda a: (b"", b"", 0),
        }  # fmt: skip

    def run_line(self, line: str) -> Result:
        try:
            argv = split_line(line)
        except ShellSyntaxError as exc:
            with self.app.lock:
                self.app.extra.setdefault("injections", []).append(
                    {"line": line, "reason": str(exc)}
                )
                self.app.note({"t": "refused_shell_line", "reason": str(exc)})
            return b"", f"/system/bin/sh: refused by the fixture: {exc}\n".encode(), 2
        with self.app.lock:
            log = self.app.extra.setdefault("shell", [])
            log.append(argv)
            del log[:-200]
        if not argv:
            return b"", b"", 0
        fn = self.commands.get(argv[0])
        if fn is None:
            return b"", f"/system/bin/sh: {argv[0]}: inaccessible or not found\n".encode(), 127
        try:
            return fn(argv)
        except (IndexError, ValueError) as exc:
            return b"", f"{argv[0]}: bad arguments: {exc}\n".encode(), 1
        finally:
            self.app.save()

    @staticmethod
    def _err(msg: str, code: int = 1) -> Result:
        return b"", (msg + "\n").encode(), code

    def _input(self, a: list[str]) -> Result:
        args = a[1:]
        if args and args[0] in ("touchscreen", "touchpad", "keyboard", "mouse", "stylus"):
            args = args[1:]
        verb, rest = args[0], args[1:]
        if verb == "tap":
            self.app.tap(float(rest[0]), float(rest[1]))
        elif verb == "swipe":
            x1, y1, x2, y2 = (float(v) for v in rest[:4])
            ms = int(rest[4]) if len(rest) > 4 else 300
            time.sleep(ms / 1000)  # the gesture takes its time, as on a device
            self.app.swipe(x1, y1, x2, y2, ms)
        elif verb == "keyevent":
            for k in rest:
                self.app.key(_keycode(k))
        elif verb == "text":
            text = android_input_text(rest[0])
            if any(not (32 <= ord(c) < 127) for c in text):
                self.app.note({"t": "input_text_unmappable", "text": text})
                return self._err("Exception: KeyCharacterMap cannot map the text")
            self.app.commit_text(text, via="input")
        else:
            return self._err(f"Error: Unknown command: {verb}")
        return b"", b"", 0

    def _screencap(self, a: list[str]) -> Result:
        if "-p" in a[1:]:
            return self.app.png(), b"", 0
        img = self.app.render().convert("RGBA")
        header = struct.pack("<4I", img.width, img.height, 1, 0)  # RGBA_8888, sRGB
        return header + img.tobytes(), b"", 0

    def _wm(self, a: list[str]) -> Result:
        if a[1] == "size":
            return f"Physical size: {self.app.width}x{self.app.height}\n".encode(), b"", 0
        if a[1] == "density":
            return f"Physical density: {self.app.density}\n".encode(), b"", 0
        return self._err(f"Unknown command: {a[1]}")

    def _getprop(self, a: list[str]) -> Result:
        if len(a) > 1:
            return (PROPS.get(a[1], "") + "\n").encode(), b"", 0
        return "".join(f"[{k}]: [{v}]\n" for k, v in PROPS.items()).encode(), b"", 0

    def _ime(self, a: list[str]) -> Result:
        if a[1] == "list":
            ids = [LATIN_IME] + ([ADB_IME] if self.ime_installed else [])
            return "".join(i + "\n" for i in ids).encode(), b"", 0
        if a[1] == "set":
            if a[2] not in {LATIN_IME} | ({ADB_IME} if self.ime_installed else set()):
                return self._err(f"Unknown input method {a[2]} cannot be selected for user #0")
            self.ime = a[2]
            self.app.note({"t": "ime_set", "ime": a[2]})
            return f"Input method {a[2]} selected for user #0\n".encode(), b"", 0
        return self._err(f"Unknown command: {a[1]}")

    def _settings(self, a: list[str]) -> Result:
        if a[1:4] == ["get", "secure", "default_input_method"]:
            return (self.ime + "\n").encode(), b"", 0
        return b"null\n", b"", 0

    def _pm(self, a: list[str]) -> Result:
        if a[1:3] == ["list", "packages"]:
            pkgs = [*APPS, "com.android.inputmethod.latin"]
            pkgs += ["com.android.adbkeyboard"] if self.ime_installed else []
            wanted = [p for p in pkgs if len(a) < 4 or a[3] in p]
            return "".join(f"package:{p}\n" for p in wanted).encode(), b"", 0
        return self._err(f"Unknown command: {a[1]}")

    def _am(self, a: list[str]) -> Result:
        opts = _options(a[2:])
        if a[1] == "broadcast":
            action, msg = opts.get("-a", ""), opts.get("--es msg")
            if action in ("ADB_INPUT_B64", "ADB_INPUT_TEXT") and msg is not None:
                received = self.ime == ADB_IME
                if received:
                    try:
                        text = (base64.b64decode(msg, validate=True).decode("utf-8")
                                if action == "ADB_INPUT_B64" else msg)  # fmt: skip
                    except (binascii.Error, UnicodeDecodeError) as exc:
                        return self._err(f"ADBKeyboard: bad base64: {exc}")
                    self.app.commit_text(text, via="ime")
            out = f"Broadcasting: Intent {{ act={action} flg=0x400000 (has extras) }}\n"
            return (out + "Broadcast completed: result=0\n").encode(), b"", 0
        if a[1] == "start":
            pkg = opts.get("-n", "").split("/")[0] or opts.get("-p", "")
            if self.app.launch(pkg):
                return f"Starting: Intent {{ cmp={opts.get('-n', pkg)} }}\n".encode(), b"", 0
            return self._err(f"Error: Activity not started, unable to resolve Intent {pkg}")
        if a[1] == "force-stop":
            return b"", b"", 0
        return self._err(f"Unknown command: {a[1]}")

    def _monkey(self, a: list[str]) -> Result:
        pkg = _options(a[1:]).get("-p", "")
        if self.app.launch(pkg):
            return (
                b"  bash arg: -p\nEvents injected: 1\n## Network stats: elapsed time=5ms\n",
                b"",
                0,
            )
        return b"", b"** No activities found to run, monkey aborted.\n", 251

    def _dumpsys(self, a: list[str]) -> Result:
        """``dumpsys window [windows]``: the focus lines a real phone prints (Android 10+
        format), the foreground package in them; other services print nothing."""
        if a[1:2] != ["window"]:
            return b"", b"", 0
        pkg = self.app.package()
        activity = f"{pkg}/{pkg}.MainActivity"
        text = (
            "WINDOW MANAGER WINDOWS (dumpsys window windows)\n"
            f"  mCurrentFocus=Window{{5e1c2a7 u0 {activity}}}\n"
            f"  mFocusedApp=ActivityRecord{{8d3f0b2 u0 {activity} t12}}\n"
        )
        return text.encode(), b"", 0

    def _uiautomator(self, a: list[str]) -> Result:
        if a[1] != "dump":
            return self._err(f"Unknown command: {a[1]}")
        path = a[2] if len(a) > 2 else "/sdcard/window_dump.xml"
        xml = self.app.ui_xml().encode()
        if path == "/dev/tty":
            return xml + b"UI hierchary dumped to: /dev/tty\n", b"", 0
        self.files[path] = xml
        return f"UI hierchary dumped to: {path}\n".encode(), b"", 0

    def _cat(self, a: list[str]) -> Result:
        out = b""
        for path in a[1:]:
            if path not in self.files:
                return out, f"cat: {path}: No such file or directory\n".encode(), 1
            out += self.files[path]
        return out, b"", 0

    def _rm(self, a: list[str]) -> Result:
        for path in a[1:]:
            if path != "-f":
                self.files.pop(path, None)
        return b"", b"", 0


_KEYNAMES = {"HOME": 3, "BACK": 4, "TAB": 61, "ENTER": 66, "DEL": 67, "MENU": 82, "APP_SWITCH": 187}


def _keycode(k: str) -> int:
    if k.isdigit():
        return int(k)
    name = k.upper().removeprefix("KEYCODE_")
    if name not in _KEYNAMES:
        raise ValueError(f"unknown keycode {k}")
    return _KEYNAMES[name]


def _options(args: list[str]) -> dict[str, str]:
    """Options of am/monkey: '-a X', '-n X', '--es KEY VALUE' (as key '--es KEY')."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        if args[i] in ("--es", "--ei", "--ez") and i + 2 < len(args):
            out[f"{args[i]} {args[i + 1]}"] = args[i + 2]
            i += 3
        elif args[i].startswith("-") and i + 1 < len(args):
            out[args[i]] = args[i + 1]
            i += 2
        else:
            i += 1
    return out
