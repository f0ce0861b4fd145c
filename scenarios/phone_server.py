"""The device side of adb's wire protocol over TCP, in front of the simulated phone (phone_app).

Run as ``python -m pixelpilot.scenarios.phone_server --port 0 --state state.json``; the real
adb server reaches it with ``adb connect 127.0.0.1:PORT`` (or, on a port in 5555-5585, finds
it by itself as emulator-N). What it speaks (see adb's protocol.txt):

- messages of a 24-byte header (command, arg0, arg1, length, checksum, magic) and a payload;
  CNXN answered with CNXN at once (no AUTH), then OPEN / OKAY / WRTE / CLSE streams, each
  WRTE waiting for the host's OKAY (flow control); TCP_NODELAY, header and payload in one
  write (else every call waits ~40-100 ms for a delayed ACK);
- services ``shell:CMD`` (output, then close), ``shell,v2[,...]:CMD`` (stdout/stderr/exit
  packets) and ``exec:CMD``; anything else is refused with CLSE.

Each command line goes to ``phone_shell.PhoneShell``, which splits it as ``sh`` would and runs
NOTHING of a line holding shell syntax (an unquoted ``;``, ``&``, ``|``, backtick, ``$(``...):
such a line is recorded in the state's ``injections`` list, so tests can prove that typed text
never became a shell command.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import struct
import sys
import threading
from collections.abc import Callable

from pixelpilot.scenarios.phone_app import PhoneApp
from pixelpilot.scenarios.phone_shell import PhoneShell

__all__ = ["AdbConnection", "main", "serve"]

A_SYNC, A_CNXN, A_OPEN, A_OKAY = 0x434E5953, 0x4E584E43, 0x4E45504F, 0x59414B4F
A_CLSE, A_WRTE, A_AUTH, A_STLS = 0x45534C43, 0x45545257, 0x48545541, 0x534C5453
A_VERSION = 0x01000001
MAX_PAYLOAD = 256 * 1024
BANNER = (b"device::ro.product.name=pixelpilot;ro.product.model=PixelPilot_Phone;"
          b"ro.product.device=pixelpilot;features=shell_v2,cmd,stat_v2")  # fmt: skip


# -- the adb transport ---------------------------------------------------------------------------
def _packet(cmd: int, arg0: int, arg1: int, data: bytes = b"") -> bytes:
    head = struct.pack("<6I", cmd, arg0, arg1, len(data), sum(data) & 0xFFFFFFFF, cmd ^ 0xFFFFFFFF)
    return head + data


class _Stream:
    def __init__(self, local: int, remote: int) -> None:
        self.local, self.remote = local, remote
        self.acked = threading.Event()
        self.closed = False


class AdbConnection:
    """One adb server's connection: a reader loop and one thread per opened stream."""

    def __init__(self, sock: socket.socket, shell: PhoneShell) -> None:
        self.sock, self.shell = sock, shell
        self.send_lock = threading.Lock()
        self.streams: dict[int, _Stream] = {}
        self.next_id = 1
        self.max_payload = 4096

    def send(self, cmd: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        with self.send_lock:
            self.sock.sendall(_packet(cmd, arg0, arg1, data))

    def _recv(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("the adb server closed the connection")
            buf += chunk
        return buf

    def serve(self) -> None:
        try:
            while True:
                cmd, arg0, arg1, length, _, magic = struct.unpack("<6I", self._recv(24))
                data = self._recv(length) if length else b""
                if magic != cmd ^ 0xFFFFFFFF:
                    raise ConnectionError("bad adb message magic")
                self._dispatch(cmd, arg0, arg1, data)
        except OSError:
            pass
        finally:
            for s in list(self.streams.values()):
                s.closed = True
                s.acked.set()
            with contextlib.suppress(OSError):
                self.sock.close()

    def _dispatch(self, cmd: int, arg0: int, arg1: int, data: bytes) -> None:
        if cmd == A_CNXN:
            self.max_payload = min(arg1, MAX_PAYLOAD)
            self.send(A_CNXN, A_VERSION, MAX_PAYLOAD, BANNER)
        elif cmd == A_OPEN:
            service = data.rstrip(b"\0").decode("utf-8", errors="surrogateescape")
            local = self.next_id
            self.next_id += 1
            stream = _Stream(local, arg0)
            self.streams[local] = stream
            threading.Thread(target=self._run, args=(stream, service), daemon=True).start()
        elif cmd == A_OKAY:
            s = self.streams.get(arg1)
            if s is not None:
                s.acked.set()
        elif cmd == A_WRTE:  # stdin or shell-v2 control packets: acknowledged, ignored
            self.send(A_OKAY, arg1, arg0)
        elif cmd == A_CLSE:
            s = self.streams.pop(arg1, None)
            if s is not None:
                s.closed = True
                s.acked.set()

    def _run(self, stream: _Stream, service: str) -> None:
        name, _, command = service.partition(":")
        kind, *opts = name.split(",")
        if kind not in ("shell", "exec") or (kind == "exec" and opts):
            self._close(stream, opened=False)
            return
        self.send(A_OKAY, stream.local, stream.remote)
        if not command:
            out, err, code = b"", b"pixelpilot phone: no interactive shell\n", 1
        else:
            out, err, code = self.shell.run_line(command)
        if "v2" in opts:
            data = b"".join(struct.pack("<BI", k, len(v)) + v for k, v in ((1, out), (2, err)) if v)
            data += struct.pack("<BIB", 3, 1, code & 0xFF)
        else:
            data = out + err
        for i in range(0, len(data), self.max_payload):
            if stream.closed:
                return
            stream.acked.clear()
            with contextlib.suppress(OSError):
                self.send(A_WRTE, stream.local, stream.remote, data[i : i + self.max_payload])
            if not stream.acked.wait(30):
                break
        self._close(stream, opened=True)

    def _close(self, stream: _Stream, opened: bool) -> None:
        self.streams.pop(stream.local, None)
        with contextlib.suppress(OSError):
            self.send(A_CLSE, stream.local if opened else 0, stream.remote)


def serve(port: int, shell: PhoneShell, on_listen: Callable[[int], None]) -> None:
    """Accept adb server connections on 127.0.0.1:``port`` (0: any free port) forever."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(8)
    on_listen(srv.getsockname()[1])
    while True:
        sock, _ = srv.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=AdbConnection(sock, shell).serve, daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="A simulated Android phone speaking adb over TCP.")
    p.add_argument("--port", type=int, default=0, help="TCP port (0: a free one, see state.port)")
    p.add_argument("--state", required=True, help="JSON state file, rewritten on every change")
    p.add_argument("--start", default="home", help="first screen: home, signin, shop, ...")
    p.add_argument("--width", type=int, default=720)
    p.add_argument("--height", type=int, default=1280)
    p.add_argument("--density", type=int, default=320)
    p.add_argument(
        "--ime",
        default="selected",
        choices=["selected", "enabled", "none"],
        help="ADBKeyboard: installed and selected, installed only, or absent",
    )
    args = p.parse_args(argv)
    app = PhoneApp(args.width, args.height, args.density, args.start, state_path=None)
    shell = PhoneShell(app, ime=args.ime)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    def ready(port: int) -> None:
        app.extra.update({"port": port, "injections": [], "shell": []})
        app.state_path = args.state
        app.write_state()

    serve(args.port, shell, ready)


if __name__ == "__main__":
    main()
