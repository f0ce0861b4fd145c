"""Run ``transformers serve`` for one checkpoint directory as a child process.

A real OpenAI-compatible server on this machine (CPU or GPU), for small local runs, the tests
and the benchmarks: the tiny checkpoint served this way is what the server backend is tested
against (``--model openai:URL``). It needs ``transformers[serving]`` (fastapi, uvicorn, openai).

>>> with TransformersServe("/tmp/tiny") as server:
...     model = OpenAIServerModel(server.url, server.model)
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from pixelpilot.agent.errors import ConfigError
from pixelpilot.tools._process import terminate

__all__ = ["TransformersServe", "missing_serving_deps"]


def missing_serving_deps() -> list[str]:
    """The modules ``transformers serve`` needs that are not installed."""
    return [m for m in ("fastapi", "uvicorn", "openai") if importlib.util.find_spec(m) is None]


class TransformersServe:
    """``transformers serve MODEL_DIR`` on 127.0.0.1 (a free port unless given), its output in
    ``log`` (default: ``serve.log`` beside the checkpoint). ``url`` is its OpenAI base; the
    served model's name is the directory (``model``)."""

    def __init__(
        self,
        model_dir: str | os.PathLike[str],
        *,
        port: int | None = None,
        device: str = "cpu",
        log: str | os.PathLike[str] | None = None,
        ready_s: float = 120.0,
    ) -> None:
        self.model = str(model_dir)
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.device, self.ready_s = device, ready_s
        self.log = Path(log) if log is not None else Path(self.model).parent / "serve.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> TransformersServe:
        missing = missing_serving_deps()
        if missing:
            raise ConfigError(
                f"transformers serve needs {', '.join(missing)}: pip install 'transformers[serving]'"
            )
        exe = shutil.which("transformers")
        cmd = (
            [exe]
            if exe
            else [sys.executable, "-c", "from transformers.cli.transformers import main; main()"]
        )
        cmd += [
            "serve", self.model, "--host", "127.0.0.1", "--port", str(self.port),
            "--device", self.device, "--log-level", "info",
        ]  # fmt: skip
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        with open(self.log, "wb") as log:
            self._proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True,
            )  # fmt: skip
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._proc is not None
        health = f"http://127.0.0.1:{self.port}/health"
        deadline = time.monotonic() + self.ready_s
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"transformers serve exited {self._proc.returncode}: {self.tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(health, timeout=1).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"transformers serve not ready in {self.ready_s:g} s: {self.tail()}"
                )
            time.sleep(0.2)

    def tail(self, chars: int = 2000) -> str:
        """The end of the server's log."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        terminate(self._proc, timeout=10)
        self._proc = None

    def __enter__(self) -> TransformersServe:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
