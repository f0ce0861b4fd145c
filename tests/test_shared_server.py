"""Many agents, one model server: a real ``transformers serve`` of the tiny checkpoint behind a
real counting HTTP proxy.

The proxy (a ``ThreadingHTTPServer`` that forwards every request to the server, holding each
for a moment so that requests overlap as they would on a busy GPU server) counts the requests
open through it at once and reads each one: which agent's task it carries and which agent's
screen its image shows. Each agent runs on a dry-run desktop with a screen of its own colour,
so a request that mixed two agents' state would show it.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import io
import json
import multiprocessing
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from pixelpilot.agent.errors import ConfigError
from pixelpilot.agent.geometry import PixelBudget
from pixelpilot.agent.loop import Agent, Budgets
from pixelpilot.agent.trajectory import DirectoryRecorder, RunResult, load_trajectory
from pixelpilot.tools.dryrun import DryRunDesktop
from pixelpilot.vlm.openai_server import OpenAIServerModel
from pixelpilot.vlm.transformers_serve import TransformersServe

BUDGET = PixelBudget(min_pixels=3136, max_pixels=64 * 28 * 28)
COLOURS = [(200, 30, 30), (30, 160, 30), (30, 30, 200), (200, 160, 20)]
TASK = "Agent {k}: click the box in the middle of the screen"
HOLD_S = 0.25
"""How long the proxy holds each request before forwarding it."""


class CountingProxy:
    """A real HTTP proxy to ``upstream`` that counts concurrent requests and reads each body."""

    def __init__(self, upstream: str, hold_s: float = HOLD_S) -> None:
        self.upstream = upstream.rstrip("/").removesuffix("/v1")
        self.open = self.most = 0
        self.seen: list[tuple[int | None, list[int], str]] = []
        """Per answered chat request: (agent of its task, agents its images show, answer)."""
        lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                data = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    owner.open += 1
                    owner.most = max(owner.most, owner.open)
                try:
                    time.sleep(hold_s)
                    resp = httpx.post(
                        owner.upstream + self.path, content=data, timeout=120,
                        headers={"Content-Type": "application/json"},
                    )  # fmt: skip
                finally:
                    with lock:
                        owner.open -= 1
                if resp.status_code == 200:
                    answer = resp.json()["choices"][0]["message"]["content"]
                    with lock:
                        owner.seen.append((*whose(json.loads(data)), answer))
                self._reply(resp)

            def do_GET(self) -> None:  # noqa: N802
                self._reply(httpx.get(owner.upstream + self.path, timeout=30))

            def _reply(self, resp: httpx.Response) -> None:
                with contextlib.suppress(OSError):
                    self.send_response(resp.status_code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(resp.content)))
                    self.end_headers()
                    self.wfile.write(resp.content)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def whose(body: dict[str, Any]) -> tuple[int | None, list[int]]:
    """(the agent whose task the request carries, the agents whose screens its images show)."""
    texts, images = [], []
    for m in body["messages"]:
        parts = m["content"] if isinstance(m["content"], list) else [{"type": "text", "text": m["content"]}]
        for p in parts:
            if p["type"] == "text":
                texts.append(p["text"])
            else:
                images.append(colour_of(p["image_url"]["url"]))
    tasks = {int(k) for k in re.findall(r"Agent (\d+): click", "\n".join(texts))}
    return (tasks.pop() if len(tasks) == 1 else None), images


def colour_of(url: str) -> int:
    """The agent whose screen colour the data URL's image has (-1: none)."""
    image = Image.open(io.BytesIO(base64.b64decode(url.partition(",")[2]))).convert("RGB")
    mean = image.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    for k, c in enumerate(COLOURS):
        if all(abs(a - b) <= 12 for a, b in zip(mean, c, strict=True)):  # type: ignore[arg-type]
            return k
    return -1


def run_agent(model: OpenAIServerModel, k: int, out: Path, retries: int = 2) -> RunResult:
    """Agent ``k``'s episode on its own dry-run screen, recorded to ``out``."""
    screen = Image.new("RGB", (640, 400), COLOURS[k])
    with DryRunDesktop(image=screen) as device:
        agent = Agent(
            model=model, device=device, dialect="qwen25vl",
            budgets=Budgets(max_steps=2, max_retries=retries), recorder=DirectoryRecorder(out),
        )  # fmt: skip
        return agent.run(TASK.format(k=k))


def client(url: str, model: str, n: int) -> OpenAIServerModel:
    return OpenAIServerModel(
        url, model, pixels=BUDGET, max_tokens=16, retries=1, backoff=0.05, max_in_flight=n
    )


def in_threads(model: OpenAIServerModel, ks: list[int], root: Path, retries: int = 2) -> None:
    errors: list[BaseException] = []

    def one(k: int) -> None:
        try:
            run_agent(model, k, root / f"agent-{k}", retries)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(k,)) for k in ks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors


def process_worker(url: str, model: str, n: int, ks: list[int], root: str) -> None:
    """A worker process: its own client, its agents in threads (spawned: imports only this)."""
    in_threads(client(url, model, n), ks, Path(root))


def check_own(proxy: CountingProxy, root: Path, ks: list[int]) -> None:
    """Every request carried one agent's task and only that agent's screen, and every agent's
    trajectory holds its own task, screen and exactly the answers to its own requests."""
    assert proxy.seen and all(agent is not None for agent, _, _ in proxy.seen), proxy.seen
    for agent, shown, _ in proxy.seen:
        assert shown and set(shown) == {agent}, (agent, shown)
    for k in ks:
        traj = load_trajectory(root / f"agent-{k}")
        assert traj.meta.task == TASK.format(k=k)
        raws = [a.raw for s in traj.steps for a in s.attempts]
        mine = [answer for agent, _, answer in proxy.seen if agent == k]
        assert sorted(raws) == sorted(mine) and len(raws) >= 2, (k, raws, mine)
        shot = traj.screenshot_path(traj.steps[0])
        assert shot is not None and colour_of_file(shot) == k
        for step in traj.steps:  # a re-ask sends the step's screenshot as already encoded
            assert [a.timings["encode"] == 0 for a in step.attempts[1:]] == [True] * (
                len(step.attempts) - 1
            ), (k, [a.timings for a in step.attempts])


def colour_of_file(path: Path) -> int:
    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, "JPEG")
    return colour_of("data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode())


@pytest.fixture
def proxy(tiny_server: TransformersServe) -> Iterator[CountingProxy]:
    with CountingProxy(tiny_server.url) as p:
        yield p


def test_threads_share_one_client_each_with_its_own_state(
    proxy: CountingProxy, tiny_server: TransformersServe, tmp_path: Path
) -> None:
    """Four agents in four threads share ONE client bounded to 2 requests in flight."""
    model = client(proxy.url, tiny_server.model, 2)
    in_threads(model, [0, 1, 2, 3], tmp_path)
    assert proxy.most == 2  # reached, never passed
    check_own(proxy, tmp_path, [0, 1, 2, 3])
    queued = [a.timings["queue"] for k in range(4) for s in load_trajectory(tmp_path / f"agent-{k}").steps for a in s.attempts]
    assert max(queued) > HOLD_S / 2  # someone waited for a slot, outside the request's time
    model.close()


def test_the_proxy_sees_more_when_the_bound_allows_more(
    proxy: CountingProxy, tiny_server: TransformersServe, tmp_path: Path
) -> None:
    """The control: the same four agents with a bound of 4 do overlap past 2."""
    in_threads(client(proxy.url, tiny_server.model, 4), [0, 1, 2, 3], tmp_path, retries=0)
    assert proxy.most >= 3


def test_worker_processes_share_the_bound(
    proxy: CountingProxy, tiny_server: TransformersServe, tmp_path: Path
) -> None:
    """Two worker processes, two agents each, each process its own client with a bound of 2:
    the machine keeps at most 2 requests open to the server."""
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=process_worker, args=(proxy.url, tiny_server.model, 2, ks, str(tmp_path)))
        for ks in ([0, 1], [2, 3])
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
    assert [p.exitcode for p in procs] == [0, 0]
    assert proxy.most == 2
    check_own(proxy, tmp_path, [0, 1, 2, 3])


def test_a_killed_holder_frees_its_slot(tmp_path: Path) -> None:
    """A process killed while it holds a slot does not keep it: the kernel drops the lock."""
    from pixelpilot.vlm.inflight import limit_for

    key = f"http://127.0.0.1:1/{tmp_path.name}"
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=hold_forever, args=(key, ready))
    holder.start()
    assert ready.wait(30)
    limit = limit_for(key, 1)
    got: list[float] = []
    waiter = threading.Thread(target=lambda: got.append(enter(limit)), daemon=True)
    waiter.start()
    waiter.join(0.5)
    assert not got  # the one slot is held by the other process
    holder.kill()
    holder.join(10)
    waiter.join(10)
    assert got and got[0] >= 0.5


def hold_forever(key: str, ready: Any) -> None:
    from pixelpilot.vlm.inflight import limit_for

    with limit_for(key, 1).slot():
        ready.set()
        time.sleep(600)


def enter(limit: Any) -> float:
    with limit.slot() as waited:
        return float(waited)


@pytest.mark.parametrize("bad", ["0", "-3", "many"])
def test_a_bad_bound_is_one_clear_line(bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXELPILOT_MAX_IN_FLIGHT", bad)
    with pytest.raises(ConfigError, match=r"PIXELPILOT_MAX_IN_FLIGHT.*whole number >= 1"):
        OpenAIServerModel("http://127.0.0.1:1/v1", "m")
    monkeypatch.setenv("PIXELPILOT_MAX_IN_FLIGHT", "3")
    assert OpenAIServerModel("http://127.0.0.1:1/v1", "m").max_in_flight == 3
